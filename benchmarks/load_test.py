"""Load test on loopback: the real service under gunicorn, driven by locust (issue 4).

What it shows: a closed-loop load of ``--users`` shoppers (at least 4 per
gunicorn worker) for ``--duration`` seconds with zero failed requests and no
5xx; p50/p99 per pipeline stage and end to end; the proxy's own overhead (the
HTTP service's time outside the pipeline) as a share of the total.

    python benchmarks/load_test.py --duration 120 --users 8 --workers 2

It starts ``search-rerank serve`` on a free loopback port over the generated
benchmark's index (``prepared(args)``, built once and cached under ``--work``,
as pipeline_quality.py does), with ``PROMETHEUS_MULTIPROC_DIR`` in a temporary
directory so that ``/metrics`` sums every worker; waits for ``/ready`` and for
every worker to have answered a warm-up search; scrapes ``/metrics``; runs
``locust --headless`` with ``benchmarks/locustfile.py``; scrapes again.

Client side (locust's stats CSV): requests, failures, end-to-end percentiles as
the shopper sees them. Server side (the delta of the Prometheus histograms
between the two scrapes): per stage and end to end. Quantiles from histograms
are interpolated linearly inside their bucket, as PromQL's
``histogram_quantile`` does, so they are only as fine as the buckets
(2, 5, 10, 25, 50, 100, 250, 500 ms, 1, 2.5, 5, 10 s); the means are exact
(sum over count), and the overhead shares are computed from means.

Exit status 1 if any request failed (non-200, or a body without hits) or the
server counted any 5xx or unhandled error. Degraded answers (a leg or the
reranker past its deadline, answered without it) are allowed, counted and
reported; ``--fail-on-degraded`` makes them fatal too.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import ROOT, save_figure, table, write_section  # noqa: E402

from search_rerank.core.settings import ServiceSettings  # noqa: E402
from search_rerank.data.loaders import iter_catalog, load_beir  # noqa: E402

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"
# The routes whose requests run the pipeline once each (the Prometheus 'endpoint' label is the route).
SEARCH_ENDPOINTS = ("/search", "/<index>/_search")
STAGES = ("lexical", "dense", "fusion", "rerank", "longtail", "total")
QUANTILES = (0.5, 0.99)


# ------------------------------------------------------------------ workload


def workload(data: Path) -> dict:
    """Test-split queries with their frequency, and a filter each that its relevant products pass."""
    dataset = load_beir(data)
    queries, qrels = dataset.split("test")
    wanted = {pid for judged in qrels.values() for pid in judged}
    products = {p.id: p for p in iter_catalog(data / "corpus.jsonl") if p.id in wanted}
    out = []
    for qid, judged in qrels.items():
        best = max(judged.values())
        top = [products[pid] for pid, grade in judged.items() if grade == best and pid in products]
        if not top or best <= 0:
            continue
        # The department (two levels of the category path) most of the best products sit in,
        # and a price cap that keeps the pricier quarter of them out.
        category = Counter(" > ".join(p.category[:2]) for p in top if p.category).most_common(1)
        prices = sorted(p.price for p in top if p.price is not None and p.price > 0)
        if not category or not prices:
            continue
        cap = prices[min(len(prices) - 1, math.ceil(0.75 * len(prices)) - 1)]
        out.append(
            {
                "id": qid,
                "text": queries[qid].text,
                "frequency": int(queries[qid].meta.get("frequency", 1)),
                "kind": queries[qid].meta.get("kind"),
                "filters": {"category": category[0][0], "price_max": math.ceil(cap)},
            }
        )
    if not out:
        raise SystemExit(f"no test queries with judged products in {data}")
    return {"dataset": data.name, "queries": out}


# ------------------------------------------------------------------ server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def get(url: str, timeout: float = 10) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def post(url: str, body: dict, timeout: float = 60) -> int:
    req = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            r.read()
            return r.status
    except urllib.error.HTTPError as exc:
        return exc.code


class Server:
    """``search-rerank serve`` in a subprocess (the gunicorn master once it execs), stopped on exit."""

    def __init__(
        self,
        index_dir: Path,
        models_dir: Path,
        workers: int,
        threads: int,
        tmp: Path,
        env: dict[str, str] | None = None,
    ):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.metrics_dir = tmp / "metrics"
        self.metrics_dir.mkdir()
        self.log_path = tmp / "server.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
            "PROMETHEUS_MULTIPROC_DIR": str(self.metrics_dir),
            "SEARCH_RERANK_MODELS_DIR": str(models_dir),
            "SEARCH_RERANK_SERVICE__THREADS": str(threads),
            "SEARCH_RERANK_LOG_LEVEL": "warning",  # one access line per request would cost CPU the test measures
            "HF_HUB_OFFLINE": "1",
            **(env or {}),  # e.g. SEARCH_RERANK_SETTINGS
        }
        self.command = [
            sys.executable,
            "-m",
            "search_rerank.cli",
            "--index-dir",
            str(index_dir),
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            str(workers),
        ]
        self._log = self.log_path.open("w")
        self.proc = subprocess.Popen(self.command, env=env, stdout=self._log, stderr=subprocess.STDOUT, cwd=ROOT)

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def wait_ready(self, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                status, body = get(f"{self.url}/ready", timeout=5)
                if status == 200:
                    return json.loads(body)
            except (OSError, ValueError):  # refused, or reset before a worker is up
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the server was not ready in {timeout:.0f}s:\n{self.log_tail()}")
            time.sleep(0.5)

    def worker_pids(self) -> set[str]:
        """Workers that have written metrics: a request's histogram lands in histogram_<pid>.db."""
        return {p.stem.rsplit("_", 1)[-1] for p in self.metrics_dir.glob("histogram_*.db")}

    def warm_up(self, queries: list[dict], timeout: float, minimum: int) -> int:
        """Searches until every worker has answered some (a cold first search must not be measured)."""
        deadline = time.monotonic() + timeout
        sent = 0
        with ThreadPoolExecutor(max_workers=2 * self.workers) as pool:
            while sent < minimum or len(self.worker_pids()) < self.workers:
                if time.monotonic() > deadline:
                    raise SystemExit(
                        f"only {len(self.worker_pids())} of {self.workers} workers answered within "
                        f"{timeout:.0f}s of warm-up:\n{self.log_tail()}"
                    )
                batch = [queries[(sent + i) % len(queries)]["text"] for i in range(2 * self.workers)]
                statuses = list(pool.map(lambda t: post(f"{self.url}/search", {"query": t, "size": 10}), batch))
                if any(s != 200 for s in statuses):
                    raise SystemExit(f"warm-up searches answered {statuses}:\n{self.log_tail()}")
                sent += len(batch)
        return sent

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()


class MemorySampler:
    """Each worker's resident memory every ``every_s`` while the load runs, from ``/proc`` (Linux).

    Why: a worker serves for days, and a CPU cross-encoder allocates a new tensor shape for every batch of
    candidates; whether its memory levels off or keeps growing under the same load is what an operator must
    know to size the machine (and whether a ``MALLOC_*`` setting, passed with ``--server-env``, or replacing
    workers, ``SEARCH_RERANK_SERVICE__MAX_REQUESTS``, changes it). ``workers`` names the live workers at each
    sample, so that a worker's successor is followed too; the sum over them is what the machine must hold.
    """

    def __init__(self, workers: Callable[[], set[str]], every_s: float = 2.0):
        self.workers = workers
        self.every_s = every_s
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> MemorySampler:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while True:
            sizes = {pid: rss for pid in sorted(self.workers()) if (rss := rss_mb(pid)) is not None}
            self.samples.append((time.monotonic() - self._started, sizes))
            if self._stop.wait(self.every_s):
                return

    def pids(self) -> list[str]:
        """Every worker sampled, in the order they first were."""
        return list(dict.fromkeys(pid for _, sizes in self.samples for pid in sizes))

    def summary(self) -> dict:
        """Per worker: resident MB at the start, at the end, at its peak, and its growth in each half of the run
        (a memory that levelled off grows in the first half, not the second); ``all workers``: the same of
        their sum."""
        out = {}
        for pid in self.pids():
            series = [(t, sizes[pid]) for t, sizes in self.samples if pid in sizes]
            if len(series) >= 3:
                out[pid] = growth(series)
        if len(self.samples) >= 3:
            out["all workers"] = growth([(t, sum(sizes.values())) for t, sizes in self.samples])
        return out

    def series(self) -> list[dict]:
        return [{"t": round(t, 1), **sizes} for t, sizes in self.samples]


def growth(series: list[tuple[float, float]]) -> dict[str, float]:
    """A memory series' start, end and peak MB, and its growth in each half of its time."""
    end_t = series[-1][0]
    middle = min(series, key=lambda sample: abs(sample[0] - (series[0][0] + end_t) / 2))[1]
    start, end = series[0][1], series[-1][1]
    return {
        "start_mb": round(start, 1),
        "end_mb": round(end, 1),
        "peak_mb": round(max(mb for _, mb in series), 1),
        "first_half_growth_mb": round(middle - start, 1),
        "second_half_growth_mb": round(end - middle, 1),
    }


def children(pid: int) -> set[str]:
    """The live processes ``pid`` started: a gunicorn master's workers, a replaced one's successor included."""
    try:
        return set(Path(f"/proc/{pid}/task/{pid}/children").read_text().split())
    except OSError:
        return set()


def rss_mb(pid: str) -> float | None:
    """The process's resident set in MB (``VmRSS``); None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


# ------------------------------------------------------------------ Prometheus


def scrape(url: str) -> dict:
    """The counters and histograms of /metrics, as plain dicts keyed by their labels."""
    from prometheus_client.parser import text_string_to_metric_families

    status, text = get(f"{url}/metrics", timeout=30)
    if status != 200:
        raise SystemExit(f"/metrics answered {status}")
    counters: dict[str, dict[tuple, float]] = defaultdict(dict)
    hist: dict[str, dict[tuple, dict]] = defaultdict(
        lambda: defaultdict(lambda: {"buckets": {}, "sum": 0.0, "count": 0.0})
    )
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = tuple(sorted((k, v) for k, v in s.labels.items() if k != "le"))
            if family.type == "counter" and s.name.endswith("_total"):
                counters[family.name][labels] = s.value
            elif family.type == "histogram":
                h = hist[family.name][labels]
                if s.name.endswith("_bucket"):
                    h["buckets"][float(s.labels["le"])] = s.value
                elif s.name.endswith("_sum"):
                    h["sum"] = s.value
                elif s.name.endswith("_count"):
                    h["count"] = s.value
    return {
        "counters": {k: dict(v) for k, v in counters.items()},
        "histograms": {k: {lk: dict(lv) for lk, lv in v.items()} for k, v in hist.items()},
    }


def counter_delta(before: dict, after: dict, name: str) -> dict[tuple, float]:
    old, new = before["counters"].get(name, {}), after["counters"].get(name, {})
    return {k: v - old.get(k, 0.0) for k, v in new.items() if v - old.get(k, 0.0)}


def hist_delta(before: dict, after: dict, name: str, labels: tuple) -> dict:
    new = after["histograms"].get(name, {}).get(labels)
    if new is None:
        return {"buckets": {}, "sum": 0.0, "count": 0.0}
    old = before["histograms"].get(name, {}).get(labels, {"buckets": {}, "sum": 0.0, "count": 0.0})
    return {
        "buckets": {le: c - old["buckets"].get(le, 0.0) for le, c in new["buckets"].items()},
        "sum": new["sum"] - old["sum"],
        "count": new["count"] - old["count"],
    }


def merge(*hists: dict) -> dict:
    out = {"buckets": defaultdict(float), "sum": 0.0, "count": 0.0}
    for h in hists:
        for le, c in h["buckets"].items():
            out["buckets"][le] += c
        out["sum"] += h["sum"]
        out["count"] += h["count"]
    out["buckets"] = dict(out["buckets"])
    return out


def quantile(q: float, buckets: dict[float, float]) -> float | None:
    """PromQL's histogram_quantile: linear inside the bucket; the last finite bound if it falls in +Inf."""
    bounds = sorted(buckets)
    if not bounds or buckets[bounds[-1]] <= 0:
        return None
    rank = q * buckets[bounds[-1]]
    lower, below = 0.0, 0.0
    for le in bounds:
        count = buckets[le]
        if count >= rank:
            if math.isinf(le):
                return lower
            return lower + (le - lower) * ((rank - below) / (count - below) if count > below else 1.0)
        lower, below = le, count
    return lower


def summarize(h: dict) -> dict:
    """Seconds in, milliseconds out."""
    n = h["count"]
    out = {"count": int(n), "mean_ms": h["sum"] / n * 1000 if n else None}
    for q in QUANTILES:
        v = quantile(q, h["buckets"])
        out[f"p{round(q * 100)}_ms"] = v * 1000 if v is not None else None
    return out


# ------------------------------------------------------------------ locust


def run_locust(
    url: str, users: int, spawn_rate: float, duration: int, prefix: Path, workload_file: Path, log_path: Path
) -> int:
    command = [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(LOCUSTFILE),
        "--headless",
        "-u",
        str(users),
        "-r",
        str(spawn_rate),
        "-t",
        f"{duration}s",
        "--host",
        url,
        "--csv",
        str(prefix),
        "--json-file",
        str(prefix),
        "--only-summary",
        "--stop-timeout",
        "30",
        "--loglevel",
        "WARNING",
    ]
    print("+", " ".join(command), flush=True)
    with log_path.open("w") as log:
        proc = subprocess.run(
            command,
            env={**os.environ, "LOAD_TEST_WORKLOAD": str(workload_file)},
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
    return proc.returncode


def locust_percentile(times: dict[float, int], n: int, q: float) -> float | None:
    """Locust's own percentile over its response-time dict (times rounded to 2-3 significant digits)."""
    wanted, seen = int(n * q), 0
    for t in sorted(times, reverse=True):
        seen += times[t]
        if n - seen <= wanted:
            return t
    return None


def read_stats(path: Path) -> dict[str, dict]:
    """Per request name and "Aggregated", from locust's final JSON stats.

    Not from ``_stats.csv``: locust writes that on its 1 s tick, so it misses the
    requests that end after the last tick (the users' final tasks).
    """
    entries = json.loads(path.read_text())

    def row(items: list[dict]) -> dict:
        times: dict[float, int] = Counter()
        for e in items:
            for t, count in e["response_times"].items():
                times[float(t)] += count
        n = sum(e["num_requests"] for e in items)
        timed = n - sum(e.get("num_none_requests", 0) for e in items)
        start = min(e["start_time"] for e in items)
        last = max((e["last_request_timestamp"] or start) for e in items)
        return {
            "requests": n,
            "failures": sum(e["num_failures"] for e in items),
            "rps": n / (last - start) if last > start else None,
            "mean_ms": sum(e["total_response_time"] for e in items) / timed if timed else None,
            "p50_ms": locust_percentile(times, n, 0.5),
            "p99_ms": locust_percentile(times, n, 0.99),
            "max_ms": max(e["max_response_time"] for e in items),
        }

    out = {f"{e['name']}": row([e]) for e in sorted(entries, key=lambda e: e["name"])}
    out["Aggregated"] = (
        row(entries)
        if entries
        else {
            "requests": 0,
            "failures": 0,
            "rps": None,
            "mean_ms": None,
            "p50_ms": None,
            "p99_ms": None,
            "max_ms": None,
        }
    )
    return out


def read_history(prefix: Path) -> list[dict]:
    rows = []
    path = Path(f"{prefix}_stats_history.csv")
    if not path.exists():
        return rows
    with path.open(newline="") as f:
        for row in csv.DictReader(f):
            if row["Name"] != "Aggregated":
                continue

            def num(k):
                try:
                    return float(row[k])
                except (KeyError, ValueError):
                    return None

            rows.append(
                {
                    "t": int(row["Timestamp"]),
                    "users": num("User Count"),
                    "requests": num("Total Request Count") or 0,
                    "failures": num("Total Failure Count") or 0,
                    "p50_ms": num("50%"),
                    "p99_ms": num("99%"),
                }
            )
    # Locust's own "Requests/s" column is a 10 s moving average; the count's step per tick is the throughput.
    for prev, r in zip([None, *rows], rows):
        dt = r["t"] - prev["t"] if prev else 0
        r["rps"] = (r["requests"] - prev["requests"]) / dt if dt > 0 else 0.0
        r["failures_per_s"] = (r["failures"] - prev["failures"]) / dt if dt > 0 else 0.0
    if rows:
        t0 = rows[0]["t"]
        for r in rows:
            r["t"] -= t0
    return rows


def read_failures(prefix: Path) -> list[dict]:
    path = Path(f"{prefix}_failures.csv")
    if not path.exists():
        return []
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


# ------------------------------------------------------------------ report


def plot(client: dict, stages: dict, server_e2e: dict, history: list[dict]) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, (a, b) = plt.subplots(1, 2, figsize=(12, 4.2))
    names = [s for s in STAGES if s in stages] + ["server e2e", "client e2e"]
    data = {**stages, "server e2e": server_e2e, "client e2e": client}
    x = np.arange(len(names))
    p50 = [data[n].get("p50_ms") or 0 for n in names]
    p99 = [data[n].get("p99_ms") or 0 for n in names]
    a.bar(x, p99, width=0.6, alpha=0.35, color="C0", label="p99")
    a.bar(x, p50, width=0.6, color="C0", label="p50")
    a.set_xticks(x, names, rotation=30, ha="right")
    a.set_yscale("log")
    a.set_ylabel("ms")
    a.set_title("latency per stage (server: histogram buckets) and end to end", fontsize=9)
    a.legend(fontsize=8)
    if history:
        t = [r["t"] for r in history]
        b.plot(t, [r["rps"] or 0 for r in history], color="C1", label="requests/s")
        b.plot(t, [r["failures_per_s"] or 0 for r in history], color="C3", label="failures/s")
        b.set_xlabel("seconds")
        b.set_ylabel("requests/s")
        c = b.twinx()
        c.plot(t, [r["users"] or 0 for r in history], color="grey", ls="--", lw=0.8, label="users")
        c.set_ylabel("users")
        c.set_ylim(0, max((r["users"] or 0) for r in history) * 1.2 + 1)
        b.legend(fontsize=8, loc="lower right")
        b.set_title("throughput over time (locust's 1 s ticks)", fontsize=9)
    return save_figure(fig, "load_test.png")


def fmt(v, digits: int = 1) -> str:
    return "–" if v is None else f"{v:,.{digits}f}"


def main() -> None:
    ap = dataset_parser(__doc__)
    service = ServiceSettings()
    ap.add_argument("--duration", type=int, default=120, help="seconds of load (issue 4: at least 120)")
    ap.add_argument(
        "--users",
        type=int,
        default=None,
        help="concurrent shoppers (default and minimum for the issue's bar: 4 per worker)",
    )
    ap.add_argument("--spawn-rate", type=float, default=None, help="users started per second (default: all in 1 s)")
    ap.add_argument("--workers", type=int, default=service.workers, help="gunicorn workers")
    ap.add_argument("--threads", type=int, default=service.threads, help="gthread threads per worker")
    ap.add_argument("--warmup", type=int, default=20, help="warm-up searches at least (until every worker answered)")
    ap.add_argument("--ready-timeout", type=float, default=300, help="seconds to wait for the workers to load")
    ap.add_argument("--fail-on-degraded", action="store_true", help="exit 1 on degraded answers too")
    ap.add_argument("--keep-tmp", action="store_true", help="keep the server log, metrics and locust CSVs")
    ap.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="an environment variable for the server only (repeatable), e.g. MALLOC_ARENA_MAX=2",
    )
    args = ap.parse_args()
    users = args.users if args.users is not None else 4 * args.workers
    spawn_rate = args.spawn_rate if args.spawn_rate is not None else users

    data, settings = prepared(args)
    cached_index(data, settings)
    load = workload(data)
    tmp = Path(tempfile.mkdtemp(prefix="search-rerank-load-"))
    workload_file = tmp / "workload.json"
    workload_file.write_text(json.dumps(load))
    print(
        f"{len(load['queries'])} test queries from {data.name}, frequencies "
        f"{min(q['frequency'] for q in load['queries'])}..{max(q['frequency'] for q in load['queries'])}; "
        f"scratch in {tmp}",
        flush=True,
    )

    server_env = dict(pair.split("=", 1) for pair in args.server_env)
    server = Server(
        Path(settings.index_dir), Path(settings.models_dir), args.workers, args.threads, tmp, env=server_env
    )
    try:
        started = time.monotonic()
        ready = server.wait_ready(args.ready_timeout)
        warm = server.warm_up(load["queries"], args.ready_timeout, args.warmup)
        print(
            f"ready in {time.monotonic() - started:.0f}s ({ready['counts']}); {warm} warm-up searches reached "
            f"{len(server.worker_pids())} workers",
            flush=True,
        )
        before = scrape(server.url)
        pids_before = server.worker_pids()
        with MemorySampler(lambda: children(server.proc.pid)) as memory:
            locust_rc = run_locust(
                server.url, users, spawn_rate, args.duration, tmp / "locust", workload_file, tmp / "locust.log"
            )
        after = scrape(server.url)
        pids_after = server.worker_pids()
        alive = server.proc.poll() is None
    finally:
        server.stop()

    client_by_name = read_stats(tmp / "locust.json")
    client = client_by_name.pop("Aggregated")
    history = read_history(tmp / "locust")
    failures = read_failures(tmp / "locust")

    stage_labels = sorted({dict(k).get("stage") for k in after["histograms"].get("search_rerank_stage_seconds", {})})
    stages = {
        s: summarize(hist_delta(before, after, "search_rerank_stage_seconds", (("stage", s),)))
        for s in STAGES
        if s in stage_labels
    }
    e2e_parts = {
        ep: hist_delta(before, after, "search_rerank_request_seconds", (("endpoint", ep),)) for ep in SEARCH_ENDPOINTS
    }
    e2e_all = merge(*e2e_parts.values())
    server_e2e = summarize(e2e_all)
    server_by_endpoint = {ep: summarize(h) for ep, h in e2e_parts.items()}
    pipeline = hist_delta(before, after, "search_rerank_stage_seconds", (("stage", "total"),))

    statuses = {
        f"{dict(k)['endpoint']} {dict(k)['status']}": int(v)
        for k, v in counter_delta(before, after, "search_rerank_requests").items()
    }
    five_xx = sum(v for k, v in statuses.items() if k.rsplit(" ", 1)[1].startswith("5"))
    errors = int(sum(counter_delta(before, after, "search_rerank_errors").values()))
    degraded = {
        dict(k)["stage"]: int(v) for k, v in counter_delta(before, after, "search_rerank_degraded_answers").items()
    }
    searches = int(e2e_all["count"])

    # From the exact sums: the service's time outside SearchPipeline.run, per search request. Sums, not a
    # difference of means, so that a request answered without running the pipeline (a 400) counts as overhead.
    mean_e2e = server_e2e["mean_ms"]
    outside = e2e_all["sum"] - pipeline["sum"]
    proxy_ms = outside / e2e_all["count"] * 1000 if e2e_all["count"] and pipeline["count"] else None
    proxy_share = outside / e2e_all["sum"] if proxy_ms is not None and e2e_all["sum"] else None
    wire_ms = client["mean_ms"] - mean_e2e if client["mean_ms"] is not None and mean_e2e is not None else None
    wire_share = wire_ms / client["mean_ms"] if wire_ms is not None and client["mean_ms"] else None
    p50_proxy = (
        server_e2e["p50_ms"] - stages["total"]["p50_ms"]
        if "total" in stages and server_e2e["p50_ms"] is not None and stages["total"]["p50_ms"] is not None
        else None
    )

    # Workers replaced after service.max_requests are not restarts.
    replacing = int(server_env.get("SEARCH_RERANK_SERVICE__MAX_REQUESTS", "0")) > 0
    checks = {
        "zero failed requests (client)": client["failures"] == 0 and locust_rc == 0,
        "zero 5xx and unhandled errors (server)": five_xx == 0 and errors == 0,
        "every request reached the server": searches == client["requests"],
        "no worker restarted (but for service.max_requests)": alive and (pids_after == pids_before or replacing),
        f"at least 120 s of load (ran {args.duration} s)": args.duration >= 120,
        f"concurrency >= 4 x workers ({users} users, {args.workers} workers)": users >= 4 * args.workers,
    }
    fatal = [k for k in list(checks)[:2] if not checks[k]]
    if args.fail_on_degraded and degraded:
        fatal.append("degraded answers")

    results = {
        "dataset": data.name,
        "products": ready["counts"]["products"],
        "reranker": ready.get("reranker"),
        "workers": args.workers,
        "threads": args.threads,
        "users": users,
        "spawn_rate": spawn_rate,
        "duration_s": args.duration,
        "warmup_searches": warm,
        "locust_exit_code": locust_rc,
        "client": {"aggregated": client, "by_name": client_by_name, "failures": failures},
        "server": {
            "end_to_end": server_e2e,
            "by_endpoint": server_by_endpoint,
            "stages": stages,
            "statuses": statuses,
            "five_xx": five_xx,
            "errors": errors,
            "degraded": degraded,
            "searches": searches,
            "pipeline_runs": int(pipeline["count"]),
        },
        "overhead": {
            "proxy_mean_ms": proxy_ms,
            "proxy_share_of_server_e2e": proxy_share,
            "proxy_p50_difference_ms": p50_proxy,
            "client_minus_server_mean_ms": wire_ms,
            "client_minus_server_share_of_client": wire_share,
        },
        "throughput_history": history,
        "server_env": server_env,
        "worker_memory": memory.summary(),
        "worker_memory_series": memory.series(),
        "checks": checks,
        "quantiles": "server quantiles interpolated linearly inside Prometheus histogram buckets; means exact",
    }

    print(
        f"\nclient: {client['requests']} requests, {client['failures']} failed, {client['rps']:.1f} req/s, "
        f"p50 {fmt(client['p50_ms'], 0)} ms, p99 {fmt(client['p99_ms'], 0)} ms, mean {fmt(client['mean_ms'])} ms"
    )
    for name, row in {**stages, "server e2e": server_e2e}.items():
        print(
            f"server {name:>10}: n={row['count']:>6} p50 {fmt(row['p50_ms']):>8} ms  p99 {fmt(row['p99_ms']):>8} ms"
            f"  mean {fmt(row['mean_ms']):>8} ms"
        )
    print(
        f"proxy overhead (server e2e - pipeline total, means): {fmt(proxy_ms)} ms = {fmt((proxy_share or 0) * 100)}%"
        f" of server e2e; client - server (loopback + gunicorn queueing): {fmt(wire_ms)} ms ="
        f" {fmt((wire_share or 0) * 100)}% of client e2e"
    )
    print(f"statuses {statuses}; errors {errors}; degraded {degraded or 'none'}")
    for pid, row in results["worker_memory"].items():
        print(
            f"worker {pid}: {row['start_mb']:,.0f} -> {row['end_mb']:,.0f} MB (peak {row['peak_mb']:,.0f}); grew "
            f"{row['first_half_growth_mb']:+,.0f} MB in the first half, {row['second_half_growth_mb']:+,.0f} in the second"
        )
    for name, ok in checks.items():
        print(("PASS " if ok else "FAIL ") + name)
    if failures:
        print("failures:", json.dumps(failures[:5], indent=1))

    if args.no_write:
        out = Path(args.work) / "load_test.json"
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
        print(f"--no-write: results in {out}, docs/BENCHMARKS.md untouched")
    else:
        out = ROOT / "benchmarks" / "results"
        out.mkdir(exist_ok=True)
        (out / "load_test.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
        image = plot(client, stages, server_e2e, history)
        write_section("load-test", "Load test (issue 4)", report_body(results, data.name, image))

    if args.keep_tmp or fatal:
        print(f"server log, metrics and locust CSVs kept in {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    if fatal:
        print("LOAD TEST FAILED: " + "; ".join(fatal), file=sys.stderr)
        if not alive:
            print("(the server had exited)", file=sys.stderr)
        sys.exit(1)


def report_body(r: dict, dataset: str, image: str) -> str:
    s, c, o = r["server"], r["client"], r["overhead"]
    stage_rows = [
        [name, row["count"], fmt(row["p50_ms"]), fmt(row["p99_ms"]), fmt(row["mean_ms"])]
        for name, row in s["stages"].items()
    ]
    stage_rows.append(
        [
            "**server end to end** (search routes)",
            s["end_to_end"]["count"],
            fmt(s["end_to_end"]["p50_ms"]),
            fmt(s["end_to_end"]["p99_ms"]),
            fmt(s["end_to_end"]["mean_ms"]),
        ]
    )
    agg = c["aggregated"]
    stage_rows.append(
        [
            "**client end to end** (locust)",
            agg["requests"],
            fmt(agg["p50_ms"], 0),
            fmt(agg["p99_ms"], 0),
            fmt(agg["mean_ms"]),
        ]
    )
    client_rows = [
        [name, row["requests"], row["failures"], fmt(row["rps"]), fmt(row["p50_ms"], 0), fmt(row["p99_ms"], 0)]
        for name, row in c["by_name"].items()
    ]
    client_rows.append(
        ["**all**", agg["requests"], agg["failures"], fmt(agg["rps"]), fmt(agg["p50_ms"], 0), fmt(agg["p99_ms"], 0)]
    )
    degraded = s["degraded"]
    degraded_text = (
        (", ".join(f"{stage}: {n}" for stage, n in sorted(degraded.items())) + f" (of {s['searches']} searches)")
        if degraded
        else "none"
    )
    checks = "; ".join(("✅ " if ok else "❌ ") + name for name, ok in r["checks"].items())
    time_rows = [
        [
            "proxy overhead: server end to end − pipeline total (Flask, validation, JSON in and out, UBI id, metrics)",
            fmt(o["proxy_mean_ms"]),
            f"{fmt((o['proxy_share_of_server_e2e'] or 0) * 100)} % of server end to end",
        ],
        [
            "loopback + gunicorn (queueing for a thread, HTTP parsing, socket writes) + locust: "
            "client end to end − server end to end",
            fmt(o["client_minus_server_mean_ms"]),
            f"{fmt((o['client_minus_server_share_of_client'] or 0) * 100)} % of client end to end",
        ],
    ]
    reranker = (
        f"reranker `{r['reranker']}`"
        if r.get("reranker")
        else "no reranker model configured, so the rerank stage is skipped"
    )
    return f"""
`search-rerank serve` under gunicorn on loopback ({r["workers"]} workers × {r["threads"]} gthread threads,
{reranker}) over `{dataset}` ({r["products"]:,} products), driven by
locust on the same machine: {r["users"]} closed-loop users (no think time; started at {r["spawn_rate"]:g}/s) for
{r["duration_s"]} s, after {r["warmup_searches"]} warm-up searches that reached every worker. Queries are the
test split's, drawn by their `frequency` (power law); the mix (`benchmarks/locustfile.py`) is 5 plain
`/search` : 2 with category + price filters : 1 page two (`from=10`) : 2 Elasticsearch-compatible
`/products/_search` with Elastic Search UI's body (half of them with its filter shape). Client and server share
the machine's cores, so the numbers include the load generator's own CPU.

{checks}.

### Requests (client side, locust)

{table(["request", "count", "failed", "req/s", "p50 ms", "p99 ms"], client_rows)}

### Latency per stage and end to end (ms)

Server side: the delta of the service's Prometheus histograms (`/metrics`, summed over workers) between a scrape
before and after the load; quantiles are **interpolated linearly inside histogram buckets** (bounds 2, 5, 10, 25,
50, 100, 250, 500 ms, 1 s, …), as PromQL's `histogram_quantile` does, so read them to the bucket; the means are
exact. Lexical and dense run side by side, so their times overlap; `total` is all of `SearchPipeline.run`.
Client side: locust's own percentiles (rounded by locust).

{table(["stage", "count", "p50", "p99", "mean"], stage_rows)}

![load test]({image})

### Where the time goes (per search request, from the histograms' exact sums)

{table(["part", "ms", "share"], time_rows)}

The server's end to end runs from Flask's `before_request` to its `after_request` on the search routes, so
it holds everything the app does for a search; what gunicorn does around it falls in the second line, with the
wait for a free worker thread when more users than threads are searching.
(Difference of the p50s, server end to end − pipeline total: {fmt(o["proxy_p50_difference_ms"])} ms; a
difference of quantiles is not a quantile of differences, hence the means above.)

Server answers by route and status: {", ".join(f"`{k}` {v}" for k, v in sorted(s["statuses"].items()))};
unhandled errors: {s["errors"]}. **Degraded answers** (a leg or stage past its deadline, answered without it;
allowed, counted, not failures): {degraded_text}. The script exits 1 on any failed request, 5xx or unhandled
error (and on degraded answers with `--fail-on-degraded`).

### Worker memory

{memory_text(r)}
"""


def memory_text(r: dict) -> str:
    """The workers' resident memory over the run, and whether it levelled off (see MemorySampler)."""
    rows = [
        [pid, fmt(m["start_mb"], 0), fmt(m["end_mb"], 0), fmt(m["peak_mb"], 0)]
        + [f"{m[half]:+,.0f}" for half in ("first_half_growth_mb", "second_half_growth_mb")]
        for pid, m in r["worker_memory"].items()
    ]
    env = ", ".join(f"`{k}={v}`" for k, v in r["server_env"].items()) or "none"
    header = ["worker", "start MB", "end MB", "peak MB", "growth, first half", "growth, second half"]
    return (
        f"Resident memory of each worker (`VmRSS`), sampled every 2 s from the start of the load to its end; "
        f"environment given to the server: {env}.\n\n" + table(header, rows)
    )


if __name__ == "__main__":
    main()
