"""The product's own API: ``POST /search``, ``POST /ubi/events`` (also at ``/ubi_events``) and ``POST /ubi/queries``
(also at ``/ubi_queries``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any, TypeVar

from flask import Blueprint, current_app, jsonify, request
from pydantic import BaseModel, TypeAdapter, ValidationError

from ..core.errors import ConfigError
from ..core.pipeline import Hit, SearchResult
from ..core.reasons import UBI_WRITE_FAILED
from ..core.settings import Settings
from ..data.clicks import named_action
from . import metrics
from .api_models import FieldError, SearchRequest, SearchResponse, stage_lists
from .context import (
    QUERY_ID_HEADER,
    UBI,
    admin_token_sent,
    current_pipeline,
    current_settings,
    error_response,
    identity_context,
    json_body,
    log_query,
    request_json,
    run_search,
)
from .cost_limits import CostRaised, raised_settings
from .json_input import InvalidBody, NotJson, parse_json
from .profiles_api import apply_events, request_profile
from .reco_api import fallback_block
from .ubi import TrackedQuery, UbiEvent, UbiLog, UbiRecord, UbiWriteError

log = logging.getLogger(__name__)
api = Blueprint("api", __name__)
UBI_RETRY_AFTER_S = 5
"""When a front end may send events the log refused again: a write fails on a full or failing disk, which an
immediate retry would only fail on again, and a beacon retried within seconds is still about the page shown."""
UBI_EVENTS = TypeAdapter(list[UbiEvent])
TRACKED_QUERIES = TypeAdapter(list[TrackedQuery])
R = TypeVar("R", bound=BaseModel)


@api.post("/search")
def search():
    served = current_settings()
    req = SearchRequest.model_validate(json_body(), context={"limits": served.service, **identity_context()})
    try:
        run_settings = req.overrides.apply(served)
    except ConfigError as exc:
        return error_response(400, "invalid request", fields=[FieldError(field="overrides", message=str(exc))])
    raised = raised_settings(served, run_settings)
    if raised and not admin_token_sent():
        fields = [FieldError(field=f"overrides.{setting}", message=why) for setting, why in raised.items()]
        return error_response(403, "forbidden", "the overrides ask for more work than the served settings", fields)
    filters = None if req.filters.is_empty else req.filters
    profile, failure = request_profile(req.user_id, req.session_id, run_settings)
    result, interleaved = run_search(
        req.query,
        filters,
        req.size,
        req.from_,
        run_settings,
        req.overrides,
        profile=profile,
        profile_failure=failure,
    )
    hit_ids = [hit.product.id for hit in result.hits]
    query_id, unlogged = log_query(req.query, hit_ids, filters, req.from_, interleaved=interleaved)
    if unlogged is not None:
        result.ranking.degraded[UBI] = unlogged
    stages = stage_lists(result, req.from_, req.size) if req.stages else None
    response = SearchResponse.of(
        result,
        offset=req.from_,
        size=req.size,
        explain=req.explain,
        query_id=query_id,
        stages=stages,
        stage_hits=_stage_hits(result, stages, run_settings),
        interleaving=None if interleaved is None else interleaved.section(hit_ids),
        fallback=fallback_block(current_pipeline(), result, run_settings),
    )
    return jsonify(response.model_dump(mode="json", by_alias=True, exclude_none=True)), {QUERY_ID_HEADER: query_id}


def _stage_hits(result: SearchResult, stages: dict[str, list[str]] | None, settings: Settings) -> list[Hit] | None:
    """Every product that some stage put on this page, as it ended up in the final ranking."""
    if stages is None:
        return None
    final = {c.product_id: c for c in result.ranking.candidates}
    listed = dict.fromkeys(pid for ids in stages.values() for pid in ids if pid in final)
    return current_pipeline().hits([final[pid] for pid in listed], settings)


@api.post("/ubi/events")
@api.post("/ubi_events")
def ubi_events():
    """UBI events from a front end (one object or a list), checked, appended to the UBI log, then applied to
    the shoppers' profiles before the answer (so the next search sees them; see profiles_api).

    ``accepted`` means written: an event the log could not keep is a 503 (``ubi_write_failed``, with
    ``Retry-After``), so that the front end may send it again, never an acceptance followed by a loss.

    ``/ubi_events`` is where the UBI JavaScript client posts (``UbiClient(baseUrl)`` sends its events to
    ``baseUrl + "/ubi_events"``, the path of the Data Prepper pipeline OpenSearch's UBI guide sets up), so a front
    end built on it needs only its base URL pointed here.
    """
    ubi: UbiLog | None = current_app.extensions.get("ubi_log")
    if ubi is None:
        return ubi_off("events")
    application = current_settings().service.ubi_application
    events = [event.completed(application) for event in sent_records(UbiEvent, UBI_EVENTS, "event")]
    refusal = ubi_refusal(ubi, events, "events")
    if refusal is not None:
        return refusal
    clicked = [pid for pid in map(clicked_product, events) if pid is not None]
    if clicked:
        metrics.observe_clicks(clicked, current_pipeline().store.popularity(clicked), current_settings().longtail)
    apply_events(events, current_pipeline(), current_settings())
    return jsonify({"accepted": len(events)})


@api.post("/ubi/queries")
@api.post("/ubi_queries")
def ubi_queries():
    """UBI query records a front end sends itself (one object or a list), checked and appended to the UBI log
    beside the service's own, as events are: ``accepted`` means written, a log that cannot keep them a 503.

    ``/ubi_queries`` is where the UBI JavaScript client's ``UbiClient(baseUrl).trackQuery`` posts (a one-record
    array). A record of a search this service answered (the front end sent its ``query_id`` in ``ext.ubi``) is
    logged too, with the time it was received, and the training reader keeps the search's own hits for it (see
    clicks.read_ubi). The answer gives each record's query id: one left out is given here.
    """
    ubi: UbiLog | None = current_app.extensions.get("ubi_log")
    if ubi is None:
        return ubi_off("query records")
    application = current_settings().service.ubi_application
    queries = [query.completed(application) for query in sent_records(TrackedQuery, TRACKED_QUERIES, "query record")]
    refusal = ubi_refusal(ubi, queries, "query records")
    if refusal is not None:
        return refusal
    return jsonify({"accepted": len(queries), "query_ids": [query.query_id for query in queries]})


def ubi_off(what: str):
    return error_response(404, "UBI logging is off", f"set service.ubi_log_path to record {what}")


def sent_records(model: type[R], many: TypeAdapter[list[R]], what: str) -> list[R]:
    """The request body's UBI records (one object, or a non-empty list of them, as the UBI JavaScript client
    sends, or one a line: the UBI log's own lines, as a log shipper forwards them), each validated as ``model``;
    a bad one raises for the whole body, naming it by its index."""
    body: Any = json_or_lines()
    if isinstance(body, dict):
        return [model.model_validate(body, context=identity_context())]
    if isinstance(body, list) and body:
        return many.validate_python(body, context=identity_context())
    raise InvalidBody("body", f"expected a UBI {what} object or a non-empty list of them")


def json_or_lines() -> Any:
    """The body's JSON value; for a body of several lines that is not one (NDJSON: ``curl --data-binary
    @ubi.ndjson``, Fluent Bit's ``json_lines``, Vector's newline-delimited framing), the list of its lines' values,
    a line that is not JSON named by its number."""
    try:
        return request_json()
    except NotJson:
        lines = [(n, line) for n, line in enumerate(request.get_data().split(b"\n"), 1) if line.strip()]
        if len(lines) < 2:
            raise
        depth = current_settings().service.max_json_depth
        return [parse_json(line, depth, where=f"line {n}") for n, line in lines]


def ubi_refusal(ubi: UbiLog, records: Sequence[UbiRecord], what: str):
    """None once ``records`` are all in the UBI log; else the answer that none is (a 503, ``ubi_write_failed``,
    with ``Retry-After``), so that the front end sends them again rather than take them for kept."""
    try:
        ubi.write(records)
    except UbiWriteError as exc:
        log.error("%d UBI %s refused (%s): %s", len(records), what, UBI_WRITE_FAILED, exc)
        metrics.DEGRADED.labels(UBI).inc()
        response, status = error_response(
            503, "UBI log unavailable", f"the {what} were not recorded; send them again later", reason=UBI_WRITE_FAILED
        )
        return response, status, {"Retry-After": str(UBI_RETRY_AFTER_S)}
    return None


def clicked_product(event: UbiEvent) -> str | None:
    """The product a click event is about (validation made sure a click names one); None for other events."""
    attributes = event.event_attributes
    if named_action(event.action_name, ("click",)) is None or attributes is None or attributes.object is None:
        return None
    return attributes.object.internal_id or attributes.object.object_id


@api.errorhandler(ValidationError)
def invalid_request(exc: ValidationError):
    fields = [FieldError(field=".".join(str(p) for p in e["loc"]) or "body", message=e["msg"]) for e in exc.errors()]
    return error_response(400, "invalid request", fields=fields)


@api.errorhandler(InvalidBody)
def invalid_body(exc: InvalidBody):
    return error_response(400, "invalid request", fields=[FieldError(field=exc.field, message=exc.reason)])


@api.errorhandler(CostRaised)
def cost_raised(exc: CostRaised):
    return error_response(403, "forbidden", exc.reason, fields=[FieldError(field=exc.field, message=exc.reason)])
