"""ReactiveSearch 4's ``_reactivesearch`` endpoint: the clauses its translation makes as the ReactiveSearch API
server makes them, and what it refuses (a malformed request is a 400 naming the part, one asking for appbase.io's
own services a 501 naming it). What the translated queries match is tested on both backends in
tests/compat/test_reactivesearch_api.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from search_rerank.serving.reactivesearch import plural, translate

SEARCH_BOX = {"id": "search", "dataField": [{"field": "title", "weight": 3}, "description", "title.keyword"]}


def post(client, *queries: Any, index: str = "products"):
    return client.post(f"/{index}/_reactivesearch", json={"query": list(queries)})


def body(*queries: dict[str, Any]) -> dict[str, Any]:
    """The Elasticsearch body of the last query's search."""
    return translate({"query": list(queries)}).searches[-1].body


def test_a_search_value_makes_the_api_servers_four_clauses():
    query = body(SEARCH_BOX | {"value": "shelf", "fuzziness": 1})["query"]
    fields = ["title^3.00", "description", "title.keyword"]
    assert query == {
        "bool": {
            "should": [
                {"multi_match": {"query": "shelves", "fields": fields, "type": "cross_fields", "operator": "or"}},
                {
                    "multi_match": {
                        "query": "shelf",
                        "fields": fields,
                        "type": "best_fields",
                        "operator": "or",
                        "fuzziness": 1,
                    }
                },
                {"multi_match": {"query": "shelf", "fields": fields, "type": "phrase", "operator": "or"}},
                {
                    "multi_match": {
                        "query": "shelf",
                        "fields": ["title^1.0", "description"],  # a prefix in an exact sub-field finds nothing
                        "type": "phrase_prefix",
                        "operator": "or",
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


def test_query_format_and_drops_the_best_field_clause_and_a_list_of_values_the_prefix():
    clauses = body(SEARCH_BOX | {"value": ["grey", "sofa"], "queryFormat": "and"})["query"]["bool"]["should"]
    assert [(c["multi_match"]["type"], c["multi_match"]["operator"]) for c in clauses] == [
        ("cross_fields", "and"),
        ("phrase", "and"),
    ]
    assert clauses[0]["multi_match"]["query"] == "grey sofas"


@pytest.mark.parametrize(
    "text, made",
    [
        ("lamp", "lamps"),
        ("grey sofa", "grey sofas"),
        ("glass", "glasses"),
        ("box", "boxes"),
        ("bench", "benches"),
        ("lamps", "lamps"),
        ("shelf", "shelves"),
        ("knife", "knives"),
        ("berry", "berries"),
        ("day", "days"),
        ("child", "children"),
        ("people", "people"),
        ("furniture", "furniture"),
        ("LAMP", "LAMPS"),
        ("usb - cable", "usb cables"),  # a lone mark dropped, as the server's sanitising does
        ("4k", "4k"),
        ("tv 55in", "tv 55in"),
    ],
)
def test_the_cross_fields_clause_searches_the_last_word_made_plural(text, made):
    assert plural(text) == made


def test_a_reacting_query_takes_the_highlight_and_sort_of_what_it_names_but_not_their_page_or_facets():
    named = SEARCH_BOX | {"value": "sofa", "highlight": True, "size": 3, "from": 6, "sortBy": "asc", "execute": False}
    facet = {"id": "brand", "type": "term", "dataField": "brand.keyword", "react": {"and": "search"}}
    translated = body(named, facet)
    assert translated["highlight"] == {
        "pre_tags": ["<mark>"],
        "post_tags": ["</mark>"],
        "fields": {"title": {}, "description": {}, "title.keyword": {}},
    }
    assert translated["sort"] == [{"title": {"order": "asc"}}]
    assert translated["size"] == 0 and "from" not in translated
    assert list(translated["aggs"]) == ["brand.keyword"]


def test_highlight_fields_named_need_no_field_match_and_a_highlight_config_is_sent_as_it_is():
    named = body(SEARCH_BOX | {"highlight": True, "highlightField": ["title"]})["highlight"]
    assert named["fields"] == {"title": {}} and named["require_field_match"] is False
    config = body(SEARCH_BOX | {"highlight": True, "highlightConfig": {"pre_tags": ["<b>"], "post_tags": ["</b>"]}})
    assert config["highlight"] == {
        "pre_tags": ["<b>"],
        "post_tags": ["</b>"],
        "fields": {"title": {}, "description": {}, "title.keyword": {}},
    }


@pytest.mark.parametrize(
    "sort_field, order, sort",
    [
        (None, None, [{"_score": {"order": "asc"}}]),
        ("price", "desc", [{"price": {"order": "desc"}}]),
        (["_score", {"price": "asc"}], "asc", [{"_score": {"order": "desc"}}, {"price": {"order": "asc"}}]),
    ],
)
def test_sort_by_orders_the_sort_field_or_the_first_data_field(sort_field, order, sort):
    results = {"id": "results", "dataField": ["_score"], "sortBy": order or "asc"}
    assert body(results | ({"sortField": sort_field} if sort_field else {}))["sort"] == sort


def test_deep_pagination_searches_after_its_cursor_from_the_start():
    results = {"id": "results", "dataField": "price", "sortBy": "asc", "from": 20}
    paged = body(results | {"deepPagination": True, "deepPaginationConfig": {"cursor": "299"}})
    assert paged["search_after"] == ["299"] and paged["from"] == 0


def test_each_executed_query_is_answered_under_its_id_with_the_time_taken(client):
    facet = {"id": "brand", "type": "term", "dataField": "brand.keyword", "react": {"and": "search"}}
    results = {"id": "results", "dataField": ["title"], "size": 3, "react": {"and": ["search", "brand"]}}
    search = {"id": "search", "dataField": ["title", "description"], "value": "sofa", "execute": False}
    answer = post(client, search, facet, results)
    assert answer.status_code == 200 and answer.headers["X-Elastic-Product"] == "Elasticsearch"
    found = answer.get_json()
    assert set(found) == {"brand", "results", "settings"}
    assert found["brand"]["status"] == found["results"]["status"] == 200
    assert len(found["results"]["hits"]["hits"]) == 3 and found["brand"]["aggregations"]["brand.keyword"]["buckets"]
    assert found["settings"]["took"] == found["brand"]["took"] + found["results"]["took"]


def test_a_query_whose_search_fails_fails_alone(client):
    broken = {"id": "broken", "dataField": ["title"], "defaultQuery": {"size": -1}}
    found = post(client, broken, {"id": "results", "dataField": ["title"]}).get_json()
    assert found["broken"]["status"] == 400 and found["broken"]["error"]["field"] == "size"
    assert found["results"]["status"] == 200


def test_a_suggestion_query_switched_off_is_answered_without_a_search(client):
    off = {
        "id": "search",
        "type": "suggestion",
        "dataField": ["title"],
        "execute": False,
        "enableIndexSuggestions": False,
    }
    found = post(client, off).get_json()["search"]
    assert found["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}


SUGGESTIONS = {"id": "search", "type": "suggestion", "dataField": ["title"]}


def test_a_suggestion_query_with_a_value_is_answered_with_index_suggestions_made_from_its_hits(client):
    found = post(client, SUGGESTIONS | {"value": "velvet sofa"}).get_json()["search"]
    suggestions = found["hits"]["hits"]
    assert "velvet sofa" in suggestions[0]["value"] and suggestions[0]["_rs_score"] == 2.1  # both words, in a row
    assert found["hits"]["total"]["value"] == len(suggestions) > 1
    assert {s["_suggestion_type"] for s in suggestions} == {"index"} and all(s["_source"] for s in suggestions)


def test_a_suggestion_query_without_a_value_is_answered_with_no_suggestions(client):
    found = post(client, SUGGESTIONS).get_json()["search"]
    assert found["hits"]["hits"] == [] and found["hits"]["total"]["value"] == 0


def test_suggestion_labels_carry_the_api_servers_highlight_tags_less_their_quotes(client):
    found = post(client, SUGGESTIONS | {"value": "velvet sofa", "highlight": True}).get_json()["search"]
    label = found["hits"]["hits"][0]["label"]
    assert "<b class=highlight>" in label and "</b>" in label and '"' not in label


def test_size_cuts_the_suggestions_and_a_category_field_adds_one_per_category_first(client):
    asked = SUGGESTIONS | {"value": "sofa", "size": 3, "categoryField": "brand.keyword"}
    suggestions = post(client, asked).get_json()["search"]["hits"]["hits"]
    assert len(suggestions) == 3
    assert suggestions[0]["label"].startswith("sofa in ") and suggestions[0]["_count"] >= 1


def test_a_suggestion_query_searches_its_value_without_lone_punctuation_and_highlights_with_the_servers_tags():
    translated = body(SUGGESTIONS | {"value": "sofa - bed", "highlight": True})
    assert translated["query"]["bool"]["should"][2]["multi_match"]["query"] == "sofa bed"
    assert translated["highlight"] == {
        "fields": {"title": {}},
        "pre_tags": ['<b class="highlight">'],
        "post_tags": ["</b>"],
    }


def test_a_suggestion_query_with_endpoint_suggestions_switched_off_is_answered_without_a_search(client):
    found = post(client, SUGGESTIONS | {"value": "sofa", "enableEndpointSuggestions": False}).get_json()["search"]
    assert found["hits"] == {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []}


def test_a_request_of_more_queries_than_a_multi_search_may_hold_is_a_400(client, settings):
    queries = [{"id": f"q{i}", "dataField": ["title"]} for i in range(settings.service.max_msearch_searches + 1)]
    answer = post(client, *queries)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "query"


def test_a_request_whose_queries_ask_more_hits_in_all_than_a_multi_search_may_is_a_400(client, settings):
    most = settings.service.max_msearch_hits
    queries = [{"id": f"q{i}", "dataField": ["title"], "size": most // 2 + 1} for i in range(2)]
    answer = post(client, *queries)
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "query"
    assert "max_msearch_hits" in answer.get_json()["error"]["reason"]


@pytest.mark.parametrize(
    "request_body, field",
    [
        ({}, "query"),
        ({"query": []}, "query"),
        ({"query": ["search"]}, "query[0]"),
        ({"query": [{"dataField": "title"}]}, "query[0].id"),
        ({"query": [{"id": "a"}, {"id": "a", "value": "lamp"}]}, "query[1].id"),  # two to execute
        ({"query": [{"id": "settings"}]}, "query[0].id"),
        ({"query": [{"id": "a", "type": "knn"}]}, "query[0].type"),
        ({"query": [{"id": "a", "execute": "yes"}]}, "query[0].execute"),
        ({"query": [{"id": "a", "highlight": "title"}]}, "query[0].highlight"),
        ({"query": [{"id": "a", "customQuery": ["title"]}]}, "query[0].customQuery"),
        ({"query": [{"id": "a", "categoryField": ["brand"]}]}, "query[0].categoryField"),
        ({"query": [{"id": "a", "react": ["b"]}]}, "query[0].react"),
        ({"query": [{"id": "a", "react": {"and": "b", "xor": "c"}}]}, "query[0].react.xor"),
        ({"query": [{"id": "a", "react": {"and": ["b", 3]}}]}, "query[0].react.and[1]"),
        ({"query": [{"id": "a", "dataField": [{"weight": 2}]}]}, "query[0].dataField[0]"),
        ({"query": [{"id": "a", "value": "sofa"}]}, "query[0].dataField"),
        ({"query": [{"id": "a", "dataField": "title", "value": 7}]}, "query[0].value"),
        ({"query": [{"id": "a", "dataField": "title", "value": "x", "queryFormat": "xor"}]}, "query[0].queryFormat"),
        ({"query": [{"id": "a", "highlightConfig": {}}]}, "query[0].highlightConfig"),
        ({"query": [{"id": "a", "dataField": "title", "sortBy": "count"}]}, "query[0].sortBy"),
        (
            {"query": [{"id": "a", "dataField": "title", "sortField": [{"price": "up"}], "sortBy": "asc"}]},
            "query[0].sortField[0].price",
        ),
        ({"query": [{"id": "a", "type": "range", "dataField": "price", "value": [5]}]}, "query[0].value[0]"),
        (
            {"query": [{"id": "a", "type": "term", "value": ["Acme"]}, {"id": "b", "react": {"and": "a"}}]},
            "query[0].dataField",
        ),
        (
            {
                "query": [
                    {"id": "a", "type": "range", "dataField": "price", "aggregations": ["histogram"], "interval": 0}
                ]
            },
            "query[0].interval",
        ),
        ({"query": [{"id": "a"}], "settings": []}, "settings"),
    ],
)
def test_a_malformed_request_is_a_400_naming_the_part(client, request_body, field):
    answer = client.post("/products/_reactivesearch", json=request_body)
    assert answer.status_code == 400, answer.get_json()
    assert answer.get_json()["error"]["field"] == field


@pytest.mark.parametrize(
    "query, part",
    [
        (
            {"type": "suggestion", "dataField": ["title"], "value": "so", "enableFeaturedSuggestions": True},
            "query[0].enableFeaturedSuggestions",
        ),
        (
            {"type": "suggestion", "dataField": ["title"], "value": "so", "searchLanguage": "french"},
            "query[0].searchLanguage",
        ),
        ({"dataField": ["title"], "queryVector": [0.1, 0.2], "vectorDataField": "vector"}, "query[0].queryVector"),
        ({"dataField": ["title"], "imageValue": "data:image/png;base64,AAAA"}, "query[0].imageValue"),
        ({"dataField": ["title"], "rankFeature": {"sales": {"boost": 2}}}, "query[0].rankFeature"),
        ({"dataField": ["title"], "endpoint": {"url": "http://elsewhere.example/"}}, "query[0].endpoint"),
        ({"dataField": ["title"], "enableAI": True}, "query[0].enableAI"),
        ({"type": "geo", "dataField": "location"}, "query[0].type"),
    ],
)
def test_what_only_appbase_ios_services_answer_is_a_501_naming_it(client, query, part):
    answer = post(client, {"id": "a", **query})
    assert answer.status_code == 501 and answer.get_json()["error"]["unsupported"] == part


def test_the_index_the_request_names_must_be_served(client):
    answer = post(client, {"id": "results", "dataField": ["title"]}, index="elsewhere")
    assert answer.get_json()["results"]["status"] == 404
