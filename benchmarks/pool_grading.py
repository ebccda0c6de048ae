"""What sparse pooled labels cannot see, and what grading the pool changes (issue 15).

Why: on the hard profile's sparse labels (6 judgments per query drawn from
this engine's BM25 top 20) the defaults sit level with BM25 and the trained
reranker is never promoted, while on the complete labels both lead. A label
set pooled from one system scores every other down for the products that
system never showed: they are unjudged and count as irrelevant. This script
measures that on both profiles' test splits, for BM25, the dense leg, the
defaults, the defaults with a reranker (trained here as ``train reranker``
trains it, the default recipe, on the default index) and that reranker's order
alone:

- nDCG@10 on the sparse labels, ``Judged@10`` (the share of the top 10 they
  judge) and nDCG@10 on the judged products alone (the condensed list);
- nDCG@10 after the shop grades the pool: what ``search-rerank judgments pool``
  lists (the unjudged top 10 of all five), graded here by the generator's
  complete labels as the annotator, added to the sparse labels;
- nDCG@10 on the complete labels, which only a generator has.

Writes benchmarks/results/pool_grading.json and the "Sparse labels: what
grading the pool changes" section of docs/BENCHMARKS.md.

    python benchmarks/pool_grading.py --products 3000 8000 --queries 1000 4000

Sizes per profile (easy, hard): the onboarding benchmark's, so the hard test split has 1,087 queries.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from hard_profile import PROFILES, indexed_profile, label_sets  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.cli.training import train_model, training_data  # noqa: E402
from search_rerank.core.retrieval import DENSE, LEXICAL  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.evaluation.evaluate import CONDENSED, JUDGED, Config, ranked_runs, relevance_metrics  # noqa: E402
from search_rerank.evaluation.pooling import unjudged_pool  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.training.mining import MiningConfig  # noqa: E402
from search_rerank.training.reranker import RerankerTraining, train_reranker  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pool_grading.json"
NDCG = "nDCG@10"
BOTH = (LEXICAL, DENSE)
CONFIGS = (
    Config("bm25", (LEXICAL,)),
    Config("dense", (DENSE,)),
    Config("defaults", BOTH, longtail=True),
    Config("defaults+reranker", BOTH, rerank=True, longtail=True),
    Config("reranker order alone", BOTH, rerank=True, overrides={"rerank": {"blend": 1.0}}),
)
COLUMNS = ("sparse", "judged@10", "condensed", "graded pool", "complete")


def trained_reranker(data: Path, settings: Settings, seed: int) -> tuple[str, dict[str, Any]]:
    """The default recipe's reranker for this dataset, trained once under ``models_dir`` and reused."""
    name = f"{data.name}-reranker"
    card = Path(settings.models_dir) / name / "model_card.json"
    if not card.exists():
        config = RerankerTraining(seed=seed, mining=MiningConfig(seed=seed))
        train_model(train_reranker, settings, training_data(data, None, 1, name), name, config)
    return name, json.loads(card.read_text(encoding="utf-8"))


def per_query(run: Mapping[str, list[tuple[str, float]]], qrels: Mapping[str, Mapping[str, int]], measure: str):
    scores = relevance_metrics(qrels, run)
    return {qid: values[measure] for qid, values in scores.items()}


def measure_profile(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    started = time.perf_counter()
    data, settings = indexed_profile(args.work, profile, products, queries, args.seed)
    reranker, card = trained_reranker(data, settings, args.seed)
    labels = label_sets(data, profile)
    test_queries, sparse = labels["sparse"].split("test")
    _, complete = labels["complete"].split("test")
    qids = sorted(q for q in sparse if q in test_queries)
    sparse = {q: dict(sparse[q]) for q in qids}
    pipeline = open_pipeline(settings.override(rerank={"model": reranker, "allow_unpromoted": True}))
    try:
        runs, failures = ranked_runs(pipeline, test_queries, qids, CONFIGS)
    finally:
        pipeline.close()
    if failures:
        raise SystemExit(f"{profile}: legs failed: {failures}")
    pool = unjudged_pool(runs, sparse, 10)
    graded = {q: {**sparse[q], **{pid: complete.get(q, {}).get(pid, 0) for pid in pool.get(q, [])}} for q in qids}
    full = {q: dict(complete.get(q, {})) for q in qids}
    per: dict[str, dict[str, dict[str, float]]] = {}
    for config in CONFIGS:
        run = runs[config.name]
        per[config.name] = {
            "sparse": per_query(run, sparse, NDCG),
            "judged@10": per_query(run, sparse, str(JUDGED)),
            "condensed": per_query(run, sparse, str(CONDENSED)),
            "graded pool": per_query(run, graded, NDCG),
            "complete": per_query({q: run[q] for q in qids if full[q]}, {q: g for q, g in full.items() if g}, NDCG),
        }
    out: dict[str, Any] = {
        "products": products,
        "queries": queries,
        "test_queries": len(qids),
        "pool_products": sum(map(len, pool.values())),
        "sparse_judgments": sum(map(len, sparse.values())),
        "reranker": {
            "name": reranker,
            "status": "promoted" if card["promoted"] else "not promoted",
            "dev_metrics": card["dev_metrics"],
        },
        "configs": {},
    }
    for config in CONFIGS:
        figures: dict[str, Any] = {}
        for column in COLUMNS:
            values = per[config.name][column]
            figures[column] = float(np.mean(list(values.values())))
            if config.name != "bm25" and column in ("sparse", "condensed", "graded pool", "complete"):
                figures[f"{column}_p_vs_bm25"] = paired_by_query(per["bm25"][column], values, sorted(values)).p_value
        out["configs"][config.name] = figures
    out["minutes"] = (time.perf_counter() - started) / 60
    return out


def cell(figures: Mapping[str, Any], column: str) -> str:
    value = f"{figures[column]:.3f}"
    p = figures.get(f"{column}_p_vs_bm25")
    return value if p is None else f"{value} (p {p:.4f})"


def body(results: Mapping[str, Any]) -> str:
    parts = []
    for profile, r in results.items():
        rows = [[name, *(cell(f, c) for c in COLUMNS)] for name, f in r["configs"].items()]
        rr = r["reranker"]
        dev = rr.get("dev_metrics") or {}
        parts.append(
            f"**{profile}** ({r['products']} products, {r['queries']} queries; {r['test_queries']} sparse-judged test "
            f"queries with {r['sparse_judgments']} judgments; the pool to grade: {r['pool_products']} products, "
            f"{r['pool_products'] / max(r['test_queries'], 1):.1f} per query; reranker `{rr['name']}`, "
            f"{rr['status']} on dev: {dev.get('model_ndcg10', float('nan')):.4f} at blend "
            f"{dev.get('best_blend')} vs first stage {dev.get('first_stage_ndcg10', float('nan')):.4f}; "
            f"{r['minutes']:.1f} min)\n\n"
            + table(["test", "nDCG@10 sparse", "Judged@10", "condensed nDCG@10", "graded pool", "complete"], rows)
        )
    joined = "\n\n".join(parts)
    return f"""Test split of each profile; `p` is the paired randomisation test against BM25 on the same queries.
`sparse`: nDCG@10 on the labels a shop has (the hard profile's default labels: 6 judgments per query drawn from
this engine's BM25 top 20; the easy profile's pooled copy). `Judged@10`: the share of the top 10 those labels
judge. `condensed`: nDCG@10 over the judged products alone (`nDCG(judged_only=True)@10`), which unjudged products
cannot move. `graded pool`: the sparse labels plus the grades of every unjudged product in the top 10 of any of the
five rows, what `search-rerank judgments pool` lists for the shop to grade, graded here by the generator's
complete labels. `complete`: every product graded. The defaults are `Settings()` as shipped; the reranker is the
default recipe (`train reranker`) trained on the profile's train split over the default index, served at the
blend its card chose (`defaults+reranker`) and alone (`reranker order alone`, blend 1.0), whether or not dev
promoted it.

{joined}

What it says: the share of the top 10 the sparse labels judge falls as a configuration moves away from BM25, and
with it nDCG@10 on those labels, while on the judged products alone and once the pool is graded the order reverses:

{verdict(results)}

`evaluate` now prints both measures, and its below-BM25 warning says when a loss comes with a less-judged top 10
and a lead on the judged products (`docs/TUNING.md`).
"""


def verdict(results: Mapping[str, Any]) -> str:
    """The defaults and the reranker against BM25 on each profile, on the sparse labels and on the graded pool."""
    lines = []
    for profile, r in results.items():
        bm25 = r["configs"]["bm25"]
        for name in ("defaults", "defaults+reranker", "reranker order alone"):
            f = r["configs"][name]
            lines.append(
                f"- {profile}, {name} against BM25: sparse {f['sparse'] - bm25['sparse']:+.4f} "
                f"(p {f['sparse_p_vs_bm25']:.4f}, Judged@10 {f['judged@10']:.2f} vs {bm25['judged@10']:.2f}); "
                f"judged products alone {f['condensed'] - bm25['condensed']:+.4f} (p {f['condensed_p_vs_bm25']:.4f}); "
                f"graded pool {f['graded pool'] - bm25['graded pool']:+.4f} (p {f['graded pool_p_vs_bm25']:.4f})."
            )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, nargs=2, default=[3000, 8000], help="per profile: easy hard")
    ap.add_argument("--queries", type=int, nargs=2, default=[1000, 4000], help="per profile: easy hard")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--results", type=Path, default=RESULTS)
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs section from the saved results")
    args = ap.parse_args()
    saved = read_results(args.results)
    if not args.report_only:
        saved = {
            profile: measure_profile(args, profile, n, q)
            for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
        }
        write_results(args.results, saved)
        print(json.dumps({p: r["configs"] for p, r in saved.items()}, indent=1))
    write_section("pool_grading", "Sparse labels: what grading the pool changes (issue 15)", body(saved))


if __name__ == "__main__":
    main()
