"""Orders as Elasticsearch answers them: a direction in any case (``"DESC"``, ``"Asc"``; serving/directions.py), a
direction that is neither word a 400 naming it; the embedded index's bucket orders (a histogram's ``order``, a
terms aggregation's list of keys); and an answer's objects in Elasticsearch's order, not sorted by their keys."""

from __future__ import annotations

import json
from typing import Any

import pytest

from search_rerank.core.product import Product
from search_rerank.serving.body_checks import InvalidQuery
from search_rerank.serving.directions import with_directions

CATALOG = [
    Product(id="p1", title="Oak table", brand="Bolt", category=("Furniture",), price=249.0, sales=5),
    Product(id="p2", title="Oak sofa", brand="Acme", category=("Furniture",), price=499.0, sales=9),
    Product(id="p3", title="Oak chair", brand="Acme", category=("Furniture",), price=320.0, sales=1),
    Product(id="p4", title="Pine bench", brand="Cosy", category=("Garden",), price=120.0, sales=3),
    Product(id="p5", title="Pine shelf", brand="Cosy", category=("Garden",), price=135.0, sales=2),
    Product(id="p6", title="Oak lamp", brand="Dune", category=("Lighting",), price=39.0, sales=7),
]  # fmt: skip


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def answer(client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(found: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in found["hits"]["hits"]]


def keys(aggregation: dict[str, Any]) -> list[Any]:
    return [bucket["key"] for bucket in aggregation["buckets"]]


# ------------------------------------------------------------------ the rewrite


def test_a_sorts_directions_are_written_lower_case_in_each_form():
    body = {"sort": ["title.keyword", {"price": "DESC"}, {"rating": {"order": "Asc", "missing": "_last"}}]}
    assert with_directions(body)["sort"] == [
        "title.keyword",
        {"price": "desc"},
        {"rating": {"order": "asc", "missing": "_last"}},
    ]


def test_a_single_sort_object_is_rewritten_too():
    assert with_directions({"sort": {"price": "ASC"}})["sort"] == {"price": "asc"}


def test_a_sort_object_naming_several_fields_is_one_sort_per_field_in_its_order():
    body = {"sort": [{"brand.keyword": "ASC", "price": {"order": "DESC"}}, "_score"]}
    assert with_directions(body)["sort"] == [{"brand.keyword": "asc"}, {"price": {"order": "desc"}}, "_score"]
    assert with_directions({"sort": {"brand.keyword": "asc", "price": "desc"}})["sort"] == [
        {"brand.keyword": "asc"},
        {"price": "desc"},
    ]


def test_a_standard_retrievers_sort_is_rewritten_inside_an_rrf_and_a_linear_retriever():
    standard = {"standard": {"query": {"match_all": {}}, "sort": [{"price": "DESC"}]}}
    body = {"retriever": {"rrf": {"retrievers": [standard, {"linear": {"retrievers": [{"retriever": standard}]}}]}}}
    rrf = with_directions(body)["retriever"]["rrf"]["retrievers"]
    assert rrf[0]["standard"]["sort"] == [{"price": "desc"}]
    assert rrf[1]["linear"]["retrievers"][0]["retriever"]["standard"]["sort"] == [{"price": "desc"}]


def test_bucket_orders_are_rewritten_at_any_depth():
    body = {
        "aggs": {
            "brands": {
                "terms": {"field": "brand", "order": [{"_count": "DESC"}, {"_key": "Asc"}]},
                "aggs": {"prices": {"histogram": {"field": "price", "interval": 50, "order": {"_key": "DESC"}}}},
            }
        }
    }
    brands = with_directions(body)["aggs"]["brands"]
    assert brands["terms"]["order"] == [{"_count": "desc"}, {"_key": "asc"}]
    assert brands["aggs"]["prices"]["histogram"]["order"] == {"_key": "desc"}


def test_a_composite_sources_order_and_a_top_hits_sort_are_rewritten():
    body = {
        "aggregations": {
            "pages": {"composite": {"sources": [{"b": {"terms": {"field": "brand", "order": "DESC"}}}]}},
            "best": {"top_hits": {"sort": [{"sales": "DESC"}]}},
        }
    }
    rewritten = with_directions(body)["aggregations"]
    assert rewritten["pages"]["composite"]["sources"] == [{"b": {"terms": {"field": "brand", "order": "desc"}}}]
    assert rewritten["best"]["top_hits"]["sort"] == [{"sales": "desc"}]


def test_the_request_body_is_not_changed_in_place():
    body = {"sort": [{"price": "DESC"}], "aggs": {"b": {"terms": {"field": "brand", "order": {"_key": "DESC"}}}}}
    before = json.dumps(body)
    with_directions(body)
    assert json.dumps(body) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sort": [{"price": "up"}]}, "sort[0].order"),
        ({"sort": [{"price": {"order": 1}}]}, "sort[0].order"),
        ({"aggs": {"b": {"terms": {"field": "brand", "order": {"_key": "down"}}}}}, "aggs.b.terms.order._key"),
        ({"aggs": {"b": {"terms": {"field": "brand", "order": [{"_count": None}]}}}}, "aggs.b.terms.order[0]._count"),
    ],
)
def test_a_direction_that_is_neither_word_is_refused_naming_it(body, field):
    with pytest.raises(InvalidQuery) as refused:
        with_directions(body)
    assert refused.value.field == field


# ------------------------------------------------------------------ searches on the embedded index


def test_a_sort_in_upper_case_orders_the_page_as_in_lower_case(client):
    upper = answer(client, {"sort": [{"price": {"order": "DESC"}}]})
    assert ids(upper) == ids(answer(client, {"sort": [{"price": "desc"}]}))
    assert ids(upper) == [p.id for p in sorted(CATALOG, key=lambda p: -p.price)]


def test_score_descending_in_upper_case_is_the_ranking_itself(client):
    ranked = answer(client, {"query": {"match": {"title": "oak"}}})
    assert ids(answer(client, {"query": {"match": {"title": "oak"}}, "sort": [{"_score": "DESC"}]})) == ids(ranked)


def test_a_sort_direction_that_is_neither_word_is_a_400_naming_it(client):
    response = client.post("/products/_search", json={"sort": [{"price": "upwards"}]})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "sort[0].order"


def test_a_terms_order_in_upper_case_orders_its_buckets(client):
    found = answer(client, {"size": 0, "aggs": {"b": {"terms": {"field": "brand", "order": {"_key": "DESC"}}}}})
    assert keys(found["aggregations"]["b"]) == ["Dune", "Cosy", "Bolt", "Acme"]


def test_a_terms_order_of_several_keys_orders_by_each_in_turn_and_keeps_its_size(client):
    order = [{"_count": "desc"}, {"_key": "desc"}]
    found = answer(client, {"size": 0, "aggs": {"b": {"terms": {"field": "brand", "size": 3, "order": order}}}})
    brands = found["aggregations"]["b"]
    # Acme and Cosy have two products each, Bolt and Dune one: the ties by key, descending.
    assert keys(brands) == ["Cosy", "Acme", "Dune"]
    assert brands["sum_other_doc_count"] == 1


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        ({"_key": "desc"}, [400.0, 300.0, 200.0, 100.0, 0.0]),
        ({"_key": "ASC"}, [0.0, 100.0, 200.0, 300.0, 400.0]),
        ({"_count": "desc"}, [100.0, 0.0, 200.0, 300.0, 400.0]),  # ties by key, ascending
    ],
)
def test_a_histograms_order_orders_its_buckets(client, order, expected):
    found = answer(
        client, {"size": 0, "aggs": {"p": {"histogram": {"field": "price", "interval": 100, "order": order}}}}
    )
    assert keys(found["aggregations"]["p"]) == expected


def test_a_histogram_order_that_is_no_object_is_a_400_naming_it(client):
    histogram = {"field": "price", "interval": 100, "order": "desc"}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"p": {"histogram": histogram}}})
    assert response.status_code == 400, response.get_json()  # it was answered by key, ascending
    assert response.get_json()["error"]["field"] == "aggs.p.histogram.order"


def test_a_histogram_ordered_by_a_sub_aggregations_metric_follows_it(client):
    histogram = {"field": "price", "interval": 100, "order": {"top": "asc"}}
    found = answer(
        client, {"size": 0, "aggs": {"p": {"histogram": histogram, "aggs": {"top": {"max": {"field": "sales"}}}}}}
    )
    pairs = [(b["key"], b["top"]["value"]) for b in found["aggregations"]["p"]["buckets"]]
    # The best seller in each band of 100: chair 1, bench 3 (shelf 2), table 5, lamp 7, sofa 9.
    assert pairs == [(300.0, 1.0), (100.0, 3.0), (200.0, 5.0), (0.0, 7.0), (400.0, 9.0)]


def test_a_keyed_histograms_buckets_are_written_in_the_order_asked(client):
    histogram = {"field": "price", "interval": 100, "keyed": True, "order": {"_key": "desc"}}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"p": {"histogram": histogram}}})
    # The answer's text, as a browser's JSON.parse keeps an object's keys in the order written.
    text = response.get_data(as_text=True)
    written = [text.index(f'"{key}":') for key in ("400.0", "300.0", "200.0", "100.0", "0.0")]
    assert written == sorted(written)


def test_a_keyed_histogram_without_an_order_is_written_by_its_bounds_as_numbers(client):
    histogram = {"field": "price", "interval": 25, "keyed": True}
    text = client.post("/products/_search", json={"size": 0, "aggs": {"p": {"histogram": histogram}}}).get_data(
        as_text=True
    )
    # By their text "100.0" would come before "25.0".
    written = [text.index(f'"{key}":') for key in ("25.0", "100.0", "125.0", "225.0", "300.0", "475.0")]
    assert written == sorted(written)


def test_named_filters_are_answered_by_name_whatever_the_requests_order(client):
    named = {"z-pine": {"match": {"title": "pine"}}, "a-oak": {"match": {"title": "oak"}}}
    found = answer(client, {"size": 0, "aggs": {"f": {"filters": {"filters": named}}}})
    assert list(found["aggregations"]["f"]["buckets"]) == ["a-oak", "z-pine"]
    listed = answer(client, {"size": 0, "aggs": {"f": {"filters": {"filters": named, "keyed": False}}}})
    assert [b["key"] for b in listed["aggregations"]["f"]["buckets"]] == ["a-oak", "z-pine"]


def test_a_sort_key_on_a_field_the_index_lacks_that_names_an_unmapped_type_orders_nothing(client):
    """Elasticsearch sorts by an unmapped field with an ``unmapped_type`` as if no product held a value there."""
    sort = [{"stock_date": {"order": "desc", "unmapped_type": "date"}}, {"price": "asc"}]
    found = answer(client, {"query": {"match": {"title": "oak"}}, "sort": sort})
    by_price = sorted((p for p in CATALOG if "Oak" in p.title), key=lambda p: p.price or 0)
    assert ids(found) == [p.id for p in by_price]
    assert [hit["sort"] for hit in found["hits"]["hits"]] == [[p.price] for p in by_price]


def test_a_sort_by_an_unmapped_field_alone_leaves_the_ranking_as_it_is(client):
    body = {"query": {"match": {"title": "oak"}}}
    alone = answer(client, {**body, "sort": [{"stock_date": {"unmapped_type": "long"}}]})
    assert ids(alone) == ids(answer(client, body))


def test_a_sort_key_on_a_field_the_index_lacks_without_an_unmapped_type_is_refused_naming_it(client):
    response = client.post("/products/_search", json={"sort": [{"stock_date": "desc"}]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "sort[0]"


@pytest.mark.parametrize("unmapped_type", [3, "bogus", ""])
def test_an_unmapped_type_elasticsearch_knows_no_field_type_by_is_a_400_naming_it(client, unmapped_type):
    response = client.post("/products/_search", json={"sort": [{"stock_date": {"unmapped_type": unmapped_type}}]})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "sort[0].stock_date.unmapped_type"


def test_a_script_sort_with_an_unmapped_type_is_still_refused_not_left_out(client):
    script = {"_script": {"type": "number", "script": "doc['price'].value", "unmapped_type": "long"}}
    response = client.post("/products/_search", json={"sort": [script, {"price": "asc"}]})
    assert response.status_code in (400, 501)


UNMAPPED_THEN_PRICE = [{"stock_date": {"unmapped_type": "long"}}, {"price": "asc"}, {"id": "asc"}]


def continued(client, search_after: list) -> list[str]:
    return ids(answer(client, {"sort": UNMAPPED_THEN_PRICE, "size": 2, "search_after": search_after}))


def test_a_cursor_with_a_value_for_the_unmapped_key_goes_on_as_the_pages_own_sort_values(client):
    first = answer(client, {"sort": UNMAPPED_THEN_PRICE, "size": 2})["hits"]["hits"]
    own = first[-1]["sort"]
    assert len(own) == 2
    assert continued(client, [2**63 - 1, *own]) == continued(client, own) != []


# ------------------------------------------------------------------ searches delegated to a cluster


@pytest.fixture
def cluster(make_cluster_app):
    return make_cluster_app("opensearch").test_client()


def test_a_sort_in_upper_case_is_the_clusters_order_as_in_lower_case_on_a_cluster(cluster):
    upper = answer(cluster, {"query": {"match": {"title": "sofa"}}, "sort": [{"price": "DESC"}]})
    assert ids(upper) == ids(answer(cluster, {"query": {"match": {"title": "sofa"}}, "sort": [{"price": "desc"}]}))
    assert [hit["sort"] for hit in upper["hits"]["hits"]] == sorted(
        ([hit["_source"]["price"]] for hit in upper["hits"]["hits"]), reverse=True
    )


def test_score_descending_in_upper_case_is_the_pipelines_ranking_on_a_cluster(cluster):
    ranked = answer(cluster, {"query": {"match": {"title": "sofa"}}})
    upper = answer(cluster, {"query": {"match": {"title": "sofa"}}, "sort": {"_score": {"order": "DESC"}}})
    assert ids(upper) == ids(ranked)
    assert "sort" not in upper["hits"]["hits"][0]


def test_a_sort_key_on_a_field_the_index_lacks_that_names_an_unmapped_type_orders_nothing_on_a_cluster(cluster):
    sort = [{"stock_date": {"order": "desc", "unmapped_type": "date"}}, {"price": "asc"}]
    found = answer(cluster, {"query": {"match": {"title": "sofa"}}, "sort": sort})
    prices = [hit["_source"]["price"] for hit in found["hits"]["hits"]]
    assert len(prices) > 1 and prices == sorted(prices)


def test_a_cursor_with_a_value_for_the_unmapped_key_goes_on_as_the_pages_own_sort_values_on_a_cluster(cluster):
    test_a_cursor_with_a_value_for_the_unmapped_key_goes_on_as_the_pages_own_sort_values(cluster)
