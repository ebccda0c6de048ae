"""A fuzzy word's counts as Elasticsearch reads them: a negative ``prefix_length`` or no ``max_expansions`` at all
is the body's 400 naming the option, on the embedded backend and on a cluster alike, never a cluster's own error
(a 502, counted against its breaker as the cluster failing). Counts it can hold are searched as before."""

from __future__ import annotations

import pytest
from both_backends import BACKENDS, backend_client, ids, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="leather", title="Leather sofa", brand="Acme"),
    Product(id="table", title="Oak table", brand="Bolt"),
]

REFUSED = [
    ({"match": {"title": {"query": "sofa", "fuzziness": 1, "prefix_length": -1}}}, "query.match.title.prefix_length"),
    ({"match": {"title": {"query": "sofa", "fuzziness": 1, "max_expansions": 0}}}, "query.match.title.max_expansions"),
    (
        {"match_phrase_prefix": {"title": {"query": "so", "max_expansions": -3}}},
        "query.match_phrase_prefix.title.max_expansions",
    ),
    ({"fuzzy": {"title": {"value": "sofa", "prefix_length": "-2"}}}, "query.fuzzy.title.prefix_length"),
    (
        {"multi_match": {"query": "sofa", "fields": ["title"], "fuzziness": "AUTO", "prefix_length": -1}},
        "query.multi_match.prefix_length",
    ),
    ({"query_string": {"query": "sofa~1", "fuzzy_prefix_length": -1}}, "query.query_string.fuzzy_prefix_length"),
    (
        {"simple_query_string": {"query": "sofa~1", "fuzzy_max_expansions": 0}},
        "query.simple_query_string.fuzzy_max_expansions",
    ),
    (
        {"bool": {"filter": [{"match": {"title": {"query": "sofa", "fuzziness": 1, "prefix_length": 1.5}}}]}},
        "query.bool.filter[0].match.title.prefix_length",
    ),
]


@pytest.fixture(scope="module")
def embedded(catalog_client):
    return catalog_client(CATALOG)


@pytest.fixture(params=BACKENDS)
def client(request):
    return backend_client(request, CATALOG)


@pytest.mark.parametrize(("query", "field"), REFUSED, ids=[field for _, field in REFUSED])
def test_a_fuzzy_count_elasticsearch_refuses_is_a_400_naming_it(client, query, field):
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 400, response.get_json()
    assert field in response.get_data(as_text=True)


def test_counts_it_can_hold_search_as_before(client):
    query = {"match": {"title": {"query": "sofaa", "fuzziness": 1, "prefix_length": "0", "max_expansions": 10}}}
    assert ids(search(client, {"query": {"bool": {"filter": [query]}}})) == ["leather"]
