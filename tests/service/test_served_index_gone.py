"""The served index deleted under a running service (by hand, or an alias moved by another tool): every answer is
a degraded one or a 502 by reason code, ``cluster_misconfigured``, never a 500 and never the internal index name.

Before, the missing index was a ConfigError, which only start-up and the CLI expect: a ranked search degraded,
but a sorted page, a count and a multi-search answered 500.
"""

from __future__ import annotations

import json

import pytest
from servers import server_retriever

from search_rerank.core.reasons import CLUSTER_MISCONFIGURED
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import BreakerSettings

WORDS = {"match": {"title": "sofa"}}


@pytest.fixture(params=["opensearch", "elasticsearch"])
def gone(request, make_cluster_app):
    """A client of the app on a cluster index that has since been deleted, and that index's name."""
    app = make_cluster_app(request.param)
    lexical = app.config["SETTINGS"].lexical
    retriever = server_retriever(lexical)
    for name in retriever.aliases(f"{lexical.index}*"):
        retriever.delete_index(name)
    return app.test_client(), lexical.index


def assert_bad_gateway(response, index: str):
    assert response.status_code == 502, response.get_data(as_text=True)
    assert response.get_json()["error"]["type"] == "bad_gateway"
    assert CLUSTER_MISCONFIGURED in response.get_json()["error"]["reason"]
    assert index not in response.get_data(as_text=True)


def test_a_ranked_search_degrades_with_the_reason(gone):
    client, index = gone
    response = client.post("/products/_search", json={"query": WORDS})
    assert response.status_code == 200
    assert response.get_json()["search_rerank"]["degraded"][LEXICAL] == CLUSTER_MISCONFIGURED
    assert index not in response.get_data(as_text=True)


def test_a_page_the_cluster_sorts_is_a_502_with_the_reason(gone):
    client, index = gone
    assert_bad_gateway(client.post("/products/_search", json={"query": WORDS, "sort": [{"price": "asc"}]}), index)


def test_a_count_is_a_502_with_the_reason(gone):
    client, index = gone
    assert_bad_gateway(client.post("/products/_count", json={"query": WORDS}), index)


def test_a_multi_search_answers_the_sorted_search_with_its_502_and_the_ranked_one_degraded(gone):
    client, index = gone
    searches = [{}, {"query": WORDS, "sort": [{"price": "asc"}]}, {}, {"query": WORDS}]
    lines = "".join(json.dumps(line) + "\n" for line in searches)
    response = client.post("/products/_msearch", data=lines, content_type="application/x-ndjson")
    assert response.status_code == 200
    sorted_page, ranked = response.get_json()["responses"]
    assert sorted_page["status"] == 502 and CLUSTER_MISCONFIGURED in sorted_page["error"]["reason"]
    assert ranked["status"] == 200 and ranked["search_rerank"]["degraded"][LEXICAL] == CLUSTER_MISCONFIGURED
    assert index not in response.get_data(as_text=True)


def test_the_search_api_degrades_with_the_reason(gone):
    client, _ = gone
    response = client.post("/search", json={"query": "sofa"})
    assert response.status_code == 200
    assert response.get_json()["degraded"][LEXICAL] == CLUSTER_MISCONFIGURED


def test_ready_says_the_cluster_is_misconfigured(gone):
    client, index = gone
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["reason"] == CLUSTER_MISCONFIGURED
    assert index not in response.get_data(as_text=True)


def test_sorted_pages_that_keep_failing_open_the_breaker_and_are_then_refused_at_once(gone):
    client, _ = gone
    body = {"query": WORDS, "sort": [{"price": "asc"}]}
    statuses = [client.post("/products/_search", json=body).status_code for _ in range(BreakerSettings().failures + 1)]
    assert statuses[:-1] == [502] * BreakerSettings().failures
    refused = client.post("/products/_search", json=body)
    assert refused.status_code == 503 and int(refused.headers["Retry-After"]) >= 1
