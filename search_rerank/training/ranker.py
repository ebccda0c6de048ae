"""Training the learned ranker: LightGBM ``lambdarank`` on the judged queries' candidates, chosen on dev.

The training rows are what the stage will see when serving: each train query's
candidate list as the pipeline ranks it before the stage (fused, reranked when a
reranker is configured; the exposure stages off), with features from
``SearchPipeline.ranker_features``. Labels are the judgments' grades.

A candidate nobody judged is ambiguous under sparse labels: counting it as
grade 0 teaches the model that whatever the pool missed is irrelevant
(measured on a real catalogue: that made a cross-encoder worse), dropping it
throws away most of the list. ``unjudged="auto"`` trains both and keeps the one
with the better dev nDCG@10; the card records the choice and both figures.

How many boosting rounds to keep is chosen by early stopping on a
cross-validation over train's queries (``stopping="cv"``), not on dev: dev
then only picks how unjudged candidates count and decides promotion. On a few
hundred sparse-judged dev queries, early stopping on dev stops on noise
(``RankerTraining.stopping`` has the figures). The model is promoted only when
the pipeline with it beats the best linear blend on dev (lexical share 0 to 1
in steps of 0.1, and the configured settings themselves), the baseline a shop
would otherwise tune to.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from ..core.candidate import Candidate
from ..core.learned_rank import MODEL_FILE, LearnedRanker
from ..core.model_card import BASELINE_METRIC, MODEL_METRIC, ModelCard, SplitSize
from ..core.pipeline import SearchPipeline
from ..core.ranker_features import FEATURES
from ..core.retrieval import DENSE, LEXICAL
from ..core.settings import Settings
from ..data.dataset import Query
from ..data.qrels import Qrels
from ..evaluation.evaluate import relevance_metrics
from ..evaluation.tune import NDCG, RankingCache, RerankScores
from .card import save_training_card
from .mining import judged_subset
from .model_folder import staged

Unjudged = Literal["auto", "zero", "drop"]
Stopping = Literal["cv", "dev"]
LINEAR_SHARES = tuple(round(0.1 * i, 1) for i in range(11))
"""The lexical shares of the linear min-max blends the ranker has to beat on dev."""
LIGHTGBM = "lightgbm-lambdarank"


@dataclass(frozen=True)
class RankerTraining:
    """LightGBM's settings and how the training rows are made; all of it goes on the card."""

    unjudged: Unjudged = "auto"
    num_leaves: int = 7
    """Small trees, many rows per leaf: chosen on dev of both generated profiles (a few hundred judged train
    queries) as the setting with the best worst-case dev nDCG@10; LightGBM's 31 leaves / 20 rows overfit there."""
    learning_rate: float = 0.05
    max_rounds: int = 500
    early_stopping_rounds: int = 50
    stopping: Stopping = "cv"
    """Where early stopping looks. ``cv``: the mean nDCG@10 of a ``folds``-fold cross-validation over train's
    queries, then one model on all of train with the rounds it kept. ``dev``: dev's nDCG@10, so dev chooses the
    rounds as well as the promotion. Measured with ``benchmarks/learned_ranker.py``'s data, five seeds each
    (test nDCG@10, sparse labels): on the hard profile early stopping on its 240 dev queries kept 5 to 7 rounds
    and scored 0.425, no better than the tuned blend it ranks; ``cv`` kept 24 to 154 and scored 0.445. On the
    easy profile both scored 0.435. Rerun with the code anchors: hard 0.439 and 0.444, easy 0.450 and 0.453."""
    folds: int = 5
    min_data_in_leaf: int = 100
    feature_fraction: float = 0.9
    depth: int = 100
    """Candidates each leg retrieves for the cache; each leg is then cut to its configured count, as served."""
    max_queries: int | None = None
    """Train queries to learn from at most (a sample, fixed by ``seed``). Each costs a retrieval and, with a
    reranker configured, its window through the cross-encoder: on two CPU cores about a second a query without
    native bf16, 0.15 s with it (AMX), so the train split of a real catalogue (thousands of queries) takes from
    half an hour to hours there, minutes on a GPU. On the hard profile dev nDCG@10 still rose from 448 judged
    train queries to 909 and to all 1,873 (0.440, 0.442, 0.447, with its onboarded reranker;
    ``benchmarks/ranker_queries.py``), so none is the default."""
    seed: int = 13
    base_model: str | None = LIGHTGBM


@dataclass
class Lists:
    """One split's candidate lists as the stage would get them, with their feature rows and grades."""

    candidates: dict[str, list[Candidate]]
    rows: dict[str, np.ndarray]
    grades: dict[str, list[int | None]]
    """Per candidate: its judged grade, or None when nobody judged it."""


@dataclass(frozen=True)
class Fitted:
    """One unjudged-candidate variant's model and how it was chosen."""

    booster: Any
    dev_ndcg: float
    rows: int
    rounds: int
    cv_ndcg: float | None


def candidate_lists(
    cache: RankingCache, settings: Settings, queries: Mapping[str, Query], progress: bool = False
) -> Lists:
    """Each cached query's list ranked as the learned stage would receive it, and its features."""
    ranked = cache.rank(settings)
    pipeline: SearchPipeline = cache.pipeline
    lists = Lists({}, {}, {})
    for qid, candidates in tqdm(ranked.items(), desc="features", unit="query", disable=not progress):
        judged = cache.qrels[qid]
        lists.candidates[qid] = candidates
        lists.rows[qid] = pipeline.ranker_features(queries[qid].text, candidates)
        lists.grades[qid] = [max(int(judged[c.product_id]), 0) if c.product_id in judged else None for c in candidates]
    return lists


def sampled_queries(
    split: tuple[Mapping[str, Query], Qrels], limit: int | None, seed: int
) -> tuple[Mapping[str, Query], Qrels]:
    """At most ``limit`` of the split's judged queries (``judged_subset``, as the trainers sample dev), with their
    judgments; all of them without a limit."""
    if limit is None:
        return split
    kept = judged_subset(*split, limit, seed)
    return kept, {qid: split[1][qid] for qid in kept}


def stage_input_settings(settings: Settings) -> Settings:
    """``settings`` ranking up to the learned stage: the stage itself and the exposure stages after it off."""
    return settings.override(ltr={"enabled": False}, longtail={"enabled": False}, diversity={"enabled": False})


def dataset_arrays(lists: Lists, unjudged: Literal["zero", "drop"]) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """LightGBM's (rows, labels, group sizes); queries with no relevant candidate are left out (no gradient)."""
    rows, labels, groups = [], [], []
    for qid, grades in lists.grades.items():
        keep = [i for i, g in enumerate(grades) if g is not None or unjudged == "zero"]
        kept = [grades[i] or 0 for i in keep]
        if not keep or max(kept) <= 0:
            continue
        rows.append(lists.rows[qid][keep])
        labels.extend(kept)
        groups.append(len(keep))
    if not groups:
        return np.empty((0, len(FEATURES))), np.empty(0), []
    return np.vstack(rows), np.asarray(labels, dtype=np.float64), groups


def mean_ndcg(qrels: Qrels, run: Mapping[str, Sequence[Candidate]]) -> float:
    """nDCG@10 over the judged queries of ``run``, unjudged results counting as not relevant."""
    per_query = relevance_metrics(
        {qid: qrels[qid] for qid in run},
        {qid: [(c.product_id, c.score) for c in hits[:100]] for qid, hits in run.items()},
    )
    return float(np.mean([scores[NDCG] for scores in per_query.values()])) if per_query else 0.0


def best_linear_blend(cache: RankingCache, settings: Settings) -> tuple[float, dict[str, Any]]:
    """The best dev nDCG@10 among the configured ranking and linear min-max blends, and which one it was."""
    candidates: dict[str, Settings] = {"configured": settings}
    if cache.hybrid:
        for share in LINEAR_SHARES:
            candidates[f"linear-{share:.1f}"] = settings.override(
                fusion={
                    "method": "linear",
                    "normalization": "minmax",
                    "weights": {LEXICAL: share, DENSE: round(1 - share, 6)},
                }
            )
    scored = {name: mean_ndcg(cache.qrels, cache.rank(s)) for name, s in candidates.items()}
    best = max(scored, key=lambda name: scored[name])
    return scored[best], {"best": best, "dev_ndcg10": scored}


def booster_params(config: RankerTraining) -> dict[str, Any]:
    """LightGBM's parameters for the ranker (``fit_booster``), and for timing it (``training.cost``)."""
    return {
        "objective": "lambdarank",
        "metric": "ndcg",
        "eval_at": [10],
        "num_leaves": config.num_leaves,
        "learning_rate": config.learning_rate,
        "min_data_in_leaf": config.min_data_in_leaf,
        "feature_fraction": config.feature_fraction,
        "seed": config.seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }


def boosted_rows(config: RankerTraining, rows: int) -> int:
    """The most row-rounds ``train_ranker`` boosts for ``rows`` training rows: each way of counting unjudged
    candidates (two under ``auto``) fitted to ``max_rounds`` (early stopping cuts that short), under ``cv``
    on each fold's share of the rows and then on all of them."""
    variants = 2 if config.unjudged == "auto" else 1
    passes = config.folds if config.stopping == "cv" else 1  # folds - 1 shares of the rows per round, then 1
    return variants * passes * rows * config.max_rounds


def fit_booster(
    train: tuple[np.ndarray, np.ndarray, list[int]],
    dev: tuple[np.ndarray, np.ndarray, list[int]],
    config: RankerTraining,
) -> tuple[Any, int, float | None]:
    """The booster, the rounds it kept and, with ``stopping="cv"``, the cross-validated nDCG@10 at those rounds."""
    import lightgbm

    params = booster_params(config)
    train_set = lightgbm.Dataset(train[0], train[1], group=train[2], feature_name=list(FEATURES))
    stop = lightgbm.early_stopping(config.early_stopping_rounds, verbose=False)
    if config.stopping == "dev":
        dev_set = lightgbm.Dataset(dev[0], dev[1], group=dev[2], reference=train_set)
        booster = lightgbm.train(
            params, train_set, num_boost_round=config.max_rounds, valid_sets=[dev_set], callbacks=[stop]
        )
        return booster, int(booster.best_iteration), None
    folds = min(config.folds, len(train[2]))
    if folds < 2:
        raise ValueError("cross-validation needs at least two train queries with a relevant candidate")
    result = lightgbm.cv(params, train_set, num_boost_round=config.max_rounds, nfold=folds, callbacks=[stop])
    curve: list[float] = result["valid ndcg@10-mean"]  # type: ignore[assignment]  # a list without return_cvbooster
    rounds = len(curve)
    return lightgbm.train(params, train_set, num_boost_round=rounds), rounds, float(curve[-1])


def apply(ranker: LearnedRanker, lists: Lists) -> dict[str, list[Candidate]]:
    """Each list reordered by the ranker, as the stage serves it."""
    return {qid: ranker.run(lists.candidates[qid], lists.rows[qid]) for qid in lists.candidates}


def train_ranker(
    pipeline: SearchPipeline,
    train: tuple[Mapping[str, Query], Qrels],
    dev: tuple[Mapping[str, Query], Qrels],
    out: Path,
    config: RankerTraining,
    *,
    data_path: str,
    data_name: str,
    label_source: str,
    progress: bool = False,
    rerank_scores: RerankScores | None = None,
) -> ModelCard:
    """Train on ``train``'s judged queries, choose and early-stop on ``dev``, save the model and its card to ``out``.

    ``rerank_scores`` keeps the cross-encoder's scores for a later step over the same index (the demo tunes on
    the same dev queries next)."""
    started = time.perf_counter()
    settings = stage_input_settings(pipeline.settings)
    train = sampled_queries(train, config.max_queries, config.seed)
    caches = {
        name: RankingCache(
            pipeline, split[0], split[1], depth=config.depth, progress=progress, rerank_scores=rerank_scores
        )
        for name, split in (("train", train), ("dev", dev))
    }
    try:
        lists = {
            name: candidate_lists(cache, settings, split[0], progress)
            for (name, cache), split in zip(caches.items(), (train, dev))
        }
        baseline, blends = best_linear_blend(caches["dev"], settings)
    finally:
        for cache in caches.values():
            cache.close()
    dev_arrays = dataset_arrays(lists["dev"], "zero")  # the metric counts an unjudged result as not relevant
    variants: Sequence[Literal["zero", "drop"]] = ("zero", "drop") if config.unjudged == "auto" else (config.unjudged,)
    fitted: dict[str, Fitted] = {}
    for variant in variants:
        train_arrays = dataset_arrays(lists["train"], variant)
        if not train_arrays[2]:
            raise ValueError("no train query has a relevant product among its candidates: nothing to learn from")
        booster, rounds, cv_ndcg = fit_booster(train_arrays, dev_arrays, config)
        ranker = LearnedRanker(booster, FEATURES, out.name)
        dev_ndcg = mean_ndcg(dev[1], apply(ranker, lists["dev"]))
        fitted[variant] = Fitted(booster, dev_ndcg, len(train_arrays[1]), rounds, cv_ndcg)
    chosen = max(fitted, key=lambda v: fitted[v].dev_ndcg)
    best = fitted[chosen]
    booster, model_ndcg, rows = best.booster, best.dev_ndcg, best.rows
    seconds = time.perf_counter() - started
    train_queries = sum(1 for grades in lists["train"].grades.values() if any(g for g in grades if g is not None))
    beat = f"dev nDCG@10 {model_ndcg:.4f} beats the best linear blend's {baseline:.4f} ({blends['best']})"
    with staged(out) as folder:
        booster.save_model(str(folder / MODEL_FILE))
        return save_training_card(
            folder,
            "ranker",
            config,
            data_path=data_path,
            data_name=data_name,
            label_source=label_source,
            train=SplitSize(queries=train_queries, pairs=rows),
            dev=SplitSize(queries=len(lists["dev"].grades), pairs=int(len(dev_arrays[1]))),
            parameters={
                "features": list(FEATURES),
                "unjudged_chosen": chosen,
                "unjudged_dev_ndcg10": {v: f.dev_ndcg for v, f in fitted.items()},
                "best_iteration": best.rounds,
                "cv_ndcg10": best.cv_ndcg,
                "linear_blends": blends,
            },
            dev_metrics={MODEL_METRIC: model_ndcg, BASELINE_METRIC: baseline, "best_linear_blend_ndcg10": baseline},
            promoted_because=beat,
            refused_because=f"dev nDCG@10 {model_ndcg:.4f} does not beat the best linear blend's {baseline:.4f} "
            f"({blends['best']})",
            seconds=seconds,
            train_metrics={"train_samples_per_second": rows / seconds if seconds > 0 else 0.0},
        )
