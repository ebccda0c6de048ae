"""The embedded backend's answers to a search without words (a front end's first page) and to words still being
typed (autocomplete's bool_prefix / phrase_prefix), as Elasticsearch answers them, with the dense leg on."""

from __future__ import annotations

import json

import pytest

from search_rerank.core.product import Product


def product(pid: str, title: str, brand: str, price: float, sales: int, description: str = "") -> Product:
    return Product(id=pid, title=title, brand=brand, category=("Furniture",), price=price, sales=sales,
                   description=description)  # fmt: skip


CATALOG = [
    product("s1", "Corner sofa", "Acme", 499.0, 120),
    product("s2", "Leather sofa", "Acme", 899.0, 40),
    product("s3", "Sofa bed", "Bolt", 700.0, 40),
    product("s4", "Softwood shelf", "Bolt", 99.0, 7),
    product("t1", "Oak table", "Bolt", 249.5, 60),
    product("t2", "Glass table", "Acme", 199.0, 22),
    product("l1", "Desk lamp", "Acme", 39.0, 0, "a lamp for a sofa side table"),
    product("l2", "Floor lamp", "Dune", 89.0, 5),
]
BY_SALES = ["s1", "t1", "s2", "s3", "t2", "s4", "l2", "l1"]  # sales descending, ties by id


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def search(client, body: dict) -> dict:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answer: dict) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


@pytest.mark.parametrize(
    "body",
    [{}, {"query": {"match_all": {}}}, {"query": {"bool": {"must": {"match_all": {}}, "filter": []}}}],
    ids=["empty", "match_all", "searchkit_bool"],
)
def test_search_without_words_lists_every_product_by_sales_then_id(client, body):
    answer = search(client, {**body, "size": 20})
    assert ids(answer) == BY_SALES
    assert answer["hits"]["total"] == {"value": len(CATALOG), "relation": "eq"}


def test_search_without_words_pages_follow_one_another_with_the_exact_total(client):
    pages = [ids(search(client, {"query": {"match_all": {}}, "from": offset, "size": 3})) for offset in (0, 3, 6)]
    assert pages == [BY_SALES[0:3], BY_SALES[3:6], BY_SALES[6:]]
    assert search(client, {"from": 3, "size": 3})["hits"]["total"]["value"] == len(CATALOG)


def test_search_with_only_filters_lists_the_matches_with_post_filter_applied(client):
    body = {
        "query": {"bool": {"filter": [{"term": {"brand.keyword": "Acme"}}]}},
        "post_filter": {"range": {"price": {"gte": 100}}},
        "aggs": {"brands": {"terms": {"field": "brand.keyword"}}},
    }
    answer = search(client, body)
    assert ids(answer) == ["s1", "s2", "t2"]
    assert answer["hits"]["total"]["value"] == 3
    # Facets count the query's matches without the post filter, as Elasticsearch counts them.
    assert {b["key"]: b["doc_count"] for b in answer["aggregations"]["brands"]["buckets"]} == {"Acme": 4}


def test_search_without_words_and_a_sort_still_orders_by_the_sort(client):
    answer = search(client, {"query": {"match_all": {}}, "sort": [{"price": "asc"}], "size": 3})
    assert ids(answer) == ["l1", "l2", "s4"]


@pytest.mark.parametrize(
    "query",
    [
        {"multi_match": {"query": "sof", "type": "bool_prefix", "fields": ["title"]}},
        {"multi_match": {"query": "sof", "type": "phrase_prefix", "fields": ["title"]}},
        {"match_bool_prefix": {"title": "sof"}},
        {"match_phrase_prefix": {"title": "sof"}},
    ],
    ids=["bool_prefix", "phrase_prefix", "match_bool_prefix", "match_phrase_prefix"],
)
def test_last_word_being_typed_matches_the_words_it_begins(client, query):
    answer = search(client, {"query": query, "size": 10})
    assert set(ids(answer)) == {"s1", "s2", "s3", "s4"}
    assert answer["hits"]["total"]["value"] == 4


def test_words_before_the_last_in_a_phrase_prefix_must_be_in_order(client):
    answer = search(client, {"query": {"match_phrase_prefix": {"title": "sofa b"}}})
    assert ids(answer) == ["s3"]


def test_bool_prefix_with_every_word_required_matches_whole_words_and_the_prefix(client):
    query = {"multi_match": {"query": "leather so", "type": "bool_prefix", "fields": ["title"], "operator": "and"}}
    assert ids(search(client, {"query": query})) == ["s2"]


def test_prefix_in_a_filter_restricts_the_hits(client):
    body = {"query": {"bool": {"filter": [{"match_phrase_prefix": {"title": "tab"}}]}}}
    assert set(ids(search(client, body))) == {"t1", "t2"}


def test_highlight_marks_the_words_the_typed_prefix_begins(client):
    body = {
        "query": {"multi_match": {"query": "sof", "type": "bool_prefix", "fields": ["title"]}},
        "highlight": {"fields": {"title": {}}},
    }
    marked = {hit["_id"]: hit["highlight"]["title"][0] for hit in search(client, body)["hits"]["hits"]}
    assert marked["s1"] == "Corner <em>sofa</em>"
    assert marked["s4"] == "<em>Softwood</em> shelf"


def test_product_search_api_without_a_query_is_still_refused(client):
    response = client.post("/search", json={"query": ""})
    assert response.status_code == 400


def search_ui_suggestions(prefix: str, fuzzy: bool = True, **completion) -> dict:
    """Search UI's autocomplete suggestions request (its SuggestionsAutocompleteBuilder), on the title."""
    options = {"size": 5, "skip_duplicates": True, "field": "title", **completion}
    if fuzzy:
        options["fuzzy"] = {"fuzziness": 1}
    return {"size": 0, "_source": {"includes": []}, "suggest": {"suggest": {"prefix": prefix, "completion": options}}}


def options(answer: dict, name: str = "suggest") -> list[str]:
    return [option["text"] for option in answer["suggest"][name][0]["options"]]


def test_completion_suggests_the_titles_that_begin_with_the_prefix_best_sellers_first(client):
    answer = search(client, search_ui_suggestions("so"))
    assert options(answer) == ["Sofa bed", "Softwood shelf"]
    assert answer["hits"]["hits"] == []
    assert answer["suggest"]["suggest"][0]["text"] == "so"


def test_completion_options_carry_their_product_id(client):
    (option,) = search(client, search_ui_suggestions("oak"))["suggest"]["suggest"][0]["options"]
    assert (option["_id"], option["text"]) == ("t1", "Oak table")


def test_completion_matches_the_beginning_of_the_title_not_a_later_word(client):
    assert options(search(client, search_ui_suggestions("lamp", fuzzy=False))) == []


def test_completion_prefix_of_several_words_continues_the_title(client):
    assert options(search(client, search_ui_suggestions("Corner  SO"))) == ["Corner sofa"]


def test_fuzzy_completion_forgives_a_swapped_pair_of_letters(client):
    assert options(search(client, search_ui_suggestions("sfoa"))) == ["Sofa bed"]
    assert options(search(client, search_ui_suggestions("sfoa", fuzzy=False))) == []


def test_completion_size_caps_the_options(client):
    assert options(search(client, search_ui_suggestions("s", size=1))) == ["Sofa bed"]


def test_completion_in_an_msearch_item_is_answered_in_its_response(client):
    lines = ['{"index": "products"}', json.dumps(search_ui_suggestions("glass")), ""]
    response = client.post("/_msearch", data="\n".join(lines), content_type="application/x-ndjson")
    assert response.status_code == 200
    assert options(response.get_json()["responses"][0]) == ["Glass table"]


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [
        (search_ui_suggestions("so", size=0), "suggest.suggest.completion.size", 400),
        (search_ui_suggestions("so", skip_duplicates="yes"), "suggest.suggest.completion.skip_duplicates", 400),
        (search_ui_suggestions("so", field="brand"), "suggest.suggest.completion.field", 501),
        (
            {"suggest": {"s": {"prefix": "so", "completion": {"field": "title", "contexts": {}}}}},
            "suggest.s.contexts",
            501,
        ),
    ],
    ids=["size_zero", "skip_duplicates_not_boolean", "not_the_title", "contexts"],
)
def test_completion_request_it_cannot_answer_names_the_field(client, body, field, status):
    response = client.post("/products/_search", json=body)
    assert response.status_code == status
    assert field in json.dumps(response.get_json())


BY_PRICE = ["l1", "l2", "s4", "t2", "t1", "s1", "s3", "s2"]


@pytest.mark.parametrize("query", [{"match_all": {}}, {"bool": {"filter": [{"range": {"price": {"gte": 0}}}]}}])
def test_a_sort_led_by_score_orders_a_search_without_words_by_its_later_keys(client, query):
    """Every match of a search without words scores alike, so Elasticsearch orders them by the keys after _score
    (Search UI's sortList, a "relevance, then price" option); they were listed by sales."""
    answer = search(client, {"query": query, "sort": [{"_score": "desc"}, {"price": "asc"}], "size": 20})
    assert ids(answer) == BY_PRICE


def test_a_sort_led_by_score_keeps_each_hits_score_and_gives_it_first_among_the_sort_values(client):
    hits = search(client, {"sort": ["_score", {"price": "desc"}], "size": 2})["hits"]["hits"]
    assert [hit["sort"] for hit in hits] == [[hit["_score"], price] for hit, price in zip(hits, (899.0, 700.0))]


def test_a_sort_led_by_score_pages_a_search_without_words_without_overlap(client):
    body = {"sort": ["_score", {"price": "asc"}], "size": 3}
    pages = [ids(search(client, {**body, "from": start})) for start in (0, 3, 6)]
    assert sum(pages, []) == BY_PRICE


def test_a_sort_led_by_score_leaves_a_search_with_words_the_pipelines_ranking(client):
    words = {"query": {"match": {"title": "sofa"}}, "size": 10}
    assert ids(search(client, {**words, "sort": ["_score", {"price": "asc"}]})) == ids(search(client, words))


def test_search_after_on_a_sort_led_by_score_is_a_501_naming_it(client):
    body = {"sort": ["_score", {"price": "asc"}], "search_after": [0.0, 39.0]}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "search_after"
