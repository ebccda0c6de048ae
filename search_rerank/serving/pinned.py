"""Elasticsearch's ``pinned`` query: promoted products first, in the order given, then the ranking.

A merchandiser's rule ("this query shows these products first": Searchkit's ``PinnedResult`` query rule, Elastic's
curations) is a ``pinned`` query: ``ids`` (or ``docs``) and the ``organic`` query. Elasticsearch matches either,
and scores the pinned documents above every organic one, in the order listed; a pinned document that the rest of
the search excludes (a filter beside the ``pinned`` query, the post filter) or that does not exist is not shown.

Here the pipeline ranks, so the promise is kept in two parts. Both backends match a ``pinned`` query as
Elasticsearch does (the embedded compiler and the cluster's query: its ids or its organic query), so the
total and the facets count the pinned products; the pipeline ranks by the organic query alone. :func:`settled`
reads the ids of the ``pinned`` queries that score (not under a filter or ``must_not``), and :func:`pin` puts
those the search matches first, in their order, then the ranking, each product once. The pipeline is asked for
the ranking from the first hit (the backend's ``widen``), since a pinned product that the ranking already holds
moves up and every later hit moves down by one.

A field sort orders by the field, as in Elasticsearch, where scores (and so pins) do not count; a page a scroll,
point in time, ``search_after`` or ``collapse`` continues is the engine's own, which pins cannot reorder, so
pinning beside one is a 501.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Mapping
from typing import Any

from ..core.candidate import Candidate
from ..core.errors import CircuitOpenError, StageError
from ..core.pipeline import SearchPipeline, SearchResult
from ..core.reasons import reason_code
from . import metrics
from .es_compat import Unsupported, pinned_query

log = logging.getLogger(__name__)
PINNED = "pinned"
"""The query's and the retriever's name; a pinned hit's place among the pinned in its explanation (1 for the first);
the part left out when the engine cannot tell which pinned products match (``degraded``)."""
SCORING = {
    "bool": (("must", True), ("should", True), ("filter", False), ("must_not", False)),
    "constant_score": (("filter", False),),
    "function_score": (("query", True),),
    "boosting": (("positive", True), ("negative", False)),
    "dis_max": (("queries", True),),
    "nested": (("query", True),),
}
"""Compound queries, the keys under which they hold clauses, and whether those clauses' scores count: a
``pinned`` query in a filter context matches its ids or its organic query and puts nothing first."""
UNPINNABLE = ("scroll", "pit", "search_after", "collapse")
"""What makes a page the engine's own continuation, which pinned products cannot be put in front of."""


def settled(
    query: Any, served: Callable[[str], bool], path: str = "query", scoring: bool = True
) -> tuple[Any, list[str]]:
    """``query`` with each ``pinned`` query's ``docs`` as ``ids`` (a doc of an index not ``served`` here left out:
    Elasticsearch pins a document of the index searched only), and the ids the scoring ``pinned`` queries put
    first, in order.

    The ids of several ``pinned`` queries come in the order the queries do; an id pinned twice keeps its first
    place. Each ``pinned`` query is checked as Elasticsearch checks it, wherever it is.
    """
    found: list[str] = []
    return _settle(query, path, scoring, served, found), list(dict.fromkeys(found))


def _settle(query: Any, path: str, scoring: bool, served: Callable[[str], bool], found: list[str]) -> Any:
    if not isinstance(query, Mapping) or len(query) != 1:
        return query  # malformed: left for the compiler to name
    kind, spec = next(iter(query.items()))
    where = f"{path}.{kind}"
    if not isinstance(spec, Mapping):
        return query
    if kind == PINNED:
        ids, organic = pinned_query(spec, where)
        docs = spec.get("docs")
        if docs is not None:
            ids = [pid for pid, doc in zip(ids, docs) if doc.get("_index") is None or served(doc["_index"])]
        if scoring:
            found.extend(ids)
        rest = {k: v for k, v in spec.items() if k not in ("docs", "organic")}
        return {PINNED: {**rest, "ids": ids, "organic": _settle(organic, f"{where}.organic", scoring, served, found)}}
    out = dict(spec)
    for key, scores in SCORING.get(kind, ()):
        clauses = spec.get(key)
        if isinstance(clauses, list):
            out[key] = [
                _settle(c, f"{where}.{key}[{i}]", scoring and scores, served, found) for i, c in enumerate(clauses)
            ]
        elif clauses is not None:
            out[key] = _settle(clauses, f"{where}.{key}", scoring and scores, served, found)
    if kind == "function_score" and isinstance(spec.get("functions"), list):
        out["functions"] = [
            {**f, "filter": _settle(f["filter"], f"{where}.functions[{i}].filter", False, served, found)}
            if isinstance(f, Mapping) and "filter" in f
            else f
            for i, f in enumerate(spec["functions"])
        ]
    return {kind: out}


def check_pinnable(body: Mapping[str, Any], params: Mapping[str, str], scrolled: bool = False) -> None:
    """A 501 for pins on a page the engine continues (see the module's docstring); ``scrolled``: a page of a scroll
    whose parameter is read already (see search_contexts)."""
    for key in UNPINNABLE:
        if body.get(key) is not None or params.get(key) is not None or (key == "scroll" and scrolled):
            raise Unsupported(key, "pinned products on a page the engine continues (page by from/size)")


def pin(
    result: SearchResult,
    pins: list[str],
    matched: Callable[[list[str]], set[str]],
    offset: int,
    size: int,
    pipeline: SearchPipeline,
) -> SearchResult:
    """``result`` (the ranking from its first hit) with the pinned products the search ``matched`` first, cut to
    the page ``offset``/``size``; without them, flagged as degraded, when the engine cannot tell which match.

    A pinned product is scored above the best ranked one (the answer's ``_score`` stays in order) and explained by
    its place among the pinned. A ranking's total (its candidates) counts the pinned products it did not hold; an
    engine's count of every match (a listing's) counts them already.
    """
    try:
        found = matched(pins)
    except (StageError, CircuitOpenError) as exc:
        result.ranking.degraded[PINNED] = reason_code(exc)
        metrics.DEGRADED.labels(PINNED).inc()
        log.warning("answered without the pinned products (%s): %s", reason_code(exc), exc)
        found = set()
    shown = [pid for pid in pins if pid in found]
    ranking = result.ranking
    held = {c.product_id: c for c in ranking.candidates}
    top = max((c.score for c in ranking.candidates), default=0.0)
    first = [
        held.get(pid, Candidate(pid, 0.0)).with_score(top + len(shown) - i, **{PINNED: float(i + 1)})
        for i, pid in enumerate(shown)
    ]
    rest = [c for c in ranking.candidates if c.product_id not in found]
    hits = pipeline.hits(first) + [h for h in result.hits if h.product.id not in found]
    return dataclasses.replace(
        result,
        hits=hits[offset : offset + size],
        total=max(result.total, len(first) + len(rest)),
        ranking=dataclasses.replace(ranking, candidates=first + rest),
    )


def pinned_hits(result: SearchResult) -> set[str]:
    """The products of ``result``'s hits that :func:`pin` put first."""
    return {hit.product.id for hit in result.hits if PINNED in hit.candidate.features}
