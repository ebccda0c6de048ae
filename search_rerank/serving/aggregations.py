"""Aggregations of an Elasticsearch-compatible search, computed by the cluster.

The pipeline ranks a few hundred candidates, but facet counts must cover
every product that the query and filters match, which only the lexical
leg's cluster index can count. So, with a cluster backend, the ``aggs`` of a
search go to the cluster as they were sent (``ClusterRetriever.aggregate``:
the lexical leg's text query and the query's filters, without the
``post_filter``, as Elasticsearch aggregates), while the pipeline ranks; the
result is answered under ``aggregations`` beside the pipeline's hits.

Degrading is decided here: a cluster that is down, refuses our credentials
or is slower than ``service.aggregations_timeout_s`` does not cost the hits;
the answer comes without ``aggregations`` and says why in
``search_rerank.degraded.aggregations``, by a reason code (core.reasons; the detail is logged). An aggregation the cluster rejects
as malformed (its 400) is the request's fault, and is answered as a 400.
With the aggregations' circuit breaker open (the cluster failed or was late
that many times in a row) nothing is sent: the answer comes at once, flagged
``circuit_open``.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Any

from ..core.breaker import AGGREGATIONS, Attempt, CircuitBreaker
from ..core.errors import CircuitOpenError
from ..core.filters import Filters
from ..core.reasons import CIRCUIT_OPEN, TIMEOUT, reason_code
from . import metrics
from .es_compat import EsSearch, InvalidQuery

log = logging.getLogger(__name__)

# Filters no product passes (an attribute with no wanted values): the cluster then answers each
# aggregation's empty shape (zero buckets, a null max), which only it knows for any aggregation type.
MATCHES_NOTHING = Filters(attributes={"search_rerank.matches_nothing": ()})


def computes_aggregations(leg: Any) -> bool:
    """Whether a lexical leg can count aggregations over its whole index (a cluster leg can, tantivy cannot)."""
    return callable(getattr(leg, "aggregate", None))


@dataclass(frozen=True)
class Pending:
    """Aggregations on their way: the leg asked, the request in flight (one already failed with
    :class:`CircuitOpenError` when the breaker refused it), its breaker attempt, and when it started."""

    leg: Any
    future: Future
    attempt: Attempt | None
    started: float


class Aggregator:
    """Runs aggregations on a pool of its own, so that a hanging cluster can exhaust only this pool,
    behind the aggregations' breaker when one is given."""

    def __init__(self, workers: int = 4, breaker: CircuitBreaker | None = None):
        if workers < 1:
            raise ValueError(f"workers={workers}: the aggregation pool needs at least 1 thread")
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=AGGREGATIONS)
        self.breaker = breaker

    def start(self, leg: Any, search: EsSearch) -> Pending | None:
        """Send ``search.aggs`` to ``leg``'s cluster; None when the search asks for none."""
        if search.aggs is None:
            return None
        if not computes_aggregations(leg):
            raise TypeError(f"{type(leg).__name__} cannot compute aggregations; parse with aggregations=False")
        started = time.perf_counter()
        try:
            attempt = self.breaker.admit() if self.breaker is not None else None
        except CircuitOpenError as exc:
            refused: Future = Future()
            refused.set_exception(exc)
            return Pending(leg, refused, None, started)
        filters = MATCHES_NOTHING if search.facet_matches_nothing else search.facet_filters
        future = self._pool.submit(leg.aggregate, search.aggs, search.text, filters)
        return Pending(leg, future, attempt, started)

    def answer(self, pending: Pending | None, response: dict[str, Any], timeout_s: float) -> None:
        """Put the aggregations into ``response``, or the reason they are missing into its degraded section.

        Waits at most what is left of ``timeout_s`` since the request was sent.
        Raises :class:`InvalidQuery` when the cluster refused the aggregations as malformed.
        """
        if pending is None:
            return
        section = response["search_rerank"]
        remaining = timeout_s - (time.perf_counter() - pending.started)
        try:
            response[AGGREGATIONS] = pending.future.result(timeout=max(remaining, 0.0))
            _report(pending, ok=True)
        except CircuitOpenError:
            section["degraded"][AGGREGATIONS] = CIRCUIT_OPEN
        except FutureTimeout:
            pending.future.cancel()
            _report(pending, ok=False)
            section["degraded"][AGGREGATIONS] = TIMEOUT
            response["timed_out"] = True
            log.warning("answered without aggregations (%s): no answer within %gs", TIMEOUT, timeout_s)
        except Exception as exc:  # the cluster down must not take the hits down
            reason = _malformed(pending.leg, exc)
            _report(pending, ok=reason is not None)  # a 400 is the cluster answering: the request was wrong
            if reason is not None:
                raise InvalidQuery("aggs", reason) from exc
            section["degraded"][AGGREGATIONS] = reason_code(exc)
            log.warning(
                "answered without aggregations (%s): %s: %s", section["degraded"][AGGREGATIONS], type(exc).__name__, exc
            )
        finally:
            section["timings_ms"][AGGREGATIONS] = round((time.perf_counter() - pending.started) * 1000, 3)
        if AGGREGATIONS in section["degraded"]:
            metrics.DEGRADED.labels(AGGREGATIONS).inc()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _report(pending: Pending, ok: bool) -> None:
    if pending.attempt is not None:
        pending.attempt.report(ok)


def _malformed(leg: Any, exc: BaseException) -> str | None:
    """The cluster's reason when it answered 400 (the aggregations are wrong), else None (the cluster is)."""
    cause = exc.__cause__
    failure = leg.failure(cause) if cause is not None and callable(getattr(leg, "failure", None)) else None
    if failure is None or failure.status != 400:
        return None
    return f"{failure.type}: {failure.reason}"
