"""A boost or weight so large that a score overflows (``3e38``, ``title^1e308``) still gets an answer a browser can
parse: JSON has no NaN or Infinity, and one such search in an ``_msearch`` must not make the other answers in it
unreadable. On both backends."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from both_backends import backend_fixtures

from search_rerank.core.product import Product

CATALOG = [
    Product(id="corner", title="Corner sofa", brand="Acme", price=5.0),
    Product(id="leather", title="Leather sofa with a corner", brand="Bolt", price=6.0),
    Product(id="table", title="Oak table", brand="Bolt", price=15.0),
]
OVERFLOWING = [
    {"match": {"title": {"query": "sofa", "boost": 3e38}}},
    {"multi_match": {"query": "sofa", "fields": ["title^1e308", "brand"]}},
    {"function_score": {"query": {"match": {"title": "sofa"}}, "functions": [{"weight": 1e308}]}},
]


embedded, client = backend_fixtures(CATALOG)


def strict_json(data: bytes) -> Any:
    """The answer as a browser's JSON.parse reads it: NaN and Infinity are no JSON."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"{constant} in the answer")

    return json.loads(data, parse_constant=refuse)


@pytest.mark.parametrize("query", OVERFLOWING, ids=["boost", "field-boost", "weight"])
def test_an_overflowing_score_is_answered_in_json_a_browser_can_parse(client, query):
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 200
    answer = strict_json(response.data)
    assert answer["hits"]["hits"]
    assert math.isfinite(answer["hits"]["max_score"])
    assert all(math.isfinite(hit["_score"]) for hit in answer["hits"]["hits"])


def test_an_overflowing_search_leaves_the_other_searches_of_an_msearch_readable(client):
    lines = [{}, {"query": OVERFLOWING[0]}, {}, {"query": {"match": {"title": "table"}}}]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    response = client.post("/products/_msearch", data=body, content_type="application/x-ndjson")
    assert response.status_code == 200
    answers = strict_json(response.data)["responses"]
    assert answers[1]["hits"]["hits"][0]["_id"] == "table"


def test_a_value_that_is_not_finite_anywhere_in_an_answer_is_written_as_null(embedded):
    answer = {"aggregations": {"avg": {"value": float("nan")}}, "hits": [{"_score": float("inf")}, {"_score": 1.5}]}
    written = embedded.application.json.dumps(answer)
    assert strict_json(written.encode()) == {
        "aggregations": {"avg": {"value": None}},
        "hits": [{"_score": None}, {"_score": 1.5}],
    }


def test_answers_keep_their_objects_order(embedded):
    assert embedded.application.json.dumps({"b": 1, "a": 2}) == '{"b": 1, "a": 2}'
