"""A fraction written as one character ("½ in.", "1½ in. PVC", "⅜ in. drive") and the same fraction typed with a
slash ("1/2 in", "1-1/2 pvc", "3/8 drive") find each other in the embedded index.

Why: hardware catalogues write sizes with the vulgar fraction characters and shoppers type a slash. The index's
words are cut at every character that is no letter or digit, so "1/2" is the words "1" and "2", while "½" is a
digit of its own (Unicode's ``No``) and so a word of its own, and "1½" one word "1½": neither finds the other.
Elasticsearch maps characters before its tokenizer with a char filter; tantivy's analysers have none, so the text
is spelled out here before it is cut, in the index and in the query alike: each fraction character as its
numerator and denominator around a slash, set apart by spaces ("1½" is "1 1/2", the words "1", "1", "2"). Every
character Unicode decomposes as a ``<fraction>`` is one (¼ ½ ¾, ⅐ to ⅞, ↉ and the numerator ⅟). A fraction slash
(U+2044) or division slash (U+2215) between digits already cuts them apart as "/" does.

A word spelled out of a fraction character stands where that character stands in the text: a highlight marks
the "½" of "1½ in." a query's "1/2" matched.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence

import tantivy

FRACTION_SLASH = "\u2044"
FRACTIONS: dict[str, str] = {
    glyph: f" {''.join(chr(int(code, 16)) for code in decomposition[1:]).replace(FRACTION_SLASH, '/')} "
    for glyph in map(chr, range(0x10000))
    if (decomposition := unicodedata.decomposition(glyph).split())[:1] == ["<fraction>"]
}
"""Each fraction character and the text it is read as (" 1/2 " for "½"). Unicode has them all in its Basic
Multilingual Plane (Latin-1 and Number Forms)."""
_SPELLED = str.maketrans(FRACTIONS)


def spelled_out(text: str) -> str:
    """``text`` with each fraction character spelled out with a slash (module docstring)."""
    return text.translate(_SPELLED)


def spelled_tokens(text: str, analyzer: tantivy.TextAnalyzer) -> Sequence[tantivy.Token]:
    """``analyzer``'s tokens of ``text`` spelled out, each with the characters of ``text`` it was cut from: the
    fraction character's, for a word spelled out of one."""
    spelled = spelled_out(text)
    tokens = analyzer.pre_tokenize(spelled).tokens
    if len(spelled) == len(text):
        return tokens
    starts: list[int] = []
    ends: list[int] = []
    for at, character in enumerate(text):
        length = len(FRACTIONS.get(character, character))
        starts += [at] * length
        ends += [at + 1] * length
    return [
        tantivy.Token(token.text, token.position, starts[token.char_offset_from], ends[token.char_offset_to - 1])
        for token in tokens
    ]
