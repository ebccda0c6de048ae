"""Answers carry reason codes, never exception texts or the cluster's address; the detail goes to the log.

The cluster is a real osmem-server, started for these tests and stopped
after the app is built, as a cluster that goes down under a running service.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from urllib.parse import urlsplit

import pytest

from search_rerank.backends.cluster import OpenSearchRetriever
from search_rerank.core.errors import ClusterUnavailable, StageError
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.reasons import CLUSTER_UNAVAILABLE, ERROR, TIMEOUT, reason_code
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import LexicalSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.serving import create_app
from search_rerank.serving.logs import JsonFormatter

CATALOG = [
    Product(id="p1", title="corner sofa", brand="Acme", category="Furniture > Sofas", price=499.0),
    Product(id="p2", title="oak table", brand="Bolt", category="Furniture > Tables", price=249.5),
]
BRANDS = {"brands": {"terms": {"field": "facet.brand"}}}


@pytest.fixture(scope="module")
def dead_cluster(tmp_path_factory):
    """An app on a cluster index, and the address of that cluster, which is down by the time the tests run."""
    osmem = pytest.importorskip("osmem_server", reason="osmem-server is not installed (pip install -e '.[dev]')")
    try:
        server = osmem.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)
    except (osmem.OsmemError, OSError) as exc:
        pytest.skip(f"osmem-server cannot start here: {exc}")
    try:
        lexical = LexicalSettings(
            backend="opensearch", url=server.url, index=f"leaks-{uuid.uuid4().hex[:8]}", retries=0, request_timeout_s=5
        )
        retriever = OpenSearchRetriever(lexical)
        retriever.add(CATALOG)
        root = tmp_path_factory.mktemp("leaks")
        store = ProductStore(root / "store.sqlite")
        store.add(CATALOG)
        store.refresh_popularity()
        settings = Settings(index_dir=root / "unused", lexical=lexical, dense={"enabled": False})
        app = create_app(settings, SearchPipeline(settings, {LEXICAL: retriever}, store))
    finally:
        server.close()
    yield app.test_client(), urlsplit(server.url).netloc


@pytest.fixture
def json_log():
    """The service's log lines under ``search_rerank``, formatted as in production (JSON, with the request id)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("search_rerank")
    logger.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)


def test_a_dead_cluster_is_cluster_unavailable_in_degraded_without_its_address(dead_cluster):
    client, address = dead_cluster
    response = client.post("/products/_search", json={"query": {"match": {"title": "sofa"}}, "aggs": BRANDS})
    assert response.status_code == 200
    assert response.get_json()["search_rerank"]["degraded"] == {
        LEXICAL: CLUSTER_UNAVAILABLE,
        "aggregations": CLUSTER_UNAVAILABLE,
    }
    assert address not in response.get_data(as_text=True)


def test_ready_with_a_dead_cluster_says_cluster_unavailable_without_its_address(dead_cluster):
    client, address = dead_cluster
    response = client.get("/ready")
    assert response.status_code == 503
    body = response.get_json()
    assert (body["status"], body["reason"]) == ("not ready", CLUSTER_UNAVAILABLE)
    assert address not in response.get_data(as_text=True)


def test_the_detail_of_a_degraded_answer_is_logged_under_its_request_id(dead_cluster, json_log):
    client, address = dead_cluster
    client.post(
        "/products/_search",
        json={"query": {"match": {"title": "sofa"}}, "aggs": BRANDS},
        headers={"X-Request-Id": "leak-check-1"},
    )
    details = [line["message"] for line in json_log() if line.get("request_id") == "leak-check-1"]
    assert any(address in message and "lexical" in message for message in details)
    assert any(address in message and "aggregations" in message for message in details)


def test_a_query_the_legs_cannot_encode_is_refused_not_answered_with_exception_texts(dead_cluster):
    client, _ = dead_cluster
    body = '{"query": {"match": {"title": "sofa \\udfff"}}}'
    response = client.post("/products/_search", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "query.match.title"
    assert "Error" not in response.get_data(as_text=True)


def test_a_wrapped_timeout_is_the_timeout_code():
    assert reason_code(StageError("rerank", TimeoutError("timed out after 2s"))) == TIMEOUT


def test_a_cluster_failure_rewrapped_by_another_leg_is_still_cluster_unavailable():
    try:
        try:
            raise ClusterUnavailable(LEXICAL, "no answer from opensearch at http://10.0.0.7:9200")
        except StageError as exc:
            raise StageError("dense", exc.cause) from exc  # how the engine kNN leg relabels it
    except StageError as relabelled:
        assert reason_code(relabelled) == CLUSTER_UNAVAILABLE


def test_any_other_failure_is_the_error_code():
    assert reason_code(ValueError("index files missing at /srv/idx")) == ERROR
