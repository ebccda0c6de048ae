"""Health, readiness, metrics, request ids in JSON logs, and the generated OpenAPI document."""

import io
import json
import logging

import pytest
from prometheus_client import REGISTRY

from search_rerank.core.reasons import ERROR
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving import create_app
from search_rerank.serving.logs import JsonFormatter


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


class Broken:
    name = "dense"

    def warm_up(self):
        pass

    def search(self, *args, **kwargs):
        raise ConnectionError("leg unreachable")

    def count(self):
        raise OSError("index files missing")


@pytest.fixture
def access_log():
    """The access logger's lines, formatted as in production."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("search_rerank.access")
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(level)


def test_health_says_alive(client):
    assert client.get("/health").get_json() == {"status": "alive"}


def test_ready_when_every_index_holds_the_catalog(client):
    body = client.get("/ready").get_json()
    assert body["status"] == "ready"
    assert body["counts"] == {"products": 300, "lexical": 300, "dense": 300}


def test_ready_names_the_models_without_a_path_on_the_server(settings, tiny_cross_encoder_dir):
    model = {"model": str(tiny_cross_encoder_dir), "device": "cpu", "require_card": False}
    reranked = settings.model_copy(update={"rerank": settings.rerank.model_copy(update=model)})
    pipeline = open_pipeline(reranked)
    response = create_app(reranked, pipeline).test_client().get("/ready")
    pipeline.close()
    body = response.get_json()
    assert body["status"] == "ready" and body["reranker"] == tiny_cross_encoder_dir.name
    assert str(settings.index_dir) not in response.text and str(tiny_cross_encoder_dir) not in response.text


def test_not_ready_when_an_index_cannot_be_read(client, pipeline, caplog):
    pipeline.legs["dense"] = Broken()
    response = client.get("/ready")
    assert response.status_code == 503
    assert response.get_json()["reason"] == ERROR
    assert "index files missing" in caplog.text


def test_request_id_is_echoed(client):
    assert client.get("/health", headers={"X-Request-Id": "req-42"}).headers["X-Request-Id"] == "req-42"


@pytest.mark.parametrize("sent", [None, "", "a b", "x" * 200, "<script>"])
def test_missing_or_unsafe_request_id_is_replaced_by_a_fresh_one(client, sent):
    headers = {} if sent is None else {"X-Request-Id": sent}
    returned = client.get("/health", headers=headers).headers["X-Request-Id"]
    assert returned != sent and len(returned) == 32


def test_access_log_is_a_json_line_with_the_request_id(client, access_log):
    client.post("/search", json={"query": "sofa"}, headers={"X-Request-Id": "req-7"})
    (line,) = access_log()
    assert line["request_id"] == "req-7"
    assert (line["endpoint"], line["status"], line["method"]) == ("/search", 200, "POST")
    assert line["duration_ms"] > 0


def test_requests_are_counted_by_route_and_status(client):
    before = sample("search_rerank_requests_total", endpoint="/<index>/_search", status="501")
    collate = {"query": {"source": {"match": {"title": "{{suggestion}}"}}}}  # a 501: nothing runs the query
    body = {"suggest": {"s": {"text": "sofa", "phrase": {"field": "title", "collate": collate}}}}
    assert client.post("/products/_search", json=body).status_code == 501
    assert sample("search_rerank_requests_total", endpoint="/<index>/_search", status="501") == before + 1


def test_stage_and_end_to_end_latencies_are_observed(client):
    stage = sample("search_rerank_stage_seconds_count", stage="lexical")
    request = sample("search_rerank_request_seconds_count", endpoint="/search")
    client.post("/search", json={"query": "sofa"})
    assert sample("search_rerank_stage_seconds_count", stage="lexical") == stage + 1
    assert sample("search_rerank_request_seconds_count", endpoint="/search") == request + 1


def test_degraded_answers_are_counted_by_stage(client, pipeline):
    before = sample("search_rerank_degraded_answers_total", stage="dense")
    pipeline.legs["dense"] = Broken()
    client.post("/search", json={"query": "sofa"})
    assert sample("search_rerank_degraded_answers_total", stage="dense") == before + 1


def test_unexpected_errors_are_counted(client, pipeline):
    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    pipeline.run = broken
    before = sample("search_rerank_errors_total", endpoint="/search")
    client.post("/search", json={"query": "sofa"})
    assert sample("search_rerank_errors_total", endpoint="/search") == before + 1


def test_metrics_are_served_in_prometheus_text_format(client):
    client.post("/search", json={"query": "sofa"})
    response = client.get("/metrics")
    assert response.content_type.startswith("text/plain")
    assert 'search_rerank_requests_total{endpoint="/search",status="200"}' in response.get_data(as_text=True)


def test_openapi_document_describes_the_search_request_model(client):
    doc = client.get("/openapi.json").get_json()
    assert {"/search", "/{index}/_search", "/health", "/ready", "/metrics"} <= set(doc["paths"])
    request = doc["components"]["schemas"]["SearchRequest"]
    assert request["required"] == ["query"]
    assert {"query", "filters", "size", "from", "explain", "stages", "overrides", "user_id", "session_id"} == set(
        request["properties"]
    )
    assert "Overrides" in doc["components"]["schemas"] and "Filters" in doc["components"]["schemas"]
