"""The learned ranking stage: a LightGBM LambdaMART model over per-candidate features (see ranker_features).

Why a learned ranker after fusion and rerank: a linear blend weighs each
stage's score the same for every query, while which evidence matters depends
on the query (a model number wants an exact match, a vague query wants the
dense leg). A tree ensemble trained with a listwise objective on judged
queries learns those interactions; measured on a real hardware catalogue it
beat the best tuned linear blend (issue 15).

The model is saved by ``search-rerank train ranker`` with its card (kind
``ranker``), which records the feature names it was trained on. It is fed
those columns, in that order, from what this version computes: a model trained
by an earlier release, on fewer features, keeps serving after an upgrade that
adds one (retraining gains the new one), and a model naming a feature this
version does not compute is refused rather than fed a column it does not know.
The stage scores every candidate, so its order is the final one before
the exposure stages; each candidate keeps ``ltr`` (the model's score) and the
feature values it was scored on (``ltr_input:<feature>``); ``explain`` adds one
``ltr:<feature>`` per feature that moved its score (LightGBM's ``pred_contrib``:
per-row SHAP values, which sum with ``ltr:bias`` to the score), computed only
for the hits explained.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .candidate import Candidate, ranked
from .errors import ConfigError
from .model_card import ModelCard, resolve_model
from .ranker_features import FEATURES
from .retrieval import Stage
from .settings import Settings

log = logging.getLogger(__name__)

MODEL_FILE = "model.txt"
"""The LightGBM model in its text format, beside the card."""
CONTRIBUTION_PREFIX = "ltr:"
INPUT_PREFIX = "ltr_input:"
BIAS = "bias"


class LearnedRanker:
    """Reorders a ranked list by a LightGBM model's scores of the candidates' features."""

    name = Stage.LTR

    def __init__(self, booster: Any, features: Sequence[str], model_name: str):
        unknown = [name for name in features if name not in FEATURES]
        if unknown:
            raise ConfigError(
                f"ranker {model_name!r} was trained on features this version does not compute ({', '.join(unknown)}); "
                "retrain it with `search-rerank train ranker`"
            )
        self.booster = booster
        self.model_name = model_name
        self.features = tuple(features)
        self.columns = [FEATURES.index(name) for name in features]
        """Where each of the model's features is in a row of ``ranker_features.FEATURES``."""
        self.input_names = tuple(f"{INPUT_PREFIX}{name}" for name in features)

    @classmethod
    def load(cls, directory: str | Path, card: ModelCard) -> LearnedRanker:
        import lightgbm

        path = Path(directory) / MODEL_FILE
        if not path.is_file():
            raise ConfigError(f"{path} is missing: a ranker directory holds its LightGBM model as {MODEL_FILE}")
        features = card.parameters.get("features")
        if not isinstance(features, list):
            raise ConfigError(f"ranker {card.name!r}: its card does not list the features it was trained on")
        return cls(lightgbm.Booster(model_file=str(path)), [str(f) for f in features], card.name)

    def scores(self, rows: np.ndarray) -> np.ndarray:
        """The model's score per row of ``FEATURES`` (what ranking uses)."""
        return np.asarray(self.booster.predict(self.own(rows), num_threads=1), dtype=np.float64).reshape(-1)

    def own(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` (one per candidate, ``FEATURES`` wide) cut to the model's features, in its order."""
        return rows if self.features == FEATURES else rows[:, self.columns]

    def run(self, candidates: Sequence[Candidate], rows: np.ndarray) -> list[Candidate]:
        """``candidates`` reordered by the model's score of ``rows`` (their features, in the same order).

        Each candidate keeps the values the model saw (``ltr_input:<feature>``,
        unknown ones left out), so that :meth:`contributions` can explain it
        later without the request's context: SHAP values cost about a
        millisecond per row, too much to pay for every candidate of every search.
        """
        if len(candidates) != len(rows):
            raise ValueError(f"{len(candidates)} candidates but {len(rows)} feature rows")
        if not candidates:
            return []
        out = []
        # Plain floats, not numpy scalars: per value this loop runs for every candidate of every search (and of
        # every tuning trial), and numpy's scalar operations made it most of the stage's own time.
        for candidate, score, row in zip(candidates, self.scores(rows).tolist(), self.own(rows).tolist()):
            seen = {name: v for name, v in zip(self.input_names, row) if not math.isnan(v)}
            out.append(candidate.with_score(score, ltr=score, **seen))
        return ranked(out)

    def contributions(self, candidate: Candidate) -> dict[str, float]:
        """Each feature's contribution to the candidate's score (LightGBM ``pred_contrib``, SHAP values), by
        ``ltr:<feature>`` for those that moved it, plus ``ltr:bias``: together they sum to its ``ltr`` score."""
        row = np.array([[candidate.features.get(name, np.nan) for name in self.input_names]], dtype=np.float64)
        values = np.asarray(self.booster.predict(row, pred_contrib=True, num_threads=1), dtype=np.float64)[0]
        explained = {f"{CONTRIBUTION_PREFIX}{n}": float(v) for n, v in zip(self.features, values[:-1]) if v != 0.0}
        explained[f"{CONTRIBUTION_PREFIX}{BIAS}"] = float(values[-1])
        return explained


def load_ranker(settings: Settings) -> LearnedRanker:
    """The configured ranker, refused when its card is missing or broken, or says it lost to the best blend."""
    if settings.ltr.model is None:
        raise ConfigError("ltr.model is not set: there is no ranker to load")
    path, card = resolve_model(settings.ltr.model, settings.models_dir, "ranker")
    if not card.promoted and not settings.ltr.allow_unpromoted:
        raise ConfigError(
            f"ranker {card.name!r} was not promoted: {card.promotion_reason}. "
            "Serve it anyway with ltr.allow_unpromoted = true"
        )
    return LearnedRanker.load(path, card)
