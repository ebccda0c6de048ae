"""Train the reranker on the generated benchmark and show what it adds (issue 3).

Trains on the train split (hard negatives from the pipeline's own lists),
selects the checkpoint and the blend weight on dev, then scores the full
evaluate table on test and on the held-out product types no training query
named. Uses the data and index that ``pipeline_quality.py`` caches.

    python benchmarks/train_models.py --products 50000 --queries 3000 --max-pairs 20000
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

from search_rerank.evaluate import evaluate, standard_configs  # noqa: E402
from search_rerank.indexes import load_reranker, open_pipeline  # noqa: E402
from search_rerank.loaders import load_beir  # noqa: E402
from search_rerank.mining import MiningConfig  # noqa: E402
from search_rerank.model_card import load_card  # noqa: E402
from search_rerank.train_reranker import RerankerTraining, train_reranker  # noqa: E402


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.add_argument("--max-pairs", type=int, default=20_000)
    ap.add_argument("--epochs", type=float, default=1.0)
    ap.add_argument("--eval-steps", type=int, default=250)
    ap.add_argument("--reuse", action="store_true", help="evaluate the model already in the registry")
    args = ap.parse_args()

    data, settings = prepared(args)
    cached_index(data, settings)
    dataset = load_beir(data)
    name = f"{data.name}-reranker"
    model_dir = Path(settings.models_dir) / name
    if not (args.reuse and model_dir.exists()):
        config = RerankerTraining(epochs=args.epochs, max_pairs=args.max_pairs, eval_steps=args.eval_steps,
                                  seed=args.seed, mining=MiningConfig(judgments_complete=True, seed=args.seed))
        train_reranker(open_pipeline(settings), dataset.split("train"), dataset.split("dev"), model_dir, config,
                       data_path=str(data), data_name=data.name)
    card = load_card(model_dir)
    # Served as trained: the same token budget per pair (and half the cost of the 256 default).
    served = settings.override(rerank={"model": name, "allow_unpromoted": True,
                                       "max_length": card.parameters["max_length"]})
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
Reranker `{card.name}`: {card.base_model} body + new head, {card.data.splits['train'].pairs:,} training pairs
from {card.data.splits['train'].queries:,} train queries (hard negatives: the first stage's unjudged-as-irrelevant
top 50, valid here because the generated labels are complete), {card.parameters['epochs']} epoch(s),
batch {card.parameters['batch_size']}, lr {card.parameters['learning_rate']}, seed {card.seed}.
Dev ({card.data.splits['dev'].queries} queries): first stage {m['first_stage_ndcg10']:.4f}, reranker alone
{m['rerank_only_ndcg10']:.4f}, blended at {m['best_blend']} {m['model_ndcg10']:.4f} →
**{'promoted' if card.promoted else 'not promoted'}** ({card.promotion_reason}).
Training took {card.training_seconds / 60:.1f} min, {card.pairs_per_second:.1f} pairs/s
({card.parameters['device']}; the time includes mining and dev evaluations).

### Test split, full catalogue ({test.queries} queries)

{table(['config', *METRICS], metric_rows(test))}

Rerank gain over hybrid-rrf: **{gain:+.4f}** nDCG@10.

### Held-out product types ({held.queries} test queries on types no training query named)

{table(['config', *METRICS], metric_rows(held))}

Rerank gain over hybrid-rrf on held-out types: **{held_gain:+.4f}** nDCG@10.
"""
    write_section("training", "Trained reranker (issue 3)", body)


if __name__ == "__main__":
    main()
