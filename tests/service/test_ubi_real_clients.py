"""UBI events and forgets as real clients send them: queued retries, clocks ahead, UBI 1.3's internal_id, signed
and identity providers' ids, sign-outs, received_at sent by a front end, NDJSON, many workers at once.

Real components throughout: the app on the shared generated catalog (tantivy and the tiny encoder), a SQLite
profile store and a UBI log of the test's own (``personal_settings``).
"""

from __future__ import annotations

import json
import os
import threading
import time

import pytest

from search_rerank.core import profile_store
from search_rerank.core.profile import session_key, user_key
from search_rerank.core.profile_store import SQLiteProfileStore
from search_rerank.serving import create_app, profiles_api
from search_rerank.serving.identity import IDENTITY_KEY_VARIABLE, signed

TOKEN = "forget-token"
KEY = "k" * 40
FORGET = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def client(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    return create_app(personal_settings, pipeline).test_client()


@pytest.fixture
def signed_client(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, KEY)
    return create_app(personal_settings, pipeline).test_client()


def stored(settings, key):
    """The profile the store holds under ``key`` (None: none), read through a store of the test's own."""
    store = SQLiteProfileStore(settings.personalisation.store_path)
    try:
        return store.get_many([key]).get(key)
    finally:
        store.close()


def sofas(client):
    response = client.post("/search", json={"query": "sofa", "size": 10})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["hits"]


def purchase(product_id, user=None, session=None, **fields):
    event = {"action_name": "purchase", "event_attributes": {"object": {"object_id": product_id}}, **fields}
    if user is not None:
        event["user_id"] = user
    if session is not None:
        event["session_id"] = session
    return event


def iso(seconds_from_now: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + seconds_from_now))


def test_an_event_received_after_a_forget_updates_the_profile_online_as_the_rebuild_does(client, personal_settings):
    # A front end's queued retry arrives after the forget, stamped an hour before it: the service orders events and
    # forgets by when it received them, online as `profiles build` does (core.profile.RECEIVED_AT).
    target = sofas(client)[0]["id"]
    assert client.delete("/profiles/u-queued", headers=FORGET).status_code == 200
    an_hour_ago = int(time.time() * 1000) - 3_600_000
    response = client.post("/ubi/events", json=purchase(target, user="u-queued", timestamp=an_hour_ago))
    assert response.status_code == 200 and response.get_json() == {"accepted": 1}
    profile = stored(personal_settings, user_key("u-queued"))
    assert profile is not None and profile.events == pytest.approx(1.0, abs=0.01)


def test_events_after_one_stamped_hours_ahead_still_count_in_the_session_profile(client, personal_settings, pipeline):
    # Timestamps up to a day ahead are taken (clocks differ): an event counts as of when it was received at the
    # latest, so a profile is never dated ahead of the events after it.
    products = pipeline.store.get([hit["id"] for hit in sofas(client)])
    first = next(p for p in products.values() if p.brand)
    other = next(p for p in products.values() if p.brand and p.brand.lower() != first.brand.lower())
    skewed = [purchase(first.id, session="s-skew", timestamp=iso(20 * 3600))] * 3
    assert client.post("/ubi/events", json=skewed).status_code == 200
    now = [purchase(other.id, session="s-skew")] * 30
    assert client.post("/ubi/events", json=now).status_code == 200
    profile = stored(personal_settings, session_key("s-skew"))
    brands = profile.affinities["brand"]
    assert profile.events > 20
    assert brands.get(other.brand.lower(), 0.0) > brands[first.brand.lower()]


def test_an_event_naming_its_product_by_sku_and_internal_id_updates_the_shoppers_profile(client, personal_settings):
    # UBI 1.3.0: object_id is the value of the field object_id_field names (a SKU), internal_id the search
    # engine's own id: the catalog's.
    target = sofas(client)[-1]["id"]
    event = {
        "action_name": "purchase",
        "user_id": "u-sku",
        "event_attributes": {"object": {"object_id": "SKU-778-RED", "object_id_field": "sku", "internal_id": target}},
    }
    response = client.post("/ubi/events", json=[event] * 3)
    assert response.status_code == 200
    assert stored(personal_settings, user_key("u-sku")) is not None


def test_forgetting_a_signed_user_id_forgets_the_shopper_it_names(signed_client, personal_settings):
    # With SEARCH_RERANK_IDENTITY_KEY set, front ends send "<id>.<hmac>"; the store keys the id it verifies to.
    alice = signed(KEY, "alice")
    target = sofas(signed_client)[0]["id"]
    assert signed_client.post("/ubi/events", json=[purchase(target, user=alice)] * 3).status_code == 200
    assert stored(personal_settings, user_key("alice")) is not None
    response = signed_client.delete(f"/profiles/{alice}", headers=FORGET)
    assert response.status_code == 200 and response.get_json() == {"forgotten": 1}
    assert stored(personal_settings, user_key("alice")) is None


def test_an_identity_providers_user_id_is_a_shopper_with_a_profile(client, personal_settings):
    # Auth0's ids ("auth0|5f7c...", "google-oauth2|1049...") are what a shop's front end knows its shopper by.
    target = sofas(client)[0]["id"]
    event = purchase(target, user="auth0|5f7c8ec7c33c6c004bbafe82", session="s-auth0")
    response = client.post("/ubi/events", json=event)
    assert response.status_code == 200, response.get_json()
    assert stored(personal_settings, user_key("auth0|5f7c8ec7c33c6c004bbafe82")) is not None


def test_forgetting_a_shopper_removes_the_session_they_went_on_with_after_signing_out(
    client, personal_settings, tiny_bert_dir, tmp_path
):
    # A shopper buys signed in (user u-out, session s-out), signs out and goes on in the same session (no user_id),
    # then is forgotten: `profiles build` counts those events as the shopper's and leaves the session out
    # (clicks.without_forgotten), and so does the online store.
    from test_profiles_cli import build

    hits = sofas(client)
    signed_in = [purchase(hits[0]["id"], user="u-out", session="s-out")] * 3
    assert client.post("/ubi/events", json=signed_in).status_code == 200
    signed_out = [purchase(hits[1]["id"], session="s-out")] * 2
    assert client.post("/ubi/events", json=signed_out).status_code == 200
    assert client.delete("/profiles/u-out", headers=FORGET).status_code == 200
    result = build(
        personal_settings,
        personal_settings.service.ubi_log_path.parent.parent,
        tiny_bert_dir,
        tmp_path / "rebuilt.sqlite3",
    )
    assert result.exit_code == 0, result.output
    rebuilt = SQLiteProfileStore(tmp_path / "rebuilt.sqlite3")
    try:
        assert rebuilt.get_many([session_key("s-out"), user_key("u-out")]) == {}  # the rebuild forgets both
    finally:
        rebuilt.close()
    assert stored(personal_settings, session_key("s-out")) is None


def test_a_received_at_sent_by_a_front_end_does_not_stop_the_batchs_profile_updates(client, personal_settings):
    # received_at is the service's ("a value sent is replaced"): a front end's, even one that is no time, is
    # never read, and the batch's other events update their profiles.
    target = sofas(client)[0]["id"]
    batch = [purchase(target, user="u-batch")] * 3 + [purchase(target, session="s-other", received_at="soon")]
    response = client.post("/ubi/events", json=batch)
    assert response.status_code == 200 and response.get_json() == {"accepted": 4}
    assert stored(personal_settings, user_key("u-batch")) is not None


def test_events_sent_as_ndjson_are_accepted_one_per_line(client, personal_settings):
    # The UBI log's own lines, as log shippers forward them (Fluent Bit's json_lines, Vector's newline-delimited
    # framing, `curl --data-binary @ubi.ndjson`).
    target = sofas(client)[0]["id"]
    lines = "".join(json.dumps(purchase(target, user="u-ndjson")) + "\n" for _ in range(3))
    response = client.post("/ubi/events", data=lines, content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {"accepted": 3}


def test_concurrent_events_for_one_shopper_all_reach_the_cluster_profile_store(request, tmp_path):
    # Workers sharing the OpenSearch profile index each apply one shopper's event at once (the UBI client's
    # one-POST-per-event beacons): optimistic writes conflict, and each tries again after a random wait until
    # written, as the SQLite store's writers wait their turn.
    from servers import server_settings

    from search_rerank.backends.profile_index import open_profile_store
    from search_rerank.core.product import Product
    from search_rerank.core.profile_store import ProfileEvent
    from search_rerank.core.settings import PersonalisationSettings, Settings

    settings = Settings(
        index_dir=tmp_path / "idx",
        lexical=server_settings("opensearch", request),
        personalisation={"store": "opensearch", "profile_index": f"profiles-probe-{os.getpid()}-{time.time_ns()}"},
    )
    writers = 16
    stores = [open_profile_store(settings) for _ in range(writers)]
    sofa = Product(id="p1", title="sofa", brand="Acme", price=300.0)
    errors: list[str] = []
    start = threading.Barrier(writers)

    def apply(store):
        start.wait()
        now = time.time()
        try:
            store.apply([ProfileEvent("u-busy", None, sofa, "purchase", now, None, now)], PersonalisationSettings())
        except Exception as exc:  # what apply_events would log and drop
            errors.append(repr(exc))

    threads = [threading.Thread(target=apply, args=(store,)) for store in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        profile = stores[0].get_many([user_key("u-busy")])[user_key("u-busy")]
        assert errors == []
        assert profile.events == pytest.approx(writers, abs=0.01)
    finally:
        for store in stores:
            store.close()


def test_a_forgets_tombstone_leaves_the_store_once_its_window_has_passed_with_no_event_after_it(
    client, personal_settings, monkeypatch
):
    # The tombstone (a digest of the shopper's key) holds back events in flight for FORGET_WINDOW_S; then the
    # forgetting worker removes it though no event comes (on a quiet store it stayed until the next event).
    monkeypatch.setattr(profiles_api, "FORGET_WINDOW_S", 0.5)
    monkeypatch.setattr(profile_store, "FORGET_WINDOW_S", 0.5)
    target = sofas(client)[0]["id"]
    assert client.post("/ubi/events", json=[purchase(target, user="shopper-1001")] * 2).status_code == 200
    assert client.delete("/profiles/shopper-1001", headers=FORGET).get_json() == {"forgotten": 1}
    path = personal_settings.personalisation.store_path
    digest = profile_store.tombstone(user_key("shopper-1001")).encode()

    def on_disk() -> bytes:
        return b"".join(p.read_bytes() for p in path.parent.iterdir() if p.name.startswith(path.name))

    assert digest in on_disk()  # held for the window
    deadline = time.monotonic() + 60
    while digest in on_disk() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert digest not in on_disk()
