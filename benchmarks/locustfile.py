"""The shoppers of the load test (issue 4): run by ``benchmarks/load_test.py``, which writes the workload.

    locust -f benchmarks/locustfile.py --headless -u 8 -r 8 -t 120s --host http://127.0.0.1:PORT

``LOAD_TEST_WORKLOAD`` names a JSON file of test-split queries, each with its
``frequency`` from queries.jsonl (a power law: head queries are sent far more
often than tail ones) and a category and price cap that its relevant products
fall under, so that a filtered search still finds something. The mix:

* ``search``: ``POST /search``, the query alone;
* ``search+filters``: ``POST /search`` with a category prefix and a price cap;
* ``search page 2``: ``POST /search`` with ``from=10`` (the shopper pages on);
* ``es _search`` / ``es _search+filters``: ``POST /products/_search`` with the body
  Elastic Search UI's connector builds (a ``bool.must`` of four ``multi_match``
  alternatives, ``_source`` includes, ``sort: _score``; filters as its
  ``bool.filter`` of a category term and a ``should`` of price ranges).

Users wait for nothing between searches (a closed loop): the concurrency is the
user count. An answer counts as failed unless it is a 200 with a JSON body of the
expected shape; degraded answers (a leg or the reranker late or failed) are
answers, counted by the server's metrics, not here.
"""

from __future__ import annotations

import itertools
import json
import os
import random

from locust import FastHttpUser, constant, task

with open(os.environ["LOAD_TEST_WORKLOAD"], encoding="utf-8") as f:
    QUERIES = json.load(f)["queries"]
CUMULATIVE = list(itertools.accumulate(q["frequency"] for q in QUERIES))
SEARCH_FIELDS = ["title^3", "brand^2", "description^1"]


def pick() -> dict:
    return random.choices(QUERIES, cum_weights=CUMULATIVE)[0]


def search_ui_body(text: str, filters: dict | None, size: int = 10, offset: int = 0) -> dict:
    """What @elastic/search-ui-elasticsearch-connector's SearchQueryBuilder sends (no facets, no highlight)."""
    alternatives = [
        {"multi_match": {"fields": SEARCH_FIELDS, "operator": "and", "query": text, "type": "best_fields"}},
        {"multi_match": {"fields": SEARCH_FIELDS, "query": text, "type": "cross_fields"}},
        {"multi_match": {"fields": SEARCH_FIELDS, "query": text, "type": "phrase"}},
        {"multi_match": {"fields": SEARCH_FIELDS, "query": text, "type": "phrase_prefix"}},
    ]
    query: dict = {"bool": {"must": [{"bool": {"minimum_should_match": 1, "should": alternatives}}]}}
    if filters:
        cap = filters["price_max"]
        query["bool"]["filter"] = [
            {"bool": {"filter": [{"term": {"category.keyword": filters["category"]}}]}},
            {
                "bool": {
                    "should": [
                        {"range": {"price": {"gte": 0, "lte": cap / 2}}},
                        {"range": {"price": {"gte": cap / 2, "lte": cap}}},
                    ]
                }
            },
        ]
    return {
        "_source": {"includes": ["title", "brand", "category", "price"]},
        "from": offset,
        "query": query,
        "size": size,
        "sort": "_score",
    }


class Shopper(FastHttpUser):
    wait_time = constant(0)

    def _post(self, path: str, body: dict, name: str, hits_key: str) -> None:
        with self.client.post(path, json=body, name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"HTTP {response.status_code}: {(response.text or '')[:200]}")
                return
            try:
                answer = response.json()
            except ValueError:
                response.failure("not JSON")
                return
            hits = answer.get(hits_key)
            if hits_key == "hits" and isinstance(hits, dict):  # Elasticsearch's hits.hits
                hits = hits.get("hits")
            if not isinstance(hits, list):
                response.failure(f"no {hits_key} list in the answer")
            else:
                response.success()

    @task(5)
    def search(self) -> None:
        self._post("/search", {"query": pick()["text"], "size": 10}, "search", "hits")

    @task(2)
    def search_filtered(self) -> None:
        q = pick()
        f = q["filters"]
        self._post(
            "/search",
            {"query": q["text"], "size": 10, "filters": {"category": f["category"], "price_max": f["price_max"]}},
            "search+filters",
            "hits",
        )

    @task(1)
    def page_two(self) -> None:
        self._post("/search", {"query": pick()["text"], "size": 10, "from": 10}, "search page 2", "hits")

    @task(1)
    def es_search(self) -> None:
        self._post("/products/_search", search_ui_body(pick()["text"], None), "es _search", "hits")

    @task(1)
    def es_search_filtered(self) -> None:
        q = pick()
        self._post("/products/_search", search_ui_body(q["text"], q["filters"]), "es _search+filters", "hits")
