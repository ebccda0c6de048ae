"""A bounded, thread-safe cache whose entries expire: the least recently used go first past ``size``, and each is
forgotten ``ttl_s`` seconds after it was stored.

Why: what the service may answer again without recomputing changes when the data under it does, and nothing
tells every worker when: a time bound keeps a stale entry's life short, a size bound keeps memory flat. One
implementation for the search results a worker answers again (serving/result_cache.py) and the cluster's word
readings (backends/cluster.py).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

V = TypeVar("V")
Clock = Callable[[], float]


@dataclass
class _Entry(Generic[V]):
    value: V
    expires: float


class ExpiringCache(Generic[V]):
    """Values by key, at most ``size`` of them, each for ``ttl_s`` seconds of ``clock``."""

    def __init__(self, size: int, ttl_s: float, clock: Clock = time.monotonic):
        self.size = size
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: OrderedDict[Hashable, _Entry[V]] = OrderedDict()
        self._lock = threading.Lock()
        self._cleared = 0

    @property
    def cleared(self) -> int:
        """How many times the cache was cleared: read before computing a value, to store it ``as_of`` then."""
        return self._cleared

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: Hashable) -> V | None:
        """The stored value, or None where it expired or was never stored."""
        now = self.clock()
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.expires <= now:
                del self._entries[key]
                entry = None
            if entry is not None:
                self._entries.move_to_end(key)
        return None if entry is None else entry.value

    def put(self, key: Hashable, value: V, as_of: int | None = None) -> None:
        """Store ``value``; with ``as_of`` (:attr:`cleared` before it was computed), not where the cache was cleared
        since: the value may predate the change the clear was for (a write while the cluster was being asked)."""
        with self._lock:
            if as_of is not None and as_of != self._cleared:
                return
            self._entries[key] = _Entry(value, self.clock() + self.ttl_s)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._cleared += 1
