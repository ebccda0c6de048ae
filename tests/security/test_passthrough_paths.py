"""The passthrough's write guard under attack: every path trick, sent byte for byte, never writes to the cluster.

The service runs over real HTTP in front of osmem-server with a recording
proxy between them (rawhttp.py), so each test sees exactly what reached the
cluster. Before the guard authorised the canonical path,
``POST /products/_count/../_delete_by_query`` (sent as ``curl --path-as-is``
sends it) passed as a count and ran as a delete, because the HTTP client
resolved the ``..`` after the check.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import pytest
import urllib3
from flask import Flask
from live_server import served
from rawhttp import RawResponse, Recorded, recording_proxy, send

from search_rerank.core.settings import Settings
from search_rerank.serving.passthrough import ClusterPassthrough

# The body of every attack: a delete by query deletes everything with it, an index request makes a document of it.
MATCH_ALL = json.dumps({"query": {"match_all": {}}}).encode()
DOCUMENTS = 6  # CLUSTER_CATALOG

# (id, method, target with INDEX for the index, the 400's reason_code, "not_a_read" for a 403, or None for a path
# that no route of the service takes: a 404 of its own, never passed through)
TRICKS = [
    ("dot-dot", "POST", "/INDEX/_validate/query/../_delete_by_query", "dot_segment"),
    ("dot-dot-create", "POST", "/INDEX/_search/../_doc/X", "dot_segment"),
    ("dot-dot-put", "PUT", "/INDEX/_search/../_doc/X", "dot_segment"),
    ("dot", "POST", "/INDEX/./_delete_by_query", None),
    ("dot-dot-past-root", "POST", "/../../INDEX/_delete_by_query", None),
    ("dot-in-endpoint", "POST", "/INDEX/_validate/query/./../_delete_by_query", "dot_segment"),
    ("escaped-dots", "POST", "/INDEX/_validate/query/%2e%2e/_delete_by_query", "lower_case_escape"),
    ("escaped-dots-upper", "POST", "/INDEX/_validate/query/%2E%2E/_delete_by_query", "escaped_unreserved"),
    ("half-escaped-dots", "POST", "/INDEX/_validate/query/.%2e/_delete_by_query", "lower_case_escape"),
    ("half-escaped-dots-upper", "POST", "/INDEX/_validate/query/%2E./_delete_by_query", "escaped_unreserved"),
    ("double-escaped-dots", "POST", "/INDEX/_validate/query/%252e%252e/_delete_by_query", "double_escape"),
    ("escaped-underscore", "POST", "/INDEX/%5Fdelete_by_query", "escaped_unreserved"),
    ("escaped-slash", "POST", "/INDEX/_validate/query%2F..%2F_delete_by_query", "dot_segment"),
    ("escaped-slash-lower", "POST", "/INDEX/_validate/query%2f..%2f_delete_by_query", "lower_case_escape"),
    ("double-escaped-slash", "POST", "/INDEX/_validate/query%252F..%252F_delete_by_query", "double_escape"),
    ("escaped-slash-in-index", "POST", "/INDEX%2F_delete_by_query", "not_a_read"),
    ("double-slash-dot-dot", "POST", "/INDEX/_validate/query//../_delete_by_query", "empty_segment"),
    ("trailing-slash", "POST", "/INDEX/_delete_by_query/", "empty_segment"),
    ("path-parameter-dot-dot", "POST", "/INDEX/_validate/query;/../_delete_by_query", "forbidden_character"),
    ("path-parameter", "POST", "/INDEX/_delete_by_query;x=1", "forbidden_character"),
    ("backslashes", "POST", "/INDEX/_validate/query\\..\\_delete_by_query", "forbidden_character"),
    ("escaped-backslashes", "POST", "/INDEX/_validate/query%5C..%5C_delete_by_query", "backslash"),
    (
        "fullwidth-dots-raw",
        "POST",
        "/INDEX/_validate/query/\xef\xbc\x8e\xef\xbc\x8e/_delete_by_query",
        "forbidden_character",
    ),
    ("fullwidth-dots", "POST", "/INDEX/_validate/query/%EF%BC%8E%EF%BC%8E/_delete_by_query", "unicode_normalisation"),
    ("one-dot-leaders", "POST", "/INDEX/_validate/query/%E2%80%A4%E2%80%A4/_delete_by_query", "unicode_normalisation"),
    ("two-dot-leader", "POST", "/INDEX/_validate/query/%E2%80%A5/_delete_by_query", "unicode_normalisation"),
    ("overlong-dots", "POST", "/INDEX/_validate/query/%C0%AE%C0%AE/_delete_by_query", "invalid_utf8"),
    ("overlong-dots-lower", "POST", "/INDEX/_validate/query/%c0%ae%c0%ae/_delete_by_query", "lower_case_escape"),
    ("three-dots", "POST", "/INDEX/_validate/query/.../_delete_by_query", "dot_segment"),
    ("trailing-dot", "POST", "/INDEX/_delete_by_query.", "not_a_read"),
    ("fragment", "POST", "/INDEX/_validate/query#/../_delete_by_query", "forbidden_character"),
    ("escaped-fragment", "POST", "/INDEX/_validate/query%23/../_delete_by_query", "dot_segment"),
    ("escaped-query", "POST", "/INDEX/_validate/query%3F/../_delete_by_query", "dot_segment"),
    ("escaped-nul", "POST", "/INDEX/_validate/query%00/../_delete_by_query", "control_character"),
    ("raw-nul", "POST", "/INDEX/_validate/query\x00/../_delete_by_query", "forbidden_character"),
    ("escaped-crlf", "GET", "/INDEX/_doc/s1%0D%0AX-Injected:%20yes", None),
    ("escaped-tab", "GET", "/INDEX/_doc/s1%09", "control_character"),
    ("upper-case-endpoint", "POST", "/INDEX/_DELETE_BY_QUERY", "not_a_read"),
    ("mixed-case-endpoint", "POST", "/INDEX/_Delete_By_Query", "not_a_read"),
    ("absolute-form", "POST", "http://cluster.invalid/INDEX/_delete_by_query", "not_a_read"),
    ("delete-by-query", "POST", "/INDEX/_delete_by_query", "not_a_read"),
    ("update-by-query", "POST", "/INDEX/_update_by_query", "not_a_read"),
    ("index-a-document", "PUT", "/INDEX/_doc/X", "not_a_read"),
    ("post-a-document", "POST", "/INDEX/_doc/X", "not_a_read"),
    ("create-a-document", "PUT", "/INDEX/_create/X", "not_a_read"),
    ("update-a-document", "POST", "/INDEX/_update/s1", "not_a_read"),
    ("delete-a-document", "DELETE", "/INDEX/_doc/s1", "not_a_read"),
    ("delete-the-index", "DELETE", "/INDEX", "not_a_read"),
    ("bulk", "POST", "/_bulk", "not_a_read"),
    ("index-bulk", "POST", "/INDEX/_bulk", "not_a_read"),
    ("flush-by-get", "GET", "/INDEX/_flush", "not_a_read"),
    ("patch", "PATCH", "/INDEX/_doc/s1", "not_a_read"),
]


@dataclass
class Guarded:
    """The service on loopback in front of the cluster, and what reached the cluster through the proxy."""

    url: str
    index: str
    cluster_url: str
    proxy_url: str
    seen: list[Recorded]

    def attack(
        self, method: str, target: str, headers: dict[str, str] | None = None, body: bytes | None = None
    ) -> RawResponse:
        """``method target`` sent raw, INDEX replaced; the body is MATCH_ALL unless given (none for GET and HEAD)."""
        if body is None:
            body = b"" if method in ("GET", "HEAD") else MATCH_ALL
        headers = {"Content-Type": "application/json", **(headers or {})}
        return send(self.url, method, target.replace("INDEX", self.index), headers, body)

    def cluster(self, method: str, target: str) -> urllib3.BaseHTTPResponse:
        return urllib3.request(method, self.cluster_url + target.replace("INDEX", self.index), retries=False)

    def documents(self) -> int:
        return json.loads(self.cluster("GET", "/INDEX/_count").data)["count"]


def served_guarded(app: Flask, cluster_url: str, proxy_url: str, seen: list[Recorded]) -> Iterator[Guarded]:
    with served(app) as url:
        seen.clear()  # the start-up check
        yield Guarded(url, app.config["SETTINGS"].lexical.index, cluster_url, proxy_url, seen)


@pytest.fixture
def guarded(make_cluster_app, osmem_server_url) -> Iterator[Guarded]:
    with recording_proxy(osmem_server_url) as (proxy_url, seen):
        app = make_cluster_app("opensearch", lexical={"url": proxy_url})
        yield from served_guarded(app, osmem_server_url, proxy_url, seen)


@pytest.fixture
def guarded_writes_on(make_cluster_app, osmem_server_url) -> Iterator[Guarded]:
    with recording_proxy(osmem_server_url) as (proxy_url, seen):
        app = make_cluster_app("opensearch", lexical={"url": proxy_url}, passthrough_writes=True)
        yield from served_guarded(app, osmem_server_url, proxy_url, seen)


def internal_addresses(guarded: Guarded) -> list[str]:
    return [urlsplit(url).netloc for url in (guarded.cluster_url, guarded.proxy_url)]


# --- refused before the cluster ----------------------------------------------------------------


@pytest.mark.parametrize(("method", "target", "code"), [t[1:] for t in TRICKS], ids=[t[0] for t in TRICKS])
def test_path_trick_is_refused_before_reaching_the_cluster(guarded, method, target, code):
    response = guarded.attack(method, target)
    if code is None:
        assert response.status == 404
    else:
        assert (response.status, response.json()["error"]["reason_code"]) == (
            400 if code != "not_a_read" else 403,
            code,
        )
    assert guarded.seen == []


def test_path_tricks_leave_every_document_in_place(guarded):
    for _, method, target, _ in TRICKS:
        guarded.attack(method, target)
    assert guarded.documents() == DOCUMENTS
    assert guarded.cluster("GET", "/INDEX/_doc/X").status == 404
    assert guarded.cluster("HEAD", "/INDEX").status == 200


def test_refusals_are_elasticsearch_errors_naming_the_path_without_internal_addresses(guarded):
    for _, method, target, code in TRICKS:
        response = guarded.attack(method, target)
        assert not any(address in response.body.decode("latin-1") for address in internal_addresses(guarded))
        if code is None:
            continue
        error = response.json()["error"]
        assert error["root_cause"][0]["type"] == error["type"]
        assert response.headers["x-elastic-product"] == "Elasticsearch"
        # The absolute form is named by its path; a raw non-ASCII byte as the server decoded it.
        if not target.startswith("http:") and target.isascii():
            assert f"{method} {target.replace('INDEX', guarded.index)}" in error["reason"]


# --- reads that would do more than read the served index -------------------------------------

PROFILES = "search-rerank-profiles"  # the shoppers' profiles, on the same cluster
SCRIPT = {"query": {"script": {"script": {"source": "true"}}}}
YAML_SCRIPT = b"query:\n  script:\n    script:\n      source: 'true'\n"
# (id, method, target, content type, body, the status and reason_code it gets). Each is refused as Elasticsearch
# (and OpenSearch) would read it: ";" separates query parameters there as "&" does, path and query parameters are
# one map, a body may come in the query string (source=) or as YAML, CBOR or Smile, JSON may hold comments, and a
# body's "_index" or "index" makes the cluster read another index than the path names.
READ_TRICKS = [
    (
        "semicolon-error-trace",
        "POST",
        "/INDEX/_validate/query?pretty;error_trace=true",
        None,
        MATCH_ALL,
        403,
        "parameter_refused",
    ),
    (
        "semicolon-wait-for",
        "GET",
        "/_cluster/health?local;wait_for_nodes=9;timeout=25s",
        None,
        b"",
        403,
        "parameter_refused",
    ),
    (
        "body-in-source-parameter",
        "GET",
        "/INDEX/_validate/query?source=" + quote(json.dumps(SCRIPT), safe="") + "&source_content_type=application/json",
        None,
        b"",
        403,
        "parameter_refused",
    ),
    (
        "index-parameter-on-analyze",
        "POST",
        f"/_analyze?index={PROFILES}",
        None,
        b'{"field": "user_id", "text": "x"}',
        403,
        "parameter_refused",
    ),
    ("index-parameter-on-health", "GET", f"/_cluster/health?index={PROFILES}", None, b"", 403, "parameter_refused"),
    ("health-of-every-index", "GET", "/_cluster/health?level=indices", None, b"", 403, "parameter_refused"),
    ("refresh-by-get", "GET", "/INDEX/_doc/s1?refresh=true", None, b"", 403, "parameter_refused"),
    ("yaml-body", "POST", "/INDEX/_validate/query", "application/yaml", YAML_SCRIPT, 400, "not_json"),
    (
        "vendor-yaml-body",
        "POST",
        "/INDEX/_validate/query",
        "application/vnd.elasticsearch+yaml; compatible-with=8",
        YAML_SCRIPT,
        400,
        "not_json",
    ),
    (
        "cbor-body",
        "POST",
        "/INDEX/_validate/query",
        "application/cbor",
        b"\xa1equery\xa1fscript\xa1fscript\xa1fsourcedtrue",
        400,
        "not_json",
    ),
    (
        "json-with-a-comment",
        "POST",
        "/INDEX/_validate/query",
        None,
        b'{"query": /* a note */ {"script": {"script": {"source": "true"}}}}',
        400,
        "not_json",
    ),
    (
        "termvectors-of-another-index",
        "POST",
        "/INDEX/_termvectors/user:alice",
        None,
        json.dumps({"_index": PROFILES, "fields": ["*"]}).encode(),
        403,
        "index_refused",
    ),
    (
        "terms-lookup-in-another-index",
        "POST",
        "/INDEX/_validate/query?rewrite=true",
        None,
        json.dumps(
            {"query": {"terms": {"title": {"index": PROFILES, "id": "user:alice", "path": "interests"}}}}
        ).encode(),
        403,
        "index_refused",
    ),
    (
        "more-like-another-index",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps(
            {"query": {"more_like_this": {"fields": ["title"], "like": [{"_index": PROFILES, "_id": "user:alice"}]}}}
        ).encode(),
        403,
        "index_refused",
    ),
    (
        "percolate-another-index",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps({"query": {"percolate": {"field": "q", "index": PROFILES, "id": "1"}}}).encode(),
        403,
        "index_refused",
    ),
    (
        "shape-from-the-default-index",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps({"query": {"geo_shape": {"area": {"indexed_shape": {"id": "1", "path": "area"}}}}}).encode(),
        403,
        "index_refused",
    ),
    (
        "terms-set-script",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps(
            {"query": {"terms_set": {"brand": {"terms": ["Acme"], "minimum_should_match_script": {"source": "1"}}}}}
        ).encode(),
        403,
        "script_refused",
    ),
    (
        "script-in-a-wrapper-query",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps(
            {"query": {"wrapper": {"query": base64.b64encode(json.dumps(SCRIPT["query"]).encode()).decode()}}}
        ).encode(),
        403,
        "wrapped_query",
    ),
    (
        "knn-embedding-by-a-model",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps(
            {
                "query": {
                    "knn": {
                        "field": "embedding",
                        "query_vector_builder": {
                            "text_embedding": {"model_id": "openai-embeddings", "model_text": "x"}
                        },
                    }
                }
            }
        ).encode(),
        403,
        "inference_refused",
    ),
    (
        "sparse-vector-by-an-inference-endpoint",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps({"query": {"sparse_vector": {"field": "t", "inference_id": "elser", "query": "x"}}}).encode(),
        403,
        "inference_refused",
    ),
    (
        "text-expansion-by-a-model",
        "POST",
        "/INDEX/_validate/query",
        None,
        json.dumps({"query": {"text_expansion": {"t": {"model_id": ".elser_model_2", "model_text": "x"}}}}).encode(),
        403,
        "inference_refused",
    ),
    (
        "analyze-inline-pattern",
        "POST",
        "/_analyze",
        None,
        json.dumps({"tokenizer": {"type": "pattern", "pattern": "(a+)+$"}, "text": "a" * 40 + "!"}).encode(),
        403,
        "inline_analysis",
    ),
    (
        "analyze-file-of-the-cluster",
        "POST",
        "/_analyze",
        None,
        json.dumps(
            {
                "tokenizer": "keyword",
                "char_filter": [{"type": "mapping", "mappings_path": "elasticsearch.yml"}],
                "text": "x",
            }
        ).encode(),
        403,
        "inline_analysis",
    ),
    ("search-shards-names-node-addresses", "GET", "/INDEX/_search_shards", None, b"", 403, "not_a_read"),
]


@pytest.mark.parametrize(
    ("method", "target", "content_type", "body", "status", "code"),
    [t[1:] for t in READ_TRICKS],
    ids=[t[0] for t in READ_TRICKS],
)
def test_read_that_would_do_more_is_refused_before_reaching_the_cluster(
    guarded, method, target, content_type, body, status, code
):
    headers = {"Content-Type": content_type} if content_type else None
    response = guarded.attack(method, target, headers, body)
    assert (response.status, response.json()["error"]["reason_code"]) == (status, code)
    assert guarded.seen == []


BODY_TRICKS = [t for t in READ_TRICKS if t[2] == "/INDEX/_validate/query" and t[4]]


@pytest.mark.parametrize(("content_type", "body"), [(t[3], t[4]) for t in BODY_TRICKS], ids=[t[0] for t in BODY_TRICKS])
def test_count_of_a_body_that_would_do_more_is_refused_before_reaching_the_cluster(guarded, content_type, body):
    # _count is served (its query read as a search reads it), not passed through: the same bodies stop there.
    headers = {"Content-Type": content_type} if content_type else None
    response = guarded.attack("POST", "/INDEX/_count", headers, body)
    assert response.status in (400, 501) and "error" in response.json()
    assert guarded.seen == []


def test_count_with_its_body_in_the_source_parameter_is_refused(guarded):
    # Elasticsearch reads ?source= as the body; counted without it, the answer would be every product's count.
    target = "/INDEX/_count?source=" + quote(json.dumps({"query": {"term": {"brand": "x"}}}), safe="")
    response = guarded.attack("GET", target + "&source_content_type=application/json")
    assert response.status == 501 and response.json()["error"]["unsupported"] == "source"
    assert guarded.seen == []


@pytest.mark.parametrize(
    ("target", "content_type", "body"),
    [
        ("/INDEX/_validate/query?q=title:sofa;pretty", None, b""),
        ("/INDEX/_termvectors/s1", None, b'{"_index": "INDEX", "fields": ["title"]}'),
        ("/INDEX/_validate/query", None, b'{"query": {"terms": {"_index": ["INDEX", "other"]}}}'),
        ("/INDEX/_validate/query", "application/vnd.elasticsearch+json; compatible-with=8", MATCH_ALL),
        ("/INDEX/_validate/query", "application/json; charset=UTF-8", b'{"query": {"term": {"model_id": "X100"}}}'),
        ("/_analyze", None, b'{"tokenizer": "standard", "filter": ["lowercase"], "text": "Corner Sofa"}'),
    ],
)
def test_read_of_the_served_index_alone_reaches_the_cluster_as_sent(guarded, target, content_type, body):
    headers = {"Content-Type": content_type} if content_type else None
    body = body.replace(b"INDEX", guarded.index.encode())
    guarded.attack("POST", target, headers, body)
    [request] = guarded.seen
    assert (request.target, request.body) == (target.replace("INDEX", guarded.index), body)


# --- reads still pass, exactly as sent ---------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "target"),
    [
        ("GET", "/INDEX/_validate/query"),
        ("POST", "/INDEX/_validate/query"),
        ("GET", "/INDEX/_mapping"),
        ("GET", "/INDEX/_doc/s1"),
        ("HEAD", "/INDEX"),
        ("GET", "/_cat/indices/INDEX?format=json"),
    ],
)
def test_read_passes_to_the_cluster_as_sent(guarded, method, target):
    response = guarded.attack(method, target)
    assert response.status == 200
    [request] = guarded.seen
    assert (request.method, request.target) == (method, target.replace("INDEX", guarded.index))


@pytest.mark.parametrize("document_id", ["a%2Fb", "caf%C3%A9", "a%20b", "%3B1", "a_id"])
def test_escaped_document_id_reaches_the_cluster_byte_for_byte(guarded, document_id):
    response = guarded.attack("GET", f"/INDEX/_doc/{document_id}")
    assert response.status == 404 and response.json()["found"] is False
    assert [request.target for request in guarded.seen] == [f"/{guarded.index}/_doc/{document_id}"]


def test_query_string_cannot_move_the_path(guarded):
    response = guarded.attack("POST", "/INDEX/_validate/query?/../../_delete_by_query")
    assert response.status < 500
    assert [request.target.split("?")[0] for request in guarded.seen] == [f"/{guarded.index}/_validate/query"]
    assert guarded.documents() == DOCUMENTS


@pytest.mark.parametrize("query", ["q=100%", "q=%zz", "q=caf\xc3\xa9"])
def test_query_string_the_client_would_rewrite_is_refused(guarded, query):
    response = guarded.attack("GET", f"/INDEX/_validate/query?{query}")
    assert (response.status, response.json()["error"]["reason_code"]) == (400, "rewritten_target")
    assert guarded.seen == []


def test_query_string_escapes_in_lower_case_are_sent_in_upper_case(guarded):
    response = guarded.attack("GET", "/INDEX/_validate/query?q=title%3acaf%c3%a9%2c")
    assert response.status == 200
    assert [request.target for request in guarded.seen] == [f"/{guarded.index}/_validate/query?q=title%3Acaf%C3%A9%2C"]


def test_a_refused_parameter_is_refused_with_its_name_escaped_in_lower_case(guarded):
    response = guarded.attack("GET", "/INDEX/_validate/query?error%5ftrace=true")
    assert (response.status, response.json()["error"]["reason_code"]) == (403, "parameter_refused")
    assert guarded.seen == []


def test_a_point_in_time_of_the_served_index_is_opened_searched_in_and_closed(guarded):
    # elasticsearch-py's and opensearch-py's point-in-time paging: open, search pages in it (answered by this
    # service), close. The cluster here is OpenSearch's API (osmem-server); Elasticsearch's is POST /INDEX/_pit.
    opened = guarded.attack("POST", "/INDEX/_search/point_in_time?keep_alive=1m", body=b"")
    assert opened.status == 200
    pit = opened.json()["pit_id"]
    page = {"size": 2, "pit": {"id": pit, "keep_alive": "1m"}, "sort": [{"price": "asc"}]}
    searched = guarded.attack("POST", "/_search", body=json.dumps(page).encode())
    assert searched.status == 200 and len(searched.json()["hits"]["hits"]) == 2
    closed = guarded.attack("DELETE", "/_search/point_in_time", body=json.dumps({"pit_id": [pit]}).encode())
    assert closed.status == 200 and closed.json()["pits"][0]["successful"] is True


def test_elasticsearchs_point_in_time_calls_reach_opensearchs_endpoint_in_its_shape(guarded):
    """Elasticsearch's clients open ``POST /INDEX/_pit`` and close ``DELETE /_pit`` with ``{"id"}``; on an
    OpenSearch cluster (osmem-server here) they were a 403. What reaches the cluster is its own endpoint."""
    opened = guarded.attack("POST", "/INDEX/_pit?keep_alive=1m", body=b"")
    assert opened.status == 200 and "pit_id" not in opened.json(), opened.body[:300]
    closed = guarded.attack("DELETE", "/_pit", body=json.dumps({"id": opened.json()["id"]}).encode())
    assert (closed.status, closed.json()) == (200, {"succeeded": True, "num_freed": 1})
    assert [(seen.method, seen.target.split("?")[0]) for seen in guarded.seen] == [
        ("POST", f"/{guarded.index}/_search/point_in_time"),
        ("DELETE", "/_search/point_in_time"),
    ]


def test_elasticsearchs_point_in_time_on_an_index_not_served_is_refused_and_reaches_nothing(guarded, other_index):
    opened = guarded.attack("POST", f"/{other_index}/_pit?keep_alive=1m", body=b"")
    assert opened.status in (403, 404) and guarded.seen == []


@pytest.fixture
def other_index(guarded) -> Iterator[str]:
    """An index of the cluster the service does not serve (another application's, the shopper profiles'), holding
    a shopper's record, created on the cluster directly."""
    name = f"{guarded.index}-other"
    for user in ("alice", "bob"):
        record = json.dumps({"user_id": user, "affinity": "velvet"}).encode()
        on_cluster(guarded, "PUT", f"/{name}/_doc/user:{user}?refresh=true", record)
    yield name
    on_cluster(guarded, "DELETE", f"/{name}")


def on_cluster(guarded: Guarded, method: str, target: str, body: bytes | None = None) -> dict:
    answer = urllib3.request(
        method, guarded.cluster_url + target, body=body, headers={"Content-Type": "application/json"}, retries=False
    )
    return json.loads(answer.data or b"{}")


def test_a_point_in_time_of_another_index_reads_nothing_of_it_through_the_service(guarded, other_index):
    """Its id, not the path, names what a search in it searches: one opened on another index (by another client
    of the cluster) finds none of that index's documents, nor their count."""
    pit = on_cluster(guarded, "POST", f"/{other_index}/_search/point_in_time?keep_alive=1m")["pit_id"]
    page = {"size": 5, "pit": {"id": pit}, "query": {"ids": {"values": ["user:alice"]}}, "sort": [{"_doc": "asc"}]}
    searched = guarded.attack("POST", "/_search", body=json.dumps(page).encode())
    assert "alice" not in searched.body.decode()
    assert searched.status >= 400 or searched.json()["hits"]["total"]["value"] == 0


@pytest.mark.parametrize(
    "extra",
    [
        {"aggs": {"every": {"global": {}, "aggs": {"records": {"top_hits": {"size": 5}}}}}},  # ignores the query
        {"suggest": {"words": {"text": "velvit", "term": {"field": "title"}}}},  # the index's own words
    ],
    ids=["global-top-hits", "term-suggester"],
)
def test_a_point_in_time_of_another_index_is_not_searched_for_what_its_query_does_not_hold(guarded, other_index, extra):
    pit = on_cluster(guarded, "POST", f"/{other_index}/_search/point_in_time?keep_alive=1m")["pit_id"]
    page = {"size": 0, "pit": {"id": pit}, **extra}
    searched = guarded.attack("POST", "/_search", body=json.dumps(page).encode())
    assert searched.status == 404 and searched.json()["error"]["type"] == "search_context_missing_exception"
    assert b"alice" not in searched.body and b"velvet" not in searched.body


def test_a_global_aggregation_in_a_point_in_time_of_the_served_index_counts_its_products(guarded):
    opened = guarded.attack("POST", "/INDEX/_search/point_in_time?keep_alive=1m", body=b"")
    page = {"size": 0, "pit": {"id": opened.json()["pit_id"]}, "aggs": {"every": {"global": {}}}}
    searched = guarded.attack("POST", "/_search", body=json.dumps(page).encode())
    assert (
        searched.status == 200
        and searched.json()["aggregations"]["every"]["doc_count"] == searched.json()["hits"]["total"]["value"]
    )


@pytest.mark.parametrize(
    "query, headers",
    [("", {}), ("?filter_path=hits.hits._source", {})],  # the second: hits without their _index
    ids=["plain", "filter-path"],
)
def test_a_scroll_of_another_index_is_not_continued_through_the_service(guarded, other_index, query, headers):
    scroll_id = on_cluster(guarded, "POST", f"/{other_index}/_search?scroll=1m&size=1", MATCH_ALL)["_scroll_id"]
    body = json.dumps({"scroll": "1m", "scroll_id": scroll_id}).encode()
    page = guarded.attack("POST", f"/_search/scroll{query}", headers, body=body)
    assert page.status == 404 and b"alice" not in page.body and b"bob" not in page.body


def test_a_scrolls_next_page_is_asked_of_the_cluster_as_plain_json_to_be_read_before_it_is_passed_on(guarded):
    """A compressed (or CBOR, Smile, YAML) page could not be checked for another index's documents. (The service's
    own scrolls open nothing on the cluster, serving/search_contexts.py: this one was opened on the cluster.)"""
    first = on_cluster(guarded, "POST", f"/{guarded.index}/_search?scroll=1m&size=2", MATCH_ALL)
    scroll = json.dumps({"scroll": "1m", "scroll_id": first["_scroll_id"]}).encode()
    guarded.seen.clear()
    guarded.attack("POST", "/_search/scroll", {"Accept-Encoding": "gzip", "Accept": "application/cbor"}, body=scroll)
    (asked,) = guarded.seen
    assert (asked.headers.get("accept"), asked.headers.get("accept-encoding")) == ("application/json", "identity")


# Not named "page": that is pytest-playwright's fixture, whose session-wide Playwright, started by the name alone,
# left an event loop running in the worker for every test after it (asyncio.run failed in two, in CI).
@pytest.mark.parametrize("answer", [b"hits:\n  hits: []\n", b"\x1f\x8b\x08\x00", b'{"hits": {"hits": {}}}', b"[]"])
def test_a_scroll_page_that_cannot_be_read_is_refused_as_one_of_another_index(answer):
    settings = Settings(lexical={"backend": "opensearch", "url": "http://127.0.0.1:9"}, dense={"enabled": False})
    assert ClusterPassthrough(settings).foreign_index(answer) is not None


def test_a_scroll_page_of_the_served_index_and_its_versions_is_passed_on():
    settings = Settings(lexical={"backend": "opensearch", "url": "http://127.0.0.1:9"}, dense={"enabled": False})
    hits = [{"_index": "products"}, {"_index": "products-20261206-111346-361481"}]
    assert ClusterPassthrough(settings).foreign_index(json.dumps({"hits": {"hits": hits}}).encode()) is None
    other = [{"_index": "products-secret"}]
    assert (
        ClusterPassthrough(settings).foreign_index(json.dumps({"hits": {"hits": other}}).encode()) == "products-secret"
    )


@pytest.mark.parametrize("headers", [{}, {"Accept-Encoding": "gzip"}], ids=["plain", "gzip-asked"])
def test_a_scroll_of_the_served_index_is_continued_through_the_service(guarded, headers):
    first = guarded.attack("POST", "/INDEX/_search?scroll=1m", body=json.dumps({"size": 2}).encode())
    assert first.status == 200
    scroll = {"scroll": "1m", "scroll_id": first.json()["_scroll_id"]}
    page = guarded.attack("POST", "/_search/scroll", headers, body=json.dumps(scroll).encode())
    assert page.status == 200 and len(page.json()["hits"]["hits"]) == 2


def test_every_point_in_time_is_neither_listed_nor_closed(guarded):
    assert guarded.attack("GET", "/_search/point_in_time/_all").status == 403
    assert guarded.attack("DELETE", "/_search/point_in_time/_all", body=b"").status == 403
    assert guarded.seen == []


@pytest.mark.parametrize("header", ["X-HTTP-Method-Override", "X-HTTP-Method", "X-Method-Override"])
def test_method_override_headers_never_reach_the_cluster(guarded, header):
    assert guarded.attack("POST", "/INDEX/_validate/query", {header: "DELETE"}).status == 200
    assert guarded.attack("GET", "/INDEX", {header: "DELETE"}).status == 200
    assert all(header.lower() not in request.headers for request in guarded.seen)
    assert guarded.documents() == DOCUMENTS


# --- with writes allowed, still the canonical path only ----------------------------------------


def test_writes_allowed_still_refuse_a_path_that_is_not_canonical(guarded_writes_on):
    response = guarded_writes_on.attack("POST", "/INDEX/_validate/query/../_delete_by_query")
    assert response.status == 400 and response.json()["error"]["reason_code"] == "dot_segment"
    assert guarded_writes_on.seen == []
    assert guarded_writes_on.documents() == DOCUMENTS


def test_writes_allowed_pass_a_canonical_write(guarded_writes_on):
    response = guarded_writes_on.attack("PUT", "/INDEX/_doc/X?refresh=true", body=b'{"id": "X", "title": "x"}')
    assert response.status in (200, 201)
    assert [request.target for request in guarded_writes_on.seen] == [f"/{guarded_writes_on.index}/_doc/X?refresh=true"]
    assert guarded_writes_on.documents() == DOCUMENTS + 1
