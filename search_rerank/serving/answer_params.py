"""URI parameters that change how an answer is written, not what it finds: ``filter_path`` and
``rest_total_hits_as_int``, on ``_search`` and ``_msearch`` alike.

The official clients send them: ``@elastic/elasticsearch``'s ``helpers.search`` asks every search for
``filter_path=hits.hits._id,hits.hits._source``, its ``scrollSearch`` and older clients (and Kibana's 7.x
code) ``rest_total_hits_as_int=true``. Both are applied as Elasticsearch applies them, to the whole answer
(a multi-search's ``responses`` included), after the search.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .es_compat import InvalidQuery, flag

FILTER_PATH = "filter_path"
TOTAL_AS_INT = "rest_total_hits_as_int"
Path = tuple[str, ...]
MAX_FILTER_PATHS = 64
"""The most paths one ``filter_path`` may name: each is followed through the whole answer, so hundreds of them
(a URL holds 680 ``**.x``) took a worker's time for a minute; clients name a few."""


def counted_exactly(body: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """The body to search for ``?rest_total_hits_as_int``: counting every match (``track_total_hits: true``)
    unless the body says otherwise, as a number cannot say "at least"; a numeric ``track_total_hits`` is a
    400 naming the parameter, as in Elasticsearch (``false`` stays: the total is then -1)."""
    if not flag(params.get(TOTAL_AS_INT, False), TOTAL_AS_INT):
        return body
    track = body.get("track_total_hits")  # ?track_total_hits is in the body by now (es_compat.uri_search)
    if track is None:
        return {**body, "track_total_hits": True}
    if not (isinstance(track, bool) or track in ("true", "false")):  # 1 == True in Python, not in the API
        raise InvalidQuery(TOTAL_AS_INT, f"cannot be used if the tracking of total hits is not accurate, got {track}")
    return body


def total_as_int(answer: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``answer`` with ``hits.total`` written as Elasticsearch 6 wrote it when ``?rest_total_hits_as_int``
    asks: its value, or -1 where the search counted nothing (``track_total_hits: false``)."""
    if flag(params.get(TOTAL_AS_INT, False), TOTAL_AS_INT) and "hits" in answer:
        total = answer["hits"].get("total")
        answer["hits"] = {**answer["hits"], "total": total["value"] if total is not None else -1}
    return answer


def filtered(answer: dict[str, Any], params: Mapping[str, Any]) -> dict[str, Any]:
    """``answer`` cut to ``?filter_path``: comma-separated dotted paths, ``*`` within a name, ``**`` for any
    depth, through lists. Paths keep only what they name (an object or list left empty goes too, so a search
    without hits is ``{}``); a path starting with ``-`` leaves out what it names. With both, the ``-`` paths
    are applied first, as in Elasticsearch."""
    paths = filter_paths(params)
    if not paths:
        return answer
    excluded = [_path(p[1:]) for p in paths if p.startswith("-")]
    included = [_path(p) for p in paths if not p.startswith("-")]
    for kept, inclusive in ((excluded, False), (included, True)):
        if kept:
            answer = _filtered(answer, kept, inclusive) or {}
    return answer


def filter_paths(params: Mapping[str, Any]) -> list[str]:
    """The paths of ``?filter_path``, checked: called before a search as well as after it, so that a
    parameter the answer would be refused for costs no search."""
    paths = [p.strip() for p in str(params.get(FILTER_PATH) or "").split(",") if p.strip()]
    if len(paths) > MAX_FILTER_PATHS:
        raise InvalidQuery(FILTER_PATH, f"at most {MAX_FILTER_PATHS} paths, got {len(paths)}")
    return paths


def _filtered(value: Any, paths: list[Path], inclusive: bool) -> Any:
    """``value`` below the paths still to match, or None where nothing of it is kept. An object or list
    emptied by the filter is dropped; one that was empty is kept by a ``-`` filter (Elasticsearch's
    FilterPathBasedFilter)."""
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            matched, rest = _step(paths, key)
            if matched or not rest:
                if matched == inclusive:
                    out[key] = item
                continue
            kept = _filtered(item, rest, inclusive)
            if kept is not None:
                out[key] = kept
        return out if out or (not value and not inclusive) else None
    if isinstance(value, list):
        items = [kept for kept in (_filtered(item, paths, inclusive) for item in value) if kept is not None]
        return items if items or (not value and not inclusive) else None
    return None if inclusive else value


def _path(text: str) -> Path:
    """A dotted path's names, ``**`` once where it stands twice or more in a row (``**.**`` matches what ``**``
    does): each ``**`` is followed both at this depth and deeper, so repeated ones would be followed in
    exponentially many ways, seconds of a worker's time for a URL of a few dozen characters."""
    names: list[str] = []
    for name in text.split("."):
        if not (name == "**" and names[-1:] == ["**"]):
            names.append(name)
    return tuple(names)


def _step(paths: list[Path], key: str) -> tuple[bool, list[Path]]:
    """Whether a path ends at ``key``, and what the paths still ask below it (each once: several ``**`` of one
    path may reach the same rest)."""
    matched, rest = _step_each(paths, key)
    return matched, list(dict.fromkeys(rest))


def _step_each(paths: list[Path], key: str) -> tuple[bool, list[Path]]:
    matched, rest = False, []
    for head, *tail in paths:
        if head == "**":
            rest.append((head, *tail))  # it goes on matching deeper
            if not tail:
                matched = True
                continue
            deeper, below = _step_each([tuple(tail)], key)
            matched, rest = matched or deeper, rest + below
        elif _glob(head, key):
            if tail:
                rest.append(tuple(tail))
            else:
                matched = True
    return matched, rest


def _glob(pattern: str, key: str) -> bool:
    """Whether ``key`` is ``pattern``, each ``*`` in it any run of characters. Each piece between stars is found
    at its first place after the one before: that is enough for stars alone, in time linear in the key, where a
    regular expression of them backtracks (``*a*a*a*a*b`` against a name of a hundred ``a`` took seconds, and a
    caller names the aggregations)."""
    if "*" not in pattern:
        return pattern == key
    first, *middle, last = pattern.split("*")
    if len(first) + len(last) > len(key) or not key.startswith(first) or not key.endswith(last):
        return False
    at, end = len(first), len(key) - len(last)
    for piece in middle:
        found = key.find(piece, at, end)
        if found < 0:
            return False
        at = found + len(piece)
    return True
