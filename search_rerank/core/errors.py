"""Errors that carry enough context for a person to fix the cause.

Loaders raise :class:`DataError` with the file and line so a bad catalog row is
found in seconds; stages raise :class:`StageError` so the pipeline can decide to
degrade instead of failing the whole request.
"""

from __future__ import annotations

import reprlib
import time
from pathlib import Path
from typing import Any

_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxstring, _SHOWN.maxother = 3, 80, 80


def brief(value: Any) -> str:
    """A refused value as a message shows it: its first levels and characters, never all of a value of megabytes
    (a message repeating one is a megabyte line) or nested thousands deep (which has no repr)."""
    text = _SHOWN.repr(value)
    return text[:80] + "..." if len(text) > 80 else text


class SearchRerankError(Exception):
    """Base class: everything this package raises on purpose."""


class DataError(SearchRerankError, ValueError):
    """A record in an input file is malformed."""

    def __init__(self, path: str | Path, line: int | None, reason: str):
        self.path = str(path)
        self.line = line
        self.reason = reason
        where = f"{self.path}:{line}" if line is not None else self.path
        super().__init__(f"{where}: {reason}")


class ConfigError(SearchRerankError, ValueError):
    """Settings are invalid or name something that does not exist."""


class StageError(SearchRerankError):
    """A pipeline stage failed; carries the stage name for degraded-mode reporting."""

    def __init__(self, stage: str, cause: BaseException | str):
        self.stage = stage
        self.cause = cause
        super().__init__(f"stage {str(stage)!r} failed: {cause}")  # a Stage's repr is <Stage.LEXICAL: 'lexical'>


class ClusterUnavailable(StageError):
    """The search cluster gave no answer (connection refused, client timeout) or a transient status (502, 503...).

    A class of its own so that responses can say ``cluster_unavailable``
    (see reasons) without reading the message, which names the cluster's URL.
    """


class ClusterMisconfigured(ConfigError, StageError):
    """The cluster answered that the service's own settings are wrong: its credentials refused, its index or alias
    missing. Where settings are checked (start-up, the CLI) it is a :class:`ConfigError` saying what to fix; while
    serving (the index deleted or an alias moved under a running service) it is a failed stage like any other, so
    a search degrades and a page the cluster alone answers is a 502, never a 500."""

    def __str__(self) -> str:
        return str(self.cause)  # what to fix, as the ConfigError it was said before: the stage is in the message


class RequestRefused(StageError):
    """The dependency answered this request with a refusal (a cluster's 400: the request is wrong) or a failure of
    its own that the request set off (a 500): it is up and serving, so a breaker counts the call as a success (see
    breaker.Guard). Counted as a failure, five malformed queries from any one client opened the cluster's breaker
    and left it out of every shopper's searches."""


class CircuitOpenError(SearchRerankError):
    """A call refused without being made: the dependency's breaker is open (see breaker)."""

    def __init__(self, dependency: str, retry_after_s: float):
        self.dependency = dependency
        self.retry_after_s = retry_after_s
        super().__init__(f"{dependency}: circuit open, calls refused for another {retry_after_s:.1f}s")


class PastDeadline(SearchRerankError, TimeoutError):
    """Work stopped between its batches because the caller's deadline has passed (see :func:`stop_if_past`)."""


def stop_if_past(deadline: float | None, what: str) -> None:
    """Raise :class:`PastDeadline` once ``time.monotonic()`` reaches ``deadline`` (None: no deadline).

    A caller that times out answers without the work but cannot stop the thread doing it; checked between
    batches, the work stops itself instead of taking the CPU from the requests still waiting (on two cores,
    a reranker's last batches after its deadline slowed the next searches past theirs)."""
    if deadline is not None and time.monotonic() >= deadline:
        raise PastDeadline(f"{what} stopped: past its deadline")
