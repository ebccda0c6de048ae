"""A process out of file descriptors or memory: a 503 its clients may retry, and a log that says so without
drowning.

A flood of connections (slow clients holding theirs open, a load balancer's burst) can take every file descriptor
a worker may open. The searches it is already serving then fail where they open a file: a thread's first read of
the product store (SQLite's "unable to open database file"), a log file. They were 500s with a traceback each,
which tells a client the request is broken and not to send it again, when what failed is the service, for as long
as the flood lasts. They are 503s with ``Retry-After``, counted as shed (``out_of_resources``).

asyncio meanwhile logs every failed ``accept()``: see :class:`.logs.RepeatsFolded`.
"""

from __future__ import annotations

import errno
import logging
import sqlite3
from typing import Any

from flask import jsonify, request

from . import metrics
from .asgi_bridge import ES_BLUEPRINTS, OVERLOADED
from .context import endpoint_name, error_response
from .es_compat import ES_HEADERS, es_error_body
from .logs import logged_path

log = logging.getLogger(__name__)

OUT_OF_RESOURCES = "out_of_resources"
"""The reason code such a 503 carries, and its label on the shed requests' counter."""

RETRY_AFTER_S = 1
"""What a client is told to wait: descriptors come back as the connections holding them end."""

EXHAUSTED_ERRNOS = frozenset({errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS})


def out_of_resources(exc: BaseException) -> bool:
    """Whether ``exc`` is the process (or host) out of descriptors or memory, not a fault of the request or the
    code. SQLite reports a file it cannot open as SQLITE_CANTOPEN without the OS's reason; the files a worker
    opens while serving (the product store, the profile store) were opened when it started and are held, so
    failing to open one again is the descriptors running out."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in EXHAUSTED_ERRNOS
    return (
        isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_CANTOPEN
    )


MESSAGE = "the service is out of file descriptors or memory for now; try again"


def noted(exc: BaseException) -> None:
    """Log the request's failure in one line, without the traceback (there is nothing in the code to find, and
    under a flood of connections every request would log one), and count it as shed."""
    log.warning("%s %s failed: out of resources (%s)", request.method, logged_path(request.path), type(exc).__name__)
    metrics.SHED.labels(endpoint_name(), OUT_OF_RESOURCES).inc()


def exhausted_cause() -> dict[str, Any]:
    """Elasticsearch's cause for such a failure: a failed request's, or a failed multi-search item's."""
    return {"type": OVERLOADED, "reason": MESSAGE, "reason_code": OUT_OF_RESOURCES}


def exhausted(exc: BaseException):
    """The 503 of a request that failed out of resources, in the error shape of its route."""
    noted(exc)
    headers = {"Retry-After": str(RETRY_AFTER_S)}
    if request.blueprint in ES_BLUEPRINTS:
        return jsonify(es_error_body(503, exhausted_cause())), 503, {**ES_HEADERS, **headers}
    return *error_response(503, "overloaded", MESSAGE, reason=OUT_OF_RESOURCES), headers
