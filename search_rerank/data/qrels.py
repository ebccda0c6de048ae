"""Relevance judgments and runs in the files that evaluation tools exchange.

TREC qrels and runs are what trec_eval and ir_measures read; BEIR's qrels TSV is
what BEIR-layout datasets ship. Readers are strict: a judgment file with one bad
line is refused rather than partly read, because a silently dropped judgment
changes every metric computed from it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

from ..core.errors import DataError
from ..core.number_text import DECIMAL_NUMBER, WHOLE_NUMBER
from .text_files import text_lines

Qrels = dict[str, dict[str, int]]
"""Query id -> product id -> integer grade (higher is more relevant)."""

Run = dict[str, list[tuple[str, float]]]
"""Query id -> (product id, score) pairs, best first."""

BEIR_HEADER = ("query-id", "corpus-id", "score")
MAX_INTEGER = 2**31 - 1
"""The largest grade or rank read (trec_eval reads them into 32-bit ints); a score may be any finite number."""


def read_trec_qrels(path: str | Path) -> Qrels:
    """Read ``qid iteration docid grade`` lines; the iteration column is ignored, as trec_eval does."""
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int | str] = {}
    for line, (qid, _, docid, grade) in _fields(path, "qid 0 docid grade"):
        judge(qrels, lines, path, line, qid, docid, _number(path, line, "grade", grade, int))
    return qrels


def write_trec_qrels(qrels: Qrels, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        for qid, grades in qrels.items():
            for docid, grade in grades.items():
                out.write(f"{_token(path, qid)} 0 {_token(path, docid)} {int(grade)}\n")


def write_trec_run(run: Run, path: str | Path, tag: str) -> None:
    """Write ``qid Q0 docid rank score tag``; rank is the position in each list, from 1."""
    tag = _token(path, tag)
    with open(path, "w", encoding="utf-8") as out:
        for qid, hits in run.items():
            qid = _token(path, qid)
            for rank, (docid, score) in enumerate(hits, start=1):
                out.write(f"{qid} Q0 {_token(path, docid)} {rank} {float(score)!r} {tag}\n")


def read_trec_run(path: str | Path) -> Run:
    """Read a TREC run, each query's hits ordered by score (rank breaks ties).

    Score order is how trec_eval and ir_measures interpret a run, so a file whose
    rank column disagrees with its scores is read the way it will be evaluated.
    """
    ranked: dict[str, list[tuple[float, int, str]]] = {}
    listed: dict[tuple[str, str], int] = {}
    for line, (qid, _, docid, rank, score, _) in _fields(path, "qid Q0 docid rank score tag"):
        position = _number(path, line, "rank", rank, int)
        value = _number(path, line, "score", score, float)
        first = listed.setdefault((qid, docid), line)
        if first != line:  # trec_eval refuses such a run: which of the two places is the product's?
            raise DataError(path, line, f"query {qid!r} ranks product {docid!r} a second time (first on line {first})")
        ranked.setdefault(qid, []).append((-value, position, docid))
    if not ranked:  # a run never written, an export that failed: not a system that found nothing
        raise DataError(path, None, "no ranked products in it")
    return {qid: [(docid, -neg) for neg, _, docid in sorted(hits)] for qid, hits in ranked.items()}


def read_beir_qrels(path: str | Path) -> Qrels:
    """Read BEIR's ``query-id<TAB>corpus-id<TAB>score`` file; the header line is optional."""
    qrels: Qrels = {}
    lines: dict[tuple[str, str], int | str] = {}
    for line, (qid, docid, grade) in _fields(path, "\t".join(BEIR_HEADER), sep="\t"):
        if line == 1 and (qid, docid, grade) == BEIR_HEADER:
            continue
        judge(qrels, lines, path, line, qid, docid, _number(path, line, "score", grade, int))
    return qrels


def write_beir_qrels(qrels: Qrels, path: str | Path) -> None:
    with open(path, "w", encoding="utf-8") as out:
        out.write("\t".join(BEIR_HEADER) + "\n")
        for qid, grades in qrels.items():
            for docid, grade in grades.items():
                out.write(f"{_cell(path, qid)}\t{_cell(path, docid)}\t{int(grade)}\n")


def _fields(path: str | Path, layout: str, sep: str | None = None) -> Iterator[tuple[int, list[str]]]:
    """Non-blank lines split into exactly as many fields as ``layout`` names, with 1-based numbers."""
    expected = len(layout.split(sep))
    for number, text in text_lines(path):
        text = text.rstrip("\r\n")
        if not text.strip():
            continue
        fields = text.split(sep)
        if len(fields) != expected:
            raise DataError(
                path, number, f"expected {expected} fields ({layout!r}), found {len(fields)}: {text[:80]!r}"
            )
        names = layout.split(sep)
        empty = next((names[i] for i, f in enumerate(fields) if not f.strip()), None)
        if empty is not None:
            raise DataError(path, number, f"{empty} is empty: {text[:80]!r}")
        yield number, [f.strip() for f in fields]


def judge(
    qrels: Qrels,
    places: dict[tuple[str, str], int | str],
    path: str | Path,
    place: int | str,
    qid: str,
    docid: str,
    grade: int,
    query: str | None = None,
) -> None:
    """Add one judgment; ``places`` holds where each (query, product) was first judged: a line, or the JSON path
    of a judgment in a file that is one document. The same judgment twice is one, but two grades for one pair
    (two assessors' files concatenated) are refused naming both places: the last would otherwise win without a
    word. ``query``: the query as the file writes it, when its id is made from it (a hash says nothing to
    whoever fixes the file)."""
    first = places.setdefault((qid, docid), place)
    earlier = qrels.setdefault(qid, {}).setdefault(docid, grade)
    if earlier != grade:
        line, here = (place, "") if isinstance(place, int) else (None, f"{place}: ")
        before = f"on line {first}" if isinstance(first, int) else f"at {first}"
        raise DataError(
            path,
            line,
            f"{here}query {query or qid!r}, product {docid!r} is graded {earlier} {before} and {grade} here; keep one",
        )


Number = TypeVar("Number", int, float)


def integer(text: str) -> int:
    """``text`` as an integer in ASCII digits, or ValueError: Python's int() also reads "1_0" as 10, and the
    digits of other scripts, which no grade typed in a file or a spreadsheet means."""
    if not WHOLE_NUMBER.fullmatch(text.strip()):
        raise ValueError(f"{text!r} is not an integer")
    return int(text)


def _number(path: str | Path, line: int, name: str, text: str, kind: type[Number]) -> Number:
    """A field's integer (within a 32-bit int, what trec_eval reads a grade or a rank into) or finite decimal
    number (``nan`` and ``inf`` would order a run by whatever a sort makes of them)."""
    written = WHOLE_NUMBER if kind is int else DECIMAL_NUMBER
    if not written.fullmatch(text.strip()):
        raise DataError(path, line, f"{name} {text!r} is not a{'n integer' if kind is int else ' number'}")
    value = kind(text)
    if (abs(value) > MAX_INTEGER) if kind is int else not math.isfinite(value):  # 1e400 is a float's infinity
        raise DataError(path, line, f"{name} {text} is out of range")
    return value


def _token(path: str | Path, value: str) -> str:
    """TREC files split on any whitespace, so an id containing some would shift every later column."""
    if not value or any(ch.isspace() for ch in value):
        raise DataError(path, None, f"{value!r} cannot be written: TREC ids and tags must be non-empty, without spaces")
    return value


def _cell(path: str | Path, value: str) -> str:
    if not value or any(ch in value for ch in "\t\r\n"):
        raise DataError(
            path, None, f"{value!r} cannot be written: BEIR ids must be non-empty, without tabs or newlines"
        )
    return value
