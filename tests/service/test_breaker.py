"""A frozen cluster (SIGSTOP: connections accepted, never answered) costs its parts of the answer, not the time.

The service runs under gunicorn as it is deployed, one worker with four
threads so that a thread held on the cluster shows, on an index whose lexical
leg is an osmem-server of its own, frozen and thawed by the tests. Bounds are
generous: the point is "about the breaker's time, not the cluster's timeout".
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from typing import Any

import pytest
import requests
from live_server import gunicorn_served
from servers import frozen, start_osmem

from search_rerank.core.reasons import CIRCUIT_OPEN
from search_rerank.core.settings import load_settings
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index

INDEX = "breaker-products"
CLUSTER_TIMEOUT_S = 5  # the cluster client's own timeout: what every request waited without a breaker
FAST_S = 2.0  # "at once", with room for a busy machine
FAILURES = 2
COOLDOWN_S = 2.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    server = start_osmem()
    yield server
    server.close()


@pytest.fixture(scope="module")
def service(cluster, catalog_dir, tiny_bert_dir, tmp_path_factory) -> Iterator[dict[str, Any]]:
    root = tmp_path_factory.mktemp("breaker")
    path = root / "settings.json"
    settings = {
        "index_dir": str(root / "index"),
        "lexical": {
            "backend": "opensearch",
            "url": cluster.url,
            "index": INDEX,
            "candidates": 40,
            "timeout_s": 1.0,
            "request_timeout_s": CLUSTER_TIMEOUT_S,
            "retries": 0,
        },
        "dense": {"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40},
        "breaker": {"failures": FAILURES, "cooldown_s": COOLDOWN_S},
        # No result cache: a search repeated while the cluster is frozen must reach the legs, not a stored answer.
        "service": {
            "workers": 1,
            "threads": 4,
            "aggregations_timeout_s": 1.0,
            "ready_timeout_s": 1.0,
            "cache_size": 0,
        },
    }
    path.write_text(json.dumps(settings), encoding="utf-8")
    build_index(iter_catalog(catalog_dir), load_settings(path), progress=False)
    with gunicorn_served({"SEARCH_RERANK_SETTINGS": str(path)}, root) as server:
        yield server


def timed(method: str, url: str, **kwargs: Any) -> tuple[requests.Response, float]:
    started = time.perf_counter()
    response = requests.request(method, url, timeout=60, **kwargs)
    return response, time.perf_counter() - started


def search(service, **body: Any) -> tuple[dict[str, Any], float]:
    response, took = timed("POST", f"{service['url']}/search", json={"query": "sofa", "explain": True, **body})
    assert response.status_code == 200
    return response.json(), took


def open_lexical_breaker(service) -> None:
    """Search until the lexical leg is refused at once (each earlier search waits out the leg's deadline)."""
    for _ in range(FAILURES * 5):
        if search(service)[0]["degraded"].get("lexical") == CIRCUIT_OPEN:
            return
    pytest.fail("the lexical breaker never opened")


@pytest.fixture(autouse=True)
def recovered(service) -> Iterator[None]:
    """After each test, the cluster is back and both legs answer again (the breakers closed)."""
    yield
    deadline = time.monotonic() + 60
    while search(service)[0]["degraded"]:
        if time.monotonic() > deadline:
            pytest.fail("the breakers did not close within 60 s of the cluster coming back")
        time.sleep(0.5)


def test_search_answers_at_once_from_the_dense_leg_once_the_breaker_opens(cluster, service):
    with frozen(cluster):
        open_lexical_breaker(service)
        body, took = search(service)
    assert took < FAST_S
    assert body["degraded"] == {"lexical": CIRCUIT_OPEN}
    assert body["hits"] and all(hit["explanation"]["legs"] == ["dense"] for hit in body["hits"])


def test_breaker_closes_once_the_cluster_is_back(cluster, service):
    with frozen(cluster):
        open_lexical_breaker(service)
    deadline = time.monotonic() + 30
    while (body := search(service)[0])["degraded"]:
        assert time.monotonic() < deadline, f"still degraded 30 s after the thaw: {body['degraded']}"
        time.sleep(0.5)
    assert any("lexical" in hit["explanation"]["legs"] for hit in body["hits"])


def test_open_breaker_is_in_the_metrics(cluster, service):
    with frozen(cluster):
        open_lexical_breaker(service)
        search(service)
        metrics = requests.get(f"{service['url']}/metrics", timeout=30).text
    assert 'search_rerank_breaker_state{dependency="lexical"} 2.0' in metrics
    refused = [
        line
        for line in metrics.splitlines()
        if line.startswith('search_rerank_breaker_refused_total{dependency="lexical"}')
    ]
    assert refused and float(refused[0].rsplit(" ", 1)[1]) >= 1


def test_aggregations_are_left_out_at_once_once_their_breaker_opens(cluster, service):
    body = {"query": {"match": {"title": "sofa"}}, "aggs": {"brands": {"terms": {"field": "facet.brand"}}}}
    with frozen(cluster):
        for _ in range(FAILURES * 5):
            response, took = timed("POST", f"{service['url']}/{INDEX}/_search", json=body)
            degraded = response.json()["search_rerank"]["degraded"]
            if degraded.get("aggregations") == CIRCUIT_OPEN:
                break
    assert response.status_code == 200
    assert degraded["aggregations"] == CIRCUIT_OPEN
    assert took < FAST_S


def test_passthrough_is_refused_at_once_with_a_503_once_its_breaker_opens(cluster, service):
    mapping = f"{service['url']}/{INDEX}/_mapping"
    with frozen(cluster):
        with ThreadPoolExecutor(FAILURES) as pool:  # the failures that open it, side by side
            waited = list(pool.map(lambda _: timed("GET", mapping), range(FAILURES)))
        response, took = timed("GET", mapping)
    assert all(r.status_code == 504 for r, _ in waited)
    assert response.status_code == 503 and took < FAST_S
    assert response.json()["error"]["reason_code"] == CIRCUIT_OPEN
    assert int(response.headers["Retry-After"]) >= 1
    assert cluster.url.split("//")[1] not in response.text


def test_ready_answers_concurrent_probes_quickly_while_the_cluster_is_frozen(cluster, service):
    with frozen(cluster), ThreadPoolExecutor(8) as pool:
        probes = list(pool.map(lambda _: timed("GET", f"{service['url']}/ready"), range(8)))
    assert all(took < FAST_S for _, took in probes), [round(took, 2) for _, took in probes]
    assert all(r.status_code == 503 for r, _ in probes), [(r.status_code, r.text[:300]) for r, _ in probes]
    assert {r.json()["reason"] for r, _ in probes} <= {"timeout", CIRCUIT_OPEN}
    assert all(cluster.url.split("//")[1] not in r.text for r, _ in probes)


def test_ready_reports_every_breaker_state(cluster, service):
    with frozen(cluster):
        open_lexical_breaker(service)
        body = requests.get(f"{service['url']}/ready", timeout=30).json()
    assert body["breakers"]["lexical"] == "open"
    assert set(body["breakers"]) == {"lexical", "dense", "aggregations", "passthrough", "rerank", "profile_store"}


def test_abandoned_ready_probes_leave_health_and_search_answering(cluster, service):
    with frozen(cluster):
        for _ in range(8):  # each given up by its client, as a load balancer's probe is
            with suppress(requests.Timeout):
                requests.get(f"{service['url']}/ready", timeout=0.05)
        health, health_took = timed("GET", f"{service['url']}/health")
        body, search_took = search(service)
    assert health.status_code == 200 and health_took < FAST_S
    assert body["hits"] and search_took < FAST_S + 1.0  # at most the lexical deadline before the breaker opens
