"""A shop's synonym file in a front end's Elasticsearch body on the embedded backend: the words a rule names match
as any of its readings in every full-text query, as the cluster's search analyzer has them match there
(``lexical.synonyms_file``; the leg's own use: tests/retrieval/test_synonyms.py)."""

from __future__ import annotations

import pytest
from both_backends import filtered, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="grey-sofa", title="Grey sofa", brand="Acme"),
    Product(id="blue-sofa", title="Blue sofa", brand="Acme"),
    Product(id="sofa-grey-cover", title="Sofa cover in grey", brand="Bolt"),
    Product(id="notebook-computer", title="Notebook computer 15", brand="Bolt"),
    Product(id="computer-desk", title="Computer desk", brand="Bolt"),
    Product(id="television", title="Television 55 in", brand="Vizo"),
    Product(id="tv-stand", title="TV stand", brand="Vizo"),
    Product(id="hoodie", title="Hoodie, red", brand="Acme"),
    Product(id="hooded-sweatshirt", title="Hooded sweatshirt, red", brand="Acme"),
    Product(id="crew-sweatshirt", title="Crew sweatshirt, red", brand="Acme"),
    Product(id="hooded-towel", title="Hooded towel", brand="Bolt"),
]

RULES = "sofa, couch\nlaptop, notebook computer\ntv => television\nhoodie, hooded sweatshirt\n"


@pytest.fixture(scope="module")
def client(catalog_client, tmp_path_factory):
    rules = tmp_path_factory.mktemp("synonyms") / "synonyms.txt"
    rules.write_text(RULES, encoding="utf-8")
    return catalog_client(CATALOG, lexical={"synonyms_file": str(rules)})


def test_a_match_finds_the_products_named_by_another_word_of_a_rule(client):
    assert filtered(client, {"match": {"title": "couch"}}) == ["blue-sofa", "grey-sofa", "sofa-grey-cover"]


def test_with_operator_and_the_rules_reading_stands_for_its_word_and_the_other_words_are_still_needed(client):
    clause = {"match": {"title": {"query": "grey couch", "operator": "and"}}}
    assert filtered(client, clause) == ["grey-sofa", "sofa-grey-cover"]


def test_a_reading_of_several_words_matches_as_a_phrase(client):
    assert filtered(client, {"match": {"title": "laptop"}}) == ["notebook-computer"]


def test_a_phrase_matches_each_text_the_rules_make_of_it(client):
    assert filtered(client, {"match_phrase": {"title": "grey couch"}}) == ["grey-sofa"]


def test_a_cross_fields_multi_match_reads_the_rules_across_the_fields(client):
    clause = {"multi_match": {"query": "bolt couch", "fields": ["title", "brand"], "type": "cross_fields"}}
    clause["multi_match"]["operator"] = "and"
    assert filtered(client, clause) == ["sofa-grey-cover"]


def test_a_query_string_reads_the_rules(client):
    assert filtered(client, {"query_string": {"query": "couch", "default_field": "title"}}) == [
        "blue-sofa",
        "grey-sofa",
        "sofa-grey-cover",
    ]


def test_an_explicit_rule_matches_its_right_side_instead_of_the_typed_word(client):
    assert filtered(client, {"match": {"title": "tv"}}) == ["television"]


@pytest.mark.parametrize(
    "clause",
    [
        {"match_phrase": {"title": "hooded sweatshirt"}},
        {"multi_match": {"query": "hooded sweatshirt", "fields": ["title"], "type": "phrase"}},
        {"query_string": {"query": '"hooded sweatshirt"', "default_field": "title"}},
    ],
)
def test_a_phrase_a_rule_reads_as_one_word_matches_that_word(client, clause):
    # Each text the rules make of the phrase is matched: "hoodie" alone is a word, not a phrase of one.
    assert filtered(client, clause) == ["hooded-sweatshirt", "hoodie"]


def test_the_typed_words_of_a_rule_match_together_as_elasticsearchs_synonym_graph_matches_them(client):
    # A span's own words are one path of the graph, a phrase: "hooded sweatshirt" finds neither the crew sweatshirt
    # nor the hooded towel by one of its words, even with every word asked for by minimum_should_match.
    clause = {"match": {"title": {"query": "hooded sweatshirt", "minimum_should_match": "100%"}}}
    assert filtered(client, clause) == ["hooded-sweatshirt", "hoodie"]


def test_a_highlight_marks_the_word_a_rule_found(client):
    body = {"query": {"match": {"title": "couch"}}, "highlight": {"fields": {"title": {}}}}
    hits = search(client, body)["hits"]["hits"]
    marked = {hit["_id"]: hit.get("highlight", {}).get("title") for hit in hits}
    assert marked["grey-sofa"] == ["Grey <em>sofa</em>"]


def test_a_highlight_marks_a_phrase_a_rule_found_as_the_phrase(client):
    body = {"query": {"match_phrase": {"title": "laptop"}}, "highlight": {"fields": {"title": {}}}}
    hits = search(client, body)["hits"]["hits"]
    marked = {hit["_id"]: hit.get("highlight", {}).get("title") for hit in hits}
    assert marked["notebook-computer"] == ["<em>Notebook computer</em> 15"]
