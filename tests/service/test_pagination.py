"""Paging through a reranked list: every page is a slice of the one full ranking.

The pipeline reranks only the top window and ranks the rest below it in fused
order, so pages that straddle the window's edge are where a repeat or a gap
would show.
"""

import json

import pytest

from search_rerank.core.pipeline import NO_HITS_ASKED
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving import create_app

WINDOW = 7
POOL = {"lexical": {"candidates": 15}, "dense": {"candidates": 15}}


@pytest.fixture
def rerank_client(settings, tiny_cross_encoder_dir):
    # No stage deadlines: on a loaded machine a leg past its deadline is left out of one page's ranking and not
    # another's, and the pages would differ for that, not for paging (CI saw it once).
    reranked = settings.offline().model_copy(
        update={
            "rerank": settings.rerank.model_copy(
                update={
                    "model": str(tiny_cross_encoder_dir),
                    "window": WINDOW,
                    "timeout_s": 30.0,
                    "device": "cpu",
                    "require_card": False,
                }
            ),
        }
    )
    pipeline = open_pipeline(reranked)
    yield create_app(reranked, pipeline).test_client()
    pipeline.close()


def ids(client, query, size, offset):
    body = client.post("/search", json={"query": query, "size": size, "from": offset, "overrides": POOL}).get_json()
    assert not body["degraded"] and "rerank" not in body["skipped"]
    return [hit["id"] for hit in body["hits"]], body["total"]


@pytest.mark.parametrize("page_size", [1, 3, WINDOW, 10])
def test_pages_concatenate_to_the_full_ranking(rerank_client, page_size):
    whole, total = ids(rerank_client, "oak table", 50, 0)
    assert len(whole) == total > WINDOW
    paged = []
    for offset in range(0, total + page_size, page_size):
        page, _ = ids(rerank_client, "oak table", page_size, offset)
        paged += page
    assert paged == whole
    assert len(set(paged)) == len(paged)


def test_page_past_the_end_is_empty(rerank_client):
    _, total = ids(rerank_client, "oak table", 1, 0)
    assert ids(rerank_client, "oak table", 10, total) == ([], total)


def test_a_multi_search_counts_a_facet_without_reranking_and_with_the_shown_searchs_total(rerank_client):
    """Searchkit's shape: the search shown, and beside it one with no hits per refined facet."""
    header = json.dumps({"index": "products"})
    shown = {"query": {"multi_match": {"query": "oak table", "fields": ["title"]}}, "size": 5}
    facet = {**shown, "size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    lines = [header, json.dumps(shown), header, json.dumps(facet)]
    answer = rerank_client.post("/_msearch", data="\n".join(lines) + "\n", content_type="application/x-ndjson")
    searched, counted = answer.get_json()["responses"]
    assert "rerank" not in searched["search_rerank"]["skipped"]
    assert counted["search_rerank"]["skipped"]["rerank"] == NO_HITS_ASKED
    assert counted["hits"]["hits"] == []
    assert counted["hits"]["total"] == searched["hits"]["total"]
    assert counted["aggregations"]["brands"]["buckets"]
