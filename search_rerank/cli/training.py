"""``search-rerank train reranker|encoder|distill|ranker``: fine-tune a model (or distil a smaller one from a trained
reranker, or train the learned ranker), select and promote it on dev, write its card."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core.device import PRECISIONS
from ..core.settings import PACKAGED_MINILM, Settings
from .common import Command, console, settings_for

if TYPE_CHECKING:
    from ..core.model_card import ModelCard
    from ..core.pipeline import SearchPipeline


@contextmanager
def training_pipeline(settings: Settings, *, with_ranker: bool = True) -> Iterator[SearchPipeline]:
    """The pipeline a trainer mines its examples with, closed afterwards: ``settings`` without stage deadlines
    (``offline``), so that a busy machine changes how long training takes, never what it learns from. Without
    the ranker (``with_ranker=False``) for training one: it learns from the stages before it."""
    from ..indexing.indexes import open_pipeline

    offline = settings.offline()
    pipeline = open_pipeline(offline if with_ranker else offline.override(ltr={"model": None}))
    try:
        yield pipeline
    finally:
        pipeline.close()


def train_model(
    trainer: Callable[..., ModelCard],
    settings: Settings,
    data: dict[str, Any],
    name: str,
    config: Any,
    *leading: Any,
    with_ranker: bool = True,
    **options: Any,
) -> ModelCard:
    """``trainer`` run on ``data``'s train and dev splits (from ``training_data``, with its provenance for the
    card), mining from the ``training_pipeline``, saving to ``models_dir/NAME``: what every ``train`` command
    and onboarding step does. ``leading`` goes before the splits (the teacher of a distillation)."""
    provenance = {key: value for key, value in data.items() if key not in ("train", "dev")}
    with training_pipeline(settings, with_ranker=with_ranker) as pipeline:
        return trainer(
            pipeline,
            *leading,
            data["train"],
            data["dev"],
            Path(settings.models_dir) / name,
            config,
            **provenance,
            **options,
        )


@click.group()
def train() -> None:
    """Train models from a dataset's train split and/or a click log; select and promote on dev."""


def _training_options(fn):
    """The options both ``train`` commands share: where the labels come from, and the registry name."""
    for option in reversed(
        (
            click.option(
                "--dataset",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="BEIR/WANDS/ESCI/Home Depot directory whose catalog is in the index: its train and dev splits.",
            ),
            click.option(
                "--clicks",
                help="Click log: plain JSON Lines, or UBI NDJSON (a file or a quoted glob). "
                "Labels come from a position-based click model; dev is a stable hash "
                "of the query text.",
            ),
            click.option(
                "--min-impressions",
                type=click.IntRange(min=1),
                default=10,
                show_default=True,
                help="With --clicks: a (query, product) shown fewer times gets no label.",
            ),
            click.option("--name", required=True, help="Registry name; the model goes to models_dir/NAME."),
            click.option(
                "--complete-judgments",
                is_flag=True,
                help="Labels are complete (e.g. generated): unjudged first-stage hits may serve as negatives.",
            ),
            click.option("--base-model", default=None, help="Model to start from (default: the packaged MiniLM)."),
            click.option("--seed", type=int, default=13, show_default=True),
        )
    ):
        fn = option(fn)
    return fn


def training_data(dataset: Path | None, clicks: str | None, min_impressions: int, name: str) -> dict[str, Any]:
    """Train and dev splits from a dataset, a click log or both, with what the model card records of them."""
    from ..core.model_card import NAME_PATTERN

    if not re.fullmatch(NAME_PATTERN, name):
        raise click.BadParameter(f"{name!r}: letters, digits, '.', '_' and '-' only", param_hint="--name")
    if dataset is None and clicks is None:
        raise click.UsageError("give --dataset, --clicks, or both")
    splits: dict[str, tuple[dict, dict]] = {"train": ({}, {}), "dev": ({}, {})}
    provenance: list[tuple[str, str, str]] = []  # (label source, path, name) per source
    if dataset is not None:
        from ..data.loaders import load_dataset

        data = load_dataset(dataset)
        for split in splits:
            queries, qrels = data.split(split)
            splits[split][0].update(queries)
            splits[split][1].update(qrels)
        provenance.append(("judgments", str(dataset), data.name))
    if clicks is not None:
        from ..data.clicks import click_splits, read_clicks

        for split, (queries, qrels) in click_splits(read_clicks(clicks), min_impressions=min_impressions).items():
            splits[split][0].update(queries)
            splits[split][1].update(qrels)
        provenance.append(("clicks", clicks, "clicks"))
    for split, (_, qrels) in splits.items():
        if not any(grade > 0 for judged in qrels.values() for grade in judged.values()):
            raise click.ClickException(
                f"the {split} split has no query with a relevant product"
                + (", try a lower --min-impressions or a longer click log" if clicks else "")
            )
    sources, paths, names = zip(*provenance)
    return {
        "train": splits["train"],
        "dev": splits["dev"],
        "data_path": " + ".join(paths),
        "data_name": " + ".join(names),
        "label_source": "+".join(sources),
    }


precision_option = click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="auto",
    show_default=True,
    help="Training precision. auto: bf16 on a GPU or a CPU with native bf16, fp16 on other GPUs, else fp32.",
)


def verdict(card: ModelCard) -> str:
    """Whether a trained model may serve, coloured for the terminal: every train command ends its line with it."""
    return "[green]promoted[/]" if card.promoted else "[red]not promoted[/]"


@train.command("reranker", cls=Command)
@_training_options
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=3e-5, show_default=True)
@click.option("--max-pairs", type=click.IntRange(min=1), help="Cap on training pairs (sampled).")
@click.option("--eval-steps", type=click.IntRange(min=1), default=200, show_default=True)
@precision_option
@click.pass_context
def train_reranker_command(
    ctx: click.Context,
    dataset: Path | None,
    clicks: str | None,
    min_impressions: int,
    name: str,
    complete_judgments: bool,
    base_model: str | None,
    seed: int,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_pairs: int | None,
    eval_steps: int,
    precision: str,
) -> None:
    """Train a cross-encoder reranker with hard negatives from the current pipeline."""
    from ..training.mining import MiningConfig
    from ..training.reranker import RerankerTraining, train_reranker

    data = training_data(dataset, clicks, min_impressions, name)
    settings = settings_for(ctx)
    config = RerankerTraining(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_pairs=max_pairs,
        eval_steps=eval_steps,
        precision=precision,
        seed=seed,
        mining=MiningConfig(judgments_complete=complete_judgments, seed=seed),
        base_model=PACKAGED_MINILM if base_model is None else base_model,
    )
    card = train_model(train_reranker, settings, data, name, config)
    m = card.dev_metrics
    console.print(
        f"{card.name}: dev nDCG@10 {m['model_ndcg10']:.4f} at blend {m['best_blend']} vs first stage "
        f"{m['first_stage_ndcg10']:.4f}: {verdict(card)} ({card.promotion_reason}); "
        f"{card.training_seconds:.0f} s, {card.pairs_per_second:.1f} pairs/s"
    )


@train.command("encoder", cls=Command)
@_training_options
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option(
    "--batch-size",
    type=click.IntRange(min=2),
    default=32,
    show_default=True,
    help="Rows per batch; every other row's products are a query's in-batch negatives.",
)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=2e-5, show_default=True)
@click.option("--max-triplets", type=click.IntRange(min=1), help="Cap on training triplets (sampled).")
@click.option("--eval-steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--max-evaluations",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Dev evaluations in the run at most (each re-encodes the dev pool); longer runs space them out.",
)
@click.option(
    "--max-seq-length",
    type=click.IntRange(min=8, max=512),
    help="Tokens a training text keeps [default: the --length-quantile of the products' lengths, at most "
    "dense.max_seq_length].",
)
@click.option(
    "--length-quantile",
    type=click.FloatRange(min=0, max=1, min_open=True),
    default=0.95,
    show_default=True,
    help="Without --max-seq-length: cut training texts at this quantile of the products' tokenised lengths.",
)
@click.option(
    "--train-word-embeddings",
    is_flag=True,
    help="Train the token-embedding matrix (half of MiniLM's weights) too; frozen by default: faster, and words "
    "no training query used do not drift.",
)
@precision_option
@click.pass_context
def train_encoder_command(
    ctx: click.Context,
    dataset: Path | None,
    clicks: str | None,
    min_impressions: int,
    name: str,
    complete_judgments: bool,
    base_model: str | None,
    seed: int,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    max_triplets: int | None,
    eval_steps: int,
    max_evaluations: int,
    max_seq_length: int | None,
    length_quantile: float,
    train_word_embeddings: bool,
    precision: str,
) -> None:
    """Fine-tune the bi-encoder with in-batch and hard negatives from the current pipeline.

    Serve it by setting dense.model to NAME and reindexing: an index must be
    queried with the encoder that built it.
    """
    from ..training.encoder import EncoderTraining, train_encoder
    from ..training.mining import MiningConfig

    data = training_data(dataset, clicks, min_impressions, name)
    settings = settings_for(ctx)
    config = EncoderTraining(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_triplets=max_triplets,
        eval_steps=eval_steps,
        max_evaluations=max_evaluations,
        max_seq_length=max_seq_length,
        length_quantile=length_quantile,
        freeze_word_embeddings=not train_word_embeddings,
        precision=precision,
        seed=seed,
        mining=MiningConfig(positives_per_query=4, judgments_complete=complete_judgments, seed=seed),
        base_model=PACKAGED_MINILM if base_model is None else base_model,
    )
    card = train_model(train_encoder, settings, data, name, config)
    m = card.dev_metrics
    console.print(
        f"{card.name}: dense dev nDCG@10 {m['model_ndcg10']:.4f} vs the starting model's "
        f"{m['first_stage_ndcg10']:.4f}: {verdict(card)} ({card.promotion_reason}); "
        f"{card.training_seconds:.0f} s, {card.pairs_per_second:.1f} triplets/s"
    )


@train.command("distill", cls=Command)
@click.option("--teacher", required=True, help="The trained reranker to imitate: a registry name or a directory.")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="BEIR/WANDS/ESCI/Home Depot directory whose catalog is in the index: its train queries and dev split.",
)
@click.option("--name", required=True, help="Registry name; the student goes to models_dir/NAME.")
@click.option("--layers", type=click.IntRange(min=1, max=5), default=4, show_default=True, help="Layers kept.")
@click.option("--base-model", default=None, help="Model whose first layers start the student (default: the teacher).")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=2.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=2e-4, show_default=True)
@click.option("--depth", type=click.IntRange(min=1), default=50, show_default=True, help="Candidates per train query.")
@click.option("--max-pairs", type=click.IntRange(min=1), help="Cap on training pairs (sampled).")
@click.option("--eval-steps", type=click.IntRange(min=1), default=200, show_default=True)
@click.option("--dev-queries", type=click.IntRange(min=1), default=150, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.pass_context
def distill_command(
    ctx: click.Context,
    teacher: str,
    dataset: Path,
    name: str,
    layers: int,
    base_model: str | None,
    epochs: float,
    batch_size: int,
    learning_rate: float,
    depth: int,
    max_pairs: int | None,
    eval_steps: int,
    dev_queries: int,
    seed: int,
) -> None:
    """Distil TEACHER into a student of its first --layers layers; export it to ONNX int8 and time each runtime."""
    from ..core.model_card import resolve_model
    from ..training.distill import DistillTraining, train_distilled

    data = training_data(dataset, None, 1, name)
    settings = settings_for(ctx)
    teacher_dir, teacher_card = resolve_model(teacher, settings.models_dir, "reranker")
    config = DistillTraining(
        layers=layers,
        base_model=base_model,
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        depth=depth,
        max_pairs=max_pairs,
        eval_steps=eval_steps,
        dev_queries=dev_queries,
        seed=seed,
    )
    card = train_model(train_distilled, settings, data, name, config, teacher_dir, teacher_card)
    m, p = card.dev_metrics, card.parameters
    latency = p["cpu_latency_ms"] if isinstance(p["cpu_latency_ms"], dict) else {}
    console.print(
        f"{card.name}: {layers} layers, dev nDCG@10 {m['model_ndcg10']:.4f} vs teacher {m['teacher_model_ndcg10']:.4f} "
        f"(first stage {m['first_stage_ndcg10']:.4f}): {verdict(card)}; serves with {p['runtime']}; "
        f"CPU window {p['cpu_latency_window']} p50 ms: "
        + ", ".join(f"{k} {v['p50_ms']:.0f}" for k, v in latency.items() if isinstance(v, dict))
    )


@train.command("ranker", cls=Command)
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="BEIR/WANDS/ESCI/Home Depot directory whose catalog is in the index: its train and dev splits.",
)
@click.option(
    "--clicks", help="Click log (JSON Lines or UBI NDJSON, a file or a quoted glob), as for `train reranker`."
)
@click.option(
    "--min-impressions",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="With --clicks: a (query, product) shown fewer times gets no label.",
)
@click.option("--name", required=True, help="Registry name; the ranker goes to models_dir/NAME.")
@click.option(
    "--unjudged",
    type=click.Choice(["auto", "zero", "drop"]),
    default="auto",
    show_default=True,
    help="How a candidate nobody judged counts: grade 0, left out, or whichever scores better on dev.",
)
@click.option("--rounds", type=click.IntRange(min=1), default=500, show_default=True, help="Most boosting rounds.")
@click.option(
    "--max-queries",
    type=click.IntRange(min=2),
    help="Train queries to learn from at most (sampled): with a reranker on a CPU each costs 0.15 to 1 s.",
)
@click.option(
    "--stopping",
    type=click.Choice(["cv", "dev"]),
    default="cv",
    show_default=True,
    help="Early stopping on a 5-fold cross-validation over train's queries, or on dev (noisy on a small dev).",
)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=0.05, show_default=True)
@click.option("--num-leaves", type=click.IntRange(min=2), default=7, show_default=True)
@click.option("--min-data-in-leaf", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.pass_context
def train_ranker_command(
    ctx: click.Context,
    dataset: Path | None,
    clicks: str | None,
    min_impressions: int,
    name: str,
    unjudged: str,
    rounds: int,
    max_queries: int | None,
    stopping: str,
    learning_rate: float,
    num_leaves: int,
    min_data_in_leaf: int,
    seed: int,
) -> None:
    """Train the learned ranker (LightGBM LambdaMART) on the train split's candidates, early-stopped by cross-validation.

    Promoted only when the pipeline with it beats the best linear blend on dev.
    Serve it by setting ltr.model to NAME.
    """
    from ..training.ranker import RankerTraining, train_ranker

    data = training_data(dataset, clicks, min_impressions, name)
    settings = settings_for(ctx)
    config = RankerTraining(
        unjudged=unjudged,  # type: ignore[arg-type]  # click.Choice checked it
        max_rounds=rounds,
        max_queries=max_queries,
        stopping=stopping,  # type: ignore[arg-type]  # click.Choice checked it
        learning_rate=learning_rate,
        num_leaves=num_leaves,
        min_data_in_leaf=min_data_in_leaf,
        seed=seed,
    )
    card = train_model(train_ranker, settings, data, name, config, with_ranker=False, progress=True)
    m, p = card.dev_metrics, card.parameters
    console.print(
        f"{card.name}: dev nDCG@10 {m['model_ndcg10']:.4f} vs the best linear blend's "
        f"{m['first_stage_ndcg10']:.4f}: {verdict(card)} ({card.promotion_reason}); unjudged candidates: "
        f"{p['unjudged_chosen']}; {card.training_seconds:.0f} s"
    )
