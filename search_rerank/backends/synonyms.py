"""A shop's synonym rules (``lexical.synonyms_file``, Solr format) searched by the embedded BM25 leg.

Why: every shop on Elasticsearch keeps a synonym file ("sofa, couch, settee", "tv => television"), and the same
file must mean the same on the embedded default as on a cluster, where the index's search analyzer applies it
(``index_mappings/products.vN.json``, ``product_synonyms``). Here it is applied to the query only, as the
cluster's search-time filter applies it, so a changed file needs no rebuild, only a restart or a reload.

The rules, as Elasticsearch reads them: ``a, b, c`` makes each phrase search as all three; ``a, b => c, d``
makes ``a`` and ``b`` search as ``c`` and ``d`` instead (the typed words are no longer searched unless the
right side names them); ``#`` starts a comment line, and a comma or ``=>`` written with a backslash before it
is part of a phrase. Rules with the same left side add up.

Where the embedded leg differs from the cluster: the rules match the analysed words of the query (stems), so
"couches" is read by a rule for "couch", where the cluster's filter, before the stemmer, needs both written.
Of overlapping rules the one starting first, then the longest, is applied, as the cluster's filter does.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from ..core.errors import ConfigError

SETTING = "lexical.synonyms_file"
MAX_VARIANTS = 8
"""The most texts a query with several rules is searched as where a phrase must be matched whole (a
``match_phrase``): every combination of its spans' readings, cut at this many, the typed text first."""

_UNESCAPED_ARROW = re.compile(r"(?<!\\)=>")
_UNESCAPED_COMMA = re.compile(r"(?<!\\),")


class Rule(NamedTuple):
    """A rule as written, and the line of the file it is on (for the messages that name it)."""

    line: int
    text: str


def read_synonyms(path: Path) -> list[str]:
    """Solr-format rules (``sofa, couch`` or ``tv => television``), one a line, ``#`` comments (:func:`read_rules`)."""
    return [rule.text for rule in read_rules(path)]


def read_rules(path: Path) -> list[Rule]:
    """The rules of the file at ``path`` with their lines. A line with two arrows, or an arrow with nothing on a
    side, is refused with its number (Elasticsearch refuses the file); so is a path that is no regular file (a
    pipe would be read forever)."""
    path = Path(path)
    try:
        if path.exists() and not path.is_file():
            raise ConfigError(f"{SETTING}: {path} is not a regular file")
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{SETTING}: cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{SETTING}: {path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    rules = []
    for number, line in enumerate(text.splitlines(), start=1):
        rule = line.strip()
        if not rule or rule.startswith("#"):
            continue
        sides = _UNESCAPED_ARROW.split(rule)
        if len(sides) > 2 or any(not _phrases(side) for side in sides):
            raise ConfigError(
                f"{SETTING}: {path} line {number}: {rule!r} is not a rule: 'a, b' (each phrase searched as all) "
                "or 'a, b => c' (a and b searched as c)"
            )
        rules.append(Rule(number, rule))
    return rules


def _phrases(side: str) -> list[str]:
    return [p.replace("\\,", ",").replace("\\=>", "=>").strip() for p in _UNESCAPED_COMMA.split(side) if p.strip()]


@dataclass(frozen=True)
class SynonymSpan:
    """The words of a query one rule matched, from ``start`` (an index into the query's analysed words), and
    what they are searched as besides (``keeps_words``) or instead of themselves."""

    start: int
    words: tuple[str, ...]
    alternatives: tuple[tuple[str, ...], ...]
    keeps_words: bool

    @property
    def end(self) -> int:
        return self.start + len(self.words)

    @property
    def readings(self) -> tuple[tuple[str, ...], ...]:
        """Every way the span is searched, the typed words first where they are kept."""
        return ((self.words,) if self.keeps_words else ()) + self.alternatives


class Synonyms:
    """The rules of a synonym file as analysed words: left side to right sides (see the module docstring).

    ``analyze`` cuts a phrase into the words a query is cut into (composed, sizes spelled out, stemmed), so a
    rule is read as the query that types it. An equivalence rule's phrases share one tuple: a rule of a
    thousand phrases is a thousand entries, not a million."""

    def __init__(self, rules: Sequence[Rule], analyze: Callable[[str], Sequence[str]], source: object = ""):
        groups: dict[tuple[str, ...], list[tuple[tuple[str, ...], ...]]] = {}
        for rule in rules:
            sides: list[tuple[tuple[str, ...], ...]] = []
            for side in _UNESCAPED_ARROW.split(rule.text):
                phrases: list[tuple[str, ...]] = []
                for written in _phrases(side):
                    analysed = tuple(analyze(written))
                    if not analysed:  # Elasticsearch refuses it too: the rule would search the words as nothing
                        raise ConfigError(
                            f"{SETTING}: {source} line {rule.line}: {written!r} has no word the index searches "
                            f"(of the rule {rule.text!r})"
                        )
                    phrases.append(analysed)
                sides.append(tuple(dict.fromkeys(phrases)))
            left, right = (sides[0], sides[0]) if len(sides) == 1 else sides
            for phrase in left:
                groups.setdefault(phrase, []).append(right)
        self._rules = {
            left: rights[0] if len(rights) == 1 else tuple(dict.fromkeys(p for right in rights for p in right))
            for left, rights in groups.items()
        }
        self._longest = max(map(len, self._rules), default=0)

    def __bool__(self) -> bool:
        return bool(self._rules)

    def spans(self, words: Sequence[str]) -> list[SynonymSpan]:
        """The rules ``words`` (a query's analysed words, in order) match: from the left, the longest at each
        word, none overlapping."""
        out: list[SynonymSpan] = []
        i = 0
        while i < len(words):
            for length in range(min(self._longest, len(words) - i), 0, -1):
                left = tuple(words[i : i + length])
                right = self._rules.get(left)
                if right is not None:
                    others = tuple(phrase for phrase in right if phrase != left)
                    out.append(SynonymSpan(i, left, others, keeps_words=left in right))
                    i += length
                    break
            else:
                i += 1
        return out

    def variants(self, words: Sequence[str]) -> Iterator[list[str]]:
        """``words`` with each span replaced by each of its readings: every combination, at most
        :data:`MAX_VARIANTS`, the typed words first where every rule keeps them."""
        spans = self.spans(words)
        for choice in itertools.islice(itertools.product(*(span.readings for span in spans)), MAX_VARIANTS):
            out: list[str] = []
            at = 0
            for span, reading in zip(spans, choice, strict=True):
                out += [*words[at : span.start], *reading]
                at = span.end
            yield out + list(words[at:])
