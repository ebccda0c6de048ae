"""Shopper profiles in an Elasticsearch/OpenSearch index: the profile store for several machines.

The same cluster the lexical leg uses (``lexical.url`` and its credentials),
one document per profile, id = the profile's key. Reads are real-time GETs,
so an event written by one machine is seen by the next search on any other
without waiting for a refresh. Writes are optimistic: read with the
document's sequence number, write back only if nobody wrote in between
(``if_seq_no``), else read again; two workers applying events to one shopper
at once therefore both count.

The profile itself is kept as an unindexed object (``enabled: false``): only
the owner (``user_id``), ``updated_at`` and ``kind`` (``session`` or ``user``)
are searchable, for forgetting a shopper, for the TTL purge and for the purge
past ``personalisation.max_profiles`` (the least recently updated, sessions
first). An index made before ``kind`` gets it added to its mapping when opened;
its profiles written before then have none, and of those one without an owner
(an anonymous session's) counts as a session.

A forget first writes its tombstone (a document keyed by a digest of the
shopper's key, owner ``""``, which no shopper is), then deletes. An event received
before it and applied after it is held back by the tombstone when the apply
reads it first, and when the apply read before the tombstone was written, its
check after writing finds it and deletes what it wrote: a write that lands after
the delete comes after the tombstone, which is read in real time. Tombstones go
after :data:`~search_rerank.core.profile_store.FORGET_WINDOW_S`, at the next
forget or purge.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from ..core.errors import ConfigError
from ..core.profile import ShopperProfile, user_key
from ..core.profile_store import (
    FORGET_WINDOW_S,
    ProfileEvent,
    ProfileStore,
    ProfileStoreError,
    SQLiteProfileStore,
    held_back,
    is_session,
    sqlite_profile_path,
    tombstone,
    tombstones_of,
    updated_profiles,
)
from ..core.settings import PersonalisationSettings, Settings
from .cluster import RETRIEVERS, ClusterRetriever

log = logging.getLogger(__name__)
T = TypeVar("T")

PROFILE_MAPPING = {
    "settings": {"number_of_shards": 1},
    "mappings": {
        "dynamic": "strict",
        "properties": {
            "user_id": {"type": "keyword"},
            "updated_at": {"type": "double"},
            "kind": {"type": "keyword"},
            "profile": {"type": "object", "enabled": False},
        },
    },
}
KIND_MAPPING = {"properties": {"kind": {"type": "keyword"}}}
PAGE = 10_000
"""The most profiles a purge past max_profiles finds in one search, and deletes in one request: a search's
window (index.max_result_window, 10,000 by default on both engines)."""
CONFLICT_RETRIES = 12
"""Times a write is tried again after another process wrote the same profile in between."""
CONFLICT_BACKOFF_S = 0.005
CONFLICT_BACKOFF_CAP_S = 0.25
"""Before each try again, a random wait of up to ``CONFLICT_BACKOFF_S * 2**tries`` seconds (at most the cap):
writers that conflicted would otherwise read and write again in step and conflict again. Measured on osmem, 16
writers of one shopper at once: tried again at once, five tries left 2-5 of them unwritten on every run."""
MAX_OWNED_PROFILES = 10_000
"""The most profiles of one shopper a forget leaves tombstones for (their own and their sessions', within the
TTL); past it the delete still removes them all, and only events in flight on the rest could write one again."""
TOMBSTONE_OWNER = ""
"""The owner of a forget's tombstone: no shopper's id (an empty one is nobody), so no forget or read finds it."""
PROFILES = {"bool": {"must_not": {"term": {"user_id": TOMBSTONE_OWNER}}}}
"""Every profile, not the tombstones (which wait their window, and are no profile to count)."""
SESSIONS = {
    "bool": {
        "filter": [PROFILES],
        "should": [
            {"term": {"kind": "session"}},
            {"bool": {"must_not": [{"exists": {"field": "kind"}}, {"exists": {"field": "user_id"}}]}},
        ],
        "minimum_should_match": 1,
    }
}
"""The session profiles (:func:`~search_rerank.core.profile_store.is_session`), which a purge past max_profiles
removes first; one written before ``kind`` was mapped is a session when it has no owner."""


class ClusterProfileStore:
    """Profiles in ``index`` on the cluster that ``client`` talks to; ``retriever`` classifies the engine's errors."""

    def __init__(self, retriever: ClusterRetriever, client: Any, index: str):
        self.retriever = retriever
        self.client = client
        self.index = index
        self._ready = False
        self._kinds = True
        """Whether profiles carry ``kind`` (the index maps it)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> ClusterProfileStore:
        engine = settings.personalisation.store
        if engine not in RETRIEVERS:
            raise ConfigError(f"personalisation.store={engine!r} is not a cluster engine ({sorted(RETRIEVERS)})")
        if not settings.lexical.url:
            raise ConfigError(f"personalisation.store={engine!r} needs lexical.url, the cluster's address")
        lexical = settings.lexical.model_copy(
            update={"backend": engine, "index": settings.personalisation.profile_index}
        )
        retriever_class = RETRIEVERS[engine]
        client = retriever_class.connect(lexical)
        return cls(retriever_class(lexical, client=client), client, lexical.index)

    def _call(self, action: str, request: Callable[[], T], allowed: tuple[int, ...] = ()) -> T | None:
        """One request; None when it failed with an ``allowed`` status, else its errors as ProfileStoreError."""
        try:
            response = request()
            return getattr(response, "body", response)
        except Exception as exc:
            failure = self.retriever.failure(exc)
            if failure is None:
                raise
            if failure.status in allowed:
                return None
            raise ProfileStoreError(
                f"profile index {self.index!r}: {action}: {failure.status} {failure.type}: {failure.reason}"
            ) from exc

    def ensure_index(self) -> None:
        """Create the profile index with its mapping unless it exists (created on first use, like a SQLite file)."""
        if self._ready:
            return
        exists = self._call("exists", lambda: self.client.indices.exists(index=self.index))
        if not exists:
            # Another process may create it between the check and here: 400 resource_already_exists is fine.
            self._call("create", lambda: self.client.indices.create(index=self.index, body=PROFILE_MAPPING), (400,))
        else:
            # An index made before ``kind`` was mapped gets it (mapped alike already: no change), since its strict
            # mapping would refuse a profile carrying it. Credentials that may write but not map (403) keep
            # writing profiles without it, and the purge then takes those without an owner for the sessions.
            mapped = self._call(
                "mapping", lambda: self.client.indices.put_mapping(index=self.index, body=KIND_MAPPING), (401, 403)
            )
            if mapped is None:
                log.warning(
                    "profile index %r: kind cannot be added to its mapping (these credentials may not map); the "
                    "purge past max_profiles takes only the anonymous sessions for sessions",
                    self.index,
                )
                self._kinds = False
        self._ready = True

    def _get(self, key: str) -> tuple[ShopperProfile | None, tuple[int, int] | None]:
        """The profile and its (seq_no, primary_term), or (None, None)."""
        doc = self._call("get", lambda: self.client.get(index=self.index, id=key), (404,))
        if not doc or not doc.get("found"):
            return None, None
        return ShopperProfile.from_record(doc["_source"]["profile"]), (doc["_seq_no"], doc["_primary_term"])

    def get_many(self, keys: Sequence[str]) -> dict[str, ShopperProfile]:
        if not keys:
            return {}
        self.ensure_index()
        body = {"ids": list(keys)}
        response = self._call("mget", lambda: self.client.mget(index=self.index, body=body))
        out = {}
        for doc in (response or {}).get("docs", []):
            if doc.get("found"):
                profile = ShopperProfile.from_record(doc["_source"]["profile"])
                out[profile.key] = profile
        return out

    def apply(self, events: Sequence[ProfileEvent], settings: PersonalisationSettings) -> int:
        if not any(event.keys() for event in events):
            return 0
        self.ensure_index()
        held = tombstones_of(events)
        before = self._tombstones(held)
        events = [event for event in events if not held_back(event, before)]
        by_key: dict[str, list[ProfileEvent]] = {}
        for event in events:
            for key in event.keys():
                by_key.setdefault(key, []).append(event)
        for key, own in by_key.items():
            self._apply_one(key, own, settings)
        after = self._tombstones(held)
        late = [event for event in events if held_back(event, after)]
        for key in sorted({key for event in late for key in event.keys()}):  # forgotten while applied: gone again
            self._delete(key)
        return len(by_key)

    def _delete(self, key: str) -> None:
        self._call("forget", lambda: self.client.delete(index=self.index, id=key, refresh=True), (404,))

    def _tombstones(self, keys: Sequence[str]) -> dict[str, float]:
        """The forgets' times among tombstone ``keys`` (real-time GETs, as profiles are read)."""
        if not keys:
            return {}
        response = self._call("mget", lambda: self.client.mget(index=self.index, body={"ids": list(keys)}))
        docs = (response or {}).get("docs", [])
        return {doc["_id"]: doc["_source"]["updated_at"] for doc in docs if doc.get("found")}

    def _apply_one(self, key: str, events: list[ProfileEvent], settings: PersonalisationSettings) -> None:
        for tries in range(CONFLICT_RETRIES + 1):
            if tries:
                time.sleep(random.uniform(0, min(CONFLICT_BACKOFF_CAP_S, CONFLICT_BACKOFF_S * 2**tries)))
            current, version = self._get(key)
            changed = updated_profiles({key: current} if current is not None else {}, events, settings)
            profile = changed[key]
            body = {
                "user_id": profile.owner,
                "updated_at": profile.updated_at,
                **({"kind": "session" if is_session(key) else "user"} if self._kinds else {}),
                "profile": profile.to_record(),
            }
            if version is None:
                options: dict[str, Any] = {"op_type": "create"}
            else:
                options = {"if_seq_no": version[0], "if_primary_term": version[1]}
            written = self._call(
                "write", lambda: self.client.index(index=self.index, id=key, body=body, **options), (409,)
            )
            if written is not None:
                return
            log.info("profile %s was written by another process meanwhile; applying again", key)
        raise ProfileStoreError(
            f"profile index {self.index!r}: write: still conflicting after {CONFLICT_RETRIES} tries"
        )

    def _delete_where(
        self, action: str, query: dict[str, Any], every_one: bool = False, max_docs: int | None = None
    ) -> int:
        """Delete what ``query`` matches (at most ``max_docs``); with ``every_one``, a document the delete skipped
        (written again while it ran: a version conflict) or failed on raises, since a forget must not report a
        shopper gone while a profile of theirs is left."""
        self.ensure_index()
        # Deletes by query see only what a refresh made searchable: refresh first so a profile written a
        # moment ago is deleted too, and after, so that no search still finds what was deleted.
        self._call("refresh", lambda: self.client.indices.refresh(index=self.index))
        response = self._call(
            action,
            lambda: self.client.delete_by_query(
                index=self.index,
                body={"query": query, **({} if max_docs is None else {"max_docs": max_docs})},
                refresh=True,
                conflicts="proceed",
            ),
        )
        response = response or {}
        if every_one and (response.get("version_conflicts") or response.get("failures")):
            raise ProfileStoreError(
                f"profile index {self.index!r}: {action}: {response.get('version_conflicts', 0)} profile(s) changed "
                f"while being deleted; run it again"
            )
        return int(response.get("deleted", 0))

    def forget(self, user_id: str) -> int:
        self.ensure_index()
        mine = {"bool": {"should": [{"term": {"user_id": user_id}}, {"ids": {"values": [user_key(user_id)]}}]}}
        self._call("refresh", lambda: self.client.indices.refresh(index=self.index))
        found = self._call(
            "forget",
            lambda: self.client.search(
                index=self.index, body={"query": mine, "_source": False, "size": MAX_OWNED_PROFILES}
            ),
        )
        owned = {hit["_id"] for hit in (found or {}).get("hits", {}).get("hits", [])}
        now = time.time()
        for key in sorted({user_key(user_id), *owned}):
            self._bury(key, now)
        self._expire_tombstones()
        return self._delete_where("forget", mine, every_one=True)

    def _bury(self, key: str, at: float) -> None:
        """Write the tombstone of profile ``key``, forgotten ``at``."""
        body = {"user_id": TOMBSTONE_OWNER, "updated_at": at, "profile": {}}
        self._call("forget", lambda: self.client.index(index=self.index, id=tombstone(key), body=body))

    def purge(self, before: float, max_profiles: int | None = None, limit: int | None = None) -> int:
        self._expire_tombstones()
        expired = {"bool": {"filter": [{"range": {"updated_at": {"lt": before}}}, PROFILES]}}
        removed = self._delete_where("purge", expired, max_docs=limit)
        room = None if limit is None else limit - removed
        if max_profiles is None or room == 0:
            return removed
        counted = self._call("purge", lambda: self.client.count(index=self.index, body={"query": PROFILES}))
        excess = int((counted or {}).get("count", 0)) - max_profiles
        for which in (SESSIONS, PROFILES):
            while excess > 0 and room != 0:
                size = min(n for n in (PAGE, excess, room) if n is not None)
                evicted = self._evict_oldest(which, size)
                if not evicted:
                    break
                removed, excess = removed + evicted, excess - evicted
                room = None if room is None else room - evicted
        return removed

    def _evict_oldest(self, which: dict[str, Any], size: int) -> int:
        """Delete the ``size`` least recently updated profiles ``which`` matches; returns how many. One written
        again between the search and the delete is newer than the search's last and stays."""
        body = {"query": which, "sort": [{"updated_at": "asc"}], "size": size, "_source": False}
        found = self._call("purge", lambda: self.client.search(index=self.index, body=body))
        hits = (found or {}).get("hits", {}).get("hits", [])
        if not hits:
            return 0
        oldest = {"ids": {"values": [hit["_id"] for hit in hits]}}
        still = {"range": {"updated_at": {"lte": hits[-1]["sort"][0]}}}
        return self._delete_where("purge", {"bool": {"filter": [oldest, still, which]}})

    def _expire_tombstones(self) -> None:
        """Delete the tombstones older than FORGET_WINDOW_S."""
        expired = {"range": {"updated_at": {"lt": time.time() - FORGET_WINDOW_S}}}
        self._delete_where("purge", {"bool": {"filter": [{"term": {"user_id": TOMBSTONE_OWNER}}, expired]}})

    def clear(self) -> None:
        self._delete_where("clear", PROFILES)  # the tombstones stay: events in flight are still held back

    def close(self) -> None:
        close = getattr(self.client, "close", None)
        if close is not None:
            close()


def open_profile_store(settings: Settings) -> ProfileStore:
    """The store ``personalisation.store`` names: the SQLite file by default, else the cluster index."""
    if settings.personalisation.store == "sqlite":
        return SQLiteProfileStore(sqlite_profile_path(settings))
    return ClusterProfileStore.from_settings(settings)
