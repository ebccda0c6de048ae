"""The pipeline a worker serves now, replaceable while requests run.

A reload opens the new indexes and models completely before anything
changes, then replaces the serving pipeline with a single reference swap
under a lock: a request sees the old pipeline or the new one, never a mix.
Each request leases the pipeline it started on and keeps it to the end, so a
reload never pulls the indexes out from under a search in flight. The old
pipeline is closed when its last lease is returned, or when the grace period
runs out, whichever comes first: a request hanging past the grace period
must not keep a second copy of the indexes and models in memory for ever.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

from ..core.pipeline import SearchPipeline

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Lease:
    """One request's hold on the pipeline it started with; give it back with :meth:`LivePipeline.release`."""

    pipeline: SearchPipeline
    in_flight: int = 0
    retired: bool = False
    closed: bool = False


class LivePipeline:
    def __init__(self, pipeline: SearchPipeline, grace_s: float):
        self.grace_s = grace_s
        self._lock = threading.Lock()
        self._current = Lease(pipeline)
        self._draining: list[Lease] = []

    @property
    def current(self) -> SearchPipeline:
        return self._current.pipeline

    @property
    def draining(self) -> int:
        """Replaced pipelines not closed yet (requests still on them, within the grace period)."""
        with self._lock:
            return len(self._draining)

    def acquire(self) -> Lease:
        with self._lock:
            lease = self._current
            lease.in_flight += 1
            return lease

    def release(self, lease: Lease) -> None:
        with self._lock:
            lease.in_flight -= 1
            idle = lease.retired and lease.in_flight == 0
        if idle:
            self._close(lease, "its last request finished")

    def swap(self, pipeline: SearchPipeline) -> None:
        """Serve ``pipeline`` from now on; the one it replaces closes once idle or after the grace period."""
        with self._lock:
            old, self._current = self._current, Lease(pipeline)
            old.retired = True
            idle = old.in_flight == 0
            if not idle:
                self._draining.append(old)
        if idle:
            self._close(old, "no request was using it")
            return
        timer = threading.Timer(self.grace_s, self._close, (old, f"the {self.grace_s:g}s grace period ran out"))
        timer.daemon = True
        timer.start()

    def _close(self, lease: Lease, why: str) -> None:
        with self._lock:
            if lease.closed:
                return
            lease.closed = True
            if lease in self._draining:
                self._draining.remove(lease)
            busy = lease.in_flight
        log.info("closing the replaced pipeline: %s", why, extra={"fields": {"in_flight": busy}})
        lease.pipeline.close()
