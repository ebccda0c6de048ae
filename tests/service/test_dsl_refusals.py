"""Request bodies found by fuzzing the embedded backend's ``_search`` that break its contract: every body gets a
correct answer, a 400 naming the field it sent wrong (``error.field``), or a 501 naming the part it does not
support (``error.unsupported``), never a 500, and never a path the body does not hold (a rewritten clause's, a
part dropped from the path).

Each test states what Elasticsearch does and what the service answered before ("Was").
"""

from __future__ import annotations

from typing import Any

import pytest

from search_rerank.core.product import Product

CATALOG = [
    Product(
        id="s1",
        title="Corner sofa",
        brand="Acme",
        category="Furniture > Sofas",
        price=499.0,
        attributes={"color": "grey"},
        extra={"stock": 5, "created_at": "2024-05-10"},
    ),
    Product(
        id="s2",
        title="Leather sofa",
        brand="Bolt",
        category="Furniture > Sofas",
        price=899.0,
        attributes={"color": "brown"},
        extra={"stock": 0, "created_at": "2025-02-01"},
    ),
    Product(id="t1", title="Oak table", brand="Bolt", category="Furniture > Tables", price=249.5, extra={"stock": 3}),
    # no price and no stock: a numeric aggregation's ``missing`` value is used for it
    Product(id="c1", title="Plain chair", brand="Dune", category="Furniture > Chairs"),
]

VECTOR = [0.1] * 32  # the tiny test model's dimensions
BAD_RANGE = {"range": {"price": {"gte": "abc"}}}  # a 400 at <where>.range.price.gte


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(CATALOG)


def error(client, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    response = client.post("/products/_search", json=body)
    answer = response.get_json()
    err = answer.get("error") if isinstance(answer, dict) else None
    return response.status_code, (err if isinstance(err, dict) else {})  # a 500's error is a string


def named(err: dict[str, Any]) -> str | None:
    return err.get("field") or err.get("unsupported")


# --- 500s -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("offset", ["x", None, [1]])
def test_a_histogram_offset_that_is_no_number_beside_hard_bounds_is_a_400_naming_the_offset(client, offset):
    # Was: 500 "internal error" (embedded_search._counted_values calls float() on the offset: ValueError/TypeError).
    # Elasticsearch: 400, the offset must be a number.
    body = {
        "size": 0,
        "aggs": {
            "h": {
                "histogram": {
                    "field": "price",
                    "interval": 100,
                    "offset": offset,
                    "hard_bounds": {"min": 0, "max": 1000},
                }
            }
        },
    }
    status, err = error(client, body)
    assert (status, named(err)) == (400, "aggs.h.histogram.offset")


def test_a_terms_missing_value_that_is_no_number_on_a_numeric_field_is_a_400_naming_it(client):
    # Was: 500 "internal error" when a product lacks the field (the buckets' keys, numbers and "N/A", are compared
    # while ordered: TypeError; on a float field, float("N/A") in embedded_search._order_terms: ValueError). Elasticsearch: 400 (number_format_exception for the missing value of a long field).
    body = {"size": 0, "aggs": {"t": {"terms": {"field": "stock", "missing": "N/A"}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "aggs.t.terms.missing")


# --- a vague 501 where the body is wrong: tantivy refused, the answer names only "aggs" -------------------------


@pytest.mark.parametrize("kind", ["min", "avg", "stats", "extended_stats", "value_count", "cardinality"])
@pytest.mark.parametrize("missing", ["x", True])
def test_a_metric_missing_value_that_is_no_number_is_a_400_naming_it(client, kind, missing):
    # Was: 501 "[aggs] aggregations the embedded index cannot compute" (tantivy refuses the request; the answer
    # names only "aggs"). Elasticsearch: 400, the missing value of a numeric field must be a number. (A date
    # field's is already a 400 naming aggs.<name>.<kind>.missing.)
    status, err = error(client, {"size": 0, "aggs": {"m": {kind: {"field": "price", "missing": missing}}}})
    assert (status, named(err)) == (400, f"aggs.m.{kind}.missing")


def test_a_histogram_offset_that_is_no_number_is_a_400_naming_the_offset(client):
    # Was: 501 naming only "aggs" (tantivy refuses the aggregation). Elasticsearch: 400, the offset is a number.
    body = {"size": 0, "aggs": {"h": {"histogram": {"field": "price", "interval": 100, "offset": "x"}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "aggs.h.histogram.offset")


def test_a_histogram_keyed_that_is_no_boolean_is_a_400_naming_it(client):
    # Was: 501 naming only "aggs" (tantivy refuses the aggregation). Elasticsearch: 400, keyed is a boolean.
    body = {"size": 0, "aggs": {"h": {"histogram": {"field": "price", "interval": 100, "keyed": "x"}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "aggs.h.histogram.keyed")


def knn(**extra: Any) -> dict[str, Any]:
    return {"field": "embedding", "query_vector": VECTOR, "k": 3, "num_candidates": 5, **extra}


def test_a_bad_clause_in_a_named_filters_bucket_is_named_with_both_filters_keys(client):
    # Was: 400 naming "aggs.f.filters.a.range.price.gte": the inner "filters" key the body holds is left out.
    status, err = error(client, {"size": 0, "aggs": {"f": {"filters": {"filters": {"a": BAD_RANGE}}}}})
    assert (status, named(err)) == (400, "aggs.f.filters.filters.a.range.price.gte")


def test_a_sub_aggregation_under_a_filters_aggregation_is_named_with_its_aggs_key(client):
    # Was: 501 naming "aggs.a.sub.filter.nested": the "aggs" key between the aggregation and its sub-aggregation
    # is left out (under a terms aggregation it is kept: aggs.a.aggs.sub...).
    body = {
        "size": 0,
        "aggs": {
            "a": {
                "filters": {"filters": {"x": {"match_all": {}}}},
                "aggs": {"sub": {"filter": {"nested": {"path": "offers", "query": {"match_all": {}}}}}},
            }
        },
    }
    status, err = error(client, body)
    assert (status, named(err)) == (501, "aggs.a.aggs.sub.filter.nested")


def test_an_error_under_aggregations_is_named_under_aggregations(client):
    # Was: 400 naming "aggs.t.terms.size" when the body spells the section "aggregations" (as Elasticsearch's
    # clients do): a path the body does not hold.
    body = {"size": 0, "aggregations": {"t": {"terms": {"field": "brand.keyword", "size": -1}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "aggregations.t.terms.size")


@pytest.mark.parametrize("option, value", [("type", "bogus"), ("no_match_size", "x"), ("fragment_size", "x")])
def test_a_bad_option_at_the_top_of_highlight_is_named_there(client, option, value):
    # Was: 400 naming "highlight.fields.title.<option>"; the body set highlight.<option>, not the field's.
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {option: value, "fields": {"title": {}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, f"highlight.{option}")


@pytest.mark.parametrize("option", ["pre_tags", "post_tags"])
def test_a_bad_tag_list_of_one_highlighted_field_is_named_under_that_field(client, option):
    # Was: 400 naming "highlight.<option>", the top level, which the body did not set.
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": {option: 0}}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, f"highlight.fields.title.{option}")


def test_a_bad_option_of_a_field_in_highlights_list_form_is_named_at_its_index(client):
    # Was: 400 naming "highlight.fields.title.fragment_size"; the body lists the fields (as Elasticsearch allows,
    # to order them), so the option is at highlight.fields[0].title.fragment_size.
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": [{"title": {"fragment_size": "x"}}]}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "highlight.fields[0].title.fragment_size")


# --- a 200 that differs from Elasticsearch's answer ---------------------------------------------------------------


def test_a_bad_clause_in_a_knn_filter_is_named_under_knn_filter(client):
    # Was: 400 naming "query.bool.filter[0].range.price.gte", the clause rewritten into a query the body never
    # sent. Elasticsearch names the knn section's filter.
    status, err = error(client, {"knn": knn(filter=BAD_RANGE)})
    assert (status, named(err)) == (400, "knn.filter.range.price.gte")


def test_an_unsupported_clause_in_a_knn_filter_is_named_under_knn_filter(client):
    # Was: 501 naming "query.bool.filter[0].nested". The body holds it at knn.filter.nested.
    nested = {"nested": {"path": "offers", "query": {"match_all": {}}}}
    status, err = error(client, {"knn": knn(filter=nested)})
    assert (status, named(err)) == (501, "knn.filter.nested")


def test_a_bad_clause_in_a_standard_retrievers_query_is_named_under_the_retriever(client):
    # Was: 400 naming "query.range.price.gte"; the body has no top-level query.
    status, err = error(client, {"retriever": {"standard": {"query": BAD_RANGE}}})
    assert (status, named(err)) == (400, "retriever.standard.query.range.price.gte")


def test_a_bad_clause_in_a_standard_retrievers_filter_is_named_under_the_retriever(client):
    # Was: 400 naming "query.bool.filter[0].range.price.gte".
    body = {"retriever": {"standard": {"query": {"match_all": {}}, "filter": BAD_RANGE}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "retriever.standard.filter.range.price.gte")


def test_a_bad_clause_in_a_knn_retrievers_filter_is_named_under_the_retriever(client):
    # Was: 400 naming "query.bool.filter[0].range.price.gte".
    status, err = error(client, {"retriever": {"knn": knn(filter=BAD_RANGE)}})
    assert (status, named(err)) == (400, "retriever.knn.filter.range.price.gte")


def test_a_terms_order_on_a_stats_value_that_does_not_exist_is_a_400_naming_the_order(client):
    # Was: 501 naming only "aggs" (tantivy refuses it), where an order on a sub-aggregation that does not exist is
    # a 400 naming aggs.b.terms.order.<name>. Elasticsearch: 400 "Invalid aggregation order path [s.nope]".
    body = {
        "size": 0,
        "aggs": {
            "b": {
                "terms": {"field": "brand.keyword", "order": {"s.nope": "desc"}},
                "aggs": {"s": {"stats": {"field": "price"}}},
            }
        },
    }
    status, err = error(client, body)
    assert status == 400
    assert (named(err) or "").startswith("aggs.b.terms.order")


def test_a_malformed_filter_of_an_ignored_function_is_a_400_naming_it(client):
    # Was: 200, the function (and so its filter) being ignored unread. Elasticsearch parses it: 400.
    functions = [{"filter": {"range": {"price": {"gte": "abc"}}}, "weight": 2}]
    body = {"query": {"function_score": {"query": {"match_all": {}}, "functions": functions}}}
    status, err = error(client, body)
    assert (status, named(err)) == (400, "query.function_score.functions[0].filter.range.price.gte")
