"""Aggregations of Elasticsearch-compatible searches, counted by the cluster over the whole match set."""

from __future__ import annotations

import json
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import aggregation_bodies
import pytest
import requests
import urllib3
from live_server import handled

from search_rerank.backends.cluster import OpenSearchRetriever
from search_rerank.core.reasons import CLUSTER_UNAVAILABLE, TIMEOUT
from search_rerank.core.settings import LexicalSettings, ServiceSettings, Settings
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app
from search_rerank.serving.aggregations import Aggregator
from search_rerank.serving.es_compat import InvalidQuery, Unsupported, parse_search

BRANDS = {"brands": {"terms": {"field": "facet.brand"}}}
SOFAS_IN_FURNITURE = {"bool": {"must": [{"match": {"title": "sofa"}}], "filter": [{"term": {"category": "Furniture"}}]}}


@pytest.fixture(params=["opensearch", "elasticsearch"])
def cluster_client(request, make_cluster_app):
    return make_cluster_app(request.param).test_client()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def buckets(aggregation) -> dict[str, int]:
    return {bucket["key"]: bucket["doc_count"] for bucket in aggregation["buckets"]}


def test_terms_aggregation_counts_the_filtered_match_set(cluster_client):
    body = cluster_client.post("/products/_search", json={"query": SOFAS_IN_FURNITURE, "aggs": BRANDS}).get_json()
    # "sofa" also matches the lamp's description, but the category filter leaves it out, as from the hits.
    assert buckets(body["aggregations"]["brands"]) == {"Acme": 2, "Bolt": 1, "Cosy": 1}
    assert {hit["_id"] for hit in body["hits"]["hits"]} == {"s1", "s2", "s3", "s4"}
    assert body["search_rerank"]["degraded"] == {}


def test_aggregations_count_beyond_the_page_of_hits(cluster_client):
    body = cluster_client.post(
        "/products/_search", json={"query": SOFAS_IN_FURNITURE, "size": 0, "aggregations": BRANDS}
    ).get_json()
    assert body["hits"]["hits"] == []
    assert sum(buckets(body["aggregations"]["brands"]).values()) == 4


def test_post_filter_narrows_the_hits_but_not_the_facet_counts(cluster_client):
    body = cluster_client.post(
        "/products/_search",
        json={"query": SOFAS_IN_FURNITURE, "post_filter": {"term": {"brand": "Acme"}}, "aggs": BRANDS},
    ).get_json()
    assert {hit["_id"] for hit in body["hits"]["hits"]} == {"s1", "s2"}
    assert buckets(body["aggregations"]["brands"]) == {"Acme": 2, "Bolt": 1, "Cosy": 1}


def test_browsing_without_a_query_counts_the_whole_catalog(cluster_client):
    # CLUSTER_CATALOG (conftest) holds 6 products.
    body = cluster_client.post("/products/_search", json={"size": 0, "aggs": BRANDS}).get_json()
    assert sum(buckets(body["aggregations"]["brands"]).values()) == 6


def test_contradictory_filters_get_empty_aggregations_from_the_cluster(cluster_client):
    query = {"bool": {"filter": [{"term": {"brand": "Acme"}}, {"term": {"brand": "Bolt"}}]}}
    body = cluster_client.post(
        "/products/_search", json={"query": query, "aggs": {**BRANDS, "price": {"max": {"field": "price"}}}}
    ).get_json()
    assert body["hits"]["hits"] == []
    assert body["aggregations"]["brands"]["buckets"] == [] and body["aggregations"]["price"]["value"] is None


def test_multi_search_answers_each_searchs_aggregations(cluster_client):
    ndjson = (
        '{}\n{"query": {"match": {"title": "sofa"}}, "aggs": {"brands": {"terms": {"field": "facet.brand"}}}}\n'
        '{}\n{"size": 0, "aggs": {"n": {"value_count": {"field": "id"}}}}\n'
    )
    first, second = cluster_client.post("/_msearch", data=ndjson, content_type="application/x-ndjson").get_json()[
        "responses"
    ]
    # The cluster runs the client's own query: "sofa" in a title (not the lamp's description).
    assert buckets(first["aggregations"]["brands"]) == {"Acme": 2, "Bolt": 1, "Cosy": 1}
    assert second["aggregations"]["n"]["value"] == 6


def test_malformed_aggregation_is_an_elasticsearch_400_with_the_clusters_reason(cluster_client):
    response = cluster_client.post("/products/_search", json={"aggs": {"bad": {"no_such_aggregation": {}}}})
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == "aggs" and "no_such_aggregation" in error["reason"]


@contextmanager
def slow_on_aggregations(cluster_url: str) -> Iterator[str]:
    """An HTTP hop in front of the cluster that holds aggregation requests until the test is over (at most 120 s),
    so that however long the search takes on a loaded machine, the aggregations are later; yields its URL."""
    over = threading.Event()

    class Hop(BaseHTTPRequestHandler):
        def relay(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if b'"aggs"' in body:
                over.wait(120)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
            answer = urllib3.request(
                self.command, cluster_url + self.path, body=body or None, headers=headers, retries=False
            )
            self.send_response(answer.status)
            for name in ("Content-Type", "X-Elastic-Product"):
                if name in answer.headers:
                    self.send_header(name, answer.headers[name])
            self.send_header("Content-Length", str(len(answer.data)))
            self.end_headers()
            self.wfile.write(answer.data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

        def log_message(self, *args):
            pass

    with handled(Hop) as url:
        try:
            yield url
        finally:
            over.set()


def test_slow_cluster_leaves_aggregations_out_and_says_so(make_cluster_app, osmem_server_url):
    with slow_on_aggregations(osmem_server_url) as slow_url:
        client = make_cluster_app("opensearch", aggregations_timeout_s=0.3, lexical={"url": slow_url}).test_client()
        body = client.post("/products/_search", json={"query": SOFAS_IN_FURNITURE, "aggs": BRANDS}).get_json()
    assert "aggregations" not in body
    assert body["search_rerank"]["degraded"] == {"aggregations": TIMEOUT}
    assert {hit["_id"] for hit in body["hits"]["hits"]} == {"s1", "s2", "s3", "s4"}


def test_unreachable_cluster_leaves_aggregations_out_and_says_cluster_unavailable():
    leg = OpenSearchRetriever(
        LexicalSettings(backend="opensearch", url=f"http://127.0.0.1:{free_port()}", retries=0, request_timeout_s=5)
    )
    search = parse_search({"aggs": BRANDS}, {}, ServiceSettings(), aggregations=True)
    response = {"search_rerank": {"degraded": {}, "timings_ms": {}}}
    aggregator = Aggregator()
    try:
        aggregator.answer(aggregator.start(leg, search), response, timeout_s=5)
    finally:
        aggregator.close()
    assert "aggregations" not in response
    assert response["search_rerank"]["degraded"]["aggregations"] == CLUSTER_UNAVAILABLE


def test_embedded_backend_counts_aggregations_itself(client):
    # The embedded backend's facets are tantivy's (tests/service/test_es_embedded_parity.py).
    body = client.post("/products/_search", json={"size": 0, "aggs": {"n": {"value_count": {"field": "price"}}}})
    assert body.status_code == 200 and body.get_json()["aggregations"]["n"]["value"] > 0


def test_aggs_and_aggregations_together_are_invalid_as_in_elasticsearch():
    with pytest.raises(InvalidQuery):
        parse_search({"aggs": BRANDS, "aggregations": BRANDS}, {}, ServiceSettings(), aggregations=True)


def test_facet_filters_are_the_querys_without_the_post_filter():
    search = parse_search(
        {"query": SOFAS_IN_FURNITURE, "post_filter": {"term": {"brand": "Acme"}}, "aggs": BRANDS},
        {},
        ServiceSettings(),
        aggregations=True,
    )
    assert search.filters.brand == ("Acme",) and search.filters.category == ("Furniture",)
    assert search.facet_filters.brand is None and search.facet_filters.category == ("Furniture",)


def test_typed_keys_with_aggregations_of_a_leg_that_is_no_delegated_cluster_are_unsupported_by_name():
    with pytest.raises(Unsupported) as err:
        parse_search({"aggs": BRANDS}, {"typed_keys": "true"}, ServiceSettings(), aggregations=True)
    assert err.value.part == "typed_keys"


# ------------------------------------------------------------------ typed_keys

# What Elasticsearch's Java client (and so Spring Data Elasticsearch) sends for a faceted search page: every search
# as ``?typed_keys=true``, whose answer it reads each aggregation's and suggester's type from (``sterms#brands``).
JAVA_CLIENT_FACETS = {
    "aggregations": {
        "brands": {"terms": {"field": "facet.brand", "size": 10}},
        "prices": {"range": {"field": "price", "ranges": [{"to": 500.0}, {"from": 500.0}]}},
        "dear": {
            "filter": {"range": {"price": {"gte": 500}}},
            "aggregations": {"brands": {"terms": {"field": "facet.brand"}}},
        },
        "cheapest": {"min": {"field": "price"}},
        "dearest": {"max": {"field": "price"}},
    },
    "suggest": {"titles": {"prefix": "s", "completion": {"field": "title", "size": 5}}},
    "size": 10,
}
JAVA_CLIENT_KEYS = {"sterms#brands", "range#prices", "filter#dear", "min#cheapest", "max#dearest"}
WORDS = {"query": {"bool": {"must": [{"match": {"title": {"query": "sofa"}}}]}}}


@pytest.fixture(params=["embedded", "opensearch", "elasticsearch"])
def any_client(request):
    """The app on each backend: the embedded index (its own facets) and a cluster over osmem-server."""
    if request.param == "embedded":
        return request.getfixturevalue("client")
    return request.getfixturevalue("make_cluster_app")(request.param).test_client()


def untyped(answer: Any) -> Any:
    """``answer`` with each ``type#name`` key back to its name."""
    if isinstance(answer, dict):
        return {key.partition("#")[2] or key: untyped(value) for key, value in answer.items()}
    if isinstance(answer, list):
        return [untyped(value) for value in answer]
    return answer


@pytest.mark.parametrize("query", [WORDS, {}], ids=["ranked", "listing"])
def test_typed_keys_name_each_aggregation_and_suggester_by_its_elasticsearch_type(any_client, query):
    response = any_client.post("/products/_search?typed_keys=true", json={**JAVA_CLIENT_FACETS, **query})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert set(answer["aggregations"]) == JAVA_CLIENT_KEYS
    assert set(answer["aggregations"]["filter#dear"]) == {"doc_count", "sterms#brands"}
    assert set(answer["suggest"]) == {"completion#titles"}


@pytest.mark.parametrize("query", [WORDS, {}], ids=["ranked", "listing"])
def test_typed_keys_answer_what_the_same_search_without_them_answers(any_client, query):
    body = {**JAVA_CLIENT_FACETS, **query}
    typed = any_client.post("/products/_search?typed_keys=true", json=body).get_json()
    plain = any_client.post("/products/_search", json=body).get_json()
    assert set(plain["aggregations"]) == {"brands", "prices", "dear", "cheapest", "dearest"}
    assert set(plain["suggest"]) == {"titles"}
    assert untyped(typed["aggregations"]) == plain["aggregations"]
    assert untyped(typed["suggest"]) == plain["suggest"]


def test_typed_keys_name_a_terms_aggregation_by_the_type_of_its_field(any_client):
    aggs = {"b": {"terms": {"field": "facet.brand"}}, "s": {"terms": {"field": "sales"}}}
    body = {"size": 0, "aggs": {**aggs, "r": {"terms": {"field": "rating"}}}}
    answer = any_client.post("/products/_search?typed_keys=true", json=body).get_json()
    assert set(answer["aggregations"]) == {"sterms#b", "lterms#s", "dterms#r"}


def test_typed_keys_name_the_sub_aggregations_in_each_bucket(any_client):
    body = {"size": 0, "aggs": {"b": {"terms": {"field": "facet.brand"}, "aggs": {"p": {"avg": {"field": "price"}}}}}}
    answer = any_client.post("/products/_search?typed_keys=true", json=body).get_json()
    buckets = answer["aggregations"]["sterms#b"]["buckets"]
    assert buckets and all("avg#p" in bucket and "p" not in bucket for bucket in buckets)


def test_multi_search_with_typed_keys_names_each_searchs_aggregations_by_type(any_client):
    ndjson = (
        '{}\n{"query": {"match": {"title": "sofa"}}, "aggs": {"brands": {"terms": {"field": "facet.brand"}}}}\n'
        '{}\n{"size": 0, "aggs": {"n": {"value_count": {"field": "price"}}}}\n'
    )
    response = any_client.post("/_msearch?typed_keys=true", data=ndjson, content_type="application/x-ndjson")
    first, second = response.get_json()["responses"]
    assert set(first["aggregations"]) == {"sterms#brands"} and set(second["aggregations"]) == {"value_count#n"}


def test_typed_keys_that_are_not_true_or_false_are_a_400_naming_them(any_client):
    response = any_client.post("/products/_search?typed_keys=yes", json={"aggs": BRANDS})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "typed_keys"


def test_typed_keys_name_a_facet_on_an_attribute_as_the_terms_it_is_on_a_cluster(cluster_client):
    body = {
        "size": 0,
        "aggs": {
            "colors": {"terms": {"field": "attributes.color"}},
            "sofas": {
                "filter": {"match": {"title": "sofa"}},
                "aggs": {"colors": {"terms": {"field": "attributes.color"}}},
            },
        },
    }
    typed = cluster_client.post("/products/_search?typed_keys=true", json=body).get_json()["aggregations"]
    plain = cluster_client.post("/products/_search", json=body).get_json()["aggregations"]
    assert set(typed) == {"sterms#colors", "filter#sofas"}
    assert set(typed["filter#sofas"]) == {"doc_count", "sterms#colors"}
    assert buckets(plain["colors"]) == {"grey": 1, "brown": 1, "blue": 1}
    assert untyped(typed) == plain


def test_terms_on_an_attribute_with_min_doc_count_0_is_a_501_naming_it(cluster_client):
    """``min_doc_count: 0`` would list the values of every attribute in the nested name/value pairs (sizes among
    colours)."""
    body = {"size": 0, "aggs": {"colors": {"terms": {"field": "attributes.color", "min_doc_count": 0}}}}
    response = cluster_client.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.colors.terms.min_doc_count"


def test_terms_on_an_attribute_with_missing_counts_the_products_without_it_under_that_key(cluster_client):
    """ReactiveSearch's lists with ``showMissing`` send ``missing: "N/A"``: Elasticsearch counts the products
    without a colour (s4, t1, l1) as one more value, in the order asked (by count here)."""
    body = {"size": 0, "aggs": {"colors": {"terms": {"field": "attributes.color", "missing": "N/A"}}}}
    aggregations = cluster_client.post("/products/_search", json=body).get_json()["aggregations"]
    assert set(aggregations) == {"colors"}
    assert [(b["key"], b["doc_count"]) for b in aggregations["colors"]["buckets"]] == [
        ("N/A", 3),
        ("blue", 1),
        ("brown", 1),
        ("grey", 1),
    ]


def test_a_number_as_the_missing_value_of_an_attribute_is_its_keyword(cluster_client):
    body = {
        "size": 0,
        "aggs": {"colors": {"terms": {"field": "attributes.color", "missing": 0, "order": {"_key": "asc"}}}},
    }
    response = cluster_client.post("/products/_search", json=body)
    assert response.status_code == 200
    assert [b["key"] for b in response.get_json()["aggregations"]["colors"]["buckets"]] == [
        "0",
        "blue",
        "brown",
        "grey",
    ]


def test_a_boolean_as_the_missing_value_of_an_attribute_is_its_keyword_and_a_size_may_be_text(cluster_client):
    terms = {"field": "attributes.color", "missing": True, "order": {"_key": "desc"}, "size": "2"}
    response = cluster_client.post("/products/_search", json={"size": 0, "aggs": {"colors": {"terms": terms}}})
    assert response.status_code == 200
    assert [b["key"] for b in response.get_json()["aggregations"]["colors"]["buckets"]] == ["true", "grey"]


def test_a_missing_value_of_an_attribute_that_is_not_a_scalar_is_a_400_naming_it(cluster_client):
    terms = {"field": "attributes.color", "missing": ["N/A"]}
    response = cluster_client.post("/products/_search", json={"size": 0, "aggs": {"colors": {"terms": terms}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "aggs.colors.terms.missing"


def test_the_missing_bucket_of_an_attribute_takes_its_place_in_the_order_and_within_the_size(cluster_client):
    body = {
        "size": 0,
        "aggs": {
            "colors": {"terms": {"field": "attributes.color", "missing": "N/A", "order": {"_key": "asc"}, "size": 2}}
        },
    }
    typed = cluster_client.post("/products/_search?typed_keys=true", json=body).get_json()["aggregations"]
    assert set(typed) == {"sterms#colors"}
    assert [(b["key"], b["doc_count"]) for b in typed["sterms#colors"]["buckets"]] == [("N/A", 3), ("blue", 1)]
    assert typed["sterms#colors"]["sum_other_doc_count"] == 2


def test_no_missing_bucket_of_an_attribute_where_every_match_has_it(cluster_client):
    body = {
        "size": 0,
        "query": {"ids": {"values": ["s1", "s2"]}},
        "aggs": {"colors": {"terms": {"field": "attributes.color", "missing": "N/A"}}},
    }
    aggregations = cluster_client.post("/products/_search", json=body).get_json()["aggregations"]
    assert buckets(aggregations["colors"]) == {"brown": 1, "grey": 1}


@pytest.mark.parametrize(
    ("backend", "aggregation", "part"),
    [
        ("embedded", {"significant_terms": {"field": "brand.keyword"}}, "aggs.x.significant_terms"),
        (
            "opensearch",
            {"multi_terms": {"terms": [{"field": "facet.brand"}, {"field": "price"}]}},
            "aggs.x.multi_terms",
        ),
    ],
)
def test_typed_keys_leave_an_aggregation_the_backend_cannot_answer_a_501_naming_it(request, backend, aggregation, part):
    client = (
        request.getfixturevalue("client")
        if backend == "embedded"
        else request.getfixturevalue("make_cluster_app")(backend).test_client()
    )
    response = client.post("/products/_search?typed_keys=true", json={"aggs": {"x": aggregation}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == part


# ------------------------------------------------------------------ differential: embedded against a reference


def differences(reference: Any, ours: Any, path: str = "") -> list[str]:
    """Where ``ours`` differs from ``reference``: keys, lengths, values (numbers within a relative 1e-9)."""
    if isinstance(reference, dict) and isinstance(ours, dict):
        out = [f"{path}.{k}: only one side has it" for k in set(reference) ^ set(ours)]
        return out + [d for k in set(reference) & set(ours) for d in differences(reference[k], ours[k], f"{path}.{k}")]
    if isinstance(reference, list) and isinstance(ours, list) and len(reference) == len(ours):
        return [
            d for i, (a, b) in enumerate(zip(reference, ours, strict=True)) for d in differences(a, b, f"{path}[{i}]")
        ]
    numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (reference, ours))
    if numbers and ours == pytest.approx(reference, rel=1e-9) or reference == ours:
        return []
    return [f"{path}: {reference!r} != {ours!r}"]


@pytest.fixture(scope="module")
def reference_and_embedded(osmem_server_url, tmp_path_factory):
    """The differential catalogue in a shop's own index on the reference engine, and the app over the same
    products on the embedded backend."""
    products = aggregation_bodies.catalog()
    index = f"{osmem_server_url}/aggdiff-{uuid.uuid4().hex[:8]}"
    requests.put(index, json={"mappings": aggregation_bodies.REFERENCE_MAPPING}, timeout=30).raise_for_status()
    lines = "".join(
        json.dumps({"index": {"_id": p.id}}) + "\n" + json.dumps(aggregation_bodies.reference_document(p)) + "\n"
        for p in products
    )
    bulk = requests.post(
        f"{index}/_bulk?refresh=true", data=lines, headers={"Content-Type": "application/x-ndjson"}, timeout=30
    )
    assert bulk.ok and not bulk.json()["errors"]
    settings = Settings(index_dir=tmp_path_factory.mktemp("aggdiff") / "idx", dense={"enabled": False})
    build_index(products, settings, progress=False)
    pipeline = open_pipeline(settings)
    yield index, create_app(settings, pipeline).test_client()
    pipeline.close()
    requests.delete(index, timeout=30)


def test_embedded_aggregations_answer_what_elasticsearch_answers_for_generated_requests(reference_and_embedded):
    """150 seeded aggregation requests (tests/aggregation_bodies.py) answered on the embedded backend as the
    reference engine answers them over the same products: every bucket, key, count and metric."""
    index, client = reference_and_embedded
    wrong = []
    for i, body in enumerate(aggregation_bodies.bodies(seed=1, n=150)):
        reference = requests.post(f"{index}/_search", json=body, timeout=30).json()["aggregations"]
        response = client.post("/products/_search", json=body)
        assert response.status_code == 200, (i, body, response.get_json())
        wrong += [f"body {i}{d}" for d in differences(reference, response.get_json()["aggregations"])]
    assert not wrong, wrong[:10]


COMPOSITES = [
    {"sources": [{"brand": {"terms": {"field": "brand.keyword"}}}], "size": 3},
    {
        "sources": [
            {"brand": {"terms": {"field": "brand.keyword", "order": "desc"}}},
            {"color": {"terms": {"field": "attributes.color", "missing_bucket": True}}},
        ],
        "size": 4,
    },
    {"sources": [{"sales": {"terms": {"field": "sales"}}}], "size": 5},
    {"sources": [{"price": {"histogram": {"field": "price", "interval": 50}}}], "size": 4},
    {"sources": [{"rating": {"terms": {"field": "rating"}}}], "size": 6},
]


@pytest.mark.parametrize("composite", COMPOSITES, ids=["terms", "two-sources", "long", "histogram", "double"])
def test_embedded_composite_pages_answer_what_elasticsearch_answers(reference_and_embedded, composite):
    """ReactiveSearch's lists with showLoadMore page a facet's values with a composite aggregation; each page,
    after_key included, as the reference engine answers it, until the values run out."""
    index, client = reference_and_embedded
    after = None
    for page in range(50):
        asked = {**composite, **({"after": after} if after is not None else {})}
        body = {"size": 0, "aggs": {"c": {"composite": asked, "aggs": {"r": {"avg": {"field": "rating"}}}}}}
        reference = requests.post(f"{index}/_search", json=body, timeout=30).json()["aggregations"]["c"]
        response = client.post("/products/_search", json=body)
        assert response.status_code == 200, response.get_json()
        assert not differences(reference, response.get_json()["aggregations"]["c"]), (page, asked)
        after = reference.get("after_key")
        if not reference["buckets"]:
            break
    assert page > 1


def test_a_composite_aggregation_under_another_is_a_400_naming_it(client):
    composite = {"composite": {"sources": [{"b": {"terms": {"field": "brand.keyword"}}}]}}
    body = {"size": 0, "aggs": {"t": {"terms": {"field": "brand.keyword"}, "aggs": {"c": composite}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs.t.aggs.c.composite"


def test_a_composite_after_that_does_not_name_its_sources_is_a_400_naming_it(client):
    composite = {"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "after": {"x": "Acme"}}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"c": {"composite": composite}}})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs.c.composite.after"


def test_a_composite_aggregation_is_typed_composite(client):
    composite = {"composite": {"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "size": 2}}
    answer = client.post("/products/_search?typed_keys=true", json={"size": 0, "aggs": {"c": composite}}).get_json()
    assert list(answer["aggregations"]) == ["composite#c"]
    assert (
        answer["aggregations"]["composite#c"]["after_key"]
        == answer["aggregations"]["composite#c"]["buckets"][-1]["key"]
    )


def composite_answer(client, composite: dict, params: str = "") -> Any:
    return client.post(f"/products/_search{params}", json={"size": 0, "aggs": {"c": {"composite": composite}}})


def test_a_composite_aggregation_without_a_size_answers_ten_buckets(client):
    composite = {"sources": [{"p": {"histogram": {"field": "price", "interval": 1}}}]}
    assert len(composite_answer(client, composite).get_json()["aggregations"]["c"]["buckets"]) == 10


@pytest.mark.parametrize(
    ("composite", "field"),
    [
        ({"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "size": 0}, "aggs.c.composite.size"),
        (
            {
                "sources": [
                    {"b": {"terms": {"field": "brand.keyword"}}},
                    {"b": {"terms": {"field": "attributes.color"}}},
                ]
            },
            "aggs.c.composite.sources[1]",
        ),
        (
            {"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "after": {"b": ["x"]}},
            "aggs.c.composite.after.b",
        ),
        ({"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "after": {"b": 5}}, "aggs.c.composite.after.b"),
        ({"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "after": {"b": None}}, "aggs.c.composite.after.b"),
        (
            {"sources": [{"b": {"terms": {"field": "brand.keyword", "order": "up"}}}]},
            "aggs.c.composite.sources[0].b.terms.order",
        ),
        (
            {"sources": [{"b": {"terms": {"field": "brand.keyword", "missing_bucket": "yes"}}}]},
            "aggs.c.composite.sources[0].b.terms.missing_bucket",
        ),
        (
            {"sources": [{"b": {"histogram": {"field": "brand.keyword", "interval": 1}}}]},
            "aggs.c.composite.sources[0].b.histogram.field",
        ),
        ({"sources": {"b": {"terms": {"field": "brand.keyword"}}}}, "aggs.c.composite.sources"),
        ({"sources": [{"b": {"terms": {"field": "brand.keyword"}}}], "foo": 1}, "aggs.c.composite.foo"),
    ],
    ids=[
        "size-0",
        "a-name-twice",
        "after-a-list",
        "after-a-number-for-a-keyword",
        "after-null-without-missing-bucket",
        "order-neither-asc-nor-desc",
        "missing-bucket-not-a-boolean",
        "histogram-of-a-keyword",
        "sources-an-object",
        "an-unknown-option",
    ],
)
def test_a_composite_aggregation_elasticsearch_refuses_is_a_400_naming_it(client, composite, field):
    response = composite_answer(client, composite)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_a_composite_source_option_not_answered_is_a_501_naming_it(client):
    composite = {"sources": [{"b": {"terms": {"field": "brand.keyword", "missing_order": "last"}}}]}
    response = composite_answer(client, composite)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.c.composite.sources[0].b.terms.missing_order"


@pytest.mark.parametrize(
    "aggregation",
    [
        {"histogram": {"field": "rating", "interval": 1, "missing": 5}},
        {"range": {"field": "rating", "ranges": [{"to": 4}, {"from": 4}], "missing": 0}},
    ],
    ids=["histogram", "range"],
)
def test_a_missing_value_of_a_histogram_or_range_is_a_501_not_an_undercount(client, aggregation):
    """tantivy took the option and counted the products without a rating in no bucket."""
    response = client.post("/products/_search", json={"size": 0, "aggs": {"r": aggregation}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == f"aggs.r.{next(iter(aggregation))}.missing"


def test_a_composite_after_a_number_written_as_a_string_reads_it_as_the_number(client):
    sources = [{"s": {"terms": {"field": "sales"}}}]
    first = composite_answer(client, {"sources": sources, "size": 2}).get_json()["aggregations"]["c"]
    after = {"s": str(first["after_key"]["s"])}
    page = composite_answer(client, {"sources": sources, "size": 2, "after": after}).get_json()["aggregations"]["c"]
    assert page["buckets"][0]["key"]["s"] > first["after_key"]["s"]


def test_a_composite_on_a_decimal_field_named_by_an_alias_answers_decimal_keys(settings, pipeline):
    aliased = settings.model_copy(
        update={"service": settings.service.model_copy(update={"field_aliases": {"rating_score": "rating"}})}
    )
    client = create_app(aliased, pipeline).test_client()
    sources = [{"r": {"terms": {"field": "rating_score"}}}]
    answer = composite_answer(client, {"sources": sources}).get_json()["aggregations"]["c"]
    keys = [b["key"]["r"] for b in answer["buckets"]]
    assert keys and all(isinstance(k, float) for k in keys)


def test_a_composite_histogram_too_fine_for_its_values_is_a_501(client):
    composite = {"sources": [{"p": {"histogram": {"field": "price", "interval": 1e-300}}}]}
    response = composite_answer(client, composite)
    assert response.status_code == 501 and "too fine" in response.get_json()["error"]["reason"]


def test_a_composite_missing_bucket_written_as_text_is_read_as_a_boolean(client):
    composite = {"sources": [{"c": {"terms": {"field": "attributes.color", "missing_bucket": "true"}}}], "size": 1}
    response = composite_answer(client, composite)
    assert response.status_code == 200 and response.get_json()["aggregations"]["c"]["buckets"][0]["key"] == {"c": None}


def test_partitions_of_a_terms_aggregation_are_a_501_naming_the_include(client):
    terms = {"field": "brand.keyword", "include": {"partition": 0, "num_partitions": 10}}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"b": {"terms": terms}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.b.terms.include"


def test_an_exclude_that_is_neither_a_pattern_nor_a_list_is_a_400_naming_it(client):
    terms = {"field": "brand.keyword", "exclude": 7}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"b": {"terms": terms}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "aggs.b.terms.exclude"
