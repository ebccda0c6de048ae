"""Popularity tiers and the long-tail stages: the gated boost and popularity-aware xQuAD.

Popularity is a percentile of log-scaled catalog signals (sales, reviews), so
that one viral product does not squash everyone else into the bottom tier and
the tiers mean the same thing in any catalog. The boost is gated on relevance:
only products already close to the top of the list by relevance are lifted,
so that an irrelevant long-tail product is never pushed up.

The gated boost lifts single products; it cannot see the list as a whole, so a
query whose candidates are all head products stays all head and one whose top
is already mixed gets more tail than it needs. Popularity-aware xQuAD
(Abdollahpouri, Burke & Mobasher, "Managing Popularity Bias in Recommender
Systems with Personalized Re-ranking", FLAIRS 2019) builds the top of the list
greedily instead, each step trading a product's relevance against how
under-covered its popularity category (head or long tail) still is, in
proportion to how much of that category the query's candidates hold. A query
with no relevant tail products therefore gets none forced in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def boost(
    candidates: Sequence[Candidate], popularity: Mapping[str, float], settings: LongTailSettings
) -> list[Candidate]:
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


HEAD, TORSO, TAIL = "head", "torso", "tail"
TIERS = (HEAD, TORSO, TAIL)


def tier(percentile: float, settings: LongTailSettings) -> str:
    """Head is the top ``head_fraction``; torso the most popular ``torso_fraction`` of the rest."""
    head_cut = 1.0 - settings.head_fraction
    if percentile >= head_cut:
        return HEAD
    return TORSO if percentile >= head_cut * (1.0 - settings.torso_fraction) else TAIL


def tiers(popularity: Mapping[str, float], settings: LongTailSettings) -> dict[str, str]:
    return {pid: tier(pct, settings) for pid, pct in popularity.items()}


def xquad(
    candidates: Sequence[Candidate], popularity: Mapping[str, float], settings: LongTailSettings
) -> list[Candidate]:
    """Greedy popularity-aware xQuAD over the top ``xquad_depth`` candidates (the smooth variant).

    Each step picks the candidate maximising
    ``(1 - λ) rel(v) + λ Σ_c P(c|q) [v ∈ c] (1 - share of c among those already picked)``
    for c in {head, long tail}. ``rel`` is the score min-max scaled in the
    window; ``P(c|q)`` is c's share of the window, the query's own mix standing
    in for the user profile of the recommender setting. With ``target =
    "tail"`` the categories are the tail tier and the rest instead. Products
    with unknown popularity belong to neither category and compete on
    relevance alone. The
    rest of the list keeps its order below the window.
    """
    if not candidates or not settings.enabled:
        return list(candidates)
    depth = min(settings.xquad_depth, len(candidates))
    window, rest = list(candidates[:depth]), list(candidates[depth:])
    relevance = minmax(np.array([c.score for c in window], dtype=np.float64))
    known = np.array([c.product_id in popularity for c in window])
    if settings.target == "tail":
        tail = np.array([popularity.get(c.product_id, 1.0) < tail_cut(settings) for c in window]) & known
    else:
        tail = (
            np.array([is_long_tail(popularity.get(c.product_id, 1.0), settings.head_fraction) for c in window]) & known
        )
    head = known & ~tail
    share = {HEAD: head.mean(), TAIL: tail.mean()}
    lam = settings.xquad_lambda
    free = np.ones(depth, dtype=bool)
    picked_head = picked_tail = 0
    order: list[int] = []
    gains: list[float] = []
    for step in range(depth):
        head_gap = 1.0 - picked_head / step if step else 1.0
        tail_gap = 1.0 - picked_tail / step if step else 1.0
        gain = (1 - lam) * relevance + lam * (share[HEAD] * head * head_gap + share[TAIL] * tail * tail_gap)
        best = int(np.argmax(np.where(free, gain, -np.inf)))  # first maximum: ties keep the input order
        free[best] = False
        order.append(best)
        gains.append(float(gain[best]))
        picked_head += bool(head[best])
        picked_tail += bool(tail[best])
    out = []
    for position, (i, gain) in enumerate(zip(order, gains)):
        c = window[i]
        features = {"relevance": float(relevance[i]), "xquad_gain": gain}
        if known[i]:
            features["popularity"] = float(popularity[c.product_id])
        # Scores above 1 and falling with position keep the greedy order through any later sort by score.
        out.append(c.with_score(2.0 - position / depth, **features))
    below = minmax(np.array([c.score for c in candidates], dtype=np.float64))[depth:]
    return out + ranked([c.with_score(float(s)) for c, s in zip(rest, below)])


def long_tail_stage(
    candidates: Sequence[Candidate], popularity: Mapping[str, float], settings: LongTailSettings
) -> list[Candidate]:
    """The long-tail stage the settings select."""
    if settings.method == "xquad":
        return xquad(candidates, popularity, settings)
    return boost(candidates, popularity, settings)
