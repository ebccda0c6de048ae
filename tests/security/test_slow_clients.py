"""Slow clients cannot starve the service: the app under gunicorn as deployed (two workers), no proxy in front.

50 connections send a request a byte every half second (half of them their
headers, half a body), the way a slowloris attack does, while ``/health`` and
``/search`` are timed. With gunicorn's threaded worker a handful of such
sockets held every thread (issue 12); see ``search_rerank.serving.asgi_bridge``.
A client that asks for a large answer and never reads it is let go after the
send deadline. Bounds are generous (2 s for what takes milliseconds): the point is "answered
in its normal time", not a latency figure (benchmarks/attack.py has those).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from live_server import gunicorn_served, index_env
from service.conftest import catalog_dir, index_settings  # noqa: F401  (the service tests' index, shared)

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
from attack import SlowClients, call, p99  # noqa: E402

from search_rerank.serving.asgi_bridge import BODY_TIMEOUT_S  # noqa: E402
from search_rerank.serving.protocol_errors import HEADER_TIMEOUT_S, SEND_TIMEOUT_S  # noqa: E402

SLOW_CLIENTS = 50
SAMPLES = 20
NORMAL_S = 2.0


@pytest.fixture(scope="module")
def server(index_settings, tmp_path_factory) -> Iterator[dict[str, Any]]:  # noqa: F811
    env = {
        **index_env(index_settings),
        "SEARCH_RERANK_SERVICE__WORKERS": "2",
        "SEARCH_RERANK_SERVICE__THREADS": "4",
    }
    with gunicorn_served(env, tmp_path_factory.mktemp("slow-clients")) as served:
        port = urlsplit(served["url"]).port
        assert port is not None
        for _ in range(8):  # both workers answer a search before anything is timed
            assert call(port, "POST", "/search", json.dumps({"query": "lamp"}).encode(), timeout=60)[0] == 200
        yield {**served, "port": port}


def times_under_attack(port: int, method: str, target: str, body: bytes | None) -> tuple[list[float], int]:
    """Seconds for ``SAMPLES`` requests while the slow clients drip, and how many of those were still open."""
    times = []
    with SlowClients("127.0.0.1", port, SLOW_CLIENTS) as slow:
        time.sleep(2 * slow.interval_s)  # every slow connection has sent its first bytes
        for _ in range(SAMPLES):
            status, payload, ms = call(port, method, target, body, timeout=30)
            assert status == 200, f"{method} {target} answered {status} under attack: {payload[:200]!r}"
            times.append(ms / 1000)
        still_open = slow.still_open()
    return times, still_open


def test_health_answers_in_normal_time_while_50_clients_send_slowly(server):
    times, still_open = times_under_attack(server["port"], "GET", "/health", None)
    assert still_open == SLOW_CLIENTS  # the attack went on throughout
    assert p99(times) < NORMAL_S, times


def test_search_answers_in_normal_time_while_50_clients_send_slowly(server):
    body = json.dumps({"query": "oak table", "size": 5}).encode()
    times, still_open = times_under_attack(server["port"], "POST", "/search", body)
    assert still_open == SLOW_CLIENTS
    assert p99(times) < NORMAL_S, times


def test_a_body_that_stops_arriving_is_answered_408_within_the_body_deadline(server):
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=BODY_TIMEOUT_S + 30) as sock:
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert time.monotonic() - started < BODY_TIMEOUT_S + 5


def test_a_body_declared_over_the_limit_is_answered_413_without_waiting_for_it(server):
    with socket.create_connection(("127.0.0.1", server["port"]), timeout=30) as sock:
        sock.sendall(
            b"POST /search HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\n\r\n"
        )
        started = time.monotonic()
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 413"), answer
    assert time.monotonic() - started < NORMAL_S


def answer_to_a_drip(port: int, first: bytes, drip: bytes, bound_s: float) -> tuple[bytes, float]:
    """Send ``first``, then ``drip`` a byte a second, until the server answers (or ``bound_s`` passes); the answer
    and the seconds it took."""
    with socket.create_connection(("127.0.0.1", port), timeout=bound_s) as sock:
        started = time.monotonic()
        sock.sendall(first)
        sock.settimeout(1.0)
        while time.monotonic() - started < bound_s:
            try:
                answer = sock.recv(4096)
                return answer, time.monotonic() - started
            except TimeoutError:
                if drip:
                    sock.sendall(drip[:1])
                    drip = drip[1:]
    return b"", time.monotonic() - started


def test_a_connection_that_sends_nothing_is_answered_408_within_the_header_deadline(server):
    answer, took = answer_to_a_drip(server["port"], b"", b"", HEADER_TIMEOUT_S + 30)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["error"] == "Request Timeout"
    assert took < HEADER_TIMEOUT_S + 5


def test_headers_sent_a_byte_a_second_are_answered_408_within_the_header_deadline(server):
    first = b"GET /health HTTP/1.1\r\nHost: t\r\nX-Slow: "
    answer, took = answer_to_a_drip(server["port"], first, b"a" * 8000, HEADER_TIMEOUT_S + 30)
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert took < HEADER_TIMEOUT_S + 5


def test_a_client_that_stops_reading_a_large_answer_is_disconnected_within_the_send_deadline(server):
    """A large answer (50 searches of 100 hits, megabytes) to a client that reads none of it: its socket and the
    answer it holds in the worker's memory are let go once nothing has been taken for the send deadline."""
    searches = [{"index": "products"}, {"query": {"match_all": {}}, "size": 100}] * 50
    body = "".join(json.dumps(line) + "\n" for line in searches).encode()
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connecting: the window stays small
        sock.connect(("127.0.0.1", server["port"]))
        sock.sendall(
            b"POST /_msearch HTTP/1.1\r\nHost: t\r\nContent-Type: application/x-ndjson\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        deadline = time.monotonic() + SEND_TIMEOUT_S + 60
        while "stopped reading" not in server["log"].read_text() and time.monotonic() < deadline:
            time.sleep(1)
        sock.settimeout(30)
        received = b""
        while chunk := sock.recv(1 << 16):
            received += chunk
    head, _, answer = received.partition(b"\r\n\r\n")
    length = int(
        next(line for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")).split(b":")[1]
    )
    assert head.startswith(b"HTTP/1.1 200"), head
    assert len(answer) < length  # the connection was dropped, the answer's rest with it
