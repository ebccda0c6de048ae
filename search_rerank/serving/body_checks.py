"""Checks on the values of an Elasticsearch request body, shared by every module that reads one, and the two
refusals they raise: a malformed body (:class:`InvalidQuery`, a 400), a valid one not served (:class:`Unsupported`,
a 501).

Each refuses a wrong value with the path of the field in the body, so the
answer is a 400 that names it (never a 500 from a type error further in).
Numbers are read as Elasticsearch reads them: a numeric string counts.
"""

from __future__ import annotations

import math
import re
from collections.abc import Collection, Mapping, Sequence
from typing import Any

from ..core.errors import SearchRerankError
from ..core.number_text import WHOLE_NUMBER


class InvalidQuery(SearchRerankError):
    """The request is malformed (a 400): ``field`` is its path in the body; ``kind`` the type of Elasticsearch's
    error for it (a body it cannot parse; an argument it refuses, such as a URI parameter it does not take)."""

    def __init__(self, field: str, reason: str, kind: str = "parsing_exception"):
        self.field = field
        self.kind = kind
        super().__init__(f"[{field}] {reason}")


class Unsupported(SearchRerankError):
    """Valid Elasticsearch, but not something this backend can answer (a 501)."""

    def __init__(self, part: str, reason: str = "not supported by search_rerank"):
        self.part = part
        super().__init__(f"[{part}] {reason}")


class ContextMissing(SearchRerankError):
    """A scroll's or a point in time's id of a version no longer served, or past its keep-alive, or a cluster's of
    another index: Elasticsearch's 404 for a search context it does not hold."""

    def __init__(self) -> None:
        super().__init__("No search context found for the id (expired, or the index was reloaded since)")


def single_key(value: Any, path: str) -> tuple[str, Any]:
    if not isinstance(value, Mapping) or len(value) != 1:
        raise InvalidQuery(path, "expected an object with exactly one key")
    return next(iter(value.items()))


def known_keys(spec: Mapping[str, Any], where: str, keys: Collection[str]) -> None:
    """A key beyond ``keys`` (those Elasticsearch's parser knows there) is a 400 naming it, as Elasticsearch answers
    it: a key read nowhere would otherwise change nothing without a word."""
    for key in spec:
        if key not in keys:
            raise InvalidQuery(f"{where}.{key}", "unknown field")


def one_of(value: Any, choices: Sequence[str], where: str) -> str:
    """A string among ``choices`` (an enumeration's value), or a 400 naming them."""
    text = a_string(value, where)
    if text not in choices:
        raise InvalidQuery(where, f"unknown value [{text}] (expected one of {', '.join(choices)})")
    return text


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


def a_keyword(value: Any, path: str) -> str:
    """A value as a keyword field holds it: a string, or the text Elasticsearch makes of a number or a boolean
    given for one (a term on a keyword naming ``5``, ``missing: true`` that is the key ``"true"``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | int | float):
        return str(value)
    raise InvalidQuery(path, "expected a string, a number or a boolean")


def a_boolean(value: Any, path: str) -> bool:
    """A value as a boolean field reads it: true or false, or their text (Elasticsearch reads "true" and "false")."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    raise InvalidQuery(path, f"failed to parse [{value}] as a boolean: only [true] or [false] are allowed")


def a_number(value: Any, path: str) -> float:
    try:
        parsed = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer beyond a double's range
        raise InvalidQuery(path, "expected a number") from None
    if isinstance(value, bool) or not math.isfinite(parsed):
        raise InvalidQuery(path, "expected a number")
    return parsed


MAX_INT = 2**31 - 1
"""The largest count Elasticsearch reads (Java's ``Integer.MAX_VALUE``): a slop, a size, a minimum_should_match.
Past it Elasticsearch's parser refuses the number; here tantivy would (a slop is 32 bits), with an OverflowError."""


def within_int(number: float) -> bool:
    """Whether Java's ``intValue`` keeps ``number`` (a fraction cut to its whole part): what Lucene's parsers and
    Elasticsearch's read as an int, a number past which they refuse or read as none."""
    return -MAX_INT - 1 <= number < MAX_INT + 1


MIN_LONG, MAX_LONG = -(2**63), 2**63 - 1
"""What a whole-number field holds (Elasticsearch's ``long``, tantivy's i64)."""


def a_count(value: Any, path: str, minimum: int = 0) -> int:
    """A whole number from ``minimum`` up to :data:`MAX_INT`, as Elasticsearch reads one: a JSON number or its text
    (``10``, ``10.0``, ``"10"``, which URI parameters always are), never a boolean or a fraction."""
    try:
        number = int(value) if not isinstance(value, str) or WHOLE_NUMBER.fullmatch(value) else None
    except (TypeError, ValueError, OverflowError):  # int(inf); a text past Python's 4,300 digits
        number = None
    if (
        number is None
        or isinstance(value, bool)
        or (isinstance(value, float) and not value.is_integer())
        or not minimum <= number <= MAX_INT
    ):
        raise InvalidQuery(path, f"expected a whole number from {minimum} to {MAX_INT}")
    return number


FUZZY_COUNTS = (("prefix_length", 0), ("max_expansions", 1))
"""A fuzzy word's counts and the least each may be: Lucene's FuzzyQuery refuses a negative prefix and no
expansions at all, and a cluster answers that with an error of its own (osmem-server a 500), which would count
against the cluster's breaker as the cluster failing; here it is the body's 400, on both backends."""
FUZZY_QUERIES = (
    *("match", "match_phrase_prefix", "match_bool_prefix", "fuzzy", "multi_match", "combined_fields"),
    *("query_string", "simple_query_string"),
)
"""The queries that take those counts (:func:`fuzzy_counts`)."""


def fuzzy_counts(kind: str, spec: Any, path: str) -> None:
    """Refuse a query's fuzzy counts below :data:`FUZZY_COUNTS` (``prefix_length`` -1, ``max_expansions`` 0): a
    ``match``'s or a ``fuzzy``'s in the field's object, a ``multi_match``'s beside the text, a ``query_string``'s
    as ``fuzzy_prefix_length`` and ``fuzzy_max_expansions``. Anything else of the query is its own check's."""
    if not isinstance(spec, Mapping) or kind not in FUZZY_QUERIES:
        return
    if kind in ("query_string", "simple_query_string"):
        places, prefix = [(spec, path)], "fuzzy_"
    elif kind in ("multi_match", "combined_fields"):
        places, prefix = [(spec, path)], ""
    else:
        places, prefix = [(value, f"{path}.{name}") for name, value in spec.items() if isinstance(value, Mapping)], ""
    for options, where in places:
        for name, minimum in FUZZY_COUNTS:
            if prefix + name in options:
                a_count(options[prefix + name], f"{where}.{prefix}{name}", minimum)


def within_long(number: float, path: str) -> None:
    """Refuse a bound on a whole-number field that no ``long`` reaches, as Elasticsearch refuses it (tantivy raised
    a ValueError, a 500). The bound has been read as a float, where ``Long.MAX_VALUE`` is 2**63: the limits are
    compared as floats (the bound is then held to a long, see :func:`a_long`)."""
    if not float(MIN_LONG) <= number <= float(MAX_LONG):
        raise InvalidQuery(path, f"Value [{number!r}] is out of range for a long")


def a_long(number: float) -> int:
    """A whole bound :func:`within_long` let through, as the nearest ``long`` (2**63 is ``Long.MAX_VALUE``)."""
    return min(max(int(number), MIN_LONG), MAX_LONG)


MAX_KEEP_ALIVE_S = 300.0
"""The longest keep-alive of a scroll or a point in time passed to the cluster. Each holds a search context there
until it expires (by default Elasticsearch allows 500 open scrolls per node, OpenSearch 300 points in time), so a
caller asking for ``24h`` again and again would use them up for every client for a day; a front end pages on within
seconds, and Elasticsearch's own examples keep ``1m``. How many a caller opens is not counted here: within five
minutes they expire, and a client that keeps opening them is the rate limit's (in front of the service)."""
_DURATION = re.compile(r"(\d+(?:\.\d+)?)(nanos|micros|ms|s|m|h|d)")
_UNIT_S = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


class TooLongKept(InvalidQuery):
    """A keep-alive past :data:`MAX_KEEP_ALIVE_S` (a 400 like any other; the passthrough names it apart)."""


def a_keep_alive(value: Any, path: str) -> str:
    """A scroll's or a point in time's keep-alive in Elasticsearch's time units (``30s``, ``1m``), at most
    :data:`MAX_KEEP_ALIVE_S`."""
    text = a_string(value, path).strip()
    if keep_alive_s(text, path) > MAX_KEEP_ALIVE_S:
        raise TooLongKept(path, f"a search context is kept alive for at most {MAX_KEEP_ALIVE_S:g}s here, not {text}")
    return text


def keep_alive_s(text: str, path: str) -> float:
    """The seconds a keep-alive's time value (``30s``, ``1m``) says."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise InvalidQuery(path, f"expected a time value such as '1m', got {text!r}")
    return float(match.group(1)) * _UNIT_S[match.group(2)]
