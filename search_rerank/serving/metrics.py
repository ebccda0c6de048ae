"""Prometheus metrics that stay right under gunicorn's several worker processes.

Each worker counts in its own memory. With ``PROMETHEUS_MULTIPROC_DIR`` set
(``gunicorn_conf`` sets it before any worker starts) prometheus_client keeps
the values in files there instead, and ``/metrics`` adds up every worker's,
whichever worker answers the scrape. Without it (tests, one process) the
process's own registry is served. The app factory reads the variable (the
environment is read only in settings and entry points) and passes the
directory to :func:`exposition`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Mapping, Sequence

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..core.breaker import STATE_VALUES
from ..core.longtail import TAIL, TIERS, tier
from ..core.pipeline import SearchResult
from ..core.settings import LongTailSettings
from . import metrics_files

metrics_files.install()  # before any metric below makes its file

# Stages take milliseconds to seconds; requests up to the deadlines (seconds).
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("search_rerank_requests", "HTTP requests answered", ["endpoint", "status"])
REQUEST_SECONDS = Histogram(
    "search_rerank_request_seconds", "HTTP request latency, end to end", ["endpoint"], buckets=BUCKETS
)
SHED = Counter(
    "search_rerank_shed_requests",
    "requests dropped without being run: no thread took them within service.queue_timeout_s ('queue_timeout', "
    "answered 503), their client closed the connection while they waited ('client_gone'), or they failed for want "
    "of file descriptors or memory ('out_of_resources', answered 503)",
    ["endpoint", "reason"],
)
ERRORS = Counter("search_rerank_errors", "requests that ended in an unexpected exception (a 500)", ["endpoint"])
STAGE_SECONDS = Histogram(
    "search_rerank_stage_seconds", "pipeline time per stage ('total': the whole pipeline)", ["stage"], buckets=BUCKETS
)
DEGRADED = Counter(
    "search_rerank_degraded_answers", "answers given without a stage that failed or timed out", ["stage"]
)

# Each worker has its own breakers; under gunicorn the scrape shows the most open live worker's state.
BREAKER_STATE = Gauge(
    "search_rerank_breaker_state",
    "circuit breaker per dependency: 0 closed, 1 half-open, 2 open",
    ["dependency"],
    multiprocess_mode="livemax",
)
BREAKER_REFUSED = Counter(
    "search_rerank_breaker_refused", "calls refused at once because the dependency's breaker was open", ["dependency"]
)


class BreakerMetrics:
    """The breakers' observer: their states and refusals as Prometheus metrics."""

    def state_changed(self, dependency: str, state: str) -> None:
        BREAKER_STATE.labels(dependency).set(STATE_VALUES[state])

    def refused(self, dependency: str) -> None:
        BREAKER_REFUSED.labels(dependency).inc()


PROFILE_STORE_ERRORS = Counter(
    "search_rerank_profile_store_errors",
    "profile store calls that failed: 'read' (a search ranked without personalisation), 'write' (UBI events "
    "kept in the log but not applied to profiles), 'forget', 'purge' (expired profiles left for the next hour)",
    ["operation"],
)

RESULT_CACHE = Counter(
    "search_rerank_result_cache_lookups", "searches looked up in the worker's result cache", ["outcome"]
)


def observe(result: SearchResult) -> None:
    for stage, ms in result.ranking.timings_ms.items():
        STAGE_SECONDS.labels(stage).observe(ms / 1000)
    for stage in result.ranking.degraded:
        DEGRADED.labels(stage).inc()


def exposition(multiprocess_dir: str | None) -> tuple[bytes, str]:
    """The text format and its content type, summed over workers when ``multiprocess_dir`` holds their files."""
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


# --- exposure: what searches show, by popularity tier -----------------------------------------------------------

IMPRESSIONS = Counter(
    "search_rerank_impressions", "products shown on search result pages, by popularity tier", ["tier"]
)
CLICKS = Counter("search_rerank_clicks", "UBI click events, by popularity tier of the clicked product", ["tier"])
TAIL_SHARE_TOP10 = Histogram(
    "search_rerank_tail_share_top10",
    "per search, the share of tail-tier products among the first 10 results shown",
    buckets=tuple(i / 10 for i in range(11)),
)
COVERAGE_WINDOW_S = 3600.0
COVERAGE = Gauge(
    "search_rerank_distinct_products_shown",
    f"distinct products shown in the last {COVERAGE_WINDOW_S:g}s (per worker; the scrape shows the widest worker)",
    multiprocess_mode="livemax",
)
TOP = 10


class ShownWindow:
    """Which products were shown over the last ``window_s`` seconds: each product's last showing, oldest first.

    Coverage (how much of the catalogue search exposes at all) is the
    number of distinct products here; a ranking that keeps showing the same
    head products has low coverage whatever its click-through. One entry per
    product, so memory follows the products shown, never the searches of the
    hour (a page kept per search was about 900 bytes at 100 hits: gigabytes an
    hour for a worker answering cached searches); expiry is O(1) per product.
    """

    def __init__(self, window_s: float):
        self.window_s = window_s
        self._last_shown: collections.OrderedDict[str, float] = collections.OrderedDict()
        self._lock = threading.Lock()

    def add(self, product_ids: Sequence[str], now: float) -> int:
        """Record a page shown at ``now``; the distinct products shown in the window ending there."""
        with self._lock:
            for pid in product_ids:
                self._last_shown[pid] = now
                self._last_shown.move_to_end(pid)
            while self._last_shown and self._last_shown[next(iter(self._last_shown))] <= now - self.window_s:
                self._last_shown.popitem(last=False)
            return len(self._last_shown)


SHOWN = ShownWindow(COVERAGE_WINDOW_S)


def observe_exposure(
    product_ids: Sequence[str], popularity: Mapping[str, float], settings: LongTailSettings, offset: int = 0
) -> None:
    """One result page's exposure: impressions per tier, the tail share of the top 10 (first pages only), coverage.

    Products of unknown popularity are not counted in a tier.
    """
    tiers = [tier(popularity[pid], settings) if pid in popularity else None for pid in product_ids]
    for name in tiers:
        if name is not None:
            IMPRESSIONS.labels(name).inc()
    top = [name for name in tiers[:TOP] if name is not None]
    if offset == 0 and top:
        TAIL_SHARE_TOP10.observe(top.count(TAIL) / len(top))
    COVERAGE.set(SHOWN.add(product_ids, time.monotonic()))


def observe_clicks(product_ids: Sequence[str], popularity: Mapping[str, float], settings: LongTailSettings) -> None:
    for pid in product_ids:
        if pid in popularity:
            CLICKS.labels(tier(popularity[pid], settings)).inc()


# --- the exposure controller (see exposure_loop) -----------------------------------------------------------------

LONGTAIL_STRENGTH = Gauge(
    "search_rerank_longtail_strength",
    "the long-tail strength this server's searches use (the exposure controller's, when it runs)",
    multiprocess_mode="livemostrecent",
)
CONTROL_DECISIONS = Counter(
    "search_rerank_exposure_control_decisions",
    "the exposure controller's decisions, by action (up, down, hold) and reason",
    ["action", "reason"],
)


def exposure_totals(multiprocess_dir: str | None) -> dict[str, float]:
    """The exposure counters so far, summed over every worker (as ``/metrics`` shows them).

    Keys: ``impressions.<tier>``, ``clicks.<tier>``, ``tail_share_sum``, ``tail_share_count``; the
    controller differences two of these to see one interval.
    """
    if multiprocess_dir:
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry, path=multiprocess_dir)
    else:
        registry = REGISTRY
    wanted = {
        "search_rerank_impressions_total": "impressions",
        "search_rerank_clicks_total": "clicks",
        "search_rerank_tail_share_top10_sum": "tail_share_sum",
        "search_rerank_tail_share_top10_count": "tail_share_count",
    }
    totals = {f"{kind}.{name}": 0.0 for kind in ("impressions", "clicks") for name in TIERS}
    totals.update(tail_share_sum=0.0, tail_share_count=0.0)
    for family in registry.collect():
        for sample in family.samples:
            key = wanted.get(sample.name)
            if key is None:
                continue
            if "tier" in sample.labels:
                key = f"{key}.{sample.labels['tier']}"
            totals[key] = totals.get(key, 0.0) + sample.value
    return totals
