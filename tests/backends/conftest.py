"""Lexical legs to test against: tantivy in memory, and the server backends against a real HTTP server.

The server is osmem-server (an in-memory OpenSearch-compatible binary from
PyPI), started once per session on a free port. The Elasticsearch client
talks to it through :class:`CompatibleJsonNode`, because Elasticsearch 9's
client sends vendor media types that OpenSearch-compatible servers refuse.
With ``ES_URL`` set (and ``ES_API_KEY`` or ``ES_USERNAME``/``ES_PASSWORD``,
``ES_VERIFY_CERTS=0`` for a self-signed test cluster), the Elasticsearch
tests run against that real cluster instead, with the client unchanged.

Every test gets its own index, deleted afterwards, so tests never see each
other's documents and a real cluster is left as it was found.
"""

from __future__ import annotations

import os
import uuid
from typing import Any, Callable, Iterable

import pytest
from elastic_transport import Urllib3HttpNode

from search_rerank.es_backend import ClusterRetriever, ElasticsearchRetriever, OpenSearchRetriever
from search_rerank.product import Product
from search_rerank.settings import LexicalSettings
from search_rerank.tantivy_backend import TantivyRetriever

ENGINES = ("tantivy", "opensearch", "elasticsearch")
SERVER_ENGINES = ("opensearch", "elasticsearch")


class CompatibleJsonNode(Urllib3HttpNode):
    """TEST ONLY: sends plain JSON media types where the Elasticsearch 9 client sends vendor ones.

    ``application/vnd.elasticsearch+json; compatible-with=9`` becomes
    ``application/json`` (``+x-ndjson`` becomes ``application/x-ndjson``), which
    is what OpenSearch-compatible servers accept. Never used against ``ES_URL``.
    """

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None,
                        **kwargs: Any):
        if headers:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    subtype = value.split(";")[0].split("+", 1)[1].strip()
                    headers[name] = f"application/{subtype}"
        return super().perform_request(method, target, body, headers, **kwargs)


@pytest.fixture(scope="session")
def osmem_server_url() -> Iterable[str]:
    """The base URL of an osmem-server started for this session (skips the tests if it cannot start)."""
    osmem = pytest.importorskip("osmem_server", reason="osmem-server is not installed (pip install -e '.[dev]')")
    try:
        server = osmem.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)
    except (osmem.OsmemError, OSError) as exc:
        pytest.skip(f"osmem-server cannot start here: {exc}")
    yield server.url
    server.close()


def server_settings(engine: str, request: pytest.FixtureRequest, **overrides: Any) -> LexicalSettings:
    """Settings addressing a fresh, unique index on the engine's test server."""
    fields: dict[str, Any] = {"backend": engine, "index": f"test-{uuid.uuid4().hex[:12]}", "timeout_s": 10,
                              "retries": 1}
    if engine == "elasticsearch" and os.environ.get("ES_URL"):
        fields["url"] = os.environ["ES_URL"]
        fields["verify_certs"] = os.environ.get("ES_VERIFY_CERTS", "1") != "0"
        for name in ("api_key", "username", "password"):
            if os.environ.get(f"ES_{name.upper()}"):
                fields[name] = os.environ[f"ES_{name.upper()}"]
    else:
        fields["url"] = request.getfixturevalue("osmem_server_url")
    return LexicalSettings(**{**fields, **overrides})


def server_retriever(settings: LexicalSettings) -> ClusterRetriever:
    """The engine's retriever, with the test-only node class only where the server is osmem."""
    if settings.backend == "opensearch":
        return OpenSearchRetriever(settings)
    if os.environ.get("ES_URL"):
        return ElasticsearchRetriever(settings)
    return ElasticsearchRetriever(settings, ElasticsearchRetriever.connect(settings, node_class=CompatibleJsonNode))


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
