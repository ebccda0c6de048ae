"""A value built again in the background once older than its interval: every caller gets the current one at once.

The also-clicked table (reco_api), the completion suggester's titles (completion) and the attribute names that
name/value facets list (name_value_facets) are read from data that grows (the UBI log, the product store) and
may be a little stale: the caller that finds the value stale starts one thread to build the next, and every
caller answers from the value it has until that is in. :class:`PerStore` keeps one such value per product store.
"""

from __future__ import annotations

import logging
import threading
import time
import weakref
from collections.abc import Callable
from typing import Generic, TypeVar

from ..core.store import ProductStore

log = logging.getLogger(__name__)
T = TypeVar("T")


class Refreshed(Generic[T]):
    """``initial`` until ``build`` has run; built again on a thread of its own once older than ``refresh_s``.

    ``built``: whether ``initial`` is already a fresh build (else the first :meth:`current` starts one).
    ``failed``: what the log says when a build raises; the previous value stays until the next interval.
    """

    def __init__(self, build: Callable[[], T], refresh_s: float, initial: T, *, name: str, failed: str, built: bool):
        self.build = build
        self.refresh_s = refresh_s
        self.value = initial
        self.name = name
        self.failed = failed
        self.built_at = time.monotonic() if built else -float("inf")
        self._building = threading.Lock()

    def current(self) -> T:
        stale = time.monotonic() - self.built_at > self.refresh_s
        if stale and self._building.acquire(blocking=False):
            threading.Thread(target=self._refresh_then_release, name=self.name, daemon=True).start()
        return self.value

    def refresh(self) -> None:
        """Build the value now; a failure keeps the old one (logged) until the next refresh."""
        try:
            self.value = self.build()
        except Exception:  # both values are conveniences: the previous one serves until a build succeeds
            log.exception(self.failed)
        self.built_at = time.monotonic()

    def _refresh_then_release(self) -> None:
        try:
            self.refresh()
        finally:
            self._building.release()


class PerStore(Generic[T]):
    """One :class:`Refreshed` value per product store, built from the store at its first use, again once older
    than ``refresh_s``; dropped with the store when a reload replaces it."""

    def __init__(self, build: Callable[[ProductStore], T], refresh_s: float, *, name: str, failed: str):
        self.build = build
        self.refresh_s = refresh_s
        self.name = name
        self.failed = failed
        self.values: weakref.WeakKeyDictionary[ProductStore, Refreshed[T]] = weakref.WeakKeyDictionary()
        self.lock = threading.Lock()

    def get(self, store: ProductStore) -> T:
        with self.lock:
            refreshed = self.values.get(store)
        if refreshed is None:
            stores = weakref.ref(store)  # the builder holds the store weakly, so the entry can go with it

            def build() -> T:
                live = stores()
                if live is None:
                    raise LookupError("the product store was replaced")
                return self.build(live)

            refreshed = Refreshed(build, self.refresh_s, build(), name=self.name, failed=self.failed, built=True)
            with self.lock:
                self.values[store] = refreshed
        return refreshed.current()
