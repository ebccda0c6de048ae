"""The edges of Spryker's facets over name/value pairs, of a sort on a nested field and of the URI parameter check,
each against what Elasticsearch (or Spryker) does: their options checked as Elasticsearch checks them, ``meta``
given back, odd attribute names, aliases, real clients' parameters (from a probe of those features)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from both_backends import BACKENDS, backend_fixtures, catalog_on, search
from test_catalog_fields_search import CATALOG as FIELDS_CATALOG
from test_name_value_facets import (
    ALIASES,
    CATALOG,
    SOFA,
    SOFAS,
    STRING_FACETS,
    aggregations,
    named,
    names_aggregation,
    pairs,
)

from search_rerank.core.product import Product

INTEGER_FACETS = names_aggregation("integer-facet", {"stats": {"field": "integer-facet.facet-value"}})


embedded, client = backend_fixtures(CATALOG, field_aliases=ALIASES)


def post(client, body: dict[str, Any], path: str = "/products/_search"):
    return client.post(path, json=body)


# ---------------------------------------------------------------- name/value facets


def test_meta_of_the_nested_aggregation_comes_back(client):
    # Elasticsearch answers every aggregation's ``meta`` beside its result (InternalAggregation.getMetadata).
    spec = {**STRING_FACETS, "meta": {"facet": "attributes"}}
    answer = aggregations(client, {"string-facet": spec})["string-facet"]
    assert answer.get("meta") == {"facet": "attributes"}


def test_meta_of_the_names_terms_comes_back(client):
    spec = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}})
    spec["aggs"]["string-facet-name"]["meta"] = {"k": 1}
    answer = aggregations(client, {"string-facet": spec})["string-facet"]["string-facet-name"]
    assert answer.get("meta") == {"k": 1}


def test_names_ordered_by_a_metric_of_the_value_stats(client):
    # order by the stats sub-aggregation's max, ascending: rating (max 4.5) before price (max 899)
    spec = names_aggregation("integer-facet", {"stats": {"field": "integer-facet.facet-value"}})
    spec["aggs"]["integer-facet-name"]["terms"]["order"] = {"integer-facet-value.max": "asc"}
    answer = aggregations(client, {"integer-facet": spec})["integer-facet"]["integer-facet-name"]
    assert [b["key"] for b in answer["buckets"]] == ["rating", "price"]


@pytest.mark.parametrize("min_doc_count", ["lots", None, -1])
def test_a_names_min_doc_count_that_is_no_count_is_a_400(client, min_doc_count):
    spec = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}})
    spec["aggs"]["string-facet-name"]["terms"]["min_doc_count"] = min_doc_count
    response = post(client, {"size": 0, "aggs": {"string-facet": spec}})
    assert response.status_code == 400, response.get_json()


def test_a_names_size_of_zero_is_a_400_as_in_elasticsearch(client):
    # Elasticsearch 7+: "[size] must be greater than 0. Found [0] in [string-facet-name]"
    spec = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}}, size=0)
    response = post(client, {"size": 0, "aggs": {"string-facet": spec}})
    assert response.status_code == 400, response.get_json()


@pytest.mark.parametrize("order", ["_count", {"_count": "up"}, {"nope": "desc"}])
def test_a_names_order_elasticsearch_refuses_is_a_400(client, order):
    spec = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}})
    spec["aggs"]["string-facet-name"]["terms"]["order"] = order
    response = post(client, {"size": 0, "aggs": {"string-facet": spec}})
    assert response.status_code == 400, response.get_json()


def test_typed_keys_name_the_integer_facets_stats_and_the_standalone_filter(client):
    name_filter = {"term": {"string-facet.facet-name": "color"}}
    standalone = {
        "nested": {"path": "string-facet"},
        "aggs": {
            "string-facet.color-name": {
                "filter": name_filter,
                "aggs": {"string-facet.color-value": {"terms": {"field": "string-facet.facet-value"}}},
            }
        },
    }
    aggs = {"integer-facet": INTEGER_FACETS, "string-facet.color": standalone, "string-facet": STRING_FACETS}
    answer = aggregations(client, aggs, path="?typed_keys=true")
    assert set(answer) == {"nested#integer-facet", "nested#string-facet.color", "nested#string-facet"}
    ints = answer["nested#integer-facet"]["sterms#integer-facet-name"]["buckets"]
    assert all("stats#integer-facet-value" in b for b in ints)
    color = answer["nested#string-facet.color"]["filter#string-facet.color-name"]
    assert "sterms#string-facet.color-value" in color


def test_refined_facet_under_global_with_the_other_facets_nested_filters(client):
    # FacetQueryExpanderPlugin: global-<facet> > filter (a bool of the other refinements' nested clauses) > facet
    grey = {
        "nested": {
            "path": "string-facet",
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"string-facet.facet-name": "color"}},
                        {"term": {"string-facet.facet-value": "grey"}},
                    ]
                }
            },
        }
    }
    spec = {
        "global": {},
        "aggs": {"filter": {"filter": {"bool": {"filter": [grey]}}, "aggs": {"string-facet": STRING_FACETS}}},
    }
    aggs = {"string-facet": STRING_FACETS, "global-brand": spec}
    body = {"query": {"bool": {"must": [SOFA], "filter": [grey]}}, "size": 0, "aggs": aggs}
    answer = search(client, body)["aggregations"]
    greys = [p for p in CATALOG if "grey" in p.attributes.get("color", ())]
    inner = answer["global-brand"]["filter"]["string-facet"]["string-facet-name"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in inner} == {name: named(greys, name) for name in pairs(greys)}


def test_refined_integer_facet_under_an_empty_bool_filter(client):
    # createFilteredIntegerFacetData: the filter of a lone refined facet is an empty bool (every product)
    spec = {"global": {}, "aggs": {"filter": {"filter": {"bool": {}}, "aggs": {"integer-facet": INTEGER_FACETS}}}}
    answer = aggregations(client, {"global-price": spec})["global-price"]["filter"]["integer-facet"]
    by_name = {b["key"]: b["doc_count"] for b in answer["integer-facet-name"]["buckets"]}
    assert by_name == {"price": len(CATALOG), "rating": sum(1 for p in CATALOG if p.rating is not None)}


def test_the_value_terms_own_size_order_include_and_missing_are_kept(client):
    values = {
        "terms": {
            "field": "string-facet.facet-value",
            "size": 1,
            "order": {"_key": "asc"},
            "include": "b.*|g.*",
            "missing": "none",
        }
    }
    spec = names_aggregation("string-facet", values)
    answer = aggregations(client, {"string-facet": spec})["string-facet"]["string-facet-name"]
    color = next(b for b in answer["buckets"] if b["key"] == "color")
    assert [v["key"] for v in color["string-facet-value"]["buckets"]] == ["blue"]
    assert color["string-facet-value"]["sum_other_doc_count"] == 3  # brown, grey x2


def test_a_user_aggregation_named_like_the_internal_ones(client):
    aggs = {"pair0": {"terms": {"field": "brand"}}, "string-facet": STRING_FACETS}
    answer = aggregations(client, aggs)
    assert {b["key"] for b in answer["pair0"]["buckets"]} == {"Acme", "Bolt", "Cosy"}
    assert {b["key"] for b in answer["string-facet"]["string-facet-name"]["buckets"]} == set(pairs(SOFAS))


def test_a_names_aggregation_and_a_value_aggregation_named_pair0(client):
    spec = {
        "nested": {"path": "string-facet"},
        "aggs": {
            "pair0": {
                "terms": {"field": "string-facet.facet-name"},
                "aggs": {"pair1": {"terms": {"field": "string-facet.facet-value"}}},
            }
        },
    }
    answer = aggregations(client, {"pair0": spec})["pair0"]["pair0"]
    expected = pairs(SOFAS)
    assert {b["key"]: {v["key"]: v["doc_count"] for v in b["pair1"]["buckets"]} for b in answer["buckets"]} == expected


def test_aggregations_ignore_the_post_filter(client):
    post_filter = {"term": {"brand": "Acme"}}
    body = {"query": SOFA, "size": 0, "aggs": {"string-facet": STRING_FACETS}, "post_filter": post_filter}
    names = search(client, body)["aggregations"]["string-facet"]["string-facet-name"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in names} == {name: named(SOFAS, name) for name in pairs(SOFAS)}


def test_msearch_with_typed_keys_answers_each_searchs_pair_facets_typed(client):
    line = {"query": SOFA, "size": 0, "aggs": {"string-facet": STRING_FACETS, "integer-facet": INTEGER_FACETS}}
    body = "{}\n" + json.dumps(line) + "\n{}\n" + json.dumps(line) + "\n"
    response = client.post("/products/_msearch?typed_keys=true", data=body, content_type="application/x-ndjson")
    assert response.status_code == 200
    for answer in response.get_json()["responses"]:
        assert answer["status"] == 200, answer
        assert "sterms#string-facet-name" in answer["aggregations"]["nested#string-facet"]
        assert "sterms#integer-facet-name" in answer["aggregations"]["nested#integer-facet"]


ODD = [
    Product(id="o1", title="Lamp one", brand="Acme", attributes={"size.cm": ("30",), "Screen size": ("big",)}),
    Product(id="o2", title="Lamp two", brand="Acme", attributes={"size.cm": ("40",), "größe": ("L",)}),
    Product(id="o3", title="Lamp three", attributes={}),
]


@pytest.fixture(params=BACKENDS)
def odd_client(request):
    return catalog_on(request, ODD, field_aliases=ALIASES)


def test_one_attribute_name_with_a_dot_does_not_fail_every_facet_request(odd_client):
    # Every attribute name is expanded, so one product's "size.cm" made the whole facet a 501 on both backends;
    # Elasticsearch answers the pairs whatever their names.
    response = post(odd_client, {"size": 0, "aggs": {"string-facet": STRING_FACETS}})
    assert response.status_code == 200, response.get_json()


SPACED = [
    Product(id="o1", title="Lamp one", brand="Acme", attributes={"Screen size": ("big",)}),
    Product(id="o2", title="Lamp two", brand="Acme", attributes={"größe": ("L",), "Screen size": ("small",)}),
]


@pytest.fixture(params=BACKENDS)
def spaced_client(request):
    return catalog_on(request, SPACED, field_aliases=ALIASES)


def test_attribute_names_with_spaces_and_umlauts_are_facet_names(spaced_client):
    answer = aggregations(spaced_client, {"string-facet": STRING_FACETS}, query={"match_all": {}})["string-facet"]
    names = {b["key"]: b["doc_count"] for b in answer["string-facet-name"]["buckets"]}
    assert names == {"brand": 2, "screen size": 2, "größe": 1}  # the catalogue lower-cases attribute names


BARE = [Product(id="b1", title="Plain chair"), Product(id="b2", title="Plain stool", price=10.0)]


@pytest.fixture(params=BACKENDS)
def bare_client(request):
    return catalog_on(request, BARE, field_aliases=ALIASES)


def test_a_catalogue_without_attributes_or_brands_answers_no_names(bare_client):
    answer = aggregations(bare_client, {"string-facet": STRING_FACETS}, query={"match_all": {}})["string-facet"]
    assert answer["doc_count"] == 0 and answer["string-facet-name"]["buckets"] == []


EXTRA_ALIASES = {**ALIASES, "surface": "finish"}  # Spryker's "surface" pairs are the catalog's own finish
FINISHED = [
    Product(id="e1", title="Oak chair", brand="Acme", extra={"finish": "oiled"}),
    Product(id="e2", title="Ash chair", extra={"finish": "waxed"}),
    Product(id="e3", title="Elm chair", attributes={"color": ("red",)}),
]


@pytest.fixture(params=BACKENDS)
def extra_client(request):
    return catalog_on(request, FINISHED, field_aliases=EXTRA_ALIASES)


def test_a_name_aliased_onto_a_catalog_field_filters(extra_client):
    clause = {
        "nested": {
            "path": "string-facet",
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"string-facet.facet-name": "surface"}},
                        {"term": {"string-facet.facet-value": "oiled"}},
                    ]
                }
            },
        }
    }
    answer = search(extra_client, {"query": {"bool": {"filter": [clause]}}})
    assert [h["_id"] for h in answer["hits"]["hits"]] == ["e1"]


def test_a_standalone_facet_of_a_name_aliased_onto_a_catalog_field(extra_client):
    name_filter = {"term": {"string-facet.facet-name": "surface"}}
    spec = {
        "nested": {"path": "string-facet"},
        "aggs": {"n": {"filter": name_filter, "aggs": {"v": {"terms": {"field": "string-facet.facet-value"}}}}},
    }
    answer = aggregations(extra_client, {"f": spec}, query={"match_all": {}})["f"]["n"]
    assert answer["doc_count"] == 2
    assert {v["key"]: v["doc_count"] for v in answer["v"]["buckets"]} == {"oiled": 1, "waxed": 1}


# ---------------------------------------------------------------- the nested sort


@pytest.fixture(scope="module")
def fields_embedded(catalog_client):
    return catalog_client(FIELDS_CATALOG)


@pytest.fixture(params=BACKENDS)
def fields_client(request, fields_embedded):
    if request.param == "embedded":
        return fields_embedded
    return request.getfixturevalue("make_cluster_app")("opensearch", catalog=FIELDS_CATALOG).test_client()


def sorted_ids(client, sort: Any, **body: Any) -> list[str]:
    answer = search(client, {"query": {"match_all": {}}, "size": 10, "sort": sort, **body})
    return [hit["_id"] for hit in answer["hits"]["hits"]]


@pytest.mark.parametrize(
    ("order", "expected"),
    # sellers: p1 north/south, p2 north, p3 east/west, p4 none: least asc east<north<north, greatest desc
    [("asc", ["p3", "p1", "p2", "p4"]), ("desc", ["p3", "p1", "p2", "p4"])],
)
def test_a_nested_sort_on_a_keyword_of_the_objects(fields_client, order, expected):
    sort = [{"offers.seller": {"order": order, "nested": {"path": "offers"}}}, {"_id": "asc"}]
    assert sorted_ids(fields_client, sort) == expected


def test_a_nested_sort_pages_follow_one_another(fields_client):
    sort = [{"offers.price": {"order": "desc", "nested": {"path": "offers"}}}]
    whole = sorted_ids(fields_client, sort)
    pages = sorted_ids(fields_client, sort, size=2) + sorted_ids(fields_client, sort, **{"from": 2, "size": 2})
    assert pages == whole == ["p3", "p1", "p2", "p4"]


def test_a_nested_sort_with_mode_max_ascending(fields_client):
    # greatest offer per product, ascending: p2 20, p1 30, p3 40, p4 missing last
    sort = [{"offers.price": {"order": "asc", "mode": "max", "nested": {"path": "offers"}}}]
    assert sorted_ids(fields_client, sort) == ["p2", "p1", "p3", "p4"]


def test_a_nested_sort_then_score(fields_client):
    sort = [{"offers.price": {"order": "asc", "nested": {"path": "offers"}}}, "_score"]
    assert sorted_ids(fields_client, sort) == ["p1", "p3", "p2", "p4"]


def test_a_nested_sort_on_a_field_aliased_from_the_front_ends_names(catalog_client):
    # The front end's index had variants nested, the catalog has offers: the alias renames the sort's field,
    # but the nested path stays the front end's, and the field is then not under it.
    client = catalog_client(FIELDS_CATALOG, field_aliases={"variants.price": "offers.price"})
    sort = [{"variants.price": {"order": "asc", "nested": {"path": "variants"}}}]
    assert sorted_ids(client, sort) == ["p1", "p3", "p2", "p4"]


def test_a_nested_sort_with_a_path_that_is_a_prefix_but_not_an_object(fields_client):
    # "off" is no nested path of offers.price: Elasticsearch refuses it ([nested] nested object under path [off]
    # is not of nested type) rather than sorting
    response = fields_client.post(
        "/products/_search", json={"sort": [{"offers.price": {"nested": {"path": "offers.price"}}}]}
    )
    assert response.status_code == 400


# ---------------------------------------------------------------- URI parameters


@pytest.mark.parametrize(
    "query_string",
    [
        # Kibana 7's legacy search strategy and OpenSearch Dashboards' msearch
        "rest_total_hits_as_int=true&ignore_throttled=false&max_concurrent_shard_requests=5&ignore_unavailable=true",
        # Grafana's Elasticsearch data source
        "max_concurrent_shard_requests=5",
        "typed_keys=true&filter_path=responses.hits.total",
        "preference=1700000000000",
    ],
)
def test_msearch_parameters_real_clients_send_are_taken(embedded, query_string):
    body = '{"index": "products"}\n{"query": {"match_all": {}}}\n'
    response = embedded.post(f"/_msearch?{query_string}", data=body, content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "query_string",
    [
        # elasticsearch-py / elasticsearch-dsl and the JS client's search parameters
        "request_cache=true&allow_partial_search_results=true&search_type=query_then_fetch",
        "_source_includes=title&_source_excludes=brand",
        "expand_wildcards=open&allow_no_indices=true",
        "version=true&seq_no_primary_term=true&track_scores=true",
        "explain=false",
        "error_trace=true&human=true",
    ],
)
def test_search_parameters_real_clients_send_are_taken(embedded, query_string):
    assert embedded.get(f"/products/_search?{query_string}").status_code == 200
    assert embedded.post(f"/products/_search?{query_string}", json={}).status_code == 200


@pytest.mark.parametrize(
    "query_string",
    [
        "q=sofa&df=title&default_operator=AND&lenient=true&analyze_wildcard=true",
        "ignore_unavailable=true&expand_wildcards=open&preference=_local&routing=1",
    ],
)
def test_count_parameters_are_taken(embedded, query_string):
    response = embedded.get(f"/products/_count?{query_string}")
    assert response.status_code == 200, response.get_json()


def test_an_unrecognized_parameter_is_elasticsearchs_illegal_argument_exception(embedded):
    response = embedded.get("/products/_search?szie=5")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "illegal_argument_exception"
    assert error["reason"].endswith(
        "request [/products/_search] contains unrecognized parameter: [szie] -> did you mean [size]?"
    )


def test_several_unrecognized_parameters_are_all_named(embedded):
    # Elasticsearch: "request [/products/_search] contains unrecognized parameters: [foo], [szie] -> did you mean
    # [size]?"
    response = embedded.get("/products/_search?szie=5&foo=1")
    assert response.status_code == 400
    reason = response.get_json()["error"]["reason"]
    assert "[foo]" in reason and "[szie]" in reason


def test_a_msearch_header_key_elasticsearch_does_not_take_fails_its_search(embedded):
    # Elasticsearch: "key [sise] is not supported in the metadata section" for that search
    body = '{"index": "products", "sise": 3}\n{"query": {"match_all": {}}}\n'
    response = embedded.post("/_msearch", data=body, content_type="application/x-ndjson")
    assert response.status_code == 200
    assert response.get_json()["responses"][0].get("status") == 400


@pytest.mark.parametrize("size", ["many", -1])
def test_a_names_size_that_is_no_count_is_a_400(client, size):
    spec = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}}, size=size)
    response = post(client, {"size": 0, "aggs": {"string-facet": spec}})
    assert response.status_code == 400, response.get_json()


def test_a_standalone_facet_of_a_name_no_product_holds(client):
    name_filter = {"term": {"string-facet.facet-name": "voltage"}}
    spec = {
        "nested": {"path": "string-facet"},
        "aggs": {"n": {"filter": name_filter, "aggs": {"v": {"terms": {"field": "string-facet.facet-value"}}}}},
    }
    answer = aggregations(client, {"f": spec})["f"]["n"]
    assert answer["doc_count"] == 0 and answer["v"]["buckets"] == []


CLASHING = [
    Product(id="c1", title="Red chair", brand="Acme", attributes={"brand": ("acme-house",), "price": ("cheap",)}),
    Product(id="c2", title="Blue chair", brand="Bolt", price=5.0),
]


@pytest.fixture(params=BACKENDS)
def clashing_client(request):
    return catalog_on(request, CLASHING, field_aliases=ALIASES)


def test_an_attribute_named_like_a_product_field_is_no_second_bucket_of_that_name(clashing_client):
    # A terms answer holds each key once; here the product's brand and the attribute "brand" were both "brand".
    answer = aggregations(clashing_client, {"string-facet": STRING_FACETS}, query={"match_all": {}})
    keys = [b["key"] for b in answer["string-facet"]["string-facet-name"]["buckets"]]
    assert len(keys) == len(set(keys)), keys
