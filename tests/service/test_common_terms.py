"""``cutoff_frequency`` and the ``common`` query on the embedded index, as Elasticsearch 7 and OpenSearch match them
(Lucene's CommonTermsQuery): a query's rare words are needed by its operator, its frequent words only score, and
with no rare word every frequent one is needed. Magento's ElasticSuite filters its searches with it."""

from __future__ import annotations

from typing import Any

import pytest

from search_rerank.core.product import Product

TITLES = {
    "p1": "Oak pine table",
    "p2": "Oak pine shelf",
    "p3": "Oak chair",
    "p4": "Oak bench",
    "p5": "Oak desk",
    "p6": "Oak stool",
    "p7": "Pine sofa",
    "p8": "Pine bed",
    "p9": "Pine crate, large",
    "p10": "Pine table",
}
"""Ten products: "oak" and "pine" in six titles each (frequent at a cutoff of 0.5: more than 5), "sofa" in one."""


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client([Product(id=pid, title=title, brand="Acme", category=("Furniture",), price=10.0)
                           for pid, title in TITLES.items()])  # fmt: skip


def found(client, query: dict[str, Any]) -> set[str]:
    answer = client.post("/products/_search", json={"query": {"bool": {"filter": [query]}}, "size": 20})
    assert answer.status_code == 200, answer.get_json()
    return {hit["_id"] for hit in answer.get_json()["hits"]["hits"]}


def test_with_every_word_needed_only_the_rare_words_are(client):
    match = {"match": {"title": {"query": "oak sofa", "operator": "and", "cutoff_frequency": 0.5}}}
    assert found(client, match) == {"p7"}


def test_without_a_cutoff_every_word_is_needed_as_before(client):
    assert found(client, {"match": {"title": {"query": "oak sofa", "operator": "and"}}}) == set()


def test_a_query_of_frequent_words_alone_needs_them_all(client):
    match = {"match": {"title": {"query": "oak pine", "cutoff_frequency": 0.5}}}
    assert found(client, match) == {"p1", "p2"}


def test_a_cutoff_from_one_is_a_count_of_products(client):
    assert found(client, {"match": {"title": {"query": "oak pine", "cutoff_frequency": 5}}}) == {"p1", "p2"}
    assert found(client, {"match": {"title": {"query": "oak pine", "cutoff_frequency": 6}}}) == set(TITLES)


def test_minimum_should_match_counts_the_rare_words(client):
    match = {"match": {"title": {"query": "oak sofa bed", "minimum_should_match": "100%", "cutoff_frequency": 0.5}}}
    assert found(client, match) == set()
    match["match"]["title"]["minimum_should_match"] = 1
    assert found(client, match) == {"p7", "p8"}


def test_a_multi_match_with_a_cutoff_needs_its_rare_words(client):
    multi = {"multi_match": {"query": "oak sofa", "fields": ["title", "description"], "operator": "and",
                             "cutoff_frequency": 0.5}}  # fmt: skip
    assert found(client, multi) == {"p7"}


def test_a_common_query_needs_its_rare_words_by_the_low_frequency_operator(client):
    common = {"common": {"title": {"query": "oak sofa bed", "cutoff_frequency": 0.5, "low_freq_operator": "and"}}}
    assert found(client, common) == set()
    common["common"]["title"]["low_freq_operator"] = "or"
    assert found(client, common) == {"p7", "p8"}


def test_a_common_query_of_frequent_words_needs_them_all_unless_told_how_many(client):
    common = {"common": {"title": {"query": "oak pine", "cutoff_frequency": 0.5}}}
    assert found(client, common) == {"p1", "p2"}
    common["common"]["title"]["minimum_should_match"] = {"high_freq": 1}
    assert found(client, common) == set(TITLES)


def test_a_negative_cutoff_is_a_400_naming_it(client):
    match = {"match": {"title": {"query": "oak", "cutoff_frequency": -1}}}
    answer = client.post("/products/_search", json={"query": {"bool": {"filter": [match]}}})
    assert answer.status_code == 400
    assert "cutoff_frequency" in str(answer.get_json())


def test_an_unknown_operator_of_a_common_query_is_a_400_naming_it(client):
    common = {"common": {"title": {"query": "oak", "high_freq_operator": "xor"}}}
    answer = client.post("/products/_search", json={"query": {"bool": {"filter": [common]}}})
    assert answer.status_code == 400
    assert "high_freq_operator" in str(answer.get_json())


def test_a_cutoff_on_a_keyword_matches_its_whole_value(client):
    assert found(client, {"match": {"title.keyword": {"query": "Pine crate, large", "cutoff_frequency": 0.5}}}) == {
        "p9"
    }
