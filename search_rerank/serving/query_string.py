"""Lucene query syntax (``query_string`` and ``simple_query_string``) parsed into a small tree.

Front ends put what shoppers type into ``query_string`` ("sofa -grey",
``brand:(Acme OR Bolt)``, ``"leather sofa"``, ``price:[100 TO 300]``), so it
is parsed for real rather than read as words: a word the shopper excluded must
not be searched for. The tree says which products match (the embedded backend
compiles it into a tantivy query) and which words are wanted
(:func:`positive_text`, what the encoder and the reranker read).

Boolean operators follow Lucene's classic query parser, which Elasticsearch's
``query_string`` uses: each clause is required, optional or prohibited;
``AND`` makes the clauses on both sides required, ``OR`` optional (the one
before it only under ``default_operator`` AND), ``NOT`` prohibited, ``+``/``-``
the same for one clause, and a clause without any is what ``default_operator``
says. A query of prohibited clauses only matches everything else, as in
Elasticsearch. ``simple_query_string`` has its own operators (``|`` or, ``+``
and, ``-`` not, phrases, parentheses, ``~``) and Lucene's simple parser's rules
(:class:`_SimpleParser`: left to right, ``-x`` is "everything but x"); like
Elasticsearch's it never reports a syntax error: what is not valid syntax (a
quote or a parenthesis without its pair, an operator with nothing to join) is
ignored, and the rest (``AND``, ``OR``, ``NOT``, ``:``, ``[``, ``?``) is text.
``~`` changes the match set, so it is kept on its word (:attr:`Word.tilde`): after a
word it is the edit distance (fuzziness) within which the word matches, after a phrase
the slop, how far apart its words may be; boosts (``^2``) change Lucene's scores only
and are dropped; a word with ``*`` or ``?`` is a :class:`Wildcard` (in ``simple_query_string`` only a trailing
``*``, its prefix operator; there ``?`` and an inner ``*`` are text), ``field:*`` one whose pattern is a lone
star, which Elasticsearch reads as an exists query on the field (:func:`is_exists`); regular expressions
(``/.../``) are :class:`SyntaxUnsupported`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import wildcards
from .body_checks import MAX_INT, InvalidQuery, within_int

MUST, SHOULD, MUST_NOT = "must", "should", "must_not"
MAX_NESTING = 30
"""The deepest parentheses may nest here: both parsers recurse once per group, so without a bound a query of
thousands of ``(`` ran out of stack (a 500). Elasticsearch bounds the bool queries of a body at this depth
(``indices.query.bool.max_nested_depth``, 30 by default) but not a query string's groups; no search box nests
them thirty deep, so the same number is taken here."""


class QuerySyntaxError(ValueError):
    """The text is not valid query syntax (a 400 naming the query)."""


class SyntaxUnsupported(ValueError):
    """Valid syntax that is not served (a 501 naming the part)."""


@dataclass(frozen=True)
class Word:
    """Text to match in ``field`` (None: the query's default fields); a ``phrase`` keeps word order."""

    field: str | None
    text: str
    phrase: bool = False
    tilde: str | None = None
    """What followed ``~`` ("" when nothing did; None: no ``~``): a word's fuzziness, a phrase's slop.

    A bare ``~`` means the query's default (``fuzziness``, ``phrase_slop``) in ``query_string``, which the
    compiler knows; ``simple_query_string``'s bare ``~`` is 2, as Lucene's simple parser reads it.
    """


@dataclass(frozen=True)
class Wildcard:
    """The words of ``field`` (None: the query's default fields) that ``pattern`` matches whole."""

    field: str | None
    pattern: wildcards.Pattern


@dataclass(frozen=True)
class Span:
    """A range on ``field``; a None bound is open."""

    field: str
    low: str | None
    high: str | None
    include_low: bool = True
    include_high: bool = True


@dataclass(frozen=True)
class Everything:
    """``*`` or ``*:*``."""


@dataclass(frozen=True)
class Group:
    """Clauses, each with its occurrence (MUST, SHOULD or MUST_NOT)."""

    clauses: tuple[tuple[str, Node], ...] = field(default_factory=tuple)


Node = Word | Wildcard | Span | Everything | Group

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<phrase>"(?:[^"\\]|\\.)*"?)
      | (?P<regexp>/(?:[^/\\]|\\.)*/)
      | (?P<op>&&|\|\||[()+\-!])
      | (?P<range>[\[{])
      | (?P<word>(?:\\.|[^\s()"\[\]{}^~:\\])+)
      | (?P<colon>:)
      | (?P<modifier>[\^~][\d.]*)
    )""",
    re.VERBOSE,
)
_BOOST = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
_RANGE = re.compile(r"([\[{])\s*(\S+)\s+TO\s+(\S+?)\s*([\]}])")
_COMPARISON = re.compile(r"(>=|<=|>|<)(\S+)")


SIMPLE_FLAGS = {
    **{"AND": 1, "NOT": 2, "OR": 4, "PREFIX": 8, "PHRASE": 16, "PRECEDENCE": 32, "ESCAPE": 64, "WHITESPACE": 128},
    **{"FUZZY": 256, "NEAR": 512},
}
"""``simple_query_string``'s operators by the names of its ``flags``, each with its bit in Lucene's
SimpleQueryParser (a number of ``flags`` is their sum; ``SLOP`` is ``NEAR``)."""
EVERY_OPERATOR = frozenset(SIMPLE_FLAGS)


def flags_of(kind: str, spec: Mapping[str, Any], where: str) -> frozenset[str]:
    """The operators a ``simple_query_string``'s ``flags`` turns on, read as Elasticsearch reads them
    (SimpleQueryStringFlag.resolveFlags): names joined by ``|`` in any case, empty ones skipped, the first ``ALL``
    or ``NONE`` met deciding alone (``"OR|AND|PREFIX"``; ``""``: every one); or a number, the sum of their bits (a
    negative one: every one; a fraction cut to its whole part, as Java's ``intValue``). A ``query_string`` reads
    every operator. An unknown flag, a number past Java's int or another value is a 400 naming ``flags``
    (``where`` is the query's path)."""
    value = spec.get("flags", "ALL") if kind == "simple_query_string" else "ALL"
    at = f"{where}.flags"
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not within_int(value):
            raise InvalidQuery(at, f"{value} is out of range for an int")
        bits = int(value)
        return EVERY_OPERATOR if bits < 0 else frozenset(n for n, bit in SIMPLE_FLAGS.items() if bits & bit)
    if not isinstance(value, str):
        raise InvalidQuery(at, f"expected flags joined by | or a number, not {value!r}")
    on: set[str] = set()
    for name in value.split("|") if value else ["ALL"]:
        name = name.upper()
        if name == "ALL":
            return EVERY_OPERATOR
        if name == "NONE":
            return frozenset()
        if name and name not in SIMPLE_FLAGS and name != "SLOP":
            raise InvalidQuery(at, f"unknown simple_query_string flag [{name}]")
        on |= {"NEAR" if name == "SLOP" else name} - {""}
    return frozenset(on)


def parse(
    text: str,
    default_operator: str = "or",
    simple: bool = False,
    wordless: Callable[[Word], bool] = lambda w: False,
    flags: frozenset[str] = EVERY_OPERATOR,
) -> Node:
    """The tree of ``text``; raises :class:`QuerySyntaxError` or :class:`SyntaxUnsupported`.

    ``wordless`` says which words the analyzer leaves nothing of ("&", "!!"): Elasticsearch's parsers drop such
    a clause as if it were not there (their match queries' zero_terms_query is null), where a clause of no
    words would match nothing: "grey & sofa" under AND finds the grey sofas. ``flags``: the operators a
    ``simple_query_string`` reads (:func:`flags_of`); the others' characters are text.
    """
    default = {"or": SHOULD, "and": MUST}.get(default_operator.lower())
    if default is None:
        raise QuerySyntaxError(f"default_operator must be AND or OR, not {default_operator!r}")
    if simple:
        return _SimpleParser(text, default, wordless, flags).parse()
    parser = _Parser(_tokens(text), default, wordless)
    node = parser.query(top=True)
    if parser.pos != len(parser.tokens):
        raise QuerySyntaxError("unbalanced parentheses")
    return node


def positive_text(node: Node, is_text: Callable[[str | None], bool] = lambda name: True) -> str:
    """The words the query wants, for the encoder: prohibited ones left out, and words on fields for which
    ``is_text`` is false (exact filters such as ``brand.keyword:Acme``)."""
    if isinstance(node, Word):
        return node.text if is_text(node.field) else ""
    if isinstance(node, Wildcard):
        return wildcards.literal_text(node.pattern) if is_text(node.field) else ""
    if isinstance(node, Group):
        return " ".join(
            t for occur, child in node.clauses if occur != MUST_NOT and (t := positive_text(child, is_text))
        )
    return ""


def is_lenient(options: Mapping[str, Any]) -> bool:
    """Whether a full-text query (a ``query_string``, a ``match``) is ``lenient``, true or "true" as Elasticsearch
    reads the flag: Lucene's parser then leaves out each field a word cannot be searched in (a word that is no
    number on a price, a fuzzy or a wildcard word on one), where it would refuse the query. Both backends' readings
    of such a query must do the same, or a query the cluster would answer as sent is refused once a word of it
    takes a reading."""
    return options.get("lenient") in (True, "true")


def is_exists(node: Wildcard) -> bool:
    """Whether the wildcard word is ``field:*``, which Elasticsearch's query_string reads as an exists query on
    the field (a product with no value there, no brand say, is no match), not as a pattern."""
    return node.field is not None and node.pattern == (wildcards.Wild.ANY,)


def has_wildcards(node: Node) -> bool:
    """Whether a clause that is not prohibited is a wildcard word."""
    if isinstance(node, Wildcard):
        return True
    if isinstance(node, Group):
        return any(occur != MUST_NOT and has_wildcards(child) for occur, child in node.clauses)
    return False


def words(node: Node) -> list[Word]:
    """Every word and phrase of the query, prohibited ones too, in order."""
    if isinstance(node, Word):
        return [node]
    if isinstance(node, Group):
        return [word for _, child in node.clauses for word in words(child)]
    return []


def fields(node: Node) -> set[str]:
    """Every field the query names."""
    if isinstance(node, Word | Wildcard | Span):
        return {node.field} if node.field is not None else set()
    if isinstance(node, Group):
        return set().union(*(fields(child) for _, child in node.clauses))
    return set()


_MODIFIED = ("word", "phrase", "tilde", "range")
"""The tokens a ``~`` or a boost (``^2``) may follow (and a group's ``)``)."""


def _tokens(text: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos].isspace():
            pos += 1
            continue
        if text[pos] in "[{":
            match = _RANGE.match(text, pos)
            if match is None:
                raise QuerySyntaxError(f"a range at position {pos} is not [low TO high]")
            tokens.append(("range", match.group(0)))
            pos = match.end()
            continue
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise QuerySyntaxError(f"unexpected {text[pos]!r} at position {pos}")
        kind = match.lastgroup or ""
        value = match.group(kind)
        if kind == "phrase" and (len(value) < 2 or not value.endswith('"') or value.endswith('\\"')):
            raise QuerySyntaxError(f"unterminated phrase at position {pos}")
        if kind == "word" and value in ("AND", "OR", "NOT"):
            kind = "op"
        if kind == "modifier" and not (tokens and (tokens[-1][0] in _MODIFIED or tokens[-1] == ("op", ")"))):
            # Lucene's grammar: a ~ or a boost follows a word, a phrase (a boost a group or a range too)
            raise QuerySyntaxError(f"{value[0]} at position {pos} follows no word")
        if kind == "modifier" and value.startswith("~"):
            if tokens[-1][0] in ("word", "phrase", "tilde"):
                tokens.append(("tilde", value[1:]))
            else:
                raise QuerySyntaxError(f"~ at position {pos} follows no word")
        elif kind == "modifier" and not _BOOST.fullmatch(value[1:]):  # a^abc: Lucene's parser refuses it
            raise QuerySyntaxError(f"a boost at position {pos} is not a number: {text[pos : pos + 20]!r}")
        elif kind != "modifier":  # boosts change scores, not matches
            tokens.append((kind, value))
        pos = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], default: str, wordless: Callable[[Word], bool]):
        self.tokens = tokens
        self.default = default
        self.wordless = wordless
        self.pos = 0
        self.depth = 0
        self.fields: list[str | None] = []
        """The field of each group being read (``title:(sof* OR [1 TO 5])``), None for one that names none."""

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def query(self, top: bool = False) -> Node:
        """Clauses up to ``)`` (or the end), with Lucene's conjunction rules (its classic parser's addClause)."""
        clauses: list[list] = []  # [occur, node]
        conjunction: str | None = None
        parsed = 0  # clauses read, those of no words included
        while (token := self.peek()) is not None and token != ("op", ")"):
            if token in (("op", "AND"), ("op", "&&"), ("op", "OR"), ("op", "||")):
                # Lucene's grammar: a conjunction joins two clauses ("sofa AND", "OR lamp" and "a AND OR b" are
                # ParseExceptions there, a 400 from Elasticsearch).
                if not parsed or conjunction is not None:
                    raise QuerySyntaxError(f"{token[1]} at position {self.pos} joins no clause before it")
                self.take()
                conjunction = MUST if token[1] in ("AND", "&&") else SHOULD
                continue
            modifier = None
            if token in (("op", "+"),):
                self.take()
                modifier = MUST
            elif token in (("op", "-"), ("op", "!"), ("op", "NOT")):
                self.take()
                modifier = MUST_NOT
            node = self.clause(None)
            parsed += 1
            # AND makes the clause before it required, OR (under default_operator AND only) optional; a
            # prohibited one stays prohibited.
            if clauses and clauses[-1][0] != MUST_NOT and conjunction == MUST:
                clauses[-1][0] = MUST
            if clauses and clauses[-1][0] != MUST_NOT and conjunction == SHOULD and self.default == MUST:
                clauses[-1][0] = SHOULD
            if modifier == MUST_NOT:
                occur = MUST_NOT
            elif self.default == SHOULD:
                occur = MUST if modifier == MUST or conjunction == MUST else SHOULD
            else:
                # Under AND every clause is required unless OR introduced it, a + after OR included.
                occur = SHOULD if conjunction == SHOULD else MUST
            conjunction = None
            # A clause of no words (or a group of them) is dropped, after it changed the one before, as in Lucene.
            if not (isinstance(node, Word) and self.wordless(node) or node == Group(())):
                clauses.append([occur, node])
        if conjunction is not None:
            raise QuerySyntaxError("the query ends where a clause was expected")
        if not top:
            if self.peek() != ("op", ")"):
                raise QuerySyntaxError("unbalanced parentheses")
            if not parsed:
                raise QuerySyntaxError("parentheses around no clause")
            self.take()
        if len(clauses) == 1 and clauses[0][0] != MUST_NOT:
            return clauses[0][1]
        if clauses and all(c[0] == MUST_NOT for c in clauses):
            clauses.insert(0, [MUST, Everything()])
        return Group(tuple((c[0], c[1]) for c in clauses))

    def clause(self, field_name: str | None) -> Node:
        """One clause, on ``field_name`` (its ``field:`` prefix) or else on its group's field: as in Lucene's
        classic parser every clause of ``title:( ... )`` is on ``title`` (a word, a phrase, a wildcard, a range:
        django-haystack writes its filters as ``price:([300 TO *])`` and ``title:(sof*)``) unless it names its
        own field."""
        if self.peek() is None:
            raise QuerySyntaxError("the query ends where a clause was expected")
        kind, value = self.take()
        inherited = self.fields[-1] if field_name is None and self.fields else field_name
        if kind == "op" and value == "(":
            self.depth += 1
            if self.depth > MAX_NESTING:
                raise QuerySyntaxError(_too_deep())
            self.fields.append(inherited)
            node = self.query()
            self.fields.pop()
            self.depth -= 1
            return node
        if kind == "word" and self.peek() == ("colon", ":"):
            self.take()
            if field_name is not None:
                raise QuerySyntaxError(f"a field inside field {field_name!r}")
            if value == "*" and self.peek() == ("word", "*"):  # *:*, Lucene's match-all
                self.take()
                return Everything()
            if value == "_exists_":  # _exists_:brand, Lucene's exists query: brand:*
                following = self.peek()
                if following is None or following[0] != "word":
                    raise QuerySyntaxError("_exists_: names no field")
                return Wildcard(self.take()[1].replace("\\", ""), wildcards.parse("*"))
            if value == "*":
                raise SyntaxUnsupported(f"{value}: (exists queries on every field)")
            name = value.replace("\\", "")
            following = self.peek()
            if following is not None and following[0] == "word" and _COMPARISON.fullmatch(following[1]):
                return self._comparison(name, self.take()[1])
            return self.clause(name)
        field_name = inherited
        if kind == "range":
            if field_name is None:
                raise QuerySyntaxError(f"the range {value} names no field")
            match = _RANGE.fullmatch(value)
            assert match is not None  # the tokenizer matched it
            low, high = (None if v == "*" else v.strip('"') for v in (match.group(2), match.group(3)))
            return Span(field_name, low, high, match.group(1) == "[", match.group(4) == "]")
        if kind == "phrase":
            return Word(field_name, _unescape(value[1:-1]), phrase=True, tilde=self.tilde())
        if kind == "regexp":
            raise SyntaxUnsupported(f"regular expression {value!r}")
        if kind == "word":
            if value == "*" and field_name in (None, "*"):
                return Everything()
            if value.startswith("/"):
                raise SyntaxUnsupported(f"regular expression {value!r}")
            if wildcards.has_wildcards(value):
                self.tilde()  # Lucene's parser drops a ~ after a wildcard word
                return Wildcard(field_name, wildcards.parse(value))
            return Word(field_name, _unescape(value), tilde=self.tilde())
        raise QuerySyntaxError(f"unexpected {value!r}")

    def tilde(self) -> str | None:
        """The ``~`` after a word or a phrase (the last one, as Lucene reads ``sofa~1^2~2``)."""
        found = None
        while (token := self.peek()) is not None and token[0] == "tilde":
            found = self.take()[1]
        return found

    @staticmethod
    def _comparison(name: str, text: str) -> Span:
        match = _COMPARISON.fullmatch(text)
        assert match is not None
        op, bound = match.groups()
        if op.startswith(">"):
            return Span(name, bound, None, include_low=op == ">=")
        return Span(name, None, bound, include_high=op == "<=")


@dataclass
class _Level:
    """One level of :class:`_SimpleParser`'s tree (the whole text, or a parenthesised part of it)."""

    top: Node | None = None
    previous: str | None = None
    current: str | None = None
    negations: int = 0


class _SimpleParser:
    """``simple_query_string`` as Lucene's ``SimpleQueryParser`` reads it, which Elasticsearch's uses.

    Its rules differ from the classic parser's: the operators apply left to right without precedence ("a + b c"
    is (a AND b) OR c); a ``-`` right before a clause makes it "everything but the clause", joined to the rest
    by the operator like any clause (with the default OR, "sofa -grey" also matches whatever is not grey, as
    Elasticsearch documents), and a ``-`` before a space negates nothing; a ``+`` or ``|`` with nothing before
    it, a ``)`` or ``"`` without its pair, and an empty ``()`` or ``""`` are ignored. It never fails. An operator
    its ``flags`` leave off is text, as there: without ``WHITESPACE`` the whole text is one word of several
    words, without ``PHRASE`` a quote is part of a word.
    """

    WHITESPACE = " \t\n\r"
    OPERATORS = {"(": "PRECEDENCE", ")": "PRECEDENCE", '"': "PHRASE", "+": "AND", "|": "OR", "-": "NOT"}
    OPERATORS |= dict.fromkeys(WHITESPACE, "WHITESPACE")
    ENDS_A_WORD = '"|+()' + WHITESPACE
    """The operators that end a word (Lucene's tokenFinished): ``-`` and ``\\`` do not."""

    def __init__(self, text: str, default: str, wordless: Callable[[Word], bool], flags: frozenset[str]):
        self.text = text
        self.default = default
        self.wordless = wordless
        self.flags = flags
        self.closing = _closing_parentheses(text, "ESCAPE" in flags)
        self.depth = 0

    def _operator(self, char: str) -> str | None:
        """``char`` where it is an operator the flags turn on, else None (it is text)."""
        return char if self.OPERATORS.get(char, "") in self.flags else None

    def _ends_a_word(self, char: str) -> bool:
        return char in self.ENDS_A_WORD and self._operator(char) is not None

    def parse(self) -> Node:
        if self.text.strip() == "*":
            return Everything()
        top = self._level(0, len(self.text))
        return top if top is not None else Group(())

    def _level(self, pos: int, end: int) -> Node | None:
        if self.depth > MAX_NESTING:
            raise QuerySyntaxError(_too_deep())
        level = _Level()
        while pos < end:
            char = self._operator(self.text[pos])
            if char == "(":
                pos = self._group(level, pos, end)
            elif char == '"':
                pos = self._phrase(level, pos, end)
            elif char in ("+", "|"):
                if level.current is None and level.top is not None:
                    level.current = MUST if char == "+" else SHOULD
                pos += 1
            elif char == "-":
                level.negations += 1
                pos += 1
                continue  # a run of minus signs applies to what follows it directly
            elif char is not None:  # ")" or white space
                pos += 1
            else:
                pos = self._word(level, pos, end)
            level.negations = 0
        return level.top

    def _add(self, level: _Level, node: Node | None) -> None:
        if node is None or isinstance(node, Word) and self.wordless(node):
            return  # nothing to add, and the operator waits for the next clause
        if level.negations % 2:
            node = Group(((MUST, Everything()), (MUST_NOT, node)))
        if level.top is None:
            level.top = node
        else:
            occur = level.current or self.default
            if level.previous != occur:  # a new operator: what came before is one clause of it
                level.top = Group(((occur, level.top),))
            assert isinstance(level.top, Group)
            level.top = Group((*level.top.clauses, (occur, node)))
            level.previous = occur
        level.current = None

    def _group(self, level: _Level, pos: int, end: int) -> int:
        start, close = pos + 1, self.closing.get(pos, end)
        if close >= end:
            return start  # no closing parenthesis: the opening one is ignored
        if close == start:
            level.current = None
        else:
            self.depth += 1
            self._add(level, self._level(start, close))
            self.depth -= 1
        return close + 1

    def _phrase(self, level: _Level, pos: int, end: int) -> int:
        start = close = pos + 1
        chars: list[str] = []
        escaped = slop = False
        while close < end:
            char = self.text[close]
            if not escaped and char == "\\" and "ESCAPE" in self.flags:
                escaped = True
                close += 1
                continue
            if not escaped and char == '"':
                if close + 1 < end and self.text[close + 1] == "~" and "NEAR" in self.flags:
                    close += 1
                    slop = close + 1 < end
                break
            escaped = False
            chars.append(char)
            close += 1
        if close >= end:
            return start  # no closing quote: the opening one is ignored
        if close == start:
            level.current = None
            return close + 1
        tilde = None
        if slop:
            distance, close = self._tilde(close, end)
            tilde = str(distance) if distance else None
        self._add(level, Word(None, "".join(chars), phrase=True, tilde=tilde))
        return close + 1

    def _word(self, level: _Level, pos: int, end: int) -> int:
        chars: list[str] = []
        escaped = prefix = fuzzy = False
        while pos < end:
            char = self.text[pos]
            if not escaped:
                if char == "\\" and "ESCAPE" in self.flags:
                    escaped, prefix = True, False
                    pos += 1
                    continue
                if self._ends_a_word(char):
                    break
                if chars and char == "~" and "FUZZY" in self.flags:
                    fuzzy = True
                    break
                prefix = bool(chars) and char == "*" and "PREFIX" in self.flags
            escaped = False
            chars.append(char)
            pos += 1
        if not chars:
            return pos
        text = "".join(chars)
        if fuzzy:
            distance, pos = self._tilde(pos, end)
            self._add(level, Word(None, text, tilde=str(min(distance, 2)) if distance else None))
        elif prefix:
            self._add(level, Wildcard(None, wildcards.prefix(text[:-1])))
        else:
            self._add(level, Word(None, text))
        return pos

    def _tilde(self, pos: int, end: int) -> tuple[int, int]:
        """The number after the ``~`` at ``pos`` (none: 2; not a whole number: 0) and where it ends."""
        digits: list[str] = []
        while pos < end:
            pos += 1
            if pos < end:
                if self._ends_a_word(self.text[pos]):
                    break
                digits.append(self.text[pos])
        number = "".join(digits)
        if not number:
            return 2, pos
        # Lucene's Integer.parseInt: a number past Java's int, or none, is 0, as text that is no number is.
        value = int(number) if re.fullmatch(r"[+-]?\d+", number) else 0
        return (max(0, value) if within_int(value) else 0), pos


def saturated_int(number: str) -> int:
    """The whole part of the number after a ``~`` (digits and a point), at most Java's largest int: Lucene's
    parser casts it to an int, which saturates (``"sofa bed"~99999999999`` is the largest slop), where Python's
    ``int(float(...))`` overflowed (a 500)."""
    whole = number.split(".")[0]
    return MAX_INT if len(whole) > len(str(MAX_INT)) else min(int(whole or 0), MAX_INT)


def _closing_parentheses(text: str, escape: bool) -> dict[int, int]:
    """Where each parenthesis of ``text`` that has its pair closes (a backslash escapes one where ``escape``), by
    where it opens.

    One pass, as Lucene's simple parser pairs them: looking for each one's pair from where it opens cost a pass
    of the rest of the text per parenthesis, so a text of unpaired ones took time quadratic in its length.
    """
    closing: dict[int, int] = {}
    opened: list[int] = []
    escaped = False
    for pos, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\" and escape:
            escaped = True
        elif char == "(":
            opened.append(pos)
        elif char == ")" and opened:
            closing[opened.pop()] = pos
    return closing


def _too_deep() -> str:
    return f"parentheses nested deeper than {MAX_NESTING} levels"


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
