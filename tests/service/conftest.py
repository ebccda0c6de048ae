"""One small generated catalog indexed with the tiny random model, shared by every service test.

Random weights make the dense leg's order arbitrary but deterministic, which
is all that the service's contracts (validation, paging, degradation, wire
formats) need; relevance is the pipeline tests' business.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from search_rerank.generate import GeneratorConfig, generate
from search_rerank.indexes import build_index, open_pipeline
from search_rerank.loaders import iter_catalog
from search_rerank.service import create_app
from search_rerank.settings import Settings


@pytest.fixture(scope="session")
def catalog_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("catalog")
    generate(root, GeneratorConfig(products=300, queries=30, seed=5, workers=1), progress=False)
    return root


@pytest.fixture(scope="session")
def index_settings(tmp_path_factory, catalog_dir, tiny_bert_dir) -> Settings:
    settings = Settings(index_dir=tmp_path_factory.mktemp("index") / "idx",
                        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40},
                        lexical={"candidates": 40})
    build_index(iter_catalog(catalog_dir), settings, progress=False)
    return settings


@pytest.fixture
def settings(index_settings) -> Settings:
    return index_settings.model_copy(update={
        "service": index_settings.service.model_copy(update={"max_size": 50, "max_query_length": 100,
                                                             "max_result_window": 200}),
    })


@pytest.fixture
def pipeline(settings):
    p = open_pipeline(settings)
    yield p
    p.close()


@pytest.fixture
def app(settings, pipeline):
    return create_app(settings, pipeline)


@pytest.fixture
def client(app):
    return app.test_client()
