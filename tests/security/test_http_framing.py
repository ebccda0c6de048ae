"""The HTTP layer under gunicorn as deployed (asgi worker, asgi_bridge, protocol_errors): request framing, content and
transfer codings, request targets and upgrades, written byte for byte over a socket (rawhttp.py says why not an
HTTP client)."""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from live_server import gunicorn_served, index_env
from service.conftest import catalog_dir, index_settings  # noqa: F401  (the service tests' index, shared)

SHOP = "https://shop.example"
QUERY = json.dumps({"query": "oak table", "size": 1}).encode()


@pytest.fixture(scope="module")
def server(index_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:  # noqa: F811
    env = {
        **index_env(index_settings),
        "SEARCH_RERANK_SERVICE__WORKERS": "2",
        "SEARCH_RERANK_SERVICE__THREADS": "2",
        "SEARCH_RERANK_SERVICE__CORS_ALLOW_ORIGINS": json.dumps([SHOP]),
    }
    with gunicorn_served(env, tmp_path_factory.mktemp("http-framing")) as served:
        yield {**served, "port": urlsplit(served["url"]).port}


def exchange(port: int, data: bytes, timeout_s: float = 15) -> tuple[bytes, float]:
    """Send ``data`` as it is; everything the server sends until it closes (or ``timeout_s`` passes), and the
    seconds that took."""
    started = time.monotonic()
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as sock:
        sock.sendall(data)
        try:
            while chunk := sock.recv(65536):
                received += chunk
        except TimeoutError:
            pass
    return received, time.monotonic() - started


def first_response(received: bytes) -> tuple[int, dict[str, str], bytes]:
    """The status, headers (lower-case names) and everything after the head of the first answer in ``received``."""
    head, _, rest = received.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines)}
    return int(status_line.split(" ")[1]), headers, rest


def search_request(target: bytes, body: bytes, extra: bytes = b"", version: bytes = b"HTTP/1.1") -> bytes:
    return (
        b"POST "
        + target
        + b" "
        + version
        + b"\r\nHost: t\r\nContent-Type: application/json\r\n"
        + extra
        + b"Content-Length: %d\r\n\r\n" % len(body)
        + body
    )


CLOSE = b"Connection: close\r\n"
CORRUPT_GZIP = b"\x1f\x8b\x08\x00" + b"not a deflate stream"


def test_a_refusal_on_a_kept_alive_http_1_0_connection_states_where_its_body_ends(server):
    """An HTTP/1.0 client that asked for keep-alive sends a corrupt gzip body, then another request. The bridge's
    own 400 (asgi_bridge.BufferedWsgiBridge.refusal) has no Content-Length, HTTP/1.0 has no chunking, and the
    connection is kept: the client cannot tell where the 400's body ends (it waits for a close that does not come
    until the keep-alive timer), and the next answer runs on straight after it."""
    keep_alive = b"Connection: keep-alive\r\nContent-Encoding: gzip\r\n"
    first = search_request(b"/search", CORRUPT_GZIP, keep_alive, version=b"HTTP/1.0")
    received, _ = exchange(server["port"], first + b"GET /health HTTP/1.0\r\n\r\n")
    status, headers, rest = first_response(received)
    assert status == 400
    delimited = "content-length" in headers or headers.get("connection", "").lower() == "close"
    assert delimited, f"an HTTP/1.0 answer with no length on a kept-alive connection: {received!r}"
    if "content-length" in headers:
        assert json.loads(rest[: int(headers["content-length"])])["fields"][0]["field"] == "body"


def test_a_body_transfer_coded_gzip_then_chunked_is_not_read_still_compressed(server):
    """``Transfer-Encoding: gzip, chunked``: gunicorn's parser accepts it and undoes only the chunking; the bridge
    then drops the Transfer-Encoding header (wsgi_environ) and the app reads the gzip bytes as the JSON body (400
    "not UTF-8"). A coding the server does not undo is a 501 (RFC 9112 section 6.1; protocol_errors has the
    message for it), or it is undone and the search served."""
    packed = gzip.compress(QUERY)
    request = (
        b"POST /search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n"
        + CLOSE
        + b"\r\n"
        + b"%x\r\n" % len(packed)
        + packed
        + b"\r\n0\r\n\r\n"
    )
    status, _, rest = first_response(exchange(server["port"], request)[0])
    assert status in (200, 501), (status, rest)


@pytest.mark.parametrize("target", [b"http://t/search", b"http://t:80/search"])
def test_an_absolute_form_target_is_served_as_its_path(server, target):
    """RFC 9112 section 3.2.2: a server MUST accept the absolute form (what a client talking to a proxy sends).
    gunicorn puts the whole URL in the ASGI ``path``, the bridge hands it to Flask as PATH_INFO, and the search
    is a 404."""
    status, _, rest = first_response(exchange(server["port"], search_request(target, QUERY, CLOSE))[0])
    assert status == 200, rest[:300]


@pytest.mark.parametrize("request_line", [b"GET /health", b"HEAD /health", b"GET /products/_search", b"GET /_count"])
def test_a_request_with_no_body_but_a_content_encoding_is_served(server, request_line):
    """A request without a body that names a content coding: there is nothing to inflate, as Elasticsearch's
    decompressor (Netty's) finds. The bridge inflates the empty body anyway (content_coding.inflate) and answers
    400 "the gzip stream ends before it is complete", /health included."""
    request = request_line + b" HTTP/1.1\r\nHost: t\r\nContent-Encoding: gzip\r\n" + CLOSE + b"\r\n"
    status, _, rest = first_response(exchange(server["port"], request)[0])
    assert status == 200, rest[:300]


def test_a_search_pipelined_after_a_refused_corrupt_body_gets_its_own_answer(server):
    """The bridge's own refusal (a corrupt gzip body) on a kept-alive HTTP/1.1 connection, then a search: the
    refusal states its length and the search gets the search's answer."""
    bad = search_request(b"/products/_search", CORRUPT_GZIP, b"Content-Encoding: gzip\r\n")
    received, _ = exchange(server["port"], bad + search_request(b"/search", QUERY, CLOSE))
    status, headers, rest = first_response(received)
    assert status == 400 and "content-length" in headers
    second = rest[int(headers["content-length"]) :]
    status, _, body = first_response(second)
    assert status == 200
    assert json.loads(body)["query"] == "oak table"


@pytest.mark.parametrize(
    "digits", [b"0" * 4998 + b"30", b"9" * 5000], ids=["30-with-leading-zeros", "a-5000-digit-length"]
)
def test_a_content_length_of_thousands_of_digits_is_answered(server, digits):
    """``Content-Length`` is 1*DIGIT: 5,000 digits fit in a header (8,190 bytes) but not in Python's int() (4,300
    digits, Python 3.11's guard): gunicorn's parser (asgi/parser.py, _finalize_headers) raises ValueError out of
    data_received, asyncio logs "Fatal error: protocol.data_received() call failed" with the traceback, and the
    connection is dropped with no answer at all. Expected: an answer, JSON (the first is a valid length of 30:
    served, or at worst a 400; the second a 413 or 400)."""
    request = (
        b"POST /search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: "
        + digits
        + b"\r\n"
        + CLOSE
        + b"\r\n"
        + QUERY
    )
    received, _ = exchange(server["port"], request, timeout_s=10)
    assert received, "the connection was dropped without an answer"
    status, headers, _ = first_response(received)
    assert status in (200, 400, 413)
    assert headers["content-type"] == "application/json"


def test_the_bridges_408_can_be_read_by_a_page_of_an_allowed_origin(server):
    """cors.refusal_headers: an answer given before the app runs carries the CORS headers "so that a page of an
    allowed origin can read it ... instead of seeing a network error"; the bridge's 413 and 503 do, its 408 for a
    body that stops arriving (built by hand in asgi_bridge.BufferedWsgiBridge._http) does not: the page sees a
    network error, not the JSON written for it."""
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=30) as sock:
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
            + f"Origin: {SHOP}\r\n".encode()
            + b"Content-Length: 50\r\n\r\n{"
        )
        answer = sock.recv(65536)
    status, headers, _ = first_response(answer)
    assert status == 408
    assert headers.get("access-control-allow-origin") == SHOP


WEBSOCKET = b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
HANDSHAKE = WEBSOCKET + b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"


@pytest.mark.parametrize("target", [b"/search", b"/products/_search"])
def test_a_search_post_that_offers_a_websocket_upgrade_is_served(server, target):
    """A POST carrying ``Upgrade: websocket`` and ``Connection: Upgrade`` is an ordinary request whose upgrade the
    server may ignore (RFC 9110 section 7.8), and gunicorn passes it to the app as HTTP. Werkzeug's routing (the
    bridge's environ keeps HTTP_UPGRADE) then takes it for a websocket request no rule serves and answers its
    generic 400 "The browser (or proxy) sent a request that this server could not understand", endpoint
    ``unmatched``, and not in Elasticsearch's shape on the Elasticsearch route."""
    body = QUERY if target == b"/search" else json.dumps({"query": {"match": {"title": "oak"}}, "size": 1}).encode()
    status, _, body = first_response(exchange(server["port"], search_request(target, body, WEBSOCKET + CLOSE))[0])
    assert status == 200, body[:300]


@pytest.mark.parametrize("target", [b"/products%C0%AF/_search", b"/products%FF/_search"], ids=["overlong", "ff"])
def test_a_path_that_is_not_utf8_once_percent_decoded_is_a_400(server, target):
    """A URI parameter that is not UTF-8 once percent-decoded is a 400 naming it (``?q=%ff%fe``); in the path the
    same bytes are replaced with U+FFFD (gunicorn decodes the path with errors='replace', the bridge takes it as
    it is) and the request runs on a name its client never sent: 404 "no such index [products\\ufffd\\ufffd]".
    Elasticsearch refuses a path it cannot decode (400)."""
    request = b"GET " + target + b" HTTP/1.1\r\nHost: t\r\n" + CLOSE + b"\r\n"
    status, _, body = first_response(exchange(server["port"], request)[0])
    assert status == 400, body[:300]
    assert "\\ufffd" not in body.decode("utf-8", "replace")


@pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n"], ids=["none", "two"])
def test_an_http_1_1_request_without_one_host_header_is_a_json_400(server, hosts):
    """RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request with no Host header or several (a proxy
    before the service and the service could each take the request for another site); gunicorn passes both on."""
    status, headers, body = first_response(
        exchange(server["port"], b"GET /health HTTP/1.1\r\n" + hosts + CLOSE + b"\r\n")[0]
    )
    assert status == 400 and headers.get("content-type", "").startswith("application/json")
    assert json.loads(body)["error"]  # gunicorn refuses two itself (protocol_errors answers it), the bridge none


def test_an_http_1_0_request_without_a_host_header_is_served(server):
    status, _, _ = first_response(exchange(server["port"], b"GET /health HTTP/1.0\r\n\r\n")[0])
    assert status == 200
