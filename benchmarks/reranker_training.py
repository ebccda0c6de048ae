"""The reranker's training throughput on this machine: fp32 against the ``auto`` precision, interleaved.

Why (issue 15, item 5): the reranker's training is most of an onboarding
run and of the demo CI builds, and ``auto`` now trains in bf16 where the CPU
has native bf16 kernels, as the encoder's fine-tune did first. This trains
the same mined pairs with each precision in turn, alternating which goes
first in each round so that load on a shared machine falls on both alike,
and times the trainer's loop alone (``CrossEncoderTrainer.train``; mining
and the first-stage lists are the same work for both). The dev figure of
each run is reported beside it, as served (first stage blended with the
model at the dev-chosen weight) and of the model alone: a faster precision
that learns less would be no gain.

Writes the ``reranker_training`` key of benchmarks/results/learned_ranking.json
and its section of docs/BENCHMARKS.md.

    python benchmarks/reranker_training.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from statistics import median

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.model_card import MODEL_METRIC  # noqa: E402
from search_rerank.data.generate import HARD_POOLED  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.training.reranker import RerankerTraining, train_reranker  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "learned_ranking.json"
PRECISIONS = ("fp32", "auto")


def main() -> None:
    ap = dataset_parser(__doc__ or "")
    ap.set_defaults(products=3000, queries=1000, pooled=HARD_POOLED)
    ap.add_argument("--pairs", type=int, default=1600, help="training pairs per run (sampled from the mined ones)")
    ap.add_argument("--rounds", type=int, default=2, help="runs per precision, alternating which goes first")
    args = ap.parse_args()

    from sentence_transformers.cross_encoder import CrossEncoderTrainer

    data, settings = prepared(args)
    cached_index(data, settings)
    dataset = load_beir(data)
    loop_seconds: list[float] = []
    untimed = CrossEncoderTrainer.train

    def timed(trainer, *a, **kw):
        started = time.perf_counter()
        try:
            return untimed(trainer, *a, **kw)
        finally:
            loop_seconds.append(time.perf_counter() - started)

    CrossEncoderTrainer.train = timed  # type: ignore[method-assign]
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    pipeline = open_pipeline(settings.offline())
    try:
        for round_ in range(args.rounds):
            for precision in PRECISIONS if round_ % 2 == 0 else PRECISIONS[::-1]:
                training = RerankerTraining(max_pairs=args.pairs, precision=precision, seed=args.seed)
                with tempfile.TemporaryDirectory(prefix="reranker-precision-") as out:
                    card = train_reranker(
                        pipeline, dataset.split("train"), dataset.split("dev"), out, training, progress=False
                    )
                pairs = card.data.splits["train"].pairs
                runs[precision].append(
                    {
                        "pairs": pairs,
                        "loop_seconds": loop_seconds[-1],
                        "pairs_per_second": pairs / loop_seconds[-1],
                        "ran_in": card.parameters["precision"],
                        "dev_ndcg10": card.dev_metrics[MODEL_METRIC],
                        "dev_rerank_only_ndcg10": card.dev_metrics["rerank_only_ndcg10"],
                    }
                )
                print(precision, runs[precision][-1], flush=True)
    finally:
        CrossEncoderTrainer.train = untimed  # type: ignore[method-assign]
        pipeline.close()

    speed = {p: median(r["pairs_per_second"] for r in runs[p]) for p in PRECISIONS}
    figures = {
        "pairs_per_second": speed,
        "auto_over_fp32": speed["auto"] / speed["fp32"],
        "auto_ran_in": runs["auto"][0]["ran_in"],
        "dev_ndcg10": {p: median(r["dev_ndcg10"] for r in runs[p]) for p in PRECISIONS},
        "dev_rerank_only_ndcg10": {p: median(r["dev_rerank_only_ndcg10"] for r in runs[p]) for p in PRECISIONS},
        "runs": runs,
        "dataset": data.name,
        "command": "python benchmarks/reranker_training.py",
    }
    write_results(RESULTS, read_results(RESULTS) | {"reranker_training": figures})
    print(json.dumps({k: v for k, v in figures.items() if k != "runs"}, indent=2))
    if args.no_write:
        return
    rows = [
        [
            p,
            runs[p][0]["ran_in"],
            ", ".join(f"{r['pairs_per_second']:.1f}" for r in runs[p]),
            f"{speed[p]:.1f}",
            f"{figures['dev_ndcg10'][p]:.4f}",
            f"{figures['dev_rerank_only_ndcg10'][p]:.4f}",
        ]
        for p in PRECISIONS
    ]
    body = f"""
The reranker (MiniLM-L6 cross-encoder) trained on the same {runs["fp32"][0]["pairs"]:,} mined pairs of the
generated dataset `{data.name}` with each precision, {args.rounds} runs each, alternating which goes first;
the trainer's loop alone is timed (mining and the dev evaluation are outside it).

{table(["precision", "ran in", "pairs/s per run", "median pairs/s", "dev nDCG@10, served blend", "dev nDCG@10, model alone"], rows)}

`auto` over fp32: **{figures["auto_over_fp32"]:.2f}×** the pairs per second.
"""
    write_section("reranker-training", "Reranker training: precision on this CPU (issue 15)", body)


if __name__ == "__main__":
    main()
