"""A few rows of Kaggle's Home Depot Product Search Relevance download, written as Kaggle ships the files:
comma-separated, ISO-8859-1 (a degree sign or a half is one byte), quoted where a cell holds a comma. The loader
tests and the command line tests read the same directory."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from pathlib import Path

TRAIN_HEADER = ("id", "product_uid", "product_title", "search_term", "relevance")
TRAIN = [
    ("2", "100001", "Simpson Strong-Tie 12-Gauge 90° Angle", "angle bracket", "3"),
    ("3", "100001", "Simpson Strong-Tie 12-Gauge 90° Angle", "l bracket", "2.5"),
    ("9", "100002", "BEHR Premium Textured DeckOver 1-gal. Wood and Concrete Coating", "deck over", "3"),
    ("16", "100003", "Delta Vero 1-Handle Shower Faucet Trim Kit in Chrome", "rain shower head", "2.33"),
    ("17", "100004", "Everbilt ½ in. Zinc-Plated Hex Nut (25-Pack)", "rain shower head", "1.33"),
    ("18", "100004", "Everbilt ½ in. Zinc-Plated Hex Nut (25-Pack)", "hex nut", "2.67"),
    ("20", "100005", "Hampton Bay 52 in. Ceiling Fan, Brushed Nickel", "ceiling fan", "3"),
]
TEST_HEADER = ("id", "product_uid", "product_title", "search_term")
TEST = [
    ("1", "100006", "Simpson Strong-Tie 18-Gauge Corner Angle", "Angle  Bracket"),
    ("4", "100007", "Toro 21 in. Snow Shovel", "snow shovel"),
    ("5", "100005", "Hampton Bay 52 in. Ceiling Fan, Brushed Nickel", "fan light kit"),
]
SOLUTION_HEADER = ("id", "relevance", "Usage")
SOLUTION = [("1", "2", "Public"), ("4", "3", "Private"), ("5", "-1", "Ignored")]
DESCRIPTIONS = [("100001", "Angles make joints stronger. 90° bend."), ("100007", "Clears snow.")]
ATTRIBUTES = [
    ("100001", "Bullet01", "Versatile connector for various 90° connections"),
    ("100001", "MFG Brand Name", "Simpson Strong-Tie"),
    ("100001", "Material", "Galvanized Steel"),
    ("100004", "MFG Brand Name", "Everbilt"),
    ("100004", "Color Family", "Zinc"),
    ("", "", ""),  # the real file has rows with every cell empty
    ("999999", "MFG Brand Name", "Not In Any Query"),
]


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[str]], encoding: str = "latin-1") -> bytes:
    text = io.StringIO()
    csv.writer(text, lineterminator="\n").writerows([header, *rows])
    return text.getvalue().encode(encoding)


def write_homedepot(
    directory: Path,
    train: Iterable[Sequence[str]] = TRAIN,
    *,
    test: bool = True,
    extras: bool = True,
) -> Path:
    """train.csv, with ``test`` test.csv and solution.csv, with ``extras`` product_descriptions.csv and
    attributes.csv."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "train.csv").write_bytes(csv_bytes(TRAIN_HEADER, train))
    if test:
        (directory / "test.csv").write_bytes(csv_bytes(TEST_HEADER, TEST))
        (directory / "solution.csv").write_bytes(csv_bytes(SOLUTION_HEADER, SOLUTION))
    if extras:
        descriptions = csv_bytes(("product_uid", "product_description"), DESCRIPTIONS)
        (directory / "product_descriptions.csv").write_bytes(descriptions)
        (directory / "attributes.csv").write_bytes(csv_bytes(("product_uid", "name", "value"), ATTRIBUTES))
    return directory
