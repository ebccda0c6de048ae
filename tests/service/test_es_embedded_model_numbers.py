"""Model numbers (``lexical.model_codes``) in Elasticsearch bodies on the embedded backend, and their highlights,
beside what the cluster backends do with the same body (tests/service/test_delegation.py, "model numbers")."""

from __future__ import annotations

import pytest
from front_end_catalog import MODEL_NUMBERED, NOT_MET_BY_A_MODEL_NUMBER_ALONE, product

from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app


@pytest.fixture(scope="module")
def tools(tmp_path_factory):
    settings = Settings(index_dir=tmp_path_factory.mktemp("model-numbers") / "idx", dense={"enabled": False})
    build_index(MODEL_NUMBERED, settings, progress=False)
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def ids(client, query) -> list[str]:
    response = client.post("/products/_search", json={"query": query})
    assert response.status_code == 200, response.get_json()
    return sorted(hit["_id"] for hit in response.get_json()["hits"]["hits"])


def highlighted(client, query) -> dict[str, dict[str, list[str]]]:
    """Each hit's highlight of the title and the description, whole."""
    whole = {"number_of_fragments": 0}
    body = {"query": query, "highlight": {"fields": {"title": whole, "description": whole}}}
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return {hit["_id"]: hit.get("highlight", {}) for hit in response.get_json()["hits"]["hits"]}


@pytest.mark.parametrize("typed", ["dw745b", "DW 745B"])
def test_a_model_number_in_a_filter_finds_the_product_that_has_it(tools, typed):
    assert ids(tools, {"bool": {"filter": [{"match": {"title": typed}}]}}) == ["saw"]


def test_a_model_number_in_must_not_leaves_out_the_product_that_has_it(tools):
    query = {"bool": {"must": [{"match": {"title": "saw"}}], "must_not": [{"match": {"title": "dw745b"}}]}}
    assert ids(tools, query) == ["blade"]


def test_a_model_number_is_looked_up_only_in_the_fields_the_filter_names(tools):
    assert ids(tools, {"bool": {"filter": [{"match": {"description": "dw745b"}}]}}) == ["blade"]


def test_with_operator_and_a_model_number_stands_for_its_words_and_the_others_are_still_needed(tools):
    def every_word(text):
        return {
            "bool": {
                "filter": [{"multi_match": {"query": text, "fields": ["title", "description"], "operator": "and"}}]
            }
        }

    assert ids(tools, every_word("dw745b table saw")) == ["saw"]
    assert ids(tools, every_word("dw745b router")) == []


@pytest.mark.parametrize("query", NOT_MET_BY_A_MODEL_NUMBER_ALONE)
def test_a_filter_that_needs_every_word_is_not_met_by_a_model_number_alone(tools, query):
    # "router" is in no product: the saw's code would stand for words it does not span (as on the cluster).
    assert ids(tools, {"bool": {"filter": [query]}}) == []


def test_a_phrase_takes_a_model_number_only_when_the_whole_phrase_is_one(tools):
    def phrase(text):
        return {"bool": {"filter": [{"match_phrase": {"title": text}}]}}

    assert ids(tools, phrase("dw 745b")) == ["saw"]
    assert ids(tools, phrase("dewalt dw745b")) == []


def test_a_model_number_being_typed_finds_the_product_as_a_search_does(tools):
    typed = {"match_bool_prefix": {"title": {"query": "dw745b tab", "operator": "and"}}}
    assert ids(tools, typed) == ["saw"]


def test_without_model_codes_a_filter_matches_the_words_alone(tmp_path):
    settings = Settings(index_dir=tmp_path / "idx", dense={"enabled": False}, lexical={"model_codes": False})
    build_index(MODEL_NUMBERED, settings, progress=False)
    pipeline = open_pipeline(settings)
    try:
        assert (
            ids(create_app(settings, pipeline).test_client(), {"bool": {"filter": [{"match": {"title": "dw745b"}}]}})
            == []
        )
    finally:
        pipeline.close()


@pytest.mark.parametrize("typed", ["dw745b", "DW 745B"])
def test_highlight_marks_the_model_number_a_search_found_whole(tools, typed):
    query = {"multi_match": {"query": typed, "fields": ["title^3", "description"]}}
    found = highlighted(tools, query)
    assert found == {
        "saw": {"title": ["DEWALT <em>DW745-B</em> Table Saw"]},
        "blade": {"description": ["Fits <em>DW745-B</em> and DW745-C"]},
    }


def test_highlight_marks_a_model_number_only_in_the_fields_the_clause_searched(tools):
    query = {"match": {"description": "dw745b"}}
    found = highlighted(tools, query)
    assert found["blade"] == {"description": ["Fits <em>DW745-B</em> and DW745-C"]}
    assert found.get("saw", {}) == {}


@pytest.fixture(scope="module")
def guard(tmp_path_factory):
    """A client over one accessory whose description lists the models it fits with a slash."""
    catalog = [product("guard", "Blade guard", "DEWALT", "Tools > Guards", 19.0, description="Fits DW745-B/DW746-B")]
    settings = Settings(index_dir=tmp_path_factory.mktemp("slash-list") / "idx", dense={"enabled": False})
    build_index(catalog, settings, progress=False)
    pipeline = open_pipeline(settings)
    yield create_app(settings, pipeline).test_client()
    pipeline.close()


def test_highlight_marks_the_one_model_number_of_a_list_that_a_search_found(guard):
    found = highlighted(guard, {"match": {"description": "dw746b"}})
    assert found == {"guard": {"description": ["Fits DW745-B/<em>DW746-B</em>"]}}


def test_with_operator_and_in_best_fields_a_model_number_and_the_other_words_are_needed_in_one_field(tools):
    # The blade has the code in its description and "blade" in its title: "DW745-B blade" is in no one field.
    def every_word(text, **kind):
        clause = {"multi_match": {"query": text, "fields": ["title", "description"], "operator": "and", **kind}}
        return {"bool": {"filter": [clause]}}

    assert ids(tools, every_word("dw745b blade")) == []
    assert ids(tools, every_word("dw745b blade", type="cross_fields")) == ["blade"]


def test_highlight_marks_each_model_number_of_a_list_that_a_search_found(guard):
    # Both models asked for (in another order than the run's, so not as the whole run): both parts are marked.
    found = highlighted(guard, {"match": {"description": "dw746b dw745b"}})
    assert found == {"guard": {"description": ["Fits <em>DW745-B</em>/<em>DW746-B</em>"]}}
