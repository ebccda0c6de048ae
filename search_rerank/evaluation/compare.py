"""Two rankers on the same judged queries: per-query deltas, whether the difference is real, and where it is.

A mean alone hides whether a change helped every query a little or a few a
lot and hurt others; the queries that moved most, with both top lists side by
side, are where a person sees why. Each side is a settings file (ranked from
one retrieval per query, as evaluation does, when both sides use the same
indexes and models) or a saved TREC run, so a run from another system or an
earlier build compares the same way.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from ..core.settings import Settings, load_settings
from ..data.dataset import Query
from ..data.qrels import Qrels, Run, read_trec_run
from .evaluate import MEASURES, relevance_metrics
from .significance import paired_test

SETTINGS_SUFFIXES = (".toml", ".json")
MEASURE_NAMES = tuple(str(m) for m in MEASURES)


@dataclass
class Comparison:
    a: str
    b: str
    measure: str
    means: dict[str, dict[str, float]]
    significance: dict[str, Any]
    per_query: list[dict[str, Any]]
    movers: list[dict[str, Any]]

    def to_json(self) -> dict:
        return asdict(self)


def is_settings_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in SETTINGS_SUFFIXES


def _retrieval_key(settings: Settings) -> str:
    """What decides the retrieved lists apart from their length: sides that agree share one retrieval."""
    return json.dumps(
        settings.model_dump(
            mode="json",
            exclude={
                "lexical": {"candidates"},
                "dense": {"candidates"},
                "fusion": True,
                "longtail": True,
                "service": True,
                "rerank": {"window", "blend", "batch_size", "timeout_s"},
            },
        ),
        sort_keys=True,
    )


def settings_runs(
    settings: Sequence[Settings], queries: Mapping[str, Query], qrels: Qrels
) -> tuple[list[Run], dict[str, dict[str, Any]]]:
    """Each settings' run on the judged queries, and the products the runs name (for showing titles)."""
    from ..indexing.indexes import open_pipeline
    from .tune import RankingCache

    runs: list[Run | None] = [None] * len(settings)
    products: dict[str, dict[str, Any]] = {}
    groups: dict[str, list[int]] = {}
    for i, s in enumerate(settings):
        groups.setdefault(_retrieval_key(s), []).append(i)
    for members in groups.values():
        first = settings[members[0]]
        depth = max(max(settings[i].lexical.candidates, settings[i].dense.candidates) for i in members)
        pipeline = open_pipeline(first)
        cache = RankingCache(pipeline, queries, qrels, depth=depth)
        try:
            group: list[Run] = []
            for i in members:
                ranked = cache.rank(settings[i])
                run = {qid: [(c.product_id, c.score) for c in hits[:100]] for qid, hits in ranked.items()}
                runs[i] = run
                group.append(run)
            shown = {pid for run in group for hits in run.values() for pid, _ in hits[:10]}
            products.update(
                {pid: {"title": p.title, "brand": p.brand} for pid, p in pipeline.store.get(list(shown)).items()}
            )
        finally:
            cache.close()
            pipeline.close()
    return [run for run in runs if run is not None], products


def load_side(path: str | Path, index_dir: Path | None = None, judged: Iterable[str] | None = None) -> Settings | Run:
    """A settings file becomes Settings (to be ranked), anything else is read as a TREC run; one that ranks none
    of the ``judged`` queries is refused (a run of another dataset or split, which would lose on every query)."""
    if is_settings_file(path):
        return load_settings(path, **({"index_dir": index_dir} if index_dir is not None else {}))
    run = read_trec_run(path)
    if judged is not None and not set(run) & set(judged):
        raise DataError(path, None, "it ranks none of the judged queries (a run of another dataset or split?)")
    return run


def compare(
    a: Run,
    b: Run,
    qrels: Qrels,
    queries: Mapping[str, Query],
    *,
    names: tuple[str, str] = ("A", "B"),
    measure: str = "nDCG@10",
    movers: int = 5,
    show: int = 5,
    resamples: int = 10_000,
    seed: int = 0,
    products: Mapping[str, Mapping[str, Any]] | None = None,
) -> Comparison:
    """B against A on every judged query (a query missing from a run scores 0 there)."""
    if measure not in MEASURE_NAMES:
        raise ValueError(f"unknown measure {measure!r}; choose from {', '.join(MEASURE_NAMES)}")
    judged = {qid: grades for qid, grades in qrels.items() if qid in queries}
    if not judged:
        raise ValueError("no judged query of the split has a query text")
    scores_a, scores_b = relevance_metrics(judged, a), relevance_metrics(judged, b)
    qids = list(judged)
    test = paired_test(
        [scores_a[q][measure] for q in qids], [scores_b[q][measure] for q in qids], resamples=resamples, seed=seed
    )
    per_query: list[dict[str, Any]] = [
        {
            "qid": q,
            "query": queries[q].text,
            "kind": str(queries[q].meta.get("kind", "all")),
            "a": scores_a[q][measure],
            "b": scores_b[q][measure],
            "delta": scores_b[q][measure] - scores_a[q][measure],
        }
        for q in qids
    ]
    products = products or {}

    def top(run: Run, qid: str) -> list[dict[str, Any]]:
        return [
            {"product_id": pid, "grade": judged[qid].get(pid), **products.get(pid, {})}
            for pid, _ in run.get(qid, [])[:show]
        ]

    moved = sorted((row for row in per_query if row["delta"] != 0), key=lambda r: (-abs(r["delta"]), r["qid"]))
    means = {
        name: {m: sum(s[q][m] for q in qids) / len(qids) for m in MEASURE_NAMES}
        for name, s in zip(names, (scores_a, scores_b))
    }
    return Comparison(
        a=names[0],
        b=names[1],
        measure=measure,
        means=means,
        significance=test.to_json(),
        per_query=per_query,
        movers=[{**row, "a_top": top(a, row["qid"]), "b_top": top(b, row["qid"])} for row in moved[:movers]],
    )
