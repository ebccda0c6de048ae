"""One small generated catalog indexed with the tiny random model, shared by every service test.

Random weights make the dense leg's order arbitrary but deterministic, which
is all that the service's contracts (validation, paging, degradation, wire
formats) need; relevance is the pipeline tests' business.

``catalog_client`` builds the app on an embedded index of a test module's own small catalog;
``make_cluster_app`` builds it on a cluster backend instead: a handful
of products in a fresh index on the test server (osmem-server, see
``tests/servers.py``), the lexical leg only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from servers import server_retriever, server_settings

from search_rerank.core.breaker import Guards
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import LexicalSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app

CLUSTER_CATALOG = [
    Product(
        id="s1",
        title="corner sofa",
        brand="Acme",
        category="Furniture > Sofas",
        price=499.0,
        attributes={"color": "grey"},
        sales=120,
    ),
    Product(
        id="s2",
        title="leather sofa",
        brand="Acme",
        category="Furniture > Sofas",
        price=899.0,
        attributes={"color": "brown"},
        sales=40,
    ),
    Product(
        id="s3",
        title="velvet sofa",
        brand="Bolt",
        category="Furniture > Sofas",
        price=650.0,
        attributes={"color": "blue"},
        sales=8,
    ),
    Product(id="s4", title="sofa bed", brand="Cosy", category="Furniture > Sofas > Beds", price=700.0, sales=3),
    Product(id="t1", title="oak table", brand="Bolt", category="Furniture > Tables", price=249.5, sales=60),
    Product(
        id="l1",
        title="desk lamp",
        brand="Acme",
        category="Lighting",
        description="a lamp for a sofa side table",
        sales=15,
    ),
]


@pytest.fixture(scope="session")
def catalog_dir(generated_catalog) -> Path:
    return generated_catalog(300, 30, 5)


@pytest.fixture(scope="session")
def index_settings(built_index, tiny_bert_dir) -> Settings:
    dense = {"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40}
    return built_index(products=300, queries=30, seed=5, dense=dense, lexical={"candidates": 40}).settings


@pytest.fixture
def settings(index_settings) -> Settings:
    return index_settings.model_copy(
        update={
            "service": index_settings.service.model_copy(
                update={"max_size": 50, "max_query_length": 100, "max_result_window": 200, "max_msearch_hits": 300}
            ),
        }
    )


@pytest.fixture
def personal_settings(settings, tmp_path) -> Settings:
    """Settings for the personalisation tests: a UBI log and a profile store of the test's own."""
    # No stage deadlines: a leg late on a loaded machine changed a ranking that a test compares with another.
    settings = settings.offline()
    service = settings.service.model_copy(update={"ubi_log_path": tmp_path / "ubi" / "ubi.ndjson"})
    # A generous profile read: on a loaded machine the 0.25 s default could leave a search unpersonalised.
    personal = settings.personalisation.model_copy(
        update={"store_path": tmp_path / "profiles.sqlite3", "read_timeout_s": 30.0}
    )
    return settings.model_copy(update={"service": service, "personalisation": personal})


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


@pytest.fixture(scope="session")
def catalog_client(tmp_path_factory, tiny_bert_dir) -> Iterable[Callable[..., FlaskClient]]:
    """``catalog_client(catalog, lexical=None, **service)``: a client of the app on a fresh embedded index of
    ``catalog``, built with the tiny model (20 candidates per leg), ``lexical`` and ``service`` settings; its index
    is closed after the session."""
    pipelines: list[SearchPipeline] = []

    def make(catalog: list[Product], lexical: dict[str, Any] | None = None, **service: Any) -> FlaskClient:
        settings = Settings(
            index_dir=tmp_path_factory.mktemp("catalog") / "idx",
            dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 20},
            lexical={"candidates": 20, **(lexical or {})},
            service=service,
        )
        build_index(catalog, settings, progress=False)
        pipelines.append(open_pipeline(settings))
        return create_app(settings, pipelines[-1]).test_client()

    yield make
    for pipeline in pipelines:
        pipeline.close()


@pytest.fixture
def make_cluster_app(request, tmp_path) -> Iterable[Callable[..., Flask]]:
    """``make_cluster_app(engine, lexical=None, catalog=CLUSTER_CATALOG, **service)``: the app on a fresh ``engine``
    index holding ``catalog``.

    The dense leg is off, so the hits are the cluster leg's, behind its breaker as served; ``lexical`` and
    ``service`` are settings of those sections (``service.passthrough``, ...). The
    settings are ``app.config["SETTINGS"]``; every index made is deleted after the test.
    """
    made = []
    guards: list[Guards] = []

    def make(
        engine: str, lexical: dict[str, Any] | None = None, catalog: list[Product] = CLUSTER_CATALOG, **service: Any
    ) -> Flask:
        direct = server_settings(engine, request, candidates=40)
        made.append(server_retriever(direct))
        made[-1].add(catalog)
        lexical = LexicalSettings.model_validate({**direct.model_dump(), **(lexical or {})})
        retriever = server_retriever(lexical)
        store = ProductStore(tmp_path / f"{lexical.index}.sqlite")
        store.add(catalog)
        store.refresh_popularity()
        settings = Settings(index_dir=tmp_path / "unused", lexical=lexical, dense={"enabled": False}, service=service)
        guards.append(Guards.from_settings(settings))
        return create_app(settings, SearchPipeline(settings, {LEXICAL: guards[-1].leg(retriever)}, store))

    yield make
    for guard in guards:
        guard.close()
    for retriever in made:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)
