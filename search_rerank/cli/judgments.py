"""``search-rerank judgments``: convert relevance judgments between formats, and list what to grade next."""

from __future__ import annotations

import os
from pathlib import Path

import click

from ..core.errors import DataError
from .common import Command, console, settings_for


@click.group()
def judgments() -> None:
    """Relevance judgments: TREC and BEIR qrels, SRW JSON, CSV, click labels from UBI logs; and what to grade next."""


@judgments.command("convert", cls=Command)
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
    if not read.qrels:  # an empty file, or its header alone: an empty split evaluates every configuration to 0
        raise click.ClickException(f"{source}: no judgments in it; nothing written")
    target.parent.mkdir(parents=True, exist_ok=True)
    # Written beside OUT, then put in its place: a judgment the format cannot hold (a TREC id with a space) fails
    # the command with OUT as it was, not half written, where `evaluate` would read the first half as the set.
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        write_judgments(read, partial, to_fmt, ratings=rating_map)
        os.replace(partial, target)
    except DataError as exc:
        raise DataError(target, exc.line, exc.reason) from None
    finally:
        partial.unlink(missing_ok=True)
    console.print(f"wrote {sum(map(len, read.qrels.values()))} judgments of {len(read.qrels)} queries to {target}")


@judgments.command("pool", cls=Command)
@click.option("--dataset", type=click.Path(exists=True, file_okay=False, path_type=Path), required=True)
@click.option("--split", default="dev", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="CSV to write.")
@click.option("--depth", type=click.IntRange(min=1), default=10, show_default=True, help="Top results per query.")
@click.option(
    "--config",
    "config_names",
    multiple=True,
    help="Pool these configurations (names as `evaluate` prints them; repeatable). Default: all of them.",
)
@click.pass_context
def pool_judgments(
    ctx: click.Context, dataset: Path, split: str, out: Path, depth: int, config_names: tuple[str, ...]
) -> None:
    """Write the unjudged products in the top --depth of each configuration, to grade.

    Sparse judgments pooled from one system score any other down for the products that system never showed;
    grade these (the grade column, as in `judgments convert --from csv`) and the configurations compare fairly.
    """
    from ..data.judgments import write_pool_csv
    from ..data.loaders import load_dataset
    from ..evaluation.evaluate import pipeline_configs, ranked_runs
    from ..evaluation.pooling import unjudged_pool
    from ..indexing.indexes import open_pipeline

    queries, qrels = load_dataset(dataset).split(split)
    judged = [qid for qid in qrels if qid in queries]
    pipeline = open_pipeline(settings_for(ctx))
    try:
        configs = pipeline_configs(pipeline)
        unknown = sorted(set(config_names) - {c.name for c in configs})
        if unknown:
            raise click.BadParameter(
                f"{', '.join(unknown)}: not a configuration of these settings; they have "
                f"{', '.join(c.name for c in configs)}",
                param_hint="--config",
            )
        configs = [c for c in configs if not config_names or c.name in config_names]
        runs, _ = ranked_runs(pipeline, queries, judged, configs)
        pool = unjudged_pool(runs, {qid: qrels[qid] for qid in judged}, depth)
        products = pipeline.store.get(sorted({pid for pids in pool.values() for pid in pids}))
    finally:
        pipeline.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    rows = write_pool_csv(
        pool, {qid: queries[qid].text for qid in pool}, {pid: p.title for pid, p in products.items()}, out
    )
    console.print(
        f"wrote {rows} unjudged products of {len(pool)} of {len(judged)} judged queries (top {depth} of "
        f"{', '.join(c.name for c in configs)}) to {out}. Fill in the grade column, then "
        f"`search-rerank judgments convert {out} NEW.tsv --from csv --to beir --dataset {dataset}` and add "
        f"NEW.tsv's rows (not its header) to {dataset}/qrels/{split}.tsv"
    )
