"""Attack helpers: requests sent byte for byte as written, and a proxy that records what reaches a server.

HTTP clients (urllib3, requests, http.client) resolve ``..``, re-escape
characters or refuse control characters before a request leaves them, so an
attack written with them is not the attack that arrives. :func:`send` writes
the request line itself over a socket, as ``curl --path-as-is`` does: what
the test writes is what the server reads.

:func:`recording_proxy` stands between the service and a real server (the
osmem-server cluster) and records every request that gets through, so a test
can show that the cluster never received one.
"""

from __future__ import annotations

import http.client
import json
import socket
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import urlsplit

from live_server import handled

# Not copied from one hop to the next (RFC 9110 section 7.6.1), or recomputed by it.
HOP_BY_HOP = frozenset({"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "content-length"})


@dataclass
class RawResponse:
    status: int
    headers: dict[str, str]  # lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Recorded:
    method: str
    target: str
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes = b""


def send(
    base_url: str,
    method: str,
    target: str | bytes,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    timeout_s: float = 30,
) -> RawResponse:
    """``method target`` sent to ``base_url``'s host exactly as given (a ``str`` target as Latin-1 bytes), with
    ``headers`` and ``body``; one request per connection."""
    address = urlsplit(base_url)
    raw_target = target if isinstance(target, bytes) else target.encode("latin-1")
    lines = [method.encode("ascii") + b" " + raw_target + b" HTTP/1.1", f"Host: {address.netloc}".encode()]
    lines += [f"{name}: {value}".encode("latin-1") for name, value in (headers or {}).items()]
    lines += [f"Content-Length: {len(body)}".encode(), b"Connection: close"]
    with socket.create_connection((address.hostname, address.port), timeout=timeout_s) as sock:
        sock.sendall(b"\r\n".join(lines) + b"\r\n\r\n" + body)
        response = http.client.HTTPResponse(sock, method=method)
        response.begin()
        payload = response.read()
        return RawResponse(response.status, {name.lower(): value for name, value in response.getheaders()}, payload)


@contextmanager
def recording_proxy(upstream_url: str) -> Iterator[tuple[str, list[Recorded]]]:
    """A proxy to ``upstream_url`` on a free loopback port that records each request (raw target, headers, body)
    before passing it on unchanged; yields its URL and the list of what it recorded."""
    upstream = urlsplit(upstream_url)
    seen: list[Recorded] = []

    class Recorder(BaseHTTPRequestHandler):
        def forward(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            headers = {name.lower(): value for name, value in self.headers.items()}
            seen.append(Recorded(self.command, self.path, headers, body))
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=30)
            try:
                connection.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in HOP_BY_HOP:
                        connection.putheader(name, value)
                connection.putheader("Content-Length", str(len(body)))
                connection.endheaders(body)
                answer = connection.getresponse()
                payload = answer.read()
            finally:
                connection.close()
            self.send_response(answer.status)
            head = self.command == "HEAD"  # the upstream's Content-Length holds: no body to count
            for name, value in answer.getheaders():
                if name.lower() not in HOP_BY_HOP or (head and name.lower() == "content-length"):
                    self.send_header(name, value)
            if not head:
                self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = forward

        def log_message(self, *args):
            pass

    with handled(Recorder) as url:
        yield url, seen
