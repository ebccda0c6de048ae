"""gunicorn settings, taken from the same validated settings as everything else.

Run: ``gunicorn -c python:search_rerank.serving.gunicorn_conf 'search_rerank.serving:create_app()'``
(``search-rerank serve`` does this; the app may be left out, see ``wsgi_app``).
No preload: each worker opens the indexes and models itself, after the fork,
so no torch or FAISS state is shared across processes.

Workers: gunicorn's ``asgi`` (asyncio) worker class; once a worker has loaded
the Flask app, ``post_worker_init`` puts ``search_rerank.serving.asgi_bridge``
in front of it, which reads each whole request in the event loop before a
thread (``service.threads`` per worker) runs the app. Slow
clients (headers or a body a byte at a time) then cost a coroutine, not a
thread, so a few of them cannot starve ``/health`` and ``/search`` without a
proxy in front, as they did with the threaded (gthread) worker, whose threads
read requests synchronously and whose ``timeout`` does not bound slow reads.
The measurements behind this choice are in the bridge's docstring. Behind
nginx (docker-compose.yml, docker/nginx.conf) the proxy buffers too.

Metrics: every worker is a process with its own counters, so prometheus_client
must write them to files in ``PROMETHEUS_MULTIPROC_DIR`` for ``/metrics`` to
sum them. The variable is set here, in the master, before any worker imports
prometheus_client (a fresh temporary directory unless the environment names
one); files left by an earlier run are removed at start, since they would be
summed in, and a dead worker's live-only values are dropped when it exits.

Reloads: ``POST /admin/reload`` reaches one worker, which tells the others
through a file they share, named in ``SEARCH_RERANK_RELOAD_FILE`` here, in the
master, so that every worker of this server (and only of this one) watches it
(see ``search_rerank.serving.reload_broadcast``). The exposure controller's state file
(``SEARCH_RERANK_EXPOSURE_FILE``, unless ``exposure_control.state_path`` names one) is named here the
same way, for the same reason (see ``search_rerank.serving.exposure_loop``).

Connections: gunicorn's asgi worker keeps ``worker_connections`` but does not enforce it (27.0), so it is not
set here. What bounds a worker's connections is its open-file limit, which the master raises from the soft to
the hard limit before the workers start (see ``raise_open_files_limit``), and how long each may stay idle: 10 s
for a connection's first request headers (protocol_errors), ``keepalive`` for a later one's, 10 s for a body
(asgi_bridge), 30 s without taking any of an answer (protocol_errors).

Logs: JSON lines on stderr, gunicorn's own included, with the request id (see
``search_rerank.serving.logs``); the app writes one line per request itself, so
gunicorn's access log is off.
"""

import json
import os
import resource
import shutil
import tempfile
from pathlib import Path

from search_rerank.core.settings import load_settings
from search_rerank.serving.logs import logging_config
from search_rerank.serving.reload_broadcast import EXPOSURE_FILE_ENV, RELOAD_FILE_ENV

_service = load_settings(os.environ.get("SEARCH_RERANK_SETTINGS")).service
MADE_PREFIX = "search-rerank-"
MADE_ENV = "SEARCH_RERANK_MADE_DIRS"
"""The directories made here for this run (those the environment did not name), removed when gunicorn exits: kept
in the environment, since gunicorn reads a config file again when it reloads (HUP), and the names made before."""


def _shared_path(variable: str, prefix: str, name: str | None = None) -> Path:
    """The path the environment names in ``variable`` for what the master and its workers share, else a new
    directory (``name`` in it), named in the environment for the workers to find."""
    if variable not in os.environ:
        made = tempfile.mkdtemp(prefix=prefix)
        os.environ[MADE_ENV] = json.dumps([*_made(), made])
        os.environ[variable] = str(Path(made) / name if name else made)
    return Path(os.environ[variable])


def _made() -> list[str]:
    """The directories :data:`MADE_ENV` names that this config makes: in the temporary directory, named by one of
    its prefixes. Another value (set by hand, inherited) names nothing to remove."""
    try:
        named = json.loads(os.environ.get(MADE_ENV) or "[]")
    except ValueError:
        return []
    home = Path(tempfile.gettempdir()).resolve()
    return [
        made
        for made in (named if isinstance(named, list) else [])
        if isinstance(made, str)
        and Path(made).is_absolute()
        and Path(made).parent.resolve() == home
        and Path(made).name.startswith(MADE_PREFIX)
    ]


_metrics_dir = _shared_path("PROMETHEUS_MULTIPROC_DIR", f"{MADE_PREFIX}metrics-")
_shared_path(RELOAD_FILE_ENV, f"{MADE_PREFIX}reload-", "generation")
_shared_path(EXPOSURE_FILE_ENV, f"{MADE_PREFIX}exposure-", "state.json")

bind = _service.address
workers = _service.workers
worker_class = "asgi"
wsgi_app = "search_rerank.serving:create_app()"
timeout = _service.timeout_s
max_requests = _service.max_requests
max_requests_jitter = _service.max_requests_jitter
graceful_timeout = 30
keepalive = 5
preload_app = False
# gunicorn 25+ opens a control socket at one path per user ($XDG_RUNTIME_DIR or ~/.gunicorn/gunicorn.ctl), so a
# second server on the host (a blue/green switch, a staging copy) took it over, and `gunicornc` then resized or
# stopped the other one. The service is steered by its own endpoints (/admin/reload) and signals; none is opened.
control_socket_disable = True
accesslog = None
errorlog = "-"
loglevel = os.environ.get("SEARCH_RERANK_LOG_LEVEL", "info")
# gunicorn merges this over its own defaults key by key, so its loggers are named here too.
_logging = logging_config(loglevel)
logconfig_dict = {
    **_logging,
    "loggers": {
        **_logging["loggers"],
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["stderr"], "propagate": False},
        "gunicorn.access": {"handlers": [], "propagate": False},
    },
}


def on_starting(server) -> None:
    raise_open_files_limit(server.log)
    stop_past_workers_that_failed_too(server)
    _metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in _metrics_dir.glob("*.db"):
        stale.unlink()


def on_exit(server) -> None:
    """Remove the directories made for this run: each start would otherwise leave three in the temporary
    directory."""
    for made in _made():
        shutil.rmtree(made, ignore_errors=True)


def raise_open_files_limit(log) -> None:
    """The soft RLIMIT_NOFILE up to the hard one, in the master, so every worker inherits it. Each connection
    (slow ones and idle keep-alives included) holds a descriptor, as does every index file; at the soft limit many
    machines and container runtimes give a process (1,024, under a hard limit of tens of thousands or more) a worker
    stops accepting connections, ``/health`` included, with memory and CPU to spare. The hard limit is the one the
    operator set (``ulimit -Hn``, systemd's ``LimitNOFILE``, compose's ``ulimits``)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == hard:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    except (ValueError, OSError) as exc:  # an unlimited hard limit, which Linux caps at fs.nr_open
        log.warning("open-file soft limit left at %d (hard limit %s): %s", soft, hard, exc)
        return
    log.info("raised the open-file soft limit from %d to the hard limit, %d", soft, hard)


def stop_past_workers_that_failed_too(server) -> None:
    """Let the master stop every worker when more than one could not load the app, and exit with the reason.

    A worker whose app cannot load (a missing file in the settings, an index that will not open) exits with
    gunicorn's APP_LOAD_ERROR, and the master, reaping it, raises HaltServer to stop the others and exit with that
    status. Every worker loads the same app the same way, so the others often fail too, while the master stops
    them; its ``stop`` reaps them with the same ``reap_workers``, which raises HaltServer again (27.0, still so in
    its ``main``), out of ``halt``: the master then exited 1 with a traceback instead of 4 with "App failed to load",
    skipping ``on_exit``, about one start in four with two workers. While stopping, such a worker is logged and
    reaping goes on (each raise has already taken its worker off the list), so the first reason stands."""
    from gunicorn.errors import HaltServer

    reap, stop = server.reap_workers, server.stop
    stopping = False

    def stop_all(graceful: bool = True) -> None:
        nonlocal stopping
        stopping = True
        stop(graceful)

    def reap_all() -> None:
        while True:
            try:
                return reap()
            except HaltServer as failed:
                if not stopping:
                    raise
                server.log.error("a worker exited while the server stopped: %s", failed.reason)

    server.stop, server.reap_workers = stop_all, reap_all


def post_worker_init(worker) -> None:
    """The asgi worker serves what it loaded as ``worker.asgi`` (here the Flask app): the bridge goes in front.
    Another worker class named on the command line (``-k gthread``) serves the Flask app as it is.
    The worker's connections answer gunicorn's own refusals (400, 414, 431) in JSON too (see protocol_errors)."""
    from gunicorn.workers import gasgi

    from search_rerank.serving.asgi_bridge import bridged
    from search_rerank.serving.protocol_errors import JsonErrorProtocol

    if isinstance(worker, gasgi.ASGIWorker):
        worker.asgi = bridged(worker.asgi)
        gasgi.ASGIProtocol = JsonErrorProtocol  # type: ignore[misc]


def child_exit(server, worker) -> None:
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)
