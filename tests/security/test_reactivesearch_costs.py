"""``POST /<index>/_reactivesearch`` runs bodies it wrote itself: each is held to what a ``_search`` body may be.

A ReactiveSearch request is translated into one Elasticsearch body per executed query (serving/reactivesearch.py),
and a query's ``react`` copies the clause of every query it names into its own body. So a body can be larger and
deeper than the request: a ``react`` naming one query thousands of times holds its clause thousands of times, and
each level of ``react`` nesting is two or three levels of ``bool``. What runs must pass the checks a direct
``_search`` body passes before anything reads it (``service.max_body_bytes``, ``service.max_json_depth``), or the
limits that keep a search's work bounded are only the request's.
"""

from __future__ import annotations

import json
import time

import pytest
from small_service import small_app, small_index


@pytest.fixture(scope="module")
def reactive_client(tmp_path_factory, tiny_bert_dir):
    app, pipeline = small_app(small_index(tmp_path_factory.mktemp("reactivesearch"), tiny_bert_dir))
    yield app.test_client()
    pipeline.close()


def post(client, *queries):
    return client.post("/products/_reactivesearch", json={"query": list(queries)})


def refused_field(response) -> str:
    assert response.status_code == 400, response.get_data(as_text=True)[:500]
    return response.get_json()["error"]["field"]


def test_a_react_naming_one_query_thousands_of_times_is_a_400_not_minutes_of_work(reactive_client):
    # 57 KB of request: 8,000 copies of a 2,000-field search's clauses, a body of hundreds of megabytes, were searched
    # (28 s on the embedded index; on a cluster, serialised and sent).
    named = {"id": "x", "dataField": ["title", "description"] * 1000, "value": "sofa", "execute": False}
    reacting = {"id": "r", "react": {"and": ["x"] * 8000}, "size": 1}
    started = time.perf_counter()
    response = post(reactive_client, named, reacting)
    assert refused_field(response) == "query[1]"
    assert "service.max_body_bytes" in response.get_json()["error"]["reason"]
    assert time.perf_counter() - started < 2


def test_a_body_nested_deeper_by_react_than_a_search_may_be_is_a_400(reactive_client):
    # Within service.max_json_depth as sent (64), 150 levels deep as translated: a direct _search of it is a 400.
    inner = '{"match": {"title": "sofa"}}'
    deep = json.loads('{"bool": {"must": [' * 19 + inner + "]}}" * 19)
    react = json.loads('{"and": [' * 29 + '"x"' + "]}" * 29)
    named = {"id": "x", "customQuery": {"query": deep}, "execute": False}
    response = post(reactive_client, named, {"id": "r", "react": react})
    assert refused_field(response) == "query[1]"
    assert "service.max_json_depth" in response.get_json()["error"]["reason"]
