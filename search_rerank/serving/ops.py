"""Operations: liveness, readiness, reload, metrics and the OpenAPI document."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from flask import Blueprint, Flask, Response, current_app, jsonify

from .. import __version__
from ..core.breaker import DeadlineExceeded, Guards
from ..core.errors import CircuitOpenError, ClusterUnavailable
from ..core.pipeline import SearchPipeline
from ..core.reasons import reason_code
from ..core.settings import Settings
from ..indexing.indexes import open_pipeline, served_manifest
from . import metrics
from .context import admin_refusal, error_response
from .exposure_loop import ExposureLoop
from .openapi import openapi_document
from .reload_broadcast import ReloadBroadcast, record_served

log = logging.getLogger(__name__)
ops = Blueprint("ops", __name__)


@ops.get("/health")
def health():
    """Liveness only: touching the indexes here would let a slow disk get a healthy worker restarted."""
    return jsonify({"status": "alive"})


@ops.get("/ready")
def ready():
    """Readiness: every index opens and holds the catalog, so a load balancer may send traffic.

    The check is a recent one, run off this thread (see readiness); each breaker's state comes with it.
    """
    body, status = current_app.extensions["readiness"].answer()
    guards: Guards | None = current_app.extensions.get("guards")
    if guards is not None:
        body = {**body, "breakers": guards.states()}
    return jsonify(body), status


def check_ready(p: SearchPipeline, settings: Settings) -> tuple[dict[str, Any], int]:
    """What /ready answers for pipeline ``p``: counts every index (a cluster leg through its breaker)."""
    try:
        counts = {"products": p.store.count(), **{name: leg.count() for name, leg in p.legs.items()}}
        built = served_manifest(p).get("built")
    except (CircuitOpenError, DeadlineExceeded) as exc:
        return {"status": "not ready", "reason": reason_code(exc), "dependency": exc.dependency}, 503
    except Exception as exc:  # whatever is broken, the answer is "not ready", with a reason code; the detail is logged
        reason = reason_code(exc)
        log.warning("not ready (%s): %s: %s", reason, type(exc).__name__, exc)
        return {"status": "not ready", "reason": reason}, 503
    if not counts["products"] or any(n != counts["products"] for n in counts.values()):
        return {"status": "not ready", "reason": "indexes are empty or disagree", "counts": counts}, 503
    # Anyone who can reach the service reads this: the models by name, the index by when it was built, never a
    # path on the server (a model may be configured as a directory; POST /admin/reload says where the index is).
    return {
        "status": "ready",
        "counts": counts,
        "legs": sorted(p.legs),
        "built": built,
        "reranker": Path(settings.rerank.model).name if p.reranker is not None and settings.rerank.model else None,
        "ranker": Path(settings.ltr.model).name if p.ranker is not None and settings.ltr.model else None,
    }, 200


@ops.post("/admin/reload")
def reload():
    """Reopen the indexes and models, e.g. after a rebuild, without dropping a request.

    This worker reloads now and answers with the outcome; under gunicorn the
    other workers follow within a second (see reload_broadcast).
    """
    refused = admin_refusal("reload", "/admin/reload")
    if refused is not None:
        return refused
    try:
        reloaded = reopen(current_app)
    except Exception as exc:  # whatever broke, the indexes already loaded keep serving
        log.exception("reload failed; still serving the previous indexes")
        # The exception's text can hold paths and the cluster's address, its class the code's insides: they stay in
        # the log (above), and the answer says its reason code (cluster_unavailable, error).
        return error_response(
            500, "reload failed", f"{reason_code(exc)}; still serving the previous indexes; the service log says why"
        )
    broadcast: ReloadBroadcast | None = current_app.extensions.get("reload_broadcast")
    if broadcast is not None:
        broadcast.announce()
    return jsonify({"status": "reloaded", "pid": os.getpid(), "other_workers": broadcast is not None, **reloaded})


@ops.get("/admin/exposure-control")
def exposure_control():
    """The exposure controller's state: this worker's strength, the last decision shared by the deciding worker,
    and the settings that steer it; with the controller off, the fixed strength from the settings."""
    refused = admin_refusal("exposure control state", "/admin/exposure-control")
    if refused is not None:
        return refused
    loop: ExposureLoop | None = current_app.extensions.get("exposure_control")
    if loop is None:
        settings: Settings = current_app.config["SETTINGS"]
        return jsonify({"enabled": False, "strength": settings.longtail.strength, "pid": os.getpid()})
    return jsonify(loop.status())


def opened(
    settings: Settings,
    guards: Guards | None,
    root: Path | None = None,
    unanswered: Callable[[str, ClusterUnavailable], None] | None = None,
) -> SearchPipeline:
    """The pipeline of the current version (the version at ``root``, where given), warmed up (``unanswered``:
    see :meth:`SearchPipeline.warm_up`): closed again if it fails to warm up (the embedded index refuses one built
    by another schema version)."""
    pipeline = open_pipeline(settings, guards, root)
    try:
        pipeline.warm_up(unanswered)
    except BaseException:
        pipeline.close()
        raise
    return pipeline


def reopen(app: Flask) -> dict[str, Any]:
    """Open the indexes and models the settings name, then serve them; raises, serving on, if they do not open."""
    settings: Settings = app.config["SETTINGS"]
    pipeline = opened(settings, app.extensions.get("guards"))
    try:
        built = served_manifest(pipeline).get("built")
    except BaseException:
        pipeline.close()
        raise
    app.extensions["search_rerank"].swap(pipeline)
    if app.config.get("RELOAD_FILE") is not None:
        record_served(app.config["RELOAD_FILE"], pipeline.store.path.parent)
    log.info("reloaded the indexes from %s", settings.index_dir)
    return {"index": str(settings.index_dir), "built": built, "products": pipeline.store.count()}


@ops.get("/metrics")
def prometheus():
    body, content_type = metrics.exposition(current_app.config["METRICS_MULTIPROC_DIR"])
    return Response(body, content_type=content_type)


@ops.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(__version__))
