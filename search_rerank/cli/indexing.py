"""``search-rerank index`` and ``reindex``: build a new index version, update one in place, or roll back."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import click

from .common import Command, console, settings_for

SHOWN_FIELDS = 20  # the fields kept for display that `index` names, most held first (a catalog may have thousands)


def build_options(fn):
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


def index_catalog(
    ctx: click.Context,
    catalog: Path,
    skip_bad: bool,
    incremental: bool,
    delete_file: Path | None,
    no_dense: bool,
    keep: int,
    batch_size: int,
) -> None:
    from ..data.loaders import LoadStats, catalog_fields, iter_catalog
    from ..data.text_files import text_lines
    from ..indexing.indexes import build_index, update_index

    settings = settings_for(ctx, **({"dense": {"enabled": False}} if no_dense else {}))
    stats = LoadStats()
    products = iter_catalog(catalog, skip_bad=skip_bad, stats=stats)
    fields = None
    if incremental:
        deletions = [line.strip() for _, line in text_lines(delete_file) if line.strip()] if delete_file else []
        report = update_index(products, deletions, settings, batch_size=batch_size)
    else:
        if delete_file is not None:
            raise click.UsageError("--delete needs --incremental")
        fields = catalog_fields(catalog, settings.lexical.catalog_field_types, skip_bad=skip_bad)
        report = build_index(products, settings, batch_size=batch_size, keep=keep, catalog=fields)
    rates = ", ".join(f"{part} {rate:,.0f} docs/s" for part, rate in report.docs_per_second().items())
    version = f"version {report.version} of " if report.version else ""
    console.print(
        f"indexed {report.products} products into {version}{settings.index_dir} "
        f"in {report.seconds.get('total', 0):.1f}s ({rates})"
    )
    if report.stored is not None and report.stored < report.products:
        repeated = report.products - report.stored
        console.print(
            f"[yellow]{report.products} records made {report.stored} products: {repeated} repeated an id already "
            "read, and the last record of each id is the one indexed[/yellow]"
        )
    if report.lexical_index is not None:
        console.print(f"alias {settings.lexical.index!r} now points at {report.lexical_index}")
    if report.previous is not None:
        console.print(f"serving version {report.version} (was {report.previous})")
    if report.pruned:
        console.print(f"deleted old versions: {', '.join(report.pruned)}")
    if report.deleted:
        console.print(f"deleted {report.deleted} products")
    if report.not_found:
        shown = ", ".join(map(repr, report.not_found[:10])) + (" ..." if len(report.not_found) > 10 else "")
        console.print(f"warning: {len(report.not_found)} id(s) to delete are in no product of the index: {shown}")
    if stats.extra_fields:
        kept = _by_field(stats.extra_fields)
        console.print(f"fields the product does not read, kept for hits' _source (products holding each): {kept}")
    if fields:
        typed = _first_of([f"{name} ({kind})" for name, kind in fields.types.items()])
        console.print(
            f"filtered, sorted and faceted as their values read: {typed} "
            "(lexical.catalog_field_types sets a type read wrong)"
        )
    if report.not_indexed:
        console.print(
            f"[yellow]values kept for display only, not filtered, sorted or faceted (values of each): {_by_field(report.not_indexed)}: "
            "a field the index does not type (new in an --incremental update: a full build types it) or a value "
            "not of its field's type[/yellow]"
        )
    if report.sorted_by_first:
        console.print(
            "[yellow]fields of several values sorted by the first of their values (products of each): "
            f"{_by_field(report.sorted_by_first)}: "
            "the index was built with one value of each (a full build sorts by each product's least or "
            "greatest)[/yellow]"
        )
    if stats.skipped:
        console.print(f"[yellow]skipped {stats.skipped} bad rows[/yellow], first: " + "; ".join(stats.errors[:3]))


def _by_field(counts: Counter[str]) -> str:
    """``counts`` by field, the most first, as :func:`_first_of` lists them (``stock (3), colour (1)``)."""
    return _first_of([f"{name} ({count:,})" for name, count in counts.most_common()])


def _first_of(entries: list[str]) -> str:
    """The first :data:`SHOWN_FIELDS` of ``entries``, and how many more there are: a catalog may hold thousands."""
    more = len(entries) - SHOWN_FIELDS
    return ", ".join(entries[:SHOWN_FIELDS]) + (f" and {more:,} more" if more > 0 else "")


@click.command(cls=Command)
@click.option(
    "--catalog",
    type=click.Path(exists=True, path_type=Path),
    required=True,
    help="A .jsonl/.ndjson/.csv/.tsv catalog (or .jsonl.gz ...: gzip is read) or a BEIR/WANDS/ESCI dataset directory.",
)
@build_options
@click.pass_context
def index(ctx: click.Context, **options: Any) -> None:
    """Index a catalog into the lexical and dense indexes (a new version, served once it is checked)."""
    index_catalog(ctx, **options)


@click.command(cls=Command)
@click.option(
    "--catalog",
    type=click.Path(exists=True, path_type=Path),
    help="A .jsonl/.ndjson/.csv/.tsv catalog (or .jsonl.gz ...: gzip is read) or a BEIR/WANDS/ESCI dataset directory.",
)
@build_options
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

        settings = settings_for(ctx)
        previous, current = rollback_index(settings)
        console.print(f"serving version {current} of {settings.index_dir} again (was {previous})")
        if settings.lexical.backend != "tantivy":
            console.print(f"alias {settings.lexical.index!r} points at {read_manifest(settings)['lexical_index']}")
        return
    if catalog is None:
        raise click.UsageError("--catalog is required (or --rollback)")
    index_catalog(ctx, catalog, **options)
