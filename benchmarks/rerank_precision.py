"""The trained reranker served in fp32 against the ``auto`` precision (bf16 autocast where the CPU has it natively).

Why: on two CPU cores the cross-encoder is most of a search's time and of
the demo's build (its learned ranker is trained on reranker scores, and
tuning reranks dev), and the trainers already use bf16 where the CPU does it
natively. Serving in bf16 is only a gain if the ranking stays as good, so
this measures both on one trained reranker: every test query of its
dataset is retrieved once, then ranked through the served settings by two
pipelines that differ only in ``rerank.precision``, alternating which goes
first; it reports the rerank stage's p50/p99 per query, their ratio, and
test nDCG@10 of each with a paired randomisation test.

Writes the ``rerank_precision`` key of benchmarks/results/rerank_latency.json
and its section of docs/BENCHMARKS.md. The default paths are what `make
demo` leaves:

    python benchmarks/rerank_precision.py --settings indexes/demo/demo.toml --data data/demo
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.device import native_cpu_bf16  # noqa: E402
from search_rerank.core.retrieval import Stage  # noqa: E402
from search_rerank.core.settings import load_settings  # noqa: E402
from search_rerank.data.loaders import load_dataset  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_latency.json"
PRECISIONS = ("fp32", "auto")
NDCG = "nDCG@10"


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n")[0])
    ap.add_argument("--settings", type=Path, default=ROOT / "indexes" / "demo" / "demo.toml")
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "demo")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()

    started = time.perf_counter()
    served = load_settings(args.settings).offline()  # no deadline: a busy machine must not time a stage out
    if served.rerank.model is None:
        sys.exit(f"{args.settings} serves no reranker: run `make demo` (or give --settings) first")
    queries, qrels = load_dataset(args.data).split(args.split)
    pipelines = {p: open_pipeline(served.override(rerank={"precision": p})) for p in PRECISIONS}
    for pipeline in pipelines.values():
        pipeline.warm_up()
    bf16 = {p: bool(getattr(pipeline.reranker, "bf16", False)) for p, pipeline in pipelines.items()}
    first = pipelines[PRECISIONS[0]]
    qids = [q for q in queries if q in qrels]
    ms: dict[str, list[float]] = {p: [] for p in PRECISIONS}
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {p: {} for p in PRECISIONS}
    for i, qid in enumerate(qids):
        retrieved = first.retrieve(queries[qid].text, None)
        for p in PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]:
            ranking = pipelines[p].rank_from(retrieved)
            ms[p].append(ranking.timings_ms[Stage.RERANK])
            runs[p][qid] = [(c.product_id, c.score) for c in ranking.candidates]
    for pipeline in pipelines.values():
        pipeline.close()
    scores = {p: relevance_metrics({q: qrels[q] for q in qids}, runs[p]) for p in PRECISIONS}
    ndcg = {p: [scores[p][q][NDCG] for q in qids] for p in PRECISIONS}
    test = paired_test(ndcg["fp32"], ndcg["auto"])
    p50 = {p: float(np.percentile(ms[p], 50)) for p in PRECISIONS}
    figures = {
        "settings": str(args.settings),
        "queries": len(qids),
        "window": served.rerank.window,
        "native_cpu_bf16": native_cpu_bf16(),
        "bf16": bf16,
        "rerank_p50_ms": p50,
        "rerank_p99_ms": {p: float(np.percentile(ms[p], 99)) for p in PRECISIONS},
        "auto_speedup_p50": p50["fp32"] / p50["auto"],
        "ndcg10": {p: float(np.mean(ndcg[p])) for p in PRECISIONS},
        "ndcg10_delta": test.mean_delta,
        "ndcg10_p_value": test.p_value,
        "load_average": os.getloadavg()[0],
        "seconds": time.perf_counter() - started,
    }
    write_results(RESULTS, read_results(RESULTS) | {"rerank_precision": figures})
    rows = [
        [
            f"{p} ({'bf16 autocast' if bf16[p] else 'fp32'})",
            f"{p50[p]:.0f}",
            f"{figures['rerank_p99_ms'][p]:.0f}",
            f"{figures['ndcg10'][p]:.4f}",
        ]
        for p in PRECISIONS
    ]
    body = (
        table(["rerank.precision", "rerank p50 ms", "p99 ms", f"{args.split} nDCG@10 (as served)"], rows)
        + f"\n\n`auto` over `fp32`: **{figures['auto_speedup_p50']:.2f}x** faster at p50; nDCG@10 "
        f"{test.mean_delta:+.4f} (paired randomisation p = {test.p_value:.2f}, {test.wins} queries up, "
        f"{test.losses} down, {test.ties} unchanged). {len(qids)} {args.split} queries of `{args.data}`, "
        f"each retrieved once and ranked by both (alternating which goes first) through `{args.settings}` "
        f"(window {served.rerank.window}, every stage as served); native CPU bf16: "
        f"{'yes' if figures['native_cpu_bf16'] else 'no'}. Load average at the end: {figures['load_average']:.1f}.\n"
    )
    write_section("rerank-precision", "Rerank precision on the CPU: fp32 against auto (bf16)", body)
    print(body)


if __name__ == "__main__":
    main()
