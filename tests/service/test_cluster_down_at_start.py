"""A service started while its cluster does not answer (the two started together, the cluster restarting) starts
and serves without the cluster's leg, flagging it, and is not ready meanwhile: a worker exited with the cluster's
traceback, and gunicorn's master then stopped the whole server. A cluster that answers that the settings are
wrong still stops a start."""

from __future__ import annotations

import pytest
from live_server import free_port

from search_rerank.backends.cluster import OpenSearchRetriever
from search_rerank.core.breaker import Guards
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import Settings
from search_rerank.core.store import ProductStore
from search_rerank.serving import create_app

CATALOG = [Product(id="p1", title="oak desk lamp"), Product(id="p2", title="brass floor lamp")]


@pytest.fixture
def client(tmp_path):
    """The service on a cluster leg whose address nothing listens on (one attempt, a short deadline)."""
    lexical = {"backend": "opensearch", "url": f"http://127.0.0.1:{free_port()}", "retries": 0, "timeout_s": 5.0}
    settings = Settings(index_dir=tmp_path / "unused", lexical=lexical, dense={"enabled": False})
    store = ProductStore(tmp_path / "products.sqlite")
    store.add(CATALOG)
    store.refresh_popularity()
    guards = Guards.from_settings(settings)
    pipeline = SearchPipeline(settings, {LEXICAL: guards.leg(OpenSearchRetriever(settings.lexical))}, store)
    yield create_app(settings, pipeline).test_client()
    guards.close()


def test_a_service_whose_cluster_does_not_answer_starts_not_ready(client):
    assert client.get("/ready").status_code == 503


def test_its_searches_are_answered_with_the_cluster_s_leg_flagged(client):
    answer = client.post("/search", json={"query": "lamp"})
    assert answer.status_code == 200
    assert answer.get_json()["degraded"][LEXICAL]
