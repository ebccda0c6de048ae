"""``search-rerank profiles build`` replays the UBI log into the store: the profiles the service built online."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.profile import session_key, user_key
from search_rerank.core.profile_store import SQLiteProfileStore
from search_rerank.serving import create_app

TTL_S = 10 * 365 * 86400.0


@pytest.fixture
def logged(settings, pipeline, tmp_path):
    """A service with a UBI log and a profile store in tmp_path, after a shopper's clicks and purchases.

    The events are of 2023, so the service keeps profiles as long as the rebuild below does (``TTL_S``): with
    the default TTL its hourly purge removes them, as it should, before the test compares."""
    service = settings.service.model_copy(update={"ubi_log_path": tmp_path / "ubi" / "ubi.ndjson"})
    personal = settings.personalisation.model_copy(update={"store_path": tmp_path / "online.sqlite3", "ttl_s": TTL_S})
    app_settings = settings.model_copy(update={"service": service, "personalisation": personal})
    client = create_app(app_settings, pipeline).test_client()
    hits = client.post("/search", json={"query": "sofa", "size": 5}).get_json()["hits"]
    events = [
        {
            "action_name": action,
            "user_id": "u-cli",
            "session_id": "s-cli",
            "timestamp": 1_700_000_000_000 + i * 60_000,
            "event_attributes": {"object": {"object_id": hit["id"]}, "position": {"ordinal": i}},
        }
        for i, (hit, action) in enumerate(zip(hits, ["click", "purchase", "add_to_cart", "impression", "click"]))
    ]
    assert client.post("/ubi/events", json=events).status_code == 200
    return app_settings, tmp_path


def build(settings, tmp_path, tiny_bert_dir, store_path, *args):
    env = {
        "SEARCH_RERANK_DENSE__MODEL": str(tiny_bert_dir),
        "SEARCH_RERANK_DENSE__DEVICE": "cpu",
        "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(store_path),
        "SEARCH_RERANK_PERSONALISATION__TTL_S": str(TTL_S),
    }
    pattern = str(tmp_path / "ubi" / "ubi.*.ndjson")
    return CliRunner().invoke(
        main, ["--index-dir", str(settings.index_dir), "profiles", "build", "--ubi", pattern, *args], env=env
    )


def test_profiles_build_replays_the_log_into_the_profiles_the_service_built(logged, tiny_bert_dir):
    settings, tmp_path = logged
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "4 shopper event(s) read" in result.output
    online = SQLiteProfileStore(tmp_path / "online.sqlite3").get_many([user_key("u-cli")])[user_key("u-cli")]
    rebuilt = SQLiteProfileStore(tmp_path / "rebuilt.sqlite3").get_many([user_key("u-cli")])[user_key("u-cli")]
    assert rebuilt.affinities == online.affinities
    assert rebuilt.events == online.events == pytest.approx(4.0, abs=0.01)
    assert rebuilt.vector is not None and online.vector is not None
    assert rebuilt.vector.tolist() == online.vector.tolist()


def test_profiles_build_reads_a_log_holding_the_query_records_a_front_end_sent(logged, pipeline, tiny_bert_dir):
    """What the UBI JavaScript client's trackQuery posts (see test_ubi_queries), beside the shopper's events."""
    settings, tmp_path = logged
    tracked = {"application": "shop", "query_id": "qid-1", "client_id": None, "user_query": "sofa", "message": "m"}
    assert create_app(settings, pipeline).test_client().post("/ubi_queries", json=[tracked]).status_code == 200
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "4 shopper event(s) read" in result.output


def test_profiles_build_of_a_missing_log_is_a_one_line_error(logged, tiny_bert_dir, tmp_path):
    settings, _ = logged
    result = build(settings, tmp_path / "nowhere", tiny_bert_dir, tmp_path / "x.sqlite3")
    assert result.exit_code == 1 and "no such UBI log" in result.output


def test_profiles_build_of_a_log_in_epoch_seconds_says_they_are_read_as_milliseconds(logged, tiny_bert_dir):
    settings, tmp_path = logged
    seconds = {
        "action_name": "click",
        "user_id": "u-seconds",
        "timestamp": 1_700_000_000,
        "event_attributes": {"object": {"object_id": "anything"}},
    }
    (tmp_path / "ubi" / "ubi.seconds.ndjson").write_text(json.dumps(seconds) + "\n")
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "epoch seconds" not in result.output  # the service's own events are in milliseconds
    for log in (tmp_path / "ubi").glob("ubi.[0-9]*.ndjson"):
        log.unlink()
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "newest event is of 1970-01-20" in result.output and "epoch seconds" in result.output


TOKEN = "forget-token"


def forget_through_the_service(settings, pipeline, monkeypatch, user_id: str = "u-cli"):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    client = create_app(settings, pipeline).test_client()
    response = client.delete(f"/profiles/{user_id}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.get_json()
    return client


def rebuilt_profiles(tmp_path) -> dict:
    return SQLiteProfileStore(tmp_path / "rebuilt.sqlite3").get_many([user_key("u-cli"), session_key("s-cli")])


def test_a_shopper_forgotten_by_the_service_is_not_brought_back_by_a_rebuild_from_older_logs(
    logged, pipeline, tiny_bert_dir, monkeypatch
):
    settings, tmp_path = logged
    forget_through_the_service(settings, pipeline, monkeypatch)
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "4 event(s) of forgotten shoppers left out" in " ".join(result.output.split())
    assert rebuilt_profiles(tmp_path) == {}  # neither the shopper nor the session they owned


def test_a_forgotten_shoppers_events_after_the_forget_are_replayed(logged, pipeline, tiny_bert_dir, monkeypatch):
    settings, tmp_path = logged
    client = forget_through_the_service(settings, pipeline, monkeypatch)
    hit = client.post("/search", json={"query": "sofa", "size": 1}).get_json()["hits"][0]
    later = {
        "action_name": "purchase",
        "user_id": "u-cli",
        "timestamp": int(time.time() * 1000) + 1000,
        "event_attributes": {"object": {"object_id": hit["id"]}},
    }
    assert client.post("/ubi/events", json=later).status_code == 200
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert rebuilt_profiles(tmp_path)[user_key("u-cli")].events == pytest.approx(1.0, abs=0.01)


def purchase_of_the_top_sofa(client, user_id: str, timestamp_ms: int) -> dict:
    hit = client.post("/search", json={"query": "sofa", "size": 1}).get_json()["hits"][0]
    return {
        "action_name": "purchase",
        "user_id": user_id,
        "timestamp": timestamp_ms,
        "event_attributes": {"object": {"object_id": hit["id"]}},
    }


def test_an_event_sent_before_the_forget_stays_forgotten_whatever_time_its_client_wrote(
    logged, pipeline, tiny_bert_dir, monkeypatch
):
    # A front end's clock an hour fast (or a time zone sent as UTC) dates the event after the forget that
    # follows it; the rebuild orders them by when the service received each, not by the client's clock.
    settings, tmp_path = logged
    client = create_app(settings, pipeline).test_client()
    an_hour_ahead = int(time.time() * 1000) + 3_600_000
    assert client.post("/ubi/events", json=purchase_of_the_top_sofa(client, "u-cli", an_hour_ahead)).status_code == 200
    forget_through_the_service(settings, pipeline, monkeypatch)
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert rebuilt_profiles(tmp_path) == {}


def test_an_event_received_after_the_forget_counts_in_the_rebuild_as_it_did_online(
    logged, pipeline, tiny_bert_dir, monkeypatch
):
    # A front end's queued retry arrives after the forget with its old time: the service applied it to a new
    # profile then, and the rebuild must build the same profile rather than drop it.
    settings, tmp_path = logged
    client = forget_through_the_service(settings, pipeline, monkeypatch)
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    assert client.post("/ubi/events", json=purchase_of_the_top_sofa(client, "u-cli", an_hour_ago)).status_code == 200
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert rebuilt_profiles(tmp_path)[user_key("u-cli")].events == pytest.approx(1.0, abs=0.01)


def test_profiles_forget_on_the_command_line_keeps_the_shopper_out_of_a_rebuild(logged, tiny_bert_dir):
    settings, tmp_path = logged
    env = {"SEARCH_RERANK_SERVICE__UBI_LOG_PATH": str(settings.service.ubi_log_path)}
    store = ["--index-dir", str(settings.index_dir)]
    forgot = CliRunner().invoke(main, [*store, "profiles", "forget", "u-cli"], env=env)
    assert forgot.exit_code == 0, forgot.output
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert rebuilt_profiles(tmp_path) == {}


def test_a_front_end_cannot_send_the_forget_record_as_an_event(logged, pipeline):
    settings, _ = logged
    client = create_app(settings, pipeline).test_client()
    response = client.post("/ubi/events", json={"action_name": "forget_shopper", "user_id": "someone-else"})
    assert response.status_code == 400
    assert "action_name" in response.get_data(as_text=True)


def test_profiles_forget_of_an_id_no_event_can_name_is_refused_and_leaves_the_log_rebuildable(logged, tiny_bert_dir):
    # An e-mail address is not an id a UBI event or a profile can have: recording its forget in the log made
    # every later profiles build stop at that line.
    settings, tmp_path = logged
    env = {"SEARCH_RERANK_SERVICE__UBI_LOG_PATH": str(settings.service.ubi_log_path)}
    store = ["--index-dir", str(settings.index_dir)]
    forgot = CliRunner().invoke(main, [*store, "profiles", "forget", "jane doe@example.com"], env=env)
    assert forgot.exit_code != 0 and "user_id must match" in forgot.output
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output


def test_a_forget_is_not_rotated_out_of_the_log_before_the_events_it_keeps_out_of_a_rebuild(
    logged, pipeline, tiny_bert_dir, monkeypatch
):
    # The shopper's events are in the file of a worker since restarted (gunicorn's max_requests), which nobody
    # writes, so it never rotates; the forget goes to a live worker's file, whose rotation drops its oldest lines.
    settings, tmp_path = logged
    [events_file] = (tmp_path / "ubi").glob("ubi.*.ndjson")
    events_file.rename(tmp_path / "ubi" / "ubi.1.ndjson")
    rotating = settings.service.model_copy(update={"ubi_log_max_bytes": 1024, "ubi_log_backups": 1})
    client = forget_through_the_service(settings.model_copy(update={"service": rotating}), pipeline, monkeypatch)
    for _ in range(20):
        assert client.post("/search", json={"query": "sofa", "size": 5}).status_code == 200
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert rebuilt_profiles(tmp_path) == {}


def test_profiles_build_leaves_out_events_dated_further_ahead_than_the_service_takes(logged, tiny_bert_dir):
    # A log the service did not write (an OpenSearch UBI export from a front end with its clock a year fast): such
    # an event would date the profile a year ahead, which then neither decays nor expires until that year.
    settings, tmp_path = logged
    [logged_file] = (tmp_path / "ubi").glob("ubi.*.ndjson")
    product = next(json.loads(line) for line in logged_file.read_text().splitlines() if "user_id" in line)
    ahead = {**product, "user_id": "u-ahead", "session_id": "s-ahead", "timestamp": "2099-01-01T00:00:00Z"}
    ahead.pop("received_at")
    (tmp_path / "ubi" / "ubi.export.ndjson").write_text(json.dumps(ahead) + "\n")
    result = build(settings, tmp_path, tiny_bert_dir, tmp_path / "rebuilt.sqlite3")
    assert result.exit_code == 0, result.output
    assert "1 event(s) dated more than a day ahead left out" in " ".join(result.output.split())
    assert SQLiteProfileStore(tmp_path / "rebuilt.sqlite3").get_many([user_key("u-ahead")]) == {}


def test_profiles_build_keeps_no_more_than_max_profiles_the_sessions_removed_first(logged, tiny_bert_dir, monkeypatch):
    settings, tmp_path = logged
    store_path = tmp_path / "rebuilt.sqlite3"
    monkeypatch.setenv("SEARCH_RERANK_PERSONALISATION__MAX_PROFILES", "1")
    result = build(settings, tmp_path, tiny_bert_dir, store_path)
    assert result.exit_code == 0, result.output
    assert "1 profile(s) past the TTL or max_profiles removed" in result.output
    store = SQLiteProfileStore(store_path)
    assert set(store.get_many([user_key("u-cli"), session_key("s-cli")])) == {user_key("u-cli")}
    store.close()
