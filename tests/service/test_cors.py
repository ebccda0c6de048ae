"""Cross-origin requests: a shop's page on another origin calls the service as it would call Elasticsearch with
``http.cors`` on, and only the configured origins' pages may read the answers."""

import asyncio

import pytest

from search_rerank.core.settings import ServiceSettings, load_settings
from search_rerank.serving import create_app
from search_rerank.serving.asgi_bridge import BufferedWsgiBridge

SHOP = "https://shop.example"
MSEARCH = '{"index": "products"}\n{"query": {"match": {"title": "sofa"}}, "size": 2}\n'


def app_client(settings, pipeline, **service):
    served = settings.model_copy(update={"service": settings.service.model_copy(update=service)})
    return create_app(served, pipeline).test_client()


@pytest.fixture
def cors_client(settings, pipeline):
    return app_client(settings, pipeline, cors_allow_origins=(SHOP, "/https://[a-z]+\\.shop\\.example/"))


def preflight(client, path, origin=SHOP, headers="content-type"):
    return client.options(
        path,
        headers={"Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": headers},
    )


def test_a_preflight_from_an_allowed_origin_allows_the_search_and_the_headers_a_front_end_sends(cors_client):
    response = preflight(cors_client, "/products/_search", headers="content-type,x-search-rerank-user")
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "POST" in response.headers["Access-Control-Allow-Methods"]
    allowed = response.headers["Access-Control-Allow-Headers"].lower()
    assert "content-type" in allowed and "x-search-rerank-user" in allowed
    assert int(response.headers["Access-Control-Max-Age"]) > 0


@pytest.mark.parametrize(
    "path", ["/_msearch", "/products/_msearch", "/search", "/ubi/events", "/ubi_events", "/ubi_queries", "/_count"]
)
def test_every_route_a_page_calls_answers_its_preflight(cors_client, path):
    response = preflight(cors_client, path)
    assert response.status_code == 200 and response.headers["Access-Control-Allow-Origin"] == SHOP


def test_a_search_from_an_allowed_origin_can_be_read_with_its_query_id(cors_client):
    response = cors_client.post(
        "/_msearch", data=MSEARCH, content_type="application/x-ndjson", headers={"Origin": SHOP}
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SHOP
    assert "Origin" in response.headers["Vary"]
    assert "x-query-id" in response.headers["Access-Control-Expose-Headers"].lower()


def test_an_error_answer_to_an_allowed_origin_can_be_read_too(cors_client):
    """A page must see a 400's reason, not a browser's opaque CORS failure."""
    response = cors_client.post("/search", json={"size": -1}, headers={"Origin": SHOP})
    assert response.status_code == 400 and response.headers["Access-Control-Allow-Origin"] == SHOP


@pytest.mark.parametrize(
    "origin",
    ["https://evil.example", "https://shop.example.evil.example", "http://shop.example", "https://a.shop.example.evil"],
)
def test_another_origin_gets_no_cors_headers(cors_client, origin):
    response = cors_client.post("/search", json={"query": "sofa"}, headers={"Origin": origin})
    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Access-Control-Allow-Origin" not in preflight(cors_client, "/search", origin=origin).headers


def test_an_origin_matching_the_whole_regular_expression_is_allowed(cors_client):
    response = cors_client.post("/search", json={"query": "sofa"}, headers={"Origin": "https://eu.shop.example"})
    assert response.headers["Access-Control-Allow-Origin"] == "https://eu.shop.example"


def test_an_ipv6_origin_is_matched_as_written_not_read_as_a_pattern(settings, pipeline):
    client = app_client(settings, pipeline, cors_allow_origins=("http://[::1]:8080",))
    allowed = client.post("/search", json={"query": "sofa"}, headers={"Origin": "http://[::1]:8080"})
    assert allowed.headers["Access-Control-Allow-Origin"] == "http://[::1]:8080"
    other = client.post("/search", json={"query": "sofa"}, headers={"Origin": "http://:8080"})
    assert "Access-Control-Allow-Origin" not in other.headers


def test_no_cors_headers_at_all_unless_origins_are_configured(client):
    response = client.post("/search", json={"query": "sofa"}, headers={"Origin": SHOP})
    assert not [name for name in response.headers.keys() if name.lower().startswith("access-control-")]


def test_a_request_without_an_origin_gets_no_cors_headers(cors_client):
    response = cors_client.post("/search", json={"query": "sofa"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_credentials_are_allowed_only_when_configured(settings, pipeline, cors_client):
    sent = {"json": {"query": "sofa"}, "headers": {"Origin": SHOP}}
    assert "Access-Control-Allow-Credentials" not in cors_client.post("/search", **sent).headers
    client = app_client(settings, pipeline, cors_allow_origins=(SHOP,), cors_allow_credentials=True)
    assert client.post("/search", **sent).headers["Access-Control-Allow-Credentials"] == "true"


@pytest.mark.parametrize(
    "origins",
    [("https://shop.example/",), ("https://shop.example/search",), ("shop.example",), ("/unclosed(/",), ("",)],
)
def test_an_origin_setting_that_names_no_origin_is_refused(origins):
    with pytest.raises(ValueError, match="cors_allow_origins"):
        ServiceSettings(cors_allow_origins=origins)


def test_credentials_with_any_origin_are_refused():
    """A browser refuses the wildcard with credentials, and answering every origin by name would let any site
    read what a shopper's cookies unlock."""
    with pytest.raises(ValueError, match="cors_allow_credentials needs the origins named"):
        ServiceSettings(cors_allow_origins=("*",), cors_allow_credentials=True)


def test_origins_can_be_set_from_the_environment(monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_SERVICE__CORS_ALLOW_ORIGINS", f'["{SHOP}"]')
    assert load_settings(None).service.cors_allow_origins == (SHOP,)


def refused_through_the_worker(client_app, origin):
    """A corrupt gzip body through gunicorn's worker bridge (asgi_bridge), which answers it before the app runs."""
    bridge = BufferedWsgiBridge(client_app, threads=1, max_body_bytes=64 * 1024, queue_timeout_s=5)
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/search",
        "headers": [
            (b"origin", origin.encode()),
            (b"content-encoding", b"gzip"),
            (b"content-type", b"application/json"),
        ],
    }
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"\x1f\x8b not gzip", "more_body": False}

    async def send(message):
        sent.append(message)

    asyncio.run(bridge(scope, receive, send))
    start = sent[0]
    return start["status"], {name.decode(): value.decode() for name, value in start["headers"]}


def test_an_answer_the_worker_gives_before_the_app_runs_can_be_read_by_an_allowed_origin(settings, pipeline):
    served = settings.model_copy(
        update={"service": settings.service.model_copy(update={"cors_allow_origins": (SHOP,)})}
    )
    status, headers = refused_through_the_worker(create_app(served, pipeline), SHOP)
    assert status == 400 and headers["access-control-allow-origin"] == SHOP
    assert "x-query-id" in headers["access-control-expose-headers"].lower()
    status, headers = refused_through_the_worker(create_app(served, pipeline), "https://evil.example")
    assert status == 400 and "access-control-allow-origin" not in headers
