"""Popularity tiers and the gated long-tail boost.

Popularity is a percentile of log-scaled catalog signals (sales, reviews), so
that one viral product does not squash everyone else into the bottom tier and
the tiers mean the same thing in any catalog. The boost is gated on relevance:
only products already close to the top of the list by relevance are lifted,
so that an irrelevant long-tail product is never pushed up.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from .candidate import Candidate, ranked
from .fusion import minmax
from .settings import LongTailSettings


def popularity_signal(sales, reviews) -> np.ndarray:
    """Log-scaled sales plus reviews: the per-product value that percentiles rank.

    Search engines store it per document, since a percentile depends on the
    whole catalog and would change on every upsert.
    """
    return np.log1p(np.asarray(sales, dtype=np.float64)) + np.log1p(np.asarray(reviews, dtype=np.float64))


def popularity_percentiles(sales: Sequence[float], reviews: Sequence[float]) -> np.ndarray:
    """Per product, the share of the catalog that is less popular (ties share the mid-rank)."""
    return percentile_ranks(popularity_signal(sales, reviews))


def percentile_ranks(signal: np.ndarray) -> np.ndarray:
    """Percentile of each value among all (ties share the mid-rank), whatever signal measured popularity."""
    signal = np.asarray(signal, dtype=np.float64)
    n = len(signal)
    if n == 0:
        return np.empty(0)
    order = np.argsort(signal, kind="stable")
    sorted_signal = signal[order]
    # Average rank of each tie group, so equal popularity gets an equal percentile.
    starts = np.flatnonzero(np.r_[True, sorted_signal[1:] != sorted_signal[:-1]])
    ends = np.r_[starts[1:], n]
    mid = (starts + ends - 1) / 2.0
    ranks = np.empty(n)
    ranks[order] = np.repeat(mid, ends - starts)
    return ranks / max(n - 1, 1)


def is_long_tail(percentile: float, head_fraction: float) -> bool:
    """Head = the most popular ``head_fraction`` of the catalog; everything else is long tail."""
    return percentile < 1.0 - head_fraction


def tailness(percentile: float, head_fraction: float) -> float:
    """0 for head products, rising to 1 for the least popular."""
    threshold = 1.0 - head_fraction
    return float(np.clip((threshold - percentile) / threshold, 0.0, 1.0))


def tail_cut(settings: LongTailSettings) -> float:
    """The percentile below which a product is in the tail tier: below the head and the torso (exposure.tier)."""
    return (1.0 - settings.head_fraction) * (1.0 - settings.torso_fraction)


def favoured(percentile: float, settings: LongTailSettings) -> float:
    """How much the stage favours a product, 0..1: graded below the head (``long_tail``), or 1 for every
    tail-tier product and 0 for the rest (``tail``)."""
    if settings.target == "tail":
        return 1.0 if percentile < tail_cut(settings) else 0.0
    return tailness(percentile, settings.head_fraction)


def boost(candidates: Sequence[Candidate], popularity: Mapping[str, float], settings: LongTailSettings) -> list[Candidate]:
    """Lift relevant long-tail products.

    Relevance is the candidate's score min-max scaled within this list (the
    top result is 1), so the gate means "within (1 - gate) of the best match"
    whatever the scale of the stage before. Products with unknown popularity
    are not boosted. ``settings.target`` says which products and how much
    (see :func:`favoured`).
    """
    if not candidates or not settings.enabled or settings.strength == 0:
        return list(candidates)
    relevance = minmax(np.array([c.score for c in candidates], dtype=np.float64))
    out = []
    for c, rel in zip(candidates, relevance):
        pct = popularity.get(c.product_id)
        lift = 0.0
        if pct is not None and rel >= settings.gate:
            lift = settings.strength * favoured(pct, settings)
        features = {"relevance": float(rel), "boost": lift}
        if pct is not None:
            features["popularity"] = float(pct)
        out.append(c.with_score(float(rel) + lift, **features))
    return ranked(out)
