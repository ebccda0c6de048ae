"""``search-rerank judgments``: convert relevance judgments between formats."""

from __future__ import annotations

from pathlib import Path

import click

from .common import Command, console


@click.group()
def judgments() -> None:
    """Relevance judgments: TREC and BEIR qrels, SRW JSON, CSV, and click labels from UBI logs."""


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
    target.parent.mkdir(parents=True, exist_ok=True)
    write_judgments(read, target, to_fmt, ratings=rating_map)
    console.print(f"wrote {sum(map(len, read.qrels.values()))} judgments of {len(read.qrels)} queries to {target}")
