"""Elasticsearch's ``fuzziness``, read once for every query that takes one (text queries, the completion
suggester)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import OSA, Levenshtein

from .body_checks import InvalidQuery


@dataclass(frozen=True)
class Fuzziness:
    """Elasticsearch's ``fuzziness``: within how many edits of a query word (0 to 2) a word of the index matches.

    It depends on the analysed word's length: shorter than ``low`` characters, none; shorter than ``high``,
    one; else two (``AUTO`` is ``AUTO:3,6``; a number is that many edits whatever the length).
    ``transpositions`` (``fuzzy_transpositions``): whether swapping two letters is one edit rather than two.
    """

    low: float
    high: float
    transpositions: bool = True

    @classmethod
    def edits(cls, count: int, transpositions: bool = True) -> Fuzziness:
        return cls(math.inf if count == 0 else 0, 0 if count >= 2 else math.inf, transpositions)

    def distance(self, word: str) -> int:
        return 0 if len(word) < self.low else 1 if len(word) < self.high else 2

    def matches(self, word: str, term: str) -> bool:
        """Whether ``term`` is within ``word``'s edits of it (a swap of neighbours one edit with
        ``transpositions``, as Lucene's optimal string alignment counts; else two)."""
        if term == word:
            return True
        edits = self.distance(word)
        if edits == 0:
            return False
        metric = OSA if self.transpositions else Levenshtein
        return metric.distance(word, term, score_cutoff=edits) <= edits


def parse_fuzziness(value: Any, transpositions: Any, path: str) -> Fuzziness:
    """``fuzziness`` as Elasticsearch reads it: 0, 1, 2 (or such a string), ``AUTO`` or ``AUTO:low,high``;
    ``path`` is the query's, which holds it and ``fuzzy_transpositions``."""
    if not isinstance(transpositions, bool):
        raise InvalidQuery(f"{path}.fuzzy_transpositions", "expected true or false")
    text = str(value).strip().upper() if not isinstance(value, bool) else ""
    auto = re.fullmatch(r"AUTO(?::(\d+),(\d+))?", text)
    if auto is not None:
        low, high = (int(auto.group(1)), int(auto.group(2))) if auto.group(1) else (3, 6)
        if low <= high:
            return Fuzziness(low, high, transpositions)
    elif re.fullmatch(r"\d+(\.\d*)?", text) and float(text) < 3:
        return Fuzziness.edits(int(float(text)), transpositions)
    raise InvalidQuery(f"{path}.fuzziness", "expected 0, 1, 2, AUTO or AUTO:low,high")
