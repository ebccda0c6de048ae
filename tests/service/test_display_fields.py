"""The catalog's fields the product does not read (an image, a page's URL, a stock flag; ``Product.extra``) are
answered in hits' ``_source`` as the catalog gave them, as Elasticsearch answers a document's, on both backends and
on ``/search``; ``_source`` filtering picks them like any field. They are never searched for words; filters on them
are tests/service/test_catalog_fields_search.py's."""

from __future__ import annotations

from typing import Any

import pytest

from search_rerank.core.product import Product

SHOWN = {"image_url": "https://shop.example/img/oak-table.jpg", "in_stock": True, "url": "/p/oak-table"}
CATALOG = [
    Product(id="p1", title="Oak table", brand="Bolt", price=249.0, extra=SHOWN),
    Product(id="p2", title="Oak chair", brand="Acme", price=120.0),
]


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def hits(client, body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return {hit["_id"]: hit["_source"] for hit in response.get_json()["hits"]["hits"]}


def test_a_hits_source_carries_the_catalogs_other_fields_as_given(client):
    source = hits(client, {"query": {"match": {"title": "oak"}}})["p1"]
    assert {key: source[key] for key in SHOWN} == SHOWN
    assert source["title"] == "Oak table" and "extra" not in source


def test_source_filtering_picks_an_other_field_like_any_field(client):
    found = hits(client, {"query": {"match": {"title": "oak"}}, "_source": ["title", "image_*"]})
    assert found["p1"] == {"title": "Oak table", "image_url": SHOWN["image_url"]}
    assert found["p2"] == {"title": "Oak chair"}


def test_a_filter_on_an_other_field_matches_by_the_type_its_values_read(client):
    # in_stock holds true: a boolean, filtered as one (tests/service/test_catalog_fields_search.py has the rest)
    response = client.post("/products/_search", json={"query": {"term": {"in_stock": True}}})
    assert response.status_code == 200
    assert [hit["_id"] for hit in response.get_json()["hits"]["hits"]] == ["p1"]


def test_a_clause_on_a_field_no_product_holds_is_a_501_naming_it(client):
    # A misspelt field would otherwise silently match nothing.
    response = client.post("/products/_search", json={"query": {"term": {"in_stok": True}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "query.term.in_stok"


def test_search_answers_the_other_fields_in_each_hits_product(client):
    answer = client.post("/search", json={"query": "oak table"}).get_json()
    products = {hit["product"]["id"]: hit["product"] for hit in answer["hits"]}
    assert {key: products["p1"][key] for key in SHOWN} == SHOWN


def test_a_cluster_backends_hits_carry_them_too(make_cluster_app):
    client = make_cluster_app("opensearch", catalog=CATALOG).test_client()
    source = hits(client, {"query": {"match": {"title": "oak"}}})["p1"]
    assert {key: source[key] for key in SHOWN} == SHOWN
