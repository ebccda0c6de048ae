"""Small ``_search`` bodies that cost the embedded backend far more than their size: each is refused before the work.

A browser may send any Query DSL, so what a body can make tantivy do must be bounded by the body itself, not by the
catalog holding nothing that makes it expensive: a refusal names where, as Elasticsearch's limits do.
"""

from __future__ import annotations

import json
import time

import pytest
from small_service import small_app, small_index

from search_rerank.serving.embedded_search import MAX_SORT_VALUES

ES_SEARCH = "/products/_search"


@pytest.fixture(scope="module")
def costs_index(tmp_path_factory, tiny_bert_dir):
    """One index for every client of this module: each serves it with its own service settings."""
    return small_index(tmp_path_factory.mktemp("query-costs"), tiny_bert_dir)


def served(settings, **service):
    """A test client of the app over ``settings`` with these ``service`` settings, its pipeline closed after."""
    app, pipeline = small_app(settings, **service)
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def costs_client(costs_index):
    yield from served(costs_index)


def refusal(response) -> dict:
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    return response.get_json()["error"]


def filtered(clause: dict) -> dict:
    return {"size": 1, "query": {"bool": {"filter": [clause]}}}


def test_a_long_phrase_with_a_large_slop_is_a_400_naming_it(costs_client):
    # 187 bytes: forty times "a" within 100,000 positions took 405 s and 3 GB on 20,000 generated products.
    phrase = {"match_phrase": {"description": {"query": " ".join(["a"] * 40), "slop": 100_000}}}
    error = refusal(costs_client.post(ES_SEARCH, json=filtered(phrase)))
    assert error["field"] == "query.bool.filter[0].match_phrase.description"
    assert "slop of at most 3" in error["reason"]


def test_a_query_string_phrase_with_a_large_slop_is_a_400_in_the_search_box_too(costs_client):
    # 90 characters, within service.max_query_length, on the scored (relevance) page.
    body = {"query": {"query_string": {"query": '"' + " ".join(["a"] * 40) + '"~100000'}}}
    assert refusal(costs_client.post(ES_SEARCH, json=body))["field"] == "query.query_string.query"


@pytest.mark.parametrize(
    "phrase, slop",
    [("the sofa and the chair", 3), ("leather corner sofa bed", 100_000), (" ".join(["sofa"] * 300), 0)],
)
def test_a_phrase_of_few_words_or_a_small_slop_is_answered(costs_client, phrase, slop):
    clause = {"match_phrase": {"description": {"query": phrase, "slop": slop}}}
    assert costs_client.post(ES_SEARCH, json=filtered(clause)).status_code == 200


def test_many_short_sloppy_phrases_in_one_body_are_a_400_naming_the_one_past_the_limit(costs_client):
    # 600 of them (44 KB) took 3.9 s on 20,000 products, each allowed alone.
    clauses = [{"match_phrase": {"description": {"query": f"a b{i} c", "slop": 50}}} for i in range(40)]
    body = {"size": 1, "query": {"bool": {"should": clauses}}}
    error = refusal(costs_client.post(ES_SEARCH, json=body))
    assert error["field"] == "query.bool.should[32].match_phrase.description"
    assert "service.max_sloppy_phrases" in error["reason"]


def test_as_many_sloppy_phrases_as_the_limit_are_answered(costs_client):
    clauses = [{"match_phrase": {"description": {"query": f"a b{i} c", "slop": 50}}} for i in range(32)]
    assert costs_client.post(ES_SEARCH, json={"size": 1, "query": {"bool": {"should": clauses}}}).status_code == 200


def filters(count: int, below: dict | None = None) -> dict:
    named = {"filters": {"filters": {f"f{i}": {"term": {"brand": f"b{i}"}} for i in range(count)}}}
    return {**named, "aggs": below} if below is not None else named


def test_filters_under_filters_past_the_bucket_limit_are_refused_before_they_are_counted(costs_client):
    # 260 x 260 buckets (67,600) pass search.max_buckets (65,536), which the body alone says; each bucket is a
    # tantivy search here, and 65,536 of them ran (seconds) before the limit was found.
    baseline = {"size": 0, "aggs": {"f": filters(1000)}}
    started = time.perf_counter()
    assert costs_client.post(ES_SEARCH, json=baseline).status_code == 200
    thousand_buckets_s = time.perf_counter() - started
    nested = {"size": 0, "aggs": {"f": filters(260, {"g": filters(260)})}}
    started = time.perf_counter()
    error = refusal(costs_client.post(ES_SEARCH, json=nested))
    assert error["type"] == "too_many_buckets_exception"
    assert time.perf_counter() - started < 10 * thousand_buckets_s


def test_filter_buckets_over_a_query_of_many_clauses_are_a_400_naming_the_aggregations(costs_client):
    # Each filter bucket is a search of the query within its filter: 300 over an 800-clause query held a worker
    # for 113 s.
    query = {"bool": {"filter": [{"term": {"category.keyword": f"Type {n}"}} for n in range(800)]}}
    error = refusal(costs_client.post(ES_SEARCH, json={"size": 0, "query": query, "aggs": {"f": filters(300)}}))
    assert error["field"] == "aggs" and "10,000" in error["reason"]


def test_as_many_filter_buckets_over_a_query_of_a_few_clauses_are_answered(costs_client):
    query = {"bool": {"filter": [{"term": {"category.keyword": f"Type {n}"}} for n in range(3)]}}
    answer = costs_client.post(ES_SEARCH, json={"size": 0, "query": query, "aggs": {"f": filters(300)}})
    assert answer.status_code == 200 and len(answer.get_json()["aggregations"]["f"]["buckets"]) == 300


def test_suggesters_looking_up_more_words_than_max_suggest_words_are_a_400_naming_the_one_past_it(costs_client):
    # Each word of a term or phrase suggester's text, in each field it draws from, walks that field's term
    # dictionary and reads the products its suggestions are written in: 64 words of 20 options each took 1.5 s on
    # 20,000 products before the products were read once per request (47 ms since).
    suggesters = {f"s{i}": {"text": "sofz lampz", "term": {"field": "description"}} for i in range(33)}
    error = refusal(costs_client.post(ES_SEARCH, json={"size": 0, "suggest": suggesters}))
    assert error["field"] == "suggest.s32"
    assert "service.max_suggest_words (64)" in error["reason"]


def test_a_phrase_suggester_counts_its_words_once_per_generator(costs_client):
    generators = [{"field": field} for field in ("title", "description", "attributes")]
    words = " ".join(["sofz"] * 9)  # under the default token_limit (10)
    body = {"text": words, "phrase": {"field": "title", "direct_generator": generators}}
    suggesters = {"a": body, "b": body, "c": body}  # 81 words looked up
    assert refusal(costs_client.post(ES_SEARCH, json={"suggest": suggesters}))["field"] == "suggest.c"
    assert costs_client.post(ES_SEARCH, json={"suggest": {"a": body, "b": body}}).status_code == 200


@pytest.fixture(scope="module")
def hurried_client(costs_index):
    """The service with no time at all to highlight a page."""
    yield from served(costs_index, highlight_timeout_s=1e-9)


def test_a_page_whose_highlights_run_past_their_time_is_answered_without_them_and_says_so(hurried_client):
    # A page of 10,000 hits with every field highlighted held a worker for 8 s: the rest of the page goes without.
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"*": {}}, "require_field_match": False}}
    answer = hurried_client.post(ES_SEARCH, json=body).get_json()
    assert answer["hits"]["hits"] and not any("highlight" in hit for hit in answer["hits"]["hits"])
    assert answer["search_rerank"]["degraded"]["highlight"] == "timeout"


def test_a_page_highlighted_within_its_time_says_nothing_is_left_out(costs_client):
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": {}}}}
    answer = costs_client.post(ES_SEARCH, json=body).get_json()
    assert any("highlight" in hit for hit in answer["hits"]["hits"])
    assert "highlight" not in answer["search_rerank"]["degraded"]


@pytest.fixture(scope="module")
def spent_client(costs_index):
    """The service with no time at all for a multi-search's optional parts."""
    yield from served(costs_index, msearch_budget_s=1e-9)


def test_a_multi_searchs_highlights_go_without_past_its_budget(spent_client):
    # Fifty searches of a page each highlighted within its own time added up to fifty times that.
    search = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": {}}}}
    lines = "".join(json.dumps(line) + "\n" for line in [{}, search, {}, search])
    answer = spent_client.post("/products/_msearch", data=lines, content_type="application/x-ndjson").get_json()
    for response in answer["responses"]:
        assert response["hits"]["hits"] and not any("highlight" in hit for hit in response["hits"]["hits"])
        assert response["search_rerank"]["degraded"]["highlight"] == "timeout"


def test_a_sorted_page_carrying_more_sort_values_than_allowed_is_a_400_naming_the_sort(costs_client):
    # 7,000 keys on a page of 10,000 hits took 24 s and 1.25 GB: each hit carries every key's value.
    body = {"size": 10_000, "sort": ["price"] * (MAX_SORT_VALUES // 10_000 + 1)}
    assert refusal(costs_client.post(ES_SEARCH, json=body))["field"] == "sort"


def test_a_sorted_page_carrying_as_many_sort_values_as_allowed_is_answered(costs_client):
    body = {"size": 10_000, "sort": ["price"] * (MAX_SORT_VALUES // 10_000)}
    assert costs_client.post(ES_SEARCH, json=body).status_code == 200
