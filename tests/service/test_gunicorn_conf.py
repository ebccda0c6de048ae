"""The gunicorn configuration's own housekeeping, read as gunicorn reads it (the module imported in a process of
its own, its hooks called)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from search_rerank.serving.reload_broadcast import EXPOSURE_FILE_ENV, RELOAD_FILE_ENV

SHARED = ("PROMETHEUS_MULTIPROC_DIR", RELOAD_FILE_ENV, EXPOSURE_FILE_ENV, "SEARCH_RERANK_MADE_DIRS")
RUN = """
import os, runpy
import search_rerank.serving.gunicorn_conf as conf
print(len(os.listdir(os.environ["TMPDIR"])))
# A reload (HUP) reads the config again: the hooks then are the second reading's.
again = runpy.run_path(conf.__file__)
again["on_exit"](None)
"""


def configured(env: dict[str, str]) -> int:
    """How many entries the configuration made in the temporary directory; its on_exit hook called after."""
    done = subprocess.run([sys.executable, "-c", RUN], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return int(done.stdout.split()[-1])


def test_the_directories_made_for_a_run_are_removed_when_gunicorn_exits(tmp_path):
    env = {name: value for name, value in os.environ.items() if name not in SHARED}
    assert configured({**env, "TMPDIR": str(tmp_path)}) == 3
    assert list(tmp_path.iterdir()) == []


def test_directories_the_environment_names_are_neither_made_nor_removed(tmp_path):
    given = tmp_path / "given"
    given.mkdir()
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    named = {name: str(given / name) for name in SHARED}
    assert configured({**os.environ, **named, "TMPDIR": str(scratch)}) == 0
    assert given.is_dir()


def test_directories_the_made_variable_names_elsewhere_are_not_removed(tmp_path):
    # The variable could be set by hand or inherited: only directories this config makes are removed on exit.
    canary = tmp_path / "search-rerank-keep"
    canary.mkdir()
    scratch = tmp_path / "tmp:with:colons"
    scratch.mkdir()
    env = {name: value for name, value in os.environ.items() if name not in SHARED}
    named = json.dumps([str(canary), "search-rerank-relative", str(tmp_path)])
    assert configured({**env, "TMPDIR": str(scratch), "SEARCH_RERANK_MADE_DIRS": named}) == 3
    assert canary.is_dir() and list(scratch.iterdir()) == []


def test_an_ipv6_host_is_bound_in_brackets():
    """gunicorn reads ``::1:8000`` as host ``:`` and port ``:1:8000``; ``[::1]:8000`` is the address."""
    env = {**os.environ, "SEARCH_RERANK_SERVICE__HOST": "::1", "SEARCH_RERANK_SERVICE__PORT": "8123"}
    read = "import search_rerank.serving.gunicorn_conf as conf; print(conf.bind)"
    done = subprocess.run([sys.executable, "-c", read], env=env, capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-1] == "[::1]:8123", done.stderr


def test_gunicorn_reading_the_configuration_opens_no_control_socket():
    """gunicorn 25+ opens its control socket at one path per user, which a second server on the host took over
    (gunicornc then steered the other one)."""
    read = (
        "from gunicorn.config import Config; import search_rerank.serving.gunicorn_conf as conf; "
        "c = Config(); [c.set(k, v) for k, v in vars(conf).items() if k in c.settings]; "
        "print(c.control_socket_disable); conf.on_exit(None)"
    )
    done = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, timeout=120)
    assert done.stdout.split()[-1] == "True", done.stderr
