"""Front-end bodies at their edges: the smallest of the requests a probe found by mutating the compatibility suite's
bodies (every node replaced, deleted, renamed or given a sibling; test_body_mutations.py runs a sample of them) that
broke the rule, each now answered as Elasticsearch answers it.

The rule: bad input is a 400 naming the field (never a 5xx), an Elasticsearch feature the service does not serve a
501 naming the part, and what Elasticsearch answers is answered. Each test runs on both backends (``service``) unless
the cluster's own answer is what is tested; the docstring says what Elasticsearch does.
"""

from __future__ import annotations

import json

import pytest

SEARCH = "/products/_search"
COUNT = "/products/_count"
LEAKS = ("Traceback", "Exception:", "http://", "127.0.0.1", "KeyError", "TypeError", "AttributeError", "ValueError")


def post(client, body, path=SEARCH):
    return client.post(path, data=json.dumps(body), content_type="application/json")


def error_of(response) -> dict:
    body = response.get_json(silent=True) or {}
    return body.get("error") if isinstance(body.get("error"), dict) else {}


def assert_400_naming(response, *names: str) -> None:
    """A 400 whose field (or reason) names one of ``names``, and no internals in the body."""
    text = response.get_data(as_text=True)
    assert response.status_code == 400, text[:500]
    assert not [leak for leak in LEAKS if leak in text], text[:500]
    error = error_of(response)
    said = f"{error.get('field')} {error.get('reason')}"
    assert any(name in said for name in names), said


# ------------------------------------------------------------------ 5xx on bad input (the rule broken outright)


@pytest.mark.parametrize("kind", [[], {}, ["best_fields"]])
@pytest.mark.parametrize("path", [SEARCH, COUNT])
def test_a_multi_match_type_that_is_not_a_string_is_a_400_naming_it(service, kind, path):
    """Elasticsearch: 400 parsing_exception "[multi_match] unknown token [START_ARRAY] after [type]".
    Embedded: 500, TypeError: unhashable type: 'list'/'dict' at search_rerank/serving/embedded_search.py:748
    (``spec.get("type") in PREFIX_TYPES``, the type never checked to be a string). OpenSearch backend: 400."""
    body = {"query": {"multi_match": {"query": "sofa", "fields": ["title"], "type": kind}}}
    assert_400_naming(post(service, body, path), "type")


@pytest.mark.parametrize("missing", [-1, 0, 1e308, 2**63])
def test_a_number_as_the_missing_value_of_a_terms_aggregation_on_a_keyword_field_is_answered(service, missing):
    """Elasticsearch: 200; the products without a colour are counted in a bucket keyed by the value as the keyword
    field formats it ("-1"). Embedded: 500, TypeError: '<' not supported between instances of 'int' and 'str' at
    search_rerank/serving/es_compat.py:134 (order_buckets sorts the string keys with the numeric missing key).
    OpenSearch backend: 200."""
    body = {"size": 0, "aggs": {"c": {"terms": {"field": "color.keyword", "missing": missing}}}}
    response = post(service, body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    keys = [str(bucket["key"]) for bucket in response.get_json()["aggregations"]["c"]["buckets"]]
    assert len(keys) >= 2, keys


@pytest.mark.parametrize("by", ["_COUNT", "_KEY"])
def test_a_terms_order_by_an_unknown_path_is_a_400_naming_the_order(service, by):
    """Elasticsearch 8: 400 (AggregationExecutionException.InvalidPath "Invalid aggregation order path [_COUNT].
    The provided aggregation [_COUNT] either does not exist, or is a pipeline aggregation..."): a client's mistake.
    OpenSearch backend: 502 bad_gateway "the cluster failed the search (error)" (the cluster answered 500; its 5xx
    becomes a 502 at search_rerank/serving/delegation.py:1314 cluster_error), a 5xx for bad input. Embedded: 501
    "[aggs] aggregations the embedded index cannot compute" (tantivy: could not find aggregation with name _COUNT),
    a 501 for what is no feature at all."""
    body = {"size": 0, "aggs": {"b": {"terms": {"field": "brand.keyword", "order": {by: "desc"}}}}}
    assert_400_naming(post(service, body), "order", by)


@pytest.mark.parametrize("value", [["sofa"], []])
def test_a_match_query_on_a_list_is_a_400_naming_the_field(embedded_client, value):
    """Elasticsearch: 400 parsing_exception "[match] unknown token [START_ARRAY] after [title]". On the cluster
    backend the query goes to the cluster as sent, and Elasticsearch's 400 is passed on as one (osmem-server, the
    tests' cluster, answers a 500 of its own, which is a 502 here: not run there)."""
    assert_400_naming(post(embedded_client, {"query": {"match": {"title": value}}}), "title", "match")


def test_a_huge_histogram_offset_is_never_a_5xx(embedded_client):
    """Elasticsearch reads ``offset`` as a double: 2**63 is a number (a 200, or at worst a 400 naming offset). On
    the cluster backend the aggregation is the cluster's (osmem-server answers a 503 of its own: not run there)."""
    body = {"size": 0, "aggs": {"p": {"histogram": {"field": "price", "interval": 100, "offset": 2**63}}}}
    response = post(embedded_client, body)
    assert response.status_code in (200, 400), response.get_data(as_text=True)[:500]


# ------------------------------------------------------------------ a 400 naming the wrong part


def test_a_bad_query_beside_aggregations_is_blamed_on_the_query(service):
    """Elasticsearch: 400 naming the multi_match type ("failed to parse [multi_match] query type [NaN]").
    OpenSearch backend: 400 with ``field: "aggs"`` and reason "[aggs] x_content_parse_exception: [bool] failed to
    parse field [must]": the aggregations' own request to the cluster carries the query too, and its 400 is blamed on
    aggs whatever it is about (search_rerank/serving/aggregations.py:112, ``InvalidQuery("aggs", reason)``).
    Embedded: 200 (the type is not checked: see the next tests)."""
    body = {
        "query": {"bool": {"must": [{"multi_match": {"query": "sofa", "fields": ["title"], "type": "NaN"}}]}},
        "aggs": {"f": {"filter": {"bool": {"must": [{"match_all": {}}]}}}},
    }
    response = post(service, body)
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    assert str(error_of(response).get("field")).startswith("query"), error_of(response)


# ------------------------------------------------------------------ bad input answered 200 (embedded)


@pytest.mark.parametrize(
    "query, name",
    [
        ({"multi_match": {"query": "sofa", "fields": ["title"], "type": "NaN"}}, "type"),
        ({"multi_match": {"query": "sofa", "fields": ["title"], "operator": "NaN"}}, "operator"),
        ({"match": {"title": {"query": "sofa", "operator": "NaN"}}}, "operator"),
        ({"multi_match": {"query": "sofa", "fields": ["title"], "unknown_key": 1}}, "unknown_key"),
        ({"match_all": -1}, "match_all"),
    ],
)
def test_an_invalid_option_of_a_full_text_query_is_a_400_naming_it(service, query, name):
    """Elasticsearch: 400 ("failed to parse [multi_match] query type [NaN]", "Unknown operator [NaN]",
    "[multi_match] query does not support [unknown_key]", "[match_all] query malformed, no start_object after query
    name"). Embedded: 200, the option ignored (search_rerank/serving/embedded_search.py:738-748 reads ``operator`` as
    ``str(...).lower() == "and"`` and ``type`` by membership; unknown keys and a non-object match_all are not
    checked). OpenSearch backend: 400 (the cluster's)."""
    assert_400_naming(post(service, {"query": query}), name, "query")


# ------------------------------------------------------------------ what Elasticsearch answers, refused (lesser)


def test_star_colon_star_in_q_matches_all(service):
    """``q=*:*`` is Lucene's match-all: Elasticsearch answers 200 with every product. Embedded: 501
    "[query.query_string.query] *: (exists queries)". OpenSearch backend: 200."""
    response = service.get(f"{SEARCH}?q=*:*")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert response.get_json()["hits"]["total"]["value"] > 0


def test_a_regexp_with_a_repetition_in_q_is_read_as_a_regexp(service):
    """``q=title:/so{1,2}fa/`` is a regexp query in Elasticsearch: 200 (the sofas). Both backends: 400
    "[query.query_string.query] a range at position 9 is not [low TO high]": the ``{`` inside ``/.../`` is read as a
    range's start (search_rerank/serving/query_string.py). A 501 naming the regexp would do on embedded."""
    response = service.get(f"{SEARCH}?q=title:/so%7B1,2%7Dfa/")
    assert response.status_code in (200, 501), response.get_data(as_text=True)[:500]


@pytest.mark.parametrize("option", [{"size": "5"}, {"skip_duplicates": "true"}])
def test_a_completion_option_given_as_a_string_is_read_as_elasticsearch_reads_it(service, option):
    """Elasticsearch's parser coerces "5" to an int and "true" to a boolean: 200. Both backends: 400
    "[suggest.s.completion.size] expected a whole number from 1 to 100" / "...skip_duplicates] expected true or
    false"."""
    body = {"suggest": {"s": {"prefix": "so", "completion": {"field": "title", **option}}}}
    response = post(service, body)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


@pytest.mark.parametrize(
    "terms",
    [{"field": "brand.keyword", "order": []}, {"field": "color.keyword", "missing": True}],
    ids=["order-empty-list", "missing-true"],
)
def test_a_valid_terms_aggregation_is_answered(service, terms):
    """Elasticsearch: 200 (an empty order list is the default order; ``missing: true`` on a keyword field is the
    key "true"). Embedded: 501 "[aggs] aggregations the embedded index cannot compute" (tantivy refused: "unexpected
    empty array in order", "data did not match any variant of untagged enum Key"). OpenSearch backend: 200."""
    response = post(service, {"size": 0, "aggs": {"t": {"terms": terms}}})
    assert response.status_code == 200, response.get_data(as_text=True)[:500]


# ------------------------------------------------------------------ URI parameters Elasticsearch refuses


@pytest.mark.parametrize(
    "query",
    [
        "search_type=nope",
        "expand_wildcards=nope",
        "timeout=abc",
        "request_cache=maybe",
        "allow_partial_search_results=maybe",
        "q=title:a%5Eabc",
        "size=%2010",
    ],
)
def test_an_invalid_uri_parameter_value_is_a_400_naming_it(service, query):
    """Elasticsearch: 400 for each ("No search type for [nope]", "No valid expand wildcard value [nope]", "failed to
    parse setting [timeout] with value [abc]", strict Booleans.parseBoolean, a Lucene syntax error on ``^abc``,
    Integer.parseInt(" 10")). Both backends: 200, the value ignored (``q=title:a^abc``: the OpenSearch backend
    answers 400 naming query). (default_operator, analyze_wildcard and lenient are checked, as they should be, when
    there is a q.)"""
    response = service.get(f"{SEARCH}?{query}")
    assert response.status_code == 400, response.get_data(as_text=True)[:300]


@pytest.mark.parametrize("flag", ["rest_total_hits_as_int", "allow_no_indices", "ignore_unavailable", "typed_keys"])
def test_a_multi_search_with_a_boolean_uri_parameter_that_is_no_boolean_is_refused_whole(service, flag):
    """Elasticsearch refuses the whole multi-search with a 400 (Booleans.parseBoolean), not each search in it."""
    ndjson = '{}\n{"query": {"match_all": {}}}\n'
    response = service.post(f"/_msearch?{flag}=maybe", data=ndjson, content_type="application/x-ndjson")
    assert_400_naming(response, flag)
