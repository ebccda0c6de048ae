"""The personalisation stage: a bounded nudge of the ranked list towards one shopper's taste.

The term added to a product is the shopper's share of interest in the
product's value of each facet (brand, colour, ...), times that facet's weight,
plus a weight times the cosine between the shopper's profile vector and the
product's vector. Shares (not raw weights) so that the term means the same for
a shopper with three clicks and one with three hundred: it measures how
concentrated a taste is, not how long the history.

Two bounds keep it a nudge, never a new ranking: the term is capped
(``cap``, on the scale of the list's min-max scaled score, where the best
result is 1), and no product rises more than ``max_rise`` positions, so a
product the shopper loves but the query does not match cannot jump to the top.
Only the top ``depth`` results are re-ranked; the rest keep their order below.

Relevance is the input score min-max scaled in the window, as in the
long-tail and diversity stages, so the weights mean the same whatever stage
ran before.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .candidate import Candidate, ranked
from .fusion import minmax
from .product import Product
from .profile import ShopperProfile, facet_values, shares
from .settings import PersonalisationSettings

NO_PROFILE = "anonymous or unknown shopper: no profile"
DISABLED = "personalisation disabled in settings"
COUNT_TOLERANCE = 0.01
"""Decay starts at once, so three events a minute old count 2.99998: a shopper is cold below ``min_events``
less this, so that recent events count whole."""


def skip_reason(profile: ShopperProfile | None, settings: PersonalisationSettings) -> str | None:
    """Why the stage leaves this request's list alone, or None when it runs."""
    if not settings.enabled:
        return DISABLED
    if profile is None:
        return NO_PROFILE
    if profile.events < settings.min_events - COUNT_TOLERANCE:
        return f"cold shopper: {profile.events:.1f} events, fewer than min_events={settings.min_events:g}"
    return None


def affinity(
    product: Product, facet_shares: Mapping[str, Mapping[str, float]], settings: PersonalisationSettings
) -> float:
    """Σ over facets of weight × the shopper's share of the product's value (its best value when several)."""
    total = 0.0
    for facet, values in facet_values(product).items():
        weight = settings.facet_weights.get(facet, 0.0)
        known = facet_shares.get(facet)
        if weight > 0 and known:
            total += weight * max(known.get(v, 0.0) for v in values)
    return total


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity; 0 when either vector is zero or their sizes differ (another encoder's vectors)."""
    if a.shape != b.shape:
        return 0.0
    norm = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.dot(a, b) / norm) if norm > 0 else 0.0


def personalise(
    candidates: Sequence[Candidate],
    products: Mapping[str, Product],
    vectors: Mapping[str, np.ndarray],
    profile: ShopperProfile | None,
    settings: PersonalisationSettings,
) -> list[Candidate]:
    """The list re-ranked for ``profile``; the input order unchanged when :func:`skip_reason` says so.

    ``products`` and ``vectors`` need only the window's products; one missing
    gets no personal term (a product without a vector, no cosine term). Each
    window candidate's features record ``relevance``, ``personal`` (the added
    term, after the cap), ``personal_affinity`` and ``personal_cosine``.
    """
    if not candidates or profile is None or skip_reason(profile, settings) is not None:
        return list(candidates)
    depth = min(settings.depth, len(candidates))
    window, rest = list(candidates[:depth]), list(candidates[depth:])
    relevance = minmax(np.array([c.score for c in window], dtype=np.float64))
    facet_shares = {facet: shares(values) for facet, values in profile.affinities.items()}
    use_vector = profile.vector is not None and settings.vector_weight > 0
    terms = np.zeros(depth)
    parts: list[tuple[float, float]] = []
    for i, c in enumerate(window):
        product = products.get(c.product_id)
        aff = affinity(product, facet_shares, settings) if product is not None else 0.0
        vec = vectors.get(c.product_id) if use_vector else None
        cos = max(cosine(profile.vector, vec), 0.0) if vec is not None and profile.vector is not None else 0.0
        parts.append((aff, cos))
        terms[i] = min(settings.cap, aff + settings.vector_weight * cos)
    personal_scores = relevance + terms
    order = _bounded_order(personal_scores, settings.max_rise)
    out = []
    for position, i in enumerate(order):
        aff, cos = parts[i]
        features = {
            "relevance": float(relevance[i]),
            "personal": float(terms[i]),
            "personal_affinity": aff,
            "personal_cosine": cos,
        }
        # Scores above 1 and falling with position keep the order through any later sort by score.
        out.append(window[i].with_score(2.0 - position / depth, **features))
    below = minmax(np.array([c.score for c in candidates], dtype=np.float64))[depth:]
    return out + ranked([c.with_score(float(s)) for c, s in zip(rest, below)])


def _bounded_order(scores: np.ndarray, max_rise: int) -> list[int]:
    """Indices by falling score, where the item at input index i may take position p only if i - p <= max_rise.

    Greedy: each position takes the best remaining item among those allowed
    there (ties keep the input order), so no item rises more than
    ``max_rise`` places, and an item that would rise further waits until it
    is allowed.
    """
    n = len(scores)
    free = np.ones(n, dtype=bool)
    index = np.arange(n)
    order: list[int] = []
    for position in range(n):
        allowed = free & (index <= position + max_rise)
        best = int(np.argmax(np.where(allowed, scores, -np.inf)))
        free[best] = False
        order.append(best)
    return order
