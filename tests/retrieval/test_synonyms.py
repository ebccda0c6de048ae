"""A shop's synonym file (``lexical.synonyms_file``, Solr format) on the embedded BM25 leg: read at search time, as
the cluster's search analyzer reads it. Its Elasticsearch bodies: tests/service/test_synonyms_in_bodies.py."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from search_rerank.backends.synonyms import Rule, Synonyms, read_synonyms
from search_rerank.backends.tantivy_index import TantivyRetriever, english_analyzer
from search_rerank.core.errors import ConfigError
from search_rerank.core.product import Product
from search_rerank.core.settings import LexicalSettings

CATALOG = [
    Product(id="sofa", title="Grey Sofa"),
    Product(id="slipcover", title="Stretch slipcover"),
    Product(id="television", title="Television 55 in"),
    Product(id="tv-stand", title="TV Stand"),
    Product(id="hoodie", title="Hoodie, red"),
    Product(id="sweatshirt", title="Crew sweatshirt, red"),
    Product(id="notebook-computer", title="Notebook computer 15"),
    Product(id="computer-desk", title="Computer desk"),
    Product(id="notebook-paper", title="Notebook paper"),
]

RULES = """\
# the shop's words
sofa, couch, settee
tv => television
hoodie, hooded sweatshirt
laptop, notebook computer
"""


def leg(tmp_path: Path, rules: str | None = RULES) -> TantivyRetriever:
    file = None
    if rules is not None:
        tmp_path.mkdir(exist_ok=True)
        file = tmp_path / "synonyms.txt"
        file.write_text(rules, encoding="utf-8")
    retriever = TantivyRetriever(None, LexicalSettings(synonyms_file=file))
    retriever.warm_up()
    retriever.add(CATALOG)
    return retriever


def compiled(*rules: str) -> Synonyms:
    """``rules`` as the lines of a file, cut by the index's analyser."""
    return Synonyms([Rule(line, text) for line, text in enumerate(rules, start=1)], english_analyzer().analyze)


def found(retriever: TantivyRetriever, query: str) -> list[str]:
    return [c.product_id for c in retriever.search(query, 10)]


def test_a_word_of_an_equivalence_rule_finds_the_products_that_use_another_word_of_it(tmp_path):
    assert found(leg(tmp_path), "couch") == ["sofa"]


def test_the_words_are_searched_as_typed_without_a_synonym_file(tmp_path):
    assert found(leg(tmp_path, rules=None), "couch") == []


def test_a_rule_reads_the_query_word_in_any_inflection(tmp_path):
    # The rules and the query are both read as stems: "couches" is the rule's "couch".
    assert found(leg(tmp_path), "settees") == ["sofa"]


def test_a_reading_of_several_words_matches_them_as_a_phrase(tmp_path):
    # "laptop" finds the notebook computer, not the computer desk nor the notebook paper.
    assert found(leg(tmp_path), "laptop") == ["notebook-computer"]


def test_several_typed_words_a_rule_names_are_read_as_its_one_word(tmp_path):
    assert found(leg(tmp_path), "red hooded sweatshirt")[0] == "hoodie"


def test_the_typed_words_of_a_span_still_match_alone(tmp_path):
    # The span's own words keep their partial matches: "sweatshirt" alone still finds the crew sweatshirt.
    assert "sweatshirt" in found(leg(tmp_path), "hooded sweatshirt")


def test_an_explicit_rule_searches_its_right_side_instead_of_the_typed_words(tmp_path):
    assert found(leg(tmp_path), "tv") == ["television"]


def test_a_product_holding_two_readings_of_a_span_scores_by_the_best_of_them(tmp_path):
    # The readings of a span are alternatives, not extra words: "Sofa couch" is not found twice over by "sofa".
    def score(retriever: TantivyRetriever, query: str) -> float:
        retriever.add([Product(id="both", title="Sofa couch")])
        return next(c.score for c in retriever.search(query, 10) if c.product_id == "both")

    plain = leg(tmp_path / "plain", rules=None)
    each = [score(plain, "sofa"), score(plain, "couch")]
    assert score(leg(tmp_path / "rules"), "sofa") == pytest.approx(max(each))


def test_the_learned_rankers_field_scores_read_the_rules_too(tmp_path):
    assert leg(tmp_path).field_scores("couch", ["sofa"])["title"]["sofa"] > 0


def test_rules_with_the_same_left_side_add_up(tmp_path):
    rules = compiled("tv => television", "tv => monitor")
    assert rules.spans(["tv"])[0].alternatives == (("televis",), ("monitor",))


def test_of_overlapping_rules_the_longest_at_the_first_word_is_applied():
    rules = compiled("coffee, java", "coffee table, cocktail table")
    spans = rules.spans(["coffe", "tabl", "coffe"])
    assert [(s.start, s.words) for s in spans] == [(0, ("coffe", "tabl")), (2, ("coffe",))]


def test_a_text_with_several_rules_is_every_combination_of_their_readings_the_typed_one_first():
    rules = compiled("sofa, couch", "grey, gray")
    assert list(rules.variants(["grey", "sofa"])) == [
        ["grey", "sofa"],
        ["grey", "couch"],
        ["gray", "sofa"],
        ["gray", "couch"],
    ]


def test_comments_blank_lines_and_escaped_commas_are_read_as_solr_reads_them(tmp_path):
    file = tmp_path / "synonyms.txt"
    file.write_text("# comment\n\n  sofa, couch  \n4\\,5 stars => top rated\n", encoding="utf-8")
    assert read_synonyms(file) == ["sofa, couch", "4\\,5 stars => top rated"]
    rules = compiled(*read_synonyms(file))
    # The escaped comma is part of the phrase "4,5 stars", not a second phrase "5 stars" beside "4".
    assert rules.spans(["4", "5", "star"])[0].alternatives == (("top", "rate"),)
    assert rules.spans(["4"]) == []


@pytest.mark.parametrize("line", ["a => b => c", "=> television", "tv =>", " , "])
def test_a_line_that_is_no_rule_is_refused_naming_its_number(tmp_path, line):
    file = tmp_path / "synonyms.txt"
    file.write_text(f"sofa, couch\n{line}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"synonyms_file: .*synonyms\.txt line 2: "):
        read_synonyms(file)


def test_a_file_that_is_not_utf8_is_refused_naming_the_setting(tmp_path):
    file = tmp_path / "synonyms.txt"
    file.write_bytes("canapé, sofa\n".encode("latin-1"))
    with pytest.raises(ConfigError, match="synonyms_file: .* is not UTF-8 text"):
        TantivyRetriever(None, LexicalSettings(synonyms_file=file))


@pytest.mark.parametrize("rule", ["tv => ™", "!!!, tv", "tv, 🛋"])
def test_a_phrase_the_index_reads_as_no_word_is_refused_naming_its_line(tmp_path, rule):
    # Searched as nothing, it would make the words it reads match nothing ("tv" found no product).
    file = tmp_path / "synonyms.txt"
    file.write_text(f"sofa, couch\n{rule}\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"synonyms_file: .*synonyms\.txt line 2: .* has no word the index searches"):
        TantivyRetriever(None, LexicalSettings(synonyms_file=file))


def test_a_rule_written_with_decomposed_accents_is_read_as_the_query_that_types_it(tmp_path):
    # A file saved in NFD: "crème brûlée" with combining accents, read as the composed words the index holds.
    decomposed = unicodedata.normalize("NFD", "crème brûlée, custard")
    retriever = leg(tmp_path, rules=decomposed + "\n")
    retriever.add([Product(id="creme", title="Crème brûlée dish")])
    assert found(retriever, "custard") == ["creme"]


def test_a_path_that_is_no_regular_file_is_refused_naming_the_setting(tmp_path):
    pipe = tmp_path / "synonyms.fifo"
    os.mkfifo(pipe)
    with pytest.raises(ConfigError, match="synonyms_file: .* is not a regular file"):
        TantivyRetriever(None, LexicalSettings(synonyms_file=pipe))
