"""A build killed with SIGKILL halfway: search still answers from the old version, and a rerun completes.

The build runs as the real command in a subprocess (``scripts/reindex.py``
for a server lexical leg, ``search-rerank index`` for the embedded one),
with the tiny random model and small batches so that it is still writing
when the test reads, in its log, that a good part of the catalog is written,
and kills it. Nothing in the build can react to SIGKILL, so what is left is
exactly what a crash or an OOM kill leaves.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from servers import script_command, server_retriever, server_settings

from search_rerank.backends.tantivy_index import TantivyRetriever
from search_rerank.core.errors import ConfigError
from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline, update_index
from search_rerank.indexing.reindex import Reindexer
from search_rerank.indexing.versions import MANIFEST, IndexVersions

REPO = Path(__file__).resolve().parents[2]
BIG, SLOW_BATCH, KILL_AT = 1200, 50, 400
WORDS = ("walnut", "linen", "copper", "marble", "velvet", "bamboo", "granite", "cotton")
NOUNS = ("chair", "lamp", "rug", "shelf", "mirror", "bench", "vase", "clock")


def catalog(prefix: str, n: int) -> list[Product]:
    return [
        Product(
            id=f"{prefix}-{i}",
            title=f"{prefix} {WORDS[i % 8]} {NOUNS[i // 8 % 8]} {i}",
            brand="Acme",
            category=["Home", NOUNS[i // 8 % 8]],
        )
        for i in range(n)
    ]


def write_catalog(path: Path, products: list[Product]) -> Path:
    path.write_text("".join(json.dumps(p.to_record()) + "\n" for p in products), encoding="utf-8")
    return path


def settings_file(path: Path, settings: Settings) -> Path:
    path.write_text(
        json.dumps(settings.model_dump(mode="json", include={"index_dir", "lexical", "dense"})), encoding="utf-8"
    )
    return path


def run_killed(command: list[str], log: Path) -> int:
    """Start ``command``, SIGKILL it once its log shows KILL_AT products written; returns how many it had."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=command_env(), cwd=REPO)
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            written = [int(n) for n in re.findall(r": (\d+) products written", log.read_text(errors="replace"))]
            if written and written[-1] >= KILL_AT:
                proc.send_signal(signal.SIGKILL)
                assert proc.wait(timeout=30) == -signal.SIGKILL
                return written[-1]
            assert proc.poll() is None, f"the build ended before it could be killed:\n{log.read_text()[-3000:]}"
            time.sleep(0.05)
        pytest.fail(f"no progress in the log within 240 s:\n{log.read_text()[-3000:]}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def command_env() -> dict[str, str]:
    return {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, (str(REPO), os.environ.get("PYTHONPATH")))),
    }


def run_to_end(command: list[str]) -> str:
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=command_env(), cwd=REPO)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def assert_serves_old(settings: Settings, old: list[Product]) -> None:
    pipeline = open_pipeline(settings)
    counts = {name: leg.count() for name, leg in pipeline.legs.items()}
    assert pipeline.store.count() == len(old) and set(counts.values()) == {len(old)}, counts
    hits = [hit.product.id for hit in pipeline.run(old[7].title, size=20).hits]
    assert "old-7" in hits and all(pid.startswith("old-") for pid in hits)


def assert_serves_new(settings: Settings) -> None:
    pipeline = open_pipeline(settings)
    assert pipeline.store.count() == BIG
    assert {leg.count() for leg in pipeline.legs.values()} == {BIG}
    assert "new-1145" in [hit.product.id for hit in pipeline.run("new 1145", size=10).hits]


@pytest.fixture
def dense(tiny_bert_dir) -> dict:
    return {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 64}


def test_killed_server_reindex_leaves_the_old_version_served_and_a_rerun_completes(
    server_engine, tmp_path, dense, request
):
    lexical = server_settings(server_engine, request)
    settings = Settings(index_dir=tmp_path / "index", lexical=lexical, dense=dense)
    old = catalog("old", 40)
    first = build_index(old, settings, progress=False)
    config = settings_file(tmp_path / "settings.json", settings)
    big = write_catalog(tmp_path / "big.jsonl", catalog("new", BIG))
    script = script_command(REPO / "scripts" / "reindex.py", "--settings", str(config), "-v", "--catalog", str(big))
    alias = Reindexer(lexical, retriever=server_retriever(lexical))
    try:
        written = run_killed([*script, "--batch-size", str(SLOW_BATCH)], tmp_path / "killed.log")
        assert KILL_AT <= written < BIG
        assert alias.current() == [first.lexical_index]
        assert len(alias.versions()) == 2  # the killed build's half-filled index, behind no alias
        assert_serves_old(settings, old)

        out = run_to_end(script)
        assert "now points at" in out
        versions = IndexVersions(settings.index_dir)
        [_, new] = versions.complete()
        assert sorted(p.name for p in versions.versions_dir.iterdir()) == [first.version, new]
        assert list(alias.versions()) == [first.lexical_index, versions.manifest(new)["lexical_index"]]
        assert alias.current() == [versions.manifest(new)["lexical_index"]]
        assert_serves_new(settings)
    finally:
        for name in alias.live.aliases(f"{lexical.index}*"):
            alias.live.delete_index(name)


def test_killed_embedded_index_build_leaves_the_old_version_served_and_a_rerun_completes(tmp_path, dense):
    settings = Settings(index_dir=tmp_path / "index", dense=dense)
    old = catalog("old", 40)
    first = build_index(old, settings, progress=False)
    config = settings_file(tmp_path / "settings.json", settings)
    big = write_catalog(tmp_path / "big.jsonl", catalog("new", BIG))
    command = [
        sys.executable,
        "-m",
        "search_rerank.cli",
        "--settings",
        str(config),
        "-v",
        "index",
        "--catalog",
        str(big),
    ]

    written = run_killed([*command, "--batch-size", str(SLOW_BATCH)], tmp_path / "killed.log")
    assert KILL_AT <= written < BIG
    versions = IndexVersions(settings.index_dir)
    leftovers = [p for p in versions.versions_dir.iterdir() if not (p / MANIFEST).exists()]
    assert versions.complete() == [first.version] and len(leftovers) == 1
    assert_serves_old(settings, old)

    run_to_end(command)
    [_, new] = versions.complete()
    assert versions.current() == new and not leftovers[0].exists()
    assert_serves_new(settings)


def small_disk() -> None:
    """In the child: no file may grow past 100 kB, so writes fail as on a full disk (EFBIG, not a signal)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, 100_000))


def test_a_build_that_runs_out_of_disk_says_so_and_leaves_the_old_version_served(tmp_path, dense):
    settings = Settings(index_dir=tmp_path / "index", dense=dense)
    old = catalog("old", 40)
    first = build_index(old, settings, progress=False)
    config = settings_file(tmp_path / "settings.json", settings)
    big = write_catalog(tmp_path / "big.jsonl", catalog("new", BIG))
    command = [sys.executable, "-m", "search_rerank.cli", "--settings", str(config), "index", "--catalog", str(big)]

    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=command_env(), cwd=REPO, preexec_fn=small_disk
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "nothing was swapped" in done.stderr and str(settings.index_dir) in done.stderr
    versions = IndexVersions(settings.index_dir)
    assert sorted(p.name for p in versions.versions_dir.iterdir()) == [first.version]
    assert_serves_old(settings, old)

    run_to_end(command)
    assert_serves_new(settings)


def test_an_update_that_runs_out_of_disk_says_so_and_a_rerun_finishes_it(tmp_path, dense):
    settings = Settings(index_dir=tmp_path / "index", dense=dense)
    build_index(catalog("old", 40), settings, progress=False)
    config = settings_file(tmp_path / "settings.json", settings)
    big = write_catalog(tmp_path / "big.jsonl", catalog("new", BIG))
    command = [
        *(sys.executable, "-m", "search_rerank.cli", "--settings", str(config)),
        *("index", "--incremental", "--catalog", str(big)),
    ]

    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env=command_env(), cwd=REPO, preexec_fn=small_disk
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "part-updated" in done.stderr and "run the same update again" in done.stderr

    run_to_end(command)
    pipeline = open_pipeline(settings)
    assert pipeline.store.count() == 40 + BIG
    assert "new-1145" in [hit.product.id for hit in pipeline.run("new 1145", size=10).hits]


def tantivy_disk_full(self, products) -> int:
    """tantivy-py's own report of a full disk, as its writer raised it (a ValueError, not an OSError)."""
    raise ValueError("Internal error: 'No space left on device (os error 28)'")


def test_an_update_whose_embedded_index_runs_out_of_disk_says_the_version_may_be_part_updated(tmp_path, monkeypatch):
    """The product store had taken the batch; tantivy's error went on bare, naming no version and no way out."""
    settings = Settings(index_dir=tmp_path / "index", dense={"enabled": False})
    build_index(catalog("old", 40), settings, progress=False)
    monkeypatch.setattr(TantivyRetriever, "add", tantivy_disk_full)
    with pytest.raises(ConfigError, match="part-updated") as refused:
        update_index(catalog("new", 5), [], settings, progress=False)
    assert str(settings.index_dir) in str(refused.value) and "run the same update again" in str(refused.value)


def test_a_build_whose_embedded_index_runs_out_of_disk_says_nothing_was_swapped(tmp_path, monkeypatch):
    settings = Settings(index_dir=tmp_path / "index", dense={"enabled": False})
    old = catalog("old", 40)
    first = build_index(old, settings, progress=False)
    monkeypatch.setattr(TantivyRetriever, "add", tantivy_disk_full)
    with pytest.raises(ConfigError, match="nothing was swapped"):
        build_index(catalog("new", 5), settings, progress=False)
    assert IndexVersions(settings.index_dir).complete() == [first.version]
