"""Merging the legs' ranked lists into one.

RRF needs no score calibration and is the robust default; linear fusion
keeps score gaps (a dense hit far ahead of the rest stays far ahead) but
needs the legs' scores put on one scale first, hence the normalisers.
A product missing from a leg counts as that leg's worst returned score
(absence is evidence, but not proof, of a weak match), or below it when the
leg returned one score only (see ``missing_score``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from .candidate import Candidate, ranked
from .errors import ConfigError
from .identifiers import names_a_code
from .settings import FusionSettings

Legs = Mapping[str, Sequence[Candidate]]


def minmax(scores: np.ndarray) -> np.ndarray:
    span = scores.max() - scores.min()
    return np.ones_like(scores) if span == 0 else (scores - scores.min()) / span


def zscore(scores: np.ndarray) -> np.ndarray:
    std = scores.std()
    return np.zeros_like(scores) if std == 0 else (scores - scores.mean()) / std


def l2_norm(scores: np.ndarray) -> np.ndarray:
    """Each score divided by the list's Euclidean norm, as Elasticsearch's ``l2_norm`` normalizer of the linear
    retriever; a list whose norm is (nearly) zero is left as it is, as there."""
    norm = float(np.sqrt(np.sum(scores * scores)))
    return scores.copy() if norm < L2_EPSILON else scores / norm


def identity(scores: np.ndarray) -> np.ndarray:
    """No normalisation (Elasticsearch's ``none``): the legs' raw scores are summed as they are."""
    return scores.copy()


L2_EPSILON = 1e-6
NORMALIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "minmax": minmax,
    "zscore": zscore,
    "l2_norm": l2_norm,
    "none": identity,
}


def _merge(legs: Legs) -> dict[str, Candidate]:
    """One candidate per product, carrying every leg's features."""
    merged: dict[str, Candidate] = {}
    for hits in legs.values():
        for c in hits:
            merged[c.product_id] = merged[c.product_id].merged_with(c) if c.product_id in merged else c
    return merged


def _weight(weights: Mapping[str, float], leg: str) -> float:
    return weights[leg] if leg in weights else 1.0


def rrf(legs: Legs, rank_constant: float = 60.0, weights: Mapping[str, float] = {}) -> list[Candidate]:
    """Reciprocal rank fusion: sum over legs of weight / (rank_constant + rank)."""
    totals: dict[str, float] = {}
    for leg, hits in legs.items():
        w = _weight(weights, leg)
        for rank, c in enumerate(hits, start=1):
            totals[c.product_id] = totals.get(c.product_id, 0.0) + w / (rank_constant + rank)
    merged = _merge(legs)
    return ranked([merged[pid].with_score(s, fused=s) for pid, s in totals.items()])


def linear(legs: Legs, weights: Mapping[str, float] = {}, normalization: str = "minmax") -> list[Candidate]:
    """Weighted sum of per-leg normalised scores."""
    if normalization not in NORMALIZERS:
        raise ConfigError(f"unknown normalization {normalization!r}; valid: {sorted(NORMALIZERS)}")
    normalise = NORMALIZERS[normalization]
    totals: dict[str, float] = {}
    leg_norm: dict[str, dict[str, float]] = {}
    for leg, hits in legs.items():
        if not hits:
            continue
        norm = normalise(np.array([c.score for c in hits], dtype=np.float64))
        leg_norm[leg] = {c.product_id: float(s) for c, s in zip(hits, norm)}
    merged = _merge(legs)
    floor = {leg: missing_score(scores.values()) for leg, scores in leg_norm.items()}
    for pid in merged:
        totals[pid] = sum(_weight(weights, leg) * scores.get(pid, floor[leg]) for leg, scores in leg_norm.items())
    return ranked([merged[pid].with_score(s, fused=s) for pid, s in totals.items()])


def missing_score(normalised: Iterable[float]) -> float:
    """What a product a leg did not return counts as: the leg's worst returned score, or one below it when
    every returned product scored the same (a single hit normalises to 1 under min-max; counting the products
    it did not find as 1 too would bury the one exact match, e.g. a model number, among the other leg's)."""
    values = list(normalised)
    low = min(values)
    return low if max(values) > low else low - 1.0


FUSERS = ("rrf", "linear")


IDENTIFIER_QUERY = "identifier_query"
"""The feature a fused candidate carries (1.0) when its query named a product code and was fused with
``identifier_weights``: the explanation says why the dense leg counted for less."""


CODE_ANCHOR = "code_anchor"
"""The feature a fused candidate carries (1.0) when the query named a product code, the dense leg searched by the
named product's vector (``dense.code_anchors``) and the legs were fused with ``anchored_weights``."""


def fuse(legs: Legs, settings: FusionSettings, query: str, anchored: bool = False) -> list[Candidate]:
    """Fuse with the method the settings name; when ``query`` names a product code, with ``identifier_weights``,
    or ``anchored_weights`` where the dense list is the named product's neighbours (``anchored``)."""
    code = names_a_code(query)
    anchored = anchored and code
    chosen = settings.anchored_weights if anchored else settings.identifier_weights if code else settings.weights
    weights: dict[str, float] = {leg: weight for leg, weight in chosen.items()}
    if settings.method == "rrf":
        fused = rrf(legs, settings.rank_constant, weights)
    elif settings.method == "linear":
        fused = linear(legs, weights, settings.normalization)
    else:
        raise ConfigError(f"unknown fusion method {settings.method!r}; valid: {list(FUSERS)}")
    if not code:
        return fused
    marks = {IDENTIFIER_QUERY: 1.0, **({CODE_ANCHOR: 1.0} if anchored else {})}
    return [c.with_score(c.score, **marks) for c in fused]
