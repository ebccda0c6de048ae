"""The HTTP service: a Flask app factory that gunicorn runs once per worker.

``create_app()`` reads the settings (file named by ``SEARCH_RERANK_SETTINGS``,
then the environment), opens the indexes and warms the models, so each
worker loads them once and a request never pays for it. The routes live in
one blueprint module each: search_api (the product's API), es_api (the
Elasticsearch-compatible one and the passthrough), ops, web_page.

Every answer is JSON, errors included: a search box in a shop's front end
parses whatever comes back, and an HTML error page breaks it worse than an
error does.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import weakref
from pathlib import Path

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from ..core.breaker import AGGREGATIONS, PASSTHROUGH, Guards
from ..core.errors import ClusterUnavailable, ConfigError
from ..core.pipeline import SearchPipeline
from ..core.reasons import reason_code
from ..core.settings import Settings, load_settings
from . import interleave, metrics
from .aggregations import Aggregator
from .api_models import FieldError
from .completion import title_indexes
from .context import described, endpoint_name, error_headers, error_response, live
from .cors import allow_cross_origin
from .es_api import es, indexes
from .exhaustion import exhausted, out_of_resources
from .exposure_loop import ExposureLoop
from .identity import IDENTITY_KEYS, identity_keys
from .json_answers import FiniteJSONProvider
from .live_pipeline import LivePipeline
from .logs import logged_path, request_id
from .name_value_facets import attribute_names
from .ops import check_ready, opened, ops, reopen
from .panics import PanicsAnswered
from .passthrough import passthrough_for
from .profiles_api import open_store, profiles
from .readiness import Readiness
from .reco_api import reco
from .reload_broadcast import (
    EXPOSURE_FILE_ENV,
    RELOAD_FILE_ENV,
    ReloadBroadcast,
    read_stamp,
    record_served,
    served_by_the_others,
)
from .search_api import api
from .ubi import UbiLog
from .web_page import web

log = logging.getLogger(__name__)

APP_LOAD_ERROR = 4
"""The exit status gunicorn's master reads as "App failed to load" and stops on. A worker's app is built in the
worker, and a worker that exits any other way is booted again, so one whose settings or indexes it cannot serve
(a ``SystemExit`` with its reason, status 1) was booted again and again, for good, each loading the models."""


class CannotStart(SystemExit):
    """The app cannot be built from these settings: ``str()`` is the reason, the exit status
    :data:`APP_LOAD_ERROR`. The reason is logged as it is raised, since a process ending with a number
    prints nothing (gunicorn's worker logs only a traceback's exception, and this is none)."""

    def __init__(self, reason: str):
        super().__init__(f"search-rerank: cannot start: {reason}")
        self.code = APP_LOAD_ERROR
        log.critical("%s", self)


access = logging.getLogger("search_rerank.access")


def _json_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException):
        text, field = described(exc)
        fields = [FieldError(field=field, message=text)] if field is not None else None
        return *error_response(exc.code or 500, exc.name, text, fields), error_headers(exc)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception):
        if out_of_resources(exc):
            return exhausted(exc)
        log.exception("unhandled error on %s %s", request.method, request.path)
        metrics.ERRORS.labels(endpoint_name()).inc()
        # Not even the exception's class: the log line above, under this request id, has the detail.
        return error_response(500, "internal error", f"request id {g.get('request_id')}")


def _request_lifecycle(app: Flask) -> None:
    @app.before_request
    def start():
        g.request_id = request_id(request.headers.get("X-Request-Id"))
        g.started = time.perf_counter()

    @app.after_request
    def finish(response: Response) -> Response:
        seconds = time.perf_counter() - g.get("started", time.perf_counter())
        endpoint = endpoint_name()
        metrics.REQUESTS.labels(endpoint, str(response.status_code)).inc()
        metrics.REQUEST_SECONDS.labels(endpoint).observe(seconds)
        response.headers["X-Request-Id"] = g.get("request_id") or request_id(None)
        path = logged_path(request.path)
        access.info(
            "%s %s %s",
            request.method,
            path,
            response.status_code,
            extra={
                "fields": {
                    "method": request.method,
                    "path": path,
                    "endpoint": endpoint,
                    "status": response.status_code,
                    "duration_ms": round(seconds * 1000, 3),
                }
            },
        )
        return response

    @app.teardown_request
    def give_back_pipeline(exc: BaseException | None) -> None:
        lease = g.pop("pipeline_lease", None)
        if lease is not None:
            live().release(lease)


def check_written_files(settings: Settings) -> None:
    """Refuse at start a file setting the service writes to that cannot be written: a folder named as the file, or
    (for the UBI log and the exposure controller's state, which no retry recovers) a file where a folder of its
    path should be. Each started and then failed at its use: the UBI log answered every event 503 and logged a
    traceback per search, a folder as the profile store served without personalisation for good, the exposure
    controller's state stopped the worker with a traceback naming no setting. Nothing is made here: the folders
    are made when the files are first written. A profile store under a file is retried, as one that does not open
    for any other reason (see profiles_api.open_store)."""
    personal = settings.personalisation
    control = settings.exposure_control
    files = {
        "service.ubi_log_path": (settings.service.ubi_log_path, True),
        "personalisation.store_path": (
            personal.store_path if personal.enabled and personal.store == "sqlite" else None,
            False,
        ),
        "exposure_control.state_path": (control.state_path if control.enabled else None, True),
    }
    for name, (path, its_folders) in files.items():
        if path is None:
            continue
        if path.is_dir():
            raise ConfigError(f"{name}: {path} is a folder: name a file (in it, or elsewhere)")
        existing = next((folder for folder in path.parents if folder.exists()), None)
        if its_folders and existing is not None and not existing.is_dir():
            raise ConfigError(f"{name}: {path} is under {existing}, which is a file, not a folder")


def _exposure_control(app: Flask, settings: Settings, state_file: str | None) -> None:
    """Start the exposure controller's loop when the settings turn it on (see exposure_loop).

    Its strength replaces ``longtail.strength`` in the settings every route reads, so searches, the
    Elasticsearch-compatible API and the page all use it (a request's own override still wins).
    """
    control = settings.exposure_control
    if not control.enabled:
        metrics.LONGTAIL_STRENGTH.set(settings.longtail.strength)
        return
    if not settings.longtail.enabled or settings.longtail.method != "boost":
        raise CannotStart(
            "exposure_control steers longtail.strength, which only the enabled "
            f"'boost' method uses (longtail.enabled={settings.longtail.enabled}, "
            f"longtail.method={settings.longtail.method!r})"
        )
    if control.state_path is not None:
        state_path = control.state_path
    elif state_file is not None:
        state_path = Path(state_file)
    else:  # one process (no gunicorn master to name a file): a file of its own, gone with the app
        made = tempfile.mkdtemp(prefix="search-rerank-exposure-")
        weakref.finalize(app, shutil.rmtree, made, True)
        state_path = Path(made) / "state.json"

    def serve_strength(strength: float) -> None:
        app.config["SETTINGS"] = settings.override(longtail={"strength": strength})

    multiprocess_dir = app.config["METRICS_MULTIPROC_DIR"]
    loop = ExposureLoop(settings, state_path, serve_strength, lambda: metrics.exposure_totals(multiprocess_dir))
    loop.start()
    app.extensions["exposure_control"] = loop


def started_without(leg: str, exc: ClusterUnavailable) -> None:
    """A start whose cluster does not answer yet (the service and the cluster started together, the cluster
    restarting): the worker starts and serves without that leg, each search flagging it and its breaker keeping it
    out until it answers, and ``/ready`` answers 503 meanwhile. It exited with a traceback, and gunicorn stopped."""
    log.critical(
        "the %s leg's cluster does not answer (%s): serving without it until it does; not ready meanwhile",
        leg,
        reason_code(exc),
    )


def _served_pipeline(settings: Settings, guards: Guards | None, reload_file: Path | None) -> SearchPipeline:
    """The current version's pipeline; for a worker of a running server that cannot open it, the version the
    other workers serve (see :func:`.reload_broadcast.served_by_the_others`), said in the log."""
    try:
        pipeline = opened(settings, guards, unanswered=started_without)
    except ConfigError as exc:
        served = served_by_the_others(reload_file) if reload_file is not None else None
        if served is None or not served.is_dir():
            raise CannotStart(str(exc)) from exc
        log.critical("cannot serve the current index version (%s); serving %s, as the other workers do", exc, served)
        try:
            pipeline = opened(settings, guards, served, started_without)
        except ConfigError as again:
            raise CannotStart(str(exc)) from again
    if reload_file is not None:
        record_served(reload_file, pipeline.store.path.parent)
    return pipeline


def create_app(settings: Settings | None = None, pipeline: SearchPipeline | None = None) -> Flask:
    """Build the app; tests pass their own settings or pipeline."""
    if settings is None:
        try:
            settings = load_settings(os.environ.get("SEARCH_RERANK_SETTINGS"))
        except ConfigError as exc:
            raise CannotStart(str(exc)) from exc
    app = PanicsAnswered(__name__)
    app.json = FiniteJSONProvider(app)
    try:
        app.config[IDENTITY_KEYS] = identity_keys(os.environ)
    except ValueError as exc:
        raise CannotStart(str(exc)) from exc
    # Werkzeug answers a path with a doubled slash (or a missing trailing one) with an HTML redirect built from the
    # Host header, which a browser follows with the request's body (a shopper's events) to whatever host was
    # named, and which told an HTTP/1.0 client the worker's own address: such a path matches no route instead, a
    # JSON 404.
    app.url_map.merge_slashes = False
    app.url_map.strict_slashes = False
    try:
        check_written_files(settings)
    except ConfigError as exc:
        raise CannotStart(str(exc)) from exc
    app.config["SETTINGS"] = settings
    app.config["MAX_CONTENT_LENGTH"] = settings.service.max_body_bytes
    # Tests that pass their own pipeline choose its legs themselves; the breakers still guard the rest.
    guards = Guards.from_settings(settings, metrics.BreakerMetrics()) if settings.breaker.enabled else None
    app.extensions["guards"] = guards
    reload_file = Path(os.environ[RELOAD_FILE_ENV]) if os.environ.get(RELOAD_FILE_ENV) else None
    app.config["RELOAD_FILE"] = reload_file
    stamp_before_load = read_stamp(reload_file) if reload_file else None  # see ReloadBroadcast.since
    if pipeline is None:
        pipeline = _served_pipeline(settings, guards, reload_file)
    else:
        try:
            pipeline.warm_up(started_without)
        except ConfigError as exc:
            raise CannotStart(str(exc)) from exc
    app.extensions["search_rerank"] = LivePipeline(pipeline, settings.service.reload_grace_s)
    app.extensions["readiness"] = Readiness(
        app.extensions["search_rerank"],
        lambda p: check_ready(p, settings),
        settings.service.ready_timeout_s,
        settings.service.ready_cache_s,
    )
    try:
        app.extensions["interleave"] = interleave.InterleaveSetup.from_settings(settings)
    except ConfigError as exc:
        raise CannotStart(f"service.interleave_with: {exc}") from exc
    # Whitespace is no part of a token (a secret mounted from a file ends in a newline, and a caller's header is
    # read stripped); a blank one is none, so the admin routes stay off rather than wait for a token nobody can send.
    app.config["ADMIN_TOKEN"] = os.environ.get("SEARCH_RERANK_ADMIN_TOKEN", "").strip() or None
    app.config["METRICS_MULTIPROC_DIR"] = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None
    _exposure_control(app, settings, os.environ.get(EXPOSURE_FILE_ENV))
    if reload_file:
        broadcast = ReloadBroadcast.since(stamp_before_load, reload_file, lambda: reopen(app))
        broadcast.start()
        app.extensions["reload_broadcast"] = broadcast
    ubi_log = UbiLog.configured(settings.service)
    if ubi_log is not None:
        app.extensions["ubi_log"] = ubi_log
    app.register_blueprint(api)
    app.register_blueprint(es)
    app.register_blueprint(ops)
    app.register_blueprint(web)
    app.register_blueprint(reco)
    app.register_blueprint(profiles)
    open_store(app, settings)
    breakers = guards.breakers if guards is not None else {}
    app.extensions["aggregator"] = Aggregator(breaker=breakers.get(AGGREGATIONS))
    app.extensions["titles"] = title_indexes()
    app.extensions["attribute_names"] = attribute_names()
    if (bridge := passthrough_for(settings, breakers.get(PASSTHROUGH))) is not None:
        app.extensions["passthrough"] = bridge
    app.register_blueprint(indexes)
    _json_errors(app)
    _request_lifecycle(app)
    allow_cross_origin(app, settings.service)
    return app
