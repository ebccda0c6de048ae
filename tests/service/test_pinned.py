"""A ``pinned`` query (Searchkit's ``PinnedResult`` query rule, Elastic's curations) puts the products a
merchandiser chose first, in their order, then the pipeline's ranking, on the embedded backend and on a cluster
alike; the search's filters still hold them, and the total and facets count them as Elasticsearch does."""

from __future__ import annotations

from typing import Any

import pytest
from both_backends import BACKENDS, backend_client, ids, search

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


@pytest.fixture(scope="module")
def embedded(catalog_client):
    return catalog_client(CATALOG)


@pytest.fixture(params=BACKENDS)
def client(request):
    return backend_client(request, CATALOG)


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
