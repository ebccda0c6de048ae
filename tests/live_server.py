"""Real HTTP on loopback: the app for clients other than Flask's test client (a browser, schemathesis),
and stand-in servers (a slow hop, a recording cluster) written as request handlers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from werkzeug.serving import make_server


@contextmanager
def served(app) -> Iterator[str]:
    """The app on a free loopback port in a thread; yields its base URL and stops it after."""
    with _running(make_server("127.0.0.1", 0, app, threaded=True)) as url:
        yield url


@contextmanager
def handled(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server for ``handler`` on a free loopback port; yields its base URL and stops it after."""
    with _running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


@contextmanager
def _running(server) -> Iterator[str]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)
