"""The interface both retrieval legs implement, whatever engine is behind them.

The pipeline only sees this protocol, so the embedded tantivy engine, a FAISS
index and Elasticsearch or OpenSearch are interchangeable per leg.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from .candidate import Candidate
from .filters import Filters
from .product import Product

LEXICAL = "lexical"
DENSE = "dense"


@runtime_checkable
class Retriever(Protocol):
    """A leg: ranked candidates for a query, with filters applied before ranking.

    ``search`` returns candidates whose ``legs`` is ``{name}`` and whose
    features hold ``{name}_score`` and ``{name}_rank`` (1-based).
    ``add`` upserts: a product whose id is already indexed is replaced.
    """

    name: str

    def warm_up(self) -> None: ...

    def add(self, products: Iterable[Product]) -> int: ...

    def delete(self, product_ids: Iterable[str]) -> int: ...

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]: ...

    def count(self) -> int: ...


def leg_candidates(name: str, hits: Iterable[tuple[str, float]]) -> list[Candidate]:
    """Turn an engine's (id, score) hits, best first, into a leg's candidate list."""
    return [
        Candidate(
            product_id=pid,
            score=float(score),
            legs=frozenset({name}),
            features={f"{name}_score": float(score), f"{name}_rank": float(rank)},
        )
        for rank, (pid, score) in enumerate(hits, start=1)
    ]
