"""Spryker's facets over name/value pairs (its nested ``string-facet`` and ``integer-facet`` aggregations, from
spryker/search-elasticsearch Aggregation/StringFacetAggregation.php and its tests' expected aggregations) are
answered from the product's fields on the embedded backend and on a cluster alike, in the nested shape
Elasticsearch answers them; each count is checked against a count over the catalogue."""

from __future__ import annotations

from typing import Any

from both_backends import backend_fixtures, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="s1", title="Grey sofa", brand="Acme", price=499.0, rating=4.5, attributes={"color": ("grey",)}),
    Product(
        id="s2", title="Oak sofa", brand="Acme", price=899.0, attributes={"color": ("brown",), "material": ("oak",)}
    ),
    Product(id="s3", title="Blue sofa", brand="Bolt", price=650.0, rating=3.5, attributes={"color": ("blue", "grey")}),
    Product(id="s4", title="Sofa bed", brand="Cosy", price=700.0, attributes={"material": ("linen",)}),
    Product(id="s5", title="Small sofa", price=299.0, rating=4.0, attributes={"size": ("small",)}),
    Product(id="t1", title="Oak table", brand="Bolt", price=249.0, attributes={"material": ("oak",)}),
]
SOFAS = [p for p in CATALOG if "sofa" in p.title.lower()]
# A Spryker shop's page index: the facets' nested paths hold name/value pairs; its full-text fields are ours.
ALIASES = {"string-facet": "{facet-name}", "integer-facet": "{facet-name}", "full-text-boosted": "title"}
SOFA = {"bool": {"must": [{"multi_match": {"query": "sofa", "fields": ["full-text-boosted"]}}]}}


def names_aggregation(path: str, value: dict[str, Any], size: int = 10) -> dict[str, Any]:
    """Spryker's getExpectedStringFacetAggregation / getExpectedIntegerFacetAggregation."""
    names = {"terms": {"field": f"{path}.facet-name", "size": size}, "aggs": {f"{path}-value": value}}
    return {"nested": {"path": path}, "aggs": {f"{path}-name": names}}


STRING_FACETS = names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}})


embedded, client = backend_fixtures(CATALOG, field_aliases=ALIASES)


def aggregations(client, aggs: dict[str, Any], query: dict[str, Any] = SOFA, path: str = "") -> dict[str, Any]:
    return search(client, {"query": query, "size": 0, "aggs": aggs}, f"/products/_search{path}")["aggregations"]


def pairs(products: list[Product]) -> dict[str, dict[str, int]]:
    """Each name's values and their products, as Spryker indexes a product's facets (one pair per name)."""
    out: dict[str, dict[str, int]] = {}
    for p in products:
        for name, values in (({"brand": (p.brand,)} if p.brand else {}) | p.attributes).items():
            for value in values:
                out.setdefault(name, {})[value] = out.setdefault(name, {}).get(value, 0) + 1
    return out


def named(products: list[Product], name: str) -> int:
    return sum(1 for p in products if (p.brand if name == "brand" else p.attributes.get(name)))


def test_every_name_counts_its_products_and_its_values(client):
    answer = aggregations(client, {"string-facet": STRING_FACETS})["string-facet"]
    names = answer["string-facet-name"]["buckets"]
    expected = pairs(SOFAS)
    assert {b["key"]: b["doc_count"] for b in names} == {name: named(SOFAS, name) for name in expected}
    for bucket in names:
        values = {v["key"]: v["doc_count"] for v in bucket["string-facet-value"]["buckets"]}
        assert values == expected[bucket["key"]]
    assert answer["doc_count"] == sum(named(SOFAS, name) for name in expected)


def test_names_are_ordered_by_their_products_then_by_name_and_cut_to_the_size(client):
    names = aggregations(
        client,
        {"string-facet": names_aggregation("string-facet", {"terms": {"field": "string-facet.facet-value"}}, size=2)},
    )
    answer = names["string-facet"]["string-facet-name"]
    assert [b["key"] for b in answer["buckets"]] == ["brand", "color"]  # 4 and 3 sofas; material 2, size 1
    assert answer["sum_other_doc_count"] == named(SOFAS, "material") + named(SOFAS, "size")


def test_integer_pairs_answer_each_numeric_names_stats(client):
    stats = names_aggregation("integer-facet", {"stats": {"field": "integer-facet.facet-value"}})
    buckets = aggregations(client, {"integer-facet": stats})["integer-facet"]["integer-facet-name"]["buckets"]
    by_name = {b["key"]: b["integer-facet-value"] for b in buckets}
    prices = [p.price for p in SOFAS]
    assert by_name["price"]["count"] == len(prices) and by_name["price"]["min"] == min(prices)
    assert by_name["rating"]["count"] == sum(1 for p in SOFAS if p.rating is not None)


def test_a_facet_with_its_own_parameters_is_a_filter_on_its_name(client):
    # createStandaloneFacetNameAggregation: nested "string-facet.color", filter "string-facet.color-name" on the
    # name, terms "string-facet.color-value" under it.
    name_filter = {"term": {"string-facet.facet-name": "color"}}
    values = {"terms": {"field": "string-facet.facet-value", "size": 5}}
    spec = {
        "nested": {"path": "string-facet"},
        "aggs": {"string-facet.color-name": {"filter": name_filter, "aggs": {"string-facet.color-value": values}}},
    }
    answer = aggregations(client, {"string-facet.color": spec})["string-facet.color"]["string-facet.color-name"]
    assert answer["doc_count"] == named(SOFAS, "color")
    assert {b["key"]: b["doc_count"] for b in answer["string-facet.color-value"]["buckets"]} == pairs(SOFAS)["color"]


def test_a_refined_facets_counts_under_global_and_filter_are_answered_there(client):
    # FacetQueryExpanderPlugin: a global aggregation, a filter of the other facets' refinements, the facet.
    acme = {"bool": {"filter": [{"term": {"brand": "Acme"}}]}}
    spec = {"global": {}, "aggs": {"filter": {"filter": acme, "aggs": {"string-facet": STRING_FACETS}}}}
    answer = aggregations(client, {"global-string-facet": spec})["global-string-facet"]["filter"]["string-facet"]
    acme_products = [p for p in CATALOG if p.brand == "Acme"]
    names = {b["key"]: b["doc_count"] for b in answer["string-facet-name"]["buckets"]}
    assert names == {name: named(acme_products, name) for name in pairs(acme_products)}


def test_typed_keys_name_the_nested_and_terms_aggregations(client):
    answer = aggregations(client, {"string-facet": STRING_FACETS}, path="?typed_keys=true")
    nested = answer["nested#string-facet"]
    assert "sterms#string-facet-name" in nested
    assert all("sterms#string-facet-value" in b for b in nested["sterms#string-facet-name"]["buckets"])


def test_a_filter_by_a_name_without_an_alias_is_the_attribute_of_that_name(client):
    clause = {
        "nested": {
            "path": "string-facet",
            "query": {
                "bool": {
                    "filter": [
                        {"term": {"string-facet.facet-name": "material"}},
                        {"term": {"string-facet.facet-value": "oak"}},
                    ]
                }
            },
        }
    }
    response = client.post("/products/_search", json={"query": {"bool": {"filter": [clause]}}})
    assert response.status_code == 200, response.get_json()
    assert sorted(hit["_id"] for hit in response.get_json()["hits"]["hits"]) == ["s2", "t1"]


def test_another_shape_over_the_pairs_stays_a_501_naming_it(client):
    spec = {
        "nested": {"path": "string-facet"},
        "aggs": {"names": {"terms": {"field": "string-facet.facet-name", "include": "c.*"}}},
    }
    response = client.post("/products/_search", json={"size": 0, "aggs": {"string-facet": spec}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"].startswith("aggs.string-facet")


def test_only_the_attribute_names_most_products_hold_are_counted_up_to_the_setting(catalog_client):
    # color and material are held by three products each (color first by name), size by one
    narrow = catalog_client(CATALOG, field_aliases=ALIASES, max_pair_facet_names=1)
    answer = aggregations(narrow, {"string-facet": STRING_FACETS})["string-facet"]
    assert [b["key"] for b in answer["string-facet-name"]["buckets"]] == ["brand", "color"]
