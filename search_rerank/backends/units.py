"""A unit written one way in the query matches it written any way in the catalogue: "60 inch" finds "60 in.",
"18v" finds "18-Volt", "10 feet" finds "10 ft.".

Why: hardware and home catalogues spell sizes their own way ("1/2 in. x 10 ft.", "20-Volt", "5-Gal.") and
shoppers theirs ("1/2 inch", "20v", "5 gallon"); BM25 sees unrelated words. A shop on Elasticsearch writes
synonym rules for it; the embedded BM25 leg does it for the units below, at search time only (the index keeps
the words it was given, so no rebuild). A unit word counts as one only after a number ("24 in" and "24 inch",
not "sofa in grey"), and a number glued to its unit ("60in", "18v", "3/4in") is searched as the glued word or
as the number and the unit. Numbers glued by an ``x`` ("2x4") are searched as the glued word or as their numbers.
An inch or foot mark after a number ('55"', "8′") is already the word "in" or "ft", in the index and in the
query (:mod:`.typography`), so it is searched as every spelling of its unit too.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import tantivy

from .spelling import QueryWord

SPELLINGS: tuple[tuple[str, ...], ...] = (
    ("in", "inch", "inches"),
    ("ft", "foot", "feet"),
    ("yd", "yard", "yards"),
    ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    ("m", "meter", "meters", "metre", "metres"),
    ("lb", "lbs", "pound", "pounds"),
    ("oz", "ounce", "ounces"),
    ("kg", "kilogram", "kilograms", "kilo", "kilos"),
    ("gal", "gallon", "gallons"),
    ("qt", "quart", "quarts"),
    ("l", "liter", "liters", "litre", "litres"),
    ("ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    ("v", "volt", "volts"),
    ("w", "watt", "watts"),
    ("a", "amp", "amps", "ampere", "amperes"),
    ("hp", "horsepower"),
    ("ga", "gauge"),
    ("pk", "pack", "packs"),
    ("pc", "pcs", "piece", "pieces"),
    ("ct", "count"),
)
"""Each unit's spellings, as typed (lower case); the analyser's stems are worked out from them."""

NUMBER = re.compile(r"\d+")
GLUED = re.compile(r"(\d+)([a-z]+)")
DIMENSIONS = re.compile(r"\d+(?:x\d+)+")


class UnitSpellings:
    """Rewrites a query's words so that a unit matches all its spellings (see the module docstring)."""

    def __init__(self, analyzer: tantivy.TextAnalyzer):
        self._group: dict[str, tuple[str, ...]] = {}
        for spellings in SPELLINGS:
            stems = tuple(dict.fromkeys(stem for word in spellings for stem in analyzer.analyze(word)))
            for stem in stems:
                self._group[stem] = stems

    def words(self, terms: Sequence[str], words: Iterable[QueryWord]) -> list[QueryWord]:
        """``words`` (the query's analysed ``terms``, each once, as :class:`QueryWord`) with each unit after a
        number searched as every spelling of it, and glued numbers and units searched apart as well."""
        after_number = {term for previous, term in zip(terms, terms[1:], strict=False) if NUMBER.fullmatch(previous)}
        out: dict[str, QueryWord] = {}
        for word in words:
            for rewritten in self._rewritten(word, after_number):
                out.setdefault(rewritten.term, rewritten)
        return list(out.values())

    def _rewritten(self, word: QueryWord, after_number: set[str]) -> list[QueryWord]:
        term = word.term
        if term in self._group and term in after_number and word.typed_only:
            return [QueryWord.any_of(term, self._group[term])]
        glued = GLUED.fullmatch(term)
        if glued is not None and glued.group(2) in self._group:
            number, unit = glued.groups()
            return [QueryWord.any_of(term, (term, number)), QueryWord.any_of(unit, self._group[unit])]
        if DIMENSIONS.fullmatch(term):
            numbers = term.split("x")
            return [QueryWord.any_of(term, (term, numbers[0])), *map(QueryWord.as_typed, numbers[1:])]
        return [word]
