"""``search-rerank generate``: a synthetic catalog with complete judgments, for tests and benchmarks."""

from __future__ import annotations

from pathlib import Path

import click

from .common import Command, console


@click.command(cls=Command)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--products", type=click.IntRange(min=1), default=50_000, show_default=True)
@click.option("--queries", type=click.IntRange(min=1), default=3_000, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option("--heldout-types", type=click.IntRange(min=0), default=5, show_default=True)
@click.option(
    "--pooled",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also write pooled/: this many BM25-pooled judgments per query, the rest unjudged.",
)
@click.option(
    "--pool-depth",
    type=click.IntRange(min=1),
    default=20,
    show_default=True,
    help="Lexical hits the pooled judgments are drawn from.",
)
@click.option("--workers", type=click.IntRange(min=0), default=0, help="Processes (0 = one per core).")
@click.option(
    "--profile",
    type=click.Choice(["easy", "hard"]),
    default="easy",
    show_default=True,
    help="hard: title-only hardware listings (units, model numbers), few popularity signals, sparse pooled "
    "labels in qrels/ (complete ones in complete/), a dense leg weaker than BM25.",
)
@click.option(
    "--shoppers",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Also write shoppers/: this many simulated shoppers with hidden tastes, their UBI log and per-shopper "
    "judgments of held-out searches (for evaluate/tune --personalised).",
)
def generate(
    out: Path,
    products: int,
    queries: int,
    seed: int,
    heldout_types: int,
    pooled: int,
    pool_depth: int,
    workers: int,
    profile: str,
    shoppers: int,
) -> None:
    """Write a synthetic catalog with complete graded judgments (BEIR layout)."""
    from ..data.generate import GeneratorConfig
    from ..data.generate import generate as run
    from ..data.shoppers import ShopperConfig

    manifest = run(
        out,
        GeneratorConfig(
            products=products,
            queries=queries,
            seed=seed,
            heldout_types=heldout_types,
            pooled=pooled,
            pool_depth=pool_depth,
            workers=workers,
            profile=profile,
        ),
        shoppers=ShopperConfig(shoppers=shoppers) if shoppers else None,
    )
    console.print(
        f"wrote {manifest.products} products and {sum(manifest.queries.values())} queries "
        f"({manifest.queries}) to {out}; held-out types: {', '.join(manifest.heldout_types)}"
    )
    if manifest.shoppers is not None:
        console.print(
            f"simulated shoppers {manifest.shoppers.shoppers}, held-out searches {manifest.shoppers.heldout_queries}"
            f" in {out / 'shoppers'}"
        )
