"""What every route shares: the request's body, pipeline lease and settings, the search with its UBI record.

Routes live in one blueprint module each (search_api, es_api, ops, web_page);
this module is the per-request glue they have in common, so that the product's
own API and the Elasticsearch-compatible one search and log the same way.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import replace
from typing import Any
from urllib.parse import unquote_to_bytes

from flask import current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from ..core.filters import Filters
from ..core.personalise import skip_reason
from ..core.pipeline import SearchPipeline, SearchResult
from ..core.profile import ShopperProfile, safe_id
from ..core.reasons import UBI_WRITE_FAILED
from ..core.retrieval import Stage
from ..core.settings import Settings
from . import interleave, metrics, result_cache
from .api_models import ErrorResponse, FieldError, Overrides
from .field_aliases import source_with_aliases
from .identity import IDENTITY_KEYS
from .json_input import InvalidBody, parse_json
from .live_pipeline import LivePipeline
from .ubi import UbiEvent, UbiLog, UbiQuery, UbiSearchParams, UbiWriteError, new_query_id

# A front end that tracks shoppers sends its ids with each search; they go into the UBI query record.
CLIENT_ID_HEADER, SESSION_ID_HEADER, QUERY_ID_HEADER = "X-Ubi-Client-Id", "X-Ubi-Session-Id", "X-Query-Id"
UBI = "ubi"
"""The part of an answer that is its UBI record, as ``degraded`` and the degraded-answers metric name it."""
logger = logging.getLogger(__name__)


def error_response(
    status: int,
    error: str,
    message: str | None = None,
    fields: list[FieldError] | None = None,
    reason: str | None = None,
):
    body = ErrorResponse(error=error, message=message, fields=fields, reason=reason)
    return jsonify(body.model_dump(exclude_none=True)), status


def described(exc: HTTPException) -> tuple[str, str | None]:
    """An HTTP error's text, and the part of the request it names: a 413 says the limit the body passed, where
    werkzeug's own text ("The data value transmitted exceeds the capacity limit.") named neither."""
    if isinstance(exc, RequestEntityTooLarge):
        limit = current_app.config["MAX_CONTENT_LENGTH"]
        return f"the request body is larger than service.max_body_bytes ({limit:,} bytes)", "body"
    return exc.description or exc.name, None


def error_headers(exc: HTTPException) -> dict[str, str]:
    """The headers an HTTP error carries other than its own (HTML) body's type, kept when it is answered in JSON:
    a 405's ``Allow``, which HTTP requires of it (RFC 9110, 15.5.6), a 503's ``Retry-After`` when it has one."""
    return {name: value for name, value in exc.get_headers() if name.lower() != "content-type"}


def admin_token_sent() -> bool:
    """Whether the request carries the admin token (``Authorization: Bearer ...``, compared in constant time);
    never when no token is configured. The admin routes need it, and so does a search that asks for more work
    than the served settings (see cost_limits)."""
    token = current_app.config["ADMIN_TOKEN"]
    if not token:
        return False
    scheme, _, credentials = request.headers.get("Authorization", "").strip().partition(" ")
    # An authentication scheme's name is case-insensitive (RFC 9110, 11.1). Only the Bearer scheme carries the
    # token: a bare token, or one under another scheme (Basic, ApiKey), is a credential meant for something else,
    # and a client that sends it so has a mistake the 401 should show rather than hide.
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(credentials.strip().encode(), token.encode())


def identity_context() -> dict[str, tuple[str, ...]]:
    """The validation context under which a request's ``user_id`` is checked against the identity keys (none set:
    taken as sent; see identity)."""
    return {IDENTITY_KEYS: current_app.config[IDENTITY_KEYS]}


def admin_refusal(what: str, path: str) -> tuple[Any, ...] | None:
    """None when the request carries the admin token (``Authorization: Bearer ...``), else the answer: 403 when
    no token is configured (``what`` is disabled; the message names the route, ``path``), 401 when it is
    missing or wrong."""
    if not current_app.config["ADMIN_TOKEN"]:
        return error_response(403, f"{what} disabled", f"set SEARCH_RERANK_ADMIN_TOKEN to enable {path}")
    if not admin_token_sent():
        response, status = error_response(401, "unauthorized", "send the admin token as 'Authorization: Bearer ...'")
        return response, status, {"WWW-Authenticate": "Bearer"}
    return None


def request_json() -> Any:
    """The request body's JSON value, read the one checked way (see json_input), whatever the Content-Type
    (curl -d sends form-encoded); raises :class:`InvalidBody`."""
    return parse_json(request.get_data(), current_settings().service.max_json_depth)


def undecodable_param() -> str | None:
    """The name of the request's first URI parameter whose name or value is not UTF-8 once percent-decoded (None
    for none): Werkzeug decodes it with replacement characters, a value nobody sent (``q=%ff`` searched for a
    word nobody typed, ``brand=%ff`` filtered on one)."""
    for pair in request.query_string.split(b"&"):
        raw_name, _, raw_value = pair.partition(b"=")
        name = raw_name.decode("latin-1")
        try:
            name = unquote_to_bytes(raw_name.replace(b"+", b" ")).decode("utf-8")
            unquote_to_bytes(raw_value.replace(b"+", b" ")).decode("utf-8")
        except UnicodeDecodeError:
            return name
    return None


def json_body(required: bool = True) -> dict[str, Any]:
    """The request's JSON object; ``{}`` for an empty body when ``required`` is false."""
    if not required and not request.get_data():
        return {}
    body = request_json()
    if not isinstance(body, dict):
        raise InvalidBody("body", "expected a JSON object")
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


def run_search(
    query: str,
    filters: Filters | None,
    size: int,
    offset: int,
    settings: Settings,
    overrides: Overrides | None = None,
    ubi: UbiSearchParams | None = None,
    pipeline: SearchPipeline | None = None,
    profile: ShopperProfile | None = None,
    profile_failure: str | None = None,
    deadline: float | None = None,
) -> tuple[SearchResult, interleave.InterleavedSearch | None]:
    """The search, interleaved with the second ranking when the header (with the admin token) or the traffic
    share says so.

    ``pipeline``: the request's view of the served pipeline (e.g. its legs held to a constraint).
    ``profile``: the shopper's (see profiles_api.request_profile); a search it personalises is never
    cached, one it leaves alone (anonymous, cold) is the anonymous search. ``profile_failure``: the reason
    code when the profile could not be read, reported as ``degraded.personal``. Interleaved searches
    compare two rankings for everyone and are not personalised. ``deadline``: a multi-search's budget, as
    :meth:`SearchPipeline.run` takes it.
    """
    pipeline = pipeline if pipeline is not None else current_pipeline()
    setup: interleave.InterleaveSetup | None = current_app.extensions.get("interleave")
    client = ubi.client_id if ubi is not None and ubi.client_id else safe_id(request.headers.get(CLIENT_ID_HEADER))
    shopper = interleave.shopper(client, safe_id(request.headers.get(SESSION_ID_HEADER)), query)
    interleaved = None
    header = request.headers.get(interleave.INTERLEAVE_HEADER)
    # a search that shows no hit (size 0) has nothing to interleave: it is not ranked (SearchPipeline.run)
    if interleave.wanted(setup, header, shopper, may_force=header is not None and admin_token_sent()) and size > 0:
        b = setup.settings_b if overrides is None else overrides.apply(setup.settings_b)
        interleaved = interleave.run(
            pipeline,
            query,
            filters,
            size,
            offset,
            settings,
            b,
            interleave.seed(shopper, query, filters),
            setup.source,
            deadline,
        )
        result = interleaved.result
    elif profile is not None and skip_reason(profile, settings.personalisation) is None:
        result = pipeline.run(
            query, filters, size=size, offset=offset, settings=settings, profile=profile, deadline=deadline
        )
    else:
        result = (
            result_cache.search(current_app, pipeline, query, filters, size, offset, settings, deadline)
            if pipeline is current_pipeline()
            # a request's own view of the legs (held to a constraint the cache key cannot see) is never cached
            else pipeline.run(query, filters, size=size, offset=offset, settings=settings, deadline=deadline)
        )
        result = personal_note(result, profile, profile_failure, settings)
    metrics.observe(result)
    shown = [hit.product.id for hit in result.hits]
    metrics.observe_exposure(shown, pipeline.store.popularity(shown), settings.longtail, offset)
    return result, interleaved


def personal_note(
    result: SearchResult, profile: ShopperProfile | None, failure: str | None, settings: Settings
) -> SearchResult:
    """The anonymous result, saying why it was not personalised for this shopper: a store failure
    (``degraded``) or a cold profile (``skipped``). A copy: a cached result is shared by other requests."""
    ranking = result.ranking
    if failure is not None:
        skipped = {k: v for k, v in ranking.skipped.items() if k != Stage.PERSONAL}
        ranking = replace(ranking, degraded={**ranking.degraded, Stage.PERSONAL: failure}, skipped=skipped)
    elif profile is not None:
        reason = skip_reason(profile, settings.personalisation)
        ranking = replace(ranking, skipped={**ranking.skipped, Stage.PERSONAL: reason or ""})
    else:
        return result
    return replace(result, ranking=ranking)


def log_query(
    user_query: str,
    hit_ids: list[str],
    filters: Filters | None,
    offset: int,
    ubi: UbiSearchParams | None = None,
    interleaved: interleave.InterleavedSearch | None = None,
) -> tuple[str, str | None]:
    """The search's query id (the front end's, from ``ext.ubi``, or a new one), and its UBI query record
    written when UBI logging is on; an interleaved search also logs each shown product's team.

    The second value is None, or the reason code when the record could not be written: the search is
    still answered (the shopper gets results), flagged ``degraded.ubi`` and counted, so the loss is seen.
    """
    ubi = ubi if ubi is not None else UbiSearchParams()
    query_id = ubi.query_id or new_query_id()
    log: UbiLog | None = current_app.extensions.get("ubi_log")
    if log is not None:
        attributes = {"endpoint": endpoint_name(), "from": offset}
        session = safe_id(request.headers.get(SESSION_ID_HEADER))
        if session:
            attributes["session_id"] = session
        if filters is not None:
            attributes["filters"] = filters.model_dump(mode="json", exclude_none=True, exclude_defaults=True)
        if interleaved is not None:
            attributes["interleaving"] = {"b": interleaved.source}
        application = ubi.application or current_settings().service.ubi_application
        client = ubi.client_id or safe_id(request.headers.get(CLIENT_ID_HEADER))
        shown = logged_hit_ids(hit_ids, ubi.object_id_field)
        records: list[UbiQuery | UbiEvent] = [
            UbiQuery(
                application=application,
                query_id=query_id,
                client_id=client,
                user_query=ubi.user_query or user_query,
                query_attributes={**attributes, **ubi.query_attributes},
                object_id_field=ubi.object_id_field or "id",
                query_response_hit_ids=shown,
                query_response_internal_ids=hit_ids if shown != hit_ids else None,
            )
        ]
        if interleaved is not None:
            records += interleave.impression_events(
                interleaved,
                query_id,
                hit_ids,
                offset,
                application=application,
                user_query=ubi.user_query or user_query,
                client_id=client,
                session_id=session,
            )
        try:
            log.write(records)
        except UbiWriteError as exc:
            logger.error("UBI query record %s not written (%s): %s", query_id, UBI_WRITE_FAILED, exc)
            metrics.DEGRADED.labels(UBI).inc()
            return query_id, UBI_WRITE_FAILED
    return query_id, None


def logged_hit_ids(hit_ids: list[str], object_id_field: str | None) -> list[str]:
    """The hits as a query record names them: by the value each hit's ``_source`` holds under the front end's
    ``ext.ubi.object_id_field`` (a SKU), as OpenSearch's UBI plugin logs them, so that a UBI tool joins them
    with the front end's events, which name products by that field; a hit without it, by its id.

    The catalog ids go beside them (``query_response_internal_ids``) for this service's own readers."""
    if object_id_field in (None, "", "id", "_id"):
        return hit_ids
    aliases = current_settings().service.field_aliases
    products = current_pipeline().store.get(hit_ids)
    shown = []
    for pid in hit_ids:
        value = (
            source_with_aliases(products[pid].to_record(), aliases).get(object_id_field) if pid in products else None
        )
        shown.append(
            str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) and value != "" else pid
        )
    return shown


def endpoint_name() -> str:
    """The route's pattern, not the path: one label value per route whatever the index name or typo."""
    return request.url_rule.rule if request.url_rule is not None else "unmatched"
