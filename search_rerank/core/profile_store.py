"""Where shopper profiles live: one small interface, SQLite as the embedded default.

Every gunicorn worker serves searches and takes UBI events, so the profiles
must be shared by all of them and an event taken by one worker must be seen by
the next search on any other: a SQLite file in WAL mode does that on one
machine (readers never wait for the writer, a write is one short transaction),
and an Elasticsearch/OpenSearch index (:mod:`search_rerank.backends.profile_index`)
does it across machines. Both apply events the same way, through
:func:`updated_profiles`, so they hold the same profiles for the same events.

The store is bounded: profiles not updated for ``personalisation.ttl_s`` go,
and past ``max_profiles`` so do the least recently updated, sessions first
(:meth:`ProfileStore.purge`, which each worker runs hourly), since anyone can
post events and each fresh session or user id adds a profile.

Forgetting a shopper removes their long-term profile and every session
profile they owned, and leaves no copy behind in the file: SQLite runs with
``secure_delete`` (freed pages are zeroed) and the write-ahead log is
checkpointed and truncated after the delete. An event received before the
forget but applied after it (a request in flight in another worker) must not
write the profile again: the forget leaves a tombstone, the digest of the
shopper's key and the time of the forget, for :data:`FORGET_WINDOW_S`, and an
event of that shopper received before it is not applied (:func:`tombstone`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

from .errors import SearchRerankError
from .product import Product
from .profile import ShopperProfile, apply_event, mix, session_key, user_key
from .settings import PersonalisationSettings, Settings

PROFILE_FILE = "profiles.sqlite3"
PURGE_STEP = 1_000
"""Profiles a purge deletes in one write (SQLite: one transaction, so an event's update waits for one step at
most, milliseconds, never for the whole purge)."""
FORGET_WINDOW_S = 600.0
"""How long a forget's tombstone is kept: longer than any event is in flight between its receipt and its profile
update (a request's time, seconds), short enough that the store soon holds nothing of the shopper at all."""


class ProfileStoreError(SearchRerankError):
    """The profile store could not be read or written (the cause is chained); callers degrade, never fail."""


@dataclass(frozen=True)
class ProfileEvent:
    """One thing a shopper did to a product, as the profiles need it: who, what, when (seconds since the epoch)."""

    user_id: str | None
    session_id: str | None
    product: Product
    action: str
    at: float
    vector: np.ndarray | None = None
    received: float | None = None
    """When the service received it (seconds since the epoch), which orders it against a forget's tombstone."""

    def keys(self) -> list[str]:
        """The profiles this event updates: the shopper's long-term one and the session's."""
        out = []
        if self.user_id:
            out.append(user_key(self.user_id))
        if self.session_id:
            out.append(session_key(self.session_id))
        return out


@dataclass(frozen=True)
class ShopperAction:
    """What a UBI event says a shopper did, before the product is looked up: who, to which product id, when
    (``at``, the event's own time, which profiles decay by) and when the service received it (``received``, which
    orders it against a forget; ``at`` for logs written without it)."""

    user_id: str | None
    session_id: str | None
    product_id: str
    action: str
    at: float
    received: float


def profile_events(
    actions: Iterable[ShopperAction], products: Mapping[str, Product], vectors: Mapping[str, np.ndarray]
) -> list[ProfileEvent]:
    """The actions as profile events, with their products and vectors; an action on an unknown product is left
    out (it may have left the catalogue, and a profile can only hold what it can later match)."""
    return [
        ProfileEvent(
            a.user_id, a.session_id, products[a.product_id], a.action, a.at, vectors.get(a.product_id), a.received
        )
        for a in actions
        if a.product_id in products
    ]


def tombstone(key: str) -> str:
    """A forgotten profile's tombstone key: a digest of the profile's key (the shopper's, or a session's they
    owned), not the id itself."""
    return "forgotten:" + hashlib.sha256(key.encode()).hexdigest()


def held_back(event: ProfileEvent, forgotten: Mapping[str, float]) -> bool:
    """Whether ``event`` updates a profile forgotten (``forgotten``: tombstone key -> the forget's time) after it
    was received: in flight during the forget, applied it would write the profile again. A session the shopper
    owned holds back an event without their id too (sent after a sign-out, before the forget)."""
    if event.received is None:
        return False
    return any(forgotten.get(tombstone(key), -1.0) >= event.received for key in event.keys())


def tombstones_of(events: Sequence[ProfileEvent]) -> list[str]:
    """The tombstone keys that could hold back ``events`` (those of the profiles they update)."""
    return sorted({tombstone(key) for e in events if e.received is not None for key in e.keys()})


@runtime_checkable
class ProfileStore(Protocol):
    """Shopper profiles by key (``user:<id>``, ``session:<id>``), shared by every serving process."""

    def get_many(self, keys: Sequence[str]) -> dict[str, ShopperProfile]:
        """The stored profiles among ``keys`` (missing ones left out)."""
        ...

    def apply(self, events: Sequence[ProfileEvent], settings: PersonalisationSettings) -> int:
        """Apply events to the profiles they name, atomically per call; returns how many profiles changed."""
        ...

    def forget(self, user_id: str) -> int:
        """Remove the shopper's profile and the sessions they owned, leaving no trace but a tombstone for
        :data:`FORGET_WINDOW_S` (an event received before it is not applied); returns how many."""
        ...

    def purge(self, before: float, max_profiles: int | None = None, limit: int | None = None) -> int:
        """Remove profiles last updated before ``before`` (the TTL), then, past ``max_profiles``, the least
        recently updated: session profiles first, then shoppers' (:func:`is_session`); at most ``limit`` in all
        (None: no limit), in short steps that never hold the store for long. Returns how many."""
        ...

    def clear(self) -> None:
        """Remove every profile (before a rebuild from the logs)."""
        ...

    def close(self) -> None: ...


def updated_profiles(
    current: Mapping[str, ShopperProfile],
    events: Iterable[ProfileEvent],
    settings: PersonalisationSettings,
) -> dict[str, ShopperProfile]:
    """The profiles ``events`` change, after them (in time order): what every store writes back.

    A shopper's events update their long-term profile (``half_life_s``) and
    the session's (``session_half_life_s``); a session profile remembers its
    owner so that forgetting the shopper removes it too.
    """
    profiles = dict(current)
    changed: dict[str, ShopperProfile] = {}
    for event in sorted(events, key=lambda e: e.at):
        for key in event.keys():
            half_life = settings.session_half_life_s if key.startswith("session:") else settings.half_life_s
            profile = apply_event(
                profiles.get(key),
                key,
                event.product,
                event.action,
                event.at,
                event.vector,
                settings,
                half_life_s=half_life,
                user_id=event.user_id,
            )
            profiles[key] = changed[key] = profile
    return changed


def search_profile(
    store: ProfileStore,
    user_id: str | None,
    session_id: str | None,
    settings: PersonalisationSettings,
    at: float,
) -> ShopperProfile | None:
    """The profile a search ranks with: the session's and the shopper's, mixed (None for anonymous requests).

    A session that is not the searcher's (:meth:`~search_rerank.core.profile.SessionHolder.read_by`) is not
    read: a session id is no secret, and whoever sends one must not be ranked by, or shown, someone's taste."""
    keys = ([user_key(user_id)] if user_id else []) + ([session_key(session_id)] if session_id else [])
    if not keys:
        return None
    found = store.get_many(keys)
    session = found.get(session_key(session_id)) if session_id else None
    if session is not None and not session.holder.read_by(user_id):
        session = None
    shopper = found.get(user_key(user_id)) if user_id else None
    return mix(session, shopper, settings, at)


def is_session(key: str) -> bool:
    """Whether ``key`` is a session's profile: what a purge over ``max_profiles`` removes first. A session's taste
    halves every ``session_half_life_s`` (an hour), and anyone can start one with a fresh id; a signed-in
    shopper's long-term profile is what personalisation is for."""
    return key.startswith("session:")


def sqlite_profile_path(settings: Settings) -> Path:
    """The SQLite file: ``personalisation.store_path``, else beside the index versions (kept across rebuilds)."""
    path = settings.personalisation.store_path
    return path if path is not None else settings.index_dir / PROFILE_FILE


SESSION_ROWS = "key GLOB 'session:*'"
"""The session profiles' rows (:func:`is_session`): the profiles_session_updated index's condition, which a query
must repeat word for word to use it."""
OLDEST = {
    True: f"SELECT rowid FROM profiles INDEXED BY profiles_session_updated WHERE {SESSION_ROWS} ORDER BY updated_at "
    "LIMIT ?",
    False: "SELECT rowid FROM profiles INDEXED BY profiles_updated ORDER BY updated_at LIMIT ?",
}
"""The least recently updated rows, sessions only (True) or any: a purge past max_profiles deletes those."""

SCHEMA = (
    """CREATE TABLE IF NOT EXISTS profiles (
        key TEXT PRIMARY KEY,
        user_id TEXT,
        updated_at REAL NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS profiles_user ON profiles (user_id)",
    "CREATE INDEX IF NOT EXISTS profiles_updated ON profiles (updated_at)",
    # The sessions, oldest first, for a purge past max_profiles (is_session).
    f"CREATE INDEX IF NOT EXISTS profiles_session_updated ON profiles (updated_at) WHERE {SESSION_ROWS}",
    "CREATE TABLE IF NOT EXISTS forgotten (key TEXT PRIMARY KEY, at REAL NOT NULL)",
)


def _expire_tombstones(conn: sqlite3.Connection) -> None:
    """Delete the tombstones older than :data:`FORGET_WINDOW_S` (at each event's update and each purge)."""
    conn.execute("DELETE FROM forgotten WHERE at < ?", (time.time() - FORGET_WINDOW_S,))


@contextmanager
def _immediate(conn: sqlite3.Connection) -> Iterator[None]:
    """A write transaction taken at once (``BEGIN IMMEDIATE``), committed, or rolled back on any failure unless
    SQLite already rolled it back: a full disk (SQLITE_FULL) does so itself, and the second ROLLBACK's "cannot
    rollback - no transaction is active" then replaced "database or disk is full" in every log line."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise


class SQLiteProfileStore:
    """Profiles in one SQLite file shared by the processes of one machine (WAL; one connection per thread)."""

    def __init__(self, path: str | Path, busy_timeout_s: float = 5.0):
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        with self._errors("create"):
            conn = self._conn()
            conn.execute("PRAGMA journal_mode=WAL")
            for statement in SCHEMA:
                conn.execute(statement)

    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), so a read never holds a lock.
            conn = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            conn.execute("PRAGMA secure_delete=ON")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    @contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """SQLite's errors as :class:`ProfileStoreError`, naming the file and what was being done."""
        try:
            yield
        except (sqlite3.Error, OSError) as exc:  # OSError: the file's directory cannot be made
            raise ProfileStoreError(f"profile store {self.path}: {action}: {exc}") from exc

    def get_many(self, keys: Sequence[str]) -> dict[str, ShopperProfile]:
        if not keys:
            return {}
        with self._errors("read"):
            marks = ",".join("?" * len(keys))
            rows = self._conn().execute(f"SELECT record FROM profiles WHERE key IN ({marks})", list(keys)).fetchall()
        profiles = (ShopperProfile.from_record(json.loads(record)) for (record,) in rows)
        return {p.key: p for p in profiles}

    def apply(self, events: Sequence[ProfileEvent], settings: PersonalisationSettings) -> int:
        keys = sorted({key for event in events for key in event.keys()})
        if not keys:
            return 0
        with self._errors("write"):
            conn = self._conn()
            with _immediate(conn):  # read-modify-write: no other process may write in between
                _expire_tombstones(conn)
                held = tombstones_of(events)
                marks = ",".join("?" * len(held))
                forgotten = dict(conn.execute(f"SELECT key, at FROM forgotten WHERE key IN ({marks})", held))
                events = [event for event in events if not held_back(event, forgotten)]
                changed = updated_profiles(
                    self.get_many(sorted({k for e in events for k in e.keys()})), events, settings
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO profiles (key, user_id, updated_at, record) VALUES (?, ?, ?, ?)",
                    [(p.key, p.owner, p.updated_at, json.dumps(p.to_record())) for p in changed.values()],
                )
        return len(changed)

    def forget(self, user_id: str) -> int:
        with self._errors("forget"):
            conn = self._conn()
            now = time.time()
            with _immediate(conn):  # an apply waits for both, and then sees the tombstones
                owned = [key for (key,) in conn.execute("SELECT key FROM profiles WHERE user_id = ?", (user_id,))]
                removed = conn.execute(
                    "DELETE FROM profiles WHERE user_id = ? OR key = ?", (user_id, user_key(user_id))
                ).rowcount
                conn.executemany(
                    "INSERT OR REPLACE INTO forgotten (key, at) VALUES (?, ?)",
                    [(tombstone(key), now) for key in {user_key(user_id), *owned}],
                )
            self._scrub(conn)
        return removed

    def purge(self, before: float, max_profiles: int | None = None, limit: int | None = None) -> int:
        room = limit  # None: no limit

        def steps(select: str, args: tuple[float, ...], most: int | None) -> int:
            """Delete what ``select`` finds (its last parameter the step's size), a step at a time, each its own
            short write: at most ``most`` (None: all of it) and the room left."""
            nonlocal room
            done = 0
            while True:
                size = min(n for n in (PURGE_STEP, room, None if most is None else most - done) if n is not None)
                if size <= 0:
                    return done
                removed = conn.execute(f"DELETE FROM profiles WHERE rowid IN ({select})", (*args, size)).rowcount
                done += removed
                room = None if room is None else room - removed
                if removed < size:
                    return done

        with self._errors("purge"):
            conn = self._conn()
            removed = steps("SELECT rowid FROM profiles WHERE updated_at < ? LIMIT ?", (before,), None)
            if max_profiles is not None:
                (count,) = conn.execute("SELECT count(*) FROM profiles").fetchone()
                excess = count - max_profiles
                for sessions in (True, False):
                    if excess > 0:
                        evicted = steps(OLDEST[sessions], (), excess)
                        removed, excess = removed + evicted, excess - evicted
            _expire_tombstones(conn)
            self._scrub(conn)
        return removed

    def clear(self) -> None:
        with self._errors("clear"):
            conn = self._conn()
            conn.execute("DELETE FROM profiles")  # the tombstones stay: events in flight are still held back
            self._scrub(conn)

    def _scrub(self, conn: sqlite3.Connection) -> None:
        """Copy the deletes into the file (secure_delete zeroes the freed cells) and empty the write-ahead log,
        which still holds the pages as they were before.

        SQLite answers a checkpoint that readers kept from finishing (past the busy timeout) with a row, not an
        error; then the old pages are still in the log, so that is raised: a forget must not say it is done."""
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        if busy:
            raise ProfileStoreError(
                f"profile store {self.path}: the deleted profiles are still in the write-ahead log (readers kept "
                f"it for over {self.busy_timeout_s:g}s); run the forget again"
            )

    def close(self) -> None:
        with self._lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()
        self._local = threading.local()
