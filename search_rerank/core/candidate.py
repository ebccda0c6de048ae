"""The one type every pipeline stage takes and returns.

Stages never edit a candidate: they make changed copies, so a list handed to a
stage is still valid for comparison afterwards (e.g. first-stage vs reranked
order on the same candidates).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class Candidate:
    """A product in a ranked list.

    ``score`` is the score of the latest stage that ranked it; ``features``
    keeps what every earlier stage said (``lexical_score``, ``lexical_rank``,
    ``dense_score``, ``dense_rank``, ``fused``, ``rerank``, ``popularity``,
    ``boost``) so that results can be explained and stages compared.
    """

    product_id: str
    score: float
    legs: frozenset[str] = frozenset()
    features: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.features, MappingProxyType):
            object.__setattr__(self, "features", MappingProxyType(dict(self.features)))
        if not isinstance(self.legs, frozenset):
            object.__setattr__(self, "legs", frozenset(self.legs))

    def with_score(self, score: float, **features: float) -> Candidate:
        """A copy with a new score and extra features (earlier features kept).

        Built directly rather than by ``dataclasses.replace``: every stage copies every candidate it ranks, and
        replace (re-running ``__init__`` and ``__post_init__`` on fields already checked) was half the cost of
        ranking a list, which tuning does hundreds of thousands of times.
        """
        copy = object.__new__(type(self))
        object.__setattr__(copy, "product_id", self.product_id)
        object.__setattr__(copy, "score", float(score))
        object.__setattr__(copy, "legs", self.legs)
        object.__setattr__(copy, "features", MappingProxyType({**self.features, **features}))
        return copy

    def merged_with(self, other: Candidate) -> Candidate:
        """Combine what two legs know about the same product (score untouched)."""
        if other.product_id != self.product_id:
            raise ValueError(f"cannot merge {self.product_id!r} with {other.product_id!r}")
        return replace(self, legs=self.legs | other.legs, features={**self.features, **other.features})


def ranked(candidates: list[Candidate]) -> list[Candidate]:
    """Sort by score, best first; ties broken by product id so runs are deterministic."""
    return sorted(candidates, key=lambda c: (-c.score, c.product_id))
