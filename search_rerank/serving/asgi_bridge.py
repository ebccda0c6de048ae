"""The Flask app behind gunicorn's asyncio worker: whole requests in the event loop, then a thread runs the app.

Why: with gunicorn's threaded (gthread) worker a connection takes a thread as
soon as its first byte arrives, and that thread then reads the headers and the
body synchronously. A client that sends them a byte at a time holds the thread
for as long as it likes (gunicorn's ``timeout`` only watches the worker's main
loop), so a few slow sockets per worker starve ``/health`` and ``/search``;
gunicorn documents that its sync and threaded workers need a buffering proxy in
front. Measured on the 2-core build machine, 50 slow sockets against two
workers: gthread with 4 threads left 6 of 20 ``/health`` requests unanswered
after 5 s; with 64 threads it held, but 300 slow sockets left every request
unanswered (an attacker needs only more sockets than threads); gevent held but
monkey-patches the pipeline's thread pools into greenlets, so a CPU-bound
stage can no longer be timed out, and ``/search`` took 0.8 s at the median
instead of 20 ms; this bridge held, at 50 slow sockets as at 300 (``/health``
under 20 ms, ``/search`` under 0.6 s on two busy cores).

Here gunicorn's ``asgi`` worker parses headers in its event loop, and
:class:`BufferedWsgiBridge` reads the body there too, so a slow client costs a
coroutine and a buffer, never a thread; the app runs in a thread pool
(``service.threads`` threads per worker) only once the request is complete, as
behind nginx. A body that has not fully arrived within
:data:`BODY_TIMEOUT_S` is answered 408; one over the app's
``MAX_CONTENT_LENGTH`` is not buffered further and the app answers its 413.
A compressed body (``Content-Encoding: gzip``, ``deflate``) is inflated here,
within the same limit (see content_coding), so the app and the passthrough
read it as if it had been sent plain.
Responses are small JSON documents, so they are collected whole in the thread
and sent by the loop.

The probes (:data:`PROBE_PATHS`) have two threads of their own, and ``/metrics`` one. Sharing the
app's threads, ``/health`` waited behind every search sent before it: with the
CPU cross-encoder (about a second a search) and 32 clients searching, it took
0.5 s at the median and 5 s at worst, 200 clients made that 3.6 s and 9.6 s,
past any liveness probe's timeout (Kubernetes: 1 s), which would have had busy,
healthy workers restarted.

Overload is shed, not queued without end: a request that no thread has taken
within ``service.queue_timeout_s`` is answered 503 with ``Retry-After`` at
once, in its route's error shape, and never run; one whose client closes the
connection while it waits is dropped (both counted in
``search_rerank_shed_requests_total``). Unbounded, the queue grew with the
load: with the CPU cross-encoder and 200 clients searching, searches took
3.5-5 s at the median and up to 20 s, and searches whose clients had long
given up were still run, each delaying the live ones behind it.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import math
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from flask import Flask
from werkzeug.exceptions import HTTPException

from . import metrics
from .api_models import ErrorResponse, FieldError
from .content_coding import Corrupt, TooLarge, coding_of, inflate
from .cors import refusal_headers
from .es_compat import ES_HEADERS, es_error_body
from .logs import logged_path, request_id

log = logging.getLogger(__name__)
access = logging.getLogger("search_rerank.access")

# nginx's client_body_timeout bounds each gap between reads; this bounds the whole body, which a drip cannot stretch.
BODY_TIMEOUT_S = 10.0

PROBE_PATHS = frozenset({"/health", "/ready"})
"""Run by threads of their own, never queued behind searches (``/ready`` bounds its own check, see readiness)."""
METRICS_PATH = "/metrics"
"""Run by a thread of its own too: never behind searches (a scrape is what shows an overload), nor ahead of the
probes (anyone may ask for it, and a flood of pipelined scrapes held ``/health`` past a liveness timeout when they
shared the probes' threads)."""

QUEUE_TIMEOUT, CLIENT_GONE = "queue_timeout", "client_gone"
"""Why a request was shed (``reason`` of the 503, and of ``search_rerank_shed_requests_total``): it waited
``service.queue_timeout_s`` for a thread, or its client closed the connection while it waited."""
OVERLOADED = "search_rerank_overloaded"
"""The Elasticsearch error type of a shed request."""
ES_BLUEPRINTS = frozenset({"es", "cluster"})
"""The routes whose errors are Elasticsearch's shape (see es_api)."""

Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]
Answer = tuple[int, list[tuple[bytes, bytes]], bytes]


class BufferedWsgiBridge:
    """ASGI application that buffers each request, then runs the Flask app on it in a thread pool."""

    def __init__(self, app: Flask, threads: int, max_body_bytes: int, queue_timeout_s: float) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.queue_timeout_s = queue_timeout_s
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="wsgi")
        self.probe_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="probe")
        self.metrics_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="metrics")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websockets: not served; returning without accepting makes the server refuse them

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for pool in (self.pool, self.probe_pool, self.metrics_pool):
                    pool.shutdown(wait=False, cancel_futures=True)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        declared = declared_length(scope)
        if declared is not None and declared > self.max_body_bytes:
            await self._too_large(scope, declared, send)  # not read at all
            return
        try:
            async with asyncio.timeout(BODY_TIMEOUT_S):
                body = await self._read_body(receive)
        except TimeoutError:
            log.warning("request body incomplete after %gs: answered 408", BODY_TIMEOUT_S)
            message = f"the request body did not arrive within {BODY_TIMEOUT_S:g}s"
            environ = wsgi_environ(scope, b"")
            closing = {"Connection": "close"}
            await _send_response(
                send, *self.refusal(environ, 408, "Request Timeout", message, "timeout", headers=closing)
            )
            return
        if body is None:
            log.info("the client went away before its request was whole: not run")
            return
        if len(body) > self.max_body_bytes:  # not read on
            await self._too_large(scope, len(body), send)
            return
        refused = _unreadable(scope)
        if refused is not None:
            await _send_response(send, *self.refusal(wsgi_environ(scope, b""), *refused))
            return
        coding = coding_of(scope.get("headers", []))
        if coding is not None and body:  # no body (a GET with the header) has nothing to inflate
            try:
                body = inflate(body, coding, self.max_body_bytes)
            except TooLarge:
                await self._too_large(scope, self.max_body_bytes + 1, send)
                return
            except Corrupt as exc:
                environ = wsgi_environ(scope, b"")
                refusal = self.refusal(environ, 400, "invalid request", str(exc), "parsing_exception", field="body")
                await _send_response(send, *refusal)
                return
        environ = wsgi_environ(scope, body)
        if coding is not None:  # what the app (and a passthrough to the cluster) reads is the body inflated
            del environ["HTTP_CONTENT_ENCODING"]
        await self._respond(environ, receive, send)

    async def _too_large(self, scope: Scope, length: int, send: Send) -> None:
        """The app's 413, from a body length over its ``MAX_CONTENT_LENGTH`` alone."""
        environ = wsgi_environ(scope, b"")
        environ["CONTENT_LENGTH"] = str(length)
        await self._respond(environ, None, send)

    async def _respond(self, environ: dict[str, Any], receive: Receive | None, send: Send) -> None:
        """Run the app on the request and send its answer; ``receive`` (None: not watched) tells when the client
        has gone, and is only given once the body has been read whole, lest watching it read on."""
        own = {METRICS_PATH: self.metrics_pool}.get(environ["PATH_INFO"])
        if own is None and environ["PATH_INFO"] in PROBE_PATHS:
            own = self.probe_pool
        if own is not None:
            answer: Answer | None = await asyncio.get_running_loop().run_in_executor(own, self._run_app, environ)
        else:
            answer = await self._queued(environ, receive)
        if answer is not None:
            await _send_response(send, *answer)

    async def _queued(self, environ: dict[str, Any], receive: Receive | None) -> Answer | None:
        """The app's answer from the thread pool; or, while no thread has taken the request yet, the shed answer
        once it has waited ``queue_timeout_s``, or None as soon as its client has gone (neither is ever run).

        A request a thread has started runs to its end whatever happens meanwhile.
        """
        job = self.pool.submit(self._run_app, environ)
        answered = asyncio.wrap_future(job)
        gone = asyncio.ensure_future(disconnected(receive) if receive is not None else asyncio.Event().wait())
        watched: set[asyncio.Future[Any]] = {answered, gone}
        try:
            await asyncio.wait(watched, timeout=self.queue_timeout_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            gone.cancel()
        if not answered.done() and job.cancel():  # still in the queue: it never will be run now
            if gone.done() and not gone.cancelled():
                self.shed(environ, CLIENT_GONE)
                return None
            return self.shed(environ, QUEUE_TIMEOUT)
        return await answered

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body, or its first ``max_body_bytes + 1`` bytes or more (enough to answer 413)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            chunks.append(chunk)
            size += len(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)
            if size > self.max_body_bytes:
                return b"".join(chunks)

    def shed(self, environ: dict[str, Any], reason: str) -> Answer:
        """Count a request dropped unrun, and the 503 its client gets (nobody gets it for :data:`CLIENT_GONE`)."""
        metrics.SHED.labels(self.route(environ)[0], reason).inc()
        message = f"the service is overloaded: no thread took the request within {self.queue_timeout_s:g}s; try again"
        retry_after = {"Retry-After": str(max(1, math.ceil(self.queue_timeout_s)))}
        if reason == CLIENT_GONE:
            return self.refusal(environ, 499, "client closed request", message, OVERLOADED, reason=reason)
        return self.refusal(environ, 503, "overloaded", message, OVERLOADED, reason=reason, headers=retry_after)

    def refusal(
        self,
        environ: dict[str, Any],
        status: int,
        error: str,
        message: str,
        es_type: str,
        field: str | None = None,
        reason: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Answer:
        """An error answered here, not by the app: in the error shape of the request's route (Elasticsearch's, of
        type ``es_type``, on the ES API, else ``ErrorResponse``), and logged and counted as the app does its answers (a 499, nginx's
        code for a client that closed first, is logged only)."""
        endpoint, elasticsearch = self.route(environ)
        rid = request_id(environ.get("HTTP_X_REQUEST_ID"))
        if status != 499:
            metrics.REQUESTS.labels(endpoint, str(status)).inc()
        fields = {"request_id": rid, "method": environ["REQUEST_METHOD"], "path": logged_path(environ["PATH_INFO"])}
        fields.update(endpoint=endpoint, status=status, reason=reason or message)
        access.info("%s %s %s", fields["method"], fields["path"], status, extra={"fields": fields})
        sent = {"Content-Type": "application/json", "X-Request-Id": rid, **(headers or {})}
        sent.update(refusal_headers(self.app, environ.get("HTTP_ORIGIN")))
        if elasticsearch:
            cause: dict[str, Any] = {"type": es_type, "reason": f"[{field}] {message}" if field else message}
            cause.update({"field": field} if field else {}, **({"reason_code": reason} if reason else {}))
            body: dict[str, Any] = es_error_body(status, cause)
            sent.update(ES_HEADERS)
        else:
            problems = [FieldError(field=field, message=message)] if field else None
            answer = ErrorResponse(error=error, message=None if field else message, fields=problems, reason=reason)
            body = answer.model_dump(exclude_none=True)
        payload = json.dumps(body).encode("utf-8")
        # Its length, so that a client on a kept-alive connection (HTTP/1.0's too) knows where the answer ends.
        sent["Content-Length"] = str(len(payload))
        encoded = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in sent.items()]
        return status, encoded, payload

    def route(self, environ: dict[str, Any]) -> tuple[str, bool]:
        """The request's route pattern (the ``endpoint`` label of the metrics), and whether it is an Elasticsearch
        route; ``unmatched`` for none (the app would answer 404 or 405)."""
        try:
            rule, _ = self.app.url_map.bind_to_environ(environ).match(return_rule=True)
        except HTTPException:
            return "unmatched", False
        return rule.rule, (rule.endpoint or "").rpartition(".")[0] in ES_BLUEPRINTS

    def _run_app(self, environ: dict[str, Any]) -> Answer:
        started: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable:
            if exc_info is not None and started:
                raise exc_info[1].with_traceback(exc_info[2])
            started["status"], started["headers"] = status, headers
            return written.append

        result = self.app(environ, start_response)
        try:
            written.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        headers = [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in started["headers"]]
        return int(started["status"].split(" ", 1)[0]), headers, b"".join(written)


async def _send_response(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def disconnected(receive: Receive) -> None:
    """Returns once the client has gone. Only for a request whose body has been read whole: ASGI's ``receive``
    has nothing but the disconnect to report then."""
    while (await receive())["type"] != "http.disconnect":
        pass


def _unreadable(scope: Scope) -> tuple[int, str, str, str] | None:
    """Why the request cannot be read as it was sent (status, error, message, Elasticsearch's error type), or None.

    A path whose percent-escapes are not UTF-8 would run on a name the client never sent (the server puts U+FFFD
    for each bad byte), as a query string's are refused; an HTTP/1.1 request without one Host header is refused
    as HTTP requires; a transfer coding other than chunked (``gzip, chunked``) is undone by nobody, so its body
    would be read still coded."""
    raw = scope.get("raw_path") or b""
    try:
        unquote_to_bytes(raw.decode("latin-1")).decode("utf-8")
    except UnicodeDecodeError:
        return 400, "invalid request", "the path is not UTF-8 once its percent-escapes are decoded", "parsing_exception"
    hosts = [value for name, value in scope.get("headers", []) if name.lower() == b"host"]
    if scope.get("http_version") == "1.1" and len(hosts) != 1:
        # RFC 9112 section 3.2: a server must refuse an HTTP/1.1 request with no Host, or with several, whose
        # target a proxy before it and the service could each read as another.
        why = "an HTTP/1.1 request must carry one Host header" + (f", not {len(hosts)}" if hosts else "")
        return 400, "invalid request", why, "parsing_exception"
    for name, value in scope.get("headers", []):
        codings = (
            {c.strip().lower() for c in value.decode("latin-1").split(",")}
            if name.lower() == b"transfer-encoding"
            else set()
        )
        if codings - {"chunked", ""}:
            return (
                501,
                "not implemented",
                "transfer codings other than chunked are not served",
                "illegal_argument_exception",
            )
    return None


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it sent one that is a number."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"content-length":
            return int(value) if value.strip().isdigit() else None
    return None


def wsgi_environ(scope: Scope, body: bytes) -> dict[str, Any]:
    """PEP 3333 environ for an ASGI HTTP scope and its complete body.

    Paths are WSGI's latin-1 view of their UTF-8 bytes; ``RAW_URI`` keeps the
    target exactly as the client sent it (percent-escapes, dot segments), as
    gunicorn's own workers do, for the passthrough's path check. The body is
    whole, so ``CONTENT_LENGTH`` is its length (a chunked body included).
    """
    root_path = scope.get("root_path", "")
    path = _origin_form(scope["path"])
    if root_path and path.startswith(root_path):
        path = path[len(root_path) :]
    query = scope.get("query_string", b"").decode("latin-1")
    raw_path = _origin_form((scope.get("raw_path") or scope["path"].encode("utf-8")).decode("latin-1"))
    server = scope.get("server") or ("localhost", 80)
    client = scope.get("client") or ("", 0)
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": root_path.encode("utf-8").decode("latin-1"),
        "PATH_INFO": path.encode("utf-8").decode("latin-1"),
        "QUERY_STRING": query,
        "RAW_URI": f"{raw_path}?{query}" if query else raw_path,
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]),
        "SERVER_PROTOCOL": f"HTTP/{scope.get('http_version', '1.1')}",
        "REMOTE_ADDR": str(client[0]),
        "REMOTE_PORT": str(client[1]),
        "CONTENT_LENGTH": str(len(body)),
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": io.BytesIO(body),
        "wsgi.input_terminated": True,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
    }
    for raw_name, raw_value in scope.get("headers", []):
        name = raw_name.decode("latin-1").upper().replace("-", "_")
        value = raw_value.decode("latin-1")
        if name in ("CONTENT_LENGTH", "TRANSFER_ENCODING"):
            continue  # the body is whole: its length is set above
        if name == "UPGRADE":
            continue  # an upgrade offered beside a request may be ignored (RFC 9110, 7.8): the request is served
        key = name if name == "CONTENT_TYPE" else f"HTTP_{name}"
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def _origin_form(target: str) -> str:
    """A request target's path: an absolute-form target (``http://host/search``, which a server must accept,
    RFC 9112 3.2.2) by the path it names."""
    if not target.startswith(("http://", "https://")):
        return target
    return urlsplit(target).path or "/"


def bridged(app: Flask) -> BufferedWsgiBridge:
    """The app behind the bridge, sized by its own settings (``service.threads``, ``service.max_body_bytes``,
    ``service.queue_timeout_s``)."""
    service = app.config["SETTINGS"].service
    return BufferedWsgiBridge(app, service.threads, service.max_body_bytes, service.queue_timeout_s)
