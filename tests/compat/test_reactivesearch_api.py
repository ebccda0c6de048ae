"""ReactiveSearch 4's request language (``POST /products/_reactivesearch``) in each of its shapes, on both backends,
over the suite's nine products: what each query matches, counts and orders is what appbase.io's ReactiveSearch API
server makes of it in front of Elasticsearch (the requests ReactiveSearch's own components send are in
bodies/reactivesearch_real_*.json; the translation's errors in tests/service/test_reactivesearch.py).
"""

from __future__ import annotations

from typing import Any

SOFAS = ["s1", "s2", "s3", "s4", "s5"]
SEARCH_BOX = {
    "id": "search",
    "type": "search",
    "dataField": [{"field": "title", "weight": 3}, {"field": "description", "weight": 1}],
    "value": "sofa",
    "highlight": True,
    "execute": False,
}


def brands(*values: str, **props: Any) -> dict[str, Any]:
    return {
        "id": "brand",
        "type": "term",
        "dataField": ["brand.keyword"],
        "value": list(values),
        "execute": False,
        **props,
    }


def colours(value: Any, **props: Any) -> dict[str, Any]:
    return {"id": "colour", "type": "term", "dataField": ["color.keyword"], "value": value, "execute": False, **props}


def results(react: dict[str, Any] | None = None, **props: Any) -> dict[str, Any]:
    """A ReactiveList: the relevance sort option, a page of every match (size 20)."""
    return {
        "id": "results",
        "type": "search",
        "dataField": ["_score"],
        "sortBy": "desc",
        "size": 20,
        "react": react,
        **props,
    }


def answer(service, *queries: dict[str, Any]) -> dict[str, Any]:
    response = service.post(
        "/products/_reactivesearch", json={"settings": {"recordAnalytics": False}, "query": list(queries)}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answered: dict[str, Any]) -> list[str]:
    assert answered["status"] == 200, answered
    return sorted(hit["_id"] for hit in answered["hits"]["hits"])


def buckets(answered: dict[str, Any], name: str) -> dict[str, int]:
    return {bucket["key"]: bucket["doc_count"] for bucket in answered["aggregations"][name]["buckets"]}


def test_react_and_narrows_a_query_by_each_named_query(service):
    found = answer(service, SEARCH_BOX, brands("Acme"), results({"and": ["search", "brand"]}))
    assert ids(found["results"]) == ["s1", "s2"]


def test_react_or_matches_what_any_named_query_matches(service):
    acme, cosy = brands("Acme") | {"id": "acme"}, brands("Cosy") | {"id": "cosy"}
    found = answer(service, SEARCH_BOX, acme, cosy, results({"and": "search", "or": ["acme", "cosy"]}))
    assert ids(found["results"]) == ["s1", "s2", "s4"]


def test_react_not_leaves_out_what_the_named_query_matches(service):
    found = answer(service, SEARCH_BOX, brands("Acme"), results({"and": "search", "not": "brand"}))
    assert ids(found["results"]) == ["s3", "s4", "s5"]


def test_react_nests_an_or_within_an_and(service):
    cheap = {"id": "cheap", "type": "range", "dataField": "price", "value": {"start": 0, "end": 300}, "execute": False}
    found = answer(
        service, SEARCH_BOX, cheap, colours(["grey"]), results({"and": ["search", {"or": ["cheap", "colour"]}]})
    )
    assert ids(found["results"]) == ["s1", "s4", "s5"]


def test_a_search_with_a_value_is_narrowed_by_it_and_by_what_it_reacts_to(service):
    search = SEARCH_BOX | {"execute": True, "react": {"and": "brand"}}
    assert ids(answer(service, search, brands("Acme"))["search"]) == ["s1", "s2"]


def test_react_naming_no_query_of_the_request_narrows_nothing(service):
    assert answer(service, results({"and": ["search", "brand"]}))["results"]["hits"]["total"]["value"] == 9


def test_a_search_box_lends_its_highlight_to_the_queries_reacting_to_it(service):
    found = answer(service, SEARCH_BOX, results({"and": "search"}))["results"]
    highlights = [
        text for hit in found["hits"]["hits"] for texts in hit.get("highlight", {}).values() for text in texts
    ]
    assert ids(found) == SOFAS and any("<mark>sofa</mark>" in text.lower() for text in highlights)


def test_a_term_query_counts_values_unnarrowed_by_its_own_value(service):
    facet = brands("Acme", react={"and": "search"}, execute=True)
    found = answer(service, SEARCH_BOX, facet, results({"and": ["search", "brand"]}))
    assert buckets(found["brand"], "brand.keyword") == {"Acme": 2, "Bolt": 2, "Cosy": 1}
    assert ids(found["results"]) == ["s1", "s2"]


def test_term_values_joined_by_query_format_and_must_all_match(service):
    found = answer(service, brands("Acme", "Bolt", queryFormat="and"), results({"and": "brand"}))
    assert ids(found["results"]) == []


def test_show_missing_counts_the_products_without_the_field_and_its_label_finds_them(service):
    missing = {"showMissing": True, "missingLabel": "none"}
    facet = colours(None, **missing) | {"id": "facet", "execute": True}
    found = answer(service, facet, colours(["none"], **missing), results({"and": "colour"}))
    assert buckets(found["facet"], "color.keyword")["none"] == 1
    assert ids(found["results"]) == ["t2"]


def test_the_select_all_label_finds_every_product_with_the_field(service):
    found = answer(service, colours(["All"], selectAllLabel="All"), results({"and": "colour"}))
    assert ids(found["results"]) == ["l1", "l2", "s1", "s2", "s3", "s4", "s5", "t1"]


def test_a_pivot_value_matches_each_field_in_turn(service):
    pivot = {"id": "pivot", "type": "term", "dataField": ["brand.keyword", "color.keyword"], "value": ["Acme > grey"]}
    found = answer(service, pivot | {"execute": False}, results({"and": "pivot"}))
    assert ids(found["results"]) == ["s1"]


def test_a_list_of_ranges_matches_any_of_them(service):
    ranges = [{"start": 0, "end": 100}, {"start": 600, "end": 700}]
    prices = {"id": "price", "type": "range", "dataField": "price", "value": ranges, "execute": False}
    assert ids(answer(service, prices, results({"and": "price"}))["results"]) == ["l1", "l2", "s3", "s4"]


def test_a_range_query_is_narrowed_by_its_own_value_only_while_what_it_reacts_to_adds_nothing(service):
    prices = {"id": "price", "type": "range", "dataField": "price", "value": {"start": 600, "end": 700}}
    assert ids(answer(service, prices | {"size": 20})["price"]) == ["s3", "s4"]
    reacting = prices | {"size": 20, "react": {"and": "search"}}
    assert ids(answer(service, SEARCH_BOX, reacting)["price"]) == SOFAS


def test_include_null_values_keeps_the_products_without_the_field(service):
    rated = {"id": "rated", "type": "range", "dataField": "rating", "value": {"start": 4, "end": 5}, "execute": False}
    found = answer(service, rated | {"includeNullValues": True}, results({"and": "rated"}))
    assert ids(found["results"]) == ["l1", "l2", "s1", "s2", "s4", "s5", "t1"]


def test_range_aggregations_answer_the_least_the_most_and_bars_of_the_interval(service):
    slider = {"id": "price", "type": "range", "dataField": "price", "aggregations": ["min", "max", "histogram"]}
    found = answer(service, slider | {"interval": 200, "range": {"start": 0, "end": 1000}})["price"]
    assert found["aggregations"]["min"]["value"] == 39 and found["aggregations"]["max"]["value"] == 899
    assert buckets(found, "price") == {0: 3, 200: 2, 400: 1, 600: 2, 800: 1}


def test_term_pagination_answers_the_values_after_the_last_pages_key(service):
    facet = {"id": "brand", "type": "term", "dataField": "brand.keyword", "pagination": True, "sortBy": "asc"}
    found = answer(service, facet | {"size": 2, "after": {"brand.keyword": "Acme"}})["brand"]["aggregations"]
    assert [b["key"] for b in found["brand.keyword"]["buckets"]] == [
        {"brand.keyword": "Bolt"},
        {"brand.keyword": "Cosy"},
    ]
    assert found["brand.keyword"]["after_key"] == {"brand.keyword": "Cosy"}


def test_sort_field_and_sort_by_order_the_hits(service):
    found = answer(service, results(sortField="price", sortBy="desc"))["results"]
    assert [hit["_id"] for hit in found["hits"]["hits"]] == ["s2", "s4", "s3", "s1", "s5", "t1", "t2", "l2", "l1"]


def test_a_default_query_replaces_the_querys_own_and_sets_its_options(service):
    own = {
        "id": "results",
        "dataField": ["title"],
        "value": "sofa",
        "defaultQuery": {"query": {"term": {"brand.keyword": "Dune"}}, "size": 0},
    }
    found = answer(service, own)["results"]
    assert found["hits"]["total"]["value"] == 1 and found["hits"]["hits"] == []


def test_a_custom_query_is_what_the_queries_reacting_to_it_take(service):
    custom = {
        "id": "dune",
        "dataField": ["title"],
        "customQuery": {"query": {"term": {"brand.keyword": "Dune"}}},
        "execute": False,
    }
    assert ids(answer(service, custom, results({"and": "dune"}))["results"]) == ["l2"]


def test_a_query_string_value_is_read_as_lucene_syntax(service):
    found = answer(service, SEARCH_BOX | {"value": "sofa AND grey", "queryString": True}, results({"and": "search"}))
    assert ids(found["results"]) == ["s1", "s4", "s5"]


def test_search_operators_read_the_simple_query_string_syntax(service):
    found = answer(service, SEARCH_BOX | {"value": "sofa +grey", "searchOperators": True}, results({"and": "search"}))
    assert ids(found["results"]) == ["s1", "s5"]


def test_a_category_value_narrows_a_search_to_it_and_its_categories_are_counted(service):
    search = SEARCH_BOX | {"execute": True, "categoryField": "brand.keyword", "categoryValue": "Bolt", "size": 10}
    found = answer(service, search)["search"]
    assert ids(found) == ["s3", "s5"] and buckets(found, "brand.keyword") == {"Bolt": 2}


def test_a_suggestion_query_without_a_value_answers_no_suggestions(service):
    suggestions = {"id": "search", "type": "suggestion", "dataField": ["title"], "execute": True}
    found = answer(service, suggestions)["search"]
    assert found["hits"]["hits"] == [] and found["hits"]["total"]["value"] == 0


def test_a_suggestion_query_with_a_value_answers_the_sofas_titles_highlighted_as_suggestions(service):
    suggestions = {"id": "search", "type": "suggestion", "dataField": ["title"], "value": "sofa", "highlight": True}
    found = answer(service, suggestions)["search"]
    made = found["hits"]["hits"]
    assert sorted(s["_id"] for s in made) == SOFAS and found["hits"]["total"]["value"] == len(SOFAS)
    assert all("<b class=highlight>" in s["label"] and "sofa" in s["value"] for s in made)


def test_a_query_that_is_not_executed_is_not_answered(service):
    assert set(answer(service, SEARCH_BOX, results({"and": "search"}))) == {"results", "settings"}
