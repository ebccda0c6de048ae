"""``collapse``: one hit per value of a field (ReactiveSearch's ``distinctField``, variants under a parent SKU), on the
embedded backend as Elasticsearch answers it, and on a cluster where both answer alike (a sorted page)."""

from __future__ import annotations

from typing import Any

import pytest
from both_backends import backend_fixtures, ids, search

from search_rerank.core.product import Product
from search_rerank.serving.collapse import MAX_INNER_SEARCHES, distinct

BRANDS = ("Acme", "Bolt", "Cosy", "Dune", "Elm", "Fir")
# 60 sofas, ten per brand, two per parent SKU: more than the pipeline ranks (20 candidates per leg), so pages of
# values go on past the ranked list.
CATALOG = [
    Product(
        id=f"s{n:02d}",
        title=f"{'Velvet' if n % 2 else 'Linen'} sofa {n}",
        brand=BRANDS[n % len(BRANDS)],
        category=["Furniture", "Sofas"],
        price=float(100 + 7 * n),
        attributes={"color": ["red", "blue"] if n == 59 else ["red"]},
        sales=n,
        extra={"parent_sku": f"P{n // 2:02d}"},
    )
    for n in range(60)
] + [
    Product(id="u1", title="Plain sofa", category=["Furniture", "Sofas"], price=90.0, sales=100, extra={}),
    Product(id="u2", title="Plain sofa bed", category=["Furniture", "Sofas"], price=95.0, sales=99, extra={}),
]
SOFA = {"query": {"match": {"title": "sofa"}}}
BY_BRAND = {"collapse": {"field": "brand.keyword"}}
ALIASES = {"maker": "brand.keyword", "ean": ""}


embedded, client = backend_fixtures(CATALOG, field_aliases=ALIASES)


def hits(client, body: dict[str, Any]) -> list[dict[str, Any]]:
    return search(client, body)["hits"]["hits"]


def values(answered: list[dict[str, Any]], name: str = "brand.keyword") -> list[Any]:
    return [value for hit in answered for value in hit["fields"][name]]


def refusal(client, body: dict[str, Any], status: int) -> dict[str, Any]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def test_a_ranked_search_answers_one_hit_per_value_each_carrying_it(embedded):
    answered = hits(embedded, {**SOFA, **BY_BRAND, "size": 10})
    # The six brands, and the products without a brand as one more value.
    assert sorted(values(answered), key=str) == sorted([*BRANDS, None], key=str)


def test_a_collapsed_ranked_page_keeps_the_ranking_order_of_each_values_first_product(embedded):
    ranked = ids(search(embedded, {**SOFA, "size": 40}))
    collapsed = ids(search(embedded, {**SOFA, **BY_BRAND, "size": 7}))
    brand = {p.id: p.brand for p in CATALOG}
    firsts: dict[str, str] = {}
    for pid in ranked:
        firsts.setdefault(brand[pid], pid)
    assert collapsed == list(firsts.values())


def test_the_total_counts_every_match_not_the_values(embedded):
    assert search(embedded, {**SOFA, **BY_BRAND, "size": 3})["hits"]["total"] == {"value": 62, "relation": "eq"}


def test_pages_of_values_go_on_past_the_ranked_list_each_value_once(embedded):
    collapse = {"collapse": {"field": "parent_sku"}}
    pages = [hits(embedded, {**SOFA, **collapse, "from": start, "size": 10}) for start in (0, 10, 20, 30)]
    answered = [value for page in pages for value in values(page, "parent_sku")]
    assert sorted(answered, key=str) == sorted([f"P{k:02d}" for k in range(30)] + [None], key=str)
    assert len(pages[3]) == 1


def test_a_sorted_page_answers_each_values_first_product_by_the_sort(client):
    answered = hits(client, {**SOFA, **BY_BRAND, "sort": [{"price": "asc"}]})
    cheapest = {}
    for product in sorted(CATALOG, key=lambda p: p.price or 0):
        if product.brand:
            cheapest.setdefault(product.brand, product.id)
    # Elasticsearch answers [null] for the products without a brand (osmem-server leaves fields out).
    branded = [hit["_id"] for hit in answered if hit.get("fields", {}).get("brand.keyword", [None]) != [None]]
    assert branded == list(cheapest.values())


def test_a_listing_without_words_answers_each_values_best_seller(embedded):
    answered = hits(embedded, {"query": {"match_all": {}}, **BY_BRAND, "size": 3})
    assert [hit["_id"] for hit in answered] == ["u1", "s59", "s58"]
    assert values(answered) == [None, "Fir", "Elm"]


def test_a_field_named_through_an_alias_answers_under_the_name_asked(embedded):
    answered = hits(embedded, {**SOFA, "collapse": {"field": "maker"}, "size": 3})
    assert [sorted(hit["fields"]) for hit in answered] == [["maker"]] * 3


def test_a_sorted_page_collapsed_on_a_field_named_through_an_alias_is_one_hit_per_value(client):
    # Laravel's elastic-scout-driver-plus collapse('manufacturer'): the cluster backend refused it with a 501.
    answered = hits(client, {**SOFA, "collapse": {"field": "maker"}, "sort": [{"price": "asc"}]})
    named = [hit["fields"]["maker"] for hit in answered if hit.get("fields", {}).get("maker", [None]) != [None]]
    assert named == [[brand] for brand in ("Acme", "Bolt", "Cosy", "Dune", "Elm", "Fir")]


def test_facets_count_every_match_not_the_collapsed_hits(embedded):
    aggs = {"brands": {"terms": {"field": "brand.keyword"}}}
    answer = search(embedded, {**SOFA, **BY_BRAND, "size": 2, "aggs": aggs})
    assert {b["key"]: b["doc_count"] for b in answer["aggregations"]["brands"]["buckets"]} == dict.fromkeys(BRANDS, 10)


def test_collapsed_hits_keep_the_doc_values_asked_beside_the_collapse_field(embedded):
    answered = hits(embedded, {**SOFA, **BY_BRAND, "size": 2, "docvalue_fields": ["price"]})
    assert all(sorted(hit["fields"]) == ["brand.keyword", "price"] for hit in answered)


def test_a_field_some_product_holds_several_values_of_is_a_400_naming_it(embedded):
    body = {"query": {"match": {"title": "sofa 59"}}, "collapse": {"field": "attributes.color"}}
    error = refusal(embedded, body, 400)
    assert error["field"] == "collapse.field" and "single valued" in error["reason"]


def test_a_text_field_is_a_400_naming_it(embedded):
    assert refusal(embedded, {**SOFA, "collapse": {"field": "title"}}, 400)["field"] == "collapse.field"


def test_a_field_aliased_to_no_field_is_a_400_naming_it(embedded):
    error = refusal(embedded, {**SOFA, "collapse": {"field": "ean"}}, 400)
    assert error["field"] == "collapse.field" and "no mapping found" in error["reason"]


def test_a_field_the_product_lacks_is_a_501_naming_it(embedded):
    assert refusal(embedded, {**SOFA, "collapse": {"field": "colour_family"}}, 501)["unsupported"] == "collapse.field"


@pytest.mark.parametrize(
    "collapse, field",
    [
        ({}, "collapse.field"),
        ({"field": 3}, "collapse.field"),
        ({"field": "brand.keyword", "size": 2}, "collapse"),
        ({"field": "brand.keyword", "max_concurrent_group_searches": 0}, "collapse.max_concurrent_group_searches"),
        ({"field": "brand.keyword", "max_concurrent_group_searches": "x"}, "collapse.max_concurrent_group_searches"),
    ],
)
def test_a_malformed_collapse_is_a_400_naming_the_part(embedded, collapse, field):
    assert refusal(embedded, {**SOFA, "collapse": collapse}, 400)["field"].startswith(field)


def inner(hit: dict[str, Any], name: str) -> dict[str, Any]:
    return hit["inner_hits"][name]["hits"]


def test_inner_hits_answer_each_values_products_by_their_sort_with_its_count(embedded):
    cheapest = {"name": "cheapest", "size": 2, "sort": [{"price": "ASC"}], "_source": ["title", "price"]}
    answered = hits(embedded, {**SOFA, "collapse": {"field": "brand.keyword", "inner_hits": cheapest}, "size": 7})
    for hit in answered:
        brand = hit["fields"]["brand.keyword"][0]
        held = sorted(
            (p for p in CATALOG if p.brand == brand) if brand else (p for p in CATALOG if not p.brand),
            key=lambda p: p.price or 0,
        )
        page = inner(hit, "cheapest")
        assert page["total"] == {"value": len(held), "relation": "eq"}
        assert [h["_id"] for h in page["hits"]] == [p.id for p in held[:2]]
        assert [h["sort"] for h in page["hits"]] == [[p.price] for p in held[:2]]
        assert all(sorted(h["_source"]) == ["price", "title"] and h["_score"] is None for h in page["hits"])


def test_inner_hits_without_a_sort_are_by_score_three_by_default_named_by_the_field(embedded):
    body = {"query": {"match": {"title": "velvet sofa"}}, "collapse": {"field": "brand.keyword", "inner_hits": {}}}
    for hit in hits(embedded, {**body, "size": 3}):
        page = inner(hit, "brand.keyword")
        scores = [h["_score"] for h in page["hits"]]
        assert len(scores) == 3 and scores == sorted(scores, reverse=True) and page["max_score"] == scores[0]


def test_inner_hits_from_skips_the_first_of_each_values_products(embedded):
    body = {**SOFA, "sort": ["price"], "size": 2}
    first = hits(embedded, {**body, "collapse": {"field": "brand.keyword", "inner_hits": {"size": 3}}})
    later = hits(embedded, {**body, "collapse": {"field": "brand.keyword", "inner_hits": {"from": 1, "size": 2}}})
    for a, b in zip(first, later, strict=True):
        assert [h["_id"] for h in inner(a, "brand.keyword")["hits"]][1:] == [
            h["_id"] for h in inner(b, "brand.keyword")["hits"]
        ]


def test_several_inner_hits_are_each_answered_under_its_name(embedded):
    several = [
        {"name": "cheapest", "size": 1, "sort": ["price"]},
        {"name": "dearest", "size": 1, "sort": [{"price": "desc"}]},
    ]
    (hit,) = hits(embedded, {**SOFA, "collapse": {"field": "parent_sku", "inner_hits": several}, "size": 1})
    cheap, dear = inner(hit, "cheapest")["hits"][0], inner(hit, "dearest")["hits"][0]
    assert cheap["sort"][0] < dear["sort"][0] and inner(hit, "cheapest")["total"]["value"] == 2


@pytest.mark.parametrize(
    "inner_hits, status, field",
    [
        ({"size": 101}, 400, "collapse.inner_hits"),
        ([{"name": "a"}, {"name": "a"}], 400, "collapse.inner_hits[1].name"),
        ({"sort": [{"title": "asc"}]}, 501, "collapse.inner_hits.sort[0]"),
        ({"sort": [{"price": "upward"}]}, 400, "collapse.inner_hits.sort[0].order"),
        ({"_source": {"includez": ["title"]}}, 400, "collapse.inner_hits._source.includez"),
        ({"highlight": {"fields": {"title": {}}}}, 501, "collapse.inner_hits.highlight"),
        ({"sise": 2}, 400, "collapse.inner_hits.sise"),
    ],
)
def test_inner_hits_that_cannot_be_answered_are_refused_naming_the_part(embedded, inner_hits, status, field):
    error = refusal(embedded, {**SOFA, "collapse": {"field": "brand.keyword", "inner_hits": inner_hits}}, status)
    assert (error.get("unsupported") if status == 501 else error["field"]) == field


def test_a_page_of_more_inner_hits_than_a_page_may_expand_is_a_400_naming_them(embedded):
    # Each is a search of its own: ten entries on a page of 10,000 hits held a worker for a minute and 700 MB.
    entries = [{"name": f"n{i}", "size": 1} for i in range(MAX_INNER_SEARCHES)]
    error = refusal(embedded, {**SOFA, "collapse": {"field": "brand.keyword", "inner_hits": entries}}, 400)
    assert error["field"] == "collapse.inner_hits"


def test_inner_hits_on_a_cluster_are_a_501_naming_them(request, make_cluster_app):
    # Their documents would be the product index's, not the product records every other hit carries.
    client = make_cluster_app("opensearch", catalog=CATALOG).test_client()
    collapse = {"field": "brand.keyword", "inner_hits": {"name": "cheapest", "size": 1}}
    error = refusal(client, {**SOFA, "collapse": collapse, "sort": ["price"]}, 501)
    assert error["unsupported"] == "collapse.inner_hits"


def test_collapse_with_search_after_is_a_501_naming_collapse(embedded):
    body = {**SOFA, **BY_BRAND, "sort": [{"price": "asc"}], "search_after": [100.0]}
    assert refusal(embedded, body, 501)["unsupported"] == "collapse"


def test_reactivesearch_distinct_field_answers_one_result_per_value(embedded):
    query = {"id": "results", "dataField": ["title"], "value": "sofa", "distinctField": "brand.keyword", "size": 10}
    response = embedded.post("/products/_reactivesearch", json={"query": [query]})
    assert response.status_code == 200, response.get_json()
    answered = response.get_json()["results"]["hits"]["hits"]
    assert sorted(values(answered), key=str) == sorted([*BRANDS, None], key=str)


def rows_after(rows: list[tuple[str, str]], start: int, asks: list[int]):
    """``more`` over ``rows`` (id, key) past the first ``start``, leaving out the seen keys, each ask recorded."""

    def more(seen: list[Any], n: int) -> list[tuple[str, str]]:
        asks.append(n)
        return [row for row in rows[start:] if row[1] not in seen][:n]

    return more


def test_distinct_keeps_each_keys_first_row_in_order_from_the_known_rows_then_the_rest():
    rows = [("a", "x"), ("b", "x"), ("c", "y"), ("d", "z"), ("e", "y"), ("f", "w")]
    kept, keys = distinct(rows[:3], lambda batch: [key for _, key in batch], 4, rows_after(rows, 3, []))
    assert [pid for pid, _ in kept] == ["a", "c", "d", "f"] and keys == ["x", "y", "z", "w"]


def test_distinct_asks_each_read_for_twice_as_many_rows_as_the_last():
    # Values shared by ten rows each: reads of 5, 10, 20 and 40 rows find 1, 1, 2 and the fifth.
    rows = [(f"p{n}", f"v{n // 10}") for n in range(200)]
    asks: list[int] = []
    kept, _ = distinct([], lambda batch: [key for _, key in batch], 5, rows_after(rows, 0, asks))
    assert len(kept) == 5 and asks == [5, 10, 20, 40]


def test_distinct_stops_when_the_rows_run_out():
    rows = [("a", "x"), ("b", "x")]
    kept, _ = distinct([], lambda batch: [key for _, key in batch], 10, rows_after(rows, 0, []))
    assert kept == [("a", "x")]


def test_reactivesearch_distinct_field_config_answers_its_inner_hits(embedded):
    config = {"inner_hits": {"name": "other_sofas", "size": 2, "sort": [{"price": "asc"}]}}
    query = {
        **{"id": "results", "dataField": ["title"], "value": "sofa", "size": 3},
        **{"distinctField": "brand.keyword", "distinctFieldConfig": config},
    }
    response = embedded.post("/products/_reactivesearch", json={"query": [query]})
    assert response.status_code == 200, response.get_json()
    for hit in response.get_json()["results"]["hits"]["hits"]:
        assert len(inner(hit, "other_sofas")["hits"]) == 2


def test_collapse_beside_a_retriever_that_ranks_is_a_501_naming_it(embedded):
    body = {"retriever": {"standard": {"query": {"match": {"title": "sofa"}}}}, **BY_BRAND}
    assert refusal(embedded, body, 501)["unsupported"] == "collapse"
