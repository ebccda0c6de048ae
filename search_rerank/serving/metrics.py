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

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram, generate_latest, multiprocess
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from ..core.breaker import STATE_VALUES
from ..core.pipeline import SearchResult

# Stages take milliseconds to seconds; requests up to the deadlines (seconds).
BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

REQUESTS = Counter("search_rerank_requests", "HTTP requests answered", ["endpoint", "status"])
REQUEST_SECONDS = Histogram(
    "search_rerank_request_seconds", "HTTP request latency, end to end", ["endpoint"], buckets=BUCKETS
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
