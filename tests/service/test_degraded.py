"""Degrade, don't fail: a leg that hangs or raises leaves the other leg's answer, and the response says so.

The legs here are the real indexes behind a wrapper that really sleeps or
raises, so the pipeline's threads, deadlines and pools are what is tested.
"""

import threading
import time

import pytest

from search_rerank.core.reasons import ERROR, TIMEOUT
from search_rerank.serving import create_app

DEADLINE_S = 0.3  # the broken leg's deadline
HEALTHY_DEADLINE_S = 60.0  # a healthy leg's: a loaded test machine may take seconds to encode a query


class Hanging:
    """A real leg that first blocks until released (or ``seconds`` pass)."""

    def __init__(self, leg, seconds=60.0):
        self.leg, self.name, self.seconds = leg, leg.name, seconds
        self.release = threading.Event()

    def warm_up(self):
        self.leg.warm_up()

    def search(self, query, k, filters=None):
        self.release.wait(self.seconds)
        return self.leg.search(query, k, filters)


class Broken:
    def __init__(self, leg):
        self.name = leg.name

    def warm_up(self):
        pass

    def search(self, query, k, filters=None):
        raise ConnectionError("leg unreachable")


def with_deadlines(settings, short: set[str]):
    """The legs in ``short`` get the short deadline, the others a generous one, so only a broken leg times out."""
    return settings.model_copy(
        update={
            leg: getattr(settings, leg).model_copy(
                update={"timeout_s": DEADLINE_S if leg in short else HEALTHY_DEADLINE_S}
            )
            for leg in ("lexical", "dense")
        }
    )


@pytest.fixture
def replace_leg(pipeline, settings):
    """Swap one leg for a wrapper; give back a client and release any thread still hanging afterwards."""
    wrappers = []

    def replace(name, wrapper):
        wrapped = wrapper(pipeline.legs[name])
        wrappers.append(wrapped)
        pipeline.legs[name] = wrapped
        return create_app(with_deadlines(settings, {w.name for w in wrappers}), pipeline).test_client()

    yield replace
    for wrapped in wrappers:
        if isinstance(wrapped, Hanging):
            wrapped.release.set()


def timed_search(client, **body):
    started = time.perf_counter()
    response = client.post("/search", json={"query": "oak table", "size": 10, **body})
    return response, time.perf_counter() - started


@pytest.mark.parametrize("down, up", [("lexical", "dense"), ("dense", "lexical")])
def test_hanging_leg_times_out_and_the_other_answers(replace_leg, down, up):
    client = replace_leg(down, Hanging)
    response, took = timed_search(client)
    body = response.get_json()
    assert response.status_code == 200
    assert body["degraded"] == {down: TIMEOUT}
    assert len(body["hits"]) == 10
    assert took < DEADLINE_S + 10  # far below the hanging leg's 60 s, however busy the machine


@pytest.mark.parametrize("down, up", [("lexical", "dense"), ("dense", "lexical")])
def test_raising_leg_is_reported_and_the_other_answers(replace_leg, down, up):
    body = timed_search(replace_leg(down, Broken), explain=True)[0].get_json()
    assert body["degraded"] == {down: ERROR}
    assert all(hit["explanation"]["legs"] == [up] for hit in body["hits"])


def test_both_legs_down_is_an_empty_answer_not_an_error(replace_leg):
    replace_leg("lexical", Broken)
    response = timed_search(replace_leg("dense", Hanging))[0]
    assert response.status_code == 200
    assert set(response.get_json()["degraded"]) == {"lexical", "dense"}
    assert response.get_json()["hits"] == []


class Meeting(Hanging):
    """A real leg that searches only once the other leg has started its search too (``meeting``, shared)."""

    def __init__(self, leg, meeting: threading.Barrier):
        super().__init__(leg)
        self.meeting = meeting

    def search(self, query, k, filters=None):
        self.meeting.wait()
        return self.leg.search(query, k, filters)


def test_legs_run_side_by_side(settings, pipeline):
    """Each leg waits for the other to start: side by side they meet at once; one after the other, the first would
    wait alone until the meeting gave up (a broken barrier, the leg degraded). No clock decides."""
    meeting = threading.Barrier(2, timeout=HEALTHY_DEADLINE_S / 2)
    for name in ("lexical", "dense"):
        pipeline.legs[name] = Meeting(pipeline.legs[name], meeting)
    response, _ = timed_search(create_app(with_deadlines(settings, set()), pipeline).test_client())
    assert response.get_json()["degraded"] == {}


def test_a_leg_that_keeps_hanging_never_starves_the_other(replace_leg):
    client = replace_leg("lexical", Hanging)
    for _ in range(6):  # more hung threads than one pool holds
        body = timed_search(client)[0].get_json()
        assert "dense" not in body["degraded"]
        assert body["hits"]


def test_elasticsearch_response_reports_the_timeout(replace_leg):
    client = replace_leg("dense", Hanging)
    body = client.post("/products/_search", json={"query": {"match": {"title": "oak table"}}}).get_json()
    assert body["timed_out"] is True
    assert body["search_rerank"]["degraded"] == {"dense": TIMEOUT}
    assert body["hits"]["total"]["relation"] == "gte"
    assert body["hits"]["hits"]
