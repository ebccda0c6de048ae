"""Co-interest mined from UBI events: which products the same shopper clicked or bought together.

"Shoppers who looked at this also looked at" needs no model: two products
clicked, added to a cart or bought in the same session are evidence of a
shared interest, and the pairs counted over the log rank each product's
companions. A session is the event's ``session_id`` (record or attributes),
else its ``client_id``, else its ``query_id``, so that a front end that sends
fewer ids still yields baskets, only smaller ones.

A basket of more than ``max_basket`` products is left out: its pairs grow
with the square of its size, and no shopper clicks thousands of products;
a crawler does, and so does an id that a front end sends for every shopper
(a constant client id), whose "basket" is the whole catalogue. POST
/ubi/events takes such events from anyone, so without the limit a few
thousand of them made each mining take minutes and gigabytes.

A forgotten shopper (``DELETE /profiles/{user_id}``, whose record the UBI log
keeps) is left out as ``profiles build`` leaves them out: every session in
which an event received before the forget named them (with min_support 1, a
product's companions could otherwise show one shopper's basket to anyone).

POST /ubi/events takes events from anyone, so what one mining holds is bounded by more than the basket: an event
whose product the catalogue does not hold is left out (made-up ids, 100 to a request, grew a worker's table by
700 KB a request, to a gigabyte in 800 requests), and past ``max_pairs`` pairs counted the rarest are dropped,
those seen in fewest sessions first (lossy counting: random pairs, one session each, go; the pairs many sessions
share, which are the table, stay).

The reader is lenient on purpose: the table is a convenience rebuilt every few
minutes from logs that front ends write, so an unreadable line is skipped and
counted, never fatal.
"""

from __future__ import annotations

import dataclasses
import glob
import json
import logging
import math
import stat
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from ..core.profile import safe_id
from .clicks import forgotten_shopper, named_action, received_s

log = logging.getLogger(__name__)

INTEREST_ACTIONS = frozenset({"click", "add_to_cart", "purchase"})
"""UBI actions that show interest in a product (an impression does not)."""
MAX_LINE_BYTES = 1 << 20
"""An event is a few hundred bytes; a longer "line" is damage (a file cut by a crash can hold a run of NUL bytes
with no line end), skipped in pieces of this size rather than read whole into memory."""


@dataclass(frozen=True)
class CoInterest:
    """Per product, its companions and how many sessions showed interest in both, most shared first."""

    companions: Mapping[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    sessions: int = 0
    skipped_lines: int = 0
    oversized: int = 0
    """Baskets left out for holding more than ``max_basket`` products."""
    dropped_below: int = 0
    """The most sessions a pair dropped to stay within ``max_pairs`` had been seen in (0: none was dropped)."""

    def also(self, product_id: str, k: int) -> list[tuple[str, int]]:
        return list(self.companions.get(product_id, ())[:k])


def co_interest(
    baskets: Iterable[Iterable[str]],
    min_support: int = 1,
    keep: int = 50,
    max_basket: int | None = None,
    max_pairs: int | None = None,
) -> CoInterest:
    """Count the pairs within each basket; keep each product's ``keep`` most frequent companions seen in at least
    ``min_support`` baskets (ties by id, so the table is deterministic). A basket of more than ``max_basket``
    products is left out and counted (None: none is). Past ``max_pairs`` pairs held (each counted both ways), those
    seen in fewest baskets are dropped until at most half remain, and the table says at or below how many baskets
    (``dropped_below``; None: no bound)."""
    pairs: dict[str, Counter[str]] = defaultdict(Counter)
    sessions = oversized = held = floor = 0
    for basket in baskets:
        items = sorted(set(basket))
        if max_basket is not None and len(items) > max_basket:
            oversized += 1
            continue
        sessions += 1
        for i, a in enumerate(items):
            for b in items[i + 1 :]:
                held += 2 if b not in pairs[a] else 0
                pairs[a][b] += 1
                pairs[b][a] += 1
        if max_pairs is not None and held > max_pairs:
            held, dropped = _drop_rare(pairs, max_pairs // 2)
            floor = max(floor, dropped)
    companions = {
        pid: tuple(
            sorted(((other, n) for other, n in counts.items() if n >= min_support), key=lambda x: (-x[1], x[0]))[:keep]
        )
        for pid, counts in pairs.items()
    }
    kept = {pid: c for pid, c in companions.items() if c}
    return CoInterest(kept, sessions, oversized=oversized, dropped_below=floor)


def _drop_rare(pairs: dict[str, Counter[str]], most: int) -> tuple[int, int]:
    """Drop the pairs counted the fewest times, as few counts as leave at most ``most`` (each way counted): how
    many are left, and the count at or below which they were dropped. Only as rare as needed: a flood of pairs
    seen once each takes the pairs seen once, not the pairs seen twice."""
    counted = Counter(n for counts in pairs.values() for n in counts.values())
    left = sum(counted.values())
    floor = 0
    for n in sorted(counted):
        if left <= most:
            break
        left -= counted[n]
        floor = n
    for a in list(pairs):
        counts = pairs[a]
        for b in [b for b, n in counts.items() if n <= floor]:
            del counts[b]
        if not counts:
            del pairs[a]
    return left, floor


def ubi_files(log_path: Path) -> list[Path]:
    """Every worker's UBI file for ``service.ubi_log_path``, rotated backups included (see serving.ubi.UbiLog):
    ``ubi.<pid>.jsonl`` and ``ubi.<pid>.jsonl.1`` for ``ubi.jsonl``; ``ubi.<pid>`` and ``ubi.<pid>.1`` for a path
    without a suffix. The name is matched as written, not read as a pattern (a ``[`` or ``*`` in the file's name)."""
    stem, suffix = glob.escape(log_path.stem), glob.escape(log_path.suffix)
    return sorted(log_path.parent.glob(f"{stem}.*{suffix}*" if suffix else f"{stem}.*"))


def ubi_baskets(
    paths: Iterable[Path], actions: frozenset[str] = INTEREST_ACTIONS, known: AbstractSet[str] | None = None
) -> tuple[list[set[str]], int]:
    """The products each session showed interest in, from UBI event files; and how many lines were unreadable.
    ``known``: the catalogue's ids, an event on any other product left out (None: every product counts).

    Only files are read (a FIFO too, a stream a writer ends): a device under a log's name (a link to
    ``/dev/full``, ``/dev/zero``) never ends, and its bytes, with no line end, were once read into one line
    until the worker ran out of memory.
    """
    baskets: dict[str, set[str]] = defaultdict(set)
    named: dict[str, dict[str, float]] = defaultdict(dict)  # session -> shopper -> first event naming them
    forgotten: dict[str, float] = {}
    skipped = 0
    for path in paths:
        try:
            if not _a_file(path):
                log.warning("not reading %s for co-interest: not a file", path)
                continue
            with path.open("rb") as handle:  # line by line: a file is up to 100 MB
                for line in bounded_lines(handle):
                    if line is not None and not line.strip():
                        continue
                    record = _record(line)
                    forget = None
                    if record is not None:
                        try:
                            forget = forgotten_shopper(record)
                        except ValueError:  # a forget's record naming no shopper
                            record = None
                    if record is None:
                        skipped += 1
                        continue
                    if forget is not None:
                        forgotten[forget[0]] = max(forgotten.get(forget[0], -math.inf), forget[1])
                    elif (found := _interest(record, actions)) is not None:
                        session, product, user = found
                        if known is not None and product not in known:
                            continue
                        baskets[session].add(product)
                        if user is not None:
                            first = named[session].get(user, math.inf)
                            named[session][user] = min(first, _received(record))
        except OSError as exc:  # rotated away between listing and reading
            log.warning("cannot read UBI file %s: %s", path, exc)
    gone = {s for s, users in named.items() if any(u in forgotten and at <= forgotten[u] for u, at in users.items())}
    return [basket for session, basket in baskets.items() if session not in gone], skipped


def _a_file(path: Path) -> bool:
    mode = path.stat().st_mode
    return stat.S_ISREG(mode) or stat.S_ISFIFO(mode)


def bounded_lines(handle: IO[bytes]) -> Iterator[bytes | None]:
    """Each line of ``handle``; None for a line longer than :data:`MAX_LINE_BYTES`, read past in bounded pieces."""
    while line := handle.readline(MAX_LINE_BYTES + 1):
        if len(line) <= MAX_LINE_BYTES or line.endswith(b"\n"):
            yield line
            continue
        while line and not line.endswith(b"\n"):
            line = handle.readline(MAX_LINE_BYTES)
        yield None


def _record(line: bytes | None) -> dict[str, Any] | None:
    """The JSON object of a line; None for an over-long, unreadable or non-object line."""
    if line is None:
        return None
    try:
        record = json.loads(line.decode("utf-8", errors="replace"))
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def _received(record: dict[str, Any]) -> float:
    """When the service received the event (see clicks.received_s); an event with no readable time counts as
    received before any forget."""
    try:
        return received_s(record)
    except ValueError:
        return -math.inf


def _interest(record: dict[str, Any], actions: frozenset[str]) -> tuple[str, str, str | None] | None:
    """(session, product id, shopper) of an interest event; None for anything else (queries, impressions, bulk
    lines)."""
    if named_action(record.get("action_name"), actions) is None:
        return None
    attributes = record.get("event_attributes")
    attributes = attributes if isinstance(attributes, dict) else {}
    target = attributes.get("object")
    product = target.get("object_id") if isinstance(target, dict) else None
    session = (
        record.get("session_id") or attributes.get("session_id") or record.get("client_id") or record.get("query_id")
    )
    if isinstance(product, int) and not isinstance(product, bool):
        product = str(product)
    if not isinstance(product, str) or not product or not isinstance(session, str) or not session:
        return None
    user = record.get("user_id")
    return session, product, safe_id(user) if isinstance(user, str) else None


def mine_ubi(
    log_path: Path,
    min_support: int = 1,
    max_basket: int | None = None,
    max_pairs: int | None = None,
    known: Callable[[], AbstractSet[str]] | None = None,
) -> CoInterest:
    """The co-interest table of everything the service's UBI log holds now; ``known``: the catalogue's ids, read
    when the mining starts (the catalogue served then)."""
    baskets, skipped = ubi_baskets(ubi_files(log_path), known=None if known is None else known())
    table = co_interest(baskets, min_support, max_basket=max_basket, max_pairs=max_pairs)
    if skipped:
        log.warning("co-interest: skipped %d unreadable UBI line(s) under %s", skipped, log_path.parent)
    if table.oversized:
        log.warning(
            "co-interest: left out %d session(s) with more than %s products (crawlers or shared ids)",
            table.oversized,
            max_basket,
        )
    if table.dropped_below:
        log.warning(
            "co-interest: dropped the pairs seen in %d session(s) or fewer to hold at most %s (reco.max_pairs)",
            table.dropped_below,
            max_pairs,
        )
    return dataclasses.replace(table, skipped_lines=skipped)
