"""Probe tests of the service's own JSON API (POST /search, /ubi/events, /ubi_queries, /products/{id}/similar|also,
DELETE /profiles/{id}): each is one root cause a mutation fuzzer found, asserting the behaviour the API promises."""

from __future__ import annotations

from search_rerank.serving import create_app


def test_a_batch_of_events_answered_accepted_is_all_in_the_log_even_when_it_spans_rotations(settings, pipeline, tmp_path):
    """``accepted`` means written (serving.search_api.ubi_events); UbiLog.write promises to keep every record it is
    given or raise. With a small rotation size (ubi_log_max_bytes >= 1024 and ubi_log_backups >= 0 are both valid
    settings) one 40-event batch rotates the file several times inside a single write, and the rotations drop the
    batch's own earlier lines: 40 accepted, 4 kept."""
    log_path = tmp_path / "ubi" / "ubi.ndjson"
    service = settings.service.model_copy(
        update={"ubi_log_path": log_path, "ubi_log_max_bytes": 1024, "ubi_log_backups": 1}
    )
    client = create_app(settings.model_copy(update={"service": service}), pipeline).test_client()
    events = [{"action_name": "search", "query_id": f"q-{i}", "message": "m" * 300} for i in range(40)]

    response = client.post("/ubi/events", json=events)

    if response.status_code == 200:
        assert response.get_json() == {"accepted": 40}
        kept = [line for path in log_path.parent.iterdir() for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(kept) == 40, f"{len(kept)} of 40 accepted events are in the UBI log"
    else:  # refusing the batch (a 503 to send again, or a 413/400 naming it) is also a kept promise
        assert response.status_code in (400, 413, 503)
