"""The encoder's fine-tune timed on this machine: N real mined triplets, pairs/s and minutes (issue 15, item 5).

Why: the issue asks for the 30k-pair fine-tune within 60 minutes on the
project's CPU (and the pairs/s on a GPU when one is there). This runs
``train_encoder`` (what ``search-rerank train encoder`` runs: mining, the dev
pool, training with its dev evaluations, selection) on a generated hard-profile
dataset with its sparse pooled labels, capped at ``--pairs`` triplets. The
triplets are mined, never drawn with replacement: a dataset that yields fewer
than ``--pairs`` trains on all it yields, and the figures say so
(``encoder_ft_pairs`` beside ``encoder_ft_pairs_requested``). ``--card`` reports
a finished run from its model card (which holds the whole call's seconds)
without training again.

``--variants`` times the same triplets again with one speed setting changed,
so each setting's share shows (default: only the shipped settings):
``fp32`` (no bf16 autocast), ``full-length`` (training texts as long as served,
not cut at the 95th percentile), ``trained-embeddings`` (the token-embedding
matrix trained too, not frozen), ``evaluations-unlimited`` (a dev evaluation every 200 steps however long the run).

Writes ``encoder_ft_pairs``, ``encoder_ft_minutes`` (the whole call: mining,
dev pool, training, evaluations), ``encoder_ft_pairs_per_second`` (the
trainer's, dev evaluations during training included), ``encoder_ft_device``
and ``encoder_ft_detail`` (per variant) at the top level of
benchmarks/results/learned_ranking.json (this script owns those keys; the
per-profile ones belong to the other learned-ranking scripts), and the
"Encoder training speed" section of docs/BENCHMARKS.md.

    python benchmarks/encoder_training.py --pairs 30000 --products 20000 --queries 26000

At the hard profile's ~1.9 mined triplets per train query, 30k triplets need
about 26k generated queries (60% of them train).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_dataset, cached_index  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.device import pick_device  # noqa: E402
from search_rerank.core.model_card import BASELINE_METRIC, MODEL_METRIC, ModelCard, load_card  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.generate import HARD_POOLED, GeneratorConfig  # noqa: E402
from search_rerank.data.loaders import load_dataset  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.training.encoder import EncoderTraining, train_encoder  # noqa: E402
from search_rerank.training.mining import MiningConfig  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "learned_ranking.json"
MINING = MiningConfig(positives_per_query=4)
"""As ``train encoder`` mines on sparse labels."""
VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "fp32": {"precision": "fp32"},
    "full-length": {"length_quantile": None},
    "trained-embeddings": {"freeze_word_embeddings": False},
    "evaluations-unlimited": {"max_evaluations": 10**6},
}
"""Each variant: the shipped ``EncoderTraining`` with these fields changed."""


def run_variant(args, name: str, pipeline, data, settings: Settings) -> dict[str, Any]:
    config = replace(EncoderTraining(max_triplets=args.pairs, seed=args.seed, mining=MINING), **VARIANTS[name])
    card = train_encoder(
        pipeline,
        data.split("train"),
        data.split("dev"),
        Path(settings.models_dir) / f"encoder-speed-{name}",
        config,
        data_name=data.name,
        progress=True,
    )
    return variant_figures(card, os.getloadavg()[0])


def variant_figures(card: ModelCard, load_average: float | None) -> dict[str, Any]:
    """One run's figures, all from its model card (``training_seconds`` is the whole ``train_encoder`` call)."""
    pairs = card.data.splits["train"].pairs
    train_seconds = pairs / card.pairs_per_second
    evaluation_seconds = card.parameters["evaluation_seconds"]
    assert isinstance(evaluation_seconds, float | int)
    return {
        "pairs": pairs,
        "minutes": card.training_seconds / 60,
        "pairs_per_second": card.pairs_per_second,
        "train_seconds": train_seconds,
        "evaluation_seconds": evaluation_seconds,
        "loop_pairs_per_second": pairs / max(train_seconds - evaluation_seconds, 1e-9),
        "dev_ndcg10_before": card.dev_metrics[BASELINE_METRIC],
        "dev_ndcg10_after": card.dev_metrics[MODEL_METRIC],
        "max_seq_length": card.parameters["max_seq_length"],
        "precision": card.parameters["precision"],
        "frozen_parameters": card.parameters["frozen_parameters"],
        "eval_steps": card.parameters["eval_steps"],
        "steps": card.parameters["steps"],
        "dev_pool": card.parameters["dev_pool"],
        "load_average": load_average,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").strip().split("\n")[0])
    ap.add_argument("--pairs", type=int, default=30_000, help="triplets to train on (mined, never resampled)")
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--queries", type=int, default=26_000)
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=["default"], help="the first is the headline")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--results", type=Path, default=RESULTS, help="the results file to merge into")
    ap.add_argument("--no-write", action="store_true", help="print the section, do not touch docs/BENCHMARKS.md")
    ap.add_argument("--card", type=Path, help="report this finished run's model directory instead of training again")
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    config = GeneratorConfig(
        products=args.products, queries=args.queries, seed=args.seed, pooled=HARD_POOLED, profile="hard"
    )
    path = cached_dataset(args.work, config)
    settings = Settings(index_dir=args.work / f"idx-{path.name}", models_dir=args.work / "models")
    if args.card is not None:  # a finished run reported again: its card holds every figure but the load
        detail = {args.variants[0]: variant_figures(load_card(args.card), None)}
    else:
        cached_index(path, settings)
        data = load_dataset(path)
        pipeline = open_pipeline(settings.offline())
        try:
            detail = {name: run_variant(args, name, pipeline, data, settings) for name in args.variants}
        finally:
            pipeline.close()
    mined = detail[args.variants[0]]["pairs"]
    if mined < args.pairs:  # train_encoder never resamples: fewer mined is fewer trained, and reported as such
        print(f"{path.name} yields {mined} triplets, fewer than --pairs {args.pairs}: generate more queries")
    head = detail[args.variants[0]]
    figures = {
        "encoder_ft_pairs": head["pairs"],
        "encoder_ft_pairs_requested": args.pairs,
        "encoder_ft_minutes": head["minutes"],
        "encoder_ft_pairs_per_second": head["pairs_per_second"],
        "encoder_ft_device": pick_device(EncoderTraining().device),
        "encoder_ft_detail": {
            "dataset": path.name,
            "variants": detail,
            "projected_loop_minutes_30k": {
                name: 30_000 / v["loop_pairs_per_second"] / 60 for name, v in detail.items()
            },
        },
    }
    write_results(args.results, read_results(args.results) | figures)
    rows = [
        [
            name,
            v["pairs"],
            f"{v['pairs_per_second']:.2f}",
            f"{v['loop_pairs_per_second']:.2f}",
            f"{v['evaluation_seconds']:.0f}",
            f"{v['minutes']:.1f}",
            f"{30_000 / v['loop_pairs_per_second'] / 60:.0f}",
            v["precision"],
            v["max_seq_length"],
            f"{v['frozen_parameters']:,}",
            f"{v['steps']} / {v['eval_steps']}",
            v["dev_pool"],
            f"{v['dev_ndcg10_before']:.3f} → {v['dev_ndcg10_after']:.3f}",
            "" if v["load_average"] is None else f"{v['load_average']:.1f}",
        ]
        for name, v in detail.items()
    ]
    body = f"""`train_encoder` (what `search-rerank train encoder` runs) on the hard profile's sparse labels
({path.name}: {head["pairs"]} triplets mined from its train split, all it yields of the {args.pairs} asked,
never resampled), device
`{figures["encoder_ft_device"]}`. `pairs/s` is the trainer's (dev evaluations during training included);
`loop pairs/s` leaves those evaluations (`eval s`) out; `minutes` is the whole call (mining, dev pool,
training, evaluations, selection); `30k loop min` projects the training loop alone to 30,000 pairs (add
at most `max_evaluations` + 1 dev evaluations, each costing what `eval s` shows per evaluation at this
pool size). Variants change one speed setting from the shipped ones: `fp32`
no bf16 autocast, `full-length` texts as long as served rather than cut at the products' 95th-percentile
token length, `trained-embeddings` the token-embedding matrix trained too, `evaluations-unlimited` a dev
evaluation every 200 steps however long the run. `load` is the machine's 1-minute load average after the
run (other jobs share the two cores).

{
        table(
            [
                "variant",
                "pairs",
                "pairs/s",
                "loop pairs/s",
                "eval s",
                "minutes",
                "30k loop min",
                "precision",
                "max length",
                "frozen weights",
                "steps / eval every",
                "dev pool",
                "dense dev nDCG@10",
                "load",
            ],
            rows,
        )
    }
"""
    print(json.dumps({k: v for k, v in figures.items() if k != "encoder_ft_detail"}))
    if args.no_write:
        print(body)
        return
    write_section("encoder_training", "Encoder training speed", body)


if __name__ == "__main__":
    main()
