"""``top_hits`` under a ``terms`` or ``composite`` bucket on the embedded backend: each value's best matches, as
Elasticsearch answers them. ReactiveSearch's ReactiveList with ``aggregationField`` sends a composite of one terms
source with ``top_hits: {size: 1}`` under it (reactivecore's getCompositeAggsQuery), a shop's facet its example
product per value with a terms."""

from __future__ import annotations

import pytest

from search_rerank.core.product import Product
from search_rerank.serving import embedded_search

CATALOG = [
    Product(id="acme-sofa", title="Grey corner sofa", brand="Acme", price=500.0),
    Product(id="acme-table", title="Oak table", brand="Acme", price=200.0),
    Product(id="acme-chair", title="Sofa chair with a sofa cushion", brand="Acme", price=90.0),
    Product(id="bolt-lamp", title="Desk lamp", brand="Bolt", price=40.0),
    Product(id="nobrand", title="Floor lamp", price=60.0),
]
BRANDS = {"acme-sofa": "Acme", "acme-table": "Acme", "acme-chair": "Acme", "bolt-lamp": "Bolt"}


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def aggregations(client, aggs, query=None, params=""):
    body = {"size": 0, "aggs": aggs, **({"query": query} if query else {})}
    response = client.post(f"/products/_search{params}", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["aggregations"]


def hit_ids(top):
    return [hit["_id"] for hit in top["hits"]["hits"]]


def test_each_value_of_a_terms_aggregation_holds_its_own_products_and_their_count(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}, "aggs": {"top": {"top_hits": {"size": 2}}}}}
    buckets = aggregations(client, aggs)["brands"]["buckets"]
    assert [(b["key"], b["top"]["hits"]["total"]["value"]) for b in buckets] == [("Acme", 3), ("Bolt", 1)]
    for bucket in buckets:
        ids = hit_ids(bucket["top"])
        assert len(ids) == min(2, bucket["doc_count"]) and {BRANDS[i] for i in ids} == {bucket["key"]}


def test_a_top_hit_carries_the_product_record_as_a_search_hit_does(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}, "aggs": {"top": {"top_hits": {"size": 1}}}}}
    bolt = aggregations(client, aggs)["brands"]["buckets"][1]["top"]["hits"]["hits"][0]
    assert bolt["_index"] == "products"
    assert bolt["_source"] == {"id": "bolt-lamp", "title": "Desk lamp", "brand": "Bolt", "price": 40.0}


def test_top_hits_are_the_buckets_best_matches_of_the_query_words(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}, "aggs": {"top": {"top_hits": {"size": 1}}}}}
    acme = aggregations(client, aggs, {"match": {"title": "sofa"}})["brands"]["buckets"][0]
    assert acme["top"]["hits"]["total"]["value"] == 2
    assert hit_ids(acme["top"]) == ["acme-chair"]  # "sofa" twice in a short title: the best BM25
    assert acme["top"]["hits"]["max_score"] == acme["top"]["hits"]["hits"][0]["_score"] > 0


def test_reactivelists_aggregation_field_composite_holds_each_values_top_hit(client):
    """reactivecore's getCompositeAggsQuery with showTopHits, as ReactiveList's aggregationField sends it."""
    aggs = {
        "brand.keyword": {
            "composite": {"sources": [{"brand.keyword": {"terms": {"field": "brand.keyword"}}}], "size": 10},
            "aggs": {"brand.keyword": {"top_hits": {"size": 1}}},
        }
    }
    buckets = aggregations(client, aggs)["brand.keyword"]["buckets"]
    assert [b["key"] for b in buckets] == [{"brand.keyword": "Acme"}, {"brand.keyword": "Bolt"}]
    assert BRANDS[hit_ids(buckets[0]["brand.keyword"])[0]] == "Acme"
    assert hit_ids(buckets[1]["brand.keyword"]) == ["bolt-lamp"]


def test_a_composite_missing_bucket_holds_the_products_without_the_value(client):
    source = {"b": {"terms": {"field": "brand.keyword", "missing_bucket": True}}}
    aggs = {"c": {"composite": {"sources": [source]}, "aggs": {"top": {"top_hits": {}}}}}
    buckets = aggregations(client, aggs)["c"]["buckets"]
    missing = next(b for b in buckets if b["key"] == {"b": None})
    assert hit_ids(missing["top"]) == ["nobrand"]


def test_a_top_hits_source_filter_and_from_are_applied(client):
    top = {"top_hits": {"size": 1, "from": 1, "_source": ["title"]}}
    aggs = {"brands": {"terms": {"field": "brand.keyword"}, "aggs": {"top": top}}}
    acme, bolt = aggregations(client, aggs)["brands"]["buckets"]
    assert list(acme["top"]["hits"]["hits"][0]["_source"]) == ["title"]
    assert hit_ids(bolt["top"]) == []


def test_typed_keys_name_top_hits_by_its_type(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}, "aggs": {"top": {"top_hits": {"size": 1}}}}}
    buckets = aggregations(client, aggs, params="?typed_keys=true")["sterms#brands"]["buckets"]
    assert "top_hits#top" in buckets[0]


@pytest.mark.parametrize(
    "aggs, part",
    [
        ({"t": {"top_hits": {}}}, "aggs.t.top_hits"),
        (
            {"r": {"range": {"field": "price", "ranges": [{"to": 100}]}, "aggs": {"t": {"top_hits": {}}}}},
            "aggs.r.aggs.t.top_hits",
        ),
        (
            {"b": {"terms": {"field": "brand.keyword"}, "aggs": {"t": {"top_hits": {"sort": [{"price": "asc"}]}}}}},
            "aggs.b.aggs.t.top_hits.sort",
        ),
        (
            {
                "b": {
                    "terms": {"field": "brand.keyword"},
                    "aggs": {"t": {"top_hits": {"highlight": {"fields": {"title": {}}}}}},
                }
            },
            "aggs.b.aggs.t.top_hits.highlight",
        ),
    ],
    ids=["top-level", "under-range", "field-sort", "highlight"],
)
def test_top_hits_the_embedded_backend_cannot_answer_are_a_501_naming_them(client, aggs, part):
    response = client.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == part


def test_a_top_hits_window_past_elasticsearchs_is_a_400(client):
    aggs = {"b": {"terms": {"field": "brand.keyword"}, "aggs": {"t": {"top_hits": {"size": 101}}}}}
    response = client.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs.b.aggs.t.top_hits.size"


@pytest.mark.parametrize("sort", ["_score", [{"_score": "desc"}], {"_score": {"order": "desc"}}])
def test_a_top_hits_sort_by_score_is_its_own_order(client, sort):
    aggs = {"b": {"terms": {"field": "brand.keyword"}, "aggs": {"t": {"top_hits": {"size": 1, "sort": sort}}}}}
    acme = aggregations(client, aggs, {"match": {"title": "sofa"}})["b"]["buckets"][0]
    assert hit_ids(acme["t"]) == ["acme-chair"]


def test_top_hits_in_more_buckets_than_the_service_searches_for_one_aggregation_is_a_400(client, monkeypatch):
    monkeypatch.setattr(embedded_search, "MAX_TOP_HITS_SEARCHES", 1)
    aggs = {"b": {"terms": {"field": "brand.keyword"}, "aggs": {"t": {"top_hits": {"size": 1}}}}}
    response = client.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs.b.terms"
