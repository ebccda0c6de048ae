"""Does the learned ranker learn from reranker scores that flatter its own train queries? (issue 15)

Why: the ranker's training rows carry the probability of the reranker the
onboarding trained on those same train queries (a stack). Had that reranker
memorised them, it would lift train queries more than unseen ones, the ranker
would learn to trust it more than it deserves, and test would pay; the remedy
would be cross-fitting (a reranker per fold of train), several trainings more.
This measures whether there is anything to remedy: the reranker's lift over the
ranking it reorders (nDCG@10, reranked minus not) on a sample of train queries
against the same on dev, with the models and settings of the run
``benchmarks/onboarding.py`` made (run it first, with the same options).

Writes the key ``stacking_leak`` of benchmarks/results/learned_ranking.json
(per profile: each split's mean lift, the difference and Welch's t-test of it)
and the "Stacking leak" section of docs/BENCHMARKS.md.

    python benchmarks/stacking_leak.py --train-queries 200
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from onboarding import PROFILES, onboarding_plan, parser, profile_sizes  # noqa: E402
from report import read_results, table, write_results, write_section  # noqa: E402
from scipy.stats import ttest_ind  # noqa: E402

from search_rerank.cli.onboard import NDCG, measuring_depth, promoted_changes, read_state, with_changes  # noqa: E402
from search_rerank.core.rerank import DEFAULT_BLEND  # noqa: E402
from search_rerank.data.loaders import load_dataset  # noqa: E402
from search_rerank.evaluation.tune import RankingCache  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.training.ranker import sampled_queries, stage_input_settings  # noqa: E402

KEY = "stacking_leak"


def lifts(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    """Per split, each query's nDCG@10 with the onboarded reranker minus without it, under the settings the ranker
    step trained on (the steps promoted before it, the stages after the reranker off)."""
    plan, base, _ = onboarding_plan(args, profile, products, queries)
    state = read_state(plan.out, plan.dataset, base)
    reranker = state["steps"].get("reranker")
    if reranker is None or "card" not in reranker:
        raise SystemExit(f"{plan.out}: the onboarding has no trained reranker yet; run benchmarks/onboarding.py")
    before = {step: record for step, record in state["steps"].items() if step != "ranker"}
    settings = with_changes(base, promoted_changes({"steps": before}))
    first = stage_input_settings(settings.override(rerank={"model": None}))
    card_name = reranker["card"]["name"]
    promoted = reranker["status"] == "promoted"
    # A refused reranker's card chose no blend (weight 0, no lift at all): it is measured at the default weight.
    with_reranker = first.override(
        rerank={"model": card_name, "allow_unpromoted": True, **({} if promoted else {"blend": DEFAULT_BLEND})}
    )
    data = load_dataset(plan.dataset)
    pipeline = open_pipeline(with_reranker.offline())
    out: dict[str, Any] = {"reranker": card_name, "promoted": promoted}
    try:
        for split, limit in (("train", args.train_queries), ("dev", None)):
            sample = sampled_queries(data.split(split), limit, args.seed)
            cache = RankingCache(pipeline, *sample, depth=measuring_depth(with_reranker), progress=True)
            try:
                plain, reranked = (cache.score(s).per_query for s in (first, with_reranker))
            finally:
                cache.close()
            out[split] = [reranked[q][NDCG] - plain[q][NDCG] for q in sorted(reranked)]
    finally:
        pipeline.close()
    return out


def summary(measured: dict[str, Any]) -> dict[str, Any]:
    train, dev = (np.asarray(measured[split]) for split in ("train", "dev"))
    test = ttest_ind(train, dev, equal_var=False)
    return {
        "reranker": measured["reranker"],
        "promoted": measured["promoted"],
        "train_queries": len(train),
        "dev_queries": len(dev),
        "train_lift": float(train.mean()),
        "dev_lift": float(dev.mean()),
        "difference": float(train.mean() - dev.mean()),
        "welch_p": float(test.pvalue),
    }


def verdict(results: dict[str, Any]) -> str:
    """Whether any profile's reranker lifted its train queries more than dev's beyond noise (p < 0.05)."""
    leaking = [p for p, r in results.items() if r["difference"] > 0 and r["welch_p"] < 0.05]
    if leaking:
        return f"The reranker lifted its own train queries more than dev's beyond noise on: {', '.join(leaking)}."
    return (
        "On no profile did the reranker lift its own train queries more than dev's beyond noise (p < 0.05): at these "
        "sizes (one epoch over a few thousand pairs) it has not memorised them, and the stack is left as it is."
    )


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--train-queries", type=int, default=200, help="train queries sampled (dev is used whole)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs section from the saved results")
    args = ap.parse_args()
    saved = read_results(args.results)
    if not args.report_only:
        results = {p: summary(lifts(args, p, n, q)) for p, n, q in profile_sizes(args)}
        saved[KEY] = {**saved.get(KEY, {}), **results}
        write_results(args.results, saved)
        print(json.dumps(results))
    if args.no_write:
        return
    rows = [
        [
            p,
            f"{r['reranker']} ({'promoted' if r['promoted'] else 'not promoted'})",
            f"{r['train_lift']:+.4f} ({r['train_queries']})",
            f"{r['dev_lift']:+.4f} ({r['dev_queries']})",
            f"{r['difference']:+.4f}",
            f"{r['welch_p']:.3f}",
        ]
        for p, r in saved[KEY].items()
        if p in PROFILES
    ]
    body = f"""The learned ranker's training rows carry the probability of the reranker that `onboard` trained on the same
train queries. Had it memorised them, it would lift train queries more than unseen ones, and the ranker trained
on its scores would trust it more than it deserves on test (the remedy, cross-fitting, would train the reranker
once per fold). The reranker's lift: nDCG@10 on the sparse labels with it minus without it, under the settings the
ranker step trained on (the steps promoted before it; the ranker, long-tail and diversity stages off), on
{", ".join(sorted({str(r["train_queries"]) for r in saved[KEY].values()}))} sampled train queries and on all of dev; `p` is Welch's t-test of the difference. A reranker
not promoted never reached the ranker's rows; its row says whether it would have leaked, measured at the default
blend weight ({DEFAULT_BLEND}) since its card chose none.

{table(["profile", "reranker", "lift on train (queries)", "lift on dev (queries)", "train - dev", "p"], rows)}

{verdict(saved[KEY])}
"""
    write_section(KEY, "Stacking leak: the reranker on its own train queries", body)


if __name__ == "__main__":
    main()
