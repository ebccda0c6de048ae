"""A front end's body with its text decomposed (NFD: "u" then a combining diaeresis, as text pasted from a macOS
file name is) finds what the composed text finds, on both backends: the products are held composed, and so is the
body read (serving/composed_text.py)."""

from __future__ import annotations

import unicodedata

import pytest
from compat_suite import embedded_app, opensearch_app

from search_rerank.core.product import Product


def decomposed(text: str) -> str:
    return unicodedata.normalize("NFD", text)


DECOMPOSED_ID = decomposed("bäcker-1")
CATALOG = [
    Product(id="fridge", title="Müller Kühlschrank", brand="Müller", category="Küche", price=10),
    Product(id="plain", title="Muller Kuhl Schrank", brand="Muller", category="Kuche", price=20),
    Product(id="lamp", title="Lampe", brand="Zeta", category="Licht", price=30, extra={"maker": decomposed("Bäcker")}),
    Product(id=DECOMPOSED_ID, title="Brotkorb", brand="Zeta", category="Küche", price=40),
]


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    app, pipeline = embedded_app(tmp_path_factory.mktemp("nfd-embedded"), catalog=CATALOG, aliases={})
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def opensearch(tmp_path_factory, osmem_server_url):
    with opensearch_app(
        tmp_path_factory.mktemp("nfd-opensearch"), osmem_server_url, catalog=CATALOG, aliases={}
    ) as app:
        yield app.test_client()


@pytest.fixture(params=["embedded", "opensearch"])
def client(request):
    return request.getfixturevalue(request.param)


def found(client, body) -> list[str]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return [hit["_id"] for hit in response.get_json()["hits"]["hits"]]


@pytest.mark.parametrize(
    "query",
    [
        {"match": {"title": decomposed("kühlschrank")}},
        {"multi_match": {"query": decomposed("kühlschrank"), "fields": ["title", "brand"]}},
        {"query_string": {"query": decomposed("kühlschrank")}},
        {"match_phrase_prefix": {"title": decomposed("kühlsch")}},
    ],
    ids=["match", "multi_match", "query_string", "match_phrase_prefix"],
)
def test_a_full_text_query_written_decomposed_finds_the_product_written_composed(client, query):
    assert found(client, {"query": query})[0] == "fridge"


def test_a_term_filter_written_decomposed_matches_the_value_written_composed(client):
    body = {"query": {"match_all": {}}, "post_filter": {"term": {"category.keyword": decomposed("Küche")}}}
    assert sorted(found(client, body)) == sorted(["fridge", DECOMPOSED_ID])


def test_a_count_of_a_query_written_decomposed_counts_the_products_written_composed(client):
    response = client.post("/products/_count", json={"query": {"match": {"title": decomposed("kühlschrank")}}})
    assert response.get_json()["count"] == 1


def test_an_aggregation_is_answered_under_its_name_with_its_meta_as_the_client_sent_them(client):
    name, meta = decomposed("Märkte"), {"label": decomposed("Müller")}
    body = {"size": 0, "aggs": {name: {"terms": {"field": "brand.keyword"}, "meta": meta}}}
    answer = client.post("/products/_search", json=body).get_json()
    assert answer["aggregations"][name]["meta"] == meta


@pytest.mark.parametrize(
    "query",
    [
        {"ids": {"values": [DECOMPOSED_ID]}},
        {"term": {"_id": DECOMPOSED_ID}},
        {"terms": {"_id": [DECOMPOSED_ID]}},
        {"pinned": {"ids": [DECOMPOSED_ID], "organic": {"match": {"title": "lampe"}}}},
    ],
    ids=["ids", "term", "terms", "pinned"],
)
def test_a_product_id_is_matched_as_the_shop_wrote_it_decomposed_or_not(client, query):
    """An id is the shop's key, never composed: a hit's `_id` sent back finds the product."""
    assert found(client, {"query": query})[0] == DECOMPOSED_ID


def test_a_catalogues_own_value_written_decomposed_is_filtered_and_counted_as_the_composed_one(client):
    for value in ("Bäcker", decomposed("Bäcker")):
        assert found(client, {"query": {"term": {"maker": value}}}) == ["lamp"]
    body = {"size": 0, "aggs": {"makers": {"terms": {"field": "maker"}}}}
    answer = client.post("/products/_search", json=body).get_json()
    assert [bucket["key"] for bucket in answer["aggregations"]["makers"]["buckets"]] == ["Bäcker"]
