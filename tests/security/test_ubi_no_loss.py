"""No UBI event is accepted and then lost: ``accepted`` means the event is in the file, read back here.

What cannot be written (a lone surrogate, attributes nested past the limit)
is refused before ``accepted``; a log that fails at write time (a full disk:
the file is a link to ``/dev/full``) makes ``/ubi/events`` a 503, and a
search an answer flagged ``degraded.ubi``, never a line on stderr.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from small_service import small_app, small_index

from search_rerank.core.reasons import UBI_WRITE_FAILED
from search_rerank.serving.ubi import UbiEvent, UbiLog, UbiWriteError

DISK_FULL = Path("/dev/full")


@pytest.fixture(scope="module")
def no_loss_settings(tmp_path_factory, tiny_bert_dir):
    return small_index(tmp_path_factory.mktemp("no_loss"), tiny_bert_dir)


@pytest.fixture
def ubi_dir(tmp_path) -> Path:
    return tmp_path / "ubi"


@pytest.fixture
def no_loss_client(no_loss_settings, ubi_dir):
    app, pipeline = small_app(no_loss_settings, ubi_log_path=ubi_dir / "ubi.ndjson")
    yield app.test_client()
    app.extensions["ubi_log"].close()
    pipeline.close()


@pytest.fixture
def full_disk(ubi_dir) -> Path:
    """This process's UBI file made a link to /dev/full, where every write fails with ENOSPC."""
    if not DISK_FULL.exists():
        pytest.skip("no /dev/full here")
    ubi_dir.mkdir(parents=True, exist_ok=True)
    link = ubi_dir / f"ubi.{os.getpid()}.ndjson"
    link.symlink_to(DISK_FULL)
    return link


def logged(ubi_dir: Path) -> list[dict]:
    """Every record in every UBI file, rotated ones included."""
    return [
        json.loads(line)
        for path in sorted(ubi_dir.glob("ubi.*.ndjson*"))
        for line in path.read_text(encoding="utf-8").splitlines()
    ]


def post_text(client, path: str, text: str):
    return client.post(path, data=text, content_type="application/json")


def nested(levels: int, leaf: object) -> object:
    for _ in range(levels):
        leaf = {"a": leaf}
    return leaf


def event(n: int, **fields) -> dict:
    return {"action_name": "add_to_cart", "query_id": f"q-{n}", "client_id": "c-1", **fields}


def test_every_accepted_event_is_in_the_log(no_loss_client, ubi_dir):
    events = [
        event(0, user_query="sofa"),
        event(1, user_query="\U0001f6cb\ufe0f canapé 沙发", message='quoted "line"\nand a second'),
        event(2, event_attributes={"cart": {"items": [1, 2.5, None, True]}, "note": "\\u0000"}),
        event(3, event_attributes=nested(40, "deep")),
        event(4, timestamp=1_700_000_000_000, user_query="x" * 5000),
    ]
    batch = no_loss_client.post("/ubi/events", json=events[1:])
    single = no_loss_client.post("/ubi/events", json=events[0])
    assert (single.get_json(), batch.get_json()) == ({"accepted": 1}, {"accepted": 4})
    by_id = {record["query_id"]: record for record in logged(ubi_dir)}
    for sent in events:
        kept = by_id[sent["query_id"]]
        assert {key: kept[key] for key in sent} == sent


def test_every_accepted_query_record_a_front_end_sent_is_in_the_log(no_loss_client, ubi_dir):
    queries = [
        {"query_id": "fq-0", "user_query": "\U0001f6cb\ufe0f canapé 沙发", "message": 'quoted "line"\nand a second'},
        {"query_id": "fq-1", "user_query": "lamp", "query_attributes": nested(40, [1, 2.5, None, True])},
        {"query_id": "fq-2", "user_query": "rug", "timestamp": 1_700_000_000_000, "query_response_hit_ids": ["p-1"]},
    ]
    assert no_loss_client.post("/ubi_queries", json=queries).get_json()["accepted"] == 3
    by_id = {record["query_id"]: record for record in logged(ubi_dir)}
    for sent in queries:
        assert {key: by_id[sent["query_id"]][key] for key in sent} == sent


def test_every_search_answered_has_its_query_record(no_loss_client, ubi_dir):
    answered = [
        no_loss_client.post("/search", json={"query": "sofa \U0001f6cb"}).headers["X-Query-Id"],
        no_loss_client.post("/_search", json={"query": {"match": {"title": "lamp"}}}).headers["X-Query-Id"],
    ]
    assert {r["query_id"] for r in logged(ubi_dir) if "user_query" in r and "action_name" not in r} == set(answered)


def test_a_lone_surrogate_in_an_event_is_a_400_and_nothing_is_written(no_loss_client, ubi_dir):
    response = post_text(no_loss_client, "/ubi/events", '{"action_name": "search", "user_query": "\\ud800"}')
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "user_query"
    assert logged(ubi_dir) == []


def test_one_unwritable_event_refuses_the_whole_batch(no_loss_client, ubi_dir):
    body = json.dumps([event(0, user_query="sofa"), event(1)])[:-2] + ', "message": "\\udc00"}]'
    response = post_text(no_loss_client, "/ubi/events", body)
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "[1].message"
    assert logged(ubi_dir) == []


def test_event_attributes_nested_past_the_limit_are_a_400_and_nothing_is_written(no_loss_client, ubi_dir):
    body = '{"action_name": "search", "event_attributes": ' + '{"a": ' * 900 + "1" + "}" * 900 + "}"
    response = post_text(no_loss_client, "/ubi/events", body)
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"].startswith("event_attributes.a.a.a")
    assert logged(ubi_dir) == []


@pytest.mark.parametrize(
    "path, body",
    [
        ("/search", '{"query": "sofa \\udfff"}'),
        ("/_search", '{"query": {"match": {"title": "sofa \\ud800"}}}'),
        ("/_search", '{"query": {"match": {"title": "sofa"}}, "ext": {"ubi": {"user_query": "\\udbff"}}}'),
    ],
)
def test_a_search_that_could_not_be_logged_is_a_400_and_nothing_is_written(no_loss_client, ubi_dir, path, body):
    assert post_text(no_loss_client, path, body).status_code == 400
    assert logged(ubi_dir) == []


def test_events_the_log_cannot_write_are_a_503_not_accepted(no_loss_client, full_disk):
    response = no_loss_client.post("/ubi/events", json=[event(0), event(1)])
    assert response.status_code == 503
    assert response.get_json()["reason"] == UBI_WRITE_FAILED
    assert "accepted" not in response.get_json()


def test_events_the_log_cannot_write_say_when_to_send_them_again(no_loss_client, full_disk):
    response = no_loss_client.post("/ubi/events", json=event(0))
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1


@pytest.mark.parametrize("path", ["/ubi_queries", "/ubi/queries"])
def test_query_records_the_log_cannot_write_are_a_503_saying_when_to_send_them_again(no_loss_client, full_disk, path):
    response = no_loss_client.post(path, json=[{"query_id": "fq-1", "user_query": "sofa"}])
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1
    assert response.get_json()["reason"] == UBI_WRITE_FAILED
    assert "accepted" not in response.get_json()


def test_events_refused_on_a_full_disk_never_turn_up_later(no_loss_client, full_disk, ubi_dir):
    assert no_loss_client.post("/ubi/events", json=event(0)).status_code == 503
    full_disk.unlink()  # space again
    assert no_loss_client.post("/ubi/events", json=event(1)).get_json() == {"accepted": 1}
    assert [record["query_id"] for record in logged(ubi_dir)] == ["q-1"]


@pytest.mark.parametrize(
    "path, body, degraded",
    [
        ("/search", {"query": "sofa"}, lambda b: b["degraded"]),
        ("/_search", {"query": {"match": {"title": "sofa"}}}, lambda b: b["search_rerank"]["degraded"]),
    ],
)
def test_a_search_whose_record_cannot_be_written_is_answered_and_flagged(
    no_loss_client, full_disk, path, body, degraded
):
    response = no_loss_client.post(path, json=body)
    assert response.status_code == 200
    assert degraded(response.get_json()) == {"ubi": UBI_WRITE_FAILED}


@pytest.mark.parametrize(
    "path, body, degraded",
    [
        ("/search", {"query": "sofa"}, lambda b: b["degraded"]),
        ("/_search", {"query": {"match": {"title": "sofa"}}}, lambda b: b["search_rerank"]["degraded"]),
    ],
)
def test_the_same_search_once_the_log_is_writable_again_is_not_flagged(no_loss_client, full_disk, path, body, degraded):
    assert degraded(no_loss_client.post(path, json=body).get_json()) == {"ubi": UBI_WRITE_FAILED}
    full_disk.unlink()  # the disk has room again
    repeated = no_loss_client.post(path, json=body).get_json()
    assert degraded(repeated) == {}


@pytest.mark.parametrize("clean_up", ["delete", "move"])
def test_events_accepted_after_the_log_file_was_deleted_or_moved_away_are_in_the_file_at_its_path(
    no_loss_client, ubi_dir, clean_up
):
    """A log shipper's clean-up or logrotate takes the file away under a running worker: the worker wrote on into
    the file it still held, which no one would read, and answered those events accepted."""
    assert no_loss_client.post("/ubi/events", json=event(0)).get_json() == {"accepted": 1}
    [written] = ubi_dir.glob("ubi.*.ndjson")
    if clean_up == "delete":
        written.unlink()
    else:
        written.rename(ubi_dir.parent / "shipped.ndjson")
    assert no_loss_client.post("/ubi/events", json=event(1)).get_json() == {"accepted": 1}
    assert [record["query_id"] for record in logged(ubi_dir)] == ["q-1"]


def test_the_ubi_log_raises_when_the_disk_is_full(full_disk):
    log = UbiLog(full_disk.parent / "ubi.ndjson", max_bytes=1 << 20, backups=1)
    try:
        with pytest.raises(UbiWriteError, match="No space left"):
            log.write([UbiEvent(action_name="search", query_id="q-1")])
    finally:
        log.close()


def test_a_forget_the_disk_cannot_take_raises(ubi_dir):
    if not DISK_FULL.exists():
        pytest.skip("no /dev/full here")
    log = UbiLog(ubi_dir / "ubi.ndjson", max_bytes=1 << 20, backups=1)
    ubi_dir.mkdir(parents=True)
    log.forgets_file.symlink_to(DISK_FULL)
    with pytest.raises(UbiWriteError, match="No space left"):
        log.record_forget("u-1", "shop")
