"""Personalisation in the service: identity on requests, events into profiles, forgetting, failing open."""

from __future__ import annotations

import logging
import os
import time

import pytest
from prometheus_client import REGISTRY
from servers import frozen, start_osmem

from search_rerank.core.personalise import DISABLED, NO_PROFILE
from search_rerank.serving import create_app, profiles_api

TOKEN = "forget-token"
SHOPPER = "shopper-5d1e77"


@pytest.fixture
def client(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    return create_app(personal_settings, pipeline).test_client()


def search(client, **identity):
    response = client.post("/search", json={"query": "sofa", "size": 10, "explain": True, **identity})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body):
    return [hit["id"] for hit in body["hits"]]


def purchase(product_id, user=SHOPPER, session="sess-1", action="purchase"):
    event = {
        "action_name": action,
        "event_attributes": {"object": {"object_id": product_id, "object_id_field": "id"}},
    }
    if user is not None:
        event["user_id"] = user
    if session is not None:
        event["session_id"] = session
    return event


def buy(client, product_id, times=3, **who):
    response = client.post("/ubi/events", json=[purchase(product_id, **who) for _ in range(times)])
    assert response.status_code == 200, response.get_json()


def counter(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_an_anonymous_search_is_ranked_as_without_personalisation(client, personal_settings, pipeline):
    body = search(client)
    off = personal_settings.model_copy(
        update={"personalisation": personal_settings.personalisation.model_copy(update={"enabled": False})}
    )
    plain = create_app(off, pipeline).test_client().post("/search", json={"query": "sofa", "size": 10}).get_json()
    assert body["skipped"]["personal"] == NO_PROFILE
    assert ids(body) == ids(plain)


def test_purchases_posted_as_events_lift_that_brand_in_the_shoppers_next_search(client):
    before = search(client, user_id=SHOPPER)
    target = before["hits"][-1]["id"]
    buy(client, target)
    after = search(client, user_id=SHOPPER)
    assert "personal" not in after["skipped"]
    assert ids(after).index(target) < len(before["hits"]) - 1
    assert next(h for h in after["hits"] if h["id"] == target)["explanation"]["personal"] > 0


def test_add_to_carts_spelt_in_camel_case_count_in_the_shoppers_profile(client):
    """``addToCart`` is the ``add_to_cart`` of personalisation.action_weights, however a front end spells it."""
    target = search(client, user_id=SHOPPER)["hits"][-1]["id"]
    buy(client, target, action="addToCart")
    after = search(client, user_id=SHOPPER)
    assert next(h for h in after["hits"] if h["id"] == target)["explanation"]["personal"] > 0


def test_a_session_profile_personalises_the_sessions_next_search(client):
    target = search(client, session_id="sess-9")["hits"][-1]["id"]
    buy(client, target, user=None, session="sess-9")
    after = search(client, session_id="sess-9")
    assert ids(after).index(target) < 9


def test_a_cold_shopper_is_ranked_as_anonymous_and_told_why(client):
    anonymous = search(client)
    target = anonymous["hits"][-1]["id"]
    buy(client, target, times=1)
    body = search(client, user_id=SHOPPER)
    assert body["skipped"]["personal"].startswith("cold shopper")
    assert ids(body) == ids(anonymous)


def test_the_elasticsearch_endpoint_reads_the_shopper_from_the_identity_headers(client):
    query = {"query": {"match": {"title": "sofa"}}, "size": 10}
    before = client.post("/products/_search", json=query).get_json()
    target = before["hits"]["hits"][-1]["_id"]
    buy(client, target)
    after = client.post("/products/_search", json=query, headers={"X-Search-Rerank-User": SHOPPER}).get_json()
    assert "personal" not in after["search_rerank"]["skipped"]
    assert [h["_id"] for h in after["hits"]["hits"]].index(target) < 9


def test_an_identity_header_that_is_not_an_id_is_a_400_naming_it(client):
    response = client.post(
        "/products/_search", json={"query": {"match_all": {}}}, headers={"X-Search-Rerank-User": "a b/../c"}
    )
    assert response.status_code == 400
    assert "X-Search-Rerank-User" in response.get_data(as_text=True)


def test_empty_identity_headers_are_an_anonymous_search(client):
    """A front end that adds the headers for every shopper sends them empty for one not signed in."""
    query = {"query": {"match": {"title": "sofa"}}, "size": 10}
    anonymous = client.post("/products/_search", json=query).get_json()
    empty = {"X-Search-Rerank-User": "", "X-Search-Rerank-Session": ""}
    response = client.post("/products/_search", json=query, headers=empty)
    assert response.status_code == 200
    assert response.get_json()["search_rerank"]["skipped"]["personal"] == NO_PROFILE
    assert [h["_id"] for h in response.get_json()["hits"]["hits"]] == [h["_id"] for h in anonymous["hits"]["hits"]]


def test_an_empty_user_id_is_an_anonymous_search(client):
    body = client.post("/search", json={"query": "sofa", "size": 10, "user_id": "", "session_id": ""}).get_json()
    assert body["skipped"]["personal"] == NO_PROFILE
    assert ids(body) == ids(search(client))


def test_a_user_id_that_is_not_an_id_is_a_400_naming_the_field(client):
    response = client.post("/search", json={"query": "sofa", "user_id": "no spaces allowed"})
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "user_id"


def test_forgetting_needs_the_admin_token(client):
    assert client.delete(f"/profiles/{SHOPPER}").status_code == 401
    assert client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": "Bearer wrong"}).status_code == 401


def test_forgetting_a_shopper_leaves_no_trace_in_the_store_file(client, personal_settings):
    buy(client, search(client)["hits"][0]["id"], user=SHOPPER, session=f"sess-{SHOPPER}")
    response = client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200 and response.get_json() == {"forgotten": 2}
    path = personal_settings.personalisation.store_path
    on_disk = b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))
    assert SHOPPER.encode() not in on_disk
    assert search(client, user_id=SHOPPER)["skipped"]["personal"] == NO_PROFILE


def test_forgetting_a_shopper_leaves_no_trace_of_them_in_the_access_log(client, caplog):
    caplog.set_level(logging.INFO, logger="search_rerank.access")
    client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": f"Bearer {TOKEN}"})
    client.delete(f"/profiles/{SHOPPER}")  # refused, logged all the same
    lines = [r for r in caplog.records if r.name == "search_rerank.access"]
    assert len(lines) == 2 and SHOPPER not in caplog.text
    assert {r.fields["path"] for r in lines} == {"/profiles/{user_id}"}


def test_a_store_that_cannot_be_reached_leaves_the_search_unpersonalised_and_counted(personal_settings, pipeline):
    unreachable = personal_settings.model_copy(
        update={
            "lexical": personal_settings.lexical.model_copy(
                update={"url": "http://127.0.0.1:9", "retries": 0, "request_timeout_s": 2}
            ),
            "personalisation": personal_settings.personalisation.model_copy(update={"store": "opensearch"}),
        }
    )
    client = create_app(unreachable, pipeline).test_client()
    failed = counter("search_rerank_profile_store_errors_total", operation="read")
    body = search(client, user_id=SHOPPER)
    assert body["degraded"]["personal"] == "profile_store_unavailable" and "personal" not in body["skipped"]
    assert ids(body) == ids(search(client))
    assert counter("search_rerank_profile_store_errors_total", operation="read") == failed + 1


def test_a_store_that_did_not_open_is_flagged_and_tried_again_until_it_opens(
    personal_settings, pipeline, tmp_path, monkeypatch
):
    """A worker whose store failed at start (here: its directory is a file) must not serve unpersonalised for
    good: searches say why, and the store is opened as soon as it can be."""
    blocker = tmp_path / "blocker"
    blocker.write_text("not a directory")
    blocked = personal_settings.model_copy(
        update={
            "personalisation": personal_settings.personalisation.model_copy(
                update={"store_path": blocker / "p.sqlite3"}
            )
        }
    )
    monkeypatch.setattr(profiles_api, "REOPEN_EVERY_S", 0.0)
    client = create_app(blocked, pipeline).test_client()
    before = search(client, user_id=SHOPPER)
    assert before["degraded"]["personal"] == "profile_store_unavailable"
    blocker.unlink()
    buy(client, before["hits"][-1]["id"])
    body = search(client, user_id=SHOPPER)
    assert "personal" not in body.get("degraded", {}) and "personal" not in body["skipped"]


def test_an_event_the_store_cannot_take_is_still_accepted_and_logged(personal_settings, pipeline):
    unreachable = personal_settings.model_copy(
        update={
            "lexical": personal_settings.lexical.model_copy(
                update={"url": "http://127.0.0.1:9", "retries": 0, "request_timeout_s": 2}
            ),
            "personalisation": personal_settings.personalisation.model_copy(update={"store": "opensearch"}),
        }
    )
    client = create_app(unreachable, pipeline).test_client()
    failed = counter("search_rerank_profile_store_errors_total", operation="write")
    response = client.post("/ubi/events", json=purchase(search(client)["hits"][0]["id"]))
    assert response.status_code == 200 and response.get_json() == {"accepted": 1}
    log_file = unreachable.service.ubi_log_path.with_name(f"ubi.{os.getpid()}.ndjson")
    assert SHOPPER in log_file.read_text(encoding="utf-8")
    assert counter("search_rerank_profile_store_errors_total", operation="write") == failed + 1


def test_a_store_that_does_not_answer_costs_a_search_no_more_than_the_read_timeout(personal_settings, pipeline):
    server = start_osmem()
    try:
        hanging = personal_settings.model_copy(
            update={
                "lexical": personal_settings.lexical.model_copy(
                    update={"url": server.url, "retries": 0, "request_timeout_s": 30}
                ),
                "personalisation": personal_settings.personalisation.model_copy(
                    update={"store": "opensearch", "profile_index": "profiles-frozen", "read_timeout_s": 0.3}
                ),
            }
        )
        client = create_app(hanging, pipeline).test_client()
        search(client)  # warm: the first search loads what the legs load once
        with frozen(server):
            started = time.perf_counter()
            body = search(client, user_id=SHOPPER)
            elapsed = time.perf_counter() - started
        assert body["degraded"]["personal"] == "timeout"
        # Held to the client's 30 s, the search would take 30 s; a loaded machine may take a few for the rest of it
        # (3 s was once too few beside a benchmark).
        assert elapsed < 10.0
    finally:
        server.close()


def test_a_store_that_keeps_timing_out_is_left_out_at_once_until_it_answers_again(personal_settings, pipeline):
    """Degrade, don't fail: after ``breaker.failures`` reads past their deadline the store is not called at
    all (a read would have been one more ``timeout``), and it is used again once it answers after the
    cool-down."""
    server = start_osmem()
    try:
        hanging = personal_settings.override(
            lexical={"url": server.url, "retries": 0, "request_timeout_s": 5},
            personalisation={"store": "opensearch", "profile_index": "profiles-breaker", "read_timeout_s": 0.3},
            # A cool-down far past a search on a loaded machine: with 1 s, a third search slower than that would
            # find the breaker half-open, try the frozen store again and answer "timeout" (the likely cause of a
            # failure seen once, on two busy test workers).
            breaker={"failures": 2, "cooldown_s": 15.0},
        )
        client = create_app(hanging, pipeline).test_client()
        buy(client, search(client)["hits"][-1]["id"])
        refused = counter("search_rerank_breaker_refused_total", dependency="profile_store")
        with frozen(server):
            # Two reads in a row past their deadline open the breaker. A loaded test worker twice answered the first
            # search after the freeze without a timeout (never reproduced alone), so the run is waited for.
            timed_out: list[str | None] = []
            while timed_out[-2:] != ["timeout", "timeout"]:
                assert len(timed_out) < 6, timed_out
                timed_out.append(search(client, user_id=SHOPPER).get("degraded", {}).get("personal"))
            left_out = search(client, user_id=SHOPPER)
        assert left_out.get("degraded", {}).get("personal") == "circuit_open", left_out
        assert counter("search_rerank_breaker_refused_total", dependency="profile_store") == refused + 1
        deadline = time.monotonic() + 60
        while "personal" in (body := search(client, user_id=SHOPPER)).get("degraded", {}):
            assert time.monotonic() < deadline, body["degraded"]
            time.sleep(0.2)
        assert "personal" not in body["skipped"]
    finally:
        server.close()


def test_a_request_may_turn_personalisation_off_for_itself(client):
    target = search(client)["hits"][-1]["id"]
    buy(client, target)
    body = search(client, user_id=SHOPPER, overrides={"personalisation": {"enabled": False}})
    assert body["skipped"]["personal"] == DISABLED


def test_a_forget_the_ubi_log_cannot_record_is_a_503_naming_the_ubi_log_and_keeps_the_profile(
    client, personal_settings
):
    buy(client, search(client)["hits"][0]["id"], user=SHOPPER)
    ubi_dir = personal_settings.service.ubi_log_path.parent
    for path in ubi_dir.iterdir():
        path.unlink()
    ubi_dir.rmdir()
    ubi_dir.write_text("a file where the log's folder was")  # as a full or read-only disk refuses the record
    client.application.extensions["ubi_log"].close()
    response = client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    body = response.get_json()
    assert body["reason"] == "ubi_write_failed" and str(ubi_dir) not in response.get_data(as_text=True)
    assert search(client, user_id=SHOPPER)["skipped"].get("personal") != NO_PROFILE  # not forgotten: try again


def test_forgetting_an_id_that_ends_in_a_newline_is_a_400(client):
    """No search or event can name such a shopper; recorded, the forget would be one for nobody."""
    response = client.delete("/profiles/abc%0A", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 400


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_admin_tokens_scheme_is_read_in_any_case(client, scheme):
    """An authentication scheme's name is case-insensitive (RFC 9110, 11.1)."""
    response = client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": f"{scheme} {TOKEN}"})
    assert response.status_code == 200


@pytest.mark.parametrize("authorization", [TOKEN, f"Basic {TOKEN}", f"ApiKey {TOKEN}", f"Bearer{TOKEN}"])
def test_the_admin_token_counts_only_under_the_bearer_scheme(client, authorization):
    """A bare token or one under another scheme is a 401, as a wrong token is: the client's mistake shows."""
    response = client.delete(f"/profiles/{SHOPPER}", headers={"Authorization": authorization})
    assert response.status_code == 401 and response.headers["WWW-Authenticate"] == "Bearer"
