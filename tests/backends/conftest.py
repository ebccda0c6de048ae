"""Lexical legs to test against: tantivy on a temporary directory, and the server legs over real HTTP.

The server is osmem-server (an in-memory OpenSearch-compatible binary from
PyPI), started once per session on a free port (``osmem_server_url`` in
``tests/conftest.py``); ``tests/servers.py`` says how each engine's client
reaches it, or a real Elasticsearch named by ``ES_URL``.

Every test gets its own index, deleted afterwards, so tests never see each
other's documents and a real cluster is left as it was found.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from typing import Any

import pytest
from servers import compatible_node_needed, server_retriever, server_settings, use_compatible_node

from search_rerank.backends.cluster import ClusterRetriever, ElasticsearchRetriever
from search_rerank.backends.tantivy_index import TantivyRetriever
from search_rerank.core.product import Product
from search_rerank.core.settings import LexicalSettings

ENGINES = ("tantivy", "opensearch", "elasticsearch")
SERVER_ENGINES = ("opensearch", "elasticsearch")


@pytest.fixture(autouse=True)
def compatible_elasticsearch_node() -> Iterable[None]:
    """Elasticsearch clients built from settings alone (builds, the CLI) reach osmem-server too (``servers.py``)."""
    if not compatible_node_needed():
        yield
        return
    original = use_compatible_node()
    yield
    ElasticsearchRetriever.connect = original


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(params=SERVER_ENGINES)
def server_engine(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def make_server(request: pytest.FixtureRequest) -> Iterable[Callable[..., ClusterRetriever]]:
    """``make_server(engine, products=(), **settings)``: a retriever on a new index, deleted after the test."""
    created: list[ClusterRetriever] = []

    def make(engine: str, products: Iterable[Product] = (), **overrides: Any) -> ClusterRetriever:
        retriever = server_retriever(server_settings(engine, request, **overrides))
        created.append(retriever)
        retriever.ensure_index()
        retriever.warm_up()
        if products:
            retriever.add(products)
        return retriever

    yield make
    for retriever in created:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)


@pytest.fixture
def make_leg(engine: str, make_server, tmp_path):
    """``make_leg(products=(), **settings)``: the lexical leg of the parametrised engine, filled."""

    def make(products: Iterable[Product] = (), **overrides: Any):
        if engine != "tantivy":
            return make_server(engine, products, **overrides)
        retriever = TantivyRetriever(tmp_path / uuid.uuid4().hex, LexicalSettings(**overrides))
        retriever.warm_up()
        if products:
            retriever.add(products)
        return retriever

    return make


@pytest.fixture
def reopen() -> Callable[..., Any]:
    """``reopen(leg, **settings)``: another leg over the same documents with other query settings."""

    def another(leg, **overrides: Any):
        if isinstance(leg, TantivyRetriever):
            return TantivyRetriever(leg._path, LexicalSettings(**overrides))
        settings = LexicalSettings.model_validate({**leg.settings.model_dump(), **overrides})
        return type(leg)(settings, leg._client)

    return another
