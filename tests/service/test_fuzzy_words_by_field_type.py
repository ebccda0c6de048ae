"""A fuzzy word (a ``fuzzy`` query, a ``match`` with ``fuzziness``, a query_string ``word~N``) is matched by what
its field holds, as Elasticsearch matches it: within its edits on a text field or a keyword, and refused on a
number, a date or a flag ("Can only use fuzzy queries on keyword and text fields"), a 400, which a ``lenient``
query_string turns into no match there. On both backends."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, filtered, ids, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="leather", title="Leather sofa", brand="Kobalt", price=5.0),
    Product(id="corner", title="Corner sofa", brand="Kobald", price=6.0),
    Product(id="table", title="Oak table", brand="Bolt", price=15.0),
]


embedded, client = backend_fixtures(CATALOG)


@pytest.mark.parametrize(
    "clause",
    [
        {"query_string": {"query": "price:5~1"}},
        {"match": {"price": {"query": 5, "fuzziness": 1}}},
        {"fuzzy": {"price": {"value": 5}}},
    ],
)
def test_a_fuzzy_word_on_a_number_field_is_a_400(client, clause):
    response = client.post("/products/_search", json={"query": clause})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["root_cause"][0]["field"].startswith("query")


def test_a_lenient_query_string_leaves_a_number_field_out_of_a_fuzzy_word(client):
    assert filtered(client, {"query_string": {"query": "price:5~1", "lenient": True}}) == []


def test_a_fuzzy_query_finds_the_words_within_its_edits(client):
    assert filtered(client, {"fuzzy": {"title": "sofw"}}) == ["corner", "leather"]
    assert filtered(client, {"fuzzy": {"title": {"value": "sofw", "fuzziness": 0}}}) == []


def test_a_fuzzy_query_on_a_keyword_finds_the_values_within_its_edits(client):
    assert filtered(client, {"fuzzy": {"brand.keyword": {"value": "Kobald", "fuzziness": 1}}}) == ["corner", "leather"]


def test_a_fuzzy_querys_unknown_option_is_a_400_naming_it(embedded):
    response = embedded.post(
        "/products/_search", json={"query": {"fuzzy": {"title": {"value": "sofw", "fuzzyness": 1}}}}
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["root_cause"][0]["field"] == "query.fuzzy.title.fuzzyness"


def test_a_query_string_word_with_a_tilde_on_a_keyword_finds_its_values_within_the_edits(embedded):
    assert filtered(embedded, {"query_string": {"query": "brand.keyword:Kobald~1"}}) == ["corner", "leather"]
    assert filtered(embedded, {"query_string": {"query": "brand.keyword:Kobald"}}) == ["corner"]


def test_a_scored_fuzzy_query_ranks_the_products_it_matches(client):
    assert sorted(ids(search(client, {"query": {"fuzzy": {"title": "sofw"}}}))) == ["corner", "leather"]
