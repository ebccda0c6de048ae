"""Carries a reload from the gunicorn worker that was asked to every other worker of the same server.

``POST /admin/reload`` reaches one worker; without this, the others would go
on serving the old indexes and a shopper's results would depend on which
worker answered. The worker that reloaded writes a new stamp into a file
that all workers of the server share (``gunicorn_conf`` names it in
``SEARCH_RERANK_RELOAD_FILE`` before forking); every worker checks the file
once a ``interval_s`` in a background thread and reloads itself when the
stamp changes. A file rather than a signal to the master because a signal
would restart the workers, dropping the in-place swap that lets requests in
flight finish on their own pipeline, and rather than a socket because the
file needs nothing running.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..indexing.versions import write_atomically

log = logging.getLogger(__name__)
RELOAD_FILE_ENV = "SEARCH_RERANK_RELOAD_FILE"
EXPOSURE_FILE_ENV = "SEARCH_RERANK_EXPOSURE_FILE"
"""The exposure controller's state file, shared the same way and watched by the same watcher (see exposure_loop)."""


def read_stamp(path: Path) -> str | None:
    """The shared file's last announcement; None before the first one (or once its directory is cleaned up)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None


SERVED_FILE = "served"
"""Beside the announcements: the version directory the workers serve, as the last to open one wrote it."""


def record_served(reload_file: Path, root: Path) -> None:
    """Note that this worker serves the version at ``root`` (see :func:`served_by_the_others`)."""
    try:
        write_atomically(Path(reload_file).parent / SERVED_FILE, str(root))
    except OSError as exc:  # a worker that cannot say so serves on; one booted later may then fail to start
        log.warning("cannot note the version served (%s)", exc)


def served_by_the_others(reload_file: Path) -> Path | None:
    """The version the server's workers serve, for a worker booted (gunicorn replaces one at ``max_requests``,
    after a timeout or a crash) onto a current version it cannot open: an index built with other settings (no
    dense leg), files lost. Such a worker exited as at a start, and gunicorn's master, reading a worker that
    cannot load the app as a start that cannot succeed, shut the whole server down, while the others served.
    None before any worker served one (the server's start, which fails with the reason)."""
    try:
        served = (Path(reload_file).parent / SERVED_FILE).read_text(encoding="utf-8").strip()
    except OSError:
        return None
    return Path(served) if served else None


class ReloadBroadcast:
    def __init__(self, path: Path, reload: Callable[[], object], interval_s: float = 1.0):
        self.path = Path(path)
        self.reload = reload
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._seen = self._stamp()

    @classmethod
    def since(cls, stamp: str | None, path: Path, reload: Callable[[], object]) -> ReloadBroadcast:
        """A broadcast that acts on every announcement after ``stamp``, read before this worker opened its
        indexes: a worker takes seconds to load, and a reload announced meanwhile (a reindex finishing while
        gunicorn boots or replaces a worker) may have come after it opened the old ones. Read after loading, that
        announcement would pass for one already acted on, and the worker would serve the old indexes until the
        next reload. At worst this reloads once for nothing."""
        broadcast = cls(path, reload)
        broadcast._seen = stamp
        return broadcast

    def announce(self) -> None:
        """Tell the other workers to reload; called once this worker has reloaded, so it skips its own stamp."""
        stamp = f"{time.time_ns()} {os.getpid()}\n"
        with self._lock:
            write_atomically(self.path, stamp)
            self._seen = stamp

    def start(self) -> None:
        threading.Thread(target=self._watch, name="reload-broadcast", daemon=True).start()

    def _watch(self) -> None:
        unreadable = False
        while True:
            time.sleep(self.interval_s)
            with self._lock:
                try:
                    stamp = self._stamp()
                except OSError as exc:
                    # Out of file descriptors (a flood of connections), the file unreadable: the thread died here,
                    # and this worker never followed another reload. Said once, tried again each interval.
                    if not unreadable:
                        log.warning("cannot read the reload announcements (%s); trying again", exc)
                    unreadable = True
                    continue
                unreadable = False
                # No file is no announcement: a server that never reloaded, or its directory cleaned up.
                if stamp is None or stamp == self._seen:
                    continue
                self._seen = stamp
            try:
                self.reload()
            except Exception:  # the indexes already loaded keep serving; the next announcement tries again
                log.exception("reload announced by another worker failed; still serving the previous indexes")

    def _stamp(self) -> str | None:
        return read_stamp(self.path)
