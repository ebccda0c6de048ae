"""The exposure controller under gunicorn (two workers): one worker decides from every worker's searches, and
each worker serves the strength it decided."""

import time

import pytest
import requests
from live_server import gunicorn_served, index_env

TOKEN = "exposure-gunicorn"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture(scope="module")
def server(index_settings, tmp_path_factory):
    root = tmp_path_factory.mktemp("gunicorn-exposure")
    control = {
        "ENABLED": "true",
        "TARGET_LOW": "0.9",  # more tail than any search shows: every interval with searches moves up
        "TARGET_HIGH": "1.0",
        "MIN_IMPRESSIONS": "1",
        "INTERVAL_S": "1",
        "GAIN": "10",
        "MAX_STEP": "0.05",
        "MAX_STRENGTH": "5",
    }
    env = {
        **index_env(index_settings),
        "SEARCH_RERANK_SERVICE__WORKERS": "2",
        "SEARCH_RERANK_SERVICE__THREADS": "2",
        "SEARCH_RERANK_SERVICE__CACHE_SIZE": "0",
        "SEARCH_RERANK_LONGTAIL__STRENGTH": "0.1",
        "SEARCH_RERANK_ADMIN_TOKEN": TOKEN,
        **{f"SEARCH_RERANK_EXPOSURE_CONTROL__{key}": value for key, value in control.items()},
    }
    with gunicorn_served(env, root) as server:
        yield server


def states(url, tries=40):
    """The admin state as each worker answers it, by pid (requests land on either worker)."""
    seen = {}
    for _ in range(tries):
        body = requests.get(f"{url}/admin/exposure-control", headers=ADMIN, timeout=10).json()
        seen[body["pid"]] = body
    return seen


def test_decisions_from_all_workers_searches_reach_every_worker(server):
    url = server["url"]
    deadline = time.monotonic() + 120
    moved = False
    while not moved and time.monotonic() < deadline:
        requests.post(f"{url}/search", json={"query": "chair", "size": 10}, timeout=30)
        shared = requests.get(f"{url}/admin/exposure-control", headers=ADMIN, timeout=10).json()["shared"]
        moved = shared.get("strength", 0.1) >= 0.2  # two moves up at least
    assert moved, "the searches moved the shared strength"
    # No searches now: every interval holds (too few impressions); wait until both workers agree with the shared one.
    deadline = time.monotonic() + 120
    while True:
        seen = states(url)
        shared = next(iter(seen.values()))["shared"]
        agreed = len(seen) == 2 and all(state["strength"] == shared["strength"] for state in seen.values())
        if agreed or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert len(seen) == 2, "both workers answered"
    assert shared["strength"] >= 0.2
    assert all(state["strength"] == shared["strength"] for state in seen.values())
    assert sum(state["leader"] for state in seen.values()) == 1
