"""Elasticsearch front ends on the embedded (tantivy) backend: facets, highlights, ranges, must_not, sorting,
query_string, index names and field aliases.

Each request body is shaped as a front-end library sends it; the comment above it names the repository and
file it was taken from (with this catalog's field names and values). Facet counts are checked against a
brute-force count over CATALOG, and every hit against the clause it must satisfy, with the dense leg on (its
candidates are held to the same clauses as the lexical leg's).
"""

from __future__ import annotations

import json

import pytest
from front_end_catalog import product

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app

CATALOG = [
    product("s1", "Corner sofa", "Acme", "Furniture > Sofas", 499.0, "grey", 4.1, 120, "a roomy grey corner sofa"),
    product("s2", "Leather sofa", "Acme", "Furniture > Sofas", 899.0, "brown", 4.7, 40, "a brown leather sofa"),
    product("s3", "Velvet sofa", "Bolt", "Furniture > Sofas", 650.0, "blue", 3.9, 8, "soft velvet sofa in blue"),
    product("s4", "Sofa bed", "Cosy", "Furniture > Sofas > Beds", 700.0, "grey", None, 3, "a sofa that folds out"),
    product("s5", "Small grey sofa", "Bolt", "Furniture > Sofas", 299.0, "grey", 4.4, 75, "two seat sofa"),
    product("s6", "Red sofa", "Dune", "Furniture > Sofas", 350.0, "red", 4.0, 12, "a bright red sofa"),
    product("t1", "Oak table", "Bolt", "Furniture > Tables", 249.5, "brown", 4.8, 60, "solid oak dining table"),
    product("t2", "Glass table", "Acme", "Furniture > Tables", 199.0, None, 3.5, 22, "a glass coffee table"),
    product("l1", "Desk lamp", "Acme", "Lighting", 39.0, "black", 4.2, 15, "a lamp for a sofa side table"),
    product("l2", "Floor lamp", "Dune", "Lighting", 89.0, "white", None, 5, "tall floor lamp"),
]
BY_ID = {p.id: p for p in CATALOG}


@pytest.fixture(scope="module")
def index_settings(tmp_path_factory, tiny_bert_dir) -> Settings:
    settings = Settings(
        index_dir=tmp_path_factory.mktemp("parity") / "idx",
        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 20},
        lexical={"candidates": 20},
    )
    build_index(CATALOG, settings, progress=False)
    return settings


@pytest.fixture(scope="module")
def client(index_settings):
    settings = index_settings.model_copy(
        update={
            "service": index_settings.service.model_copy(
                update={"field_aliases": {"color.keyword": "attributes.color", "rating_score": "rating"}}
            )
        }
    )
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def search(client, body, index="products"):
    response = client.post(f"/{index}/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(body) -> list[str]:
    return [hit["_id"] for hit in body["hits"]["hits"]]


def buckets(aggregation) -> dict:
    return {b["key"]: b["doc_count"] for b in aggregation["buckets"]}


def count_by(products, key) -> dict:
    out: dict = {}
    for p in products:
        for value in key(p):
            out[value] = out.get(value, 0) + 1
    return out


def mentions(p: Product, word: str) -> bool:
    return word in " ".join([p.title, p.description, p.brand, " ".join(p.category), p.attribute_text()]).lower()


# elastic/search-ui packages/search-ui-elasticsearch-connector/src/queryBuilders/__tests__/SearchQueryBuilder.test.ts
# ("should handle must, must_not, and should filters in aggregations" and "should build search query"): the
# facets under facet_bucket_all, a "none" filter as must_not, an "any" filter as bool.should, the title snippet.
SEARCH_UI_FACETS = {
    "_source": {"includes": ["title"]},
    "aggs": {
        "facet_bucket_all": {
            "aggs": {
                "brand.keyword": {"terms": {"field": "brand.keyword", "order": {"_count": "desc"}, "size": 20}},
                "color.keyword": {"terms": {"field": "color.keyword", "order": {"_count": "desc"}, "size": 20}},
                "price": {
                    "filters": {
                        "filters": {
                            "0-400": {"range": {"price": {"gte": 0, "lte": 400}}},
                            "400-1000": {"range": {"price": {"gte": 400, "lte": 1000}}},
                        }
                    }
                },
            },
            "filter": {"bool": {"must": [{"bool": {"must_not": [{"term": {"brand.keyword": "Cosy"}}]}}]}},
        }
    },
    "from": 0,
    "highlight": {"fields": {"title": {}}},
    "query": {
        "bool": {
            "filter": [{"bool": {"filter": [{"term": {"category.keyword": "Furniture"}}]}}],
            "must": [
                {
                    "bool": {
                        "minimum_should_match": 1,
                        "should": [
                            {"multi_match": {"fields": [], "operator": "and", "query": "sofa", "type": "best_fields"}},
                            {"multi_match": {"fields": [], "query": "sofa", "type": "cross_fields"}},
                            {"multi_match": {"fields": [], "query": "sofa", "type": "phrase"}},
                            {"multi_match": {"fields": [], "query": "sofa", "type": "phrase_prefix"}},
                        ],
                    }
                }
            ],
        }
    },
    "size": 10,
    "sort": "_score",
}


def sofa_matches(extra=lambda p: True) -> list[Product]:
    return [p for p in CATALOG if mentions(p, "sofa") and p.category[0] == "Furniture" and extra(p)]


def test_search_ui_facets_count_every_match_of_the_query(client):
    facets = search(client, SEARCH_UI_FACETS)["aggregations"]["facet_bucket_all"]
    matching = sofa_matches(lambda p: p.brand != "Cosy")
    assert facets["doc_count"] == len(matching)
    assert buckets(facets["brand.keyword"]) == count_by(matching, lambda p: [p.brand])
    assert buckets(facets["color.keyword"]) == count_by(matching, lambda p: p.attributes.get("color", ()))


def test_search_ui_range_facet_counts_each_named_range(client):
    facets = search(client, SEARCH_UI_FACETS)["aggregations"]["facet_bucket_all"]["price"]["buckets"]
    matching = sofa_matches(lambda p: p.brand != "Cosy")
    assert facets["0-400"]["doc_count"] == sum(1 for p in matching if p.price <= 400)
    assert facets["400-1000"]["doc_count"] == sum(1 for p in matching if 400 <= p.price <= 1000)


def test_search_ui_title_highlight_wraps_the_query_word_in_em(client):
    body = search(client, SEARCH_UI_FACETS)
    titled = {hit["_id"]: hit.get("highlight", {}).get("title") for hit in body["hits"]["hits"]}
    assert titled["s1"] == ["Corner <em>sofa</em>"]
    # A hit whose title lacks the word (the dense leg may bring one) has no title highlight.
    assert all(h is None or "<em>" in h[0] for h in titled.values())


def test_a_search_whose_words_match_nothing_counts_the_products_it_answers_in_its_facets(client):
    """A misspelt word matches no product, but the dense leg answers the nearest ones: the facets count them,
    as hits.total does, rather than leaving the shopper a page of results and nothing to narrow them by."""
    body = search(
        client,
        {
            "query": {"bool": {"must": {"match": {"title": "sofaa"}}, "filter": {"term": {"category": "Lighting"}}}},
            "aggs": {"brands": {"terms": {"field": "brand.keyword"}}},
        },
    )
    answered = [BY_ID[i] for i in ids(body)]
    assert {p.id for p in answered} == {"l1", "l2"}
    assert body["hits"]["total"]["value"] == len(answered)
    assert buckets(body["aggregations"]["brands"]) == count_by(answered, lambda p: [p.brand])


def test_a_search_whose_words_match_counts_only_their_matches_in_its_facets(client):
    """The dense leg's nearest products are a fixed number whatever the query: when the words match, the facets
    are their matches', as Elasticsearch counts them, not stretched over the nearest products."""
    body = search(
        client, {"query": {"match": {"title": "table"}}, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    )
    assert len(ids(body)) > 2
    tables = [p for p in CATALOG if "table" in p.title.lower()]
    assert buckets(body["aggregations"]["brands"]) == count_by(tables, lambda p: [p.brand])


def test_post_filter_narrows_the_hits_but_not_the_facet_counts(client):
    body = search(
        client,
        {
            "query": {"match": {"title": "sofa"}},
            "post_filter": {"term": {"brand.keyword": "Acme"}},
            "aggs": {"brands": {"terms": {"field": "brand.keyword"}}},
        },
    )
    assert {"s1", "s2"} <= set(ids(body)) and all(BY_ID[i].brand == "Acme" for i in ids(body))
    titled = [p for p in CATALOG if "sofa" in p.title.lower()]
    assert buckets(body["aggregations"]["brands"]) == count_by(titled, lambda p: [p.brand])


# searchkit/searchkit packages/searchkit/src/___tests___/functional/__snapshots__/facets.test.ts.snap
# ("facets simple string facet: ES Request 1"): terms facets, a refinement as bool.should of terms, and the
# highlight with tags and number_of_fragments 0.
SEARCHKIT_MSEARCH = [
    {"index": "products"},
    {
        "aggs": {"brand": {"terms": {"field": "brand", "size": 10}}, "color": {"terms": {"field": "color.keyword"}}},
        "query": {
            "bool": {
                "filter": [{"bool": {"should": [{"term": {"attributes.color.keyword": "grey"}}]}}],
                "must": {
                    "bool": {
                        "should": [
                            {
                                "bool": {
                                    "should": [
                                        {
                                            "multi_match": {
                                                "query": "sofa",
                                                "fields": ["title"],
                                                "fuzziness": "AUTO:4,8",
                                            }
                                        },
                                        {"multi_match": {"query": "sofa", "fields": ["title"], "type": "bool_prefix"}},
                                    ]
                                }
                            },
                            {"multi_match": {"query": "sofa", "type": "phrase", "fields": ["title"]}},
                        ]
                    }
                },
            }
        },
        "size": 20,
        "from": 0,
        "_source": {"includes": ["title"]},
        "highlight": {
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "fields": {"title": {"number_of_fragments": 0}},
        },
    },
]


def test_searchkit_multi_search_gets_refinement_hits_facets_and_highlights(client):
    ndjson = "".join(json.dumps(line) + "\n" for line in SEARCHKIT_MSEARCH)
    (answer,) = client.post("/_msearch", data=ndjson, content_type="application/x-ndjson").get_json()["responses"]
    assert answer["status"] == 200
    grey = [p for p in CATALOG if "grey" in p.attributes.get("color", ())]
    assert set(ids(answer)) <= {p.id for p in grey}
    assert buckets(answer["aggregations"]["brand"]) == count_by(
        [p for p in grey if "sofa" in p.title.lower()], lambda p: [p.brand]
    )
    small = next(hit for hit in answer["hits"]["hits"] if hit["_id"] == "s5")
    assert small["highlight"] == {"title": ["Small grey <mark>sofa</mark>"]}


def test_range_from_to_with_include_upper_false_filters_price(client):
    body = search(
        client,
        {"query": {"bool": {"filter": {"range": {"price": {"from": 299, "to": 499, "include_upper": False}}}}}},
    )
    assert set(ids(body)) == {p.id for p in CATALOG if 299 <= p.price < 499}


def test_range_on_rating_filters_by_rating(client):
    body = search(client, {"query": {"bool": {"filter": {"range": {"rating": {"gt": 4.4}}}}}, "size": 20})
    assert set(ids(body)) == {p.id for p in CATALOG if p.rating is not None and p.rating > 4.4}


def test_must_not_keeps_out_every_excluded_product_from_both_legs(client):
    body = search(
        client,
        {"query": {"bool": {"must": {"match": {"title": "sofa"}}, "must_not": {"term": {"brand.keyword": "Acme"}}}}},
    )
    assert body["hits"]["hits"] and all(BY_ID[i].brand != "Acme" for i in ids(body))


def test_sort_by_price_ascending_orders_every_match(client):
    body = search(client, {"query": {"match": {"title": "sofa"}}, "sort": [{"price": "asc"}], "size": 3})
    sofas = sorted((p for p in CATALOG if "sofa" in p.title.lower()), key=lambda p: p.price)
    assert ids(body) == [p.id for p in sofas[:3]]
    assert [hit["sort"] for hit in body["hits"]["hits"]] == [[p.price] for p in sofas[:3]]
    assert body["hits"]["total"] == {"value": len(sofas), "relation": "eq"}


def test_sort_by_rating_descending_puts_products_without_a_rating_last(client):
    body = search(client, {"sort": [{"rating": {"order": "desc"}}, "_score"], "size": 20})
    expected = sorted(CATALOG, key=lambda p: (p.rating is None, -(p.rating or 0), p.id))
    assert ids(body) == [p.id for p in expected]


def test_sort_list_of_two_fields_orders_the_ties_of_the_first_by_the_second(client):
    """Search UI's sortList and Searchkit's sorting arrays send several keys: every product lacking a rating
    ties on the first, and the second (price, highest first) orders them; each hit's sort values are both."""
    body = search(client, {"sort": [{"rating": "desc"}, {"price": "desc"}], "size": 20})
    expected = sorted(CATALOG, key=lambda p: (p.rating is None, -(p.rating or 0), -p.price))
    assert ids(body) == [p.id for p in expected]
    assert [hit["sort"] for hit in body["hits"]["hits"]] == [[p.rating, p.price] for p in expected]


def test_sort_list_second_field_decides_which_ties_make_the_page(client):
    first = ids(search(client, {"sort": [{"rating": "desc"}, {"price": "desc"}], "size": len(CATALOG) - 1}))
    assert first[-1] == "s4" and "l2" not in first  # both lack a rating; the dearer one makes the page


def test_sort_by_price_second_page_continues_the_first(client):
    first = ids(search(client, {"sort": [{"price": "desc"}], "size": 4}))
    second = ids(search(client, {"sort": [{"price": "desc"}], "size": 4, "from": 4}))
    assert first + second == [p.id for p in sorted(CATALOG, key=lambda p: -p.price)][:8]


def test_query_string_excludes_the_prohibited_word(client):
    body = search(client, {"query": {"query_string": {"query": "sofa -grey"}}, "size": 20})
    assert set(ids(body)) == {p.id for p in CATALOG if mentions(p, "sofa") and not mentions(p, "grey")}


def test_query_string_field_group_restricts_to_those_brands(client):
    body = search(client, {"query": {"query_string": {"query": "brand.keyword:(Bolt OR Dune)"}}, "size": 20})
    assert set(ids(body)) == {p.id for p in CATALOG if p.brand in ("Bolt", "Dune")}


def test_query_string_phrase_matches_the_words_in_order(client):
    body = search(client, {"query": {"query_string": {"query": '"leather sofa"'}}})
    assert ids(body) == ["s2"]


def test_query_string_default_operator_and_requires_every_word(client):
    body = search(client, {"query": {"query_string": {"query": "grey sofa", "default_operator": "AND"}}, "size": 20})
    assert set(ids(body)) == {p.id for p in CATALOG if mentions(p, "grey") and mentions(p, "sofa")}


def test_query_string_in_a_filter_restricts_the_hits(client):
    body = search(
        client,
        {"query": {"bool": {"filter": [{"query_string": {"query": "price:[300 TO 700] AND NOT brand.keyword:Bolt"}}]}}},
    )
    assert set(ids(body)) == {p.id for p in CATALOG if 300 <= p.price <= 700 and p.brand != "Bolt"}


def test_query_string_syntax_error_is_a_400_naming_the_query(client):
    response = client.post("/products/_search", json={"query": {"query_string": {"query": "(sofa"}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "query.query_string.query"


def test_simple_query_string_flags_all_are_answered(client):
    clause = {"simple_query_string": {"query": "sofa", "fields": ["title"], "flags": "ALL"}}
    response = client.post("/products/_search", json={"query": {"bool": {"filter": [clause]}}})
    assert response.status_code == 200


def test_range_aggregation_keys_are_elasticsearchs_from_to(client):
    body = search(
        client,
        {"size": 0, "aggs": {"prices": {"range": {"field": "price", "ranges": [{"to": 300}, {"from": 300}]}}}},
    )
    assert buckets(body["aggregations"]["prices"]) == {
        "*-300.0": sum(1 for p in CATALOG if p.price < 300),
        "300.0-*": sum(1 for p in CATALOG if p.price >= 300),
    }


def test_stats_aggregation_summarises_the_matches(client):
    body = search(client, {"query": {"match": {"title": "table"}}, "aggs": {"p": {"stats": {"field": "price"}}}})
    prices = [p.price for p in CATALOG if "table" in p.title.lower()]
    stats = body["aggregations"]["p"]
    assert (stats["count"], stats["min"], stats["max"]) == (len(prices), min(prices), max(prices))


def test_unsupported_aggregation_type_is_a_501_naming_it(client):
    response = client.post("/products/_search", json={"aggs": {"near": {"geo_distance": {"field": "x"}}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.near.geo_distance"


def test_sort_by_a_text_field_is_a_501_naming_the_sort(client):
    response = client.post("/products/_search", json={"sort": [{"title": "asc"}]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "sort[0]"


@pytest.mark.parametrize("field", ["created_at", "brand.keyword"])
def test_a_range_of_text_bounds_on_a_field_that_is_not_a_number_is_a_501_naming_it(client, field):
    """Search UI's date range facets send ISO dates: valid Elasticsearch on a date field, which the product has
    not; and a range on a keyword is valid too. Neither is a malformed body (it was a 400, "expected a number")."""
    body = {"query": {"bool": {"filter": [{"range": {field: {"gte": "2025-01-01T00:00:00Z"}}}]}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == f"query.bool.filter[0].range.{field}"


def test_field_alias_maps_a_front_end_field_onto_the_product(client):
    body = search(client, {"query": {"bool": {"filter": {"term": {"color.keyword": "red"}}}}})
    assert ids(body) == ["s6"]


def test_field_alias_applies_to_sort_fields(client):
    body = search(client, {"sort": [{"rating_score": "desc"}], "size": 1})
    assert ids(body) == ["t1"]


def test_unknown_index_gets_elasticsearchs_index_not_found(client):
    response = client.post("/no_such_index/_search", json={})
    assert response.status_code == 404
    error = response.get_json()["error"]
    assert error["type"] == "index_not_found_exception" and error["index"] == "no_such_index"


def test_multi_search_answers_an_unknown_index_with_a_404_item(client):
    ndjson = '{"index": "products"}\n{}\n{"index": "nope"}\n{}\n'
    first, second = client.post("/_msearch", data=ndjson).get_json()["responses"]
    assert first["status"] == 200 and second["status"] == 404


def test_a_list_naming_an_index_not_served_is_its_404(client):
    response = client.post("/products,nope/_search", json={})
    assert response.status_code == 404 and response.get_json()["error"]["index"] == "nope"


def test_ignore_unavailable_searches_the_served_indices_of_a_list(client):
    body = {"query": {"match": {"title": "sofa"}}, "size": 20}
    response = client.post("/products,nope/_search?ignore_unavailable=true", json=body)
    assert response.status_code == 200
    assert sorted(ids(response.get_json())) == sorted(ids(search(client, body)))


def test_a_wildcard_that_matches_no_served_index_answers_no_hits(client):
    body = {"query": {"match": {"title": "sofa"}}, "suggest": {"s": {"prefix": "so", "completion": {"field": "title"}}}}
    answer = search(client, body, index="nope*")
    assert answer["hits"]["hits"] == [] and answer["hits"]["total"]["value"] == 0
    assert "suggest" not in answer


def test_allow_no_indices_false_makes_a_wildcard_matching_nothing_its_404(client):
    response = client.post("/nope*/_search?allow_no_indices=false", json={})
    assert response.status_code == 404 and response.get_json()["error"]["index"] == "nope*"


def test_ignore_unavailable_with_no_served_index_left_answers_no_hits(client):
    response = client.post("/nope/_search?ignore_unavailable=true", json={})
    assert response.status_code == 200 and response.get_json()["hits"]["hits"] == []


def test_multi_search_header_ignore_unavailable_applies_to_its_own_search(client):
    ndjson = '{"index": ["products", "nope"], "ignore_unavailable": true}\n{}\n{"index": "products,nope"}\n{}\n'
    first, second = client.post("/_msearch", data=ndjson).get_json()["responses"]
    assert first["status"] == 200 and first["hits"]["hits"]
    assert second["status"] == 404


def test_multi_search_ignore_unavailable_parameter_applies_to_every_search(client):
    ndjson = '{"index": "products,nope"}\n{}\n'
    (only,) = client.post("/_msearch?ignore_unavailable=true", data=ndjson).get_json()["responses"]
    assert only["status"] == 200 and only["hits"]["hits"]


def test_function_score_matches_what_its_query_matches_and_lists_its_functions_as_ignored(client):
    """Spryker's cart boost: function_score's weight functions change scores only, which the pipeline replaces."""
    boost = {"functions": [{"weight": 20, "filter": {"match": {"description": "grey"}}}], "boost_mode": "multiply"}
    body = search(
        client,
        {"query": {"function_score": {"query": {"match": {"title": "sofa"}}, **boost}}, "size": 50},
    )
    plain = search(client, {"query": {"match": {"title": "sofa"}}, "size": 50})
    assert sorted(ids(body)) == sorted(ids(plain)) and body["hits"]["total"] == plain["hits"]["total"]
    assert "query.function_score.functions" in body["search_rerank"]["ignored"]


def test_boosting_matches_what_its_positive_query_matches_and_lists_its_negative_as_ignored(client):
    """A shop's "sold out last": the negative query lowers scores only, which the pipeline replaces."""
    demote = {"negative": {"term": {"color.keyword": "grey"}}, "negative_boost": 0.2}
    body = search(client, {"query": {"boosting": {"positive": {"match": {"title": "sofa"}}, **demote}}, "size": 50})
    plain = search(client, {"query": {"match": {"title": "sofa"}}, "size": 50})
    assert sorted(ids(body)) == sorted(ids(plain)) and body["hits"]["total"] == plain["hits"]["total"]
    assert body["search_rerank"]["ignored"] == ["query.boosting.negative"]


def test_boosting_highlights_the_words_of_its_positive_query_only(client):
    boosting = {"positive": {"match": {"title": "sofa"}}, "negative": {"match": {"description": "grey"}}}
    body = {"query": {"boosting": {**boosting, "negative_boost": 0.5}}, "highlight": {"fields": {"description": {}}}}
    marked = json.dumps([hit.get("highlight", {}) for hit in search(client, {**body, "size": 50})["hits"]["hits"]])
    assert "<em>grey</em>" not in marked


@pytest.mark.parametrize(
    "boosting, field",
    [
        ({"negative": {"match_all": {}}, "negative_boost": 0.5}, "query.boosting.positive"),
        ({"positive": {"match_all": {}}, "negative_boost": 0.5}, "query.boosting.negative"),
        ({"positive": {"match_all": {}}, "negative": {"match_all": {}}}, "query.boosting.negative_boost"),
        ({"positive": {}, "negative": {"match_all": {}}, "negative_boost": 0.5}, "query.boosting.positive"),
        ({"positive": {"match_all": {}}, "negative": {"range": {"price": {"gte": "x"}}}, "negative_boost": 0.5}, "query.boosting.negative.range.price.gte"),
        ({"positive": {"match_all": {}}, "negative": {"match_all": {}}, "negative_boost": -1}, "query.boosting.negative_boost"),
        ({"positive": {"match_all": {}}, "negative": {"match_all": {}}, "negative_boost": "x"}, "query.boosting.negative_boost"),
        ({"positive": {"match_all": {}}, "negative": {"match_all": {}}, "negative_boost": 1, "nagative": {}}, "query.boosting.nagative"),
    ],
    ids=["no-positive", "no-negative", "no-negative-boost", "empty-positive", "malformed-negative", "below-zero", "not-a-number", "misspelt-key"],
)  # fmt: skip
def test_a_boosting_query_elasticsearch_refuses_is_a_400_naming_the_part(client, boosting, field):
    response = client.post("/products/_search", json={"query": {"boosting": boosting}})
    assert response.status_code == 400, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_function_score_min_score_is_a_501_naming_it(client):
    response = client.post("/products/_search", json={"query": {"function_score": {"weight": 2, "min_score": 5}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "query.function_score.min_score"


@pytest.mark.parametrize(
    "function_score, field",
    [
        ({"functoins": []}, "query.function_score.functoins"),
        ({"score_mode": "total"}, "query.function_score.score_mode"),
        ({"boost_mode": 3}, "query.function_score.boost_mode"),
        ({"weight": "heavy"}, "query.function_score.weight"),
        ({"functions": {"weight": 2}}, "query.function_score.functions"),
        ({"functions": [{"weight": 2, "filtre": {}}]}, "query.function_score.functions[0].filtre"),
        ({"functions": [{"weight": "2x"}]}, "query.function_score.functions[0].weight"),
        ({"functions": ["weight"]}, "query.function_score.functions[0]"),
    ],
)
def test_function_score_option_elasticsearch_refuses_is_a_400_naming_it(client, function_score, field):
    query = {"function_score": {"query": {"match": {"title": "sofa"}}, **function_score}}
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_function_score_modes_are_read_in_any_case(client):
    query = {"function_score": {"query": {"match_all": {}}, "score_mode": "SUM", "boost_mode": "Replace"}}
    assert search(client, {"query": query})["hits"]["hits"]


def test_term_filter_on_the_category_text_field_keeps_the_hits_the_facets_count(client):
    """``category`` without ``.keyword`` is an analysed text field, so a term on it matches a word of the path;
    the dense leg's prefilter read it as a category path ("sofas" at the top), which left no hit at all."""
    body = search(
        client,
        {
            "query": {"bool": {"must": {"match": {"title": "sofa"}}, "filter": {"term": {"category": "sofas"}}}},
            "aggs": {"b": {"terms": {"field": "brand.keyword"}}},
            "size": 20,
        },
    )
    in_sofas = [p for p in CATALOG if "Sofas" in p.category]
    assert set(ids(body)) == {p.id for p in in_sofas}
    assert buckets(body["aggregations"]["b"]) == count_by(in_sofas, lambda p: [p.brand])


def price_ranges(client, **options) -> dict:
    """The answer to a range aggregation on price with ``options`` (ranges, keyed...), over the whole catalog."""
    return search(client, {"size": 0, "aggs": {"p": {"range": {"field": "price", **options}}}})["aggregations"]["p"]


def test_range_aggregation_answers_only_the_requested_ranges(client):
    """tantivy adds buckets for the gaps around and between the ranges (``*-0``, ``500-*``); Elasticsearch
    answers the ranges asked for, each with its from, to and a ``from-to`` key of Java doubles."""
    answer = price_ranges(client, ranges=[{"from": 0, "to": 100}, {"from": 100, "to": 500}])
    assert answer["buckets"] == [
        {"key": "0.0-100.0", "from": 0.0, "to": 100.0, "doc_count": sum(1 for p in CATALOG if p.price < 100)},
        {
            "key": "100.0-500.0",
            "from": 100.0,
            "to": 500.0,
            "doc_count": sum(1 for p in CATALOG if 100 <= p.price < 500),
        },
    ]


def test_range_aggregation_custom_key_names_its_own_range(client):
    """A ``key`` belongs to the range it is given with, not to whichever bucket tantivy lists at that position."""
    answer = price_ranges(client, ranges=[{"key": "cheap", "from": 0, "to": 100}, {"key": "dear", "from": 600}])
    assert buckets(answer) == {
        "cheap": sum(1 for p in CATALOG if p.price < 100),
        "dear": sum(1 for p in CATALOG if p.price >= 600),
    }


def test_keyed_range_aggregation_answers_an_object_in_request_order(client):
    """``keyed: true`` makes the buckets an object keyed by each range's key, as in Elasticsearch (it was a 500)."""
    answer = price_ranges(client, keyed=True, ranges=[{"to": 300}, {"from": 300}])
    assert list(answer["buckets"]) == ["*-300.0", "300.0-*"]
    assert answer["buckets"]["300.0-*"] == {"from": 300.0, "doc_count": sum(1 for p in CATALOG if p.price >= 300)}


def test_terms_aggregation_on_a_price_keeps_the_lowest_of_equal_counts(client):
    """Searchkit's numeric facet (``price$_entries``): every price is one product's, so Elasticsearch keeps the
    lowest, in order, whole and fractional alike (tantivy put 249.5 after every whole price)."""
    aggs = {"price$_entries": {"terms": {"field": "price", "size": 4}}}
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]["price$_entries"]
    assert [b["key"] for b in answer["buckets"]] == sorted(p.price for p in CATALOG)[:4]
    assert answer["sum_other_doc_count"] == len(CATALOG) - 4


def test_terms_aggregation_on_a_price_answers_decimal_keys(client):
    """Elasticsearch answers a double field's keys as doubles: 199.0, where a JSON reader in Python sees 199 apart."""
    aggs = {"prices": {"terms": {"field": "price"}}}
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]["prices"]
    assert {type(b["key"]) for b in answer["buckets"]} == {float}


def test_terms_aggregation_on_a_price_ordered_by_key_is_in_numeric_order(client):
    """Search UI's value facet with ``sort: "value"`` asks for ``order: {_key: asc}``."""
    aggs = {"prices": {"terms": {"field": "price", "size": 20, "order": {"_key": "desc"}}}}
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]["prices"]
    assert [b["key"] for b in answer["buckets"]] == sorted((p.price for p in CATALOG), reverse=True)


def test_range_aggregation_under_a_terms_bucket_answers_only_the_requested_ranges(client):
    """A range sub-aggregation is shaped like a top-level one, in each bucket of its parent."""
    body = search(
        client,
        {
            "size": 0,
            "aggs": {
                "brands": {
                    "terms": {"field": "brand.keyword"},
                    "aggs": {"p": {"range": {"field": "price", "ranges": [{"from": 100, "to": 500}]}}},
                }
            },
        },
    )
    acme = next(b for b in body["aggregations"]["brands"]["buckets"] if b["key"] == "Acme")
    in_range = sum(1 for p in CATALOG if p.brand == "Acme" and 100 <= p.price < 500)
    assert acme["p"]["buckets"] == [{"key": "100.0-500.0", "from": 100.0, "to": 500.0, "doc_count": in_range}]


def test_range_aggregation_key_of_a_large_bound_is_javas_double(client):
    """Elasticsearch writes a bound of ten million or more in Java's scientific notation (``1.0E7``)."""
    answer = price_ranges(client, ranges=[{"from": 10_000_000}])
    assert [b["key"] for b in answer["buckets"]] == ["1.0E7-*"]


def test_range_aggregation_without_ranges_is_a_400_naming_them(client):
    """tantivy panics on an empty list of ranges (a 500); Elasticsearch refuses it as a bad request."""
    response = client.post("/products/_search", json={"aggs": {"p": {"range": {"field": "price", "ranges": []}}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "aggs.p.range.ranges"


@pytest.mark.parametrize("text", ['3" sofa', "sofa (grey", "sofa [grey", "c++"])
def test_simple_query_string_answers_what_shoppers_type_without_a_syntax_error(client, text):
    """Elasticsearch's simple_query_string ignores what is not valid syntax rather than answering a 400."""
    response = client.post("/products/_search", json={"query": {"simple_query_string": {"query": text}}})
    assert response.status_code == 200, response.get_json()


def test_simple_query_string_unpaired_parenthesis_keeps_the_words_around_it(client):
    """The text of an unpaired parenthesis is searched: "sofa (grey" with AND finds the grey sofas."""
    body = search(
        client,
        {"query": {"simple_query_string": {"query": "sofa (grey", "default_operator": "and"}}, "size": 20},
    )
    assert set(ids(body)) == {p.id for p in CATALOG if mentions(p, "sofa") and mentions(p, "grey")}


def test_simple_query_string_minus_with_default_or_also_matches_what_lacks_the_word(client):
    """Elasticsearch's documented reading of "sofa -grey" under the default OR: sofa OR NOT grey."""
    query = {"simple_query_string": {"query": "sofa -grey"}}
    wanted = [p for p in CATALOG if mentions(p, "sofa") or not mentions(p, "grey")]
    assert set(ids(search(client, {"query": {"bool": {"filter": query}}, "size": 20}))) == {p.id for p in wanted}


def test_simple_query_string_minus_with_default_and_excludes_the_word(client):
    query = {"simple_query_string": {"query": "sofa -grey", "default_operator": "and"}}
    wanted = [p for p in CATALOG if mentions(p, "sofa") and not mentions(p, "grey")]
    assert set(ids(search(client, {"query": {"bool": {"filter": query}}, "size": 20}))) == {p.id for p in wanted}


@pytest.mark.parametrize("kind", ["query_string", "simple_query_string"])
def test_a_word_without_letters_or_digits_is_left_out_under_default_and(client, kind):
    """ "grey & sofa": Elasticsearch drops a word its analyzer leaves nothing of, rather than matching nothing."""
    query = {kind: {"query": "grey & sofa", "default_operator": "AND"}}
    wanted = [p for p in CATALOG if mentions(p, "grey") and mentions(p, "sofa")]
    assert set(ids(search(client, {"query": {"bool": {"filter": query}}, "size": 20}))) == {p.id for p in wanted}


def sorted_ids(client, query) -> list[str]:
    """The ids a query matches, on a page sorted by price: what Elasticsearch's match set decides."""
    return ids(search(client, {"query": query, "sort": [{"price": "asc"}], "size": 20}))


def by_price(products) -> list[str]:
    return [p.id for p in sorted(products, key=lambda p: p.price)]


SOFAS = [p for p in CATALOG if "sofa" in p.title.lower()]
TABLES = [p for p in CATALOG if "table" in p.title.lower()]


def test_searchkit_fuzzy_multi_match_finds_a_word_one_edit_away_on_a_sorted_page(client):
    """Searchkit's search box query: "sofw" is one edit from "sofa" (AUTO:4,8 allows one for four letters)."""
    query = {"bool": {"must": {"multi_match": {"query": "sofw", "fields": ["title"], "fuzziness": "AUTO:4,8"}}}}
    assert sorted_ids(client, query) == by_price(SOFAS)


def test_searchkit_fuzzy_multi_match_finds_a_word_one_edit_away_on_the_relevance_page(client):
    """The same search box query ranked by the pipeline (no sort): the lexical leg finds the words one edit
    away too, so a typo is not left to the dense leg alone (nor to nothing, where the dense leg is off). (The
    leg searches its own fields as well: the desk lamp "for a sofa side table" is found by its description, as
    it is for "sofa" spelt right.)"""
    query = {"multi_match": {"query": "sofw", "fields": ["title"], "fuzziness": "AUTO:4,8"}}
    body = search(client, {"query": query, "size": 20, "explain": True})
    found = {pid for pid, e in body["search_rerank"]["explanations"].items() if "lexical" in e["legs"]}
    assert found >= {p.id for p in SOFAS}


def test_searchkit_query_rule_that_pins_nothing_searches_its_organic_query(client):
    """Searchkit wraps the query in a pinned query for every query rule that fires, a boost or a filter that
    pins no document included: its ids are empty, and the answer is the organic query's."""
    boost = {"filter": {"query_string": {"query": "brand.keyword:Acme"}}, "weight": 10}
    organic = {"bool": {"filter": [{"term": {"brand.keyword": "Bolt"}}], "must": {"match": {"title": "sofa"}}}}
    rule = {"function_score": {"query": {"pinned": {"ids": [], "organic": organic}}, "functions": [boost]}}
    body = search(client, {"query": {"bool": {"filter": [], "must": rule}}, "sort": [{"price": "asc"}]})
    assert ids(body) == by_price([p for p in SOFAS if p.brand == "Bolt"])


def test_searchkit_fuzzy_multi_match_facets_count_the_words_one_edit_away(client):
    body = search(
        client,
        {
            "query": {"multi_match": {"query": "sofw", "fields": ["title"], "fuzziness": "AUTO:4,8"}},
            "aggs": {"brand": {"terms": {"field": "brand.keyword"}}},
        },
    )
    assert buckets(body["aggregations"]["brand"]) == count_by(SOFAS, lambda p: [p.brand])


def test_fuzziness_auto_keeps_words_shorter_than_its_low_bound_exact(client):
    """AUTO:5,8: "sofw" (four letters) must match exactly, "tabel" (five) within one edit of "tabl"."""
    query = {"match": {"title": {"query": "sofw tabel", "fuzziness": "AUTO:5,8"}}}
    assert sorted_ids(client, query) == by_price(TABLES)


def test_fuzziness_auto_allows_two_edits_from_its_high_bound(client):
    query = {"match": {"title": {"query": "sofww", "fuzziness": "AUTO:3,5"}}}
    assert sorted_ids(client, query) == by_price(SOFAS)


def test_fuzziness_two_allows_two_edits(client):
    assert sorted_ids(client, {"match": {"title": {"query": "sofww", "fuzziness": 2}}}) == by_price(SOFAS)


def test_fuzzy_transpositions_false_counts_a_swap_as_two_edits(client):
    query = {"match": {"title": {"query": "sfoa tabel", "fuzziness": 1, "fuzzy_transpositions": False}}}
    assert sorted_ids(client, query) == by_price(TABLES)


def test_fuzziness_does_not_apply_to_a_keyword_field(client):
    """ "Acmf" is one edit from "Acme", but brand.keyword matches exact values; the title still matches fuzzily."""
    query = {"multi_match": {"query": "Acmf sofw", "fields": ["title", "brand.keyword"], "fuzziness": 1}}
    assert sorted_ids(client, query) == by_price(SOFAS)


def test_fuzzy_bool_prefix_finds_a_misspelt_word_before_the_one_being_typed(client):
    query = {
        "multi_match": {
            "query": "sofw be",
            "fields": ["title"],
            "type": "bool_prefix",
            "fuzziness": 1,
            "operator": "and",
        }
    }
    assert sorted_ids(client, {"bool": {"filter": query}}) == ["s4"]


def test_fuzziness_that_is_not_an_edit_distance_is_a_400_naming_it(client):
    response = client.post("/products/_search", json={"query": {"match": {"title": {"query": "x", "fuzziness": 3}}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "query.match.title.fuzziness"


def test_match_phrase_slop_lets_its_words_be_apart(client):
    """ "a brown leather sofa": "brown sofa" is one word away from a phrase."""
    query = {"match_phrase": {"description": {"query": "brown sofa", "slop": 1}}}
    assert sorted_ids(client, query) == ["s2"]


def test_query_string_bare_tilde_is_the_queries_fuzziness(client):
    """A bare ``~`` takes the query's ``fuzziness`` (AUTO by default): 2 lets "sofww" find sofas."""
    query = {"query_string": {"query": "title:sofww~", "fuzziness": 2}}
    assert sorted_ids(client, query) == by_price(SOFAS)


def test_query_string_tilde_number_is_the_words_edit_distance(client):
    assert sorted_ids(client, {"query_string": {"query": "title:sofww~2"}}) == by_price(SOFAS)


def test_query_string_phrase_tilde_is_its_slop(client):
    body = search(client, {"query": {"query_string": {"query": 'description:"brown sofa"~1'}}})
    assert ids(body) == ["s2"]


@pytest.mark.parametrize("kind", ["query_string", "simple_query_string"])
def test_a_fuzzy_query_string_word_is_compared_as_typed_not_stemmed(client, kind):
    """Lucene's parsers only lower-case a word with ``~``: "Tables" is two edits from the indexed stem "tabl"."""
    assert sorted_ids(client, {kind: {"query": "Tables~1", "fields": ["title"]}}) == []
    assert sorted_ids(client, {kind: {"query": "Tables~2", "fields": ["title"]}}) == by_price(TABLES)


def test_simple_query_string_bare_tilde_allows_two_edits(client):
    assert sorted_ids(client, {"simple_query_string": {"query": "sofww~", "fields": ["title"]}}) == by_price(SOFAS)


# --- How many of the words must match: minimum_should_match, operator and across fields -----------------------


def test_match_minimum_should_match_needs_that_many_of_the_words(client):
    """ "a roomy grey corner sofa" has all three words; every other sofa's description at most one."""
    query = {"match": {"description": {"query": "grey corner sofa", "minimum_should_match": "2"}}}
    assert sorted_ids(client, query) == ["s1"]


def test_match_minimum_should_match_percentage_rounds_down(client):
    """75% of three words is two (Elasticsearch truncates)."""
    query = {"match": {"description": {"query": "grey corner sofa", "minimum_should_match": "75%"}}}
    assert sorted_ids(client, query) == ["s1"]


def test_match_minimum_should_match_above_the_words_matches_nothing(client):
    query = {"match": {"description": {"query": "grey sofa", "minimum_should_match": 3}}}
    assert sorted_ids(client, query) == []


def test_match_minimum_should_match_leaves_a_single_word_alone(client):
    """One word is a term query in Elasticsearch, which minimum_should_match does not apply to."""
    query = {"match": {"title": {"query": "sofa", "minimum_should_match": 2}}}
    assert sorted_ids(client, query) == by_price(SOFAS)


def test_multi_match_minimum_should_match_applies_within_each_field(client):
    """best_fields: "grey" and "sofa" both in the title (s5) or both in the description (s1)."""
    query = {"multi_match": {"query": "grey sofa", "fields": ["title", "description"], "minimum_should_match": "100%"}}
    assert sorted_ids(client, query) == by_price([BY_ID["s1"], BY_ID["s5"]])


def test_bool_prefix_minimum_should_match_counts_the_word_being_typed(client):
    query = {"match_bool_prefix": {"title": {"query": "grey so", "minimum_should_match": 2}}}
    assert sorted_ids(client, query) == ["s5"]


def test_cross_fields_operator_and_finds_each_word_in_any_of_the_fields(client):
    """cross_fields is term-centric: "acme" in the brand and "sofa" in the title make a match."""
    query = {
        "multi_match": {"query": "acme sofa", "fields": ["title", "brand"], "type": "cross_fields", "operator": "and"}
    }
    assert sorted_ids(client, query) == by_price([BY_ID["s1"], BY_ID["s2"]])


def test_combined_fields_operator_and_finds_each_word_in_any_of_the_fields(client):
    query = {"combined_fields": {"query": "bolt table", "fields": ["title", "brand"], "operator": "and"}}
    assert sorted_ids(client, query) == ["t1"]


def test_cross_fields_minimum_should_match_counts_words_across_the_fields(client):
    query = {
        "multi_match": {
            "query": "acme leather lamp",
            "fields": ["title", "brand"],
            "type": "cross_fields",
            "minimum_should_match": 2,
        }
    }
    assert sorted_ids(client, query) == by_price([BY_ID["s2"], BY_ID["l1"]])


@pytest.mark.parametrize(
    "query",
    [
        {"match": {"title": {"query": "!!", "zero_terms_query": "all"}}},
        {"multi_match": {"query": "", "fields": ["title", "description"], "zero_terms_query": "all"}},
    ],
)
def test_zero_terms_query_all_matches_every_product_when_no_word_is_left(client, query):
    assert sorted_ids(client, {"bool": {"filter": [query]}}) == by_price(CATALOG)


def test_zero_terms_query_none_matches_nothing_when_no_word_is_left(client):
    assert sorted_ids(client, {"bool": {"filter": [{"match": {"title": {"query": "!!"}}}]}}) == []


# --- bool: what an everything-clause and minimum_should_match leave ------------------------------------------

DUNE = {"term": {"brand.keyword": "Dune"}}
BOLT = {"term": {"brand.keyword": "Bolt"}}


@pytest.mark.parametrize("everything", [{"match_all": {}}, {"bool": {}}, {"function_score": {"functions": []}}])
def test_must_not_of_a_clause_that_matches_everything_matches_nothing(client, everything):
    assert sorted_ids(client, {"bool": {"must_not": [everything]}}) == []


def test_should_only_bool_with_minimum_should_match_zero_still_needs_one_clause(client):
    """Without must or filter, Lucene's bool needs one should clause to match whatever minimum_should_match says."""
    query = {"bool": {"should": [DUNE], "minimum_should_match": 0}}
    assert sorted_ids(client, query) == by_price([p for p in CATALOG if p.brand == "Dune"])


def test_minimum_should_match_above_the_should_clauses_matches_nothing(client):
    assert sorted_ids(client, {"bool": {"should": [DUNE], "minimum_should_match": 2}}) == []


def test_minimum_should_match_without_should_clauses_matches_nothing(client):
    query = {"bool": {"filter": [DUNE], "minimum_should_match": 1}}
    assert sorted_ids(client, query) == []


def test_minimum_should_match_counts_a_should_clause_that_matches_everything(client):
    """match_all is one of the two that must match: either brand makes the other."""
    query = {"bool": {"should": [{"match_all": {}}, DUNE, BOLT], "minimum_should_match": 2}}
    assert sorted_ids(client, query) == by_price([p for p in CATALOG if p.brand in ("Dune", "Bolt")])


# --- Chinese and Japanese: words without spaces -------------------------------------------------------------

CJK_CATALOG = [
    product("zh", "东京塔模型", "Acme", "Toys", 30.0, description="一个塔的模型"),
    product("ja", "東京タワーのプラモデル", "Bolt", "Toys", 25.0, description="タワーの模型"),
    product("zh2", "型号模具", "Dune", "Toys", 12.0, description="模具"),
    product("en", "Tokyo tower model kit", "Cosy", "Toys", 20.0, description="a model of a tower"),
]


@pytest.fixture(scope="module")
def cjk_client(tmp_path_factory):
    settings = Settings(index_dir=tmp_path_factory.mktemp("cjk") / "idx", dense={"enabled": False})
    build_index(CJK_CATALOG, settings, progress=False)
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def test_search_finds_a_chinese_title_by_a_word_of_it(cjk_client):
    """ "塔模型" (tower model): "东京塔模型" holds all three words, "型号模具" two, the Japanese title none."""
    response = cjk_client.post("/search", json={"query": "塔模型"})
    assert response.status_code == 200
    assert [hit["id"] for hit in response.get_json()["hits"]][0] == "zh"


def test_match_phrase_finds_a_chinese_title_by_a_phrase_of_it(cjk_client):
    """ "模型" (model) is a phrase of two words: "型号模具" holds both, apart and out of order."""
    assert sorted_ids(cjk_client, {"match_phrase": {"title": "模型"}}) == ["zh"]


def test_match_phrase_finds_a_japanese_title_by_a_phrase_of_it(cjk_client):
    assert sorted_ids(cjk_client, {"match_phrase": {"title": "タワーのプラモデル"}}) == ["ja"]


def test_query_string_phrase_finds_a_japanese_title(cjk_client):
    assert sorted_ids(cjk_client, {"query_string": {"query": '"東京タワー"'}}) == ["ja"]


def test_match_with_operator_and_needs_every_character_of_a_chinese_word(cjk_client):
    query = {"match": {"title": {"query": "模型", "operator": "and"}}}
    assert sorted_ids(cjk_client, query) == ["zh2", "zh"]


def test_highlight_marks_the_matched_chinese_characters(cjk_client):
    body = search(
        cjk_client, {"query": {"query_string": {"query": 'title:"模型"'}}, "highlight": {"fields": {"title": {}}}}
    )
    # The phrase's two characters are one span, as Elasticsearch 8's unified highlighter marks a phrase.
    assert [hit["highlight"]["title"] for hit in body["hits"]["hits"]] == [["东京塔<em>模型</em>"]]


def test_highlight_marks_the_matched_japanese_words(cjk_client):
    body = search(cjk_client, {"query": {"match": {"title": "プラモデル"}}, "highlight": {"fields": {"title": {}}}})
    assert body["hits"]["hits"][0]["highlight"]["title"] == ["東京タワーの<em>プラモデル</em>"]


def test_range_aggregation_answers_its_ranges_ordered_by_their_bounds(client):
    """Elasticsearch sorts a range aggregation's ranges by from, then to (open ends first), whatever the order
    they were asked in: a facet listing "300 and up" before "under 300" gets them the other way round."""
    answer = price_ranges(client, ranges=[{"from": 300}, {"to": 300}])
    assert [b["key"] for b in answer["buckets"]] == ["*-300.0", "300.0-*"]


def test_overlapping_ranges_each_count_every_product_in_them(client):
    """A rating facet's "4 and up", "3 and up" ranges overlap; tantivy refuses overlapping ranges (it was a 501)."""
    body = {"size": 0, "aggs": {"r": {"range": {"field": "rating", "ranges": [{"from": 4}, {"from": 3}]}}}}
    answer = search(client, body)["aggregations"]["r"]
    rated = [p.rating for p in CATALOG if p.rating is not None]
    assert buckets(answer) == {"3.0-*": sum(r >= 3 for r in rated), "4.0-*": sum(r >= 4 for r in rated)}


def test_terms_aggregation_on_a_number_counts_the_products_without_it_under_missing(client):
    """``missing`` on a number's terms puts the products without a value in its bucket (it was dropped)."""
    body = {"size": 0, "aggs": {"r": {"terms": {"field": "rating", "missing": 0, "size": 20}}}}
    answer = search(client, body)["aggregations"]["r"]
    assert buckets(answer)[0.0] == sum(p.rating is None for p in CATALOG)


def bolt_prices(client, percentiles: dict) -> dict:
    """A percentiles aggregation's answer over Bolt's products (prices 249.5, 299.0 and 650.0)."""
    body = {"size": 0, "query": {"term": {"brand.keyword": "Bolt"}}, "aggs": {"p": {"percentiles": percentiles}}}
    return search(client, body)["aggregations"]["p"]


def test_percentiles_interpolate_between_the_values_as_elasticsearch_does(client):
    """Below 2,000 values Elasticsearch's TDigest keeps every value and interpolates between the two around a
    percentile's rank; tantivy's sketch answered the lower one, less 1% (p99 of 249.5, 299, 650 was 297.6)."""
    answer = bolt_prices(client, {"field": "price", "percents": [1, 50, 99]})
    assert answer["values"] == pytest.approx({"1.0": 250.49, "50.0": 299.0, "99.0": 642.98})


def test_percentiles_not_keyed_answer_a_list_of_key_and_value(client):
    answer = bolt_prices(client, {"field": "price", "percents": [50], "keyed": False})
    assert answer["values"] == [{"key": 50.0, "value": 299.0}]


def test_percentiles_count_products_without_the_field_at_the_missing_value(client):
    """tantivy's sketch left ``missing`` out: two unrated products at 0 put the 25th percentile lower."""
    body = {"size": 0, "aggs": {"p": {"percentiles": {"field": "rating", "percents": [25], "missing": 0}}}}
    ratings = sorted(p.rating or 0.0 for p in CATALOG)  # 0, 0, 3.5, 3.9, ...: rank 2.25
    expected = ratings[2] + 0.25 * (ratings[3] - ratings[2])
    assert search(client, body)["aggregations"]["p"]["values"] == {"25.0": pytest.approx(expected)}


def test_percentiles_of_no_values_are_null(client):
    """Elasticsearch answers null; the answer was NaN, which no JSON parser of a browser reads."""
    body = {"size": 0, "query": {"match_none": {}}, "aggs": {"p": {"percentiles": {"field": "price"}}}}
    response = client.post("/products/_search", json=body)
    assert b"NaN" not in response.data
    assert set(response.get_json()["aggregations"]["p"]["values"].values()) == {None}


def test_hdr_percentiles_are_a_501_naming_them(client):
    """HDR histograms answer other numbers than TDigest's, which cannot be reproduced here."""
    body = {"aggs": {"p": {"percentiles": {"field": "price", "hdr": {"number_of_significant_value_digits": 3}}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.p.percentiles.hdr"


def test_extended_stats_of_one_value_deviate_by_nothing_and_sample_nan(client):
    """Elasticsearch's arithmetic: a population of one has no deviation; a sample of one has no defined one,
    written "NaN" (a string); tantivy answered null for every deviation and no bounds."""
    body = {
        "size": 0,
        "query": {"term": {"brand.keyword": "Cosy"}},
        "aggs": {"p": {"extended_stats": {"field": "price"}}},
    }
    stats = search(client, body)["aggregations"]["p"]
    assert (stats["variance"], stats["std_deviation_population"], stats["variance_sampling"]) == (0.0, 0.0, "NaN")
    assert stats["std_deviation_bounds"] == {
        "upper": 700.0,
        "lower": 700.0,
        "upper_population": 700.0,
        "lower_population": 700.0,
        "upper_sampling": "NaN",
        "lower_sampling": "NaN",
    }


def test_extended_stats_of_no_values_answer_bounds_of_nulls(client):
    body = {"size": 0, "query": {"match_none": {}}, "aggs": {"p": {"extended_stats": {"field": "price"}}}}
    stats = search(client, body)["aggregations"]["p"]
    assert stats["count"] == 0 and stats["std_deviation"] is None
    assert set(stats["std_deviation_bounds"].values()) == {None} and len(stats["std_deviation_bounds"]) == 6


def test_keyed_histogram_keys_are_javas_doubles(client):
    """Elasticsearch keys a keyed histogram's buckets by the key as a Java double: "0.0", not "0"."""
    body = {"size": 0, "aggs": {"h": {"histogram": {"field": "price", "interval": 500, "keyed": True}}}}
    assert list(search(client, body)["aggregations"]["h"]["buckets"]) == ["0.0", "500.0"]


def test_terms_ordered_by_a_metric_break_ties_by_key(client):
    """Equal metrics are ordered by key, ascending, in Elasticsearch: the first brand of a tie is kept."""
    terms = {"field": "brand.keyword", "size": 2, "order": {"m": "asc"}}
    aggs = {"b": {"terms": terms, "aggs": {"m": {"max": {"field": "review_count"}}}}}  # every review_count is 0
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]["b"]
    assert [b["key"] for b in answer["buckets"]] == ["Acme", "Bolt"]


def test_counting_metrics_answer_whole_numbers(client):
    """value_count and cardinality are longs in Elasticsearch (7, not 7.0, for a typed client)."""
    aggs = {"n": {"value_count": {"field": "price"}}, "c": {"cardinality": {"field": "brand.keyword"}}}
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]
    assert (answer["n"]["value"], answer["c"]["value"]) == (len(CATALOG), 4)
    assert isinstance(answer["n"]["value"], int) and isinstance(answer["c"]["value"], int)


def test_terms_answer_their_count_error_bound(client):
    """Elasticsearch's terms answer always carries doc_count_error_upper_bound (0 on one index)."""
    aggs = {
        "b": {"terms": {"field": "brand.keyword", "order": {"m": "desc"}}, "aggs": {"m": {"max": {"field": "price"}}}}
    }
    assert search(client, {"size": 0, "aggs": aggs})["aggregations"]["b"]["doc_count_error_upper_bound"] == 0


def test_global_aggregation_below_the_top_level_is_a_400_as_in_elasticsearch(client):
    body = {"aggs": {"f": {"filter": {"match_all": {}}, "aggs": {"g": {"global": {}}}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "aggs.f.aggs.g.global"


def test_range_under_an_empty_histogram_bucket_counts_nothing_in_each_range(client):
    """tantivy answers no range buckets under a histogram's empty bucket (min_doc_count 0): it was a 500."""
    ranges = {"range": {"field": "price", "ranges": [{"to": 100}, {"from": 100}]}}
    histogram = {"histogram": {"field": "price", "interval": 100, "min_doc_count": 0}, "aggs": {"r": ranges}}
    answer = search(client, {"size": 0, "aggs": {"h": histogram}})["aggregations"]["h"]
    empty = next(b for b in answer["buckets"] if b["doc_count"] == 0)
    assert empty["r"]["buckets"] == [
        {"key": "*-100.0", "to": 100.0, "doc_count": 0},
        {"key": "100.0-*", "from": 100.0, "doc_count": 0},
    ]


def test_terms_on_a_number_with_min_doc_count_0_are_a_501_naming_it(client):
    """Elasticsearch lists every value of the index, with 0 for those the search does not match; tantivy lists
    only the matched ones, so that answer would be another."""
    body = {"aggs": {"s": {"terms": {"field": "sales", "min_doc_count": 0}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.s.terms.min_doc_count"


def test_terms_shard_size_counts_exactly_as_elasticsearch_on_one_shard(client):
    """tantivy applied shard_size per segment: the least frequent brands, counted ascending, came out wrong."""
    terms = {"field": "brand.keyword", "size": 2, "shard_size": 2, "order": {"_count": "asc"}}
    answer = search(client, {"size": 0, "aggs": {"b": {"terms": terms}}})["aggregations"]["b"]
    counts = count_by(CATALOG, lambda p: [p.brand])
    assert buckets(answer) == dict(sorted(counts.items(), key=lambda kv: (kv[1], kv[0]))[:2])


def test_aggregation_name_with_a_bucket_path_character_is_a_400_naming_it(client):
    """Elasticsearch refuses '[', ']' and '>' in a name (they make bucket paths); here a '>' name could have
    been taken for a part of another aggregation."""
    response = client.post("/products/_search", json={"aggs": {"p>1": {"max": {"field": "price"}}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "aggs.p>1"


def test_terms_ordered_by_a_min_put_a_bucket_without_values_first_descending(client):
    """To Elasticsearch the min of no values is +Infinity (answered null), so ordered descending it comes first;
    here the unrated products' bucket (``missing``) was put last."""
    terms = {"field": "rating", "missing": 9.5, "size": 1, "order": {"m": "desc"}}
    aggs = {"r": {"terms": terms, "aggs": {"m": {"min": {"field": "rating"}}}}}
    answer = search(client, {"size": 0, "aggs": aggs})["aggregations"]["r"]
    assert [(b["key"], b["m"]["value"]) for b in answer["buckets"]] == [(9.5, None)]


def test_sub_aggregations_of_a_range_under_an_empty_histogram_bucket_are_answered_empty(client):
    """Elasticsearch answers every sub-aggregation in every bucket; tantivy left a range's out under an empty
    histogram bucket (a page reading ``bucket.avg.value`` failed on it)."""
    ranges = {"range": {"field": "price", "ranges": [{"to": 100}]}, "aggs": {"avg": {"avg": {"field": "rating"}}}}
    histogram = {"histogram": {"field": "price", "interval": 100}, "aggs": {"r": ranges}}
    answer = search(client, {"size": 0, "aggs": {"h": histogram}})["aggregations"]["h"]
    empty = next(b for b in answer["buckets"] if b["doc_count"] == 0)
    assert empty["r"]["buckets"] == [{"key": "*-100.0", "to": 100.0, "doc_count": 0, "avg": {"value": None}}]


# --- _count ------------------------------------------------------------------------------------------------------


def count(client, body=None, **params) -> int:
    response = client.post("/products/_count", json=body, query_string=params) if body else None
    response = response or client.get("/products/_count", query_string=params)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["count"]


def test_count_without_a_query_counts_every_product(client):
    assert count(client) == len(CATALOG)


def test_count_counts_what_the_query_matches_with_front_end_field_names(client):
    query = {"bool": {"must": {"match": {"title": "sofa"}}, "filter": {"term": {"color.keyword": "grey"}}}}
    want = [p for p in CATALOG if "sofa" in p.title.lower() and "grey" in p.attributes.get("color", ())]
    assert count(client, {"query": query}) == len(want) == 3


def test_count_reads_q_as_lucene_syntax(client):
    want = [p for p in CATALOG if p.brand == "Acme" and "sofa" in p.title.lower()]
    assert count(client, q="brand:Acme AND title:sofa") == len(want) == 2


def uri_search(client, **params) -> dict:
    response = client.get("/products/_search", query_string={"size": "20", **params})
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_uri_search_reads_q_as_lucene_syntax_with_its_fields_and_exclusions(client):
    want = {p.id for p in CATALOG if p.brand == "Acme" and "sofa" in p.title.lower()}
    assert set(ids(uri_search(client, q="brand:Acme AND title:sofa"))) == want == {"s1", "s2"}
    assert set(ids(uri_search(client, q="sofa -grey", df="title"))) == {"s1", "s2", "s3", "s4", "s6"}


def test_uri_search_q_replaces_the_bodys_query(client):
    body = {"query": {"match": {"title": "lamp"}}}
    response = client.post("/products/_search", json=body, query_string={"q": "title:oak"})
    assert ids(response.get_json()) == ["t1"]


def test_uri_search_analyzer_is_listed_as_ignored_as_the_query_strings_key_is(client):
    """Dropped, the words were matched with the index's analyzer and nothing said another was asked for."""
    assert "query_string.analyzer" in uri_search(client, q="sofa", analyzer="whitespace")["search_rerank"]["ignored"]


def test_uri_search_q_that_is_not_lucene_syntax_is_a_400_naming_it(client):
    response = client.get("/products/_search", query_string={"q": "((("})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "query.query_string.query"


def test_uri_search_sort_parameter_orders_the_page(client):
    prices = [hit["_source"]["price"] for hit in uri_search(client, q="title:sofa", sort="price:desc")["hits"]["hits"]]
    assert prices == sorted((p.price for p in CATALOG if "sofa" in p.title.lower()), reverse=True)


def test_count_with_a_key_other_than_query_is_a_400_naming_it(client):
    response = client.post("/products/_count", json={"query": {"match_all": {}}, "size": 3})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "size"


def test_count_of_an_index_not_served_is_elasticsearchs_404(client):
    response = client.post("/other/_count", json={"query": {"match_all": {}}})
    assert response.status_code == 404
    assert response.get_json()["error"]["type"] == "index_not_found_exception"


def test_count_of_a_wildcard_that_matches_no_served_index_is_zero(client):
    assert count(client, {"query": {"match_all": {}}}) == len(CATALOG)
    response = client.post("/nope*/_count", json={"query": {"match_all": {}}})
    assert response.status_code == 200 and response.get_json()["count"] == 0


def test_count_ignore_unavailable_counts_the_served_indices_of_a_list(client):
    response = client.post("/products,nope/_count?ignore_unavailable=true", json={"query": {"match_all": {}}})
    assert response.status_code == 200 and response.get_json()["count"] == len(CATALOG)


def test_count_held_to_a_score_is_a_501_naming_the_parameter(client):
    response = client.get("/products/_count", query_string={"min_score": "1"})
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "min_score"


def test_a_search_that_names_no_served_index_answers_no_aggregations(client):
    body = {"size": 0, "aggs": {"g": {"global": {}, "aggs": {"b": {"terms": {"field": "brand.keyword"}}}}}}
    answer = search(client, body, index="nope*")
    assert "aggregations" not in answer and answer["hits"]["total"]["value"] == 0


def histogram(client, spec: dict) -> list[tuple[float, int]]:
    """The (key, doc_count) of each bucket of a histogram of ``spec`` over the catalog's prices."""
    body = {"size": 0, "aggs": {"h": {"histogram": {"field": "price", **spec}}}}
    return [(b["key"], b["doc_count"]) for b in search(client, body)["aggregations"]["h"]["buckets"]]


def test_terms_of_size_0_are_a_400_naming_the_size_as_in_elasticsearch(client):
    """Elasticsearch refuses a terms size of 0 ("[size] must be greater than 0"); tantivy answered no bucket."""
    body = {"size": 0, "aggs": {"b": {"terms": {"field": "brand.keyword", "size": 0}}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"]["root_cause"][0]["field"] == "aggs.b.terms.size"


def test_percentiles_are_answered_in_ascending_order_of_percent(client):
    """Elasticsearch sorts the percents it is asked for (PercentilesAggregationBuilder), so a list answers them
    in that order whatever the request's."""
    answer = bolt_prices(client, {"field": "price", "percents": [99, 1], "keyed": False})
    assert [value["key"] for value in answer["values"]] == [1.0, 99.0]


def test_histogram_with_min_doc_count_ignores_extended_bounds_as_elasticsearch_does(client):
    """Elasticsearch adds extended_bounds' empty buckets only with min_doc_count 0; tantivy refused the two (a 501)."""
    spec = {"interval": 500, "min_doc_count": 1, "extended_bounds": {"min": 0, "max": 2000}}
    assert histogram(client, spec) == [(0.0, 7), (500.0, 3)]


def test_histogram_hard_bounds_keep_the_buckets_whose_key_is_within_them(client):
    """Elasticsearch keeps a value when its bucket's key is within hard_bounds (NumericHistogramAggregator), so
    the bucket from 600 keeps 650 and 89 (bucket 0) is left out; tantivy kept the values from 50 to 600."""
    spec = {"interval": 100, "hard_bounds": {"min": 50, "max": 600}}
    assert histogram(client, spec) == [(100.0, 1), (200.0, 2), (300.0, 1), (400.0, 1), (500.0, 0), (600.0, 1)]


def test_histogram_hard_bounds_with_one_end_are_answered(client):
    """Elasticsearch takes hard_bounds with one end; tantivy wanted both (a 501)."""
    assert histogram(client, {"interval": 100, "hard_bounds": {"min": 600}}) == [(600.0, 1), (700.0, 1), (800.0, 1)]


def test_histogram_extended_bounds_answer_a_bucket_hard_bounds_leave_out_empty(client):
    """The extended bucket from 0 is below hard_bounds' 50: Elasticsearch answers it, empty (89 is left out)."""
    spec = {"interval": 100, "min_doc_count": 0, "hard_bounds": {"min": 50, "max": 150}}
    spec["extended_bounds"] = {"min": 50, "max": 150}
    assert histogram(client, spec) == [(0.0, 0), (100.0, 1)]


def test_histogram_extended_bounds_past_hard_bounds_are_a_400_naming_them(client):
    """Elasticsearch: "Extended bounds have to be inside hard bounds" (a 400); tantivy refused them (a 501)."""
    spec = {"field": "price", "interval": 100, "hard_bounds": {"min": 0, "max": 500}}
    spec["extended_bounds"] = {"min": 0, "max": 1000}
    response = client.post("/products/_search", json={"size": 0, "aggs": {"h": {"histogram": spec}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["root_cause"][0]["field"] == "aggs.h.histogram.extended_bounds"
