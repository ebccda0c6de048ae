"""``search-rerank serve`` as an operator runs it: a real gunicorn on a small lexical index, or the one line that
says why it cannot listen where it was told to."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner
from live_server import free_port

from search_rerank.cli import main

CATALOG = [{"id": "p1", "title": "oak desk"}, {"id": "p2", "title": "brass lamp"}]


@pytest.fixture(scope="module")
def index_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("serve")
    catalog = root / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(record) + "\n" for record in CATALOG), encoding="utf-8")
    result = CliRunner().invoke(
        main, ["--index-dir", str(root / "index"), "index", "--no-dense", "--catalog", str(catalog)]
    )
    assert result.exit_code == 0, result.output
    return root / "index"


def serve(index_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "SEARCH_RERANK_DENSE__ENABLED": "false", "SEARCH_RERANK_SERVICE__WORKERS": "1"}
    command = [sys.executable, "-m", "search_rerank.cli", "--index-dir", str(index_dir), "serve", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(server: subprocess.Popen) -> str:
    """The server's output, once stopped with SIGTERM if it still runs."""
    if server.poll() is None:
        server.send_signal(signal.SIGTERM)
    return server.communicate(timeout=30)[0]


def test_an_ipv6_host_is_bound_and_printed_in_brackets(index_dir):
    with socket.socket(socket.AF_INET6) as probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no IPv6 loopback here")
    port = free_port()
    server = serve(index_dir, "--host", "::1", "--port", str(port))
    try:
        deadline, answered = time.monotonic() + 90, None
        while answered is None and server.poll() is None and time.monotonic() < deadline:
            try:
                answered = requests.get(f"http://[::1]:{port}/health", timeout=2).status_code
            except requests.RequestException:
                time.sleep(0.5)
    finally:
        output = stop(server)
    assert f"on http://[::1]:{port}" in output
    assert answered == 200, output


def refused_start(index_dir: Path, *args: str) -> str:
    """The output of a serve that ended by itself, in one line and exit status 1."""
    env = {**os.environ, "SEARCH_RERANK_DENSE__ENABLED": "false"}
    command = [sys.executable, "-m", "search_rerank.cli", "--index-dir", str(index_dir), "serve", *args]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == "" and len(done.stderr.strip().splitlines()) == 1, done.stdout + done.stderr
    return done.stderr


def test_a_port_in_use_is_refused_in_one_line(index_dir):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = refused_start(index_dir, "--host", "127.0.0.1", "--port", str(port))
    assert f"127.0.0.1:{port} is in use" in output


def test_a_host_that_does_not_resolve_is_refused_in_one_line(index_dir):
    output = refused_start(index_dir, "--host", "no-such-host.invalid", "--port", str(free_port()))
    assert "no-such-host.invalid" in output and "resolve" in output


def test_an_empty_host_setting_is_refused_not_bound_on_every_interface(index_dir):
    """gunicorn binds an empty host on every interface: a compose file's ``SEARCH_RERANK_SERVICE__HOST=`` put a
    service meant for 127.0.0.1 on the network."""
    env = {**os.environ, "SEARCH_RERANK_DENSE__ENABLED": "false", "SEARCH_RERANK_SERVICE__HOST": ""}
    command = [sys.executable, "-m", "search_rerank.cli", "--index-dir", str(index_dir), "serve", "--port", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "SEARCH_RERANK_SERVICE__HOST" in done.stderr, done.stderr


def test_an_empty_host_option_is_refused(index_dir):
    refused = CliRunner().invoke(main, ["--index-dir", str(index_dir), "serve", "--host", "", "--port", "1"])
    assert refused.exit_code != 0 and "--host" in refused.output


@pytest.mark.parametrize(
    ("variable", "named"),
    [
        ("SEARCH_RERANK_SERVICE__UBI_LOG_PATH", "a-file/ubi.ndjson"),
        ("SEARCH_RERANK_PERSONALISATION__STORE_PATH", "a-folder"),
    ],
)
def test_a_file_setting_the_service_cannot_write_is_refused_at_start_naming_it(index_dir, tmp_path, variable, named):
    """They started: the UBI log then answered every event 503, the profile store served without
    personalisation for good."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    (tmp_path / "a-folder").mkdir()
    env = {**os.environ, "SEARCH_RERANK_DENSE__ENABLED": "false", variable: str(tmp_path / named)}
    command = [sys.executable, "-m", "search_rerank.cli", "--index-dir", str(index_dir), "serve", "--port", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    setting = variable.removeprefix("SEARCH_RERANK_").lower().replace("__", ".")
    assert done.returncode == 1 and setting in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_a_synonym_file_with_a_line_that_is_no_rule_is_refused_at_start_naming_the_line(index_dir, tmp_path):
    """It was refused by each worker as it booted, a CRITICAL line and gunicorn's own exit after."""
    rules = tmp_path / "synonyms.txt"
    rules.write_text("sofa, couch\ntv => => television\n", encoding="utf-8")
    env = {**os.environ, "SEARCH_RERANK_DENSE__ENABLED": "false", "SEARCH_RERANK_LEXICAL__SYNONYMS_FILE": str(rules)}
    command = [sys.executable, "-m", "search_rerank.cli", "--index-dir", str(index_dir), "serve", "--port", "1"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "lexical.synonyms_file" in done.stderr and "line 2" in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
