"""A misspelt word in a clause that decides what matches (``lexical.correct_typos``): a ``match`` or ``multi_match``
in a filter, a ``must_not`` or a word being typed reads "leathr" as the catalogue's "leather", on the embedded
backend and on a cluster alike, by the rules a model number follows there (a reading stands for the word it
corrects); so does each word of a ``query_string``. Search UI's own query on a cluster: tests/service/test_delegation.py, "misspelt words".

A fuzzy word's counts Elasticsearch refuses (a negative ``prefix_length``, no ``max_expansions``) are the body's 400
naming the option on both backends, never a cluster's own error (a 502, counted against its breaker as the cluster
failing)."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, filtered, ids, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="leather", title="Leather sofa", brand="Acme"),
    Product(id="corner", title="Corner sofa", brand="Acme"),
    Product(id="table", title="Oak table", brand="Bolt"),
    Product(id="kobalt", title="Kobalt wrench", brand="Kobalt"),
    Product(id="kobald", title="Kobald hammer", brand="Kobald"),
    Product(id="leaf", title="Leaf blower", brand="Bolt"),
    Product(id="saw", title="DW745-B jobsite saw", brand="DeWalt"),
]


REFUSED = [
    ({"match": {"title": {"query": "sofa", "fuzziness": 1, "prefix_length": -1}}}, "query.match.title.prefix_length"),
    ({"match": {"title": {"query": "sofa", "fuzziness": 1, "max_expansions": 0}}}, "query.match.title.max_expansions"),
    (
        {"match_phrase_prefix": {"title": {"query": "so", "max_expansions": -3}}},
        "query.match_phrase_prefix.title.max_expansions",
    ),
    ({"fuzzy": {"title": {"value": "sofa", "prefix_length": "-2"}}}, "query.fuzzy.title.prefix_length"),
    (
        {"multi_match": {"query": "sofa", "fields": ["title"], "fuzziness": "AUTO", "prefix_length": -1}},
        "query.multi_match.prefix_length",
    ),
    ({"query_string": {"query": "sofa~1", "fuzzy_prefix_length": -1}}, "query.query_string.fuzzy_prefix_length"),
    (
        {"simple_query_string": {"query": "sofa~1", "fuzzy_max_expansions": 0}},
        "query.simple_query_string.fuzzy_max_expansions",
    ),
    (
        {"bool": {"filter": [{"match": {"title": {"query": "sofa", "fuzziness": 1, "prefix_length": 1.5}}}]}},
        "query.bool.filter[0].match.title.prefix_length",
    ),
]


embedded, client = backend_fixtures(CATALOG)


def test_a_misspelt_word_in_a_filter_finds_the_products_with_the_word_spelt_right(client):
    assert filtered(client, {"match": {"title": "leathr"}}) == ["leather"]


def test_a_misspelt_word_in_must_not_leaves_out_the_products_with_the_word_spelt_right(client):
    query = {"bool": {"filter": [{"match": {"title": "sofa"}}], "must_not": [{"match": {"title": "leathr"}}]}}
    assert ids(search(client, {"query": query})) == ["corner"]


def test_with_operator_and_a_reading_stands_for_its_word_and_the_other_words_are_still_needed(client):
    def every_word(text):
        return {"multi_match": {"query": text, "fields": ["title", "description"], "operator": "and"}}

    assert filtered(client, every_word("leathr sofa")) == ["leather"]
    assert filtered(client, every_word("leathr table")) == []


def test_a_phrase_takes_a_reading_only_when_the_phrase_is_the_one_misspelt_word(client):
    assert filtered(client, {"match_phrase": {"title": "leathr"}}) == ["leather"]
    assert filtered(client, {"match_phrase": {"title": "leathr sofa"}}) == []


def test_a_word_the_catalogue_holds_is_no_misspelt_one(client):
    # "kobalt" is no English word and one edit from "kobald", but a product holds it: it matches as typed.
    assert filtered(client, {"match": {"title": "kobalt"}}) == ["kobalt"]


def test_a_query_that_says_its_own_fuzziness_is_left_to_it(client):
    # Searchkit sends a fuzziness with every search: its typo tolerance, not the service's, decides.
    assert filtered(client, {"match": {"title": {"query": "leathr", "fuzziness": 0}}}) == []


def test_a_phrase_of_two_misspelt_words_takes_no_reading(client):
    # Their readings could not be asked in order: "leathr sofw" would match a sofa of leather anywhere in a title.
    assert filtered(client, {"match_phrase": {"title": "sofw leathr"}}) == []


def test_a_word_being_typed_that_starts_a_catalogue_word_is_no_misspelt_one(client):
    # "leat" is "leather" typed so far, not a typo of "leaf": Elasticsearch reads the last word of a prefix query
    # as a prefix, never fuzzily.
    assert filtered(client, {"match_bool_prefix": {"title": "leat"}}) == ["leather"]
    assert filtered(client, {"match_phrase_prefix": {"title": "leat"}}) == ["leather"]
    assert filtered(client, {"multi_match": {"query": "leat", "type": "bool_prefix", "fields": ["title"]}}) == [
        "leather"
    ]


def test_a_word_being_typed_that_starts_no_catalogue_word_takes_its_reading(client):
    assert filtered(client, {"match_bool_prefix": {"title": "leathr"}}) == ["leather"]


def test_a_minimum_should_match_of_one_word_lets_a_reading_stand_for_its_word_alone(client):
    # Of two words, "-1" and "50%" need one: "leathr table" finds what "leather table" finds.
    for needed in ("-1", "50%"):
        query = {"match": {"title": {"query": "leathr table", "minimum_should_match": needed}}}
        assert filtered(client, query) == ["leather", "table"]


def test_with_operator_and_in_best_fields_a_reading_and_the_other_words_are_needed_in_one_field(client):
    # "leather acme" finds nothing there: no one field holds both (the title "leather", the brand "acme"); across
    # the fields (cross_fields) it finds the leather sofa.
    def every_word(text, **kind):
        return {"multi_match": {"query": text, "fields": ["title", "brand"], "operator": "and", **kind}}

    assert filtered(client, every_word("leather acme")) == filtered(client, every_word("leathr acme")) == []
    assert filtered(client, every_word("leathr acme", type="cross_fields")) == ["leather"]


def string_query(text, kind="query_string", **options):
    return {kind: {"query": text, "fields": ["title"], **options}}


def test_a_misspelt_word_of_a_query_string_finds_the_products_with_the_word_spelt_right(client):
    assert filtered(client, string_query("leathr AND sofa")) == ["leather"]
    assert filtered(client, string_query("leathr sofa", default_operator="and")) == ["leather"]
    assert filtered(client, string_query("title:leathr")) == ["leather"]
    assert filtered(client, string_query("leathr + sofa", "simple_query_string")) == ["leather"]


def test_a_prohibited_misspelt_word_of_a_query_string_leaves_out_the_products_with_the_word_spelt_right(client):
    assert filtered(client, string_query("sofa -leathr")) == ["corner"]


def test_a_query_string_phrase_takes_a_reading_only_when_it_is_the_one_misspelt_word(client):
    assert filtered(client, string_query('"leathr"')) == ["leather"]
    assert filtered(client, string_query('"leathr sofa"')) == []


def test_a_query_string_word_with_its_own_tilde_is_matched_by_it_alone(client):
    assert filtered(client, string_query("leathr~0")) == []
    assert filtered(client, string_query("leathr~1")) == ["leather"]


def test_a_model_number_in_a_query_string_finds_the_product_written_with_separators(client):
    assert filtered(client, string_query("dw745b")) == ["saw"]
    assert filtered(client, string_query("dw745b AND saw")) == ["saw"]
    assert filtered(client, string_query("dw745b AND sofa")) == []


def test_a_query_string_of_a_misspelt_word_ranks_the_products_with_the_word_spelt_right(client):
    body = {"query": string_query("leathr sofa", default_operator="and")}
    assert ids(search(client, body)) == ["leather"]


def test_a_body_reads_the_misspelt_words_of_its_first_texts_and_matches_the_rest_as_typed(client):
    # Each reading costs a look through the index's terms (embedded) or a question before the search (a cluster):
    # a filter of a thousand misspelt words must not cost a thousand. (What a cluster said of a word is remembered
    # and read again without a question: "leathr" is first asked about last.)
    fillers = [" ".join(f"blorf{i}{c}" for c in "abcdefghijklmnop") for i in "vwxyz"]

    def either(texts):
        return {"bool": {"should": [{"match": {"title": text}} for text in texts]}}

    assert filtered(client, either([*fillers, "leathr"])) == []
    assert filtered(client, either(["leathr", *fillers])) == ["leather"]


def test_every_misspelt_word_of_a_query_string_is_read_however_many_it_holds(client):
    # A cluster is asked about them all at once, more than the texts a body may ask about apart.
    text = "leathr OR cornr OR wrenh OR hammr OR blowr OR jobsit OR tabel"
    assert filtered(client, string_query(text)) == ["corner", "kobald", "kobalt", "leaf", "leather", "saw", "table"]


@pytest.mark.parametrize(
    "text, found",
    [("leathr sofa", ["leather"]), ("leathr AND sofa~1", ["leather"]), ("sofa AND price:abc", [])],
)
def test_a_lenient_query_string_leaves_a_number_field_out_of_a_word_that_is_no_number(client, text, found):
    # As Lucene's parser does (it is a 400 without lenient): the text fields still match.
    query = string_query(text, fields=["title", "price"], lenient=True, default_operator="and")
    assert filtered(client, query) == found


def test_under_default_operator_and_every_word_of_a_query_string_term_is_needed_beside_a_misspelt_one(client):
    # "corner-sofa" is one term of two words, each needed under AND as Lucene's parser reads it: no product is both
    # a leather and a corner sofa.
    assert filtered(client, string_query("leathr corner-sofa", default_operator="and")) == []
    assert filtered(client, string_query("leathr leather-sofa", default_operator="and")) == ["leather"]


def test_a_lenient_multi_match_leaves_a_number_field_out_of_a_word_that_is_no_number(client):
    clause = {"multi_match": {"query": "leathr sofa", "fields": ["title", "price"], "lenient": True, "operator": "and"}}
    assert filtered(client, clause) == ["leather"]


def test_a_lenient_match_of_a_word_on_a_number_field_matches_nothing(client):
    assert filtered(client, {"match": {"price": {"query": "leather", "lenient": True}}}) == []


@pytest.mark.parametrize(("query", "field"), REFUSED, ids=[field for _, field in REFUSED])
def test_a_fuzzy_count_elasticsearch_refuses_is_a_400_naming_it(client, query, field):
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 400, response.get_json()
    assert field in response.get_data(as_text=True)


def test_fuzzy_counts_it_can_hold_search_as_before(client):
    query = {"match": {"title": {"query": "sofaa", "fuzziness": 1, "prefix_length": "0", "max_expansions": 10}}}
    assert filtered(client, query) == ["corner", "leather"]
