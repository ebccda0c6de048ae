"""Search contexts without state: a scroll's pages and a point in time, each id carrying what it stands for.

Scripts read a whole index by scrolling it: elasticsearch-py's ``helpers.scan`` (sorted by ``_doc``), the JS
client's ``scrollSearch``, Logstash's input, a shop's nightly export. A cluster holds a search context for each
open scroll; this service holds none, and opens none on a cluster. Its scroll id is the search itself, compressed:
the body and URI
parameters as sent, the last hit's sort values, the served index version and when the scroll expires. The next
page is that search again, continued after those values (``search_after``, with the product id as a last key, so
that no two products tie and none is skipped or repeated), through every check a search passes: an id written by
hand asks nothing a search could not. Any worker answers any page, a restart loses no scroll, and clearing one
frees nothing.

The order is Elasticsearch's: the body's sort (``_doc``, index order, is the products by id here), and for a
search without words, whose matches all score alike, index order. A search with words not sorted by a field lists
its matches in the lexical leg's order, best BM25 first: the pipeline's ranking is computed one page at a time, and
a scroll reads every match, not a shopper's first pages. Its id carries how many hits were answered, the lexical
order being the same for every page of a version (on a cluster, whose ``from`` reaches ``service.max_result_window``
at most, a 400 past it: sort by a field to read more). On a cluster any other page is the cluster's own page after
the last hit's sort values, and its hits are the served products, as the first page's are (a cluster's own scroll
pages held the index's documents, not the products, and its index names).

A page of a version no longer served (a reload came between pages) or past its keep-alive is refused as
Elasticsearch refuses a context it no longer holds, a 404 ``search_context_missing_exception``: the pages would
otherwise mix two catalogues. Aggregations and suggestions are the first page's only, as there. A page is not
reranked, so its size may reach ``service.max_result_window`` (``helpers.scan`` asks 1,000 at a time).

A point in time on the embedded index (``POST /products/_pit``, OpenSearch's ``/_search/point_in_time``;
elasticsearch-dsl's ``iterate()`` pages every match through one) is the same idea without a search: its id names
the index, the served version and when it expires, and a search in it (``"pit": {"id": ...}``, no index in the
path) is that index's search, sorted by the body's sort with the product id as its implicit last key (where
Elasticsearch adds ``_shard_doc``, whose value the hits' sort values carry likewise; ``_shard_doc`` named is the id
too). A page of one in order of relevance is the pipeline's ranking: each hit's sort values are its score and its
place in the ranking, standing in for ``_shard_doc``, and a ``search_after`` of them asks the ranking from the next
place (:meth:`PointInTime.search_body`). A cluster backend passes points in time through to the cluster.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import math
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ..core.pipeline import SearchPipeline
from ..indexing.versions import MANIFEST
from .body_checks import (
    MAX_KEEP_ALIVE_S,
    ContextMissing,
    InvalidQuery,
    Unsupported,
    a_count,
    a_keep_alive,
    keep_alive_s,
    known_keys,
)
from .delegation import DelegatedSearch
from .embedded_search import INDEX_ORDER, SCORE, EmbeddedSearch, FieldSort, SortKey, cursor, cursor_keys

ID_FORMAT = 1
"""The layout of the state an id carries; an id of another is refused as one that cannot be read."""
SCROLL, POINT_IN_TIME = "scroll", "pit"
"""What an id stands for, written in it: one of the other kind is refused as one that cannot be read."""
SHARD_DOC = "_shard_doc"
MAX_ID_CHARS = 1_000_000
"""The longest scroll id read: a search body compressed (a body is at most ``service.max_body_bytes``)."""
MAX_STATE_BYTES = 8_000_000
"""The most an id's state may inflate to: a forged id must not unpack into gigabytes."""
FIRST_PAGE_ONLY = ("aggs", "aggregations", "suggest")
"""What a scroll's first page answers and its later pages do not, as in Elasticsearch."""
TIEBREAK = SortKey("id", descending=False)
VALIDATION = "action_request_validation_exception"
ClusterOrder = Literal["sorted", "relevance", "index"]
"""How a cluster orders a scroll's pages: by the body's sort; by relevance (words without a sort, or a sort led by
``_score``, whose values a cursor cannot be trusted to continue: some engines ignore ``search_after`` beside a
score); in index order."""


@dataclass
class Scroll:
    """One page of a scroll: the search it runs, where it continues from, and (once :meth:`hold` has seen the
    compiled search) what its hits are sorted by."""

    index: str
    body: dict[str, Any]
    """The search body, URI parameters that set its keys already in it (es_compat.uri_search)."""
    params: dict[str, str]
    """The URI parameters left (``rest_total_hits_as_int``, ``typed_keys``...)."""
    version: str
    """The served index version the scroll reads (see :func:`served_version`)."""
    expires: float
    """When the scroll is gone (seconds since the epoch), unless a page asks to keep it longer."""
    after: list[Any] | int | None = None
    """The last hit's sort values, the tiebreak's included; in the lexical order, how many hits were answered;
    None on the first page."""
    compiled: EmbeddedSearch | None = field(default=None, repr=False)
    on_cluster: bool = False
    """Whether the cluster orders the pages (:meth:`hold_cluster`): the hits' sort values are its."""
    by_offset: bool = False
    """Whether the pages follow one another by how many hits were answered (an order of relevance)."""
    own_keys: int = 0
    """How many of a hit's sort values are the body's (the rest, the tiebreak's, are this module's)."""
    last_id: str = ""
    """The product id of the page's last hit, kept before ``"stored_fields": "_none_"`` leaves the hits' ``_id``
    out (:meth:`page_ids`): the cursor of an embedded page is its sort values."""

    def page_ids(self, hits: list[dict[str, Any]]) -> None:
        """Keep what :meth:`answer` continues from of the page's ``hits`` while they still hold their ids."""
        if hits:
            self.last_id = hits[-1]["_id"]

    def hold(self, embedded: EmbeddedSearch) -> None:
        """Order ``embedded`` (a page of this scroll, compiled) for paging on: the body's sort, or index order
        without words; the id as the last key; after the cursor on a later page."""
        sort = embedded.sort
        if sort is None and embedded.search.text.strip():
            given = self.body.get("sort")
            if isinstance(given, list) and len(given) > 1:  # _score first, then fields that order its ties
                raise Unsupported("scroll", "sorted by _score then fields (sort by the fields, or by _doc)")
            self._cursor_of(offset=True)
            embedded.lexical_order = True
            self.compiled = embedded
            return
        self._cursor_of(offset=False)
        if sort is None:
            sort, self.own_keys = FieldSort(TIEBREAK.field, TIEBREAK.descending, named=INDEX_ORDER), 0
        elif sort.score_first:
            raise Unsupported("scroll", "sorted by _score then fields (sort by the fields, or by _doc)")
        elif sort.lists_missing_first:
            raise Unsupported("scroll", "sorted with missing values first (its next pages go on by cursor)")
        else:
            self.own_keys = 1 + len(sort.then)
            if (sort.then[-1].field if sort.then else sort.field) != TIEBREAK.field:
                sort = dataclasses.replace(sort, then=(*sort.then, TIEBREAK))
        embedded.sort = sort
        if self.after is not None:
            embedded.after = cursor(self.after, cursor_keys(embedded.compiler.leg, sort), 0)
        self.compiled = embedded

    def hold_cluster(self, delegated: DelegatedSearch, how: ClusterOrder, window: int, shown: bool) -> None:
        """Order a cluster's own page of this scroll (a scroll's keep-alive taken out of its request: nothing is
        held there): by the body's sort, the product id last, after the cursor on a later page; without one, a
        search with words in the cluster's order of relevance, from the hits answered on (``window``: how far
        ``from`` reaches; a sort led by ``_score`` likewise, its values ``shown``), one without in index order (the
        products by id)."""
        request = delegated.ordered_body
        assert request is not None, "a scroll's page is the cluster's own"
        delegated.params.pop("scroll", None)
        delegated.shows_sort = True  # the last hit's values are the next page's cursor (answer() shows the body's)
        request["track_total_hits"] = True
        self.on_cluster = True
        self._cursor_of(offset=how == "relevance")
        if how == "relevance":
            self.own_keys = len(request["sort"]) if shown else 0
            self.by_offset = True
            if self.answered + request["size"] > window:
                raise InvalidQuery(
                    "scroll",
                    f"a scroll in the cluster's order of relevance reads the first {window} matches "
                    "(service.max_result_window): sort it by a field, or by _doc, to read them all",
                )
            request["from"] = self.answered
            return
        sort = list(request["sort"]) if how == "sorted" else []
        self.own_keys = len(sort)
        last = (sort[-1] if isinstance(sort[-1], str) else next(iter(sort[-1]))) if sort else None
        if last not in (TIEBREAK.field, "_id"):
            sort.append({TIEBREAK.field: "asc"})
        request["sort"] = sort
        if isinstance(self.after, list):
            request["search_after"] = self.after
            request.pop("from", None)

    def _cursor_of(self, offset: bool) -> None:
        """A 400 for a cursor not of the page's order (an id written by hand): a count of hits where they follow one
        another by it, sort values where by those."""
        if self.after is not None and isinstance(self.after, list) == offset:
            raise InvalidQuery("scroll_id", "Cannot parse scroll id", "illegal_argument_exception")

    @property
    def answered(self) -> int:
        """How many hits of a scroll in the lexical order came before this page."""
        return self.after if isinstance(self.after, int) else 0

    def answer(self, response: dict[str, Any]) -> dict[str, Any]:
        """The page's answer as Elasticsearch writes a scroll's: its id first, each hit's sort values the body's."""
        hits = response["hits"]["hits"]
        assert self.on_cluster or self.compiled is not None, "hold() orders the page before it is answered"
        if self.by_offset or (self.compiled is not None and self.compiled.lexical_order):
            self.after = self.answered + len(hits)
        elif hits:
            self.after = hits[-1]["sort"] if self.compiled is None else self.compiled.sort_values[self.last_id]
        for hit in hits:
            if self.own_keys:
                hit["sort"] = hit["sort"][: self.own_keys]
            else:
                hit.pop("sort", None)
        return {"_scroll_id": self.scroll_id(), **response}

    def scroll_id(self) -> str:
        """The id of the page after this one: this state, compressed, in URL-safe base64 (as Elasticsearch's)."""
        body = {k: v for k, v in self.body.items() if k not in FIRST_PAGE_ONLY}
        return _packed([SCROLL, self.index, body, self.params, self.version, self.expires, self.after])


@dataclass(frozen=True)
class PointInTime:
    """A point in time on the embedded index: the index it searches, its version, when it expires."""

    index: str
    version: str
    expires: float

    def pit_id(self) -> str:
        return _packed([POINT_IN_TIME, self.index, self.version, self.expires])

    def search_body(self, body: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """``body`` (a search in this point in time) as a search of the index: without its ``pit``, sorted with the
        product id last where it is sorted (``_shard_doc`` read as the id); and, for a page in order of relevance,
        the place of its first hit in the ranking (None for a sorted page). Its directions are read as
        :func:`.directions.with_directions` writes them: the caller writes them so first.

        A page in order of relevance (no sort, or ``_score`` first, with or without ``_shard_doc`` after it) is the
        pipeline's ranking, which a cursor of sort values cannot continue. Elasticsearch gives each hit of it its
        score and its ``_shard_doc``, which the JS client's and the docs' loops pass back as ``search_after``; a
        hit's place in the ranking stands in for ``_shard_doc`` here (see :func:`ranked_sort_values`), and the page
        after it is the ranking from the place after. Without them the loop asked the first page again for ever."""
        out = {k: v for k, v in body.items() if k != "pit"}
        given = out.get("sort")
        keys = given if isinstance(given, list) else [] if given is None else [given]
        by_relevance = not keys or (
            _key_name(keys[0]) == SCORE
            and _direction(keys[0]) == "desc"
            and all(_key_name(key) == SHARD_DOC and _direction(key) == "asc" for key in keys[1:])
        )
        if by_relevance:
            out.pop("sort", None)
            after = out.pop("search_after", None)
            start = a_count(out.get("from", 0), "from")
            if after is None:
                return out, start
            if start != 0:
                raise InvalidQuery("from", "from must be 0 (or absent) when search_after is used")
            if not isinstance(after, list) or not after or isinstance(after[-1], bool):
                raise InvalidQuery("search_after", "expected a page's last sort values: its score and place")
            place = a_count(after[-1], f"search_after[{len(after) - 1}]")
            out["from"] = place + 1
            return out, place + 1
        keys = [_index_order(key) for key in keys]
        if keys and _key_name(keys[-1]) not in (INDEX_ORDER, TIEBREAK.field, "_id"):
            keys.append(INDEX_ORDER)
        if keys:
            out["sort"] = keys
        return out, None


def ranked_sort_values(response: dict[str, Any], first: int) -> None:
    """Give each hit of a page in order of relevance, the ranking from its place ``first``, the sort values
    Elasticsearch gives it in a point in time: its score, then (for ``_shard_doc``) its place in the ranking."""
    for i, hit in enumerate(response["hits"]["hits"]):
        hit["sort"] = [hit.get("_score"), first + i]


def _direction(key: Any) -> Any:
    """A sort key's direction, as :func:`.directions.with_directions` wrote it (lower case); a name alone, or
    options without an order: its field's default."""
    options = next(iter(key.values()), None) if isinstance(key, dict) else None
    order = options.get("order") if isinstance(options, Mapping) else options
    return order if order is not None else "desc" if _key_name(key) == SCORE else "asc"


def _index_order(key: Any) -> Any:
    """A sort key with ``_shard_doc`` (a point in time's tiebreak) read as index order."""
    if key == SHARD_DOC:
        return INDEX_ORDER
    if isinstance(key, dict) and len(key) == 1 and SHARD_DOC in key:
        return {INDEX_ORDER: key[SHARD_DOC]}
    return key


def _key_name(key: Any) -> Any:
    return next(iter(key), None) if isinstance(key, dict) else key


def _packed(state: list[Any]) -> str:
    """An id: ``state`` compressed, in URL-safe base64 (as Elasticsearch's ids are written)."""
    packed = zlib.compress(json.dumps([ID_FORMAT, *state], separators=(",", ":")).encode())
    return base64.urlsafe_b64encode(packed).decode().rstrip("=")


def _unpacked(text: Any, kind: str, where: str, reason: str) -> list[Any]:
    """The state of an id of ``kind`` (after it, as :func:`_packed` wrote it); a 400 naming ``where`` for one that
    cannot be read, or is of another kind."""
    if not isinstance(text, str) or not text or len(text) > MAX_ID_CHARS:
        raise InvalidQuery(where, reason, "illegal_argument_exception")
    try:
        packed = base64.b64decode(text + "=" * (-len(text) % 4), altchars=b"-_", validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(packed, MAX_STATE_BYTES)
        if inflater.unconsumed_tail or inflater.unused_data or not inflater.eof:
            raise ValueError("too large, or more than one id")
        state = json.loads(raw)
        if not isinstance(state, list) or state[:2] != [ID_FORMAT, kind]:
            raise ValueError("another layout")
    except (binascii.Error, zlib.error, ValueError, TypeError, RecursionError):
        raise InvalidQuery(where, reason, "illegal_argument_exception") from None
    return state[2:]


def opened(
    index: str,
    body: dict[str, Any],
    params: dict[str, str],
    keep_alive: str,
    version: str,
    now: float,
    max_body_bytes: int,
) -> Scroll:
    """A scroll's first page, checked as Elasticsearch checks a search in a scroll context (a 400 naming what it
    refuses there).

    Its id carries the body, so a body whose id would not fit in the next page's request, which is held to
    ``max_body_bytes`` (``service.max_body_bytes``) as every request is, is refused here, a 400 naming ``body``,
    not on the second page: a 63 KB body of words in a script that compresses little made a 66 KB id, and the
    scroll that opened could not go on. The id may take half the limit; the rest leaves room for the request's
    other keys and the sort values later ids carry."""
    _check_scrolled(body)
    scroll = Scroll(index, body, params, version, now + keep_alive_s(keep_alive, "scroll"))
    size = len(scroll.scroll_id())
    if size > max_body_bytes // 2:
        raise InvalidQuery(
            "body",
            f"a scroll's id carries its search, and this one's would be {size:,} characters, past half of "
            f"service.max_body_bytes ({max_body_bytes:,}), which the next page's request is held to",
        )
    return scroll


def _check_scrolled(body: Mapping[str, Any]) -> None:
    """What Elasticsearch refuses in a scroll context, each a 400 naming it: on a later page too, whose id may have
    been written by hand."""
    refusals = {
        "search_after": "`search_after` cannot be used in a scroll context",
        "collapse": "cannot use `collapse` in a scroll context",
        "pit": "using [point in time] is not allowed in a scroll context",
    }
    for key, reason in refusals.items():
        if body.get(key) is not None:
            raise InvalidQuery(key, reason, VALIDATION)
    if a_count(body.get("from", 0), "from") > 0:
        raise InvalidQuery("from", "using [from] is not allowed in a scroll context", VALIDATION)
    if a_count(body.get("size", 10), "size") == 0:
        raise InvalidQuery("size", "[size] cannot be [0] in a scroll context", VALIDATION)
    if body.get("track_total_hits") not in (None, True, "true"):
        raise InvalidQuery("track_total_hits", "disabling [track_total_hits] is not allowed in a scroll context")


def continued(scroll_id: Any, keep_alive: Any, version: str, now: float) -> Scroll:
    """The scroll a next page's id names, kept alive ``keep_alive`` more (None: as long as it was); a 400 for an
    id that cannot be read, :class:`ContextMissing` for one expired or of another version."""
    state = _unpacked(scroll_id, SCROLL, "scroll_id", "Cannot parse scroll id")
    try:
        index, body, params, held, expires, after = state
    except ValueError:
        raise InvalidQuery("scroll_id", "Cannot parse scroll id", "illegal_argument_exception") from None
    laid_out = isinstance(index, str) and isinstance(body, dict) and isinstance(params, dict)
    offset = isinstance(after, int) and not isinstance(after, bool) and after >= 0
    cursor_ok = after is None or isinstance(after, list) or offset
    if not (laid_out and _an_expiry(expires, now) and cursor_ok):
        raise InvalidQuery("scroll_id", "Cannot parse scroll id", "illegal_argument_exception")
    if held != version or expires < now:
        raise ContextMissing()
    _check_scrolled(body)
    if keep_alive is not None:
        expires = now + keep_alive_s(a_keep_alive(keep_alive, "scroll"), "scroll")
    return Scroll(index, body, {str(k): str(v) for k, v in params.items()}, version, expires, after)


def _an_expiry(expires: Any, now: float) -> bool:
    """Whether an id's expiry is one this service could have written: a time at most the longest keep-alive on."""
    number = isinstance(expires, int | float) and not isinstance(expires, bool)
    return number and math.isfinite(expires) and expires <= now + MAX_KEEP_ALIVE_S + 1


def still_open(context_ids: list[Any], read: Callable[[Any, int], object]) -> list[Any]:
    """The ids of ``context_ids`` that name a scroll or a point in time still open, each read by ``read(id, i)``
    (:func:`continued`, :func:`named_pit`): what clearing them answers, as nothing is held to free; a 400 for one
    that cannot be read."""
    alive = []
    for i, context_id in enumerate(context_ids):
        try:
            read(context_id, i)
        except ContextMissing:
            continue
        alive.append(context_id)
    return alive


def opened_pit(index: str, keep_alive: Any, version: str, now: float) -> PointInTime:
    """A point in time on ``index`` (one index this service serves), kept alive ``keep_alive``."""
    return PointInTime(index, version, now + keep_alive_s(a_keep_alive(keep_alive, "keep_alive"), "keep_alive"))


def pit_of(pit: Any, version: str, now: float) -> PointInTime:
    """The point in time a search's ``pit`` (``{"id": ..., "keep_alive": ...}``) names, kept alive its
    ``keep_alive`` more; a 400 naming what cannot be read, :class:`ContextMissing` for one expired or of another
    version."""
    if not isinstance(pit, Mapping):
        raise InvalidQuery("pit", "expected an object with the point in time's id")
    known_keys(pit, "pit", ("id", "keep_alive"))
    found = named_pit(pit.get("id"), version, now, "pit.id")
    if pit.get("keep_alive") is None:
        return found
    alive = keep_alive_s(a_keep_alive(pit["keep_alive"], "pit.keep_alive"), "pit.keep_alive")
    return dataclasses.replace(found, expires=now + alive)


def named_pit(pit_id: Any, version: str, now: float, where: str) -> PointInTime:
    """The point in time ``pit_id`` names (``where``: where the request gives it); a 400 naming that for an id
    that cannot be read, :class:`ContextMissing` for one expired or of another version."""
    state = _unpacked(pit_id, POINT_IN_TIME, where, "Cannot parse point in time id")
    readable = len(state) == 3 and isinstance(state[0], str) and _an_expiry(state[2], now)
    if not readable:
        raise InvalidQuery(where, "Cannot parse point in time id", "illegal_argument_exception")
    index, held, expires = state
    if held != version or expires < now:
        raise ContextMissing()
    return PointInTime(index, version, expires)


def reads_as_ours(scroll_id: Any) -> bool:
    """Whether ``scroll_id`` is one of this service's (else a cluster's own, which the passthrough answers)."""
    try:
        _unpacked(scroll_id, SCROLL, "scroll_id", "")
    except InvalidQuery:
        return False
    return True


def served_version(pipeline: SearchPipeline) -> str:
    """The index version ``pipeline`` serves, as every worker serving it names it: its directory's name, and when
    it was last updated in place (``search-rerank update`` writes into the served version, and a scroll across it
    would skip or repeat the products it moved)."""
    root = pipeline.store.path.parent
    try:
        updated = json.loads((root / MANIFEST).read_text(encoding="utf-8")).get("updated")
    except (OSError, ValueError, AttributeError):
        updated = None
    return f"{root.name}@{updated}" if updated else root.name
