"""/ready's check runs one at a time, off the request's thread, and is reused while recent.

The pipeline is the real one; the check is a function that can be made to
hang, standing for a dependency that does not answer.
"""

import threading
import time

import pytest

from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving.live_pipeline import LivePipeline
from search_rerank.serving.readiness import Readiness

READY = ({"status": "ready"}, 200)


class Check:
    def __init__(self):
        self.calls = 0
        self.release = threading.Event()
        self.release.set()

    def __call__(self, pipeline):
        self.calls += 1
        self.release.wait(30)
        return READY


@pytest.fixture
def check():
    check = Check()
    yield check
    check.release.set()


@pytest.fixture
def live(pipeline):
    return LivePipeline(pipeline, grace_s=30)


def test_a_hanging_check_answers_timeout_within_the_deadline(live, check):
    check.release.clear()
    started = time.perf_counter()
    assert Readiness(live, check, timeout_s=0.2, max_age_s=2).answer() == (
        {"status": "not ready", "reason": "timeout"},
        503,
    )
    assert time.perf_counter() - started < 2


def test_probes_while_a_check_is_late_answer_at_once_without_a_second_check(live, check):
    check.release.clear()
    readiness = Readiness(live, check, timeout_s=0.2, max_age_s=2)
    readiness.answer()
    started = time.perf_counter()
    for _ in range(5):
        assert readiness.answer()[1] == 503
    assert time.perf_counter() - started < 0.5
    assert check.calls == 1


def test_a_recent_answer_is_reused(live, check):
    readiness = Readiness(live, check, timeout_s=1, max_age_s=60)
    assert [readiness.answer() for _ in range(3)] == [READY] * 3
    assert check.calls == 1


def test_an_old_answer_is_checked_again(live, check):
    now = [0.0]
    readiness = Readiness(live, check, timeout_s=1, max_age_s=2, clock=lambda: now[0])
    readiness.answer()
    now[0] += 2
    readiness.answer()
    assert check.calls == 2


def test_a_reloaded_pipeline_is_checked_afresh(live, check, settings):
    readiness = Readiness(live, check, timeout_s=1, max_age_s=60)
    readiness.answer()
    live.swap(open_pipeline(settings))
    readiness.answer()
    assert check.calls == 2
    live.current.close()
