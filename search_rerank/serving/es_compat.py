"""Elasticsearch's search API over the pipeline: Query DSL in, an Elasticsearch response out.

Search front ends (Elastic Search UI, Searchkit, plain clients) speak the
Query DSL. This module maps the part of it that has a meaning here onto one
pipeline call: the text of the text queries, keyword and price filters,
paging, source filtering, and the OpenSearch UBI plugin's ``ext.ubi``. It
names whatever it cannot honour (:class:`Unsupported`, a 501) rather than
answering a different question than the one asked. Parameters that tune Lucene's scoring (fields, boosts, operator,
fuzziness, multi_match type) are accepted and listed as ignored, because
ranking here is the pipeline's.

Aggregations (``aggs``) are taken only where a cluster can compute them over
the full match set (``parse_search(..., aggregations=True)``); their filters
are the query's alone (``facet_filters``), since Elasticsearch applies a
``post_filter`` to the hits after aggregating, which is how facet counts stay
unnarrowed by the facet's own selection.

Filter semantics follow the product model: ``brand`` is single-valued, an
attribute is multi-valued, and a ``category`` term is a path prefix
("Furniture" or "Furniture > Sofas"), as hierarchical facets use it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

from pydantic import ValidationError

from ..core.filters import Filters, normalise_term
from ..core.pipeline import SearchResult
from ..core.product import Product
from ..core.reasons import TIMEOUT
from ..core.retrieval import DENSE, LEXICAL
from ..core.settings import ServiceSettings, Settings
from .body_checks import InvalidQuery, Unsupported, a_count, a_number, a_string, an_object, clause_list, single_key
from .field_aliases import source_with_aliases
from .hit_fields import HitFields, field_matches, parse_hit_fields
from .json_input import InvalidBody, NotJson, parse_json
from .ubi import UbiSearchParams

ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
"""On every Elasticsearch-shaped answer: Elasticsearch's own clients (JS and Python, 8.x) refuse one without it."""

TEXT_QUERIES = {
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "match_bool_prefix",
    "multi_match",
    "query_string",
    "simple_query_string",
    "combined_fields",
}
FILTER_QUERIES = {"term", "terms", "range"}
SEARCH_KEYS = {
    *("query", "post_filter", "from", "size", "_source", "sort", "track_total_hits", "explain", "ext"),
    *("stored_fields", "docvalue_fields", "fields"),
}
# Top-level keys Elasticsearch knows that this backend cannot answer; any other unknown key is a 400, as in ES.
UNSUPPORTED_KEYS = {
    "aggs",
    "aggregations",
    "highlight",
    "suggest",
    "collapse",
    "rescore",
    "knn",
    "rank",
    "retriever",
    "script_fields",
    "min_score",
    "search_after",
    "pit",
    "runtime_mappings",
    "indices_boost",
    "profile",
    "slice",
    "stats",
    "terminate_after",
    "sub_searches",
}
AGGREGATION_KEYS = ("aggs", "aggregations")
IGNORED_KEYS = {"timeout", "track_scores", "version", "seq_no_primary_term"}
SOURCE_KEYS = {"includes", "include", "excludes", "exclude"}
# URI parameters that would change the answer in a way not served here; the rest (routing hints,
# request_cache, ...) do not change which products come back, in which order (``typed_keys`` renames
# aggregations and suggesters: :func:`typed_key`; ``filter_path`` and ``rest_total_hits_as_int`` rewrite the
# answer: answer_params; ``q`` and its options, ``from``, ``size``, ``_source``, ``sort``, ``terminate_after`` and the
# other keys of the body a parameter sets go into the body: :func:`uri_search`, ``stored_fields`` and
# ``docvalue_fields`` too). ``source`` is a body (Elasticsearch searches it when the request has none), and
# ``suggest_field`` adds suggestions to it; a cluster serves ``scroll`` (delegation takes it first).
UNSUPPORTED_PARAMS = {"scroll", "source", "suggest_field"}
DEFAULT_TRACK_TOTAL_HITS = 10_000  # Elasticsearch counts exactly up to this many by default


def typed_key(kind: str, name: str) -> str:
    """An aggregation's or a suggester's key in an answer to ``?typed_keys``, as Elasticsearch writes it:
    ``sterms#brands``, ``completion#titles``. Its Java and .NET clients (so Spring Data Elasticsearch) and Kibana
    ask for it on every search, and read each result's type from the key."""
    return f"{kind}#{name}"


def bucket_order(spec: Mapping[str, Any]) -> list[tuple[str, str]]:
    """A bucket aggregation's ``order`` as (what, direction) pairs: an object, or a list of them (directions
    already lower case, see directions)."""
    order = spec.get("order", {"_count": "desc"})
    items = order if isinstance(order, list) else [order]
    return [
        ("_key" if by == "_term" else by, str(direction))
        for item in items
        if isinstance(item, Mapping)
        for by, direction in item.items()
    ]


def order_buckets(
    buckets: list[dict[str, Any]],
    order: list[tuple[str, str]],
    metric: Callable[[Mapping[str, Any], str], float | None],
) -> None:
    """``buckets`` in ``order`` (:func:`bucket_order`'s pairs), ties by key as Elasticsearch breaks them.
    ``metric`` reads the value a sub-aggregation's metric orders by from a bucket (None: it has none, and such
    buckets go last either way, as Elasticsearch's NaN does)."""
    buckets.sort(key=lambda b: b["key"])  # Elasticsearch's last tie-break: the key, ascending
    for by, direction in reversed(order):
        if by in ("_key", "_count"):
            buckets.sort(key=lambda b: b["key" if by == "_key" else "doc_count"], reverse=direction == "desc")
            continue
        values = [(metric(b, by), b) for b in buckets]
        known = [(value, b) for value, b in values if value is not None]
        known.sort(key=lambda pair: pair[0], reverse=direction == "desc")
        buckets[:] = [b for _, b in known] + [b for value, b in values if value is None]


def order_terms_buckets(
    answer: dict[str, Any], spec: Mapping[str, Any], metric: Callable[[Mapping[str, Any], str], float | None]
) -> None:
    """A terms answer's buckets in the order ``spec`` asks (:func:`order_buckets`), its ``size`` kept and the
    rest counted as others."""
    buckets = answer["buckets"]
    order_buckets(buckets, bucket_order(spec), metric)
    size = a_count(spec.get("size", 10), "size")  # checked where the aggregation was read: "3" is 3
    answer["sum_other_doc_count"] = answer.get("sum_other_doc_count", 0) + sum(b["doc_count"] for b in buckets[size:])
    del buckets[size:]


def asks_typed_keys(params: Mapping[str, Any]) -> bool:
    """Whether the URI parameters ask for :func:`typed_key` names (``?typed_keys``, ``?typed_keys=true``); any
    value but true or false is a 400 naming the parameter, as in Elasticsearch."""
    return flag(params.get("typed_keys", False), "typed_keys")


def es_error_body(status: int, cause: dict[str, Any]) -> dict[str, Any]:
    """Elasticsearch's error shape, which its clients parse: a failed request's body, or a failed
    multi-search item's ``responses[i]``."""
    return {"error": {"root_cause": [cause], **cause}, "status": status}


def index_not_found_cause(index: str) -> dict[str, Any]:
    """Elasticsearch's cause for an index it does not have: what this service answers for one it does not serve."""
    return {
        "type": "index_not_found_exception",
        "reason": f"no such index [{index}]",
        "resource.type": "index_or_alias",
        "resource.id": index,
        "index_uuid": "_na_",
        "index": index,
    }


MAX_PINNED = 100
"""Elasticsearch's limit on a ``pinned`` query's ids or docs (PinnedQueryBuilder.MAX_NUM_PINNED_HITS)."""
PINNED_QUERY_KEYS = frozenset({"ids", "docs", "organic", "boost", "_name"})


def pinned_query(spec: Mapping[str, Any], where: str) -> tuple[list[str], Any]:
    """A ``pinned`` query's ids (see :func:`pinned_ids`) and its ``organic`` query, which Elasticsearch requires.

    No ids leaves the answer its ``organic`` query's: Searchkit wraps the query in a ``pinned`` query for every
    query rule that fires, a boost, a filter or a rewrite that pins nothing included.
    """
    for key in spec:
        if key not in PINNED_QUERY_KEYS:
            raise InvalidQuery(f"{where}.{key}", f"[pinned] unknown field [{key}]")
    if spec.get("ids") is None and spec.get("docs") is None:
        raise InvalidQuery(where, "[pinned] ids and docs cannot both be null")
    ids = pinned_ids(spec, where)
    if spec.get("organic") is None:
        raise InvalidQuery(f"{where}.organic", "[pinned] organic query must be specified")
    return ids, spec["organic"]


def pinned_ids(spec: Mapping[str, Any], where: str) -> list[str]:
    """The documents a ``pinned`` query or retriever puts first (its ``ids``, or its ``docs``' ``_id``s), checked
    as Elasticsearch checks them (PinnedQueryBuilder): ids or docs but not both, at most 100, each an id, none
    twice. A doc's ``_index`` is read where the search is (:func:`~search_rerank.serving.pinned.settled`)."""
    if spec.get("ids") is not None and spec.get("docs") is not None:
        raise InvalidQuery(where, "[pinned] cannot specify both ids and docs")
    key = "docs" if spec.get("docs") is not None else "ids"
    listed = spec.get(key)
    if listed is not None and not isinstance(listed, list):
        raise InvalidQuery(f"{where}.{key}", "expected a list")
    listed = listed or []
    if len(listed) > MAX_PINNED:
        raise InvalidQuery(f"{where}.{key}", f"[pinned] max of {MAX_PINNED} {key} exceeded: {len(listed)} provided")
    ids: list[str] = []
    for i, item in enumerate(listed):
        if key == "docs":
            doc = an_object(item, f"{where}.docs[{i}]")
            for name in doc:
                if name not in ("_id", "_index"):
                    raise InvalidQuery(f"{where}.docs[{i}].{name}", f"[pinned] unknown field [{name}] of a doc")
            value = doc.get("_id")
        else:
            value = item
        field = f"{where}.docs[{i}]._id" if key == "docs" else f"{where}.ids[{i}]"
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise InvalidQuery(field, "expected an id (a string)")
        if key == "docs" and doc.get("_index") is not None and not isinstance(doc["_index"], str):
            raise InvalidQuery(f"{where}.docs[{i}]._index", "expected an index name")
        if str(value) in ids and (key == "ids" or _same_doc(listed, i, ids.index(str(value)))):
            raise InvalidQuery(field, f"[pinned] duplicate {key[:-1]} found in list: {value}")
        ids.append(str(value))
    return ids


def _same_doc(docs: list[Any], i: int, j: int) -> bool:
    """Whether two of a ``pinned`` query's docs name one document (the same ``_id`` in the same ``_index``)."""
    return docs[i].get("_index") == docs[j].get("_index")


UNMAPPED_TYPES = frozenset(
    {
        *("long", "integer", "short", "byte", "double", "float", "half_float", "scaled_float", "unsigned_long"),
        *("date", "date_nanos", "boolean", "keyword", "constant_keyword", "wildcard", "text", "match_only_text"),
        *("ip", "version", "binary", "geo_point", "geo_shape", "point", "shape", "flattened", "object", "nested"),
        *("integer_range", "float_range", "long_range", "double_range", "date_range", "ip_range", "token_count"),
        *("search_as_you_type", "completion", "dense_vector", "sparse_vector", "rank_feature", "rank_features"),
    }
)
"""The field types Elasticsearch builds an ``unmapped_type`` sort from: another is its 400 ("No mapper found")."""


def function_filter(function: Mapping[str, Any]) -> Any:
    """A ``function_score`` function's ``filter``: a query, or a list of one, which Elasticsearch's parser takes as
    that query (Searchkick's ``boost_where`` and ``personalize`` send ``"filter": [{"term": ...}]``)."""
    given = function.get("filter")
    return given[0] if isinstance(given, list) and len(given) == 1 else given


def unmapped_sort_type(name: str, options: Any, where: str) -> str | None:
    """A sort key's ``unmapped_type``, checked as Elasticsearch checks it (a 400 naming it for a type it does not
    know); None where the key names none or is no field's (``_script``, ``_geo_distance``: their own refusals
    stand). A field the index does not hold with one orders nothing and is left out of the sort, its sort value
    too (:func:`without_unmapped`)."""
    unmapped = options.get("unmapped_type") if isinstance(options, Mapping) else None
    if unmapped is None or name.startswith("_"):
        return None
    at = f"{where}.{name}.unmapped_type"
    if a_string(unmapped, at) not in UNMAPPED_TYPES:
        raise InvalidQuery(at, f"No mapper found for type [{unmapped}]")
    return str(unmapped)


def without_unmapped(values: Any, dropped: Sequence[int], kept: int) -> Any:
    """A ``search_after`` written with a value for every key of the sort, those left out for a field the index
    does not hold (:func:`unmapped_sort_type`; ``dropped``, their places) included, as the values of the ``kept``
    keys; as it came otherwise (a page's own sort values, which carry the kept keys' alone)."""
    if isinstance(values, list) and dropped and len(values) == kept + len(dropped):
        return [value for i, value in enumerate(values) if i not in dropped]
    return values


def nested_sort(name: str, options: Any, where: str) -> None:
    """Check a sort's ``nested`` option (Searchkit's ``nestedPath``: ``{"offers.price": {"nested": {"path":
    "offers"}}}``), which changes nothing here: a catalog's objects are held as their fields' several values, so
    the sort is the field's (its least ascending, its greatest descending, or the ``mode`` asked), as Elasticsearch
    sorts by a nested field. A ``filter`` choosing among the objects, ``max_children`` or a path nested within it
    is a 501; a path the field is not under, a 400."""
    nested = options.get("nested") if isinstance(options, Mapping) else None
    if nested is None:
        return
    at = f"{where}.{name}.nested"
    nested = an_object(nested, at)
    path = nested.get("path")
    if not isinstance(path, str) or not path:
        raise InvalidQuery(f"{at}.path", "required")
    if not name.startswith(f"{path}."):
        raise InvalidQuery(f"{at}.path", f"[{name}] is not a field under the nested path [{path}]")
    for key in nested:
        if key != "path":
            raise Unsupported(f"{at}.{key}", "choosing among the nested objects' values")


@dataclass(frozen=True)
class SourceFilter:
    """``_source``: off, or the fields to keep (``includes``) and drop (``excludes``), with wildcards."""

    enabled: bool = True
    includes: tuple[str, ...] = ()
    excludes: tuple[str, ...] = ()

    def apply(self, record: Mapping[str, Any], prefix: str = "", included: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in record.items():
            path = f"{prefix}{key}"
            if any(field_matches(path, p) for p in self.excludes):
                continue
            inside = included or not self.includes or any(field_matches(path, p) for p in self.includes)
            if isinstance(value, Mapping):
                if inside or any(p.startswith(f"{path}.") for p in self.includes):
                    inner = self.apply(value, f"{path}.", inside)
                    if inner or (inside and not value):
                        out[key] = inner
            elif inside:
                out[key] = value
        return out


@dataclass(frozen=True)
class EsSearch:
    """What an Elasticsearch search body asks of the pipeline."""

    text: str
    filters: Filters | None
    matches_nothing: bool = False
    offset: int = 0
    size: int = 10
    source: SourceFilter = SourceFilter()
    hit_fields: HitFields = HitFields()
    """``stored_fields`` and ``docvalue_fields`` (see hit_fields)."""
    track_total_hits: bool | int = DEFAULT_TRACK_TOTAL_HITS
    explain: bool = False
    ignored: tuple[str, ...] = ()
    ubi: UbiSearchParams | None = None
    aggs: dict[str, Any] | None = None
    """The aggregations as sent, for the cluster; None when none were asked for."""
    facet_filters: Filters | None = None
    """The query's filters without the ``post_filter``: what the aggregations count over."""
    facet_matches_nothing: bool = False
    typed_keys: bool = False
    """Whether aggregations and suggesters are answered under :func:`typed_key` (``?typed_keys``)."""


# ------------------------------------------------------------------ request


@dataclass
class _Terms:
    """One required condition: the product's ``field`` (``attributes.<key>``) has one of ``values``."""

    field: str
    values: frozenset[str]


@dataclass
class _Range:
    low: float = -math.inf
    high: float = math.inf


@dataclass
class _Clauses:
    texts: list[str] = field(default_factory=list)
    required: list[_Terms | _Range] = field(default_factory=list)
    ignored: list[str] = field(default_factory=list)

    def ignore(self, what: str) -> None:
        if what not in self.ignored:
            self.ignored.append(what)


# What an answer's ``_shards`` says: one index, answered whole (a cluster's failures are errors or degraded parts).
ONE_SHARD = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}


def parse_search(
    body: Mapping[str, Any], params: Mapping[str, str], limits: ServiceSettings, aggregations: bool = False
) -> EsSearch:
    """Translate a search body (its URI parameters already in it: :func:`uri_search`; ``params``: those left).

    ``aggregations``: whether the backend computes ``aggs`` (a cluster does,
    the embedded backend does not: there they are :class:`Unsupported`).
    """
    for key in body:
        if key in AGGREGATION_KEYS and not aggregations and body[key] not in ({}, [], None):
            raise Unsupported(
                key,
                "aggregations need a cluster backend (lexical.backend = elasticsearch "
                "or opensearch), which counts the whole match set",
            )
        if key in UNSUPPORTED_KEYS - set(AGGREGATION_KEYS) and body[key] not in ({}, [], None):
            raise Unsupported(key)
        if key not in SEARCH_KEYS | UNSUPPORTED_KEYS | IGNORED_KEYS:
            raise InvalidQuery(key, "unknown key for a search request")
    for param in params:
        if param in UNSUPPORTED_PARAMS:
            raise Unsupported(param, "as a URI parameter")
    clauses = _Clauses(ignored=sorted(k for k in body if k in IGNORED_KEYS))
    if body.get("query") is not None:
        _query(body["query"], "query", scoring=True, out=clauses)
    typed_keys = asks_typed_keys(params)
    aggs = _aggregations(body) if aggregations else None
    if aggs is not None and typed_keys:
        # A leg's ``aggregate`` (no cluster to delegate to) answers plain names, of types not known here.
        raise Unsupported("typed_keys", "with aggregations counted by this lexical leg")
    facet_filters, facet_nothing = _filters(clauses.required) if aggs is not None else (None, False)
    if body.get("post_filter") is not None:
        # For the hits a post filter is one more filter; aggregations count without it (facet_filters).
        _query(body["post_filter"], "post_filter", scoring=False, out=clauses)
    _sort(body.get("sort"))
    text = " ".join(dict.fromkeys(t.strip() for t in clauses.texts if t.strip()))
    if len(text) > limits.max_query_length:
        raise InvalidQuery("query", f"the query text must be at most {limits.max_query_length} characters")
    size = a_count(body.get("size", 10), "size")
    offset = a_count(body.get("from", 0), "from")
    if offset + size > limits.max_result_window:
        raise InvalidQuery(
            "from",
            f"from + size must be <= {limits.max_result_window} "
            "(the result window, as Elasticsearch's index.max_result_window)",
        )
    filters, nothing = _filters(clauses.required)
    hit_fields = parse_hit_fields(body)
    return EsSearch(
        text=text,
        filters=filters,
        matches_nothing=nothing,
        offset=offset,
        size=size,
        source=source_filter(body["_source"]) if "_source" in body else SourceFilter(enabled=hit_fields.source),
        hit_fields=hit_fields,
        track_total_hits=_track(body.get("track_total_hits")),
        explain=flag(body.get("explain", False), "explain"),
        ignored=tuple(clauses.ignored),
        ubi=_ubi(body.get("ext")),
        aggs=aggs,
        facet_filters=facet_filters,
        facet_matches_nothing=facet_nothing,
        typed_keys=typed_keys,
    )


def _aggregations(body: Mapping[str, Any]) -> dict[str, Any] | None:
    """``aggs`` or ``aggregations`` (not both, as in Elasticsearch), as sent; None when absent or empty."""
    given = [key for key in AGGREGATION_KEYS if body.get(key) not in ({}, [], None)]
    if not given:
        return None
    if len(given) > 1:
        raise InvalidQuery("aggregations", "found two aggregation type definitions: use aggs or aggregations")
    return dict(an_object(body[given[0]], given[0]))


INDEX_OPTIONS = ("ignore_unavailable", "allow_no_indices")
"""How a search resolves an index expression that names indices not served: URI parameters of a search, keys of
a multi-search's header (which override the multi-search's own parameters)."""
MSEARCH_HEADER_KEYS = frozenset(
    {
        *("index", "indices", "type", "types", "search_type", "preference", "routing", "request_cache"),
        *("expand_wildcards", "ignore_unavailable", "ignore_throttled", "allow_no_indices"),
        *("ccs_minimize_roundtrips", "allow_partial_search_results", "project_routing"),
    }
)
"""The keys of a multi-search's header line Elasticsearch reads (MultiSearchRequest.readMultiLineFormat); another
fails its search, as there, rather than being searched as if it were not there."""
MsearchItem = tuple[str, dict[str, Any], dict[str, Any]]
"""A multi-search's search: its index expression, its body and its header's :data:`INDEX_OPTIONS`."""


def parse_msearch(data: bytes, default_index: str, max_depth: int) -> list[MsearchItem | InvalidBody | InvalidQuery]:
    """The searches of a multi-search (newline-delimited header and body lines): each one's
    :data:`MsearchItem`, or the error of its header or body line, so that one unreadable search fails alone.

    Raises only when the request as a whole cannot be read: not UTF-8, no line of JSON at all, or an odd
    number of lines, which leaves no way to tell headers from bodies.

    Lines end at ``"\n"`` alone, as NDJSON's and Elasticsearch's do: a JSON string may hold U+2028, U+2029 or
    U+0085 unescaped (JavaScript's ``JSON.stringify`` leaves them so), and ``str.splitlines`` split a shopper's
    query there, failing the whole multi-search or reading every later body as a header.
    """
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise NotJson("body", "not UTF-8") from None
    lines = [line for line in text.split("\n") if line.strip()]
    parsed: list[Any] = []
    for i, line in enumerate(lines):
        try:
            parsed.append(parse_json(line, max_depth, where="header" if i % 2 == 0 else ""))
        except InvalidBody as exc:
            parsed.append(exc)
    if all(isinstance(p, NotJson) for p in parsed):
        raise InvalidBody("body", "not a multi-search: expected newline-delimited JSON header and body lines")
    if len(lines) % 2:
        raise InvalidQuery("body", "a multi-search is pairs of header and body lines")
    items: list[MsearchItem | InvalidBody | InvalidQuery] = []
    for header, body in zip(parsed[::2], parsed[1::2], strict=True):
        unreadable = header if isinstance(header, InvalidBody) else body if isinstance(body, InvalidBody) else None
        if unreadable is not None:
            items.append(unreadable)
            continue
        try:
            items.append(_msearch_item(header, body, default_index))
        except InvalidQuery as exc:
            items.append(exc)
    return items


def check_hits_in_all(bodies: Iterable[Mapping[str, Any]], most: int, field: str, setting: str) -> None:
    """Refuse, before any search runs, a request of several searches that asks more than ``most`` hits in all
    (each search's from + size, counting its default size of 10).

    Each search alone is held to the result window, but a multi-search of 50 searches of 10,000 hits each took a
    minute of CPU and 600 MB to answer with a 300 MB body: no front end asks that, and an attacker's one request
    should not cost more than one search of the window does. A search whose from or size cannot be read counts for
    nothing here, as it fails alone."""
    asked = 0
    for body in bodies:
        try:
            asked += a_count(body.get("from", 0), "from") + a_count(body.get("size", 10), "size")
        except InvalidQuery:
            continue
    if asked > most:
        raise InvalidQuery(field, f"{asked} hits asked in all (from + size of each search); at most {most} ({setting})")


def _msearch_item(header: Any, body: Any, default_index: str) -> MsearchItem:
    header = an_object(header, "header")
    for key in header:
        if key not in MSEARCH_HEADER_KEYS:
            raise InvalidQuery(
                f"header.{key}", f"key [{key}] is not supported in the metadata section", "illegal_argument_exception"
            )
    index = header.get("index", header.get("indices", default_index))  # Elasticsearch reads either
    if isinstance(index, list) and all(isinstance(name, str) for name in index):
        index = ",".join(index)
    options = {name: header[name] for name in INDEX_OPTIONS if name in header}
    return a_string(index, "header.index"), dict(an_object(body, "body")), options


def _query(query: Any, path: str, scoring: bool, out: _Clauses) -> None:
    kind, spec = single_key(query, path)
    where = f"{path}.{kind}"
    if kind == "match_all":
        return
    if kind in TEXT_QUERIES:
        if not scoring:
            raise Unsupported(where, "a text query in filter context")
        out.texts.append(_text(kind, spec, where, out))
    elif kind in FILTER_QUERIES:
        out.required.append(_leaf_filter(kind, spec, where))
    elif kind == "bool":
        _bool(spec, where, scoring, out)
    elif kind == "constant_score":
        _query(an_object(spec, where).get("filter"), f"{where}.filter", scoring=False, out=out)
    else:
        raise Unsupported(where, f"query type {kind!r}")


def _bool(spec: Any, path: str, scoring: bool, out: _Clauses) -> None:
    spec = an_object(spec, path)
    for key in spec:
        if key not in {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}:
            raise InvalidQuery(f"{path}.{key}", "unknown key for a bool query")
    if clause_list(spec.get("must_not")):
        raise Unsupported(f"{path}.must_not", "excluding documents")
    for i, clause in enumerate(clause_list(spec.get("must"))):
        _query(clause, f"{path}.must[{i}]", scoring, out)
    for i, clause in enumerate(clause_list(spec.get("filter"))):
        _query(clause, f"{path}.filter[{i}]", False, out)
    should = clause_list(spec.get("should"))
    if should:
        msm = spec.get("minimum_should_match")
        required = msm not in (None, 0, "0") or not (clause_list(spec.get("must")) or clause_list(spec.get("filter")))
        if msm not in (None, 0, "0", 1, "1"):
            raise Unsupported(f"{path}.minimum_should_match", f"{msm!r} (only 1 is supported)")
        _should(should, f"{path}.should", scoring, required, out)


def _should(clauses: list[Any], path: str, scoring: bool, required: bool, out: _Clauses) -> None:
    """Text alternatives add their words; filter alternatives become one any-of condition."""
    texts, filters = _Clauses(), _Clauses()
    for i, clause in enumerate(clauses):
        kind, _ = single_key(clause, f"{path}[{i}]")
        target = texts if kind in TEXT_QUERIES or _only_text(clause) else filters
        _query(clause, f"{path}[{i}]", scoring if target is texts else False, target)
    out.texts += texts.texts
    for what in texts.ignored + filters.ignored:
        out.ignore(what)
    if not filters.required:
        return
    if not required:
        out.ignore(f"{path} (optional filters only change Lucene's scores)")
        return
    if texts.texts:
        raise Unsupported(path, "either a text query or a filter")
    out.required.append(_union(filters.required, path))


def _only_text(clause: Any) -> bool:
    """A nested bool of text queries only (Search UI's best_fields/phrase/... alternatives)."""
    kind, spec = next(iter(clause.items()))
    if kind != "bool" or not isinstance(spec, Mapping):
        return False
    nested = [c for key in ("must", "should") for c in clause_list(spec.get(key))]
    return (
        bool(nested)
        and not clause_list(spec.get("filter"))
        and all(
            isinstance(c, Mapping) and len(c) == 1 and (next(iter(c)) in TEXT_QUERIES or _only_text(c)) for c in nested
        )
    )


def _union(alternatives: list[_Terms | _Range], path: str) -> _Terms | _Range:
    terms = [a for a in alternatives if isinstance(a, _Terms)]
    if len(terms) == len(alternatives) and len({a.field for a in terms}) == 1:
        return _Terms(terms[0].field, frozenset().union(*(a.values for a in terms)))
    if all(isinstance(a, _Range) for a in alternatives):
        ranges = sorted((a for a in alternatives if isinstance(a, _Range)), key=lambda r: r.low)
        merged = _Range(ranges[0].low, ranges[0].high)
        for r in ranges[1:]:
            if r.low > merged.high:
                raise Unsupported(path, "price ranges with a gap between them")
            merged.high = max(merged.high, r.high)
        return merged
    raise Unsupported(path, "alternatives on different fields")


def _text(kind: str, spec: Any, path: str, out: _Clauses) -> str:
    if kind in {"match", "match_phrase", "match_phrase_prefix", "match_bool_prefix"}:
        _, spec = single_key(spec, path)
        if not isinstance(spec, Mapping):
            return a_string(spec, path)
    spec = an_object(spec, path)
    for key in spec:
        if key != "query":
            out.ignore(f"{kind}.{key}")
    return a_string(spec.get("query"), f"{path}.query")


def _leaf_filter(kind: str, spec: Any, path: str) -> _Terms | _Range:
    spec = {k: v for k, v in an_object(spec, path).items() if k not in {"boost", "_name"}}
    name, value = single_key(spec, path)
    if kind == "range":
        if name != "price":
            raise Unsupported(f"{path}.{name}", "range filters on a field other than price")
        return _price_range(value, f"{path}.{name}")
    target = _field(name, f"{path}.{name}")
    if kind == "term":
        if isinstance(value, Mapping):
            value = value.get("value")
        values = [value]
    else:
        if not isinstance(value, list):
            raise InvalidQuery(f"{path}.{name}", "terms takes a list of values")
        values = value
    return _Terms(target, frozenset(a_string(v, f"{path}.{name}", scalars=True) for v in values))


def _field(name: str, path: str) -> str:
    base = name.removesuffix(".keyword")
    if base in {"brand", "category"} or (base.startswith("attributes.") and base.count(".") == 1):
        return base
    raise Unsupported(path, f"filtering on {name!r} (filterable: brand, category, attributes.<name>, price)")


def _price_range(spec: Any, path: str) -> _Range:
    spec = an_object(spec, path)
    out = _Range()
    for key, value in spec.items():
        if key == "boost":
            continue
        if key not in {"gte", "gt", "lte", "lt"}:
            raise Unsupported(f"{path}.{key}")
        number = a_number(value, f"{path}.{key}")
        if key == "gte":
            out.low = max(out.low, number)
        elif key == "gt":
            out.low = max(out.low, math.nextafter(number, math.inf))
        elif key == "lte":
            out.high = min(out.high, number)
        else:
            out.high = min(out.high, math.nextafter(number, -math.inf))
    return out


def _filters(required: Iterable[_Terms | _Range]) -> tuple[Filters | None, bool]:
    """All conditions as one Filters; ``True`` when no product can satisfy them all."""
    brands: dict[str, str] | None = None
    paths: list[tuple[str, ...]] = []
    attributes: dict[str, frozenset[str]] = {}
    price = _Range()
    for cond in required:
        if isinstance(cond, _Range):
            price = _Range(max(price.low, cond.low), min(price.high, cond.high))
        elif not cond.values:
            return None, True
        elif cond.field == "brand":
            named = {normalise_term(v): v for v in cond.values}
            brands = named if brands is None else {k: v for k, v in brands.items() if k in named}
        elif cond.field == "category":
            if len(cond.values) != 1:
                raise Unsupported("category", "several alternative categories (one category path at a time)")
            paths.append(Product.split_category(next(iter(cond.values))))
        else:
            key = cond.field.split(".", 1)[1].lower()
            if key in attributes and {normalise_term(v) for v in attributes[key]} != {
                normalise_term(v) for v in cond.values
            }:
                raise Unsupported(cond.field, "two different sets of values that must all match")
            attributes[key] = cond.values
    deepest = max(paths, key=len, default=None)
    if (
        brands == {}
        or price.low > price.high
        or (deepest is not None and any(not _is_prefix(p, deepest) for p in paths))
    ):
        return None, True
    try:
        filters = Filters(
            brand=tuple(sorted(brands.values())) if brands is not None else None,
            category=deepest,
            price_min=price.low if price.low > -math.inf else None,
            price_max=price.high if price.high < math.inf else None,
            attributes={k: tuple(sorted(v)) for k, v in attributes.items()},
        )
    except ValidationError as exc:
        raise InvalidQuery("query", exc.errors()[0]["msg"]) from exc
    return (None if filters.is_empty else filters), False


def _is_prefix(short: tuple[str, ...], path: tuple[str, ...]) -> bool:
    return [normalise_term(p) for p in short] == [normalise_term(p) for p in path[: len(short)]]


def _sort(sort: Any) -> None:
    """Only relevance order exists here; anything else would silently be a different order."""
    items = sort if isinstance(sort, list) else [] if sort is None else [sort]
    for item in items:
        name, order = (item, "desc") if isinstance(item, str) else single_key(item, "sort")
        if isinstance(order, Mapping):
            order = order.get("order", "desc")
        if name != "_score":
            raise Unsupported("sort", f"sorting by {name!r} (only _score)")
        if order != "desc":
            raise Unsupported("sort", "ascending _score")


def source_filter(value: Any, path: str = "_source") -> SourceFilter:
    """``_source`` as Elasticsearch takes it: a flag, a pattern, a list of them, or includes/excludes of either
    (``path``: where it is in the body, for a refusal to name)."""
    if isinstance(value, bool):
        return SourceFilter(enabled=value)
    if isinstance(value, (str, list)):
        return SourceFilter(includes=_patterns(value, path))
    value = an_object(value, path)
    for key in value:
        if key not in SOURCE_KEYS:
            raise InvalidQuery(f"{path}.{key}", f"unknown key (expected {', '.join(sorted(SOURCE_KEYS))})")
    patterns = {}
    for kind, synonym in (("includes", "include"), ("excludes", "exclude")):
        key = kind if kind in value or synonym not in value else synonym
        patterns[kind] = _patterns(value.get(key, []), f"{path}.{key}")
    return SourceFilter(includes=patterns["includes"], excludes=patterns["excludes"])


def _patterns(value: Any, path: str) -> tuple[str, ...]:
    """A field pattern or a list of them."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, list):
        raise InvalidQuery(path, "expected a string or a list of strings")
    return tuple(a_string(v, f"{path}[{i}]") for i, v in enumerate(value))


def _ubi(ext: Any) -> UbiSearchParams | None:
    """``ext.ubi``, as the OpenSearch UBI plugin takes it; other search extensions belong to other plugins."""
    if ext is None:
        return None
    ext = an_object(ext, "ext")
    for key in ext:
        if key != "ubi":
            raise Unsupported(f"ext.{key}", "search extension (only ext.ubi is served)")
    if "ubi" not in ext:
        return None
    try:
        return UbiSearchParams.model_validate(an_object(ext["ubi"], "ext.ubi"))
    except ValidationError as exc:
        error = exc.errors()[0]
        raise InvalidQuery(".".join(["ext.ubi", *map(str, error["loc"])]), error["msg"]) from exc


def _track(value: Any) -> bool | int:
    if value is None:
        return DEFAULT_TRACK_TOTAL_HITS
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return value == "true"
    return a_count(value, "track_total_hits")


# ------------------------------------------------------------------ response


def lucene_explanation(score: float, parts: Mapping[str, Any]) -> dict[str, Any]:
    """A hit's explanation in the shape Elasticsearch's ``explain`` gives it (``value``, ``description``,
    ``details``), which Kibana's and the clients' explain views read: the score, and under it each value of the
    ranking's stages by name (the explanation ``search_rerank.explanations`` holds, whose keys the README lists),
    not Lucene's terms, since the score is the pipeline's, not one BM25's."""
    legs = ", ".join(parts.get("legs", ()))
    details: list[dict[str, Any]] = [
        {"value": value, "description": name, "details": []}
        for name, value in parts.items()
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "final"
    ]
    description = f"search_rerank's ranking of the candidates from {legs or 'no leg'}: its stages' values"
    return {"value": score, "description": description, "details": details}


def es_response(
    search: EsSearch, result: SearchResult | None, settings: Settings, index: str, took_ms: float
) -> dict[str, Any]:
    """The Elasticsearch response body, plus a ``search_rerank`` section saying how the ranking went."""
    hits = []
    for hit in result.hits if result is not None else []:
        item: dict[str, Any] = {"_index": index, "_id": hit.product.id, "_score": hit.candidate.score}
        if search.source.enabled:
            record = source_with_aliases(hit.product.to_record(), settings.service.field_aliases)
            item["_source"] = search.source.apply(record)
        if search.explain:
            item["_explanation"] = lucene_explanation(hit.candidate.score, hit.explanation())
        hits.append(item)
    ranking = result.ranking if result is not None else None
    candidates = ranking.candidates if ranking is not None else []
    degraded = ranking.degraded if ranking is not None else {}
    section: dict[str, Any] = {
        "timings_ms": {k: round(v, 3) for k, v in ranking.timings_ms.items()} if ranking is not None else {},
        "degraded": degraded,
        "skipped": ranking.skipped if ranking is not None else {"search": "the filters exclude every product"},
        "ignored": list(search.ignored),
    }
    if search.explain and result is not None:
        section["explanations"] = {hit.product.id: hit.explanation() for hit in result.hits}
    if ranking is not None and ranking.anchor is not None:
        section["code_anchor"] = ranking.anchor
    hits_section: dict[str, Any] = {"max_score": candidates[0].score if candidates else None, "hits": hits}
    if search.track_total_hits is not False:
        hits_section = {"total": _total(result, settings, search.track_total_hits), **hits_section}
    return {
        "took": int(round(took_ms)),
        "timed_out": TIMEOUT in degraded.values(),
        "_shards": ONE_SHARD,
        "hits": hits_section,
        "search_rerank": section,
    }


def _total(result: SearchResult | None, settings: Settings, track: bool | int) -> dict[str, Any]:
    """Ranked candidates; a lower bound (``gte``) when a leg filled its quota, so more products may match."""
    if result is None:
        return {"value": 0, "relation": "eq"}
    ranking = result.ranking
    quota = {LEXICAL: settings.lexical.candidates, DENSE: settings.dense.candidates}
    capped = bool(ranking.degraded) or any(len(ranking.stages.get(leg, ())) >= k for leg, k in quota.items())
    value, relation = result.total, "gte" if capped else "eq"
    if track is not True and value > track:
        value, relation = track, "gte"
    return {"value": value, "relation": relation}


GLOBAL_URI_PARAMS = frozenset({"pretty", "human", "error_trace", "filter_path", "source", "source_content_type"})
"""What every Elasticsearch endpoint reads (RestRequest): its answer's form, and ``source`` for a body."""
INDEX_URI_PARAMS = frozenset(
    {"ignore_unavailable", "ignore_throttled", "allow_no_indices", "expand_wildcards", "routing", "project_routing"}
)
KNOWN_URI_PARAMS = {
    "search": GLOBAL_URI_PARAMS
    | INDEX_URI_PARAMS
    | {
        *("q", "df", "analyzer", "analyze_wildcard", "default_operator", "lenient"),
        *("from", "size", "sort", "track_total_hits", "track_scores", "terminate_after", "timeout", "explain"),
        *("version", "seq_no_primary_term", "stored_fields", "docvalue_fields", "fielddata_fields", "stats"),
        *("_source", "_source_includes", "_source_excludes", "_source_include", "_source_exclude"),
        *("_source_exclude_vectors", "force_synthetic_source", "include_named_queries_score"),
        *("suggest_field", "suggest_mode", "suggest_size", "suggest_text", "typed_keys", "rest_total_hits_as_int"),
        *("scroll", "search_type", "preference", "request_cache", "allow_partial_search_results"),
        *("batched_reduce_size", "max_concurrent_shard_requests", "pre_filter_shard_size"),
        *("ccs_minimize_roundtrips", "min_compatible_shard_node", "enable_fields_emulation"),
        # OpenSearch's own
        *("cancel_after_time_interval", "phase_took", "search_pipeline", "verbose_pipeline"),
    },
    "msearch": GLOBAL_URI_PARAMS
    | INDEX_URI_PARAMS
    | {
        *("search_type", "max_concurrent_searches", "max_concurrent_shard_requests", "pre_filter_shard_size"),
        *("typed_keys", "rest_total_hits_as_int", "ccs_minimize_roundtrips", "include_named_queries_score"),
        *("preference", "cancel_after_time_interval", "phase_took", "search_pipeline"),
    },
    "scroll": GLOBAL_URI_PARAMS | {"scroll", "scroll_id", "rest_total_hits_as_int"},
    "clear_scroll": GLOBAL_URI_PARAMS | {"scroll_id"},
    "open_point_in_time": GLOBAL_URI_PARAMS
    | INDEX_URI_PARAMS
    | {"keep_alive", "preference", "allow_partial_search_results", "max_concurrent_shard_requests"},
    "close_point_in_time": GLOBAL_URI_PARAMS,
    "count": GLOBAL_URI_PARAMS
    | INDEX_URI_PARAMS
    | {"q", "df", "analyzer", "analyze_wildcard", "default_operator", "lenient", "min_score", "preference"}
    | {"terminate_after"},
}
"""The URI parameters each endpoint takes, as the REST specifications of Elasticsearch 7 to 9 and OpenSearch list
them: one beyond them is a 400 naming it (:func:`check_uri_params`), as Elasticsearch refuses it, rather than a
misspelt ``?szie=5`` answered as if it were not there."""


def check_uri_params(endpoint: str, params: Iterable[str], path: str) -> None:
    """A 400 (Elasticsearch's ``illegal_argument_exception``) naming the URI parameters ``endpoint`` does not take,
    each with the nearest it does."""
    known = KNOWN_URI_PARAMS[endpoint]
    unknown = list(dict.fromkeys(name for name in params if name not in known))
    if not unknown:
        return
    named = []
    for name in unknown:
        near = get_close_matches(name, sorted(known), n=1)
        named.append(f"[{name}]" + (f" -> did you mean [{near[0]}]?" if near else ""))
    which = "parameter" if len(unknown) == 1 else "parameters"
    raise InvalidQuery(
        unknown[0], f"request [{path}] contains unrecognized {which}: {', '.join(named)}", "illegal_argument_exception"
    )


URI_FLAGS = (
    *("request_cache", "allow_partial_search_results", "ccs_minimize_roundtrips", "ignore_unavailable"),
    *("allow_no_indices", "ignore_throttled", "include_named_queries_score", "force_synthetic_source"),
    *("typed_keys", "rest_total_hits_as_int"),
)
"""URI parameters Elasticsearch reads as a boolean (``Booleans.parseBoolean``: ``true``, ``false``, or none)."""
URI_CHOICES = {
    "search_type": ("query_then_fetch", "dfs_query_then_fetch"),
    "expand_wildcards": ("all", "open", "closed", "hidden", "none"),
}
"""URI parameters of a few words, each value's words (``expand_wildcards`` takes several, comma-separated)."""
URI_COUNTS = (
    "batched_reduce_size",
    "max_concurrent_shard_requests",
    "pre_filter_shard_size",
    "max_concurrent_searches",
)
_TIME_VALUE = re.compile(r"-1|0|[0-9]+(?:\.[0-9]+)?(?:nanos|micros|ms|s|m|h|d)")


def check_uri_values(params: Mapping[str, str]) -> None:
    """A 400 naming a URI parameter whose value Elasticsearch refuses (``search_type=nope``, ``timeout=abc``,
    ``request_cache=maybe``), rather than a value read nowhere and a search answered as though it were valid."""
    for name, value in params.items():
        if name in URI_FLAGS:
            flag(value, name)
        elif name in URI_CHOICES:
            wrong = [word for word in value.split(",") if word.strip() not in URI_CHOICES[name]]
            if wrong or not value:
                raise InvalidQuery(
                    name,
                    f"no {name} [{value}]: expected {' or '.join(URI_CHOICES[name])}",
                    "illegal_argument_exception",
                )
        elif name in URI_COUNTS:
            a_count(value, name, minimum=1)
        elif name == "timeout" and not _TIME_VALUE.fullmatch(value):
            raise InvalidQuery(
                name,
                f"failed to parse setting [timeout] with value [{value}] as a time value",
                "illegal_argument_exception",
            )


URI_QUERY_PARAMS = {
    "q": "query",
    "df": "default_field",
    "default_operator": "default_operator",
    "analyzer": "analyzer",
    "analyze_wildcard": "analyze_wildcard",
    "lenient": "lenient",
}
"""A URI search's (or count's) Lucene query and its options, by the ``query_string`` key each one is
(RestActions.urlParamsToQueryBuilder): dropped, a cluster matched ``q`` with the field's analyzer where
``?analyzer=whitespace`` asked another, and refused a number field's ``price:abc`` that ``?lenient`` matches none of."""
URI_QUERY_FLAGS = ("analyze_wildcard", "lenient")
URI_BODY_PARAMS = ("from", "size", "track_total_hits", "timeout")
"""URI parameters that are the body's key of the same name, their text read as the body's value is."""
URI_BODY_FLAGS = ("explain", "version", "seq_no_primary_term", "track_scores")
"""URI parameters that are the body's boolean of the same name (``?explain``, ``?explain=true``)."""
URI_SOURCE_PARAMS = ("_source", "_source_includes", "_source_excludes")


def uri_search(body: Mapping[str, Any], params: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """A URI search's parameters put in the body, as Elasticsearch reads them, and the parameters left.

    Elasticsearch parses the body, then sets each parameter given over it (RestSearchAction.parseSearchSource), so
    a parameter wins over the body's key: ``?size=1`` beside ``{"size": 3}`` is a page of one, ``?_source=false``
    beside ``"_source": true`` leaves the source out (read beside the body, the body's won, and ``track_scores``,
    ``version`` or ``timeout`` went unread where the body's same key is served or listed as ignored).

    ``?q=`` is Lucene syntax (with ``df`` and ``default_operator``) and replaces the body's query, so it matches,
    excludes and names fields as a ``query_string`` does on both backends (read as words, ``q=brand:Acme``
    searched for the words "brand" and "acme", and ``q=(((`` was answered); ``?sort=price:desc,_score``
    is added after the body's ``sort``, ``?terminate_after=1`` (how Elasticsearch's Go and JavaScript clients send
    it) is the body's ``terminate_after``, which a cluster serves on its own page and the embedded index does not;
    ``?stored_fields=_none_`` replaces the body's, ``?docvalue_fields=_id,price`` adds to its list, as there.
    ``df``, ``default_operator`` and the other options without ``q`` change nothing, as there."""
    query = uri_query(params)
    params = {name: value for name, value in params.items() if name not in URI_QUERY_PARAMS}
    body = dict(body)
    if query is not None:
        body["query"] = query
    for name in URI_BODY_PARAMS:
        if name in params:
            body[name] = params.pop(name)
    for name in URI_BODY_FLAGS:
        if name in params:
            body[name] = flag(params.pop(name), name)
    source = source_from_uri({name: params.pop(name) for name in URI_SOURCE_PARAMS if name in params})
    if source is not None:
        body["_source"] = source
    if "sort" in params:
        given = body.get("sort")
        before = given if isinstance(given, list) else [] if given is None else [given]
        body["sort"] = [*before, *sort_from_uri(params.pop("sort"))]
    if "terminate_after" in params:
        body["terminate_after"] = a_count(params.pop("terminate_after"), "terminate_after")
    if "stored_fields" in params:
        body["stored_fields"] = [name for name in params.pop("stored_fields").split(",") if name]
    if "docvalue_fields" in params:
        asked = [name for name in params.pop("docvalue_fields").split(",") if name]
        given = body.get("docvalue_fields")
        if given is None or isinstance(given, list):  # another value is the body's to refuse
            body["docvalue_fields"] = [*(given or []), *asked]
    return body, params


def uri_query(params: Mapping[str, str]) -> dict[str, Any] | None:
    """The query a URI's ``q`` asks (a ``query_string``, with :data:`URI_QUERY_PARAMS`); None without one, its
    options then unread, as there."""
    if "q" not in params:
        return None
    return {
        "query_string": {
            key: flag(params[name], name) if name in URI_QUERY_FLAGS else params[name]
            for name, key in URI_QUERY_PARAMS.items()
            if name in params
        }
    }


def source_from_uri(params: Mapping[str, str]) -> bool | dict[str, list[str]] | None:
    """``?_source=false``, ``?_source=title,brand``, ``?_source_includes=...&_source_excludes=...`` as the body's
    ``_source`` (None: none of them given), as Elasticsearch's FetchSourceContext reads them: ``_source_includes``
    replaces the fields ``_source`` names, and ``_source=false`` leaves the source out whatever the others say."""
    if not params:
        return None
    source = params.get("_source")
    if source == "false":
        return False
    split = lambda name: [p for p in params.get(name, "").split(",") if p]  # noqa: E731
    includes = split("_source_includes" if "_source_includes" in params or source == "true" else "_source")
    return {"includes": includes, "excludes": split("_source_excludes")}


def sort_from_uri(value: str) -> list[Any]:
    """``?sort=price:asc,_score`` as a body's ``sort``; the order is what follows the last colon, as there."""
    out: list[Any] = []
    for item in filter(None, value.split(",")):
        name, colon, order = item.rpartition(":")
        out.append({name: order} if colon else item)
    return out


COUNT_LIMITS = ("min_score",)
"""``_count`` URI parameters that change the count (count only matches scoring so much): not answered, rather than
a count that ignores them. ``terminate_after`` is answered (:func:`count_cut`)."""


def count_query(body: Mapping[str, Any], params: Mapping[str, str]) -> Any:
    """A ``_count`` request's query (None: every product): the body holds nothing but ``query``, as in
    Elasticsearch, and ``?q=`` is Lucene syntax, as in a search, replacing it."""
    for key in body:
        if key != "query":
            raise InvalidQuery(key, f"request does not support [{key}]")
    if "source" in params:  # Elasticsearch reads it as the body: counted without it, the count would be another's
        raise Unsupported("source", "a count body in the source parameter")
    for name in COUNT_LIMITS:
        if name in params:
            raise Unsupported(name, "a count held to a score")
    query = uri_query(params)
    return query if query is not None else body.get("query")


def count_cut(count: int, most: int) -> dict[str, Any]:
    """A ``_count`` answer of ``count`` matches cut short at ``most``, a ``?terminate_after`` (0: none), as one
    shard counts, with ``terminated_early``: how Elasticsearch's clients ask whether anything matches
    (``terminate_after=1``)."""
    return {"count": min(count, most), "terminated_early": count > most} if most else {"count": count}


# ------------------------------------------------------------------ value checks


def flag(value: Any, path: str) -> bool:
    """A boolean from a body or a URI parameter (``?explain``, ``?explain=true``); anything else is a 400."""
    if isinstance(value, bool):
        return value
    if value in ("true", "false", ""):
        return value != "false"
    raise InvalidQuery(path, "expected true or false")
