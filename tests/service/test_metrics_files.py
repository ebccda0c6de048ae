"""A worker's metric files on a disk that fills: the worker keeps its metrics in memory and serves on (it was
killed with SIGBUS on its first write to a page the disk could not back, and so was every worker booted after
it: the whole service answered nothing)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

COUNT_AND_SCRAPE = """
import os
from search_rerank.serving import metrics
for i in range(3000):  # label values enough to grow each file past the disk
    metrics.REQUESTS.labels(f"endpoint-{i}", "200").inc()
    metrics.REQUEST_SECONDS.labels(f"endpoint-{i}").observe(0.01)
metrics.exposition(os.environ["PROMETHEUS_MULTIPROC_DIR"])  # reads every file the worker could write
print(metrics.REQUESTS.labels("endpoint-2999", "200")._value.get(), "scraped")
"""


@pytest.fixture(params=[24, 200], ids=["no-room-for-a-file", "no-room-to-grow"])
def small_disk(request, tmp_path) -> Iterator[Path]:
    """A tmpfs of that many KiB (a root-only mount: skipped where it cannot be made)."""
    where = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    where.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={request.param}k", "tmpfs", str(where)], check=False)
    if made.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield where
    finally:
        subprocess.run(["umount", "--lazy", str(where)], check=False)


def test_a_worker_whose_metrics_disk_is_full_keeps_counting_and_the_scrape_answers(small_disk):
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(small_disk)}
    done = subprocess.run([sys.executable, "-c", COUNT_AND_SCRAPE], env=env, capture_output=True, text=True)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])  # -7: SIGBUS
    assert done.stdout.split() == ["1.0", "scraped"]
    assert "kept in memory" in done.stderr
