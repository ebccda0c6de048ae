"""JSON log lines, each carrying the id of the request it belongs to.

One JSON object per line lets a log pipeline index fields without parsing
text; the request id ties the lines of one request (its access line, a
leg's timeout warning, an error's traceback) to the ``X-Request-Id`` the
caller sent or got back.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import uuid
from datetime import UTC, datetime

from flask import g, has_request_context

# Ids from outside end up in log lines and headers: anything else is replaced, not echoed.
_SAFE_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")


def request_id(incoming: str | None) -> str:
    """The caller's id when it is safe to echo, a fresh one otherwise."""
    return incoming if incoming and _SAFE_ID.fullmatch(incoming) else uuid.uuid4().hex


SHOPPER_PATHS = ("/profiles/",)
"""Paths that name a shopper (``DELETE /profiles/{user_id}``): their access lines name the route, not the shopper,
so that a forget leaves no trace of whom it forgot in the logs either."""


def logged_path(path: str) -> str:
    """``path`` as an access line shows it: the route of one that names a shopper, else as requested."""
    for prefix in SHOPPER_PATHS:
        if path.startswith(prefix):
            return prefix + "{user_id}"
    return path


class JsonFormatter(logging.Formatter):
    """``extra={"fields": {...}}`` on a log call adds those fields to the line."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if has_request_context() and "request_id" in g:
            entry["request_id"] = g.request_id
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


class RepeatsFolded(logging.Filter):
    """Lets a line through once per ``interval_s`` for each logger and message; the next one let through says how
    many were held back. Meant for loggers that report one failure per event while a failure lasts, not for the
    service's own lines, each of which is one request's: asyncio logs every failed ``accept()`` with its
    traceback, 1,853 lines in three seconds under 200 connections and a limit of 64 descriptors, megabytes a minute
    for as long as a flood lasts, into the same log (and disk) the service needs."""

    def __init__(self, interval_s: float = 10.0):
        super().__init__()
        self.interval_s = interval_s
        self._lock = threading.Lock()
        self._last: dict[tuple[str, str], tuple[float, int]] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        key = (record.name, str(record.msg))
        now = time.monotonic()
        with self._lock:
            if len(self._last) > 1000:  # messages that name something new each time: nothing repeats
                self._last.clear()
            shown, held = self._last.get(key, (-float("inf"), 0))
            if now - shown < self.interval_s:
                self._last[key] = (shown, held + 1)
                return False
            self._last[key] = (now, 0)
        if held:
            record.msg = f"{record.msg} ({held} more like it in the last {now - shown:.0f}s, not logged)"
        return True


def logging_config(level: str) -> dict:
    """A ``logging.config.dictConfig`` for JSON lines on stderr (gunicorn's ``logconfig_dict``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stderr"}},
        "root": {"level": level.upper(), "handlers": ["stderr"]},
        # asyncio logs each failed accept() with its traceback while a worker is out of descriptors: once a while.
        "filters": {"repeats_folded": {"()": RepeatsFolded}},
        "loggers": {"asyncio": {"filters": ["repeats_folded"]}},
    }
