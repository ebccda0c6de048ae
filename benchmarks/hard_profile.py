"""Both generator profiles side by side: the BM25 leg, the out-of-the-box hybrid, and ``tune`` on dev (issue 15).

Why: on a real title-only hardware catalogue with sparse judgments an
equal-weight hybrid ranked below its own BM25 leg. The hard profile
reproduces that shape; this script shows, on both profiles and on both label
sets (the sparse pooled judgments a shop has, and the complete ones only a
generator can give), where the defaults stand against BM25, what each fusion
candidate scores on dev (the data the defaults are chosen from, see
docs/TUNING.md), and what ``tune`` on the sparse dev labels adds on test.

Writes its figures under the per-profile key ``hard_profile`` of
benchmarks/results/learned_ranking.json (``bm25``, ``defaults`` and ``tuned``:
test nDCG@10 on the profile's sparse labels; ``complete`` holds the same on
complete labels), keeping every other key: the issue's top-level keys
(``bm25``, ``defaults``, ``tuned``, ...) belong to ``benchmarks/onboarding.py``,
which measures the whole chain in one run, and ``benchmarks/learned_ranker.py``
trains on top of the ``tuned_sections`` written here. Also the "Hard profile"
section of docs/BENCHMARKS.md.

    python benchmarks/hard_profile.py --products 3000 8000 --queries 1000 1500 --trials 12

Sizes are per profile (easy, hard). Generated data and indexes are cached under ``--work``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_dataset, cached_index  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.identifiers import names_a_code  # noqa: E402
from search_rerank.core.retrieval import DENSE, LEXICAL  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.dataset import Dataset  # noqa: E402
from search_rerank.data.generate import HARD_POOLED, GeneratorConfig  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.evaluation.tune import NDCG, RankingCache, SearchSpace, tune  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

PROFILES = ("easy", "hard")
UNWEIGHTED = "defaults, codes unweighted"
"""The shipped defaults with a query naming a product code fused like any other (no ``identifier_weights``)."""
LABELS = ("sparse", "complete")
RESULTS = ROOT / "benchmarks" / "results" / "learned_ranking.json"
# The fusion candidates the defaults are chosen from: RRF with equal weights, and linear fusion over the lexical
# share with each of the score normalisations fusion offers (min-max, the shipped one, is plain "linear-<share>").
LINEAR_SHARES = (0.5, 0.6, 0.7, 0.8, 0.9)
NORMALIZATIONS = {"minmax": "linear", "zscore": "linear-zscore", "l2_norm": "linear-l2"}
CANDIDATES: dict[str, dict[str, Any]] = {
    "rrf": {"method": "rrf", "rank_constant": 60.0, "weights": {LEXICAL: 1.0, DENSE: 1.0}},
    **{
        f"{prefix}-{w:.1f}": {
            "method": "linear",
            "normalization": normalization,
            "weights": {LEXICAL: w, DENSE: round(1 - w, 6)},
        }
        for normalization, prefix in NORMALIZATIONS.items()
        for w in LINEAR_SHARES
    },
}


def indexed_profile(work: Path, profile: str, products: int, queries: int, seed: int) -> tuple[Path, Settings]:
    """A profile's generated dataset at this size (sparse labels pooled as for the hard profile) and the default
    settings over its index, both built once under ``work`` and reused by every benchmark that asks again."""
    config = GeneratorConfig(products=products, queries=queries, seed=seed, pooled=HARD_POOLED, profile=profile)
    data = cached_dataset(work, config)
    settings = Settings(index_dir=work / f"idx-{data.name}", models_dir=work / "models")
    cached_index(data, settings)
    return data, settings


def label_sets(data: Path, profile: str) -> dict[str, Dataset]:
    """The dataset under each label set (``LABELS``), loaded."""
    return {label: load_beir(path) for label, path in label_dirs(data, profile).items()}


def label_dirs(data: Path, profile: str) -> dict[str, Path]:
    """Where each label set lives: the easy profile keeps complete labels in qrels/, the hard one sparse ones."""
    if profile == "easy":
        return {"sparse": data / "pooled", "complete": data}
    return {"sparse": data, "complete": data / "complete"}


def per_query_ndcg(
    run: Mapping[str, list[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]]
) -> dict[str, float]:
    judged = {qid: labels for qid, labels in qrels.items() if qid in run}
    return {qid: scores[NDCG] for qid, scores in relevance_metrics(judged, run).items()}


def mean_ndcg(run: Mapping[str, list[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]]) -> float:
    per_query = per_query_ndcg(run, qrels)
    return sum(per_query.values()) / max(len(per_query), 1)


def leg_run(cache: RankingCache, leg: str) -> dict[str, list[tuple[str, float]]]:
    return {
        qid: [(c.product_id, c.score) for c in retrieved.stages.get(leg, [])[:100]]
        for qid, retrieved in cache.retrieved.items()
    }


def fused_run(cache: RankingCache, settings: Settings) -> dict[str, list[tuple[str, float]]]:
    return {qid: [(c.product_id, c.score) for c in hits[:100]] for qid, hits in cache.rank(settings).items()}


def measure(cache: RankingCache, settings: Settings, tuned: Settings | None, qrels: dict) -> dict[str, dict[str, Any]]:
    """nDCG@10 per configuration and label set, all ranked from one retrieval; ``defaults_vs_bm25`` the paired
    test of the defaults against the BM25 leg; ``codes`` the figures on the queries that name a product code,
    where the defaults fuse with ``identifier_weights`` (core.identifiers)."""
    runs = {"bm25": leg_run(cache, LEXICAL), "dense": leg_run(cache, DENSE), "defaults": fused_run(cache, settings)}
    runs[UNWEIGHTED] = fused_run(cache, settings.override(fusion={"identifier_weights": settings.fusion.weights}))
    for name, fusion in CANDIDATES.items():
        runs[name] = fused_run(cache, settings.override(fusion=fusion))
    if tuned is not None:
        runs["tuned"] = fused_run(cache, tuned)
    out: dict[str, dict[str, Any]] = {
        label: {name: mean_ndcg(run, qrels[label]) for name, run in runs.items()} for label in LABELS
    }
    for label in LABELS:
        bm25, defaults = (per_query_ndcg(runs[name], qrels[label]) for name in ("bm25", "defaults"))
        out[label]["defaults_vs_bm25"] = paired_by_query(bm25, defaults, sorted(bm25)).to_json()
    codes = {qid for qid, query in cache.queries.items() if names_a_code(query.text)}
    for label in LABELS:
        judged = {qid: labels for qid, labels in qrels[label].items() if qid in codes}
        out[label]["codes"] = {
            "queries": sum(qid in cache.retrieved for qid in judged),
            **{name: mean_ndcg(runs[name], judged) for name in ("bm25", "dense", "defaults", UNWEIGHTED)},
        }
    return out


def run_profile(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, settings = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    try:
        dev_q, dev_sparse = sets["sparse"].split("dev")
        result = tune(
            pipeline,
            dev_q,
            dev_sparse,
            trials=args.trials,
            seed=args.seed,
            space=SearchSpace(longtail_methods=("off",)),
            dataset=data.name,
            progress=True,
        )
        tuned = settings.override(**result.best["sections"])
        out: dict[str, Any] = {"products": products, "queries": queries, "tuned_sections": result.best["sections"]}
        for split in ("dev", "test"):
            split_q, complete = sets["complete"].split(split)
            cache = RankingCache(pipeline, split_q, complete, depth=100, progress=True)
            qrels = {"complete": complete, "sparse": sets["sparse"].split(split)[1]}
            out[split] = measure(cache, settings, tuned if split == "test" else None, qrels)
            out[split]["queries"] = {label: sum(q in cache.retrieved for q in qrels[label]) for label in LABELS}
    finally:
        pipeline.close()
    test = out["test"]
    return {
        **{key: test["sparse"][key] for key in ("bm25", "dense", "defaults", "tuned")},
        "complete": {key: test["complete"][key] for key in ("bm25", "dense", "defaults", "tuned")},
        **out,
    }


def chosen_default(results: Mapping[str, Mapping[str, Any]]) -> tuple[str, dict[str, float]]:
    """The fusion candidate with the best worst-case margin over BM25 on dev, across profiles and label sets.

    Worst case, not mean: a default has to hold on the catalogue it has not
    seen, so the candidate that loses least where it does worst is chosen.
    """
    margins = {
        name: min(
            results[p]["dev"][label][name] - results[p]["dev"][label]["bm25"] for p in results for label in LABELS
        )
        for name in CANDIDATES
    }
    best = max(margins, key=lambda name: margins[name])
    return best, margins


def profiles_parser(doc: str | None, queries: tuple[int, int]) -> argparse.ArgumentParser:
    """The options of a script that measures both profiles on their cached datasets: sizes per profile (easy,
    hard), seed, work folder, and --no-write."""
    ap = argparse.ArgumentParser(description=(doc or "").strip().split("\n")[0])
    ap.add_argument("--products", type=int, nargs=2, default=[3000, 8000], help="per profile: easy hard")
    ap.add_argument("--queries", type=int, nargs=2, default=list(queries), help="per profile: easy hard")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")
    return ap


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 1500))
    ap.add_argument("--trials", type=int, default=12, help="tune trials on dev")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {
        profile: run_profile(args, profile, n, q)
        for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
    }
    best, margins = chosen_default(results)

    saved = read_results(RESULTS)
    for profile, figures in results.items():
        saved[profile] = {**saved.get(profile, {}), "hard_profile": figures}
    saved["fusion_default_choice"] = {"chosen": best, "worst_dev_margin_over_bm25": margins}
    write_results(RESULTS, saved)
    print(json.dumps({p: {k: results[p][k] for k in ("bm25", "dense", "defaults", "tuned")} for p in results}))
    print("chosen on dev:", best, margins)
    if args.no_write:
        return

    columns = [f"{p} {label}" for p in PROFILES for label in LABELS]
    rows = [
        [name, *(results[p]["test"][label][name] for p in PROFILES for label in LABELS)]
        for name in ("bm25", "dense", "defaults", UNWEIGHTED, *CANDIDATES, "tuned")
    ]
    code_rows = [
        [f"{split}: {name}", *(results[p][split][label]["codes"][name] for p in PROFILES for label in LABELS)]
        for split in ("dev", "test")
        for name in ("bm25", "dense", "defaults", UNWEIGHTED)
    ]
    code_counts = ", ".join(
        f"{p} {results[p][split]['sparse']['codes']['queries']} {split}" for p in PROFILES for split in ("dev", "test")
    )
    dev_rows = [
        [name, *(results[p]["dev"][label][name] for p in PROFILES for label in LABELS), margins.get(name, "")]
        for name in ("bm25", "dense", *CANDIDATES)
    ]
    sizes = ", ".join(
        f"{p}: {results[p]['products']} products, {results[p]['test']['queries']['sparse']} sparse-judged and "
        f"{results[p]['test']['queries']['complete']} complete-judged test queries"
        for p in PROFILES
    )
    body = f"""Both generator profiles side by side (issue 15), test nDCG@10 on the sparse pooled labels a shop has
({HARD_POOLED} BM25-pooled judgments per query) and on the complete labels. {sizes}. `defaults` is
`Settings()` as shipped; `tuned` is `search-rerank tune` on the sparse dev labels ({args.trials} trials,
long-tail stage off). The sparse labels are pooled from this engine's own BM25 top 20, so they favour
BM25: a product the dense leg brings up from outside the pool counts as irrelevant. Small catalogues: the
machine is shared by many jobs, and encoding runs at a few documents per second on it.

{table(["configuration", *columns], rows)}

The defaults are chosen on dev, across both profiles and label sets: the fusion candidate whose worst
margin over BM25 is largest (last column; see docs/TUNING.md). Chosen: `{best}`.

{table(["dev", *columns, "worst margin"], dev_rows)}

Queries that name a product code (a model number, SKU or part number, `core.identifiers`; {code_counts}
sparse-judged queries) are fused with their own weights, `fusion.identifier_weights`, lexical only by default: a
text encoder cannot read codes. `{UNWEIGHTED}` fuses them like any other query. nDCG@10 on those queries alone:

{table(["code queries", *columns], code_rows)}
"""
    write_section("hard_profile", "Hard profile: defaults against BM25", body)


if __name__ == "__main__":
    main()
