"""Does a query name a product by its code (model number, SKU, part number)?

Why: a text encoder reads ``KK3-6587J`` or ``4499Y`` as noise. On both
generator profiles the off-the-shelf dense leg scores nDCG@10 0.03 to 0.26 on
queries naming a code, against BM25's 0.29 to 0.60, and blending it in at the
shipped share cost those queries up to 0.025 (docs/TUNING.md, "Queries that
name a product by its code"). Such queries get their own fusion weights
(``fusion.identifier_weights``), lexical only by default.

What counts as a code: a token that mixes letters with at least three digits
(``KK3-6587J``, ``2526i``, ``WH-1000XM4``) or, without letters, holds a run of six or
more digits (a UPC, an EAN, a part number), unless it reads as a quantity: a number or a
dimension with an optional unit (``5000K``, ``40V``, ``1080p``, ``36x80in``,
``3/4hp``). Quantities describe a product rather than name one, and on such
queries the dense leg helps. A code whose suffix happens to be a unit letter
(``8981K``) reads as a quantity and is missed; the cost of a miss is only the
ordinary hybrid.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

UNITS = (
    "k",  # colour temperature
    "v",
    "w",
    "kw",
    "kwh",
    "a",
    "amp",
    "amps",
    "ah",
    "mah",
    "hp",
    "btu",
    "hz",
    "khz",
    "mhz",
    "ghz",
    "db",
    "rpm",
    "psi",
    "mm",
    "cm",
    "m",
    "km",
    "in",
    "inch",
    "ft",
    "yd",
    "g",
    "kg",
    "lb",
    "lbs",
    "oz",
    "ml",
    "l",
    "gal",
    "qt",
    "mb",
    "gb",
    "tb",
    "p",  # video resolution
    "mp",
    "pc",
    "pcs",
    "pk",
    "pack",
    "ct",
)
"""Unit suffixes a quantity may carry (lower case), longest matched first."""
NUMBER = r"\d+(?:[.,/]\d+)*"


def quantity(units: Iterable[str]) -> re.Pattern[str]:
    """A number or dimensions ("2x4") with an optional one of ``units`` (longest matched first): a size, no code."""
    return re.compile(rf"{NUMBER}(?:x{NUMBER})*(?:{'|'.join(sorted(units, key=len, reverse=True))})?")


QUANTITY = quantity(UNITS)
MIN_CODE_DIGITS = 3
"""Digits a mixed token needs to be a code: ``M8`` (a thread) and ``4K`` are attributes, ``KE2-7127Q`` is not."""
NUMERIC_CODE = re.compile(r"\d{6,}")
"""An all-digit token is a code with a run of six digits or more: shorter runs are quantities (``18650``,
``5000``) and ranges (``400-1000``)."""
EDGE_PUNCTUATION = ".,;:!?()[]{}\"'"


def is_code(token: str) -> bool:
    """Whether one query token names a product rather than describes one (see the module docstring).

    Stricter, on purpose, than the learned ranker's model-number feature (core.ranker_features: any word mixing
    letters and digits, ``40v`` included): that one scores a match in a title, where a matching unit is evidence
    too; this one decides whether the dense leg may speak for the whole query."""
    token = token.strip(EDGE_PUNCTUATION).lower()
    digits = sum(ch.isdigit() for ch in token)
    letters = sum(ch.isalpha() for ch in token)
    if letters == 0:
        return NUMERIC_CODE.search(token) is not None
    return digits >= MIN_CODE_DIGITS and QUANTITY.fullmatch(token) is None


def names_a_code(query: str) -> bool:
    """Whether any token of ``query`` is a product code."""
    return any(is_code(token) for token in query.split())
