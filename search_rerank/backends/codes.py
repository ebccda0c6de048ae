"""Model numbers typed without their separators: "ecc102" finds "ECC-10-2", "dw745b" finds "DW745-B", "xr 4501"
and "xr4501" find "XR-4501".

Why: hardware catalogues write model numbers with separators and shoppers copy them off a box without, or with
others. The analyser cuts "ECC-10-2" into the words "ecc", "10", "2", so "ecc102" matches none of them (and
typo correction leaves words with digits alone on purpose, spelling.py). Elasticsearch users index such codes with
``word_delimiter_graph`` and ``catenate_all``, or copy them into a code field; the embedded index does the latter:
each product's codes, separators dropped, one term each with the field it is written in (``code`` field, schema
version 5), and a query's codes are looked up there, in the searched fields, beside its words in the text fields.

A code in a product's text is a run of letters and digits joined by ``-``, ``.``, ``/`` or ``_`` (or one word
alone, "GSR12V140") holding at least one letter and one digit, lower case, separators dropped; a run that ``/``
cuts into parts ("DW745-B/DW746-B", the models an accessory fits) is also each part that is a code, unless a part
is a number ("1/2-NPT" is a size, its "2-NPT" no code). In a query the
words of a run may also be apart ("dw 745b", "ecc 10 2"): every span of up to :data:`MAX_QUERY_PIECES`
neighbouring pieces is tried joined, and only a code some product holds matches, so "drill 2" finds nothing new.
Not codes: numbers alone ("10 2" never matches "ecc102", "1/2" is no "12"), unless a run of digits alone holds
six or more ("2904-20" is found by "290420" and "2904 20"), and sizes ("1/2-in." is no "12in", "18-Volt", "2x4",
"2-Pack"), which are words and numbers for the text fields and for ``unit_spellings``.
Letters are ASCII: model numbers are.
"""

from __future__ import annotations

import re
from collections.abc import Collection

from ..core.identifiers import UNITS, quantity
from .units import SPELLINGS

RUN = re.compile(r"(?<![0-9A-Za-z])[0-9A-Za-z]+(?:[-./_][0-9A-Za-z]+)*(?![0-9A-Za-z])")
"""A product text's candidate code: letters and digits, pieces joined by one separator each."""
PIECE = re.compile(r"[0-9A-Za-z]+")
LISTED = re.compile(r"[0-9A-Za-z]+(?:[-._][0-9A-Za-z]+)*")
"""A part of a run that ``/`` separates from the others ("DW745-B" of "DW745-B/DW746-B")."""
SEPARATOR = re.compile(r"[-./_]")
SIZE_UNITS = frozenset(UNITS) | {spelling for spellings in SPELLINGS for spelling in spellings}
QUANTITY = quantity(SIZE_UNITS)
"""A joined run that is a size, not a code: a number or dimensions with an optional unit ("12in" of "1/2-in.")."""
MIN_DIGITS_CODE = 6
"""Digits a code of digits alone has at least ("2904-20", Milwaukee's way): fewer are numbers and sizes ("1/2" is no
"12", "24-36" no "2436"), which a shopper's "10 2" must not join."""
MAX_QUERY_PIECES = 4
"""Neighbouring query pieces joined at most: "ecc 10 2" is three, longer spans are sentences, not codes."""
MAX_QUERY_CODES = 32
"""A query's model codes looked up at most where each is a clause of its own (a cluster's query, a filter's):
each is a term query per searched field, and a cluster refuses a query of more clauses than its limit
(OpenSearch's ``indices.query.bool.max_clause_count``, 1,024 by default); a 512-character query of letters and
digits has hundreds of spans that read as codes, a shopper's has a few."""


def code(joined: str) -> str | None:
    """``joined`` (letters and digits, separators dropped) in lower case if it is a code, else None: letters and
    digits that are no size, or digits alone, at least :data:`MIN_DIGITS_CODE` of them."""
    joined = joined.lower()
    if joined.isdigit():
        return joined if len(joined) >= MIN_DIGITS_CODE else None
    has_letter = any(ch.isalpha() for ch in joined)
    has_digit = any(ch.isdigit() for ch in joined)
    return joined if has_letter and has_digit and QUANTITY.fullmatch(joined) is None else None


def product_codes(text: str) -> list[str]:
    """The codes written in a product's ``text``, each once, in order: each run's, and where a run lists codes
    apart with ``/`` ("DW745-B/DW746-B", an accessory that fits both) each listed one's too."""
    found = (code(SEPARATOR.sub("", part.group())) for run in RUN.finditer(text) for part in _readings(run))
    return list(dict.fromkeys(c for c in found if c is not None))


def code_spans(text: str, codes: Collection[str]) -> list[tuple[int, int]]:
    """Where ``text`` writes one of ``codes`` (as :func:`product_codes` reads them): each such run's start and end,
    separators included ("DW745-B" for ``dw745b``), or within a run of several, each listed code's, for a
    highlight: a search for two models of a list marks both."""
    spans = []
    for run in RUN.finditer(text):
        whole, *parts = _readings(run)
        marked = [whole] if code(SEPARATOR.sub("", whole.group())) in codes else parts
        spans += [p.span() for p in marked if code(SEPARATOR.sub("", p.group())) in codes]
    return spans


def _readings(run: re.Match[str]) -> list[re.Match[str]]:
    """A product text's run as the codes it may be: itself, then (a run with ``/``) each of the parts ``/``
    separates, as matches of the text, so that their spans are the text's. A run with a part that is a number is a
    fraction or a range ("1/2-NPT", "120/240VAC"), no list: its "2-NPT" is no model number."""
    parts = list(LISTED.finditer(run.string, run.start(), run.end())) if "/" in run.group() else []
    listed = len(parts) > 1 and not any(_number(part.group()) for part in parts)
    return [run, *parts] if listed else [run]


def _number(part: str) -> bool:
    """Whether a run's ``part`` is digits alone that are no code ("1" of "1/2-NPT")."""
    joined = SEPARATOR.sub("", part)
    return joined.isdigit() and code(joined) is None


def query_codes(text: str) -> list[str]:
    """The codes a query may mean: each span of up to :data:`MAX_QUERY_PIECES` neighbouring pieces of letters and
    digits, joined, that is a code, each once."""
    return list(code_rests(text))


def code_rests(text: str) -> dict[str, str]:
    """Each code of :func:`query_codes` with the text its first span leaves ("dw745b table saw": "dw745b" leaves
    " table saw", "dw 745b" leaves " "): what else a query that needs every word asks for beside the code."""
    pieces = list(PIECE.finditer(text))
    out: dict[str, str] = {}
    for start in range(len(pieces)):
        for end in range(start + 1, min(start + MAX_QUERY_PIECES, len(pieces)) + 1):
            found = code("".join(piece.group() for piece in pieces[start:end]))
            if found is not None and found not in out:
                out[found] = f"{text[: pieces[start].start()]} {text[pieces[end - 1].end() :]}"
    return out
