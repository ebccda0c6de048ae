"""From a fresh clone to the first served answer (issue 18): the README's quick start, timed as a newcomer meets it.

Clones this repository (its committed HEAD) into a temporary directory, then:

install
    ``make install``: a new virtualenv, torch's CPU wheel, the package with its dev extra (from PyPI).
demo up
    ``make demo`` in the background, until ``POST /search`` answers the README's first query: generating,
    indexing, training the demo's reranker and learned ranker, tuning and starting gunicorn. The answer must
    have both in it (``skipped`` has neither ``rerank`` nor ``ltr``); then the demo is stopped.
tests
    with ``--tests``, ``make test`` (lint, then every test) in the same clone.

Writes benchmarks/results/quickstart.json and the "Quick start" section of docs/BENCHMARKS.md. The whole
machine is measured, so run it on a quiet one (it refuses to start while the load average is above
``--max-load``), and expect the first run to download a few hundred MB of wheels.

    python benchmarks/quickstart.py [--tests] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import ROOT, machine, table, write_section  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "quickstart.json"
QUERY = {"query": "couch", "size": 5, "filters": {"price_max": 800}, "explain": True}


def run_timed(args: list[str], cwd: Path, log: Path, env: dict[str, str]) -> float:
    """Run a command to completion with its output in ``log``; its wall time in seconds, or exit on failure."""
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        status = subprocess.run(args, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env, check=False).returncode
    seconds = time.perf_counter() - started
    if status != 0:
        sys.exit(f"{' '.join(args)} failed ({status}) after {seconds:.0f} s; see {log}")
    return seconds


def first_answer(url: str, process: subprocess.Popen, timeout: float) -> dict[str, Any]:
    """Poll ``/search`` until it answers 200 (the demo is up); the answer."""
    deadline = time.monotonic() + timeout
    body = json.dumps(QUERY).encode()
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"make demo exited ({process.returncode}) before serving")
        request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return json.loads(response.read())
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(1)
    sys.exit(f"make demo did not answer within {timeout:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--tests", action="store_true", help="Also time `make test` in the clone.")
    parser.add_argument("--timeout", type=float, default=3600, help="Seconds `make demo` may take to answer.")
    parser.add_argument("--max-load", type=float, default=3.0, help="Refuse to start above this load average.")
    parser.add_argument("--keep", action="store_true", help="Keep the clone (its path is printed).")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    if load > args.max_load:
        sys.exit(f"load average {load:.1f} > {args.max_load}: the timings would measure the other jobs")

    work = Path(tempfile.mkdtemp(prefix="quickstart-"))
    clone = work / "search_rerank"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["SEARCH_RERANK_SERVICE__PORT"] = str(args.port)
    subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
    commit = subprocess.run(
        ["git", "-C", str(clone), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    print(f"cloned {commit} into {clone}", flush=True)
    timings: dict[str, float] = {"install_s": run_timed(["make", "install"], clone, work / "install.log", env)}
    print(f"install: {timings['install_s']:.0f} s", flush=True)

    started = time.perf_counter()
    with (work / "demo.log").open("w", encoding="utf-8") as out:
        demo = subprocess.Popen(
            ["make", "demo"], cwd=clone, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    try:
        answer = first_answer(f"http://127.0.0.1:{args.port}/search", demo, args.timeout)
        timings["demo_up_s"] = time.perf_counter() - started
    finally:
        os.killpg(demo.pid, signal.SIGTERM)
        try:
            demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
    skipped, degraded = answer.get("skipped", {}), answer.get("degraded", {})
    print(f"demo up: {timings['demo_up_s']:.0f} s; skipped stages: {skipped or 'none'}", flush=True)
    if args.tests:
        timings["tests_s"] = run_timed(["make", "test"], clone, work / "test.log", env)
        print(f"tests: {timings['tests_s']:.0f} s", flush=True)

    result = {
        "commit": commit,
        "machine": machine(),
        "load_average_at_start": round(load, 2),
        **{k: round(v, 1) for k, v in timings.items()},
        "rerank_served": "rerank" not in skipped and "rerank" not in degraded,
        "ltr_served": "ltr" not in skipped and "ltr" not in degraded,
        "skipped": skipped,
        "degraded": degraded,
        "first_answer_titles": [hit["product"].get("title") for hit in answer.get("hits", [])],
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    rows = [
        ["`make install`", f"{timings['install_s']:.0f}"],
        ["`make demo` until /search answers", f"{timings['demo_up_s']:.0f}"],
    ]
    if "tests_s" in timings:
        rows.append(["`make test`", f"{timings['tests_s']:.0f}"])
    write_section(
        "quickstart",
        "Quick start: fresh clone to first answer (issue 18)",
        f"A fresh clone of {commit}, nothing installed but Python 3.11 (wheels from PyPI, through whatever pip cache the machine has), load average "
        f"{load:.1f} at the start. `make demo` generates the 5k-product catalogue, indexes it, trains the demo "
        "reranker and learned ranker, tunes fusion on dev and serves; timed until `POST /search` answers the README's `couch` query.\n\n"
        + table(["step", "seconds"], rows)
        + f"\n\nReranker in the first answer: **{'yes' if result['rerank_served'] else 'no'}**; learned ranker: "
        f"**{'yes' if result['ltr_served'] else 'no'}** "
        f"(skipped: {', '.join(skipped) or 'none'}; degraded: {', '.join(degraded) or 'none'}). A second `make demo` reuses the catalogue, "
        "index, models and tuning and only starts the server.",
    )
    if args.keep:
        print(f"kept {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
