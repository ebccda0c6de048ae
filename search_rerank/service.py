"""The HTTP service: a Flask app factory that gunicorn runs once per worker.

``create_app()`` reads the settings (file named by ``SEARCH_RERANK_SETTINGS``,
then the environment), opens the indexes and warms the models, so each
worker loads them once and a request never pays for it.

Every answer is JSON, errors included: a search box in a shop's front end
parses whatever comes back, and an HTML error page breaks it worse than an
error does.

With a cluster backend, Elasticsearch-compatible searches get their
aggregations from the cluster (see aggregations), and Elasticsearch requests
that are not searches are passed through to it (see passthrough).
"""

from __future__ import annotations

import hmac
import logging
import os
import time
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, g, jsonify, request, send_from_directory
from pydantic import TypeAdapter, ValidationError
from werkzeug.exceptions import HTTPException, MethodNotAllowed

from . import __version__, interleave_serving, metrics
from .aggregations import Aggregator, computes_aggregations
from .api_models import ErrorResponse, FieldError, Overrides, SearchRequest, SearchResponse, stage_lists
from .errors import ConfigError
from .es_compat import InvalidQuery, Unsupported, es_response, parse_msearch, parse_search
from .filters import Filters
from .indexes import open_pipeline, read_manifest
from .live_pipeline import LivePipeline
from .logs import request_id
from .openapi import openapi_document
from .passthrough import ClusterPassthrough, passthrough_for, raw_target
from .pipeline import Hit, SearchPipeline, SearchResult
from .reload_broadcast import RELOAD_FILE_ENV, ReloadBroadcast
from .retrieval import LEXICAL
from .settings import Settings, load_settings
from .ubi import UbiEvent, UbiLog, UbiQuery, UbiSearchParams, new_query_id, safe_id

log = logging.getLogger(__name__)
access = logging.getLogger("search_rerank.access")
api = Blueprint("api", __name__)
es = Blueprint("es", __name__)
ops = Blueprint("ops", __name__)
web = Blueprint("web", __name__, static_folder="web", static_url_path="/web")
# Registered only when requests are passed through to a cluster: without one, "/<name>" stays a 404.
cluster = Blueprint("cluster", __name__)
# Elasticsearch's own clients (JS and Python, 8.x) refuse a response without this header.
ES_HEADERS = {"X-Elastic-Product": "Elasticsearch"}
ALL_METHODS = ["GET", "POST", "PUT", "DELETE", "HEAD", "PATCH"]
SERVED_ES_METHODS = {"search": ["GET", "POST"], "msearch": ["POST"]}
# Scripts and styles from this server only, nothing inline: markup that slipped into a product text still could not run.
PAGE_POLICY = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
               "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
# A front end that tracks shoppers sends its ids with each search; they go into the UBI query record.
CLIENT_ID_HEADER, SESSION_ID_HEADER, QUERY_ID_HEADER = "X-Ubi-Client-Id", "X-Ubi-Session-Id", "X-Query-Id"
UBI_EVENTS = TypeAdapter(list[UbiEvent])


class InvalidBody(Exception):
    """The body is not a JSON object; reported like a field error on ``body``."""


def error_response(status: int, error: str, message: str | None = None, fields: list[FieldError] | None = None):
    return jsonify(ErrorResponse(error=error, message=message, fields=fields).model_dump(exclude_none=True)), status


def json_body(required: bool = True) -> dict[str, Any]:
    """The request's JSON object, whatever the Content-Type (curl -d sends form-encoded)."""
    if not required and not request.get_data():
        return {}
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        raise InvalidBody("expected a JSON object")
    return body


def current_pipeline() -> SearchPipeline:
    """The pipeline this request started on, leased until it ends (see live_pipeline)."""
    if "pipeline_lease" not in g:
        g.pipeline_lease = live().acquire()
    return g.pipeline_lease.pipeline


def live() -> LivePipeline:
    return current_app.extensions["search_rerank"]


def current_settings() -> Settings:
    return current_app.config["SETTINGS"]


def run_search(query: str, filters: Filters | None, size: int, offset: int, settings: Settings,
               overrides: Overrides | None = None, ubi: UbiSearchParams | None = None
               ) -> tuple[SearchResult, interleave_serving.InterleavedSearch | None]:
    """The search, interleaved with the second ranking when the header or the traffic share says so."""
    setup: interleave_serving.InterleaveSetup | None = current_app.extensions.get("interleave")
    client = ubi.client_id if ubi is not None and ubi.client_id else safe_id(request.headers.get(CLIENT_ID_HEADER))
    shopper = interleave_serving.shopper(client, safe_id(request.headers.get(SESSION_ID_HEADER)), query)
    interleaved = None
    if interleave_serving.wanted(setup, request.headers.get(interleave_serving.INTERLEAVE_HEADER), shopper):
        b = setup.settings_b if overrides is None else overrides.apply(setup.settings_b)
        interleaved = interleave_serving.run(current_pipeline(), query, filters, size, offset, settings, b,
                                             interleave_serving.seed(shopper, query, filters), setup.source)
        result = interleaved.result
    else:
        result = current_pipeline().run(query, filters, size=size, offset=offset, settings=settings)
    metrics.observe(result)
    return result, interleaved


def log_query(user_query: str, hit_ids: list[str], filters: Filters | None, offset: int,
              ubi: UbiSearchParams | None = None,
              interleaved: interleave_serving.InterleavedSearch | None = None) -> str:
    """The search's query id (the front end's, from ``ext.ubi``, or a new one), and its UBI query record
    written when UBI logging is on; an interleaved search also logs each shown product's team."""
    ubi = ubi if ubi is not None else UbiSearchParams()
    query_id = ubi.query_id or new_query_id()
    log: UbiLog | None = current_app.extensions.get("ubi_log")
    if log is not None:
        attributes = {"endpoint": _endpoint(), "from": offset}
        session = safe_id(request.headers.get(SESSION_ID_HEADER))
        if session:
            attributes["session_id"] = session
        if filters is not None:
            attributes["filters"] = filters.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if interleaved is not None:
            attributes["interleaving"] = {"b": interleaved.source}
        application = ubi.application or current_settings().service.ubi_application
        client = ubi.client_id or safe_id(request.headers.get(CLIENT_ID_HEADER))
        records: list[UbiQuery | UbiEvent] = [UbiQuery(
            application=application, query_id=query_id, client_id=client,
            user_query=ubi.user_query or user_query, query_attributes={**attributes, **ubi.query_attributes},
            object_id_field=ubi.object_id_field or "id", query_response_hit_ids=hit_ids,
        )]
        if interleaved is not None:
            records += interleave_serving.impression_events(
                interleaved, query_id, hit_ids, offset, application=application,
                user_query=ubi.user_query or user_query, client_id=client, session_id=session)
        log.write(records)
    return query_id


@api.post("/search")
def search():
    req = SearchRequest.model_validate(json_body(), context={"limits": current_settings().service})
    try:
        run_settings = req.overrides.apply(current_settings())
    except ConfigError as exc:
        return error_response(400, "invalid request", fields=[FieldError(field="overrides", message=str(exc))])
    filters = None if req.filters.is_empty else req.filters
    result, interleaved = run_search(req.query, filters, req.size, req.from_, run_settings, req.overrides)
    hit_ids = [hit.product.id for hit in result.hits]
    query_id = log_query(req.query, hit_ids, filters, req.from_, interleaved=interleaved)
    stages = stage_lists(result, req.from_, req.size) if req.stages else None
    response = SearchResponse.of(result, offset=req.from_, size=req.size, explain=req.explain, query_id=query_id,
                                 stages=stages, stage_hits=_stage_hits(result, stages, run_settings),
                                 interleaving=None if interleaved is None else interleaved.section(hit_ids))
    return jsonify(response.model_dump(mode="json", by_alias=True, exclude_none=True)), {QUERY_ID_HEADER: query_id}


def _stage_hits(result: SearchResult, stages: dict[str, list[str]] | None, settings: Settings) -> list[Hit] | None:
    """Every product that some stage put on this page, as it ended up in the final ranking."""
    if stages is None:
        return None
    final = {c.product_id: c for c in result.ranking.candidates}
    listed = dict.fromkeys(pid for ids in stages.values() for pid in ids if pid in final)
    return current_pipeline().hits([final[pid] for pid in listed], settings)


@api.post("/ubi/events")
def ubi_events():
    """UBI events from a front end (one object or a list), checked, then appended to the UBI log."""
    ubi: UbiLog | None = current_app.extensions.get("ubi_log")
    if ubi is None:
        return error_response(404, "UBI logging is off", "set service.ubi_log_path to record events")
    body = request.get_json(silent=True, force=True)
    if isinstance(body, dict):
        events = [UbiEvent.model_validate(body)]
    elif isinstance(body, list) and body:
        events = UBI_EVENTS.validate_python(body)
    else:
        raise InvalidBody("expected a UBI event object or a non-empty list of them")
    application = current_settings().service.ubi_application
    ubi.write(event.completed(application) for event in events)
    return jsonify({"accepted": len(events)})


@web.get("/")
def page():
    """The comparison page: the BM25, hybrid and final rankings of one search side by side (see web/app.js).

    A client that does not take HTML (an Elasticsearch client's ``GET /`` or ``HEAD /`` ping) gets the
    cluster's answer when requests are passed through.
    """
    if passthrough() is not None and not request.accept_mimetypes.accept_html:
        return _pass_through("/")
    response = send_from_directory(web.static_folder, "index.html")
    response.headers["Content-Security-Policy"] = PAGE_POLICY
    return response


@ops.get("/health")
def health():
    """Liveness only: touching the indexes here would let a slow disk get a healthy worker restarted."""
    return jsonify({"status": "alive"})


@ops.get("/ready")
def ready():
    """Readiness: every index opens and holds the catalog, so a load balancer may send traffic."""
    p, settings = current_pipeline(), current_settings()
    try:
        counts = {"products": p.store.count(), **{name: leg.count() for name, leg in p.legs.items()}}
        built = read_manifest(settings).get("built")
    except Exception as exc:  # whatever is broken, the answer is "not ready", with the reason
        log.warning("not ready: %s", exc)
        return jsonify({"status": "not ready", "reason": f"{type(exc).__name__}: {exc}"}), 503
    if not counts["products"] or any(n != counts["products"] for n in counts.values()):
        return jsonify({"status": "not ready", "reason": "indexes are empty or disagree", "counts": counts}), 503
    return jsonify({
        "status": "ready", "counts": counts, "legs": sorted(p.legs), "index": str(settings.index_dir),
        "built": built, "reranker": settings.rerank.model if p.reranker is not None else None,
    })


@ops.post("/admin/reload")
def reload():
    """Reopen the indexes and models, e.g. after a rebuild, without dropping a request.

    This worker reloads now and answers with the outcome; under gunicorn the
    other workers follow within a second (see reload_broadcast).
    """
    token = current_app.config["ADMIN_TOKEN"]
    if not token:
        return error_response(403, "reload disabled", "set SEARCH_RERANK_ADMIN_TOKEN to enable /admin/reload")
    sent = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(sent.encode(), token.encode()):
        response, status = error_response(401, "unauthorized", "send the admin token as 'Authorization: Bearer ...'")
        return response, status, {"WWW-Authenticate": "Bearer"}
    try:
        reloaded = reopen(current_app)
    except Exception as exc:  # whatever broke, the indexes already loaded keep serving
        log.exception("reload failed; still serving the previous indexes")
        return error_response(500, "reload failed",
                              f"{type(exc).__name__}: {exc} (still serving the previous indexes)")
    broadcast: ReloadBroadcast | None = current_app.extensions.get("reload_broadcast")
    if broadcast is not None:
        broadcast.announce()
    return jsonify({"status": "reloaded", "pid": os.getpid(), "other_workers": broadcast is not None, **reloaded})


def reopen(app: Flask) -> dict[str, Any]:
    """Open the indexes and models the settings name, then serve them; raises, serving on, if they do not open."""
    settings: Settings = app.config["SETTINGS"]
    pipeline = open_pipeline(settings)
    try:
        pipeline.warm_up()
        built = read_manifest(settings).get("built")
    except BaseException:
        pipeline.close()
        raise
    app.extensions["search_rerank"].swap(pipeline)
    log.info("reloaded the indexes from %s", settings.index_dir)
    return {"index": str(settings.index_dir), "built": built, "products": pipeline.store.count()}


@ops.get("/metrics")
def prometheus():
    body, content_type = metrics.exposition()
    return Response(body, content_type=content_type)


@ops.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(__version__))


@api.errorhandler(ValidationError)
def invalid_request(exc: ValidationError):
    fields = [FieldError(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"]) for e in exc.errors()]
    return error_response(400, "invalid request", fields=fields)


@api.errorhandler(InvalidBody)
def invalid_body(exc: InvalidBody):
    return error_response(400, "invalid request", fields=[FieldError(field="body", message=str(exc))])


@es.route("/_search", methods=["GET", "POST"], defaults={"index": "_all"})
@es.route("/<index>/_search", methods=["GET", "POST"])
def es_search(index: str):
    response = _es_search(index, json_body(required=False), request.args)
    return jsonify(response), 200, {**ES_HEADERS, QUERY_ID_HEADER: response["search_rerank"]["query_id"]}


@es.post("/_msearch", defaults={"index": "_all"})
@es.post("/<index>/_msearch")
def es_msearch(index: str):
    """Searchkit sends every search as a multi-search; each one succeeds or fails on its own, as in ES."""
    responses = []
    for header, body in parse_msearch(request.get_data(as_text=True), index):
        try:
            responses.append({**_es_search(header, body, {}), "status": 200})
        except (InvalidQuery, Unsupported) as exc:
            status, cause = _es_cause(exc)
            responses.append({"error": {"root_cause": [cause], **cause}, "status": status})
    return jsonify({"took": sum(r.get("took", 0) for r in responses), "responses": responses}), 200, ES_HEADERS


def _es_search(index: str, body: dict[str, Any], params) -> dict[str, Any]:
    started = time.perf_counter()
    settings = current_settings()
    lexical = current_pipeline().legs.get(LEXICAL)
    search = parse_search(body, params, settings.service, aggregations=computes_aggregations(lexical))
    aggregations = current_app.extensions["aggregator"].start(lexical, search)
    result = interleaved = None
    if not search.matches_nothing:
        result, interleaved = run_search(search.text, search.filters, search.size, search.offset, settings,
                                         ubi=search.ubi)
    hit_ids = [hit.product.id for hit in result.hits] if result is not None else []
    query_id = log_query(search.text, hit_ids, search.filters, search.offset, search.ubi, interleaved)
    response = es_response(search, result, settings, index, (time.perf_counter() - started) * 1000)
    response["search_rerank"]["query_id"] = query_id
    if interleaved is not None:
        response["search_rerank"]["interleaving"] = interleaved.section(hit_ids)
    current_app.extensions["aggregator"].answer(aggregations, response, settings.service.aggregations_timeout_s)
    if search.ubi is not None:
        response["ext"] = {"ubi": {"query_id": query_id}}  # where the OpenSearch UBI plugin answers it
    return response


@es.route("/_<path:endpoint>", methods=ALL_METHODS)
@es.route("/<index>/_<path:endpoint>", methods=ALL_METHODS)
def es_other(endpoint: str, index: str | None = None):
    """Endpoints other than search, and searches whose path routing cannot tell from them."""
    first, _, rest = endpoint.partition("/")
    if index is None and rest in ("_search", "_msearch"):
        # "/_all/_search" begins with "_" like "/_cat/indices", so it lands here, not on /<index>/_search.
        index, endpoint = f"_{first}", rest[1:]
    if endpoint not in SERVED_ES_METHODS:
        return _pass_through(f"_{first}")
    allowed = SERVED_ES_METHODS[endpoint]
    if request.method not in allowed:
        # Elasticsearch answers a served endpoint called with the wrong method by a 405, in these words.
        raise MethodNotAllowed(allowed, f"Incorrect HTTP method for uri [{request.path}] and method "
                                        f"[{request.method}], allowed: [{', '.join(allowed)}]")
    if index != "_all":
        raise InvalidQuery("index", f"invalid index name [{index}]: must not start with '_'")
    return es_search(index) if endpoint == "search" else es_msearch(index)


@cluster.route("/<name>", methods=ALL_METHODS)
def cluster_index(name: str):
    """An index itself (``GET /products``, ``HEAD /products``), unless the path is one of this service's routes."""
    ours = {m for rule in current_app.url_map.iter_rules() if rule.rule == request.path for m in rule.methods or ()}
    if ours:
        raise MethodNotAllowed(sorted(ours))
    return _pass_through(name)


def passthrough() -> ClusterPassthrough | None:
    return current_app.extensions.get("passthrough")


def _pass_through(part: str):
    """The cluster's answer to this request, or a 501 naming the path when there is no cluster to ask."""
    bridge = passthrough()
    if bridge is None:
        what = f"{request.method} {request.path} is not a search"
        if current_settings().lexical.backend == "tantivy":
            raise Unsupported(part, f"{what}, and the embedded backend has no cluster to pass it to "
                                    "(only _search and _msearch are served)")
        raise Unsupported(part, f"{what}, and passing requests through to the cluster is off "
                                "(service.passthrough = false)")
    target = raw_target(request.environ, request.path, request.query_string)
    return bridge.forward(request.method, target, request.headers.items(), request.get_data())


def es_error(status: int, cause: dict[str, Any]):
    """Elasticsearch's error shape, which its clients parse."""
    return jsonify({"error": {"root_cause": [cause], **cause}, "status": status}), status, ES_HEADERS


def _es_cause(exc: InvalidQuery | Unsupported) -> tuple[int, dict[str, Any]]:
    if isinstance(exc, Unsupported):
        return 501, {"type": "search_rerank_unsupported", "reason": str(exc), "unsupported": exc.part}
    return 400, {"type": "parsing_exception", "reason": str(exc), "field": exc.field}


@es.errorhandler(InvalidQuery)
@es.errorhandler(Unsupported)
def es_bad_search(exc: InvalidQuery | Unsupported):
    return es_error(*_es_cause(exc))


@es.errorhandler(InvalidBody)
def es_invalid_body(exc: InvalidBody):
    return es_error(400, {"type": "parsing_exception", "reason": str(exc), "field": "body"})


@es.errorhandler(HTTPException)
def es_http_error(exc: HTTPException):
    body, status, headers = es_error(exc.code or 500, {"type": exc.name.lower().replace(" ", "_"),
                                                       "reason": exc.description})
    if isinstance(exc, MethodNotAllowed) and exc.valid_methods:
        headers = {**headers, "Allow": ", ".join(exc.valid_methods)}
    return body, status, headers


def _json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return error_response(exc.code or 500, exc.name, exc.description)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.ERRORS.labels(_endpoint()).inc()
        return error_response(500, "internal error", type(exc).__name__)


def _endpoint() -> str:
    """The route's pattern, not the path: one label value per route whatever the index name or typo."""
    return request.url_rule.rule if request.url_rule is not None else "unmatched"


def _request_lifecycle(app: Flask) -> None:
    @app.before_request
    def start():
        g.request_id = request_id(request.headers.get("X-Request-Id"))
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = _endpoint()
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(endpoint).observe(seconds)
        response.headers["X-Request-Id"] = g.get("request_id") or request_id(None)
        access.info("%s %s %s", request.method, request.path, response.status_code, extra={"fields": {
            "method": request.method, "path": request.path, "endpoint": endpoint,
            "status": response.status_code, "duration_ms": round(seconds * 1000, 3),
        }})
        return response

    @app.teardown_request
    def give_back_pipeline(exc: BaseException | None) -> None:
        lease = g.pop("pipeline_lease", None)
        if lease is not None:
            live().release(lease)


def create_app(settings: Settings | None = None, pipeline: SearchPipeline | None = None) -> Flask:
    """Build the app; tests pass their own settings or pipeline."""
    if settings is None:
        settings = load_settings(os.environ.get("SEARCH_RERANK_SETTINGS"))
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.service.max_body_bytes
    if pipeline is None:
        try:
            pipeline = open_pipeline(settings)
        except ConfigError as exc:
            raise SystemExit(f"search-rerank: cannot start: {exc}") from exc
    pipeline.warm_up()
    app.extensions["search_rerank"] = LivePipeline(pipeline, settings.service.reload_grace_s)
    try:
        app.extensions["interleave"] = interleave_serving.InterleaveSetup.from_settings(settings)
    except ConfigError as exc:
        raise SystemExit(f"search-rerank: cannot start: service.interleave_with: {exc}") from exc
    app.config["ADMIN_TOKEN"] = os.environ.get("SEARCH_RERANK_ADMIN_TOKEN") or None
    if reload_file := os.environ.get(RELOAD_FILE_ENV):
        broadcast = ReloadBroadcast(Path(reload_file), lambda: reopen(app))
        broadcast.start()
        app.extensions["reload_broadcast"] = broadcast
    service = settings.service
    if service.ubi_log_path is not None:
        app.extensions["ubi_log"] = UbiLog(service.ubi_log_path, service.ubi_log_max_bytes, service.ubi_log_backups)
    app.register_blueprint(api)
    app.register_blueprint(es)
    app.register_blueprint(ops)
    app.register_blueprint(web)
    app.extensions["aggregator"] = Aggregator()
    if (bridge := passthrough_for(settings)) is not None:
        app.extensions["passthrough"] = bridge
        app.register_blueprint(cluster)
    _json_errors(app)
    _request_lifecycle(app)
    return app
