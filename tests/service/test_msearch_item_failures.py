"""A search of a multi-search that fails by a fault of the service's own is answered alone, as Elasticsearch fails
a multi-search's items one by one: the other searches of the request (a Searchkit page's facets beside its hits)
still reach the page, and the failed one says no more than the request id."""

from __future__ import annotations

import json

import pytest

from search_rerank.core.product import Product
from search_rerank.serving import es_api

CATALOG = [Product(id="sofa", title="Corner sofa"), Product(id="table", title="Oak table")]
FAULT = "fault at http://10.0.0.7:9200 in a worker"


@pytest.fixture
def client(catalog_client, monkeypatch):
    """The app, with a fault injected into the searches of ``size`` 7 only."""
    real = es_api._es_search

    def faulty(index, body, params, deadline):
        if body.get("size") == 7:
            raise RuntimeError(FAULT)
        return real(index, body, params, deadline)

    monkeypatch.setattr(es_api, "_es_search", faulty)
    return catalog_client(CATALOG)


def msearch(client, *bodies):
    lines = "".join(json.dumps(line) + "\n" for body in bodies for line in ({}, body))
    return client.post("/products/_msearch", data=lines, content_type="application/x-ndjson")


def test_the_other_searches_of_a_multi_search_are_answered_beside_a_failed_one(client):
    response = msearch(
        client, {"size": 7, "query": {"match": {"title": "sofa"}}}, {"query": {"match": {"title": "oak"}}}
    )
    assert response.status_code == 200
    failed, answered = response.get_json()["responses"]
    assert failed["status"] == 500
    assert answered["status"] == 200
    assert answered["hits"]["hits"][0]["_id"] == "table"


def test_a_failed_search_of_a_multi_search_shows_nothing_of_the_fault(client):
    response = msearch(client, {"size": 7})
    text = response.get_data(as_text=True)
    assert "10.0.0.7" not in text and "RuntimeError" not in text and "fault" not in text
    assert "request id" in response.get_json()["responses"][0]["error"]["reason"]
