"""The exposure controller in the real app: its decisions change the strength searches use, in every worker.

Two apps sharing one state file stand for two gunicorn workers: the lock
(``flock``) is per open file, so the second app cannot lead while the first
does, as with two processes. The interval thread is given an hour, so the
tests drive the intervals themselves with ``tick``.
"""

import json
import time

import pytest
from click.testing import CliRunner
from live_server import served
from prometheus_client import REGISTRY

from search_rerank.cli import main
from search_rerank.core.exposure_control import BELOW_BAND, UP
from search_rerank.core.longtail import tailness
from search_rerank.serving import create_app
from search_rerank.serving.exposure_loop import observation_between

TOKEN = "exposure-admin"
QUERIES = ["chair", "sofa", "lamp", "rug", "table", "desk"]


def controlled_app(settings, pipeline, state_path, monkeypatch, **control):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    wanted = {
        "enabled": True,
        "target_low": 0.9,  # more tail than any search here shows: every decision is "up"
        "target_high": 1.0,
        "min_impressions": 1,
        "max_step": 0.5,
        "gain": 10.0,
        "max_strength": 2.0,
        "interval_s": 3600.0,
        "state_path": state_path,
        **control,
    }
    return create_app(settings.override(exposure_control=wanted, longtail={"strength": 0.1}), pipeline)


def searched(app, explain=False):
    client = app.test_client()
    return [
        client.post("/search", json={"query": q, "size": 10, "explain": explain}).get_json()["hits"] for q in QUERIES
    ]


def decided(app):
    """One baseline interval, some searches, then the interval that decides."""
    loop = app.extensions["exposure_control"]
    assert loop.tick() is None  # the first interval only records where the counters stand
    searched(app)
    return loop.tick()


@pytest.fixture
def app(settings, pipeline, tmp_path, monkeypatch):
    return controlled_app(settings, pipeline, tmp_path / "control" / "state.json", monkeypatch)


def test_a_decision_changes_the_strength_searches_use(app):
    decision = decided(app)
    assert (decision.action, decision.reason) == (UP, BELOW_BAND)
    assert decision.strength > 0.1
    boosted = [
        (hit["explanation"]["boost"], hit["explanation"]["popularity"])
        for hits in searched(app, explain=True)
        for hit in hits
        if hit["explanation"].get("boost", 0) > 0
    ]
    assert boosted
    for lift, popularity in boosted:
        assert lift == pytest.approx(decision.strength * tailness(popularity, 0.2))


def test_a_decision_reaches_another_worker_through_the_shared_file(app, settings, pipeline, tmp_path, monkeypatch):
    other = controlled_app(settings, pipeline, tmp_path / "control" / "state.json", monkeypatch)
    decision = decided(app)
    assert other.extensions["exposure_control"].tick() is None  # the first app holds the lock: it decides
    deadline = time.monotonic() + 30
    while other.config["SETTINGS"].longtail.strength != decision.strength and time.monotonic() < deadline:
        time.sleep(0.2)
    assert other.config["SETTINGS"].longtail.strength == decision.strength


def test_a_worker_that_starts_later_serves_the_shared_strength(app, settings, pipeline, tmp_path, monkeypatch):
    decision = decided(app)
    later = controlled_app(settings, pipeline, tmp_path / "control" / "state.json", monkeypatch)
    assert later.config["SETTINGS"].longtail.strength == decision.strength


def test_each_decision_is_counted_by_action_and_reason(app):
    def count():
        labels = {"action": UP, "reason": BELOW_BAND}
        return REGISTRY.get_sample_value("search_rerank_exposure_control_decisions_total", labels) or 0.0

    before = count()
    decided(app)
    assert count() == before + 1


def test_the_strength_gauge_shows_the_decided_strength(app):
    decision = decided(app)
    assert REGISTRY.get_sample_value("search_rerank_longtail_strength") == decision.strength


def test_the_admin_endpoint_shows_the_last_decision(app):
    decision = decided(app)
    body = app.test_client().get("/admin/exposure-control", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert body["enabled"] and body["leader"]
    assert body["strength"] == body["shared"]["strength"] == decision.strength
    assert body["shared"]["decision"]["reason"] == BELOW_BAND


def test_the_admin_endpoint_needs_the_token(app):
    assert app.test_client().get("/admin/exposure-control").status_code == 401


def test_the_admin_endpoint_without_the_controller_shows_the_fixed_strength(settings, pipeline, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    client = create_app(settings, pipeline).test_client()
    body = client.get("/admin/exposure-control", headers={"Authorization": f"Bearer {TOKEN}"}).get_json()
    assert body == {"enabled": False, "strength": settings.longtail.strength, "pid": body["pid"]}


def test_the_controller_refuses_to_start_with_a_method_it_cannot_steer(settings, pipeline, tmp_path, monkeypatch):
    with pytest.raises(SystemExit, match="boost"):
        create_app(
            settings.override(longtail={"method": "xquad"}, exposure_control={"enabled": True}),
            pipeline,
        )


def test_an_interval_reads_click_through_by_tier_from_the_counter_deltas():
    before = {"impressions.head": 100, "impressions.tail": 50, "clicks.head": 10, "clicks.tail": 1}
    after = {
        "impressions.head": 300,
        "impressions.tail": 150,
        "clicks.head": 30,
        "clicks.tail": 6,
        "tail_share_sum": 4.0,
        "tail_share_count": 10,
    }
    seen = observation_between(before, after)
    assert (seen.impressions, seen.tail_share) == (300, 0.4)
    assert (seen.head_ctr, seen.tail_ctr) == (0.1, 0.05)


def test_counters_that_went_down_are_no_interval():
    assert observation_between({"impressions.head": 100}, {"impressions.head": 5}) is None


def test_the_cli_prints_the_state_from_the_state_file(app, tmp_path):
    decision = decided(app)
    env = {"SEARCH_RERANK_EXPOSURE_CONTROL__STATE_PATH": str(tmp_path / "control" / "state.json")}
    result = CliRunner().invoke(main, ["exposure-control"], env=env)
    assert result.exit_code == 0, result.output
    state = json.loads(result.output)
    assert state["strength"] == decision.strength
    assert state["decision"]["action"] == UP


def test_the_cli_asks_a_running_server_with_the_admin_token(app):
    decision = decided(app)
    with served(app) as url:
        result = CliRunner().invoke(main, ["exposure-control", "--url", url], env={"SEARCH_RERANK_ADMIN_TOKEN": TOKEN})
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["strength"] == decision.strength


def test_the_cli_without_a_state_file_or_a_server_says_what_to_name(tmp_path):
    result = CliRunner().invoke(main, ["exposure-control"], env={"SEARCH_RERANK_EXPOSURE_CONTROL__STATE_PATH": None})
    assert result.exit_code == 1
    assert "--url" in result.output


def test_a_strength_out_of_bounds_in_the_state_file_is_ignored(app, tmp_path):
    served_before = app.config["SETTINGS"].longtail.strength
    (tmp_path / "control" / "state.json").write_text(json.dumps({"strength": 99.0}))
    app.extensions["exposure_control"].adopt()
    assert app.config["SETTINGS"].longtail.strength == served_before
