"""Options of the query string queries on both backends, each a 501 on the embedded one before:
``simple_query_string``'s ``flags`` (``"OR|AND|PREFIX"``, ``"NONE"``, a number of bits), where an operator they
leave off is text, as Elasticsearch reads it (serving/query_string.py, ``flags_of``); and ``query_string``'s
``minimum_should_match``, applied as Elasticsearch applies it to the parsed text's top clause."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, filtered

from search_rerank.core.product import Product

CATALOG = [
    Product(id="p1", title="Grey sofa", price=499.0),
    Product(id="p2", title="Red sofa", price=350.0),
    Product(id="p3", title="Grey lamp", price=39.0),
    Product(id="p4", title="Sofa table", price=120.0),
    Product(id="p5", title="Oak desk", price=210.0),
    Product(id="p6", title="Walnut chair", description="a grey cushion", price=90.0),
]


embedded, client = backend_fixtures(CATALOG)


def sqs(query: str, **options) -> dict:
    return {"simple_query_string": {"query": query, "fields": ["title"], "default_operator": "and", **options}}


def test_every_operator_on_a_minus_excludes_the_word(client):
    assert filtered(client, sqs("sofa -grey")) == ["p2", "p4"]


@pytest.mark.parametrize("flags", ["AND|OR|WHITESPACE", "and|or|whitespace", 4 | 128])
def test_flags_without_not_search_a_minus_word_as_a_word(client, flags):
    assert filtered(client, sqs("sofa -grey", flags=flags)) == ["p1"]


def test_flags_without_prefix_search_a_trailing_star_as_text(client):
    assert filtered(client, sqs("so*", flags="PREFIX")) == ["p1", "p2", "p4"]
    assert filtered(client, sqs("so*", flags="WHITESPACE")) == []


def test_flags_none_search_the_whole_text_as_its_words(client):
    assert filtered(client, sqs("sofa -grey", flags="NONE")) == ["p1"]


def test_an_unknown_flag_is_a_400_naming_the_flags(client):
    response = client.post("/products/_search", json={"query": sqs("sofa", flags="OR|NEARBY")})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "query.simple_query_string.flags"


def qs(query: str, minimum, fields=("title",), kind="query_string") -> dict:
    return {kind: {"query": query, "fields": list(fields), "minimum_should_match": minimum}}


@pytest.mark.parametrize("minimum", [2, "2", "67%", "-1", "100%"])
@pytest.mark.parametrize("kind", ["query_string", "simple_query_string"])
def test_minimum_should_match_of_a_query_strings_words_needs_that_many_of_them(client, minimum, kind):
    expected = ["p1", "p2"] if minimum != "100%" else []
    assert filtered(client, qs("grey red sofa", minimum, kind=kind)) == expected


def test_minimum_should_match_above_the_words_a_query_string_has_matches_nothing(client):
    assert filtered(client, qs("grey sofa", 3)) == []


def test_minimum_should_match_counts_a_query_strings_optional_top_clauses(client):
    assert filtered(client, qs("(grey OR red) sofa -lamp", 1)) == ["p1", "p2", "p4"]
    assert filtered(client, qs("(grey OR red) sofa -lamp", 2)) == ["p1", "p2"]


def test_minimum_should_match_of_a_query_strings_words_on_several_fields_needs_them_in_one_field(embedded):
    """Elasticsearch's documented reading: each field's words are counted apart, as a multi_match's are."""
    assert filtered(embedded, qs("grey chair", 2, ["title", "description"])) == []
    assert filtered(embedded, qs("grey cushion", 2, ["title", "description"])) == ["p6"]


def test_minimum_should_match_of_a_simple_query_strings_words_counts_each_word_in_any_field(embedded):
    """Lucene's simple parser makes each word one clause over every field, so the words may be in different ones."""
    found = qs("grey chair", 2, ["title", "description"], kind="simple_query_string")
    assert filtered(embedded, found) == ["p6"]
