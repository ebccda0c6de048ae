"""The per-worker result cache: repeated searches answered from it, and never across an index or settings change."""

import pytest
from prometheus_client import REGISTRY

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline, update_index
from search_rerank.serving import create_app
from search_rerank.serving.ops import reopen
from search_rerank.serving.result_cache import ResultCache

SOFAS = [Product(id=f"s{i}", title=f"sofa model {i}", brand="Acme", price=100.0 + i) for i in range(5)]


def lookups(outcome: str) -> float:
    return REGISTRY.get_sample_value("search_rerank_result_cache_lookups_total", {"outcome": outcome}) or 0.0


def search(client, query="oak table", **body):
    response = client.post("/search", json={"query": query, "size": 5, **body})
    assert response.status_code == 200
    return response.get_json()


def from_cache(body) -> bool:
    return set(body["timings_ms"]) == {"cache"}


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


class Broken:
    """A leg that is down: its answers are degraded, and must not be cached."""

    def __init__(self, leg):
        self.name = leg.name

    def warm_up(self):
        pass

    def search(self, query, k, filters=None):
        raise ConnectionError("leg unreachable")


def test_a_repeated_search_is_answered_from_the_cache_with_the_same_hits(client):
    first, second = search(client), search(client)
    assert not from_cache(first) and from_cache(second)
    assert [h["id"] for h in second["hits"]] == [h["id"] for h in first["hits"]]


def test_the_same_query_with_other_whitespace_is_a_hit(client):
    search(client, "oak  table ")
    assert from_cache(search(client, " oak table"))


@pytest.mark.parametrize(
    "change",
    [{"size": 3}, {"from": 5}, {"filters": {"brand": "Acme"}}, {"overrides": {"fusion": {"method": "rrf"}}}],
)
def test_another_page_filter_or_override_is_a_miss(client, change):
    search(client)
    assert not from_cache(search(client, **change))


def test_a_search_asking_for_more_candidates_than_served_is_not_cached(settings, pipeline, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "cache-admin-token")
    client = create_app(settings, pipeline).test_client()
    client.environ_base["HTTP_AUTHORIZATION"] = "Bearer cache-admin-token"  # more candidates than served need it
    more = {"overrides": {"dense": {"candidates": settings.dense.candidates + 1}}}
    search(client, **more)
    assert not from_cache(search(client, **more))


def test_a_search_asking_for_fewer_candidates_than_served_is_cached(client, settings):
    fewer = {"overrides": {"dense": {"candidates": settings.dense.candidates - 1}}}
    search(client, **fewer)
    assert from_cache(search(client, **fewer))


def test_hits_and_misses_are_counted_in_the_metrics(client):
    hits, misses = lookups("hit"), lookups("miss")
    search(client, "walnut desk")
    search(client, "walnut desk")
    assert (lookups("hit") - hits, lookups("miss") - misses) == (1, 1)
    assert b'search_rerank_result_cache_lookups_total{outcome="hit"}' in client.get("/metrics").data


def test_a_reload_empties_the_cache(app, client):
    search(client)
    reopen(app)
    assert not from_cache(search(client))


def test_an_in_place_update_of_the_index_is_a_miss(tmp_path):
    settings = Settings(index_dir=tmp_path / "idx", dense={"enabled": False}, rerank={"pretokenise": False})
    build_index(SOFAS, settings, progress=False)
    client = create_app(settings).test_client()
    assert "s4" in [h["id"] for h in search(client, "sofa", size=10)["hits"]]
    update_index([], ["s4"], settings, progress=False)
    body = search(client, "sofa", size=10)
    assert not from_cache(body) and "s4" not in [h["id"] for h in body["hits"]]


def test_the_cache_is_off_when_its_size_is_zero(settings, pipeline):
    off = settings.model_copy(update={"service": settings.service.model_copy(update={"cache_size": 0})})
    client = create_app(off, pipeline).test_client()
    search(client)
    assert not from_cache(search(client))


def test_an_entry_expires_after_the_ttl(settings, pipeline):
    clock = Clock()
    cache = ResultCache(size=10, ttl_s=30, clock=clock)
    cache.search(pipeline, "oak table", None, 5, 0, settings)
    clock.now += 29
    assert "cache" in cache.search(pipeline, "oak table", None, 5, 0, settings).ranking.timings_ms
    clock.now += 2
    assert "cache" not in cache.search(pipeline, "oak table", None, 5, 0, settings).ranking.timings_ms


def test_the_cache_holds_at_most_its_size_dropping_the_least_recently_used(settings, pipeline):
    cache = ResultCache(size=2, ttl_s=60)
    for query in ("oak table", "sofa", "oak table", "lamp"):  # "sofa" is the least recently used when "lamp" comes
        cache.search(pipeline, query, None, 5, 0, settings)
    assert len(cache) == 2
    assert "cache" in cache.search(pipeline, "oak table", None, 5, 0, settings).ranking.timings_ms
    assert "cache" not in cache.search(pipeline, "sofa", None, 5, 0, settings).ranking.timings_ms


def test_a_degraded_answer_is_not_cached(settings):
    pipeline = open_pipeline(settings)
    pipeline.legs["dense"] = Broken(pipeline.legs["dense"])
    cache = ResultCache(size=10, ttl_s=60)
    assert cache.search(pipeline, "oak table", None, 5, 0, settings).degraded
    assert len(cache) == 0
    pipeline.close()
