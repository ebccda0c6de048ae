"""Shopper profiles in the service: who is searching, their profile for the ranking, events in, forgetting.

Identity: ``POST /search`` takes ``user_id`` and ``session_id`` in its body;
the Elasticsearch-compatible endpoints read the ``X-Search-Rerank-User`` and
``X-Search-Rerank-Session`` headers, since a front end can add headers to its
Elasticsearch client's requests but not fields to a Query DSL body. A request
with neither is anonymous and is ranked exactly as before.

The store (see core.profile_store) is opened once per worker; every worker
opens the same one (a SQLite file in WAL mode, or the cluster's profile
index), so an event one worker applies is seen by the next search on any.
Store errors never fail a request: a search is ranked without
personalisation (``degraded.personal = profile_store_unavailable``), an event
is still kept in the UBI log, and both are counted
(``search_rerank_profile_store_errors``). A store that keeps failing opens
its circuit breaker (see core.breaker): until it cools down, searches and
events leave it out at once (``circuit_open``) instead of each waiting out
its deadline.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from flask import Blueprint, Flask, current_app, jsonify, request

from ..backends.profile_index import open_profile_store
from ..core.breaker import PROFILES, CircuitBreaker, Guards, outcome_reported
from ..core.errors import CircuitOpenError
from ..core.pipeline import SearchPipeline
from ..core.profile import ShopperProfile, safe_id
from ..core.profile_store import FORGET_WINDOW_S, ProfileStore, profile_events, search_profile
from ..core.reasons import CIRCUIT_OPEN, PROFILE_STORE_UNAVAILABLE, TIMEOUT, UBI_WRITE_FAILED
from ..core.settings import Settings
from ..data.clicks import shopper_action
from . import metrics
from .api_models import FieldError
from .context import UBI, admin_refusal, current_settings, error_response
from .identity import IDENTITY_KEYS, UnsignedId, named_for_forgetting, verified
from .json_input import InvalidBody
from .ubi import SAFE_ID_PATTERN, UbiEvent, UbiLog, UbiWriteError

log = logging.getLogger(__name__)
profiles = Blueprint("profiles", __name__)

USER_HEADER, SESSION_HEADER = "X-Search-Rerank-User", "X-Search-Rerank-Session"
STORE = "profile_store"
REOPEN = "profile_store_reopen"
REOPEN_EVERY_S = 30.0
"""How long a worker whose profile store did not open waits before it tries again."""
_reopening = threading.Lock()
PURGE_EVERY_S = 3600.0
"""How often a worker removes expired profiles from the store, and those past ``max_profiles``, on the first event
after the interval."""
PURGE_CHUNK = 10_000
"""Profiles one store call of a purge removes at most (the store deletes them in short steps of its own); between
two, a worker that is stopping stops the purge, so that it never waits for a long one."""
PURGE_MOST = 250_000
"""Profiles one purge removes at most; the next interval's purge goes on. A store above ``max_profiles`` by more
(an upgrade's first purge, a flood of fresh session ids above 70 a second for an hour) comes back under it over
the next intervals, each purge a bounded piece of work on one of the worker's profile threads."""
T = TypeVar("T")


class ProfileAccess:
    """The worker's profile store, every call on a small pool of its own threads under a deadline.

    A store that hangs (a cluster node in a long pause, a SQLite writer holding its lock) must cost a search
    ``personalisation.read_timeout_s`` at most, and an event ``write_timeout_s``; a thread cannot be killed,
    so the calls run on threads of their own, which a hung store can exhaust without touching the request
    threads (as the pipeline's legs do). With a ``breaker``, a store that keeps failing or timing out is
    not called at all until it cools down (:class:`CircuitOpenError`): each search would otherwise wait out
    its whole read deadline while the store is down.
    """

    def __init__(self, store: ProfileStore, threads: int = 4, breaker: CircuitBreaker | None = None):
        self.store = store
        self.breaker = breaker
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="profiles")
        self._next_purge = 0.0
        self._purge_lock = threading.Lock()
        self._timers: list[threading.Timer] = []
        self._closing = False

    def purge_expired(self, ttl_s: float, now: float, max_profiles: int | None = None) -> bool:
        """Start removing the profiles nobody updated for ``ttl_s``, and the least recently updated past
        ``max_profiles``, sessions first (on the pool: an event does not wait for it), at most once per
        :data:`PURGE_EVERY_S` in this worker; whether it started now.

        Searches ignore expired profiles already, but ``POST /ubi/events`` is open to any caller, and every new
        session id adds a profile: without this the store would only grow, and with the TTL alone it grows with
        every fresh id sent within it.
        """
        with self._purge_lock:
            if now < self._next_purge:
                return False
            self._next_purge = now + PURGE_EVERY_S
        self._pool.submit(self._purge, now - ttl_s, max_profiles)
        return True

    def purge_after_forget(self, ttl_s: float, max_profiles: int | None = None) -> None:
        """Once a forget's tombstones have done their work (:data:`FORGET_WINDOW_S`), remove them, with the
        expired profiles, though no event comes: on a quiet store they stayed until the next event's purge, a
        digest of the shopper's key kept for hours or days."""
        timer = threading.Timer(FORGET_WINDOW_S + 1.0, self._purge_now, args=(ttl_s, max_profiles))
        timer.daemon = True
        with self._purge_lock:
            self._timers = [t for t in self._timers if t.is_alive()] + [timer]
        timer.start()

    def _purge_now(self, ttl_s: float, max_profiles: int | None) -> None:
        with contextlib.suppress(RuntimeError):  # the pool is shut down: the worker is stopping
            self._pool.submit(self._purge, time.time() - ttl_s, max_profiles)

    def close(self) -> None:
        """Wait for the calls in flight (a purge may be running on the pool), then close the store: closing its
        connections under a running call would crash SQLite."""
        with self._purge_lock:
            self._closing = True  # a purge running stops after its current chunk
            for timer in self._timers:
                timer.cancel()
        self._pool.shutdown(wait=True)
        self.store.close()

    def _purge(self, before: float, max_profiles: int | None = None) -> None:
        """Remove what expired before ``before`` and what is past ``max_profiles``, a :data:`PURGE_CHUNK` per
        store call, :data:`PURGE_MOST` at most."""
        removed = 0
        try:
            while not self._closing and removed < PURGE_MOST:
                chunk = min(PURGE_CHUNK, PURGE_MOST - removed)
                done = self.store.purge(before, max_profiles, limit=chunk)
                removed += done
                if done < chunk:
                    break
        except Exception as exc:  # the next interval tries again
            log.warning("purging expired profiles failed: %s: %s", type(exc).__name__, exc)
            metrics.PROFILE_STORE_ERRORS.labels("purge").inc()
        if removed:
            log.info("purged %d profile(s), expired or past max_profiles (%s)", removed, max_profiles)

    def call(self, fn: Callable[[ProfileStore], T], timeout_s: float) -> T:
        """``fn(store)``, or TimeoutError when it takes longer than ``timeout_s`` (it may still finish later), or
        :class:`CircuitOpenError` without calling the store when its breaker is open."""
        with outcome_reported(self.breaker):
            future = self._pool.submit(fn, self.store)
            try:
                return future.result(timeout=timeout_s)
            except FutureTimeout:
                future.cancel()
                raise TimeoutError(f"profile store: no answer within {timeout_s:g}s") from None


def open_store(app: Flask, settings: Settings) -> None:
    """Open the worker's profile store when personalisation is on; a store that cannot open is logged and left
    out (searches then rank without personalisation, flagged), never a worker that cannot start, and tried
    again by :func:`current_store` every :data:`REOPEN_EVERY_S`."""
    app.extensions[STORE] = None
    app.extensions[REOPEN] = None
    if not settings.personalisation.enabled:
        return
    guards: Guards | None = app.extensions.get("guards")
    try:
        app.extensions[STORE] = ProfileAccess(
            open_profile_store(settings), breaker=guards.breakers[PROFILES] if guards is not None else None
        )
    except Exception:
        log.exception("profile store %r cannot open; serving without personalisation", settings.personalisation.store)
        metrics.PROFILE_STORE_ERRORS.labels("open").inc()
        app.extensions[REOPEN] = (time.monotonic() + REOPEN_EVERY_S, settings)


def current_store() -> ProfileAccess | None:
    """The worker's store; one that did not open is tried again when it is due (a lock another worker held at
    start, a cluster not up yet), by one request at a time, so that personalisation recovers without a restart."""
    app = current_app
    store = app.extensions.get(STORE)
    due = app.extensions.get(REOPEN)
    if store is not None or due is None or time.monotonic() < due[0] or not _reopening.acquire(blocking=False):
        return store
    try:
        if app.extensions.get(STORE) is None:
            open_store(app, due[1])
        return app.extensions.get(STORE)
    finally:
        _reopening.release()


def header_identity() -> tuple[str | None, str | None]:
    """The shopper named by the identity headers; a header that is not an id (or a user header not signed, when
    the service has identity keys) is a 400 naming it, an empty one names nobody (:func:`~.ubi.nobody_if_empty`)."""
    ids = []
    for header in (USER_HEADER, SESSION_HEADER):
        value = request.headers.get(header) or None
        if value is not None and header == USER_HEADER:
            try:
                value = verified(value, current_app.config[IDENTITY_KEYS])
            except UnsignedId as exc:
                raise InvalidBody(header, str(exc)) from None
        if value is not None and safe_id(value) is None:
            raise InvalidBody(header, f"must match {SAFE_ID_PATTERN}")
        ids.append(value)
    return ids[0], ids[1]


def request_profile(
    user_id: str | None, session_id: str | None, settings: Settings
) -> tuple[ShopperProfile | None, str | None]:
    """The profile this search ranks with (None: anonymous, unknown, or personalisation off), and the reason
    code when the store failed."""
    if not settings.personalisation.enabled or (user_id is None and session_id is None):
        return None, None
    store = current_store()
    if store is None:
        return None, PROFILE_STORE_UNAVAILABLE
    personal, now = settings.personalisation, time.time()
    try:
        return store.call(
            lambda s: search_profile(s, user_id, session_id, personal, now), personal.read_timeout_s
        ), None
    except CircuitOpenError:  # counted by the breaker's metrics; the failures that opened it were logged
        return None, CIRCUIT_OPEN
    except Exception as exc:  # a store down or slow must not take search down
        reason = TIMEOUT if isinstance(exc, TimeoutError) else PROFILE_STORE_UNAVAILABLE
        log.warning("profile read failed (%s): %s: %s", reason, type(exc).__name__, exc)
        metrics.PROFILE_STORE_ERRORS.labels("read").inc()
        return None, reason


def apply_events(events: Sequence[UbiEvent], pipeline: SearchPipeline, settings: Settings) -> int:
    """Apply the events that say something about taste to the profiles they name, before the request is
    answered, so the shopper's next search sees them; returns how many profiles changed (0 on a store error,
    which is logged and counted: the events are in the UBI log already, and ``profiles build`` replays it)."""
    store = current_store()
    personal = settings.personalisation
    if store is None or not personal.enabled:
        return 0
    store.purge_expired(personal.ttl_s, time.time(), personal.max_profiles)
    weighted = [action for action, weight in personal.action_weights.items() if weight > 0]
    try:
        actions = [a for a in (shopper_action(e.model_dump(mode="json"), weighted) for e in events) if a is not None]
        if not actions:
            return 0
        ids = sorted({a.product_id for a in actions})
        updates = profile_events(actions, pipeline.store.get(ids), pipeline.vectors_of(ids))
        return store.call(lambda s: s.apply(updates, personal), personal.write_timeout_s)
    except Exception as exc:  # the events are logged; a store error must not lose or refuse them
        log.error("%d UBI event(s) not applied to profiles: %s: %s", len(events), type(exc).__name__, exc)
        metrics.PROFILE_STORE_ERRORS.labels("write").inc()
        return 0


@profiles.delete("/profiles/<user_id>")
def forget(user_id: str):
    """Forget a shopper: their long-term profile and every session profile they owned, with no trace left in
    the store. Protected by the admin token (``Authorization: Bearer ...``), as ``/admin/reload`` is."""
    refused = admin_refusal("forgetting", "DELETE /profiles/{user_id}")
    if refused is not None:
        return refused
    if safe_id(user_id) is None:
        return error_response(400, "invalid request", f"user_id must match {SAFE_ID_PATTERN}")
    try:
        user_id = named_for_forgetting(user_id, current_app.config[IDENTITY_KEYS])
    except UnsignedId:
        message = "its signature is not the identity key's for this id: send the id signed as the shop signs it"
        return error_response(400, "invalid request", fields=[FieldError(field="user_id", message=message)])
    store = current_store()
    if store is None:
        return error_response(503, "profile store unavailable", "personalisation is off or its store did not open")
    ubi: UbiLog | None = current_app.extensions.get("ubi_log")
    if ubi is not None:  # first, so that a rebuild from the logs never brings back what is removed below
        try:
            ubi.record_forget(user_id, current_settings().service.ubi_application)
        except UbiWriteError as exc:
            log.error("forgetting a shopper failed: the forget was not recorded (%s): %s", UBI_WRITE_FAILED, exc)
            metrics.DEGRADED.labels(UBI).inc()
            message = "the forget could not be recorded in the UBI log: the shopper is not forgotten yet; try again"
            return error_response(503, "UBI log unavailable", message, reason=UBI_WRITE_FAILED)
    try:
        removed = store.store.forget(user_id)  # no deadline: an admin waits for the answer that it is done
    except Exception as exc:
        log.error("forgetting a shopper failed: %s: %s", type(exc).__name__, exc)
        metrics.PROFILE_STORE_ERRORS.labels("forget").inc()
        return error_response(503, "profile store unavailable", "the shopper is not forgotten yet; try again")
    personal = current_settings().personalisation
    store.purge_after_forget(personal.ttl_s, personal.max_profiles)
    return jsonify({"forgotten": removed})
