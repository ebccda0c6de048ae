"""Versions of an index directory, and the pointer that says which one is served.

A rebuild writes a whole new version beside the served one and then replaces
one small file, ``current.json``, so a reader sees either the old version or
the new one, never a mix, and an old version is still there to roll back to.
Layout::

    <index_dir>/current.json            {"version": "20250101-120000-000000"}
    <index_dir>/versions/<stamp>/...    one complete build each
    <index_dir>/.lock                   held by whoever writes versions or the pointer

A process that serves a version (the service, an evaluation) holds it
(:meth:`IndexVersions.hold`): a shared lock on its directory, which the
kernel drops when the holder closes it or dies. Pruning passes over a held
version, so a reindex that keeps few old versions never deletes the files
a running service still reads until it reloads; the first prune after that
deletes it.

A version is complete once its ``manifest.json`` exists: builds write it
last, after the version has been checked. A directory without one is what a
killed build left, and the next writer deletes it. Stamps are UTC
timestamps, so versions sort by age by name, and a server index built with a
version carries the same stamp.

A directory from before versions (``manifest.json`` at the top) is served as
it is until the first versioned build.
"""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import shutil
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..core.errors import ConfigError

log = logging.getLogger(__name__)

POINTER, VERSIONS, LOCK, MANIFEST = "current.json", "versions", ".lock", "manifest.json"
STAMP_FORMAT = "%Y%m%d-%H%M%S-%f"
STAMP_LENGTH = len("20250101-120000-000000")


def new_stamp() -> str:
    """A version name: the UTC time to the microsecond, so names sort by age."""
    return datetime.now(UTC).strftime(STAMP_FORMAT)


def write_atomically(path: Path, text: str) -> None:
    """Write beside, flush to disk, rename over: a reader, or a crash, sees the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


class Hold:
    """A reader's shared lock on a version's directory (:meth:`IndexVersions.hold`), released by :meth:`close`, or
    when the holder is collected or dies."""

    def __init__(self, fd: int):
        self._release = weakref.finalize(self, os.close, fd)

    def close(self) -> None:
        self._release()


class IndexVersions:
    """The versions under one index directory; writers take :meth:`locked` first."""

    def __init__(self, root: Path | str):
        self.root = Path(root)
        self.versions_dir = self.root / VERSIONS

    def path(self, name: str) -> Path:
        return self.versions_dir / name

    def current(self) -> str | None:
        """The served version's name, or None before the first versioned build."""
        pointer = self.root / POINTER
        if not pointer.is_file():
            return None
        try:
            name = json.loads(pointer.read_text(encoding="utf-8"))["version"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(
                f"{pointer} is not a version pointer ({exc}); rebuild with `search-rerank index`, which replaces it"
            ) from exc
        if not (self.path(name) / MANIFEST).is_file():
            raise ConfigError(
                f"{pointer} names version {name!r}, which {self.versions_dir} does not hold "
                f"complete; rebuild with `search-rerank index`, which replaces the pointer"
            )
        return name

    def forget_current(self) -> None:
        """Remove a pointer that names no complete version, so that a build can replace it."""
        (self.root / POINTER).unlink(missing_ok=True)

    def serving_dir(self) -> Path | None:
        """Where the served indexes are: the current version, a pre-versions directory, or nowhere yet."""
        name = self.current()
        if name is not None:
            return self.path(name)
        return self.root if (self.root / MANIFEST).is_file() else None

    def complete(self) -> list[str]:
        """Names of complete versions, oldest first."""
        if not self.versions_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.versions_dir.iterdir() if len(p.name) == STAMP_LENGTH and (p / MANIFEST).is_file()
        )

    def manifest(self, name: str) -> dict[str, Any]:
        return json.loads((self.path(name) / MANIFEST).read_text(encoding="utf-8"))

    def create(self) -> tuple[str, Path]:
        """A new, empty version directory (incomplete until its manifest is written)."""
        self.versions_dir.mkdir(parents=True, exist_ok=True)
        while True:
            name = new_stamp()
            try:
                self.path(name).mkdir()
                return name, self.path(name)
            except FileExistsError:  # two builds within a microsecond: take the next stamp
                continue

    def point_to(self, name: str) -> None:
        """Serve ``name`` from now on (readers that already opened a version keep it)."""
        if not (self.path(name) / MANIFEST).is_file():
            raise ConfigError(f"version {name!r} is not complete in {self.versions_dir}; not pointing at it")
        write_atomically(self.root / POINTER, json.dumps({"version": name}) + "\n")

    def discard_incomplete(self) -> list[str]:
        """Delete what killed builds left (only safe under :meth:`locked`); returns the names."""
        if not self.versions_dir.is_dir():
            return []
        complete = set(self.complete())
        left = sorted(p.name for p in self.versions_dir.iterdir() if p.name not in complete)
        for name in left:
            self.remove(name)
        return left

    def prune(self, keep: int) -> list[str]:
        """Delete complete versions beyond the newest ``keep`` that are not served nor held; returns them.

        A held version is one a running process still reads (a service until it reloads): deleted, its product
        store would be gone for the next thread that opens it. It goes at a later prune, once released.
        """
        current = self.current()
        idle = [name for name in self.complete() if name != current]
        pruned = []
        for name in idle[: max(len(idle) - keep, 0)]:
            if self._remove_unheld(name):
                pruned.append(name)
            else:
                log.warning(
                    "kept version %s of %s: a running process still serves it (a service that has not reloaded); "
                    "the next build after it lets go deletes it",
                    name,
                    self.root,
                )
        return pruned

    def hold(self, path: Path) -> Hold:
        """Hold the version in ``path`` (or a directory from before versions) against :meth:`prune` while it is
        read; a version being deleted cannot be held."""
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                raise ConfigError(f"{path} is being deleted by a build; open the index again") from None
            if not (path / MANIFEST).is_file():
                raise ConfigError(f"{path} was deleted by a build while it was opened; open the index again")
        except BaseException:
            os.close(fd)
            raise
        return Hold(fd)

    def _remove_unheld(self, name: str) -> bool:
        """Remove version ``name`` unless a reader holds it, holding it exclusively meanwhile; whether it went."""
        fd = os.open(self.path(name), os.O_RDONLY | os.O_DIRECTORY)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False
            self.remove(name)
            return True
        finally:
            os.close(fd)

    def remove(self, name: str) -> None:
        path = self.path(name)
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    @contextmanager
    def locked(self) -> Iterator[IndexVersions]:
        """Hold the directory's write lock; a second writer fails at once rather than interleaving.

        The lock is an ``flock``, which the kernel drops when its holder dies,
        so a killed build never leaves it behind.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
                    raise ConfigError(
                        f"another build, update or rollback is running on {self.root}; wait for it to finish"
                    ) from exc
                raise
            yield self
        finally:
            os.close(fd)
