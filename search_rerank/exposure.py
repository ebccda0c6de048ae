"""Popularity tiers and exposure-aware re-ranking of the long tail.

The gated boost (longtail.boost) lifts single products; it cannot see the list
as a whole, so a query whose candidates are all head products stays all head
and one whose top is already mixed gets more tail than it needs.
Popularity-aware xQuAD (Abdollahpouri, Burke & Mobasher, "Managing Popularity
Bias in Recommender Systems with Personalized Re-ranking", FLAIRS 2019) builds
the top of the list greedily instead, each step trading a product's relevance
against how under-covered its popularity category (head or long tail) still is,
in proportion to how much of that category the query's candidates hold. A
query with no relevant tail products therefore gets none forced in.

Tiers (head / torso / tail) come from catalog signals (the store's percentiles)
or from a click log, whose counts say what shoppers actually see and buy.
"""

from __future__ import annotations

from collections import Counter
from typing import Iterable, Mapping, Sequence

import numpy as np

from .candidate import Candidate, ranked
from .clicks import Impression
from .fusion import minmax
from .longtail import boost, is_long_tail, percentile_ranks, tail_cut
from .settings import LongTailSettings

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


def tier_shares(lists: Iterable[Sequence[str]], popularity: Mapping[str, float],
                settings: LongTailSettings) -> dict[str, float]:
    """Share of the shown products in each tier, over all lists: where exposure goes, torso included, which
    the head/long-tail split of lt_share@10 hides. Products of unknown popularity are not counted."""
    counts = Counter(tier(popularity[pid], settings) for ids in lists for pid in ids if pid in popularity)
    total = sum(counts.values())
    return {name: counts[name] / total if total else 0.0 for name in TIERS}


def click_popularity(impressions: Iterable[Impression], catalog: Iterable[str] = ()) -> dict[str, float]:
    """Percentiles of click counts: popularity as traffic sees it, for catalogs whose sales signals are missing
    or stale. Products in ``catalog`` that were never shown or clicked count as the least popular."""
    clicks: Counter[str] = Counter()
    for impression in impressions:
        clicks.update({pid: 0 for pid in impression.shown})
        clicks.update(impression.clicked)
    for pid in catalog:
        clicks.setdefault(pid, 0)
    ids = sorted(clicks)
    return dict(zip(ids, percentile_ranks(np.array([clicks[pid] for pid in ids], dtype=np.float64)).tolist()))


def xquad(candidates: Sequence[Candidate], popularity: Mapping[str, float], settings: LongTailSettings) -> list[Candidate]:
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
        tail = np.array([is_long_tail(popularity.get(c.product_id, 1.0), settings.head_fraction)
                         for c in window]) & known
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


def long_tail_stage(candidates: Sequence[Candidate], popularity: Mapping[str, float],
                    settings: LongTailSettings) -> list[Candidate]:
    """The long-tail stage the settings select."""
    if settings.method == "xquad":
        return xquad(candidates, popularity, settings)
    return boost(candidates, popularity, settings)
