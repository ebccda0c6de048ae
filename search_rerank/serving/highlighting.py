"""Highlights on the embedded index, written as Elasticsearch's default (unified) highlighter writes them.

What is marked: the query's text clauses, read by the compiler as :class:`Mark`\\ s (every clause but those under
``must_not``, filters included, as Lucene's highlighter visits a query), each on the field it searched. A field's
value is cut into the terms it was indexed with (tantivy's analyzer, which says where each term stands), and a
term is marked where a clause on that field matches it: one of its words, a word within a ``fuzziness``'s edits of
one ("sofw" marks "sofa"), a word a typed prefix begins, or a phrase's words where they stand together. A phrase
is one span from its first word to its last, as Elasticsearch 8's "weight matches" mode marks it; word by word
with ``require_field_match: false`` or the ``plain`` highlighter, which do not use that mode. The words are
matched in the page's own text, so a word the index holds nowhere else is marked all the same. A model number
the clause found by its code (``lexical.model_codes``: "dw745b" found "DW745-B") is marked as the whole run the
text writes, separators included, since none of the text's words is what was typed.

How the text is cut: ``number_of_fragments: 0`` is the whole value. Otherwise each passage is the sentence of a
match, with the sentences after it while they fit in ``fragment_size``; a sentence longer than that is cut at
word boundaries around the match, and a later match in it begins its passage where the one before ended, as
Elasticsearch's bounded sentence scanner cuts it. The best passages by Lucene's passage score (its matches,
each term weighed by how rare it is in the value; earlier first on ties) are kept, ``number_of_fragments`` of
them, in the order they stand in the text (``order: score``: best first). Sentence and word boundaries are
found by simple rules where Elasticsearch uses Java's ``BreakIterator``, so a long text's fragments may begin
or end a few words apart from Elasticsearch's, and where it has more matching passages than are asked for,
another may be chosen; the words marked within a fragment are the same.
"""

from __future__ import annotations

import bisect
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import tantivy

from ..backends.codes import code_spans
from ..core.fuzziness import Fuzziness
from . import wildcards

# Lucene's SimpleHTMLEncoder, which Elasticsearch's "encoder": "html" is: these six characters, nothing else.
HTML_ESCAPES = str.maketrans({'"': "&quot;", "&": "&amp;", "<": "&lt;", ">": "&gt;", "'": "&#x27;", "/": "&#x2F;"})
# Lucene's passage scorer: the length a passage's term frequencies are normalised to, and BM25's k1 and b.
PIVOT, K1, B = 87.0, 1.2, 0.75
# Java's String.trim(), which Elasticsearch applies to every fragment: every character up to the space.
TRIMMED = "".join(map(chr, range(33)))
# Where a sentence ends, as Java's sentence BreakIterator ends one: after its terminators, closing marks and the
# spaces after them, or after a line break; a full stop before a lower-case word (an abbreviation) ends nothing.
_SENTENCE_END = re.compile(r"[.!?]+[\"')\]»”’]*\s++(?![a-z])|[!?]+[\"')\]»”’]*\s+|\n+")


@dataclass(frozen=True)
class Mark:
    """The words a text clause matches in one field (analysed, in the query's order)."""

    field: str
    words: tuple[str, ...]
    fuzzy: Fuzziness | None = None
    """Each word but a typed one also matches the words within its edits."""
    prefix: bool = False
    """The last word is being typed: it also matches the words it begins."""
    phrase: bool = False
    """The words match only where they stand together, at most ``slop`` positions apart."""
    slop: int = 0
    pattern: wildcards.Pattern | None = None
    """A wildcard word (``sof*``): the one word matches the terms it matches whole, in lower case."""
    codes: tuple[str, ...] = ()
    """The text's model codes the index looked up (``lexical.model_codes``): a model number written with them in
    the value ("DW745-B" for "dw745b") is marked whole, as the code it was found by."""

    def matches(self, term: str, i: int) -> bool:
        """Whether ``term`` (a term of the text) is the ``i``-th word as the clause matches it."""
        if self.pattern is not None:
            return wildcards.matches(self.pattern, term, str.lower)
        word = self.words[i]
        if term == word:
            return True
        if self.prefix and i == len(self.words) - 1:
            return term.startswith(word)
        return self.fuzzy is not None and self.fuzzy.matches(word, term)


@dataclass(frozen=True)
class HighlightField:
    """One field a highlight asks for, with its options (the field's own over the highlight's)."""

    name: str
    """The name asked for, which the answer is given under."""
    source: str
    """The text field that holds its words (``brand`` for ``brand.keyword``)."""
    marks: tuple[Mark, ...]
    pre: str
    post: str
    fragment_size: int
    fragments: int
    no_match_size: int
    escape: bool
    by_score: bool
    whole_phrases: bool


def highlight(value: str, tokens: Sequence[tantivy.Token], spec: HighlightField) -> list[str] | None:
    """The fragments of ``value`` (its analysed ``tokens``) with what ``spec``'s marks match in tags; None when
    nothing matches and ``no_match_size`` asks for no text."""
    spans = _merged(_spans(tokens, spec) + _code_spans(value, spec))
    if not spans:
        if not spec.no_match_size:
            return None
        return [_format(value, (0, _no_match_end(value, spec.no_match_size)), [], spec)]
    if spec.fragments == 0:
        return [_format(value, (0, len(value)), spans, spec)]
    passages = _passages(value, spans, spec.fragment_size)
    terms = _terms(value, tokens, spans)
    in_value = Counter(terms.values())
    best = sorted(passages, key=lambda p: (-_score(len(value), p, terms, in_value), p[0][0]))[: spec.fragments]
    if not spec.by_score:
        best.sort(key=lambda p: p[0][0])
    return [_format(value, bounds, matched, spec) for bounds, matched in best]


def _spans(tokens: Sequence[tantivy.Token], spec: HighlightField) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for mark in spec.marks:
        if mark.phrase:
            for found in _occurrences(tokens, mark):
                if spec.whole_phrases:
                    out.append((tokens[found[0]].char_offset_from, tokens[found[-1]].char_offset_to))
                else:
                    out += [(tokens[i].char_offset_from, tokens[i].char_offset_to) for i in found]
        else:
            out += [
                (t.char_offset_from, t.char_offset_to)
                for t in tokens
                if any(mark.matches(t.text, i) for i in range(len(mark.words)))
            ]
    return out


def _code_spans(value: str, spec: HighlightField) -> list[tuple[int, int]]:
    """Where ``value`` writes one of the marks' model codes: the whole run ("DW745-B"), separators included."""
    wanted = {code for mark in spec.marks for code in mark.codes}
    return code_spans(value, wanted) if wanted else []


def _occurrences(tokens: Sequence[tantivy.Token], mark: Mark) -> list[list[int]]:
    """Where the phrase's words stand in order, each within the slop left of the one before (the token indexes)."""
    out = []
    for first, token in enumerate(tokens):
        if not mark.matches(token.text, 0):
            continue
        found, spare = [first], mark.slop
        for i in range(1, len(mark.words)):
            at = tokens[found[-1]].position
            for j in range(found[-1] + 1, len(tokens)):
                gap = tokens[j].position - at - 1
                if gap > spare:
                    break
                if mark.matches(tokens[j].text, i):
                    spare -= gap
                    found.append(j)
                    break
            if len(found) <= i:
                break
        if len(found) == len(mark.words):
            out.append(found)
    return out


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """Overlapping spans as one, as Elasticsearch's passage formatter writes them."""
    out: list[tuple[int, int]] = []
    for start, end in sorted(set(spans)):
        if out and start < out[-1][1]:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


Passage = tuple[tuple[int, int], list[tuple[int, int]]]


def _passages(value: str, spans: list[tuple[int, int]], size: int) -> list[Passage]:
    """Each match in the passage of the one before it or in a new one (Lucene's FieldHighlighter), whose end it
    does not move: a match running past it is cut there when written, as Elasticsearch's passage formatter cuts it."""
    scanner = _SentenceScanner(value, size)
    out: list[Passage] = []
    for start, end in spans:
        if out and start < out[-1][0][1]:
            out[-1][1].append((start, end))
        else:
            out.append((scanner.passage(start), [(start, end)]))
    return out


class _SentenceScanner:
    """Where Elasticsearch's sentence scanner puts the passage of a match (its BoundedBreakIteratorScanner, asked
    as Lucene's FieldHighlighter asks it, at the match's start + 1): the match's sentence and the following ones
    that fit in ``size``; a longer sentence (the window) cut at words, at most ``size`` characters before the
    match and what is left of ``size`` after it. A later match within the same window starts its passage where
    the one before ended, so no text is written in two fragments. ``size`` 0 is whole sentences."""

    def __init__(self, value: str, size: int):
        self.value, self.size = value, size
        self.sentences = [0, *(m.end() for m in _SENTENCE_END.finditer(value)), len(value)]
        self.window = (-1, -1)
        self.end = 0

    def passage(self, start: int) -> tuple[int, int]:
        sentences, size = self.sentences, self.size
        at = bisect.bisect_right(sentences, start)
        if size == 0:
            return sentences[at - 1], sentences[min(at, len(sentences) - 1)]
        offset = start + 1
        if self.window[0] < offset < self.window[1]:
            low, high = self.end, self.window[1]
        else:
            low = sentences[at - 1]
            target = offset + max(0, size - (offset - low))
            if target + 1 > len(self.value):
                high = len(self.value)
            else:
                high = sentences[bisect.bisect_right(sentences, target) - 1]
                if high == low:  # no sentence ends within size: the window is the match's sentence
                    high = sentences[bisect.bisect_right(sentences, target)]
            self.window = (low, high)
        if high - low > size:
            if offset - size > low:
                low = max(low, _word_boundary_before(self.value, offset - size))
            remaining = max(0, size - (offset - low))
            if offset + remaining < self.window[1]:
                high = min(self.window[1], _word_boundary_after(self.value, offset + remaining))
        self.end = high
        return low, high


def _word_character(c: str) -> bool:
    return c.isalnum() or c == "_"


def _word_boundary_before(value: str, at: int) -> int:
    """The last word boundary before ``at``: the start of the word it falls in, or the character before it."""
    at -= 1
    while at > 0 and _word_character(value[at - 1]) and _word_character(value[at]):
        at -= 1
    return max(at, 0)


def _word_boundary_after(value: str, at: int) -> int:
    """The first word boundary after ``at``: the end of the word it falls in, else the next character."""
    if at >= len(value):
        return len(value)
    if not _word_character(value[at]):
        return at + 1
    while at < len(value) and _word_character(value[at]):
        at += 1
    return at


def _no_match_end(value: str, size: int) -> int:
    """Where the text given for a field without matches ends: the first word boundary after ``size``."""
    return len(value) if size >= len(value) else _word_boundary_after(value, size)


def _terms(value: str, tokens: Sequence[tantivy.Token], spans: list[tuple[int, int]]) -> dict[tuple[int, int], str]:
    """The term each match is of, as Lucene's scorer tells terms apart: a word's analysed term ("sofas" is
    "sofa"), a phrase's words as written."""
    analysed = {(t.char_offset_from, t.char_offset_to): t.text for t in tokens}
    return {span: analysed.get(span, value[span[0] : span[1]].lower()) for span in spans}


def _score(length: int, passage: Passage, terms: dict[tuple[int, int], str], in_value: Counter[str]) -> float:
    """Lucene's passage score (PassageScorer): each matched term's frequency in the passage, BM25-saturated by the
    passage's length and weighed by how rare the term is in the whole value (``length`` characters, ``in_value``
    its matches), times a norm that favours passages near the start."""
    (low, high), matched = passage
    norm = K1 * (1 - B + B * (high - low) / PIVOT)
    documents = 1 + length / PIVOT
    return (1 + 1 / math.log(PIVOT + low)) * sum(
        f / (f + norm) * (K1 + 1) * math.log(1 + (documents + 0.5) / (in_value[term] + 0.5))
        for term, f in Counter(terms[span] for span in matched).items()
    )


def _format(value: str, bounds: tuple[int, int], spans: list[tuple[int, int]], spec: HighlightField) -> str:
    low, high = bounds
    parts: list[str] = []
    at = low
    for start, end in spans:
        start, end = max(start, low), min(end, high)
        if start >= end:
            continue
        parts += [_encoded(value[at:start], spec), spec.pre, _encoded(value[start:end], spec), spec.post]
        at = end
    parts.append(_encoded(value[at:high], spec))
    return "".join(parts).strip(TRIMMED)


def _encoded(text: str, spec: HighlightField) -> str:
    return text.translate(HTML_ESCAPES) if spec.escape else text
