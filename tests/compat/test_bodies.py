"""Request bodies from real front ends (bodies/*.json, each citing the library source it was taken from),
on the embedded (tantivy) backend and on the OpenSearch backend over osmem-server.

Each is answered in Elasticsearch's response shape with the hits, facets, highlights and order that
Elasticsearch would give on the suite's catalog, or gets a 501 naming the part that the backend cannot
honour; never a wrong answer, never a 5xx (see compat_suite.judge for what is checked).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import pytest
import requests
from compat_suite import (
    ANSWERED,
    UNSUPPORTED,
    Case,
    cases,
    judge,
    reference_index,
    run,
    searches,
    without_id_doc_values,
)
from prometheus_client import REGISTRY

CASES = cases()


@pytest.fixture(scope="module")
def reference(osmem_server_url):
    """A shop's own index of the suite's catalog, mapped as front ends expect, on osmem-server."""
    return reference_index(osmem_server_url, f"compat-reference-{uuid.uuid4().hex[:8]}")


FRONT_ENDS = {
    "elastic/search-ui": "search_ui_",
    "searchkit/searchkit": "searchkit_",
    "appbaseio/reactivesearch": "reactivesearch_",
    "querqy/chorus-elasticsearch-edition": "chorus_",
    "spryker/search-elasticsearch": "spryker_",
    "spryker/spryker-docs": "spryker_",
    "elastic/elasticsearch": "elastic_",
    "magento/magento2": "magento_",
    "10up/ElasticPress": "elasticpress_",
}


def test_the_suite_holds_bodies_of_five_front_ends_each_citing_its_source():
    assert len(CASES) >= 35
    assert {case.source.split()[0] for case in CASES} >= set(FRONT_ENDS) - {"spryker/spryker-docs"}
    for case in CASES:
        # "<owner>/<repository> <path in it> (...)": a body names the repository and the file it was read from.
        repository, path = case.source.split()[:2]
        assert case.name.startswith(FRONT_ENDS[repository]) and "/" in path and "." in path, case.name
    for prefix in ("reactivesearch_", "chorus_", "spryker_"):
        assert sum(case.name.startswith(prefix) for case in CASES) >= 4, prefix


def expect_known_gap(request, case: Case, backend: str) -> None:
    """A body the backend is known to answer wrongly (its ``known_gaps`` says why) is an expected failure, strictly:
    once the backend answers it right the test fails, so that the note is removed."""
    gap = case.spec.get("known_gaps", {}).get(backend)
    if gap is not None:
        request.applymarker(pytest.mark.xfail(reason=gap, strict=True))


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_front_end_body_is_answered_right_or_named_unsupported_on_the_embedded_backend(request, embedded_client, case):
    expect_known_gap(request, case, "embedded")
    outcome = run(embedded_client, case)
    assert outcome.outcome in (ANSWERED, UNSUPPORTED), outcome.reasons


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_front_end_body_is_answered_right_or_named_unsupported_on_the_opensearch_backend(
    request, opensearch_client, case
):
    expect_known_gap(request, case, "opensearch")
    outcome = run(opensearch_client, case)
    assert outcome.outcome in (ANSWERED, UNSUPPORTED), outcome.reasons


def test_expectations_are_what_a_reference_engine_answers(reference):
    """The suite's ``expect`` blocks were written by hand: each body that osmem-server can answer must get them
    there too (it cannot answer an empty ``fields`` list, ``pinned`` or ``suggest`` on this mapping)."""
    checked = 0
    for case in map(without_id_doc_values, CASES):
        for item, body in enumerate(searches(case)):
            answer = requests.post(f"{reference}/_search", json=body, timeout=30)
            if answer.status_code == 200:
                assert judge(case, answer.json(), item) == [], case.name
                checked += 1
    assert checked >= 12


# ReactiveSearch 4's own requests, captured in Chromium from frontend/src/reactivesearch.js: the browser tests need
# them answered, so a 501 is a failure for them.
CAPTURED = [case for case in CASES if case.name.startswith("reactivesearch_real_")]


@pytest.mark.parametrize("case", CAPTURED, ids=[case.name for case in CAPTURED])
def test_a_request_the_reactivesearch_page_sends_is_answered_not_named_unsupported(service, case):
    outcome = run(service, case)
    assert outcome.outcome == ANSWERED, outcome.reasons


# The official clients' URI parameters ---------------------------------------------------------------------


def both(service, reference: str, endpoint: str, body, **params) -> tuple[Any, Any]:
    """The service's and the reference engine's answers (status, JSON) to one request to ``endpoint``
    (``_search`` with a JSON body, ``_msearch`` with a list of header and body lines)."""
    if endpoint == "_msearch":
        data, kind = "".join(json.dumps(line) + "\n" for line in body), "application/x-ndjson"
    else:
        data, kind = json.dumps(body), "application/json"
    ours = service.post(f"/products/{endpoint}", data=data, content_type=kind, query_string=params)
    theirs = requests.post(
        f"{reference}/{endpoint}", data=data, headers={"Content-Type": kind}, params=params, timeout=30
    )
    return (ours.status_code, by_id(ours.get_json())), (theirs.status_code, by_id(theirs.json()))


def answered_within(service, seconds: float, body: Any, **params) -> bool:
    """Whether the service answers a ``_search`` within ``seconds``: timed alone, since the reference engine
    may take its own time over the same request (its filter_path matching is not ours)."""
    started = time.perf_counter()
    service.post("/products/_search", json=body, query_string=params)
    return time.perf_counter() - started < seconds


def by_id(answer: Any) -> Any:
    """``answer`` with every list of hits in ``_id`` order: the pipeline ranks, so the order is not the reference's."""
    if isinstance(answer, dict):
        return {
            k: sorted(v, key=lambda h: h["_id"]) if k == "hits" and isinstance(v, list) else by_id(v)
            for k, v in answer.items()
        }
    if isinstance(answer, list):
        return [by_id(item) for item in answer]
    return answer


LAMPS = {"query": {"match": {"title": "lamp"}}, "_source": ["title"]}


def test_filter_path_keeps_only_the_named_parts_of_a_search_answer(service, reference):
    # @elastic/elasticsearch's helpers.search sends this filter_path with every search.
    ours, theirs = both(service, reference, "_search", LAMPS, filter_path="hits.hits._id,hits.hits._source")
    assert (
        ours
        == theirs
        == (
            200,
            {
                "hits": {
                    "hits": [
                        {"_id": "l1", "_source": {"title": "Desk lamp"}},
                        {"_id": "l2", "_source": {"title": "Floor lamp"}},
                    ]
                }
            },
        )
    )


def test_filter_path_of_parts_an_answer_does_not_hold_answers_an_empty_object(service, reference):
    nothing = {"query": {"match": {"title": "zebra"}}}
    assert both(service, reference, "_search", nothing, filter_path="hits.hits._id") == ((200, {}), (200, {}))


def test_filter_path_with_a_minus_leaves_those_parts_out(service, reference):
    body = {**LAMPS, "aggs": {"none": {"filter": {"term": {"brand.keyword": "Zeta"}}}}}
    left_out = "-hits.hits._index,-hits.hits._source,-hits.hits._score,-hits.max_score,-took,-_shards,-search_rerank"
    ours, theirs = both(service, reference, "_search", body, filter_path=left_out)
    assert ours == theirs
    assert ours[1]["aggregations"] == {"none": {"doc_count": 0}}


def test_filter_path_double_wildcard_matches_at_any_depth(service, reference):
    brands = {"size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword", "size": 2}}}}
    ours, theirs = both(service, reference, "_search", brands, filter_path="**.key,**.doc_count")
    assert ours == theirs
    assert ours[1] == {
        "aggregations": {"brands": {"buckets": [{"key": "Acme", "doc_count": 4}, {"key": "Bolt", "doc_count": 3}]}}
    }


def test_filter_path_of_double_wildcards_in_a_row_matches_as_one(service, reference):
    # Each ** was followed both here and deeper: 22 of them took 3 s of a worker, a few more took minutes.
    # (The reference engine answers {} for ** twice in a row; a ** matches at any depth, so a second adds nothing.)
    brands = {"size": 0, "aggs": {"brands": {"terms": {"field": "brand.keyword", "size": 2}}}}
    assert answered_within(service, 10, brands, filter_path="**." * 30 + "key")
    repeated, _ = both(service, reference, "_search", brands, filter_path="**." * 30 + "key")
    once, theirs = both(service, reference, "_search", brands, filter_path="**.key")
    assert repeated == once == theirs
    assert once[1] == {"aggregations": {"brands": {"buckets": [{"key": "Acme"}, {"key": "Bolt"}]}}}


def test_filter_path_stars_within_a_name_match_in_time_linear_in_the_name(service, reference):
    # As a regular expression, *a*a*a*a*a*b against an aggregation named by a hundred and twenty a took 6.6 s.
    named = {"size": 0, "aggs": {"a" * 120: {"max": {"field": "price"}}, "aaaaab": {"max": {"field": "price"}}}}
    assert answered_within(service, 10, named, filter_path="aggregations.*a*a*a*a*a*b")
    ours, theirs = both(service, reference, "_search", named, filter_path="aggregations.*a*a*a*a*a*b")
    assert ours == theirs and list(ours[1]["aggregations"]) == ["aaaaab"]


def test_filter_path_of_more_paths_than_a_client_sends_is_a_400_naming_it(service):
    paths = ",".join(f"**.x{i}" for i in range(65))
    response = service.post(f"/products/_search?filter_path={paths}", json=LAMPS)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "filter_path"


@pytest.mark.parametrize("path", ["_search", "_msearch"])
def test_a_filter_path_refused_costs_no_search(service, path):
    """The answer would be refused for its filter_path whatever the search found: checked first, the
    searches it asks for (a multi-search's up to 50 whole pipelines) are never run."""
    ran = REGISTRY.get_sample_value("search_rerank_stage_seconds_count", {"stage": "lexical"}) or 0.0
    paths = ",".join(f"**.x{i}" for i in range(65))
    never_cached = {"query": {"match": {"title": f"lamp {uuid.uuid4().hex}"}}}
    if path == "_search":
        response = service.post(f"/products/_search?filter_path={paths}", json=never_cached)
    else:
        ndjson = "".join(json.dumps(line) + "\n" for line in [{}, never_cached] * 3)
        response = service.post(
            f"/products/_msearch?filter_path={paths}", data=ndjson, content_type="application/x-ndjson"
        )
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "filter_path"
    assert (REGISTRY.get_sample_value("search_rerank_stage_seconds_count", {"stage": "lexical"}) or 0.0) == ran


def test_filter_path_applies_to_a_multi_search_answer_as_a_whole(service, reference):
    lines = [{}, LAMPS, {}, {"query": {"match": {"title": "sofa"}}}]
    ours, theirs = both(
        service, reference, "_msearch", lines, filter_path="responses.hits.total.value,responses.status"
    )
    assert ours == theirs
    assert [r["hits"]["total"]["value"] for r in ours[1]["responses"]] == [2, 5]


def test_rest_total_hits_as_int_answers_the_total_as_a_number(service, reference):
    ours, theirs = both(service, reference, "_search", LAMPS, rest_total_hits_as_int="true")
    assert ours[0] == theirs[0] == 200
    assert ours[1]["hits"]["total"] == theirs[1]["hits"]["total"] == 2


def test_rest_total_hits_as_int_answers_each_total_of_a_multi_search_as_a_number(service, reference):
    lines = [{}, LAMPS, {}, {"query": {"match": {"title": "sofa"}}}]
    ours, theirs = both(service, reference, "_msearch", lines, rest_total_hits_as_int="true")
    assert [r["hits"]["total"] for r in ours[1]["responses"]] == [r["hits"]["total"] for r in theirs[1]["responses"]]
    assert [r["hits"]["total"] for r in ours[1]["responses"]] == [2, 5]


@pytest.mark.parametrize("bound", [5, 1, 0])  # 1 and 0 are True and False to Python, not to Elasticsearch
def test_rest_total_hits_as_int_with_a_lower_bound_for_the_total_is_a_400(service, reference, bound):
    bounded = {**LAMPS, "track_total_hits": bound}
    ours, theirs = both(service, reference, "_search", bounded, rest_total_hits_as_int="true")
    assert ours[0] == theirs[0] == 400
    assert "rest_total_hits_as_int" in ours[1]["error"]["reason"]
