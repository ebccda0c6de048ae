"""The HTTP service: a Flask app factory that gunicorn runs once per worker.

``create_app()`` reads the settings (file named by ``SEARCH_RERANK_SETTINGS``,
then the environment), opens the indexes and warms the models, so each
worker loads them once and a request never pays for it.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from flask import Blueprint, Flask, current_app, jsonify, request
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from werkzeug.exceptions import HTTPException

from .errors import ConfigError
from .filters import Filters
from .indexes import open_pipeline, read_manifest
from .pipeline import SearchPipeline, SearchResult
from .settings import Settings, load_settings

log = logging.getLogger(__name__)
api = Blueprint("api", __name__)


class SearchRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1)
    filters: Filters = Field(default_factory=Filters)
    size: int = Field(default=10, ge=0)
    from_: int = Field(default=0, ge=0, alias="from")
    explain: bool = False


def _pipeline() -> SearchPipeline:
    return current_app.extensions["search_rerank"]


def _bad_request(errors: list[dict[str, Any]]):
    return jsonify({"error": "invalid request", "fields": errors}), 400


def result_json(result: SearchResult, explain: bool) -> dict[str, Any]:
    hits = []
    for hit in result.hits:
        item = {"id": hit.product.id, "score": hit.candidate.score, "long_tail": hit.long_tail,
                "product": hit.product.to_record()}
        if explain:
            item["explanation"] = hit.explanation()
        hits.append(item)
    ranking = result.ranking
    return {
        "query": result.query, "total": result.total, "hits": hits,
        "degraded": ranking.degraded, "skipped": ranking.skipped,
        "timings_ms": {k: round(v, 3) for k, v in ranking.timings_ms.items()},
    }


@api.post("/search")
def search():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return _bad_request([{"field": "body", "message": "expected a JSON object"}])
    try:
        req = SearchRequest.model_validate(body)
    except ValidationError as exc:
        return _bad_request([
            {"field": ".".join(str(p) for p in e["loc"]) or "body", "message": e["msg"]} for e in exc.errors()
        ])
    settings: Settings = current_app.config["SETTINGS"]
    limits = settings.service
    problems = []
    if req.size > limits.max_size:
        problems.append({"field": "size", "message": f"must be <= {limits.max_size}"})
    if len(req.query) > limits.max_query_length:
        problems.append({"field": "query", "message": f"must be at most {limits.max_query_length} characters"})
    if problems:
        return _bad_request(problems)
    filters = None if req.filters.is_empty else req.filters
    result = _pipeline().run(req.query, filters, size=req.size, offset=req.from_)
    return jsonify(result_json(result, req.explain))


@api.get("/health")
def health():
    pipeline = _pipeline()
    settings: Settings = current_app.config["SETTINGS"]
    return jsonify({
        "status": "ok",
        "products": pipeline.store.count(),
        "legs": sorted(pipeline.legs),
        "reranker": settings.rerank.model if pipeline.reranker is not None else None,
        "index": str(settings.index_dir),
        "built": read_manifest(settings).get("built"),
    })


def _json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        return jsonify({"error": exc.name, "message": exc.description}), exc.code

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        log.exception("unhandled error")
        return jsonify({"error": "internal error", "message": type(exc).__name__}), 500


def create_app(settings: Settings | None = None, pipeline: SearchPipeline | None = None) -> Flask:
    """Build the app; tests pass their own settings or pipeline."""
    if settings is None:
        settings = load_settings(os.environ.get("SEARCH_RERANK_SETTINGS"))
    app = Flask(__name__)
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = 64 * 1024
    if pipeline is None:
        try:
            pipeline = open_pipeline(settings)
        except ConfigError as exc:
            raise SystemExit(f"search-rerank: cannot start: {exc}") from exc
    pipeline.warm_up()
    app.extensions["search_rerank"] = pipeline
    app.register_blueprint(api)
    _json_errors(app)
    return app
