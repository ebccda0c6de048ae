"""Wildcard words on the embedded backend: ``prefix`` and ``wildcard`` queries and ``sof*`` in query_string and
simple_query_string match as Elasticsearch matches them (a text field's words in lower case; a brand or an
attribute in any case; an id as written), each body's patterns bounded by ``service.max_wildcard_terms``."""

from __future__ import annotations

import time

import pytest

from search_rerank.core.product import Product
from search_rerank.serving import wildcards

CATALOG = [
    Product(id="s1", title="Corner sofa", brand="Acme", category=("Furniture",), price=499.0,
            attributes={"color": ("grey",)}),
    Product(id="s2", title="Leather sofa", brand="Acme", category=("Furniture",), price=899.0,
            attributes={"color": ("brown",)}),
    Product(id="s3", title="Sofa bed", brand="Bolt", category=("Furniture",), price=700.0,
            attributes={"color": ("green",), "size": ('12" wide',)}),
    Product(id="w4", title="Softwood shelf", brand="Bolt", category=("Furniture",), price=99.0),
    Product(id="t1", title="Oak table", brand="Bolt", category=("Furniture",), price=249.5,
            attributes={"color": ("grey",)}),
    Product(id="l1", title="Desk lamp", brand="Dune", category=("Lighting",), price=39.0),
    Product(id="n1", title="Pine crate", category=("Storage",), price=19.0),
]  # fmt: skip
SOF = {"s1", "s2", "s3", "w4"}
MAX_PATTERNS = 8


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG, max_wildcard_terms=MAX_PATTERNS)


def ids(client, query: dict, **body) -> set[str]:
    response = client.post("/products/_search", json={"query": query, "size": 20, **body})
    assert response.status_code == 200, response.get_json()
    return {hit["_id"] for hit in response.get_json()["hits"]["hits"]}


def refusal(client, query: dict) -> tuple[int, dict]:
    response = client.post("/products/_search", json={"query": query})
    return response.status_code, response.get_json()["error"]


def test_a_prefix_query_matches_the_words_it_begins(client):
    assert ids(client, {"prefix": {"title": "sof"}}) == SOF


def test_a_prefix_on_a_text_field_matches_in_any_case(client):
    assert ids(client, {"prefix": {"title": {"value": "SOF", "boost": 2}}}) == SOF


def test_a_question_mark_is_one_character(client):
    assert ids(client, {"wildcard": {"title": {"value": "s?fa"}}}) == {"s1", "s2", "s3"}


def test_a_wildcard_query_takes_its_pattern_under_wildcard_too(client):
    assert ids(client, {"wildcard": {"title": {"wildcard": "*wood"}}}) == {"w4"}


def test_query_string_star_is_a_prefix_that_finds_every_match(client):
    assert ids(client, {"query_string": {"query": "sof*"}}) == SOF


def test_query_string_wildcard_goes_with_an_exclusion(client):
    assert ids(client, {"query_string": {"query": "sof* -bed"}}) == {"s1", "s2", "w4"}


def test_simple_query_string_trailing_star_is_a_prefix(client):
    assert ids(client, {"simple_query_string": {"query": "tab*", "fields": ["title"]}}) == {"t1"}


def test_a_wildcard_in_a_filter_restricts_the_hits(client):
    query = {"bool": {"must": {"match": {"title": "sofa"}}, "filter": {"query_string": {"query": "title:le*"}}}}
    assert ids(client, query) == {"s2"}


def test_a_brand_wildcard_matches_the_brand_in_any_case(client):
    assert ids(client, {"wildcard": {"brand.keyword": "ac*"}}) == {"s1", "s2"}


def test_an_attribute_prefix_matches_its_values(client):
    assert ids(client, {"prefix": {"attributes.color": "gr"}}) == {"s1", "s3", "t1"}


def test_an_id_pattern_matches_as_written_unless_case_insensitive(client):
    assert ids(client, {"wildcard": {"_id": "s?"}}) == {"s1", "s2", "s3"}
    assert ids(client, {"wildcard": {"_id": "S?"}}) == set()
    assert ids(client, {"wildcard": {"_id": {"value": "S?", "case_insensitive": True}}}) == {"s1", "s2", "s3"}


def test_a_count_counts_what_the_prefix_matches(client):
    response = client.post("/products/_count", json={"query": {"prefix": {"title": "sof"}}})
    assert response.get_json()["count"] == len(SOF)


def test_highlights_mark_the_words_a_wildcard_matches(client):
    response = client.post(
        "/products/_search",
        json={"query": {"query_string": {"query": "sof*"}}, "highlight": {"fields": {"title": {}}}},
    )
    marked = {hit["_id"]: hit["highlight"]["title"][0] for hit in response.get_json()["hits"]["hits"]}
    assert marked["s3"] == "<em>Sofa</em> bed"
    assert marked["w4"] == "<em>Softwood</em> shelf"


def test_a_prefix_on_a_number_is_unsupported_naming_the_field(client):
    status, error = refusal(client, {"prefix": {"price": "4"}})
    assert (status, error["unsupported"]) == (501, "query.prefix.price")


def test_more_patterns_than_the_limit_is_a_400_naming_the_clause(client):
    should = [{"wildcard": {"title": f"*{letter}"}} for letter in "abcdefghijk"]
    status, error = refusal(client, {"bool": {"filter": {"bool": {"should": should}}}})
    assert status == 400
    assert error["field"] == f"query.bool.filter[0].bool.should[{MAX_PATTERNS}].wildcard.title"
    assert "service.max_wildcard_terms" in error["reason"]


def test_a_pattern_counts_once_per_wildcard_against_the_limit(client):
    """An automaton's cost grows with its wildcards: 8 patterns of 48 cost seconds to build, 8 of one
    milliseconds."""
    should = [{"wildcard": {"title": f"*{letter}*"}} for letter in "abcdefghijk"]
    status, error = refusal(client, {"bool": {"filter": {"bool": {"should": should}}}})
    assert (status, error["field"]) == (400, f"query.bool.filter[0].bool.should[{MAX_PATTERNS // 2}].wildcard.title")
    assert refusal(client, {"wildcard": {"title": "?" * (MAX_PATTERNS + 1)}})[0] == 400


def test_a_pattern_long_past_its_first_wildcard_is_refused_before_its_automaton_is_built(client):
    """Each of these took a third of a second to build, and a body held 32 of them (18 s of CPU)."""
    started = time.perf_counter()
    status, error = refusal(client, {"wildcard": {"title": "*" + "x" * 300}})
    assert (status, error["field"]) == (400, "query.wildcard.title")
    assert "characters from a pattern's first wildcard" in error["reason"]
    assert time.perf_counter() - started < 0.1
    assert ids(client, {"prefix": {"_id": "s" * 300}}) == set()  # a long text before the wildcard is cheap


def test_a_question_mark_is_one_character_of_an_attribute_value_that_json_escapes(client):
    assert ids(client, {"wildcard": {"attributes.size": "12? wide"}}) == {"s3"}
    assert ids(client, {"wildcard": {"attributes.size": "12?? wide"}}) == set()


def test_a_brand_pattern_of_stars_alone_matches_the_products_with_a_brand(client):
    assert ids(client, {"wildcard": {"brand.keyword": "*"}}) == {"s1", "s2", "s3", "w4", "t1", "l1"}
    assert ids(client, {"wildcard": {"brand.keyword": ""}}) == set()


def test_a_trailing_backslash_is_itself_as_in_lucene(client):
    assert ids(client, {"wildcard": {"_id": "s1\\"}}) == set()


def test_query_string_field_star_is_an_exists_query_as_in_elasticsearch(client):
    """Not a pattern over every term: brand.keyword:* matched the products without a brand (their key "")."""
    assert ids(client, {"query_string": {"query": "brand.keyword:*"}}) == {"s1", "s2", "s3", "w4", "t1", "l1"}
    assert ids(client, {"query_string": {"query": "title:*"}}) == ids(client, {"match_all": {}})


def test_a_pattern_too_large_to_search_is_a_400_without_the_engine_error(client):
    status, error = refusal(client, {"wildcard": {"title": "?" * 300}})
    assert (status, error["field"]) == (400, "query.wildcard.title")
    assert "Error" not in error["reason"]


def test_unknown_options_of_a_prefix_query_are_a_400_naming_them(client):
    status, error = refusal(client, {"prefix": {"title": {"value": "sof", "fuzzy": 1}}})
    assert (status, error["field"]) == (400, "query.prefix.title.fuzzy")


def test_a_highlight_matches_a_pathological_pattern_in_linear_time():
    """Python's regular expressions take minutes on this (they backtrack at each star); the walk takes
    microseconds."""
    pattern = wildcards.parse("*a" * 20 + "b")
    started = time.perf_counter()
    assert not wildcards.matches(pattern, "a" * 40)
    assert time.perf_counter() - started < 5.0


def test_stars_in_a_row_are_one_star():
    assert wildcards.parse("a**b***") == ("a", wildcards.Wild.ANY, "b", wildcards.Wild.ANY)


def test_the_lucene_form_of_a_pattern_reads_back_as_the_same_pattern():
    pattern = wildcards.parse(r"a\*b*c?\\d")
    assert pattern == ("a*b", wildcards.Wild.ANY, "c", wildcards.Wild.ONE, "\\d")
    assert wildcards.parse(wildcards.lucene(pattern)) == pattern


@pytest.mark.parametrize("pattern", ["CAFÉ*", "caf?"])
def test_a_text_field_pattern_is_folded_to_ascii_as_its_words_are(catalog_client, pattern):
    # Elasticsearch normalises a wildcard word with the analyser's lowercase and asciifolding.
    client = catalog_client([Product(id="c1", title="Café table"), Product(id="t1", title="Oak table")])
    assert ids(client, {"wildcard": {"title": {"value": pattern}}}) == {"c1"}
