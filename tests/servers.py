"""How the tests reach a server: osmem-server by default, a real Elasticsearch where ``ES_URL`` says.

With ``ES_URL`` set (and ``ES_API_KEY`` or ``ES_USERNAME``/``ES_PASSWORD``,
``ES_VERIFY_CERTS=0`` for a self-signed test cluster), the Elasticsearch
tests run against that cluster with the client unchanged; otherwise both
engines' tests run against osmem-server, the Elasticsearch client through
:class:`CompatibleJsonNode`.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from elastic_transport import Urllib3HttpNode

from search_rerank.es_backend import ClusterRetriever, ElasticsearchRetriever, OpenSearchRetriever
from search_rerank.settings import LexicalSettings


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


def server_settings(engine: str, request: pytest.FixtureRequest, **overrides: Any) -> LexicalSettings:
    """Settings addressing a fresh, unique index on the engine's test server."""
    fields: dict[str, Any] = {"backend": engine, "index": f"test-{uuid.uuid4().hex[:12]}", "request_timeout_s": 10,
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
