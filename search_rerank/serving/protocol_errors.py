"""JSON answers for the requests gunicorn refuses itself, before the app sees them.

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
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from http import HTTPStatus

from gunicorn.asgi.protocol import ASGIProtocol

MESSAGES = {
    400: "the request is not valid HTTP/1.1",
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
    """gunicorn's asgi connection, whose own error pages are JSON."""

    def _send_error_response(self, status: int, message: str, extra_headers: Iterable[tuple[str, str]] = ()) -> None:
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
