"""The passthrough guard at its edges (found by a probe): reads that would run a model (OpenSearch's neural queries,
Elasticsearch's semantic query), an escaped "/" in an id that makes a write endpoint to a hop that decodes it, and
what a cluster (or the load balancer in front of it) answers that must not reach a caller: a redirect naming
where the cluster is, a session cookie of the service's, a failure naming a node's address."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from urllib.parse import urlsplit

import pytest
from live_server import handled
from test_passthrough_paths import Guarded, guarded, served_guarded  # noqa: F401  (the fixture)

# --- a body that runs a model, under a key the guard does not know ------------------------------

# OpenSearch's neural search queries name the model by "model_id" (which the guard deliberately lets through) and
# run it in the query's rewrite, which _validate/query and _explain perform; Elasticsearch's "semantic" query runs
# the inference endpoint of a semantic_text field. Each runs a model like the refused "inference_id".
MODEL_QUERIES = {
    "opensearch-neural": {"neural": {"embedding": {"query_text": "sofa", "model_id": "any-model", "k": 5}}},
    "opensearch-neural-sparse": {"neural_sparse": {"title": {"query_text": "sofa", "model_id": "any-model"}}},
    "elasticsearch-semantic": {"semantic": {"field": "title_semantic", "query": "sofa"}},
}


@pytest.mark.parametrize("query", MODEL_QUERIES.values(), ids=MODEL_QUERIES.keys())
def test_query_that_runs_a_model_is_refused_before_reaching_the_cluster(guarded, query):  # noqa: F811
    response = guarded.attack("POST", "/INDEX/_validate/query?rewrite=true", body=json.dumps({"query": query}).encode())
    assert guarded.seen == []
    assert (response.status, response.json()["error"]["reason_code"]) == (403, "inference_refused")


# --- a document id whose escaped "/" starts an endpoint -----------------------------------------


def test_escaped_slash_then_endpoint_in_the_id_of_a_post_read_is_refused(guarded):  # noqa: F811
    # POST /INDEX/_explain/s1%2F_update is an update of s1 (Elasticsearch's typed route /{index}/{type}/{id}/_update
    # with a compatible-with=7 content type) at any hop that decodes %2F, which the module says it guards against.
    headers = {"Content-Type": "application/vnd.elasticsearch+json; compatible-with=7"}
    response = guarded.attack("POST", "/INDEX/_explain/s1%2F_update", headers, b'{"doc": {"title": "x"}}')
    assert guarded.seen == []
    assert response.status in (400, 403)


# --- what the cluster answers that names the cluster or the service's session -------------------


CLUSTER_USER = "svc-search-reader"
NODE_ADDRESS = "10.20.30.40:9300"
# Elasticsearch's answer to a read whose shard copy is on a node that dropped out (its transport address named).
NODE_DOWN = {
    "error": {
        "root_cause": [
            {"type": "node_not_connected_exception", "reason": f"[es-data-2][{NODE_ADDRESS}] Node not connected"}
        ],
        "type": "no_shard_available_action_exception",
        "reason": f"[es-data-2][{NODE_ADDRESS}][indices:data/read/get[s]]",
    },
    "status": 503,
}
# Elasticsearch's answer when a node's search thread pool queue is full (the node and its address named).
REJECTED = {
    "error": {
        "type": "es_rejected_execution_exception",
        "reason": f"rejected execution of TimedRunnable on EsThreadPoolExecutor[name = es-data-2/search] "
        f"[{NODE_ADDRESS}]",
    },
    "status": 429,
}
# The sticky-session cookie a load balancer (or an authenticating proxy) in front of the cluster sets for the client
# it talks to: the service, with the service's credentials.
SESSION_COOKIE = "AWSALB=service-session-token; Path=/"


@pytest.fixture
def redirecting(make_cluster_app, osmem_server_url) -> Iterator[Guarded]:
    """A cluster (osmem-server behind a proxy) that redirects one path to its own address, as a load balancer in
    front of a cluster does (http to https, a moved node), refuses the service's credentials on another, answers
    a third with a node's failure (:data:`NODE_DOWN`) and sets its session cookie on every other answer."""
    upstream = urlsplit(osmem_server_url)
    seen: list = []

    class Redirector(BaseHTTPRequestHandler):
        def refuse(self, status: int, payload: bytes, *headers: tuple[str, str]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            if "moved" in self.path:
                self.send_response(307)
                self.send_header("Location", f"{osmem_server_url}/internal{self.path}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            if "locked" in self.path:  # Elasticsearch's answer to a user whose password changed
                refusal = json.dumps({"error": {"reason": f"unable to authenticate user [{CLUSTER_USER}]"}}).encode()
                self.refuse(401, refusal, ("WWW-Authenticate", 'Basic realm="security" charset="UTF-8"'))
                return
            if "node-down" in self.path:
                self.refuse(503, json.dumps(NODE_DOWN).encode(), ("Content-Type", "application/json"))
                return
            if "overloaded" in self.path:
                self.refuse(
                    429, json.dumps(REJECTED).encode(), ("Content-Type", "application/json"), ("Retry-After", "2")
                )
                return
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                connection.request(self.command, self.path, body or None, dict(self.headers.items()))
                answer = connection.getresponse()
                payload = answer.read()
            finally:
                connection.close()
            self.send_response(answer.status)
            for name, value in answer.getheaders():
                if name.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(name, value)
            self.send_header("Set-Cookie", SESSION_COOKIE)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = forward

        def log_message(self, *args):
            pass

    with handled(Redirector) as proxy_url:
        app = make_cluster_app("opensearch", lexical={"url": proxy_url})
        yield from served_guarded(app, osmem_server_url, proxy_url, seen)


def test_cluster_redirect_does_not_name_the_cluster_address(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/moved")
    leaked = json.dumps(response.headers) + response.body.decode("latin-1")
    assert not any(urlsplit(url).netloc in leaked for url in (redirecting.cluster_url, redirecting.proxy_url))


def test_a_cluster_refusing_the_services_credentials_is_a_502_that_names_no_user_and_asks_no_password(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/locked")
    assert response.status == 502
    assert CLUSTER_USER not in response.body.decode("latin-1")
    assert not any(name.lower() == "www-authenticate" for name in response.headers)


def test_a_session_cookie_set_in_front_of_the_cluster_never_reaches_the_caller(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/s1")
    assert response.status == 200 and response.json()["_id"] == "s1"
    assert "set-cookie" not in response.headers


def test_the_clusters_answer_keeps_the_headers_its_clients_read(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/s1")
    assert response.headers["content-type"].startswith("application/json")


def test_a_cluster_failure_naming_a_nodes_address_keeps_its_status_and_names_no_address(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/node-down")
    assert response.status == 503
    assert NODE_ADDRESS.split(":")[0] not in response.body.decode("latin-1")


def test_a_cluster_too_busy_keeps_its_429_and_retry_after_and_names_no_node(redirecting):
    response = redirecting.attack("GET", "/INDEX/_doc/overloaded")
    assert (response.status, response.headers.get("retry-after")) == (429, "2")
    assert NODE_ADDRESS.split(":")[0] not in response.body.decode("latin-1")
    assert "es-data-2" not in response.body.decode("latin-1")
