"""Is a difference between two rankers on the same queries more than query sampling noise?

Both tests work on per-query deltas (B - A on each query), because the two
systems are scored on the same queries and query difficulty varies far more
than the systems do: pairing removes it. The paired bootstrap gives a
confidence interval for the mean delta (and a p-value); the paired randomisation test (Fisher,
as recommended for IR by Smucker, Allan & Carterette, CIKM 2007) gives the
p-value under "A and B are exchangeable on every query". Both are seeded, and
resampled in blocks so memory stays bounded on large query sets.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

import numpy as np
import numpy.typing as npt

BLOCK = 1000  # resamples per vectorised block: rows x queries floats at a time


@dataclass(frozen=True)
class Significance:
    queries: int
    mean_delta: float
    ci_low: float
    ci_high: float
    confidence: float
    p_value: float
    """Paired randomisation test; the headline p-value."""
    bootstrap_p_value: float
    resamples: int
    wins: int
    losses: int
    ties: int

    def significant(self, alpha: float = 0.05) -> bool:
        return self.p_value < alpha

    def to_json(self) -> dict:
        return asdict(self)


def _deltas(deltas: npt.ArrayLike) -> np.ndarray:
    values = np.asarray(deltas, dtype=np.float64).reshape(-1)
    if values.size == 0:
        raise ValueError("no per-query deltas: the two runs share no scored query")
    if not np.all(np.isfinite(values)):
        raise ValueError("per-query deltas must be finite numbers")
    return values


def _blocks(resamples: int) -> list[int]:
    return [min(BLOCK, resamples - start) for start in range(0, resamples, BLOCK)]


def _bootstrap_means(values: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [values[rng.integers(0, values.size, (n, values.size))].mean(axis=1) for n in _blocks(resamples)]
    )


def bootstrap_ci(
    deltas: npt.ArrayLike, *, resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile interval of the mean delta over query sets resampled with replacement."""
    values = _deltas(deltas)
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be between 0 and 1, got {confidence}")
    tail = (1 - confidence) / 2
    low, high = np.quantile(_bootstrap_means(values, resamples, seed), [tail, 1 - tail])
    return float(low), float(high)


def bootstrap_p(deltas: npt.ArrayLike, *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of a zero mean delta: how often resampled means of the deltas, shifted to mean 0
    (the null), land at least as far from 0 as the observed mean (Efron & Tibshirani 1993, sec. 16.4)."""
    values = _deltas(deltas)
    observed = abs(values.mean())
    means = _bootstrap_means(values - values.mean(), resamples, seed)
    return (int(np.count_nonzero(np.abs(means) >= observed - 1e-12)) + 1) / (resamples + 1)


def randomisation_p(deltas: npt.ArrayLike, *, resamples: int = 10_000, seed: int = 0) -> float:
    """Two-sided p-value of the mean delta under random sign flips (swapping A and B on each query).

    Counted with the observed statistic included (+1 in numerator and
    denominator), so the p-value is never exactly 0 from a finite sample.
    """
    values = _deltas(deltas)
    observed = abs(values.mean())
    rng = np.random.default_rng(seed)
    extreme = 0
    for n in _blocks(resamples):
        signs = rng.integers(0, 2, (n, values.size)) * 2 - 1
        extreme += int(np.count_nonzero(np.abs((signs * values).mean(axis=1)) >= observed - 1e-12))
    return (extreme + 1) / (resamples + 1)


def paired_test(
    a: npt.ArrayLike, b: npt.ArrayLike, *, resamples: int = 10_000, confidence: float = 0.95, seed: int = 0
) -> Significance:
    """B against A on the same queries, in the same order: interval, p-value, and the win/loss count."""
    a_values, b_values = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a_values.shape != b_values.shape:
        raise ValueError(
            f"paired scores need one value per query from each system, got {a_values.size} and {b_values.size}"
        )
    deltas = _deltas(b_values - a_values)
    low, high = bootstrap_ci(deltas, resamples=resamples, confidence=confidence, seed=seed)
    return Significance(
        queries=int(deltas.size),
        mean_delta=float(deltas.mean()),
        ci_low=low,
        ci_high=high,
        confidence=confidence,
        p_value=randomisation_p(deltas, resamples=resamples, seed=seed),
        bootstrap_p_value=bootstrap_p(deltas, resamples=resamples, seed=seed),
        resamples=resamples,
        wins=int(np.count_nonzero(deltas > 0)),
        losses=int(np.count_nonzero(deltas < 0)),
        ties=int(np.count_nonzero(deltas == 0)),
    )


def paired_by_query(
    a: Mapping[str, float],
    b: Mapping[str, float],
    queries: Iterable[str] | None = None,
    *,
    resamples: int = 10_000,
    confidence: float = 0.95,
    seed: int = 0,
) -> Significance:
    """:func:`paired_test` of two runs' per-query scores, by query id: over ``queries`` in their order (each must be
    in both), or over the queries both score, sorted. The pairing is by id, so two runs' dicts built in different
    orders cannot pair one query's score with another's."""
    qids = list(queries) if queries is not None else sorted(a.keys() & b.keys())
    return paired_test(
        [a[q] for q in qids], [b[q] for q in qids], resamples=resamples, confidence=confidence, seed=seed
    )
