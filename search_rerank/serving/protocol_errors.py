"""gunicorn's connection as this service runs it: JSON answers for the requests gunicorn refuses itself, before
the app sees them, and deadlines for clients too slow to send their headers or to take their answer.

A malformed request line, a request line over ``limit_request_line``
(4094 bytes), too many or too large headers: gunicorn's asgi worker answers
these from its HTTP parser (400, 414, 431, 501) with a ``text/plain`` body
quoting the parser's message, which can quote the request. Everything else
this service answers is JSON, and a client (or a browser front end) that
parses error bodies as JSON should not have to special-case the protocol
layer; nor should the parser's message reach the client.

gunicorn has no setting for these pages. The worker builds its connections
with the class named ``ASGIProtocol`` in ``gunicorn.workers.gasgi``, looked up
when the server starts, so ``post_worker_init`` (see gunicorn_conf) names
:class:`JsonErrorProtocol` there, in the worker's own process only. It
overrides the one method that writes these pages; gunicorn is pinned below
28, and tests/service/test_gunicorn.py fails if an upgrade stops calling it.

The same class bounds the time a connection may take to send its first
request's headers (:data:`HEADER_TIMEOUT_S`, nginx's ``client_header_timeout``).
gunicorn's asgi worker bounds the headers of a kept-alive connection's later
requests (its ``keepalive`` timer runs until they are complete) but not the
first: a connection that sends nothing, or a header a byte a minute, stayed
open for good, and about 2,000 such idle sockets (1,024 descriptors per worker,
the common soft limit) left the service accepting no connection at all, /health
included, for as long as the attacker held them. It is answered 408 and closed.

And it bounds how long a client may leave its answer untaken (:data:`SEND_TIMEOUT_S`, nginx's ``send_timeout``).
gunicorn waits for a paused transport to drain without a deadline, and closing a transport waits for its buffer
to be written first: a client that asked for a large answer (a ``_msearch`` of 50 searches of 100 hits is
megabytes, from a request of 3 KB) and then read nothing held its socket and the answer in the worker's memory
for good (40 such clients: 130 MB, still held minutes later). Once the answer has filled the socket's buffers,
a client that takes none of it for the deadline loses the connection: the transport is aborted, its buffer
dropped.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol

HEADER_TIMEOUT_S = 10.0
"""A connection's first request headers must be complete this long after it opened (the body has its own bound,
``asgi_bridge.BODY_TIMEOUT_S``)."""
SEND_TIMEOUT_S = 30.0
"""An answer the socket cannot take at once is dropped, with the connection, when the client has taken none of it
for this long (docker/nginx.conf's ``send_timeout``); a slow reader that keeps taking some keeps the connection."""

MESSAGES = {
    400: "the request is not valid HTTP/1.1",
    408: f"the request headers did not arrive within {HEADER_TIMEOUT_S:g}s",
    414: "the request line (method, path and query string) is too long",
    431: "the request has too many headers, or one that is too long",
    501: "the request uses a transfer coding this server does not support",
}
"""Fixed texts: the parser's own message may quote the request, so it goes to the log, never to the client."""


def phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def error_page(status: int) -> bytes:
    """The body of a refused request: the app's error shape (``ErrorResponse``), fixed text only."""
    body = {"error": phrase(status), "message": MESSAGES.get(status, "the server could not handle the request")}
    return json.dumps(body).encode("utf-8")


class JsonErrorProtocol(ASGIProtocol):
    """gunicorn's asgi connection, whose own error pages are JSON, whose first request has a header deadline, and
    whose client must keep taking its answer."""

    first_headers: asyncio.TimerHandle | None = None
    send_watch: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        self.first_headers = self.worker.loop.call_later(HEADER_TIMEOUT_S, self._headers_overdue)

    def _on_headers_complete(self) -> bool:
        self._cancel_first_headers()
        return super()._on_headers_complete()

    def _handle_h1c_exception(self, exc: Exception) -> bool:
        """gunicorn's parser's own refusals, and a request whose framing Python cannot read: a Content-Length of
        thousands of digits is a number ``int`` refuses (past 4,300 digits), which dropped the connection without
        an answer and logged a traceback; a 400 then, as for any request whose framing cannot be read."""
        if super()._handle_h1c_exception(exc):
            return True
        if isinstance(exc, ValueError):
            self._send_error_response(400, "the request's framing cannot be read")
            self._close_transport()
            return True
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_first_headers()
        self._cancel_send_watch()
        super().connection_lost(exc)

    def pause_writing(self) -> None:
        """The client is not keeping up with its answer: from now on it must take some of it every
        :data:`SEND_TIMEOUT_S`."""
        super().pause_writing()
        self._watch_send()

    def resume_writing(self) -> None:
        self._cancel_send_watch()
        super().resume_writing()

    def _close_transport(self) -> None:
        """gunicorn's close, which waits until the transport's buffer is written: watched too, or a client that
        never reads would keep the connection open for good."""
        super()._close_transport()
        self._watch_send()

    def _watch_send(self) -> None:
        """Check, :data:`SEND_TIMEOUT_S` from now, that the client has taken some of what waits to be sent."""
        self._cancel_send_watch()
        waiting = self.transport.get_write_buffer_size() if self.transport is not None else 0
        if waiting and not self._conn_lost_handled:
            self.send_watch = self.worker.loop.call_later(SEND_TIMEOUT_S, self._send_overdue, waiting)

    def _cancel_send_watch(self) -> None:
        if self.send_watch is not None:
            self.send_watch.cancel()
            self.send_watch = None

    def _send_overdue(self, waiting: int) -> None:
        """Watch on while the buffer shrinks; else drop the connection, and what it buffers, at once."""
        self.send_watch = None
        if self.transport is None or self._conn_lost_handled:
            return
        if self.transport.get_write_buffer_size() < waiting:
            self._watch_send()
            return
        self.log.info("dropped a connection whose client stopped reading its answer for %gs", SEND_TIMEOUT_S)
        self.transport.abort()

    def _cancel_first_headers(self) -> None:
        if self.first_headers is not None:
            self.first_headers.cancel()
            self.first_headers = None

    def _headers_overdue(self) -> None:
        """408, then gunicorn's own close of an idle keep-alive connection (it also wakes the connection's task)."""
        self.first_headers = None
        if not self._closed:
            self._send_error_response(408, f"no complete request headers within {HEADER_TIMEOUT_S:g}s")
            self._keepalive_timeout()

    def _send_error_response(self, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()) -> None:
        if self._closed:
            # The client has gone (gunicorn writes a 500 when the app returns without answering, as the bridge
            # does for a client that hung up): nothing was refused, and there is nobody to answer.
            return
        self.log.info("refused a request before the app: %s %s", status, message)
        body = error_page(status)
        head = "".join(f"{name}: {value}\r\n" for name, value in extra_headers)
        response = (
            f"HTTP/1.1 {status} {phrase(status)}\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"{head}"
            "Connection: close\r\n"
            "\r\n"
        )
        self._safe_write(response.encode("latin-1") + body)
