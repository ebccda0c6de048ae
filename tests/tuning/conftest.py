"""A small generated catalog, indexed lexical-only and hybrid (tiny random bi-encoder), shared by the tuning tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from search_rerank.core.settings import Settings
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog, load_dataset
from search_rerank.indexing.indexes import build_index


@pytest.fixture(scope="session")
def catalog(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tuning-catalog")
    generate(out, GeneratorConfig(products=500, queries=120, seed=3, workers=1), progress=False)
    return out


@pytest.fixture(scope="session")
def dataset(catalog):
    return load_dataset(catalog)


@pytest.fixture(scope="session")
def lexical_settings(catalog, tmp_path_factory) -> Settings:
    settings = Settings(index_dir=tmp_path_factory.mktemp("tuning-lexical") / "idx", dense={"enabled": False})
    build_index(iter_catalog(catalog), settings, progress=False)
    return settings


@pytest.fixture(scope="session")
def hybrid_settings(catalog, tmp_path_factory, tiny_bert_dir) -> Settings:
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("tuning-hybrid") / "idx",
        dense={"model": str(tiny_bert_dir), "device": "cpu", "batch_size": 64},
    )
    build_index(iter_catalog(catalog), settings, progress=False)
    return settings


@pytest.fixture
def lexical_toml(tmp_path, lexical_settings) -> Path:
    """The lexical-only settings as a file, the way the CLI and the service take them."""
    path = tmp_path / "lexical.toml"
    path.write_text(f'index_dir = "{lexical_settings.index_dir}"\n\n[dense]\nenabled = false\n', encoding="utf-8")
    return path
