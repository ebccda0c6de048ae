"""Judgment lists in the formats other tools exchange, converted through one shape.

TREC and BEIR qrels key judgments by query id; the OpenSearch Search Relevance
Workbench (SRW) JSON, spreadsheet CSVs and click logs key them by query text.
Converting between them needs both: :class:`Judgments` carries the grades by
query id plus the text of each query id it knows. Text-keyed judgments get the
id of the same text in a dataset when one is given (so they score that
dataset's runs), otherwise an id derived from the text, the same one from
every source, so SRW, CSV and click judgments of one query line up.

SRW ratings are numbers on the tool's own scale (the ESCI sample uses 100, 10,
1, 0 for Exact, Substitute, Complement, Irrelevant); the rating-to-grade map
is a parameter, and a rating it does not name is an error, not a silent 0.
Readers are strict, as in qrels: one bad judgment refuses the file.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import json_text
from ..core.errors import ConfigError, DataError
from ..core.json_text import JsonTextError
from .clicks import click_labels, query_key, read_ubi
from .loaders import checked_rows, full_row, id_text, numbered_csv_rows
from .qrels import Qrels, integer, judge, read_beir_qrels, read_trec_qrels, write_beir_qrels, write_trec_qrels
from .text_files import text_lines

SRW_RATINGS: Mapping[float, int] = {100.0: 3, 10.0: 2, 1.0: 1, 0.0: 0}
"""ESCI as the SRW sample writes it: Exact 100, Substitute 10, Complement 1, Irrelevant 0, to the ESCI gains."""
CSV_HEADER = ("query", "product_id", "grade")
CSV_NOTE = "title"
"""An optional column for the annotator (what ``judgments pool`` writes); read past, never stored."""
READ_FORMATS = ("trec", "beir", "csv", "srw", "ubi")
WRITE_FORMATS = ("trec", "beir", "csv", "srw")


@dataclass
class Judgments:
    qrels: Qrels
    texts: dict[str, str] = field(default_factory=dict)
    """Query id -> query text, for the ids whose text is known."""


def text_query_id(text: str) -> str:
    """The id a query text gets when no dataset names it: stable across files, free of spaces."""
    return "q-" + hashlib.sha256(query_key(text).encode("utf-8")).hexdigest()[:16]


def parse_ratings(spec: str) -> dict[float, int]:
    """``"100=3,10=2,1=1,0=0"``: SRW rating = integer grade, comma separated."""
    ratings: dict[float, int] = {}
    for item in filter(None, (part.strip() for part in spec.split(","))):
        rating, sep, grade = item.partition("=")
        try:
            if not sep:
                raise ValueError
            ratings[float(rating)] = int(grade)
        except ValueError:
            raise ConfigError(f"rating map item {item!r}: expected RATING=GRADE, e.g. 100=3") from None
    if not ratings:
        raise ConfigError("rating map is empty: give RATING=GRADE pairs, e.g. 100=3,10=2,1=1,0=0")
    return ratings


class _Ids:
    """Query text -> id: the dataset's id for a text it has, the derived id otherwise."""

    def __init__(self, dataset_texts: Mapping[str, str] | None):
        self.known = {query_key(text): qid for qid, text in (dataset_texts or {}).items()}

    def __call__(self, text: str) -> str:
        return self.known.get(query_key(text)) or text_query_id(text)


# ------------------------------------------------------------ readers


def read_judgments(
    path: str | Path,
    fmt: str,
    *,
    ratings: Mapping[float, int] = SRW_RATINGS,
    dataset_texts: Mapping[str, str] | None = None,
    min_impressions: int = 10,
) -> Judgments:
    """Read any supported format; ``dataset_texts`` (query id -> text) names text-keyed queries and
    supplies the texts of id-keyed ones."""
    ids = _Ids(dataset_texts)
    texts = dict(dataset_texts or {})
    if fmt == "trec":
        qrels = read_trec_qrels(path)
    elif fmt == "beir":
        qrels = read_beir_qrels(path)
    elif fmt == "csv":
        return read_csv_judgments(path, ids)
    elif fmt == "srw":
        return read_srw(path, ratings, ids)
    elif fmt == "ubi":
        return ubi_judgments([path], ids, min_impressions=min_impressions)
    else:
        raise ConfigError(f"unknown judgment format {fmt!r}; readable: {', '.join(READ_FORMATS)}")
    return Judgments(qrels, {qid: texts[qid] for qid in qrels if qid in texts})


def read_srw(path: str | Path, ratings: Mapping[float, int] = SRW_RATINGS, ids: _Ids | None = None) -> Judgments:
    """An SRW judgment list: ``{"judgmentRatings": [{"query": text, "ratings": [{"docId", "rating"}]}]}``."""
    ids = ids or _Ids(None)
    try:
        document = json_text.loads("".join(text for _, text in text_lines(path)))
    except json.JSONDecodeError as exc:
        raise DataError(path, exc.lineno, f"invalid JSON: {exc.msg}") from None
    except JsonTextError as exc:
        raise DataError(path, None, f"invalid JSON: {exc}") from None
    entries = document.get("judgmentRatings") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        raise DataError(path, None, "expected an object with a 'judgmentRatings' list (an SRW judgment list)")
    valid = ", ".join(f"{r:g}" for r in ratings)
    judgments = Judgments({})
    graded_at: dict[tuple[str, str], int | str] = {}
    for i, entry in enumerate(entries):
        where = f"judgmentRatings[{i}]"
        text = entry.get("query") if isinstance(entry, dict) else None
        if not isinstance(text, str) or not text.strip():
            raise DataError(path, None, f"{where}.query: required non-empty string, got {text!r}")
        rated = entry.get("ratings")
        if not isinstance(rated, list):
            raise DataError(path, None, f"{where} (query {text!r}).ratings: required list, got {str(rated)[:60]}")
        qid = ids(text)
        judgments.texts.setdefault(qid, " ".join(text.split()))
        judgments.qrels.setdefault(qid, {})  # judged, even with no rating: none of its products is relevant
        for j, rating in enumerate(rated):
            at = f"{where}.ratings[{j}] (query {text!r})"
            doc = id_text(rating.get("docId")) if isinstance(rating, dict) else None
            if not isinstance(doc, str) or not doc.strip():
                raise DataError(path, None, f"{at}.docId: required non-empty string, got {doc!r}")
            value = _rating(rating.get("rating"))
            if value is None or value not in ratings:
                raise DataError(
                    path,
                    None,
                    f"{at}, docId {doc!r}: rating {rating.get('rating')!r} is not one of "
                    f"{valid}; map it with the rating map (e.g. --ratings 100=3,10=2,1=1,0=0)",
                )
            judge(judgments.qrels, graded_at, path, f"{where}.ratings[{j}]", qid, doc, ratings[value], query=text)
    return judgments


def _rating(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def read_csv_judgments(path: str | Path, ids: _Ids | None = None) -> Judgments:
    """``query,product_id,grade`` rows with that header (and a ``title`` column, ignored, if the file has one);
    the query is the text a shopper typed."""
    ids = ids or _Ids(None)
    judgments = Judgments({})
    first_lines: dict[tuple[str, str], int | str] = {}

    def row(numbered: tuple[int, dict[str, Any]]) -> tuple[int, str, str, int]:
        line, cells = numbered
        cells = full_row(cells)
        if set(cells) - {CSV_NOTE} != set(CSV_HEADER):
            raise ValueError(
                f"columns {sorted(map(str, cells))}; expected exactly {', '.join(CSV_HEADER)} (and optionally "
                f"{CSV_NOTE})"
            )
        text, doc, grade = (str(cells[name] or "").strip() for name in CSV_HEADER)
        if not text or not doc:
            raise ValueError("query and product_id must be non-empty")
        try:
            return line, text, doc, integer(grade)
        except ValueError:
            raise ValueError(f"grade {grade!r} is not an integer") from None

    numbered = ((line, (line, cells)) for line, cells in numbered_csv_rows(path))
    for line, text, doc, grade in checked_rows(path, numbered, row):
        qid = ids(text)
        judgments.texts.setdefault(qid, " ".join(text.split()))
        judge(judgments.qrels, first_lines, path, line, qid, doc, grade, query=text)
    return judgments


def ubi_judgments(paths: Sequence[str | Path], ids: _Ids | None = None, *, min_impressions: int = 10) -> Judgments:
    """Implicit judgments: position-debiased click labels (clicks.click_labels) from UBI logs."""
    ids = ids or _Ids(None)
    qrels, texts = click_labels(read_ubi(*paths), min_impressions=min_impressions)
    judgments = Judgments({})
    for click_id, grades in qrels.items():
        qid = ids(texts[click_id])
        judgments.texts[qid] = texts[click_id]
        judgments.qrels.setdefault(qid, {}).update(grades)
    return judgments


# ------------------------------------------------------------ writers


def write_judgments(
    judgments: Judgments,
    path: str | Path,
    fmt: str,
    *,
    ratings: Mapping[float, int] = SRW_RATINGS,
    name: str = "search-rerank judgments",
) -> None:
    if fmt == "trec":
        write_trec_qrels(judgments.qrels, path)
    elif fmt == "beir":
        write_beir_qrels(judgments.qrels, path)
    elif fmt == "csv":
        texts = _texts(judgments, "csv")
        with open(path, "w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(CSV_HEADER)
            for qid, grades in judgments.qrels.items():
                writer.writerows((texts[qid], doc, int(grade)) for doc, grade in grades.items())
    elif fmt == "srw":
        write_srw(judgments, path, ratings, name)
    else:
        raise ConfigError(f"cannot write judgment format {fmt!r}; writable: {', '.join(WRITE_FORMATS)}")


def write_pool_csv(
    pool: Mapping[str, Sequence[str]], texts: Mapping[str, str], titles: Mapping[str, str], path: str | Path
) -> int:
    """The products to judge as CSV judgments with the grade left blank and each product's title beside it, for
    an annotator to fill in and ``read_csv_judgments`` to read back. Returns the rows written."""
    rows = 0
    with open(path, "w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow((*CSV_HEADER, CSV_NOTE))
        for qid, products in pool.items():
            writer.writerows((texts[qid], pid, "", titles.get(pid, "")) for pid in products)
            rows += len(products)
    return rows


def write_srw(
    judgments: Judgments,
    path: str | Path,
    ratings: Mapping[float, int] = SRW_RATINGS,
    name: str = "search-rerank judgments",
) -> None:
    """An SRW import list; each grade goes back to the one rating that maps to it."""
    texts = _texts(judgments, "srw")
    back: dict[int, float] = {}
    for rating, grade in ratings.items():
        if grade in back:
            raise ConfigError(
                f"ratings {back[grade]:g} and {rating:g} both map to grade {grade}, so grade {grade} "
                "has no single rating to write; give a one-to-one rating map"
            )
        back[grade] = rating
    entries = []
    for qid, grades in judgments.qrels.items():
        unknown = sorted({g for g in grades.values() if g not in back})
        if unknown:
            raise ConfigError(
                f"query {qid!r} has grade(s) {unknown} that no rating maps to "
                f"(rating map: {', '.join(f'{r:g}={g}' for r, g in ratings.items())})"
            )
        entries.append(
            {"query": texts[qid], "ratings": [{"docId": doc, "rating": f"{back[g]:.3f}"} for doc, g in grades.items()]}
        )
    document = {
        "name": name,
        "description": "Judgments exported by search-rerank",
        "type": "IMPORT_JUDGMENT",
        "judgmentRatings": entries,
    }
    Path(path).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def _texts(judgments: Judgments, fmt: str) -> dict[str, str]:
    missing = [qid for qid in judgments.qrels if qid not in judgments.texts]
    if missing:
        raise ConfigError(
            f"{fmt} judgments are keyed by query text, but {len(missing)} query id(s) have none, "
            f"e.g. {missing[:5]}; give the dataset whose queries name them (--dataset DIR)"
        )
    return judgments.texts
