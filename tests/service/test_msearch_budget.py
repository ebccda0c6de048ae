"""A multi-search's time budget (``service.msearch_budget_s``): degrade, don't fail.

Each search of a ``_msearch`` runs the whole pipeline, and a reranked one costs a
CPU cross-encoder's ~0.8 s: fifty of them outlast any client's timeout. Past the
budget the remaining searches are still answered, each its own 200, without the
optional stages (the reranker, and a dense leg beside the lexical one), and say so.

The budget is spent for real: set below what reading the body alone takes, or
spent by the real reranker held behind a wrapper until released.
"""

import json
import threading
import time

import pytest
from prometheus_client import REGISTRY

from search_rerank.core.pipeline import NO_HITS_ASKED
from search_rerank.core.reasons import BUDGET_SPENT, TIMEOUT
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving import create_app

SPENT_AT_ONCE_S = 1e-6
"""A budget that reading the body alone outlasts: every search begins past it, however fast the machine."""
GENEROUS_S = 600.0
"""A budget no test machine spends, however loaded."""
HELD_S = 120.0
"""How long the held reranker blocks at most, and its own deadline: far beyond what any assertion waits for."""
SHOWN = {"query": {"multi_match": {"query": "oak table", "fields": ["title"]}}, "size": 5}
FACET = {**SHOWN, "size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}


class Held:
    """The real reranker (set when the app is made), each run of it first blocked until released (or HELD_S pass),
    its runs counted."""

    def __init__(self):
        self.reranker = None
        self.release = threading.Event()
        self.runs = 0

    def warm_up(self):
        self.reranker.warm_up()

    def run(self, query, candidates, texts, settings=None):
        self.runs += 1
        self.release.wait(HELD_S)
        return self.reranker.run(query, candidates, texts, settings)


@pytest.fixture
def make_client(settings, tiny_cross_encoder_dir):
    """``make_client(budget_s, held=None)``: a client of the app with the tiny cross-encoder, its own deadline
    HELD_S, and this multi-search budget; ``held`` (see Held) is put in front of the reranker, and released
    afterwards."""
    opened, held_rerankers = [], []

    def make(budget_s: float, held: Held | None = None):
        rerank = {"model": str(tiny_cross_encoder_dir), "require_card": False, "device": "cpu", "timeout_s": HELD_S}
        with_budget = settings.override(rerank=rerank, service={"msearch_budget_s": budget_s})
        pipeline = open_pipeline(with_budget)
        opened.append(pipeline)
        if held is not None:
            held.reranker, pipeline.reranker = pipeline.reranker, held
            held_rerankers.append(held)
        return create_app(with_budget, pipeline).test_client()

    yield make
    for held in held_rerankers:
        held.release.set()
    for pipeline in opened:
        pipeline.close()


def msearch(client, *bodies):
    header = json.dumps({"index": "products"})
    ndjson = "".join(f"{header}\n{json.dumps(body)}\n" for body in bodies)
    response = client.post("/_msearch", data=ndjson, content_type="application/x-ndjson")
    assert response.status_code == 200
    return response.get_json()["responses"]


def sample(name, **labels):
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_multi_search_within_its_budget_reranks_every_search_unflagged(make_client):
    other = {**SHOWN, "query": {"multi_match": {"query": "sofa", "fields": ["title"]}}}
    for answer in msearch(make_client(GENEROUS_S), SHOWN, other):
        assert answer["status"] == 200 and len(answer["hits"]["hits"]) == 5
        assert answer["search_rerank"]["degraded"] == {}
        assert "rerank" in answer["search_rerank"]["timings_ms"]


def test_a_multi_search_past_its_budget_answers_every_search_without_its_optional_stages(make_client):
    shown, counted = msearch(make_client(SPENT_AT_ONCE_S), SHOWN, FACET)
    assert shown["status"] == 200 and len(shown["hits"]["hits"]) == 5
    assert shown["search_rerank"]["degraded"] == {"rerank": BUDGET_SPENT, "dense": BUDGET_SPENT}
    assert counted["status"] == 200 and counted["aggregations"]["brands"]["buckets"]
    assert counted["search_rerank"]["degraded"] == {"dense": BUDGET_SPENT}
    assert counted["search_rerank"]["skipped"]["rerank"] == NO_HITS_ASKED


def test_a_knn_search_past_the_budget_is_still_answered_by_the_dense_leg_it_needs(make_client):
    """A knn retriever turns the lexical leg off: its dense leg is the answer, not an optional stage."""
    builder = {"text_embedding": {"model_id": "my-text-embedding-model", "model_text": "velvet armchair"}}
    knn = {"field": "vector", "query_vector_builder": builder, "k": 10, "num_candidates": 20}
    (answer,) = msearch(make_client(SPENT_AT_ONCE_S), {"retriever": {"knn": knn}, "size": 10})
    assert answer["status"] == 200 and len(answer["hits"]["hits"]) == 10
    assert "dense" not in answer["search_rerank"]["degraded"]


def test_a_search_begun_within_the_budget_waits_for_the_reranker_only_until_the_budget_ends(make_client):
    """The first search spends the budget in a reranker held far past its own deadline; the later ones never
    start it."""
    held = Held()
    client = make_client(5.0, held)
    started = time.perf_counter()
    first, *later = msearch(client, SHOWN, SHOWN, SHOWN)
    assert time.perf_counter() - started < HELD_S / 2
    assert first["search_rerank"]["degraded"] == {"rerank": TIMEOUT}
    assert all(answer["search_rerank"]["degraded"]["rerank"] == BUDGET_SPENT for answer in later)
    assert all(len(answer["hits"]["hits"]) == 5 for answer in (first, *later))
    assert held.runs == 1


def test_searches_past_the_budget_are_counted_as_degraded_answers(make_client):
    before = sample("search_rerank_degraded_answers_total", stage="rerank")
    msearch(make_client(SPENT_AT_ONCE_S), SHOWN, SHOWN, FACET)
    assert sample("search_rerank_degraded_answers_total", stage="rerank") == before + 2


def test_a_search_after_a_multi_search_past_its_budget_is_reranked_not_answered_from_the_cache(make_client):
    client = make_client(SPENT_AT_ONCE_S)
    msearch(client, SHOWN)
    answer = client.post("/products/_search", json=SHOWN).get_json()
    assert answer["search_rerank"]["degraded"] == {}
    assert "rerank" not in answer["search_rerank"]["skipped"]


@pytest.mark.parametrize("budget_s", [0, -1.0])
def test_the_budget_refuses_zero_and_negative_values_naming_the_setting(budget_s):
    with pytest.raises(ValueError, match="msearch_budget_s"):
        Settings(service={"msearch_budget_s": budget_s})


def test_a_reactivesearch_request_past_its_budget_answers_every_query_without_the_reranker(make_client):
    """ReactiveSearch 4 sends a page's result list and its facets in one request, searched one after the other."""
    client = make_client(SPENT_AT_ONCE_S)
    queries = [
        {"id": "search", "dataField": ["title"], "value": "oak table", "execute": False},
        {"id": "results", "react": {"and": ["search"]}, "size": 5},
        {"id": "brand", "type": "term", "dataField": "brand.keyword", "react": {"and": ["search"]}},
    ]
    response = client.post("/products/_reactivesearch", json={"query": queries})
    assert response.status_code == 200
    answer = response.get_json()
    assert answer["results"]["hits"]["hits"] and answer["brand"]["aggregations"]
    assert answer["results"]["search_rerank"]["degraded"]["rerank"] == BUDGET_SPENT
