"""Elasticsearch requests that are not searches: passed through to the cluster, or a 501 naming the path."""

from __future__ import annotations

import base64
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
import urllib3
from flask import Flask
from live_server import handled, served

from search_rerank.backends.cluster import ElasticsearchRetriever, OpenSearchRetriever
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import Settings
from search_rerank.core.store import ProductStore
from search_rerank.serving import create_app
from search_rerank.serving.passthrough import (
    ClusterPassthrough,
    NotCanonical,
    OpenPointsInTime,
    is_read,
    path_segments,
)


@pytest.fixture(params=["opensearch", "elasticsearch"])
def engine(request) -> str:
    return request.param


@pytest.fixture
def cluster_app(engine, make_cluster_app) -> Flask:
    return make_cluster_app(engine)


def index_of(app: Flask) -> str:
    return app.config["SETTINGS"].lexical.index


def direct(app: Flask, method: str, target: str, body: Any = None) -> urllib3.BaseHTTPResponse:
    """The same request sent to the cluster itself, with the service's credentials."""
    lexical = app.config["SETTINGS"].lexical
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if lexical.username is not None:
        headers.update(urllib3.make_headers(basic_auth=f"{lexical.username}:{lexical.password.get_secret_value()}"))
    if lexical.api_key is not None:
        headers["Authorization"] = f"ApiKey {lexical.api_key.get_secret_value()}"
    return urllib3.request(
        method,
        lexical.url.rstrip("/") + target,
        headers=headers,
        body=json.dumps(body) if body is not None else None,
        retries=False,
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- passed through as it is -------------------------------------------------------------------


def test_mapping_request_gets_exactly_the_clusters_answer(cluster_app):
    target = f"/{index_of(cluster_app)}/_mapping"
    ours, theirs = cluster_app.test_client().get(target), direct(cluster_app, "GET", target)
    assert (ours.status_code, ours.data, ours.content_type) == (
        theirs.status,
        theirs.data,
        theirs.headers["Content-Type"],
    )
    assert "properties" in json.dumps(ours.get_json())


def test_count_of_the_product_indexs_own_fields_is_the_clusters_count(cluster_app):
    # Answered by the service (its field names mapped as in a search), so the same count the cluster gives.
    target, body = f"/{index_of(cluster_app)}/_count", {"query": {"match": {"title": "sofa"}}}
    ours = cluster_app.test_client().post(target, json=body)
    assert ours.status_code == 200
    assert ours.get_json()["count"] == json.loads(direct(cluster_app, "POST", target, body).data)["count"] == 4


def test_query_string_is_passed_through(cluster_app):
    client = cluster_app.test_client()
    rows = client.get(
        f"/_cat/indices/{index_of(cluster_app)}", query_string={"format": "json", "h": "index"}
    ).get_json()
    assert all(set(row) == {"index"} for row in rows)
    assert any(row["index"].startswith(index_of(cluster_app)) for row in rows)  # the version behind the alias


def test_document_by_id_comes_from_the_cluster(cluster_app):
    body = cluster_app.test_client().get(f"/{index_of(cluster_app)}/_doc/s1").get_json()
    assert body["found"] is True and body["_source"]["title"] == "corner sofa"


def test_a_document_read_by_the_served_name_is_the_clusters_document_of_its_own_index(cluster_app):
    """The front end names the index ``products`` (service.index_names), the cluster calls it otherwise
    (lexical.index): the read is sent on the cluster's name, as a search of ``products`` is."""
    assert index_of(cluster_app) != "products"
    client = cluster_app.test_client()
    body = client.get("/products/_doc/s1").get_json()
    assert body["found"] is True and body["_source"]["title"] == "corner sofa"
    assert body["_index"].startswith(index_of(cluster_app))  # its version, as Elasticsearch names an alias's index
    assert client.head("/products").status_code == 200
    assert client.get("/products/_mapping").get_json() == client.get(f"/{index_of(cluster_app)}/_mapping").get_json()


def test_a_cat_count_of_the_served_name_counts_the_clusters_index(cluster_app):
    client = cluster_app.test_client()
    ours = client.get("/_cat/count/products?format=json").get_json()
    theirs = json.loads(direct(cluster_app, "GET", f"/_cat/count/{index_of(cluster_app)}?format=json").data)
    assert [row["count"] for row in ours] == [row["count"] for row in theirs] != ["0"]


def test_a_multi_get_of_the_served_index_is_the_clusters_answer(cluster_app):
    target = f"/{index_of(cluster_app)}/_mget"
    ours = cluster_app.test_client().post(target, json={"ids": ["s1", "nope"]})
    assert ours.status_code == 200
    assert ours.get_json() == json.loads(direct(cluster_app, "POST", target, {"ids": ["s1", "nope"]}).data)
    assert [doc["found"] for doc in ours.get_json()["docs"]] == [True, False]


def test_cluster_errors_come_back_with_the_clusters_status_and_body(cluster_app):
    target = f"/{index_of(cluster_app)}/_doc/no-such-document"
    ours, theirs = cluster_app.test_client().get(target), direct(cluster_app, "GET", target)
    assert ours.status_code == theirs.status == 404
    assert ours.get_json() == json.loads(theirs.data)


def test_an_index_not_served_is_elasticsearchs_404_without_asking_the_cluster(recorded_app):
    app, seen = recorded_app
    response = app.test_client().get("/search-rerank-profiles/_doc/user:alice")
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert (error["type"], error["index"]) == ("index_not_found_exception", "search-rerank-profiles")
    assert seen == []


def test_index_itself_is_passed_through(cluster_app):
    client = cluster_app.test_client()
    assert client.head(f"/{index_of(cluster_app)}").status_code == 200
    assert client.head("/no-such-index").status_code == 404


def test_root_is_the_page_for_browsers_and_the_cluster_info_for_clients(cluster_app):
    client = cluster_app.test_client()
    page = client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert page.content_type.startswith("text/html")
    info = client.get("/", headers={"Accept": "application/json"})
    assert info.get_json() == json.loads(direct(cluster_app, "GET", "/").data)


def test_own_routes_stay_ours_with_passthrough_on(cluster_app):
    client = cluster_app.test_client()
    assert client.get("/search").status_code == 405
    assert client.get("/health").get_json() == {"status": "alive"}
    assert client.get("/openapi.json").get_json()["openapi"].startswith("3.")


# --- what is not passed through ----------------------------------------------------------------


def test_writes_are_a_403_and_leave_the_cluster_unchanged(cluster_app):
    client, index = cluster_app.test_client(), index_of(cluster_app)
    response = client.post(f"/{index}/_doc/new?refresh=true", json={"title": "injected"})
    assert response.status_code == 403
    assert "service.passthrough_writes" in response.get_json()["error"]["reason"]
    assert client.delete(f"/{index}").status_code == 403
    assert direct(cluster_app, "GET", f"/{index}/_doc/new").status == 404


def test_writes_pass_when_allowed(engine, make_cluster_app):
    app = make_cluster_app(engine, passthrough_writes=True)
    response = app.test_client().put(f"/{index_of(app)}/_doc/new?refresh=true", json={"id": "new", "title": "x"})
    assert response.status_code in (200, 201)
    assert json.loads(direct(app, "GET", f"/{index_of(app)}/_doc/new").data)["found"] is True


def test_with_passthrough_off_a_product_by_id_is_the_served_record(make_cluster_app):
    app = make_cluster_app("opensearch", passthrough=False)
    body = app.test_client().get("/products/_doc/s1").get_json()
    assert (body["found"], body["_index"], body["_source"]["title"]) == (True, "products", "corner sofa")


def test_passthrough_off_is_a_501_naming_the_path(make_cluster_app):
    app = make_cluster_app("opensearch", passthrough=False)
    response = app.test_client().get(f"/{index_of(app)}/_mapping")
    assert response.status_code == 501
    error = response.get_json()["error"]
    assert error["unsupported"] == "_mapping"
    assert f"GET /{index_of(app)}/_mapping" in error["reason"] and "service.passthrough = false" in error["reason"]


def test_passthrough_off_answers_the_index_itself_with_a_501_naming_the_setting(make_cluster_app):
    app = make_cluster_app("opensearch", passthrough=False)
    answer = app.test_client().get(f"/{index_of(app)}")
    assert answer.status_code == 501
    assert "service.passthrough = false" in answer.get_json()["error"]["reason"]
    assert app.test_client().get("/nothing-here").status_code == 404


def test_embedded_backend_is_a_501_naming_the_path(client):
    response = client.get("/products/_mapping")
    assert response.status_code == 501
    error = response.get_json()["error"]
    assert error["unsupported"] == "_mapping"
    assert "GET /products/_mapping" in error["reason"] and "embedded backend" in error["reason"]


# --- what counts as a read, on which path --------------------------------------------------------


SERVED = frozenset({"products", "catalog-v2"})


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/"),
        ("HEAD", "/"),
        ("GET", "/products"),
        ("HEAD", "/products,catalog-v2"),
        ("POST", "/products/_validate/query"),
        ("GET", "/products/_doc/a%2Fb"),
        ("HEAD", "/products/_source/1"),
        ("POST", "/products/_field_caps"),
        ("POST", "/_analyze"),
        ("GET", "/products/_mapping/field/title"),
        ("GET", "/_cat/health"),
        ("GET", "/_cat/indices/products"),
        ("GET", "/_cat/count/products,catalog-v2"),
        ("GET", "/_cluster/health"),
        ("POST", "/products/_explain/1"),
        ("POST", "/_search/scroll"),
        ("GET", "/_search/scroll/_DXF1ZXJ5QW5kRmV0Y2gBAAAAAAAAAD4WYm9laVYtZndUQlNsdDcwakFMNjU1QQ"),
    ],
)
def test_allow_listed_read_of_a_served_index_is_a_read(method, path, engine):
    assert is_read(method, path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    ("engine", "method", "path"),
    [
        ("elasticsearch", "POST", "/products/_pit"),
        ("elasticsearch", "DELETE", "/_pit"),
        ("opensearch", "POST", "/products/_search/point_in_time"),
        ("opensearch", "DELETE", "/_search/point_in_time"),
    ],
)
def test_opening_and_closing_a_point_in_time_on_the_clusters_own_endpoint_is_a_read(engine, method, path):
    assert is_read(method, path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    ("engine", "method", "path"),
    [
        # No route of Elasticsearch 8: it falls back to its typed routes (REST compatibility with 7.x), and with a
        # compatible-with=7 content type indexes a document whose id is "point_in_time".
        ("elasticsearch", "POST", "/products/_search/point_in_time"),
        ("elasticsearch", "DELETE", "/_search/point_in_time"),
        ("opensearch", "POST", "/products/_pit"),
        ("opensearch", "DELETE", "/_pit"),
    ],
)
def test_the_other_clusters_point_in_time_endpoint_is_not_a_read(engine, method, path):
    assert not is_read(method, path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/"),
        ("POST", "/products"),
        ("PUT", "/products"),
        ("POST", "/products/_doc/1"),
        ("PUT", "/products/_mapping"),
        ("POST", "/_cat/indices"),
        ("GET", "/products/_flush"),
        ("GET", "/_refresh"),
        ("POST", "/products/_delete_by_query"),
        ("POST", "/products/_count/x"),
        ("POST", "/_cluster/reroute"),
        ("GET", "/_nodes"),
        ("POST", "/products%2F_delete_by_query"),
        ("GET", "/_security/api_key"),
        ("GET", "/_search/point_in_time/_all"),  # every client's points in time
        ("DELETE", "/_search/point_in_time/_all"),
        ("POST", "/other/_pit"),
        ("POST", "/_pit"),
        ("POST", "/other/_search/point_in_time"),
    ],
)
def test_request_off_the_allow_list_is_not_a_read(method, path, engine):
    assert not is_read(method, path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    "path",
    [
        "/search-rerank-profiles/_doc/user:alice",
        "/_all/_mapping",
        "/prod*/_mapping",
        "/products,other/_validate/query",
        "/products,-catalog-v2/_validate/query",
        "/_validate/query",
        "/_mapping",
        "/_cat/indices",
        "/_cat/indices/other",
        "/_cat/nodes",
        "/_cat/master",
        "/_aliases",
        "/_cluster/health/other",
    ],
)
def test_a_read_of_any_index_not_served_is_not_a_read(path, engine):
    assert not is_read("GET", path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    "path",
    [
        "/products/_mtermvectors",
        "/products/_search/template",
        "/products/_msearch/template",
        "/_render/template",
    ],
)
def test_an_endpoint_whose_body_can_name_other_indices_or_scripts_is_not_a_read(path, engine):
    assert not is_read("POST", path_segments(path), SERVED, engine)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/products/_explain/_delete_by_query"),
        ("POST", "/products/_termvectors/_update_by_query"),
        ("POST", "/products/_explain/_bulk"),
        ("GET", "/products/_doc/_search"),
        ("GET", "/products/_source/_mget"),
        ("GET", "/products/_alias/_mget"),
        ("GET", "/products/_stats/_search"),
        ("GET", "/products/_mapping/field/_search"),
    ],
)
def test_a_document_id_or_name_that_could_be_an_endpoint_is_not_a_read(method, path, engine):
    # Elasticsearch routes /{index}/{type}/_endpoint (REST compatibility with 7.x) before /{index}/_explain/{id}.
    assert not is_read(method, path_segments(path), SERVED, engine)


def test_canonical_path_decodes_to_its_segments():
    assert path_segments("/products/_doc/a%2Fb%20caf%C3%A9") == ["products", "_doc", "a/b café"]


@pytest.mark.parametrize(
    ("path", "code"),
    [
        ("/a/../b", "dot_segment"),
        ("/a/%2E%2E/b", "escaped_unreserved"),
        ("/a/%2e/b", "lower_case_escape"),
        ("/a/b%2F..", "dot_segment"),
        ("/a//b", "empty_segment"),
        ("/a/b/", "empty_segment"),
        ("/a/%zz", "bad_escape"),
        ("/a/%2", "bad_escape"),
        ("/a;x/b", "forbidden_character"),
        ("a/b", "not_absolute"),
        ("/a/%25", "double_escape"),
        ("/a/%FF", "invalid_utf8"),
        ("/a/%7F", "control_character"),
        ("/a/%EF%BC%8E", "unicode_normalisation"),
        ("/a/%5C", "backslash"),
    ],
)
def test_path_that_is_not_canonical_is_refused_naming_the_rule(path, code):
    with pytest.raises(NotCanonical) as refused:
        path_segments(path)
    assert refused.value.code == code


# --- what goes over the wire -------------------------------------------------------------------


@contextmanager
def recording_cluster() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """A cluster stand-in over real HTTP that records each request and answers with hop-by-hop headers."""
    seen: list[dict[str, Any]] = []

    class Recorder(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # it keeps connections alive, as its Keep-Alive header says

        def answer(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            seen.append({"method": self.command, "target": self.path, "headers": dict(self.headers), "body": body})
            payload = b'{"acknowledged":true}'
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.send_header("Keep-Alive", "timeout=5")
            self.send_header("X-Elastic-Product", "Elasticsearch")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = answer

        def log_message(self, *args):
            pass

    with handled(Recorder) as url:
        yield url, seen


RETRIEVERS = {"opensearch": OpenSearchRetriever, "elasticsearch": ElasticsearchRetriever}


@pytest.fixture
def recorded_app(request, tmp_path, monkeypatch):
    """The app on a cluster that records what reaches it, with service credentials and an admin token set; an
    OpenSearch cluster unless the test names the backend (``indirect``)."""
    backend = getattr(request, "param", "opensearch")
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "the-admin-token")
    with recording_cluster() as (url, seen):
        settings = Settings(
            index_dir=tmp_path / "unused",
            dense={"enabled": False},
            lexical={"backend": backend, "url": url, "username": "svc", "password": "svc-password", "retries": 0},
        )
        pipeline = SearchPipeline(
            settings, {LEXICAL: RETRIEVERS[backend](settings.lexical)}, ProductStore(tmp_path / "store.sqlite")
        )
        app = create_app(settings, pipeline)
        seen.clear()  # the start-up check
        yield app, seen


@pytest.fixture
def renamed_app(tmp_path):
    """The app on a recording cluster whose index (``shop_catalog``) is served as ``products`` and ``catalogue``."""
    with recording_cluster() as (url, seen):
        settings = Settings(
            index_dir=tmp_path / "unused",
            dense={"enabled": False},
            lexical={"backend": "opensearch", "url": url, "index": "shop_catalog", "retries": 0},
            service={"index_names": ["products", "catalogue"]},
        )
        pipeline = SearchPipeline(
            settings, {LEXICAL: OpenSearchRetriever(settings.lexical)}, ProductStore(tmp_path / "store.sqlite")
        )
        app = create_app(settings, pipeline)
        seen.clear()
        yield app, seen


@pytest.mark.parametrize(
    "method, target, sent",
    [
        ("GET", "/products/_doc/a%2Fb?_source_includes=title", "/shop_catalog/_doc/a%2Fb?_source_includes=title"),
        ("HEAD", "/catalogue", "/shop_catalog"),
        ("GET", "/products,catalogue,shop_catalog/_mapping", "/shop_catalog/_mapping"),
        ("GET", "/_cat/count/catalogue", "/_cat/count/shop_catalog"),
        ("GET", "/shop_catalog/_settings", "/shop_catalog/_settings"),
    ],
)
def test_a_read_naming_a_served_name_is_sent_on_the_clusters_index(renamed_app, method, target, sent):
    app, seen = renamed_app
    assert app.test_client().open(target, method=method).status_code == 200
    assert [(r["method"], r["target"]) for r in seen] == [(method, sent)]


@pytest.mark.parametrize(
    "method, target, status",
    [
        ("POST", "/products/_doc/1", 403),  # a write, by either name
        ("DELETE", "/catalogue", 403),
        ("POST", "/products/_count/../_delete_by_query", 400),  # not canonical: refused before anything is renamed
        ("GET", "/products,search-rerank-profiles/_doc/1", 404),  # one name not served
        ("GET", "/products,*/_doc/1", 404),
        # A body's index names are sent as written: the front end's name is not the cluster's index.
        ("POST", "/_mget", 403),
        ("POST", "/shop_catalog/_mget", 403),
        ("POST", "/products/_validate/query", 403),
    ],
)
def test_a_served_name_written_as_the_clusters_is_authorised_as_sent(renamed_app, method, target, status):
    app, seen = renamed_app
    body = {"docs": [{"_index": "products", "_id": "1"}]} if target.endswith("_mget") else {}
    if target.endswith("_validate/query"):
        body = {"query": {"terms": {"title": {"index": "catalogue", "id": "1", "path": "title"}}}}
    assert app.test_client().open(target, method=method, json=body if method == "POST" else None).status_code == status
    assert seen == []


@pytest.mark.parametrize(
    "target, status",
    [
        ("/%3F%2Cproducts/_mapping", 404),  # was sent as /?,shop_catalog/_mapping: the cluster's info
        ("/%23%2Cproducts/_mapping", 404),
        # was sent as /_cat/count/shop_catalog?format=json,shop_catalog: the served index counted as JSON
        ("/_cat/count/shop_catalog%3Fformat%3Djson%2Cproducts", 403),
    ],
)
def test_an_escaped_question_mark_or_hash_beside_a_renamed_served_name_stays_in_its_index_name(
    renamed_app, target, status
):
    """Renaming the served name must not decode its neighbours: a "?" written back raw began the query string, and
    the cluster ran another request than the one asked. Kept escaped, it is an index name not served."""
    app, seen = renamed_app
    assert app.test_client().get(target).status_code == status
    assert seen == []


@pytest.mark.parametrize(
    "target, sent",
    [
        ("/%3F%2Cproducts/_mapping", "/%3F,shop_catalog/_mapping"),
        ("/_cat/count/x%3Fformat%3Djson%2Cproducts", "/_cat/count/x%3Fformat%3Djson,shop_catalog"),
        ("/caf%C3%A9%20%23,catalogue,products/_doc/a%3Fb?pretty", "/caf%C3%A9%20%23,shop_catalog/_doc/a%3Fb?pretty"),
    ],
)
def test_names_beside_a_renamed_served_name_are_sent_as_the_caller_escaped_them(target, sent):
    """What is authorised and sent (service.passthrough_writes forwards it) is the caller's path with only the
    served names replaced, byte for byte."""
    settings = Settings(
        lexical={"backend": "opensearch", "url": "http://127.0.0.1:9", "index": "shop_catalog"},
        service={"index_names": ["products", "catalogue"]},
    )
    assert ClusterPassthrough(settings).on_cluster(target) == sent


def test_a_body_naming_the_clusters_index_passes_where_the_front_ends_name_does_not(renamed_app):
    app, seen = renamed_app
    docs = {"docs": [{"_index": "shop_catalog", "_id": "1"}]}
    assert app.test_client().post("/products/_mget", json=docs).status_code == 200
    assert [(r["target"], json.loads(r["body"])) for r in seen] == [("/shop_catalog/_mget", docs)]


@pytest.mark.parametrize(
    "target, docs",
    [
        ("/_mget", [{"_index": "products", "_id": "1"}, {"_index": "search-rerank-profiles", "_id": "user:alice"}]),
        ("/products/_mget", [{"_id": "1"}, {"_index": "other", "_id": "1"}]),
    ],
)
def test_a_multi_get_naming_an_index_not_served_is_refused_without_asking_the_cluster(recorded_app, target, docs):
    app, seen = recorded_app
    response = app.test_client().post(target, json={"docs": docs})
    assert (response.status_code, response.get_json()["error"]["reason_code"]) == (403, "index_refused")
    assert seen == []


def test_callers_credentials_and_the_admin_token_never_reach_the_cluster(recorded_app):
    app, seen = recorded_app
    app.test_client().get(
        "/products/_mapping",
        headers={"Authorization": "Bearer the-admin-token", "Cookie": "session=abc", "Proxy-Authorization": "x"},
    )
    [request] = seen
    sent = {name.lower(): value for name, value in request["headers"].items()}
    assert sent["authorization"] == "Basic " + base64.b64encode(b"svc:svc-password").decode()
    assert "cookie" not in sent and "proxy-authorization" not in sent
    assert "the-admin-token" not in json.dumps(request["headers"])


def test_query_records_posted_to_ubi_queries_are_the_services_not_a_write_to_the_cluster(recorded_app):
    app, seen = recorded_app
    response = app.test_client().post("/ubi_queries", json=[{"query_id": "q-1", "user_query": "sofa"}])
    assert (response.status_code, response.get_json()["error"]) == (404, "UBI logging is off")  # off in this app
    assert seen == []


def test_get_on_ubi_queries_is_a_405_as_on_ubi_events_not_an_index_of_the_cluster(recorded_app):
    app, seen = recorded_app
    events, queries = app.test_client().get("/ubi_events"), app.test_client().get("/ubi_queries")
    assert queries.status_code == events.status_code == 405
    assert seen == []


def test_method_raw_path_query_body_and_content_type_are_forwarded(recorded_app):
    app, seen = recorded_app
    with served(app) as url:
        urllib3.request(
            "POST",
            f"{url}/products/_validate/query?explain=true&q=a%26b",
            body=b'{"query":{"ids":{"values":["a/b"]}}}',
            headers={"Content-Type": "application/json; charset=UTF-8"},
            retries=False,
        )
        urllib3.request("GET", f"{url}/products/_doc/a%2Fb", retries=False)
    count, get = seen
    assert (count["method"], count["target"], count["body"]) == (
        "POST",
        "/products/_validate/query?explain=true&q=a%26b",
        b'{"query":{"ids":{"values":["a/b"]}}}',
    )
    assert count["headers"]["Content-Type"] == "application/json; charset=UTF-8"
    assert get["target"] == "/products/_doc/a%2Fb"


def test_elasticsearch_compatible_media_types_reach_an_opensearch_cluster_as_plain_json(recorded_app):
    # elasticsearch-py 9's helpers.scan asks for its scroll's next page in these types; OpenSearch answers a 406.
    app, seen = recorded_app
    compatible = "application/vnd.elasticsearch+json; compatible-with=9"
    app.test_client().post(
        "/_search/scroll", data=b'{"scroll_id":"x"}', headers={"Content-Type": compatible, "Accept": compatible}
    )
    sent = {name.lower(): value for name, value in seen[0]["headers"].items()}
    assert (sent["content-type"], sent["accept"]) == ("application/json", "application/json")


def test_hop_by_hop_headers_are_dropped_both_ways(recorded_app):
    app, seen = recorded_app
    response = app.test_client().get(
        "/_cluster/health", headers={"Connection": "X-Trace", "X-Trace": "1", "X-Opaque-Id": "kept"}
    )
    assert "Keep-Alive" not in response.headers and response.headers["X-Elastic-Product"] == "Elasticsearch"
    sent = {name.lower() for name in seen[0]["headers"]}
    assert "x-trace" not in sent and "x-opaque-id" in sent


def test_only_the_allow_listed_caller_headers_reach_the_cluster(recorded_app):
    app, seen = recorded_app
    app.test_client().get(
        "/products/_mapping",
        headers={
            "es-security-runas-user": "elastic",
            "ES-Secondary-Authorization": "ApiKey c2VjcmV0",
            "X-Forwarded-For": "10.0.0.1",
            "Accept": "application/json",
        },
    )
    sent = {name.lower() for name in seen[0]["headers"]}
    assert not {"es-security-runas-user", "es-secondary-authorization", "x-forwarded-for"} & sent
    assert "accept" in sent


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("POST", "/products/_search/template"),
        ("GET", "/_cat/nodes?h=ip,name"),
        ("GET", "/_cluster/health?wait_for_nodes=999&timeout=29s"),
        ("POST", "/products/_validate/query?error_trace=true"),
    ],
)
def test_reads_beyond_the_served_index_or_holding_the_cluster_are_refused_before_it(recorded_app, method, target):
    app, seen = recorded_app
    body = {"query": {"match_all": {}}} if method == "POST" else None
    response = app.test_client().open(target, method=method, json=body)
    assert response.status_code == 403
    assert response.get_json()["error"]["type"] == "search_rerank_passthrough_refused"
    assert seen == []


@pytest.mark.parametrize("name", ["master_timeout", "cluster_manager_timeout"])
def test_a_cluster_manager_timeout_holds_the_request_as_a_master_timeout_does_and_is_refused(recorded_app, name):
    """OpenSearch's cluster_manager_timeout is its new name for master_timeout: refusing one alone held a thread
    through the other."""
    app, seen = recorded_app
    response = app.test_client().get(f"/products/_mapping?{name}=30s")
    error = response.get_json()["error"]
    assert (response.status_code, error["reason_code"]) == (403, "parameter_refused")
    assert repr(name) in error["reason"]
    assert seen == []


def test_a_read_whose_body_runs_a_script_is_refused_naming_it(recorded_app):
    app, seen = recorded_app
    body = {"query": {"bool": {"filter": {"script": {"script": {"source": "doc['price'].value > 1"}}}}}}
    response = app.test_client().post("/products/_validate/query", json=body)
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert error["reason_code"] == "script_refused" and "'script'" in error["reason"]
    assert seen == []


def test_a_read_whose_body_holds_a_key_twice_is_refused_before_the_cluster(recorded_app):
    app, seen = recorded_app
    body = b'{"query": {"script": {"script": {"source": "1"}}}, "query": {"match_all": {}}}'
    response = app.test_client().post("/products/_validate/query", data=body, content_type="application/json")
    assert response.status_code == 400 and "'query' appears twice" in response.get_json()["error"]["reason"]
    assert seen == []


@pytest.mark.parametrize(
    "target, body, key",
    [
        ("/_mget", {"docs": [{"_index": ["search-rerank-profiles"], "_id": "user:alice"}]}, "_index"),
        ("/products/_mget", {"docs": [{"_index": ["products", "secret-orders"], "_id": "1"}]}, "_index"),
        ("/products/_mget", {"docs": [{"_index": [], "_id": "1"}]}, "_index"),
        (
            "/products/_validate/query",
            {"query": {"more_like_this": {"fields": ["title"], "like": [{"_index": ["secret-orders"], "_id": "1"}]}}},
            "_index",
        ),
        (
            "/products/_explain/s1",
            {"query": {"terms": {"title": {"index": ["secret-orders"], "id": "1", "path": "card"}}}},
            "index",
        ),
        # A terms lookup on a field named "terms": its index is a lookup's, not a terms query's values.
        (
            "/products/_validate/query",
            {"query": {"terms": {"terms": {"index": ["secret-orders"], "id": "1", "path": "card"}}}},
            "index",
        ),
        ("/products/_termvectors/s1", {"_index": ["secret-orders"], "fields": ["title"]}, "_index"),
    ],
)
def test_a_body_naming_an_index_in_a_list_is_refused_unless_each_is_served(recorded_app, target, body, key):
    """A list where an index's name goes passed unchecked, for the cluster to read as it would: each name in it
    is held to the served ones, as a string is."""
    app, seen = recorded_app
    response = app.test_client().post(target, json=body)
    error = response.get_json()["error"]
    assert (response.status_code, error["reason_code"]) == (403, "index_refused")
    assert f"the body's {key!r}" in error["reason"]
    assert seen == []


@pytest.mark.parametrize(
    "target, body",
    [
        ("/products/_mget", {"docs": [{"_index": ["products"], "_id": "1"}]}),
        # A terms query's values: it filters the searched index's documents, and reads no other index.
        ("/products/_validate/query", {"query": {"terms": {"_index": ["products", "other"]}}}),
        ("/products/_validate/query", {"query": {"bool": {"filter": [{"terms": {"index": ["a", "b"]}}]}}}),
        ("/products/_validate/query", {"query": {"term": {"_index": {"value": "products"}}}}),
    ],
)
def test_a_list_of_served_names_or_a_terms_querys_values_on_an_index_field_pass(recorded_app, target, body):
    app, seen = recorded_app
    assert app.test_client().post(target, json=body).status_code == 200
    assert [json.loads(request["body"]) for request in seen] == [body]


def test_a_request_beyond_the_passthroughs_concurrency_is_an_immediate_503(tmp_path):
    """One request held at a slow cluster takes the only slot; the next is answered at once, not queued."""
    release, arrived = threading.Event(), threading.Event()

    class Slow(BaseHTTPRequestHandler):
        def do_GET(self):
            arrived.set()
            release.wait(30)
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        def log_message(self, *args):
            pass

    with handled(Slow) as url:
        settings = Settings(lexical={"backend": "opensearch", "url": url}, service={"passthrough_concurrency": 1})
        bridge = ClusterPassthrough(settings)
        with Flask(__name__).app_context():
            held = threading.Thread(target=bridge.forward, args=("GET", "/products/_mapping", [], b""))
            held.start()
            try:
                assert arrived.wait(30)
                response = bridge.forward("GET", "/products/_mapping", [], b"")
            finally:
                release.set()
                held.join(30)
            again = bridge.forward("GET", "/products/_mapping", [], b"")
    assert response.status_code == 503 and response.headers["Retry-After"] == "1"
    assert response.get_json()["error"]["reason_code"] == "passthrough_busy"
    assert again.status_code == 200


def test_unreachable_cluster_is_an_elasticsearch_502():
    settings = Settings(lexical={"backend": "opensearch", "url": f"http://127.0.0.1:{free_port()}"})
    with Flask(__name__).app_context():
        response = ClusterPassthrough(settings).forward("GET", "/_cat/health", [], b"")
    assert response.status_code == 502
    assert response.get_json()["error"]["type"] == "search_rerank_cluster_unreachable"


def test_unreachable_cluster_error_names_no_internal_address():
    url = f"http://127.0.0.1:{free_port()}"
    settings = Settings(lexical={"backend": "opensearch", "url": url})
    with Flask(__name__).app_context():
        response = ClusterPassthrough(settings).forward("GET", "/_cat/health", [], b"")
    error = response.get_json()["error"]
    assert error["reason_code"] == "cluster_unavailable"
    assert urllib3.util.parse_url(url).netloc not in response.get_data(as_text=True)


@contextmanager
def cluster_closing_kept_connections() -> Iterator[tuple[str, list[str]]]:
    """A cluster stand-in that keeps each connection alive after its first answer, then closes it without an
    answer when the next request arrives on it: a pooled connection closed just as it is reused. Yields the URL
    and, per request that reached it, ``answered`` or ``dropped``."""
    seen: list[str] = []

    class Closing(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        answered_here = False

        def answer(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if self.answered_here:
                seen.append("dropped")
                self.close_connection = True
                return
            self.answered_here = True
            seen.append("answered")
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"{}")

        do_GET = do_POST = do_PUT = answer

        def log_message(self, *args):
            pass

    with handled(Closing) as url:
        yield url, seen


def test_a_read_on_a_connection_closed_as_it_was_reused_is_sent_once_more():
    with cluster_closing_kept_connections() as (url, seen):
        bridge = ClusterPassthrough(Settings(lexical={"backend": "opensearch", "url": url}))
        with Flask(__name__).app_context():
            first = bridge.forward("GET", "/products/_mapping", [], b"")
            second = bridge.forward("POST", "/products/_validate/query", [("Content-Type", "application/json")], b"{}")
    assert (first.status_code, second.status_code) == (200, 200)
    assert seen == ["answered", "dropped", "answered"]


def test_a_write_on_a_connection_closed_as_it_was_reused_is_never_sent_twice():
    with cluster_closing_kept_connections() as (url, seen):
        settings = Settings(lexical={"backend": "opensearch", "url": url}, service={"passthrough_writes": True})
        bridge = ClusterPassthrough(settings)
        with Flask(__name__).app_context():
            bridge.forward("GET", "/products/_mapping", [], b"")
            write = bridge.forward("PUT", "/products/_doc/1", [("Content-Type", "application/json")], b"{}")
    assert write.status_code == 502
    assert seen == ["answered", "dropped"]


def test_a_scrolls_next_page_on_a_connection_closed_as_it_was_reused_is_never_sent_twice():
    # The cluster may have served that page already: sent again, it would answer the next one, and one is lost.
    with cluster_closing_kept_connections() as (url, seen):
        bridge = ClusterPassthrough(Settings(lexical={"backend": "opensearch", "url": url}))
        with Flask(__name__).app_context():
            bridge.forward("GET", "/products/_mapping", [], b"")
            page = bridge.forward(
                "POST", "/_search/scroll", [("Content-Type", "application/json")], b'{"scroll_id":"x"}'
            )
    assert page.status_code == 502
    assert seen == ["answered", "dropped"]


def stand_in(answer: Callable[[BaseHTTPRequestHandler], None]) -> Any:
    """A cluster stand-in whose every request ``answer`` handles, counting the requests that reached it."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append(self.path)
            answer(self)

        def log_message(self, *args):
            pass

    return handled(Handler), seen


def test_an_answer_cut_short_is_never_sent_for_again():
    def cut_short(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "100")
        handler.end_headers()
        handler.wfile.write(b'{"products":')
        handler.close_connection = True

    server, seen = stand_in(cut_short)
    with server as url:
        bridge = ClusterPassthrough(Settings(lexical={"backend": "opensearch", "url": url}))
        with Flask(__name__).app_context():
            response = bridge.forward("GET", "/products/_mapping", [], b"")
    assert response.status_code == 502 and len(seen) == 1


def test_a_read_sent_once_more_gets_only_what_is_left_of_its_timeout():
    # Each attempt is closed without an answer after 3 s; a second attempt with a timeout of its own would be
    # closed too (a 502), one with the 1 s left of the first one's 4 s times out (a 504).
    server, seen = stand_in(lambda handler: time.sleep(3))
    with server as url:
        settings = Settings(lexical={"backend": "opensearch", "url": url, "request_timeout_s": 4})
        with Flask(__name__).app_context():
            response = ClusterPassthrough(settings).forward("GET", "/products/_mapping", [], b"")
    assert response.status_code == 504
    assert len(seen) == 2


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/_search/scroll", {"scroll_id": "FGluY2x1ZGVfY29udGV4dF91dWlk"}),
        ("/_search/scroll", {"scroll_id": ["FGluY2x1ZGVfY29udGV4dF91dWlk", "DXF1ZXJ5QW5kRmV0Y2g"]}),
        ("/_search/scroll/FGluY2x1ZGVfY29udGV4dF91dWlk", None),
    ],
)
def test_clearing_a_named_scroll_is_passed_through(recorded_app, target, body):
    # elasticsearch-py's helpers.scan clears its scroll when done, and fails on a 403.
    app, seen = recorded_app
    response = app.test_client().delete(target, json=body)
    assert response.status_code == 200
    assert [(request["method"], request["target"]) for request in seen] == [("DELETE", target)]


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/_search/scroll/FGluY2x1ZGVfY29udGV4dF91dWlk,_all", None),
        ("/_search/scroll", {"scroll_id": ["FGluY2x1ZGVfY29udGV4dF91dWlk", "_all"]}),
        ("/_search/scroll?pretty;scroll_id=_all", None),  # the cluster reads a query parameter as the path's
    ],
)
def test_clearing_every_scroll_beside_a_clusters_own_is_refused_before_the_cluster(recorded_app, target, body):
    app, seen = recorded_app
    response = app.test_client().delete(target, json=body)
    assert response.status_code == 403 and response.get_json()["error"]["reason_code"] == "every_scroll"
    assert seen == []


@pytest.mark.parametrize(
    ("target", "body"),
    [
        ("/_search/scroll/_all", None),
        ("/_search/scroll", {"scroll_id": "_all"}),
        ("/_search/scroll?scroll_id=_all", None),
        ("/_search/scroll?scroll%5Fid=_all", None),
    ],
)
def test_clearing_every_scroll_is_the_services_own_answer_and_never_reaches_the_cluster(recorded_app, target, body):
    # The service opens no scroll on the cluster (serving/search_contexts.py): there is nothing of its own to end,
    # and the cluster's other users' scrolls are not its to end.
    app, seen = recorded_app
    response = app.test_client().delete(target, json=body)
    assert (response.status_code, response.get_json()) == (200, {"succeeded": True, "num_freed": 0})
    assert seen == []


@pytest.mark.parametrize(
    ("recorded_app", "target", "body"),
    [
        ("opensearch", "/_search/point_in_time", {"pit_id": ["_all"]}),  # OpenSearch ends every point in time for it
        ("opensearch", "/_search/point_in_time", {"pit_id": "_all"}),
        ("opensearch", "/_search/point_in_time?pit_id=_all", None),
        ("elasticsearch", "/_pit", {"id": "_all"}),
    ],
    indirect=["recorded_app"],
)
def test_ending_every_point_in_time_is_refused_before_the_cluster(recorded_app, target, body):
    app, seen = recorded_app
    response = app.test_client().delete(target, json=body)
    assert response.status_code == 403 and response.get_json()["error"]["reason_code"] == "every_point_in_time"
    assert seen == []


@pytest.mark.parametrize(
    ("recorded_app", "target", "body"),
    [
        ("opensearch", "/_search/point_in_time", {"pit_id": ["o_-7QQEIcHJvZHVjdHM"]}),
        ("elasticsearch", "/_pit", {"id": "46ToAwMDaWR5BXV1aWQy"}),
    ],
    indirect=["recorded_app"],
)
def test_ending_a_named_point_in_time_is_passed_through(recorded_app, target, body):
    app, seen = recorded_app
    response = app.test_client().delete(target, json=body)
    assert response.status_code == 200
    assert [(request["method"], request["target"]) for request in seen] == [("DELETE", target)]


def test_an_answer_dripped_past_the_timeout_is_a_504():
    # Each byte within urllib3's timeout for one read, the whole answer far beyond lexical.request_timeout_s.
    def drip(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "40")
        handler.end_headers()
        try:
            for _ in range(40):
                handler.wfile.write(b" ")
                handler.wfile.flush()
                time.sleep(0.1)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the passthrough gave up on it, as it should

    server, seen = stand_in(drip)
    with server as url:
        settings = Settings(lexical={"backend": "opensearch", "url": url, "request_timeout_s": 1})
        with Flask(__name__).app_context():
            response = ClusterPassthrough(settings).forward("GET", "/products/_mapping", [], b"")
    assert response.status_code == 504 and len(seen) == 1


def test_a_cluster_failing_a_request_with_a_500_is_the_services_502_naming_nothing_of_the_cluster():
    # OpenSearch fails some requests it cannot read with a 500 (closing a point in time by an id it cannot decode),
    # which was passed on as a 500.
    def failing(handler):
        payload = b'{"error":{"type":"exception","reason":"[node-1][10.0.0.5:9300] failed"},"status":500}'
        handler.send_response(500)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(payload)))
        handler.end_headers()
        handler.wfile.write(payload)

    server, _ = stand_in(failing)
    with server as url:
        settings = Settings(lexical={"backend": "opensearch", "url": url})
        with Flask(__name__).app_context():
            response = ClusterPassthrough(settings).forward("GET", "/products/_mapping", [], b"")
    assert response.status_code == 502 and response.get_json()["error"]["reason_code"] == "cluster_failed"
    assert "10.0.0.5" not in response.get_data(as_text=True)


def test_a_request_that_opens_a_scroll_on_a_connection_closed_as_it_was_reused_is_never_sent_twice():
    # Sent again, it would leave a scroll open on the cluster that nobody clears.
    with cluster_closing_kept_connections() as (url, seen):
        settings = Settings(lexical={"backend": "opensearch", "url": url}, service={"passthrough_writes": True})
        bridge = ClusterPassthrough(settings)
        with Flask(__name__).app_context():
            bridge.forward("GET", "/products/_mapping", [], b"")
            opened = bridge.forward("GET", "/products/_search?scroll=1m", [], b"")
    assert opened.status_code == 502
    assert seen == ["answered", "dropped"]


@pytest.mark.parametrize(
    ("engine", "target"),
    [
        ("elasticsearch", "/products/_pit?keep_alive=1m"),
        ("opensearch", "/products/_search/point_in_time?keep_alive=1m"),
    ],
)
def test_a_request_that_opens_a_point_in_time_on_a_connection_closed_as_it_was_reused_is_never_sent_twice(
    engine, target
):
    # Sent again, it would leave a point in time open on the cluster that nobody closes.
    with cluster_closing_kept_connections() as (url, seen):
        bridge = ClusterPassthrough(Settings(lexical={"backend": engine, "url": url}))
        with Flask(__name__).app_context():
            bridge.forward("GET", "/products/_mapping", [], b"")
            opened = bridge.forward("POST", target, [], b"")
    assert opened.status_code == 502
    assert seen == ["answered", "dropped"]


@pytest.mark.parametrize(
    ("recorded_app", "target"),
    [
        ("elasticsearch", "/products/_pit?keep_alive=-1"),
        ("opensearch", "/products/_search/point_in_time?keep_alive=soon"),
    ],
    indirect=["recorded_app"],
)
def test_a_point_in_time_keep_alive_that_is_not_a_time_value_is_refused_saying_so(recorded_app, target):
    app, seen = recorded_app
    response = app.test_client().post(target)
    assert response.status_code == 400 and response.get_json()["error"]["reason_code"] == "not_a_time_value"
    assert seen == []


@pytest.mark.parametrize(
    ("recorded_app", "target"),
    [
        ("elasticsearch", "/products/_pit?keep_alive=1d"),
        ("opensearch", "/products/_search/point_in_time?keep_alive=6m"),
    ],
    indirect=["recorded_app"],
)
def test_a_point_in_time_kept_alive_past_the_limit_is_refused_before_the_cluster(recorded_app, target):
    app, seen = recorded_app
    response = app.test_client().post(target)
    assert response.status_code == 400 and response.get_json()["error"]["reason_code"] == "keep_alive_too_long"
    assert seen == []


def test_points_in_time_past_the_limit_are_an_immediate_429_that_never_reaches_the_cluster():
    # Each pins the index's segments on the cluster for up to 5 minutes, and OpenSearch caps them per node for every
    # client: 400 opened in a second were all passed on.
    with recording_cluster() as (url, seen):
        settings = Settings(lexical={"backend": "elasticsearch", "url": url}, service={"max_open_points_in_time": 2})
        bridge = ClusterPassthrough(settings)
        with Flask(__name__).app_context():
            answers = [bridge.forward("POST", "/products/_pit?keep_alive=1m", [], b"") for _ in range(3)]
    assert [answer.status_code for answer in answers] == [200, 200, 429]
    assert 1 <= int(answers[2].headers["Retry-After"]) <= 60
    assert answers[2].get_json()["error"]["reason_code"] == "too_many_points_in_time"
    assert len(seen) == 2


def test_a_point_in_time_closed_or_past_its_keep_alive_no_longer_counts():
    opened = OpenPointsInTime(limit=2)
    opened.opened("a", keep_alive_s=60, now=0)
    opened.opened("b", keep_alive_s=300, now=0)
    assert opened.retry_after_s(now=1) == 59
    opened.closed(["b"])
    assert opened.retry_after_s(now=1) is None
    opened.opened("c", keep_alive_s=300, now=1)
    assert opened.retry_after_s(now=2) is not None and opened.retry_after_s(now=61) is None
