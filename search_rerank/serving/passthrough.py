"""Requests that are not searches, passed through to the cluster behind the proxy.

A front end or tool pointed at this service instead of Elasticsearch also
sends requests that are not searches: ``GET /products/_mapping``,
``POST /products/_count``, ``GET /_cat/indices``, ``GET /products/_doc/1``,
the client's ``HEAD /`` ping. With a cluster backend (``lexical.backend`` =
``elasticsearch`` or ``opensearch``) they go to ``lexical.url`` as they came
(method, raw path, query string, body and content type) and the cluster's
status, headers and body come back as they are, hop-by-hop headers
(RFC 9110 section 7.6.1) dropped both ways. Nothing is retried: a request
that is not a search need not be idempotent. A cluster that does not answer
is a 502 (a 504 past ``lexical.request_timeout_s``) in Elasticsearch's error
shape. With the embedded backend there is no cluster, and such requests get
a 501 naming the path (see ``service.es_other``). A cluster that failed or
timed out ``breaker.failures`` times in a row opens the passthrough's circuit
breaker: for its cool-down requests get an immediate 503 (``circuit_open``,
with ``Retry-After``) instead of each waiting out the timeout.

Security, decided here:

* ``service.passthrough = false`` switches it off (a 501 naming the path).
* The cluster is called with the service's own credentials from the
  settings (``lexical.username``/``password`` or ``lexical.api_key``). The
  caller's ``Authorization``, ``Proxy-Authorization`` and ``Cookie`` headers
  are never forwarded: the admin token (``SEARCH_RERANK_ADMIN_TOKEN``, sent
  as a bearer token) or any other secret sent to this service never reaches
  the cluster, and a caller cannot use other credentials through it.
* Since any caller acts with the service's credentials, only requests that
  cannot change the cluster pass by default: GET and HEAD, and POST to the
  read-only endpoints in :data:`READ_ONLY_POST` (``_count``, ``_mget``, ...).
  Any other request is a 403 unless ``service.passthrough_writes = true``.
  Give the service's cluster user read-only privileges all the same.
* The service's own routes (``/search``, ``/metrics``, ``/health``,
  ``/ready``, ``/openapi.json``, ``/ubi/events``, ``/admin/reload``, ``/web/``)
  are never passed through; ``GET /`` is the search page for clients that
  accept HTML (browsers, curl) and the cluster's info for the others
  (Elasticsearch clients ask for JSON).
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from urllib.parse import quote

import urllib3
from flask import Response, jsonify

from ..core.breaker import CIRCUIT_OPEN, CircuitBreaker, CircuitOpenError
from ..core.settings import SERVER_BACKENDS, Settings

log = logging.getLogger(__name__)

# RFC 9110 section 7.6.1, plus what the hop itself recomputes (Host, Content-Length of the request).
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
NOT_FORWARDED = HOP_BY_HOP | {"host", "content-length", "authorization", "cookie"}
# POST endpoints that only read: search variants, counts, multi-gets, analysis, validation.
READ_ONLY_POST = frozenset(
    {
        "_count",
        "_mget",
        "_field_caps",
        "_validate",
        "_explain",
        "_termvectors",
        "_mtermvectors",
        "_search",
        "_msearch",
        "_render",
        "_analyze",
        "_terms_enum",
        "_search_shards",
        "_knn_search",
    }
)
READ_METHODS = frozenset({"GET", "HEAD"})
ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
# Answers that mean the cluster is not serving (overloaded, or a proxy in front of it got nothing): breaker failures.
UNAVAILABLE = frozenset({502, 503, 504})


def endpoint_of(path: str) -> str | None:
    """The API a path addresses (``_count`` for ``/products/_count``, ``_cat`` for ``/_cat/indices``);
    None for an index itself (``/products``)."""
    segments = [s for s in path.split("/") if s]
    for segment in segments[:2]:
        if segment.startswith("_") and segment != "_all":
            return segment
    return None


def is_read(method: str, path: str) -> bool:
    """Whether the request cannot change the cluster."""
    return method in READ_METHODS or (method == "POST" and endpoint_of(path) in READ_ONLY_POST)


def _without(headers: Iterable[tuple[str, str]], dropped: frozenset[str]) -> list[tuple[str, str]]:
    """The headers minus ``dropped`` and minus those the Connection header names as hop-by-hop."""
    headers = list(headers)
    named = {
        token.strip().lower() for name, value in headers if name.lower() == "connection" for token in value.split(",")
    }
    return [(name, value) for name, value in headers if name.lower() not in dropped | named]


class ClusterPassthrough:
    """Forwards a request to the cluster; cheap to build (no connection until the first request)."""

    def __init__(self, settings: Settings, breaker: CircuitBreaker | None = None):
        lexical = settings.lexical
        if lexical.backend not in SERVER_BACKENDS or lexical.url is None:
            raise ValueError(
                f"lexical.backend={lexical.backend!r}: the passthrough needs a cluster backend "
                f"({', '.join(SERVER_BACKENDS)}) with lexical.url"
            )
        self.base_url = lexical.url.rstrip("/")
        self.allow_writes = settings.service.passthrough_writes
        self.timeout_s = lexical.request_timeout_s
        self.breaker = breaker
        self._auth: dict[str, str] = {}
        if lexical.api_key is not None:
            self._auth["Authorization"] = f"ApiKey {lexical.api_key.get_secret_value()}"
        elif lexical.username is not None:
            pair = f"{lexical.username}:{lexical.password.get_secret_value()}".encode()
            self._auth["Authorization"] = f"Basic {base64.b64encode(pair).decode('ascii')}"
        self._http = urllib3.PoolManager(
            cert_reqs="CERT_REQUIRED" if lexical.verify_certs else "CERT_NONE",
            timeout=urllib3.Timeout(total=self.timeout_s),
            retries=False,
            maxsize=8,
        )

    def forward(self, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> Response:
        """Send ``method target`` (raw path and query string) with ``headers`` and ``body``; the cluster's answer."""
        path = target.split("?", 1)[0]
        if not self.allow_writes and not is_read(method, path):
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path} could change the cluster, and the passthrough forwards reads "
                f"only; set service.passthrough_writes = true to forward it",
            )
        sent = dict(_without(headers, NOT_FORWARDED))
        sent.update(self._auth)
        try:
            answer = self._send(method, target, body, sent)
        except CircuitOpenError as exc:
            response = self._error(
                503, CIRCUIT_OPEN, f"{method} {path}: the cluster keeps failing; not passed through for now"
            )
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
            return response
        except urllib3.exceptions.HTTPError as exc:
            log.warning("passthrough %s %s failed: %s", method, path, exc)
            # A refused connection is a NewConnectionError, which urllib3 derives from its TimeoutError.
            if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
                exc, urllib3.exceptions.NewConnectionError
            ):
                return self._error(
                    504,
                    "search_rerank_cluster_timeout",
                    f"{method} {path}: no answer from {self.base_url} within {self.timeout_s:g}s ({exc})",
                )
            return self._error(
                502,
                "search_rerank_cluster_unreachable",
                f"{method} {path}: no answer from {self.base_url}: {type(exc).__name__}: {exc}",
            )
        response = Response(answer.data, status=answer.status)
        response.headers.clear()
        for name, value in _without(answer.headers.items(), HOP_BY_HOP):
            response.headers.add(name, value)
        return response

    def _send(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> urllib3.BaseHTTPResponse:
        """The one request to the cluster, through the breaker: no answer or a 502/503/504 is a failure."""
        attempt = self.breaker.admit() if self.breaker is not None else None
        try:
            answer = self._http.urlopen(
                method,
                self.base_url + target,
                body=body or None,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=True,
                decode_content=False,
            )
        except BaseException:
            if attempt is not None:
                attempt.report(ok=False)
            raise
        if attempt is not None:
            attempt.report(ok=answer.status not in UNAVAILABLE)
        return answer

    @staticmethod
    def _error(status: int, kind: str, reason: str) -> Response:
        cause = {"type": kind, "reason": reason}
        response = jsonify({"error": {"root_cause": [cause], **cause}, "status": status})
        response.status_code = status
        response.headers.update(ES_HEADERS)
        return response

    def close(self) -> None:
        self._http.clear()


def passthrough_for(settings: Settings, breaker: CircuitBreaker | None = None) -> ClusterPassthrough | None:
    """The passthrough the settings call for: None with the embedded backend or ``service.passthrough = false``."""
    if settings.lexical.backend not in SERVER_BACKENDS or not settings.service.passthrough:
        return None
    return ClusterPassthrough(settings, breaker)


def raw_target(environ: Mapping[str, object], path: str, query_string: bytes) -> str:
    """The path as the client sent it, percent-escapes kept (``%2F`` in a document id), and the query string."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        target = raw.split("?", 1)[0]
        script = str(environ.get("SCRIPT_NAME") or "")
        if script and target.startswith(script):
            target = target[len(script) :]
    else:
        target = quote(path, safe="/:@!$&'()*+,;=-._~")
    return f"{target}?{query_string.decode('latin-1')}" if query_string else target
