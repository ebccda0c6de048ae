"""How the tests reach a server: osmem-server by default, a real Elasticsearch where ``ES_URL`` says.

With ``ES_URL`` set (and ``ES_API_KEY`` or ``ES_USERNAME``/``ES_PASSWORD``,
``ES_VERIFY_CERTS=0`` for a self-signed test cluster), the Elasticsearch
tests run against that cluster with the client unchanged; otherwise both
engines' tests run against osmem-server, the Elasticsearch client through
:class:`CompatibleJsonNode`. The vendor media types are the one difference:
osmem-server answers every other request of the Elasticsearch client as it
is, so builds, the CLI and the scripts are tested with both clients.

Code that builds its client from settings alone (builds, the CLI) gets the
node class from :func:`use_compatible_node`, which the conftest applies to
every test and :data:`SCRIPT_LAUNCHER` to a command run in a subprocess.
"""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import Urllib3HttpNode

from search_rerank.backends.cluster import ClusterRetriever, ElasticsearchRetriever, OpenSearchRetriever
from search_rerank.core.settings import LexicalSettings


class CompatibleJsonNode(Urllib3HttpNode):
    """TEST ONLY: sends plain JSON media types where the Elasticsearch 9 client sends vendor ones.

    ``application/vnd.elasticsearch+json; compatible-with=9`` becomes
    ``application/json`` (``+x-ndjson`` becomes ``application/x-ndjson``), which
    is what OpenSearch-compatible servers accept. Never used against ``ES_URL``.
    """

    def perform_request(self, method: str, target: str, body: bytes | None = None, headers: Any = None, **kwargs: Any):
        if headers:
            headers = headers.copy()
            for name in ("accept", "content-type"):
                value = headers.get(name)
                if value and "vnd.elasticsearch+" in value:
                    subtype = value.split(";")[0].split("+", 1)[1].strip()
                    headers[name] = f"application/{subtype}"
        return super().perform_request(method, target, body, headers, **kwargs)


def compatible_node_needed() -> bool:
    """Whether the Elasticsearch client talks to osmem-server here (no ``ES_URL``)."""
    return not os.environ.get("ES_URL")


def use_compatible_node() -> Any:
    """TEST ONLY: make every Elasticsearch client built from settings use :class:`CompatibleJsonNode`.

    Returns the original ``connect``, to put back. Never used against ``ES_URL``.
    """
    original = ElasticsearchRetriever.__dict__["connect"]

    def connect(cls, settings: LexicalSettings, **options: Any):
        options.setdefault("node_class", CompatibleJsonNode)
        return original.__func__(cls, settings, **options)

    ElasticsearchRetriever.connect = classmethod(connect)
    return original


# ``python SCRIPT_LAUNCHER script.py ARGS``: runs the script with the compatible node where needed.
SCRIPT_LAUNCHER = str(Path(__file__).with_name("compatible_script.py"))


def script_command(script: Path | str, *args: str) -> list[str]:
    """The command line that runs a repository script against the test server, both engines."""
    if compatible_node_needed():
        return [sys.executable, SCRIPT_LAUNCHER, str(script), *args]
    return [sys.executable, str(script), *args]


def server_settings(engine: str, request: pytest.FixtureRequest, **overrides: Any) -> LexicalSettings:
    """Settings addressing a fresh, unique index on the engine's test server."""
    fields: dict[str, Any] = {
        "backend": engine,
        "index": f"test-{uuid.uuid4().hex[:12]}",
        "request_timeout_s": 10,
        "retries": 1,
    }
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
    if compatible_node_needed():
        return ElasticsearchRetriever(settings, ElasticsearchRetriever.connect(settings, node_class=CompatibleJsonNode))
    return ElasticsearchRetriever(settings)


def start_osmem() -> Any:
    """A fresh osmem-server process (an ``OsmemServer``; ``close()`` it); skips the test if it cannot start."""
    osmem = pytest.importorskip("osmem_server", reason="osmem-server is not installed (pip install -e '.[dev]')")
    try:
        return osmem.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)
    except (osmem.OsmemError, OSError) as exc:
        pytest.skip(f"osmem-server cannot start here: {exc}")


@contextmanager
def frozen(server: Any) -> Iterator[None]:
    """The server's process stopped (SIGSTOP) inside the block: connections are accepted by the kernel and
    never answered, as with a cluster node in a long GC pause or a hung VM; resumed (SIGCONT) after."""
    os.kill(server.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(server.pid, signal.SIGCONT)
