"""``search-rerank index`` and ``reindex``: build a new index version, update one in place, or roll back."""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from rich.markup import escape

from ..core.errors import DataError, brief
from .common import Command, console, settings_for

if TYPE_CHECKING:
    from ..core.product import Product

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


@contextmanager
def readable_twice(catalog: Path) -> Iterator[Path]:
    """``catalog``, or where it is not a file or a directory (a named pipe a decompression writes to, a process
    substitution), a copy of what it gives: read twice, such a path waited for a second writer that never came."""
    if catalog.is_file() or catalog.is_dir():
        yield catalog
        return
    with tempfile.TemporaryDirectory(prefix="search-rerank-catalog-") as directory:
        copy = Path(directory) / catalog.name  # the name, for its suffix: the format, and gzip
        try:
            with open(catalog, "rb") as source, open(copy, "wb") as target:
                shutil.copyfileobj(source, target)
        except OSError as exc:
            raise DataError(catalog, None, f"cannot read: {exc.strerror or exc}") from None
        yield copy


def not_empty(products: Iterable[Product], catalog: Path) -> Iterator[Product]:
    """``products``, refused naming ``catalog`` when there is none (a CSV of its header alone)."""
    empty = True
    for product in products:
        empty = False
        yield product
    if empty:
        raise DataError(catalog, None, "no products in it: nothing to index")


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
    fields = None
    if incremental:
        products = iter_catalog(catalog, skip_bad=skip_bad, stats=stats)
        deletions = [line.strip() for _, line in text_lines(delete_file) if line.strip()] if delete_file else []
        report = update_index(products, deletions, settings, batch_size=batch_size)
    else:
        if delete_file is not None:
            raise click.UsageError("--delete needs --incremental")
        with readable_twice(catalog) as copy:  # a pass to type the catalog's fields, then the one that indexes
            try:
                fields = catalog_fields(copy, settings.lexical.catalog_field_types, skip_bad=skip_bad)
                products = not_empty(iter_catalog(copy, skip_bad=skip_bad, stats=stats), copy)
                report = build_index(products, settings, batch_size=batch_size, keep=keep, catalog=fields)
            except DataError as exc:  # named by the path given, not the copy's
                raise DataError(catalog, exc.line, exc.reason) if exc.path == str(copy) else exc from None
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
        if stats.repeated:
            more = " ..." if repeated > len(stats.repeated) else ""
            console.print(f"[yellow]repeated: {escape('; '.join(stats.repeated))}{more}[/yellow]")
    if report.lexical_index is not None:
        console.print(f"alias {settings.lexical.index!r} now points at {report.lexical_index}")
    if report.previous is not None:
        console.print(f"serving version {report.version} (was {report.previous})")
    if report.pruned:
        console.print(f"deleted old versions: {', '.join(report.pruned)}")
    if report.deleted:
        console.print(f"deleted {report.deleted} products")
    if report.not_found:
        listed = ", ".join(map(brief, report.not_found[:10])) + (" ..." if len(report.not_found) > 10 else "")
        console.print(f"warning: {len(report.not_found)} id(s) to delete are in no product of the index: {listed}")
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
        console.print(
            f"[yellow]skipped {stats.skipped} bad rows[/yellow], first: " + escape("; ".join(stats.errors[:3]))
        )


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
    help="A .jsonl/.ndjson/.csv/.tsv catalog (or .jsonl.gz ...: gzip is read) or a BEIR/WANDS/ESCI/Home Depot dataset directory.",
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
    help="A .jsonl/.ndjson/.csv/.tsv catalog (or .jsonl.gz ...: gzip is read) or a BEIR/WANDS/ESCI/Home Depot dataset directory.",
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
        # An option given with it would be ignored without a word: a --delete FILE believed done, a takedown not.
        given = [
            f"--{name.replace('_', '-')}"
            for name in ("catalog", *options)
            if ctx.get_parameter_source(name) not in (None, click.core.ParameterSource.DEFAULT)
        ]
        if given:
            raise click.UsageError(f"--rollback takes no {', '.join(given)}: it serves the previous version as built")
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
