"""Probes of the service's own endpoints as a browser (or anyone) can reach them: paths with a doubled slash, query
strings that are not UTF-8 on the recommendation routes, and what a cache in front learns about CORS answers.

Each test here failed on the real service when written; the comment in each says what happened and what should.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from live_server import gunicorn_served, index_env
from service.conftest import catalog_dir, index_settings  # noqa: F401  (the service tests' index, shared)
from small_service import small_app, small_index

SHOP = "https://shop.example"


@pytest.fixture(scope="module")
def probe_index(tmp_path_factory, tiny_bert_dir):
    return small_index(tmp_path_factory.mktemp("api_probe"), tiny_bert_dir)


@pytest.fixture(scope="module")
def probe_app(probe_index):
    app, pipeline = small_app(probe_index)
    yield app
    pipeline.close()


@pytest.fixture(scope="module")
def cors_client(probe_index):
    app, pipeline = small_app(probe_index, cors_allow_origins=(SHOP,))
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def probe_client(probe_app):
    return probe_app.test_client()


@pytest.fixture(scope="module")
def product_id(probe_client) -> str:
    return probe_client.post("/search", json={"query": "sofa", "size": 1}).get_json()["hits"][0]["id"]


# ------------------------------------------------------------------ a doubled slash in a path


def test_a_route_path_with_a_doubled_slash_is_answered_in_json_not_an_html_redirect(probe_client, product_id):
    # Was: `GET /products/ID//similar` (likewise `/products//ID/similar`, `POST /ubi//events`,
    # `DELETE /profiles//u1`) is Werkzeug's merge_slashes redirect: a 308 with a text/html page, bypassing the app's
    # JSON error handlers (Flask hands RoutingExceptions back as they are). Must: a JSON answer like every other
    # (a 404, or the route served as if the slash were single), never an HTML page a front end cannot parse.
    response = probe_client.get(f"/products/{product_id}//similar")
    assert response.status_code != 308 and response.is_json, (response.status_code, response.content_type)


def test_a_doubled_slash_is_never_redirected_to_the_host_the_request_named(probe_client):
    # Was: `POST /ubi//events` with `Host: evil.example` is a 308 whose Location is
    # `http://evil.example/ubi/events`: the Host header reflected into a permanent (cacheable) redirect, which a
    # browser follows by posting the same body (the shopper's events) to that host. Must: no redirect built from
    # the Host header at all.
    response = probe_client.post("/ubi//events", json={}, headers={"Host": "evil.example"})
    assert "evil.example" not in response.headers.get("Location", ""), response.headers.get("Location")


@pytest.fixture(scope="module")
def served(index_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:  # noqa: F811
    env = {**index_env(index_settings), "SEARCH_RERANK_SERVICE__WORKERS": "1", "SEARCH_RERANK_SERVICE__THREADS": "2"}
    with gunicorn_served(env, tmp_path_factory.mktemp("api-probe")) as server:
        yield {**server, "port": urlsplit(server["url"]).port}


def http_1_0(port: int, target: bytes) -> bytes:
    """``GET target`` as an HTTP/1.0 request without a Host header (which HTTP/1.0 allows); everything answered."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=15) as sock:
        sock.sendall(b"GET " + target + b" HTTP/1.0\r\n\r\n")
        while chunk := sock.recv(65536):
            received += chunk
    return received


def test_an_http_1_0_request_with_a_doubled_slash_is_not_told_the_servers_own_address(served):
    # Was: under gunicorn, `GET /products//P0000001/similar HTTP/1.0` without a Host header is a 308 whose
    # Location (and HTML body) is `http://127.0.0.1:<port>/products/P0000001/similar`: the address and port the
    # worker listens on, an internal URL behind any proxy or load balancer. Must: no internal address in any answer.
    head, _, body = http_1_0(served["port"], b"/products//P0000001/similar").partition(b"\r\n\r\n")
    assert b"127.0.0.1" not in head and b"127.0.0.1" not in body, head.decode("latin-1")


# ------------------------------------------------------------------ query strings that are not UTF-8


@pytest.mark.parametrize("route", ["similar", "also"])
def test_a_recommendation_filter_that_is_not_utf8_once_decoded_is_a_400_naming_it(probe_client, product_id, route):
    # Was: `GET /products/ID/similar?brand=%ff` is a 200: Werkzeug decodes %ff as U+FFFD, so the filter runs on a
    # brand nobody sent (here matching nothing, an empty list of hits). The Elasticsearch routes refuse exactly this
    # (`q=%ff`, es_api.uri_params: "the URI parameter is not UTF-8 once percent-decoded"). Must: the same 400
    # naming `brand`, as the path's own escapes are refused.
    response = probe_client.get(f"/products/{product_id}/{route}?brand=%ff")
    assert response.status_code == 400, response.get_data(as_text=True)
    assert response.get_json()["fields"][0]["field"] == "brand"


# ------------------------------------------------------------------ CORS answers and caches


@pytest.mark.parametrize("origin", [None, "https://evil.example"])
def test_a_cors_enabled_get_answer_says_it_varies_by_origin_whatever_the_origin(cors_client, product_id, origin):
    # Was: with service.cors_allow_origins set, `GET /products/ID/similar` sent without an Origin (or from an origin
    # not allowed) is answered with no `Vary: Origin`, while the same URL from https://shop.example carries
    # Access-Control-Allow-Origin. A shared cache (CDN, nginx proxy_cache) may then keep the answer without CORS
    # headers and hand it to the shop's page, which cannot read it. The bridge's own refusals already send
    # `Vary: Origin` in exactly these cases (cors.refusal_headers). Must: `Vary: Origin` on every answer of a
    # route whose CORS headers depend on the Origin (the Fetch standard's advice for CORS and HTTP caches).
    response = cors_client.get(f"/products/{product_id}/similar", headers={"Origin": origin} if origin else {})
    assert response.status_code == 200
    assert "origin" in response.headers.get("Vary", "").lower(), dict(response.headers)
