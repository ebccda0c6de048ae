"""prometheus_client's per-worker metric files, their disk space taken before it is written to.

Under gunicorn each worker keeps its metrics in memory-mapped files in ``PROMETHEUS_MULTIPROC_DIR`` (see metrics).
prometheus_client makes and grows them sparse (``truncate``), so the disk blocks are found only when a value is
first written through the mapping; on a full disk there are none, and the kernel kills the process with SIGBUS.
Every worker then died on its first request, gunicorn booted new ones to die the same way (451 boots in a
minute, seen), and the whole service, ``/health`` included, answered nothing: a disk filled by something else
took search down with it.

:class:`ReservedMmapedDict` takes each file's space first (``posix_fallocate``), so a full disk is an error where
it can be handled: the worker keeps its metrics in memory from then on, says so once in the log, and serves on.
Its counts stop reaching ``/metrics`` (which reads the files) until it restarts: metrics are the part that
degrades, not search.
"""

from __future__ import annotations

import contextlib
import logging
import mmap
import os
import struct

from prometheus_client import values
from prometheus_client.mmap_dict import MmapedDict

log = logging.getLogger(__name__)
FIRST_SIZE = 1 << 16
"""The size prometheus_client gives a new file (its ``_INITIAL_MMAP_SIZE``)."""


class ReservedMmapedDict(MmapedDict):
    """A worker's metric file whose space is taken before it is mapped, or, once the disk cannot give it, memory."""

    def __init__(self, filename: str, read_mode: bool = False):
        self.in_memory = False
        if not read_mode:
            fd = os.open(filename, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                if os.fstat(fd).st_size == 0:
                    os.posix_fallocate(fd, 0, FIRST_SIZE)
            except OSError as exc:
                self._lost(exc)
                with contextlib.suppress(OSError):  # left empty, it would fail the scrape that reads it
                    os.unlink(filename)
                self._f, self._fname, self._positions = None, filename, {}
                self._m, self._capacity, self._used = mmap.mmap(-1, FIRST_SIZE), FIRST_SIZE, 8
                struct.pack_into("i", self._m, 0, self._used)
                return
            finally:
                os.close(fd)
        super().__init__(filename, read_mode)

    def _init_value(self, key: str) -> None:
        """prometheus_client's, with the larger file's space taken before the file is grown and mapped again."""
        encoded = key.encode("utf-8")
        padded = encoded + (b" " * (8 - (len(encoded) + 4) % 8))
        value = struct.pack(f"i{len(padded)}sdd", len(encoded), padded, 0.0, 0.0)
        capacity = self._capacity
        while self._used + len(value) > capacity:
            capacity *= 2
        if capacity > self._capacity:
            self._grow(capacity)
        self._m[self._used : self._used + len(value)] = value
        self._used += len(value)
        struct.pack_into("i", self._m, 0, self._used)
        self._positions[key] = self._used - 16

    def _grow(self, capacity: int) -> None:
        if not self.in_memory:
            try:
                os.posix_fallocate(self._f.fileno(), 0, capacity)  # the file grows to it, its blocks taken
                self._m, self._capacity = mmap.mmap(self._f.fileno(), capacity), capacity
                return
            except OSError as exc:
                self._lost(exc)
        grown = mmap.mmap(-1, capacity)
        grown[: self._used] = self._m[: self._used]
        self._m, self._capacity = grown, capacity

    def _lost(self, exc: OSError) -> None:
        self.in_memory = True
        log.warning(
            "metrics: no disk space for this worker's metric file (%s); its metrics are kept in memory and left out "
            "of /metrics until it restarts",
            exc,
        )

    def close(self) -> None:
        if self._f is None:
            self._m.close()
            return
        super().close()


def install() -> None:
    """Make prometheus_client's multiprocess values use :class:`ReservedMmapedDict` (its ``values`` module opens
    each file by this name)."""
    values.MmapedDict = ReservedMmapedDict  # type: ignore[misc]
