"""Checks on the values of an Elasticsearch request body, shared by every module that reads one.

Each refuses a wrong value with the path of the field in the body, so the
answer is a 400 that names it (never a 500 from a type error further in).
Numbers are read as Elasticsearch reads them: a numeric string counts.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..core.errors import SearchRerankError


class InvalidQuery(SearchRerankError):
    """The request is malformed (a 400): ``field`` is its path in the body."""

    def __init__(self, field: str, reason: str):
        self.field = field
        super().__init__(f"[{field}] {reason}")


def single_key(value: Any, path: str) -> tuple[str, Any]:
    if not isinstance(value, Mapping) or len(value) != 1:
        raise InvalidQuery(path, "expected an object with exactly one key")
    return next(iter(value.items()))


def an_object(value: Any, path: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise InvalidQuery(path, "expected an object")
    return value


def clause_list(value: Any) -> list[Any]:
    """A clause or a list of them (``bool.must``, ``should``...) as a list; none as an empty one."""
    return [] if value is None else value if isinstance(value, list) else [value]


def a_string(value: Any, path: str, scalars: bool = False) -> str:
    """A string; with ``scalars``, a number too, as its text (a term query on a keyword may name one)."""
    if isinstance(value, str) or (scalars and isinstance(value, int | float) and not isinstance(value, bool)):
        return str(value)
    raise InvalidQuery(path, "expected a string")


def a_number(value: Any, path: str) -> float:
    try:
        parsed = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a double's range
        raise InvalidQuery(path, "expected a number") from None
    if isinstance(value, bool) or not math.isfinite(parsed):
        raise InvalidQuery(path, "expected a number")
    return parsed
