"""What a value of a collapse field is on the embedded backend (serving/collapse.py), as in Elasticsearch: a
keyword's exact term (values differing in case or by a folded letter are each a hit), a long's exact integer, a
title; a search where any match holds several values fails. And how pages of values follow the served order:
under several sort keys, through long runs of products sharing one value, for a field every product holds its own
value of, with totals and facets those of the uncollapsed search."""

from __future__ import annotations

import json
from typing import Any

import pytest
from both_backends import ids, search

from search_rerank.core.product import Product

BRANDS = ("Acme", "Bolt", "Cosy", "Dune", "Elm", "Fir", "Gale")
COLORS = ("Red", "red", "Blue", "GREEN", "Straße", "STRASSE")


def chair(n: int) -> Product:
    return Product(
        id=f"p{n:03d}",
        title=f"{'Oak' if n % 2 else 'Pine'} chair {n % 17}",
        brand="" if n % 19 == 0 else BRANDS[n % len(BRANDS)],
        category=["Furniture", ("Chairs", "Tables", "Beds")[n % 3]],
        price=None if n % 23 == 0 else float(10 + n % 13),
        attributes={"color": [COLORS[n % len(COLORS)]], "size": ["S", "M"] if n == 250 else ["S"]},
        sales=n % 37,
        extra={"parent_sku": f"P{n // 3:03d}", "stock": n % 11},
    )


CHAIRS = [chair(n) for n in range(300)]
BY_ID = {p.id: p for p in CHAIRS}
CHAIR = {"match": {"title": "chair"}}

# Values of a keyword that differ only in case: Elasticsearch's keyword fields (no normalizer) hold them as
# different terms, so a collapse answers one hit for each.
CASED = [
    Product(
        id="q1", title="lamp one", brand="Acme", sales=100, category=["Kitchen", "Mugs"], attributes={"color": ["Red"]}
    ),
    Product(
        id="q2", title="lamp two", brand="Acme", sales=90, category=["Kitchen", "Mugs"], attributes={"color": ["Red"]}
    ),
    Product(
        id="q3", title="lamp three", brand="Acme", sales=85, category=["Kitchen", "Mugs"], attributes={"color": ["Red"]}
    ),
    Product(
        id="q4", title="lamp four", brand="ACME", sales=80, category=["kitchen", "mugs"], attributes={"color": ["RED"]}
    ),
    Product(id="q5", title="lamp five", brand="Bolt", sales=70, category=["Garden"], attributes={"color": ["Blue"]}),
]


@pytest.fixture(scope="module")
def chairs(catalog_client):
    return catalog_client(CHAIRS)


@pytest.fixture(scope="module")
def cased(catalog_client):
    return catalog_client(CASED)


@pytest.mark.parametrize("field", ["brand.keyword", "attributes.color", "category.keyword", "facet.category.lvl1"])
@pytest.mark.parametrize("order", [{}, {"sort": [{"sales": "desc"}]}], ids=["listing", "field-sort"])
def test_values_differing_only_in_case_are_each_a_hit(cased, field, order):
    # The first read (two rows, q1 and q2) finds one value; the next leaves out "Acme" alone, not "ACME".
    body = {"query": {"match_all": {}}, "collapse": {"field": field}, "size": 3, **order}
    assert ids(search(cased, body)) == ["q1", "q4", "q5"]


def test_pages_of_case_differing_values_answer_each_value_once(cased):
    body = {"query": {"match_all": {}}, "collapse": {"field": "brand.keyword"}, "size": 2}
    pages = [ids(search(cased, {**body, "from": start})) for start in (0, 2)]
    assert pages == [["q1", "q4"], ["q5"]]


def test_a_ranked_page_answers_every_colour_whose_case_differs(chairs):
    # Past the ranked list: "STRASSE", found in the ranking, leaves out no "Straße" product (they fold alike).
    answered = search(chairs, {"query": CHAIR, "collapse": {"field": "attributes.color"}, "size": 10})
    values = sorted(value for hit in answered["hits"]["hits"] for value in hit["fields"]["attributes.color"])
    assert values == sorted(COLORS)


@pytest.mark.parametrize("order", [{}, {"sort": [{"price": "asc"}]}], ids=["ranked", "field-sort"])
def test_collapse_on_title_keyword_answers_one_hit_per_title(chairs, order):
    # 34 titles (Oak/Pine x 17): reads past the first leave out the titles answered by their exact terms.
    answered = search(chairs, {"query": CHAIR, "collapse": {"field": "title.keyword"}, "size": 40, **order})
    titles = [hit["fields"]["title.keyword"][0] for hit in answered["hits"]["hits"]]
    assert sorted(titles) == sorted({product.title for product in CHAIRS})


@pytest.mark.parametrize("order", [{}, {"sort": [{"price": "asc"}]}], ids=["ranked", "field-sort"])
def test_a_match_holding_several_values_of_the_field_fails_the_search_whether_read_or_not(chairs, order):
    # p250 (sizes S and M) is never read for the page (an "S" product comes first): the search fails all the same,
    # as Elasticsearch's collapsing collector visits every match.
    response = chairs.post(
        "/products/_search", json={"query": CHAIR, "collapse": {"field": "attributes.size"}, "size": 5, **order}
    )
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["field"] == "collapse.field"


BIG_NUMBERS = [
    Product(id="n1", title="cup one", sales=100, extra={"code": 2**53 + 1}),
    Product(id="n2", title="cup two", sales=90, extra={"code": 2**53 + 1}),
    Product(id="n3", title="cup three", sales=85, extra={"code": 2**53 + 1}),
    Product(id="n4", title="cup four", sales=80, extra={"code": 2**53}),
    Product(id="n5", title="cup five", sales=70, extra={"code": 7, "lot": 1}),
    Product(id="n6", title="cup six", sales=60, extra={"code": 8, "lot": [1, 2]}),
]


@pytest.fixture(scope="module")
def big_numbers(catalog_client):
    return catalog_client(BIG_NUMBERS)


def test_integers_past_two_to_the_53_are_each_a_value(big_numbers):
    # 2**53 + 1 read as a double would be 2**53, n4's value: each is looked up as the integer it is.
    body = {"query": {"match_all": {}}, "collapse": {"field": "code"}, "size": 3}
    assert ids(search(big_numbers, body)) == ["n1", "n4", "n5"]


def test_a_term_on_an_integer_past_two_to_the_53_matches_that_integer_alone(big_numbers):
    body = {"query": {"term": {"code": 2**53 + 1}}, "sort": [{"_id": "asc"}]}
    assert ids(search(big_numbers, body)) == ["n1", "n2", "n3"]


def test_a_catalog_field_a_match_lists_several_values_of_fails_the_search(big_numbers):
    # n6's lot is [1, 2] and n5 (lot 1) comes first: n6 is never read for the page.
    response = big_numbers.post("/products/_search", json={"query": {"match_all": {}}, "collapse": {"field": "lot"}})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["field"] == "collapse.field"


def test_a_search_whose_matches_each_hold_one_value_of_a_listed_field_is_collapsed(big_numbers):
    body = {"query": {"ids": {"values": ["n4", "n5"]}}, "collapse": {"field": "lot"}}
    assert ids(search(big_numbers, body)) == ["n4", "n5"]


def firsts(order: list[str], key) -> list[str]:
    seen: dict[str, str] = {}
    for pid in order:
        seen.setdefault(json.dumps(key(BY_ID[pid])), pid)
    return list(seen.values())


def every_id(client, base: dict[str, Any]) -> list[str]:
    return [pid for start in range(0, 300, 100) for pid in ids(search(client, {**base, "from": start, "size": 100}))]


@pytest.mark.parametrize(
    "base",
    [
        {"query": CHAIR},
        {"query": {"match": {"title": "oak"}}},
        {"query": {"match_all": {}}},
        {"query": CHAIR, "sort": [{"stock": "desc"}, {"sales": "asc"}, {"_id": "asc"}]},
        {"query": {"bool": {"should": [{"match": {"title": "zzzz"}}, {"range": {"price": {"gte": 15}}}]}}},
    ],
    ids=["ranked", "ranked-oak", "listing", "three-keys", "should"],
)
@pytest.mark.parametrize("field", ["brand.keyword", "parent_sku", "price", "stock"])
def test_pages_of_values_are_each_values_first_product_in_the_served_order(chairs, base, field):
    def key(product: Product) -> Any:
        return {
            "brand.keyword": product.brand or None,
            "parent_sku": product.extra["parent_sku"],
            "price": product.price,
            "stock": product.extra["stock"],
        }[field]

    expected = firsts(every_id(chairs, base), key)
    got: list[str] = []
    for start in range(0, 310, 9):
        page = search(chairs, {**base, "collapse": {"field": field}, "from": start, "size": 9})
        assert page["hits"]["total"] == search(chairs, {**base, "size": 1})["hits"]["total"]
        for hit in page["hits"]["hits"]:
            assert hit["fields"] == {field: [key(BY_ID[hit["_id"]])]}
        got += ids(page)
        if not page["hits"]["hits"]:
            break
    assert got == expected


def test_facets_are_those_of_the_uncollapsed_search(chairs):
    aggs = {"b": {"terms": {"field": "brand.keyword"}}, "p": {"avg": {"field": "price"}}}
    plain = search(chairs, {"query": CHAIR, "size": 3, "aggs": aggs})
    collapsed = search(chairs, {"query": CHAIR, "size": 3, "aggs": aggs, "collapse": {"field": "brand.keyword"}})
    assert collapsed["aggregations"] == plain["aggregations"]


BIG = [
    Product(
        id=f"b{n:05d}",
        title=f"desk {n % 50}",
        brand="Big" if n < 4800 else f"B{n}",
        sales=5000 - n,
        extra={"u": f"u{n}"},
    )
    for n in range(5000)
]


@pytest.fixture(scope="module")
def big(catalog_client):
    return catalog_client(BIG, max_result_window=20000, max_size=1000)


@pytest.mark.parametrize("start, size", [(0, 50), (35, 10), (3000, 500), (4990, 20)])
@pytest.mark.parametrize("query", [{"match": {"title": "desk 7"}}, {"match_all": {}}], ids=["ranked", "listing"])
def test_a_field_every_product_holds_its_own_value_of_pages_as_the_uncollapsed_search(big, start, size, query):
    plain = search(big, {"query": query, "from": start, "size": size})
    collapsed = search(big, {"query": query, "from": start, "size": size, "collapse": {"field": "u"}})
    assert ids(collapsed) == ids(plain)


def test_thousands_of_products_sharing_one_value_answer_the_others_after_it(big):
    page = search(big, {"query": {"match_all": {}}, "collapse": {"field": "brand.keyword"}, "size": 201})
    assert ids(page) == ["b00000"] + [f"b{n:05d}" for n in range(4800, 5000)]
    assert page["hits"]["total"] == {"value": 5000, "relation": "eq"}
