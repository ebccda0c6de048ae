"""Aggregations delegated to the cluster whose parts name fields or queries elsewhere than in ``field`` (found by a
probe against osmem-server): each is the front end's names on the index's, as a ``filter`` aggregation's query is,
or a 501 naming it; never an answer counted on names the index does not hold, nor a model run on the cluster."""

from __future__ import annotations

import pytest
from service.conftest import CLUSTER_CATALOG

ACME = {"term": {"brand.keyword": "Acme"}}  # a front end's name: the index holds the brand as filter.brand


@pytest.fixture
def cluster_client(make_cluster_app):
    return make_cluster_app("opensearch", field_aliases={"cost": "price"}).test_client()


def aggregations(client, aggs):
    response = client.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["aggregations"]


def test_an_adjacency_matrix_counts_a_filter_on_a_front_end_name_as_a_filter_aggregation_does(cluster_client):
    answer = aggregations(
        cluster_client, {"m": {"adjacency_matrix": {"filters": {"acme": ACME}}}, "f": {"filter": ACME}}
    )
    assert {b["key"]: b["doc_count"] for b in answer["m"]["buckets"]} == {"acme": answer["f"]["doc_count"]}


def test_a_significant_terms_background_filter_on_a_front_end_name_is_the_set_the_cluster_counts(cluster_client):
    answer = aggregations(
        cluster_client,
        {"s": {"significant_terms": {"field": "brand.keyword", "background_filter": ACME}}, "f": {"filter": ACME}},
    )
    assert answer["s"]["bg_count"] == answer["f"]["doc_count"] == 3


def test_a_weighted_average_of_aliased_fields_is_the_average_of_the_index_fields(cluster_client):
    answer = aggregations(
        cluster_client, {"w": {"weighted_avg": {"value": {"field": "cost"}, "weight": {"field": "sales"}}}}
    )
    priced = [p for p in CLUSTER_CATALOG if p.price is not None]
    expected = sum(p.price * p.sales for p in priced) / sum(p.sales for p in priced)
    assert answer["w"]["value"] == pytest.approx(expected)


@pytest.mark.parametrize(
    "aggregation",
    [
        {"t_test": {"a": {"field": "cost"}, "b": {"field": "price"}, "type": "paired"}},
        {"geo_line": {"point": {"field": "location"}, "sort": {"field": "cost"}}},
        {"frequent_item_sets": {"fields": [{"field": "brand.keyword"}, {"field": "attributes.color"}]}},
    ],
    ids=lambda aggregation: next(iter(aggregation)),
)
def test_an_aggregation_naming_fields_inside_its_parts_is_a_501_naming_it(cluster_client, aggregation):
    response = cluster_client.post("/products/_search", json={"size": 0, "aggs": {"x": aggregation}})
    kind = next(iter(aggregation))
    assert (response.status_code, response.get_json()["error"]["unsupported"]) == (501, f"aggs.x.{kind}")


def test_an_inference_aggregation_is_refused_before_the_cluster_as_it_would_run_a_model(cluster_client):
    model = {"inference": {"model_id": "any-model", "buckets_path": {"n": "_count"}}}
    response = cluster_client.post(
        "/products/_search",
        json={"size": 0, "aggs": {"b": {"terms": {"field": "brand.keyword"}, "aggs": {"model": model}}}},
    )
    error = response.get_json()["error"]
    assert (response.status_code, error["unsupported"]) == (501, "aggs.b.aggs.model.inference")
    assert "model" in error["reason"]
