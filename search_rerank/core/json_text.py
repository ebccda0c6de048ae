"""JSON in the files the product reads (catalogue records, judgment lists, settings, model cards, UBI logs).

Python's ``json`` takes five things no JSON reader should, and each did harm here: a key given twice keeps its
last value (``{"title": "lamp", "title": "rug"}`` indexed a rug, a settings file naming ``rerank`` twice kept the
second without a word); ``NaN`` and ``Infinity``, which JSON has not (and ``1e400``, read as the latter), poison a price, a time or a weight; a number
of more than 4,300 digits fails with advice to call ``sys.set_int_max_str_digits`` instead of naming the value;
thousands of brackets recurse past Python's limit, a ``RecursionError`` traceback; and a ``\\ud800`` escape
without its pair is a string no UTF-8 file can hold, which failed when written, after the products or profiles
before it were. :func:`loads` refuses each with a ``ValueError`` saying what it is, which each reader reports
with its file and line. (Request bodies go through ``serving/json_input.py``, which names the JSON path of what it
refuses.)
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

MAX_INT_DIGITS = 4300
"""Python's own limit on the digits of an integer it converts (``sys.get_int_max_str_digits``)."""


class JsonTextError(ValueError):
    """Text that Python's ``json`` reads but JSON does not mean (its place in the text is not known)."""


def repeated_key(pairs: list[tuple[str, Any]]) -> str | None:
    """The first key an object's ``pairs`` (as ``json``'s ``object_pairs_hook`` gets them) give a second time."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            return key
        seen.add(key)
    return None


def loads(text: str) -> Any:
    r"""The JSON value of ``text``; a :class:`json.JSONDecodeError` where it is not JSON (its ``lineno`` says where),
    a :class:`JsonTextError` for a key twice in one object, ``NaN`` or ``Infinity``, a number of too many digits,
    or nesting too deep to read. Both are ``ValueError``\ s."""

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        twice = repeated_key(pairs)
        if twice is not None:
            raise ValueError(f"the key {twice!r} appears twice in one object")
        return dict(pairs)

    def constant(name: str) -> Any:
        raise ValueError(f"{name} is not a JSON number")

    def integer(digits: str) -> int:
        if len(digits.lstrip("-")) > MAX_INT_DIGITS:
            raise ValueError(f"a number of {len(digits.lstrip('-'))} digits (at most {MAX_INT_DIGITS})")
        return int(digits)

    overflowed: list[str] = []

    def decimal(digits: str) -> float:
        number = float(digits)
        if math.isinf(number):  # 1e400: as good as Infinity, and stored as null; named by its path below
            overflowed.append(digits)
        return number

    try:
        value = json.loads(
            text, object_pairs_hook=unique, parse_constant=constant, parse_int=integer, parse_float=decimal
        )
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JsonTextError("nested too deep to read") from None
    except ValueError as exc:
        raise JsonTextError(str(exc)) from None
    if overflowed:
        where = _first_path(value, lambda item: isinstance(item, float) and math.isinf(item))
        raise JsonTextError(
            f"{where or 'the value'}: {overflowed[0][:40]} is past a double's range: not a finite number"
        )
    if _SURROGATE_ESCAPE.search(text):  # most text holds none, and is not walked
        where = _first_path(value, lambda item: isinstance(item, str) and _SURROGATE.search(item) is not None)
        if where is not None:
            raise JsonTextError(
                f"{where or 'the value'}: a lone UTF-16 surrogate (an escape in \\ud800-\\udfff without its pair), "
                "which no UTF-8 file, index or answer can hold"
            )
    return value


def _first_path(value: Any, bad: Callable[[Any], bool], path: str = "") -> str | None:
    """The path (``ratings[1].docId``) of the first value, or key, that is ``bad``; None for none."""
    items: Any = ()
    if bad(value):
        return path
    if isinstance(value, dict):
        # A key is named as its escapes, a lone surrogate included, which no message could print.
        named = ((key.encode("utf-8", "backslashreplace").decode("utf-8"), key, item) for key, item in value.items())
        items = ((f"{path}.{shown}" if path else shown, key, item) for shown, key, item in named)
    elif isinstance(value, list):
        items = ((f"{path}[{i}]", "", item) for i, item in enumerate(value))
    for where, key, item in items:
        if bad(key):
            return where
        found = _first_path(item, bad, where)
        if found is not None:
            return found
    return None


_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
"""A surrogate escape, paired or not: without one, no string ``json`` reads from text holds a lone surrogate (an
index, a profile store or a log then failed on it when writing, half-way through)."""
