"""Sorting a page by a product's keywords on the embedded backend: a shop's "Name: A-Z" (``title.keyword``), a
brand or a category, ordered as Elasticsearch orders a keyword (by its bytes, as the catalog gives it), products
without one last in either direction."""

from __future__ import annotations

import pytest

from search_rerank.core.product import Product
from search_rerank.serving import embedded_search

CATALOG = [
    Product(id="p1", title="Oak table", brand="Bolt", category=("Furniture", "Tables"), price=249.0),
    Product(id="p2", title="Corner sofa", brand="Acme", category=("Furniture", "Sofas"), price=499.0),
    Product(id="p3", title="armchair", brand="Cosy", category=("Furniture", "Chairs"), price=320.0),
    Product(id="p4", title="Bench", category=("Garden",), price=120.0),
    Product(id="p5", title="Ångström lamp", brand="Acme", category=("Lighting",), price=39.0),
    Product(id="p6", title="Corner sofa", brand="Bolt", category=("Furniture", "Sofas"), price=799.0),
    Product(id="p7", title="Desk", brand="Dune", price=210.0),
]  # fmt: skip
BY_ID = {p.id: p for p in CATALOG}


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def page(client, sort, **body) -> dict:
    response = client.post("/products/_search", json={"sort": sort, "size": 20, **body})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def by_bytes(values: dict[str, str], descending: bool) -> list[str]:
    """Ids by their value's UTF-8 bytes (Elasticsearch's keyword order), ties by id, those without one last."""
    known = [pid for pid in sorted(values) if values[pid]]
    return sorted(known, key=lambda pid: values[pid].encode("utf-8"), reverse=descending) + [
        pid for pid in sorted(values) if not values[pid]
    ]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_title_keyword_orders_every_product_by_its_title_as_written(client, order):
    # Upper case before lower case and "Å" after "z", as a keyword's bytes order them in Elasticsearch.
    answer = page(client, [{"title.keyword": order}, {"id": "asc"}])
    assert ids(answer) == by_bytes({p.id: p.title for p in CATALOG}, order == "desc")
    assert ids(answer)[0] == ("p4" if order == "asc" else "p5")  # "Bench"; "Ångström lamp"


def test_each_hit_carries_the_title_it_was_sorted_by(client):
    answer = page(client, [{"title.keyword": "asc"}])
    assert [hit["sort"] for hit in answer["hits"]["hits"]] == [[BY_ID[pid].title] for pid in ids(answer)]


@pytest.mark.parametrize("order", ["asc", "desc"])
def test_brand_sorts_products_without_a_brand_last_in_either_order(client, order):
    answer = page(client, [{"brand.keyword": {"order": order}}, {"id": "asc"}])
    assert ids(answer) == by_bytes({p.id: p.brand for p in CATALOG}, order == "desc")
    assert ids(answer)[-1] == "p4"


def test_a_later_key_orders_the_ties_of_a_keyword(client):
    # Two "Corner sofa"s: the dearer first.
    assert ids(page(client, [{"title.keyword": "asc"}, {"price": "desc"}]))[1:3] == ["p6", "p2"]


def test_category_keyword_sorts_by_the_whole_path(client):
    answer = page(client, [{"category.keyword": "desc"}, {"id": "asc"}])
    assert ids(answer) == ["p5", "p4", "p1", "p2", "p6", "p3", "p7"]


def test_a_sorted_second_page_continues_the_first(client):
    whole = ids(page(client, [{"title.keyword": "asc"}, {"id": "asc"}]))
    first = ids(page(client, [{"title.keyword": "asc"}, {"id": "asc"}], size=3))
    second = ids(page(client, [{"title.keyword": "asc"}, {"id": "asc"}], size=3, **{"from": 3}))
    assert first + second == whole[:6]


def test_a_keyword_sort_of_a_query_orders_its_matches_only(client):
    answer = page(client, [{"title.keyword": "desc"}], query={"match": {"title": "sofa"}})
    assert set(ids(answer)) == {"p2", "p6"} and answer["hits"]["total"]["value"] == 2


@pytest.mark.parametrize("field", ["title", "description", "attributes.color", "facet.category.lvl1"])
def test_a_field_without_one_order_is_a_501_naming_the_sort(client, field):
    response = client.post("/products/_search", json={"sort": [{field: "asc"}]})
    assert response.status_code == 501, response.get_json()
    assert response.get_json()["error"]["unsupported"] == "sort[0]"


def test_a_term_on_title_keyword_matches_the_title_as_written_not_its_words(client):
    response = client.post("/products/_search", json={"query": {"term": {"title.keyword": "Oak table"}}})
    assert response.status_code == 200
    hits = response.get_json()["hits"]["hits"]
    assert hits and {hit["_source"]["title"] for hit in hits} == {"Oak table"}
    lower = client.post("/products/_search", json={"query": {"term": {"title.keyword": "oak table"}}}).get_json()
    assert lower["hits"]["hits"] == []


def test_a_value_longer_than_tantivy_keeps_sorts_by_its_beginning_not_as_missing(catalog_client):
    # Tantivy cut a 80,000-byte brand at 65,535 bytes, inside an "é": it read back as no value and sorted last.
    long = "é" * 40_000
    client = catalog_client(
        [
            Product(id="a", title="Oak table", brand="Acme"),
            Product(id="z", title=long, brand=long),
            Product(id="c", title="Bench"),
        ]
    )
    for key, order, expected in (
        ("brand.keyword", "asc", ["a", "z", "c"]),
        ("brand.keyword", "desc", ["z", "a", "c"]),
        ("title.keyword", "asc", ["c", "a", "z"]),
    ):
        answer = page(client, [{key: order}])
        assert ids(answer) == expected, (key, order)
        (value,) = answer["hits"]["hits"][expected.index("z")]["sort"]
        assert value == "é" * 32_765  # its first 65,530 bytes


@pytest.mark.parametrize(
    "sort", [[{"brand.keyword": "asc"}], [{"brand.keyword": "desc"}, {"id": "asc"}], [{"price": "asc"}], ["brand"]]
)
def test_pages_of_a_value_more_products_share_than_max_sort_ties_follow_one_another(catalog_client, monkeypatch, sort):
    # Past MAX_SORT_TIES the ties read were tantivy's first by address, a different set for each page's length:
    # paging through twelve products of one brand two at a time showed six of them, some twice.
    order = (7, 3, 11, 1, 9, 5, 2, 10, 4, 8, 6, 12)  # indexed out of id order
    catalog = [Product(id=f"q{i:02d}", title=f"Lamp {i}", brand="Acme", price=float(i % 3)) for i in order]
    client = catalog_client([*catalog, Product(id="a", title="Desk", brand="Bolt", price=5.0)])
    monkeypatch.setattr(embedded_search, "MAX_SORT_TIES", 4)
    whole = ids(page(client, sort, size=13))
    paged = [pid for start in range(0, 13, 2) for pid in ids(page(client, sort, size=2, **{"from": start}))]
    assert paged == whole and len(set(whole)) == 13
