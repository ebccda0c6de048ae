"""``search-rerank profiles build`` replays the UBI log into the store: the profiles the service built online."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.profile import user_key
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


def test_profiles_build_of_a_missing_log_is_a_one_line_error(logged, tiny_bert_dir, tmp_path):
    settings, _ = logged
    result = build(settings, tmp_path / "nowhere", tiny_bert_dir, tmp_path / "x.sqlite3")
    assert result.exit_code == 1 and "no such UBI log" in result.output
