"""Read catalogs and relevance datasets in the formats shops and benchmarks ship.

Every format goes through one loop (:func:`checked_rows`): a bad row raises
:class:`DataError` naming the file, the 1-based line (for Parquet, the 1-based
row) and why; with ``skip_bad=True`` it is counted in :class:`LoadStats` and
loading goes on. ``skip_bad`` applies to product rows only: queries and
judgments are always strict, because a silently dropped judgment changes every
metric computed from the dataset.

Catalog records use :class:`Product` field names (``_id`` and ``text`` are
accepted for ``id`` and ``description``, as in BEIR corpora, whose ``metadata``
object, source details such as a url, is passed over). Another key is kept for
display (``Product.extra``), but one a typing slip from a field the record
lacks is an error naming it, so a misspelt ``brnad`` is found at load time
instead of as a worse ranking. JSON ``null`` and Parquet nulls mean
"absent" and take the field's default.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import itertools
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, TypeVar

from pydantic import ValidationError

from ..core import json_text
from ..core.catalog_fields import CatalogFields
from ..core.errors import ConfigError, DataError, brief
from ..core.field_names import one_slip, spelling_key
from ..core.json_text import JsonTextError
from ..core.product import Product
from .dataset import Dataset, Query
from .markup import shown_text
from .merchant_feed import is_merchant_record, iter_xml_records, merchant_fields
from .qrels import Qrels, read_beir_qrels, write_beir_qrels
from .text_files import GZIP_SUFFIX, text_lines

log = logging.getLogger(__name__)

R = TypeVar("R")
T = TypeVar("T")

FIELD_ALIASES = MappingProxyType({"_id": "id", "text": "description"})
# The product's fields a catalog record names, by their spelling keys (see core.field_names).
_CATALOG_FIELDS = MappingProxyType({spelling_key(name): name for name in Product.model_fields if name != "extra"})
BEIR_METADATA = "metadata"
WANDS_GRADES = MappingProxyType({"Exact": 2, "Partial": 1, "Irrelevant": 0})
ESCI_GAINS = MappingProxyType({"E": 3, "S": 2, "C": 1, "I": 0})
ESCI_PRODUCTS_FILE = "shopping_queries_dataset_products.parquet"
ESCI_EXAMPLES_FILE = "shopping_queries_dataset_examples.parquet"
HOMEDEPOT_TRAIN_FILE = "train.csv"
HOMEDEPOT_COLUMNS = ("product_uid", "product_title", "search_term", "relevance")
# The attributes.csv names read into products (brand, and what shoppers type: colour, material); of its 2M rows
# the rest (bullets, dimensions, certifications) would bury the title in text no query asks for.
HOMEDEPOT_ATTRIBUTES = MappingProxyType(
    {"MFG Brand Name": "brand", "Color Family": "color", "Color/Finish": "color", "Material": "material"}
)

# Vespa's ESCI feed ({"put": ..., "fields": {...}}) renamed the official columns.
_VESPA_TO_ESCI = MappingProxyType(
    {
        "id": "product_id",
        "title": "product_title",
        "description": "product_description",
        "bullets": "product_bullet_point",
        "brand": "product_brand",
        "color": "product_color",
        "locale": "product_locale",
    }
)
_EXTRA_CELLS = "\0extra"
_UNREADABLE = "\0unreadable"
CSV_CELL_LIMIT = 64 * 1024 * 1024
"""The longest cell the CSV reader reads, in characters. Python's own limit, 131,072, refused the whole file for one
long cell (a description of a page's HTML) and named a long cell with line breaks a quote that never closes; past
this one a cell is a quote that never closes. A cell this long is then the product's to refuse, as a bad row, by the
same limits as a JSON Lines record's (``MAX_TEXT_CHARS``)."""
# What a CSV header may be separated by; the one it holds most of wins (ties: the first).
CSV_DELIMITERS = (",", "\t", ";")
# The first line a spreadsheet export may give to name its separator for Excel ("sep=;"), before the header.
EXCEL_SEPARATOR = re.compile(r"sep=([,\t;])")
BULK_ACTIONS = ("index", "create")


@dataclass
class LoadStats:
    """Product rows a load kept and skipped; pass one in to see what ``skip_bad`` dropped."""

    loaded: int = 0
    skipped: int = 0
    errors: list[str] = field(default_factory=list)
    max_errors: int = 10
    extra_fields: Counter[str] = field(default_factory=Counter)
    """How many products kept each field the product does not read (for display: ``Product.extra``)."""
    repeated: list[str] = field(default_factory=list)
    """The first ``max_errors`` records whose id an earlier record of the load had (``line 9: id 'p1'``): the
    last record of an id is the one indexed, and an export that writes each variant of a product as a row under
    the product's id loses all but one of them; the user needs to find them in the file."""
    _ids: set[str] = field(default_factory=set, repr=False)

    def skip(self, error: DataError) -> None:
        self.skipped += 1
        if len(self.errors) < self.max_errors:
            self.errors.append(str(error))

    def read(self, product: Product, line: int) -> None:
        """Count ``product``, read at ``line``: its fields the product does not read, and its id if repeated."""
        self.extra_fields.update(product.extra.keys())
        if product.id in self._ids:
            if len(self.repeated) < self.max_errors:
                self.repeated.append(f"line {line}: id {brief(product.id)}")
        else:
            self._ids.add(product.id)


# --- catalogs -----------------------------------------------------------------


def iter_jsonl_catalog(
    path: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None
) -> Iterator[Product]:
    """Products from JSON Lines: Product field names, a BEIR corpus, ESCI (official or Vespa feed) records, or
    an Elasticsearch export: elasticdump's lines (a _search's hits), ``_id`` and ``_source``, or _bulk NDJSON."""
    records = _JsonCatalog()
    numbered = ((line, (line, text)) for line, text in numbered_text_lines(path))
    yield from checked_rows(path, numbered, records, skip_bad=skip_bad, stats=stats)
    if records.waiting is not None:
        raise DataError(path, records.waiting[0], "a bulk action with no document after it; is the file cut short?")


def iter_csv_catalog(path: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None) -> Iterator[Product]:
    """Products from a comma- or tab-separated file whose header uses Product field names.

    ``category`` is a path ("A > B" or "A/B"); ``attributes`` is
    ``key:value|key:value`` (a repeated key adds a value) or a JSON object.
    """
    return _read_csv(path, _csv_product, skip_bad=skip_bad, stats=stats)


def iter_xml_catalog(path: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None) -> Iterator[Product]:
    """Products from a Google Merchant Center XML feed (RSS 2.0 or Atom, attributes in the ``g:`` namespace; see
    merchant_feed), each item numbered by the line it starts on."""
    convert = functools.partial(_catalog_product, xml=True)
    return checked_rows(path, iter_xml_records(path), convert, skip_bad=skip_bad, stats=stats)


def catalog_fields(
    path: str | Path, overrides: Mapping[str, str] | None = None, *, skip_bad: bool = False
) -> CatalogFields:
    """The catalog's own fields (those the product does not read) of the catalog at ``path``, each typed from all
    of its values, ``overrides`` (``lexical.catalog_field_types``) taking the place of a guess: a pass over the
    catalog before it is indexed, since an index's field types are fixed before its first product is written."""
    return CatalogFields.infer(iter_catalog(path, skip_bad=skip_bad), overrides)


def iter_catalog(path: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None) -> Iterator[Product]:
    """Products from whatever the user points at: a .jsonl/.json/.ndjson/.csv/.tsv file, a Google Merchant Center
    feed (.txt or .tsv, tab-separated, or .xml), any of them gzip-compressed (``.jsonl.gz``), or a dataset
    directory.

    In an ESCI directory only the US products are read, as :func:`load_esci` does by default.
    """
    path = Path(path)
    options: dict[str, Any] = {"skip_bad": skip_bad, "stats": stats}
    if path.is_dir():
        layout = _detect_layout(path)
        if layout == "beir":
            return iter_jsonl_catalog(path / "corpus.jsonl", **options)
        if layout == "wands":
            return _read_csv(path / "product.csv", _wands_product, **options)
        if layout == "homedepot":
            return iter(_homedepot_products(path, **options))
        return _read_parquet(path / ESCI_PRODUCTS_FILE, lambda row: _esci_product(row, "us"), **options)
    readers = {
        ".jsonl": iter_jsonl_catalog,
        ".json": iter_jsonl_catalog,
        ".ndjson": iter_jsonl_catalog,
        ".csv": iter_csv_catalog,
        ".tsv": iter_csv_catalog,
        ".txt": iter_csv_catalog,  # a Merchant Center feed's default name: products.txt, tab-separated
        ".xml": iter_xml_catalog,
    }
    suffix = text_suffix(path)
    if suffix not in readers:
        raise ConfigError(
            f"cannot read a catalog from {path}: use one of {', '.join(readers)} (or it gzip-compressed, "
            f"{GZIP_SUFFIX}) or a dataset directory"
        )
    return readers[suffix](path, **options)


# --- datasets -----------------------------------------------------------------


def load_dataset(path: str | Path, fmt: str = "auto", **options: Any) -> Dataset:
    """Load a dataset directory; ``options`` go to the format's loader (e.g. ``skip_bad``, ``dev_fraction``)."""
    loaders: dict[str, Callable[..., Dataset]] = {
        "beir": load_beir,
        "wands": load_wands,
        "esci": _load_esci_dir,
        "homedepot": load_homedepot,
    }
    path = Path(path)
    if fmt == "auto":
        fmt = _detect_layout(path)
    if fmt not in loaders:
        raise ConfigError(f"unknown dataset format {fmt!r}; valid: auto, {', '.join(loaders)}")
    dataset = loaders[fmt](path, **options)
    return dataset if fmt == "beir" else with_added_grades(dataset, path / "qrels")


def with_added_grades(dataset: Dataset, folder: Path) -> Dataset:
    """``dataset`` with the grades a shop added in ``folder/<split>.tsv`` (BEIR qrels, as ``judgments convert
    --to beir`` writes them), for layouts whose own files are the download's (WANDS, ESCI, Home Depot).

    Why: ``judgments pool`` and ``onboard`` list the unjudged products the steps found, to grade; a BEIR dataset
    reads the graded rows where they say to add them, and so must every layout, or the grades are silently left
    out. The download's files stay as shipped. A query's added grades must be in the split its own judgments are
    in (WANDS' and Home Depot's splits are a hash of the query): elsewhere the query would be judged, and counted,
    in two splits, a training split's in test among them. A product graded there and in the download with two
    grades is refused rather than one chosen."""
    for path in sorted(folder.glob("*")) if folder.is_dir() else []:
        split = _qrels_split(path)
        if split is None:
            continue
        in_split = {qid: name for name, judged in dataset.qrels.items() for qid in judged}
        for qid, grades in read_beir_qrels(path).items():
            if qid not in dataset.queries:
                raise DataError(path, None, f"query id {qid!r} is no query of the dataset; give the dataset's ids")
            if in_split.get(qid, split) != split:
                raise DataError(
                    path, None, f"query {qid!r} is judged in split {in_split[qid]!r}; add its grades to that split"
                )
            judged = dataset.qrels.setdefault(split, {}).setdefault(qid, {})
            for pid, grade in grades.items():
                if judged.setdefault(pid, grade) != grade:
                    raise DataError(
                        path,
                        None,
                        f"query {qid!r}, product {pid!r} is graded {judged[pid]} in the dataset and "
                        f"{grade} here; keep one",
                    )
    return dataset


def load_beir(
    directory: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None, name: str | None = None
) -> Dataset:
    """``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (every .tsv there is a split, gzipped too).

    Query keys other than ``_id`` and ``text`` become ``Query.meta`` strings
    (non-strings as JSON); empty values are left out.
    """
    directory = Path(directory)
    products = list(iter_jsonl_catalog(directory / "corpus.jsonl", skip_bad=skip_bad, stats=stats))
    queries = read_beir_queries(directory / "queries.jsonl")
    qrels = {}
    for path in sorted((directory / "qrels").glob("*")):
        split = _qrels_split(path)
        if split is None:
            continue
        if split in qrels:
            raise DataError(path, None, f"a second file of split {split!r}; keep one")
        qrels[split] = read_beir_qrels(path)
    return Dataset(name=directory.name if name is None else name, products=products, queries=queries, qrels=qrels)


def _qrels_split(path: Path) -> str | None:
    """The split a file of a BEIR ``qrels`` folder judges (``test.tsv``, ``test.tsv.gz``, ``Test.TSV``), or None
    for another file."""
    name = path.name.lower()
    for suffix in (".tsv", f".tsv{GZIP_SUFFIX}"):
        if name.endswith(suffix) and path.is_file():
            return path.name[: -len(suffix)]
    return None


def write_beir(dataset: Dataset, directory: str | Path) -> None:
    """Write ``dataset`` in the layout :func:`load_beir` reads; product fields beyond BEIR's ride in the corpus.

    Write into a new directory: any other ``qrels/*.tsv`` there would be read back as a split.
    """
    directory = Path(directory)
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    _write_jsonl(directory / "corpus.jsonl", (_beir_record(p) for p in dataset.products))
    queries = ({**q.meta, "_id": q.id, "text": q.text} for q in dataset.queries.values())
    _write_jsonl(directory / "queries.jsonl", queries)
    for split, qrels in dataset.qrels.items():
        write_beir_qrels(qrels, directory / "qrels" / f"{split}.tsv")


def load_wands(
    directory: str | Path,
    *,
    train_fraction: float = 0.6,
    dev_fraction: float = 0.2,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
    name: str = "wands",
) -> Dataset:
    """WANDS ``product.csv``, ``query.csv`` and ``label.csv`` (tab separated).

    WANDS has no splits: they are chosen by :func:`hash_split` (60% of queries train, 20% dev, the rest test by
    default), so that every dataset command, training and onboarding included, reads one test split that no
    training saw. ``train_fraction=0, dev_fraction=0`` puts every query in test, as WANDS' published
    full-set figures are measured. Labels: Exact=2, Partial=1, Irrelevant=0.
    """
    check_fractions(train_fraction, dev_fraction)
    directory = Path(directory)
    products = list(_read_csv(directory / "product.csv", _wands_product, skip_bad=skip_bad, stats=stats))
    queries = {q.id: q for q in _read_csv(directory / "query.csv", _one_text_per_id(_wands_query))}
    qrels: dict[str, Qrels] = {split: {} for split in SPLIT_NAMES}
    for qid, pid, grade in _read_csv(directory / "label.csv", _wands_label):
        qrels[hash_split(qid, train_fraction, dev_fraction)].setdefault(qid, {})[pid] = grade
    return Dataset(name=name, products=products, queries=queries, qrels={k: v for k, v in qrels.items() if v})


def load_esci(
    products_path: str | Path,
    examples_path: str | Path,
    locale: str = "us",
    *,
    gains: Mapping[str, int] = ESCI_GAINS,
    small_version: bool = False,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
    name: str = "esci",
) -> Dataset:
    """Amazon Shopping Queries (ESCI): products and judged examples of one locale.

    Products: the official parquet/jsonl columns or Vespa's feed jsonl; HTML is
    stripped from descriptions, bullet points are appended to the description
    and the colour becomes ``attributes["color"]``. Examples: parquet, csv or
    jsonl; splits come from the ``split`` column ("test" where there is none);
    without a ``query_id`` the id is a hash of the query text, so it is stable
    across files. ``small_version`` keeps the reduced set of Task 1, which
    published ESCI ranking numbers use.
    """
    products = list(_read_table(products_path, lambda row: _esci_product(row, locale), skip_bad=skip_bad, stats=stats))
    queries: dict[str, Query] = {}
    qrels: dict[str, Qrels] = {}
    for split, query, pid, grade in _read_table(
        examples_path, lambda row: _esci_example(row, locale, gains, small_version)
    ):
        queries.setdefault(query.id, query)
        qrels.setdefault(split, {}).setdefault(query.id, {})[pid] = grade
    return Dataset(name=name, products=products, queries=queries, qrels=qrels)


def _load_esci_dir(directory: Path, **options: Any) -> Dataset:
    return load_esci(directory / ESCI_PRODUCTS_FILE, directory / ESCI_EXAMPLES_FILE, **options)


def load_homedepot(
    directory: str | Path,
    *,
    train_fraction: float = 0.6,
    dev_fraction: float = 0.2,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
    name: str = "homedepot",
) -> Dataset:
    """Kaggle's Home Depot Product Search Relevance files: ``train.csv`` and, where present, ``test.csv`` with
    ``solution.csv`` (the released answers), ``product_descriptions.csv`` and ``attributes.csv``.

    The products are those of train.csv and test.csv (``product_uid``),
    titled by ``product_title``; a description and the attributes "MFG Brand Name"
    (the brand), "Color Family", "Color/Finish" (``color``) and "Material"
    are joined in when their files are there. A search term is one query
    wherever it appears (case and spacing aside), with an id hashed from its
    text. test.csv rows are judged by solution.csv, except those Kaggle marks
    ``Ignored``.

    ``relevance`` is the mean of raters' 1 (not), 2 (somewhat) and 3 (highly
    relevant); the grade is ``min(3, floor(2 * (relevance - 1)))``: 0 below
    1.5 (most raters said not relevant), 1 from 1.5, 2 from 2 and 3 from 2.5,
    integers 0 to 3 as ESCI's. The cuts lie between the means three raters
    give (1.33, 1.67, 2.33, 2.67), so they hold however many decimals the
    file writes, and 1.33, two raters of three saying not relevant, counts as
    not relevant for recall and MRR.

    The files have no splits: a share of queries chosen by a hash of the query
    id is in "train" (``train_fraction``), "dev" (``dev_fraction``) and the
    rest in "test", the same on every machine; all of a query's judgments are
    in one split. Kaggle wrote the files in ISO-8859-1: a line that is not
    UTF-8 is read as Latin-1, so the download and a copy re-saved as UTF-8
    read the same.
    """
    check_fractions(train_fraction, dev_fraction)
    directory = Path(directory)
    products = _homedepot_products(directory, skip_bad=skip_bad, stats=stats)
    queries: dict[str, Query] = {}
    qrels: dict[str, Qrels] = {split: {} for split in SPLIT_NAMES}
    for query, pid, grade in _homedepot_judgments(directory):
        query = queries.setdefault(query.id, query)
        if grade is None:
            continue
        qrels[hash_split(query.id, train_fraction, dev_fraction)].setdefault(query.id, {})[pid] = grade
    return Dataset(name=name, products=products, queries=queries, qrels={k: v for k, v in qrels.items() if v})


SPLIT_NAMES = ("train", "dev", "test")


def check_fractions(train_fraction: float, dev_fraction: float) -> None:
    if not (0.0 <= train_fraction and 0.0 <= dev_fraction and train_fraction + dev_fraction < 1.0):
        raise ConfigError(
            f"train_fraction and dev_fraction must be at least 0 and leave a test share (sum below 1), got "
            f"{train_fraction} and {dev_fraction}"
        )


def hash_split(query_id: str, train_fraction: float, dev_fraction: float) -> str:
    """The split of a query in a dataset that ships none: by a hash of its id, the same on every machine and run,
    so all of a query's judgments land in one split."""
    share = _hash_fraction(query_id)
    return "train" if share < train_fraction else "dev" if share < train_fraction + dev_fraction else "test"


def _homedepot_products(directory: Path, **options: Any) -> list[Product]:
    """The products of train.csv and test.csv, each once, with their descriptions and chosen attributes."""
    fields: dict[str, dict[str, Any]] = {}

    def titled(row: dict[str, str]) -> dict[str, Any] | None:
        pid = _required(row, "product_uid")
        return None if pid in fields else {"id": pid, "title": _required(row, "product_title")}

    for path in _homedepot_search_files(directory):
        for record in _read_csv(path, titled, latin1_fallback=True, **options):
            fields[record["id"]] = record
    descriptions = directory / "product_descriptions.csv"
    if descriptions.is_file():
        joins = _Joins(descriptions, fields)
        describe = _read_csv(
            descriptions, lambda row: _homedepot_description(joins(row)), latin1_fallback=True, **options
        )
        for pid, text in describe:
            fields[pid]["description"] = text
        joins.check()
    attributes = directory / "attributes.csv"
    if attributes.is_file():
        joins = _Joins(attributes, fields)
        wanted = _read_csv(attributes, lambda row: _homedepot_attribute(joins(row)), latin1_fallback=True, **options)
        for pid, key, value in wanted:
            if key == "brand":
                fields[pid].setdefault("brand", value)
                continue
            values = fields[pid].setdefault("attributes", {}).setdefault(key, [])
            if value not in values:
                values.append(value)
        joins.check()
    return [_product(record) for record in fields.values()]


class _Joins:
    """Whether a file of Home Depot's per-product rows names any product of train.csv and test.csv: one whose ids
    are written another way (a spreadsheet's ``100001.0``) would join nothing, and every product would go without
    its description or brand, without a word."""

    def __init__(self, path: Path, products: Mapping[str, Any]):
        self.path, self.products = path, products
        self.joined = 0
        self.first: str | None = None

    def __call__(self, row: dict[str, str]) -> tuple[str | None, dict[str, str]]:
        """The row's product id when it names a product, else None (a row with every cell empty among them)."""
        pid = (row.get("product_uid") or "").strip()
        if pid in self.products:
            self.joined += 1
            return pid, row
        if self.first is None and pid:
            self.first = pid
        return None, row

    def check(self) -> None:
        if not self.joined and self.first is not None:
            log.warning(
                "%s: no product_uid in it names a product of train.csv or test.csv (the first is %r), so "
                "nothing in it is joined; write the ids as those files do",
                self.path,
                self.first,
            )


def _homedepot_search_files(directory: Path) -> list[Path]:
    test = directory / "test.csv"
    return [directory / HOMEDEPOT_TRAIN_FILE, *([test] if test.is_file() else [])]


def _homedepot_description(joined: tuple[str | None, dict[str, str]]) -> tuple[str, str] | None:
    pid, row = joined
    _required(row, "product_uid")
    return None if pid is None else (pid, row.get("product_description") or "")


def _homedepot_attribute(joined: tuple[str | None, dict[str, str]]) -> tuple[str, str, str] | None:
    """A wanted attribute of a loaded product, or None (the real file's rows with every cell empty among them)."""
    pid, row = joined
    key = HOMEDEPOT_ATTRIBUTES.get((row.get("name") or "").strip())
    if key is None:
        return None
    _required(row, "product_uid")
    if pid is None:
        return None
    value = (row.get("value") or "").strip()
    return (pid, key, value) if value else None


def _homedepot_judgments(directory: Path) -> Iterator[tuple[Query, str, int | None]]:
    """(query, product id, grade) of every train.csv and test.csv row; None where there is no grade."""
    train, test, solution = (directory / name for name in (HOMEDEPOT_TRAIN_FILE, "test.csv", "solution.csv"))
    yield from _read_csv(train, lambda row: _homedepot_judgment(row, None), latin1_fallback=True)
    if test.is_file():
        grades = dict(_read_csv(solution, _homedepot_solution, latin1_fallback=True)) if solution.is_file() else {}
        yield from _read_csv(test, lambda row: _homedepot_judgment(row, grades), latin1_fallback=True)


def _homedepot_judgment(row: dict[str, str], grades: Mapping[str, int] | None) -> tuple[Query, str, int | None]:
    """``grades`` is solution.csv's by row id, or None for train.csv's rows, which carry their relevance."""
    text = _required(row, "search_term")
    query = Query(id=_text_id(" ".join(text.casefold().split())), text=text)
    grade = _homedepot_grade(_required(row, "relevance")) if grades is None else grades.get(_required(row, "id"))
    return query, _required(row, "product_uid"), grade


def _homedepot_solution(row: dict[str, str]) -> tuple[str, int] | None:
    if (row.get("Usage") or "").strip() == "Ignored":
        return None
    return _required(row, "id"), _homedepot_grade(_required(row, "relevance"))


def _homedepot_grade(relevance: str) -> int:
    try:
        mean = float(relevance)
    except ValueError:
        mean = math.nan
    if not 1.0 <= mean <= 3.0:
        raise ValueError(f"relevance {relevance!r} is not a number from 1 to 3 (the mean of raters' 1, 2 or 3)")
    return min(3, math.floor(2 * (mean - 1.0)))


def _detect_layout(directory: Path) -> str:
    if (directory / "corpus.jsonl").is_file():
        return "beir"
    if (directory / "product.csv").is_file() and (directory / "label.csv").is_file():
        return "wands"
    if (directory / ESCI_PRODUCTS_FILE).is_file() and (directory / ESCI_EXAMPLES_FILE).is_file():
        return "esci"
    if _is_homedepot(directory / HOMEDEPOT_TRAIN_FILE):
        return "homedepot"
    raise ConfigError(
        f"cannot tell the dataset layout of {directory}: expected corpus.jsonl (BEIR), product.csv and "
        f"label.csv (WANDS), {ESCI_PRODUCTS_FILE} and {ESCI_EXAMPLES_FILE} (ESCI), or {HOMEDEPOT_TRAIN_FILE} "
        f"with the columns {', '.join(HOMEDEPOT_COLUMNS)} (Kaggle's Home Depot); "
        "for other ESCI file names call load_esci with both paths"
    )


def _is_homedepot(train: Path) -> bool:
    """Told by the header: "train.csv" alone is a name many datasets use."""
    if not train.is_file():
        return False
    _, header = next(text_lines(train, latin1_fallback=True), (0, ""))  # the dropped generator closes the file
    return set(HOMEDEPOT_COLUMNS) <= {name.strip() for name in next(csv.reader([header]), [])}


# --- records to products, queries and judgments ---------------------------------


def _product(fields: Mapping[str, Any]) -> Product:
    return Product.model_validate({k: v for k, v in fields.items() if v is not None})


def _catalog_product(record: Mapping[str, Any], *, xml: bool = False) -> Product:
    """A catalog record as a product: each key the product's field it names, in any case or separators
    (``Title``, ``reviewCount``, ``Review Count``; ``_id`` and BEIR's ``text`` by :data:`FIELD_ALIASES`), the other
    keys kept as given in ``extra`` (an image, a page's URL: a shop's export of its index holds them, and its
    front end shows them from hits' ``_source``). A key one typing slip from a field the record does not give
    (``brnad``, ``descripton``) is refused naming the field: kept, the field would be silently empty."""
    if is_merchant_record(record):
        record = merchant_fields(record, xml=xml)
    fields: dict[str, Any] = {}
    given: dict[str, str] = {}  # each field's key in the record
    extra: dict[str, Any] = {}
    for key, value in record.items():
        if key == BEIR_METADATA and isinstance(value, dict):
            continue
        name = FIELD_ALIASES.get(key) or _CATALOG_FIELDS.get(spelling_key(str(key)))
        if name is None:
            extra[key] = value
            continue
        if name in fields:
            raise ValueError(f"both {given[name]!r} and {key!r} give {name!r}; keep one")
        fields[name], given[name] = value, key
    absent = [name for name in _CATALOG_FIELDS.values() if name not in fields]
    slips = [(key, meant) for key in extra if (meant := one_slip(str(key), absent)) is not None]
    if slips:
        raise ValueError(
            "; ".join(f"unknown field {key!r}: did you mean {meant!r}?" for key, meant in slips)
            + " (a field the product does not read is kept for display, but not one that misspells one it reads)"
        )
    if extra:
        fields["extra"] = extra
    if isinstance(fields.get("description"), str):  # a shop's export (Shopify's Body (HTML)), a feed's
        fields["description"] = shown_text(fields["description"])
    return _product(fields)


class _JsonCatalog:
    """One catalog record a numbered JSON line, Elasticsearch's exports among them.

    A catalog kept in Elasticsearch leaves it as elasticdump's lines (the hits of a _search): the document
    is the ``_source`` and its id the ``_id``. Its _bulk NDJSON gives a document in two lines, an action
    (``{"index": {"_id": ...}}``) and the document, so the id is carried from the one to the next
    (``waiting``: the action's line and id). Either way a document's own ``id`` wins over ``_id``.
    """

    def __init__(self) -> None:
        self.waiting: tuple[int, Any] | None = None

    def __call__(self, numbered: tuple[int, str]) -> Product | None:
        line, text = numbered
        record = parse_json_object(text)
        action = bulk_action(record)
        if action is not None:
            waiting, self.waiting = self.waiting, (line, action.get("_id"))
            if waiting is not None:
                raise ValueError(f"the bulk action on line {waiting[0]} has no document after it")
            return None
        if self.waiting is not None:
            (_, doc_id), self.waiting = self.waiting, None
            return _json_product(_with_id(record, doc_id))
        if isinstance(record.get("_source"), dict):
            return _json_product(_with_id(record["_source"], record.get("_id")))
        if isinstance(record.get("hits"), dict):
            raise ValueError(
                "found an Elasticsearch _search response; write its hits one a line, "
                "e.g. jq -c '.hits.hits[]' response.json > catalog.jsonl"
            )
        return _json_product(record)


def id_text(value: Any) -> Any:
    """A product id as the catalog reads one given as a number (``Product.id``): its text; anything else as it
    is. Judgments and behaviour logs written by a script from the same data name the product so too."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


def bulk_action(record: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The metadata of an Elasticsearch/OpenSearch _bulk ``index`` or ``create`` action line, or None."""
    if len(record) != 1:
        return None
    [(name, metadata)] = record.items()
    return metadata if name in BULK_ACTIONS and isinstance(metadata, dict) else None


def _with_id(document: dict[str, Any], doc_id: Any) -> dict[str, Any]:
    if doc_id is None or "id" in document or "_id" in document:
        return document
    return {"id": doc_id, **document}


def _esci_record(record: Mapping[str, Any]) -> bool:
    """Whether a catalogue record is ESCI's product table's (official columns, or Vespa's feed), in any format."""
    return "product_title" in record or ("put" in record and "fields" in record)


def _json_product(record: dict[str, Any]) -> Product | None:
    if _esci_record(record):
        return _esci_product(record, locale=None)
    return _catalog_product(record)


def _csv_product(row: dict[str, str]) -> Product | None:
    """A CSV row as a product, its ``attributes`` column (named as :func:`_catalog_product` reads a field) parsed.
    A row without one gives no attributes at all, so that a column misspelling it (``atributes``) is refused
    as a slip rather than kept as text beside empty attributes. ESCI's product table exported as CSV is read as
    the same table is as JSON Lines or Parquet (it was refused: "id: required but missing")."""
    if _esci_record(row):
        return _esci_product(row, locale=None)
    column = next((name for name in row if _CATALOG_FIELDS.get(spelling_key(str(name))) == "attributes"), None)
    if column is None:
        return _catalog_product(row)
    row = dict(row)
    cell = (row.pop(column) or "").strip()
    if cell.startswith("{"):
        try:
            attributes: Any = json_text.loads(cell)
        except ValueError as exc:
            raise ValueError(f"attributes: {cell[:60]!r} is not a valid JSON object ({exc})") from None
    else:
        attributes = _attribute_pairs(cell, strict=True)
    return _catalog_product({**row, "attributes": attributes})


def _attribute_pairs(text: str, *, strict: bool) -> dict[str, list[str]]:
    """``key:value|key:value`` as value lists; a repeated key is a multi-valued attribute.

    WANDS features include pairs with an empty key; ``strict=False`` drops those
    instead of failing a product over one feature.
    """
    attributes: dict[str, list[str]] = {}
    for pair in text.split("|"):
        if not pair.strip():
            continue
        key, colon, value = (part.strip() for part in pair.partition(":"))
        if not (colon and key):
            if strict:
                raise ValueError(f"attributes: {pair.strip()!r} is not key:value; write them like color:red|size:L")
            continue
        values = attributes.setdefault(key.lower(), [])
        if value and value not in values:
            values.append(value)
    return attributes


def _wands_product(row: dict[str, str]) -> Product:
    """WANDS row: the product class is the category leaf unless the hierarchy already ends with it."""
    hierarchy = row.get("category hierarchy") or row.get("category_hierarchy") or ""
    path = [p.strip() for p in hierarchy.split(" / " if " / " in hierarchy else "/") if p.strip()]
    classes = [c.strip() for c in (row.get("product_class") or "").split("|") if c.strip()]
    if classes and (not path or path[-1] not in classes):
        path.append(classes[0])
    return _product(
        {
            "id": row.get("product_id"),
            "title": row.get("product_name"),
            "description": row.get("product_description"),
            "category": tuple(path),
            "attributes": _attribute_pairs(row.get("product_features") or "", strict=False),
            "review_count": row.get("rating_count"),
            "rating": row.get("average_rating"),
        }
    )


def _wands_query(row: dict[str, str]) -> Query:
    query_class = (row.get("query_class") or "").strip()
    meta = {"query_class": query_class} if query_class else {}
    return Query(id=_required(row, "query_id"), text=_required(row, "query"), meta=meta)


def _wands_label(row: dict[str, str]) -> tuple[str, str, int]:
    label = _required(row, "label")
    if label not in WANDS_GRADES:
        raise ValueError(f"label {label!r} is not one of {', '.join(WANDS_GRADES)}")
    return _required(row, "query_id"), _required(row, "product_id"), WANDS_GRADES[label]


def _esci_product(row: Mapping[str, Any], locale: str | None) -> Product | None:
    """An ESCI product, or None when it belongs to another locale."""
    if "put" in row and "fields" in row:
        row = {_VESPA_TO_ESCI.get(k, k): v for k, v in row["fields"].items()}
    if locale is not None and row.get("product_locale") not in (None, locale):
        return None
    texts = (
        shown_text(_esci_text(row.get("product_description"), "description")),
        shown_text(_esci_text(row.get("product_bullet_point"), "bullets")),
    )
    color = row.get("product_color")
    return _product(
        {
            "id": row.get("product_id"),
            "title": row.get("product_title"),
            "brand": row.get("product_brand"),
            "description": "\n".join(t for t in texts if t),
            "attributes": {"color": color} if color else {},
        }
    )


def _esci_text(value: Any, name: str) -> str:
    """An ESCI text cell as one string. Feeds made from a catalog often hold the bullet points as a list of
    strings, one per bullet; anything else that is not text is refused here, naming the field, rather than
    failing in the HTML stripping with a TypeError."""
    if value is None:
        return ""
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "\n".join(value)
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text or a list of texts, got {str(value)[:60]}")
    return value


def _esci_example(
    row: Mapping[str, Any], locale: str, gains: Mapping[str, int], small_version: bool
) -> tuple[str, Query, str, int] | None:
    if row.get("product_locale") not in (None, locale) or (small_version and _required(row, "small_version") != "1"):
        return None
    text = _required(row, "query")
    qid = row.get("query_id")
    qid = _text_id(text) if qid in (None, "") else str(qid).strip()
    label = _required(row, "esci_label")
    if label not in gains:
        raise ValueError(f"esci_label {label!r} has no gain; gains are given for {', '.join(gains)}")
    split = row.get("split") or "test"
    return str(split).strip(), Query(id=qid, text=text), _required(row, "product_id"), gains[label]


def _one_text_per_id(convert: Callable[[R], Query]) -> Callable[[R], Query]:
    """``convert`` for a query file's rows, refusing an id read before with another text: the last row would
    replace the first without a word, and the id's judgments be scored on a query they never judged."""
    texts: dict[str, str] = {}

    def checked(row: R) -> Query:
        query = convert(row)
        text = texts.setdefault(query.id, query.text)
        if text != query.text:
            raise ValueError(f"query id {query.id!r} is given before with the text {text!r}; keep one")
        return query

    return checked


def read_beir_queries(path: str | Path, check: Callable[[Query], object] | None = None) -> dict[str, Query]:
    """A BEIR ``queries.jsonl``, each query by its id: a line without ``_id`` or ``text``, an id given two texts,
    or one ``check`` refuses (a ValueError) is refused naming the file and the line."""
    one_text = _one_text_per_id(_beir_query)

    def convert(record: dict[str, Any]) -> Query:
        query = one_text(record)
        if check is not None:
            check(query)
        return query

    return {q.id: q for q in _read_jsonl(path, convert)}


def _beir_query(record: dict[str, Any]) -> Query:
    meta = {
        key: value if isinstance(value, str) else json.dumps(value)
        for key, value in record.items()
        if key not in ("_id", "text") and value not in (None, "", {}, [])
    }
    if not isinstance(id_text(record.get("_id")), str | None):  # true, 1.5, a list: no id a judgment names
        raise ValueError(f"_id: expected a string or a whole number, got {json.dumps(record['_id'])[:60]}")
    return Query(id=_required(record, "_id"), text=_required(record, "text"), meta=meta)


def _beir_record(product: Product) -> dict[str, Any]:
    record = product.to_record()
    return {"_id": record.pop("id"), "title": record.pop("title"), "text": record.pop("description", ""), **record}


def _required(row: Mapping[str, Any], name: str) -> str:
    value = row.get(name)
    if value is None or not str(value).strip():
        raise ValueError(f"{name}: required but missing")
    return str(value).strip()


def _text_id(text: str) -> str:
    """A query id fixed by its text, for files that give none, so that the same text is the same query in every file."""
    return hashlib.blake2b(text.encode("utf-8"), digest_size=8).hexdigest()


def _hash_fraction(text: str) -> float:
    """A number in [0, 1) fixed by ``text``; Python's hash() changes between runs."""
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:8], "big") / 2**64


# --- rows from files, and the one loop that checks them ---------------------------


def checked_rows(
    path: str | Path,
    rows: Iterable[tuple[int, R]],
    convert: Callable[[R], T | None],
    *,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
) -> Iterator[T]:
    """Convert numbered rows; a row that fails is raised with its file and line, or counted and skipped.

    ``convert`` returns None for a row that is fine but not wanted (another
    locale). If every row of a file is bad the file is refused even with
    ``skip_bad``: that is a wrong file or format, not a few bad rows.
    """
    stats = LoadStats() if stats is None else stats
    kept = skipped = 0
    first: DataError | None = None
    for line, row in rows:
        try:
            item = convert(row)
        except ValueError as exc:
            error = DataError(path, line, _reason(exc))
            if not skip_bad:
                raise error from exc
            stats.skip(error)
            skipped += 1
            if first is None:
                first = error
            continue
        if item is not None:
            stats.loaded += 1
            if isinstance(item, Product):
                stats.read(item, line)
            kept += 1
            yield item
    if skipped and not kept:
        raise DataError(path, None, f"all {skipped} rows are bad; is it the right file and format? first: {first}")
    if skipped:
        log.warning("%s: skipped %d bad row(s) of %d; first: %s", path, skipped, kept + skipped, first)


def _reason(exc: ValueError) -> str:
    """A row's errors in one line."""
    if not isinstance(exc, ValidationError):
        return str(exc)
    return "; ".join(_describe(error) for error in exc.errors())


def _describe(error: Any) -> str:
    where = ".".join(str(part) for part in error["loc"]) or "record"
    if error["type"] == "missing":
        return f"{where}: required but missing"
    return f"{where}: {error['msg']} (got {brief(error['input'])})"


def _read_jsonl(path: str | Path, convert: Callable[[dict[str, Any]], T | None], **options: Any) -> Iterator[T]:
    return checked_rows(path, numbered_text_lines(path), lambda text: convert(parse_json_object(text)), **options)


def _read_csv(
    path: str | Path,
    convert: Callable[[dict[str, str]], T | None],
    *,
    latin1_fallback: bool = False,
    **options: Any,
) -> Iterator[T]:
    rows = numbered_csv_rows(path, latin1_fallback=latin1_fallback)
    return checked_rows(path, rows, lambda row: convert(full_row(row)), **options)


def _read_parquet(path: str | Path, convert: Callable[[dict[str, Any]], T | None], **options: Any) -> Iterator[T]:
    return checked_rows(path, _parquet_rows(path), convert, **options)


def _read_table(path: str | Path, convert: Callable[[dict[str, Any]], T | None], **options: Any) -> Iterator[T]:
    readers = {
        ".parquet": _read_parquet,
        ".jsonl": _read_jsonl,
        ".json": _read_jsonl,
        ".ndjson": _read_jsonl,
        ".csv": _read_csv,
        ".tsv": _read_csv,
    }
    suffix = text_suffix(path)
    if suffix not in readers:
        raise ConfigError(f"cannot read {path}: use one of {', '.join(readers)} (the text ones also {GZIP_SUFFIX})")
    return readers[suffix](path, convert, **options)


def text_suffix(path: str | Path) -> str:
    """The format suffix, lower case: ``.jsonl`` for ``c.jsonl`` and for ``c.jsonl.gz`` (text is read through gzip)."""
    path = Path(path)
    inner = Path(path.stem).suffix.lower()
    if path.suffix.lower() == GZIP_SUFFIX and inner != ".parquet":
        return inner
    return path.suffix.lower()


def numbered_text_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """Non-blank lines with their 1-based line numbers, so :func:`checked_rows` can name the bad line."""
    return ((number, text) for number, text in text_lines(path) if text.strip())


def parse_json_object(text: str) -> dict[str, Any]:
    """One JSON Lines record; a whole JSON array or a non-object is refused with a hint, not a traceback.

    So are the two near misses of JSON Lines that files really are: objects spread over several lines (what
    jq and an indented dump write), and objects with the commas of the array they were cut from.
    """
    if text.lstrip().startswith("["):
        raise ValueError(
            "found a JSON array; write one object per line (JSON Lines), e.g. jq -c '.[]' in.json > out.jsonl"
        )
    if text.strip() == "{":
        raise ValueError(
            "found an object spread over several lines; write one object per line (JSON Lines), "
            "e.g. jq -c . in.json > out.jsonl"
        )
    try:
        record = json_text.loads(text)
    except json.JSONDecodeError as exc:
        if exc.msg == "Extra data" and text[exc.pos :].strip() == ",":
            raise ValueError("a comma after the object; in JSON Lines nothing follows a line's object") from exc
        raise ValueError(f"invalid JSON: {exc}") from exc
    except JsonTextError as exc:
        raise ValueError(f"invalid JSON: {exc}") from None
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}: {text.strip()[:60]!r}")
    return record


def numbered_csv_rows(path: str | Path, *, latin1_fallback: bool = False) -> Iterator[tuple[int, dict[str, Any]]]:
    """Rows keyed by the header, numbered by the line they end on.

    The delimiter is whichever of comma, tab and semicolon the header holds
    most of, so spreadsheet exports (semicolons where the comma is the decimal
    mark) and WANDS' tab-separated .csv files all read; a first line naming it
    for Excel (``sep=;``) names it. The header is read by
    :func:`_header`, and the blank cells past its last column that a spreadsheet
    pads rows with are not extra cells. Quotes are read strictly (where the file
    quotes at all, :func:`_quoting`): a quote that never closes would otherwise
    swallow every later row into one cell without a word, and refuses the file; a
    row unreadable otherwise (text after a closing quote) is a bad row of its own,
    which :func:`full_row` refuses, so ``skip_bad`` skips it and reads on.
    ``latin1_fallback`` is :func:`text_lines`'.
    """
    csv.field_size_limit(CSV_CELL_LIMIT)
    lines = (text for _, text in text_lines(path, latin1_fallback=latin1_fallback))
    first = next(lines, "")
    hint = EXCEL_SEPARATOR.fullmatch(first.rstrip("\r\n"))
    header = next(lines, "") if hint else first
    delimiter = hint.group(1) if hint else max(CSV_DELIMITERS, key=header.count)
    read = [first, header] if hint else [header]
    cells = csv.reader(
        itertools.chain(read, lines), delimiter=delimiter, strict=True, quoting=_quoting(header, delimiter)
    )
    try:
        if hint:
            next(cells)  # the header is on the next line
        names = _header(path, next(cells, []), cells.line_num)
    except csv.Error as exc:
        raise DataError(path, cells.line_num, f"unreadable CSV: {exc}") from exc
    while True:
        start = cells.line_num + 1  # the line the row being read starts on
        try:
            values = next(cells)
        except StopIteration:
            return
        except csv.Error as exc:
            # A cell that runs to the end of the file, or past the cell limit: a quote that never closes, on the
            # line the row began.
            if "unexpected end of data" in str(exc) or "field larger than field limit" in str(exc):
                where = "a quoted cell on this line never closes" if cells.line_num > start else exc
                raise DataError(path, start, f"unreadable CSV: {where}") from exc
            yield cells.line_num, {_UNREADABLE: str(exc)}
            continue
        if any(cell.strip() for cell in values):  # not a blank line, nor a spreadsheet's empty row (",,,")
            yield cells.line_num, _by_name(names, values)


def _quoting(header: str, delimiter: str) -> Literal[0, 3]:
    """How the file's cells are quoted: a tab-separated file whose header cells are not quoted is read without
    quoting, as WANDS and Merchant Center write theirs (a title ``12" pizza pan`` or a cell that begins
    ``"Deluxe" pan`` is its text, where CSV's rules refused the whole file); every other file by CSV's rules."""
    quoted = any(cell.strip().startswith('"') for cell in header.split(delimiter))
    return csv.QUOTE_NONE if delimiter == "\t" and not quoted else csv.QUOTE_MINIMAL


def _header(path: str | Path, cells: list[str], line: int) -> list[str]:
    """The column names, without the spaces around them (``id, title``) or the empty columns a spreadsheet
    leaves after the last one. A column with no name (pandas writes its row index under one) or a name given
    twice is refused at the header's line: read on, the first would be an unknown field ``''`` on every row,
    the second would lose one of its columns without a word."""
    names = [cell.strip() for cell in cells]
    while names and not names[-1]:
        names.pop()
    seen: dict[str, int] = {}
    for number, name in enumerate(names, start=1):
        if not name:
            raise DataError(path, line, f"column {number} has no name in the header; name it or remove the column")
        if name in seen:
            raise DataError(path, line, f"{name!r} names columns {seen[name]} and {number}; rename or remove one")
        seen[name] = number
    return names


def _by_name(names: list[str], values: list[str]) -> dict[str, Any]:
    """Cells keyed by the header, as csv.DictReader keys them: extra cells that are not blank under one key,
    missing ones None."""
    row: dict[str, Any] = dict(itertools.zip_longest(names, values[: len(names)]))
    if any(cell.strip() for cell in values[len(names) :]):
        row[_EXTRA_CELLS] = values[len(names) :]
    return row


def full_row(row: dict[str, Any]) -> dict[str, str]:
    """A row of :func:`numbered_csv_rows` with a cell under every column and none past them, or ValueError."""
    if _UNREADABLE in row:
        raise ValueError(f"unreadable CSV: {row[_UNREADABLE]}")
    extra = row.pop(_EXTRA_CELLS, [])
    missing = [name for name, value in row.items() if value is None]
    if extra or missing:
        raise ValueError(
            f"row has {len(row) - len(missing) + len(extra)} cells but the header has {len(row)}; "
            "quote cells that contain the delimiter"
        )
    return row


def _parquet_rows(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    import pyarrow.parquet as pq  # deferred: only Parquet inputs pay for the import

    number = 0
    try:
        for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid (a ValueError) and ArrowIOError: a damaged file
        raise DataError(path, None, f"not a readable Parquet file ({exc}); row {number + 1}") from None


def _write_jsonl(path: Path, records: Iterable[Mapping[str, Any]]) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
