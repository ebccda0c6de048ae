"""``search-rerank models``: the model registry and its cards."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.markup import escape
from rich.table import Table

from .common import Command, console, settings_for


@click.group()
def models() -> None:
    """Trained encoders and rerankers in the model registry (settings' models_dir)."""


@models.command("list", cls=Command)
@click.option(
    "--models-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Registry folder (default: settings' models_dir).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the entries and their cards as JSON.")
@click.pass_context
def list_models_command(ctx: click.Context, models_dir: Path | None, as_json: bool) -> None:
    """List the registry's models with their dev metrics; broken cards are listed with what is wrong."""
    from ..core.model_card import list_models

    root = models_dir if models_dir is not None else settings_for(ctx).models_dir
    entries = list_models(root)
    if as_json:
        click.echo(
            json.dumps(
                [
                    {
                        "name": e.name,
                        "path": str(e.path),
                        "problem": e.problem,
                        "card": e.card.model_dump(mode="json") if e.card else None,
                    }
                    for e in entries
                ],
                indent=2,
            )
        )
        return
    if not entries:
        console.print(f"no models in {root}" + ("" if root.is_dir() else " (the folder does not exist)"))
        return
    metrics = {
        e.name: [f"{name}={value:.4f}" for name, value in e.card.dev_metrics.items()]
        for e in entries
        if e.card is not None
    }
    table = Table(title=f"models in {root}")
    for col in ("name", "kind", "created"):
        table.add_column(col, overflow="fold")
    table.add_column("dev metrics", overflow="fold", min_width=max(map(len, sum(metrics.values(), [])), default=0))
    table.add_column("promoted", min_width=len("promoted"))
    for entry in entries:
        card = entry.card
        if card is None:
            table.add_row(entry.name, "", "", f"[red]{escape(entry.problem or '')}[/red]", "")
            continue
        created = card.created.strftime("%Y-%m-%d\n%H:%M %Z")
        table.add_row(entry.name, card.kind, created, "\n".join(metrics[entry.name]), "yes" if card.promoted else "no")
    console.print(table)
