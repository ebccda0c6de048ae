"""A small generated catalog, indexed lexical-only and hybrid (tiny random bi-encoder), shared by the tuning tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from search_rerank.core.settings import Settings
from search_rerank.data.loaders import load_dataset


@pytest.fixture(scope="session")
def catalog(generated_catalog) -> Path:
    return generated_catalog(500, 120, 3)


@pytest.fixture(scope="session")
def dataset(catalog):
    return load_dataset(catalog)


@pytest.fixture(scope="session")
def lexical_settings(built_index) -> Settings:
    return built_index(products=500, queries=120, seed=3, dense={"enabled": False}).settings


@pytest.fixture(scope="session")
def hybrid_settings(built_index, tiny_bert_dir) -> Settings:
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 64}
    return built_index(products=500, queries=120, seed=3, dense=dense).settings


@pytest.fixture
def lexical_toml(tmp_path, lexical_settings) -> Path:
    """The lexical-only settings as a file, the way the CLI and the service take them."""
    path = tmp_path / "lexical.toml"
    path.write_text(f'index_dir = "{lexical_settings.index_dir}"\n\n[dense]\nenabled = false\n', encoding="utf-8")
    return path
