"""A front end's query that names a product code searches the dense leg around the product it names
(``dense.code_anchors``), in the body's filter context, on the embedded backend. On a cluster:
tests/service/test_delegation.py, "model numbers"."""

from __future__ import annotations

import pytest
from both_backends import search
from front_end_catalog import AROUND_A_CODE, CODE_WITHIN_FILTERS

from search_rerank.core.fusion import CODE_ANCHOR


@pytest.fixture(scope="module")
def client(catalog_client):
    return catalog_client(AROUND_A_CODE)


def test_a_code_querys_hits_come_from_around_the_product_it_names(client):
    answer = search(client, {"query": CODE_WITHIN_FILTERS, "explain": True, "size": 20})
    assert answer["hits"]["hits"][0]["_id"] == "asked"
    assert all(e[CODE_ANCHOR] == 1.0 for e in answer["search_rerank"]["explanations"].values())


def test_the_products_around_a_code_querys_product_keep_to_the_bodys_filters(client):
    answer = search(client, {"query": CODE_WITHIN_FILTERS, "size": 40, "_source": ["title", "price"]})
    assert len(answer["hits"]["hits"]) > 1
    for hit in answer["hits"]["hits"]:
        assert hit["_source"]["price"] >= 400 and "miter" not in hit["_source"]["title"]


def test_an_answer_names_the_product_its_dense_leg_searched_around(client):
    answer = search(client, {"query": CODE_WITHIN_FILTERS})
    assert answer["search_rerank"]["code_anchor"] == "asked"


def test_an_answer_to_words_names_no_product_searched_around(client):
    answer = search(client, {"query": {"match": {"title": "saw"}}})
    assert "code_anchor" not in answer["search_rerank"]


def test_the_search_api_names_the_product_its_dense_leg_searched_around(client):
    answer = client.post("/search", json={"query": "dw745b"}).get_json()
    assert answer["code_anchor"] == "asked"


def test_an_interleaved_answer_names_the_product_its_dense_leg_searched_around(catalog_client, tmp_path, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "admin")
    b_file = tmp_path / "b.toml"
    b_file.write_text("[longtail]\nenabled = false\n", encoding="utf-8")
    client = catalog_client(AROUND_A_CODE, interleave_with=b_file)
    headers = {"X-Search-Rerank-Interleave": "on", "Authorization": "Bearer admin"}
    answer = client.post("/search", json={"query": "dw745b"}, headers=headers).get_json()
    assert answer["interleaving"] and answer["code_anchor"] == "asked"
