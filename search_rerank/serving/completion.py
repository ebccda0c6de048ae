"""Elasticsearch's completion suggester, on either backend: the product titles that begin with what is typed.

Search UI's documented autocomplete asks for its suggestions this way (``suggest.<name>.completion`` on a
``completion`` field, ``skip_duplicates``, ``fuzzy: {fuzziness: 1}``), and a 501 left its suggestion list
empty. Neither the embedded index nor the cluster's product mapping has a completion field; the titles are one,
and every index version keeps them in its product store, whichever backend serves BM25. They are read from there
into a sorted list (:class:`TitleIndex`), once per store and again in the background once older than
``REFRESH_S``, the old list answering meanwhile, so that a prefix is a binary search.

Where Elasticsearch's choices would mean nothing here, the product's are these:
- the ``simple`` analyser of a completion field drops digits, which a catalogue's model numbers and sizes
  need ("3 seater", "dw-4500"): titles and prefixes are cut into words of letters *and digits*;
- titles without a ``weight`` all weigh the same in Elasticsearch: here the best sellers come first (as the
  page of a search without words lists them), then the title; every option's ``_score`` is 1.0;
- with ``fuzzy``, titles that begin with the prefix exactly come before those within its edits, and these by
  their edits, fewest first (Elasticsearch scores a longer exact beginning higher).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ..core.fuzziness import Fuzziness
from ..core.store import ProductStore
from .body_checks import InvalidQuery, a_boolean, a_count, a_string, an_object
from .es_compat import SourceFilter, Unsupported, typed_key
from .field_aliases import alias_of, source_with_aliases
from .fuzziness import parse_fuzziness
from .refreshed import PerStore

REFRESH_S = 60.0
"""How old a title list may grow before it is read again (a catalogue update is seen within this)."""
MAX_SUGGESTIONS = 100
"""The most options one completion suggester may ask for (Elasticsearch's default is 5)."""
MAX_FUZZY_SCANNED = 10_000
"""The most titles one fuzzy completion compares with its prefix (each comparison is Python, some 30 µs).
Elasticsearch's fuzzy completion walks an automaton; here the titles that share the prefix's first
``prefix_length`` letters are compared one by one, and with ``prefix_length: 0`` that was every title: half a
minute of CPU at a million titles for one request from any browser. Where more titles than this share them, more
first letters are kept as typed, until few enough do."""
MAX_SORTED = 10_000
"""The most titles one completion sorts by sales to find its first options. A shorter prefix begins more titles
(an empty one, all of them: seconds of CPU at a million titles, from any browser); past this the best-seller order
built with the list is walked instead, until ``size`` titles that begin with the prefix are found."""
COMPLETED_FIELD = "title"
_NOT_WORD = re.compile(r"[\W_]+")


def completion_key(text: str) -> str:
    """The words of ``text`` (letters and digits, case-folded) joined by one space: what a prefix is matched on."""
    return " ".join(w for w in _NOT_WORD.split(text.casefold()) if w)


@dataclass(frozen=True)
class Completion:
    """One ``suggest.<name>.completion`` of a request."""

    name: str
    prefix: str
    size: int
    skip_duplicates: bool
    fuzziness: Fuzziness | None
    prefix_length: int
    min_length: int


def split_suggest(spec: Any, aliases: Mapping[str, str]) -> tuple[list[Completion], dict[str, Any]]:
    """The body's ``suggest`` in two: its completion suggesters, answered here from the product titles, and the
    term and phrase suggesters as the body had them (with its shared ``text`` when any remain), which only an
    index's own terms can answer: the cluster's where there is one, else the embedded index's (did_you_mean)."""
    spec = an_object(spec, "suggest")
    shared_text = spec.get("text")
    completions = []
    rest: dict[str, Any] = {}
    for name, suggester in spec.items():
        if name == "text":
            continue
        where = f"suggest.{name}"
        suggester = an_object(suggester, where)
        if suggester_kind(suggester, where) == "completion":
            completions.append(_completion(name, suggester, shared_text, aliases))
        else:
            rest[name] = suggester
    if rest and shared_text is not None:
        rest["text"] = shared_text
    return completions, rest


def suggester_kind(suggester: Mapping[str, Any], where: str) -> str:
    """Which suggester ``suggester`` is: completion, term or phrase (a 400 naming ``where`` unless exactly one)."""
    kinds = [k for k in ("completion", "term", "phrase") if k in suggester]
    if len(kinds) != 1:
        raise InvalidQuery(where, "expected exactly one of completion, term or phrase")
    return kinds[0]


def _completion(name: str, suggester: Mapping[str, Any], shared_text: Any, aliases: Mapping[str, str]) -> Completion:
    where = f"suggest.{name}"
    options = an_object(suggester["completion"], f"{where}.completion")
    field = a_string(options.get("field"), f"{where}.completion.field")
    target = alias_of(field, aliases)
    if target != COMPLETED_FIELD and not target.startswith(f"{COMPLETED_FIELD}."):
        raise Unsupported(
            f"{where}.completion.field",
            f"completions of {field!r}: they come from product titles (name title, a sub-field of it, or map the "
            "name onto title in service.field_aliases)",
        )
    for unsupported in ("contexts", "regex"):
        if unsupported in options or unsupported in suggester:
            raise Unsupported(f"{where}.{unsupported}", f"{unsupported} in a completion suggester")
    text = suggester.get("prefix", suggester.get("text", shared_text))
    prefix = a_string(text, f"{where}.prefix", scalars=True)
    # "5" and "true" as Elasticsearch's parser reads them (a form's values are text).
    size = a_count(options.get("size", 5), f"{where}.completion.size", minimum=1)
    if size > MAX_SUGGESTIONS:
        raise InvalidQuery(f"{where}.completion.size", f"expected a whole number from 1 to {MAX_SUGGESTIONS}")
    skip = a_boolean(options.get("skip_duplicates", False), f"{where}.completion.skip_duplicates")
    fuzzy = options.get("fuzzy", False)
    if fuzzy is False or fuzzy is None:
        return Completion(name, prefix, size, skip, None, 1, 3)
    fuzzy = {} if fuzzy is True else an_object(fuzzy, f"{where}.completion.fuzzy")
    path = f"{where}.completion.fuzzy"
    fuzziness = parse_fuzziness(fuzzy.get("fuzziness", "AUTO"), fuzzy.get("transpositions", True), path)
    lengths = [fuzzy.get(key, default) for key, default in (("prefix_length", 1), ("min_length", 3))]
    for key, value in zip(("prefix_length", "min_length"), lengths, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InvalidQuery(f"{path}.{key}", "expected a non-negative integer")
    return Completion(name, prefix, size, skip, fuzziness, lengths[0], lengths[1])


class TitleIndex:
    """Every title, sorted by its :func:`completion_key`; best sellers first among equal keys."""

    def __init__(self, rows: Iterable[tuple[str, str, int]]):
        self.entries = sorted((completion_key(title), -sales, title, pid) for pid, title, sales in rows if title)
        self.keys = [entry[0] for entry in self.entries]
        self.best_sellers = sorted(range(len(self.entries)), key=lambda i: _by_sales(self.entries[i]))
        """Positions in ``entries``, best sellers first (see :data:`MAX_SORTED`)."""

    def complete(self, completion: Completion) -> list[tuple[str, str]]:
        """The (id, title) options for ``completion``, in the order described in the module docstring."""
        prefix = completion_key(completion.prefix)
        exact = self._beginning(prefix)
        if exact.stop - exact.start > MAX_SORTED:
            ranked: Iterable[Any] = (self.entries[i] for i in self.best_sellers if exact.start <= i < exact.stop)
        else:
            ranked = sorted(self.entries[exact], key=_by_sales)
        found = _first(ranked, completion)
        fuzzy = completion.fuzziness
        if fuzzy is None or len(found) >= completion.size or len(prefix) < completion.min_length:
            return found
        edits = fuzzy.distance(prefix)
        if edits == 0:
            return found
        kept = completion.prefix_length
        scanned = self._beginning(prefix[:kept])
        while scanned.stop - scanned.start > MAX_FUZZY_SCANNED and kept < len(prefix):
            kept += 1
            scanned = self._beginning(prefix[:kept])
        near = []
        for entry in self.entries[scanned]:
            if entry[0].startswith(prefix):
                continue
            distance = prefix_distance(prefix, entry[0][: len(prefix) + edits], fuzzy.transpositions, edits)
            if distance <= edits:
                near.append((distance, *_by_sales(entry)))
        near.sort()
        seen = {title for _, title in found} if completion.skip_duplicates else set()
        more = _first((entry for entry in near if entry[2] not in seen), completion)
        return (found + more)[: completion.size]

    def _beginning(self, prefix: str) -> slice:
        """The entries whose key begins with ``prefix``."""
        start = bisect_left(self.keys, prefix)
        return slice(start, bisect_left(self.keys, prefix + "\U0010ffff", start))


def _by_sales(entry: tuple[str, int, str, str]) -> tuple[int, str, str]:
    _, minus_sales, title, pid = entry
    return minus_sales, title, pid


def _first(entries: Iterable[Any], completion: Completion) -> list[tuple[str, str]]:
    """The first ``size`` (id, title) pairs of ``entries`` (ending in title, id), one per title if asked."""
    out: list[tuple[str, str]] = []
    seen: set[str] = set()
    for *_, title, pid in entries:
        if completion.skip_duplicates and title in seen:
            continue
        seen.add(title)
        out.append((pid, title))
        if len(out) == completion.size:
            break
    return out


def prefix_distance(prefix: str, text: str, transpositions: bool, limit: int) -> int:
    """The fewest edits (insertions, deletions, substitutions; swaps of neighbours as one when
    ``transpositions``) that turn ``prefix`` into a beginning of ``text``; ``limit + 1`` once it is known to be
    more than ``limit``.

    Only the cells within ``limit`` of the diagonal are computed (a beginning more than ``limit`` characters
    longer or shorter is more than ``limit`` edits away), so a comparison costs the prefix's length times
    ``2 * limit + 1``: the whole table cost its length squared, and a shopper's prefix of a 4,000-character title
    took 9 s. Row ``i`` holds the cells ``j = i - limit + k`` for ``k`` from 0 to ``2 * limit``."""
    worse = limit + 1
    width = 2 * limit + 1
    end = len(text)
    previous = [j if 0 <= j <= end else worse for j in range(-limit, limit + 1)]  # row 0: j edits to j letters
    before = [worse] * width
    for i in range(1, len(prefix) + 1):
        current = [worse] * width
        for k in range(width):
            j = i - limit + k
            if j < 0 or j > end:
                continue
            if j == 0:
                current[k] = min(i, worse)
                continue
            up = previous[k + 1] if k + 1 < width else worse  # row i - 1, column j
            left = current[k - 1] if k > 0 else worse  # row i, column j - 1
            best = min(up + 1, left + 1, previous[k] + (prefix[i - 1] != text[j - 1]))
            swapped = i > 1 and j > 1 and prefix[i - 1] == text[j - 2] and prefix[i - 2] == text[j - 1]
            if transpositions and swapped:
                best = min(best, before[k] + 1)  # row i - 2, column j - 2
            current[k] = min(best, worse)
        if min(current) > limit:
            return worse
        before, previous = previous, current
    return min(previous)


def title_indexes() -> PerStore[TitleIndex]:
    """One :class:`TitleIndex` per product store (built at its first suggestion), read again in the background
    once older than ``REFRESH_S``."""
    return PerStore(
        lambda store: TitleIndex(store.titles()),
        REFRESH_S,
        name="title-index",
        failed="completion: reading the titles failed",
    )


def suggestions(
    completions: list[Completion],
    titles: TitleIndex,
    store: ProductStore,
    index: str,
    source: SourceFilter,
    aliases: Mapping[str, str],
    typed_keys: bool = False,
) -> dict[str, Any]:
    """Elasticsearch's ``suggest`` section of the answer: per suggester, one entry with its options (under
    ``completion#<name>`` with ``typed_keys``)."""
    found = {c.name: titles.complete(c) for c in completions}
    ids = list(dict.fromkeys(pid for options in found.values() for pid, _ in options))
    products = store.get(ids) if source.enabled else {}
    out = {}
    for completion in completions:
        options = []
        for pid, title in found[completion.name]:
            option: dict[str, Any] = {"text": title, "_index": index, "_id": pid, "_score": 1.0}
            if source.enabled and pid in products:
                option["_source"] = source.apply(source_with_aliases(products[pid].to_record(), aliases))
            options.append(option)
        text = completion.prefix
        key = typed_key("completion", completion.name) if typed_keys else completion.name
        out[key] = [{"text": text, "offset": 0, "length": len(text), "options": options}]
    return out
