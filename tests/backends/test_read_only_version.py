"""An index version on a read-only mount (built by a job, mounted into the serving machines): the product store
reads it; the embedded index cannot be (tantivy takes a lock file even to read), and says so."""

from __future__ import annotations

import multiprocessing
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from search_rerank.core.errors import ConfigError
from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import STORE_FILE, build_index, lexical_leg
from search_rerank.indexing.versions import IndexVersions

CATALOG = [Product(id=f"p{i}", title=f"oak table {i}", price=float(i)) for i in range(1, 6)]


@pytest.fixture
def read_only_version(tmp_path) -> Iterator[Path]:
    """The served version of a built index, seen through a read-only bind mount (root only: skipped elsewhere)."""
    settings = Settings(index_dir=tmp_path / "index", dense={"enabled": False})
    # Built by a process of its own, as a job builds it: gone, it leaves no -wal or -shm file beside the store.
    spawn = multiprocessing.get_context("spawn")
    builder = spawn.Process(target=build_index, args=(CATALOG, settings), kwargs={"progress": False})
    builder.start()
    builder.join(timeout=300)
    assert builder.exitcode == 0
    built = IndexVersions(settings.index_dir).serving_dir()
    assert not list(built.glob(f"{STORE_FILE}-*"))
    seen = tmp_path / "read-only"
    seen.mkdir()
    if subprocess.run(["mount", "--bind", str(built), str(seen)], check=False).returncode != 0:
        pytest.skip("cannot bind-mount here (needs root)")
    try:
        if subprocess.run(["mount", "-o", "remount,bind,ro", str(seen)], check=False).returncode != 0:
            pytest.skip("cannot remount read-only here")
        yield seen
    finally:
        subprocess.run(["umount", "--lazy", str(seen)], check=False)  # a test's connections may still be open


def test_the_product_store_of_a_read_only_version_reads_its_products(read_only_version):
    """WAL mode needs its -shm file beside the database: opening it was 'unable to open database file'."""
    store = ProductStore(read_only_version / STORE_FILE)
    assert store.count() == len(CATALOG) and store.get(["p3"])["p3"].title == "oak table 3"


def test_the_embedded_index_of_a_read_only_version_says_its_folder_must_be_writable(read_only_version):
    """It said the index was probably built by another version of the product."""
    leg = lexical_leg(read_only_version, Settings().lexical)
    with pytest.raises(ConfigError, match="must be writable") as refused:
        leg.warm_up()
    assert "another version" not in str(refused.value)
