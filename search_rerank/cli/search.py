"""``search-rerank search``: one query through the pipeline, shown as a table or as the service's JSON."""

from __future__ import annotations

import json

import click
from rich.table import Table

from .common import Command, console, settings_for


def _filters(
    category: str | None,
    brand: tuple[str, ...],
    price_min: float | None,
    price_max: float | None,
    attribute: tuple[str, ...],
):
    from ..core.filters import Filters

    attributes: dict[str, list[str]] = {}
    for item in attribute:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise click.BadParameter(f"{item!r}: expected key=value", param_hint="--attribute")
        attributes.setdefault(key, []).append(value)
    # model_validate: the validators turn the flags' strings and lists into the filter's tuples.
    filters = Filters.model_validate(
        {
            "category": category,
            "brand": brand or None,
            "price_min": price_min,
            "price_max": price_max,
            "attributes": attributes,
        }
    )
    return None if filters.is_empty else filters


@click.command(cls=Command)
@click.argument("query")
@click.option("--size", type=click.IntRange(min=1, max=1000), default=10, show_default=True)
@click.option("--category", help="Category path prefix, e.g. 'Furniture > Living Room'.")
@click.option("--brand", multiple=True)
@click.option("--price-min", type=float)
@click.option("--price-max", type=float)
@click.option("--attribute", multiple=True, help="key=value; repeat for more (same key = any of).")
@click.option("--explain", is_flag=True, help="Show each stage's score for each result.")
@click.option("--json", "as_json", is_flag=True, help="Print the service's JSON response instead of a table.")
@click.pass_context
def search(
    ctx: click.Context,
    query: str,
    size: int,
    category: str | None,
    brand: tuple[str, ...],
    price_min: float | None,
    price_max: float | None,
    attribute: tuple[str, ...],
    explain: bool,
    as_json: bool,
) -> None:
    """Search the index and show the results."""
    from ..indexing.indexes import open_pipeline
    from ..serving.api_models import SearchResponse

    pipeline = open_pipeline(settings_for(ctx))
    result = pipeline.run(query, _filters(category, brand, price_min, price_max, attribute), size=size)
    if as_json:
        response = SearchResponse.of(result, offset=0, size=size, explain=explain)
        click.echo(json.dumps(response.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
        return
    table = Table(title=f"{query!r}: {result.total} candidates")
    for col in ("#", "id", "title", "category", "price", "score", "tail"):
        table.add_column(col, overflow="fold")
    for rank, hit in enumerate(result.hits, start=1):
        p = hit.product
        row = [
            str(rank),
            p.id,
            p.title,
            " > ".join(p.category[-2:]),
            f"{p.price:.2f}" if p.price is not None else "",
            f"{hit.candidate.score:.4f}",
            "yes" if hit.long_tail else "",
        ]
        table.add_row(*row)
    console.print(table)
    if explain:
        for rank, hit in enumerate(result.hits, start=1):
            parts = [
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={','.join(v)}" for k, v in hit.explanation().items()
            ]
            console.print(f"{rank:>3}. {hit.product.id}: " + "  ".join(parts))
    for stage, reason in {**result.ranking.skipped, **result.degraded}.items():
        console.print(f"[yellow]{stage}[/yellow]: {reason}")
