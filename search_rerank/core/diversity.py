"""The diversity stage: maximal marginal relevance (MMR) over the top of the list.

A ranking by relevance alone puts near-duplicates side by side (ten grey corner
sofas); MMR (Carbonell & Goldstein, SIGIR 1998) builds the top of the list
greedily instead, each step picking the candidate that maximises
``λ rel(v) - (1 - λ) max_{u picked} sim(v, u)``, so that a product close to one
already shown has to be clearly more relevant to come next. λ = 1 is the
relevance order; lower λ trades relevance for variety.

Similarity is the cosine of the products' bi-encoder vectors where both have
one (the dense index's stored embeddings), and otherwise whether they share
their category path (1 for the same product type, 0.5 for the same parent,
else 0), so the stage still works on a deployment without a dense leg. The
function is pure: the pipeline gathers vectors and categories and passes them in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from .candidate import Candidate, ranked
from .fusion import minmax
from .settings import DiversitySettings


@runtime_checkable
class StoredVectors(Protocol):
    """A leg that can give back the embeddings it indexed (the FAISS dense leg)."""

    def vectors_of(self, product_ids: Iterable[str]) -> dict[str, np.ndarray]: ...


def category_similarity(a: Sequence[str], b: Sequence[str]) -> float:
    """1 for the same full category path, 0.5 for the same parent, 0 otherwise (or when either is unknown)."""
    if not a or not b:
        return 0.0
    if tuple(a) == tuple(b):
        return 1.0
    return 0.5 if len(a) > 1 and len(b) > 1 and tuple(a[:-1]) == tuple(b[:-1]) else 0.0


def similarity_matrix(
    ids: Sequence[str],
    vectors: Mapping[str, np.ndarray],
    categories: Mapping[str, Sequence[str]],
) -> np.ndarray:
    """Pairwise similarity of ``ids``: vector cosine where both have a vector, category similarity otherwise."""
    n = len(ids)
    sim = np.array(
        [[category_similarity(categories.get(a, ()), categories.get(b, ())) for b in ids] for a in ids],
        dtype=np.float64,
    ).reshape(n, n)
    has = np.array([pid in vectors for pid in ids], dtype=bool)
    if has.any():
        rows = np.flatnonzero(has)
        matrix = np.stack([np.asarray(vectors[ids[int(i)]], dtype=np.float64) for i in rows])
        norms = np.linalg.norm(matrix, axis=1, keepdims=True)
        matrix = matrix / np.where(norms == 0, 1.0, norms)
        sim[np.ix_(rows, rows)] = matrix @ matrix.T
    return sim


def mmr(candidates: Sequence[Candidate], similarity: np.ndarray, settings: DiversitySettings) -> list[Candidate]:
    """Greedy MMR over the top ``settings.depth`` candidates; ``similarity`` is that window's pairwise matrix.

    Relevance is the score min-max scaled in the window, so λ means the same
    whatever stage ran before. The rest of the list keeps its order below the
    window, with scores below the window's (as in longtail.xquad).
    """
    if not candidates or not settings.enabled:
        return list(candidates)
    depth = min(settings.depth, len(candidates))
    if similarity.shape != (depth, depth):
        raise ValueError(f"similarity must be {depth}x{depth} (the window), got {similarity.shape}")
    window, rest = list(candidates[:depth]), list(candidates[depth:])
    relevance = minmax(np.array([c.score for c in window], dtype=np.float64))
    lam = settings.lambda_
    free = np.ones(depth, dtype=bool)
    closest = np.zeros(depth)  # max similarity to anything picked so far
    order: list[int] = []
    gains: list[float] = []
    for _ in range(depth):
        gain = lam * relevance - (1 - lam) * closest
        best = int(np.argmax(np.where(free, gain, -np.inf)))  # first maximum: ties keep the input order
        free[best] = False
        order.append(best)
        gains.append(float(gain[best]))
        closest = np.maximum(closest, similarity[best])
    out = [
        window[i].with_score(2.0 - position / depth, relevance=float(relevance[i]), mmr_gain=gain)
        for position, (i, gain) in enumerate(zip(order, gains))
    ]
    below = minmax(np.array([c.score for c in candidates], dtype=np.float64))[depth:]
    return out + ranked([c.with_score(float(s)) for c, s in zip(rest, below)])


def intra_list_diversity(similarity: np.ndarray) -> float:
    """Mean pairwise dissimilarity (1 - sim) of a list, given its similarity matrix; 0 for fewer than two items."""
    n = len(similarity)
    if n < 2:
        return 0.0
    upper = similarity[np.triu_indices(n, k=1)]
    return float(np.mean(1.0 - upper))
