"""Train the reranker or the bi-encoder on the generated benchmark and show what each adds (issue 3).

Trains on the train split (hard negatives from the pipeline's own lists),
selects on dev, then scores the evaluate table on test and on the held-out
product types no training query named. Generated data and index are cached
under ``--work`` (the dataset of ``pipeline_quality.py``'s easy profile at the
same sizes, with its own number of pooled judgments). The fine-tuned encoder
needs its own index (every product re-encoded), built once beside the cached
one.

    python benchmarks/train_models.py --products 50000 --queries 3000 --max-pairs 20000
    python benchmarks/train_models.py --products 50000 --queries 3000 --model encoder
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from pipeline_quality import METRICS, metric_rows, subset  # noqa: E402
from report import table, write_section  # noqa: E402

from search_rerank.core.model_card import load_card  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.evaluation.evaluate import evaluate, standard_configs  # noqa: E402
from search_rerank.indexing.indexes import load_reranker, open_pipeline  # noqa: E402
from search_rerank.training.encoder import EncoderTraining, train_encoder  # noqa: E402
from search_rerank.training.mining import MiningConfig  # noqa: E402
from search_rerank.training.reranker import RerankerTraining, train_reranker  # noqa: E402


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.add_argument("--model", choices=("reranker", "encoder"), default="reranker")
    ap.add_argument("--max-pairs", type=int, default=20_000, help="reranker pairs / encoder triplets, at most")
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--eval-steps", type=int, default=250)
    ap.add_argument("--reuse", action="store_true", help="evaluate the model already in the registry")
    args = ap.parse_args()

    data, settings = prepared(args)
    cached_index(data, settings)
    dataset = load_beir(data)
    if args.model == "encoder":
        encoder_benchmark(args, data, settings, dataset)
    else:
        reranker_benchmark(args, data, settings, dataset)


def reranker_benchmark(args, data: Path, settings, dataset) -> None:
    name = f"{data.name}-reranker"
    model_dir = Path(settings.models_dir) / name
    if not (args.reuse and model_dir.exists()):
        config = RerankerTraining(
            epochs=args.epochs,
            max_pairs=args.max_pairs,
            eval_steps=args.eval_steps,
            seed=args.seed,
            mining=MiningConfig(judgments_complete=True, seed=args.seed),
        )
        train_reranker(
            open_pipeline(settings),
            dataset.split("train"),
            dataset.split("dev"),
            model_dir,
            config,
            data_path=str(data),
            data_name=data.name,
        )
    card = load_card(model_dir)
    served = settings.override(rerank={"model": name, "allow_unpromoted": True})  # at its card's max_length
    pipeline = open_pipeline(served)
    pipeline.reranker = load_reranker(served)
    pipeline.warm_up()

    test_q, test_qrels = dataset.split("test")
    # The rerank+longtail row would score every window a second time; the boost's effect is issue 2's table.
    configs = [c for c in standard_configs(has_reranker=True) if not (c.rerank and c.longtail)]
    test = evaluate(pipeline, test_q, test_qrels, configs=configs, dataset=data.name, split="test")
    held_q, held_qrels = subset(test_q, test_qrels, lambda q: q.meta.get("heldout") == "1")
    pair = [c for c in configs if c.name in ("hybrid-rrf", "hybrid+rerank")]
    held = evaluate(pipeline, held_q, held_qrels, configs=pair, split="test-heldout")
    rows = {r.config: r.metrics["nDCG@10"] for r in test.rows}
    held_rows = {r.config: r.metrics["nDCG@10"] for r in held.rows}
    gain, held_gain = (rows["hybrid+rerank"] - rows["hybrid-rrf"], held_rows["hybrid+rerank"] - held_rows["hybrid-rrf"])
    print(f"rerank gain on test {gain:+.4f}, on held-out types {held_gain:+.4f}; promoted={card.promoted}")
    if args.no_write:
        return
    m = card.dev_metrics
    body = f"""
Reranker `{card.name}`: {card.base_model} body + new head, {card.data.splits["train"].pairs:,} training pairs
from {card.data.splits["train"].queries:,} train queries (hard negatives: the first stage's unjudged-as-irrelevant
top 50, valid here because the generated labels are complete), {card.parameters["epochs"]} epoch(s),
batch {card.parameters["batch_size"]}, lr {card.parameters["learning_rate"]}, seed {card.seed}.
Dev ({card.data.splits["dev"].queries} queries): first stage {m["first_stage_ndcg10"]:.4f}, reranker alone
{m["rerank_only_ndcg10"]:.4f}, blended at {m["best_blend"]} {m["model_ndcg10"]:.4f} →
**{"promoted" if card.promoted else "not promoted"}** ({card.promotion_reason}).
Training took {card.training_seconds / 60:.1f} min, {card.pairs_per_second:.1f} pairs/s
({card.parameters["device"]}; the time includes mining and dev evaluations).

### Test split, full catalogue ({test.queries} queries)

{table(["config", *METRICS], metric_rows(test))}

Rerank gain over hybrid-rrf: **{gain:+.4f}** nDCG@10.

### Held-out product types ({held.queries} test queries on types no training query named)

{table(["config", *METRICS], metric_rows(held))}

Rerank gain over hybrid-rrf on held-out types: **{held_gain:+.4f}** nDCG@10.
"""
    write_section("training", "Trained reranker (issue 3)", body)


def encoder_benchmark(args, data: Path, settings, dataset) -> None:
    name = f"{data.name}-encoder"
    model_dir = Path(settings.models_dir) / name
    if not (args.reuse and model_dir.exists()):
        # A small dev pool keeps each evaluation to about a minute on two cores (see train_encoder.dev_pool).
        config = EncoderTraining(
            epochs=args.epochs,
            eval_steps=args.eval_steps,
            max_triplets=args.max_pairs,
            dev_queries=100,
            pool_depth=50,
            pool_judged=30,
            seed=args.seed,
        )
        train_encoder(
            open_pipeline(settings),
            dataset.split("train"),
            dataset.split("dev"),
            model_dir,
            config,
            data_path=str(data),
            data_name=data.name,
        )
    card = load_card(model_dir)
    tuned = settings.model_copy(update={"index_dir": Path(f"{settings.index_dir}-{name}")}).override(
        dense={"model": name, "allow_unpromoted": True}
    )
    build = cached_index(data, tuned)
    pipelines = {"off-the-shelf": open_pipeline(settings), "fine-tuned": open_pipeline(tuned)}
    configs = [c for c in standard_configs(has_reranker=False) if c.name in ("dense", "hybrid-rrf", "hybrid-linear")]
    test_q, test_qrels = dataset.split("test")
    held_q, held_qrels = subset(test_q, test_qrels, lambda q: q.meta.get("heldout") == "1")
    reports = {}
    for label, pipeline in pipelines.items():
        pipeline.warm_up()
        reports[label] = (
            evaluate(pipeline, test_q, test_qrels, configs=configs, dataset=data.name, split="test"),
            evaluate(pipeline, held_q, held_qrels, configs=configs, split="test-heldout"),
        )

    def rows(which: int) -> list[list[object]]:
        return [
            [f"{r.config} ({label})", *(r.metrics[m] for m in METRICS)]
            for label, pair in reports.items()
            for r in pair[which].rows
        ]

    def ndcg(label: str, which: int, config: str) -> float:
        return next(r.metrics["nDCG@10"] for r in reports[label][which].rows if r.config == config)

    gains = {
        (which, c): ndcg("fine-tuned", which, c) - ndcg("off-the-shelf", which, c)
        for which in (0, 1)
        for c in ("dense", "hybrid-rrf")
    }
    print(f"dense gain on test {gains[0, 'dense']:+.4f}, held-out {gains[1, 'dense']:+.4f}; promoted={card.promoted}")
    if args.no_write:
        return
    m = card.dev_metrics
    test, held = reports["fine-tuned"]
    body = f"""
Encoder `{card.name}`: {card.base_model} fine-tuned with MultipleNegativesRankingLoss (in-batch negatives plus one
hard negative per row from the first stage's unjudged top 50), {card.data.splits["train"].pairs:,} triplets from
{card.data.splits["train"].queries:,} train queries, {card.parameters["epochs"]} epoch(s), batch
{card.parameters["batch_size"]}, lr {card.parameters["learning_rate"]}, seed {card.seed}, max
{card.parameters["max_seq_length"]} tokens. Dev ({card.data.splits["dev"].queries} queries, a pool of
{card.parameters["dev_pool"]:,} products): starting model {m["first_stage_ndcg10"]:.4f}, fine-tuned
{m["model_ndcg10"]:.4f} → **{"promoted" if card.promoted else "not promoted"}**.
Training took {card.training_seconds / 60:.1f} min, {card.pairs_per_second:.1f} triplets/s ({card.parameters["device"]};
the time includes mining and dev evaluations). Re-encoding the catalogue for the new index:
{build["products"]:,} products in {build["seconds"]["total"] / 60:.1f} min (the dense leg at
{build["docs_per_second"]["dense"]:.0f} docs/s; the cores were shared with other benchmarks).

### Test split, full catalogue ({test.queries} queries)

{table(["config", *METRICS], rows(0))}

Fine-tuning gain: dense **{gains[0, "dense"]:+.4f}** nDCG@10, hybrid-rrf **{gains[0, "hybrid-rrf"]:+.4f}**.

### Held-out product types ({held.queries} test queries on types no training query named)

{table(["config", *METRICS], rows(1))}

Fine-tuning gain on held-out types: dense **{gains[1, "dense"]:+.4f}**, hybrid-rrf **{gains[1, "hybrid-rrf"]:+.4f}**.
"""
    write_section("training-encoder", "Fine-tuned bi-encoder (issue 3)", body)


if __name__ == "__main__":
    main()
