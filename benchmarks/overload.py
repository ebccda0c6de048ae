"""Overload: more shoppers than the service can answer in time, with the CPU cross-encoder on, per queue timeout.

    python benchmarks/overload.py                        # 200 shoppers, queue timeouts 2, 5 and 300 s
    python benchmarks/overload.py --users 100 --duration 60 --queue-timeouts 5

What it shows: ``service.queue_timeout_s`` (see asgi_bridge) answers a request
that waited longer than that for a worker's thread at once with a 503 and
Retry-After, never running it; the rest are answered within the queue timeout
plus the stages' deadlines. For each queue timeout the real service runs under
gunicorn on loopback (``--workers`` x ``--threads``) over the generated
benchmark's index with a trained cross-encoder (``--rerank-model``, a model
directory under ``--work``/models: ``python benchmarks/train_models.py`` makes
``gen-3000-1000-13-reranker``), and ``--users`` closed-loop shoppers (threads,
each sending its next search when the last is answered) send ``POST /search``
for test-split queries for ``--duration`` seconds. Counted per request on the
client: answered (200), shed (503 with Retry-After), anything else; answered
and shed latencies (p50, p99, max); answers degraded by a stage past its
deadline from the server's metrics. A shed request is an outcome here, not a
failure: the point is that none waits without bound and nothing else fails.

Writes ``benchmarks/results/overload.json`` and the ``overload`` section of
docs/BENCHMARKS.md (``--no-write``: print only). Exit status 1 when any request
got a status other than 200 or a shed 503, or no answer within ``--hang-s``.
Times are from one run on a shared machine: compare the rows with one another.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from load_test import Server, counter_delta, scrape, workload  # noqa: E402
from report import ROOT, command, machine, table, write_results, write_section  # noqa: E402

DEFAULT_QUEUE_TIMEOUTS = "2,5,300"


@dataclass(frozen=True)
class Outcome:
    status: int
    seconds: float
    retry_after: bool


def shopper(url: str, queries: list[str], until: float, hang_s: float, seed: int) -> list[Outcome]:
    """One closed-loop shopper: a search, its answer, the next search, until ``until`` (monotonic)."""
    host, port = url.removeprefix("http://").split(":")
    rng = np.random.default_rng(seed)
    out: list[Outcome] = []
    while time.monotonic() < until:
        body = json.dumps({"query": queries[int(rng.integers(len(queries)))], "size": 10})
        started = time.monotonic()
        connection = http.client.HTTPConnection(host, int(port), timeout=hang_s)
        try:
            connection.request("POST", "/search", body, {"Content-Type": "application/json"})
            response = connection.getresponse()
            response.read()
            out.append(
                Outcome(response.status, time.monotonic() - started, response.getheader("Retry-After") is not None)
            )
        except TimeoutError:
            out.append(Outcome(0, time.monotonic() - started, False))  # no answer within hang_s
        except OSError:
            out.append(Outcome(-1, time.monotonic() - started, False))  # refused or reset
        finally:
            connection.close()
    return out


def latency(seconds: list[float]) -> dict[str, float | None]:
    if not seconds:
        return {"p50_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": float(np.percentile(ms, 50)),
        "p99_ms": float(np.percentile(ms, 99)),
        "max_ms": float(ms.max()),
    }


def one_run(args: argparse.Namespace, index_dir: Path, models_dir: Path, queries: list[str], queue_s: float) -> dict:
    env = {
        "SEARCH_RERANK_RERANK__MODEL": args.rerank_model,
        "SEARCH_RERANK_SERVICE__QUEUE_TIMEOUT_S": str(queue_s),
        "SEARCH_RERANK_SERVICE__CACHE_SIZE": "0",  # every search runs the pipeline: a cached answer costs nothing
    }
    with tempfile.TemporaryDirectory(prefix="overload-") as tmp:
        server = Server(index_dir, models_dir, args.workers, args.threads, Path(tmp), env=env)
        try:
            ready = server.wait_ready(args.ready_timeout)
            if not ready.get("reranker"):
                raise SystemExit(f"the service loaded no reranker from {args.rerank_model}:\n{server.log_tail()}")
            server.warm_up([{"text": q} for q in queries], args.ready_timeout, 2 * args.workers * args.threads)
            before = scrape(server.url)
            until = time.monotonic() + args.duration
            with ThreadPoolExecutor(max_workers=args.users) as pool:
                futures = [
                    pool.submit(shopper, server.url, queries, until, args.hang_s, seed) for seed in range(args.users)
                ]
                outcomes = [o for f in futures for o in f.result()]
            after = scrape(server.url)
            alive = server.proc.poll() is None
        finally:
            server.stop()
    answered = [o.seconds for o in outcomes if o.status == 200]
    shed = [o.seconds for o in outcomes if o.status == 503 and o.retry_after]
    other: dict[str, int] = {}
    for o in outcomes:
        if o.status != 200 and not (o.status == 503 and o.retry_after):
            key = {0: "no answer", -1: "connection error"}.get(o.status, str(o.status))
            other[key] = other.get(key, 0) + 1
    degraded = {
        dict(k)["stage"]: int(v) for k, v in counter_delta(before, after, "search_rerank_degraded_answers").items()
    }
    return {
        "queue_timeout_s": queue_s,
        "requests": len(outcomes),
        "answered": len(answered),
        "shed": len(shed),
        "shed_share": len(shed) / len(outcomes) if outcomes else None,
        "other": other,
        "answered_per_s": len(answered) / args.duration,
        "answered_latency": latency(answered),
        "shed_latency": latency(shed),
        "degraded": degraded,
        "server_alive": alive,
    }


def report(result: dict) -> str:
    rows = []
    for r in result["runs"]:
        a, s = r["answered_latency"], r["shed_latency"]
        rows.append(
            [
                f"{r['queue_timeout_s']:g} s",
                r["requests"],
                f"{r['answered']} ({r['answered_per_s']:.1f}/s)",
                f"{r['shed']} ({100 * (r['shed_share'] or 0):.0f}%)",
                sum(r["other"].values()),
                *(f"{v:,.0f}" if v is not None else "–" for v in (a["p50_ms"], a["p99_ms"], a["max_ms"])),
                f"{s['max_ms']:,.0f}" if s["max_ms"] is not None else "–",
                r["degraded"].get("rerank", 0),
            ]
        )
    header = [
        "queue timeout",
        "requests",
        "answered",
        "shed (503)",
        "other",
        "answered p50 ms",
        "p99 ms",
        "max ms",
        "shed max ms",
        "rerank degraded",
    ]
    return (
        "Results: `benchmarks/results/overload.json`. "
        f"{result['users']} closed-loop shoppers sending `POST /search` for {result['duration_s']} s per row to "
        f"{result['workers']} gunicorn workers x {result['threads']} threads, reranker `{result['rerank_model']}` "
        f"(window {result['rerank_window']}, deadline {result['rerank_timeout_s']:g} s), result cache off; "
        f"{result['products']} products. One run per row on a shared machine: compare rows, not machines.\n\n"
        + table(header, rows)
        + "\n\nA shed request waited the queue timeout for a worker's thread, then was answered with a 503 and "
        "Retry-After without being run; 'other' counts any other status, connection errors and requests with no "
        f"answer within {result['hang_s']:g} s (the run fails on any). 'rerank degraded': answered without the "
        "reranker (past its deadline, or refused while its breaker was open).\n"
    )


def main() -> None:
    ap = dataset_parser(__doc__, pooled=False)
    ap.set_defaults(products=3000, queries=1000)
    ap.add_argument("--users", type=int, default=200)
    ap.add_argument("--duration", type=int, default=60, help="seconds of load per queue timeout")
    ap.add_argument("--queue-timeouts", default=DEFAULT_QUEUE_TIMEOUTS, help="comma-separated seconds, one run each")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--rerank-model", default="gen-3000-1000-13-reranker", help="a model directory under WORK/models")
    ap.add_argument("--hang-s", type=float, default=60.0, help="no answer within this long counts as a hang")
    ap.add_argument("--ready-timeout", type=float, default=300)
    args = ap.parse_args()
    args.pooled = 0  # the load needs no pooled judgments
    data, settings = prepared(args)
    if not (Path(settings.models_dir) / args.rerank_model).is_dir():
        raise SystemExit(f"no reranker {args.rerank_model} under {settings.models_dir}: train one first")
    cached_index(data, settings)
    queries = [q["text"] for q in workload(data)["queries"]]
    rerank = settings.rerank
    result: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "command": command(),
        "users": args.users,
        "duration_s": args.duration,
        "workers": args.workers,
        "threads": args.threads,
        "rerank_model": args.rerank_model,
        "rerank_window": rerank.window,
        "rerank_timeout_s": rerank.timeout_s,
        "products": args.products,
        "hang_s": args.hang_s,
        "runs": [],
    }
    for queue_s in (float(v) for v in args.queue_timeouts.split(",")):
        run = one_run(args, Path(settings.index_dir), Path(settings.models_dir), queries, queue_s)
        result["runs"].append(run)
        print(json.dumps(run), flush=True)
    body = report(result)
    print(body)
    if not args.no_write:
        write_results(ROOT / "benchmarks" / "results" / "overload.json", result)
        write_section("overload", "Overload: shedding past the queue timeout", body)
    if any(r["other"] or not r["server_alive"] for r in result["runs"]):
        raise SystemExit("overload: some requests failed otherwise than shed, or the server died (see 'other')")


if __name__ == "__main__":
    main()
