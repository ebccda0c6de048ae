"""Searchkick's bodies (ankane/searchkick lib/searchkick/query.rb: what Spree and Solidus shops send) on both
backends, its index's names aliased onto the product's: ``*.analyzed`` where a shop names no fields, and
``boost_where``'s function filter written as a list of one query."""

from __future__ import annotations

from both_backends import backend_fixtures, filtered, search

from search_rerank.core.product import Product

CATALOG = [
    Product(id="p1", title="Grey sofa", brand="Acme", description="a roomy sofa", price=499.0),
    Product(id="p2", title="Red lamp", brand="Bolt", description="lights a sofa corner", price=39.0),
    Product(id="p3", title="Oak table", brand="Bolt", price=249.0),
]
ALIASES = {"name": "title", "name.analyzed": "title", "description.analyzed": "description"}

embedded, client = backend_fixtures(CATALOG, field_aliases=ALIASES)


def test_a_search_of_every_analyzed_field_searches_the_fields_their_names_are_aliased_to(client):
    clause = {"multi_match": {"query": "sofa", "fields": ["*.analyzed"], "operator": "and"}}
    assert filtered(client, clause) == ["p1", "p2"]


def test_a_function_filter_written_as_a_list_of_one_query_is_that_query(client):
    """Searchkick's ``boost_where``: ``"filter": [{"term": ...}]``, which Elasticsearch's parser takes."""
    boosted = {"filter": [{"term": {"brand.keyword": {"value": "Bolt"}}}], "weight": 1000}
    query = {
        "function_score": {"query": {"match": {"name.analyzed": "sofa"}}, "functions": [boosted], "score_mode": "sum"}
    }
    assert filtered(client, query) == ["p1"]  # it was a 400 on both backends
    assert search(client, {"query": query})["hits"]["hits"]
