"""Fine-tune the bi-encoder contrastively on triplets mined from the current pipeline's own candidates.

Why contrastive: the dense leg ranks one query against the whole catalogue,
a softmax over products. MultipleNegativesRankingLoss trains exactly that,
with the batch's other products standing in for the catalogue and a hard
negative per row adding the near misses (accessories, wrong type) that the
lexical and dense legs rank high today. The batch sampler keeps any text from
appearing twice in a batch, so a query's own rows never serve as its
negatives. Known limit: two related queries in one batch ("sofa", "red sofa")
can still make each other's positives in-batch negatives; with a few hundred
queries per epoch that noise is small, and removing it (GISTEmbed) needs a
guide model at every step.

Graded labels: a query's positives are its best-graded products (exact
matches; partial ones only where nothing better is judged), because pulling
a partial match as close as an exact one would blur the very difference
nDCG@10 rewards. A partial match is never a negative either: pushing it away
teaches the model that a blue sofa is as far from "red sofa" as a kettle is.

Only the splits handed in are read: callers pass the train split to mine and
the dev split to select on, so dev and test judgments never reach training.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator

from ..backends.encoder import resolve_model_path
from ..core.candidate import Candidate
from ..core.device import check_precision, pick_device
from ..core.errors import ConfigError
from ..core.model_card import (
    BASELINE_METRIC,
    MODEL_METRIC,
    ModelCard,
    SplitSize,
)
from ..core.retrieval import LEGS
from ..core.settings import PACKAGED_MINILM
from ..data.dataset import Query
from ..data.qrels import Qrels
from ..evaluation.evaluate import relevance_metrics
from .arguments import precision_name, trainer_arguments
from .card import save_training_card
from .mining import (
    MiningConfig,
    first_stage_lists,
    judged_subset,
    mine_capped,
    sample_positives,
    sample_random_negatives,
)
from .model_folder import staged
from .reranker import best_evaluation


@dataclass(frozen=True)
class EncoderTraining:
    base_model: str = PACKAGED_MINILM
    epochs: float = 1.0
    batch_size: int = 32  # in-batch negatives: a larger batch is a harder, more catalogue-like softmax
    learning_rate: float = 2e-5
    warmup_ratio: float = 0.1
    max_seq_length: int | None = None  # None: from the data (length_quantile), capped by dense.max_seq_length
    length_quantile: float | None = 0.95  # see training_seq_length; None: dense.max_seq_length, as served
    freeze_word_embeddings: bool = True  # see freeze_word_embeddings: measured faster, still learns new words
    precision: str = "auto"  # "auto", "fp32" or "bf16"/"fp16"; see training_precision
    max_evaluations: int = 5  # dev evaluations in a run at most: eval_steps grows for long runs
    scale: float = 20.0  # MultipleNegativesRankingLoss' inverse temperature
    eval_steps: int = 200
    patience: int = 2
    pool_depth: int = 100  # per leg, per dev query, in the dev candidate pool
    pool_judged: int = 50  # judged products per dev query in the pool, best grades first
    dev_queries: int = 150
    max_triplets: int | None = None
    seed: int = 13
    device: str = "auto"
    mining: MiningConfig = field(default_factory=lambda: MiningConfig(positives_per_query=4))

    def __post_init__(self) -> None:
        if self.length_quantile is not None and not 0 < self.length_quantile <= 1:
            raise ConfigError(f"length_quantile must be in (0, 1], got {self.length_quantile}")
        if self.max_evaluations < 1:
            raise ConfigError(f"max_evaluations must be at least 1, got {self.max_evaluations}")
        check_precision(self.precision)


@dataclass(frozen=True)
class Triplet:
    query_id: str
    query: str
    positive: str
    negative: str


def mine_triplets(
    queries: Mapping[str, Query],
    qrels: Qrels,
    candidates: Mapping[str, Sequence[Candidate]],
    catalog_ids: Sequence[str],
    config: MiningConfig = MiningConfig(),
) -> list[Triplet]:
    """Per judged query: its best-graded products, each with a hard negative from the pipeline's list.

    Hard negatives are the list's products judged 0 (or unjudged, when the
    labels are complete), taken in rank order and reused round-robin; random
    catalogue products (judged 0 or unjudged) fill in for a query whose list
    holds none, since every row of the loss needs a negative.
    """
    rng = np.random.default_rng(config.seed)
    triplets: list[Triplet] = []
    for qid in sorted(qrels):
        judged = qrels[qid]
        best = max(judged.values(), default=0)
        if qid not in queries or best <= 0:
            continue
        top = [c.product_id for c in candidates.get(qid, [])[: config.hard_depth]]
        positives = sample_positives(
            {pid: g for pid, g in judged.items() if g == best}, top, config.positives_per_query, rng
        )
        hard = [pid for pid in top if judged.get(pid, None) == 0 or (config.judgments_complete and pid not in judged)]
        negatives = hard[: config.hard_negatives_per_query] or sample_random_negatives(
            catalog_ids, judged, set(), max(config.random_negatives_per_query, 1), rng
        )
        if not negatives:
            continue
        text = queries[qid].text
        triplets += [Triplet(qid, text, pid, negatives[i % len(negatives)]) for i, pid in enumerate(positives)]
    return triplets


def triplets_at_most(judged: Mapping[str, int], config: MiningConfig) -> int:
    """The most triplets ``mine_triplets`` makes of one query's judgments: one per best-graded product, up to
    ``positives_per_query``."""
    best = max(judged.values(), default=0)
    return min(config.positives_per_query, sum(g == best for g in judged.values())) if best > 0 else 0


def dev_pool(pipeline, queries: Mapping[str, Query], qrels: Qrels, depth: int, judged: int, seed: int = 0) -> list[str]:
    """The products the dev metric ranks: both legs' top ``depth`` and up to ``judged`` judged products per query.

    Why not the whole catalogue: an evaluation re-encodes every product it
    ranks, and encoding a 50k catalogue takes minutes on a CPU at every
    evaluation step. The pool keeps the distractors the current legs actually
    confuse relevant products with, and enough judged products (the best
    grades first, then a seeded sample) for a better model to pull up. Why a
    cap on judged ones: a broad head query ("sofa") can have thousands of
    relevant products, and complete labels would otherwise put most of the
    catalogue back in. Absolute values differ from full-catalogue nDCG@10,
    but they move with it, which is what selection needs.
    """
    rng = np.random.default_rng(seed)
    settings = pipeline.settings.offline().override(lexical={"candidates": depth}, dense={"candidates": depth})
    pool: set[str] = set()
    for qid, query in sorted(queries.items()):
        grades = qrels.get(qid, {})
        ids = sorted(grades)
        order = np.lexsort((rng.random(len(ids)), np.array([-grades[pid] for pid in ids])))
        pool.update(ids[i] for i in order[:judged])
        ranking = pipeline.retrieve(query.text, None, settings)
        pool.update(c.product_id for leg in LEGS for c in ranking.stages.get(leg, []))
    return sorted(pool)


class DevDenseEvaluator(BaseEvaluator):
    """Dense-only dev nDCG@10 over the dev pool (see :func:`dev_pool`), scored with ir-measures.

    A sentence-transformers evaluator, so that the trainer's early stopping and
    best-checkpoint selection run on the metric that decides promotion.
    """

    def __init__(
        self,
        queries: Mapping[str, Query],
        qrels: Qrels,
        pool: Mapping[str, str],
        *,
        query_prefix: str = "",
        document_prefix: str = "",
        depth: int = 100,
        batch_size: int = 64,
        max_seq_length: int | None = None,
    ):
        super().__init__()
        self.max_seq_length = max_seq_length
        self.seconds = 0.0  # spent in the trainer's evaluations (not the baseline's)
        self.qids = sorted(queries)
        self.query_texts = [query_prefix + queries[qid].text for qid in self.qids]
        self.qrels = {qid: qrels[qid] for qid in self.qids}
        self.pool_ids = list(pool)
        self.pool_texts = [document_prefix + pool[pid] for pid in self.pool_ids]
        self.depth = depth
        self.batch_size = batch_size
        self.primary_metric = MODEL_METRIC
        self.greater_is_better = True

    def ndcg(self, model) -> float:
        def encode(texts: list[str]) -> np.ndarray:
            return model.encode(
                texts,
                batch_size=self.batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )

        # Scored as served: training may cut texts shorter (training_seq_length), the dev metric must not.
        trained_length = model.max_seq_length
        if self.max_seq_length is not None:
            model.max_seq_length = self.max_seq_length
        try:
            scores = encode(self.query_texts) @ encode(self.pool_texts).T
        finally:
            model.max_seq_length = trained_length
        k = min(self.depth, scores.shape[1])
        top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
        run = {qid: [(self.pool_ids[j], float(scores[i, j])) for j in top[i]] for i, qid in enumerate(self.qids)}
        per_query = relevance_metrics(self.qrels, run)
        return float(np.mean([m["nDCG@10"] for m in per_query.values()])) if per_query else 0.0

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        started = time.perf_counter()
        score = self.ndcg(model)
        self.seconds += time.perf_counter() - started
        return {MODEL_METRIC: score}


def training_seq_length(tokenizer, texts: Sequence[str], quantile: float, cap: int) -> int:
    """The tokens a training text keeps: the ``quantile`` of the product texts' tokenised lengths, at most ``cap``.

    Why: the collator pads each batch to its longest text, and with three
    texts a row a batch of 32 almost always holds one of the catalogue's
    longest, so every row pays for the outlier. Cutting at the 95th
    percentile costs the longest 5% of texts their last tokens (the least
    specific ones: ``Product.embedding_text`` puts the description last) and
    makes every batch shorter. The served length is the cap: training never
    reads more than serving will. It pays where lengths have a long tail
    below the cap; on the generated profiles it measured no faster (hard:
    titles of 21 tokens, 95th percentile 31, longest 37; easy: most texts
    reach the cap of 64 anyway), and it costs them almost nothing.
    """
    if not texts:
        return cap
    # Cut at the cap: a longer text counts as the cap, which is all it can be trained on, and is not tokenised whole
    # (which warned of "indexing errors" past the model's limit, for every catalogue with long descriptions).
    encoded = tokenizer(list(texts), add_special_tokens=True, truncation=True, max_length=cap)
    lengths = [len(ids) for ids in encoded["input_ids"]]
    return int(min(cap, max(8, int(np.ceil(np.quantile(lengths, quantile))))))


def training_length(config: EncoderTraining, tokenizer, documents: Sequence[str], served: int) -> int:
    """Tokens a training text keeps: ``config.max_seq_length``, else the served length (``served``) or, with a
    ``length_quantile``, that quantile of ``documents``' lengths (``training_seq_length``)."""
    if config.max_seq_length is not None:
        return config.max_seq_length
    if config.length_quantile is None:
        return served
    return training_seq_length(tokenizer, documents, config.length_quantile, served)


def freeze_word_embeddings(model) -> int:
    """Stop training the token-embedding matrix; returns how many parameters that freezes.

    In MiniLM it is half of all weights (11.7M of 22.7M), yet a batch reads a
    few hundred of its 30k rows; trained, AdamW's weight decay still moves the
    rows of words no training query used, so a fine-tune on a few product
    types can drift the vocabulary of the others. Frozen, a step skips the
    matrix's dense gradient and its optimiser update: on the project's CPU
    about 15% less time per pair (4% to 18% over six interleaved rounds with
    bf16, CPU time and wall time alike; most of a step is the transformer's
    forward and backward passes). The layers above still learn a shop's own
    words: the packaged MiniLM learns made-up code words for product types
    with the matrix frozen (tests/training/test_train_encoder.py), and dev
    selection refuses a model that got worse.
    """
    frozen = 0
    for module in model.modules():
        embeddings = getattr(module, "word_embeddings", None)
        if embeddings is not None:
            embeddings.weight.requires_grad_(False)
            frozen += embeddings.weight.numel()
    return frozen


def evaluation_interval(steps: int, eval_steps: int, max_evaluations: int) -> int:
    """Steps between dev evaluations: ``eval_steps``, made longer so that a run evaluates at most
    ``max_evaluations`` times. Why: each evaluation re-encodes the whole dev pool, thousands of products, which
    on a CPU costs minutes; a long run would otherwise spend more time evaluating than training."""
    return max(eval_steps, -(-steps // max(max_evaluations, 1)))


def train_encoder(
    pipeline,
    train: tuple[Mapping[str, Query], Qrels],
    dev: tuple[Mapping[str, Query], Qrels],
    out_dir: str | Path,
    config: EncoderTraining = EncoderTraining(),
    *,
    data_path: str = "",
    data_name: str = "",
    label_source: str = "judgments",
    progress: bool = True,
) -> ModelCard:
    """Mine triplets from the train split, train, select on dev; save model and card to ``out_dir``.

    The directory's name is the model's name in the registry. For an encoder
    the "first stage" it must beat (``BASELINE_METRIC`` on the card) is the
    dense leg with the starting model, scored on the same dev pool; a model
    that does not beat it is saved but not promoted. On the CPU two runs with
    the same seed give the same weights; on CUDA, mixed precision and
    non-deterministic kernels trade that for speed.
    """
    import torch
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformer,
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from sentence_transformers.base.sampler import BatchSamplers
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss
    from transformers import EarlyStoppingCallback, set_seed

    set_seed(config.seed)
    started = time.perf_counter()
    dense = pipeline.settings.dense
    train_q, train_qrels = train
    dev_q = judged_subset(*dev, config.dev_queries, config.seed)
    if not dev_q:
        raise ConfigError("no dev queries with judgments: the dev split is needed to decide promotion")
    catalog_ids = sorted(pipeline.store.popularity())

    def mined(queries: Mapping[str, Query]) -> list[Triplet]:
        lists = first_stage_lists(pipeline, queries, config.mining.hard_depth, progress)
        return mine_triplets(queries, train_qrels, lists, catalog_ids, config.mining)

    triplets = mine_capped(train_q, train_qrels, config.max_triplets, config.seed, mined, lambda t: t.query_id)
    pool_ids = dev_pool(pipeline, dev_q, dev[1], config.pool_depth, config.pool_judged, config.seed)
    wanted = {pid for t in triplets for pid in (t.positive, t.negative)} | set(pool_ids)
    texts = {pid: product.embedding_text() for pid, product in pipeline.store.get(sorted(wanted)).items()}
    # Labels can name products the index no longer holds (old click logs); they have no text to learn from.
    triplets = [t for t in triplets if t.positive in texts and t.negative in texts]
    if not triplets:
        raise ConfigError(
            "no training triplets: the train split has no judged query with a relevant product that is in the index"
        )
    evaluator = DevDenseEvaluator(
        dev_q,
        dev[1],
        {pid: texts[pid] for pid in pool_ids if pid in texts},
        query_prefix=dense.query_prefix,
        document_prefix=dense.document_prefix,
        depth=config.pool_depth,
        max_seq_length=dense.max_seq_length,
    )

    device = pick_device(config.device)
    model = SentenceTransformer(resolve_model_path(config.base_model), device=device, local_files_only=True)
    documents = sorted({dense.document_prefix + texts[pid] for t in triplets for pid in (t.positive, t.negative)})
    model.max_seq_length = training_length(config, model.tokenizer, documents, dense.max_seq_length)
    frozen = freeze_word_embeddings(model) if config.freeze_word_embeddings else 0
    with torch.inference_mode():
        baseline = evaluator.ndcg(model)
    data = Dataset.from_dict(
        {
            "anchor": [dense.query_prefix + t.query for t in triplets],
            "positive": [dense.document_prefix + texts[t.positive] for t in triplets],
            "negative": [dense.document_prefix + texts[t.negative] for t in triplets],
        }
    )
    steps_per_epoch = -(-len(triplets) // config.batch_size)
    eval_steps = evaluation_interval(
        int(np.ceil(steps_per_epoch * config.epochs)), config.eval_steps, config.max_evaluations
    )
    with tempfile.TemporaryDirectory(prefix="encoder-ckpt-") as checkpoints:
        args = SentenceTransformerTrainingArguments(
            **trainer_arguments(config, checkpoints, device, eval_steps, MODEL_METRIC, progress),
            batch_sampler=BatchSamplers.NO_DUPLICATES,
            save_only_model=True,  # checkpoints serve best-model selection, never a resume
        )
        trainer = SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=data,
            loss=MultipleNegativesRankingLoss(model, scale=config.scale),
            evaluator=evaluator,
            callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)],
        )
        run = trainer.train()
        steps = trainer.state.global_step
        logged = best_evaluation(trainer.state, (MODEL_METRIC,))
    if logged is None:  # stopped before the first evaluation: score the weights it ended with
        with torch.inference_mode():
            logged = {MODEL_METRIC: evaluator.ndcg(model)}
    tuned = logged[MODEL_METRIC]
    seconds = time.perf_counter() - started
    out = Path(out_dir)
    with staged(out) as folder:
        model.save(str(folder))
        return save_training_card(
            folder,
            "encoder",
            config,
            data_path=data_path,
            data_name=data_name,
            label_source=label_source,
            train=SplitSize(queries=len({t.query_id for t in triplets}), pairs=len(triplets)),
            dev=SplitSize(queries=len(dev_q), pairs=sum(len(dev[1][qid]) for qid in dev_q)),
            parameters={
                "steps": steps,
                "device": device,
                "dev_pool": len(evaluator.pool_ids),
                "max_seq_length": model.max_seq_length,
                "eval_steps": eval_steps,
                "evaluation_seconds": round(evaluator.seconds, 1),
                "frozen_parameters": frozen,
                "precision": precision_name(args),
                "query_prefix": dense.query_prefix,
                "document_prefix": dense.document_prefix,
            },
            dev_metrics={MODEL_METRIC: tuned, BASELINE_METRIC: baseline},
            promoted_because=f"dense dev nDCG@10 {tuned:.4f} beats the starting model's {baseline:.4f} on the dev pool",
            refused_because=f"dense dev nDCG@10 {tuned:.4f} does not beat the starting model's {baseline:.4f} on the "
            "dev pool; serving it would make the dense leg worse",
            seconds=seconds,
            train_metrics=run.metrics,
        )
