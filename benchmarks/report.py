"""Where benchmark numbers go: one section per script in docs/BENCHMARKS.md, stamped with date, machine and command.

Each script replaces only its own section, so rerunning one benchmark never
wipes another's figures.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "BENCHMARKS.md"
IMG = ROOT / "docs" / "img"
HEADER = """# Benchmarks

Every figure here is written by a script in `benchmarks/`; rerun the command shown under a section to
reproduce it. Timings on the shared 2-core development machines are noisy: compare ratios within one
run, and read absolute times as this machine's, not as a promise.
"""


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kb / 1024**2:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    gpu = "no GPU"
    try:
        import torch

        if torch.cuda.is_available():
            gpu = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    return f"{cpu}, {os.cpu_count()} cores{mem}, {gpu}, Python {platform.python_version()}"


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], ROOT), *sys.argv[1:]])


def read_results(path: Path) -> dict:
    """A results file's figures, {} before its first run. Several scripts own keys in one file, so each reads it,
    replaces its own keys and writes it back (:func:`write_results`)."""
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def write_results(path: Path, figures: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")


def write_section(name: str, title: str, body: str) -> None:
    """Replace (or append) the section ``name`` of docs/BENCHMARKS.md."""
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    section = (
        f"<!-- begin {name} -->\n## {title}\n\n"
        f"*{stamp} · {machine()} · `{command()}`*\n\n{body.strip()}\n<!-- end {name} -->\n"
    )
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else HEADER
    pattern = re.compile(rf"<!-- begin {re.escape(name)} -->.*?<!-- end {re.escape(name)} -->\n", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else text.rstrip("\n") + "\n\n" + section
    DOC.parent.mkdir(parents=True, exist_ok=True)
    DOC.write_text(text, encoding="utf-8")


def save_figure(fig, name: str) -> str:
    """Save a matplotlib figure under docs/img; returns the path to use in a Markdown link from docs/."""
    import matplotlib.pyplot as plt

    IMG.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(IMG / name, dpi=110)
    plt.close(fig)
    return f"img/{name}"


def table(header: list[str], rows: list[list[object]]) -> str:
    def cell(v: object) -> str:
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def answered(client: Any, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
    """The milliseconds a search ``body`` took through the service's Elasticsearch endpoint, and its answer."""
    started = time.perf_counter()
    response = client.post("/products/_search", json=body)
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.get_json()
    return elapsed, response.get_json()


def timed_pair(client: Any, first: dict[str, Any], second: dict[str, Any], repeats: int) -> tuple[float, float]:
    """The median milliseconds of each of two bodies, asked in turn, so that the machine's load falls on both."""
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(repeats):
        for body, kept in ((first, times[0]), (second, times[1])):
            kept.append(answered(client, body)[0])
    return statistics.median(times[0]), statistics.median(times[1])
