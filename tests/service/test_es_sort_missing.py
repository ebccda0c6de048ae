"""A sort key's ``missing`` on the embedded backend, as Elasticsearch orders the products without a value:
``_last`` (the default), ``_first``, or a value of its own that lies beyond every value the field holds (exact
here: ``rating`` descending with ``missing: 0`` is ``_last``); one among the field's values is a 501. Each was a
501 before but ``_last``. A cluster orders by its own (both backends run the first tests)."""

from __future__ import annotations

import pytest
from both_backends import backend_fixtures, ids, search

from search_rerank.core.product import Product
from search_rerank.serving import embedded_search

CATALOG = [
    Product(id="p1", title="Oak table", brand="Bolt", price=249.0, rating=4.5),
    Product(id="p2", title="Oak sofa", brand="Acme", price=499.0),
    Product(id="p3", title="Oak chair", brand="Acme", price=320.0, rating=3.0),
    Product(id="p4", title="Pine bench", brand="Bolt", price=120.0),
    Product(id="p5", title="Pine shelf", brand="Acme", price=135.0, rating=4.0),
    Product(id="p6", title="Oak lamp", brand="Bolt", price=39.0, rating=3.0),
]
RATED = {p.id: p.rating for p in CATALOG}


embedded, client = backend_fixtures(CATALOG)


def sorted_ids(descending: bool, missing_first: bool) -> list[str]:
    """Brute force: by rating (ties by id), the products without one first or last, those by id."""
    rated = sorted(
        (p for p in RATED if RATED[p] is not None), key=lambda p: (RATED[p], p) if not descending else (-RATED[p], p)
    )
    lacking = sorted(p for p in RATED if RATED[p] is None)
    return lacking + rated if missing_first else rated + lacking


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_missing_first_lists_the_products_without_a_value_before_the_others(client, order):
    sort = [{"rating": {"order": order, "missing": "_first"}}, {"id": "asc"}]
    assert ids(search(client, {"sort": sort, "size": 10})) == sorted_ids(order == "desc", missing_first=True)


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_missing_last_lists_them_after_the_others(client, order):
    sort = [{"rating": {"order": order, "missing": "_last"}}, {"id": "asc"}]
    assert ids(search(client, {"sort": sort, "size": 10})) == sorted_ids(order == "desc", missing_first=False)


def test_missing_first_on_a_later_key_orders_the_ties_of_the_first(client):
    sort = [{"brand.keyword": "asc"}, {"rating": {"order": "desc", "missing": "_first"}}, {"id": "asc"}]
    assert ids(search(client, {"sort": sort, "size": 10})) == ["p2", "p5", "p3", "p4", "p1", "p6"]


@pytest.mark.parametrize(
    "order, missing, first",
    [("desc", 0, False), ("asc", -1, True), ("asc", 10, False), ("desc", "99", True), ("asc", 2.99, True)],
)
def test_a_missing_value_beyond_every_value_of_the_field_places_them_at_that_end(embedded, order, missing, first):
    sort = [{"rating": {"order": order, "missing": missing}}, {"id": "asc"}]
    assert ids(search(embedded, {"sort": sort, "size": 10})) == sorted_ids(order == "desc", missing_first=first)


@pytest.mark.parametrize(
    "sort, part",
    [
        ([{"rating": {"order": "asc", "missing": 3.5}}], "sort[0].rating.missing"),
        ([{"rating": {"order": "asc", "missing": 3.0}}], "sort[0].rating.missing"),  # ties the lowest: 501 too
        ([{"brand.keyword": {"order": "asc", "missing": "zzz"}}], "sort[0].brand.keyword.missing"),
        ([{"rating": {"order": "asc", "missing": True}}], "sort[0].rating.missing"),
    ],
)
def test_a_missing_value_that_is_not_exact_here_is_a_501_naming_it(embedded, sort, part):
    response = embedded.post("/products/_search", json={"sort": sort})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == part


def test_a_missing_value_that_is_no_number_on_a_number_is_a_400_naming_it(embedded):
    response = embedded.post("/products/_search", json={"sort": [{"rating": {"missing": "high"}}]})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "sort[0].rating.missing"


def test_pages_of_a_missing_first_sort_by_from_follow_one_another(embedded):
    sort = [{"rating": {"order": "desc", "missing": "_first"}}]
    whole = ids(search(embedded, {"sort": sort, "size": 10}))
    paged = [pid for start in range(0, 6, 2) for pid in ids(search(embedded, {"sort": sort, "size": 2, "from": start}))]
    assert paged == whole and sorted(whole) == sorted(RATED)


def test_pages_of_more_products_without_a_value_than_max_sort_ties_follow_one_another(catalog_client, monkeypatch):
    catalog = [
        Product(id=f"q{i:02d}", title=f"Lamp {i}", price=1.0 + i, rating=None if i % 4 else 2.0) for i in range(13)
    ]
    client = catalog_client(catalog)
    monkeypatch.setattr(embedded_search, "MAX_SORT_TIES", 4)
    sort = [{"rating": {"order": "asc", "missing": "_first"}}]
    whole = ids(search(client, {"sort": sort, "size": 13}))
    paged = [pid for start in range(0, 13, 2) for pid in ids(search(client, {"sort": sort, "size": 2, "from": start}))]
    assert paged == whole and len(set(whole)) == 13
    assert whole[:9] == sorted(p.id for p in catalog if p.rating is None)


@pytest.mark.parametrize(
    "extra, part",
    [({"search_after": [None]}, "search_after"), ({}, "scroll")],
)
def test_a_cursor_on_a_missing_first_sort_is_a_501_naming_it(embedded, extra, part):
    query = "?scroll=1m" if part == "scroll" else ""
    body = {"sort": [{"rating": {"order": "asc", "missing": "_first"}}], **extra}
    response = embedded.post(f"/products/_search{query}", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == part
