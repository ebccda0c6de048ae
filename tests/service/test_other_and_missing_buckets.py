"""A ``filters`` aggregation's ``other_bucket`` (``other_bucket_key``) and the ``missing`` aggregation on the
embedded backend, as Elasticsearch answers them: the products no filter matches, last, under ``_other_`` or the
key asked; the products without a value in a field, with their own sub-aggregations."""

from __future__ import annotations

import pytest

from search_rerank.core.product import Product

CATALOG = [
    Product(id="acme-sofa", title="Grey corner sofa", brand="Acme", price=500.0),
    Product(id="acme-lamp", title="Desk lamp", brand="Acme"),
    Product(id="bolt-table", title="Oak table", brand="Bolt", price=200.0),
    Product(id="plain-lamp", title="Floor lamp", price=60.0),
]
ACME, BOLT = {"term": {"brand.keyword": "Acme"}}, {"term": {"brand.keyword": "Bolt"}}


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def aggregations(client, aggs, params=""):
    response = client.post(f"/products/_search{params}", json={"size": 0, "aggs": aggs})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["aggregations"]


def counts(buckets):
    if isinstance(buckets, dict):
        return {key: bucket["doc_count"] for key, bucket in buckets.items()}
    return [(bucket.get("key"), bucket["doc_count"]) for bucket in buckets]


def test_the_other_bucket_of_named_filters_holds_the_products_no_filter_matches_last(client):
    aggs = {"f": {"filters": {"filters": {"bolt": BOLT, "acme": ACME}, "other_bucket": True}}}
    buckets = aggregations(client, aggs)["f"]["buckets"]
    assert list(buckets) == ["acme", "bolt", "_other_"]
    assert counts(buckets) == {"acme": 2, "bolt": 1, "_other_": 1}


def test_an_other_bucket_key_names_the_other_bucket_and_asks_for_it(client):
    aggs = {"f": {"filters": {"filters": {"acme": ACME}, "other_bucket_key": "rest"}}}
    assert counts(aggregations(client, aggs)["f"]["buckets"]) == {"acme": 2, "rest": 2}


def test_the_other_bucket_of_a_list_of_filters_is_its_last_bucket(client):
    aggs = {"f": {"filters": {"filters": [ACME], "other_bucket": True}}}
    assert counts(aggregations(client, aggs)["f"]["buckets"]) == [(None, 2), (None, 2)]


def test_the_other_bucket_of_unkeyed_named_filters_is_keyed_in_its_bucket(client):
    aggs = {"f": {"filters": {"filters": {"acme": ACME}, "other_bucket": True, "keyed": False}}}
    assert counts(aggregations(client, aggs)["f"]["buckets"]) == [("acme", 2), ("_other_", 2)]


def test_the_other_bucket_has_its_own_sub_aggregations(client):
    aggs = {
        "f": {"filters": {"filters": {"acme": ACME}, "other_bucket": True}, "aggs": {"p": {"max": {"field": "price"}}}}
    }
    assert aggregations(client, aggs)["f"]["buckets"]["_other_"]["p"]["value"] == 200.0


def test_the_missing_aggregation_counts_the_products_without_a_value(client):
    aggs = {"m": {"missing": {"field": "price"}}, "b": {"missing": {"field": "brand.keyword"}}}
    answer = aggregations(client, aggs)
    assert (answer["m"]["doc_count"], answer["b"]["doc_count"]) == (1, 1)


def test_the_missing_aggregation_has_its_own_sub_aggregations_and_its_type(client):
    aggs = {"m": {"missing": {"field": "price"}, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}}
    answer = aggregations(client, aggs, "?typed_keys=true")["missing#m"]
    assert counts(answer["sterms#brands"]["buckets"]) == [("Acme", 1)]


def test_a_missing_aggregation_of_an_unknown_option_is_a_400_naming_it(client):
    response = client.post(
        "/products/_search", json={"size": 0, "aggs": {"m": {"missing": {"field": "price", "x": 1}}}}
    )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs.m.missing.x"
