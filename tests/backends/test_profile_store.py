"""Profile stores: SQLite (the embedded default) and the Elasticsearch/OpenSearch profile index, one contract."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable

import numpy as np
import pytest
from servers import server_settings

from search_rerank.backends.profile_index import PROFILE_MAPPING, ClusterProfileStore, open_profile_store
from search_rerank.core.product import Product
from search_rerank.core.profile import session_key, user_key
from search_rerank.core.profile_store import (
    FORGET_WINDOW_S,
    OLDEST,
    ProfileEvent,
    ProfileStore,
    ProfileStoreError,
    SQLiteProfileStore,
    search_profile,
)
from search_rerank.core.settings import PersonalisationSettings, Settings
from search_rerank.serving import profiles_api
from search_rerank.serving.profiles_api import PURGE_EVERY_S, ProfileAccess

STORES = ("sqlite", "opensearch", "elasticsearch")
PERSONAL = PersonalisationSettings()
SECRET_USER = "shopper-7f3a9c"


def sofa(brand: str = "Acme") -> Product:
    return Product(id="p1", title="sofa", brand=brand, attributes={"color": "red"}, price=300.0)


def event(
    user: str | None = "u1",
    session: str | None = "s1",
    action: str = "click",
    at: float = 1000.0,
    received: float | None = None,
    **kw,
):
    return ProfileEvent(user, session, sofa(**kw), action, at, np.ones(4, dtype=np.float32), received)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def settings_for(request: pytest.FixtureRequest, tmp_path) -> Callable[[str], Settings]:
    """Settings naming a store of the kind: a SQLite file in tmp_path, or a fresh index on the test server."""
    index = f"profiles-{uuid.uuid4().hex[:10]}"

    def make(kind: str) -> Settings:
        if kind == "sqlite":
            return Settings(index_dir=tmp_path / "idx")
        return Settings(
            index_dir=tmp_path / "idx",
            lexical=server_settings(kind, request),
            personalisation={"store": kind, "profile_index": index},
        )

    return make


@pytest.fixture
def open_store(settings_for, store_kind) -> Iterable[Callable[[], ProfileStore]]:
    """``open_store()``: another handle on the same store (as another worker would have); all closed after."""
    opened: list[ProfileStore] = []

    def make() -> ProfileStore:
        store = open_profile_store(settings_for(store_kind))
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


def test_a_store_keeps_the_shopper_and_session_profiles_an_event_updates(open_store):
    store = open_store()
    assert store.apply([event()], PERSONAL) == 2
    found = store.get_many([user_key("u1"), session_key("s1"), user_key("nobody")])
    assert set(found) == {user_key("u1"), session_key("s1")}
    assert found[user_key("u1")].affinities["brand"] == {"acme": 1.0}
    assert found[session_key("s1")].user_id == "u1"


def test_an_event_one_handle_applies_is_seen_by_another(open_store):
    writer, reader = open_store(), open_store()
    reader.get_many([user_key("u1")])
    writer.apply([event(action="purchase")], PERSONAL)
    assert reader.get_many([user_key("u1")])[user_key("u1")].affinities["brand"] == {"acme": 5.0}


def test_events_applied_at_once_from_two_threads_all_count(open_store):
    stores = [open_store(), open_store()]

    def work(store: ProfileStore) -> None:
        for i in range(5):
            store.apply([event(session=None, at=1000.0 + i)], PERSONAL)

    threads = [threading.Thread(target=work, args=(store,)) for store in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    profile = stores[0].get_many([user_key("u1")])[user_key("u1")]
    assert profile.events == pytest.approx(10.0, rel=1e-3)


def test_forget_removes_the_shopper_and_their_sessions_only(open_store):
    store = open_store()
    store.apply([event(), event(user="u2", session="s2")], PERSONAL)
    assert store.forget("u1") == 2
    assert set(store.get_many([user_key("u1"), session_key("s1"), user_key("u2"), session_key("s2")])) == {
        user_key("u2"),
        session_key("s2"),
    }


def test_an_event_received_before_a_forget_and_applied_after_it_writes_nothing(open_store):
    """A request in flight in another worker: received, then the shopper forgotten, then its update applied."""
    store = open_store()
    store.apply([event()], PERSONAL)
    received = time.time()
    store.forget("u1")
    assert open_store().apply([event(received=received)], PERSONAL) == 0
    assert store.get_many([user_key("u1"), session_key("s1")]) == {}


def test_an_event_received_after_a_forget_counts_again(open_store):
    store = open_store()
    store.forget("u1")
    time.sleep(0.01)
    store.apply([event(received=time.time())], PERSONAL)
    assert set(store.get_many([user_key("u1"), session_key("s1")])) == {user_key("u1"), session_key("s1")}


def test_an_anonymous_event_in_a_forgotten_shoppers_session_received_before_the_forget_writes_nothing(open_store):
    """Sent after a sign-out (no user id) but before the forget, in flight during it: still the shopper's session."""
    store = open_store()
    store.apply([event()], PERSONAL)
    received = time.time()
    store.forget("u1")
    open_store().apply([event(user=None, received=received)], PERSONAL)
    assert store.get_many([session_key("s1")]) == {}


def test_a_forget_holds_back_only_its_shoppers_events(open_store):
    store = open_store()
    received = time.time()
    store.forget("u1")
    store.apply([event(received=received), event(user="u2", session="s2", received=received)], PERSONAL)
    assert set(store.get_many([user_key("u1"), user_key("u2"), session_key("s2")])) == {
        user_key("u2"),
        session_key("s2"),
    }


def test_purge_removes_profiles_older_than_the_cut(open_store):
    store = open_store()
    store.apply([event(user="old", session=None, at=10.0), event(user="new", session=None, at=5000.0)], PERSONAL)
    assert store.purge(before=1000.0) == 1
    assert set(store.get_many([user_key("old"), user_key("new")])) == {user_key("new")}


def profiles_left(store: ProfileStore, *keys: str) -> set[str]:
    return set(store.get_many(list(keys)))


def test_the_purge_keeps_the_most_recently_updated_profiles_up_to_the_cap(open_store):
    store = open_store()
    store.apply([event(user=f"u{i}", session=None, at=100.0 * i) for i in range(1, 6)], PERSONAL)
    assert store.purge(before=0.0, max_profiles=3) == 2
    assert profiles_left(store, *(user_key(f"u{i}") for i in range(1, 6))) == {user_key(f"u{i}") for i in (3, 4, 5)}


def test_the_purge_past_the_cap_removes_session_profiles_before_shoppers_profiles(open_store):
    """A session's taste halves every hour and anyone can start one: the shoppers' long-term profiles stay, even
    older ones; a session a shopper signed in on is a session too."""
    store = open_store()
    store.apply(
        [
            event(user="u1", session="signed-in", at=100.0),
            event(user="u2", session=None, at=200.0),
            event(user=None, session="anon-1", at=300.0),
            event(user=None, session="anon-2", at=400.0),
        ],
        PERSONAL,
    )
    assert store.purge(before=0.0, max_profiles=3) == 2
    keys = (user_key("u1"), user_key("u2"), session_key("signed-in"), session_key("anon-1"), session_key("anon-2"))
    assert profiles_left(store, *keys) == {user_key("u1"), user_key("u2"), session_key("anon-2")}


def test_the_purge_past_the_cap_removes_the_oldest_shoppers_profiles_once_no_session_is_left(open_store):
    store = open_store()
    store.apply([event(user="u1", session=None, at=100.0), event(user="u2", session="s2", at=200.0)], PERSONAL)
    assert store.purge(before=0.0, max_profiles=1) == 2
    assert profiles_left(store, user_key("u1"), user_key("u2"), session_key("s2")) == {user_key("u2")}


def test_the_purge_removes_the_expired_profiles_before_counting_the_rest_against_the_cap(open_store):
    store = open_store()
    store.apply([event(user=f"u{i}", session=None, at=100.0 * i) for i in range(1, 5)], PERSONAL)
    assert store.purge(before=150.0, max_profiles=2) == 2
    keys = [user_key(f"u{i}") for i in range(1, 5)]
    assert profiles_left(store, *keys) == {user_key("u3"), user_key("u4")}


def test_a_purge_removes_no_more_than_its_limit_and_the_next_goes_on(open_store):
    store = open_store()
    store.apply([event(user=f"u{i}", session=None, at=100.0 * i) for i in range(1, 6)], PERSONAL)
    keys = [user_key(f"u{i}") for i in range(1, 6)]
    assert store.purge(before=150.0, max_profiles=1, limit=2) == 2
    assert profiles_left(store, *keys) == {user_key(f"u{i}") for i in (3, 4, 5)}
    assert store.purge(before=150.0, max_profiles=1, limit=2) == 2
    assert store.purge(before=150.0, max_profiles=1, limit=2) == 0
    assert profiles_left(store, *keys) == {user_key("u5")}


def test_a_forgets_tombstone_is_no_profile_to_the_cap_and_outlasts_its_purge(open_store):
    store = open_store()
    received = time.time()
    store.forget("gone")
    store.apply([event(user="u1", session=None), event(user="u2", session=None)], PERSONAL)
    assert store.purge(before=0.0, max_profiles=2) == 0
    assert profiles_left(store, user_key("u1"), user_key("u2")) == {user_key("u1"), user_key("u2")}
    assert store.apply([event(user="gone", session=None, received=received)], PERSONAL) == 0


def test_the_purge_past_the_cap_finds_the_oldest_profiles_in_an_index_not_by_sorting_the_table(tmp_path):
    """Cheap on a million rows: each step reads its rows off an index on the update time (for the sessions, one
    holding only theirs), never sorts the table."""
    path = tmp_path / "profiles.sqlite3"
    SQLiteProfileStore(path).close()
    conn = sqlite3.connect(path)
    for sessions, select in OLDEST.items():
        plan = " ".join(row[-1] for row in conn.execute(f"EXPLAIN QUERY PLAN {select}", (10,)))
        assert ("profiles_session_updated" if sessions else "profiles_updated") in plan
        assert "TEMP B-TREE" not in plan and "USING" in plan, plan
    conn.close()


@pytest.mark.parametrize(("action", "table"), [("apply", "profiles"), ("forget", "forgotten")])
def test_a_full_disk_is_reported_as_one_not_as_a_failed_rollback(tmp_path, action, table):
    """SQLite rolls a transaction back itself on a full disk; rolling it back again said "cannot rollback - no
    transaction is active" in every log line, in place of "database or disk is full". A trigger fails the write
    as a full disk does, rolling the transaction back."""
    path = tmp_path / "profiles.sqlite3"
    store = SQLiteProfileStore(path)
    store.apply([event()], PERSONAL)
    with sqlite3.connect(path) as conn:
        conn.execute(
            f"CREATE TRIGGER full BEFORE INSERT ON {table} BEGIN SELECT RAISE(ROLLBACK, 'database or disk is full'); END"
        )
    with pytest.raises(ProfileStoreError, match="database or disk is full"):
        if action == "apply":
            store.apply([event(user="u2", session="s2")], PERSONAL)
        else:
            store.forget("u1")
    store.close()


def store_of_an_index_made_before_kinds(settings) -> ClusterProfileStore:
    """A cluster store whose profile index was created with the mapping before profiles had a ``kind``."""
    store = open_profile_store(settings)
    assert isinstance(store, ClusterProfileStore)
    old_mapping = {**PROFILE_MAPPING["mappings"], "properties": {**PROFILE_MAPPING["mappings"]["properties"]}}
    del old_mapping["properties"]["kind"]
    store.client.indices.create(index=store.index, body={**PROFILE_MAPPING, "mappings": old_mapping})
    return store


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_a_profile_index_made_before_profiles_had_a_kind_takes_them_and_purges_its_ownerless_ones_as_sessions(
    engine, settings_for
):
    store = store_of_an_index_made_before_kinds(settings_for(engine))
    client, index = store.client, store.index
    for key, owner, at in ((user_key("old-u"), "old-u", 100.0), (session_key("old-anon"), None, 200.0)):
        record = {"key": key, "affinities": {}, "events": 1.0, "updated_at": at, "user_id": owner}
        body = {"user_id": owner, "updated_at": at, "profile": record}
        client.index(index=index, id=key, body={k: v for k, v in body.items() if v is not None}, refresh=True)
    store.apply([event(user="new-u", session=None, at=300.0)], PERSONAL)
    assert store.purge(before=0.0, max_profiles=2) == 1
    keys = (user_key("old-u"), session_key("old-anon"), user_key("new-u"))
    assert profiles_left(store, *keys) == {user_key("old-u"), user_key("new-u")}
    store.close()


def forbidden(engine: str) -> Exception:
    """What the engine's client raises for a 403 (credentials that may not do this)."""
    error = {"error": {"type": "security_exception", "reason": "action [indices:admin/mapping/put] is unauthorized"}}
    if engine == "opensearch":
        import opensearchpy

        return opensearchpy.AuthorizationException(403, "security_exception", error)
    import elasticsearch
    from elastic_transport import ApiResponseMeta, HttpHeaders, NodeConfig

    meta = ApiResponseMeta(403, "1.1", HttpHeaders(), 0.0, NodeConfig("http", "localhost", 9200))
    return elasticsearch.AuthorizationException("security_exception", meta, error)


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_a_profile_index_its_credentials_may_not_map_keeps_taking_profiles_without_their_kind(
    engine, settings_for, monkeypatch
):
    store = store_of_an_index_made_before_kinds(settings_for(engine))
    client = store.client

    def refused(**kw):
        raise forbidden(engine)

    monkeypatch.setattr(client.indices, "put_mapping", refused)
    assert store.apply([event(user="u1", session=None, at=100.0), event(user=None, session="anon")], PERSONAL) == 2
    assert store.purge(before=0.0, max_profiles=1) == 1
    assert profiles_left(store, user_key("u1"), session_key("anon")) == {user_key("u1")}
    store.close()


def test_search_profile_mixes_session_and_shopper_and_is_none_when_anonymous(open_store):
    store = open_store()
    store.apply([event(), event(session="s-other", brand="Other")], PERSONAL)
    mixed = search_profile(store, "u1", "s1", PERSONAL, at=1000.0)
    assert mixed is not None and set(mixed.affinities["brand"]) == {"acme", "other"}
    assert search_profile(store, None, None, PERSONAL, at=1000.0) is None


def test_a_session_another_shopper_goes_on_with_keeps_nothing_of_the_first(open_store):
    """A shared device: bob's event on alice's session starts it again as bob's, so forgetting alice leaves no
    trace of her in it."""
    store = open_store()
    store.apply([event(user="alice", session="shared", brand="AliceBrand")], PERSONAL)
    store.apply([event(user="bob", session="shared", brand="BobBrand", at=1010.0)], PERSONAL)
    store.forget("alice")
    session = store.get_many([session_key("shared")])[session_key("shared")]
    assert session.user_id == "bob" and set(session.affinities["brand"]) == {"bobbrand"}


def test_a_search_does_not_read_a_session_owned_by_another_shopper(open_store):
    store = open_store()
    store.apply([event(user="alice", session="hers", brand="AliceBrand")], PERSONAL)
    assert search_profile(store, "mallory", "hers", PERSONAL, at=1000.0) is None
    assert search_profile(store, None, "hers", PERSONAL, at=1000.0) is None
    assert search_profile(store, "alice", "hers", PERSONAL, at=1000.0) is not None


def test_a_signed_in_search_does_not_read_its_session_gone_on_without_it(open_store):
    # After alice signed out, whoever knows the session id (no secret) can go on with it anonymously: those events
    # steered her ranking once she searched again signed in.
    store = open_store()
    store.apply([event(user="alice", session="hers", brand="AliceBrand")], PERSONAL)
    store.apply([event(user=None, session="hers", brand="Planted", at=1010.0)], PERSONAL)
    mixed = search_profile(store, "alice", "hers", PERSONAL, at=1020.0)
    assert mixed is not None and set(mixed.affinities["brand"]) == {"alicebrand"}
    assert search_profile(store, None, "hers", PERSONAL, at=1020.0) is not None  # the device's next shopper's


def test_a_shopper_back_on_a_session_gone_on_without_them_starts_it_again(open_store):
    store = open_store()
    store.apply([event(user="alice", session="hers", brand="AliceBrand")], PERSONAL)
    store.apply([event(user=None, session="hers", brand="Planted", at=1010.0)], PERSONAL)
    store.apply([event(user="alice", session="hers", brand="Back", at=1020.0)], PERSONAL)
    session = store.get_many([session_key("hers")])[session_key("hers")]
    assert session.user_id == "alice" and set(session.affinities["brand"]) == {"back"}


def test_a_signed_in_search_reads_its_browsing_before_the_sign_in(open_store):
    store = open_store()
    store.apply([event(user=None, session="new", brand="Browsed")], PERSONAL)
    mixed = search_profile(store, "alice", "new", PERSONAL, at=1000.0)
    assert mixed is not None and set(mixed.affinities["brand"]) == {"browsed"}


def test_forget_leaves_no_trace_in_the_sqlite_file(tmp_path):
    path = tmp_path / "profiles.sqlite3"
    store = SQLiteProfileStore(path)
    store.apply([event(user=SECRET_USER, session="sess-" + SECRET_USER), event(user="other")], PERSONAL)
    store.forget(SECRET_USER)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("profiles.sqlite3"))
    assert SECRET_USER.encode() not in on_disk
    assert b"other" in on_disk
    store.close()


def test_a_forgets_tombstone_goes_after_its_window(tmp_path, monkeypatch):
    path = tmp_path / "profiles.sqlite3"
    store = SQLiteProfileStore(path)
    later = time.time() + FORGET_WINDOW_S + 1
    store.forget(SECRET_USER)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM forgotten").fetchone() == (1,)
    monkeypatch.setattr(time, "time", lambda: later)
    store.apply([event(user="other", received=later)], PERSONAL)
    assert sqlite3.connect(path).execute("SELECT count(*) FROM forgotten").fetchone() == (0,)
    store.close()


def test_a_forget_that_readers_keep_from_clearing_the_log_says_so(tmp_path):
    """Another worker in the middle of a read keeps the write-ahead log, with the shopper's old pages, past the
    busy timeout: the forget must fail (a 503, "try again"), not report the shopper gone."""
    path = tmp_path / "profiles.sqlite3"
    store = SQLiteProfileStore(path, busy_timeout_s=0.2)
    store.apply([event(user=SECRET_USER)], PERSONAL)
    reader = sqlite3.connect(path, isolation_level=None)
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM profiles").fetchone()
    try:
        with pytest.raises(ProfileStoreError, match="write-ahead log"):
            store.forget(SECRET_USER)
    finally:
        reader.execute("COMMIT")
        reader.close()
    store.forget(SECRET_USER)
    on_disk = b"".join(p.read_bytes() for p in tmp_path.iterdir() if p.name.startswith("profiles.sqlite3"))
    assert SECRET_USER.encode() not in on_disk
    store.close()


@pytest.mark.parametrize("engine", ["opensearch", "elasticsearch"])
def test_forget_leaves_no_trace_in_the_profile_index(engine, settings_for):
    store = open_profile_store(settings_for(engine))
    assert isinstance(store, ClusterProfileStore)
    store.apply([event(user=SECRET_USER, session="sess-" + SECRET_USER), event(user="other")], PERSONAL)
    store.forget(SECRET_USER)
    client, index = store.client, store.index
    client.indices.refresh(index=index)
    hits = client.search(index=index, body={"query": {"match_all": {}}, "size": 100})
    hits = getattr(hits, "body", hits)["hits"]["hits"]
    assert hits and SECRET_USER not in str(hits)
    assert store.get_many([user_key(SECRET_USER), session_key("sess-" + SECRET_USER)]) == {}
    store.close()


def test_an_apply_that_read_before_the_tombstone_deletes_what_it_wrote(settings_for, monkeypatch):
    """The profile index has no transaction: a forget can land between an apply's read of the tombstones and its
    write, and the write then re-creates the profile after the delete; the apply's second read finds the
    tombstone and deletes it again."""
    store = open_profile_store(settings_for("opensearch"))
    assert isinstance(store, ClusterProfileStore)
    other = open_profile_store(settings_for("opensearch"))
    read = store._tombstones
    reads: list[object] = []

    def forgotten_right_after_the_first_read(keys):
        found = read(keys)
        reads.append(found)
        if len(reads) == 1:
            other.forget("u1")
        return found

    monkeypatch.setattr(store, "_tombstones", forgotten_right_after_the_first_read)
    store.apply([event(received=time.time())], PERSONAL)
    assert reads[0] == {} and reads[1]  # the write came between the two reads
    assert store.get_many([user_key("u1"), session_key("s1")]) == {}
    store.close()
    other.close()


def test_a_sqlite_store_that_cannot_open_its_file_raises_a_store_error(tmp_path):
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ProfileStoreError, match="profile store"):
        SQLiteProfileStore(tmp_path / "file" / "profiles.sqlite3")


def test_a_cluster_store_that_cannot_reach_its_cluster_raises_a_store_error(tmp_path):
    settings = Settings(
        index_dir=tmp_path,
        lexical={"backend": "opensearch", "url": "http://127.0.0.1:9", "retries": 0, "request_timeout_s": 2},
        personalisation={"store": "opensearch"},
    )
    store = open_profile_store(settings)
    with pytest.raises(ProfileStoreError, match="profile index"):
        store.get_many([user_key("u1")])


def test_a_worker_purges_expired_profiles_once_per_interval_without_holding_the_event(tmp_path):
    """Any caller can post events with new session ids: the worker removes what expired, on its own pool."""
    access = ProfileAccess(SQLiteProfileStore(tmp_path / "profiles.sqlite3"))
    access.store.apply([event(user="old", session=None, at=10.0), event(user="new", session=None, at=5000.0)], PERSONAL)
    assert access.purge_expired(ttl_s=1000.0, now=5500.0) is True
    deadline = time.monotonic() + 60
    while user_key("old") in access.store.get_many([user_key("old")]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert set(access.store.get_many([user_key("old"), user_key("new")])) == {user_key("new")}
    assert access.purge_expired(ttl_s=1000.0, now=5500.0 + PURGE_EVERY_S / 2) is False
    assert access.purge_expired(ttl_s=1000.0, now=5500.0 + PURGE_EVERY_S) is True
    access.close()


def test_a_worker_purges_the_profiles_past_max_profiles_with_the_expired_ones(tmp_path):
    access = ProfileAccess(SQLiteProfileStore(tmp_path / "profiles.sqlite3"))
    access.store.apply([event(user=f"u{i}", session=None, at=5000.0 + i) for i in range(3)], PERSONAL)
    keys = [user_key(f"u{i}") for i in range(3)]
    assert access.purge_expired(ttl_s=1000.0, now=5500.0, max_profiles=1) is True
    access.close()  # waits for the purge
    store = SQLiteProfileStore(tmp_path / "profiles.sqlite3")
    assert profiles_left(store, *keys) == {user_key("u2")}
    store.close()


def test_a_workers_purge_goes_a_chunk_at_a_time_and_stops_at_its_most(tmp_path, monkeypatch):
    monkeypatch.setattr(profiles_api, "PURGE_CHUNK", 2)
    monkeypatch.setattr(profiles_api, "PURGE_MOST", 3)
    store = SQLiteProfileStore(tmp_path / "profiles.sqlite3")
    store.apply([event(user=f"u{i}", session=None, at=5000.0 + i) for i in range(6)], PERSONAL)
    limits: list[int | None] = []
    purge = store.purge

    def counted(before, max_profiles=None, limit=None):
        limits.append(limit)
        return purge(before, max_profiles, limit)

    monkeypatch.setattr(store, "purge", counted)
    access = ProfileAccess(store)
    access._purge(before=4500.0, max_profiles=1)  # what purge_expired starts on the pool
    assert limits == [2, 1]
    assert len(profiles_left(store, *(user_key(f"u{i}") for i in range(6)))) == 3
    access.close()


def test_a_worker_that_stops_stops_its_purge_after_the_chunk_in_hand(tmp_path, monkeypatch):
    monkeypatch.setattr(profiles_api, "PURGE_CHUNK", 1)
    store = SQLiteProfileStore(tmp_path / "profiles.sqlite3")
    store.apply([event(user=f"u{i}", session=None, at=5000.0 + i) for i in range(6)], PERSONAL)
    access = ProfileAccess(store)
    purge = store.purge

    def stopped_meanwhile(before, max_profiles=None, limit=None):
        access._closing = True  # as close() sets it while the chunk runs
        return purge(before, max_profiles, limit)

    monkeypatch.setattr(store, "purge", stopped_meanwhile)
    access._purge(before=4500.0, max_profiles=1)
    assert len(profiles_left(store, *(user_key(f"u{i}") for i in range(6)))) == 5
    access.close()
