"""The circuit breaker's states, stepped through with a clock the test moves: no sleeps.

The guard tests use a real thread pool and a call that really blocks, for as
little as their deadline needs.
"""

import threading
import time

import pytest

from search_rerank.core.breaker import (
    CLOSED,
    HALF_OPEN,
    OPEN,
    CircuitBreaker,
    CircuitOpenError,
    DeadlineExceeded,
    Guard,
    GuardedRetriever,
)
from search_rerank.core.retrieval import leg_candidates


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Recorder:
    def __init__(self):
        self.states: list[tuple[str, str]] = []
        self.refusals: list[str] = []

    def state_changed(self, dependency, state):
        self.states.append((dependency, state))

    def refused(self, dependency):
        self.refusals.append(dependency)


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(clock):
    return CircuitBreaker("lexical", failures=3, cooldown_s=10.0, probes=1, clock=clock)


def fail(breaker, times=1):
    for _ in range(times):
        breaker.admit().report(ok=False)


def test_breaker_stays_closed_below_the_failure_count(breaker):
    fail(breaker, 2)
    assert breaker.state == CLOSED


def test_breaker_opens_after_consecutive_failures(breaker):
    fail(breaker, 3)
    assert breaker.state == OPEN


def test_a_success_resets_the_failure_count(breaker):
    fail(breaker, 2)
    breaker.admit().report(ok=True)
    fail(breaker, 2)
    assert breaker.state == CLOSED


def test_open_breaker_refuses_with_the_time_left(breaker, clock):
    fail(breaker, 3)
    clock.now += 4
    with pytest.raises(CircuitOpenError) as refused:
        breaker.admit()
    assert refused.value.dependency == "lexical"
    assert refused.value.retry_after_s == pytest.approx(6.0)


def test_breaker_is_half_open_after_the_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 10
    assert breaker.state == HALF_OPEN


def test_half_open_lets_only_the_probes_through(breaker, clock):
    fail(breaker, 3)
    clock.now += 10
    probe = breaker.admit()
    assert probe.probe
    with pytest.raises(CircuitOpenError):
        breaker.admit()


def test_a_successful_probe_closes_the_breaker(breaker, clock):
    fail(breaker, 3)
    clock.now += 10
    breaker.admit().report(ok=True)
    assert breaker.state == CLOSED


def test_a_failed_probe_opens_it_for_another_cooldown(breaker, clock):
    fail(breaker, 3)
    clock.now += 10
    breaker.admit().report(ok=False)
    clock.now += 9
    assert breaker.state == OPEN
    clock.now += 1
    assert breaker.state == HALF_OPEN


def test_a_probe_unanswered_for_a_cooldown_counts_as_failed(breaker, clock):
    fail(breaker, 3)
    clock.now += 10
    breaker.admit()  # never reported
    clock.now += 10
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    assert breaker.state == OPEN


def test_reports_from_before_the_breaker_opened_are_ignored(breaker, clock):
    late = breaker.admit()
    fail(breaker, 3)
    clock.now += 10
    late.report(ok=True)  # admitted while closed, answered once half-open: not a probe
    assert breaker.state == HALF_OPEN


def test_an_attempt_counts_once(breaker):
    attempt = breaker.admit()
    for _ in range(3):
        attempt.report(ok=False)
    assert breaker.state == CLOSED


def test_observer_sees_every_state_and_refusal(clock):
    seen = Recorder()
    breaker = CircuitBreaker("passthrough", failures=1, cooldown_s=5.0, clock=clock, observer=seen)
    fail(breaker)
    with pytest.raises(CircuitOpenError):
        breaker.admit()
    clock.now += 5
    breaker.admit().report(ok=True)
    assert seen.states == [("passthrough", s) for s in (CLOSED, OPEN, HALF_OPEN, CLOSED)]
    assert seen.refusals == ["passthrough"]


def test_concurrent_failures_open_the_breaker_exactly_once(clock):
    seen = Recorder()
    breaker = CircuitBreaker("lexical", failures=50, cooldown_s=5.0, clock=clock, observer=seen)
    attempts = [breaker.admit() for _ in range(200)]
    threads = [threading.Thread(target=a.report, args=(False,)) for a in attempts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen.states == [("lexical", CLOSED), ("lexical", OPEN)]


@pytest.mark.parametrize("failures, cooldown_s, probes", [(0, 1.0, 1), (1, 0.0, 1), (1, 1.0, 0)])
def test_breaker_refuses_settings_that_could_never_work(failures, cooldown_s, probes):
    with pytest.raises(ValueError):
        CircuitBreaker("x", failures=failures, cooldown_s=cooldown_s, probes=probes)


class Blocking:
    """A leg whose searches block until released."""

    name = "lexical"

    def __init__(self):
        self.release = threading.Event()
        self.calls = 0

    def search(self, query, k, filters=None):
        self.calls += 1
        self.release.wait(30)
        return leg_candidates("lexical", [("p1", 1.0)])


@pytest.fixture
def blocking():
    leg = Blocking()
    yield leg
    leg.release.set()


def test_guard_turns_a_hung_call_into_a_counted_timeout(clock, blocking):
    breaker = CircuitBreaker("lexical", failures=1, cooldown_s=10.0, clock=clock)
    guard = Guard(breaker, timeout_s=0.2)
    with pytest.raises(DeadlineExceeded):
        GuardedRetriever(blocking, guard).search("sofa", 5)
    assert breaker.state == OPEN
    guard.close()


def test_guard_fails_at_once_while_every_thread_is_held_by_a_hung_call(clock, blocking):
    breaker = CircuitBreaker("lexical", failures=5, cooldown_s=10.0, clock=clock)
    guard = Guard(breaker, timeout_s=30.0, workers=1, clock=clock)
    leg = GuardedRetriever(blocking, guard)
    first = threading.Thread(target=leg.search, args=("sofa", 5))  # answers once released
    first.start()
    while blocking.calls == 0:  # the first call holds the only thread
        time.sleep(0.01)
    clock.now += 60  # ... and is past its deadline
    started = time.perf_counter()
    with pytest.raises(DeadlineExceeded):
        leg.search("sofa", 5)
    assert time.perf_counter() - started < 10  # not the 30 s deadline behind the hung call
    assert blocking.calls == 1
    blocking.release.set()
    first.join()
    guard.close()


def test_guarded_leg_is_not_called_while_open(clock, blocking):
    breaker = CircuitBreaker("lexical", failures=1, cooldown_s=10.0, clock=clock)
    fail(breaker)
    guard = Guard(breaker, timeout_s=5.0)
    with pytest.raises(CircuitOpenError):
        GuardedRetriever(blocking, guard).search("sofa", 5)
    assert blocking.calls == 0
    guard.close()


def test_guarded_leg_answers_as_the_leg_does(clock, blocking):
    breaker = CircuitBreaker("lexical", failures=1, cooldown_s=10.0, clock=clock)
    guard = Guard(breaker, timeout_s=5.0)
    blocking.release.set()
    assert [c.product_id for c in GuardedRetriever(blocking, guard).search("sofa", 5)] == ["p1"]
    assert breaker.state == CLOSED
    guard.close()
