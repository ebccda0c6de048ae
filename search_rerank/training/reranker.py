"""Train the cross-encoder reranker: packaged MiniLM body, new one-logit head, graded labels.

Evaluation is on what the product serves, not on a proxy: every evaluation
reranks the dev queries' real first-stage lists and scores full-catalogue
nDCG@10. Checkpoints are selected (and training stopped early) on the model's
own ranking of the window, because the blended score ties with the first
stage while the model is still weak and would pick the earliest checkpoint.
The blend weight for serving is then chosen on dev, and the model is
*promoted* only if the blend beats the first stage alone on dev (a reranker
that does not is worse than none).

That choice is made on more dev queries than the evaluations during
training (``decision_queries`` against ``dev_queries``): those run every few
hundred steps and must be cheap, but a blend chosen on 150 queries is mostly
noise. On the hard profile's onboarding the kept checkpoint's best blend on
its 150 queries was none at all (refused), while on all 652 judged dev
queries the same model, at the served window of 50, gained +0.003 to +0.005
nDCG@10 at weights 0.15 to 0.3 in each half of them alike (deciding there
chose 0.3; on test it gained +0.0039, paired p 0.03). The grid starts at 0.1
because a reranker trained on sparse labels is a tie-breaker among the first
stage's near-equals before it is a ranker: alone, that one scored 0.31
against the first stage's 0.43.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from sentence_transformers.base.evaluation.evaluator import BaseEvaluator
from tqdm import tqdm

from ..backends.encoder import resolve_model_path
from ..backends.gpu_rerank import on_gpu
from ..core.candidate import Candidate
from ..core.device import inference_bf16, pick_device
from ..core.model_card import (
    BASELINE_METRIC,
    MODEL_METRIC,
    ModelCard,
    SplitSize,
)
from ..core.rerank import probabilities, reranked
from ..core.settings import PACKAGED_MINILM, RerankSettings
from ..data.dataset import Query
from ..data.qrels import Qrels
from ..evaluation.evaluate import relevance_metrics
from .arguments import EvaluatedTraining, precision_name, trainer_arguments
from .card import save_training_card
from .mining import MiningConfig, Pair, first_stage_lists, judged_subset, mine_capped, mine_pairs
from .model_folder import staged

if TYPE_CHECKING:
    from ..evaluation.tune import RerankScores

BLENDS = (0.1, 0.2, 0.3, 0.5, 0.75, 1.0)
"""The reranker's weights in the served blend that dev chooses from (see the module's docstring)."""
DEV_DEPTH = 100
"""First-stage candidates retrieved per dev query for the evaluations and the decision: one depth, so that a
decision over more queries ranks the queries it shares with the evaluations from the same lists."""
SCORED_TOGETHER = 20
"""Dev queries whose windows are scored in one call, so that the progress bar moves every few seconds on a CPU."""


@dataclass(frozen=True)
class RerankerTraining:
    base_model: str = PACKAGED_MINILM
    epochs: float = 1.0
    batch_size: int = 16
    learning_rate: float = 3e-5
    warmup_ratio: float = 0.1
    max_length: int = 128
    eval_steps: int = 200
    patience: int = 2
    window: int = 50
    dev_queries: int = 150  # dev queries scored per evaluation; each costs ``window`` model calls
    decision_queries: int = 1000  # dev queries the served blend and the promotion are decided on, once
    blends: tuple[float, ...] = BLENDS
    max_pairs: int | None = None
    seed: int = 13
    device: str = "auto"
    precision: str = "auto"  # see core.device.training_precision: bf16 on CPUs and GPUs that have it natively
    mining: MiningConfig = field(default_factory=MiningConfig)


class DevRerankEvaluator(BaseEvaluator):
    """Full-catalogue dev nDCG@10 of first stage + this model at the best blend weight.

    A sentence-transformers evaluator, so that the trainer's early stopping and
    best-checkpoint selection run on the metric that matters.
    """

    def __init__(
        self,
        qrels: Qrels,
        lists: Mapping[str, Sequence[Candidate]],
        texts: Mapping[str, str],
        queries: Mapping[str, Query],
        window: int,
        blends: Sequence[float],
        batch_size: int = 64,
        bf16: bool = False,
        progress: bool = False,
    ):
        super().__init__()
        self.qrels = {qid: qrels[qid] for qid in lists}
        self.lists = lists
        self.texts = texts
        self.queries = queries
        self.window = window
        self.blends = tuple(blends)
        self.batch_size = batch_size
        self.bf16 = bf16  # scored as serving scores it (core.device.inference_bf16), so dev chooses for what serves
        self.progress = progress  # two shared CPU cores: 1,000 dev queries (50,000 pairs) took 2.3 minutes
        self.primary_metric = "rerank_only_ndcg10"
        self.greater_is_better = True
        self.first_stage = self._ndcg({qid: list(c) for qid, c in lists.items()})

    def size(self) -> SplitSize:
        """The dev queries scored and the (query, product) pairs the model scores for them: the card's dev split."""
        return SplitSize(queries=len(self.lists), pairs=sum(min(self.window, len(c)) for c in self.lists.values()))

    def _ndcg(self, run: Mapping[str, Sequence[Candidate]]) -> float:
        per_query = relevance_metrics(self.qrels, {q: [(c.product_id, c.score) for c in cs] for q, cs in run.items()})
        return float(np.mean([m["nDCG@10"] for m in per_query.values()])) if per_query else 0.0

    def scores(self, model) -> dict[str, np.ndarray]:
        order = list(self.lists)
        out = {}
        with tqdm(total=len(order), desc="dev rerank", unit="query", disable=not self.progress) as bar:
            for first in range(0, len(order), SCORED_TOGETHER):
                chunk = order[first : first + SCORED_TOGETHER]
                pairs = [
                    (self.queries[qid].text, self.texts.get(c.product_id, ""))
                    for qid in chunk
                    for c in self.lists[qid][: self.window]
                ]
                probs = probabilities(model, pairs, self.batch_size, bf16=self.bf16)
                start = 0
                for qid in chunk:
                    n = min(self.window, len(self.lists[qid]))
                    out[qid], start = probs[start : start + n], start + n
                bar.update(len(chunk))
        return out

    def blended_ndcg(self, probs: Mapping[str, np.ndarray], weight: float) -> float:
        """nDCG@10 of the lists with the window reordered by ``weight`` x model + the rest x first stage."""
        return self._ndcg(
            {qid: reranked(cs[: self.window], probs[qid], weight, cs[self.window :]) for qid, cs in self.lists.items()}
        )

    def __call__(self, model, output_path=None, epoch: int = -1, steps: int = -1) -> dict[str, float]:
        return self.decision(self.scores(model))

    def decision(self, probs: Mapping[str, np.ndarray]) -> dict[str, float]:
        """The metrics of the model that scored ``probs``: the best blend on dev, and the baselines."""
        by_weight = {w: self.blended_ndcg(probs, w) for w in sorted({*self.blends, 1.0})}
        best_blend, best = max(
            ((w, v) for w, v in by_weight.items() if w in self.blends),
            key=lambda wv: (wv[1], -wv[0]),
            default=(0.0, self.first_stage),
        )
        if best <= self.first_stage:
            best_blend, best = 0.0, self.first_stage
        return {
            MODEL_METRIC: best,
            "best_blend": best_blend,
            BASELINE_METRIC: self.first_stage,
            "rerank_only_ndcg10": by_weight[1.0],
        }


def decision_evaluator(
    pipeline,
    dev: tuple[Mapping[str, Query], Qrels],
    evaluator: DevRerankEvaluator,
    texts: dict[str, str],
    queries: int,
    seed: int,
    progress: bool = True,
) -> DevRerankEvaluator:
    """What a trained model's served blend and promotion are decided with: up to ``queries`` judged dev queries.

    ``evaluator`` itself when its queries are already those, else a new one over them, at its window, blends
    and precision (the first-stage lists it lacks retrieved; their products' texts added to ``texts``).
    """
    chosen = judged_subset(*dev, queries, seed)
    if chosen.keys() == evaluator.queries.keys():
        return evaluator
    lacking = {qid: query for qid, query in chosen.items() if qid not in evaluator.lists}
    retrieved = first_stage_lists(pipeline, lacking, DEV_DEPTH, progress)
    lists = {qid: evaluator.lists[qid] if qid in evaluator.lists else retrieved[qid] for qid in chosen}
    missing = {c.product_id for cs in lists.values() for c in cs[: evaluator.window]} - texts.keys()
    texts |= {pid: product.embedding_text() for pid, product in pipeline.store.get(sorted(missing)).items()}
    return DevRerankEvaluator(
        dev[1], lists, texts, chosen, evaluator.window, evaluator.blends, bf16=evaluator.bf16, progress=progress
    )


def scored_as_served(config: RerankerTraining, device: str, served: RerankSettings) -> bool:
    """Whether the dev decision (on ``device``, in ``config``'s precision) scores pairs as ``served`` will score
    them, up to the rounding of another batching: on the CPU at the trained length, under the same bf16
    choice (the GPU reranker runs the weights in fp16)."""
    length = served.max_length if served.max_length is not None else config.max_length
    if device != "cpu" or on_gpu(served.device) or length != config.max_length:
        return False
    return inference_bf16(device, served.precision) == inference_bf16(device, config.precision)


def keep_as_served(
    store: RerankScores,
    decider: DevRerankEvaluator,
    probs: Mapping[str, np.ndarray],
    out: Path,
    config: RerankerTraining,
    device: str,
    served: RerankSettings,
) -> None:
    """The dev decision's probabilities into ``store``, keyed as the saved model will be served from ``out`` by
    ``served`` (the training pipeline's rerank settings with the model named): onboarding measures the trained
    step on the same dev queries, and on a Home Depot-sized dataset those windows cost 7 minutes on two CPU cores.

    Only where serving would score them alike (``scored_as_served``). Nothing is kept when the decision reused
    the trainer's last evaluation (it scored nothing more)."""
    if not scored_as_served(config, device, served):
        return
    key = store.key(str(out), config.max_length, served.precision)
    for qid, scores in probs.items():
        window = decider.lists[qid][: len(scores)]
        store.add(key, decider.queries[qid].text, {c.product_id: p for c, p in zip(window, scores, strict=True)})


def best_evaluation(state, keys: Sequence[str]) -> dict[str, float] | None:
    """The dev metrics logged for the checkpoint the trainer kept, saving a minutes-long re-evaluation.

    None when the trainer kept no evaluated checkpoint (it stopped before the first evaluation).
    """
    if state.best_model_checkpoint is None:
        return None
    step = int(Path(state.best_model_checkpoint).name.rsplit("-", 1)[-1])
    logged = next(
        (
            entry
            for entry in state.log_history
            if entry.get("step") == step and all(f"eval_{key}" in entry for key in keys)
        ),
        None,
    )
    return None if logged is None else {key: float(logged[f"eval_{key}"]) for key in keys}


@dataclass(frozen=True)
class Fitted:
    """What a cross-encoder's training run left: the trainer's metrics and steps, the best evaluation's figures
    (None: it stopped before its first), and the precision it ran in."""

    metrics: dict[str, Any]
    steps: int
    best: dict[str, float] | None
    precision: str


def fit_cross_encoder(
    model,
    data,
    loss,
    evaluator: BaseEvaluator,
    config: EvaluatedTraining,
    device: str,
    progress: bool,
    keys: Sequence[str],
) -> Fitted:
    """``model`` trained on ``data`` (query, text and label columns) with ``loss``, evaluated on dev by
    ``evaluator`` every ``config.eval_steps`` and stopped early, the best evaluation's weights kept: what the
    reranker's and the distilled student's trainers share (they differ in their data, loss and decision)."""
    from sentence_transformers.cross_encoder import CrossEncoderTrainer, CrossEncoderTrainingArguments
    from transformers import EarlyStoppingCallback

    with tempfile.TemporaryDirectory(prefix="cross-encoder-ckpt-") as checkpoints:
        args = CrossEncoderTrainingArguments(
            **trainer_arguments(config, checkpoints, device, config.eval_steps, "rerank_only_ndcg10", progress)
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=data,
            loss=loss,
            evaluator=evaluator,
            callbacks=[EarlyStoppingCallback(early_stopping_patience=config.patience)],
        )
        run = trainer.train()
        return Fitted(
            run.metrics, trainer.state.global_step, best_evaluation(trainer.state, keys), precision_name(args)
        )


def train_reranker(
    pipeline,
    train: tuple[Mapping[str, Query], Qrels],
    dev: tuple[Mapping[str, Query], Qrels],
    out_dir: str | Path,
    config: RerankerTraining = RerankerTraining(),
    *,
    data_path: str = "",
    data_name: str = "",
    label_source: str = "judgments",
    progress: bool = True,
    rerank_scores: RerankScores | None = None,
) -> ModelCard:
    """Mine pairs from the train split's first-stage lists, train, select on dev; save model and card to ``out_dir``.

    The directory's name is the model's name in the registry. ``rerank_scores``: where the dev decision's
    probabilities are kept for measuring the model as served (``keep_as_served``).
    """
    import torch
    from datasets import Dataset
    from sentence_transformers.cross_encoder import CrossEncoder
    from sentence_transformers.cross_encoder.losses import BinaryCrossEntropyLoss
    from transformers import set_seed

    set_seed(config.seed)
    started = time.perf_counter()
    train_q, train_qrels = train
    dev_q = judged_subset(*dev, config.dev_queries, config.seed)
    catalog_ids = sorted(pipeline.store.popularity())

    def mined(queries: Mapping[str, Query]) -> list[Pair]:
        lists = first_stage_lists(pipeline, queries, config.mining.hard_depth, progress)
        return mine_pairs(queries, train_qrels, lists, catalog_ids, config.mining)

    pairs = mine_capped(train_q, train_qrels, config.max_pairs, config.seed, mined, lambda pair: pair.query_id)
    if not pairs:
        from ..core.errors import ConfigError

        raise ConfigError("no training pairs: the train split has no judged query with a relevant product")
    dev_lists = first_stage_lists(pipeline, dev_q, DEV_DEPTH, progress)
    wanted = {p.product_id for p in pairs} | {c.product_id for cs in dev_lists.values() for c in cs[: config.window]}
    texts = {pid: product.embedding_text() for pid, product in pipeline.store.get(sorted(wanted)).items()}
    device = pick_device(config.device)
    evaluator = DevRerankEvaluator(
        dev[1],
        dev_lists,
        texts,
        dev_q,
        config.window,
        config.blends,
        bf16=inference_bf16(device, config.precision),
        progress=progress,
    )
    model = CrossEncoder(
        resolve_model_path(config.base_model),
        num_labels=1,
        max_length=config.max_length,
        device=device,
        local_files_only=True,
    )
    data = Dataset.from_dict(
        {
            "query": [p.query for p in pairs],
            "text": [texts.get(p.product_id, "") for p in pairs],
            "label": [p.label for p in pairs],
        }
    )
    fitted = fit_cross_encoder(
        model,
        data,
        BinaryCrossEntropyLoss(model),
        evaluator,
        config,
        device,
        progress,
        (MODEL_METRIC, "best_blend", BASELINE_METRIC, "rerank_only_ndcg10"),
    )
    final = fitted.best
    decider = decision_evaluator(pipeline, dev, evaluator, texts, config.decision_queries, config.seed, progress)
    out = Path(out_dir)
    if final is None or decider is not evaluator:  # no evaluation kept, or decided on more queries
        with torch.inference_mode():
            decided = decider.scores(model)
        final = decider.decision(decided)
        if rerank_scores is not None:
            keep_as_served(rerank_scores, decider, decided, out, config, device, pipeline.settings.rerank)
    seconds = time.perf_counter() - started
    with staged(out) as folder:
        model.save(str(folder))
        return save_training_card(
            folder,
            "reranker",
            config,
            data_path=data_path,
            data_name=data_name,
            label_source=label_source,
            train=SplitSize(queries=len({p.query_id for p in pairs}), pairs=len(pairs)),
            dev=decider.size(),
            parameters={"steps": fitted.steps, "device": device, "precision": fitted.precision},
            dev_metrics=final,
            promoted_because=f"dev nDCG@10 {final[MODEL_METRIC]:.4f} at blend {final['best_blend']} beats the first "
            f"stage's {final[BASELINE_METRIC]:.4f}",
            refused_because=f"dev nDCG@10 does not beat the first stage's {final[BASELINE_METRIC]:.4f} at any blend; "
            "serving it would make results worse",
            seconds=seconds,
            train_metrics=fitted.metrics,
        )
