"""Circuit breakers: a dependency that keeps failing is left out at once instead of being waited for.

Deadlines alone keep a dead dependency from failing a search, but every
request still waits for them: with the cluster frozen each search waited out
its lexical and aggregation deadlines, and under load those waits queue up
behind each other. A breaker per dependency (the cluster legs, aggregations,
the passthrough, the reranker, the profile store) counts consecutive failures, a call past its
deadline being one; after ``breaker.failures`` of them it *opens*, and for
``breaker.cooldown_s`` every call is refused at once (:class:`CircuitOpenError`,
reported as ``circuit_open``) without touching the dependency. Then it is
*half-open*: ``breaker.probes`` calls at a time are let through; one success
closes it, one failure opens it for another cool-down. A probe that has not
reported within a cool-down counts as failed, so a lost report can never
leave the breaker refusing for ever.

Each serving process has its own breakers (``Guards``), kept across reloads;
evaluation and training use none, so a busy machine never changes their results.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from .candidate import Candidate
from .errors import CircuitOpenError, RequestRefused, SearchRerankError
from .filters import Filters
from .product import Product
from .retrieval import DENSE, LEXICAL, Retriever
from .settings import BreakerSettings, RerankSettings, Settings

T = TypeVar("T")

CLOSED, HALF_OPEN, OPEN = "closed", "half_open", "open"
# As the state gauge reports them: the larger, the less of the dependency is used.
STATE_VALUES = {CLOSED: 0, HALF_OPEN: 1, OPEN: 2}

RERANK, AGGREGATIONS, PASSTHROUGH, PROFILES = "rerank", "aggregations", "passthrough", "profile_store"
DEPENDENCIES = (LEXICAL, DENSE, AGGREGATIONS, PASSTHROUGH, RERANK, PROFILES)


class DeadlineExceeded(SearchRerankError, TimeoutError):
    """A guarded call that did not return within its dependency's deadline (counted as a failure)."""

    def __init__(self, dependency: str, timeout_s: float):
        self.dependency = dependency
        super().__init__(f"{dependency}: no answer within {timeout_s:g}s")


class BreakerObserver(Protocol):
    """Told of every state change and refusal (the service's Prometheus metrics)."""

    def state_changed(self, dependency: str, state: str) -> None: ...

    def refused(self, dependency: str) -> None: ...


class Attempt:
    """One admitted call; its outcome is reported once (later reports are ignored)."""

    def __init__(self, breaker: CircuitBreaker, generation: int, probe: bool, started: float):
        self.breaker = breaker
        self.generation = generation
        self.probe = probe
        self.started = started
        self.reported = False

    def report(self, ok: bool) -> None:
        self.breaker.report(self, ok)


class CircuitBreaker:
    """Closed, open or half-open, from the outcomes of the calls it admitted; thread-safe.

    ``clock`` (monotonic seconds) is injectable so that tests step through
    cool-downs without sleeping.
    """

    def __init__(
        self,
        name: str,
        failures: int = 5,
        cooldown_s: float = 10.0,
        probes: int = 1,
        clock: Callable[[], float] = time.monotonic,
        observer: BreakerObserver | None = None,
    ):
        if failures < 1 or probes < 1 or cooldown_s <= 0:
            raise ValueError(f"breaker {name}: failures and probes must be >= 1 and cooldown_s > 0")
        self.name = name
        self.failures = failures
        self.cooldown_s = cooldown_s
        self.probes = probes
        self._clock = clock
        self._observer = observer
        self._lock = threading.Lock()
        self._state = CLOSED
        self._generation = 0  # bumped at every change of state: reports from before it are stale
        self._consecutive = 0
        self._opened_at = 0.0
        self._probes: list[Attempt] = []
        if observer is not None:
            observer.state_changed(name, CLOSED)

    @classmethod
    def from_settings(
        cls,
        name: str,
        settings: BreakerSettings,
        clock: Callable[[], float] = time.monotonic,
        observer: BreakerObserver | None = None,
    ) -> CircuitBreaker:
        return cls(name, settings.failures, settings.cooldown_s, settings.probes, clock, observer)

    @property
    def state(self) -> str:
        with self._lock:
            self._cool_down(self._clock())
            return self._state

    def admit(self) -> Attempt:
        """An attempt to report on, or :class:`CircuitOpenError` when the call must not be made."""
        with self._lock:
            now = self._clock()
            self._cool_down(now)
            if self._state == HALF_OPEN and len(self._probes) >= self.probes:
                if now - min(p.started for p in self._probes) >= self.cooldown_s:
                    self._open(now)  # the probes never answered within a cool-down: the dependency is still down
            if self._state == CLOSED:
                return Attempt(self, self._generation, probe=False, started=now)
            if self._state == HALF_OPEN and len(self._probes) < self.probes:
                attempt = Attempt(self, self._generation, probe=True, started=now)
                self._probes.append(attempt)
                return attempt
            retry_after = max(self._opened_at + self.cooldown_s - now, 0.0)
        if self._observer is not None:
            self._observer.refused(self.name)
        raise CircuitOpenError(self.name, retry_after)

    def report(self, attempt: Attempt, ok: bool) -> None:
        """Record an admitted call's outcome; stale attempts (from before a change of state) are ignored."""
        with self._lock:
            if attempt.reported:
                return
            attempt.reported = True
            if attempt.generation != self._generation:
                return
            now = self._clock()
            if self._state == HALF_OPEN:
                self._probes.remove(attempt)
                if ok:
                    self._change(CLOSED)
                else:
                    self._open(now)
            elif self._state == CLOSED:
                self._consecutive = 0 if ok else self._consecutive + 1
                if self._consecutive >= self.failures:
                    self._open(now)

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets probes through; 0 when it is not open."""
        with self._lock:
            now = self._clock()
            self._cool_down(now)
            return max(self._opened_at + self.cooldown_s - now, 0.0) if self._state == OPEN else 0.0

    # ------------------------------------------------------------ under the lock

    def _cool_down(self, now: float) -> None:
        if self._state == OPEN and now - self._opened_at >= self.cooldown_s:
            self._change(HALF_OPEN)

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._change(OPEN)

    def _change(self, state: str) -> None:
        self._state = state
        self._generation += 1
        self._consecutive = 0
        self._probes = []
        if self._observer is not None:
            self._observer.state_changed(self.name, state)


@contextmanager
def outcome_reported(breaker: CircuitBreaker | None) -> Iterator[None]:
    """A call admitted by ``breaker`` (:class:`CircuitOpenError` when it is open; None: no breaker), its outcome
    reported when the block ends: any exception is a failure. For a dependency whose every error is its own (the
    profile store); :class:`Guard` also tells a refused request from a failing dependency."""
    attempt = breaker.admit() if breaker is not None else None
    try:
        yield
    except BaseException:
        if attempt is not None:
            attempt.report(ok=False)
        raise
    if attempt is not None:
        attempt.report(ok=True)


class Guard:
    """A dependency's breaker with its deadline: a call is refused at once, or run and waited for at most
    ``timeout_s``, and its outcome (a timeout being a failure) goes to the breaker.

    The call runs on this guard's own bounded pool, so the caller's thread is
    back at the deadline even when the dependency never answers: a hung call
    holds one of these threads, never a pipeline or request thread. When every
    thread is held by a call already past its deadline, a new call could only
    queue behind them and time out: it fails at once instead (the dependency has
    not answered the earlier ones), which keeps a half-open probe from costing
    a shopper the whole deadline while the dependency is still down.
    """

    def __init__(
        self, breaker: CircuitBreaker, timeout_s: float, workers: int = 4, clock: Callable[[], float] = time.monotonic
    ):
        self.breaker = breaker
        self.timeout_s = timeout_s
        self.workers = workers
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"guard-{breaker.name}")
        self._lock = threading.Lock()
        self._running: dict[object, float] = {}  # calls on a thread now, and when each started

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        attempt = self.breaker.admit()
        if self._hung():
            attempt.report(ok=False)
            raise DeadlineExceeded(self.breaker.name, self.timeout_s)
        future = self._pool.submit(self._run, fn, args)
        try:
            result = future.result(timeout=self.timeout_s)
        except FutureTimeout:
            future.cancel()
            attempt.report(ok=False)
            raise DeadlineExceeded(self.breaker.name, self.timeout_s) from None
        except RequestRefused:
            attempt.report(ok=True)  # the dependency answered: the request was wrong, not the dependency
            raise
        except BaseException:
            attempt.report(ok=False)
            raise
        attempt.report(ok=True)
        return result

    def _run(self, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        key = object()
        with self._lock:
            self._running[key] = self._clock()
        try:
            return fn(*args)
        finally:
            with self._lock:
                del self._running[key]

    def _hung(self) -> bool:
        """Whether every thread is held by a call past its deadline."""
        now = self._clock()
        with self._lock:
            started = list(self._running.values())
        return len(started) >= self.workers and all(now - t > self.timeout_s for t in started)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


class _Delegating:
    """What a wrapper does not define itself is its inner object's, as it is."""

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")  # not self.inner: a half-built copy must not recurse
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


class GuardedRetriever(_Delegating):
    """A remote leg whose searches and counts go through its guard.

    Writes (``add``, ``delete``) and ``warm_up`` are the leg's own: they are
    not on a search's path, and a failing warm-up must stop a reload (and a start, unless the cluster only does
    not answer yet: see ``SearchPipeline.warm_up``).
    Anything beyond the protocol (``aggregate``, ``failure``, ``mapping``, ...)
    is the inner leg's as it is; aggregations have their own breaker.
    """

    def __init__(self, leg: Retriever, guard: Guard):
        self.inner = leg
        self.name = leg.name
        self.guard = guard

    def warm_up(self) -> None:
        self.inner.warm_up()

    def add(self, products: Iterable[Product]) -> int:
        return self.inner.add(products)

    def delete(self, product_ids: Iterable[str]) -> int:
        return self.inner.delete(product_ids)

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        return self.guard.call(self.inner.search, query, k, filters)

    def count(self) -> int:
        return self.guard.call(self.inner.count)


class GuardedReranker(_Delegating):
    """A reranker whose runs go through its guard; loading the model (``warm_up``) is not guarded."""

    name = RERANK

    def __init__(self, reranker: Any, guard: Guard):
        self.inner = reranker
        self.guard = guard

    def warm_up(self) -> None:
        self.inner.warm_up()

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]:
        return self.guard.call(self.inner.run, query, candidates, texts, settings)


@dataclass
class Guards:
    """One serving process's breakers, one per dependency, and the guards of those called through the pipeline.

    Built once per worker and kept across reloads, so a reload neither
    forgets that the cluster is down nor adds threads.
    """

    breakers: dict[str, CircuitBreaker]
    guards: dict[str, Guard] = field(default_factory=dict)

    @classmethod
    def from_settings(
        cls, settings: Settings, observer: BreakerObserver | None = None, clock: Callable[[], float] = time.monotonic
    ) -> Guards:
        breakers = {
            name: CircuitBreaker.from_settings(name, settings.breaker, clock, observer) for name in DEPENDENCIES
        }
        deadlines = {
            LEXICAL: settings.lexical.timeout_s,
            DENSE: settings.dense.timeout_s,
            RERANK: settings.rerank.timeout_s,
        }
        return cls(
            breakers, {name: Guard(breakers[name], timeout_s, clock=clock) for name, timeout_s in deadlines.items()}
        )

    def leg(self, leg: Retriever) -> GuardedRetriever:
        return GuardedRetriever(leg, self.guards[leg.name])

    def reranker(self, reranker: Any) -> GuardedReranker:
        return GuardedReranker(reranker, self.guards[RERANK])

    def states(self) -> dict[str, str]:
        return {name: breaker.state for name, breaker in self.breakers.items()}

    def close(self) -> None:
        for guard in self.guards.values():
            guard.close()
