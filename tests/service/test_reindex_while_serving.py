"""A running service through a reindex of its index directory: it answers from the version it opened until it
reloads, however few old versions the reindex keeps."""

from __future__ import annotations

import threading

import pytest

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index
from search_rerank.indexing.versions import IndexVersions
from search_rerank.serving import create_app

OLD = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
NEW = [Product(id="a", title="red sofa"), Product(id="c", title="brass lamp")]
TOKEN = "reindex-token"


@pytest.fixture
def settings(tmp_path, monkeypatch) -> Settings:
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    settings = Settings(index_dir=tmp_path / "index", dense={"enabled": False})
    build_index(OLD, settings, progress=False)
    return settings


def on_a_new_thread(client, query: str) -> tuple[int, list[str]]:
    """A search answered on a thread that has not served one before, as a server's thread pool grows under load."""
    answer: dict[str, tuple[int, list[str]]] = {}

    def search() -> None:
        response = client.post("/search", json={"query": query})
        answer["it"] = (response.status_code, [hit["id"] for hit in (response.get_json() or {}).get("hits", [])])

    thread = threading.Thread(target=search)
    thread.start()
    thread.join(60)
    return answer["it"]


def test_a_reindex_keeping_no_old_version_leaves_the_running_service_answering_until_it_reloads(settings):
    client = create_app(settings).test_client()
    build_index(NEW, settings, progress=False, keep=0)
    assert on_a_new_thread(client, "table") == (200, ["b"])


def test_the_version_a_service_served_goes_at_the_first_reindex_after_its_reload(settings):
    client = create_app(settings).test_client()
    served = IndexVersions(settings.index_dir).current()
    build_index(NEW, settings, progress=False, keep=0)
    assert served in IndexVersions(settings.index_dir).complete()
    assert client.post("/admin/reload", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert on_a_new_thread(client, "lamp") == (200, ["c"])
    build_index(OLD, settings, progress=False, keep=0)
    assert served not in IndexVersions(settings.index_dir).complete()
