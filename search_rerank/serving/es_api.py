"""The Elasticsearch-compatible API: ``_search``, ``_msearch``, and everything else passed through to the cluster.

On the embedded backend a search body is compiled for tantivy (see
embedded_search); with a cluster backend it is delegated to the cluster, which
matches, filters, counts facets and highlights while the pipeline ranks (see
delegation), and Elasticsearch requests that are not searches are passed
through to it (see passthrough).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any, get_args

from flask import Blueprint, current_app, g, jsonify, request
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound

from .. import __version__
from ..core.breaker import AGGREGATIONS
from ..core.errors import StageError
from ..core.reasons import reason_code
from ..core.retrieval import LEXICAL
from ..core.settings import Settings
from . import documents, metrics
from .aggregations import computes_aggregations
from .answer_params import FILTER_PATH, TOTAL_AS_INT, counted_exactly, filter_paths, filtered, total_as_int
from .body_checks import ContextMissing, a_count, a_keep_alive
from .completion import suggestions
from .composed_text import composed_values
from .context import (
    QUERY_ID_HEADER,
    UBI,
    admin_token_sent,
    current_pipeline,
    current_settings,
    described,
    endpoint_name,
    error_headers,
    json_body,
    log_query,
    run_search,
    undecodable_param,
)
from .cost_limits import CostRaised
from .delegation import delegate_count, delegate_search, delegated_cluster, guarded_spellings
from .did_you_mean import correction_suggestions
from .directions import with_directions
from .embedded_search import MAX_BUCKETS, TooManyBuckets, compile_search, count_matches, serves
from .es_compat import (
    ES_HEADERS,
    INDEX_OPTIONS,
    ONE_SHARD,
    InvalidQuery,
    Unsupported,
    asks_typed_keys,
    check_hits_in_all,
    check_uri_params,
    check_uri_values,
    count_cut,
    count_query,
    es_error_body,
    es_response,
    flag,
    index_not_found_cause,
    parse_msearch,
    parse_search,
    uri_search,
)
from .exhaustion import exhausted_cause, noted, out_of_resources
from .field_aliases import MATCH_NONE, highlight_names, rename_fields, rename_highlights
from .hit_fields import IndexedField, add_hit_fields, located
from .json_input import InvalidBody
from .name_value_facets import expand as expand_pair_facets
from .passthrough import ClusterPassthrough, raw_target
from .pinned import check_pinnable, pin, pinned_hits, settled
from .profiles_api import header_identity, request_profile
from .reactivesearch import translate
from .retrievers import plan as plan_retriever
from .search_contexts import (
    VALIDATION,
    ClusterOrder,
    Scroll,
    continued,
    named_pit,
    opened,
    opened_pit,
    pit_of,
    ranked_sort_values,
    reads_as_ours,
    served_version,
    still_open,
)

log = logging.getLogger(__name__)
es = Blueprint("es", __name__)
# "/<name>": an index itself (registered last, so that every route of this service's is matched before it).
indexes = Blueprint("indexes", __name__)
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
# What a search of no index leaves out: each would find or count products (the dense leg's, titles to complete,
# a global aggregation's); Elasticsearch answers no aggregations and no suggestions there.
SEARCHING_KEYS = ("query", "knn", "rank", "sub_searches", "retriever", "suggest", "aggs", "aggregations", "post_filter")
SERVED_ES_METHODS = {"search": ["GET", "POST"], "msearch": ["POST"], "count": ["GET", "POST"]}


@es.route("/_search", methods=["GET", "POST"], defaults={"index": "_all"})
@es.route("/<index>/_search", methods=["GET", "POST"])
def es_search(index: str):
    if request.method == "HEAD":  # Flask adds HEAD to GET routes; Elasticsearch has none for _search
        raise wrong_method(SERVED_ES_METHODS["search"])
    params = uri_params("search")
    filter_paths(params)
    body = json_body(required=False)
    if "scroll" in params:
        response = _scroll_opened(index, body, params)
    else:
        response = _searched(index, body, params)
    query_id = response["search_rerank"]["query_id"]
    return jsonify(filtered(response, params)), 200, {**ES_HEADERS, QUERY_ID_HEADER: query_id}


def _scroll_opened(index: str, body: dict[str, Any], params: Mapping[str, str]) -> dict[str, Any]:
    """A scroll's first page (see search_contexts)."""
    keep_alive = a_keep_alive(params["scroll"], "scroll")
    body, rest = uri_search(body, {k: v for k, v in params.items() if k not in ("scroll", FILTER_PATH)})
    version, most = served_version(current_pipeline()), current_settings().service.max_body_bytes
    scroll = opened(index, body, rest, keep_alive, version, time.time(), most)
    return scroll.answer(_es_search(scroll.index, scroll.body, scroll.params, scroll=scroll))


def es_scroll(ids_in_path: str):
    """A scroll's next page (``GET`` or ``POST /_search/scroll``, its id in the body, the query string or the path),
    or clearing scrolls (``DELETE``) (see search_contexts)."""
    clearing = request.method == "DELETE"
    if request.method not in ("GET", "POST", "DELETE"):
        raise wrong_method(["GET", "POST", "DELETE"])
    params = uri_params("clear_scroll" if clearing else "scroll")
    filter_paths(params)
    body = json_body(required=False)
    for key in body:  # as Elasticsearch's parser: a misspelt "scrol" would otherwise keep the scroll as it was
        if key not in (("scroll_id",) if clearing else ("scroll_id", "scroll")):
            raise InvalidQuery(key, "unknown key for a scroll request", "illegal_argument_exception")
    ids = _scroll_ids(ids_in_path, body, params)
    if not clearing and len(ids) != 1:
        raise InvalidQuery("scroll_id", "expected the one id of the scroll's last page")
    if ids == [None] or not ids:
        raise InvalidQuery(
            "scroll_id", "Validation Failed: 1: scrollId is missing;", "action_request_validation_exception"
        )
    version = served_version(current_pipeline())
    if clearing:  # nothing is held: every scroll "freed" is one still open; all of them, none to count
        now = time.time()
        freed = (
            0
            if ids == ["_all"]
            else len(still_open(ids, lambda scroll_id, _: continued(scroll_id, None, version, now)))
        )
        status = 200 if freed or ids == ["_all"] else 404
        return jsonify({"succeeded": True, "num_freed": freed}), status, ES_HEADERS
    scroll = continued(ids[0], body.get("scroll", params.get("scroll")), version, time.time())
    if TOTAL_AS_INT in params:
        scroll.params[TOTAL_AS_INT] = params[TOTAL_AS_INT]
    response = scroll.answer(_es_search(scroll.index, scroll.body, scroll.params, scroll=scroll))
    query_id = response["search_rerank"]["query_id"]
    return jsonify(filtered(response, params)), 200, {**ES_HEADERS, QUERY_ID_HEADER: query_id}


POINT_IN_TIME_PATHS = ("pit", "search/point_in_time")
"""Elasticsearch's and OpenSearch's paths of a point in time, opened under an index and closed without one."""


def es_point_in_time(index: str | None, opensearch: bool):
    """Open (``POST /products/_pit``, OpenSearch's ``/products/_search/point_in_time``) or close (``DELETE`` without
    an index) a point in time on the embedded index (see search_contexts); answered in the engine's own shape."""
    version = served_version(current_pipeline())
    if index is not None:
        if request.method != "POST":
            raise wrong_method(["POST"])
        params, settings = uri_params("open_point_in_time"), current_settings()
        if not names_served(index, settings, {**params, "allow_no_indices": "false"}):
            raise IndexNotFound(index)
        pit = opened_pit(hits_index(index, settings), params.get("keep_alive"), version, time.time())
        if opensearch:
            opened_at = int(time.time() * 1000)
            return jsonify({"pit_id": pit.pit_id(), "_shards": ONE_SHARD, "creation_time": opened_at}), 200, ES_HEADERS
        return jsonify({"id": pit.pit_id(), "_shards": ONE_SHARD}), 200, ES_HEADERS
    if request.method != "DELETE":
        raise wrong_method(["DELETE"])
    uri_params("close_point_in_time")
    body = json_body(required=False)
    given = body.get("pit_id" if opensearch else "id")
    ids = given if isinstance(given, list) else [given]
    where, now = "pit_id" if opensearch else "id", time.time()
    alive = still_open(
        ids, lambda pit_id, i: named_pit(pit_id, version, now, f"{where}[{i}]" if isinstance(given, list) else where)
    )
    if opensearch:
        return jsonify({"pits": [{"pit_id": pit_id, "successful": True} for pit_id in alive]}), 200, ES_HEADERS
    return jsonify({"succeeded": True, "num_freed": len(alive)}), 200 if alive else 404, ES_HEADERS


def _searched(
    index: str, body: dict[str, Any], params: Mapping[str, str], deadline: float | None = None
) -> dict[str, Any]:
    """A search's answer, in a point in time where its body names one the embedded index holds (a cluster's are
    the cluster's), as a search alone or one of a multi-search; ``deadline``: a multi-search's budget."""
    if body.get("pit") is not None and passthrough() is None and serves(current_pipeline().legs.get(LEXICAL)):
        return _in_point_in_time(index, body, params, deadline)
    return _es_search(index, body, params, deadline)


def _in_point_in_time(
    index: str, body: dict[str, Any], params: Mapping[str, str], deadline: float | None
) -> dict[str, Any]:
    """A search in a point in time on the embedded index: the search of the index its id names (see
    search_contexts), answered with the id to go on with."""
    if index != "_all":
        raise InvalidQuery("index", "[indices] cannot be used with point in time", VALIDATION)
    pit = pit_of(body["pit"], served_version(current_pipeline()), time.time())
    searched, ranked_from = pit.search_body(with_directions(body))
    response = _es_search(pit.index, searched, params, deadline)
    if ranked_from is not None:
        ranked_sort_values(response, ranked_from)
    return {"pit_id": pit.pit_id(), **response}


def _scroll_ids(
    ids_in_path: str, body: Mapping[str, Any] | None = None, params: Mapping[str, str] | None = None
) -> list[Any]:
    """The scroll ids a ``/_search/scroll`` request names: in its body, its query string or its path, several
    comma-separated where scrolls are cleared."""
    body = body if body is not None else _json_or_empty()
    params = params if params is not None else request.args
    given = body.get("scroll_id", params.get("scroll_id", ids_in_path or None))
    if isinstance(given, str) and request.method == "DELETE":
        return given.split(",")
    return given if isinstance(given, list) else [given]


def _json_or_empty() -> Mapping[str, Any]:
    """The request's JSON object, or none where it has none that can be read (its route reads it again, and refuses
    what it cannot)."""
    try:
        return json_body(required=False)
    except InvalidBody:
        return {}


def _reason(exc: Exception, path: str) -> str:
    """A refusal's reason, less the ``[path]`` its message begins with."""
    return str(exc).removeprefix(f"[{path}] ")


@es.post("/_msearch", defaults={"index": "_all"})
@es.post("/<index>/_msearch")
def es_msearch(index: str):
    """Searchkit sends every search as a multi-search; each one succeeds or fails on its own, as in ES.

    A header or body line that cannot be read (not JSON, too deep, a non-finite number, the wrong shape)
    fails its own search only; only a body that is not NDJSON at all is the whole request's 400.

    The searches run one after the other within one budget, ``service.msearch_budget_s`` from now: each search's
    optional stages (the reranker, a dense leg) wait at most what is left of it, and once it is spent the rest are
    answered without them (``degraded: budget_spent``), never failed, so that the client has its answer
    before its own timeout.
    """
    service = current_settings().service
    deadline = time.perf_counter() + service.msearch_budget_s
    # Of the multi-search's URI parameters typed_keys and rest_total_hits_as_int change each search's answer;
    # filter_path cuts the multi-search's answer as a whole; a header's index options override the request's.
    uri = uri_params("msearch")
    filter_paths(uri)
    params = {"typed_keys": "true"} if asks_typed_keys(uri) else {}
    params.update((name, uri[name]) for name in (TOTAL_AS_INT, *INDEX_OPTIONS) if name in uri)
    items = parse_msearch(request.get_data(), index, service.max_json_depth)
    if len(items) > service.max_msearch_searches:
        # Each search costs a whole pipeline run: a 64 KB body holds thousands, past any per-request rate limit.
        raise InvalidQuery(
            "body",
            f"a multi-search of {len(items)} searches; at most {service.max_msearch_searches} "
            "(service.max_msearch_searches)",
        )
    readable = [item[1] for item in items if not isinstance(item, Exception)]
    check_hits_in_all(readable, service.max_msearch_hits, "body", "service.max_msearch_hits")
    responses = []
    for item in items:
        if isinstance(item, Exception):
            responses.append(es_error_body(*_es_cause(item)))
            continue
        index_expression, body, options = item
        try:
            responses.append({**_searched(index_expression, body, {**params, **options}, deadline), "status": 200})
        except SEARCH_ERRORS as exc:
            responses.append(es_error_body(*_es_cause(exc)))
        except Exception as exc:
            responses.append(failed_alone(exc))
    answer = {"took": sum(r.get("took", 0) for r in responses), "responses": responses}
    return jsonify(filtered(answer, uri)), 200, ES_HEADERS


@es.post("/<index>/_reactivesearch")
@es.post("/<index>/_reactivesearch.v3")
def es_reactivesearch(index: str):
    """ReactiveSearch 4's requests, which it posts to ``/<app>/_reactivesearch`` of appbase.io's ReactiveSearch API
    server: each query the request executes is translated into an Elasticsearch body (see reactivesearch) and
    searched as a ``_search`` is, each succeeding or failing alone as in a multi-search; the answer holds each one's
    Elasticsearch answer under its id, as that server's does. A request that cannot be translated fails whole.
    Its searches share one time budget, as a multi-search's do (see :func:`es_msearch`)."""
    service = current_settings().service
    deadline = time.perf_counter() + service.msearch_budget_s
    # Each body is held to what a _search body may be (size, depth), and the queries to a multi-search's count.
    translation = translate(
        json_body(),
        max_searches=service.max_msearch_searches,
        max_body_bytes=service.max_body_bytes,
        max_depth=service.max_json_depth,
    )
    check_hits_in_all(
        (search.body for search in translation.searches), service.max_msearch_hits, "query", "service.max_msearch_hits"
    )
    answers = {}
    for search in translation.searches:
        try:
            answers[search.id] = {**_es_search(search.index or index, search.body, {}, deadline), "status": 200}
        except SEARCH_ERRORS as exc:
            answers[search.id] = es_error_body(*_es_cause(exc))
        except Exception as exc:
            answers[search.id] = failed_alone(exc)
    return jsonify(translation.response(answers)), 200, ES_HEADERS


@es.route("/_count", methods=["GET", "POST"], defaults={"index": "_all"})
@es.route("/<index>/_count", methods=["GET", "POST"])
def es_count(index: str):
    """The count of the query as a search reads it (its field names mapped): counted by the cluster on a cluster
    backend (see delegation.delegate_count), by the embedded index otherwise (embedded_search.count_matches)."""
    if request.method == "HEAD":
        raise wrong_method(SERVED_ES_METHODS["count"])
    lexical = current_pipeline().legs.get(LEXICAL)
    if delegated_cluster(lexical) is None and not serves(lexical):
        return pass_through("_count")
    settings = current_settings()
    header_identity()  # nothing personalises a count, but a header that names no shopper is refused as by a search
    params = uri_params("count")
    query = composed_values(count_query(json_body(required=False), params))
    most = a_count(params.get("terminate_after", 0), "terminate_after")
    if query is not None:
        query = rename_fields(
            {"query": settled(query, served_names(settings).__contains__)[0]}, settings.service.field_aliases
        )["query"]
    if not names_served(index, settings, params):
        count = 0
    elif serves(lexical):
        count = count_matches(query, settings.service, lexical)
    else:
        count = delegate_count(query, settings.service, lexical)
    return jsonify({**count_cut(count, most), "_shards": ONE_SHARD}), 200, ES_HEADERS


class IndexNotFound(Exception):
    """A search names an index that this service does not serve (Elasticsearch's 404)."""

    def __init__(self, index: str):
        self.index = index
        super().__init__(f"no such index [{index}]")


def served_names(settings: Settings) -> set[str]:
    """The index names this service answers for: the configured ones, and the cluster's index or alias."""
    served = set(settings.service.index_names)
    if settings.lexical.backend != "tantivy":
        served.add(settings.lexical.index)
    return served


def names_served(index: str, settings: Settings, params: Mapping[str, Any]) -> bool:
    """Whether the index expression names an index served here (the configured names and the cluster's index
    or alias; ``_all`` and ``*``), resolved as Elasticsearch resolves a search's: a name not served is its 404
    unless ``ignore_unavailable``, a wildcard that matches none names nothing, and an expression that names
    nothing is searched as no index at all (an empty answer, which Kibana and the clients' ``ignore_unavailable``
    expect) unless ``allow_no_indices=false`` makes it the 404 of its first name."""
    served = served_names(settings)
    ignore_unavailable = flag(params.get("ignore_unavailable", False), "ignore_unavailable")
    allow_no_indices = flag(params.get("allow_no_indices", True), "allow_no_indices")
    found, missing = False, []
    for name in index.split(","):
        name = name.strip()
        if name in ("_all", "*", "") or name in served or ("*" in name and any(fnmatchcase(s, name) for s in served)):
            found = True
        elif "*" in name or ignore_unavailable:
            missing.append(name)
        else:
            raise IndexNotFound(name)
    if not found and not allow_no_indices:
        raise IndexNotFound(missing[0])
    return found


def hits_index(expression: str, settings: Settings) -> str:
    """The index a search of ``expression`` names in its hits' ``_index``: Elasticsearch writes the index a hit is
    in, never the expression searched (``_all``, ``prod*``, ``products,products``), and a front end that groups
    hits by index reads it. The first served name the expression names, as written; a configured one where it names
    them all (or none)."""
    served = served_names(settings)
    for name in (part.strip() for part in expression.split(",")):
        if name in served:
            return name
        matched = sorted(s for s in served if "*" in name and fnmatchcase(s, name))
        if matched:
            return matched[0]
    return next(iter(settings.service.index_names), None) or min(served, default=expression)


def no_index(name: str, where: str) -> IndexedField:
    """Doc values without an index of this service's to read them from (a lexical leg of neither kind)."""
    raise Unsupported(where, "doc values of the product's fields need the lexical leg's index")


def _es_search(
    index: str,
    body: dict[str, Any],
    params,
    deadline: float | None = None,
    scroll: Scroll | None = None,
) -> dict[str, Any]:
    """One search's answer; ``deadline``: a multi-search's budget (see :func:`es_msearch`), none for a search alone;
    ``scroll``: the page of a scroll this search is (see search_contexts)."""
    started = time.perf_counter()
    settings = current_settings()
    body, params = uri_search(body, params)
    body = with_directions(composed_values(body))
    if not names_served(index, settings, params):
        body = {**{k: v for k, v in body.items() if k not in SEARCHING_KEYS}, "query": MATCH_NONE}
    index = hits_index(index, settings)
    body = counted_exactly(body, params)
    user_id, session_id = header_identity()
    pipeline = current_pipeline()
    # An ES 9 retriever tree, or ES 8's top-level knn and rank, becomes a body with a query, the settings it asks
    # for and the legs it names.
    plan = plan_retriever(body, settings, pipeline, admin_token_sent())
    if plan is not None:
        body, settings = plan.body, plan.settings
    # A pinned query's docs of other indexes are left out, and the ids it puts first kept aside (see pinned).
    served = served_names(settings)
    pinned: list[str] = []
    if body.get("query") is not None:
        query, pinned = settled(body["query"], served.__contains__)
        body = {**body, "query": query}
    if body.get("post_filter") is not None:
        body = {**body, "post_filter": settled(body["post_filter"], served.__contains__, "post_filter", False)[0]}
    aliases = settings.service.field_aliases
    names, most = current_app.extensions["attribute_names"], settings.service.max_pair_facet_names
    pair_facets = expand_pair_facets(body, aliases, lambda: names.get(pipeline.store)[:most])
    body = pair_facets.body
    highlighted = highlight_names(body.get("highlight"), aliases)
    body = rename_fields(body, aliases)
    lexical = pipeline.legs.get(LEXICAL)
    cluster = delegated_cluster(lexical)
    delegated = None
    if scroll is not None and plan is not None:
        raise Unsupported("scroll", "beside a retriever or a knn search, whose nearest products are not a listing")
    limits = settings.service
    try:
        embedded = compile_search(body, params, limits, lexical) if serves(lexical) else None
        if cluster is not None:
            dense_query = plan is not None and not plan.browses
            min_score = plan.lexical_min_score if plan is not None else None
            spell = guarded_spellings(lexical, cluster)
            asked = {**params, "scroll": "1m"} if scroll is not None else params  # its own page, in its order
            delegated = delegate_search(body, asked, limits, cluster, dense_query, min_score, spell)
    except InvalidQuery as exc:
        if plan is None:
            raise
        raise InvalidQuery(plan.sent(exc.field), _reason(exc, exc.field), exc.kind) from None
    except Unsupported as exc:
        if plan is None:
            raise
        raise Unsupported(plan.sent(exc.part), _reason(exc, exc.part)) from None
    if scroll is not None and embedded is not None:
        scroll.hold(embedded)
    elif scroll is not None and delegated is not None and delegated.ordered_body is not None:
        shown = body.get("sort") not in (None, [])
        how: ClusterOrder = (
            "sorted" if not delegated.ranks_by_score else "relevance" if shown or delegated.search.text else "index"
        )
        scroll.hold_cluster(delegated, how, limits.max_result_window, shown)
    elif scroll is not None:
        raise Unsupported("scroll", "without the lexical leg's index to list the matches")
    if embedded is not None and plan is not None and embedded.collapse is not None and embedded.search.text.strip():
        raise Unsupported("collapse", "beside a retriever that ranks (its page is the pipeline's ranking)")
    if embedded is not None:
        search = embedded.search
        pipeline = embedded.pipeline(pipeline)
    elif delegated is not None:
        search = delegated.search
        pipeline = delegated.pipeline(pipeline)
    else:
        search = parse_search(body, params, settings.service, aggregations=computes_aggregations(lexical))
    if plan is not None:
        search, pipeline = plan.search(search), plan.pipeline(pipeline)
        if embedded is not None:
            embedded.search = search
        if delegated is not None:
            delegated.search = search
    # A pinned query's products come first on a page in order of relevance: the pipeline ranks from the first hit
    # and the pinned ones are put in front (see pinned).
    backend = embedded if embedded is not None else delegated
    docvalues = (
        backend.docvalues
        if backend is not None
        else located(search.hit_fields, no_index, settings.service.field_aliases)
    )
    # Read only when a catalog field's values are asked: a cluster's catalog is read from its mapping.
    fetching = bool(search.hit_fields.fetch or search.hit_fields.stored) or any(f.catalog for f in docvalues.values())
    catalog = backend.catalog if backend is not None and fetching else None
    if backend is None or not backend.ranks_by_score:
        pinned = []
    asked = search
    if backend is not None and pinned:
        check_pinnable(body, params, scrolled=scroll is not None)
        backend.widen()
        search = backend.search
    aggregating = delegated.leg if delegated is not None else lexical
    aggregations = current_app.extensions["aggregator"].start(aggregating, search)
    result = interleaved = None
    if embedded is not None and embedded.lexical_order:
        result = embedded.lexical_result(pipeline, scroll.answered if scroll is not None else 0)
    elif embedded is not None and embedded.sort is not None:
        result = embedded.sorted_result(pipeline)
    elif embedded is not None and embedded.hold.held is not None:
        result = embedded.held_result(pipeline)
    elif embedded is not None and embedded.browses and (plan is None or plan.browses):
        result = embedded.browse_result(pipeline)
    elif delegated is not None and delegated.ordered:
        result = delegated.ordered_result(pipeline)
    elif not search.matches_nothing:
        profile, failure = request_profile(user_id, session_id, settings)
        result, interleaved = run_search(
            search.text,
            search.filters,
            search.size,
            search.offset,
            settings,
            ubi=search.ubi,
            pipeline=pipeline,
            profile=profile,
            profile_failure=failure,
            deadline=deadline,
        )
        if delegated is not None:
            result = delegated.filled(result, pipeline)
        if embedded is not None and plan is None:  # a retriever tree's own windows and min_score bound its answer
            result = embedded.filled(result, pipeline)
    if backend is not None and pinned and result is not None:
        result = pin(result, pinned, backend.pinned_matches, asked.offset, asked.size, pipeline)
        search = asked
        if interleaved is not None:
            interleaved = dataclasses.replace(interleaved, pinned=frozenset(pinned_hits(result)))
    hit_ids = [hit.product.id for hit in result.hits] if result is not None else []
    query_id, unlogged = log_query(search.text, hit_ids, search.filters, search.offset, search.ubi, interleaved)
    response = es_response(search, result, settings, index, (time.perf_counter() - started) * 1000)
    if unlogged is not None:
        response["search_rerank"]["degraded"][UBI] = unlogged
    response["search_rerank"]["query_id"] = query_id
    if interleaved is not None:
        response["search_rerank"]["interleaving"] = interleaved.section(hit_ids)
    aggregator, waited = current_app.extensions["aggregator"], settings.service.aggregations_timeout_s
    try:
        aggregator.answer(aggregations, response, waited)
    except InvalidQuery:
        if delegated is not None:  # the aggregations' request carries the query: a refused query is named as one
            delegated.check_refused()
        raise
    ranked_leg = delegated.facets_of_the_ranked(result) if delegated is not None and AGGREGATIONS in response else None
    if ranked_leg is not None:
        aggregator.answer(aggregator.start(ranked_leg, search), response, waited)
    if embedded is not None:
        embedded.complete(response, result, deadline)
        if embedded.aggregations is not None:
            embedded.aggregations.fill_sources(pipeline.store, index)
    if delegated is not None:
        delegated.complete(response, result)
    pair_facets.collapse(response, search.typed_keys)
    completions = embedded.suggest if embedded is not None else delegated.completions if delegated is not None else []
    if completions:
        titles = current_app.extensions["titles"].get(pipeline.store)
        aliases = settings.service.field_aliases
        found = suggestions(completions, titles, pipeline.store, index, search.source, aliases, search.typed_keys)
        response["suggest"] = {**response.get("suggest", {}), **found}
    if embedded is not None and embedded.corrections:
        found = correction_suggestions(embedded.corrections, embedded.compiler.leg, pipeline.store, search.typed_keys)
        response["suggest"] = {**response.get("suggest", {}), **found}
    if plan is not None:
        plan.complete(response)
    rename_highlights(response["hits"]["hits"], highlighted)
    if search.ubi is not None:
        response["ext"] = {"ubi": {"query_id": query_id}}  # where the OpenSearch UBI plugin answers it
    if scroll is not None:
        scroll.page_ids(response["hits"]["hits"])
    if result is not None:  # last: a hit's _id, which "stored_fields": "_none_" leaves out, names it until here
        products = [hit.product for hit in result.hits]
        add_hit_fields(response["hits"]["hits"], products, search.hit_fields, docvalues, catalog, aliases)
    return total_as_int(response, params)


@es.route("/<index>/_doc/<path:product_id>", methods=ALL_METHODS)
@es.route("/<index>/_source/<path:product_id>", methods=ALL_METHODS)
def es_document(index: str, product_id: str):
    """A product by id on the embedded backend (serving/documents.py); with a cluster, the cluster's document
    (passed through, as any read of the served index). A write is a 501 without a cluster, a name not served a
    404."""
    endpoint = request.path.split("/")[2]  # "_doc" or "_source"
    settings = current_settings()
    if passthrough() is not None or request.method not in documents.READ_METHODS:
        return pass_through(endpoint)
    if index not in served_names(settings):
        raise IndexNotFound(index)
    read = documents.get_document if endpoint == "_doc" else documents.source_document
    filter_paths(request.args)
    answer, status = read(current_pipeline().store, settings, index, product_id, request.args)
    if request.method == "HEAD":
        return "", status, ES_HEADERS
    return jsonify(filtered(answer, request.args) if status == 200 else answer), status, ES_HEADERS


@es.route("/_mget", methods=ALL_METHODS, defaults={"index": None})
@es.route("/<index>/_mget", methods=ALL_METHODS)
def es_mget(index: str | None):
    """Products by their ids on the embedded backend, each found or not (serving/documents.py); with a cluster,
    the cluster's answer (passed through when every index the request names is served)."""
    if passthrough() is not None:
        return pass_through("_mget")
    if request.method not in documents.MGET_METHODS:
        raise wrong_method(list(documents.MGET_METHODS))
    settings = current_settings()
    store = current_pipeline().store
    filter_paths(request.args)
    answer = documents.multi_get(store, settings, index, json_body(), request.args, served_names(settings))
    return jsonify(filtered(answer, request.args)), 200, ES_HEADERS


@es.route("/_<path:endpoint>", methods=ALL_METHODS)
@es.route("/<index>/_<path:endpoint>", methods=ALL_METHODS)
def es_other(endpoint: str, index: str | None = None):
    """Endpoints other than search, and searches whose path routing cannot tell from them."""
    first, _, rest = endpoint.partition("/")
    if index is None and rest in ("_search", "_msearch", "_count"):
        # "/_all/_search" begins with "_" like "/_cat/indices", so it lands here, not on /<index>/_search.
        index, endpoint = f"_{first}", rest[1:]
    if index is None and first == "search" and rest.partition("/")[0] == "scroll":
        # This service's scroll ids are its own, and so is clearing "every scroll" (it opens none on the cluster,
        # whose other users' scrolls it must not end); a cluster's own ids (a scroll opened there) pass through.
        named = _scroll_ids(rest.partition("/")[2])
        if passthrough() is None or named == ["_all"] or any(map(reads_as_ours, named)):
            return es_scroll(rest.partition("/")[2])
    if endpoint in POINT_IN_TIME_PATHS and passthrough() is None:
        return es_point_in_time(index, opensearch=endpoint != "pit")
    if endpoint not in SERVED_ES_METHODS:
        return pass_through(f"_{first}")
    allowed = SERVED_ES_METHODS[endpoint]
    if request.method not in allowed:
        raise wrong_method(allowed)
    if index != "_all":
        raise InvalidQuery("index", f"invalid index name [{index}]: must not start with '_'")
    return {"search": es_search, "msearch": es_msearch, "count": es_count}[endpoint](index)


@indexes.route("/<name>", methods=ALL_METHODS)
def index_itself(name: str):
    """An index itself (``GET /products``, ``HEAD /products``), unless the path is one of this service's routes:
    the cluster's answer when requests are passed through to one. Without one, ``HEAD`` says whether this service
    serves the name (elasticsearch-py's ``indices.exists``, which scripts ask before they search), any other
    method is a 501 naming it, and a name not served is a 404."""
    ours = {m for rule in current_app.url_map.iter_rules() if rule.rule == request.path for m in rule.methods or ()}
    if ours:
        raise MethodNotAllowed(sorted(ours))
    if passthrough() is not None:
        return pass_through(name)
    if name not in served_names(current_settings()):
        raise NotFound()
    if request.method == "HEAD":
        return "", 200, ES_HEADERS
    try:
        return pass_through(name)
    except Unsupported as exc:  # this blueprint has no handler of its own for it
        return es_error(*_es_cause(exc))


def uri_params(endpoint: str) -> MultiDict[str, str]:
    """The URI parameters (``q``, ``size``...) of a request to ``endpoint`` (search, msearch, count). One whose name
    or value is not UTF-8 once percent-decoded is a 400 naming it: Werkzeug decodes it with replacement characters,
    and ``q=%ff`` searched for a word nobody typed; so is one the endpoint does not take (``check_uri_params``)."""
    undecodable = undecodable_param()
    if undecodable is not None:
        raise InvalidQuery(undecodable, "the URI parameter is not UTF-8 once percent-decoded")
    check_uri_params(endpoint, request.args, request.path)
    check_uri_values(request.args)
    return request.args


def wrong_method(allowed: list[str]) -> MethodNotAllowed:
    """Elasticsearch's answer to a served endpoint called with another method: a 405, in these words."""
    return MethodNotAllowed(
        allowed,
        f"Incorrect HTTP method for uri [{request.path}] and method [{request.method}], allowed: [{', '.join(allowed)}]",
    )


def es_error(status: int, cause: dict[str, Any]):
    return jsonify(es_error_body(status, cause)), status, ES_HEADERS


# What a search may fail with, each answered as Elasticsearch answers it (:func:`_es_cause`): a request's error,
# or a failed multi-search item's alone.
def failed_alone(exc: Exception) -> dict[str, Any]:
    """The answer in place of one search of several that failed by a fault of the service's own (called in its
    ``except``): logged and counted as the app's 500 is, with no more than the request id, while the other searches
    of the request still reach the page (Elasticsearch fails a multi-search's items one by one); a 503 if the
    process was out of descriptors or memory, as the app answers a request."""
    if out_of_resources(exc):
        noted(exc)
        return es_error_body(503, exhausted_cause())
    log.exception("a search of a multi-search failed on %s %s", request.method, request.path)
    metrics.ERRORS.labels(endpoint_name()).inc()
    return es_error_body(500, {"type": "internal_error", "reason": f"internal error, request id {g.get('request_id')}"})


SearchError = (
    InvalidBody
    | InvalidQuery
    | Unsupported
    | IndexNotFound
    | ContextMissing
    | CostRaised
    | TooManyBuckets
    | HTTPException
    | StageError
)
SEARCH_ERRORS = get_args(SearchError)


def _es_cause(exc: SearchError) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, HTTPException):
        text, field = described(exc)
        cause = {"type": exc.name.lower().replace(" ", "_"), "reason": text}
        return exc.code or 500, cause if field is None else {**cause, "field": field}
    if isinstance(exc, StageError):
        # A stage the search needs (the dense leg's filter check on the cluster...) failed: by its reason code only,
        # as the exception's text names the cluster's address (it is in the log).
        log.warning("search failed in stage %s (%s): %s", exc.stage, reason_code(exc), exc)
        return 502, {"type": "bad_gateway", "reason": f"the search failed in stage {exc.stage} ({reason_code(exc)})"}
    if isinstance(exc, IndexNotFound):
        return 404, index_not_found_cause(exc.index)
    if isinstance(exc, ContextMissing):
        return 404, {"type": "search_context_missing_exception", "reason": str(exc)}
    if isinstance(exc, Unsupported):
        return 501, {"type": "search_rerank_unsupported", "reason": str(exc), "unsupported": exc.part}
    if isinstance(exc, TooManyBuckets):
        return 400, {"type": "too_many_buckets_exception", "reason": str(exc), "max_buckets": MAX_BUCKETS}
    if isinstance(exc, CostRaised):
        # Elasticsearch's answer to a request its caller lacks the privilege for.
        return 403, {"type": "security_exception", "reason": str(exc), "field": exc.field}
    return 400, {"type": getattr(exc, "kind", "parsing_exception"), "reason": str(exc), "field": exc.field}


@es.errorhandler(InvalidBody)
@es.errorhandler(InvalidQuery)
@es.errorhandler(Unsupported)
@es.errorhandler(IndexNotFound)
@es.errorhandler(ContextMissing)
@es.errorhandler(CostRaised)
@es.errorhandler(TooManyBuckets)
@es.errorhandler(StageError)
def es_bad_search(exc: SearchError):
    return es_error(*_es_cause(exc))


@es.errorhandler(HTTPException)
def es_http_error(exc: HTTPException):
    body, status, headers = es_error(*_es_cause(exc))
    return body, status, {**headers, **error_headers(exc)}


ANSWERS_AS = "8.19.0"
"""The Elasticsearch version the root answer names: the API the compatible endpoints answer as (bodies of
Elasticsearch 7 to 9 are read; answers are written as 8's)."""


def root_info():
    """``GET /`` for an Elasticsearch client on the embedded backend, which has no cluster to ask: elasticsearch-py's
    ``ping()`` and ``info()``, and the JS client's, read it (and its product header) before any search, and an
    application that pings at start-up took the HTML page for a dead cluster."""
    info = {
        "name": "search_rerank",
        "cluster_name": "search_rerank",
        "cluster_uuid": "_na_",
        "version": {
            "number": ANSWERS_AS,
            "build_flavor": "default",
            "build_type": "search_rerank",
            "build_snapshot": False,
            "minimum_wire_compatibility_version": "7.17.0",
            "minimum_index_compatibility_version": "7.0.0",
        },
        "tagline": "You Know, for Search",
        "search_rerank": {"version": __version__, "lexical_backend": current_settings().lexical.backend},
    }
    return jsonify(info), 200, ES_HEADERS


def passthrough() -> ClusterPassthrough | None:
    return current_app.extensions.get("passthrough")


def pass_through(part: str):
    """The cluster's answer to this request, or a 501 naming the path when there is no cluster to ask."""
    bridge = passthrough()
    if bridge is None:
        what = f"{request.method} {request.path} is not a search"
        if current_settings().lexical.backend == "tantivy":
            raise Unsupported(
                part,
                f"{what}, and the embedded backend has no cluster to pass it to (only _search and _msearch are served)",
            )
        raise Unsupported(
            part, f"{what}, and passing requests through to the cluster is off (service.passthrough = false)"
        )
    target = raw_target(request.environ, request.path, request.query_string)
    return bridge.forward(request.method, target, request.headers.items(), request.get_data())
