"""A size written with typographic marks and the same size typed as shoppers type it find each other in the
embedded index: a fraction written as one character ("½ in.", "1½ in. PVC", "⅜ in. drive") and typed with a slash
("1/2 in", "1-1/2 pvc", "3/8 drive"); an inch or foot mark after a number ('55" TV', "8′ Ladder") and the unit
typed as a word ("55 inch tv", "8 ft ladder").

Why: hardware catalogues write sizes with the vulgar fraction characters and inch and foot marks, and shoppers
type a slash and the unit. The index's words are cut at every character that is no letter or digit, so "1/2" is
the words "1" and "2", while "½" is a digit of its own (Unicode's ``No``) and so a word of its own, and "1½" one
word "1½": neither finds the other; and a mark is no word at all, so '55"' is only "55" and "55 inch" finds the
"TV Stand for TVs up to 65 in., 55 lb." first. Elasticsearch maps characters before its tokenizer with a char
filter; tantivy's analysers have none, so the text is spelled out here before it is cut, in the index and in the
query alike:

- each fraction character as its numerator and denominator around a slash, set apart by spaces ("1½" is
  "1 1/2", the words "1", "1", "2"). Every character Unicode decomposes as a ``<fraction>`` is one (¼ ½ ¾, ⅐ to
  ⅞, ↉ and the numerator ⅟). A fraction slash (U+2044) or division slash (U+2215) between digits already cuts
  them apart as "/" does;
- an inch mark (``"`` ``”`` ``″``) right after a number as the word "in", a foot mark (``'`` ``’`` ``′``) as
  "ft", the units' spellings that :mod:`.units` searches every spelling of. Only a mark that ends the word: the
  ``’`` of "1990’s" is an apostrophe, but a foot mark followed by inches is one ("5'6"", "6'-8""). And not one
  that closes a quote opened before the number: 'the "300" series' holds no inches.

A word spelled out of a character stands where that character stands in the text: a highlight marks the "½" of
"1½ in." that a query's "1/2" matched, and the '"' of '55"' that "inch" matched.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence

import tantivy

FRACTION_SLASH = "\u2044"
FRACTIONS: dict[str, str] = {
    glyph: f" {''.join(chr(int(code, 16)) for code in decomposition[1:]).replace(FRACTION_SLASH, '/')} "
    for glyph in map(chr, range(0x10000))
    if (decomposition := unicodedata.decomposition(glyph).split())[:1] == ["<fraction>"]
}
"""Each fraction character and the text it is read as (" 1/2 " for "½"). Unicode has them all in its Basic
Multilingual Plane (Latin-1 and Number Forms)."""
_INCH_MARKS = '"\u201d\u2033'
MARKS = dict.fromkeys(_INCH_MARKS, " in ") | dict.fromkeys("'\u2019\u2032", " ft ")
"""Each inch and foot mark and the text it is read as after a number."""
QUOTES = "\"'\u201c\u201d\u2018\u2019"
"""What opens a quote: a mark after a number that follows one closes it ('the "300" series')."""
NUMBER = frozenset("0123456789.,/-").union(FRACTIONS)
"""What a size's number is written with ("1-1/2", "2.5", "¾")."""
DIGITS = frozenset("0123456789").union(FRACTIONS)
"""What a mark must follow to be a unit."""
# One character class, which the regex engine scans for as fast as str.translate: a lookbehind and lookahead in
# the pattern made it 8 times slower (28 µs on a 540-character description), and the rare marks are checked here.
_SPELLED = re.compile(f"[{''.join(FRACTIONS)}{''.join(MARKS)}]")
_WORD_CHARACTER = re.compile(r"\w")
_INCHES = re.compile(
    "[{}][{}]*[{}]".format(*(re.escape("".join(sorted(chars))) for chars in (DIGITS, NUMBER, _INCH_MARKS)))
)
"""The inches that follow a foot mark in a size in feet and inches ("6" of "5'6"")."""


def spelled_out(text: str) -> str:
    """``text`` with each fraction character and each inch or foot mark after a number spelled out (module
    docstring)."""
    return _joined(text, _replaced(text))


def spelled_tokens(text: str, analyzer: tantivy.TextAnalyzer) -> Sequence[tantivy.Token]:
    """``analyzer``'s tokens of ``text`` spelled out, each with the characters of ``text`` it was cut from: the
    spelled-out character's, for a word spelled out of one."""
    replaced = dict(_replaced(text))
    tokens = analyzer.pre_tokenize(_joined(text, replaced.items())).tokens
    if not replaced:
        return tokens
    starts: list[int] = []
    ends: list[int] = []
    for at, character in enumerate(text):
        length = len(replaced.get(at, character))
        starts += [at] * length
        ends += [at + 1] * length
    return [
        tantivy.Token(token.text, token.position, starts[token.char_offset_from], ends[token.char_offset_to - 1])
        for token in tokens
    ]


def _replaced(text: str) -> list[tuple[int, str]]:
    """Where ``text`` has a character to spell out, and what it is spelled as, in the order they stand."""
    out = []
    for found in _SPELLED.finditer(text):
        character, at = found.group(), found.start()
        if character in FRACTIONS:
            out.append((at, FRACTIONS[character]))
            continue
        if not at or text[at - 1] not in DIGITS:
            continue
        if _WORD_CHARACTER.match(text, at + 1) and not (MARKS[character] == " ft " and _INCHES.match(text, at + 1)):
            continue
        begins = at
        while begins and text[begins - 1] in NUMBER:
            begins -= 1
        # A quote opens before a word, not right after a number: the foot mark of "5'6"" and of "6'-8"".
        if not begins or text[begins - 1] not in QUOTES or (begins > 1 and text[begins - 2] in DIGITS):
            out.append((at, MARKS[character]))
    return out


def _joined(text: str, replaced: Iterable[tuple[int, str]]) -> str:
    """``text`` with the characters at the places ``replaced`` gives (in order) replaced by what it gives."""
    parts, at = [], 0
    for where, spelled in replaced:
        parts += [text[at:where], spelled]
        at = where + 1
    return "".join([*parts, text[at:]]) if parts else text
