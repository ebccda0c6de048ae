"""Typos: the BM25 leg and the shipped hybrid with ``lexical.correct_typos`` off and on, both generator profiles.

Why: a word neither the catalogue nor English has is read as the catalogue's nearest words
(backends/spelling.py). This measures what that changes on the test split, on the misspelt queries (one typo in
the longest word, as the generator writes them) and on every other query, on both label sets: the complete labels
say what a shopper gets; the sparse pooled ones are pooled from a BM25 reading words as typed, so a misspelt
query's relevant products that only the corrected word finds are unjudged there, and count as misses.

Also the lexical leg's time per query, both settings over the same test queries in alternating rounds (a ratio
measured in one run; the machine is shared).

Writes benchmarks/results/typos.json and the "Typos" section of docs/BENCHMARKS.md.

    python benchmarks/typos.py --products 3000 8000 --queries 1000 4000

Sizes are per profile (easy, hard); the generated data and indexes are the other benchmarks' caches.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hard_profile import (  # noqa: E402
    LABELS,
    PROFILES,
    fused_run,
    indexed_profile,
    label_sets,
    leg_run,
    per_query_ndcg,
    profiles_parser,
)
from report import ROOT, table, write_results, write_section  # noqa: E402

from search_rerank.core.retrieval import LEXICAL  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402
from search_rerank.evaluation.tune import RankingCache  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "typos.json"
SETTINGS = {"off": False, "on": True}
GROUPS = ("misspelt", "other", "all")
TIMING_ROUNDS = 3


def runs_for(settings: Settings, queries: dict, qrels: dict) -> dict[str, dict]:
    """The BM25 leg's and the defaults' runs under ``settings``."""
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    try:
        cache = RankingCache(pipeline, queries, qrels, depth=100, progress=True)
        return {"bm25": leg_run(cache, LEXICAL), "defaults": fused_run(cache, settings)}
    finally:
        pipeline.close()


def lexical_seconds(settings_by_name: dict[str, Settings], texts: list[str]) -> dict[str, float]:
    """Median seconds per query of the lexical leg alone, each setting in turn for ``TIMING_ROUNDS`` rounds."""
    pipelines = {name: open_pipeline(s) for name, s in settings_by_name.items()}
    per_round: dict[str, list[float]] = {name: [] for name in pipelines}
    try:
        for pipeline in pipelines.values():
            pipeline.warm_up()
        for _ in range(TIMING_ROUNDS):
            for name, pipeline in pipelines.items():
                leg = pipeline.legs[LEXICAL]
                start = time.perf_counter()
                for text in texts:
                    leg.search(text, 100)
                per_round[name].append((time.perf_counter() - start) / len(texts))
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    return {name: statistics.median(values) for name, values in per_round.items()}


def compare(runs: dict[str, dict[str, dict]], qrels: dict, kinds: dict[str, str]) -> dict[str, Any]:
    """Per ranking and query group: mean nDCG@10 off and on, and the paired test of on against off."""
    out: dict[str, Any] = {}
    for ranking in ("bm25", "defaults"):
        off, on = (per_query_ndcg(runs[name][ranking], qrels) for name in SETTINGS)
        for group in GROUPS:
            qids = sorted(q for q in off if group == "all" or (kinds[q] == "misspelt") == (group == "misspelt"))
            a, b = [off[q] for q in qids], [on[q] for q in qids]
            out.setdefault(ranking, {})[group] = {
                "queries": len(qids),
                "off": sum(a) / len(a),
                "on": sum(b) / len(b),
                "paired": paired_test(a, b).to_json(),
            }
    return out


def run_profile(args: argparse.Namespace, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, settings = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    test_q, complete = sets["complete"].split("test")
    qrels = {"complete": complete, "sparse": sets["sparse"].split("test")[1]}
    kinds = {qid: q.meta.get("kind", "") for qid, q in test_q.items()}
    variants = {name: settings.override(lexical={"correct_typos": on}) for name, on in SETTINGS.items()}
    runs = {name: runs_for(s, test_q, complete) for name, s in variants.items()}
    seconds = lexical_seconds(variants, [q.text for q in test_q.values()])
    return {
        "products": products,
        "queries": queries,
        **{label: compare(runs, qrels[label], kinds) for label in LABELS},
        "lexical_ms_per_query": {name: 1000 * s for name, s in seconds.items()},
    }


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 4000))
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {
        profile: run_profile(args, profile, n, q)
        for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
    }
    print(json.dumps(results, indent=1))
    if args.no_write:
        return
    write_results(RESULTS, results)

    def cell(figures: dict[str, Any]) -> str:
        p = figures["paired"]["p_value"]
        return f"{figures['off']:.3f} → {figures['on']:.3f} (p {p:.4f}, {figures['queries']:,})"

    rows = [
        [profile, label, ranking, *(cell(results[profile][label][ranking][group]) for group in GROUPS)]
        for profile in PROFILES
        for label in LABELS
        for ranking in ("bm25", "defaults")
    ]
    timing = ", ".join(
        f"{p} {results[p]['lexical_ms_per_query']['off']:.1f} → {results[p]['lexical_ms_per_query']['on']:.1f} ms"
        for p in PROFILES
    )
    body = f"""`lexical.correct_typos` (on by default) reads a query word that no searched field has and that is no
English word (a whole word of the packaged MiniLM's vocabulary) as the index's terms at the fewest edits
(Elasticsearch's AUTO edits, first letter kept; backends/spelling.py). Test nDCG@10, off → on, for the BM25 leg
and the shipped defaults (hybrid), on the generator's misspelt queries (one typo in the longest word), on every
other query, and on all; p is the paired randomisation test, then the number of queries. Generated data:
{", ".join(f"{p} {results[p]['products']:,} products, {results[p]['queries']:,} queries" for p in PROFILES)}.

{table(["profile", "labels", "ranking", *GROUPS], rows)}

The sparse labels are pooled from a BM25 that reads words as typed (the generator's judging pool, unchanged), so
on a misspelt query the products only the corrected word finds are mostly unjudged and count as misses there: the
complete labels say what a shopper gets. No other query changes: a query without such a word is searched exactly
as before. The lexical leg's median time per test query over {TIMING_ROUNDS} alternating rounds: {timing}.
"""
    write_section("typos", "Typos: the BM25 leg reads a misspelt word as the catalogue's nearest words", body)


if __name__ == "__main__":
    main()
