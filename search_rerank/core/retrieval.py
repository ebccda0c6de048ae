"""The stages of a search and the interfaces the pipeline's pluggable ones implement.

The pipeline only sees these protocols, so the embedded tantivy engine, a
FAISS index and Elasticsearch or OpenSearch are interchangeable per leg, and
any model that scores (query, product text) pairs can rerank.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Protocol, runtime_checkable

from .candidate import Candidate
from .filters import Filters
from .product import Product
from .settings import RerankSettings


class Stage(StrEnum):
    """A stage's name: the key of its list, timing, degraded or skipped reason in a Ranking and on the wire.

    A ``StrEnum`` so that the keys stay the plain strings clients and
    dashboards already read ("lexical", "dense", ...).
    """

    LEXICAL = "lexical"
    DENSE = "dense"
    FUSION = "fusion"
    RERANK = "rerank"
    LTR = "ltr"
    LONGTAIL = "longtail"
    DIVERSITY = "diversity"
    PERSONAL = "personal"


LEXICAL, DENSE = Stage.LEXICAL, Stage.DENSE
LEGS = (LEXICAL, DENSE)
"""The retrieval legs, in the order they are fused."""


@runtime_checkable
class Retriever(Protocol):
    """A leg: ranked candidates for a query, with filters applied before ranking.

    ``search`` returns candidates whose ``legs`` is ``{name}`` and whose
    features hold ``{name}_score`` and ``{name}_rank`` (1-based).
    ``add`` upserts: a product whose id is already indexed is replaced.
    The leg's ``name`` is its :class:`Stage`, the key of its list in a Ranking.
    """

    name: Stage

    def warm_up(self) -> None: ...

    def add(self, products: Iterable[Product]) -> int: ...

    def delete(self, product_ids: Iterable[str]) -> int: ...

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]: ...

    def count(self) -> int: ...


def searches_around(leg: object) -> bool:
    """Whether ``leg`` can search around a product itself, ``search_around(product_id, k, filters)``: the
    candidates nearest that product's stored vector, or None where it holds none. Asked of the leg's class, not
    the object, so that a wrapper that passes every other call on to the leg it wraps (a request's constraint, a
    client's own vector) searches around nothing unless it says how its own bounds hold there."""
    return callable(getattr(type(leg), "search_around", None))


def leg_candidates(name: str, hits: Iterable[tuple[str, float]]) -> list[Candidate]:
    """Turn an engine's (id, score) hits, best first, into a leg's candidate list (each score :func:`finite`)."""
    return [
        Candidate(
            product_id=pid,
            score=finite(score),
            legs=frozenset({name}),
            features={f"{name}_score": finite(score), f"{name}_rank": float(rank)},
        )
        for rank, (pid, score) in enumerate(hits, start=1)
    ]


LARGEST_SCORE = 3.4028234663852886e38
"""The largest 32-bit float: what an engine's score is held in, so an overflowed one stays above every other."""


def finite(score: float | str) -> float:
    """An engine's score as a number fusion can normalise: a boost a request chose (``title^1e308``) can overflow
    it, and the cluster then answers ``"Infinity"`` (or ``"NaN"``), which min-max fusion would turn into a NaN that
    no JSON parser reads. Infinity is held at :data:`LARGEST_SCORE` (it still ranks first), NaN as no score."""
    value = float(score)
    if math.isnan(value):
        return 0.0
    return max(-LARGEST_SCORE, min(LARGEST_SCORE, value))


@runtime_checkable
class Reranker(Protocol):
    """The rerank stage: reorders the top of a fused list by a model's (query, product text) scores.

    ``run`` gets the whole fused list and the texts of the products in the
    window it will score; it returns every candidate, the window reordered
    above the rest (see rerank.blend and rerank.below_window). ``settings``
    carries the per-request window, blend and batch size; None means the
    reranker's own.
    """

    def warm_up(self) -> None: ...

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]: ...
