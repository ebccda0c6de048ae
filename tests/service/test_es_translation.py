"""Query DSL to pipeline request: what is honoured, what is ignored, and what is refused by name."""

import math

import pytest

from search_rerank.core.settings import ServiceSettings
from search_rerank.serving.es_compat import (
    InvalidQuery,
    SourceFilter,
    Unsupported,
    parse_msearch,
    parse_search,
    uri_search,
)

LIMITS = ServiceSettings(max_size=50, max_query_length=100, max_result_window=200)


def parse(body, **params):
    return parse_search(body, params, LIMITS)


def parse_uri(body, **params):
    """``body`` searched with URI parameters ``params``, as a search reads them."""
    return parse_search(*uri_search(body, params), LIMITS)


def bool_filter(*clauses, **extra):
    return {"query": {"bool": {"must": [{"match": {"title": "sofa"}}], "filter": list(clauses), **extra}}}


def test_match_query_gives_the_text():
    assert parse({"query": {"match": {"title": "red sofa"}}}).text == "red sofa"


def test_match_with_options_gives_the_text_and_lists_the_options_as_ignored():
    search = parse({"query": {"match": {"title": {"query": "sofa", "operator": "and"}}}})
    assert search.text == "sofa"
    assert "match.operator" in search.ignored


def test_multi_match_fields_are_ignored_because_ranking_is_the_pipelines():
    search = parse({"query": {"multi_match": {"query": "oak table", "fields": ["title^3"]}}})
    assert search.text == "oak table"
    assert "multi_match.fields" in search.ignored


def test_repeated_alternatives_of_one_text_are_one_query():
    should = [{"multi_match": {"query": "lamp", "type": t}} for t in ("best_fields", "phrase", "phrase_prefix")]
    assert parse({"query": {"bool": {"should": should, "minimum_should_match": 1}}}).text == "lamp"


def test_no_query_is_match_all_with_no_filters():
    search = parse({})
    assert (search.text, search.filters, search.matches_nothing) == ("", None, False)


def test_term_on_brand_keyword_filters_by_brand():
    assert parse(bool_filter({"term": {"brand.keyword": "Oakbrook"}})).filters.brand == ("Oakbrook",)


def test_term_with_value_object_filters_by_brand():
    assert parse(bool_filter({"term": {"brand": {"value": "Oakbrook", "boost": 2}}})).filters.brand == ("Oakbrook",)


def test_terms_on_brand_accept_any_listed_brand():
    search = parse(bool_filter({"terms": {"brand.keyword": ["B", "A"]}}))
    assert search.filters.brand == ("A", "B")


def test_two_brand_filters_keep_only_brands_in_both():
    search = parse(bool_filter({"terms": {"brand": ["A", "B"]}}, {"terms": {"brand": ["b", "C"]}}))
    assert [b.casefold() for b in search.filters.brand] == ["b"]


def test_brand_filters_with_nothing_in_common_match_nothing():
    assert parse(bool_filter({"term": {"brand": "A"}}, {"term": {"brand": "B"}})).matches_nothing


def test_empty_terms_list_matches_nothing():
    assert parse(bool_filter({"terms": {"brand": []}})).matches_nothing


def test_category_term_is_a_path_prefix():
    search = parse(bool_filter({"term": {"category.keyword": "Furniture > Living Room"}}))
    assert search.filters.category == ("Furniture", "Living Room")


def test_nested_category_terms_keep_the_deepest_path():
    search = parse(bool_filter({"term": {"category": "Furniture"}}, {"term": {"category": "Furniture > Beds"}}))
    assert search.filters.category == ("Furniture", "Beds")


def test_category_terms_on_different_branches_match_nothing():
    assert parse(bool_filter({"term": {"category": "Furniture"}}, {"term": {"category": "Bath"}})).matches_nothing


def test_attribute_term_filters_that_attribute():
    search = parse(bool_filter({"term": {"attributes.color.keyword": "red"}}))
    assert search.filters.attributes == {"color": ("red",)}


def test_price_range_sets_both_bounds():
    search = parse(bool_filter({"range": {"price": {"gte": 10, "lte": "99.5"}}}))
    assert (search.filters.price_min, search.filters.price_max) == (10, 99.5)


def test_exclusive_price_bound_excludes_the_bound_itself():
    search = parse(bool_filter({"range": {"price": {"gt": 10}}}))
    assert search.filters.price_min > 10 and search.filters.price_min == math.nextafter(10, math.inf)


def test_required_alternative_price_ranges_that_touch_become_one_range():
    ranges = [{"range": {"price": {"gte": 300, "lte": 600}}}, {"range": {"price": {"gte": 0, "lte": 300}}}]
    search = parse(bool_filter({"bool": {"should": ranges}}))
    assert (search.filters.price_min, search.filters.price_max) == (0, 600)


def test_alternative_price_ranges_with_a_gap_are_unsupported():
    ranges = [{"range": {"price": {"lte": 10}}}, {"range": {"price": {"gte": 20}}}]
    with pytest.raises(Unsupported, match="gap"):
        parse(bool_filter({"bool": {"should": ranges}}))


def test_required_alternative_terms_on_one_field_accept_any_of_them():
    terms = [{"term": {"attributes.color": "red"}}, {"term": {"attributes.color": "blue"}}]
    search = parse(bool_filter({"bool": {"should": terms}}))
    assert search.filters.attributes == {"color": ("blue", "red")}


def test_alternatives_on_different_fields_are_unsupported():
    terms = [{"term": {"brand": "A"}}, {"term": {"attributes.color": "blue"}}]
    with pytest.raises(Unsupported) as err:
        parse(bool_filter({"bool": {"should": terms}}))
    assert err.value.part == "query.bool.filter[0].bool.should"


def test_optional_filters_beside_a_must_only_boost_so_they_are_ignored():
    search = parse({"query": {"bool": {"must": {"match": {"title": "sofa"}}, "should": [{"term": {"brand": "A"}}]}}})
    assert search.filters is None
    assert any("query.bool.should" in item for item in search.ignored)


def test_must_not_is_unsupported_by_name():
    with pytest.raises(Unsupported) as err:
        parse({"query": {"bool": {"must_not": [{"term": {"brand": "A"}}]}}})
    assert err.value.part == "query.bool.must_not"


@pytest.mark.parametrize(
    "query", [{"fuzzy": {"title": "sofa"}}, {"wildcard": {"title": "so*"}}, {"geo_distance": {"distance": "1km"}}]
)
def test_unknown_query_type_is_unsupported_by_name(query):
    with pytest.raises(Unsupported) as err:
        parse({"query": query})
    assert err.value.part == f"query.{next(iter(query))}"


def test_filter_on_a_field_the_backend_cannot_filter_is_unsupported():
    with pytest.raises(Unsupported, match="rating"):
        parse(bool_filter({"term": {"rating": 5}}))


def test_range_on_a_field_other_than_price_is_unsupported():
    with pytest.raises(Unsupported, match="price"):
        parse(bool_filter({"range": {"rating": {"gte": 4}}}))


def test_text_query_in_filter_context_is_unsupported():
    with pytest.raises(Unsupported, match="filter context"):
        parse({"query": {"bool": {"filter": [{"match": {"title": "sofa"}}]}}})


@pytest.mark.parametrize("key", ["aggs", "aggregations", "highlight", "suggest", "collapse", "search_after"])
def test_unsupported_top_level_feature_is_named(key):
    with pytest.raises(Unsupported) as err:
        parse({"query": {"match_all": {}}, key: {"x": {}}})
    assert err.value.part == key


def test_empty_aggregations_are_no_aggregations():
    assert parse({"aggs": {}}).text == ""


def test_unknown_top_level_key_is_invalid_as_in_elasticsearch():
    with pytest.raises(InvalidQuery) as err:
        parse({"qeury": {}})
    assert err.value.field == "qeury"


@pytest.mark.parametrize("sort", ["_score", ["_score"], [{"_score": "desc"}], {"_score": {"order": "desc"}}])
def test_sort_by_descending_score_is_accepted(sort):
    assert parse({"sort": sort}).text == ""


@pytest.mark.parametrize("sort", [[{"price": "asc"}], "title", [{"_score": "asc"}]])
def test_any_other_sort_is_unsupported(sort):
    with pytest.raises(Unsupported) as err:
        parse({"sort": sort})
    assert err.value.part == "sort"


@pytest.mark.parametrize(
    "body, field",
    [
        ({"size": -1}, "size"),
        ({"from": "x"}, "from"),
        ({"from": 190, "size": 20}, "from"),
        ({"query": {"match": {"title": "x" * 101}}}, "query"),
        ({"query": {"match": 5}}, "query.match"),
        ({"query": {"bool": {"must": [{"term": {}}]}}}, "query.bool.must[0].term"),
    ],
)
def test_bad_values_are_invalid_naming_the_field(body, field):
    with pytest.raises(InvalidQuery) as err:
        parse(body)
    assert err.value.field == field


def test_size_and_from_default_as_in_elasticsearch():
    search = parse({})
    assert (search.offset, search.size) == (0, 10)


RECORD = {"id": "1", "title": "Sofa", "brand": "A", "attributes": {"color": ["red"], "material": ["oak"]}}


@pytest.mark.parametrize(
    "source, kept",
    [
        (True, RECORD),
        (["title", "brand"], {"title": "Sofa", "brand": "A"}),
        ("title", {"title": "Sofa"}),
        ({"includes": ["attributes.color"]}, {"attributes": {"color": ["red"]}}),
        ({"includes": ["attr*"], "excludes": ["attributes.material"]}, {"attributes": {"color": ["red"]}}),
        ({"excludes": ["attributes"]}, {"id": "1", "title": "Sofa", "brand": "A"}),
    ],
)
def test_source_filtering_keeps_the_asked_fields(source, kept):
    assert parse({"_source": source}).source.apply(RECORD) == kept


@pytest.mark.parametrize(
    "params, kept",
    [
        ({"_source": "false"}, None),
        ({"_source": "title,brand"}, {"title": "Sofa", "brand": "A"}),
        (
            {"_source_includes": "attributes.*", "_source_excludes": "attributes.material"},
            {"attributes": {"color": ["red"]}},
        ),
    ],
)
def test_source_filtering_from_uri_parameters(params, kept):
    source = parse_uri({}, **params).source
    assert (source.apply(RECORD) if source.enabled else None) == kept


def test_source_includes_parameter_replaces_the_fields_the_source_parameter_names():
    """As Elasticsearch's FetchSourceContext reads them; both were kept, adding fields to every hit."""
    assert parse_uri({}, _source="title", _source_includes="brand").source.apply(RECORD) == {"brand": "A"}


@pytest.mark.parametrize(
    "body, params, read",
    [
        ({"size": 3}, {"size": "1"}, lambda s: s.size == 1),
        ({"from": 0}, {"from": "2"}, lambda s: s.offset == 2),
        ({"explain": True}, {"explain": "false"}, lambda s: not s.explain),
        ({"track_total_hits": True}, {"track_total_hits": "false"}, lambda s: s.track_total_hits is False),
        ({"_source": True}, {"_source": "false"}, lambda s: not s.source.enabled),
    ],
)
def test_a_uri_parameter_wins_over_the_same_key_of_the_body(body, params, read):
    """Elasticsearch parses the body, then sets each parameter over it; the body's key won."""
    assert read(parse_uri(body, **params))


def test_uri_sort_is_added_after_the_bodys_sort():
    """Elasticsearch adds each ``?sort`` item to the body's sort; it replaced it."""
    body, _ = uri_search({"sort": {"price": "asc"}}, {"sort": "_score,title.keyword:desc"})
    assert body["sort"] == [{"price": "asc"}, "_score", {"title.keyword": "desc"}]


def test_uri_sort_order_is_what_follows_the_last_colon():
    assert uri_search({}, {"sort": "attributes.a:b:asc"})[0]["sort"] == [{"attributes.a:b": "asc"}]


def test_uri_parameters_for_hit_metadata_and_timeout_are_listed_as_ignored_as_the_bodys_keys_are():
    """``version``, ``seq_no_primary_term``, ``track_scores`` and ``timeout``: unread, they were not even listed."""
    search = parse_uri({}, version="true", seq_no_primary_term="", track_scores="true", timeout="1s")
    assert set(search.ignored) == {"version", "seq_no_primary_term", "track_scores", "timeout"}


def test_a_uri_query_option_that_is_not_true_or_false_is_a_400_naming_it():
    with pytest.raises(InvalidQuery) as err:
        uri_search({}, {"q": "sofa", "lenient": "maybe"})
    assert err.value.field == "lenient"


def test_a_uri_flag_that_is_not_true_or_false_is_a_400_naming_it():
    with pytest.raises(InvalidQuery) as err:
        uri_search({}, {"track_scores": "maybe"})
    assert err.value.field == "track_scores"


@pytest.mark.parametrize("param", ["scroll", "suggest_field"])
def test_uri_parameter_that_would_change_the_answer_is_unsupported(param):
    with pytest.raises(Unsupported) as err:
        parse({}, **{param: "x"})
    assert err.value.part == param


def test_track_total_hits_from_the_uri():
    assert parse_uri({}, track_total_hits="false").track_total_hits is False


def test_source_false_turns_the_source_off():
    assert parse({"_source": False}).source == SourceFilter(enabled=False)


@pytest.mark.parametrize("value, expected", [(None, 10_000), (True, True), (False, False), (100, 100)])
def test_track_total_hits_forms(value, expected):
    body = {} if value is None else {"track_total_hits": value}
    assert parse(body).track_total_hits == expected


def test_explain_comes_from_the_body_or_the_uri():
    assert parse({"explain": True}).explain and parse_uri({}, explain="true").explain and not parse({}).explain


def test_multi_search_pairs_headers_with_bodies():
    text = b'{"index": "a"}\n{"size": 1}\n{}\n{"size": 2}\n'
    assert parse_msearch(text, "default", max_depth=64) == [("a", {"size": 1}, {}), ("default", {"size": 2}, {})]


def test_multi_search_header_keeps_its_index_options():
    text = b'{"index": "a,b", "ignore_unavailable": true, "preference": "x"}\n{}\n'
    assert parse_msearch(text, "default", max_depth=64) == [("a,b", {}, {"ignore_unavailable": True})]


def test_multi_search_with_a_missing_body_is_invalid():
    with pytest.raises(InvalidQuery):
        parse_msearch(b'{"index": "a"}\n', "default", max_depth=64)
