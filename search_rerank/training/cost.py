"""What training and measuring will cost on this machine, before they start: work counted from the dataset,
times rates measured here on the dataset's own texts.

Why: on two CPU cores the same ``onboard`` takes half an hour with its caps and most of a day without them on
a Home Depot-sized catalogue (docs/BENCHMARKS.md, "Home Depot layout at the real sizes"), and minutes on a GPU.
A shop should learn which before it starts, not from a progress bar hours in. Almost all of the time goes to a
few kinds of work, each with one rate on a given machine: the cross-encoder scoring and training pairs, the
bi-encoder training triplets and encoding products, and the first stage retrieving and ranking queries. So an
estimate is those counts divided by those rates, measured for a few seconds with the models the run will use,
at the lengths, batch sizes and precision it will use them at.

The counts are upper bounds where the work depends on what retrieval finds or on early stopping (hard
negatives, dev evaluations, boosting rounds). On the Home Depot layout's capped onboarding the plan said 30
minutes for a run that took 33.7 (docs/TRAINING.md says where the rest went).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from ..backends.encoder import resolve_model_path
from ..core.device import inference_bf16, pick_device, training_precision
from ..core.ranker_features import FEATURES
from ..core.rerank import probabilities
from ..core.settings import Settings
from ..data.dataset import Query
from .encoder import EncoderTraining, freeze_word_embeddings, training_length
from .ranker import RankerTraining, booster_params
from .reranker import RerankerTraining

UNITS = {
    "retrieve": "queries retrieved",
    "rank": "lists ranked",
    "score": "reranker pairs scored",
    "train_pairs": "reranker pairs trained",
    "train_triplets": "encoder triplets trained",
    "encode": "products encoded",
    "boost": "ranker row-rounds boosted",
}
"""Each kind of work, and what its count counts."""
SAMPLE_QUERIES = 16
SAMPLE_TEXTS = 64
BOOSTED_QUERIES, BOOSTED_ROUNDS = 50, 20
"""The random lists the ranker's booster is timed on, and its rounds."""
TIMED_STEPS = 3
"""Training steps timed per model, after one untimed (the first step allocates); the fastest counts."""


@dataclass(frozen=True)
class Work:
    """How much of each kind of work (``UNITS``) a step does."""

    retrieve: float = 0
    rank: float = 0
    score: float = 0
    train_pairs: float = 0
    train_triplets: float = 0
    encode: float = 0
    boost: float = 0

    def __add__(self, other: Work) -> Work:
        return Work(**{f.name: getattr(self, f.name) + getattr(other, f.name) for f in fields(self)})

    def seconds(self, rates: Rates) -> float:
        return sum(getattr(self, unit) / getattr(rates, unit) for unit in UNITS if getattr(self, unit))

    def describe(self) -> str:
        """The kinds of work it does, in the order of ``UNITS``: "12,849 queries retrieved, ..." (none:
        "nothing")."""
        parts = [f"{round(getattr(self, unit)):,} {words}" for unit, words in UNITS.items() if getattr(self, unit)]
        return ", ".join(parts) or "nothing"


@dataclass(frozen=True)
class Rates:
    """Per second, on this machine: each ``UNITS`` kind of work, and the device the models ran on."""

    retrieve: float
    rank: float
    score: float
    train_pairs: float
    train_triplets: float
    encode: float
    boost: float
    device: str

    def to_json(self) -> dict[str, Any]:
        """Per second, rounded; a rate not measured (no encoder trained) as None: JSON has no infinity."""
        return {
            f.name: value if isinstance(value, str) else None if value == float("inf") else round(value, 2)
            for f in fields(self)
            for value in [getattr(self, f.name)]
        }


def per_second(count: int, run: Callable[[], Any], repeat: int = 1) -> float:
    """``count`` units over the fastest of ``repeat`` timed runs of ``run``, after one untimed warm-up."""
    run()
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - started)
    return count / max(best, 1e-9)


def retrieval_rates(pipeline, queries: Sequence[Query], settings: Settings) -> tuple[float, float]:
    """(queries retrieved per second, lists ranked per second) by the first stage as measuring runs it: no
    reranker, at ``settings``' depths."""
    stage = settings.offline().override(rerank={"model": None})
    retrieved: list[Any] = []

    def retrieve() -> None:
        retrieved[:] = [pipeline.retrieve(q.text, None, stage) for q in queries]

    def rank() -> None:
        for one in retrieved:
            pipeline.rank_from(one, stage)

    return per_second(len(queries), retrieve), per_second(len(queries), rank, repeat=2)


def cross_encoder_rates(
    config: RerankerTraining, pairs: Sequence[tuple[str, str]], batch_size: int
) -> tuple[float, float]:
    """(pairs scored per second, pairs trained per second) by the reranker's starting model at its training
    length: scored as measuring scores them (``core.rerank.probabilities`` in batches of ``batch_size``, the
    served precision), trained in the trainer's batches and mixed precision (forward, loss, backward and an
    optimiser step, as the trainer's loop does)."""
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    device = pick_device(config.device)
    model = CrossEncoder(
        resolve_model_path(config.base_model), device=device, max_length=config.max_length, local_files_only=True
    )
    model.eval()
    bf16 = inference_bf16(device, config.precision)
    scored = per_second(len(pairs), lambda: probabilities(model, pairs, batch_size, bf16=bf16))
    network = model.model
    network.train()
    optimiser = torch.optim.AdamW(network.parameters(), lr=1e-9)
    half, fp16 = training_precision(device, config.precision)
    batch = list(pairs[: config.batch_size])
    labels = torch.zeros(len(batch), device=device)

    def step() -> None:
        features = model.tokenizer(
            [q for q, _ in batch],
            [t for _, t in batch],
            truncation=True,
            max_length=config.max_length,
            padding=True,
            return_tensors="pt",
        ).to(device)
        with torch.autocast(device_type=device, dtype=torch.bfloat16 if half else torch.float16, enabled=half or fp16):
            logits = network(**features).logits.reshape(-1)
        torch.nn.functional.binary_cross_entropy_with_logits(logits.float(), labels).backward()
        optimiser.step()
        optimiser.zero_grad()
        if device == "cuda":  # the step's kernels finish before its time is read
            torch.cuda.synchronize()

    trained = per_second(len(batch), step, repeat=TIMED_STEPS)
    return scored, trained


def bi_encoder_rates(
    config: EncoderTraining, queries: Sequence[str], texts: Sequence[str], settings: Settings
) -> tuple[float, float]:
    """(products encoded per second, triplets trained per second) by the encoder the run fine-tunes: encoded at
    the served length and batch size, trained on (query, product, other product) rows at the length and batch
    size the trainer would choose for these texts, with its loss, frozen weights and mixed precision."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    dense = settings.dense
    device = pick_device(config.device)
    model = SentenceTransformer(resolve_model_path(config.base_model), device=device, local_files_only=True)
    model.max_seq_length = dense.max_seq_length
    documents = [dense.document_prefix + text for text in texts]
    encoded = per_second(len(documents), lambda: model.encode(documents, batch_size=dense.batch_size))
    model.max_seq_length = training_length(config, model.tokenizer, documents, dense.max_seq_length)
    if config.freeze_word_embeddings:
        freeze_word_embeddings(model)
    model.train()
    loss = MultipleNegativesRankingLoss(model, scale=config.scale)
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-9)
    half, fp16 = training_precision(device, config.precision)
    rows = max(1, min(config.batch_size, len(documents) // 2))
    asked = [dense.query_prefix + queries[i % len(queries)] for i in range(rows)]
    columns = [asked, documents[:rows], documents[rows : 2 * rows]]

    def step() -> None:
        features = [
            {k: v.to(device) for k, v in model.preprocess(column).items() if isinstance(v, torch.Tensor)}
            for column in columns
        ]
        with torch.autocast(device_type=device, dtype=torch.bfloat16 if half else torch.float16, enabled=half or fp16):
            value = loss(features, None)
        value.backward()
        optimiser.step()
        optimiser.zero_grad()
        if device == "cuda":
            torch.cuda.synchronize()

    trained = per_second(rows, step, repeat=TIMED_STEPS)
    return encoded, trained


def booster_rate(config: RankerTraining, list_length: int, seed: int) -> float:
    """Row-rounds per second of the ranker's LightGBM (``training.ranker.booster_params``) on
    ``BOOSTED_QUERIES`` lists of ``list_length`` random rows as wide as the ranker's, graded at random: a
    round's cost grows with the rows, the features and, lambdarank comparing the rows of a list pairwise,
    with the lists' length, not with what the rows hold."""
    import lightgbm

    rng = np.random.default_rng(seed)
    rows = BOOSTED_QUERIES * list_length
    data = lightgbm.Dataset(
        rng.random((rows, len(FEATURES))), rng.integers(0, 4, size=rows), group=[list_length] * BOOSTED_QUERIES
    )
    data.construct()
    params = booster_params(config)
    return per_second(rows * BOOSTED_ROUNDS, lambda: lightgbm.train(params, data, num_boost_round=BOOSTED_ROUNDS))


def measure_rates(
    pipeline,
    queries: Mapping[str, Query],
    settings: Settings,
    reranker: RerankerTraining | None,
    encoder: EncoderTraining | None,
    ranker: tuple[RankerTraining, int] | None,
    seed: int,
) -> Rates:
    """Every ``UNITS`` rate on this machine, from ``SAMPLE_QUERIES`` of ``queries`` and ``SAMPLE_TEXTS`` of the
    catalogue's products, with the models the trainings start from (``ranker``: its training and the length of
    its lists). ``reranker``, ``encoder`` or ``ranker`` None: no work of that model is counted, and its rates
    are left infinite (its model may not even be at hand)."""
    rng = np.random.default_rng(seed)
    names = sorted(queries)
    sample = [
        queries[names[i]] for i in sorted(rng.choice(len(names), size=min(SAMPLE_QUERIES, len(names)), replace=False))
    ]
    ids = sorted(pipeline.store.popularity())
    ids = [ids[i] for i in sorted(rng.choice(len(ids), size=min(SAMPLE_TEXTS, len(ids)), replace=False))]
    texts = [product.embedding_text() for product in pipeline.store.get(ids).values()]
    retrieve, rank = retrieval_rates(pipeline, sample, settings)
    pairs = [(sample[i % len(sample)].text, text) for i, text in enumerate(texts)]
    score = train_pairs = encode = train_triplets = boost = float("inf")
    if len(texts) < 2:  # nothing to time the models on: no catalogue worth an estimate
        reranker = encoder = None
    if reranker is not None:
        score, train_pairs = cross_encoder_rates(reranker, pairs, settings.rerank.batch_size)
    if encoder is not None:
        encode, train_triplets = bi_encoder_rates(encoder, [q.text for q in sample], texts, settings)
    if ranker is not None:
        boost = booster_rate(*ranker, seed)
    return Rates(retrieve, rank, score, train_pairs, train_triplets, encode, boost, pick_device("auto"))
