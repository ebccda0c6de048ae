"""Probes of the pinned query and retriever (commit 513cf61) against Elasticsearch's behaviour.

Each test states what Elasticsearch does (PinnedQueryBuilder / PinnedRetrieverBuilder, the pinned query and
retriever reference pages); a failing one is a difference found by probing.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from search_rerank.core.product import Product

from test_pinned import CATALOG, SOFA, SOFAS, ids, pinned, ranking, search  # noqa: F401
from test_pinned import client, embedded  # noqa: F401  (the fixtures, parametrized over both backends)
from test_interleave import ON, SHOPPER, TOKEN, b_file, make_client, ubi_path  # noqa: F401


def status(client, body: dict[str, Any], path: str = "/products/_search") -> tuple[int, dict[str, Any]]:
    response = client.post(path, json=body)
    return response.status_code, response.get_json()


# ------------------------------------------------------------------ validation as Elasticsearch's


def test_a_pinned_query_with_neither_ids_nor_docs_is_a_400(client):
    # PinnedQueryBuilder: "[pinned] ids and docs cannot both be null"
    code, answer = status(client, {"query": {"pinned": {"organic": SOFA}}})
    assert code == 400, answer
    assert "query.pinned" in json.dumps(answer)


def test_a_pinned_query_with_null_ids_is_a_400(client):
    code, answer = status(client, {"query": {"pinned": {"ids": None, "organic": SOFA}}})
    assert code == 400, answer


def test_a_pinned_id_listed_twice_is_a_400(client):
    # PinnedQueryBuilder: "[pinned] duplicate id found in list: t1"
    code, answer = status(client, {"query": pinned("t1", "t1")})
    assert code == 400, answer
    assert "query.pinned.ids" in json.dumps(answer)


def test_a_pinned_doc_listed_twice_is_a_400(client):
    # PinnedQueryBuilder: "[pinned] duplicate doc found in list"
    docs = [{"_index": "products", "_id": "t1"}, {"_index": "products", "_id": "t1"}]
    code, answer = status(client, {"query": {"pinned": {"docs": docs, "organic": SOFA}}})
    assert code == 400, answer


def test_an_unknown_key_in_a_pinned_query_is_a_400_naming_it(client):
    # ConstructingObjectParser: "[pinned] unknown field [id]" -- a typo must not silently pin nothing.
    code, answer = status(client, {"query": {"pinned": {"id": ["t1"], "organic": SOFA}}})
    assert code == 400, answer
    assert "query.pinned.id" in json.dumps(answer)


def test_a_pinned_doc_of_another_index_is_not_pinned(client):
    # PinnedQueryBuilder.doToQuery: a doc is pinned only when its _index is null or matches the searched index.
    query = {"pinned": {"docs": [{"_index": "other-index", "_id": "l1"}], "organic": SOFA}}
    found = ids(search(client, {"query": query, "size": 20}))
    assert "l1" not in found


def test_a_pinned_retriever_with_empty_ids_is_a_400(client):
    # PinnedRetrieverBuilder: "Either 'ids' or 'docs' must be provided and non-empty for pinned retriever"
    body = {"retriever": {"pinned": {"ids": [], "retriever": {"standard": {"query": SOFA}}}}}
    code, answer = status(client, body)
    assert code == 400, answer


def test_a_pinned_retriever_with_neither_ids_nor_docs_is_a_400(client):
    body = {"retriever": {"pinned": {"retriever": {"standard": {"query": SOFA}}}}}
    code, answer = status(client, body)
    assert code == 400, answer


# ------------------------------------------------------------------ pages and totals


def expected_total(client, *pins: str) -> int:
    """The organic query's total plus the pinned products it does not match (as test_pinned counts them)."""
    organic = search(client, {"query": SOFA, "size": 20})
    return organic["hits"]["total"]["value"] + len(set(pins) - set(ids(organic)))


def test_size_zero_counts_the_pinned_products(client):
    answer = search(client, {"query": pinned("t1", "l2"), "size": 0})
    assert answer["hits"]["hits"] == []
    assert answer["hits"]["total"] == {"value": expected_total(client, "t1", "l2"), "relation": "eq"}


def test_a_page_beyond_the_matches_is_empty_with_the_full_total(client):
    answer = search(client, {"query": pinned("t1", "l2"), "from": 20, "size": 5})
    assert answer["hits"]["hits"] == []
    assert answer["hits"]["total"]["value"] == expected_total(client, "t1", "l2")


def test_a_deep_page_at_the_result_window_is_answered(client):
    answer = search(client, {"query": pinned("t1"), "from": 990, "size": 10})
    assert answer["hits"]["hits"] == []


def test_uri_from_and_size_page_the_pinned_list(client):
    whole = ids(search(client, {"query": pinned("t1", "l2"), "size": 6}))
    response = client.post("/products/_search?from=1&size=3", json={"query": pinned("t1", "l2")})
    assert response.status_code == 200
    assert ids(response.get_json()) == whole[1:4]


def test_a_numeric_track_total_hits_caps_the_total(client):
    answer = search(client, {"query": pinned("t1", "l2"), "track_total_hits": 3})
    assert answer["hits"]["total"] == {"value": 3, "relation": "gte"}
    assert ids(answer)[:2] == ["t1", "l2"]


def test_track_total_hits_false_leaves_the_total_out(client):
    answer = search(client, {"query": pinned("t1", "l2"), "track_total_hits": False})
    assert "total" not in answer["hits"] and ids(answer)[:2] == ["t1", "l2"]


def test_rest_total_hits_as_int_counts_the_pinned_products(client):
    response = client.post("/products/_search?rest_total_hits_as_int=true", json={"query": pinned("t1", "l2")})
    assert response.status_code == 200
    assert response.get_json()["hits"]["total"] == expected_total(client, "t1", "l2")


def test_filter_path_keeps_the_pinned_ids(client):
    response = client.post("/products/_search?filter_path=hits.hits._id", json={"query": pinned("t1", "l2")})
    assert response.status_code == 200
    assert [h["_id"] for h in response.get_json()["hits"]["hits"]][:2] == ["t1", "l2"]


# ------------------------------------------------------------------ msearch and count


def test_a_multi_search_pins_only_in_the_pinned_search(client):
    lines = [{}, {"query": SOFA, "size": 10}, {}, {"query": pinned("l2"), "size": 10}, {}, {"query": SOFA}]
    data = "\n".join(json.dumps(line) for line in lines) + "\n"
    response = client.post("/products/_msearch", data=data, content_type="application/x-ndjson")
    assert response.status_code == 200
    first, second, third = response.get_json()["responses"]
    assert ids(second)[0] == "l2" and ids(first)[0] != "l2" and ids(third)[0] != "l2"
    assert ids(second)[1:] == [pid for pid in ids(first) if pid != "l2"][:9]


def test_a_multi_search_with_a_malformed_pinned_search_fails_that_one_alone(client):
    lines = [{}, {"query": {"pinned": {"ids": ["t1"]}}}, {}, {"query": pinned("l2")}]
    data = "\n".join(json.dumps(line) for line in lines) + "\n"
    response = client.post("/products/_msearch", data=data, content_type="application/x-ndjson")
    assert response.status_code == 200
    bad, good = response.get_json()["responses"]
    assert bad["status"] == 400 and good["status"] == 200 and ids(good)[0] == "l2"


def test_a_count_of_a_pinned_query_with_duplicate_ids_is_a_400(client):
    code, _ = status(client, {"query": pinned("t1", "t1")}, "/products/_count")
    assert code == 400


# ------------------------------------------------------------------ the answer's parts


def test_highlights_on_a_pinned_sofa_mark_its_words(client):
    answer = search(client, {"query": pinned("s4", "t1"), "highlight": {"fields": {"title": {}}}})
    hits = {h["_id"]: h for h in answer["hits"]["hits"]}
    assert "highlight" in hits["s4"] and "highlight" not in hits["t1"]


def test_source_filtering_applies_to_pinned_hits(client):
    answer = search(client, {"query": pinned("t1"), "_source": ["title"]})
    assert answer["hits"]["hits"][0]["_id"] == "t1"
    assert answer["hits"]["hits"][0]["_source"] == {"title": "Oak table"}


def test_aggregations_beside_a_post_filter_count_the_pinned_products(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}}}
    bolt = {"term": {"brand.keyword": "Bolt"}}
    answer = search(client, {"query": pinned("t1", "l2"), "aggs": aggs, "post_filter": bolt, "size": 20})
    counts = {b["key"]: b["doc_count"] for b in answer["aggregations"]["brands"]["buckets"]}
    assert counts == {"Acme": 2, "Bolt": 3, "Cosy": 1, "Dune": 1}
    assert ids(answer)[0] == "t1" and "l2" not in ids(answer)
    assert answer["hits"]["total"]["value"] == 3  # s3, s5, t1


def test_pinned_scores_stay_in_order_on_a_deeper_page(client):
    answer = search(client, {"query": pinned("t1", "l2"), "from": 1, "size": 3})
    scores = [h["_score"] for h in answer["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True)


# ------------------------------------------------------------------ where the pinned query is


def test_a_pinned_query_in_a_bool_should_beside_another_clause_puts_its_products_first(client):
    query = {"bool": {"should": [pinned("l2", organic={"match": {"title": "table"}}), {"match": {"title": "sofa"}}]}}
    found = ids(search(client, {"query": query, "size": 10}))
    assert found[0] == "l2"
    assert {"t1", "t2"} | SOFAS <= set(found)


def test_a_pinned_query_in_dis_max_puts_its_products_first(client):
    query = {"dis_max": {"queries": [pinned("l2"), {"match": {"title": "table"}}]}}
    code, answer = status(client, {"query": query, "size": 10})
    assert code == 200, answer
    assert ids(answer)[0] == "l2"


def test_a_pinned_query_in_constant_score_puts_nothing_first(client):
    query = {"bool": {"must": SOFA, "should": [{"constant_score": {"filter": pinned("t1")}}]}}
    found = ids(search(client, {"query": query, "size": 10}))
    assert found[:1] != ["t1"]


def test_a_pinned_query_whose_organic_query_has_a_filter_still_pins_beyond_it(client):
    organic = {"bool": {"must": SOFA, "filter": [{"term": {"brand.keyword": "Acme"}}]}}
    found = ids(search(client, {"query": pinned("t1", organic=organic), "size": 10}))
    assert found == ["t1", *ranking(client, organic)]


def test_a_sort_led_by_score_keeps_the_pinned_products_first(client):
    found = ids(search(client, {"query": pinned("l2", "t1"), "sort": ["_score", {"price": "asc"}], "size": 10}))
    assert found[:2] == ["l2", "t1"]


def test_a_browse_page_after_the_first_continues_the_pinned_list(client):
    query = pinned("l2", "t1", organic={"match_all": {}})
    whole = ids(search(client, {"query": query, "size": 9}))
    assert whole[:2] == ["l2", "t1"] and len(set(whole)) == 9
    pages = [ids(search(client, {"query": query, "from": start, "size": 3})) for start in (0, 3, 6)]
    assert [pid for page in pages for pid in page] == whole


def test_a_browse_page_gives_the_pinned_products_scores_above_the_rest(client):
    answer = search(client, {"query": pinned("l2", organic={"match_all": {}}), "size": 3})
    scores = [h["_score"] for h in answer["hits"]["hits"]]
    assert None not in scores and scores == sorted(scores, reverse=True) and scores[0] > scores[1]


def test_a_pinned_query_whose_organic_query_matches_nothing_still_shows_the_pinned(client):
    answer = search(client, {"query": pinned("t1", organic={"match_none": {}})})
    assert ids(answer) == ["t1"] and answer["hits"]["total"]["value"] == 1


def test_a_pinned_query_whose_organic_words_match_nothing_still_shows_the_pinned(client):
    answer = search(client, {"query": pinned("t1", organic={"match": {"title": {"query": "zebra", "operator": "and"}}})})
    assert ids(answer)[0] == "t1"


def test_pinned_explain_true_on_a_deep_page(client):
    answer = search(client, {"query": pinned("l2", "t1"), "explain": True, "from": 1, "size": 2})
    explanations = answer["search_rerank"]["explanations"]
    assert ids(answer)[0] == "t1" and explanations["t1"]["pinned"] == 2.0


# ------------------------------------------------------------------ many matches: the candidates' window

MANY = [Product(id=f"m{i:02d}", title=f"Sofa model {i}", brand="Acme", price=100.0 + i, sales=i) for i in range(60)] + [
    Product(id="tab", title="Oak table", brand="Bolt", price=250.0, sales=3)
]


@pytest.fixture(params=["embedded", "opensearch"])
def many(request, catalog_client):
    if request.param == "embedded":
        return catalog_client(MANY)
    return request.getfixturevalue("make_cluster_app")("opensearch", catalog=MANY).test_client()


def test_pages_past_the_ranked_list_hold_every_match_once_with_the_pinned_first(many):
    query = pinned("tab", organic={"match": {"title": "sofa"}})
    first = search(many, {"query": query, "size": 10})
    total = first["hits"]["total"]["value"]
    assert ids(first)[0] == "tab"
    pages = [ids(search(many, {"query": query, "from": start, "size": 10})) for start in range(0, 70, 10)]
    seen = [pid for page in pages for pid in page]
    assert len(seen) == len(set(seen))
    if first["hits"]["total"]["relation"] == "eq":
        assert total == 61 and len(seen) == 61


def test_the_total_counts_a_pinned_product_beyond_the_ranked_window(many):
    organic = {"match": {"title": "sofa"}}
    plain = search(many, {"query": organic, "size": 10})["hits"]["total"]
    pinned_total = search(many, {"query": pinned("tab", organic=organic), "size": 10})["hits"]["total"]
    if plain["relation"] == "eq":
        assert pinned_total == {"value": plain["value"] + 1, "relation": "eq"}
    else:
        assert pinned_total["value"] >= plain["value"]


# ------------------------------------------------------------------ the retriever's other parameters


@pytest.mark.parametrize("window", ["x", -1, 0])
def test_an_invalid_rank_window_size_of_a_pinned_retriever_is_a_400_naming_it(client, window):
    # PinnedRetrieverBuilder: declareInt(rank_window_size); the other retrievers here check it (_window).
    body = {"retriever": {"pinned": {"ids": ["t1"], "retriever": {"standard": {"query": SOFA}}, "rank_window_size": window}}}
    code, answer = status(client, body)
    assert code == 400, answer
    assert "retriever.pinned.rank_window_size" in json.dumps(answer)


# ------------------------------------------------------------------ interleaving


def test_a_pinned_product_that_a_ranking_holds_is_on_neither_team(settings, pipeline, ubi_path, b_file, monkeypatch):
    """The commit: "a pinned product on neither interleaving team" -- also when the rankings hold it (a sofa pinned
    for "sofa"), since it is shown first by the pin, not by the team that drafted it."""
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    ab = make_client(settings, pipeline, ubi_path, interleave_with=b_file)
    plain = ab.post("/products/_search", json={"query": SOFA, "size": 6}, headers={**SHOPPER, **ON}).get_json()
    held = plain["hits"]["hits"][-1]["_id"]  # a product both rankings hold, not first
    query = {"pinned": {"ids": [held], "organic": SOFA}}
    body = ab.post("/products/_search", json={"query": query, "size": 6}, headers={**SHOPPER, **ON}).get_json()
    teams = body["search_rerank"]["interleaving"]["teams"]
    assert body["hits"]["hits"][0]["_id"] == held
    assert teams[0] is None, teams


# ------------------------------------------------------------------ a page the cluster orders (min_score, terminate_after)


@pytest.mark.parametrize("extra", [{"min_score": 0.001}, {"terminate_after": 1000}])
def test_a_pinned_product_past_the_clusters_own_page_keeps_its_score_and_highlight(client, extra):
    # s4 ranks low for "sofa"; pinned, it is first on a page of one, scored above everything, its words marked
    # (the boost keeps the cluster's own page of one, which min_score / terminate_after make the answer, on s1).
    boosted = {"match": {"title": {"query": "sofa", "boost": 100}}}
    body = {"query": pinned("s4", organic=boosted), "size": 1, "highlight": {"fields": {"title": {}}}, **extra}
    code, answer = status(client, body)
    if code == 501:
        pytest.skip(f"{extra} is not served on this backend")
    assert code == 200, answer
    hit = answer["hits"]["hits"][0]
    assert hit["_id"] == "s4"
    assert "highlight" in hit, hit
    assert hit["_score"] is not None and hit["_score"] >= (answer["hits"]["max_score"] or 0), hit


@pytest.mark.parametrize("extra", [{"min_score": 0.001}, {"terminate_after": 1000}])
def test_a_pinned_product_outside_the_clusters_own_page_is_scored_above_the_rest(client, extra):
    # t1 and l2 match only by their ids: the cluster's own page (min_score / terminate_after makes the page the
    # cluster's) is the boosted sofas, without them.
    boosted = {"match": {"title": {"query": "sofa", "boost": 100}}}
    body = {"query": pinned("t1", "l2", organic=boosted), "size": 3, **extra}
    code, answer = status(client, body)
    if code == 501:
        pytest.skip(f"{extra} is not served on this backend")
    assert code == 200, answer
    hits = answer["hits"]["hits"]
    assert [h["_id"] for h in hits][:2] == ["t1", "l2"]
    scores = [h["_score"] for h in hits]
    assert None not in scores and scores == sorted(scores, reverse=True), scores
    assert answer["hits"]["max_score"] == scores[0]
