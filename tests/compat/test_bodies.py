"""Request bodies from real front ends (bodies/*.json, each citing the library source it was taken from),
on the embedded (tantivy) backend and on the OpenSearch backend over osmem-server.

Each is answered in Elasticsearch's response shape with the hits, facets, highlights and order that
Elasticsearch would give on the suite's catalog, or gets a 501 naming the part that the backend cannot
honour; never a wrong answer, never a 5xx (see compat_suite.judge for what is checked).
"""

from __future__ import annotations

import uuid

import pytest
import requests
from compat_suite import (
    ANSWERED,
    UNSUPPORTED,
    Case,
    cases,
    embedded_app,
    judge,
    opensearch_app,
    reference_index,
    run,
    searches,
)

CASES = cases()


@pytest.fixture(scope="module")
def embedded_client(tmp_path_factory):
    app, pipeline = embedded_app(tmp_path_factory.mktemp("compat-embedded"))
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def opensearch_client(tmp_path_factory, osmem_server_url):
    with opensearch_app(tmp_path_factory.mktemp("compat-opensearch"), osmem_server_url) as app:
        yield app.test_client()


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
    for case in CASES:
        for item, body in enumerate(searches(case)):
            answer = requests.post(f"{reference}/_search", json=body, timeout=30)
            if answer.status_code == 200:
                assert judge(case, answer.json(), item) == [], case.name
                checked += 1
    assert checked >= 12
