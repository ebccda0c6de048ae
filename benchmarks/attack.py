"""Attack benchmark (issue 12): the real service under gunicorn on loopback, tried as an attacker and a fault
injector would, every scenario bounded in count and time.

    python benchmarks/attack.py                     # all four scenarios, ~6 minutes on 2 cores
    python benchmarks/attack.py --scenarios slow    # only the slow clients

(a) ``slow``: ``--slow-clients`` sockets (half send their headers a byte at a
    time, half a body) stay open while ``/health`` and ``/search`` are timed
    (p99 over ``--samples`` requests each); then they are closed.
(b) ``frozen``: the service's lexical leg is an osmem-server of its own; the
    server is stopped (SIGSTOP: connections accepted, never answered) and
    searches go on. Their p99 is taken once the breaker answers
    ``circuit_open`` for the lexical leg (or, where no breaker opens within
    ``--frozen-s``, over every search of the window, and the result says so);
    then SIGCONT, and the time until a search is answered whole again.
(d) ``costly``: on the embedded index, requests written to cost the most
    CPU a body can ask for (a sort key repeated thousands of times, fuzzy and
    wildcard words past their bounds, a ReactiveSearch ``react`` repeating one
    query, leading-``*`` wildcards up to their bound, the widest aggregations
    the bucket limit allows), each sent once and timed (status, ms); then
    ``--costly-senders`` threads send the ones answered 200 over and over while
    ``/search`` is timed, against its p99 without them.
(c) ``replay``: attack requests (non-finite numbers, deep nesting, bad
    ``_source``, lone surrogates, one bad ``_msearch`` item, passthrough
    writes hidden behind ``..``, ``%2e%2e``, ``//``) against the same
    cluster-backed service, sent byte for byte by ``http.client`` (which
    sends the target as written), plus UBI events with a marker each. Counted:
    ``requests``, ``status_5xx``, ``hangs`` (no answer in ``--hang-s``),
    ``unauthorised_writes`` (documents created or deleted on the cluster),
    ``lost_events`` (events answered as accepted and missing from the UBI log).

Writes ``benchmarks/results/attack.json`` (the keys above plus
``frozen_cluster_p99_ms``, ``slow_clients_health_p99_ms``, date, machine,
command) and the ``attack`` section of docs/BENCHMARKS.md (``--no-write``:
print it only). Exit status 1 if any request answered 5xx, hung, wrote to the
cluster or lost an event.
"""

from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import signal
import socket
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_dataset, cached_index  # noqa: E402
from load_test import Server  # noqa: E402
from report import ROOT, command, machine, table, write_section  # noqa: E402

from search_rerank.core.settings import ServiceSettings, Settings, load_settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.indexing.indexes import build_index  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "attack.json"
CLUSTER_INDEX = "products"
CIRCUIT_OPEN = "circuit_open"  # the reason a breaker gives for a leg it refused (search_rerank.core.breaker)


# ------------------------------------------------------------------ slow clients


class SlowClients:
    """``count`` connections that send a request a byte every ``interval_s``, for at most ``duration_s``.

    Even ones send headers that never end (one long header line, under
    gunicorn's 8190-byte field limit for the whole window); odd ones send whole
    headers, then a JSON body a byte at a time. A context manager: the
    connections open on entry and close on exit, whatever happened.
    """

    def __init__(self, host: str, port: int, count: int, interval_s: float = 0.5, duration_s: float = 120.0):
        self.host, self.port, self.count = host, port, count
        self.interval_s, self.duration_s = interval_s, duration_s
        self.sockets: list[socket.socket | None] = []
        self.pending: list[bytes] = []
        self.bytes_sent = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._drip, name="slow-clients", daemon=True)

    def __enter__(self) -> SlowClients:
        try:
            for i in range(self.count):
                sock = socket.create_connection((self.host, self.port), timeout=10)
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if i % 2 == 0:
                    sock.sendall(b"GET /health HTTP/1.1\r\nHost: attack\r\nX-Slow: ")
                    rest = b"a" * 8000
                else:
                    body = json.dumps({"query": "oak table " + "x" * 8000}).encode()
                    head = (
                        f"POST /search HTTP/1.1\r\nHost: attack\r\nContent-Type: application/json\r\n"
                        f"Content-Length: {len(body)}\r\n\r\n"
                    ).encode()
                    sock.sendall(head + body[:1])
                    rest = body[1:]
                self.sockets.append(sock)
                self.pending.append(rest)
        except BaseException:
            self._close()
            raise
        self._thread.start()
        return self

    def _drip(self) -> None:
        deadline = time.monotonic() + self.duration_s
        while not self._stop.wait(self.interval_s) and time.monotonic() < deadline:
            for i, sock in enumerate(self.sockets):
                if sock is None or not self.pending[i]:
                    continue
                try:
                    sock.send(self.pending[i][:1])
                except OSError:  # the server gave up on it
                    sock.close()
                    self.sockets[i] = None
                    continue
                self.pending[i] = self.pending[i][1:]
                self.bytes_sent += 1

    def still_open(self) -> int:
        """Connections the server has not closed (a closed one is noticed at its next byte)."""
        return sum(sock is not None for sock in self.sockets)

    def _close(self) -> None:
        for sock in self.sockets:
            if sock is not None:
                sock.close()

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        self._close()


def p99(values: list[float]) -> float:
    """Nearest-rank 99th percentile (with 20 values: the largest)."""
    ordered = sorted(values)
    return ordered[max(math.ceil(0.99 * len(ordered)) - 1, 0)]


def call(
    port: int, method: str, target: str, body: bytes | None = None, timeout: float = 10.0, headers: dict | None = None
) -> tuple[int | None, bytes, float]:
    """One request on a fresh connection, the target sent as written: (status, body, ms); status None: it hung,
    0: the connection closed without an answer."""
    started = time.perf_counter()
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, target, body=body, headers={"Content-Type": "application/json", **(headers or {})})
        response = conn.getresponse()
        payload = response.read()
        return response.status, payload, (time.perf_counter() - started) * 1000
    except TimeoutError:
        return None, b"", (time.perf_counter() - started) * 1000
    except (ConnectionError, http.client.HTTPException):  # closed without an answer
        return 0, b"", (time.perf_counter() - started) * 1000
    finally:
        conn.close()


def timed_requests(port: int, method: str, target: str, body: bytes | None, samples: int) -> list[float]:
    """``samples`` sequential requests; each must answer 200 within 10 s (else SystemExit)."""
    times = []
    for _ in range(samples):
        status, payload, ms = call(port, method, target, body)
        if status != 200:
            raise SystemExit(f"{method} {target} answered {status} under attack: {payload[:200]!r}")
        times.append(ms)
    return times


def slow_clients_scenario(server: Server, count: int, samples: int) -> dict[str, Any]:
    search = json.dumps({"query": "oak table", "size": 10}).encode()
    server.warm_up([{"text": "oak table"}, {"text": "sofa"}], timeout=300, minimum=8)  # every worker, warm
    idle_health = timed_requests(server.port, "GET", "/health", None, samples)
    idle_search = timed_requests(server.port, "POST", "/search", search, samples)
    with SlowClients("127.0.0.1", server.port, count) as slow:
        time.sleep(2 * slow.interval_s)  # every connection has started dripping
        health = timed_requests(server.port, "GET", "/health", None, samples)
        searches = timed_requests(server.port, "POST", "/search", search, samples)
        still_open = slow.still_open()
    return {
        "slow_clients": count,
        "still_open_at_the_end": still_open,
        "slow_clients_health_p99_ms": round(p99(health), 1),
        "slow_clients_search_p99_ms": round(p99(searches), 1),
        "idle_health_p99_ms": round(p99(idle_health), 1),
        "idle_search_p99_ms": round(p99(idle_search), 1),
        "samples": samples,
    }


# ------------------------------------------------------------------ costly requests


def costly_requests() -> list[tuple[str, str, bytes]]:
    """(name, target, body): what a body can ask of the embedded index at the most cost, each just inside or
    past the bound that keeps it cheap (service.max_fuzzy_terms, max_wildcard_terms, max_msearch_searches,
    max_buckets), as an attacker who read docs/COMPATIBILITY.md would write them."""
    words = "sofa table lamp chair rug shelf desk bed oak glass velvet leather corner floor small grey".split()
    fuzzy = {"multi_match": {"query": " ".join((words * 5)[:70]), "fields": ["*"], "fuzziness": 2}}
    bound = ServiceSettings().max_wildcard_terms
    # One wildcard each (a pattern counts once per wildcard): each walks the whole term dictionary.
    leading = [{"wildcard": {"title": f"*{a}{b}"}} for a in "aeiouy" for b in "nrstlcdmpg"][: bound + 1]
    # As long after the wildcard as a pattern may be (wildcards.MAX_TAIL), each its own automaton: before that
    # bound, 32 patterns of ?* at tantivy's size limit took 18 s of CPU in one request.
    longest = [{"wildcard": {"title": f"*{a}{b}" + "e" * 29}} for a in "aeiouy" for b in "nrstlcdmpg"][:bound]
    facet_search = "([a-zA-Z]+ )+?[sS][oO][lL].*"  # Searchkit 4's searchable refinementList, "sol" typed
    named = {"id": "x", "dataField": ["title", "description"] * 1000, "value": "sofa", "execute": False}
    react = {"query": [named, {"id": "r", "react": {"and": ["x"] * 8000}, "size": 1}]}
    bodies: dict[str, tuple[str, dict[str, Any]]] = {
        "sort key repeated 7,000 times": ("_search", {"sort": ["price"] * 7000, "size": 20}),
        "60 copies of a fuzzy multi_match": ("_search", {"query": {"bool": {"should": [fuzzy] * 60}}}),
        f"{bound} leading-* wildcards (service.max_wildcard_terms)": (
            "_search",
            {"query": {"bool": {"filter": {"bool": {"should": leading[:bound]}}}}},
        ),
        f"{bound} leading-* wildcards before 31 characters (wildcards.MAX_TAIL)": (
            "_search",
            {"query": {"bool": {"filter": {"bool": {"should": longest}}}}},
        ),
        f"{bound + 1} leading-* wildcards (past the bound)": (
            "_search",
            {"query": {"bool": {"filter": {"bool": {"should": leading}}}}},
        ),
        "terms include patterns: Searchkit's facet search 8 times (32 repetitions, the bound)": (
            "_search",
            {"size": 0, "aggs": {f"a{i}": {"terms": {"field": "brand", "include": facet_search}} for i in range(8)}},
        ),
        "terms include patterns: 14 of [^x]* 200 times (past the bound)": (
            "_search",
            {"size": 0, "aggs": {f"a{i}": {"terms": {"field": "brand", "include": "[^x]*" * 200}} for i in range(14)}},
        ),
        "wildcard of 300 '?'": ("_search", {"query": {"wildcard": {"title": "?" * 300}}}),
        "terms x terms x terms aggregation": (
            "_search",
            {
                "size": 0,
                "aggs": {
                    "a": {
                        "terms": {"field": "brand", "size": 1000},
                        "aggs": {
                            "b": {
                                "terms": {"field": "category", "size": 1000},
                                "aggs": {"c": {"terms": {"field": "attributes.color", "size": 1000}}},
                            }
                        },
                    }
                },
            },
        ),
        "histogram of 0.01-wide buckets": (
            "_search",
            {"size": 0, "aggs": {"h": {"histogram": {"field": "price", "interval": 0.01}}}},
        ),
        "ReactiveSearch react naming one query 8,000 times": ("_reactivesearch", react),
    }
    return [(name, f"/products/{path}", json.dumps(body).encode()) for name, (path, body) in bodies.items()]


def costly_scenario(server: Server, samples: int, senders: int, hang_s: float) -> dict[str, Any]:
    search = json.dumps({"query": "oak table", "size": 10}).encode()
    server.warm_up([{"text": "oak table"}, {"text": "sofa"}], timeout=300, minimum=8)
    idle = timed_requests(server.port, "POST", "/search", search, samples)
    answered = []
    for name, target, body in costly_requests():
        status, _, ms = call(server.port, "POST", target, body, hang_s)
        answered.append({"request": name, "status": status, "ms": round(ms, 1)})
    accepted = [(t, b) for (n, t, b), a in zip(costly_requests(), answered, strict=True) if a["status"] == 200]
    stop = threading.Event()
    sent = [0] * senders

    def flood(i: int) -> None:
        while not stop.is_set():
            target, body = accepted[sent[i] % len(accepted)]
            call(server.port, "POST", target, body, hang_s)
            sent[i] += 1

    threads = [threading.Thread(target=flood, args=(i,), daemon=True) for i in range(senders if accepted else 0)]
    for thread in threads:
        thread.start()
    try:
        time.sleep(1.0)
        loaded = timed_requests(server.port, "POST", "/search", search, samples)
    finally:
        stop.set()
        for thread in threads:
            thread.join(hang_s + 5)
    return {
        "costly": answered,
        "costly_5xx": sum(a["status"] is not None and a["status"] >= 500 for a in answered),
        "costly_hangs": sum(a["status"] is None for a in answered),
        "costly_slowest_ms": max(a["ms"] for a in answered),
        "costly_senders": len(threads),
        "costly_sent_while_timed": sum(sent),
        "costly_search_p99_ms": round(p99(loaded), 1),
        "costly_idle_search_p99_ms": round(p99(idle), 1),
    }


# ------------------------------------------------------------------ the cluster-backed service


def start_cluster() -> Any:
    import osmem_server

    return osmem_server.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1].rstrip("/"))


def cluster_count(cluster_url: str) -> int:
    status, payload, _ = call(port_of(cluster_url), "GET", f"/{CLUSTER_INDEX}/_count")
    if status != 200:
        raise SystemExit(f"the cluster's _count answered {status}: {payload[:200]!r}")
    return int(json.loads(payload)["count"])


def search_once(port: int, timeout: float) -> tuple[int | None, dict[str, Any], float]:
    status, payload, ms = call(port, "POST", "/search", json.dumps({"query": "sofa", "size": 10}).encode(), timeout)
    return status, (json.loads(payload) if status == 200 else {}), ms


def frozen_cluster_scenario(server: Server, cluster: Any, window_s: float, samples: int) -> dict[str, Any]:
    """Freeze the cluster, time searches (after the breaker opens, if it does), thaw, time the recovery."""
    for _ in range(3):
        search_once(server.port, 30)
    during: list[float] = []
    after_open: list[float] = []
    statuses: list[int | None] = []
    opened_after_s = None
    os.kill(cluster.pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        while time.monotonic() - frozen_at < window_s and len(after_open) < samples:
            status, body, ms = search_once(server.port, 60)
            statuses.append(status)
            during.append(ms)
            if body.get("degraded", {}).get("lexical") == CIRCUIT_OPEN:
                if opened_after_s is None:
                    opened_after_s = time.monotonic() - frozen_at
                after_open.append(ms)
    finally:
        os.kill(cluster.pid, signal.SIGCONT)
    thawed_at = time.monotonic()
    closed_after_s = None
    while time.monotonic() - thawed_at < 120:
        status, body, _ = search_once(server.port, 60)
        if status == 200 and not body.get("degraded"):
            closed_after_s = round(time.monotonic() - thawed_at, 2)
            break
        time.sleep(0.2)
    measured = after_open if after_open else during
    return {
        "breaker_opened": opened_after_s is not None,
        "breaker_opened_after_s": None if opened_after_s is None else round(opened_after_s, 2),
        "frozen_searches": len(during),
        "frozen_cluster_p99_ms": round(p99(measured), 1),
        "frozen_cluster_p99_over": "searches after the breaker opened" if after_open else "every frozen search",
        "frozen_status_5xx": sum(s is not None and s >= 500 for s in statuses),
        "frozen_hangs": sum(s is None for s in statuses),
        "answered_whole_again_after_thaw_s": closed_after_s,
    }


# ------------------------------------------------------------------ replay


def deep(levels: int) -> bytes:
    return b"[" * levels + b"]" * levels


def attack_requests() -> list[tuple[str, str, bytes | None]]:
    """(method, target, body): bad input on every JSON route, and passthrough writes in disguise."""
    search = [
        b'{"query": "sofa", "size": Infinity}',
        b'{"query": "sofa", "size": NaN}',
        b'{"query": "sofa", "from": 1e400}',
        b'{"query": "sofa", "size": -Infinity}',
        b'{"query": "sofa \\ud800"}',
        b'{"query": "sofa \\udfff", "size": 5}',
        b'{"query": ' + deep(5000) + b"}",
        deep(100_000)[:60_000],
        b'{"query": "sofa", "filters": {"brand": ' + deep(900) + b"}}",
        b"not json",
        b"",
    ]
    es_search = [
        b'{"size": Infinity}',
        b'{"from": 1e400}',
        b'{"track_total_hits": Infinity}',
        b'{"_source": {"includes": 5}}',
        b'{"_source": 5}',
        b'{"_source": {"excludes": [[["a"]]]}}',
        b'{"query": {"match": {"title": "sofa \\udfff"}}}',
        b'{"query": ' + deep(1200) + b"}",
        b'{"aggs": {"a": {"terms": {"field": "brand", "size": Infinity}}}}',
    ]
    msearch = b'{}\n{"query": {"match": {"title": "sofa"}}}\n{}\n{"size": Infinity}\n{}\n{"_source": {"includes": 5}}\n'
    ubi_deep = json.dumps({"action_name": "click", "event_attributes": {"x": 0}}).encode().replace(b"0", deep(900))
    writes = [
        ("POST", f"/{CLUSTER_INDEX}/_count/../_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_search/../_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_count/%2e%2e/_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_count/%2E%2E/_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_count%2f..%2f_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"//{CLUSTER_INDEX}/_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_search/../_doc/attack-1", b'{"title": "planted"}'),
        ("PUT", f"/{CLUSTER_INDEX}/_search/../_doc/attack-2", b'{"title": "planted"}'),
        ("POST", f"/{CLUSTER_INDEX}/_mapping/../_doc/attack-3", b'{"title": "planted"}'),
        ("POST", f"/{CLUSTER_INDEX}/_doc/attack-4", b'{"title": "planted"}'),
        ("PUT", f"/{CLUSTER_INDEX}/_doc/attack-5", b'{"title": "planted"}'),
        ("DELETE", f"/{CLUSTER_INDEX}", None),
        ("POST", f"/{CLUSTER_INDEX}/_search;/../_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", f"/{CLUSTER_INDEX}/_count/..%5c_delete_by_query", b'{"query": {"match_all": {}}}'),
        ("POST", "/_bulk", b'{"index": {"_index": "products", "_id": "attack-6"}}\n{"title": "planted"}\n'),
        ("GET", f"/{CLUSTER_INDEX}/_search/../../_cluster/settings", None),
    ]
    return (
        [("POST", "/search", body) for body in search]
        + [("POST", f"/{CLUSTER_INDEX}/_search", body) for body in es_search]
        + [("POST", "/_search", body) for body in es_search[:3]]
        + [("POST", f"/{CLUSTER_INDEX}/_msearch", msearch), ("POST", "/ubi/events", ubi_deep)]
        + writes
    )


def ubi_events(marker: str) -> list[bytes]:
    """Events, good and bad, each carrying ``marker-<i>`` in ``message`` so that the log can be searched."""
    events: list[dict[str, Any]] = [
        {"action_name": "click", "user_query": "sofa"},
        {"action_name": "click", "user_query": "\ud800"},
        {"action_name": "click", "user_query": "sofa \udfff"},
        {"action_name": "add_to_cart", "event_attributes": {"note": "\ud800"}},
        {"action_name": "click", "event_attributes": {"nested": [[[[["deep"]]]]]}},
        {"action_name": "impression", "timestamp": 1733788889378},
    ]
    bodies = []
    for i, event in enumerate(events):
        text = json.dumps({**event, "message": f"{marker}-{i}"})  # ensure_ascii: lone surrogates as \\ud800
        bodies.append(text.encode())
    return bodies


def replay_scenario(server: Server, cluster_url: str, ubi_dir: Path, hang_s: float) -> dict[str, Any]:
    before = cluster_count(cluster_url)
    requests_sent = status_5xx = hangs = 0
    findings: list[str] = []

    def send(method: str, target: str, body: bytes | None) -> int | None:
        nonlocal requests_sent, status_5xx, hangs
        requests_sent += 1
        status, payload, _ = call(server.port, method, target, body, hang_s)
        if status is None:
            hangs += 1
            findings.append(f"hang: {method} {target} {(body or b'')[:60]!r}")
        elif status >= 500 or status == 0:
            status_5xx += status >= 500
            findings.append(f"{status or 'closed'}: {method} {target} {(body or b'')[:60]!r} -> {payload[:120]!r}")
        return status

    for method, target, body in attack_requests():
        send(method, target, body)
    marker = f"attack-{uuid.uuid4().hex[:8]}"
    accepted = []
    for i, body in enumerate(ubi_events(marker)):
        status, payload, _ = call(server.port, "POST", "/ubi/events", body, hang_s)
        requests_sent += 1
        if status is None:
            hangs += 1
        elif status >= 500:
            status_5xx += 1
        elif status == 200 and json.loads(payload).get("accepted") == 1:
            accepted.append(f"{marker}-{i}")
    time.sleep(1.0)  # lines are written before the answer; this only covers a slow disk
    logged = "\n".join(p.read_text(encoding="utf-8", errors="replace") for p in ubi_dir.glob("ubi*.ndjson*"))
    lost = [m for m in accepted if f'"{m}"' not in logged]
    findings += [f"accepted, not logged: {m}" for m in lost]
    after = cluster_count(cluster_url)
    planted = sum(call(port_of(cluster_url), "GET", f"/{CLUSTER_INDEX}/_doc/attack-{i}")[0] == 200 for i in range(1, 7))
    writes = abs(after - before) + planted
    if writes:
        findings.append(f"cluster documents {before} -> {after}, planted {planted}")
    return {
        "requests": requests_sent,
        "status_5xx": status_5xx,
        "hangs": hangs,
        "unauthorised_writes": writes,
        "lost_events": len(lost),
        "ubi_events_accepted": len(accepted),
        "findings": findings,
    }


# ------------------------------------------------------------------ main


def cluster_service(data: Path, cluster_url: str, tmp: Path, models_dir: Path) -> tuple[Server, Path]:
    """The benchmark catalog in the cluster (lexical) and FAISS (dense), served with a UBI log and breakers."""
    settings_path = tmp / "cluster-settings.json"
    ubi_dir = tmp / "ubi"
    settings = {
        "index_dir": str(tmp / "cluster-index"),
        "models_dir": str(models_dir),
        "lexical": {
            "backend": "opensearch",
            "url": cluster_url,
            "index": CLUSTER_INDEX,
            "timeout_s": 1.0,
            "request_timeout_s": 5,
            "retries": 0,
        },
        # No result cache: frozen-cluster searches must reach the legs, or the p99 would time cached answers.
        "service": {"aggregations_timeout_s": 1.0, "ubi_log_path": str(ubi_dir / "ubi.ndjson"), "cache_size": 0},
    }
    settings_path.write_text(json.dumps(settings), encoding="utf-8")
    build_index(iter_catalog(data / "corpus.jsonl"), load_settings(settings_path), progress=False)
    (tmp / "cluster-run").mkdir()
    server = Server(
        tmp / "cluster-index",
        models_dir,
        workers=2,
        threads=4,
        tmp=tmp / "cluster-run",
        env={"SEARCH_RERANK_SETTINGS": str(settings_path)},
    )
    return server, ubi_dir


def run_server(server: Server, body: Callable[[Server], dict[str, Any]]) -> dict[str, Any]:
    try:
        server.wait_ready(300)
        return body(server)
    finally:
        server.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument(
        "--scenarios", default="slow,costly,replay,frozen", help="comma-separated: slow, costly, replay, frozen"
    )
    ap.add_argument("--costly-senders", type=int, default=2, help="threads sending costly requests while timed")
    ap.add_argument("--slow-clients", type=int, default=50)
    ap.add_argument("--samples", type=int, default=50, help="timed requests per route and scenario")
    ap.add_argument("--frozen-s", type=float, default=60.0, help="longest the cluster stays frozen")
    ap.add_argument("--hang-s", type=float, default=15.0, help="no answer within this long is a hang")
    ap.add_argument("--products", type=int, default=1000)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md or results")
    args = ap.parse_args()
    scenarios = set(args.scenarios.split(","))
    data = cached_dataset(args.work, GeneratorConfig(products=args.products, queries=100, seed=13))
    models_dir = args.work / "models"
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": command(),
        "scenarios": sorted(scenarios),
    }
    with tempfile.TemporaryDirectory(prefix="attack-") as tmp_name:
        tmp = Path(tmp_name)
        if scenarios & {"slow", "costly"}:
            settings = Settings(index_dir=args.work / f"idx-{data.name}", models_dir=models_dir)
            cached_index(data, settings)
            (tmp / "embedded-run").mkdir()
            server = Server(Path(settings.index_dir), models_dir, workers=2, threads=4, tmp=tmp / "embedded-run")

            def embedded(s: Server) -> dict[str, Any]:
                out: dict[str, Any] = {}
                if "slow" in scenarios:
                    out |= slow_clients_scenario(s, args.slow_clients, args.samples)
                if "costly" in scenarios:
                    out |= costly_scenario(s, args.samples, args.costly_senders, args.hang_s)
                return out

            result |= run_server(server, embedded)
        if scenarios & {"replay", "frozen"}:
            cluster = start_cluster()
            try:
                server, ubi_dir = cluster_service(data, cluster.url, tmp, models_dir)

                def both(s: Server) -> dict[str, Any]:
                    out: dict[str, Any] = {}
                    if "replay" in scenarios:
                        out |= replay_scenario(s, cluster.url, ubi_dir, args.hang_s)
                    if "frozen" in scenarios:
                        out |= frozen_cluster_scenario(s, cluster, args.frozen_s, args.samples)
                    return out

                result |= run_server(server, both)
            finally:
                cluster.close()
    for key in ("requests", "status_5xx", "hangs", "unauthorised_writes", "lost_events"):
        result.setdefault(key, None)
    result.setdefault("frozen_cluster_p99_ms", None)
    result.setdefault("slow_clients_health_p99_ms", None)
    body = report_body(result)
    print(json.dumps(result, indent=2))
    print(body)
    if not args.no_write:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
        write_section("attack", "Attack suite: slow clients, a frozen cluster, bad input (issue 12)", body)
    failed = any(
        result.get(k)
        for k in ("status_5xx", "hangs", "unauthorised_writes", "lost_events", "costly_5xx", "costly_hangs")
    )
    sys.exit(1 if failed else 0)


def report_body(r: dict[str, Any]) -> str:
    def fmt(key: str) -> object:
        value = r.get(key)
        return "not run" if value is None else str(value)

    rows = [
        ["requests replayed", fmt("requests")],
        ["5xx answers", fmt("status_5xx")],
        ["hangs (no answer in time)", fmt("hangs")],
        ["unauthorised writes reaching the cluster", fmt("unauthorised_writes")],
        ["UBI events accepted then lost", fmt("lost_events")],
        [f"`/health` p99 with {r.get('slow_clients', '-')} slow clients (ms)", fmt("slow_clients_health_p99_ms")],
        [f"`/search` p99 with {r.get('slow_clients', '-')} slow clients (ms)", fmt("slow_clients_search_p99_ms")],
        ["`/health` p99 without them (ms)", fmt("idle_health_p99_ms")],
        ["`/search` p99 without them (ms)", fmt("idle_search_p99_ms")],
        ["search p99 with the cluster frozen (ms)", fmt("frozen_cluster_p99_ms")],
        ["breaker opened after (s)", "never" if r.get("breaker_opened") is False else fmt("breaker_opened_after_s")],
        ["answered whole again after the thaw (s)", fmt("answered_whole_again_after_thaw_s")],
    ]
    if r.get("costly"):
        rows += [
            [
                "costly requests: 5xx / hangs / slowest (ms)",
                f"{r['costly_5xx']} / {r['costly_hangs']} / {r['costly_slowest_ms']}",
            ],
            [
                f"`/search` p99 while {r['costly_senders']} threads send the accepted ones (ms)",
                f"{r['costly_search_p99_ms']} (without them: {r['costly_idle_search_p99_ms']})",
            ],
        ]
    notes = []
    if r.get("costly"):
        notes.append(
            "Costly requests on the embedded index, each written to cost the most a body can ask, just inside or "
            "past the bound that keeps it cheap, and sent once; then the threads send the ones answered 200 back "
            "to back, which on two cores leaves the timed searches competing for both:\n\n"
            + table(["request", "status", "ms"], [[c["request"], str(c["status"]), str(c["ms"])] for c in r["costly"]])
            + "\n"
        )
    if r.get("frozen_cluster_p99_over"):
        notes.append(f"The frozen-cluster p99 is over {r['frozen_cluster_p99_over']}.")
    notes += [f"- {finding}" for finding in r.get("findings", [])]
    return (
        "The service under gunicorn (2 workers) on loopback; `benchmarks/results/attack.json` holds every figure.\n\n"
        + table(["", "value"], rows)
        + ("\n\n" + "\n".join(notes) if notes else "")
    )


if __name__ == "__main__":
    main()
