"""``search-rerank onboard``: what a shop does with a new catalogue and its judgments, as one resumable command.

The steps, in order, each with the product's own function (what the
single-purpose command runs):

0. ``baseline``: the settings served now, and the BM25 leg alone, on dev and test;
1. ``tune``: fusion, candidates and the long-tail stage chosen on dev (``search-rerank tune``);
2. ``encoder``: the bi-encoder fine-tuned on train (``train encoder``), a new index built with it, and the
   fusion re-tuned on dev for the new dense leg (its weights were chosen for the stock encoder);
3. ``reranker``: the cross-encoder trained on train (``train reranker``, judged pairs plus random catalogue
   negatives unless ``--complete-judgments``);
4. ``ranker``: the learned ranker trained on train's candidates (``train ranker``), and the long-tail boost
   kept after it only when it still helps on dev (``ALTERNATIVES``).

After each step the settings with it are measured on dev and on test, as served
(``RankingCache``: ``SearchPipeline.rank_from``), paired per query against the
last promoted step. A step is promoted only when it beats that step's dev
nDCG@10 by more than noise (one-sided paired p below ``--promotion-p``, 0.1),
and, for a trained model, when its own card promoted it (a model its
card refuses is not served by default). Test is reported, never used to
decide: choosing on test would make its figure optimistic.

The promoted steps' settings are written as one file (``onboarded.toml``) the
service loads with ``--settings``: the shop serves exactly what was measured.
Beside it, ``to_grade-dev.csv`` and ``to_grade-test.csv`` list the unjudged
products in the top 10 of BM25 and of every step: sparse judgments pooled
from an earlier engine count each of them as irrelevant, so a step that finds
what that engine missed can be refused for it; graded, they let the next run
compare the steps on what they found.

Resumable and safe to stop: ``state.json`` in ``--out`` records each finished
step (status, settings it sets, its models, metrics, per-query scores, time),
written atomically after the step; a rerun skips what it records. A step
stopped half way is redone. The new encoder's index goes into ``--out/index``,
a directory of its own, never into the served index: until the settings that
name the new encoder are served, the served index must stay queryable with the
old one, and a failed or refused step leaves it as it was.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.table import Table

from ..core.errors import ConfigError
from ..core.model_card import ModelCard
from ..core.retrieval import LEXICAL
from ..core.settings import PACKAGED_MINILM, Settings
from ..data.dataset import Dataset, Query
from ..data.qrels import Qrels
from .common import Command, console, settings_for

if TYPE_CHECKING:
    from ..evaluation.tune import RerankScores
    from ..training.cost import Work
    from ..training.encoder import EncoderTraining
    from ..training.ranker import RankerTraining
    from ..training.reranker import RerankerTraining

STEPS = ("baseline", "tune", "encoder", "reranker", "ranker")
SKIPPABLE = STEPS[1:]
SPLITS = ("dev", "test")
STATE_FILE = "state.json"
SETTINGS_FILE = "onboarded.toml"
REPORT_FILE = "report.html"
ESTIMATE_FILE = "estimate.json"
"""What ``--estimate`` writes instead of running: each step's work and minutes, and the rates measured."""
TO_GRADE = "to_grade-{split}.csv"
"""Per split, the unjudged products in the top 10 of BM25 and of every measured step, promoted or not: sparse labels
pooled from an earlier engine cannot credit what a step brings up, so these are what to grade before onboarding
again (the format ``judgments pool`` writes)."""
INDEX_DIR = "index"
NDCG = "nDCG@10"
DEPTH = 100
"""Candidates each leg retrieves for measuring (at least): as ``evaluate`` does."""
Splits = Mapping[str, tuple[Mapping[str, Query], Qrels]]
"""The dataset's dev and test splits: queries and judgments."""
MODEL_SECTION = {"encoder": "dense", "reranker": "rerank", "ranker": "ltr"}
"""The settings section that names each step's model."""
AS_TRAINED = "as trained"
"""The choice that is the step's own settings, unchanged."""
ALTERNATIVES: dict[str, dict[str, dict[str, Any]]] = {
    "ranker": {"long-tail boost off": {"longtail": {"enabled": False}}},
}
"""Per step, variants of its settings that dev decides between, beside the step as trained (``measure``).

The ranker learns on lists with the long-tail boost off (``training.ranker.stage_input_settings``), popularity
among its features; a boost tuned for the fused scores before it (its gate and strength are relative to that
ranking's scores) then reorders a ranking it was never chosen for. On both generated profiles' onboarding
(docs/BENCHMARKS.md, "Onboarding") the ranker scored better on dev without it, and the step turned it off.
Whether to keep it is decided on dev, as ``tune`` decided it. A shop that boosts the tail for exposure rather
than relevance sets it again by hand."""


@dataclass(frozen=True)
class Plan:
    """What the run does and how much each step may cost."""

    dataset: Path
    out: Path
    skip: frozenset[str]
    trials: int = 50
    epochs: float = 1.0
    max_pairs: int | None = None
    rounds: int = 500
    ranker_queries: int | None = None
    """Train queries the ranker learns from at most (``RankerTraining.max_queries``)."""
    measure_queries: int | None = None
    """Judged dev and test queries each step is measured (and tuned, the reranker's blend decided, and the ranker
    chosen) on at most: a sample fixed by ``seed``, the same for every step so that each is paired with the last
    promoted one on the same queries. A step measured with a CPU reranker costs about 0.16 s a query on two shared cores: some 17 minutes
    per split for the 6,400 dev queries of a Home Depot-sized dataset (docs/BENCHMARKS.md, "Home Depot layout at
    the real sizes")."""
    complete_judgments: bool = False
    prefix: str = "onboard"
    reranker_base: str = PACKAGED_MINILM
    seed: int = 13
    promotion_p: float = 0.1
    """A dev gain counts only when the one-sided paired p-value is below this. One-sided because promotion asks
    whether a step is better, not whether it differs. On the easy profile (163 dev queries) the tuner's best of
    30 trials gained 0.0016 on dev (p 0.42) and lost 0.008 on test, while the ranker gained 0.024 on dev
    (p 0.07) and 0.025 on test (two-sided p 0.03): 0.05 would have refused the ranker too.

    Each step is paired against the last promoted one, even the encoder step, which re-tunes the fusion after a
    tune step that may have been refused as noise. Pairing it against that refused tuning instead (its gain over
    the served settings could be the same tuning noise found again) was tried on the easy profile
    (2026-12-02): the encoder step was refused (+0.0012 over the refused tuning, two-sided p 0.87), and the
    ranker, then trained on the stock encoder's candidates and cosines, reached 0.434 on dev instead of 0.454
    (0.441 on test instead of 0.459) and was refused in turn. A fine-tuned encoder is worth more as the
    ranker's input than in the fusion, where its own step measures it."""

    def model_name(self, step: str) -> str:
        return f"{self.prefix}-{step}"


# ------------------------------------------------------------ settings as changes


def merge_changes(changes: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Later changes over earlier ones, section by section (a top-level value such as index_dir replaces)."""
    out: dict[str, Any] = {}
    for change in changes:
        for name, value in change.items():
            out[name] = {**out.get(name, {}), **value} if isinstance(value, Mapping) else value
    return out


def with_changes(settings: Settings, changes: Mapping[str, Any]) -> Settings:
    """``settings`` with the changes applied, validated again."""
    data = merge_changes([settings.model_dump(), changes])
    try:
        return Settings.model_validate(data)
    except ValueError as exc:
        raise ConfigError(f"onboarding settings invalid: {exc}") from exc


def promoted_changes(state: Mapping[str, Any]) -> dict[str, Any]:
    """What the promoted steps set, in step order: the served settings are the base with these."""
    return merge_changes([step["changes"] for step in state["steps"].values() if step["status"] == "promoted"])


def last_promoted(state: Mapping[str, Any]) -> tuple[str, Mapping[str, Any]]:
    """The step a new one has to beat: the latest promoted (the baseline at first)."""
    promoted = [(name, step) for name, step in state["steps"].items() if step["status"] == "promoted"]
    return promoted[-1]


# ------------------------------------------------------------ state


def settings_digest(settings: Settings) -> str:
    """What the run started from (secrets masked): a resumed run must build on the same settings."""
    return hashlib.sha256(json.dumps(settings.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()


def read_state(
    out: Path, dataset: Path, base: Settings, measure_queries: int | None = None, seed: int | None = None
) -> dict[str, Any]:
    """The state of an earlier run in ``out``, or a fresh one; refused when it onboarded another dataset, started
    from other settings (its finished steps were measured on top of those) or measured on another sample of
    queries, another number of them or another ``seed``'s (a new step could not be paired with its finished
    ones)."""
    path = out / STATE_FILE
    if not path.exists():
        return {
            "dataset": str(dataset.resolve()),
            "base": settings_digest(base),
            "measure_queries": measure_queries,
            "seed": seed,
            "steps": {},
            "onboard_minutes": 0.0,
        }
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a state file ({exc}); use another --out") from exc
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: not a state file (a JSON {type(state).__name__}, not an object); use another --out")
    if state.get("dataset") != str(dataset.resolve()):
        raise ConfigError(f"{out} holds the onboarding of {state.get('dataset')}; use another --out for {dataset}")
    if state.get("base") != settings_digest(base):
        raise ConfigError(
            f"{out} holds an onboarding that started from other settings; rerun it with the settings it began "
            "with, or use another --out"
        )
    if state.get("measure_queries") != measure_queries:
        raise ConfigError(
            f"{out} holds an onboarding measured on {measured_on(state.get('measure_queries'))}; rerun it with "
            f"{measure_option(state.get('measure_queries'))}, or use another --out"
        )
    if measure_queries is not None and state.get("seed", seed) != seed:  # a state from before it was recorded: kept
        raise ConfigError(
            f"{out} holds an onboarding measured on the queries --seed {state['seed']} sampled; rerun it with "
            f"--seed {state['seed']}, or use another --out"
        )
    return state


def measured_on(measure_queries: int | None) -> str:
    return "every judged query" if measure_queries is None else f"at most {measure_queries} queries per split"


def measure_option(measure_queries: int | None) -> str:
    return "no --measure-queries" if measure_queries is None else f"--measure-queries {measure_queries}"


def sampled_splits(data: Dataset, measure_queries: int | None, seed: int) -> Splits:
    """The dev and test splits, each cut to at most ``measure_queries`` judged queries (see ``Plan``), as the ranker
    trainer samples its train queries; every step is measured on them, and the ranker step chosen on their dev."""
    from ..training.ranker import sampled_queries

    return {split: sampled_queries(data.split(split), measure_queries, seed) for split in SPLITS}


def default_prefix(out: Path) -> str:
    """``onboard-`` and the ``--out`` folder's name (what a model name may hold of it): two onboardings into two
    folders (a catalogue each, or a second run with graded judgments added) train models of their own, and each
    ``onboarded.toml`` keeps serving what its report measured. The name, not the whole path, so a folder moved or
    named from another working directory resumes with the models it began."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", out.resolve().name).strip("-._")
    return f"onboard-{name[:80]}" if name else "onboard"


def check_models_are_its_own(plan: Plan, settings: Settings, state: Mapping[str, Any]) -> None:
    """Refused before any step: a step still to train whose ``models_dir/NAME`` holds a model this onboarding did
    not begin (``state["trained"]``). Another onboarding's models (a second run with graded judgments added, into a
    new ``--out``) are what its ``onboarded.toml`` serves: trained over, that file would serve a model nothing
    measured, and its report would describe one that is gone. A model this onboarding began, stopped before its
    step was recorded, is its own to train again."""
    own = set(state.get("trained", []))
    for step in MODEL_SECTION:
        if step in state["steps"] or step in plan.skip or cannot_run(step, settings) is not None:
            continue
        path = Path(settings.models_dir) / plan.model_name(step)
        if path.exists() and path.name not in own:
            raise ConfigError(
                f"{path} holds a model this onboarding did not train; its {step} step would replace it, and "
                "settings that serve it would serve the new one, unmeasured: give this onboarding models of its own "
                f"with --name-prefix, or remove {path}"
            )


def save_state(out: Path, state: dict[str, Any]) -> None:
    """Written atomically: stopped at any moment, the file holds the steps finished before or after, never half."""
    from ..indexing.versions import write_atomically

    state["onboard_minutes"] = sum(step["seconds"] for step in state["steps"].values()) / 60
    out.mkdir(parents=True, exist_ok=True)
    write_atomically(out / STATE_FILE, json.dumps(state, indent=1) + "\n")


def write_outputs(plan: Plan, state: dict[str, Any], base: Settings, base_file: Path | None) -> Path:
    """The served settings file and the report, both drawn from the state, so they always agree with it."""
    from ..evaluation.onboarding_report import write_report
    from ..evaluation.tune import write_settings

    written = {
        "index_dir": str(Path(base.index_dir).resolve()),
        "models_dir": str(Path(base.models_dir).resolve()),
        **promoted_changes(state),
    }
    promoted = [name for name, step in state["steps"].items() if step["status"] == "promoted"]
    settings_file = write_settings(
        plan.out / SETTINGS_FILE,
        written,
        base_file,
        comment=f"search-rerank onboard: {state['dataset']}; promoted steps: {', '.join(promoted)}",
        allowed=tuple(Settings.model_fields),
    )
    state["settings_file"] = str(settings_file)
    write_report(state, plan.out / REPORT_FILE)
    return settings_file


# ------------------------------------------------------------ measuring


def measuring_depth(settings: Settings) -> int:
    """Candidates each leg retrieves for measuring ``settings``: at least ``DEPTH``, and all that it serves."""
    return max(DEPTH, settings.lexical.candidates, settings.dense.candidates)


@dataclass(frozen=True)
class Measured:
    """What ``measure`` found: the choice dev preferred, each split's figures for it and for the BM25 leg."""

    chosen: str
    served: dict[str, Any]
    """Per split: the chosen settings' metrics and per-query nDCG@10."""
    bm25: dict[str, Any]
    """Per split: the same for the BM25 leg alone."""
    dev_choices: dict[str, float]
    """Each choice's dev nDCG@10."""


def measure(choices: Mapping[str, Settings], splits: Splits, rerank_scores: RerankScores | None = None) -> Measured:
    """Each split's metrics and per-query nDCG@10 for the settings as served, and the same for the BM25 leg alone.

    ``choices`` are variants of one step's settings that differ only after retrieval (the first is the step as
    it is): each is ranked on dev from the same retrieval, and the best (the first on a tie) is the one measured
    on the other splits. One retrieval per split, however many choices.
    """
    from ..evaluation.evaluate import TOP, relevance_metrics
    from ..evaluation.pooling import ids, unjudged
    from ..evaluation.tune import RankingCache
    from ..indexing.indexes import open_pipeline

    first = next(iter(choices.values()))
    chosen = next(iter(choices))
    depth = measuring_depth(first)
    dev_choices: dict[str, float] = {}
    served: dict[str, Any] = {}
    bm25: dict[str, Any] = {}
    pipeline = open_pipeline(first.offline())
    try:
        for split in sorted(splits, key=lambda name: name != "dev"):  # dev first: it chooses
            queries, qrels = splits[split]
            cache = RankingCache(pipeline, queries, qrels, depth=depth, progress=True, rerank_scores=rerank_scores)
            try:
                if split == "dev":
                    scores = {label: cache.score(settings) for label, settings in choices.items()}
                    dev_choices = {label: scored.metrics[NDCG] for label, scored in scores.items()}
                    chosen = max(dev_choices, key=lambda label: dev_choices[label])
                    scored = scores[chosen]
                else:
                    scored = cache.score(choices[chosen])
                lexical_run = {
                    qid: [(c.product_id, c.score) for c in retrieved.stages.get(LEXICAL, [])[:DEPTH]]
                    for qid, retrieved in cache.retrieved.items()
                }
                lexical = relevance_metrics(cache.qrels, lexical_run)
            finally:
                cache.close()
            served[split] = {
                "metrics": scored.metrics,
                "per_query": {q: v[NDCG] for q, v in scored.per_query.items()},
                "unjudged": unjudged(scored.runs, cache.qrels, TOP),  # scored.runs: each query's top TOP ids
            }
            bm25[split] = {
                "metrics": {
                    m: sum(v[m] for v in lexical.values()) / len(lexical) for m in next(iter(lexical.values()))
                },
                "per_query": {q: v[NDCG] for q, v in lexical.items()},
                "unjudged": unjudged(ids(lexical_run), cache.qrels, TOP),
            }
    finally:
        pipeline.close()
    return Measured(chosen, served, bm25, dev_choices)


def with_significance(measured: dict[str, Any], against: Mapping[str, Any], seed: int) -> dict[str, Any]:
    """Each split's record with its paired test against ``against``'s same split (same queries, same order)."""
    from ..evaluation.significance import paired_by_query

    for split, record in measured.items():
        scores = record["per_query"]
        record["significance"] = paired_by_query(against[split]["per_query"], scores, scores, seed=seed).to_json()
    return measured


def decide(
    dev: float, previous: tuple[str, float], card: ModelCard | None, p_value: float, promotion_p: float
) -> tuple[bool, str]:
    """Promoted only when it beats the last promoted step on dev by more than noise, and its model's own card
    promoted it. ``p_value`` is the paired test's two-sided one; the one-sided p of a gain is half of it (the
    sign-flip distribution is symmetric), and must be below ``promotion_p``."""
    name, before = previous
    if card is not None and not card.promoted:
        return False, f"its model's own dev check refused it: {card.promotion_reason}"
    if dev <= before:
        return False, f"dev {NDCG} {dev:.4f} does not beat {name}'s {before:.4f}"
    one_sided = p_value / 2
    if one_sided >= promotion_p:
        return False, (
            f"dev {NDCG} {dev:.4f} is above {name}'s {before:.4f}, but with one-sided p = {one_sided:.3f} (paired), "
            f"not below {promotion_p:g}: a gain that size is within dev's noise"
        )
    return True, f"dev {NDCG} {dev:.4f} beats {name}'s {before:.4f} (one-sided p = {one_sided:.3f}, paired)"


def card_summary(card: ModelCard) -> dict[str, Any]:
    return {
        "name": card.name,
        "kind": card.kind,
        "promoted": card.promoted,
        "promotion_reason": card.promotion_reason,
        "dev_metrics": card.dev_metrics,
        "training_seconds": card.training_seconds,
        "pairs_per_second": card.pairs_per_second,
    }


# ------------------------------------------------------------ the steps


def run_baseline(
    plan: Plan, settings: Settings, state: dict[str, Any], splits: Splits, rerank_scores: RerankScores
) -> dict[str, Any]:
    measured = measure({AS_TRAINED: settings}, splits, rerank_scores)
    state["bm25"] = measured.bm25
    return {
        "status": "promoted",
        "reason": "the starting point: the settings served now (paired against the BM25 leg alone)",
        "changes": {},
        "compared_with": "BM25 leg",
        **with_significance(measured.served, measured.bm25, plan.seed),
    }


def run_tune(
    plan: Plan, settings: Settings, splits: Splits, rerank_scores: RerankScores
) -> tuple[dict[str, Any], ModelCard | None]:
    return tuned_sections(plan, settings, splits, "tune", rerank_scores), None


def tuned_sections(
    plan: Plan, settings: Settings, splits: Splits, step: str, rerank_scores: RerankScores
) -> dict[str, Any]:
    """The ranking sections ``tune`` chooses on dev for ``settings``; its report under ``OUT/<step>/``."""
    from ..evaluation.tune import tune
    from ..evaluation.tuning_report import write_report
    from ..indexing.indexes import open_pipeline

    pipeline = open_pipeline(settings.offline())
    try:
        result = tune(
            pipeline,
            *splits["dev"],
            trials=plan.trials,
            seed=plan.seed,
            dataset=str(plan.dataset),
            split="dev",
            progress=True,
            rerank_scores=rerank_scores,
        )
    finally:
        pipeline.close()
    page, _ = write_report(result.to_json(), plan.out / step)
    console.print(f"{step}: tuned, trial {result.best['number']} of {plan.trials}; its tuning report: {page}")
    return result.best["sections"]


def run_encoder(
    plan: Plan, settings: Settings, splits: Splits, rerank_scores: RerankScores
) -> tuple[dict[str, Any], ModelCard]:
    from ..data.loaders import catalog_fields, iter_catalog
    from ..indexing.indexes import build_index
    from ..training.encoder import train_encoder
    from .training import train_model, training_data

    name = plan.model_name("encoder")
    data = training_data(plan.dataset, None, 1, name)
    card = train_model(train_encoder, settings, data, name, encoder_training(plan, settings))
    changes = {"dense": {"model": name}, "index_dir": str((plan.out / INDEX_DIR).resolve())}
    console.print(f"encoder: indexing {plan.dataset} with {name} into {changes['index_dir']}")
    reindexed = measured_settings(settings, changes, "encoder", card)
    fields = catalog_fields(plan.dataset, reindexed.lexical.catalog_field_types)
    build_index(iter_catalog(plan.dataset), reindexed, progress=True, catalog=fields)
    # The fusion weights were chosen for the stock encoder's dense leg: on the easy profile a fine-tuned encoder
    # kept at the stock leg's weight (0.06 of an RRF) left test nDCG@10 where it was. A shop re-tunes after
    # changing a leg, so this step does too, from the promoted settings.
    changes = merge_changes([changes, tuned_sections(plan, reindexed, splits, "encoder", rerank_scores)])
    return changes, card


def encoder_training(plan: Plan, settings: Settings) -> EncoderTraining:
    """The encoder step's training: the served encoder fine-tuned further."""
    from ..backends.encoder import resolve_encoder
    from ..training.encoder import EncoderTraining
    from ..training.mining import MiningConfig

    served = resolve_encoder(settings.dense, settings.models_dir)
    return EncoderTraining(
        epochs=plan.epochs,
        max_triplets=plan.max_pairs,
        seed=plan.seed,
        mining=MiningConfig(positives_per_query=4, judgments_complete=plan.complete_judgments, seed=plan.seed),
        base_model=settings.dense.model if served.card_sha256 is None else served.path,
    )


def reranker_training(plan: Plan) -> RerankerTraining:
    """The reranker step's training. With ``measure_queries`` its blend and promotion are decided on the dev
    sample every step is measured on (the same seed draws the same queries), not on a sample of their own: the
    Home Depot layout's onboarding decided on 1,000 dev queries (16 minutes with a CPU reranker) and then measured
    on 500 others (7 minutes), one of every four minutes of the whole run (docs/BENCHMARKS.md, "Home Depot layout
    at the real sizes"). Never on fewer than the trainer's evaluations score (``dev_queries``): a sample that
    small is those same queries, and the decision reads the trainer's last evaluation. As with ``tune``'s trials,
    the blend is then chosen on the queries the step's promotion is tested on; test, never used, says how much
    that flatters it."""
    from ..training.mining import MiningConfig
    from ..training.reranker import RerankerTraining

    decision = RerankerTraining.decision_queries
    if plan.measure_queries is not None:
        decision = max(plan.measure_queries, RerankerTraining.dev_queries)
    return RerankerTraining(
        epochs=plan.epochs,
        max_pairs=plan.max_pairs,
        seed=plan.seed,
        decision_queries=decision,
        mining=MiningConfig(judgments_complete=plan.complete_judgments, seed=plan.seed),
        base_model=plan.reranker_base,
    )


def ranker_training(plan: Plan) -> RankerTraining:
    from ..training.ranker import RankerTraining

    return RankerTraining(max_rounds=plan.rounds, max_queries=plan.ranker_queries, seed=plan.seed)


def ranker_list_length(ranker: RankerTraining, settings: Settings) -> int:
    """The most candidates in a list the ranker learns from: each leg's top ``depth``, fused."""
    return ranker.depth * (2 if settings.dense.enabled else 1)


def run_reranker(plan: Plan, settings: Settings, rerank_scores: RerankScores) -> tuple[dict[str, Any], ModelCard]:
    from ..training.reranker import train_reranker
    from .training import train_model, training_data

    name = plan.model_name("reranker")
    data = training_data(plan.dataset, None, 1, name)
    config = reranker_training(plan)
    card = train_model(train_reranker, settings, data, name, config, rerank_scores=rerank_scores)
    return {"rerank": {"model": name}}, card


def run_ranker(
    plan: Plan, settings: Settings, splits: Splits, rerank_scores: RerankScores
) -> tuple[dict[str, Any], ModelCard]:
    from ..training.ranker import train_ranker
    from .training import train_model, training_data

    name = plan.model_name("ranker")
    data = training_data(plan.dataset, None, 1, name)
    # Chosen on the queries its step is measured on: the trainer keeps every dev query's candidates and features
    # (6 GB for the 6,400 dev queries of a Home Depot-sized dataset, however few train queries it learns from).
    data["dev"] = splits["dev"]
    card = train_model(
        train_ranker,
        settings,
        data,
        name,
        ranker_training(plan),
        with_ranker=False,
        progress=True,
        rerank_scores=rerank_scores,
    )
    return {"ltr": {"model": name, "enabled": True}}, card


def step_choices(
    settings: Settings, step: str, changes: Mapping[str, Any], card: ModelCard | None
) -> dict[str, tuple[dict[str, Any], Settings]]:
    """The step as trained and its ``ALTERNATIVES``, each as (changes, settings measured); an alternative that
    changes nothing (the boost already off) is left out."""
    options = {AS_TRAINED: dict(changes)}
    options.update({label: merge_changes([changes, extra]) for label, extra in ALTERNATIVES.get(step, {}).items()})
    choices: dict[str, tuple[dict[str, Any], Settings]] = {}
    for label, option in options.items():
        measured = measured_settings(settings, option, step, card)
        if all(measured != other for _, other in choices.values()):
            choices[label] = (option, measured)
    return choices


def measured_settings(settings: Settings, changes: Mapping[str, Any], step: str, card: ModelCard | None) -> Settings:
    """The settings a step is measured with: its changes, and a model its card refused loaded anyway, so that
    the report still shows what it would have scored (it is not promoted, so never served)."""
    if card is not None and not card.promoted:
        changes = merge_changes([changes, {MODEL_SECTION[step]: {"allow_unpromoted": True}}])
    return with_changes(settings, changes)


def cannot_run(step: str, settings: Settings) -> str | None:
    """Why a step cannot run with these settings (it is then recorded as skipped), or None."""
    if step == "encoder":
        if not settings.dense.enabled:
            return "the dense leg is off (dense.enabled = false): no encoder to fine-tune"
        if settings.lexical.backend != "tantivy" or settings.dense.backend != "faiss":
            return (
                "the index lives in a cluster: onboarding builds the new encoder's index beside the served one only "
                "for the embedded backends; run `train encoder` and `reindex` by hand"
            )
    return None


# ------------------------------------------------------------ what it will cost


CALIBRATE_FROM = 20_000
"""Model work (pairs scored and trained, triplets trained, products encoded) from which a run measures this
machine's rates to estimate its minutes: some 20 seconds on two CPU cores, spent only on a run that could
take an hour there. ``--estimate`` always measures them."""


def planned_work(
    plan: Plan, settings: Settings, data: Dataset, splits: Splits, state: Mapping[str, Any]
) -> dict[str, Work]:
    """The work (``training.cost.Work``) of each step still to run, counted from the dataset and ``plan`` as
    each step's own code will do it: retrieval and ranking of every measured query, the tuner's trials, the
    trainers' capped examples (upper bounds: hard negatives, dev evaluations and boosting rounds are counted
    as if retrieval found them all and training never stopped early), the reindex, and every pair the
    reranker scores (those ``RerankScores`` keeps are counted once). Left out: the pairs that the ranker's
    comparison with linear blends (``training.ranker.best_linear_blend``), and the tuner's trials when a
    reranker is served already, bring into the reranker's window: a few per setting and query, where counting
    every pair of every window would outweigh the whole step. The queries a capped draw mines are about as
    many as ``training.mining.capped_counts`` says, not at most."""
    from ..core.device import pick_device
    from ..training.cost import Work
    from ..training.encoder import evaluation_interval, triplets_at_most
    from ..training.mining import capped_counts, per_query_at_most, reranker_pairs_at_most
    from ..training.ranker import LINEAR_SHARES, boosted_rows
    from ..training.reranker import scored_as_served

    judged_dev = len(data.split("dev")[1])
    dev, test = (len(splits[split][1]) for split in SPLITS)
    todo = {
        step
        for step in STEPS
        if step not in state["steps"] and step not in plan.skip and cannot_run(step, settings) is None
    }
    # Only a step that trains reads the train split: a dataset judged on dev and test alone tunes as before.
    train_queries, train_qrels = data.split("train") if todo & set(MODEL_SECTION) else ({}, {})
    measured = Work(retrieve=dev + test, rank=dev + test)
    rescored = Work(score=settings.rerank.window * (dev + test)) if settings.rerank.model is not None else Work()
    tuning = Work(retrieve=dev, rank=plan.trials * dev)
    work = {"baseline": measured + rescored, "tune": tuning + measured}
    if "encoder" in todo:
        encoder = encoder_training(plan, settings)
        at_most = per_query_at_most(train_qrels, lambda judged: triplets_at_most(judged, encoder.mining))
        triplets, mined = capped_counts(at_most, len(train_queries), encoder.max_triplets)
        steps = math.ceil(math.ceil(triplets / encoder.batch_size) * encoder.epochs)
        # The starting model's evaluation, then those in training (a run that stops before the first is
        # evaluated once at its end).
        evaluations = 1 + max(1, steps // evaluation_interval(steps, encoder.eval_steps, encoder.max_evaluations))
        evaluated = min(encoder.dev_queries, judged_dev)
        pool = min(len(data.products), evaluated * (2 * encoder.pool_depth + encoder.pool_judged))
        trained = Work(
            retrieve=mined + evaluated,
            rank=mined,
            train_triplets=triplets * encoder.epochs,
            encode=evaluations * pool + len(data.products),
        )
        work["encoder"] = trained + tuning + measured + rescored
    reranked = settings.rerank.model is not None
    window = settings.rerank.window  # what the served reranker scores per query; the trainer's own for its dev
    if "reranker" in todo:
        reranker = reranker_training(plan)
        at_most = per_query_at_most(train_qrels, lambda judged: reranker_pairs_at_most(judged, reranker.mining))
        pairs, mined = capped_counts(at_most, len(train_queries), reranker.max_pairs)
        evaluations = max(1, math.ceil(pairs * reranker.epochs / reranker.batch_size) // reranker.eval_steps)
        evaluated = min(reranker.dev_queries, judged_dev)
        decided = min(reranker.decision_queries, judged_dev)
        if decided <= evaluated:  # the decision reads the last evaluation: it scores nothing and keeps nothing
            decided = 0
        # The decision's scores are kept for measuring where serving scores alike (``keep_as_served``).
        kept = decided if scored_as_served(reranker, pick_device(reranker.device), settings.rerank) else 0
        work["reranker"] = measured + Work(
            retrieve=mined + evaluated + decided,
            rank=mined + evaluated + decided,
            train_pairs=pairs * reranker.epochs,
            score=reranker.window * (evaluations * evaluated + decided) + window * (max(0, dev - kept) + test),
        )
        reranked = True
    if "ranker" in todo:
        ranker = ranker_training(plan)
        learned = len(train_qrels) if ranker.max_queries is None else min(ranker.max_queries, len(train_qrels))
        rescores = "reranker" not in todo  # else that step's scores of the measured queries are kept for this one
        scored = learned + (dev + test if rescores else 0)
        work["ranker"] = measured + Work(
            retrieve=learned + dev,
            # Its lists, dev ranked by the configured fusion and each linear blend it must beat, and the
            # long-tail choice (``ALTERNATIVES``) ranked on dev.
            rank=learned + dev * (len(LINEAR_SHARES) + 3),
            score=window * scored if reranked else 0,
            boost=boosted_rows(ranker, learned * ranker_list_length(ranker, settings)),
        )
    return {step: work[step] for step in STEPS if step in todo}


LONG_RUN_MINUTES = 60
"""An estimate past this names the options that cap the run's largest costs."""
CAPS = {
    "--measure-queries": "measure_queries",
    "--max-pairs": "max_pairs",
    "--ranker-queries": "ranker_queries",
}


def estimate(
    plan: Plan, settings: Settings, data: Dataset, splits: Splits, state: Mapping[str, Any], measure: bool
) -> dict[str, Any]:
    """Each step's work still to do, and, measuring this machine's rates (``measure``, or a run with more model
    work than ``CALIBRATE_FROM``), its minutes: printed before the first step and kept in the state."""
    from ..training.cost import measure_rates
    from .training import training_pipeline

    work = planned_work(plan, settings, data, splits, state)
    record: dict[str, Any] = {"steps": {step: {"work": done.describe()} for step, done in work.items()}}
    model_work = sum(done.score + done.train_pairs + done.train_triplets + done.encode for done in work.values())
    if work and (measure or model_work >= CALIBRATE_FROM):
        console.print("estimate: timing the models and the first stage on a few of the dataset's queries and products")
        reranks = any(done.score or done.train_pairs for done in work.values())
        encoder = encoder_training(plan, settings) if "encoder" in work else None
        learner = ranker_training(plan)
        ranker = (learner, ranker_list_length(learner, settings)) if "ranker" in work else None
        try:
            with training_pipeline(settings, with_ranker=False) as pipeline:
                rates = measure_rates(
                    pipeline,
                    splits["dev"][0],
                    settings,
                    reranker_training(plan) if reranks else None,
                    encoder,
                    ranker,
                    plan.seed,
                )
        except Exception as exc:  # advice only: a model not at hand is for its step to report when it starts
            console.print(f"[yellow]estimate: the models could not be timed ({exc}); the work alone follows[/]")
        else:
            record["rates"] = rates.to_json()
            for step, done in work.items():
                record["steps"][step]["minutes"] = done.seconds(rates) / 60
            record["minutes"] = sum(step["minutes"] for step in record["steps"].values())
    console.print(estimate_table(record))
    minutes = record.get("minutes", 0.0)
    caps = [option for option, field in CAPS.items() if getattr(plan, field) is None]
    if minutes > LONG_RUN_MINUTES and caps:
        console.print(
            f"[yellow]about {minutes / 60:.1f} hours on this machine[/]: {', '.join(caps)} cap the largest costs (a "
            "Home Depot-sized onboarding on two CPU cores took 34 minutes with --measure-queries 500 --max-pairs "
            '3000 --ranker-queries 300 --epochs 0.2 --skip encoder: docs/BENCHMARKS.md, "Home Depot layout at the '
            'real sizes")'
        )
    return record


def estimate_table(record: Mapping[str, Any]) -> Table:
    rates = record.get("rates")
    title = (
        "onboarding plan" if rates is None else f"onboarding plan on {rates['device']}: {record['minutes']:.0f} minutes"
    )
    table = Table(title=title)
    table.add_column("step")
    table.add_column("work (at most)")
    table.add_column("minutes", justify="right")
    for step, planned in record["steps"].items():
        table.add_row(step, planned["work"], f"{planned['minutes']:.1f}" if "minutes" in planned else "")
    return table


def run_step(
    plan: Plan, step: str, settings: Settings, state: dict[str, Any], splits: Splits, rerank_scores: RerankScores
) -> dict[str, Any]:
    """Train or tune one step on top of ``settings`` (the promoted ones), measure it, decide; its state record.

    ``rerank_scores``: the reranker's probabilities of the run so far. The reranker step scores every dev and
    test query's window, and the ranker step trains on the dev lists and is measured on both splits with that
    reranker in place: the same pairs, scored once (about 17 minutes per split of a Home Depot-sized dataset
    on two CPU cores, docs/BENCHMARKS.md, "Home Depot layout at the real sizes")."""
    runners = {
        "tune": lambda: run_tune(plan, settings, splits, rerank_scores),
        "encoder": lambda: run_encoder(plan, settings, splits, rerank_scores),
        "reranker": lambda: run_reranker(plan, settings, rerank_scores),
        "ranker": lambda: run_ranker(plan, settings, splits, rerank_scores),
    }
    if step in MODEL_SECTION:  # recorded first: stopped while training, the rerun knows the model is its own
        begun = state.setdefault("trained", [])
        if plan.model_name(step) not in begun:
            begun.append(plan.model_name(step))
        save_state(plan.out, state)
    trained, card = runners[step]()
    choices = step_choices(settings, step, trained, card)
    found = measure({label: measured for label, (_, measured) in choices.items()}, splits, rerank_scores)
    changes = choices[found.chosen][0]
    previous_name, previous = last_promoted(state)
    measured = with_significance(found.served, previous, plan.seed)
    promoted, reason = decide(
        measured["dev"]["metrics"][NDCG],
        (previous_name, previous["dev"]["metrics"][NDCG]),
        card,
        measured["dev"]["significance"]["p_value"],
        plan.promotion_p,
    )
    record: dict[str, Any] = {
        "status": "promoted" if promoted else "not promoted",
        "reason": reason,
        "changes": changes,
        "compared_with": previous_name,
        **measured,
    }
    if len(choices) > 1:
        record["dev_choices"] = {"chosen": found.chosen, NDCG: found.dev_choices}
        console.print(
            f"{step}: dev {NDCG} "
            + ", ".join(f"{label} {value:.4f}" for label, value in found.dev_choices.items())
            + f": {found.chosen}"
        )
    if card is not None:
        record["card"] = card_summary(card)
        record["models"] = {step: card.name}
    return record


def onboard_run(plan: Plan, base: Settings, base_file: Path | None, estimate_only: bool = False) -> dict[str, Any]:
    """Every step not yet finished, in order; the state, settings file and report after each. First the plan:
    each step's work and estimated minutes (``estimate``); ``estimate_only``: that alone, written to
    ``ESTIMATE_FILE``, and nothing run."""
    from ..data.loaders import load_dataset
    from ..evaluation.tune import RerankScores

    state = read_state(plan.out, plan.dataset, base, plan.measure_queries, plan.seed)
    check_models_are_its_own(plan, with_changes(base, promoted_changes(state)), state)
    data = load_dataset(plan.dataset)
    splits = sampled_splits(data, plan.measure_queries, plan.seed)
    planned = estimate(plan, with_changes(base, promoted_changes(state)), data, splits, state, estimate_only)
    if estimate_only:
        from ..indexing.versions import write_atomically

        plan.out.mkdir(parents=True, exist_ok=True)
        write_atomically(plan.out / ESTIMATE_FILE, json.dumps(planned, indent=1) + "\n")
        return state
    # A resumed run plans the steps still to run; the finished ones keep what was planned before they ran.
    state["estimate"] = {**planned, "steps": {**state.get("estimate", {}).get("steps", {}), **planned["steps"]}}
    rerank_scores = RerankScores()
    for number, step in enumerate(STEPS):
        title = f"step {number}/{len(STEPS) - 1}: {step}"
        if step in state["steps"]:
            console.print(f"[dim]{title}: finished in an earlier run ({state['steps'][step]['status']})[/dim]")
            continue
        started = time.perf_counter()
        settings = with_changes(base, promoted_changes(state))
        why_not = "skipped with --skip" if step in plan.skip else cannot_run(step, settings)
        console.rule(title)
        if why_not is not None:
            record: dict[str, Any] = {"status": "skipped", "reason": why_not, "changes": {}}
        elif step == "baseline":
            record = run_baseline(plan, settings, state, splits, rerank_scores)
        else:
            record = run_step(plan, step, settings, state, splits, rerank_scores)
        record["seconds"] = time.perf_counter() - started
        record["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        state["steps"][step] = record
        save_state(plan.out, state)
        write_outputs(plan, state, base, base_file)
        console.print(step_line(step, record))
    write_outputs(plan, state, base, base_file)
    save_state(plan.out, state)
    graded = write_to_grade(plan.out, state, splits, {p.id: p.title for p in data.products})
    if graded:
        console.print(
            "unjudged in the top 10 of BM25 and the steps (counted as irrelevant above): "
            + ", ".join(
                f"{split} {rows} products, {plan.out / TO_GRADE.format(split=split)}" for split, rows in graded.items()
            )
            + "; grade them (the grade column), convert them (`judgments convert --to beir`) and add their rows to "
            f"{plan.dataset}/qrels/SPLIT.tsv to compare the steps on what they found"
        )
    return state


def write_to_grade(out: Path, state: Mapping[str, Any], splits: Splits, titles: Mapping[str, str]) -> dict[str, int]:
    """Each split's ``TO_GRADE`` file from the state's records; the rows written per split (none: no file)."""
    from ..data.judgments import write_pool_csv
    from ..evaluation.pooling import merged

    written = {}
    records = [state.get("bm25", {}), *state["steps"].values()]
    for split in SPLITS:
        pool = merged(record[split]["unjudged"] for record in records if "unjudged" in record.get(split, {}))
        if pool:
            queries = splits[split][0]
            texts = {qid: queries[qid].text for qid in pool}
            written[split] = write_pool_csv(pool, texts, titles, out / TO_GRADE.format(split=split))
    return written


def step_line(step: str, record: Mapping[str, Any]) -> str:
    colour = {"promoted": "green", "not promoted": "red", "skipped": "yellow"}[record["status"]]
    figures = ""
    if "dev" in record:
        figures = " " + ", ".join(
            f"{split} {NDCG} {record[split]['metrics'][NDCG]:.4f} "
            f"({record[split]['significance']['mean_delta']:+.4f}, p = {record[split]['significance']['p_value']:.3f})"
            for split in SPLITS
        )
    return f"{step}: [{colour}]{record['status']}[/]{figures}; {record['reason']} ({record['seconds']:.0f} s)"


def summary_table(state: Mapping[str, Any]) -> Table:
    table = Table(title=f"onboarding {state['dataset']}: nDCG@10, {state['onboard_minutes']:.1f} minutes")
    table.add_column("step")
    table.add_column("status")
    for col in ("dev", "dev Δ", "dev p", "test", "test Δ", "test p", "time", "estimated"):
        table.add_column(col, justify="right")
    estimated = state.get("estimate", {}).get("steps", {})
    for name, step in state["steps"].items():
        cells = []
        for split in SPLITS:
            if split in step:
                sig = step[split]["significance"]
                cells += [f"{step[split]['metrics'][NDCG]:.4f}", f"{sig['mean_delta']:+.4f}", f"{sig['p_value']:.3f}"]
            else:
                cells += ["", "", ""]
        minutes = estimated.get(name, {}).get("minutes")
        guess = "" if minutes is None else f"{minutes * 60:.0f} s"
        table.add_row(name, step["status"], *cells, f"{step['seconds']:.0f} s", guess)
    return table


@click.command(cls=Command)
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="A BEIR, WANDS, ESCI or Kaggle Home Depot directory (WANDS and Home Depot split by a hash of the query); its "
    "catalogue is the one in the index.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for state.json, onboarded.toml, report.html (and the new encoder's index); rerun to resume.",
)
@click.option(
    "--skip",
    type=click.Choice(SKIPPABLE),
    multiple=True,
    help="Leave a step out (repeatable); it is recorded as skipped.",
)
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True, help="Tuning trials.")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True, help="Encoder, reranker.")
@click.option(
    "--max-pairs", type=click.IntRange(min=1), help="Cap on the encoder's triplets and the reranker's pairs (sampled)."
)
@click.option(
    "--rounds", type=click.IntRange(min=1), default=500, show_default=True, help="The ranker's most boosting rounds."
)
@click.option(
    "--ranker-queries",
    type=click.IntRange(min=2),
    help="Cap on the train queries the ranker learns from (sampled): with a reranker on a CPU each costs 0.15 to 1 s.",
)
@click.option(
    "--measure-queries",
    type=click.IntRange(min=2),
    help="Measure (and tune) every step, and choose the ranker, on at most this many judged dev and test queries "
    "each (one seeded sample for all steps): with a reranker on a CPU each costs about 0.16 s per step.  "
    "[default: all]",
)
@click.option(
    "--complete-judgments",
    is_flag=True,
    help="Labels are complete (e.g. generated): unjudged first-stage hits may serve as negatives.",
)
@click.option(
    "--name-prefix",
    default=None,
    help="Models go to models_dir/PREFIX-encoder, -reranker, -ranker.  [default: onboard-<the --out folder's name>]",
)
@click.option("--reranker-base-model", default=None, help="The reranker's starting model (default: packaged MiniLM).")
@click.option(
    "--promotion-p",
    type=click.FloatRange(min=0.0, max=1.0, min_open=True),
    default=0.1,
    show_default=True,
    help="A step's dev gain counts only with a one-sided paired p-value below this (1 promotes any gain).",
)
@click.option(
    "--estimate",
    "estimate_only",
    is_flag=True,
    help="Print each step's work and its minutes on this machine (timed on a few queries and products), write them "
    "to OUT/estimate.json, and stop.",
)
@click.option("--seed", type=int, default=13, show_default=True)
@click.pass_context
def onboard(
    ctx: click.Context,
    dataset: Path,
    out: Path,
    skip: tuple[str, ...],
    trials: int,
    epochs: float,
    max_pairs: int | None,
    rounds: int,
    ranker_queries: int | None,
    measure_queries: int | None,
    complete_judgments: bool,
    name_prefix: str | None,
    reranker_base_model: str | None,
    promotion_p: float,
    estimate_only: bool,
    seed: int,
) -> None:
    """Tune, fine-tune the encoder and reindex, train the reranker and the ranker; promote what beats dev.

    Each step is measured on dev and test, paired against the last promoted
    step, and promoted only if it beats it on dev with a one-sided paired
    p-value below --promotion-p. Writes OUT/onboarded.toml
    (serve it with --settings) and OUT/report.html. Stopped at any point, run
    it again: finished steps are skipped.
    """
    from ..core.model_card import NAME_PATTERN

    if name_prefix is None:
        name_prefix = default_prefix(out)
    if not re.fullmatch(NAME_PATTERN, f"{name_prefix}-encoder"):
        raise click.BadParameter(f"{name_prefix!r}: letters, digits, '.', '_' and '-' only", param_hint="--name-prefix")
    plan = Plan(
        dataset=dataset,
        out=out,
        skip=frozenset(skip),
        trials=trials,
        epochs=epochs,
        max_pairs=max_pairs,
        rounds=rounds,
        ranker_queries=ranker_queries,
        measure_queries=measure_queries,
        complete_judgments=complete_judgments,
        prefix=name_prefix,
        reranker_base=PACKAGED_MINILM if reranker_base_model is None else reranker_base_model,
        seed=seed,
        promotion_p=promotion_p,
    )
    try:
        state = onboard_run(plan, settings_for(ctx), ctx.obj["settings"], estimate_only)
    except KeyboardInterrupt:
        console.print(f"[yellow]stopped[/]: the finished steps are in {out / STATE_FILE}; run it again to resume")
        raise click.Abort() from None
    if estimate_only:
        return
    console.print(summary_table(state))
    console.print(f"wrote {out / SETTINGS_FILE} (serve it with --settings) and {out / REPORT_FILE}")
