"""Stable reason codes: why a part of an answer is missing, as callers and dashboards may rely on.

Responses (``degraded``, ``/ready``) carry one of these codes, never an
exception's text: that text can hold an internal URL, a file path or a
credential hint, and it changes with every library upgrade, so a client
cannot branch on it. The detail goes to the JSON log instead, on a line
carrying the request id (serving/logs), where an operator can find it.
"""

from __future__ import annotations

from .errors import CircuitOpenError, ClusterMisconfigured, ClusterUnavailable, StageError

TIMEOUT = "timeout"
"""The part did not answer within its deadline."""
BUDGET_SPENT = "budget_spent"
"""The request's time budget (a multi-search's, ``service.msearch_budget_s``) was spent before the part began."""
CLUSTER_UNAVAILABLE = "cluster_unavailable"
"""The search cluster gave no answer, or answered that it cannot serve now (a transient status)."""
CLUSTER_MISCONFIGURED = "cluster_misconfigured"
"""The search cluster refused the service's credentials or has no index or alias by the configured name: an
operator's fix (settings, or a rebuild), not a wait."""
CIRCUIT_OPEN = "circuit_open"
"""The part failed repeatedly and is skipped until its breaker's cool-down ends."""
UBI_WRITE_FAILED = "ubi_write_failed"
"""The UBI log could not be written (disk full, permissions): the record was not kept."""
PROFILE_STORE_UNAVAILABLE = "profile_store_unavailable"
"""The shopper's profile could not be read: the search is ranked as for an anonymous shopper."""
ERROR = "error"
"""Any other failure; the log line with the request id says which."""


def reason_code(exc: BaseException) -> str:
    """The code for a failure, looking through :class:`StageError` wrappers to the exception they wrap."""
    current: BaseException | None = exc
    while current is not None:
        if isinstance(current, CircuitOpenError):
            return CIRCUIT_OPEN
        if isinstance(current, ClusterUnavailable):
            return CLUSTER_UNAVAILABLE
        if isinstance(current, ClusterMisconfigured):
            return CLUSTER_MISCONFIGURED
        if isinstance(current, TimeoutError):  # concurrent.futures.TimeoutError is this one since Python 3.11
            return TIMEOUT
        if not isinstance(current, StageError):
            break
        current = current.cause if isinstance(current.cause, BaseException) else current.__cause__
    return ERROR
