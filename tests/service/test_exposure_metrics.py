import tracemalloc

from prometheus_client import REGISTRY

from search_rerank.core.longtail import TIERS
from search_rerank.core.settings import LongTailSettings
from search_rerank.serving import create_app
from search_rerank.serving.metrics import ShownWindow, observe_exposure


def _value(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _impressions():
    return sum(_value("search_rerank_impressions_total", tier=t) for t in TIERS)


def test_shown_window_counts_distinct_products_and_forgets_old_pages():
    window = ShownWindow(60.0)
    assert window.add(["a", "b"], now=0.0) == 2
    assert window.add(["b", "c"], now=30.0) == 3
    assert window.add(["c"], now=61.0) == 2  # the page at t=0 left the window: a is gone, b stays


def test_shown_window_memory_follows_the_products_shown_not_the_searches():
    window = ShownWindow(3600.0)
    page = [f"p{i}" for i in range(100)]
    tracemalloc.start()
    try:
        window.add(page, now=0.0)
        before, _ = tracemalloc.get_traced_memory()
        for second in range(1, 20_001):  # twenty thousand searches within the hour, the same hundred products
            window.add(page, now=float(second) / 10)
        after, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert window.add(page, now=2001.0) == 100
    assert after - before < 1_000_000  # a page kept per search held about 900 bytes each: 18 MB here


def test_tail_share_of_the_top_ten_is_observed_per_first_page():
    popularity = {"h": 0.99, "t1": 0.01, "t2": 0.02, "m": 0.7}
    before = (_value("search_rerank_tail_share_top10_sum"), _value("search_rerank_tail_share_top10_count"))
    observe_exposure(["h", "t1", "t2", "m"], popularity, LongTailSettings())
    assert _value("search_rerank_tail_share_top10_count") == before[1] + 1
    assert abs(_value("search_rerank_tail_share_top10_sum") - before[0] - 0.5) < 1e-9


def test_a_later_page_counts_impressions_but_not_the_top_ten_share():
    before = _value("search_rerank_tail_share_top10_count")
    observe_exposure(["t1"], {"t1": 0.01}, LongTailSettings(), offset=10)
    assert _value("search_rerank_tail_share_top10_count") == before


def test_a_search_counts_one_impression_per_hit_shown(client):
    before = _impressions()
    hits = client.post("/search", json={"query": "sofa", "size": 7}).get_json()["hits"]
    assert _impressions() == before + len(hits) == before + 7


def test_a_click_event_is_counted_in_its_products_tier(settings, pipeline, tmp_path):
    service = settings.service.model_copy(update={"ubi_log_path": tmp_path / "ubi.ndjson"})
    client = create_app(settings.model_copy(update={"service": service}), pipeline).test_client()
    product = next(iter(pipeline.store)).id
    before = sum(_value("search_rerank_clicks_total", tier=t) for t in TIERS)
    event = {
        "action_name": "click",
        "query_id": "q1",
        "event_attributes": {"object": {"object_id": product}, "position": {"ordinal": 0}},
    }
    assert client.post("/ubi/events", json=event).status_code == 200
    assert sum(_value("search_rerank_clicks_total", tier=t) for t in TIERS) == before + 1
