"""Lucene's regular expressions (``RegExp``, the syntax of a ``terms`` aggregation's ``include`` and ``exclude``)
rewritten in the syntax of tantivy's term automaton (Rust's ``regex``), for the embedded index.

Searchkit's searchable refinement list sends what a shopper types into a facet's search box as a pattern of
this kind: ``([a-zA-Z]+ )+?[aA][cC][mM].*`` for "acm". The two syntaxes differ where a front end's patterns
reach: in Lucene ``+?`` is ``+`` made optional (``(x+)?``, no lazy repetition), ``.`` is any character, a
newline included, ``@`` is any string, ``"..."`` a literal string, and ``^``, ``$``, ``-`` outside a class are
characters like any other; tantivy refuses a lazy repetition and reads ``^`` and ``$`` as anchors. Both match
the whole term. So a pattern is parsed by Lucene's grammar and written out again with every literal character
escaped: what tantivy matches is what Lucene matches. Intersection (``&``), complement (``~``), the empty
language (``#``) and numeric intervals (``<1-10>``) have no equivalent there and are refused, naming the
pattern; a pattern Lucene cannot parse is a 400, as in Elasticsearch.
"""

from __future__ import annotations

from .body_checks import InvalidQuery
from .es_compat import Unsupported
from .query_string import MAX_NESTING
from .wildcards import ANY_CHAR, escape

PRE_CLASSES = {
    "d": ("0-9", False),
    "D": ("0-9", True),
    "s": ("\\x{20}\\t\\n\\r", False),
    "S": ("\\x{20}\\t\\n\\r", True),
    "w": ("a-zA-Z_0-9", False),
    "W": ("a-zA-Z_0-9", True),
}
"""Lucene's shorthand classes: ASCII only, whatever Rust's ``\\d``, ``\\s`` and ``\\w`` would take in."""
ANY_STRING = f"{ANY_CHAR}*"
"""``.*`` and ``@``, written one way so that a run of them is written once (see :meth:`_Parser.concatenation`)."""
MAX_LENGTH = 1000
"""The longest pattern read, as Elasticsearch's ``index.max_regex_length`` (1,000) refuses a longer ``include``."""
NO_EQUIVALENT = {
    "&": "intersection (&)",
    "~": "complement (~)",
    "#": "the empty language (#)",
    "<": "a numeric interval or named automaton (<...>)",
}


def to_tantivy(pattern: str, path: str) -> tuple[str, int]:
    """``pattern`` (Lucene's syntax, every optional operator on, as Elasticsearch reads an ``include``) as the
    same language in tantivy's syntax, and its repetitions; :class:`InvalidQuery` where Lucene cannot parse it,
    :class:`Unsupported` for an operator tantivy has no equivalent of.

    The repetitions (each ``*``, ``+`` and ``?`` one, ``{m,n}`` its most copies, a repetition inside a repeated
    part once per copy of it) are what the automaton's size and so its cost grow with, from microseconds for Searchkit's facet search to a tenth of a second for
    ``(.*a){30}`` or ``[^x]*`` two hundred times: the caller counts them against the body's bound."""
    if len(pattern) > MAX_LENGTH:
        raise InvalidQuery(
            path,
            f"the regular expression is {len(pattern)} characters long, more than the {MAX_LENGTH} allowed "
            "(Elasticsearch's index.max_regex_length)",
        )
    parser = _Parser(pattern, path)
    return parser.parse(), parser.repetitions


class _Parser:
    """Lucene's ``RegExp`` grammar, recursive descent as Lucene parses it, writing tantivy's syntax as it goes."""

    def __init__(self, pattern: str, path: str):
        self.text = pattern
        self.path = path
        self.pos = 0
        self.depth = 0
        self.repetitions = 0
        """Groups open at this point: the parser recurses once per group, so without a bound a pattern of
        thousands of ``(`` (a 20 KB aggregation) ran out of stack, a 500."""

    def parse(self) -> str:
        if not self.text:
            return ""
        out = self.union()
        if self.pos < len(self.text):
            self.fail(f"end-of-string expected at position {self.pos}")
        return out

    def fail(self, reason: str) -> None:
        raise InvalidQuery(self.path, f"invalid regular expression {self.text!r}: {reason}")

    def more(self) -> bool:
        return self.pos < len(self.text)

    def peek(self, chars: str) -> bool:
        return self.more() and self.text[self.pos] in chars

    def next(self) -> str:
        if not self.more():
            self.fail("unexpected end-of-string")
        char = self.text[self.pos]
        self.pos += 1
        return char

    def union(self) -> str:
        parts = [self.intersection()]
        while self.peek("|"):
            self.pos += 1
            parts.append(self.intersection())
        return parts[0] if len(parts) == 1 else f"(?:{'|'.join(parts)})"

    def intersection(self) -> str:
        out = self.concatenation()
        if self.peek("&"):
            raise Unsupported(self.path, f"the regular expression {self.text!r}: {NO_EQUIVALENT['&']}")
        return out

    def concatenation(self) -> str:
        """The parts in order, a run of any-strings written once: ``@@@...`` or ``.*.*...`` a thousand times over
        is the language of one, and tantivy's automaton for the run took a quarter of a second per pattern."""
        parts: list[str] = []
        while self.more() and not self.peek(")|&"):
            part = self.repeat()
            if not (part == ANY_STRING and parts and parts[-1] == ANY_STRING):
                parts.append(part)
        return "".join(parts)

    def repeat(self) -> str:
        before = self.repetitions
        out = self.complement()
        while self.peek("?*+{"):
            op = self.next()
            if op == "{":
                start = self.pos
                while self.peek("0123456789"):
                    self.pos += 1
                if start == self.pos:
                    self.fail(f"integer expected at position {self.pos}")
                low = int(self.text[start : self.pos])
                high: int | None = low
                if self.peek(","):
                    self.pos += 1
                    start = self.pos
                    while self.peek("0123456789"):
                        self.pos += 1
                    high = int(self.text[start : self.pos]) if start != self.pos else None
                if not self.peek("}"):
                    self.fail(f"expected '}}' at position {self.pos}")
                self.pos += 1
                if high is not None and high < low:
                    self.fail(f"invalid repetition {{{low},{high}}}")
                op = f"{{{low}}}" if high == low else f"{{{low},}}" if high is None else f"{{{low},{high}}}"
            # The automaton holds that many copies of the part repeated, each with the repetitions inside it:
            # nested ones multiply (((.{0,2}){2}){2}... twelve deep counted 26 added up, and took minutes).
            copies = 1 if op in "*+?" else max(low, high or 0)
            self.repetitions = before + copies * (1 + self.repetitions - before)
            # Each operator applies to all before it (Lucene's "x+?" is (x+)?), never lazily.
            if (out == ANY_CHAR and op == "*") or (out in (ANY_STRING, f"(?:{ANY_STRING})") and op in "*+?"):
                out = ANY_STRING  # .* and (.*)* (.*)+ (.*)? are any string (.+ is not: it needs a character)
                continue
            out = f"(?:{out}){op}"
        return out

    def complement(self) -> str:
        if self.peek("~"):
            raise Unsupported(self.path, f"the regular expression {self.text!r}: {NO_EQUIVALENT['~']}")
        return self.char_class()

    def char_class(self) -> str:
        if not self.peek("["):
            return self.simple()
        self.pos += 1
        negated = self.peek("^")
        if negated:
            self.pos += 1
        members: list[str] = []
        while True:
            members.append(self.class_member())
            if self.peek("]"):
                break
            if not self.more():
                self.fail("expected ']'")
        self.pos += 1
        return f"[{'^' if negated else ''}{''.join(members)}]"

    def class_member(self) -> str:
        shorthand = self.shorthand()
        if shorthand is not None:
            chars, negated = PRE_CLASSES[shorthand]
            return f"[{'^' if negated else ''}{chars}]"
        low = self.char()
        if self.peek("-"):
            self.pos += 1
            high = self.char()
            if ord(high) < ord(low):
                self.fail(f"invalid range {low}-{high}")
            return f"{escape(low)}-{escape(high)}"
        return escape(low)

    def shorthand(self) -> str | None:
        if self.peek("\\") and self.pos + 1 < len(self.text) and self.text[self.pos + 1] in PRE_CLASSES:
            self.pos += 2
            return self.text[self.pos - 1]
        return None

    def char(self) -> str:
        if self.peek("\\"):
            self.pos += 1
        return self.next()

    def simple(self) -> str:
        if not self.more():
            self.fail("unexpected end-of-string")
        char = self.text[self.pos]
        if char in "#<":
            raise Unsupported(self.path, f"the regular expression {self.text!r}: {NO_EQUIVALENT[char]}")
        if char == ".":
            self.pos += 1
            return ANY_CHAR
        if char == "@":
            self.pos += 1
            return ANY_STRING
        if char == '"':
            end = self.text.find('"', self.pos + 1)
            if end < 0:
                self.fail("expected '\"'")
            literal = self.text[self.pos + 1 : end]
            self.pos = end + 1
            return f"(?:{escape(literal)})"
        if char == "(":
            self.pos += 1
            if self.peek(")"):
                self.pos += 1
                return "(?:)"
            self.depth += 1
            if self.depth > MAX_NESTING:
                self.fail(f"groups nested deeper than {MAX_NESTING} levels")
            inner = self.union()
            self.depth -= 1
            if not self.peek(")"):
                self.fail("expected ')'")
            self.pos += 1
            return f"(?:{inner})"
        shorthand = self.shorthand()
        if shorthand is not None:
            chars, negated = PRE_CLASSES[shorthand]
            return f"[{'^' if negated else ''}{chars}]"
        return escape(self.char())
