"""A ``terms`` aggregation's ``include`` and ``exclude`` patterns, read as Lucene reads them, on each backend: what a
searchable facet (Searchkit's refinementList with ``searchable``) sends for what a shopper types into it."""

from __future__ import annotations

import time
import uuid

import pytest
import requests
from compat_suite import ANSWERED, cases, reference_index, run

from search_rerank.serving.lucene_regexp import to_tantivy

SEARCHKIT_THREE_LETTERS = next(case for case in cases() if case.name == "searchkit_facet_value_search_of_three_letters")


@pytest.fixture(scope="module")
def reference(osmem_server_url):
    """A shop's own index of the suite's catalog on osmem-server, whose regular expressions are Lucene's."""
    return reference_index(osmem_server_url, f"compat-include-{uuid.uuid4().hex[:8]}")


def brand_buckets(client_or_url, **terms) -> tuple[int, dict[str, int] | None]:
    body = {"size": 0, "aggs": {"brand": {"terms": {"field": "brand.keyword", **terms}}}}
    if isinstance(client_or_url, str):
        answer = requests.post(f"{client_or_url}/_search", json=body, timeout=30)
        status, json = answer.status_code, answer.json()
    else:
        answer = client_or_url.post("/products/_search", json=body)
        status, json = answer.status_code, answer.get_json()
    if status != 200:
        return status, None
    return status, {bucket["key"]: bucket["doc_count"] for bucket in json["aggregations"]["brand"]["buckets"]}


def test_searchkits_facet_value_search_of_three_letters_finds_the_values_beginning_with_them(service):
    outcome = run(service, SEARCHKIT_THREE_LETTERS)
    assert outcome.outcome == ANSWERED, outcome.reasons


@pytest.mark.parametrize(
    "pattern",
    [
        "([a-zA-Z]+ )+?[bB][oO][lL].*",  # Lucene's "+?" is an optional "+", never a lazy one
        "[aA][cC].*|[dD].*",
        "@",  # any string
        '"Ac"@',  # a quoted string, then anything
        "[^A]\\w+",  # shorthand classes are ASCII
        "B.{3}",
        "(Acme)?Cosy",
        "a.*",  # the whole value, in its case
        "Ac",  # the whole value, not a part of it
    ],
)
@pytest.mark.parametrize("option", ["include", "exclude"])
def test_an_include_or_exclude_pattern_keeps_the_values_lucene_matches(service, reference, option, pattern):
    assert brand_buckets(service, **{option: pattern}) == brand_buckets(reference, **{option: pattern})


def test_a_pattern_lucene_cannot_parse_is_a_400_naming_it_on_the_embedded_backend(embedded_client):
    answer = embedded_client.post(
        "/products/_search",
        json={"size": 0, "aggs": {"brand": {"terms": {"field": "brand.keyword", "include": "(Ac"}}}},
    )
    assert answer.status_code == 400
    assert "aggs.brand.terms.include" in answer.get_json()["error"]["reason"]


def test_a_pattern_of_thousands_of_groups_is_a_400_naming_it_not_a_500(embedded_client):
    deep = "(" * 5000 + "a" + ")" * 5000
    answer = embedded_client.post(
        "/products/_search",
        json={"size": 0, "aggs": {"brand": {"terms": {"field": "brand.keyword", "include": deep}}}},
    )
    assert answer.status_code == 400
    assert "aggs.brand.terms.include" in answer.get_json()["error"]["reason"]


def test_a_pattern_longer_than_elasticsearchs_max_regex_length_is_a_400_naming_it(embedded_client):
    answer = embedded_client.post(
        "/products/_search",
        json={"size": 0, "aggs": {"brand": {"terms": {"field": "brand.keyword", "include": "a" * 1001}}}},
    )
    assert answer.status_code == 400
    assert "aggs.brand.terms.include" in answer.get_json()["error"]["reason"]


def test_the_repetitions_of_a_bodys_patterns_are_bounded_with_its_wildcards(embedded_client):
    """Fourteen aggregations of ``[^x]*`` two hundred times took about a second to build their automata."""
    aggs = {f"a{i}": {"terms": {"field": "brand.keyword", "include": "[^x]*" * 200}} for i in range(14)}
    started = time.perf_counter()
    answer = embedded_client.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert answer.status_code == 400
    assert "service.max_wildcard_terms" in answer.get_json()["error"]["reason"]
    assert time.perf_counter() - started < 5


def test_a_repetition_inside_a_repeated_part_counts_once_per_copy():
    assert to_tantivy("(a{3}){2}", "include")[1] == 2 * (1 + 3)


def test_nested_bounded_repetitions_are_a_400_before_any_automaton_is_built(embedded_client):
    # Twelve levels counted 26 repetitions added up, under the bound, and took minutes to end in a 501.
    pattern = "(" * 8 + ".{0,2}" + "){2}" * 8
    status, _ = brand_buckets(embedded_client, include=pattern)
    assert status == 400


def test_a_run_of_any_strings_is_searched_as_one(embedded_client, reference):
    """``@`` hundreds of times over is the language of one ``@``: each pattern's automaton took a quarter of a
    second to build before the run was written once."""
    pattern = "@" * 999 + "e"
    assert to_tantivy(pattern, "include") == to_tantivy("@e", "include")
    ours, theirs = brand_buckets(embedded_client, include=pattern), brand_buckets(reference, include=pattern)
    assert ours == theirs and ours[0] == 200 and ours[1]
