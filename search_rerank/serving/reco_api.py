"""Recommendations beside search: ``GET /products/{id}/similar``, ``GET /products/{id}/also``, and the fallback
block that a search with no or few relevant results carries.

Similar items are the product's nearest neighbours in the dense index, found
from the embedding indexing already stored for it (no encoding per request),
under the same filters as a search. Also-clicked items come from a
co-interest table mined from the UBI log (data.co_interest) on a thread of
its own: first when the blueprint is registered (until it is in, a product
has no history), then again once the table is older than ``reco.refresh_s``,
started by the request that finds it stale, while every request keeps using
the old one. A product with no history gets its similar items,
flagged ``source: similar``, so a caller always has something to show.

A deployment without a FAISS dense leg (lexical only, or kNN in the cluster)
has no stored vectors to start from: similar items are then empty and
flagged in ``degraded``, never an error.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial
from typing import Literal

from flask import Blueprint, Flask, current_app, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import BaseModel, Field, ValidationError

from ..core.candidate import Candidate
from ..core.filters import Filters
from ..core.pipeline import SearchPipeline, SearchResult
from ..core.retrieval import DENSE, searches_around
from ..core.settings import Settings
from ..data.co_interest import CoInterest, mine_ubi
from .api_models import FallbackBlock, FieldError, HitOut
from .context import current_pipeline, current_settings, error_response, undecodable_param
from .live_pipeline import LivePipeline
from .refreshed import Refreshed

log = logging.getLogger(__name__)
reco = Blueprint("reco", __name__)

Source = Literal["similar", "also"]
Reason = Literal["no_results", "few_results", "low_similarity"]
SIMILAR: Source = "similar"
ALSO: Source = "also"
NO_VECTORS = "no dense index with stored vectors: similar items need the FAISS dense leg"
ATTRIBUTE_PREFIX = "attr."


class RecoResponse(BaseModel):
    id: str = Field(description="the product the recommendations are for")
    source: Source = Field(
        description="similar: nearest neighbours by embedding; also: co-clicked or co-bought in the UBI log"
    )
    hits: list[HitOut]
    degraded: dict[str, str] = Field(default_factory=dict, description="what could not be used, and why")


# ------------------------------------------------------------ similar items


def similar(
    pipeline: SearchPipeline, product_id: str, k: int, filters: Filters | None = None
) -> tuple[list[Candidate], str | None]:
    """The product's ``k`` nearest neighbours under ``filters``, itself excluded; or [] and why not."""
    leg = pipeline.legs.get(DENSE)
    if not searches_around(leg):
        return [], NO_VECTORS
    around = leg.search_around(product_id, k + 1, filters)  # type: ignore[union-attr]
    if around is None:
        return [], f"product {product_id} is not in the dense index"
    hits = [c for c in around if c.product_id != product_id][:k]
    return [Candidate(c.product_id, c.score, frozenset({SIMILAR}), {"similarity": c.score}) for c in hits], None


def filters_from_args() -> Filters | None:
    """The search filters from query parameters: ``category``, ``brand`` (repeatable), ``price_min``,
    ``price_max``, ``attr.<key>`` (repeatable); raises ValidationError naming the field."""
    args = request.args
    raw: dict[str, object] = {
        "attributes": {
            key[len(ATTRIBUTE_PREFIX) :]: tuple(args.getlist(key)) for key in args if key.startswith(ATTRIBUTE_PREFIX)
        }
    }
    if "category" in args:
        raw["category"] = args["category"]
    if "brand" in args:
        raw["brand"] = tuple(args.getlist("brand"))
    for bound in ("price_min", "price_max"):
        if bound in args:
            raw[bound] = args[bound]
    filters = Filters.model_validate(raw)
    return None if filters.is_empty else filters


class InvalidQuery(Exception):
    """A query parameter the route does not take, or a size over the deployment's limit; ``field`` names it."""

    def __init__(self, field: str, message: str):
        self.field = field
        super().__init__(message)


class _Size(BaseModel):
    size: int = Field(ge=1)


def size_from_args(settings: Settings) -> int:
    size = _Size.model_validate({"size": request.args.get("size", settings.reco.size)}).size
    if size > settings.service.max_size:
        raise InvalidQuery("size", f"must be <= {settings.service.max_size}")
    return size


KNOWN_ARGS = frozenset({"size", "category", "brand", "price_min", "price_max"})


def _checked_args() -> tuple[int, Filters | None]:
    undecodable = undecodable_param()
    if undecodable is not None:
        raise InvalidQuery(undecodable, "the query parameter is not UTF-8 once percent-decoded")
    unknown = [k for k in request.args if k not in KNOWN_ARGS and not k.startswith(ATTRIBUTE_PREFIX)]
    if unknown:
        raise InvalidQuery(unknown[0], f"unknown query parameter; known: {sorted(KNOWN_ARGS)} and attr.<key>")
    return size_from_args(current_settings()), filters_from_args()


def _response(product_id: str, source: Source, candidates: list[Candidate], degraded: dict[str, str]):
    hits = current_pipeline().hits(candidates, current_settings())
    body = RecoResponse(
        id=product_id, source=source, hits=[HitOut.of(h, explain=False) for h in hits], degraded=degraded
    )
    return jsonify(body.model_dump(mode="json"))


def _known(product_id: str) -> bool:
    return product_id in current_pipeline().store.get([product_id])


@reco.get("/products/<path:product_id>/similar")
def similar_items(product_id: str):
    size, filters = _checked_args()
    if not _known(product_id):
        return error_response(404, "not found", f"no product with id {product_id!r}")
    candidates, why_not = similar(current_pipeline(), product_id, size, filters)
    return _response(product_id, SIMILAR, candidates, {} if why_not is None else {SIMILAR: why_not})


@reco.get("/products/<path:product_id>/also")
def also_items(product_id: str):
    """Co-clicked and co-bought products; the similar ones for a product without history."""
    size, filters = _checked_args()
    if not _known(product_id):
        return error_response(404, "not found", f"no product with id {product_id!r}")
    pipeline = current_pipeline()
    companions = co_interest_table(current_app).also(product_id, pipeline.store.count())
    if companions:
        products = pipeline.store.get([pid for pid, _ in companions])
        admitted = [
            Candidate(pid, float(n), frozenset({ALSO}), {"sessions": float(n)})
            for pid, n in companions
            if pid in products and (filters is None or filters.matches(products[pid]))
        ][:size]
        if admitted:
            return _response(product_id, ALSO, admitted, {})
    candidates, why_not = similar(pipeline, product_id, size, filters)
    return _response(product_id, SIMILAR, candidates, {} if why_not is None else {SIMILAR: why_not})


@reco.errorhandler(ValidationError)
def invalid_args(exc: ValidationError):
    fields = [FieldError(field=".".join(str(p) for p in e["loc"]) or "query", message=e["msg"]) for e in exc.errors()]
    return error_response(400, "invalid request", fields=fields)


@reco.errorhandler(InvalidQuery)
def invalid_arg(exc: InvalidQuery):
    return error_response(400, "invalid request", fields=[FieldError(field=exc.field, message=str(exc))])


# ------------------------------------------------------------ the also-clicked table


def co_interest_cache(refresh_s: float, mine: Callable[[], CoInterest]) -> Refreshed[CoInterest]:
    """The worker's co-interest table, empty until first mined.

    ``mine`` reads the whole UBI log (every worker's files, up to ``ubi_log_backups`` rotations each), which
    takes seconds to minutes as the log grows: the request that finds the table stale starts it and answers
    from the table it has, as every request does until the new one is in.
    """
    return Refreshed(
        mine,
        refresh_s,
        CoInterest(),
        name="co-interest",
        failed="co-interest: mining the UBI log failed; the previous table stays",
        built=False,
    )


def co_interest_table(app: Flask) -> CoInterest:
    return app.extensions["co_interest"].current()


def catalogue_ids(served: LivePipeline) -> frozenset[str]:
    """The served catalogue's ids, read under a lease, so that a reload does not close the store being read."""
    lease = served.acquire()
    try:
        return lease.pipeline.store.ids()
    finally:
        served.release(lease)


@reco.record_once
def _build_table(state: BlueprintSetupState) -> None:
    settings: Settings = state.app.config["SETTINGS"]
    path = settings.service.ubi_log_path
    served: LivePipeline = state.app.extensions["search_rerank"]
    reco_settings = settings.reco
    mine: Callable[[], CoInterest] = CoInterest
    if path is not None:
        bounds = (reco_settings.min_support, reco_settings.max_basket, reco_settings.max_pairs)
        mine = partial(mine_ubi, path, *bounds, partial(catalogue_ids, served))
    cache = co_interest_cache(reco_settings.refresh_s, mine)
    cache.current()  # mined on its thread: a worker's start does not wait for the log, however large it has grown
    state.app.extensions["co_interest"] = cache


# ------------------------------------------------------------ the fallback block of a weak search


def fallback_reason(result: SearchResult, settings: Settings) -> Reason | None:
    """Why the search's own results are too weak to stand alone, or None when they are not."""
    reco_settings = settings.reco
    if result.total == 0:
        return "no_results" if reco_settings.fallback_min_hits > 0 else None
    if result.total < reco_settings.fallback_min_hits:
        return "few_results"
    if reco_settings.fallback_min_similarity:
        best = max((h.candidate.features.get("dense_score", -1.0) for h in result.hits), default=-1.0)
        if best < reco_settings.fallback_min_similarity:
            return "low_similarity"
    return None


def fallback_block(pipeline: SearchPipeline, result: SearchResult, settings: Settings) -> FallbackBlock | None:
    """Related products for a weak search: the neighbours of its best hit, or with no hit at all, of the query
    text searched without filters (the filters are what emptied it). None when the search stands on its own or
    there is no dense leg to relate by."""
    reason = fallback_reason(result, settings)
    if reason is None:
        return None
    shown = {h.product.id for h in result.hits}
    k = settings.reco.size
    if result.hits:
        candidates, _ = similar(pipeline, result.hits[0].product.id, k + len(shown))
    else:
        leg = None if DENSE in result.degraded else pipeline.legs.get(DENSE)
        try:
            candidates = [] if leg is None or not result.query.strip() else leg.search(result.query, k)
        except Exception:  # the search already answered; a failing extra must not take it down
            candidates = []
    candidates = [c for c in candidates if c.product_id not in shown][:k]
    if not candidates:
        return None
    return FallbackBlock(reason=reason, hits=[HitOut.of(h, explain=False) for h in pipeline.hits(candidates, settings)])
