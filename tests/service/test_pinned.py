"""A ``pinned`` query (Searchkit's ``PinnedResult`` query rule, Elastic's curations) puts the products a
merchandiser chose first, in their order, then the pipeline's ranking, on the embedded backend and on a cluster
alike; the search's filters still hold them, and the total and facets count them as Elasticsearch does."""

from __future__ import annotations

import json
from typing import Any

import pytest
from both_backends import BACKENDS, backend_fixtures, catalog_on, ids, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="s1", title="Sofa", brand="Acme", price=499.0, sales=120),
    Product(id="s2", title="Leather sofa", brand="Acme", price=899.0, sales=40),
    Product(id="s3", title="Soft velvet sofa", brand="Bolt", price=650.0, sales=8),
    Product(id="s4", title="Sofa bed for guests", brand="Cosy", price=700.0, sales=3),
    Product(id="s5", title="Small grey two seat sofa", brand="Bolt", price=299.0, sales=75),
    Product(id="t1", title="Oak table", brand="Bolt", price=249.5, sales=60),
    Product(id="t2", title="Glass table", brand="Acme", price=199.0, sales=22),
    Product(id="l1", title="Desk lamp", brand="Acme", price=39.0, sales=15),
    Product(id="l2", title="Floor lamp", brand="Dune", price=89.0, sales=5),
]
SOFAS = {"s1", "s2", "s3", "s4", "s5"}
SOFA = {"match": {"title": "sofa"}}


embedded, client = backend_fixtures(CATALOG)


def pinned(*pins: str, organic: dict[str, Any] = SOFA) -> dict[str, Any]:
    return {"pinned": {"ids": list(pins), "organic": organic}}


def searchkit_rule(*pins: str) -> dict[str, Any]:
    """Searchkit 4's query with a PinnedResult rule that fired (its queryRules snapshot)."""
    return {"bool": {"filter": [], "must": {"function_score": {"query": pinned(*pins), "functions": []}}}}


def ranking(client, query: dict[str, Any] = SOFA, size: int = 10, **body: Any) -> list[str]:
    """A query's own ranking, without pins (on the embedded backend the dense leg adds products like a sofa)."""
    return ids(search(client, {"query": query, "size": size, **body}))


def test_pinned_products_come_first_in_their_order_then_the_ranking(client):
    found = ids(search(client, {"query": searchkit_rule("l2", "t1"), "size": 10}))
    assert found[:2] == ["l2", "t1"]
    assert found[2:] == [pid for pid in ranking(client) if pid not in ("l2", "t1")][:8]


def test_a_pinned_product_the_ranking_holds_is_shown_once_at_its_pinned_place(client):
    found = ids(search(client, {"query": pinned("s4"), "size": 10}))
    assert found == ["s4", *[pid for pid in ranking(client) if pid != "s4"]]


def test_a_pinned_product_that_a_filter_beside_the_pinned_query_excludes_is_not_shown(client):
    acme = [{"term": {"brand.keyword": "Acme"}}]
    found = ids(search(client, {"query": {"bool": {"must": pinned("t1", "t2"), "filter": acme}}}))
    assert found == ["t2", *[pid for pid in ranking(client, {"bool": {"must": SOFA, "filter": acme}}) if pid != "t2"]]


def test_a_pinned_product_that_the_post_filter_excludes_is_not_shown(client):
    bolt = {"term": {"brand.keyword": "Bolt"}}
    found = ids(search(client, {"query": pinned("t1", "t2"), "post_filter": bolt}))
    assert found == ["t1", *[pid for pid in ranking(client, post_filter=bolt) if pid != "t1"]]


def test_a_pinned_id_that_no_product_has_is_left_out(client):
    assert ids(search(client, {"query": pinned("nope", "t1")}))[0] == "t1"


def test_pinned_documents_by_their_ids_in_docs_come_first_too(client):
    query = {"pinned": {"docs": [{"_index": "products", "_id": "l1"}], "organic": SOFA}}
    assert ids(search(client, {"query": query}))[0] == "l1"


def test_the_total_and_the_facets_count_the_pinned_products(client):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}}}
    organic = search(client, {"query": SOFA, "size": 20})
    answer = search(client, {"query": pinned("t1", "l2"), "aggs": aggs, "size": 20})
    added = len({"t1", "l2"} - set(ids(organic)))
    assert answer["hits"]["total"]["value"] == organic["hits"]["total"]["value"] + added
    counts = {b["key"]: b["doc_count"] for b in answer["aggregations"]["brands"]["buckets"]}
    assert counts == {"Acme": 2, "Bolt": 3, "Cosy": 1, "Dune": 1}


def test_pages_go_on_after_the_pinned_products_with_no_product_twice(client):
    whole = ids(search(client, {"query": pinned("t1", "l2"), "size": 9}))
    pages = [ids(search(client, {"query": pinned("t1", "l2"), "from": start, "size": 3})) for start in (0, 3, 6)]
    assert [pid for page in pages for pid in page] == whole
    assert len(set(whole)) == len(whole) >= 7


def test_scores_stay_in_order_with_the_pinned_products_above_the_ranking(client):
    hits = search(client, {"query": pinned("t1", "l2")})["hits"]
    scores = [hit["_score"] for hit in hits["hits"]]
    assert scores == sorted(scores, reverse=True) and len(set(scores[:3])) == 3
    assert hits["max_score"] == scores[0]


def test_a_field_sort_orders_by_the_field_where_pins_do_not_count(client):
    # Elasticsearch's pinned query places by score; a sort by price ignores scores.
    found = ids(search(client, {"query": pinned("s2"), "sort": [{"price": "asc"}], "size": 10}))
    assert found == ["s5", "s1", "s3", "s4", "s2"]


def test_a_pinned_query_in_a_filter_matches_its_products_but_puts_none_first(client):
    query = {"bool": {"must": {"match": {"title": "sofa table"}}, "filter": pinned("t1")}}
    answer = search(client, {"query": query, "size": 10, "explain": True})
    assert sorted(ids(answer)) == sorted(SOFAS | {"t1"})
    assert all("pinned" not in e for e in answer["search_rerank"]["explanations"].values())


def test_a_search_without_words_lists_the_pinned_products_first(client):
    found = ids(search(client, {"query": pinned("l2", organic={"match_all": {}}), "size": 3}))
    assert found[0] == "l2"


def test_an_explanation_names_the_pinned_place(client):
    answer = search(client, {"query": pinned("l2", "t1"), "explain": True})
    explanations = answer["search_rerank"]["explanations"]
    assert explanations["l2"]["pinned"] == 1.0 and explanations["t1"]["pinned"] == 2.0
    assert all("pinned" not in explanations[pid] for pid in ids(answer)[2:])


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"pinned": {"ids": [str(i) for i in range(101)], "organic": SOFA}}, "query.pinned.ids"),
        ({"pinned": {"ids": ["t1"], "docs": [{"_id": "t2"}], "organic": SOFA}}, "query.pinned"),
        ({"pinned": {"ids": ["t1"]}}, "query.pinned.organic"),
        ({"pinned": {"ids": [{"id": "t1"}], "organic": SOFA}}, "query.pinned.ids[0]"),
        ({"pinned": {"docs": [{"_index": "products"}], "organic": SOFA}}, "query.pinned.docs[0]._id"),
        ({"pinned": {"organic": SOFA}}, "query.pinned"),  # ids and docs cannot both be null
        ({"pinned": {"ids": None, "organic": SOFA}}, "query.pinned"),
        ({"pinned": {"ids": ["t1", "t1"], "organic": SOFA}}, "query.pinned.ids[1]"),  # duplicate id found in list
        ({"pinned": {"docs": [{"_id": "t1"}, {"_id": "t1"}], "organic": SOFA}}, "query.pinned.docs[1]._id"),
        ({"pinned": {"id": ["t1"], "organic": SOFA}}, "query.pinned.id"),  # a typo must not pin nothing
        ({"pinned": {"docs": [{"_id": "t1", "index": "products"}], "organic": SOFA}}, "query.pinned.docs[0].index"),
    ],
)
def test_a_malformed_pinned_query_is_a_400_naming_the_field(client, query, field):
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 400
    assert field in str(response.get_json())


def test_pinned_products_beside_a_scroll_are_a_501(client):
    response = client.post("/products/_search?scroll=1m", json={"query": pinned("t1")})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "scroll"


def test_a_count_counts_the_pinned_products(client):
    response = client.post("/products/_count", json={"query": pinned("t1", "l2")})
    assert response.status_code == 200 and response.get_json()["count"] == len(SOFAS) + 2


def test_a_pinned_doc_of_another_index_is_not_pinned(client):
    # PinnedQueryBuilder: a doc is pinned only when its _index is absent or the index searched.
    docs = [{"_index": "other-index", "_id": "l1"}, {"_index": "products", "_id": "t1"}]
    answer = search(client, {"query": {"pinned": {"docs": docs, "organic": SOFA}}, "size": 20, "explain": True})
    assert ids(answer)[0] == "t1"
    assert [pid for pid, e in answer["search_rerank"]["explanations"].items() if "pinned" in e] == ["t1"]


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


def test_a_count_of_a_malformed_pinned_query_is_a_400(client):
    assert client.post("/products/_count", json={"query": pinned("t1", "t1")}).status_code == 400


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
    assert ids(search(client, {"query": query, "size": 10}))[0] == "l2"


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
    answer = search(
        client, {"query": pinned("t1", organic={"match": {"title": {"query": "zebra", "operator": "and"}}})}
    )
    assert ids(answer)[0] == "t1"


def test_pinned_explain_true_on_a_deep_page(client):
    answer = search(client, {"query": pinned("l2", "t1"), "explain": True, "from": 1, "size": 2})
    explanations = answer["search_rerank"]["explanations"]
    assert ids(answer)[0] == "t1" and explanations["t1"]["pinned"] == 2.0


# ------------------------------------------------------------------ many matches: the candidates' window

MANY = [Product(id=f"m{i:02d}", title=f"Sofa model {i}", brand="Acme", price=100.0 + i, sales=i) for i in range(60)] + [
    Product(id="tab", title="Oak table", brand="Bolt", price=250.0, sales=3)
]


@pytest.fixture(params=BACKENDS)
def many(request):
    return catalog_on(request, MANY)


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
    """The pinned product matches beside the organic query's (a count says so), and the total counts every match
    (with the dense leg's products beyond them, which may hold the pinned one already)."""
    organic = {"match": {"title": "sofa"}}
    query = pinned("tab", organic=organic)
    assert count(many, query) == count(many, organic) + 1
    assert search(many, {"query": query, "size": 10})["hits"]["total"]["value"] >= count(many, query)


def count(client, query: dict[str, Any]) -> int:
    response = client.post("/products/_count", json={"query": query})
    assert response.status_code == 200, response.get_json()
    return response.get_json()["count"]


# ------------------------------------------------------------------ the pinned retriever's checks


@pytest.mark.parametrize(
    ("pinned_spec", "field"),
    [
        ({"ids": []}, "retriever.pinned"),  # either ids or docs must be provided and non-empty
        ({}, "retriever.pinned"),
        ({"ids": ["t1"], "rank_window_size": "x"}, "retriever.pinned.rank_window_size"),
        ({"ids": ["t1"], "rank_window_size": 0}, "retriever.pinned.rank_window_size"),
        ({"ids": ["t1", "t1"]}, "retriever.pinned.ids[1]"),
    ],
)
def test_a_malformed_pinned_retriever_is_a_400_naming_the_field(client, pinned_spec, field):
    body = {"retriever": {"pinned": {**pinned_spec, "retriever": {"standard": {"query": SOFA}}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 400
    assert field in str(response.get_json())


# ------------------------------------------------------------------ held matches (min_score, terminate_after)
# A cluster answers such a search with its own page; the embedded index held min_score's matches without the
# pinned products, and left them out (both keys were a 501 there before).


@pytest.mark.parametrize("extra", [{"min_score": 0.001}, {"terminate_after": 1000}])
def test_a_pinned_product_past_a_held_page_keeps_its_score_and_highlight(client, extra):
    # s4 ranks low for "sofa"; pinned, it is first on a page of one, scored above everything, its words marked
    # (the boost keeps the held page of one, which min_score / terminate_after make the answer, on s1).
    boosted = {"match": {"title": {"query": "sofa", "boost": 100}}}
    body = {"query": pinned("s4", organic=boosted), "size": 1, "highlight": {"fields": {"title": {}}}, **extra}
    answer = search(client, body)
    hit = answer["hits"]["hits"][0]
    assert hit["_id"] == "s4"
    assert "highlight" in hit, hit
    assert hit["_score"] is not None and hit["_score"] >= (answer["hits"]["max_score"] or 0), hit


@pytest.mark.parametrize("extra", [{"min_score": 0.001}, {"terminate_after": 1000}])
def test_a_pinned_product_outside_the_held_matches_is_scored_above_the_rest(client, extra):
    # t1 and l2 match only by their ids: the held page (the cluster's own, on a cluster) is the boosted sofas,
    # without them.
    boosted = {"match": {"title": {"query": "sofa", "boost": 100}}}
    body = {"query": pinned("t1", "l2", organic=boosted), "size": 3, **extra}
    answer = search(client, body)
    hits = answer["hits"]["hits"]
    assert [h["_id"] for h in hits][:2] == ["t1", "l2"]
    scores = [h["_score"] for h in hits]
    assert None not in scores and scores == sorted(scores, reverse=True), scores
    assert answer["hits"]["max_score"] == scores[0]
