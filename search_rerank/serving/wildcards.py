"""Wildcard words (``sof*``, ``s?fa``, ``ABC-12*``) as Lucene's WildcardQuery reads them, for the embedded index.

A shop's search box that sends ``query_string`` passes on what a shopper types, and shoppers type ``sof*``; a
hand-written autocomplete sends a ``prefix`` query; a part-number lookup a ``wildcard``. Elasticsearch answers all
three, and a 501 for them is an error page in front of the shopper. Here ``*`` is any run of characters, ``?``
one, and a backslash makes the next character itself, as in Lucene. The embedded index answers a pattern with
tantivy's regular-expression query, which walks the field's term dictionary as an automaton: a leading ``*``
walks every term (about 4 ms each on 2,000 products here, growing with the catalogue), so a body's patterns are
counted against ``service.max_wildcard_terms``, as Elasticsearch counts them against its ``max_clause_count``.

What an automaton costs to build grows with the wildcards in a pattern and the text after its first one (tens of
microseconds for ``sof*``; ``?*?*...`` or ``*`` before a long text near tantivy's size limit, a third of a second
each): a pattern counts once per wildcard in it, and one with more than :data:`MAX_TAIL` characters from its first
wildcard on is refused, so a body's bound holds what it costs (Lucene refuses such a pattern by the states its
automaton would need, ``max_determinized_states``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from enum import Enum

_META = frozenset("\\.+*?()|[]{}^$#&-~")
"""What the regular-expression syntaxes of tantivy (Rust's regex) and Python treat as more than itself."""


ANY_CHAR = "(?s:.)"
"""Any one character, a line break too (tantivy's ``.`` alone leaves line breaks out)."""
MAX_TAIL = 32
"""The most characters a pattern may have from its first wildcard on (wildcards included): the automaton's states
grow with them, where the text before the first wildcard is one walk down the term dictionary."""


class Wild(Enum):
    """A wildcard, by the regular expression it stands for."""

    ANY = ".*"
    ONE = "."


Pattern = tuple[str | Wild, ...]
"""Literal text and wildcards in order."""


def parse(text: str) -> Pattern:
    """``text`` with ``*`` and ``?`` as wildcards; ``\\*`` is a star, ``\\\\`` a backslash."""
    parts: list[str | Wild] = []
    literal: list[str] = []
    escaped = False
    for char in text:
        if escaped or char not in "*?\\":
            literal.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        else:
            if literal:
                parts.append("".join(literal))
                literal = []
            if char == "*" and parts and parts[-1] is Wild.ANY:
                continue  # ** is *: the same words, a smaller automaton
            parts.append(Wild.ANY if char == "*" else Wild.ONE)
    if escaped:
        literal.append("\\")  # a trailing backslash escapes nothing: it is itself, as in Lucene's WildcardQuery
    if literal:
        parts.append("".join(literal))
    return tuple(parts)


def prefix(text: str) -> Pattern:
    """The words beginning with ``text`` (a ``prefix`` query's value, taken as it is)."""
    return (text, Wild.ANY) if text else (Wild.ANY,)


def has_wildcards(text: str) -> bool:
    return any(isinstance(part, Wild) for part in parse(text))


def weight(pattern: Pattern) -> int:
    """What the pattern counts against ``service.max_wildcard_terms``: its wildcards (at least one)."""
    return max(1, sum(isinstance(part, Wild) for part in pattern))


def tail(pattern: Pattern) -> int:
    """The characters from the pattern's first wildcard on, wildcards included (see :data:`MAX_TAIL`)."""
    first = next((i for i, part in enumerate(pattern) if isinstance(part, Wild)), len(pattern))
    return sum(1 if isinstance(part, Wild) else len(part) for part in pattern[first:])


def regex(pattern: Pattern, literal: Callable[[str], str] = str, one: str = ANY_CHAR) -> str:
    """The regular expression that matches a whole term as ``pattern`` does; ``literal`` turns its text into the
    form the field indexes (lower case, a filter key's folding), ``one`` is what one character of the text is
    there (any, a line break too; one JSON-escaped character in a filter key)."""
    out = []
    for part in pattern:
        if isinstance(part, Wild):
            out.append(one if part is Wild.ONE else f"(?:{one})*")
        else:
            out.append(escape(literal(part)))
    return "".join(out)


def escape(text: str) -> str:
    """``text`` as a regular expression that matches it alone."""
    return "".join(f"\\{c}" if c in _META else c for c in text)


def matches(pattern: Pattern, text: str, literal: Callable[[str], str] = str) -> bool:
    """Whether ``pattern`` matches the whole of ``text`` (a highlight's term), by the two-pointer walk that goes
    back only to the last ``*``: at worst the product of the lengths, where Python's regular expressions
    backtrack exponentially on ``*a*a*a...b`` (tantivy's automaton, which finds the products, does not)."""
    tokens: list[str | Wild] = []
    for part in pattern:
        tokens.extend([part] if isinstance(part, Wild) else literal(part))
    t = p = 0
    star, resume = -1, 0
    while t < len(text):
        if p < len(tokens) and (tokens[p] is Wild.ONE or tokens[p] == text[t]):
            t, p = t + 1, p + 1
        elif p < len(tokens) and tokens[p] is Wild.ANY:
            star, resume, p = p, t, p + 1
        elif star >= 0:
            resume += 1
            t, p = resume, star + 1
        else:
            return False
    return all(token is Wild.ANY for token in tokens[p:])


def lucene(pattern: Pattern) -> str:
    """The pattern in Lucene's wildcard syntax (a ``wildcard`` query's value), its text's own stars escaped."""
    return "".join(
        "*" if part is Wild.ANY else "?" if part is Wild.ONE else re.sub(r"([*?\\])", r"\\\1", part) for part in pattern
    )


def literal_text(pattern: Pattern) -> str:
    """The pattern's text without its wildcards, word by word (``sof*`` is "sof"): what the encoder and the
    reranker read of it."""
    return " ".join(part for part in pattern if isinstance(part, str) and part.strip())
