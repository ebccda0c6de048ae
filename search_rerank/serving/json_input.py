"""The one way request JSON is read: every JSON route (``/search``, ``/ubi/events``, ``_search``, each
``_msearch`` line) parses through :func:`parse_json`.

Four things Python's ``json`` module accepts would otherwise reach the code
behind it and fail there, as 500s or worse:

* nesting: ``json.loads``, pydantic and the Query DSL translation all
  recurse, so a body a few thousand brackets deep raises ``RecursionError``
  wherever it lands first. The depth is checked on the raw text, by a scan
  that does not recurse, before anything parses it
  (``service.max_json_depth``; Elasticsearch's own default limit is much
  deeper, but no search body needs more than a few dozen levels);
* ``NaN``, ``Infinity``, ``-Infinity``, which are not JSON, and numbers
  that overflow a float (``1e400``): a size of infinity is an
  ``OverflowError`` in ``int()``;
* lone UTF-16 surrogates (a ``\\ud800`` escape without its pair). They are
  valid JSON escapes, but no UTF-8 encoder can write them, so a query or a
  UBI event holding one cannot be logged, indexed or sent to a cluster.
  Such a string is rejected, not repaired: no keyboard types one, so a
  client that sends it has a bug it should hear about, and replacing the
  character would log a query other than the one searched. Rejecting it up
  front is what keeps an accepted event from being lost at write time;
* a key twice in one object: Python keeps the last value, as would a
  check written here, while a parser elsewhere may keep the first, so what
  was checked would not be what runs (Elasticsearch itself refuses such a
  body: its parsers detect duplicate keys).

Each is a :class:`InvalidBody` naming the JSON path of the offending value
(``query.match.title``, ``[2].user_query``), before any processing.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Any

from ..core.json_text import repeated_key

# A JSON string (escapes included) or one structural character; strings are skipped whole, so brackets in them
# do not count. The string alternative is the unrolled form, which cannot backtrack.
_TOKENS = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}:,]', re.DOTALL)
_SURROGATE = re.compile("[\ud800-\udfff]")
# A surrogate escape, paired or not, in the raw text: without one, no decoded string can hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
# Digits beyond which no integer fits a double (1.8e308); refused before Python converts them (it stops at 4,300).
_FLOAT_DIGITS = 309
_NON_FINITE = object()
"""What the parser makes of NaN, Infinity and overflowing numbers, found by the walk that follows it."""


class InvalidBody(Exception):
    """The body (or an ``_msearch`` line) is unreadable or holds a value nothing may process; a 400 naming ``field``."""

    def __init__(self, field: str, reason: str):
        self.field = field
        self.reason = reason
        super().__init__(f"[{field}] {reason}")


class NotJson(InvalidBody):
    """The text is not JSON at all (or not UTF-8), as opposed to JSON holding a value that is refused."""


def parse_json(data: bytes | str, max_depth: int, where: str = "") -> Any:
    """The JSON value of ``data``, or :class:`InvalidBody`; ``where`` prefixes the reported paths.

    A byte-order mark before it is read past, as Elasticsearch's parser reads past one (RFC 8259 lets a parser
    ignore it): Windows PowerShell 5.1 and files saved by Notepad send one, and it was a 400 quoting Python's
    "Unexpected UTF-8 BOM (decode using utf-8-sig)"."""
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8")
        except UnicodeDecodeError:
            raise NotJson(where or "body", "not UTF-8") from None
    data = data.removeprefix("\ufeff")
    deep = too_deep(data, max_depth)
    if deep is not None:
        raise InvalidBody(_join(where, deep) or "body", f"nested deeper than {max_depth} levels")
    non_finite: list[str] = []
    duplicated: list[str] = []

    def refuse(text: str) -> object:
        non_finite.append(text)
        return _NON_FINITE

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        twice = repeated_key(pairs) if not duplicated else None
        if twice is not None:
            duplicated.append(twice)
        return dict(pairs)

    try:
        value = json.loads(
            data,
            object_pairs_hook=unique,
            parse_constant=refuse,
            parse_float=lambda text: _finite(float(text), text, refuse),
            parse_int=lambda text: (
                refuse(text) if len(text.lstrip("-")) > _FLOAT_DIGITS else _finite(int(text), text, refuse)
            ),
        )
    except ValueError as exc:  # JSONDecodeError
        raise NotJson(where or "body", f"not JSON: {getattr(exc, 'msg', exc)}") from None
    if duplicated:
        raise InvalidBody(where or "body", f"the key {duplicated[0]!r} appears twice in one object")
    # Most bodies hold neither, and are not walked.
    problem = _first_unprocessable(value) if non_finite or _SURROGATE_ESCAPE.search(data) else None
    if problem is not None:
        path, reason = problem
        raise InvalidBody(_join(where, path) or "body", reason)
    return value


def too_deep(text: str, max_depth: int) -> str | None:
    """The path of the first array or object nested deeper than ``max_depth`` in ``text``, else None.

    A scan of the raw text that keeps one frame per open bracket (the key or
    index inside it), so it costs no recursion and stops at the first level
    too many. ``""`` is the path of the top level.
    """
    if _brackets(text) <= max_depth:
        return None
    frames: list[list[Any]] = []  # [is_object, current key or index]
    last_string = ""
    for match in _TOKENS.finditer(text):
        token = match.group()
        char = token[0]
        if char == '"':
            last_string = token
        elif char in "[{":
            if len(frames) >= max_depth:
                return _path(frames)
            frames.append([char == "{", None if char == "{" else 0])
        elif char in "]}":
            if frames:
                frames.pop()
        elif frames and char == ":" and frames[-1][0]:
            frames[-1][1] = _key(last_string)
        elif frames and char == "," and not frames[-1][0]:
            frames[-1][1] += 1
    return None


def _key(token: str) -> str:
    try:
        return json.loads(token)
    except ValueError:
        return token[1:-1]


def _path(frames: list[list[Any]]) -> str:
    path = ""
    for is_object, key in frames:
        path = _join(path, str(key) if is_object else key)
    return path


def _join(path: str, step: str | int) -> str:
    if isinstance(step, int):
        return f"{path}[{step}]"
    if not step:
        return path
    return f"{path}.{step}" if path else step


def _brackets(text: str) -> int:
    """Opening brackets in ``text``, strings included: a bound on its depth that costs no Python loop."""
    return text.count("[") + text.count("{")


def _finite(number: float | int, text: str, refuse: Callable[[str], object]) -> float | int | object:
    """``number``, or what ``refuse`` makes of it when it is infinite or beyond a double's range."""
    try:
        if math.isfinite(number):
            return number
    except OverflowError:  # an integer too large for a double
        pass
    return refuse(text)


def _first_unprocessable(value: Any) -> tuple[str, str] | None:
    """The path and reason of the first non-finite number or lone surrogate, in document order.

    Iterative, though the depth is bounded by now: the walk must not be the
    thing that recurses.
    """
    pending: list[tuple[str, Any]] = [("", value)]
    while pending:
        path, item = pending.pop()
        if item is _NON_FINITE:
            return path, "must be a finite number (NaN, Infinity and numbers beyond a double's range are refused)"
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return path, _SURROGATE_REASON
        elif isinstance(item, dict):
            for key in item:
                if _SURROGATE.search(key):
                    return _join(path, key.encode("utf-8", "backslashreplace").decode()), f"the key {_SURROGATE_REASON}"
            pending.extend((_join(path, key), child) for key, child in reversed(item.items()))
        elif isinstance(item, list):
            pending.extend((_join(path, i), child) for i, child in reversed(list(enumerate(item))))
    return None


_SURROGATE_REASON = (
    "contains a lone UTF-16 surrogate (an escape in \\ud800-\\udfff without its pair), which cannot be written as UTF-8"
)


def size_and_depth(value: Any) -> tuple[int, int]:
    """The length in UTF-8 bytes of ``value`` written as compact JSON, and its depth (arrays and objects, as
    :func:`too_deep` counts them: ``{}`` is 1), without writing it.

    For a body this service built itself rather than read (a ReactiveSearch query's, see reactivesearch): one
    object may appear in it many times, so written out it can be far larger than anything it was built from.
    Each distinct array or object is measured once (by identity), so the cost is that of what was built, not of
    what it would write; iterative, as a body may be deeper than the parsers' recursion allows.
    """
    if not isinstance(value, dict | list):
        return _scalar_size(value), 0
    measured: dict[int, tuple[int, int]] = {}
    pending: list[tuple[Any, bool]] = [(value, False)]
    open_ids: set[int] = set()
    while pending:
        item, children_done = pending.pop()
        key = id(item)
        if key in measured:
            continue
        children = list(item.values()) if isinstance(item, dict) else item
        if not children_done:
            if key in open_ids:
                raise ValueError("the value holds itself: it has no JSON text")
            open_ids.add(key)
            pending.append((item, True))
            pending.extend((child, False) for child in children if isinstance(child, dict | list))
            continue
        open_ids.discard(key)
        size, depth = 2 + max(len(children) - 1, 0), 0
        for child in children:
            child_size, child_depth = (
                measured[id(child)] if isinstance(child, dict | list) else (_scalar_size(child), 0)
            )
            size += child_size
            depth = max(depth, child_depth)
        if isinstance(item, dict):
            size += sum(_scalar_size(name) + 1 for name in item)  # each key and its colon
        measured[key] = (size, depth + 1)
    return measured[id(value)]


def _scalar_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode("utf-8", "surrogatepass"))
