"""Elasticsearch's ``fuzziness``: how many edits a word of a given length may take, and whether two words are that
close. One definition for the Query DSL's fuzzy matches, their highlights, the completion suggester and the BM25
leg's typo correction, so that all of them count edits the same way."""

from __future__ import annotations

import math
from dataclasses import dataclass

from rapidfuzz.distance import OSA, Levenshtein


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


AUTO = Fuzziness(3, 6)
"""Elasticsearch's ``fuzziness: AUTO`` (``AUTO:3,6``)."""
