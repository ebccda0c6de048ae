"""A search held to some of its matches, on both backends: ``min_score`` (only the matches scoring at least so
much), ``terminate_after`` (only the first so many, as Elasticsearch's clients ask whether anything matches), and
``track_scores`` (a page sorted by a field that keeps its hits' scores). Each was a 501 on the embedded index,
where a cluster answered it."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, catalog_on, ids, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="s1", title="sofa sofa sofa", brand="Acme", price=300.0),
    Product(id="s2", title="sofa", brand="Acme", price=200.0),
    Product(id="s3", title="corner sofa bed with grey cushions and oak legs", brand="Bolt", price=100.0),
    Product(id="s4", title="sofa cover for a large three seat couch in washable linen", brand="Bolt", price=50.0),
    Product(id="t1", title="oak table", brand="Crest", price=80.0),
    Product(id="t2", title="glass table", brand="Crest", price=90.0),
]
SOFA = {"match": {"title": "sofa"}}

embedded, client = backend_fixtures(CATALOG)


def scores(answer: dict) -> list[float]:
    return [hit["_score"] for hit in answer["hits"]["hits"]]


def a_least_score_between_the_matches(client) -> tuple[float, int]:
    """A ``min_score`` halfway between the best and the worst match's score, and how many score at least that."""
    found = scores(search(client, {"query": SOFA, "min_score": 0, "sort": [{"price": "asc"}], "track_scores": True}))
    assert len(found) == 4 and max(found) > min(found), found
    least = (max(found) + min(found)) / 2
    return least, sum(score >= least for score in found)


def test_min_score_keeps_only_the_matches_scoring_at_least_it(client):
    least, kept = a_least_score_between_the_matches(client)
    answer = search(client, {"query": SOFA, "min_score": least})
    assert 0 < kept < 4
    assert answer["hits"]["total"] == {"value": kept, "relation": "eq"}
    assert len(answer["hits"]["hits"]) == kept and all(score >= least for score in scores(answer)), answer


def test_min_score_holds_the_facets_to_the_same_matches(client):
    least, kept = a_least_score_between_the_matches(client)
    body = {"query": SOFA, "min_score": least, "size": 0, "aggs": {"b": {"terms": {"field": "brand.keyword"}}}}
    buckets = search(client, body)["aggregations"]["b"]["buckets"]
    assert sum(bucket["doc_count"] for bucket in buckets) == kept


def test_min_score_above_every_match_answers_no_hit(client):
    answer = search(client, {"query": SOFA, "min_score": 10_000})
    assert answer["hits"]["hits"] == [] and answer["hits"]["total"]["value"] == 0


def test_min_score_on_a_page_sorted_by_a_field_sorts_the_matches_it_keeps(client):
    least, kept = a_least_score_between_the_matches(client)
    body = {"query": SOFA, "min_score": least, "sort": [{"price": "asc"}], "track_scores": True}
    answer = search(client, body)
    prices = [hit["sort"][0] for hit in answer["hits"]["hits"]]
    assert len(prices) == kept and prices == sorted(prices)
    assert all(score >= least for score in scores(answer))


def test_track_scores_gives_the_hits_of_a_page_sorted_by_a_field_their_scores(client):
    answer = search(client, {"query": SOFA, "sort": [{"price": "asc"}], "track_scores": True})
    assert len(scores(answer)) == 4 and all(score > 0 for score in scores(answer))
    assert answer["hits"]["max_score"] == max(scores(answer))


def test_a_page_sorted_by_a_field_without_track_scores_has_no_scores(client):
    answer = search(client, {"query": SOFA, "sort": [{"price": "asc"}]})
    assert set(scores(answer)) == {None} and answer["hits"]["max_score"] is None


def test_terminate_after_one_says_whether_anything_matches_and_that_it_stopped_early(client):
    """Elasticsearch's own example, as its Go and JavaScript clients send it: ``?size=0&terminate_after=1``."""
    response = client.get("/products/_search", query_string={"size": "0", "terminate_after": "1", "q": "title:sofa"})
    assert response.status_code == 200, response.get_json()
    answer = response.get_json()
    assert answer["hits"]["total"]["value"] == 1 and answer["terminated_early"] is True


def test_terminate_after_past_the_matches_answers_what_the_search_answers_without_it(client):
    answer = search(client, {"query": SOFA, "terminate_after": 100})
    assert ids(answer) == ids(search(client, {"query": SOFA})) and {"s1", "s2", "s3", "s4"} <= set(ids(answer))
    assert not answer.get("terminated_early")


def test_terminate_after_holds_hits_and_facets_to_as_many_matches(client):
    body = {"query": SOFA, "terminate_after": 2, "aggs": {"b": {"terms": {"field": "brand.keyword"}}}}
    answer = search(client, body)
    assert len(ids(answer)) == 2 and set(ids(answer)) < {"s1", "s2", "s3", "s4"}
    assert sum(bucket["doc_count"] for bucket in answer["aggregations"]["b"]["buckets"]) == 2


def test_count_cut_short_by_terminate_after_counts_at_most_that_many(client):
    response = client.get("/products/_count", query_string={"q": "title:sofa", "terminate_after": "1"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["count"] == 1 and response.get_json()["terminated_early"] is True


def test_count_with_terminate_after_past_the_matches_counts_them_all(client):
    response = client.get("/products/_count", query_string={"q": "title:sofa", "terminate_after": "10"})
    assert response.get_json()["count"] == 4 and response.get_json()["terminated_early"] is False


def test_a_terminate_after_that_is_no_count_is_a_400_naming_it(client):
    for path in ("/products/_search", "/products/_count"):
        response = client.get(path, query_string={"terminate_after": "-1"})
        assert response.status_code == 400 and response.get_json()["error"]["field"] == "terminate_after"


def test_a_min_score_that_is_no_number_is_a_400_naming_it(client):
    response = client.post("/products/_search", json={"query": SOFA, "min_score": "high"})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "min_score"


@pytest.fixture(params=["embedded"])
def small_window(request):
    return catalog_on(request, CATALOG, max_result_window=2)


def test_min_score_keeping_more_matches_than_the_result_window_is_a_400_naming_it(small_window):
    """The embedded index holds a min_score's matches as their ids, at most a result window of them."""
    response = small_window.post("/products/_search", json={"query": SOFA, "min_score": 0, "size": 1})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "min_score"


def test_min_score_on_a_search_without_words_is_a_501_naming_it_on_the_embedded_index(embedded):
    """Its matches have no score there (Elasticsearch scores a match_all 1 and a filter 0)."""
    response = embedded.post("/products/_search", json={"query": {"match_all": {}}, "min_score": 0.5})
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "min_score"


def test_terminate_after_past_the_result_window_of_more_matches_is_a_400_naming_it(small_window):
    """Finding where to cut costs the embedded index a little for each match before it."""
    response = small_window.post("/products/_search", json={"query": SOFA, "terminate_after": 3, "size": 1})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "terminate_after"


LONG = "p" * 250


@pytest.fixture(params=["embedded"])
def long_ids(request):
    """Ids sharing more first characters than the id patterns write out (search_after.TEXT_PATTERN_CHARS)."""
    catalog = [Product(id=f"{LONG}{i}", title=f"sofa {i}", price=float(i)) for i in range(1, 5)]
    return catalog_on(request, catalog)


def test_terminate_after_on_ids_longer_than_the_patterns_holds_exactly_as_many(long_ids):
    answer = search(long_ids, {"query": SOFA, "terminate_after": 2, "size": 10})
    assert answer["hits"]["total"]["value"] == 2 and len(ids(answer)) == 2 and answer["terminated_early"] is True
    assert sorted(ids(answer)) == [f"{LONG}1", f"{LONG}2"]
