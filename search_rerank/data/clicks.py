"""Click logs as training labels, through a click model rather than raw click-through rates.

Shoppers click what they look at, and they look at the top of the page: a
product at rank 1 collects clicks that the same product at rank 9 never would.
Raw CTR therefore mostly measures where the current ranker put things, and a
model trained on it learns to copy the ranker. The Position-Based Model
(Chuklin, Markov & de Rijke, *Click Models for Web Search*, 2015, ch. 3-4)
separates the two: a click happens when the rank is examined (probability
``theta[rank]``) *and* the product attracts (probability ``alpha[query, product]``).
Estimated by EM over many impressions, ``alpha`` is a position-debiased
relevance signal that :func:`click_labels` turns into graded labels.

Two log formats are read into one :class:`Impression` shape: OpenSearch UBI
(query records and impression/click events, bulk or plain NDJSON) and a plain
JSON Lines log of ``{"query", "shown", "clicked"}``. A bad line raises
:class:`DataError` with its file and line, or with ``skip_bad`` is counted in
:class:`LoadStats`, as the catalog loaders do.
"""

from __future__ import annotations

import glob
import hashlib
import logging
import math
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol, TypeVar

import numpy as np

from ..core.errors import DataError, brief
from ..core.field_names import spelling_key
from ..core.profile import FORGET_ACTION, RECEIVED_AT, SessionHolder, safe_id
from ..core.profile_store import ShopperAction
from .dataset import Query
from .loaders import LoadStats, bulk_action, checked_rows, id_text, numbered_text_lines, parse_json_object
from .qrels import Qrels

log = logging.getLogger(__name__)

PLAIN_FIELDS = ("query", "shown", "clicked", "query_id", "session")


@dataclass(frozen=True)
class Impression:
    """One result list a shopper saw for a query: products in display order and the ones clicked.

    ``query_id`` and ``session`` are the log's own identifiers when it has them;
    labels are aggregated over the query *text*, because one shopper's search
    id never repeats.
    """

    query: str
    shown: tuple[str, ...]
    clicked: frozenset[str] = frozenset()
    query_id: str | None = None
    session: str | None = None

    def __post_init__(self) -> None:
        if not self.query.strip():
            raise ValueError("query is empty")
        if not self.shown:
            raise ValueError("shown is empty: an impression needs at least one product")
        if len(set(self.shown)) != len(self.shown):
            repeated = sorted({doc for doc in self.shown if self.shown.count(doc) > 1})
            raise ValueError(f"shown lists {repeated[:5]} more than once; each product has one rank")
        unseen = sorted(self.clicked - set(self.shown))
        if unseen:
            raise ValueError(f"clicked {unseen[:5]} not in shown: a click needs the rank it was shown at")


# --- plain JSON Lines ------------------------------------------------------------


def read_click_log(path: str | Path, *, skip_bad: bool = False, stats: LoadStats | None = None) -> list[Impression]:
    """Impressions from ``{"query": str, "shown": [ids in display order], "clicked": [ids]}`` lines.

    ``query_id`` and ``session`` are optional; any other key is an error, so a
    misspelt ``clicks`` is not read as "nothing clicked".
    """
    return list(
        checked_rows(
            path,
            numbered_text_lines(path),
            lambda text: _plain_impression(parse_json_object(text)),
            skip_bad=skip_bad,
            stats=stats,
        )
    )


def _plain_impression(record: dict[str, Any]) -> Impression:
    unknown = sorted(set(record) - set(PLAIN_FIELDS))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; valid fields: {', '.join(PLAIN_FIELDS)}")
    return Impression(
        query=_string(record, "query"),
        shown=tuple(_ids(record, "shown")),
        clicked=frozenset(_ids(record, "clicked")),
        query_id=_optional_string(record, "query_id"),
        session=_optional_string(record, "session"),
    )


# --- OpenSearch UBI --------------------------------------------------------------


@dataclass(frozen=True)
class _UbiQuery:
    query_id: str
    text: str
    hits: tuple[str, ...] = ()
    sent: bool = False
    """A front end sent the record itself (``POST /ubi_queries`` logs it with ``received_at``); else the search's
    own record (this service's, or OpenSearch's UBI plugin's)."""


@dataclass(frozen=True)
class _UbiEvent:
    line: int
    query_id: str
    click: bool
    doc: str
    ordinal: int | None  # None: the event gave no rank (see _placed)
    time: float
    session_id: str | None
    text: str
    user_id: str | None
    received: float


def read_ubi(
    *paths: str | Path,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
    impression_actions: Iterable[str] = ("impression",),
    click_actions: Iterable[str] = ("click",),
) -> list[Impression]:
    """Impressions from UBI query records and events, in one file or in separate ones.

    Files are NDJSON, either as exported (one record a line) or in the bulk
    format (an ``{"index": ...}`` line before each record). Events are paired
    with query records by ``query_id``; a query without text in its record or
    events is dropped, since a label needs a query to attach to.

    Display order comes from ``event_attributes.position.ordinal`` (any base;
    gaps close up). A clicked product counts as shown at its ordinal even when
    no impression was logged for it. An event without an ordinal (the UBI
    schema allows a position by screen coordinates alone, and the reference
    clients send none unless told) takes its product's place in its search's
    logged hits, a click the place of an impression of its product; one that
    has neither is left out, and counted in a warning. Some front ends log several result lists
    under one ``query_id`` (the page re-rendered); events are replayed in
    time order and a new list starts when an ordinal already holds another
    product, so that one search yields one impression per list actually shown.
    A front end may send clicks alone: a query whose events are all clicks was
    shown its query record's ``query_response_hit_ids`` (which this service and
    OpenSearch's UBI plugin log), in their order, so that the products not
    clicked count as skipped rather than as never shown.
    A query record a front end sent itself (``POST /ubi_queries``, logged with
    ``received_at``) may share its ``query_id`` with the record the search
    wrote: it gives the text only where no search record does, and hits only
    to a query id no search record has, whatever the order of the lines and
    files, so that a front end never replaces what the search showed. Query
    records add no impression of their own, so two of one search count once.
    A forgotten shopper's events up to the forget label nothing (see :func:`without_forgotten`).
    """
    texts: dict[str, str] = {}
    hits: dict[str, tuple[str, ...]] = {}
    sent: list[_UbiQuery] = []
    searched: set[str] = set()
    events: dict[str, list[_UbiEvent]] = {}
    forgotten: dict[str, float] = {}
    convert = _UbiLineReader(frozenset(impression_actions), frozenset(click_actions))
    for path in paths:
        numbered = ((line, (line, text)) for line, text in numbered_text_lines(path))
        records: Iterator[_UbiQuery | _UbiEvent | tuple[str, float]]
        records = checked_rows(path, numbered, convert, skip_bad=skip_bad, stats=stats)
        for record in records:
            if isinstance(record, _UbiQuery) and record.sent:
                sent.append(record)
            elif isinstance(record, _UbiQuery):
                searched.add(record.query_id)
                if record.text:
                    texts.setdefault(record.query_id, record.text)
                if record.hits:
                    hits.setdefault(record.query_id, record.hits)
            elif isinstance(record, tuple):
                user, at = record
                forgotten[user] = max(forgotten.get(user, -math.inf), at)
            else:
                events.setdefault(record.query_id, []).append(record)
    for record in sent:  # after every search's own record, wherever it was
        if record.text:
            texts.setdefault(record.query_id, record.text)
        if record.hits and record.query_id not in searched:
            hits.setdefault(record.query_id, record.hits)
    if forgotten:  # a forgotten shopper's clicks label nothing (see without_forgotten)
        every = [e for logged in events.values() for e in logged]
        events = {}
        for kept in without_forgotten(every, forgotten):
            events.setdefault(kept.query_id, []).append(kept)
    impressions: list[Impression] = []
    nameless = unplaced = 0
    for query_id, logged in events.items():
        text = texts.get(query_id) or next((event.text for event in logged if event.text), "")
        if not text:
            nameless += 1
            continue
        session = next((event.session_id for event in logged if event.session_id), None)
        placed = _placed(logged, hits.get(query_id, ()))
        unplaced += len(logged) - len(placed)
        for shown, clicked in _result_lists(_shown_hits(placed, hits.get(query_id, ()))):
            impressions.append(Impression(text, shown, clicked, query_id=query_id, session=session))
    if nameless:
        log.warning(
            "%s: dropped events of %d query id(s) with no query text in any record or event",
            ", ".join(map(str, paths)),
            nameless,
        )
    if unplaced:
        log.warning(
            "%s: dropped %d event(s) without a rank whose product was neither in their search's logged hits nor "
            "in an impression of it",
            ", ".join(map(str, paths)),
            unplaced,
        )
    return impressions


class _UbiLineReader:
    """Turns one numbered NDJSON line into a query, an event, or None (bulk action lines, other actions)."""

    def __init__(self, impression_actions: frozenset[str], click_actions: frozenset[str]):
        self.impression_actions = impression_actions
        self.click_actions = click_actions

    def __call__(self, numbered: tuple[int, str]) -> _UbiQuery | _UbiEvent | tuple[str, float] | None:
        line, text = numbered
        record = ubi_record(text)
        if bulk_action(record) is not None:
            return None
        if "action_name" in record:
            return forgotten_shopper(record) or self._event(line, record)
        if "query_id" in record:
            text = (_optional_string(record, "user_query") or "").strip()
            return _UbiQuery(_string(record, "query_id"), text, _hit_ids(record), sent=RECEIVED_AT in record)
        raise ValueError("neither a UBI query record (query_id, user_query) nor an event (action_name)")

    def _event(self, line: int, record: dict[str, Any]) -> _UbiEvent | None:
        action = _string(record, "action_name")
        click = named_action(action, self.click_actions) is not None
        if not click and named_action(action, self.impression_actions) is None:
            return None
        if record.get("query_id") in (None, ""):
            return None  # of no search (a product page's, a recommendation's): it labels no query
        attributes = _mapping(record, "event_attributes")
        position = attributes.get("position") or {}
        if not isinstance(position, dict):
            raise ValueError(f"event_attributes.position: expected an object, got {str(position)[:80]}")
        ordinal = position.get("ordinal")
        if ordinal is not None and (not isinstance(ordinal, int) or isinstance(ordinal, bool) or ordinal < 0):
            raise ValueError(
                f"{action} event: event_attributes.position.ordinal must be an integer >= 0, got {ordinal!r}"
            )
        named = _mapping(attributes, "object", "event_attributes").get("object_id")
        doc = object_id(attributes)
        if doc is None:
            raise ValueError(f"{action} event: event_attributes.object.object_id must be a non-empty id, got {named!r}")
        session = record.get("session_id") or attributes.get("session_id")
        user = record.get("user_id")
        time = epoch_ms(record.get("timestamp"))
        return _UbiEvent(
            line=line,
            query_id=_string(record, "query_id"),
            click=click,
            doc=doc,
            ordinal=ordinal,
            time=time,
            session_id=session if isinstance(session, str) else None,
            text=(_optional_string(record, "user_query") or "").strip(),
            user_id=safe_id(user) if isinstance(user, str) else None,
            received=received_s(record),
        )


def _hit_ids(record: Mapping[str, Any]) -> tuple[str, ...]:
    """The products a query record shows, by catalog id: the service's ``query_response_internal_ids`` where it
    logged the hits by another field's values (``object_id_field``: a SKU), else ``query_response_hit_ids``."""
    internal = record.get("query_response_internal_ids") is not None
    name = "query_response_internal_ids" if internal else "query_response_hit_ids"
    value = record.get(name)
    if value is None:
        return ()
    hits = tuple(id_text(h) for h in value) if isinstance(value, list) else None
    if hits is None or not all(isinstance(h, str) for h in hits):
        raise ValueError(f"{name}: expected a list of product ids, got {str(value)[:80]}")
    return hits


def _placed(events: list[_UbiEvent], hits: tuple[str, ...]) -> list[_UbiEvent]:
    """A query's events, each with a rank: one sent without takes its product's place in the search's logged
    ``hits``; a click not among them keeps none, to join the list of an impression of its product (see
    _result_lists), and is left out when no impression shows it, as is an impression that cannot be placed."""
    ranks = {doc: rank for rank, doc in reversed(list(enumerate(hits)))}
    impressed = {e.doc for e in events if not e.click and (e.ordinal is not None or e.doc in ranks)}
    placed = []
    for event in events:
        if event.ordinal is None and event.doc in ranks:
            placed.append(replace(event, ordinal=ranks[event.doc]))
        elif event.ordinal is not None or (event.click and event.doc in impressed):
            placed.append(event)
    return placed


def _shown_hits(events: list[_UbiEvent], hits: tuple[str, ...]) -> list[_UbiEvent]:
    """A query's events, with its hits as impressions at ranks 0, 1, ... ahead of them when it logged clicks alone."""
    if not hits or not all(event.click for event in events):
        return events
    first = min(events, key=lambda e: (e.time, e.line))  # line 0: before every event of its time
    return [replace(first, line=0, click=False, doc=doc, ordinal=rank) for rank, doc in enumerate(hits)] + events


def ubi_record(text: str) -> dict[str, Any]:
    """One line of a UBI log as its record. UBI data lives in the ubi_queries and ubi_events indexes, and
    leaves them as hits (elasticdump, a _search): a hit's record is its ``_source``."""
    record = parse_json_object(text)
    source = record.get("_source")
    return source if isinstance(source, dict) else record


@dataclass
class _Shown:
    slots: dict[int, str] = field(default_factory=dict)
    clicked: set[str] = field(default_factory=set)


def _result_lists(events: list[_UbiEvent]) -> list[tuple[tuple[str, ...], frozenset[str]]]:
    """Replay one query id's events in time order into the result lists they describe."""
    lists: list[_Shown] = []
    for event in sorted(events, key=lambda e: (e.time, e.line)):
        if event.click:
            owner = next((shown for shown in reversed(lists) if event.doc in shown.slots.values()), None)
            if owner is not None:
                owner.clicked.add(event.doc)
                continue
        if event.ordinal is None:  # a click without a rank, before any impression of its product: nowhere to go
            continue
        if not lists or lists[-1].slots.get(event.ordinal, event.doc) != event.doc:
            lists.append(_Shown())
        current = lists[-1]
        if event.doc not in current.slots.values():
            current.slots[event.ordinal] = event.doc
        if event.click:
            current.clicked.add(event.doc)
    return [(tuple(shown.slots[o] for o in sorted(shown.slots)), frozenset(shown.clicked)) for shown in lists]


def named_action(name: object, actions: Collection[str]) -> str | None:
    """The action of ``actions`` that an event's ``action_name`` names, whatever its case and separators
    (``addToCart``, ``add-to-cart``, ``Purchase``, ``CLICK``: ``add_to_cart``, ``purchase``, ``click``); None for
    another action. The service logs any action name and front ends spell them their own way: matched only as
    written, such events were accepted and then never counted in a profile, a click label or the co-interest
    table. Every reader of an event's action goes through here, so the live profile update and a rebuild agree."""
    if not isinstance(name, str):
        return None
    key = spelling_key(name)
    return next((action for action in actions if spelling_key(action) == key), None)


def object_id(attributes: Mapping[str, Any]) -> str | None:
    """The product a UBI event's ``event_attributes`` name, a number read as the catalog reads a numeric id (its
    text); None when they name none. UBI 1.3's ``object.internal_id`` (the search engine's own id, the catalog's)
    when given, else ``object.object_id``, which may be the value of another field (``object_id_field``: a SKU)."""
    thing = attributes.get("object")
    if not isinstance(thing, Mapping):
        return None
    for name in ("internal_id", "object_id"):
        doc = id_text(thing.get(name))
        if isinstance(doc, str) and doc:
            return doc
    return None


def epoch_ms(value: Any, name: str = "timestamp") -> float:
    """Milliseconds since the epoch; UBI writers send ISO 8601 strings or epoch milliseconds, the latter now
    and then as a string of digits, which OpenSearch's default date mapping (``strict_date_optional_time||
    epoch_millis``) stores, so its exports hold them. A time without a zone is UTC, as OpenSearch reads it
    (not this machine's zone, which would move a log's events by hours from one machine to another). A time
    that is not finite or before 1970 (a year 1) is refused here, where the service validates an event, rather
    than when a profile is updated from it; the service also refuses epoch seconds, which read as milliseconds
    are weeks into 1970 (``serving.ubi.EARLIEST_EPOCH_MS``), while a log is read as it was written."""
    number: Any = value
    if isinstance(value, str) and value.isascii() and value.isdigit():
        # Digits alone are epoch milliseconds, as OpenSearch reads them (its ISO format needs dashes); Python's
        # fromisoformat would read 1730010112300 as 1730-01-01T12:30:00.
        number = float(value)  # inf past a float, refused below
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
            number = (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp() * 1000
        except (ValueError, OverflowError, OSError):
            number = None
    if isinstance(number, (int, float)) and not isinstance(number, bool):
        try:
            milliseconds = float(number)
        except OverflowError:  # an integer of hundreds of digits
            milliseconds = math.inf
        if math.isfinite(milliseconds) and milliseconds >= 0:
            return milliseconds
    raise ValueError(f"{name} must be ISO 8601 or epoch milliseconds since 1970, got {brief(value)}")


# --- what shoppers did, for their profiles ----------------------------------------


def shopper_action(record: Mapping[str, Any], actions: Collection[str]) -> ShopperAction | None:
    """A UBI event as what a shopper did to a product, or None: another kind of record, an action not in
    ``actions``, or an event naming no shopper (no ``user_id`` or ``session_id``) or no product.

    The session id is read from the record, else from ``event_attributes`` (where some front ends put it);
    the time is the event's ``timestamp`` in seconds since the epoch, at the latest the time it was received.
    """
    action = named_action(record.get("action_name"), actions)
    if action is None:
        return None
    # What is missing is no shopper's action; what is there in another shape is a log that is not UBI's, refused
    # as training refuses it (see ubi_event), not passed over without a word.
    attributes = _mapping(record, "event_attributes") if record.get("event_attributes") is not None else {}
    thing = _mapping(attributes, "object", "event_attributes") if attributes.get("object") is not None else {}
    doc = object_id(attributes)
    if thing.get("object_id") is not None and doc is None:
        raise ValueError(
            f"{action} event: event_attributes.object.object_id must be a non-empty id, got {thing['object_id']!r}"
        )
    user = _optional_string(record, "user_id")
    session = _optional_string(record, "session_id") or _optional_string(attributes, "session_id")
    # An id a search or a forget could not name (see core.profile.safe_id) would key a profile nobody can reach.
    user = safe_id(user) if isinstance(user, str) else None
    session = safe_id(session) if isinstance(session, str) else None
    if doc is None or (user is None and session is None):
        return None
    # Never later than received: a front end's clock hours ahead (the log takes up to a day) would date the
    # profile ahead of every event after it, each then decayed as though hours old.
    received = received_s(record)
    at = min(epoch_ms(record.get("timestamp")) / 1000, received)
    return ShopperAction(user, session, doc, action, at, received)


def received_s(record: Mapping[str, Any]) -> float:
    """When the service received the event, in seconds (:data:`~search_rerank.core.profile.RECEIVED_AT`); its own
    ``timestamp`` for a log written without it (older releases, a simulator)."""
    name = RECEIVED_AT if record.get(RECEIVED_AT) else "timestamp"
    return epoch_ms(record.get(name), name) / 1000


def forgotten_shopper(record: Mapping[str, Any]) -> tuple[str, float] | None:
    """A forget's record (:data:`~search_rerank.core.profile.FORGET_ACTION`) as (shopper, the time it was
    received in seconds), or None for any other record."""
    if record.get("action_name") != FORGET_ACTION:
        return None
    user = record.get("user_id")
    user = safe_id(user) if isinstance(user, str) else None
    if user is None:
        raise ValueError(f"a {FORGET_ACTION} record needs the user_id it forgot")
    return user, received_s(record)


class ReceivedEvent(Protocol):
    """An event as a forget sees it: whose, in which session, received when (seconds)."""

    @property
    def user_id(self) -> str | None: ...
    @property
    def session_id(self) -> str | None: ...
    @property
    def received(self) -> float: ...


E = TypeVar("E", bound=ReceivedEvent)


def without_forgotten(actions: Sequence[E], forgotten: Mapping[str, float]) -> list[E]:
    """``actions`` less those of a forgotten shopper received up to their forget, and of the sessions they owned
    then, whoever's events those were (a session's events before a login name no shopper): what the forget removed
    from the store (``ProfileStore.forget`` deletes the profiles it owns). A session is followed from owner to owner
    as the store's profiles are (:class:`~search_rerank.core.profile.SessionHolder`): one another shopper went on
    with before the forget is theirs, and is kept with their events (a session id many shoppers send, "undefined"
    or a kiosk's, took every one of them out of a rebuild with each forget). A session the store dropped as idle
    for ``ttl_s`` is still followed here, so a forget may leave out a little more than the store held, never less.
    Events and forgets are ordered as the service received them, whatever time a front end wrote (see
    :data:`~search_rerank.core.profile.RECEIVED_AT`)."""
    never = -math.inf
    holders: dict[str, SessionHolder] = {}
    owned: dict[str, set[str]] = {}  # owner -> the sessions they own, as ``holders`` says
    dropped: dict[str, float] = {}  # session -> received time up to which its events were forgotten
    forgets = sorted(forgotten.items(), key=lambda item: item[1])
    done = 0

    def forget_received_before(at: float) -> None:
        nonlocal done
        while done < len(forgets) and forgets[done][1] < at:
            user, when = forgets[done]
            done += 1
            for session in owned.pop(user, set()):
                dropped[session] = when
                del holders[session]

    for a in sorted(actions, key=lambda a: a.received):
        forget_received_before(a.received)  # an event received with its forget is before it, as in the store
        if a.session_id is None:
            continue
        before = holders.get(a.session_id, SessionHolder())
        after = before.after(a.user_id or None)
        holders[a.session_id] = after
        if before.owner != after.owner:
            if before.owner is not None:
                owned[before.owner].discard(a.session_id)
            if after.owner is not None:
                owned.setdefault(after.owner, set()).add(a.session_id)
    forget_received_before(math.inf)
    return [
        a
        for a in actions
        if a.received > max(forgotten.get(a.user_id or "", never), dropped.get(a.session_id or "", never))
    ]


def read_shopper_actions(
    pattern: str | Path,
    actions: Iterable[str],
    *,
    skip_bad: bool = False,
    stats: LoadStats | None = None,
) -> tuple[list[ShopperAction], int]:
    """Every event of ``actions`` in the UBI files ``pattern`` matches (a file or a glob), oldest first: what
    ``search-rerank profiles build`` replays into the profile store; and how many events of forgotten shoppers
    were left out (see :func:`without_forgotten`; the forget's record may be in any of the files). Bulk action
    lines and query records are passed over; a line that is not JSON raises :class:`DataError` with its file and
    line (or with ``skip_bad`` is counted in ``stats``)."""
    wanted = frozenset(actions)
    paths = [
        path
        for matched in sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()))) or [Path(pattern)]
        for path in _ubi_files(matched)
    ]
    found: list[ShopperAction] = []
    forgotten: dict[str, float] = {}

    def read(text: str) -> ShopperAction | tuple[str, float] | None:
        record = ubi_record(text)
        return forgotten_shopper(record) or shopper_action(record, wanted)

    for path in paths:
        if not path.is_file():
            raise DataError(path, None, "no such UBI log (give a file or a glob of UBI NDJSON files)")
        rows: Iterator[ShopperAction | tuple[str, float]]
        rows = checked_rows(path, numbered_text_lines(path), read, skip_bad=skip_bad, stats=stats)
        for row in rows:
            if isinstance(row, tuple):
                user, at = row
                forgotten[user] = max(forgotten.get(user, 0.0), at)
            else:
                found.append(row)
    kept = without_forgotten(found, forgotten)
    return sorted(kept, key=lambda a: a.at), len(found) - len(kept)


UBI_FILES = "ubi.*.ndjson*"
"""The files the service writes in its UBI log's folder: each worker's, rotated ones and the forgets'."""


def _ubi_files(path: Path) -> list[Path]:
    """``path``, or the UBI files in it when it is a folder (``logs/``, where the service's files are): a folder
    given is the service's log, and read as a file it would be "no such UBI log" for a path that exists."""
    if not path.is_dir():
        return [path]
    files = sorted(path.glob(UBI_FILES))
    if not files:
        raise DataError(path, None, f"a folder with no UBI log files ({UBI_FILES}); give a file or a glob of them")
    return files


# --- field checks shared by both formats -----------------------------------------


def _string(record: Mapping[str, Any], name: str) -> str:
    value = record.get(name)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{name}: required non-empty string, got {brief(value)}")
    return value


def _optional_string(record: Mapping[str, Any], name: str) -> str | None:
    value = record.get(name)
    if value is not None and not isinstance(value, str):
        raise ValueError(f"{name}: expected a string, got {brief(value)}")
    return value


def _ids(record: Mapping[str, Any], name: str) -> list[str]:
    value = record.get(name)
    if not isinstance(value, list) or not all(isinstance(doc, str) and doc for doc in value):
        raise ValueError(f"{name}: required list of non-empty product id strings, got {str(value)[:80]}")
    return value


def _mapping(record: Mapping[str, Any], name: str, parent: str = "") -> Mapping[str, Any]:
    value = record.get(name)
    if not isinstance(value, dict):
        where = f"{parent}.{name}" if parent else name
        raise ValueError(f"{where}: required object, got {str(value)[:80]}")
    return value


# --- the Position-Based Model ----------------------------------------------------


def query_key(text: str) -> str:
    """How query texts are grouped: case and spacing are typing noise, not a different intent."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True)
class PositionBasedModel:
    """Examination probability per rank and attractiveness per (query key, product), with their evidence.

    ``theta[0]`` is 1 by construction: the PBM only identifies the product
    ``theta * alpha``, and assuming the top result is always examined pins
    the scale so that ``alpha`` reads as "probability of a click when seen".
    """

    theta: np.ndarray
    pairs: Mapping[tuple[str, str], int]
    """(query key, product) -> row of ``alpha``, ``shown`` and ``clicks``."""
    alpha: np.ndarray
    shown: np.ndarray
    clicks: np.ndarray
    iterations: int

    def attractiveness(self, query: str, doc: str) -> float:
        return float(self.alpha[self.pairs[query_key(query), doc]])


def fit_pbm(
    impressions: Sequence[Impression],
    *,
    prior: tuple[float, float] = (1.0, 1.0),
    max_iter: int = 500,
    tol: float = 1e-6,
) -> PositionBasedModel:
    """Estimate the PBM by expectation-maximisation (Chuklin et al., 2015, sec. 4.2).

    ``prior`` is Beta pseudo-counts (attractive, not attractive) added to every
    pair's expected counts, so a product shown once and skipped stays near the
    prior mean instead of at 0: one skip mostly says the shopper did not look.
    Deterministic: fixed initial values and no sampling.
    """
    if not impressions:
        raise ValueError("no impressions to fit a click model on")
    if min(prior) <= 0:
        raise ValueError(f"prior pseudo-counts must be positive, got {prior}")
    index: dict[tuple[str, str], int] = {}
    pair_rows: list[int] = []
    rank_rows: list[int] = []
    click_rows: list[bool] = []
    for impression in impressions:
        key = query_key(impression.query)
        for position, doc in enumerate(impression.shown):
            pair_rows.append(index.setdefault((key, doc), len(index)))
            rank_rows.append(position)
            click_rows.append(doc in impression.clicked)
    pair = np.asarray(pair_rows)
    rank = np.asarray(rank_rows)
    click = np.asarray(click_rows)
    shown_per_pair = np.bincount(pair, minlength=len(index)).astype(float)
    shown_per_rank = np.bincount(rank).astype(float)
    attractive, unattractive = prior
    alpha = np.full(len(index), attractive / (attractive + unattractive))
    theta = np.full(len(shown_per_rank), 0.5)
    theta[0] = 1.0
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 (read after the loop: how many it took)
        a, t = alpha[pair], theta[rank]
        skipped = 1.0 - a * t
        posterior_attractive = np.where(click, 1.0, a * (1.0 - t) / skipped)
        posterior_examined = np.where(click, 1.0, t * (1.0 - a) / skipped)
        new_alpha = (np.bincount(pair, posterior_attractive, minlength=len(index)) + attractive) / (
            shown_per_pair + attractive + unattractive
        )
        new_theta = np.bincount(rank, posterior_examined, minlength=len(theta)) / shown_per_rank
        new_theta[0] = 1.0
        change = max(np.abs(new_alpha - alpha).max(), np.abs(new_theta - theta).max())
        alpha, theta = new_alpha, new_theta
        if change < tol:
            break
    return PositionBasedModel(
        theta=theta,
        pairs=MappingProxyType(index),
        alpha=alpha,
        shown=shown_per_pair.astype(int),
        clicks=np.bincount(pair, click.astype(float), minlength=len(index)).astype(int),
        iterations=iterations,
    )


def click_labels(
    impressions: Sequence[Impression],
    min_impressions: int = 10,
    thresholds: tuple[float, float] = (0.1, 0.3),
    *,
    prior: tuple[float, float] = (1.0, 1.0),
) -> tuple[Qrels, dict[str, str]]:
    """Graded labels (0, 1, 2) from PBM attractiveness, and the query texts they belong to.

    A pair seen fewer than ``min_impressions`` times gets no label at all:
    unjudged, not irrelevant, because a few skips are no evidence against a
    product. Grade 0 below ``thresholds[0]``, 1 below ``thresholds[1]``, 2
    above. Query ids are derived from the grouped text, so the same query gets
    the same id in every log and run.
    """
    low, high = thresholds
    if not 0 <= low <= high <= 1:
        raise ValueError(f"thresholds must satisfy 0 <= low <= high <= 1, got {thresholds}")
    if min_impressions < 1:
        raise ValueError(f"min_impressions must be at least 1, got {min_impressions}")
    model = fit_pbm(impressions, prior=prior)
    texts: dict[str, str] = {}
    for impression in impressions:
        texts.setdefault(query_key(impression.query), " ".join(impression.query.split()))
    qrels: Qrels = {}
    queries: dict[str, str] = {}
    for (key, doc), alpha, shown in zip(model.pairs, model.alpha, model.shown):
        if shown < min_impressions:
            continue
        qid = click_query_id(key)
        qrels.setdefault(qid, {})[doc] = 0 if alpha < low else 1 if alpha < high else 2
        queries[qid] = texts[key]
    return qrels, queries


def click_query_id(text: str) -> str:
    """A stable id for a query text, usable in TREC and BEIR files (no spaces)."""
    return "click-" + hashlib.sha256(query_key(text).encode("utf-8")).hexdigest()[:16]


# --- training splits -------------------------------------------------------------


def read_clicks(pattern: str | Path) -> list[Impression]:
    """Impressions from a plain JSON Lines click log or from UBI NDJSON files, a glob matching one or more.

    The format is told by the first record: a plain log's lines have ``shown``. An empty file (the one a rotation
    just opened) is passed over; the log is refused as empty only when every file is.
    """
    paths = sorted(Path(p) for p in glob.glob(str(Path(pattern).expanduser()))) or [Path(pattern)]
    for path in paths:
        if not path.is_file():
            raise DataError(path, None, "no such click log (give a file or a glob of UBI NDJSON files)")
    found = next(((path, line) for path in paths for line in numbered_text_lines(path)), None)
    if found is None:
        raise DataError(paths[0] if len(paths) == 1 else pattern, None, "the click log is empty")
    path, first = found
    try:
        plain = "shown" in parse_json_object(first[1])
    except ValueError as exc:
        raise DataError(path, first[0], str(exc)) from None
    if plain:
        return [impression for path in paths for impression in read_click_log(path)]
    return read_ubi(*paths)


def click_splits(
    impressions: Sequence[Impression],
    dev_fraction: float = 0.2,
    min_impressions: int = 10,
) -> dict[str, tuple[dict[str, Query], Qrels]]:
    """``train`` and ``dev`` splits of :func:`click_labels`, split by a stable hash of the query text.

    By text, so that every impression of a query lands on the same side and
    dev measures queries the model never trained on; by hash, so that the
    split stays the same as the log grows. Only queries with a product
    labelled relevant are kept: the others teach nothing and score nothing.
    """
    if not 0 < dev_fraction < 1:
        raise ValueError(f"dev_fraction must be between 0 and 1, got {dev_fraction}")
    qrels, texts = click_labels(impressions, min_impressions)
    splits: dict[str, tuple[dict[str, Query], Qrels]] = {"train": ({}, {}), "dev": ({}, {})}
    for qid in sorted(qrels):
        if max(qrels[qid].values()) <= 0:
            continue
        digest = hashlib.sha256(("split:" + query_key(texts[qid])).encode("utf-8")).digest()
        queries, judged = splits["dev" if int.from_bytes(digest[:8], "big") < dev_fraction * 2**64 else "train"]
        queries[qid], judged[qid] = Query(qid, texts[qid]), qrels[qid]
    return splits


# --- simulation ------------------------------------------------------------------

DEFAULT_ATTRACTION = {0: 0.03, 1: 0.2, 2: 0.5, 3: 0.8}
"""Click probability when examined, per grade; each lies inside its band of click_labels' default thresholds."""


def simulate_clicks(
    grades: Mapping[str, Mapping[str, int]],
    rankings: Sequence[tuple[str, Sequence[str]]],
    theta: Sequence[float],
    rng: np.random.Generator,
    *,
    attraction: Mapping[int, float] = DEFAULT_ATTRACTION,
) -> list[Impression]:
    """Clicks a PBM shopper would make on each (query, ranking): examine rank r with ``theta[r]``, click with
    ``attraction[grade]`` (an unjudged product has grade 0).

    For tests and benchmarks where the true relevance and position bias are
    known, so a click model can be checked against them.
    """
    examine = np.asarray(theta, dtype=float)
    impressions: list[Impression] = []
    for query, ranking in rankings:
        if len(ranking) > len(examine):
            raise ValueError(
                f"a ranking of {len(ranking)} products needs {len(ranking)} theta values, got {len(examine)}"
            )
        judged = grades.get(query, {})
        attract = np.array([attraction[judged.get(doc, 0)] for doc in ranking])
        examined = rng.random(len(ranking)) < examine[: len(ranking)]
        clicked = examined & (rng.random(len(ranking)) < attract)
        impressions.append(
            Impression(query, tuple(ranking), frozenset(doc for doc, hit in zip(ranking, clicked) if hit))
        )
    return impressions
