"""JSON in the files the product reads (catalogue records, judgment lists, settings, model cards, UBI logs).

Python's ``json`` takes four things no JSON reader should, and each did harm here: a key given twice keeps its
last value (``{"title": "lamp", "title": "rug"}`` indexed a rug, a settings file naming ``rerank`` twice kept the
second without a word); ``NaN`` and ``Infinity``, which JSON has not, poison a price, a time or a weight; a number
of more than 4,300 digits fails with advice to call ``sys.set_int_max_str_digits`` instead of naming the value;
and thousands of brackets recurse past Python's limit, a ``RecursionError`` traceback. :func:`loads` refuses
each with a ``ValueError`` saying what it is, which each reader reports with its file and line. (Request bodies
go through ``serving/json_input.py``, which names the JSON path of what it refuses.)
"""

from __future__ import annotations

import json
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

    try:
        return json.loads(text, object_pairs_hook=unique, parse_constant=constant, parse_int=integer)
    except json.JSONDecodeError:
        raise
    except RecursionError:
        raise JsonTextError("nested too deep to read") from None
    except ValueError as exc:
        raise JsonTextError(str(exc)) from None
