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
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .body_checks import InvalidQuery, a_boolean, a_number

KeyKind = Literal["number", "boolean", "keyword", "score"]

TEXT_PATTERN_CHARS = 20
"""The most characters of a keyword that :func:`keywords_after` writes out: each costs tantivy's regular expression
about fifty automaton states of its 1,000, so a longer cursor value is found by its first characters and the
matches sharing them are compared here."""


@dataclass(frozen=True)
class CursorKey:
    """One key of a sort, as a cursor's value for it is read and compared."""

    kind: KeyKind
    descending: bool


def cursor(raw: Any, keys: Sequence[CursorKey], offset: int) -> list[Any]:
    """The values of ``search_after`` (one per sort key, each of its key's type; None for a product without one),
    or a 400 naming what Elasticsearch's parser names."""
    if not isinstance(raw, list):
        raise InvalidQuery("search_after", "expected an array of the last hit's sort values")
    if len(raw) != len(keys):
        raise InvalidQuery("search_after", f"search_after has {len(raw)} value(s) but sort has {len(keys)}")
    if offset != 0:
        raise InvalidQuery("from", "from parameter must be set to 0 when search_after is used")
    return [_value(value, key, f"search_after[{i}]") for i, (value, key) in enumerate(zip(raw, keys, strict=True))]


def _value(value: Any, key: CursorKey, path: str) -> Any:
    """A cursor's value as its key compares it: a keyword's text, a boolean (Elasticsearch writes 0 and 1), a
    number (its text too, as Elasticsearch parses it)."""
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
    return a_number(value, path)


def follows(values: Sequence[Any], after: Sequence[Any], keys: Sequence[CursorKey]) -> bool:
    """Whether a hit with sort ``values`` comes strictly after the cursor ``after``."""
    for value, mark, key in zip(values, after, keys, strict=True):
        if value == mark:
            continue
        if value is None or mark is None:
            return value is None  # no value sorts last either way
        return (value < mark) if key.descending else (value > mark)
    return False


def keywords_after(value: str) -> str:
    """A tantivy regular expression matching the keywords strictly after ``value`` in Elasticsearch's order of
    keywords (their UTF-8 bytes, which is the order of their code points): ``value`` with more after it, or
    the same first characters and then a greater one. Every character is written as its code point, so
    nothing in ``value`` is read as syntax."""
    alternatives = [f"{_literal(value)}(?s:.+)"]
    for i, char in enumerate(value):
        if ord(char) < 0x10FFFF:
            alternatives.append(f"{_literal(value[:i])}[\\x{{{ord(char) + 1:x}}}-\\x{{10ffff}}](?s:.*)")
    return "|".join(alternatives)


def keywords_before(value: str) -> str:
    """A tantivy regular expression matching the keywords strictly before ``value`` (see :func:`keywords_after`):
    its first characters alone, or the same first characters and then a lesser one."""
    alternatives = [_literal(value[:i]) for i in range(len(value))]
    for i, char in enumerate(value):
        if ord(char) > 0:
            alternatives.append(f"{_literal(value[:i])}[\\x{{0}}-\\x{{{ord(char) - 1:x}}}](?s:.*)")
    return "|".join(alternatives)


def keywords_from(prefix: str) -> str:
    """A tantivy regular expression matching the keywords that begin with ``prefix``."""
    return f"{_literal(prefix)}(?s:.*)"


def _literal(text: str) -> str:
    return "".join(f"\\x{{{ord(char):x}}}" for char in text)
