"""``python -m search_rerank``: the package run as a module is the ``search-rerank`` command, as it is where the
console script is not on PATH (a virtual environment not activated, a container's python)."""

from __future__ import annotations

import subprocess
import sys


def test_python_m_search_rerank_is_the_command():
    result = subprocess.run(
        [sys.executable, "-m", "search_rerank", "onboard", "--help"], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "--dataset" in result.stdout and "Traceback" not in result.stderr


def test_importing_the_entry_module_runs_no_command():
    # Tools that import every module (documentation builders, pkgutil.walk_packages) must not start the CLI.
    result = subprocess.run(
        [sys.executable, "-c", "import search_rerank.__main__; print('imported')"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (result.returncode, result.stdout.strip()) == (0, "imported"), result.stderr
