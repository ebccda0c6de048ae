"""The ``search-rerank`` command: generate, index, search, evaluate, tune, compare, judgments,
interleaving-report, reindex, models, serve.

Every command builds the one settings object (``--settings`` file, then
``SEARCH_RERANK_*`` variables, then these flags), and turns the package's own
errors into a one-line message with exit status 1, never a stack trace.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from ..core.errors import SearchRerankError
from ..core.settings import Settings, load_settings

console = Console()


class _Command(click.Command):
    """Shows SearchRerankError (bad row, bad setting, missing index) as a message, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except SearchRerankError as exc:
            raise click.ClickException(str(exc)) from exc
        except ValueError as exc:  # pydantic validation of flags and filters
            raise click.ClickException(str(exc)) from exc


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    obj = ctx.obj
    data = {k: v for k, v in overrides.items() if v is not None}
    if obj["index_dir"] is not None:
        data["index_dir"] = obj["index_dir"]
    return load_settings(obj["settings"], **data)


@click.group()
@click.option(
    "--settings",
    "settings_file",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="SEARCH_RERANK_SETTINGS",
    help="TOML or JSON settings file.",
)
@click.option(
    "--index-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Index directory (default: settings' index_dir).",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at debug level.")
@click.pass_context
def main(ctx: click.Context, settings_file: Path | None, index_dir: Path | None, verbose: bool) -> None:
    """Hybrid BM25 + dense search with cross-encoder reranking and a long-tail boost."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx.obj = {"settings": settings_file, "index_dir": index_dir}


@main.command(cls=_Command)
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
def generate(
    out: Path, products: int, queries: int, seed: int, heldout_types: int, pooled: int, pool_depth: int, workers: int
) -> None:
    """Write a synthetic catalog with complete graded judgments (BEIR layout)."""
    from ..data.generate import GeneratorConfig
    from ..data.generate import generate as run

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
        ),
    )
    console.print(
        f"wrote {manifest.products} products and {sum(manifest.queries.values())} queries "
        f"({manifest.queries}) to {out}; held-out types: {', '.join(manifest.heldout_types)}"
    )


def _build_options(fn):
    """The options ``index`` and ``reindex`` share: what to read, and how to write the new version."""
    for option in reversed(
        (
            click.option("--skip-bad", is_flag=True, help="Skip and count malformed rows instead of stopping."),
            click.option(
                "--incremental",
                is_flag=True,
                help="Upsert into the served version in place instead of building a new one.",
            ),
            click.option(
                "--delete",
                "delete_file",
                type=click.Path(exists=True, dir_okay=False, path_type=Path),
                help="With --incremental: a file of product ids to remove, one per line.",
            ),
            click.option("--no-dense", is_flag=True, help="Build the lexical index only."),
            click.option(
                "--keep",
                type=click.IntRange(min=0),
                default=2,
                show_default=True,
                help="Old versions to keep for --rollback.",
            ),
            click.option(
                "--batch-size",
                type=click.IntRange(min=1),
                default=2048,
                show_default=True,
                help="Products written to every index per step.",
            ),
        )
    ):
        fn = option(fn)
    return fn


def _index_catalog(
    ctx: click.Context,
    catalog: Path,
    skip_bad: bool,
    incremental: bool,
    delete_file: Path | None,
    no_dense: bool,
    keep: int,
    batch_size: int,
) -> None:
    from ..data.loaders import LoadStats, iter_catalog
    from ..indexing.indexes import build_index, update_index

    settings = _settings(ctx, **({"dense": {"enabled": False}} if no_dense else {}))
    stats = LoadStats()
    products = iter_catalog(catalog, skip_bad=skip_bad, stats=stats)
    if incremental:
        deletions = delete_file.read_text(encoding="utf-8").split() if delete_file else []
        report = update_index(products, deletions, settings, batch_size=batch_size)
    else:
        if delete_file is not None:
            raise click.UsageError("--delete needs --incremental")
        report = build_index(products, settings, batch_size=batch_size, keep=keep)
    rates = ", ".join(f"{part} {rate:,.0f} docs/s" for part, rate in report.docs_per_second().items())
    version = f"version {report.version} of " if report.version else ""
    console.print(
        f"indexed {report.products} products into {version}{settings.index_dir} "
        f"in {report.seconds.get('total', 0):.1f}s ({rates})"
    )
    if report.lexical_index is not None:
        console.print(f"alias {settings.lexical.index!r} now points at {report.lexical_index}")
    if report.previous is not None:
        console.print(f"serving version {report.version} (was {report.previous})")
    if report.pruned:
        console.print(f"deleted old versions: {', '.join(report.pruned)}")
    if report.deleted:
        console.print(f"deleted {report.deleted} products")
    if stats.skipped:
        console.print(f"[yellow]skipped {stats.skipped} bad rows[/yellow], first: " + "; ".join(stats.errors[:3]))


@main.command(cls=_Command)
@click.option(
    "--catalog",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="A .jsonl/.csv/.tsv catalog or a BEIR/WANDS/ESCI dataset directory.",
)
@_build_options
@click.pass_context
def index(ctx: click.Context, **options: Any) -> None:
    """Index a catalog into the lexical and dense indexes (a new version, served once it is checked)."""
    _index_catalog(ctx, **options)


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
    filters = Filters(
        category=category, brand=brand or None, price_min=price_min, price_max=price_max, attributes=attributes
    )
    return None if filters.is_empty else filters


@main.command(cls=_Command)
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

    pipeline = open_pipeline(_settings(ctx))
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


@main.command(cls=_Command)
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Also write the report here.")
@click.option("--by-kind", is_flag=True, help="Also show nDCG@10 and long-tail share per query kind.")
@click.pass_context
def evaluate(ctx: click.Context, dataset: Path, split: str, json_out: Path | None, by_kind: bool) -> None:
    """Score every configuration on a dataset split (nDCG@10, R@100, MRR@10, long-tail metrics)."""
    from ..data.loaders import load_dataset
    from ..evaluation.evaluate import evaluate as run
    from ..indexing.indexes import open_pipeline

    data = load_dataset(dataset)
    queries, qrels = data.split(split)
    pipeline = open_pipeline(_settings(ctx))
    report = run(pipeline, queries, qrels, dataset=str(dataset), split=split)
    console.print(report_table(report))
    if by_kind:
        console.print(kind_table(report))
        console.print(kind_table(report, "lt_share@10"))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(report.to_json(), indent=2) + "\n", encoding="utf-8")


def report_table(report) -> Table:
    table = Table(title=f"{report.dataset} [{report.split}]: {report.queries} queries, {report.catalog_size} products")
    names = list(report.rows[0].metrics) if report.rows else []
    table.add_column("configuration")
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("status")
    for row in report.rows:
        table.add_row(row.config, *(f"{row.metrics[n]:.4f}" for n in names), row.status)
    return table


def kind_table(report, measure: str = "nDCG@10") -> Table:
    kinds = sorted({k for row in report.rows for k in row.by_kind})
    table = Table(title=f"{measure} by query kind")
    table.add_column("configuration")
    for kind in kinds:
        table.add_column(kind, justify="right")
    for row in report.rows:
        table.add_row(row.config, *(f"{row.by_kind.get(k, {}).get(measure, 0):.4f}" for k in kinds))
    return table


@main.command(cls=_Command)
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="dev", show_default=True, help="Tune on this split; keep test for `compare`.")
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Folder for best.toml, report.html and tuning.json.",
)
@click.option("--trials", type=click.IntRange(min=1), default=50, show_default=True)
@click.option("--seed", type=int, default=13, show_default=True)
@click.option(
    "--min-lt-share",
    type=click.FloatRange(0, 1),
    help="Maximise nDCG@10 with at least this long-tail share of the top 10.",
)
@click.option(
    "--max-ndcg-cost",
    type=click.FloatRange(0, 1),
    help="Maximise long-tail share with nDCG@10 at most this far below the current settings'.",
)
@click.option(
    "--max-candidates",
    type=click.IntRange(min=10),
    default=100,
    show_default=True,
    help="Largest candidates per leg searched; each query is retrieved once at this depth.",
)
@click.option(
    "--exposure",
    type=click.Choice(["lt_share@10", "tail@10"]),
    default="lt_share@10",
    show_default=True,
    help="The exposure objective: share of the top 10 outside the head, or in the tail tier only (below "
    "head and torso; room to grow when most of the catalog is long tail).",
)
@click.option(
    "--longtail-methods",
    default="off,boost,xquad",
    show_default=True,
    help="Long-tail stages to search, comma separated.",
)
@click.option(
    "--longtail-targets",
    default="long_tail",
    show_default=True,
    help="What the long-tail stage may favour, comma separated: long_tail (below the head, graded), "
    "tail (the tail tier, alike).",
)
@click.option(
    "--click-popularity",
    "click_logs",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="UBI log(s): popularity tiers from clicks instead of catalog signals.",
)
@click.pass_context
def tune(
    ctx: click.Context,
    dataset: Path,
    split: str,
    out: Path,
    trials: int,
    seed: int,
    min_lt_share: float | None,
    max_ndcg_cost: float | None,
    exposure: str,
    max_candidates: int,
    longtail_methods: str,
    longtail_targets: str,
    click_logs: tuple[Path, ...],
) -> None:
    """Search fusion, candidates, rerank window and long-tail settings on a split; write the best as TOML.

    Without a constraint the search has two objectives (nDCG@10, long-tail
    share) and best.toml gets the Pareto front's highest-nDCG point; the
    report shows the whole front. Serve the result with
    SEARCH_RERANK_SETTINGS=OUT/best.toml.
    """
    from ..data.clicks import read_ubi
    from ..data.loaders import load_dataset
    from ..evaluation.exposure import click_popularity
    from ..evaluation.tune import Goal, SearchSpace, write_settings
    from ..evaluation.tune import tune as run
    from ..evaluation.tuning_report import write_report
    from ..indexing.indexes import open_pipeline

    data = load_dataset(dataset)
    queries, qrels = data.split(split)
    pipeline = open_pipeline(_settings(ctx))
    popularity = None
    if click_logs:
        popularity = click_popularity(read_ubi(*click_logs), (p.id for p in pipeline.store))
    space = SearchSpace(
        max_candidates=max_candidates,
        longtail_methods=tuple(m.strip() for m in longtail_methods.split(",") if m.strip()),
        longtail_targets=tuple(t.strip() for t in longtail_targets.split(",") if t.strip()),
    )
    goal = Goal(min_lt_share=min_lt_share, max_ndcg_cost=max_ndcg_cost, exposure=exposure)
    try:
        result = run(
            pipeline,
            queries,
            qrels,
            trials=trials,
            seed=seed,
            goal=goal,
            space=space,
            popularity=popularity,
            dataset=str(dataset),
            split=split,
            progress=True,
        )
    finally:
        pipeline.close()
    best_file = write_settings(
        out / "best.toml",
        result.best["sections"],
        ctx.obj["settings"],
        comment=f"search-rerank tune: trial {result.best['number']} of {trials} on "
        f"{dataset} [{split}], mode {result.mode}, seed {seed}",
    )
    page, _ = write_report(result.to_json(), out)
    table = Table(title=f"{dataset} [{split}]: {result.queries} queries, {trials} trials, mode {result.mode}")
    for col in ("metric", "current", "best", "delta"):
        table.add_column(col, justify="right" if col != "metric" else "left")
    for name, value in result.best["metrics"].items():
        before = result.baseline["metrics"][name]
        table.add_row(name, f"{before:.4f}", f"{value:.4f}", f"{value - before:+.4f}")
    console.print(table)
    sig = result.significance
    console.print(
        f"nDCG@10 delta {sig['mean_delta']:+.4f}, {sig['confidence']:.0%} CI [{sig['ci_low']:+.4f}, "
        f"{sig['ci_high']:+.4f}], p = {sig['p_value']:.4f} (on the tuning split: optimistic)"
    )
    console.print(f"wrote {best_file} and {page}; Pareto front: {len(result.pareto)} trials")


@main.command(cls=_Command)
@click.argument("a", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("b", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="test", show_default=True)
@click.option("--measure", default="nDCG@10", show_default=True, help="nDCG@10, R@100 or RR@10.")
@click.option(
    "--movers",
    type=click.IntRange(min=0),
    default=5,
    show_default=True,
    help="How many of the queries that moved most to show.",
)
@click.option("--show", type=click.IntRange(min=1), default=5, show_default=True, help="Top results shown per side.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the comparison as JSON.")
@click.pass_context
def compare(
    ctx: click.Context,
    a: Path,
    b: Path,
    dataset: Path,
    split: str,
    measure: str,
    movers: int,
    show: int,
    seed: int,
    as_json: bool,
) -> None:
    """Compare two settings files (.toml/.json) or TREC runs on a split: deltas, significance, movers."""
    from ..data.loaders import load_dataset
    from ..evaluation.compare import compare as run
    from ..evaluation.compare import load_side, settings_runs

    data = load_dataset(dataset)
    queries, qrels = data.split(split)
    sides = [load_side(path, ctx.obj["index_dir"]) for path in (a, b)]
    configured = [i for i, side in enumerate(sides) if isinstance(side, Settings)]
    products: dict = {}
    if configured:
        ranked, products = settings_runs([sides[i] for i in configured], queries, qrels)
        for i, run_ in zip(configured, ranked):
            sides[i] = run_
    result = run(
        sides[0],
        sides[1],
        qrels,
        queries,
        names=(str(a), str(b)),
        measure=measure,
        movers=movers,
        show=show,
        seed=seed,
        products=products,
    )
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    table = Table(title=f"{dataset} [{split}]: {len(result.per_query)} queries")
    for col in ("metric", "A", "B", "delta"):
        table.add_column(col, justify="left" if col == "metric" else "right")
    for name in result.means[result.a]:
        va, vb = result.means[result.a][name], result.means[result.b][name]
        table.add_row(name, f"{va:.4f}", f"{vb:.4f}", f"{vb - va:+.4f}")
    console.print(f"A = {escape(result.a)}\nB = {escape(result.b)}")
    console.print(table)
    sig = result.significance
    verdict = "[green]significant[/]" if sig["p_value"] < 0.05 else "[yellow]not significant[/]"
    console.print(
        f"{measure} B - A: {sig['mean_delta']:+.4f}, {sig['confidence']:.0%} CI [{sig['ci_low']:+.4f}, "
        f"{sig['ci_high']:+.4f}], randomisation p = {sig['p_value']:.4f}: {verdict}; "
        f"B wins {sig['wins']}, loses {sig['losses']}, ties {sig['ties']}"
    )
    for row in result.movers:
        moved = Table(
            title=f"{escape(row['query'])} ({row['qid']}, {row['kind']}): {measure} "
            f"{row['a']:.3f} -> {row['b']:.3f} ({row['delta']:+.3f})"
        )
        moved.add_column("#", justify="right")
        moved.add_column("A", overflow="fold")
        moved.add_column("B", overflow="fold")
        for rank in range(max(len(row["a_top"]), len(row["b_top"]))):
            moved.add_row(
                str(rank + 1),
                *(_shown(side[rank]) if rank < len(side) else "" for side in (row["a_top"], row["b_top"])),
            )
        console.print(moved)


def _shown(hit: dict) -> str:
    grade = "unjudged" if hit["grade"] is None else f"grade {hit['grade']}"
    title = f" {escape(hit['title'])}" if hit.get("title") else ""
    return f"{escape(hit['product_id'])}{title} [dim]({grade})[/dim]"


@main.command("interleaving-report", cls=_Command)
@click.argument("logs", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the significance test.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def interleaving_report(logs: tuple[Path, ...], seed: int, as_json: bool) -> None:
    """Which ranker won a team-draft interleaving test, from UBI logs whose impressions carry
    event_attributes.team ("A" or "B")."""
    from ..evaluation.interleaving import credit, read_interleaved_ubi, summarise

    impressions = read_interleaved_ubi(*logs)
    if not impressions:
        raise click.ClickException(
            f"no impression in {', '.join(map(str, logs))} carries event_attributes.team: "
            "was interleaving switched on when these were logged?"
        )
    result = summarise([credit(teams, clicked) for teams, clicked in impressions], seed=seed)
    if as_json:
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    table = Table(title=f"team-draft interleaving: {result.impressions} searches")
    for col in ("A wins", "B wins", "ties", "preference for B", "p"):
        table.add_column(col, justify="right")
    table.add_row(
        str(result.a_wins), str(result.b_wins), str(result.ties), f"{result.preference_b:+.3f}", f"{result.p_value:.4f}"
    )
    console.print(table)
    if result.p_value < 0.05:
        console.print(f"[green]{'B' if result.preference_b > 0 else 'A'} is preferred[/] (p < 0.05)")
    else:
        console.print("[yellow]no significant preference yet[/]: keep collecting")


@main.group()
def judgments() -> None:
    """Relevance judgments: TREC and BEIR qrels, SRW JSON, CSV, and click labels from UBI logs."""


@judgments.command("convert", cls=_Command)
@click.argument("source", metavar="IN", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("target", metavar="OUT", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "from_fmt", type=click.Choice(["trec", "beir", "csv", "srw", "ubi"]), required=True)
@click.option("--to", "to_fmt", type=click.Choice(["trec", "beir", "csv", "srw"]), required=True)
@click.option(
    "--ratings",
    default="100=3,10=2,1=1,0=0",
    show_default=True,
    help="SRW rating = grade map (ESCI's E/S/C/I as 100/10/1/0 to gains 3/2/1/0).",
)
@click.option(
    "--dataset",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Dataset whose query ids name text-keyed queries, and whose texts fill id-keyed ones.",
)
@click.option(
    "--min-impressions",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="ubi: impressions a (query, product) pair needs to be judged.",
)
def convert_judgments(
    source: Path, target: Path, from_fmt: str, to_fmt: str, ratings: str, dataset: Path | None, min_impressions: int
) -> None:
    """Convert judgments IN (--from) to OUT (--to)."""
    from ..data.judgments import parse_ratings, read_judgments, write_judgments
    from ..data.loaders import load_dataset

    rating_map = parse_ratings(ratings)
    texts = {qid: q.text for qid, q in load_dataset(dataset).queries.items()} if dataset is not None else None
    read = read_judgments(source, from_fmt, ratings=rating_map, dataset_texts=texts, min_impressions=min_impressions)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_judgments(read, target, to_fmt, ratings=rating_map)
    console.print(f"wrote {sum(map(len, read.qrels.values()))} judgments of {len(read.qrels)} queries to {target}")


@main.command(cls=_Command)
@click.option(
    "--catalog",
    type=click.Path(exists=True, path_type=Path),
    help="A .jsonl/.csv/.tsv catalog or a BEIR/WANDS/ESCI dataset directory.",
)
@_build_options
@click.option("--rollback", is_flag=True, help="Serve the previous version (and its server index) again instead.")
@click.pass_context
def reindex(ctx: click.Context, catalog: Path | None, rollback: bool, **options: Any) -> None:
    """Rebuild every index with no downtime, or roll back to the previous build.

    The catalog goes into a new version: a new timestamped server index (with
    an Elasticsearch/OpenSearch lexical leg) and a new dense index and product
    store under index_dir/versions/. It is checked (document counts, a search)
    before the alias and the version pointer move to it together. Killed at
    any point, it leaves the served version as it was; run it again.
    """
    if rollback:
        if catalog is not None or options["incremental"]:
            raise click.UsageError("--rollback takes no --catalog or --incremental")
        from ..indexing.indexes import read_manifest, rollback_index

        settings = _settings(ctx)
        previous, current = rollback_index(settings)
        console.print(f"serving version {current} of {settings.index_dir} again (was {previous})")
        if settings.lexical.backend != "tantivy":
            console.print(f"alias {settings.lexical.index!r} points at {read_manifest(settings)['lexical_index']}")
        return
    if catalog is None:
        raise click.UsageError("--catalog is required (or --rollback)")
    _index_catalog(ctx, catalog, **options)


@main.group()
def train() -> None:
    """Train models from a dataset's train split and/or a click log; select and promote on dev."""


def _training_options(fn):
    """The options both ``train`` commands share: where the labels come from, and the registry name."""
    for option in reversed(
        (
            click.option(
                "--dataset",
                type=click.Path(exists=True, file_okay=False, path_type=Path),
                help="BEIR/WANDS/ESCI directory whose catalog is in the index: its train and dev splits.",
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


def _training_data(dataset: Path | None, clicks: str | None, min_impressions: int, name: str) -> dict[str, Any]:
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


@train.command("reranker", cls=_Command)
@_training_options
@click.option("--epochs", type=click.FloatRange(min=0.01), default=1.0, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True)
@click.option("--learning-rate", type=click.FloatRange(min=0, min_open=True), default=3e-5, show_default=True)
@click.option("--max-pairs", type=click.IntRange(min=1), help="Cap on training pairs (sampled).")
@click.option("--eval-steps", type=click.IntRange(min=1), default=200, show_default=True)
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
) -> None:
    """Train a cross-encoder reranker with hard negatives from the current pipeline."""
    from ..indexing.indexes import open_pipeline
    from ..training.mining import MiningConfig
    from ..training.reranker import RerankerTraining, train_reranker

    data = _training_data(dataset, clicks, min_impressions, name)
    settings = _settings(ctx)
    config = RerankerTraining(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_pairs=max_pairs,
        eval_steps=eval_steps,
        seed=seed,
        mining=MiningConfig(judgments_complete=complete_judgments, seed=seed),
        **({"base_model": base_model} if base_model else {}),
    )
    card = train_reranker(
        open_pipeline(settings), data.pop("train"), data.pop("dev"), Path(settings.models_dir) / name, config, **data
    )
    m = card.dev_metrics
    verdict = "[green]promoted[/]" if card.promoted else "[red]not promoted[/]"
    console.print(
        f"{card.name}: dev nDCG@10 {m['model_ndcg10']:.4f} at blend {m['best_blend']} vs first stage "
        f"{m['first_stage_ndcg10']:.4f}: {verdict} ({card.promotion_reason}); "
        f"{card.training_seconds:.0f} s, {card.pairs_per_second:.1f} pairs/s"
    )


@train.command("encoder", cls=_Command)
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
) -> None:
    """Fine-tune the bi-encoder with in-batch and hard negatives from the current pipeline.

    Serve it by setting dense.model to NAME and reindexing: an index must be
    queried with the encoder that built it.
    """
    from ..indexing.indexes import open_pipeline
    from ..training.encoder import EncoderTraining, train_encoder
    from ..training.mining import MiningConfig

    data = _training_data(dataset, clicks, min_impressions, name)
    settings = _settings(ctx)
    config = EncoderTraining(
        epochs=epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_triplets=max_triplets,
        eval_steps=eval_steps,
        seed=seed,
        mining=MiningConfig(positives_per_query=4, judgments_complete=complete_judgments, seed=seed),
        **({"base_model": base_model} if base_model else {}),
    )
    card = train_encoder(
        open_pipeline(settings), data.pop("train"), data.pop("dev"), Path(settings.models_dir) / name, config, **data
    )
    m = card.dev_metrics
    verdict = "[green]promoted[/]" if card.promoted else "[red]not promoted[/]"
    console.print(
        f"{card.name}: dense dev nDCG@10 {m['model_ndcg10']:.4f} vs the starting model's "
        f"{m['first_stage_ndcg10']:.4f}: {verdict} ({card.promotion_reason}); "
        f"{card.training_seconds:.0f} s, {card.pairs_per_second:.1f} triplets/s"
    )


@main.group()
def models() -> None:
    """Trained encoders and rerankers in the model registry (settings' models_dir)."""


@models.command("list", cls=_Command)
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

    root = models_dir if models_dir is not None else _settings(ctx).models_dir
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


@main.command(cls=_Command)
@click.option("--host", help="Bind address (default: settings' service.host).")
@click.option("--port", type=click.IntRange(1, 65535), help="Port (default: settings' service.port).")
@click.option("--workers", type=click.IntRange(min=1), help="gunicorn workers.")
@click.pass_context
def serve(ctx: click.Context, host: str | None, port: int | None, workers: int | None) -> None:
    """Serve the HTTP API under gunicorn (one index and model copy per worker)."""
    settings = _settings(ctx)
    from ..indexing.indexes import read_manifest

    read_manifest(settings)  # fail here, with the fix, rather than in every worker
    env = dict(os.environ)
    env["SEARCH_RERANK_INDEX_DIR"] = str(Path(settings.index_dir).resolve())
    if ctx.obj["settings"] is not None:
        env["SEARCH_RERANK_SETTINGS"] = str(Path(ctx.obj["settings"]).resolve())
    for key, value in (("HOST", host), ("PORT", port), ("WORKERS", workers)):
        if value is not None:
            env[f"SEARCH_RERANK_SERVICE__{key}"] = str(value)
    args = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "python:search_rerank.serving.gunicorn_conf",
        "search_rerank.serving:create_app()",
    ]
    console.print(
        f"serving {settings.index_dir} on http://{host or settings.service.host}:{port or settings.service.port}"
    )
    os.execvpe(args[0], args, env)


GROUP_OPTIONS = {"--settings": 2, "--index-dir": 2, "-v": 1, "--verbose": 1}


def run_as_script(command: str, argv: list[str], prog_name: str) -> None:
    """Run one subcommand from a script in scripts/ (for cron jobs and checkouts without the entry point).

    Leading ``--settings``, ``--index-dir`` and ``-v`` go to the command group,
    as they would before the subcommand on the ``search-rerank`` command line.
    """
    args, group = list(argv), []
    while args and args[0] in GROUP_OPTIONS:
        taken = GROUP_OPTIONS[args[0]]
        group, args = group + args[:taken], args[taken:]
    main([*group, command, *args], prog_name=prog_name)


from .demo import demo as demo_command  # noqa: E402  (its own module; registered last, once ``main`` exists)

main.add_command(demo_command)
