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
ran before. The term is scaled by that relevance (``relevance_power``): an
unscaled term lets taste override relevance (a weak match in the shopper's
colour rises over a strong one), which costs every judgment that is not about
taste, while a scaled one settles near-ties among good matches, where taste is
what tells them apart. (Gating instead, a term only within a margin of the
best match as in the long-tail stage, lost to scaling on the simulated
shoppers' dev searches at every margin tried, and so was left out.)

A facet the query names gets no affinity (``skip_query_facets``): in "red
sofa" every good match is red, so a colour taste can only reorder by noise,
and a shopper who likes blue must not see the red sofas they asked for pushed
down by it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import lru_cache

import numpy as np

from .candidate import Candidate
from .fusion import minmax
from .product import Product
from .profile import ShopperProfile, facet_values, shares
from .settings import PersonalisationSettings

NO_PROFILE = "anonymous or unknown shopper: no profile"
DISABLED = "personalisation disabled in settings"
NAMEABLE_FACETS = frozenset({"brand", "color", "material", "style", "size"})
"""Facets whose values are words a query can name (a category path or a price band is not)."""
_NOT_WORD = re.compile(r"[^0-9a-z]+")
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
    values: Mapping[str, tuple[str, ...]],
    facet_shares: Mapping[str, Mapping[str, float]],
    settings: PersonalisationSettings,
) -> float:
    """Σ over facets of weight × the shopper's share of the product's value (its best value when several);
    ``values`` is the product's :func:`~search_rerank.core.profile.facet_values`."""
    total = 0.0
    for facet, own in values.items():
        weight = settings.facet_weights.get(facet, 0.0)
        known = facet_shares.get(facet)
        if weight > 0 and known:
            total += weight * max(known.get(v, 0.0) for v in own)
    return total


@lru_cache(maxsize=8192)
def words(text: str) -> str:
    """``text`` lower-cased with every run of non-alphanumerics one space, padded: ``" v " in words(q)`` then
    tests whole words, so "red" is named by "red sofa" but not by "redwood". Cached: the same few brands and
    colours come back in every list, and the stage has a 2 ms budget."""
    return f" {_NOT_WORD.sub(' ', text.lower()).strip()} "


def query_facets(query: str, window_values: Sequence[Mapping[str, tuple[str, ...]]]) -> set[str]:
    """The nameable facets of which the query names (as whole words) a value one of the window's products has."""
    said = words(query)
    if said == "  ":
        return set()
    named: set[str] = set()
    for values in window_values:
        for facet, own in values.items():
            if facet in NAMEABLE_FACETS and facet not in named and any(words(v) in said for v in own if v.strip()):
                named.add(facet)
    return named


def cosines(profile_vector: np.ndarray, ids: Sequence[str], vectors: Mapping[str, np.ndarray]) -> np.ndarray:
    """Cosine of each product's vector with the profile's, in one product of matrices; 0 for a product without a
    vector or with one of another size (another encoder's)."""
    out = np.zeros(len(ids))
    rows = [i for i, pid in enumerate(ids) if pid in vectors and vectors[pid].shape == profile_vector.shape]
    if not rows:
        return out
    matrix = np.stack([vectors[ids[i]] for i in rows]).astype(np.float32, copy=False)
    norms = np.linalg.norm(matrix, axis=1) * float(np.linalg.norm(profile_vector))
    dots = matrix @ profile_vector.astype(np.float32, copy=False)
    out[rows] = np.divide(dots, norms, out=np.zeros_like(dots), where=norms > 0)
    return out


def personalise(
    candidates: Sequence[Candidate],
    products: Mapping[str, Product],
    vectors: Mapping[str, np.ndarray],
    profile: ShopperProfile | None,
    settings: PersonalisationSettings,
    facets: Mapping[str, Mapping[str, tuple[str, ...]]] | None = None,
    query: str | None = None,
) -> list[Candidate]:
    """The list re-ranked for ``profile``; the input order unchanged when :func:`skip_reason` says so.

    ``products`` and ``vectors`` need only the window's products; one missing
    gets no personal term (a product without a vector, no cosine term).
    ``facets``, when given, holds the products' facet values already worked
    out (the pipeline keeps them per product id), and ``products`` is then
    only read for products it lacks. Each window candidate's features record
    ``relevance``, ``personal`` (the added term, after the cap),
    ``personal_affinity`` and ``personal_cosine``. ``query``, when given,
    lets ``skip_query_facets`` drop the facets it names.
    """
    if not candidates or profile is None or skip_reason(profile, settings) is not None:
        return list(candidates)
    depth = min(settings.depth, len(candidates))
    window, rest = list(candidates[:depth]), list(candidates[depth:])
    ids = [c.product_id for c in window]
    relevance = minmax(np.array([c.score for c in window], dtype=np.float64))
    facet_shares = {facet: shares(values) for facet, values in profile.affinities.items()}
    window_values: list[Mapping[str, tuple[str, ...]]] = []
    for pid in ids:
        values = facets.get(pid) if facets is not None else None
        if values is None:
            values = facet_values(products[pid]) if pid in products else {}
        window_values.append(values)
    if settings.skip_query_facets and query is not None:
        for facet in query_facets(query, window_values):
            facet_shares.pop(facet, None)
    affinities = np.zeros(depth)
    for i, values in enumerate(window_values):
        if values:
            affinities[i] = affinity(values, facet_shares, settings)
    cos = (
        np.maximum(cosines(profile.vector, ids, vectors), 0.0)
        if profile.vector is not None and settings.vector_weight > 0
        else np.zeros(depth)
    )
    terms = np.minimum(settings.cap, affinities + settings.vector_weight * cos)
    if settings.relevance_power > 0:
        terms = terms * relevance**settings.relevance_power
    order = bounded_order(relevance + terms, settings.max_rise)
    # Scores above everything below the window and falling with position keep the order through any later
    # sort by score; the rest keep their own scores (and order), so only the window is copied.
    base = max((c.score for c in rest), default=0.0) + 1.0
    out = []
    for position, i in enumerate(order):
        features = {
            "relevance": float(relevance[i]),
            "personal": float(terms[i]),
            "personal_affinity": float(affinities[i]),
            "personal_cosine": float(cos[i]),
        }
        out.append(window[i].with_score(base + (depth - position) / depth, **features))
    return out + rest


def bounded_order(scores: np.ndarray, max_rise: int) -> list[int]:
    """Indices by falling score, where the item at input index i may take position p only if i - p <= max_rise.

    The plain order by score (ties keep the input order) when it already
    respects the bound, as it mostly does; else greedy: each position takes
    the best remaining item among those allowed there, so no item rises more
    than ``max_rise`` places, and one that would rise further waits until it
    is allowed.
    """
    n = len(scores)
    plain = sorted(range(n), key=lambda i: (-scores[i], i))
    if all(i - position <= max_rise for position, i in enumerate(plain)):
        return plain
    free = np.ones(n, dtype=bool)
    index = np.arange(n)
    order: list[int] = []
    for position in range(n):
        allowed = free & (index <= position + max_rise)
        best = int(np.argmax(np.where(allowed, scores, -np.inf)))
        free[best] = False
        order.append(best)
    return order
