"""Term and phrase suggesters ("did you mean") on the embedded backend, answered from the index's own terms as
Elasticsearch answers them, with the words shown as the catalogue writes them (serving/did_you_mean.py)."""

from __future__ import annotations

import itertools
import json
import math
import random
import sys

import pytest

from search_rerank.core.product import Product
from search_rerank.serving.did_you_mean import Choice, best_phrases


def product(pid: str, title: str, description: str = "") -> Product:
    return Product(id=pid, title=title, brand="Acme", category=("Home",), description=description)


CATALOG = [
    product("s1", "Leather sofa", "a comfortable sofa"),
    product("s2", "Corner sofa bed"),
    product("a1", "Leather armchair"),
    product("c1", "Oak dining chairs", "a set of four chairs"),
    product("c2", "Office chair"),
    product("f1", "Garden furniture set"),
    product("l1", "Desk lamp"),
    product("l2", "Floor lamp"),
    product("w1", "Lamb wool rug"),
    product("w2", "Lamb wool throw"),
    product("w3", "Lamb skin rug"),
    product("t1", "Glass coffee table"),
    product("p1", "1½ in. PVC Tee"),
]


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG, field_aliases={"name": "title"})


def suggest(client, suggesters: dict, path: str = "/products/_search", **body) -> dict:
    response = client.post(path, json={"size": 0, "suggest": suggesters, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["suggest"]


def term(text: str, **options) -> dict:
    return {"text": text, "term": {"field": "title", **options}}


def phrase(text: str, **options) -> dict:
    return {"text": text, "phrase": {"field": "title", **options}}


def options(entry: dict) -> list[str]:
    return [option["text"] for option in entry["options"]]


def test_a_term_suggester_answers_each_word_with_the_catalogues_words_near_it(client):
    (lether, sofa) = suggest(client, {"fix": term("Lether sofa")})["fix"]
    assert {k: lether[k] for k in ("text", "offset", "length")} == {"text": "lether", "offset": 0, "length": 6}
    assert lether["options"] == [{"text": "leather", "score": pytest.approx(1 - 1 / 6), "freq": 2}]
    assert (sofa["text"], sofa["offset"], sofa["options"]) == ("sofa", 7, [])  # held by products: suggest_mode missing


def test_a_suggested_word_is_shown_as_the_catalogue_writes_it_not_as_its_stem(client):
    # The index holds the stem "furnitur"; Elasticsearch's term suggester on a stemmed field answers it.
    (entry,) = suggest(client, {"fix": term("furnture")})["fix"]
    assert options(entry) == ["furniture"]


def test_of_the_words_a_stem_is_written_as_the_one_closest_to_the_typed_word_is_shown(client):
    answer = suggest(client, {"plural": term("chiars"), "singular": term("chiar", min_word_length=3)})
    assert options(answer["plural"][0]) == ["chairs"]
    assert options(answer["singular"][0]) == ["chair"]


def test_a_fraction_character_is_answered_as_its_numerator_and_denominator_where_it_was_typed(client):
    # As the index holds it ("½" is "1/2"); a cluster's mapping char filter answers the same words at the same place.
    entries = suggest(client, {"fix": term("½ pvcc")})["fix"]
    assert [(e["text"], e["offset"], e["length"]) for e in entries] == [("1", 0, 1), ("2", 0, 1), ("pvcc", 2, 4)]
    assert options(entries[2]) == ["pvc"]


def test_sort_orders_the_options_by_score_or_by_the_products_holding_them(client):
    # "lamp": one edit, two products; "lamb": two edits, three products.
    by_score = suggest(client, {"s": term("lampz")})["s"][0]
    by_frequency = suggest(client, {"s": term("lampz", sort="frequency")})["s"][0]
    assert [(o["text"], o["freq"]) for o in by_score["options"]] == [("lamp", 2), ("lamb", 3)]
    assert options(by_frequency) == ["lamb", "lamp"]


def test_size_caps_each_words_options(client):
    assert options(suggest(client, {"s": term("lampz", size=1)})["s"][0]) == ["lamp"]


def test_max_edits_one_leaves_out_the_words_two_edits_away(client):
    assert options(suggest(client, {"s": term("lampz", max_edits=1)})["s"][0]) == ["lamp"]


def test_a_typo_in_the_first_letter_is_not_corrected(client):
    assert options(suggest(client, {"s": term("kamp")})["s"][0]) == []


def test_a_word_shorter_than_min_word_length_gets_no_options(client):
    assert options(suggest(client, {"s": term("lam")})["s"][0]) == []
    assert options(suggest(client, {"s": term("lam", min_word_length=3)})["s"][0]) == ["lamb", "lamp"]


def test_suggest_mode_always_suggests_for_a_held_word_unless_past_max_term_freq(client):
    # "lamp" is in 2 of 12 products, more than max_term_freq's 1% of them: taken as spelt right.
    assert options(suggest(client, {"s": term("lamp", suggest_mode="always")})["s"][0]) == []
    answer = suggest(client, {"s": term("lamp", suggest_mode="always", max_term_freq=5)})["s"][0]
    assert options(answer) == ["lamb"]


def test_suggest_mode_popular_suggests_only_words_in_more_products(client):
    answer = suggest(client, {"s": term("lamp", suggest_mode="popular", max_term_freq=5)})["s"][0]
    assert options(answer) == ["lamb"]
    answer = suggest(client, {"s": term("lamb", suggest_mode="popular", max_term_freq=5)})["s"][0]
    assert options(answer) == []


def test_offsets_and_lengths_count_utf16_code_units_as_elasticsearch_does(client):
    (word,) = suggest(client, {"s": term("\U0001f600 lether")})["s"]
    assert (word["offset"], word["length"]) == (3, 6)
    assert suggest(client, {"p": phrase("\U0001f600 lether")})["p"][0]["length"] == 9


def test_suggest_mode_sort_and_string_distance_are_read_in_any_case(client):
    answer = suggest(client, {"s": term("lampz", sort="FREQUENCY", suggest_mode="Missing", string_distance="INTERNAL")})
    assert options(answer["s"][0]) == ["lamb", "lamp"]


def test_the_suggest_text_is_shared_by_the_suggesters_without_their_own(client):
    answer = suggest(client, {"text": "lether", "a": {"term": {"field": "title"}}, "b": term("sofz")})
    assert options(answer["a"][0]) == ["leather"]
    assert options(answer["b"][0]) == ["sofa"]


def test_a_phrase_suggester_corrects_the_misspelt_word_and_highlights_it(client):
    tags = {"pre_tag": "<em>", "post_tag": "</em>"}
    (entry,) = suggest(client, {"p": phrase("Lether sofa", highlight=tags)})["p"]
    assert {k: entry[k] for k in ("text", "offset", "length")} == {"text": "Lether sofa", "offset": 0, "length": 11}
    best = entry["options"][0]
    assert (best["text"], best["highlighted"]) == ("leather sofa", "<em>leather</em> sofa")
    assert 0 < best["score"] < 1


def test_a_phrase_corrects_at_most_max_errors_words(client):
    one = suggest(client, {"p": phrase("lether sofz")})["p"][0]
    two = suggest(client, {"p": phrase("lether sofz", max_errors=2)})["p"][0]
    assert "leather sofa" not in options(one)
    assert set(options(one)) >= {"leather sofz", "lether sofa"}
    assert options(two)[0] == "leather sofa"


def test_neighbouring_corrected_words_share_one_pair_of_tags(client):
    body = phrase("lether sofz", max_errors=2, highlight={"pre_tag": "[", "post_tag": "]"})
    assert suggest(client, {"p": body})["p"][0]["options"][0]["highlighted"] == "[leather sofa]"


def test_confidence_zero_lets_the_typed_phrase_itself_be_an_option(client):
    assert "lether sofa" not in options(suggest(client, {"p": phrase("lether sofa")})["p"][0])
    assert "lether sofa" in options(suggest(client, {"p": phrase("lether sofa", confidence=0)})["p"][0])


@pytest.mark.parametrize(
    "scoring",
    [{"real_word_error_likelihood": 1e300}, {"smoothing": {"laplace": {"alpha": 1e300}}}],
    ids=["real_word_error_likelihood", "laplace_alpha"],
)
def test_a_phrase_score_past_a_doubles_range_is_answered_as_the_largest_double(client, scoring):
    # Elasticsearch bounds neither (only above 0); exp of a sum of log10s past 709 overflowed (a 500).
    (entry,) = suggest(client, {"p": phrase("lether sofa chairs lamp table", confidence=0, **scoring)})["p"]
    assert entry["options"]
    assert all(0 < option["score"] <= sys.float_info.max for option in entry["options"])


def test_a_phrase_of_token_limit_words_or_more_gets_no_corrections(client):
    assert options(suggest(client, {"p": phrase("lether sofa", token_limit=2)})["p"][0]) == []


def test_a_phrase_spelt_right_gets_no_options(client):
    assert options(suggest(client, {"p": phrase("leather sofa")})["p"][0]) == []


def test_magento_did_you_mean_on_an_aliased_field_is_answered(client):
    # Magento 2.4's Elasticsearch adapter: one phrase suggester per searchable text field, the shared text.
    spec = {
        "field": "name",
        "analyzer": "standard",
        "size": 2,
        "max_errors": 1,
        "direct_generator": [{"field": "name", "min_word_length": 3}],
    }
    answer = suggest(client, {"text": "office chiar", "phrase_name": {"phrase": spec}})
    assert options(answer["phrase_name"][0]) == ["office chair"]


def test_typed_keys_names_term_and_phrase_suggestions_by_their_type(client):
    response = client.post(
        "/products/_search?typed_keys=true",
        json={"size": 0, "suggest": {"t": term("sofz"), "p": phrase("sofz")}},
    )
    assert set(response.get_json()["suggest"]) == {"term#t", "phrase#p"}


def test_completion_term_and_phrase_suggesters_in_one_body_are_all_answered(client):
    completion = {"prefix": "lea", "completion": {"field": "title"}}
    body = {"query": {"match": {"title": "lamp"}}, "size": 0}
    answer = client.post(
        "/products/_search",
        json={**body, "suggest": {"c": completion, "t": term("sofz"), "p": phrase("lether sofa")}},
    ).get_json()
    assert answer["hits"]["hits"] == []
    assert options(answer["suggest"]["c"][0]) == ["Leather armchair", "Leather sofa"]
    assert options(answer["suggest"]["t"][0]) == ["sofa"]
    assert options(answer["suggest"]["p"][0])[0] == "leather sofa"


def test_a_term_suggester_in_an_msearch_item_is_answered_in_its_response(client):
    lines = ['{"index": "products"}', json.dumps({"size": 0, "suggest": {"t": term("sofz")}}), ""]
    response = client.post("/_msearch", data="\n".join(lines), content_type="application/x-ndjson")
    assert options(response.get_json()["responses"][0]["suggest"]["t"][0]) == ["sofa"]


@pytest.mark.parametrize(
    ("suggester", "field", "status"),
    [
        (term("sofz", colour="red"), "suggest.s.term.colour", 400),
        ({"text": "sofz", "term": {"field": "title"}, "size": 3}, "suggest.s.size", 400),
        ({"term": {"field": "title"}}, "suggest.s.text", 400),
        ({"text": "sofz", "term": {}}, "suggest.s.term.field", 400),
        (term("sofz", max_edits=3), "suggest.s.term.max_edits", 400),
        (term("sofz", size=21), "suggest.s.term.size", 400),
        (term("sofz", shard_size="many"), "suggest.s.term.shard_size", 400),
        (term("sofz", suggest_mode="sometimes"), "suggest.s.term.suggest_mode", 400),
        (term("sofz", sort="price"), "suggest.s.term.sort", 400),
        (phrase("sofz", max_errors=0), "suggest.s.phrase.max_errors", 400),
        (phrase("sofz", confidence=-1), "suggest.s.phrase.confidence", 400),
        (phrase("sofz", token_limit=17), "suggest.s.phrase.token_limit", 400),
        (phrase("sofz", highlight={"pre_tag": "<b>"}), "suggest.s.phrase.highlight", 400),
        (phrase("sofz", direct_generator=[{"field": "title", "colour": 1}]), "direct_generator[0].colour", 400),
        (phrase("sofz", smoothing={"laplace": {"alpha": "x"}}), "suggest.s.phrase.smoothing.laplace.alpha", 400),
        ({"text": "sofz", "term": {"field": "sku"}}, "suggest.s.term.field", 501),
        ({"text": "sofz", "term": {"field": "price"}}, "suggest.s.term.field", 501),
        (term("sofz", string_distance="jaro_winkler"), "suggest.s.term.string_distance", 501),
        (term("sofz", analyzer="french"), "suggest.s.term.analyzer", 501),
        (phrase("sofz", collate={"query": {"source": {"match": {"title": "{{suggestion}}"}}}}), "collate", 501),
        (phrase("sofz", direct_generator=[{"field": "title", "pre_filter": "reverse"}]), "pre_filter", 501),
    ],
    ids=[
        "unknown_option",
        "unknown_suggester_key",
        "no_text",
        "no_field",
        "max_edits_3",
        "size_past_max",
        "shard_size_not_a_number",
        "bad_suggest_mode",
        "bad_sort",
        "max_errors_zero",
        "negative_confidence",
        "token_limit_past_max",
        "pre_tag_alone",
        "unknown_generator_option",
        "laplace_alpha_not_a_number",
        "unknown_field",
        "numeric_field",
        "other_string_distance",
        "other_analyzer",
        "collate",
        "pre_filter",
    ],
)
def test_a_suggester_it_cannot_answer_is_refused_naming_the_part(client, suggester, field, status):
    response = client.post("/products/_search", json={"suggest": {"s": suggester}})
    assert response.status_code == status, response.get_json()
    assert field in json.dumps(response.get_json())


def exhaustive(choices: list[list[Choice]], most_errors: int, keep: int) -> list[tuple[float, tuple[int, ...]]]:
    """Every phrase with at most ``most_errors`` words replaced, best first: Elasticsearch's walk."""
    paths = [
        (sum(choices[i][j].log for i, j in enumerate(path)), path)
        for path in itertools.product(*(range(len(options)) for options in choices))
        if sum(j > 0 for j in path) <= most_errors
    ]
    return sorted(paths, key=lambda found: (-found[0], found[1]))[:keep]


@pytest.mark.parametrize("seed", range(20))
def test_the_best_phrases_are_those_trying_every_phrase_finds(seed):
    rng = random.Random(seed)
    choices = [
        [Choice(None if j == 0 else f"w{i}{j}", math.log10(rng.random())) for j in range(rng.randint(1, 4))]
        for i in range(rng.randint(1, 5))
    ]
    most_errors, keep = rng.randint(1, 3), rng.randint(1, 6)
    found = best_phrases(choices, most_errors, keep)
    assert [round(log, 9) for log, _ in found] == [round(log, 9) for log, _ in exhaustive(choices, most_errors, keep)]
