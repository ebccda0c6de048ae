"""Judged queries to metrics, for every pipeline configuration on the same candidates.

Each query is retrieved once; every configuration (single legs, fusion
variants, reranking, long-tail boost) is then ranked from those same leg
lists, by ``SearchPipeline.rank_from`` as the service ranks, so differences
between rows come from the stage, not from retrieval noise or a second
implementation. Every judged query is scored; a query with no results scores 0.

Real judgment lists are sparse and pooled from some earlier system's results,
and nDCG counts an unjudged product as irrelevant. A configuration that brings
up products the pool never saw is then scored down for them, relevant or not.
Two measures say when that is happening: ``Judged@10`` (the share of the top 10
the labels judge) and nDCG@10 over the judged products alone (the condensed
list, ``nDCG(judged_only=True)@10``), which the unjudged ones cannot move.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ir_measures
import numpy as np
from ir_measures import RR, Judged, R, nDCG
from tqdm import tqdm

from ..core.candidate import Candidate
from ..core.longtail import is_long_tail
from ..core.pipeline import Ranking, SearchPipeline
from ..core.retrieval import DENSE, LEXICAL
from ..core.settings import Settings
from ..data.dataset import Query
from ..data.qrels import Qrels
from .significance import paired_by_query

JUDGED = Judged @ 10
CONDENSED = nDCG(judged_only=True) @ 10
MEASURES = (nDCG @ 10, R @ 100, RR @ 10, JUDGED, CONDENSED)
DEPTH = 100
TOP = 10
LEVEL_P = 0.05
"""A configuration behind BM25 on the judged products alone counts as not significantly behind when the paired
test's p is at least this: the usual 5%, so that "behind" means what a shop would call a significant loss."""


@dataclass(frozen=True)
class Config:
    """One evaluated configuration: which legs, which fusion, which later stages.

    One leg is that leg on its own, its list as retrieved; both legs are
    fused and go through the later stages.
    """

    name: str
    legs: tuple[str, ...]
    fusion: str | None = None
    rerank: bool = False
    longtail: bool = False
    ltr: bool = False
    overrides: Mapping[str, Mapping[str, Any]] = field(
        default_factory=dict
    )  # settings sections, as in Settings.override


def standard_configs(has_reranker: bool, fusion: str = "rrf", has_ranker: bool = False) -> list[Config]:
    """The rows of the evaluate table; the rerank, learned-rank and boost rows build on the configured fusion."""
    both = (LEXICAL, DENSE)
    configs = [
        Config("bm25", (LEXICAL,)),
        Config("dense", (DENSE,)),
        Config("hybrid-rrf", both, "rrf"),
        Config("hybrid-linear", both, "linear"),
    ]
    if has_reranker:
        configs.append(Config("hybrid+rerank", both, fusion, rerank=True))
        configs.append(Config("hybrid+rerank+longtail", both, fusion, rerank=True, longtail=True))
    else:
        configs.append(Config(f"hybrid-{fusion}+longtail", both, fusion, longtail=True))
    if has_ranker:
        configs.append(
            Config("hybrid+rerank+ltr" if has_reranker else "hybrid+ltr", both, fusion, has_reranker, ltr=True)
        )
    return configs


def config_settings(base: Settings, config: Config) -> Settings:
    """The base settings with only what this configuration changes."""
    sections: dict[str, dict] = {
        "longtail": {"enabled": config.longtail},
        "rerank": {} if config.rerank else {"model": None},
        "ltr": {"enabled": config.ltr},
    }
    if config.fusion is not None:
        sections["fusion"] = {"method": config.fusion}
    for section, values in config.overrides.items():
        sections[section] = {**sections.get(section, {}), **values}
    return base.override(**sections)


def rank_config(pipeline: SearchPipeline, retrieved: Ranking, config: Config, settings: Settings) -> list[Candidate]:
    """The ranked list of one configuration, from lists retrieved once."""
    if len(config.legs) == 1:
        return list(retrieved.stages.get(config.legs[0], []))
    return pipeline.rank_from(retrieved, settings).candidates


# ------------------------------------------------------------ long-tail metrics


def long_tail_share(run: Mapping[str, Sequence[str]], popularity: Mapping[str, float], head_fraction: float) -> float:
    """Mean over queries with results of the share of the top 10 that is long tail."""
    shares = [
        sum(is_long_tail(popularity.get(pid, 1.0), head_fraction) for pid in ids[:TOP]) / len(ids[:TOP])
        for ids in run.values()
        if ids
    ]
    return float(np.mean(shares)) if shares else 0.0


def coverage(run: Mapping[str, Sequence[str]], catalog_size: int) -> float:
    """Share of the catalog that appears in at least one top 10."""
    shown = {pid for ids in run.values() for pid in ids[:TOP]}
    return len(shown) / catalog_size if catalog_size else 0.0


def exposure_gini(
    run: Mapping[str, Sequence[str]], catalog_size: int, weights: Mapping[str, float] | None = None
) -> float:
    """Gini of position-discounted top-10 exposure over the whole catalog (0 = equal, 1 = one product gets it all).

    Exposure of a result at rank r is 1/log2(r + 1), times the query's
    frequency when given; products never shown count with zero exposure.
    """
    exposure: dict[str, float] = {}
    for qid, ids in run.items():
        w = 1.0 if weights is None else weights.get(qid, 1.0)
        for rank, pid in enumerate(ids[:TOP], start=1):
            exposure[pid] = exposure.get(pid, 0.0) + w / math.log2(rank + 1)
    if catalog_size == 0 or not exposure:
        return 0.0
    values = np.zeros(max(catalog_size, len(exposure)))
    values[: len(exposure)] = sorted(exposure.values())
    values.sort()
    n = len(values)
    cum = np.cumsum(values)
    return float((n + 1 - 2 * np.sum(cum) / cum[-1]) / n)


# ------------------------------------------------------------ the report


@dataclass
class Row:
    config: str
    metrics: dict[str, float]
    status: str = "ok"
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)


@dataclass(frozen=True)
class BelowBM25:
    """A fused configuration that ranks below its own BM25 leg.

    Out-of-the-box fusion weights come from other data; on a catalogue where
    the dense leg is much weaker (title-only listings, model numbers, units)
    an equal-weight blend can lose to BM25 alone. The fix is data, not a
    guess: ``tune`` chooses the weights on the dev split.

    Unless the labels cannot see it: judgments pooled from lexical results
    judge less of a fused top 10 than of BM25's, and count the rest as
    irrelevant. When the configuration's top 10 is less judged and it leads on
    the judged products alone (``unjudged_loss``), the loss may be nothing but
    unjudged products, and the message says to judge them first. "Does not
    trail" is a paired test where the per-query scores are known: on the Home
    Depot layout's rows the defaults judged 25% of their top 10 against BM25's
    33% and trailed it by 0.0054, while on the judged products alone they
    scored 0.8382 against 0.8402, a difference no test could tell from noise;
    asking for a lead there kept the hint silent where it applied most.
    """

    config: str
    ndcg: float
    bm25: float
    judged: float | None = None  # Judged@10 of the configuration and of BM25
    bm25_judged: float | None = None
    condensed: float | None = None  # nDCG@10 on the judged products alone, of both
    bm25_condensed: float | None = None
    condensed_p: float | None = None  # paired randomisation p of the two condensed nDCG@10, per query
    hint: str = "run `search-rerank tune --dataset DIR --split dev` to choose fusion weights on this data"

    @property
    def gap(self) -> float:
        return self.bm25 - self.ndcg

    @property
    def level_on_judged(self) -> bool:
        """Not significantly behind BM25 on the judged products alone: a paired p at least ``LEVEL_P``."""
        return self.condensed_p is not None and self.condensed_p >= LEVEL_P

    @property
    def unjudged_loss(self) -> bool:
        """Less of its top 10 judged than of BM25's, and not behind BM25 on the judged products alone (ahead of
        it, or not significantly behind it by the paired test)."""
        judged, bm25_judged, condensed, bm25_condensed = (
            self.judged,
            self.bm25_judged,
            self.condensed,
            self.bm25_condensed,
        )
        if judged is None or bm25_judged is None or condensed is None or bm25_condensed is None:
            return False
        return judged < bm25_judged and (condensed >= bm25_condensed or self.level_on_judged)

    def message(self) -> str:
        text = (
            f"{self.config} ranks below the BM25 leg: nDCG@10 {self.ndcg:.4f} vs {self.bm25:.4f} "
            f"(-{self.gap:.4f}); {self.hint}"
        )
        if self.unjudged_loss:
            text += (
                f". But the labels judge {self.judged:.0%} of its top 10 against {self.bm25_judged:.0%} of BM25's, "
                f"and on the judged products alone it {self.judged_comparison()}: "
                "the loss may be unjudged products counted as irrelevant; grade them "
                "(`search-rerank judgments pool`) before trusting the comparison"
            )
        return text

    def judged_comparison(self) -> str:
        """How it stands against BM25 on the judged products alone, in words, for the message (``unjudged_loss``
        says when it is asked)."""
        if self.condensed is None or self.bm25_condensed is None:
            return "has no judged products to compare"
        scores = f"{self.condensed:.4f} vs {self.bm25_condensed:.4f}"
        if self.condensed >= self.bm25_condensed:
            return f"leads ({scores})"
        return f"is not significantly behind ({scores}, paired p {self.condensed_p:.2f})"

    def to_json(self) -> dict:
        return {**asdict(self), "gap": self.gap, "unjudged_loss": self.unjudged_loss, "message": self.message()}


@dataclass
class Report:
    dataset: str
    split: str
    queries: int
    catalog_size: int
    rows: list[Row]
    below_bm25: list[BelowBM25] = field(default_factory=list)

    def to_json(self) -> dict:
        return {**asdict(self), "below_bm25": [w.to_json() for w in self.below_bm25]}

    def row(self, name: str) -> Row:
        for r in self.rows:
            if r.config == name:
                return r
        raise KeyError(f"no row {name!r}; rows: {[r.config for r in self.rows]}")


def relevance_metrics(qrels: Qrels, run: Mapping[str, Sequence[tuple[str, float]]]) -> dict[str, dict[str, float]]:
    """Per query, per measure; judged queries missing from the run score 0."""
    ir_run = {qid: {pid: score for pid, score in hits} for qid, hits in run.items() if hits}
    per_query = {qid: {str(m): 0.0 for m in MEASURES} for qid in qrels}
    for metric in ir_measures.iter_calc(list(MEASURES), qrels, ir_run):
        if metric.query_id in per_query:
            per_query[metric.query_id][str(metric.measure)] = float(metric.value)
    return per_query


def _mean(per_query: Mapping[str, Mapping[str, float]], qids: Iterable[str]) -> dict[str, float]:
    qids = list(qids)
    return {str(m): float(np.mean([per_query[q][str(m)] for q in qids])) if qids else 0.0 for m in MEASURES}


def evaluation_settings(pipeline: SearchPipeline) -> Settings:
    """The pipeline's settings without deadlines, each leg retrieving at least ``DEPTH`` candidates to measure."""
    return pipeline.settings.offline().override(
        lexical={"candidates": max(pipeline.settings.lexical.candidates, DEPTH)},
        dense={"candidates": max(pipeline.settings.dense.candidates, DEPTH)},
    )


def pipeline_configs(pipeline: SearchPipeline) -> list[Config]:
    """The standard rows for what this pipeline has loaded (a reranker, a learned ranker) and its fusion."""
    base = pipeline.settings
    return standard_configs(
        pipeline.reranker is not None and base.rerank.model is not None,
        base.fusion.method,
        has_ranker=pipeline.ranker is not None and base.ltr.model is not None,
    )


Run = dict[str, list[tuple[str, float]]]
"""query id -> the top ``DEPTH`` (product id, score), best first."""


def ranked_runs(
    pipeline: SearchPipeline,
    queries: Mapping[str, Query],
    qids: Sequence[str],
    configs: Sequence[Config],
    *,
    progress: bool = True,
    on_query: Callable[[str, Ranking], None] | None = None,
) -> tuple[dict[str, Run], dict[str, str]]:
    """Each configuration's run over ``qids``, all ranked from one retrieval per query; and the configurations
    a failed leg left out of some query (name -> reason)."""
    base = evaluation_settings(pipeline)
    variants = {c.name: config_settings(base, c) for c in configs}
    runs: dict[str, Run] = {c.name: {} for c in configs}
    failures: dict[str, str] = {}
    for qid in tqdm(qids, desc="evaluate", unit="query", disable=not progress):
        retrieved = pipeline.retrieve(queries[qid].text, None, base)
        if on_query is not None:
            on_query(qid, retrieved)
        for config in configs:
            if any(leg in retrieved.degraded for leg in config.legs):
                failures[config.name] = f"leg failed: {retrieved.degraded}"
            ranked = rank_config(pipeline, retrieved, config, variants[config.name])
            runs[config.name][qid] = [(c.product_id, c.score) for c in ranked[:DEPTH]]
    return runs, failures


def evaluate(
    pipeline: SearchPipeline,
    queries: Mapping[str, Query],
    qrels: Qrels,
    *,
    configs: Sequence[Config] | None = None,
    dataset: str = "",
    split: str = "",
    progress: bool = True,
    on_query: Callable[[str, Ranking], None] | None = None,
) -> Report:
    """Score every configuration on the judged queries of one split."""
    configs = list(configs) if configs is not None else pipeline_configs(pipeline)
    judged = [qid for qid in qrels if qid in queries]
    runs, failures = ranked_runs(pipeline, queries, judged, configs, progress=progress, on_query=on_query)

    popularity = pipeline.store.popularity()
    catalog_size = pipeline.store.count()
    head = pipeline.settings.longtail.head_fraction  # the evaluation settings change only candidates and deadlines
    judged_qrels = {qid: qrels[qid] for qid in judged}
    freq = {qid: float(queries[qid].meta.get("frequency", 1) or 1) for qid in judged}
    kinds: dict[str, list[str]] = {}
    for qid in judged:
        kinds.setdefault(str(queries[qid].meta.get("kind", "all")), []).append(qid)

    rows = []
    condensed: dict[str, dict[str, float]] = {}
    for config in configs:
        run = runs[config.name]
        per_query = relevance_metrics(judged_qrels, run)
        condensed[config.name] = {qid: scores[str(CONDENSED)] for qid, scores in per_query.items()}
        ids = {qid: [pid for pid, _ in hits] for qid, hits in run.items()}
        metrics = _mean(per_query, judged)
        metrics["lt_share@10"] = long_tail_share(ids, popularity, head)
        metrics["coverage@10"] = coverage(ids, catalog_size)
        metrics["gini@10"] = exposure_gini(ids, catalog_size, freq)
        rows.append(
            Row(
                config=config.name,
                metrics=metrics,
                status=failures.get(config.name, "ok"),
                by_kind={
                    kind: {
                        **_mean(per_query, qids),
                        "lt_share@10": long_tail_share({q: ids.get(q, []) for q in qids}, popularity, head),
                    }
                    for kind, qids in sorted(kinds.items())
                },
            )
        )
    return Report(
        dataset=dataset,
        split=split,
        queries=len(judged),
        catalog_size=catalog_size,
        rows=rows,
        below_bm25=below_bm25(configs, rows, condensed),
    )


def below_bm25(
    configs: Sequence[Config], rows: Sequence[Row], condensed_per_query: Mapping[str, Mapping[str, float]] | None = None
) -> list[BelowBM25]:
    """Configurations that use both legs and score a lower nDCG@10 than the BM25 leg alone.

    ``condensed_per_query``: each configuration's nDCG@10 on the judged products alone, per query, for the paired
    test of whether it trails BM25 there (``BelowBM25.level_on_judged``)."""
    ndcg, judged, condensed = str(nDCG @ 10), str(JUDGED), str(CONDENSED)
    bm25_config, bm25 = next(((c, r) for c, r in zip(configs, rows) if c.legs == (LEXICAL,)), (None, None))
    if bm25_config is None or bm25 is None:
        return []
    per_query = condensed_per_query or {}

    def condensed_p(name: str) -> float | None:
        ours, theirs = per_query.get(name), per_query.get(bm25_config.name)
        if not ours or not theirs:
            return None
        qids = sorted(ours.keys() & theirs.keys())
        return paired_by_query(theirs, ours, qids).p_value if qids else None

    return [
        BelowBM25(
            config.name,
            row.metrics[ndcg],
            bm25.metrics[ndcg],
            row.metrics.get(judged),
            bm25.metrics.get(judged),
            row.metrics.get(condensed),
            bm25.metrics.get(condensed),
            condensed_p(config.name),
        )
        for config, row in zip(configs, rows)
        if len(config.legs) > 1 and row.metrics[ndcg] < bm25.metrics[ndcg]
    ]
