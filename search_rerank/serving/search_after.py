"""Continuing a page sorted by fields after a hit: Elasticsearch's ``search_after`` on the embedded index.

A front end pages deep (ReactiveSearch 4's ``deepPagination``, a client's "load more" past
``index.max_result_window``) by sending the last hit's ``sort`` values back as ``search_after``; the next page
is the matches that sort strictly after them, as Elasticsearch's ``SearchAfterBuilder`` reads them: every key
compared in its direction, products without a value after every value in either direction, and a match equal
to the cursor on every key left out (Elasticsearch puts the cursor after every document that ties with it).

This module holds what is the cursor's own: checking it against the sort's keys, comparing a hit's values
with it, and the pattern tantivy finds the keywords after a keyword with (tantivy ranges hold numbers only).
A page in order of relevance is the pipeline's ranking, which ``search_after`` cannot continue (see
:func:`~search_rerank.serving.embedded_search.compile_search`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from ..core.number_text import WHOLE_NUMBER
from .body_checks import MAX_LONG, MIN_LONG, InvalidQuery, a_boolean, a_number
from .date_math import date_bound

KeyKind = Literal["long", "double", "date", "boolean", "keyword", "score"]

TEXT_PATTERN_CHARS = 200
"""The most characters of a keyword that :func:`keywords_after` writes out: a pattern's literal costs tantivy's
regular expression up to four automaton states a character (one a byte) of its 1,000, so a longer cursor value is
found by its first characters and the matches sharing them are compared here."""


@dataclass(frozen=True)
class CursorKey:
    """One key of a sort, as a cursor's value for it is read and compared."""

    kind: KeyKind
    descending: bool


@dataclass(frozen=True)
class Cursor:
    """A ``search_after``: its values (one per sort key, each of its key's type; None for a product without one)
    and the keys they are compared by."""

    values: list[Any]
    keys: Sequence[CursorKey]


def cursor(raw: Any, keys: Sequence[CursorKey], offset: int) -> Cursor:
    """The cursor ``search_after`` gives, or a 400 naming what Elasticsearch's parser names."""
    if not isinstance(raw, list):
        raise InvalidQuery("search_after", "expected an array of the last hit's sort values")
    if len(raw) != len(keys):
        raise InvalidQuery("search_after", f"search_after has {len(raw)} value(s) but sort has {len(keys)}")
    if offset != 0:
        raise InvalidQuery("from", "from parameter must be set to 0 when search_after is used")
    values = [_value(value, key, f"search_after[{i}]") for i, (value, key) in enumerate(zip(raw, keys, strict=True))]
    return Cursor(values, keys)


def _value(value: Any, key: CursorKey, path: str) -> Any:
    """A cursor's value as its key compares it, read as Elasticsearch's ``SearchAfterBuilder`` reads it: a
    keyword's text; a boolean (Elasticsearch writes 0 and 1); a whole number for a whole-number field (a fraction
    cut towards zero, as Java's ``longValue``; digits past a double's precision kept), a date's epoch milliseconds
    or its text; a decimal number (``-0.0`` read as 0, as a product's price is). A number's text is read too."""
    if value is None:
        return None
    if key.kind == "keyword":
        if isinstance(value, str):
            return value
        raise InvalidQuery(path, f"expected a string for a keyword sort, got {json.dumps(value)[:100]}")
    if key.kind == "boolean":
        if value in (0, 1) or isinstance(value, bool):
            return bool(value)
        return a_boolean(value, path)
    if key.kind == "date" and isinstance(value, str) and not WHOLE_NUMBER.fullmatch(value):
        return date_bound(value, False, path)
    if key.kind in ("long", "date"):
        if isinstance(value, int) and not isinstance(value, bool):
            whole = value
        elif isinstance(value, str) and WHOLE_NUMBER.fullmatch(value):
            whole = int(value)
        else:
            whole = math.trunc(a_number(value, path))
        if not MIN_LONG <= whole <= MAX_LONG:
            raise InvalidQuery(path, f"{value} is out of range for a whole-number field")
        return whole
    return a_number(value, path) + 0.0  # -0.0 + 0.0 is 0.0


def follows(values: Sequence[Any], after: Cursor) -> bool:
    """Whether a hit with sort ``values`` comes strictly after the cursor ``after``."""
    for value, mark, key in zip(values, after.values, after.keys, strict=True):
        if value == mark:
            continue
        if value is None or mark is None:
            return value is None  # no value sorts last either way
        return (value < mark) if key.descending else (value > mark)
    return False


@dataclass(frozen=True)
class Keywords:
    """A set of keywords as tantivy finds them: those matching any of ``patterns`` (regular expressions) or
    equal to any of ``terms``."""

    patterns: tuple[str, ...]
    terms: tuple[str, ...] = ()


def keywords_after(value: str) -> Keywords:
    """The keywords strictly after ``value`` in Elasticsearch's order of keywords (their UTF-8 bytes, which is the
    order of their code points): ``value`` with more after it, or its first characters and then a greater one.
    One pattern per character, each a literal and one class: tantivy compiles a pattern to at most 1,000 automaton
    states, which one pattern of them all reached at about 25 characters."""
    patterns = [f"{_literal(value)}(?s:.+)"]
    for i, char in enumerate(value):
        if ord(char) < MAX_CODE_POINT:
            patterns.append(f"{_literal(value[:i])}[{_code(_next(ord(char)))}-{_code(MAX_CODE_POINT)}](?s:.*)")
    return Keywords(tuple(patterns))


def keywords_before(value: str) -> Keywords:
    """The keywords strictly before ``value`` (see :func:`keywords_after`): its first characters alone (its proper
    prefixes, as terms), or its first characters and then a lesser one."""
    patterns = []
    for i, char in enumerate(value):
        if ord(char) > 0:
            patterns.append(f"{_literal(value[:i])}[{_code(0)}-{_code(_previous(ord(char)))}](?s:.*)")
    return Keywords(tuple(patterns), tuple(value[:i] for i in range(len(value))))


def keywords_from(prefix: str) -> str:
    """A tantivy regular expression matching the keywords that begin with ``prefix``."""
    return f"{_literal(prefix)}(?s:.*)"


MAX_CODE_POINT = 0x10FFFF
SURROGATES = range(0xD800, 0xE000)
"""Code points no text holds, which a pattern may not name: the neighbours of U+D7FF and U+E000 skip them."""


def _next(code: int) -> int:
    return 0xE000 if code + 1 in SURROGATES else code + 1


def _previous(code: int) -> int:
    return 0xD7FF if code - 1 in SURROGATES else code - 1


def _code(code: int) -> str:
    return f"\\x{{{code:x}}}"


def _literal(text: str) -> str:
    return "".join(_code(ord(char)) for char in text)
