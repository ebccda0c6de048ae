"""service.field_aliases: a front end's field names renamed throughout a search body."""

from __future__ import annotations

from search_rerank.serving.field_aliases import (
    pair_field,
    pair_name,
    rename_fields,
    source_with_aliases,
    text_fields_matching,
)


def test_field_aliases_rename_fields_in_queries_aggregations_sort_and_highlight():
    aliases = {"color.keyword": "attributes.color"}
    body = {
        "query": {"bool": {"filter": [{"term": {"color.keyword": "red"}}], "must_not": {"exists": {"field": "x"}}}},
        "aggs": {"c": {"terms": {"field": "color.keyword"}}},
        "sort": [{"color.keyword": "asc"}],
        "highlight": {"fields": {"color.keyword": {}}},
    }
    renamed = rename_fields(body, aliases)
    assert renamed["query"]["bool"]["filter"] == [{"term": {"attributes.color": "red"}}]
    assert renamed["aggs"]["c"]["terms"]["field"] == "attributes.color"
    assert renamed["sort"] == [{"attributes.color": "asc"}]
    assert renamed["highlight"]["fields"] == {"attributes.color": {}}
    assert body["aggs"]["c"]["terms"]["field"] == "color.keyword"  # the sent body is not changed


def test_field_aliased_to_nothing_is_left_out_of_field_lists():
    """Chorus' search box lists fields the product does not have; Elasticsearch matches nothing in them."""
    aliases = {"ean": "", "name": "title"}
    body = {"query": {"multi_match": {"query": "lamp", "fields": ["ean^2", "name", "description"]}}}
    assert rename_fields(body, aliases)["query"]["multi_match"]["fields"] == ["title", "description"]


def test_clause_on_a_field_aliased_to_nothing_matches_nothing_as_on_an_unmapped_field():
    """Spryker's active window: a range on the absent active-from matches nothing, must_not exists everything."""
    aliases = {"active-from": ""}
    window = {
        "bool": {
            "should": [
                {"range": {"active-from": {"lte": "now"}}},
                {"bool": {"must_not": {"exists": {"field": "active-from"}}}},
            ]
        }
    }
    renamed = rename_fields({"query": window}, aliases)["query"]
    assert renamed == {"bool": {"should": [{"match_none": {}}, {"bool": {"must_not": {"match_none": {}}}}]}}


def test_term_on_a_constant_field_matches_every_product_when_it_names_the_value():
    aliases = {"store": "=DE", "is-active": "=true"}
    body = {"query": {"bool": {"filter": [{"term": {"store": "DE"}}, {"term": {"is-active": True}}]}}}
    assert rename_fields(body, aliases)["query"] == {"bool": {"filter": [{"match_all": {}}, {"match_all": {}}]}}


def test_terms_on_a_constant_field_match_no_product_without_its_value():
    aliases = {"store": "=DE"}
    body = {"query": {"terms": {"store": ["AT", "US"]}}}
    assert rename_fields(body, aliases)["query"] == {"match_none": {}}


def spryker_nested(path, name, value_clause):
    """Spryker's NestedTermQuery / NestedRangeQuery shape (spryker/search-elasticsearch Query/AbstractNestedQuery)."""
    query = {"bool": {"filter": [{"term": {f"{path}.facet-name": name}}, value_clause]}}
    return {"nested": {"path": path, "query": query}}


def test_name_value_nested_filter_becomes_a_term_on_the_named_field():
    aliases = {"string-facet": "{facet-name}", "color": "attributes.color"}
    clause = spryker_nested("string-facet", "color", {"term": {"string-facet.facet-value": "grey"}})
    renamed = rename_fields({"query": {"bool": {"filter": [clause]}}}, aliases)
    assert renamed["query"]["bool"]["filter"] == [{"term": {"attributes.color": "grey"}}]


def test_name_value_nested_range_keeps_its_bounds_and_options():
    aliases = {"integer-facet": "{facet-name}"}
    value = {"range": {"integer-facet.facet-value": {"gte": 200, "lte": 700}, "boost": 2.0}}
    renamed = rename_fields({"query": spryker_nested("integer-facet", "price", value)}, aliases)
    assert renamed["query"] == {"range": {"price": {"gte": 200, "lte": 700}, "boost": 2.0}}


def test_nested_clause_of_another_shape_is_left_for_the_parser_to_name():
    aliases = {"string-facet": "{facet-name}"}
    clause = {"nested": {"path": "string-facet", "query": {"term": {"string-facet.facet-value": "grey"}}}}
    assert rename_fields({"query": clause}, aliases)["query"] == clause


def test_function_score_function_filters_are_renamed():
    aliases = {"full-text": "description"}
    function = {"weight": 20, "filter": {"multi_match": {"query": "grey", "fields": ["full-text"]}}}
    body = {"query": {"function_score": {"functions": [function]}}}
    renamed = rename_fields(body, aliases)["query"]["function_score"]["functions"][0]
    assert renamed == {"weight": 20, "filter": {"multi_match": {"query": "grey", "fields": ["description"]}}}


def test_source_carries_each_aliased_field_under_the_front_ends_name_too():
    """Chorus' result cards read ``supplier``; a Spryker page ``integer-sort.price``."""
    aliases = {
        "supplier": "brand",
        "color": "attributes.color",
        "integer-sort.price": "price",
        "brand.keyword": "brand",
    }
    record = {"id": "s1", "brand": "Acme", "price": 499.0, "attributes": {"color": ["grey"]}}
    source = source_with_aliases(record, aliases)
    assert source == {**record, "supplier": "Acme", "color": "grey", "integer-sort": {"price": 499.0}}


def test_source_keeps_the_records_own_field_when_an_alias_has_its_name():
    assert source_with_aliases({"title": "Sofa", "name": "n"}, {"name": "title"})["name"] == "n"


def test_elastica_match_on_a_constant_field_matches_every_product_with_that_value():
    """Spryker's StoreQueryExpanderPlugin: {"match": {"store": "DE"}}."""
    assert rename_fields({"query": {"match": {"store": "DE"}}}, {"store": "=DE"})["query"] == {"match_all": {}}


def test_a_pinned_querys_organic_query_is_renamed():
    aliases = {"name": "title"}
    body = {"query": {"pinned": {"ids": ["t1"], "organic": {"match": {"name": "sofa"}}}}}
    assert rename_fields(body, aliases)["query"]["pinned"] == {"ids": ["t1"], "organic": {"match": {"title": "sofa"}}}


def test_a_pair_name_names_its_alias_else_the_products_own_field_else_the_attribute():
    aliases = {"colour": "attributes.color", "string-facet": "{facet-name}"}
    assert [pair_field(n, aliases) for n in ("colour", "brand", "price", "material")] == [
        "attributes.color",
        "brand",
        "price",
        "attributes.material",
    ]


def test_a_field_is_named_in_pairs_by_its_own_name_where_that_names_it_else_by_its_alias():
    aliases = {"colour": "attributes.color", "color.keyword": "attributes.color", "color": "title", "maker": "brand"}
    assert pair_name("attributes.color", aliases) == "colour"  # "color" names the title here
    assert pair_name("brand", aliases) == "brand"
    assert pair_name("attributes.size", aliases) == "size"


def test_the_keyword_of_an_aliased_name_is_the_keyword_of_its_alias():
    """Bagisto and Drupal sort by ``name.keyword`` where ``name`` is aliased to the title."""
    aliases = {"name": "title", "maker": "brand.keyword", "colour": "attributes.color"}
    body = {"sort": [{"name.keyword": "asc"}, {"maker.keyword": "desc"}, {"colour.keyword": "asc"}, "other.keyword"]}
    assert rename_fields(body, aliases)["sort"] == [
        {"title.keyword": "asc"},
        {"brand.keyword": "desc"},
        {"attributes.color.keyword": "asc"},
        "other.keyword",
    ]


def test_a_keyword_with_an_entry_of_its_own_keeps_it():
    aliases = {"name": "title", "name.keyword": "brand.keyword"}
    assert rename_fields({"sort": [{"name.keyword": "asc"}]}, aliases)["sort"] == [{"brand.keyword": "asc"}]


def test_source_carries_a_constant_fields_value_on_every_product():
    """Laravel Scout's matchish driver makes each hit's model from ``_source.__class_name``."""
    record = {"id": "p1", "title": "Lamp"}
    source = source_with_aliases(record, {"__class_name": "=App\\Models\\Product", "meta.store": "=DE"})
    assert source["__class_name"] == "App\\Models\\Product" and source["meta"] == {"store": "DE"}


def test_source_carries_a_name_aliased_to_a_keyword_with_its_fields_value():
    """Pimcore's product index holds ``attributes.name`` as a keyword, aliased to ``title.keyword``."""
    record = {"id": "p1", "title": "Lamp", "brand": "Acme"}
    source = source_with_aliases(record, {"attributes.name": "title.keyword", "maker": "brand.keyword"})
    assert source["attributes"] == {"name": "Lamp"} and source["maker"] == "Acme"


def test_source_leaves_out_a_front_ends_sub_fields_of_an_aliased_name():
    """Searchkick's index has ``name`` and its sub-fields ``name.analyzed``, ``name.word_start``."""
    aliases = {"name": "title", "name.analyzed": "title", "name.word_start": "title"}
    assert source_with_aliases({"id": "p1", "title": "Lamp"}, aliases)["name"] == "Lamp"


def test_a_fields_pattern_names_the_text_fields_the_front_ends_matching_names_are_aliased_to():
    """Searchkick searches ``*.analyzed`` where a shop names no fields."""
    aliases = {"name.analyzed": "title", "description.analyzed": "description", "price.analyzed": "price"}
    assert text_fields_matching("*.analyzed", aliases) == ["title", "description"]
    assert text_fields_matching("ti*", {}) == ["title"]
    assert text_fields_matching("*.analyzed", {}) == []


def test_a_composite_aggregations_sources_are_renamed():
    body = {"aggs": {"c": {"composite": {"sources": [{"m": {"terms": {"field": "color.keyword"}}}], "size": 5}}}}
    renamed = rename_fields(body, {"color.keyword": "attributes.color"})
    assert renamed["aggs"]["c"]["composite"] == {
        "sources": [{"m": {"terms": {"field": "attributes.color"}}}],
        "size": 5,
    }
