"""Real HTTP on loopback: the app for clients other than Flask's test client (a browser, schemathesis),
the app under gunicorn as ``search-rerank serve`` runs it, and stand-in servers (a slow hop, a
recording cluster) written as request handlers."""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
import urllib3
from werkzeug.serving import make_server


@contextmanager
def served(app) -> Iterator[str]:
    """The app on a free loopback port in a thread; yields its base URL and stops it after."""
    with _running(make_server("127.0.0.1", 0, app, threaded=True)) as url:
        yield url


_FRAMING = {"content-length", "transfer-encoding", "connection", "keep-alive", "content-encoding"}


@contextmanager
def hop(cluster_url: str, answer: Callable[[str, bytes], tuple[int, bytes] | None]) -> Iterator[str]:
    """An HTTP hop in front of a cluster: a request for which ``answer(path, body)`` gives a status and a JSON body
    is answered so, any other is relayed to ``cluster_url``; yields the hop's URL."""

    class Hop(BaseHTTPRequestHandler):
        def relay(self):
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            own = answer(self.path, body)
            if own is not None:
                (answer_status, data), kept = own, {"Content-Type": "application/json"}
            else:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                relayed = urllib3.request(
                    self.command, cluster_url + self.path, body=body or None, headers=headers, retries=False
                )
                answer_status, data = relayed.status, relayed.data
                # the cluster's own headers (the Elasticsearch client checks X-Elastic-Product), not its framing
                kept = {k: v for k, v in relayed.headers.items() if k.lower() not in _FRAMING}
                if not any(k.lower() == "content-type" for k in kept):
                    kept["Content-Type"] = "application/json"
            self.send_response(answer_status)
            for name, value in kept.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = relay

        def log_message(self, *args):
            pass

    with handled(Hop) as url:
        yield url


@contextmanager
def handled(handler: type[BaseHTTPRequestHandler]) -> Iterator[str]:
    """A threading HTTP server for ``handler`` on a free loopback port; yields its base URL and stops it after."""
    with _running(ThreadingHTTPServer(("127.0.0.1", 0), handler)) as url:
        yield url


@contextmanager
def _running(server) -> Iterator[str]:
    # shutdown() waits for serve_forever's next poll: half a second by default, paid by every test that serves
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(10)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def every_worker_up(log_path: Path) -> bool:
    """Every worker gunicorn booted is serving: /ready answers from whichever worker is up first, and a test
    that reaches the others (an admin reload, per-worker files) must not start while one is still loading. A
    worker logs that it listens once its app has started."""
    lines = log_path.read_text().splitlines()
    booted = sum("Booting worker with pid" in line for line in lines)
    return booted > 0 and sum("ASGI server listening" in line for line in lines) >= booted


def index_env(settings: Any) -> dict[str, str]:
    """The variables that serve ``settings``' embedded index (built with the tiny model, on the CPU) from a gunicorn
    started by :func:`gunicorn_served`; a test adds its own service settings."""
    return {
        "SEARCH_RERANK_INDEX_DIR": str(settings.index_dir),
        "SEARCH_RERANK_DENSE__MODEL": settings.dense.model,
        "SEARCH_RERANK_DENSE__DEVICE": "cpu",
    }


@contextmanager
def gunicorn_served(
    env: Mapping[str, str],
    root: Path,
    ready_within_s: float = 120,
    open_files_soft_limit: int | None = None,
) -> Iterator[dict[str, Any]]:
    """The app under gunicorn with the settings in ``env`` (``SEARCH_RERANK_*``), on a free port, once /ready
    says so; yields its ``url``, ``log`` (gunicorn's output), ``metrics_dir`` and master ``pid``.
    ``open_files_soft_limit``: gunicorn starts with this soft RLIMIT_NOFILE, as on a machine whose default it is."""

    def soft_limit() -> None:
        if open_files_soft_limit is not None:
            _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files_soft_limit, hard))

    port = free_port()
    full_env = {
        **os.environ,
        "SEARCH_RERANK_SERVICE__PORT": str(port),
        "PROMETHEUS_MULTIPROC_DIR": str(root / "metrics"),
        "HF_HUB_OFFLINE": "1",
        **env,
    }
    log_path = root / "server.log"
    log = log_path.open("w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            "python:search_rerank.serving.gunicorn_conf",
            "search_rerank.serving:create_app()",
        ],
        env=full_env,
        preexec_fn=soft_limit,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + ready_within_s
    while True:
        if proc.poll() is not None:
            pytest.fail(f"gunicorn exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            if requests.get(f"{url}/ready", timeout=2).status_code == 200 and every_worker_up(log_path):
                break
        except requests.RequestException:  # refused, or accepted before a worker is up
            pass
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail(f"gunicorn not ready in time:\n{log_path.read_text()}")
        time.sleep(0.5)
    try:
        yield {"url": url, "log": log_path, "metrics_dir": root / "metrics", "pid": proc.pid}
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
