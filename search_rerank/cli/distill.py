"""``search-rerank train distill``: a smaller, faster reranker trained on a trained reranker's scores."""

from __future__ import annotations

from pathlib import Path

import click

from . import _Command, _settings, _training_data, console, train


@train.command("distill", cls=_Command)
@click.option("--teacher", required=True, help="The trained reranker to imitate: a registry name or a directory.")
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    required=True,
    help="BEIR/WANDS/ESCI directory whose catalog is in the index: its train queries and dev split.",
)
@click.option("--name", required=True, help="Registry name; the student goes to models_dir/NAME.")
@click.option("--layers", type=click.IntRange(min=1, max=5), default=2, show_default=True, help="Layers kept.")
@click.option("--base-model", default=None, help="Model whose first layers start the student (default: the teacher).")
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=1e-4, show_default=True)
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
    from ..indexing.indexes import open_pipeline
    from ..training.distill import DistillTraining, train_distilled

    data = _training_data(dataset, None, 1, name)
    settings = _settings(ctx)
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
    card = train_distilled(
        open_pipeline(settings),
        teacher_dir,
        teacher_card,
        data.pop("train"),
        data.pop("dev"),
        Path(settings.models_dir) / name,
        config,
        **data,
    )
    m, p = card.dev_metrics, card.parameters
    latency = p["cpu_latency_ms"]
    verdict = "[green]promoted[/]" if card.promoted else "[red]not promoted[/]"
    console.print(
        f"{card.name}: {layers} layers, dev nDCG@10 {m['model_ndcg10']:.4f} vs teacher {m['teacher_model_ndcg10']:.4f} "
        f"(first stage {m['first_stage_ndcg10']:.4f}): {verdict}; serves with {p['runtime']}; "
        f"CPU window {p['cpu_latency_window']} p50 ms: "
        + ", ".join(f"{k} {v['p50_ms']:.0f}" for k, v in latency.items())  # type: ignore[union-attr,index]
    )
