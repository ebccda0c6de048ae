"""Requests that are not searches, passed through to the cluster behind the proxy.

A front end or tool pointed at this service instead of Elasticsearch also
sends requests that are not searches: ``GET /products/_mapping``,
``POST /products/_field_caps``, ``GET /_cat/indices``, ``GET /products/_doc/1``,
the client's ``HEAD /`` ping. With a cluster backend (``lexical.backend`` =
``elasticsearch`` or ``opensearch``) they go to ``lexical.url`` as they came
(method, raw path, query string, body and content type; a served name of
``service.index_names`` in the path is the cluster's ``lexical.index``, as
in a search, see ``ClusterPassthrough.on_cluster``) and the cluster's
status and body come back as they are, with the headers its clients read
(:data:`ANSWER_HEADERS`: never a cookie that a load balancer in front of the
cluster set for the service); a failure (5xx) keeps its status, but its body,
which may name a node and its address, goes to the log only. A request that is not a search
need not be idempotent, so only reads are ever sent twice, and only once
more when the connection closed before any byte of an answer came back (a
pooled keep-alive connection the cluster or a load balancer closed just as
it was reused; RFC 9112 section 9.3.1), within what is left of the same
timeout: every request the read-only default lets through, and with
``service.passthrough_writes`` the safe methods (``GET``, ``HEAD``,
``OPTIONS``), but never one that opens or moves a cursor (``?scroll=``, a
scroll's next page, ``_sql``; see ``ClusterPassthrough.resendable``). A
timeout or an answer cut short is never sent for again; an answer still
coming past the timeout is a 504. A cluster that does not answer
is a 502 (a 504 past ``lexical.request_timeout_s``) in Elasticsearch's error
shape. With the embedded backend there is no cluster, and such requests get
a 501 naming the path (see ``service.es_other``). A cluster that failed or
timed out ``breaker.failures`` times in a row opens the passthrough's circuit
breaker: for its cool-down requests get an immediate 503 (``circuit_open``,
with ``Retry-After``) instead of each waiting out the timeout.

Security, decided here:

* ``service.passthrough = false`` switches it off (a 501 naming the path).
* The cluster is called with the service's own credentials from the
  settings (``lexical.username``/``password`` or ``lexical.api_key``). Of the
  caller's headers only those in :data:`FORWARDED_HEADERS` are forwarded (an
  allow-list: ``Authorization``, ``Cookie``, ``es-security-runas-user``,
  ``ES-Secondary-Authorization`` and whatever the cluster learns to read
  next never reach it): the admin token (``SEARCH_RERANK_ADMIN_TOKEN``, sent
  as a bearer token) or any other secret sent to this service never reaches
  the cluster, and a caller cannot act as anyone else through it.
* The path is authorised exactly as it is sent, and only a canonical path
  is sent (see :func:`path_segments`): every hop between a caller and the
  cluster that normalises a path (the HTTP client here resolves ``..``; a
  proxy may decode ``%2F`` or fold Unicode) would otherwise turn an
  authorised path into another one (``POST /products/_count/../_delete_by_query``
  was a delete). A path that any hop could read differently (a ``.`` or
  ``..`` segment, also escaped or as a Unicode lookalike, an empty segment,
  a percent-escape of an unreserved character or in lower case, a double
  escape, ``;``, a backslash, ``#``, a control character, bytes that are
  not UTF-8) is a 400 naming the path and the rule (``reason_code``), as is
  a target the HTTP client would rewrite all the same. A served name sent as
  the cluster's index leaves the path's other names as they were sent,
  escapes and all (``/%3F%2Cproducts/_mapping`` names the index ``?``, not
  the query string ``,shop_catalog/_mapping``).
* Since any caller acts with the service's credentials, only requests that
  can neither change the cluster nor read beyond the served index pass by
  default: the read endpoints listed in :data:`INDEX_READS` and
  :data:`ROOT_READS`, each with its methods, matched on the decoded segments
  (``GET /products/_doc/1``, ``POST /products/_validate/query``, ``GET /_cat/health``,
  ``HEAD /products``; a document id or a name that starts with ``_`` is
  not one, since the cluster may route it as an endpoint), where every
  index a path names is a served one
  (``service.index_names`` or ``lexical.index``, never ``_all``, a wildcard
  or the profile index: a browser must not read shoppers' profiles or other
  indices with the service's credentials). Endpoints whose body can name
  other indices or run a script (``_search/template``, ...) are not reads
  here; ``_mget`` is, each doc's ``_index`` held to the served ones. A
  read's body passes only as JSON (no YAML, CBOR, Smile or comments,
  which the cluster reads and the checks here would not), and not
  when it holds a script (``script``, ``runtime_mappings``, ...), names an
  index not served (a terms lookup's ``index``, a ``_termvectors`` body's
  ``_index``, ..., as a string or a list: see :func:`key_refusal`), hides
  a query in base64 (``wrapper``), runs a model (``inference_id``, ...)
  or, in ``_analyze``, defines a component inline. Query parameters are
  read as the cluster reads them (``;`` separates them as ``&`` does), and
  those that make it hold a thread (``wait_for_*``, ``timeout``,
  ``master_timeout`` or OpenSearch's ``cluster_manager_timeout``), return
  its stack traces (``error_trace``), widen the read (``index``,
  ``level``), refresh (``refresh``) or carry a body (``source``) are
  refused. Any other request is a 403
  unless ``service.passthrough_writes = true`` (which still forwards
  canonical paths only). Method-override headers (``X-HTTP-Method-Override``,
  ...) are never forwarded, so a read cannot turn into a write at a hop that
  honours them. A scroll's next page holding a document of an index not served
  is refused (its id, not the path, names what it reads; the delegated
  search in a point in time is held to the served index, serving/delegation).
  Give the service's cluster user read-only privileges on the served index
  all the same.
* At most ``service.passthrough_concurrency`` requests per process are with
  the cluster at once; one more is an immediate 503 (``passthrough_busy``):
  slow requests to the cluster must not take every thread searches need.
* The service's own routes (``/search``, ``/metrics``, ``/health``,
  ``/ready``, ``/openapi.json``, ``/ubi/events``, ``/ubi_events``,
  ``/ubi/queries``, ``/ubi_queries``, ``/admin/reload``, ``/web/``)
  are never passed through; ``GET /`` is the search page for clients that
  accept HTML (browsers, curl) and the cluster's info for the others
  (Elasticsearch clients ask for JSON).
"""

from __future__ import annotations

import base64
import json
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from collections.abc import Set as AbstractSet
from typing import Any
from urllib.parse import parse_qsl, quote

import urllib3
from flask import Response, jsonify
from urllib3.util import parse_url

from ..core.breaker import CircuitBreaker
from ..core.errors import CircuitOpenError
from ..core.reasons import CIRCUIT_OPEN
from ..core.settings import SERVER_BACKENDS, Settings
from ..indexing.versions import STAMP_LENGTH
from .body_checks import MAX_KEEP_ALIVE_S, InvalidQuery, TooLongKept, a_keep_alive, keep_alive_s
from .es_compat import ES_HEADERS, es_error_body, index_not_found_cause
from .json_input import InvalidBody, parse_json

log = logging.getLogger(__name__)

FORWARDED_HEADERS = frozenset(
    {"accept", "accept-encoding", "content-type", "user-agent", "x-opaque-id", "traceparent", "tracestate"}
)
"""The caller's headers the cluster gets: what a read needs (its body's type, the answer's format) and tracing."""
ANSWER_HEADERS = frozenset(
    {"content-type", "content-encoding", "content-length", "x-elastic-product", "warning", "x-opaque-id", "retry-after"}
)
"""The cluster's headers the caller gets: what its clients read (the body's type and coding, the product check of
Elasticsearch's clients, deprecation warnings, the request's id, when to try again). Not the others: a load
balancer or an authenticating proxy in front of the cluster sets its session cookie for the client it talks to,
the service with its credentials, and names itself (``Server``, ``Via``, Elastic Cloud's instance headers)."""
# Elasticsearch's versioned media types, which its official clients send on every request.
COMPATIBLE_MEDIA_TYPE = re.compile(r"application/vnd\.elasticsearch\+(json|x-ndjson)\s*;\s*compatible-with=\d+", re.I)
# Answers that mean the cluster is not serving (overloaded, or a proxy in front of it got nothing): breaker failures.
UNAVAILABLE = frozenset({502, 503, 504})
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BODY_CHUNK = 64 * 1024


class AnswerTooSlow(urllib3.exceptions.TimeoutError):
    """The cluster began answering but did not finish within ``lexical.request_timeout_s``: a timeout, a 504."""


# RFC 3986 path characters (pchar) that are sent as they are: unreserved ones, and the sub-delimiters but ";",
# which servers such as Tomcat and Jetty read as the start of path parameters.
UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
PATH_CHARACTERS = UNRESERVED | frozenset("!$&'()*+,=:@")
HEX_DIGITS = frozenset("0123456789ABCDEF")
ESCAPE = re.compile("%[0-9A-Fa-f]{2}")
NAME_SEPARATOR = re.compile(",|%2C")
"""What separates the names of a canonical path's index expression, as sent (see ``ClusterPassthrough.on_cluster``)."""

LOOKUP = frozenset({"GET", "HEAD"})
# A read with a request body: Elasticsearch takes it by GET or POST.
QUERY = LOOKUP | {"POST"}
# The read endpoints, as segment shapes: "{name}" is any one segment, "{id}" a document id (which may hold an escaped
# "/"), neither starting with "_", "{scroll_id}" any one segment, "{index}" served index names; anything else is
# literal. A "{name}" or "{id}" that starts with "_" could be an endpoint's name, and Elasticsearch routes
# /{index}/{type}/_endpoint (its typed routes, kept for REST compatibility with 7.x) before /{index}/_explain/{id}:
# POST /products/_explain/_delete_by_query with a compatible-with=7 content type is a delete by query there.
# Searches and counts are not here: this service answers those itself. Not here either, though they only read:
# endpoints whose body can run a script or name other indices (_mtermvectors, _search/template, _msearch/template,
# _render/template; _mget's docs name theirs by "_index", which refused_key reads), those that answer for every
# index or node (_cat/indices without an index, _aliases), and those that name the nodes' addresses (_cat/nodes,
# _search_shards).
INDEX_READS: dict[tuple[str, ...], frozenset[str]] = {  # /{index}/..., the index expression served names only
    (): LOOKUP,
    ("_field_caps",): QUERY,
    ("_analyze",): QUERY,
    ("_validate", "query"): QUERY,
    ("_mapping",): LOOKUP,
    ("_mapping", "field", "{name}"): LOOKUP,
    ("_settings",): LOOKUP,
    ("_settings", "{name}"): LOOKUP,
    ("_alias",): LOOKUP,
    ("_alias", "{name}"): LOOKUP,
    ("_stats",): LOOKUP,
    ("_stats", "{name}"): LOOKUP,
    ("_doc", "{id}"): LOOKUP,
    ("_source", "{id}"): LOOKUP,
    ("_explain", "{id}"): QUERY,
    ("_termvectors",): QUERY,
    ("_termvectors", "{id}"): QUERY,
    ("_terms_enum",): QUERY,
    ("_mget",): QUERY,  # every index its docs name must be served (refused_key)
}
ROOT_READS: dict[tuple[str, ...], frozenset[str]] = {  # /...
    (): LOOKUP,
    ("_analyze",): QUERY,
    ("_mget",): QUERY,
    ("_cluster", "health"): LOOKUP,
    ("_cat", "health"): LOOKUP,
    ("_cat", "count", "{index}"): LOOKUP,
    ("_cat", "indices", "{index}"): LOOKUP,
    # A scroll's next page, and clearing it (a client's scan does when it is done; never every scroll, see
    # ends_every_context); the first page is a search, which this service answers (serving/delegation).
    ("_search", "scroll"): QUERY | {"DELETE"},
    ("_search", "scroll", "{scroll_id}"): LOOKUP | {"DELETE"},  # URL-safe base64: it may start with "_"
}
POINT_IN_TIME = {"elasticsearch": ("_pit",), "opensearch": ("_search", "point_in_time")}
"""Each cluster's point-in-time endpoint, a read on that backend alone: ``POST`` after a served index opens one (a
client pages a search in it, which this service answers, serving/delegation; its keep_alive is held to a
scroll's, keep_alives), ``DELETE`` at the root closes those named by id (never listing them, nor closing every
one, OpenSearch's ``/_search/point_in_time/_all``: another client's would be read or ended). The other backend's is
no route of the cluster, and Elasticsearch 8, finding no ``_search/point_in_time``, falls back to the typed routes
it keeps for REST compatibility with 7.x: ``POST /products/_search/point_in_time`` with a ``compatible-with=7``
content type indexes a document whose id is ``point_in_time``."""
SCRIPTS = frozenset(
    {
        "script",
        "scripts",
        "script_fields",
        "runtime_mappings",
        "scripted_metric",
        "script_score",
        "minimum_should_match_script",  # terms_set
        "_script",  # a sort
        "collate",  # a phrase suggester's: a search template, run for each suggestion
    }
)
"""Body keys that run code on the cluster: refused in a passed-through read (this service's own searches refuse
them too, see es_compat)."""
INDEX_KEYS = frozenset({"index", "_index"})
"""Body keys that name an index for the cluster to read a document from: a terms lookup's or a percolate query's
``index``, a ``more_like_this`` document's ``_index``, and the ``_index`` of a ``_termvectors`` body, which
replaces the path's. A body's index must be a served one, as a path's is; an ``indexed_shape`` that names none is
read from the cluster's ``shapes`` index, and refused too."""
INFERENCE = frozenset({"inference_id", "query_vector_builder", "text_expansion", "semantic", "neural", "neural_sparse"})
"""Body keys that make the cluster run a model (a knn query's embedding, a sparse_vector query's endpoint, a
text_expansion query, Elasticsearch's semantic query on its field's endpoint, OpenSearch's neural and
neural_sparse queries, which a ``_validate/query?rewrite`` or an ``_explain`` rewrites by running the model): any
inference endpoint of the cluster, whatever the index, and one may call a paid service per request. Not
``model_id``, which those name their model with: a catalogue's field may have that name too (a term query on a
product's ``model_id`` is a read like any other)."""
WRAPPER = "wrapper"
"""A query that holds another query base64-encoded (in any body format the cluster reads): the checks here would
not see a script or an index in it, so it is refused."""
ANALYSIS_COMPONENTS = ("tokenizer", "filter", "token_filter", "char_filter")
"""The parts of an ``_analyze`` body that may define a component inline instead of naming one: such a definition
can read a file of the cluster's configuration (``synonyms_path``, ``mappings_path``: a line that is not a rule
comes back in the error) or hold a regular expression that backtracks for minutes (a ``pattern`` tokenizer)."""
BODY_REFUSALS = {
    "script_refused": "would run a script on the cluster",
    "index_refused": "names an index not served",
    "wrapped_query": "holds an encoded query the checks here cannot read",
    "inference_refused": "would run a model on the cluster",
}
"""What a body key refused by :func:`refused_key` would do, by its reason code."""
JSON_MEDIA_TYPES = frozenset({"application/json", "application/vnd.elasticsearch+json"})
"""The media types of the bodies passed through: what the checks here read. Elasticsearch also reads YAML, CBOR
and Smile bodies, and JSON with comments, where a script would reach it unseen."""
HOLDING_PARAMETERS = ("wait_for", "timeout", "master_timeout", "cluster_manager_timeout")
"""Query parameters (and prefixes) that make the cluster hold the request, and with it one of this service's threads.
``cluster_manager_timeout`` is OpenSearch's name for ``master_timeout`` (both read there): one refused, the other
would hold the request all the same."""
REFUSED_PARAMETERS = {
    "error_trace": "it returns the cluster's stack traces",
    # Elasticsearch reads path and query parameters as one map: on a path that names no index, ?index= names it.
    "index": "it names indices for a path that names none; name a served index in the path (/products/_analyze)",
    "level": "it makes the cluster's health list every index",
    "refresh": "it makes a read refresh the index's shards",
    # A body in the query string for clients that cannot send one, which the body checks here would not see.
    "source": "it carries a body the checks here do not read; send the body as the request's body",
    "source_content_type": "it carries a body the checks here do not read; send the body as the request's body",
}
"""Query parameters a passed-through read may not carry, and why."""


class NotCanonical(ValueError):
    """A path that some hop could read as another one; ``code`` names the rule it breaks."""

    def __init__(self, code: str, detail: str):
        super().__init__(detail)
        self.code = code
        self.detail = detail


def path_segments(path: str) -> list[str]:
    """The decoded segments of a canonical path (``[]`` for ``/``); :class:`NotCanonical` for any other path.

    Canonical: an absolute path of non-empty segments; each made of the
    characters in :data:`PATH_CHARACTERS` and upper-case percent-escapes of
    other bytes (``%2F`` in a document id is fine, ``%2e`` or ``%5F`` is
    not: RFC 3986 sends unreserved characters as they are, and a hop that
    normalises escapes would change the bytes); decoded, valid UTF-8
    without control characters, ``%`` (a double escape, which a hop that
    decodes twice reads as another path), backslashes, characters that
    Unicode compatibility normalisation (NFKC) changes (``U+FF0E``, a
    full-width dot, is ``.`` there), and no part between ``/`` that is
    empty or only dots (``..``, ``%2F..%2F`` or a trailing-dot ``...``).
    Such a path means the same to every hop, so what is authorised is what
    the cluster runs.
    """
    if path == "/":
        return []
    if not path.startswith("/"):
        raise NotCanonical("not_absolute", "the path does not begin with '/'")
    return [_segment(raw) for raw in path[1:].split("/")]


def _segment(raw: str) -> str:
    if not raw:
        raise NotCanonical("empty_segment", "an empty segment ('//' or a trailing '/')")
    decoded = bytearray()
    at = 0
    while at < len(raw):
        char = raw[at]
        if char == "%":
            digits = raw[at + 1 : at + 3]
            if len(digits) != 2 or not set(digits.upper()) <= HEX_DIGITS:
                raise NotCanonical("bad_escape", f"'%' not followed by two hexadecimal digits in {raw!r}")
            if digits != digits.upper():
                raise NotCanonical("lower_case_escape", f"%{digits} is sent in upper case (%{digits.upper()})")
            byte = int(digits, 16)
            if chr(byte) in UNRESERVED:
                raise NotCanonical("escaped_unreserved", f"%{digits} stands for {chr(byte)!r}, sent as it is")
            decoded.append(byte)
            at += 3
        elif char in PATH_CHARACTERS:
            decoded.append(ord(char))
            at += 1
        else:
            raise NotCanonical("forbidden_character", f"{char!r} is not sent unescaped in a path")
    try:
        text = decoded.decode("utf-8")
    except UnicodeDecodeError:
        raise NotCanonical("invalid_utf8", f"{raw!r} does not decode to UTF-8") from None
    if any(unicodedata.category(char) == "Cc" for char in text):
        raise NotCanonical("control_character", f"{raw!r} decodes to a control character")
    if "%" in text:
        raise NotCanonical("double_escape", f"{raw!r} decodes to another escape")
    if "\\" in text:
        raise NotCanonical("backslash", f"{raw!r} decodes to a backslash, a separator to some servers")
    if unicodedata.normalize("NFKC", text) != text:
        raise NotCanonical("unicode_normalisation", f"{raw!r} changes under Unicode normalisation (NFKC)")
    if any(not part.strip(".") for part in text.split("/")):
        raise NotCanonical("dot_segment", f"{raw!r} is, or decodes to, a segment that is empty or only dots")
    return text


def is_index_expression(segment: str) -> bool:
    """Whether a path's first segment names indices (``products``, ``a,b``, ``prod*``, ``_all``), not an API."""
    return "/" not in segment and (segment == "_all" or not segment.startswith("_"))


def index_position(segments: Sequence[str]) -> int | None:
    """Which of a path's decoded segments is the index expression it reads (``/products/_doc/1``: the first;
    ``/_cat/count/products``: the third), None where it names none."""
    if segments and is_index_expression(segments[0]):
        return 0
    if len(segments) == 3 and segments[0] == "_cat" and (*segments[:2], "{index}") in ROOT_READS:
        return 2
    return None


def serves_only(expression: str, served: AbstractSet[str]) -> bool:
    """Whether an index expression (``products``, ``a,b``) names served indices only: no ``_all``, wildcard,
    exclusion or date math, which the cluster would expand to indices this service does not serve."""
    return all(name in served and name != "_all" for name in expression.split(","))


def _fits(shape: tuple[str, ...], segments: list[str], served: AbstractSet[str]) -> bool:
    return len(shape) == len(segments) and all(
        part == segment
        # An id holding an escaped "/" is one segment here, but "s1/_update" is a write endpoint to a hop that
        # decodes it (and to Elasticsearch's typed routes): none of its parts may be an endpoint's name.
        or (part == "{id}" and not any(piece.startswith("_") for piece in segment.split("/")))
        or (part == "{name}" and "/" not in segment and not segment.startswith("_"))
        or (part == "{scroll_id}" and "/" not in segment)
        or (part == "{index}" and "/" not in segment and serves_only(segment, served))
        for part, segment in zip(shape, segments, strict=True)
    )


def is_read(method: str, segments: list[str], served: AbstractSet[str], backend: str) -> bool:
    """Whether ``method`` on the decoded path ``segments`` (see :func:`path_segments`) is an allow-listed read of
    the ``served`` indices only, on a cluster of ``backend`` (see :data:`POINT_IN_TIME`)."""
    point_in_time = POINT_IN_TIME[backend]
    if segments and is_index_expression(segments[0]):
        if not serves_only(segments[0], served):
            return False
        rest, table = segments[1:], {**INDEX_READS, point_in_time: frozenset({"POST"})}
    else:
        rest, table = segments, {**ROOT_READS, point_in_time: frozenset({"DELETE"})}
    return any(method in methods for shape, methods in table.items() if _fits(shape, rest, served))


def query_parameters(query: str) -> list[tuple[str, str]]:
    """The decoded query parameters, as Elasticsearch reads them: it separates them with ``;`` as with ``&``
    (``?pretty;error_trace=true`` asks for stack traces), which ``parse_qsl`` does not."""
    return parse_qsl(query.replace(";", "&"), keep_blank_values=True)


def refused_parameter(parameters: Sequence[tuple[str, str]]) -> tuple[str, str] | None:
    """The first query parameter a passed-through read may not carry (see :data:`HOLDING_PARAMETERS`,
    :data:`REFUSED_PARAMETERS`) and why, or None."""
    for name, _ in parameters:
        if name in REFUSED_PARAMETERS:
            return name, REFUSED_PARAMETERS[name]
        if any(name == p or name.startswith(f"{p}_") for p in HOLDING_PARAMETERS):
            return name, "it holds the request at the cluster"
    return None


def json_document(body: bytes, content_type: str | None, max_depth: int) -> Any:
    """A read's body as JSON, or None when it has none: what the checks below read, parsed once, as every body of
    this service is (:func:`~search_rerank.serving.json_input.parse_json`). :class:`InvalidBody` for a body of
    another media type (see :data:`JSON_MEDIA_TYPES`) or not strict JSON: the cluster would run what the checks
    never saw."""
    if not body:
        return None
    media_type = (content_type or "").split(";", 1)[0].strip().lower()
    if media_type not in JSON_MEDIA_TYPES:
        raise InvalidBody("body", f"a body of type {content_type!r}; only JSON bodies (application/json) pass through")
    return parse_json(body, max_depth)


def keep_alives(parameters: Sequence[tuple[str, str]], document: Any) -> None:
    """Check the keep-alive of a scroll (in the query string or a ``_search/scroll`` body) and of a point in time
    being opened (``?keep_alive=``), as a search's are checked
    (:func:`~search_rerank.serving.body_checks.a_keep_alive`): a next page must not keep a scroll alive longer
    than its first page may, nor a point in time outlive what the searches in it may ask."""
    for name, value in parameters:
        if name in ("scroll", "keep_alive"):
            a_keep_alive(value, name)
    if isinstance(document, dict) and "scroll" in document:
        a_keep_alive(document["scroll"], "scroll")


CONTEXT_IDS = ("scroll_id", "pit_id", "id")
"""Where a request that ends search contexts names them, in its query string or body: a scroll's ``scroll_id``,
an OpenSearch point in time's ``pit_id``, an Elasticsearch one's ``id``."""


def ends_every_context(segments: Sequence[str], parameters: Sequence[tuple[str, str]], document: Any) -> bool:
    """Whether ending scrolls or points in time names ``_all`` (in the path, a query parameter, which the cluster
    reads as the path's, or the body, a string or a list; see :data:`CONTEXT_IDS`): that would end every client's
    on the cluster, not the caller's own (OpenSearch reads ``{"pit_id": ["_all"]}`` so)."""
    named: list[Any] = [segments[2]] if len(segments) > 2 else []
    named.extend(value for name, value in parameters if name in CONTEXT_IDS)
    if isinstance(document, dict):
        for key in CONTEXT_IDS:
            ids = document.get(key)
            named.extend(ids if isinstance(ids, list) else [ids])
    return any(isinstance(value, str) and "_all" in value.split(",") for value in named)


def refused_key(document: Any, served: AbstractSet[str]) -> tuple[str, str] | None:
    """The first key of a JSON body that would run a script on the cluster (:data:`SCRIPTS`), read an index not
    ``served`` (:data:`INDEX_KEYS`), hide a query from these checks (:data:`WRAPPER`) or run a model
    (:data:`INFERENCE`), and its reason code (see :data:`BODY_REFUSALS`); or None."""
    found = refused_at(document, served)
    return (found[1], found[2]) if found is not None else None


def refused_at(document: Any, served: AbstractSet[str], path: str = "") -> tuple[str, str, str] | None:
    """Where in a JSON body :func:`refused_key` finds its key (``aggs.x.avg.script``), the key, and the reason
    code: a search delegated to the cluster is checked so too (serving/delegation), its 501 naming the place."""
    # Each value with whether its keys are a terms query's fields ({"terms": {"_index": [...]}}): a field of a terms
    # query named "terms" holds a lookup, whose keys are not ({"terms": {"terms": {"index": ...}}}).
    pending = [(path, document, False)]
    while pending:
        where, value, terms_fields = pending.pop()
        if isinstance(value, dict):
            for key, inner in value.items():
                at = f"{where}.{key}" if where else str(key)
                if (code := key_refusal(key, inner, served, terms_field=terms_fields)) is not None:
                    return at, str(key), code
                pending.append((at, inner, key == "terms" and not terms_fields))
        elif isinstance(value, list):
            pending.extend((f"{where}[{i}]", item, False) for i, item in enumerate(value))
    return None


def key_refusal(key: Any, inner: Any, served: AbstractSet[str], terms_field: bool = False) -> str | None:
    """The reason code refusing one key of a body, holding ``inner`` (see :func:`refused_key`), or None;
    ``terms_field``: the key is a field of a ``terms`` query.

    An index key (:data:`INDEX_KEYS`) must hold served names: a string, or a
    list of strings each served (an empty list names none), since a list
    passed unchecked (``{"docs": [{"_index": ["secret-orders"], "_id": "1"}]}``
    in ``_mget``, a ``more_like_this`` document's ``_index``, a terms lookup's
    ``index``) was forwarded for the cluster to read as it would. Not so a
    terms query's field, whose list is the values it matches
    (``{"terms": {"_index": ["products", "other"]}}`` filters the searched
    index's documents by their index and reads no other), nor an object: a
    field's or a setting's options (``{"term": {"_index": {"value": ...}}}``,
    a sort on ``_index``, an aggregation named ``index``), walked as any other
    value, where the cluster reads an index's name only from a string.
    """
    if key in SCRIPTS:
        return "script_refused"
    if key == WRAPPER:
        return "wrapped_query"
    if key in INFERENCE:
        return "inference_refused"
    if key in INDEX_KEYS and not isinstance(inner, dict) and not (terms_field and isinstance(inner, list)):
        names = inner if isinstance(inner, list) else [inner]
        if not (names and all(isinstance(name, str) and serves_only(name, served) for name in names)):
            return "index_refused"
    if key == "indexed_shape" and not (isinstance(inner, dict) and "index" in inner):
        return "index_refused"
    return None


def inline_analysis(document: Any) -> str | None:
    """The first part of an ``_analyze`` body that defines an analysis component instead of naming one (see
    :data:`ANALYSIS_COMPONENTS`), or None."""
    if not isinstance(document, dict):
        return None
    for key in ANALYSIS_COMPONENTS:
        value = document.get(key)
        if any(isinstance(item, dict) for item in (value if isinstance(value, list) else [value])):
            return key
    return None


def forwarded(headers: Iterable[tuple[str, str]]) -> dict[str, str]:
    """The caller's headers the cluster gets (:data:`FORWARDED_HEADERS`)."""
    return {name: value for name, value in headers if name.lower() in FORWARDED_HEADERS}


def plain_media_types(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with Elasticsearch's versioned media types (``application/vnd.elasticsearch+json;
    compatible-with=9``) as the plain JSON types they stand for: OpenSearch answers them with a 406, so
    elasticsearch-py's ``helpers.scan`` failed on its scroll's second page, the first being this service's."""
    return {name: COMPATIBLE_MEDIA_TYPE.sub(r"application/\1", value) for name, value in headers.items()}


def answer_headers(headers: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """The cluster's headers the caller gets (:data:`ANSWER_HEADERS`), less those its Connection header names as
    hop-by-hop (RFC 9110 section 7.6.1)."""
    headers = list(headers)
    named = {
        token.strip().lower() for name, value in headers if name.lower() == "connection" for token in value.split(",")
    }
    return [(name, value) for name, value in headers if name.lower() in ANSWER_HEADERS - named]


VERSION = re.compile(r"\d{8}-\d{6}-\d{6}")
"""A version stamp of an index's name (indexing.versions.STAMP_FORMAT): ``products-20250101-120000-000000``."""


def _opened_as_elasticsearch(data: bytes) -> bytes:
    """OpenSearch's answer to opening a point in time (``pit_id``, ``creation_time``) as Elasticsearch's (``id``)."""
    answer = json.loads(data)
    rest = {key: value for key, value in answer.items() if key not in ("pit_id", "creation_time")}
    return json.dumps({"id": answer.get("pit_id"), **rest}).encode()


def _closed_as_elasticsearch(data: bytes) -> bytes:
    """OpenSearch's answer to closing points in time (``pits``, each ``successful``) as Elasticsearch's."""
    pits = json.loads(data).get("pits") or []
    freed = sum(1 for pit in pits if isinstance(pit, dict) and pit.get("successful"))
    return json.dumps({"succeeded": freed == len(pits), "num_freed": freed}).encode()


class OpenPointsInTime:
    """The points in time this process opened on the cluster through the passthrough and has not seen closed, each
    until its keep-alive ends (a search in it may extend it on the cluster; it is counted to its first end), at
    most ``limit``: each pins the served index's segments on the cluster for up to 5 minutes, and OpenSearch caps
    how many a node holds for every client of the cluster, so a browser opening them in a loop would leave none
    for the others. One whose answer holds no id it can read is counted to its end all the same."""

    def __init__(self, limit: int):
        self.limit = limit
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def retry_after_s(self, now: float) -> float | None:
        """None while one more may be opened; else the seconds until the first of them ends."""
        with self._lock:
            self._until = {pit_id: until for pit_id, until in self._until.items() if until > now}
            return None if len(self._until) < self.limit else min(self._until.values()) - now

    def opened(self, pit_id: str | None, keep_alive_s: float, now: float) -> None:
        with self._lock:
            self._until[pit_id if pit_id is not None else f"(unread {now} {len(self._until)})"] = now + keep_alive_s

    def closed(self, ids: Iterable[Any]) -> None:
        with self._lock:
            for pit_id in ids:
                if isinstance(pit_id, str):
                    self._until.pop(pit_id, None)


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
        self._base_path = parse_url(self.base_url).path or ""
        self.allow_writes = settings.service.passthrough_writes
        self.backend = lexical.backend
        self.plain_json = lexical.backend == "opensearch"
        self.max_json_depth = settings.service.max_json_depth
        served = {*settings.service.index_names, lexical.index} - {settings.personalisation.profile_index}
        self.served: frozenset[str] = frozenset(served)
        self.cluster_index = lexical.index
        self.front_names = self.served - {lexical.index}
        """The names a front end may call the served index by that are not the cluster's (see :meth:`on_cluster`)."""
        self._slots = threading.BoundedSemaphore(settings.service.passthrough_concurrency)
        self.points_in_time = OpenPointsInTime(settings.service.max_open_points_in_time)
        self.timeout_s = lexical.request_timeout_s
        self.breaker = breaker
        self._auth: dict[str, str] = {}
        if lexical.api_key is not None:
            self._auth["Authorization"] = f"ApiKey {lexical.api_key.get_secret_value()}"
        elif lexical.username is not None and lexical.password is not None:  # settings pair them
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
        target = self.on_cluster(target)
        target, body, written_back = self.as_own_point_in_time(method, target, body)
        path = target.split("?", 1)[0]
        sent = plain_media_types(forwarded(headers)) if self.plain_json else forwarded(headers)
        content_type = next((value for name, value in sent.items() if name.lower() == "content-type"), None)
        refused = self.refusal(method, target, body, content_type)
        if refused is not None:
            return refused
        sent.update(self._auth)
        scroll_page = method in ("GET", "POST") and path_segments(path)[:2] == ["_search", "scroll"]
        if scroll_page or written_back is not None:  # read before it is passed on (foreign_index): plain JSON
            sent = {name: value for name, value in sent.items() if name.lower() not in ("accept", "accept-encoding")}
            sent.update({"Accept": "application/json", "Accept-Encoding": "identity"})
        if (
            self.opens_point_in_time(method, path)
            and (wait_s := self.points_in_time.retry_after_s(time.time())) is not None
        ):
            response = self._error(
                429,
                "search_rerank_too_many_points_in_time",
                f"{method} {path}: {self.points_in_time.limit} points in time opened here are still open on the "
                "cluster (service.max_open_points_in_time); close one (DELETE with its id) or try again",
                "too_many_points_in_time",
            )
            response.headers["Retry-After"] = str(max(1, round(wait_s)))
            return response
        if not self._slots.acquire(blocking=False):
            response = self._error(
                503,
                "search_rerank_passthrough_busy",
                f"{method} {path}: as many requests as allowed are with the cluster already; try again",
                "passthrough_busy",
            )
            response.headers["Retry-After"] = "1"
            return response
        try:
            answer, data = self._send(method, target, body, sent, self.resendable(method, target))
        except CircuitOpenError as exc:
            response = self._error(
                503,
                "search_rerank_circuit_open",
                f"{method} {path}: the cluster keeps failing; not passed through for now",
                CIRCUIT_OPEN,
            )
            response.headers["Retry-After"] = str(max(1, round(exc.retry_after_s)))
            return response
        except urllib3.exceptions.HTTPError as exc:
            # The cluster's address and the exception stay in the log: a caller learns only what failed.
            log.warning("passthrough %s %r to %s failed: %s", method, path, self.base_url, exc)
            # A refused connection is a NewConnectionError, which urllib3 derives from its TimeoutError.
            if isinstance(exc, urllib3.exceptions.TimeoutError) and not isinstance(
                exc, urllib3.exceptions.NewConnectionError
            ):
                return self._error(
                    504,
                    "search_rerank_cluster_timeout",
                    f"{method} {path}: no answer from the cluster within {self.timeout_s:g}s",
                    "timeout",
                )
            return self._error(
                502,
                "search_rerank_cluster_unreachable",
                f"{method} {path}: the cluster cannot be reached",
                "cluster_unavailable",
            )
        finally:
            self._slots.release()
        if (300 <= answer.status < 400 and answer.status != 304) or answer.status in (401, 403):
            # The service's own configuration is wrong, not the caller's request, and the answer would say too
            # much: a redirect's Location where the cluster is (a load balancer's; it is not followed), a 401 or 403
            # the service's cluster user and roles, with a WWW-Authenticate that has a shopper's browser ask for
            # the cluster's password. An operator's fix: the log line has the cluster's answer.
            log.warning("passthrough: the cluster answered %s %s with %d: %s", method, path, answer.status, data[:500])
            return self._error(
                502,
                "search_rerank_cluster_misconfigured",
                f"{method} {path}: the cluster refused the service's request ({answer.status}); see the service's log",
                "cluster_misconfigured",
            )
        if answer.status >= 500 or answer.status == 429:
            # A node's failure names the node and its transport address ("[es-data-2][10.0.0.5:9300] Node not
            # connected"), as a full search queue does (429, es_rejected_execution_exception), a proxy's error page
            # its software: the status (and when to try again) is the caller's, the rest the log's. A 500 is this
            # service's own failure to a caller: the cluster's is a 502.
            log.warning("passthrough: the cluster answered %s %s with %d: %s", method, path, answer.status, data[:500])
            response = self._error(
                502 if answer.status == 500 else answer.status,
                "search_rerank_cluster_failed",
                f"{method} {path}: the cluster failed the request ({answer.status}); see the service's log",
                "cluster_failed",
            )
            if "Retry-After" in answer.headers:
                response.headers["Retry-After"] = answer.headers["Retry-After"]
            return response
        if answer.status == 200 and scroll_page:
            foreign = self.foreign_index(data)
            if foreign is not None:
                # The scroll's id, not the path, named what it searched: one opened on another index of the cluster
                # (the shopper profiles', another application's) is not read through the service, which calls the
                # cluster as its one user. Elasticsearch's answer to a scroll it does not hold.
                log.warning("passthrough: a scroll of the index %r, not served, refused", foreign)
                return self._answer(
                    404,
                    {"type": "search_context_missing_exception", "reason": "No search context found for the scroll id"},
                )
        if answer.status == 200:
            self.track_points_in_time(method, target, body, data)
        if answer.status == 200 and written_back is not None:
            return Response(written_back(data), status=200, mimetype="application/json", headers=ES_HEADERS)
        response = Response(data, status=answer.status)
        response.headers.clear()
        for name, value in answer_headers(answer.headers.items()):
            response.headers.add(name, value)
        return response

    def as_own_point_in_time(
        self, method: str, target: str, body: bytes
    ) -> tuple[str, bytes, Callable[[bytes], bytes] | None]:
        """Elasticsearch's point-in-time calls on an OpenSearch cluster, sent to OpenSearch's endpoint in its
        shape (:data:`POINT_IN_TIME`), with how to write its answer back in Elasticsearch's; as they came, with
        None, for any other call, which :meth:`refusal` then judges.

        Elasticsearch's clients open one with ``POST /INDEX/_pit`` and close it with ``DELETE /_pit`` and
        ``{"id": ...}`` (their ``open_point_in_time``, elasticsearch-dsl's ``iterate()``, the JS client's paging),
        which an OpenSearch cluster has no route for: on an OpenSearch backend they were a 403. What is sent is
        what :meth:`refusal` authorises: OpenSearch's own endpoint, the served index's."""
        if self.backend != "opensearch":
            return target, body, None
        path, mark, query = target.partition("?")
        try:
            segments = path_segments(path)
        except NotCanonical:
            return target, body, None
        own = "/".join(POINT_IN_TIME["opensearch"])
        if method == "POST" and len(segments) == 2 and segments[1] == "_pit":
            return f"/{path.split('/')[1]}/{own}{mark}{query}", body, _opened_as_elasticsearch
        if method == "DELETE" and segments == ["_pit"]:
            try:
                named = json.loads(body or b"{}").get("id")
            except (ValueError, AttributeError):
                named = None
            if isinstance(named, str):
                return f"/{own}{mark}{query}", json.dumps({"pit_id": [named]}).encode(), _closed_as_elasticsearch
        return target, body, None

    def opens_point_in_time(self, method: str, path: str) -> bool:
        """Whether ``method`` on ``path`` (canonical: :meth:`refusal` passed it) opens a point in time on the
        backend's own endpoint (:data:`POINT_IN_TIME`)."""
        return method == "POST" and path_segments(path)[1:] == list(POINT_IN_TIME[self.backend])

    def track_points_in_time(self, method: str, target: str, body: bytes, data: bytes) -> None:
        """Count a point in time the cluster opened (:class:`OpenPointsInTime`), to the keep-alive asked (checked
        by :func:`keep_alives`), and forget those it closed, named in the request's body."""
        path, _, query = target.partition("?")
        key = "pit_id" if self.backend == "opensearch" else "id"
        if self.opens_point_in_time(method, path):
            try:
                kept_s = keep_alive_s(dict(query_parameters(query)).get("keep_alive", "5m"), "keep_alive")
            except InvalidQuery:  # not checked with service.passthrough_writes: as long as a search may keep it
                kept_s = MAX_KEEP_ALIVE_S
            try:
                opened = json.loads(data).get(key)
            except (ValueError, AttributeError):
                opened = None
            self.points_in_time.opened(opened if isinstance(opened, str) else None, kept_s, time.time())
        elif method == "DELETE" and path_segments(path) == list(POINT_IN_TIME[self.backend]):
            try:
                named = json.loads(body or b"{}").get(key)
            except (ValueError, AttributeError):
                return
            self.points_in_time.closed(named if isinstance(named, list) else [named])

    def on_cluster(self, target: str) -> str:
        """``target`` with each served name of its index expression that is not the cluster's index
        (``service.index_names``) written as the cluster's index (``lexical.index``), as this service's searches
        of that name search it: ``GET /products/_doc/1`` reads the served product whatever the cluster calls its
        index, as an alias would (the answer names the cluster's index, as Elasticsearch's names an alias's).

        It runs before :meth:`refusal`, which authorises the path as it is then sent; a path that is not
        canonical is left as it came, for :meth:`refusal` to refuse. Every other name is sent as the caller
        wrote it, escapes and all: written back decoded, ``/%3F%2Cproducts/_mapping`` was sent as
        ``/?,shop_catalog/_mapping`` (the cluster's info, ``,shop_catalog/_mapping`` its query string) and
        ``/_cat/count/x%3Fformat%3Djson%2Cproducts`` as ``/_cat/count/x?format=json,shop_catalog``: what ran
        was not what the caller asked. Kept escaped, ``?`` is an index name not served (a 404).
        """
        path, mark, query = target.partition("?")
        try:
            segments = path_segments(path)
        except NotCanonical:
            return target
        at = index_position(segments)
        if at is None:
            return target
        names = segments[at].split(",")
        raw = path.split("/")
        # Each name as sent: in a canonical path a decoded "," was sent as "," or "%2C" (escapes are upper case).
        kept: dict[str, str] = {}
        for name, sent in zip(names, NAME_SEPARATOR.split(raw[at + 1]), strict=True):
            if name in self.front_names:  # served names and the cluster's are plain (settings.INDEX_NAME)
                name = sent = self.cluster_index
            kept.setdefault(name, sent)
        if list(kept) == names:
            return target
        raw[at + 1] = ",".join(kept.values())
        return "/".join(raw) + mark + query

    def foreign_index(self, data: bytes) -> str | None:
        """The first index not served that a scroll's page holds a hit of (None: every hit is the served index's,
        by its name or a version of it, ``products-20250101-120000-000000``, as a reindex names them). A page it
        cannot read (another format asked by ``?format=``, hits without ``_index`` by a ``filter_path``) is
        refused as one: what is not checked is not passed on."""
        try:
            hits = json.loads(data).get("hits", {}).get("hits", [])
        except (ValueError, AttributeError):
            return "(an answer that is not JSON)"
        if not isinstance(hits, list):
            return "(hits that are not a list)"
        for hit in hits:
            index = hit.get("_index") if isinstance(hit, dict) else None
            if not isinstance(index, str) or not self.holds(index):
                return str(index)
        return None

    def holds(self, index: str) -> bool:
        """Whether ``index`` is a served one: a served name, or a version of one (see backends.cluster.version_name)."""
        if index in self.served:
            return True
        name, stamp = index[: -STAMP_LENGTH - 1], index[-STAMP_LENGTH:]
        return (
            index[-STAMP_LENGTH - 1 : -STAMP_LENGTH] == "-"
            and name in self.served
            and VERSION.fullmatch(stamp) is not None
        )

    def refusal(self, method: str, target: str, body: bytes = b"", content_type: str | None = None) -> Response | None:
        """The 400 or 403 for a request that is not forwarded; None for one that is.

        A 400 for a path that is not canonical (see :func:`path_segments`), or
        a target the HTTP client would send otherwise than it came (it would
        be authorised as one request and run as another); unless
        ``service.passthrough_writes``, a 403 for a path not on the read
        allow-list, a query parameter a read may not carry
        (:func:`refused_parameter`), a body with a script or naming an index
        not served (:func:`refused_key`) or an ``_analyze`` body defining a
        component (:func:`inline_analysis`), a 400 for a body that is not
        JSON (:func:`json_document`), and Elasticsearch's 404 for a path
        naming an index not served.
        """
        path, _, query = target.partition("?")
        try:
            segments = path_segments(path)
        except NotCanonical as exc:
            log.info("passthrough refused %s %r: %s", method, path, exc.code)
            return self._error(
                400,
                "search_rerank_path_not_canonical",
                f"{method} {path}: {exc.detail}; the passthrough forwards only paths that every hop reads alike",
                exc.code,
            )
        if parse_url(self.base_url + target).request_uri != self._base_path + target:
            log.info("passthrough refused %s %r: the HTTP client would rewrite it", method, target)
            return self._error(
                400,
                "search_rerank_path_not_canonical",
                f"{method} {path}: the request target would not be sent as it came (check its query string)",
                "rewritten_target",
            )
        if self.allow_writes:
            return None
        if segments and is_index_expression(segments[0]) and not serves_only(segments[0], self.served):
            # Elasticsearch's own 404, as this service's searches answer it: the same whether the cluster has
            # such an index or not, so that a caller learns nothing of the cluster's others.
            unserved = next(n for n in segments[0].split(",") if n not in self.served or n == "_all")
            return self._answer(404, index_not_found_cause(unserved))
        if not is_read(method, segments, self.served, self.backend):
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path} is not one of the reads of the served index ({', '.join(sorted(self.served))}) "
                f"the passthrough forwards; set service.passthrough_writes = true to forward any request",
                "not_a_read",
            )
        parameters = query_parameters(query)
        if (refused := refused_parameter(parameters)) is not None:
            name, why = refused
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path}: the query parameter {name!r} is not passed through ({why})",
                "parameter_refused",
            )
        try:
            document = json_document(body, content_type, self.max_json_depth)
        except InvalidBody as exc:
            return self._error(400, "parsing_exception", f"{method} {path}: {exc}", "not_json")
        try:
            keep_alives(parameters, document)
        except InvalidQuery as exc:
            code = f"{exc.field}_too_long" if isinstance(exc, TooLongKept) else "not_a_time_value"
            return self._error(400, "parsing_exception", f"{method} {path}: {exc}", code)
        if method == "DELETE" and ends_every_context(segments, parameters, document):
            scrolls = segments[:2] == ["_search", "scroll"]
            what = "scroll" if scrolls else "point in time"
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path}: ending every {what} (_all) is not passed through; name the {what} to end",
                "every_scroll" if scrolls else "every_point_in_time",
            )
        # A body's index names go to the cluster as written: a front end's name for the served index (renamed in
        # the path, on_cluster) is the cluster's name of another index there, or of none.
        if (found := refused_key(document, self.served - self.front_names)) is not None:
            key, code = found
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path}: the body's {key!r} {BODY_REFUSALS[code]}; not passed through",
                code,
            )
        if segments[-1:] == ["_analyze"] and (part := inline_analysis(document)) is not None:
            return self._error(
                403,
                "search_rerank_passthrough_refused",
                f"{method} {path}: the body defines its {part!r} inline; only named analysis components pass through",
                "inline_analysis",
            )
        return None

    def resendable(self, method: str, target: str) -> bool:
        """Whether a request that got no answer may be sent once more: a read (every request the read-only default
        forwards; with ``service.passthrough_writes``, the safe methods), but never one that moves a cursor the
        cluster may have moved already (a scroll's next page, an SQL cursor's) or opens one (``?scroll=``, a point
        in time): sent again, it would answer the page after, and one would be lost, or leave a scroll or a point
        in time open that nobody closes."""
        path, _, query = target.partition("?")
        segments = path.split("/")
        cursor = segments[1:3] == ["_search", "scroll"] or segments[1:2] == ["_sql"]
        opens = any(name == "scroll" for name, _ in query_parameters(query)) or segments[2:] == list(
            POINT_IN_TIME[self.backend]
        )
        return (not self.allow_writes or method in SAFE_METHODS) and not cursor and not opens

    def _send(
        self, method: str, target: str, body: bytes, headers: dict[str, str], resend: bool
    ) -> tuple[urllib3.BaseHTTPResponse, bytes]:
        """The request to the cluster, through the breaker, and its answer's body: no answer or a 502/503/504 is a
        failure.

        With ``resend``, a connection that closed before any byte of an answer
        came back is tried once more, within what is left of the same timeout,
        before it counts: urllib3 checks a pooled connection before reusing it,
        but a close that crosses the request on the wire passes that check.
        The body is read only after the status line and headers arrived, so an
        answer cut short is never sent for again. urllib3's own ``Retry``
        cannot do just this: its read budget also resends after a read timeout
        or a broken body, which would double the wait for a cluster that is
        slow rather than gone.
        """
        attempt = self.breaker.admit() if self.breaker is not None else None
        deadline = time.monotonic() + self.timeout_s

        def send(seconds: float) -> urllib3.BaseHTTPResponse:
            return self._http.urlopen(
                method,
                self.base_url + target,
                body=body or None,
                headers=headers,
                redirect=False,
                retries=False,
                timeout=urllib3.Timeout(total=seconds),
                preload_content=False,
                decode_content=False,
            )

        try:
            try:
                answer = send(self.timeout_s)
            except urllib3.exceptions.ProtocolError as exc:
                left = deadline - time.monotonic()
                if not resend or left <= 0:
                    raise
                log.info("passthrough %s %r: closed without an answer (%s); sent once more", method, target, exc)
                answer = send(left)
            try:
                data = self._body_by(answer, deadline, target)
            finally:
                answer.release_conn()
        except BaseException:
            if attempt is not None:
                attempt.report(ok=False)
            raise
        if attempt is not None:
            attempt.report(ok=answer.status not in UNAVAILABLE)
        return answer, data

    def _body_by(self, answer: urllib3.BaseHTTPResponse, deadline: float, target: str) -> bytes:
        """The answer's body, read as it comes, up to ``deadline``: the timeout is urllib3's for each read, so a
        cluster (or a hop) that drips its answer a byte at a time would otherwise hold a passthrough slot and a
        worker thread for as long as it keeps dripping. Past it, the connection is closed and the request is a
        timeout (a 504)."""
        chunks: list[bytes] = []
        while chunk := answer.read1(BODY_CHUNK, decode_content=False):
            chunks.append(chunk)
            if time.monotonic() > deadline:
                answer.close()
                raise AnswerTooSlow(f"{target}: no whole answer in {self.timeout_s:g}s")
        return b"".join(chunks)

    @staticmethod
    def _error(status: int, kind: str, reason: str, code: str) -> Response:
        return ClusterPassthrough._answer(status, {"type": kind, "reason": reason, "reason_code": code})

    @staticmethod
    def _answer(status: int, cause: dict[str, Any]) -> Response:
        response = jsonify(es_error_body(status, cause))
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
    """The path as the client sent it, percent-escapes kept (``%2F`` in a document id), and the query string with
    its escapes in upper case.

    The case of an escape's digits means nothing (RFC 3986 section 6.2.2.1)
    and the HTTP client sends them in upper case, so a query string with
    ``%2c`` would otherwise be refused as one the client rewrites; the
    parameters the checks read are the same either way. A path's escapes are
    not changed: a lower-case one there is refused (see :func:`path_segments`).
    """
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if isinstance(raw, str) and raw.startswith("/"):
        target = raw.split("?", 1)[0]
        script = str(environ.get("SCRIPT_NAME") or "")
        if script and target.startswith(script):
            target = target[len(script) :]
    else:
        target = quote(path, safe="/:@!$&'()*+,;=-._~")
    query = ESCAPE.sub(lambda escape: escape.group().upper(), query_string.decode("latin-1"))
    return f"{target}?{query}" if query else target
