"""Elasticsearch 9 ``retriever`` bodies on the compatible API, mapped onto the pipeline (serving/retrievers.py).

The bodies are Elastic's own examples from the retriever reference
(https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/), with the field names and texts of
the test catalogue. Each test checks what the pipeline did, from the response's ``search_rerank`` section and
the hits' explanations (``explain: true``), on the embedded (tantivy) engine with the tiny bi-encoder.
"""

from __future__ import annotations

import json

import pytest
from servers import server_retriever, server_settings

from search_rerank.backends.encoder import BiEncoder
from search_rerank.backends.faiss_index import FaissRetriever
from search_rerank.core.fusion import CODE_ANCHOR
from search_rerank.core.identifiers import is_code
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.retrieval import DENSE, LEXICAL
from search_rerank.core.settings import DenseSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import open_pipeline
from search_rerank.serving import create_app
from search_rerank.serving.retrievers import NO_QUERY, NOT_IN_TREE

TEXT = "grey sofa"
TOKEN = "retriever-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def settings(settings, monkeypatch):
    """The default deployment's 100 candidates per leg (Elastic's examples ask for windows of 50), with an admin
    token configured that the tests' requests send only where they say so. No stage deadlines: the tests check
    which legs and stages a body runs, and a leg cut off on a loaded machine (a CI run saw the lexical leg's
    1 s pass) would leave it out."""
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    return settings.override(lexical={"candidates": 100}, dense={"candidates": 100}).offline()


def search(client, body):
    return client.post("/products/_search", json=body)


def answer(client, body) -> dict:
    response = search(client, body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def explanations(body: dict) -> list[dict]:
    section = body["search_rerank"]["explanations"]
    return [section[hit["_id"]] for hit in body["hits"]["hits"]]


def standard(query_text: str = TEXT, **extra) -> dict:
    return {"standard": {"query": {"multi_match": {"query": query_text, "fields": ["title", "brand"]}}, **extra}}


def knn_text(text: str = TEXT, **extra) -> dict:
    builder = {"text_embedding": {"model_id": "my-text-embedding-model", "model_text": text}}
    return {"knn": {"field": "vector", "query_vector_builder": builder, "k": 10, "num_candidates": 20, **extra}}


def error(response, status: int) -> dict:
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


# ------------------------------------------------------------------ standard


def test_standard_retriever_searches_the_lexical_leg_only(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/standard-retriever
    # (example: a bool query with should and filter)
    body = answer(client, {"retriever": standard(), "explain": True})
    assert body["hits"]["hits"]
    assert all(e["legs"] == [LEXICAL] for e in explanations(body))
    assert body["search_rerank"]["skipped"][DENSE] == NOT_IN_TREE


def test_standard_retriever_filter_holds_every_hit(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/standard-retriever
    # "filter ... all documents must match this query but do not contribute to the score"
    body = answer(client, {"retriever": standard(filter=[{"range": {"price": {"lte": 300}}}]), "size": 20})
    assert body["hits"]["hits"]
    assert all(hit["_source"]["price"] <= 300 for hit in body["hits"]["hits"])


def test_standard_retriever_min_score_drops_weaker_lexical_candidates(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/standard-retriever
    # "min_score: documents with a lower _score are not included"
    scores = [e["lexical_score"] for e in explanations(answer(client, {"retriever": standard(), "explain": True}))]
    floor = sorted(scores)[len(scores) // 2]
    body = answer(client, {"retriever": standard(min_score=floor), "explain": True, "size": 50})
    assert body["hits"]["hits"]
    assert all(e["lexical_score"] >= floor for e in explanations(body))


# ------------------------------------------------------------------ rrf


def test_rrf_retriever_fuses_both_legs_by_reciprocal_rank_with_its_rank_constant(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rrf-retriever
    # (example: hybrid search, rank_constant 1, rank_window_size 50)
    body = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_constant": 1, "rank_window_size": 50}}}
    answered = answer(client, {**body, "explain": True})
    assert answered["search_rerank"]["retriever"]["fusion"]["method"] == "rrf"
    found = explanations(answered)
    assert {leg for e in found for leg in e["legs"]} == {LEXICAL, DENSE}
    for e in found:
        expected = sum(1 / (1 + e[f"{leg}_rank"]) for leg in e["legs"])
        assert e["fused"] == pytest.approx(expected)


def test_rrf_wrapped_retrievers_weigh_each_leg(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rrf-retriever
    # (example: weighted hybrid search, weight 2.0 for standard, 1.0 for knn)
    retrievers = [{"retriever": standard(), "weight": 2.0}, {"retriever": knn_text(), "weight": 1.0}]
    body = {"retriever": {"rrf": {"retrievers": retrievers, "rank_constant": 60, "rank_window_size": 50}}}
    found = explanations(answer(client, {**body, "explain": True}))
    weight = {LEXICAL: 2.0, DENSE: 1.0}
    for e in found:
        assert e["fused"] == pytest.approx(sum(weight[leg] / (60 + e[f"{leg}_rank"]) for leg in e["legs"]))


def test_a_retriever_trees_weights_hold_for_a_query_naming_a_product_code(client):
    # The service fuses a code query lexically by default (fusion.identifier_weights); a client that names its
    # weights gets those, as from Elasticsearch.
    text = "grey sofa GS-2040X"
    # Every field's words, so that the query's matches share products with the nearest ones.
    words = {"standard": {"query": {"multi_match": {"query": text}}}}
    retrievers = [{"retriever": words, "weight": 2.0}, {"retriever": knn_text(text), "weight": 1.0}]
    body = {"retriever": {"rrf": {"retrievers": retrievers, "rank_constant": 60, "rank_window_size": 50}}}
    found = explanations(answer(client, {**body, "explain": True}))
    assert any(DENSE in e["legs"] for e in found)
    weight = {LEXICAL: 2.0, DENSE: 1.0}
    for e in found:
        assert e["fused"] == pytest.approx(sum(weight[leg] / (60 + e[f"{leg}_rank"]) for leg in e["legs"]))


def test_rrf_rank_window_size_is_each_legs_candidates(client):
    body = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_window_size": 5}}, "size": 5}
    answered = answer(client, {**body, "explain": True})
    found = explanations(answered)
    assert all(e[f"{leg}_rank"] <= 5 for e in found for leg in e["legs"])
    assert answered["hits"]["total"]["value"] <= 10


def test_rrf_rank_window_size_below_size_is_a_400_naming_it(client):
    body = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_window_size": 5}}, "size": 10}
    assert error(search(client, body), 400)["field"] == "retriever.rrf.rank_window_size"


def test_rrf_rank_constant_below_one_is_a_400_naming_it(client):
    body = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_constant": 0}}}
    assert error(search(client, body), 400)["field"] == "retriever.rrf.rank_constant"


def test_rrf_negative_weight_is_a_400_naming_it(client):
    body = {"retriever": {"rrf": {"retrievers": [{"retriever": standard(), "weight": -1}, knn_text()]}}}
    assert error(search(client, body), 400)["field"] == "retriever.rrf.retrievers[0].weight"


def test_rrf_query_format_searches_both_legs_with_its_text(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rrf-retriever
    # the multi-field query format (query and fields, 9.1)
    body = {"retriever": {"rrf": {"query": TEXT, "fields": ["title", "description"]}}, "explain": True}
    answered = answer(client, body)
    assert {leg for e in explanations(answered) for leg in e["legs"]} == {LEXICAL, DENSE}


def test_rrf_inside_rrf_is_a_501_naming_the_inner_one(client):
    inner = {"rrf": {"retrievers": [standard(), knn_text()]}}
    body = {"retriever": {"rrf": {"retrievers": [inner, standard("sofa")]}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rrf.retrievers[0].rrf"


def test_two_standard_retrievers_are_a_501_naming_the_second(client):
    body = {"retriever": {"rrf": {"retrievers": [standard("grey sofa"), standard("oak table")]}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rrf.retrievers[1].standard"


def test_filters_that_differ_between_retrievers_are_a_501_naming_one(client):
    cheap = [{"range": {"price": {"lte": 300}}}]
    body = {"retriever": {"rrf": {"retrievers": [standard(filter=cheap), knn_text()]}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rrf.retrievers[1].knn.filter"


def test_compound_filter_holds_both_legs(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rrf-retriever
    # "filter: applies ... to all of the specified sub-retrievers"
    cheap = {"range": {"price": {"lte": 300}}}
    body = {
        "retriever": {"rrf": {"retrievers": [standard(), knn_text()], "filter": cheap}},
        "size": 30,
        "explain": True,
    }
    answered = answer(client, body)
    assert any(DENSE in e["legs"] for e in explanations(answered))
    assert all(hit["_source"]["price"] <= 300 for hit in answered["hits"]["hits"])


# ------------------------------------------------------------------ linear


def test_linear_l2_norm_divides_each_legs_scores_by_their_norm(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/linear-retriever
    # normalizers none, minmax, l2_norm; here the dense leg weighs nothing
    retrievers = [
        {"retriever": standard(), "weight": 1.0, "normalizer": "l2_norm"},
        {"retriever": knn_text(), "weight": 0.0, "normalizer": "l2_norm"},
    ]
    answered = answer(client, {"retriever": {"linear": {"retrievers": retrievers}}, "explain": True})
    assert answered["search_rerank"]["retriever"]["fusion"]["normalization"] == "l2_norm"
    ratios = [e["fused"] / e["lexical_score"] for e in explanations(answered) if LEXICAL in e["legs"]]
    assert len(ratios) > 2
    assert ratios == pytest.approx([ratios[0]] * len(ratios))  # one norm: the lexical list's


def test_linear_top_level_normalizer_applies_to_every_retriever(client):
    retrievers = [{"retriever": standard(), "weight": 2.0}, {"retriever": knn_text(), "weight": 1.0}]
    body = {"retriever": {"linear": {"retrievers": retrievers, "normalizer": "minmax"}}, "explain": True}
    fusion = answer(client, body)["search_rerank"]["retriever"]["fusion"]
    assert (fusion["normalization"], fusion["weights"]) == ("minmax", {LEXICAL: 2.0, DENSE: 1.0})


def test_linear_normalizers_that_differ_per_retriever_are_a_501_naming_one(client):
    retrievers = [
        {"retriever": standard(), "normalizer": "minmax"},
        {"retriever": knn_text(), "normalizer": "l2_norm"},
    ]
    response = search(client, {"retriever": {"linear": {"retrievers": retrievers}}})
    assert error(response, 501)["unsupported"] == "retriever.linear.retrievers[1].normalizer"


def test_linear_unknown_normalizer_is_a_400_naming_it(client):
    retrievers = [{"retriever": standard(), "normalizer": "softmax"}]
    response = search(client, {"retriever": {"linear": {"retrievers": retrievers}}})
    assert error(response, 400)["field"] == "retriever.linear.retrievers[0].normalizer"


# ------------------------------------------------------------------ knn


def test_knn_retriever_with_a_client_vector_finds_its_nearest_product(client, pipeline):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/knn-retriever
    # (example: field, query_vector, k, num_candidates)
    dense = pipeline.legs[DENSE]
    target = "P0000014"
    vector = dense.vectors_of([target])[target].tolist()
    body = {"retriever": {"knn": {"field": "vector", "query_vector": vector, "k": 10, "num_candidates": 10}}}
    answered = answer(client, {**body, "explain": True})
    found = explanations(answered)
    assert all(e["legs"] == [DENSE] for e in found)
    top = max(
        answered["hits"]["hits"], key=lambda hit: answered["search_rerank"]["explanations"][hit["_id"]]["dense_score"]
    )
    assert top["_id"] == target
    assert answered["search_rerank"]["skipped"][LEXICAL] == NOT_IN_TREE


def test_a_retriever_trees_knn_searches_its_own_vector_whatever_product_the_query_names_by_code(client, pipeline):
    # The service searches the dense leg around the product a code query names (dense.code_anchors); a tree that
    # brings its own vector keeps it.
    named = next((token, p.id) for p in pipeline.store for token in p.title.split() if is_code(token))
    other = next(p.id for p in pipeline.store if p.id != named[1])
    vector = pipeline.legs[DENSE].vectors_of([other])[other].tolist()
    knn = {"knn": {"field": "vector", "query_vector": vector, "k": 10, "num_candidates": 10}}
    body = {"retriever": {"rrf": {"retrievers": [standard(named[0]), knn]}}, "explain": True}
    found = answer(client, body)["search_rerank"]["explanations"]
    assert all(CODE_ANCHOR not in e for e in found.values())
    assert found[other]["dense_rank"] == 1


def test_knn_query_vector_of_another_dimension_is_a_400_naming_it(client):
    body = {"retriever": {"knn": {"field": "vector", "query_vector": [10, 22, 77], "k": 10, "num_candidates": 10}}}
    assert error(search(client, body), 400)["field"] == "retriever.knn.query_vector"


def test_knn_model_text_is_embedded_by_the_services_encoder(client, pipeline):
    body = {"retriever": knn_text("velvet armchair"), "size": 10}
    answered = answer(client, body)
    expected = {c.product_id for c in pipeline.legs[DENSE].search("velvet armchair", 10)}
    assert {hit["_id"] for hit in answered["hits"]["hits"]} == expected
    assert "retriever.knn.query_vector_builder.text_embedding.model_id" in answered["search_rerank"]["ignored"][0]


def test_knn_similarity_keeps_only_closer_products(client, pipeline):
    target = "P0000014"
    vector = pipeline.legs[DENSE].vectors_of([target])[target].tolist()
    body = {"retriever": {"knn": {"field": "vector", "query_vector": vector, "k": 50, "similarity": 0.999}}}
    assert [hit["_id"] for hit in answer(client, body)["hits"]["hits"]] == [target]


def test_knn_filter_holds_its_hits(client):
    body = {"retriever": knn_text(filter={"range": {"price": {"lte": 300}}}), "size": 10}
    hits = answer(client, body)["hits"]["hits"]
    assert hits and all(hit["_source"]["price"] <= 300 for hit in hits)


def test_knn_num_candidates_below_k_is_a_400_naming_it(client):
    body = {"retriever": knn_text(k=20, num_candidates=10)}
    assert error(search(client, body), 400)["field"] == "retriever.knn.num_candidates"


def test_knn_with_both_query_vector_and_builder_is_a_400(client):
    spec = knn_text()["knn"] | {"query_vector": [1.0]}
    assert error(search(client, {"retriever": {"knn": spec}}), 400)["field"] == "retriever.knn"


# ------------------------------------------------------------------ the tree as a whole


def test_retriever_beside_a_top_level_query_is_a_400_as_in_elasticsearch(client):
    body = {"retriever": standard(), "query": {"match_all": {}}}
    assert error(search(client, body), 400)["field"] == "query"


@pytest.mark.parametrize(
    "key, value",
    [("sort", ["price"]), ("search_after", [10]), ("terminate_after", 5), ("rescore", {"window_size": 5})],
)
def test_retriever_beside_a_top_level_sort_paging_or_rescore_is_a_400_as_in_elasticsearch(client, key, value):
    """Elasticsearch refuses these beside a retriever (its request validation). A top-level sort was answered
    sorted, and the standard retriever's min_score was not applied to the sorted page."""
    body = {"retriever": standard(min_score=100.0), key: value}
    assert error(search(client, body), 400)["field"] == key


def test_unknown_retriever_is_a_400_naming_it(client):
    assert error(search(client, {"retriever": {"bm25": {}}}), 400)["field"] == "retriever.bm25"


def test_rule_retriever_is_a_501_naming_it(client):
    body = {"retriever": {"rule": {"match_criteria": {}, "ruleset_ids": ["r"], "retriever": standard()}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rule"


# ------------------------------------------------------------------ pinned


def hit_ids(body: dict) -> list[str]:
    return [hit["_id"] for hit in body["hits"]["hits"]]


def not_ranked_by(client, tree: dict, ranked: list[str]) -> list[str]:
    """Two products the tree does not rank in its first page (lamps, for a grey sofa)."""
    lamps = hit_ids(answer(client, {"query": {"match": {"title": "lamp"}}, "size": 30}))
    return [pid for pid in lamps if pid not in ranked][:2]


def test_pinned_retriever_puts_its_products_before_the_trees_ranking(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/pinned-retriever
    tree = {"rrf": {"retrievers": [standard(), knn_text()]}}
    ranked = hit_ids(answer(client, {"retriever": tree, "size": 10}))
    pins = not_ranked_by(client, tree, ranked)
    body = answer(client, {"retriever": {"pinned": {"ids": pins, "retriever": tree}}, "size": 10})
    assert len(pins) == 2 and hit_ids(body) == pins + ranked[:8]
    assert body["search_rerank"]["retriever"]["pinned"] == pins


def test_pinned_retriever_products_pass_the_trees_filters_as_elasticsearch_rewrites_it(client):
    # PinnedRetrieverBuilder wraps the tree's query, its filters included, in a pinned query: the pinned ids match
    # beside it; the pinned retriever's own filter holds them.
    ranked = hit_ids(answer(client, {"retriever": standard(), "size": 10}))
    pins = not_ranked_by(client, standard(), ranked)
    tree = standard(filter=[{"bool": {"must_not": {"ids": {"values": pins}}}}])
    docs = [{"_id": pid, "_index": "products"} for pid in pins]
    body = answer(client, {"retriever": {"pinned": {"docs": docs, "retriever": tree}}, "size": 10})
    assert hit_ids(body)[:2] == pins
    own = {"bool": {"must_not": {"ids": {"values": [pins[0]]}}}}
    body = answer(client, {"retriever": {"pinned": {"ids": pins, "retriever": standard(), "filter": own}}})
    assert hit_ids(body)[0] == pins[1] and pins[0] not in hit_ids(body)


def test_pinned_retriever_without_a_retriever_is_a_400_naming_it(client):
    body = {"retriever": {"pinned": {"ids": ["x"]}}}
    assert error(search(client, body), 400)["field"] == "retriever.pinned.retriever"


def test_pinned_retrievers_rank_window_size_is_listed_as_ignored(client):
    tree = {"pinned": {"ids": ["x"], "retriever": standard(), "rank_window_size": 10}}
    body = answer(client, {"retriever": tree})
    assert body["search_rerank"]["ignored"] == ["retriever.pinned.rank_window_size (the pipeline's windows rank)"]


def test_pinned_retriever_inside_a_fusion_is_a_501_naming_it(client):
    body = {"retriever": {"rrf": {"retrievers": [{"pinned": {"ids": ["x"], "retriever": standard()}}, knn_text()]}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rrf.retrievers[0].pinned"


def test_unknown_key_in_a_retriever_is_a_400_naming_it(client):
    body = {"retriever": {"standard": {"query": {"match_all": {}}, "windowsize": 3}}}
    assert error(search(client, body), 400)["field"] == "retriever.standard.windowsize"


def test_retriever_searches_work_in_a_multi_search(client):
    lines = ['{"index": "products"}', '{"retriever": {"standard": {"query": {"match": {"title": "sofa"}}}}}']
    response = client.post("/_msearch", data="\n".join(lines) + "\n", content_type="application/x-ndjson")
    (item,) = response.get_json()["responses"]
    assert item["status"] == 200 and item["search_rerank"]["retriever"]["first_stage"] == "standard"


# ------------------------------------------------------------------ diversify


def test_diversify_retriever_runs_the_mmr_stage_with_its_lambda_window_and_size(client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/diversify-retriever
    # (example: type mmr, lambda 0.7, size 3, an inner standard retriever)
    body = {
        "retriever": {
            "diversify": {
                "type": "mmr",
                "field": "my_dense_vector_field",
                "lambda": 0.7,
                "size": 3,
                "query_vector": [0.1, 0.2, 0.3],
                "retriever": {"standard": {"query": {"match": {"title": "sofa"}}}},
            }
        },
        "explain": True,
    }
    answered = answer(client, body)
    assert len(answered["hits"]["hits"]) == 3
    assert answered["search_rerank"]["retriever"]["diversity"] == {"lambda": 0.7, "depth": 10, "size": 3}
    assert all("mmr_gain" in e for e in explanations(answered))


def test_diversify_lambda_zero_changes_the_order_of_the_window(client):
    inner = {"standard": {"query": {"match": {"title": "sofa"}}}}
    plain = answer(client, {"retriever": inner, "size": 10})
    spread = {"diversify": {"type": "mmr", "field": "v", "lambda": 0.0, "rank_window_size": 10, "retriever": inner}}
    diverse = answer(client, {"retriever": spread, "size": 10})
    ids = [[hit["_id"] for hit in body["hits"]["hits"]] for body in (plain, diverse)]
    assert sorted(ids[0]) == sorted(ids[1]) and ids[0] != ids[1]


def test_diversify_inside_rrf_is_a_501_naming_it(client):
    spread = {"diversify": {"type": "mmr", "field": "v", "lambda": 0.5, "retriever": standard()}}
    body = {"retriever": {"rrf": {"retrievers": [spread, knn_text()]}}}
    assert error(search(client, body), 501)["unsupported"] == "retriever.rrf.retrievers[0].diversify"


def test_diversify_lambda_above_one_is_a_400_naming_it(client):
    spread = {"diversify": {"type": "mmr", "field": "v", "lambda": 1.5, "retriever": standard()}}
    assert error(search(client, {"retriever": spread}), 400)["field"] == "retriever.diversify.lambda"


# ------------------------------------------------------------------ rerankers


def test_text_similarity_reranker_without_a_reranker_is_a_501_naming_it(client):
    body = {
        "retriever": {"text_similarity_reranker": {"retriever": standard(), "field": "title", "inference_text": TEXT}}
    }
    assert error(search(client, body), 501)["unsupported"] == "retriever.text_similarity_reranker"


@pytest.fixture
def rerank_client(settings, tiny_cross_encoder_dir):
    # No long-tail boost: it would lift products past the reranker's window in among the reranked ones.
    rerank = {"model": str(tiny_cross_encoder_dir), "require_card": False, "device": "cpu"}
    with_reranker = settings.override(rerank=rerank, longtail={"enabled": False})
    served: SearchPipeline = open_pipeline(with_reranker)
    yield create_app(with_reranker, served).test_client()
    served.close()


def reranked(text: str, window: int = 5, **extra) -> dict:
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/text-similarity-reranker-retriever
    # (example: Elastic Rerank, rank_window_size, min_score)
    spec = {
        "retriever": {"standard": {"query": {"match": {"title": "sofa"}}}},
        "field": "title",
        "inference_id": "my-elastic-rerank",
        "inference_text": text,
        "rank_window_size": window,
        **extra,
    }
    return {"retriever": {"text_similarity_reranker": spec}, "explain": True, "size": 10}


def test_text_similarity_reranker_scores_its_window_only(rerank_client):
    answered = answer(rerank_client, reranked("a grey corner sofa"))
    assert [("rerank" in e) for e in explanations(answered)] == [True] * 5 + [False] * 5
    assert answered["search_rerank"]["retriever"]["rerank"]["window"] == 5


def test_text_similarity_reranker_reads_its_inference_text(rerank_client):
    scores = []
    for text in ("a grey corner sofa", "stainless steel kitchen knife"):
        answered = answer(rerank_client, reranked(text, window=10))
        scores.append({hit["_id"]: e["rerank"] for hit, e in zip(answered["hits"]["hits"], explanations(answered))})
    shared = scores[0].keys() & scores[1].keys()
    assert shared and any(scores[0][pid] != scores[1][pid] for pid in shared)


def test_text_similarity_reranker_min_score_drops_lower_scored_hits(rerank_client):
    everything = explanations(answer(rerank_client, reranked(TEXT, window=10)))
    floor = sorted(e["rerank"] for e in everything)[5]
    kept = explanations(answer(rerank_client, reranked(TEXT, window=10, min_score=floor)))
    assert kept and len(kept) < len(everything)
    assert all(e["rerank"] >= floor for e in kept)


def test_rescorer_with_a_text_rescore_query_reranks_its_window_by_that_text(rerank_client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rescorer-retriever
    # (example: a rescorer around an rrf; here a text rescore query)
    rescore = {"window_size": 5, "query": {"rescore_query": {"match": {"title": "grey corner sofa"}}}}
    inner = {"rrf": {"retrievers": [standard(), knn_text()], "rank_window_size": 50}}
    body = {"retriever": {"rescorer": {"rescore": rescore, "retriever": inner}}, "size": 5, "explain": True}
    answered = answer(rerank_client, body)
    assert answered["search_rerank"]["retriever"]["rerank"] == {
        "from": "rescorer",
        "window": 5,
        "query": "grey corner sofa",
        "min_score": None,
    }
    assert all("rerank" in e for e in explanations(answered))


def test_rescorer_window_below_size_is_a_400_naming_it(rerank_client):
    rescore = {"window_size": 5, "query": {"rescore_query": {"match": {"title": "sofa"}}}}
    body = {"retriever": {"rescorer": {"rescore": rescore, "retriever": standard()}}, "size": 10}
    assert error(search(rerank_client, body), 400)["field"] == "retriever.rescorer.rescore.window_size"


@pytest.mark.parametrize(
    "field, body",
    [
        ("retriever.text_similarity_reranker.rank_window_size", reranked(TEXT, window=51)),
        (
            "retriever.rescorer.rescore.window_size",
            {
                "retriever": {
                    "rescorer": {
                        "rescore": {"window_size": 1000, "query": {"rescore_query": {"match": {"title": "sofa"}}}},
                        "retriever": standard(),
                    }
                }
            },
        ),
    ],
)
def test_a_rerank_window_above_the_served_one_needs_the_admin_token(rerank_client, field, body):
    # The served rerank window: 50.
    cause = error(search(rerank_client, body), 403)
    assert (cause["type"], cause["field"]) == ("security_exception", field)
    assert rerank_client.post("/products/_search", json=body, headers=ADMIN).status_code == 200


def test_rescorer_with_a_script_score_is_a_501_naming_it(rerank_client):
    script = {"script_score": {"query": {"match_all": {}}, "script": {"source": "1.0"}}}
    body = {
        "retriever": {
            "rescorer": {"rescore": {"window_size": 10, "query": {"rescore_query": script}}, "retriever": standard()}
        }
    }
    assert error(search(rerank_client, body), 501)["unsupported"] == (
        "retriever.rescorer.rescore.query.rescore_query.script_score"
    )


# ------------------------------------------------------------------ what a tree may cost

RAISED = [
    (
        "retriever.rrf.rank_window_size",
        {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_window_size": 101}}},
    ),
    (
        "retriever.linear.rank_window_size",
        {"retriever": {"linear": {"query": TEXT, "normalizer": "minmax", "rank_window_size": 1000}}},
    ),
    ("retriever.knn.k", {"retriever": knn_text(k=101, num_candidates=200)}),
    (
        "retriever.rrf.retrievers[1].knn.k",
        {"retriever": {"rrf": {"retrievers": [standard(), knn_text(k=5000, num_candidates=5000)]}}},
    ),
    (
        "retriever.diversify.rank_window_size",
        {
            "retriever": {
                "diversify": {
                    "type": "mmr",
                    "field": "v",
                    "lambda": 0.5,
                    "rank_window_size": 31,
                    "retriever": standard(),
                }
            }
        },
    ),
]


@pytest.mark.parametrize("field, body", RAISED, ids=[field for field, _ in RAISED])
def test_a_window_above_the_served_setting_without_the_admin_token_is_a_403_naming_it(client, field, body):
    # The served settings: 100 candidates per leg, an MMR depth of 30.
    cause = error(search(client, body), 403)
    assert (cause["type"], cause["field"]) == ("security_exception", field)
    assert "admin token" in cause["reason"]


@pytest.mark.parametrize("field, body", RAISED, ids=[field for field, _ in RAISED])
def test_a_window_above_the_served_setting_with_the_admin_token_is_served(client, field, body):
    response = client.post("/products/_search", json=body, headers=ADMIN)
    assert response.status_code == 200, response.get_json()


def test_a_raised_window_fails_its_own_search_in_a_multi_search(client):
    raised = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_window_size": 101}}}
    lines = [
        '{"index": "products"}',
        json.dumps(raised),
        '{"index": "products"}',
        json.dumps({"retriever": standard()}),
    ]
    response = client.post("/_msearch", data="\n".join(lines) + "\n", content_type="application/x-ndjson")
    first, second = response.get_json()["responses"]
    assert (first["status"], first["error"]["field"]) == (403, "retriever.rrf.rank_window_size")
    assert second["status"] == 200


def test_knn_k_above_the_served_candidates_is_served_when_the_fusion_window_holds_it(client):
    # Elasticsearch's examples ask a knn for more than the rrf above it keeps: its rank_window_size is what runs.
    knn = knn_text(k=500, num_candidates=500)
    body = {"retriever": {"rrf": {"retrievers": [standard(), knn], "rank_window_size": 50}}}
    assert answer(client, body)["search_rerank"]["retriever"]["fusion"]["rank_window_size"] == 50


def test_knn_without_k_asks_for_at_most_the_served_candidates(settings, pipeline):
    # k defaults to the page size, which may be larger than the deployment's dense candidates.
    fewer = settings.override(dense={"candidates": 20})
    knn = knn_text()
    del knn["knn"]["k"], knn["knn"]["num_candidates"]
    answered = answer(create_app(fewer, pipeline).test_client(), {"retriever": knn, "size": 30})
    assert answered["search_rerank"]["retriever"]["dense"]["k"] == 20


# ------------------------------------------------------------------ cluster backend


def test_standard_retriever_with_a_filter_on_the_cluster_backend(make_cluster_app):
    cluster = make_cluster_app("opensearch").test_client()
    body = {"retriever": standard("sofa", filter={"term": {"brand": "Acme"}}), "explain": True}
    answered = answer(cluster, body)
    # Acme's sofas; Bolt's and Cosy's are filtered out, and Acme's lamp ("for a sofa side table" in its
    # description only) does not match a multi_match over title and brand, which the cluster runs as sent
    assert {hit["_id"] for hit in answered["hits"]["hits"]} == {"s1", "s2"}


def test_knn_retriever_without_a_dense_leg_is_a_501_naming_it(make_cluster_app):
    cluster = make_cluster_app("opensearch").test_client()
    body = {"retriever": {"rrf": {"retrievers": [standard("sofa"), knn_text("sofa")]}}}
    assert error(search(cluster, body), 501)["unsupported"] == "retriever.rrf.retrievers[1].knn"


CLUSTER_CATALOG = [
    Product(id="s1", title="corner sofa", brand="Acme", category="Furniture > Sofas", price=499.0, sales=120),
    Product(id="s2", title="leather sofa", brand="Acme", category="Furniture > Sofas", price=899.0, sales=40),
    Product(id="s3", title="velvet sofa", brand="Bolt", category="Furniture > Sofas", price=650.0, sales=8),
    Product(id="t1", title="oak table", brand="Bolt", category="Furniture > Tables", price=249.5, sales=60),
    Product(id="l1", title="desk lamp", brand="Acme", category="Lighting", price=39.0, sales=15),
]


@pytest.fixture
def hybrid_cluster_client(request, tmp_path, tiny_bert_dir):
    """The OpenSearch backend (osmem-server) with a FAISS dense leg over the same products."""
    lexical = server_settings("opensearch", request, candidates=40)
    cluster = server_retriever(lexical)
    cluster.add(CLUSTER_CATALOG)
    dense_settings = DenseSettings(model=str(tiny_bert_dir), device="cpu", candidates=40)
    dense = FaissRetriever(BiEncoder(dense_settings), dense_settings)
    dense.add(CLUSTER_CATALOG)
    store = ProductStore(tmp_path / "products.sqlite")
    store.add(CLUSTER_CATALOG)
    store.refresh_popularity()
    settings = Settings(index_dir=tmp_path / "unused", lexical=lexical, dense=dense_settings)
    yield create_app(settings, SearchPipeline(settings, {LEXICAL: cluster, DENSE: dense}, store)).test_client()
    for name in cluster.aliases(f"{cluster.index}*"):
        cluster.delete_index(name)


def test_rrf_retriever_fuses_the_cluster_leg_and_the_dense_leg(hybrid_cluster_client):
    # https://www.elastic.co/docs/reference/elasticsearch/rest-apis/retrievers/rrf-retriever
    # (example: hybrid search) on the cluster backend: the pipeline is the same
    body = {"retriever": {"rrf": {"retrievers": [standard("sofa"), knn_text("sofa")], "rank_constant": 1}}}
    found = explanations(answer(hybrid_cluster_client, {**body, "explain": True}))
    assert {leg for e in found for leg in e["legs"]} == {LEXICAL, DENSE}
    for e in found:
        assert e["fused"] == pytest.approx(sum(1 / (1 + e[f"{leg}_rank"]) for leg in e["legs"]))


def test_knn_filter_holds_the_dense_leg_on_the_cluster_backend(hybrid_cluster_client):
    body = {"retriever": knn_text("sofa", filter={"term": {"brand": "Bolt"}}), "size": 10}
    hits = answer(hybrid_cluster_client, body)["hits"]["hits"]
    assert {hit["_id"] for hit in hits} == {"s3", "t1"}  # Bolt's two products, whatever their vectors


def test_compound_filter_holds_a_knn_query_vector_on_the_cluster_backend(hybrid_cluster_client, tiny_bert_dir):
    # The client's vector lies nearest Bolt's table: the dense leg must still keep to Acme's products.
    encoder = BiEncoder(DenseSettings(model=str(tiny_bert_dir), device="cpu"))
    vector = encoder.encode_queries(["oak table"])[0].tolist()
    knn = {"knn": {"field": "vector", "query_vector": vector, "k": 10}}
    body = {"retriever": {"rrf": {"retrievers": [standard("sofa"), knn], "filter": {"term": {"brand": "Acme"}}}}}
    hits = answer(hybrid_cluster_client, {**body, "size": 10})["hits"]["hits"]
    assert hits and all(hit["_source"]["brand"] == "Acme" for hit in hits)


def test_knn_retriever_on_the_cluster_backend_answers_its_k_nearest_products(hybrid_cluster_client, tiny_bert_dir):
    # Elasticsearch answers the k nearest, not a listing of the catalogue.
    settings = DenseSettings(model=str(tiny_bert_dir), device="cpu")
    dense = FaissRetriever(BiEncoder(settings), settings)
    dense.add(CLUSTER_CATALOG)
    nearest = {c.product_id for c in dense.search("sofa", 2)}
    answered = answer(hybrid_cluster_client, {"retriever": knn_text("sofa", k=2), "size": 10})
    assert {hit["_id"] for hit in answered["hits"]["hits"]} == nearest
    assert answered["hits"]["total"]["value"] == 2


# ------------------------------------------------------------------ Elasticsearch 8's top-level knn and rank


def a_brand(client) -> str:
    """A brand of the test catalogue that grey sofas are searched in."""
    return answer(client, {"query": {"match": {"title": TEXT}}})["hits"]["hits"][0]["_source"]["brand"]


def searchkit_hybrid(brand: str) -> dict:
    """What Searchkit (4.8 on) sends with getKnnQuery and a brand refinement: the filter in the query's
    bool.filter and again in knn.filter, an ML model's query_vector_builder, facets and highlights."""
    refinement = [{"bool": {"should": [{"term": {"brand.keyword": brand}}]}}]
    fuzzy = {"multi_match": {"query": TEXT, "fields": ["title", "brand"], "fuzziness": "AUTO:4,8"}}
    prefix = {"multi_match": {"query": TEXT, "fields": ["title", "brand"], "type": "bool_prefix"}}
    phrase = {"multi_match": {"query": TEXT, "type": "phrase", "fields": ["title", "brand"]}}
    words = {"bool": {"should": [{"bool": {"should": [fuzzy, prefix]}}, phrase]}}
    return {
        "aggs": {"brand": {"terms": {"field": "brand.keyword", "size": 10}}},
        "query": {"bool": {"filter": refinement, "must": words}},
        "knn": {"filter": refinement, **knn_text(k=10, num_candidates=100)["knn"]},
        "size": 20,
        "from": 0,
        "_source": {"includes": ["title", "brand"]},
        "highlight": {"pre_tags": ["<em>"], "post_tags": ["</em>"], "fields": {"title": {"number_of_fragments": 0}}},
        "explain": True,
    }


def test_searchkit_hybrid_search_runs_both_legs_within_its_filter(client):
    brand = a_brand(client)
    answered = answer(client, searchkit_hybrid(brand))
    assert {leg for e in explanations(answered) for leg in e["legs"]} == {LEXICAL, DENSE}
    assert answered["hits"]["hits"] and all(hit["_source"]["brand"] == brand for hit in answered["hits"]["hits"])
    assert [b["key"] for b in answered["aggregations"]["brand"]["buckets"]] == [brand]


def test_a_top_level_knn_beside_a_query_is_fused_as_the_service_fuses(client):
    # Elasticsearch adds the two scores; the service fuses its legs as configured, which is what it is for. With
    # k the served candidates (100 here), the knn asks what the dense leg searches for every query.
    query = {"match": {"title": TEXT}}
    hybrid = answer(client, {"query": query, **knn_text(k=100, num_candidates=100), "explain": True})
    plain = answer(client, {"query": query, "explain": True})
    assert [hit["_id"] for hit in hybrid["hits"]["hits"]] == [hit["_id"] for hit in plain["hits"]["hits"]]
    assert hybrid["search_rerank"]["retriever"]["first_stage"] == "query and knn, the service's fusion"


def test_a_top_level_knn_alone_answers_what_the_knn_retriever_answers(client):
    alone = answer(client, knn_text())
    tree = answer(client, {"retriever": knn_text()})
    assert [hit["_id"] for hit in alone["hits"]["hits"]] == [hit["_id"] for hit in tree["hits"]["hits"]]
    assert alone["search_rerank"]["skipped"][LEXICAL] == NO_QUERY


def test_rank_rrf_answers_what_the_rrf_retriever_answers(client):
    # https://www.elastic.co/guide/en/elasticsearch/reference/8.15/rrf.html: query, knn and rank.rrf
    top_level = {"query": standard()["standard"]["query"], **knn_text(), "rank": {"rrf": {"rank_constant": 1}}}
    tree = {"retriever": {"rrf": {"retrievers": [standard(), knn_text()], "rank_constant": 1}}}
    ranked = answer(client, {**top_level, "explain": True})
    assert ranked["hits"]["hits"] == answer(client, {**tree, "explain": True})["hits"]["hits"]
    for e in explanations(ranked):
        assert e["fused"] == pytest.approx(sum(1 / (1 + e[f"{leg}_rank"]) for leg in e["legs"]))


@pytest.mark.parametrize("key", ["window_size", "rank_window_size"])
def test_rank_rrf_window_is_each_legs_candidates_by_either_name(client, key):
    body = {"query": standard()["standard"]["query"], **knn_text(), "rank": {"rrf": {key: 5}}, "size": 5}
    found = explanations(answer(client, {**body, "explain": True}))
    assert all(e.get(f"{leg}_rank", 0) <= 5 for e in found for leg in e["legs"])
    assert error(search(client, {**body, "size": 6}), 400)["field"] == f"rank.rrf.{key}"


def test_one_sub_search_beside_a_knn_is_the_query(client):
    query = standard()["standard"]["query"]
    rrf = {"rrf": {"rank_constant": 1}}
    subs = answer(client, {"sub_searches": [{"query": query}], **knn_text(), "rank": rrf})
    assert subs["hits"]["hits"] == answer(client, {"query": query, **knn_text(), "rank": rrf})["hits"]["hits"]


def test_one_sub_search_alone_is_the_query_with_its_sort(client):
    query = {"match": {"title": "sofa"}}
    alone = answer(client, {"sub_searches": [{"query": query}], "sort": [{"price": "asc"}]})
    assert alone["hits"]["hits"] == answer(client, {"query": query, "sort": [{"price": "asc"}]})["hits"]["hits"]


def test_a_second_sub_search_is_a_501_naming_it(client):
    body = {"sub_searches": [{"query": {"match": {"title": "sofa"}}}] * 2, **knn_text(), "rank": {"rrf": {}}}
    assert error(search(client, body), 501)["unsupported"] == "sub_searches[1]"


def test_sub_searches_beside_a_query_is_a_400(client):
    body = {"query": {"match": {"title": "sofa"}}, "sub_searches": [{"query": {"match": {"title": "sofa"}}}]}
    assert error(search(client, {**body, **knn_text()}), 400)["field"] == "sub_searches"


def test_rank_without_two_result_sets_is_a_400_naming_it(client):
    assert error(search(client, {"query": {"match": {"title": "sofa"}}, "rank": {"rrf": {}}}), 400)["field"] == "rank"


def test_a_rank_other_than_rrf_is_a_501_naming_it(client):
    body = {"query": {"match": {"title": "sofa"}}, **knn_text(), "rank": {"linear": {}}}
    assert error(search(client, body), 501)["unsupported"] == "rank.linear"


def test_a_knn_filter_the_query_does_not_hold_is_a_501_naming_it(client):
    # Elasticsearch filters the kNN search alone; the pipeline holds both legs to one set of filters.
    body = {"query": {"match": {"title": "sofa"}}, **knn_text(filter={"term": {"brand.keyword": a_brand(client)}})}
    assert error(search(client, body), 501)["unsupported"] == "knn.filter"


def test_a_knn_filter_alone_holds_its_nearest_products(client):
    brand = a_brand(client)
    hits = answer(client, {**knn_text(filter={"term": {"brand.keyword": brand}}), "size": 10})["hits"]["hits"]
    assert hits and all(hit["_source"]["brand"] == brand for hit in hits)


def test_a_second_knn_search_is_a_501_naming_it(client):
    assert error(search(client, {"knn": [knn_text()["knn"]] * 2}), 501)["unsupported"] == "knn[1]"


def test_a_knn_in_a_list_of_one_is_that_knn(client):
    listed = answer(client, {"knn": [knn_text()["knn"]]})
    assert listed["hits"]["hits"] == answer(client, knn_text())["hits"]["hits"]


def test_a_knn_boost_is_ignored_and_said(client):
    answered = answer(client, knn_text(boost=2.0))
    assert "knn.boost (the legs are fused, not their scores added)" in answered["search_rerank"]["ignored"]


@pytest.mark.parametrize("sort", [[{"price": "asc"}], ["title"], {"_score": "asc"}])
def test_a_top_level_knn_beside_a_sort_is_a_501_naming_it(client, sort):
    assert error(search(client, {**knn_text(), "sort": sort}), 501)["unsupported"] == "sort"


def test_a_top_level_knn_beside_a_relevance_sort_is_searched(client):
    assert answer(client, {**knn_text(), "sort": ["_score", {"_score": {"order": "desc"}}]})["hits"]["hits"]


def test_a_top_level_knn_k_above_the_served_candidates_is_a_403_naming_it(client):
    body = {"query": {"match": {"title": "sofa"}}, **knn_text(k=500, num_candidates=500)}
    assert error(search(client, body), 403)["field"] == "knn.k"
    admin = client.post("/products/_search", json=body, headers=ADMIN)
    assert admin.status_code == 200, admin.get_json()


def test_a_top_level_knn_vector_of_another_length_is_a_400_naming_it(client):
    body = {"knn": {"field": "vector", "query_vector": [0.1, 0.2], "k": 3}}
    assert error(search(client, body), 400)["field"] == "knn.query_vector"


def test_searchkit_hybrid_search_on_the_cluster_backend_keeps_to_its_filter(hybrid_cluster_client):
    body = searchkit_hybrid("Acme")
    body["query"]["bool"]["must"] = {"multi_match": {"query": "sofa", "fields": ["title", "brand"]}}
    body["knn"]["query_vector_builder"]["text_embedding"]["model_text"] = "sofa"
    del body["aggs"]
    answered = answer(hybrid_cluster_client, body)
    assert {leg for e in explanations(answered) for leg in e["legs"]} == {LEXICAL, DENSE}
    assert answered["hits"]["hits"] and all(hit["_source"]["brand"] == "Acme" for hit in answered["hits"]["hits"])


@pytest.mark.parametrize(
    ("extra", "params", "named"),
    [
        ({}, "?scroll=1m", "scroll"),
        ({"min_score": 0.5}, "", "min_score"),
        ({"terminate_after": 3}, "", "terminate_after"),
        ({"size": 0}, "", "size"),
    ],
)
def test_a_top_level_knn_the_clusters_own_page_would_leave_out_is_a_501_naming_why(
    hybrid_cluster_client, extra, params, named
):
    # Each makes the page the cluster's own: its listing of the catalogue, the kNN search nowhere in it.
    response = hybrid_cluster_client.post(f"/products/_search{params}", json={**knn_text("sofa", k=2), **extra})
    assert error(response, 501)["unsupported"] == named


def test_a_hybrid_search_of_no_index_served_is_an_empty_answer(client):
    body = {"sub_searches": [{"query": {"match": {"title": "sofa"}}}], **knn_text(), "rank": {"rrf": {}}}
    answered = client.post("/nothing-here*/_search", json=body)
    assert answered.status_code == 200, answered.get_json()
    assert answered.get_json()["hits"]["hits"] == []


def test_a_query_beside_a_top_level_knn_that_is_not_an_object_is_a_400_naming_it(client):
    assert error(search(client, {"query": "sofa", **knn_text()}), 400)["field"] == "query"


@pytest.mark.parametrize("knn", [knn_text(), {"retriever": knn_text()}], ids=["top-level", "retriever"])
def test_aggregations_beside_a_knn_without_a_query_are_a_501_naming_them(client, knn):
    # Elasticsearch counts the k nearest products; facets here count what a query matches: the whole catalogue.
    body = {**knn, "aggs": {"brand": {"terms": {"field": "brand.keyword"}}}}
    assert error(search(client, body), 501)["unsupported"] == "aggs"


# ------------------------------------------------------------------ the knn query (8.12) and the semantic query (8.15)


def knn_query(**extra) -> dict:
    """The knn query: the top-level knn's keys, inside ``query``."""
    return {"knn": {**knn_text()["knn"], **extra}}


def test_a_knn_query_alone_answers_what_the_top_level_knn_answers(client):
    alone = answer(client, {"query": knn_query()})
    assert hit_ids(alone) == hit_ids(answer(client, knn_text()))
    assert alone["search_rerank"]["skipped"][LEXICAL] == NO_QUERY


def test_a_semantic_query_is_the_services_bi_encoder_embedding_its_text(client):
    semantic = answer(client, {"query": {"semantic": {"field": "semantic_title", "query": TEXT}}})
    assert hit_ids(semantic) == hit_ids(answer(client, knn_text()))


def test_a_knn_query_beside_words_in_a_bool_should_is_a_hybrid_search(client):
    # Elastic's hybrid example for the knn query: a match and a knn as should clauses, fused here as a query
    # beside a top-level knn is.
    words = {"match": {"title": TEXT}}
    hybrid = answer(client, {"query": {"bool": {"should": [words, knn_query()]}}, "explain": True})
    assert hit_ids(hybrid) == hit_ids(answer(client, {"query": words, **knn_text()}))
    assert {leg for e in explanations(hybrid) for leg in e["legs"]} == {LEXICAL, DENSE}
    assert hybrid["search_rerank"]["retriever"]["first_stage"] == "query and knn, the service's fusion"


def test_a_bools_filter_beside_a_knn_query_holds_both_legs(client):
    brand = a_brand(client)
    refined = [{"term": {"brand.keyword": brand}}]
    body = {"query": {"bool": {"should": [{"match": {"title": TEXT}}, knn_query()], "filter": refined}}}
    answered = answer(client, body)
    assert answered["hits"]["hits"] and all(hit["_source"]["brand"] == brand for hit in answered["hits"]["hits"])


def test_a_knn_querys_boost_is_listed_as_ignored(client):
    answered = answer(client, {"query": {"bool": {"should": [{"match": {"title": TEXT}}, knn_query(boost=2)]}}})
    assert (
        "query.bool.should[1].knn.boost (the legs are fused, not their scores added)"
        in (answered["search_rerank"]["ignored"])
    )


def test_a_knn_query_beside_bool_must_is_a_501_naming_it(client):
    body = {"query": {"bool": {"must": [{"match": {"title": TEXT}}], "should": [knn_query()]}}}
    assert error(search(client, body), 501)["unsupported"] == "query.bool.should[0]"


def test_a_minimum_should_match_counting_a_knn_query_is_a_501_naming_it(client):
    body = {"query": {"bool": {"should": [{"match": {"title": TEXT}}, knn_query()], "minimum_should_match": 2}}}
    assert error(search(client, body), 501)["unsupported"] == "query.bool.minimum_should_match"


def test_two_knn_queries_are_a_501_naming_the_second(client):
    body = {"query": {"bool": {"should": [knn_query(), {"semantic": {"field": "f", "query": TEXT}}]}}}
    assert error(search(client, body), 501)["unsupported"] == "query.bool.should[1]"


def test_a_knn_query_beside_a_top_level_knn_is_a_501_naming_it(client):
    assert error(search(client, {"query": knn_query(), **knn_text()}), 501)["unsupported"] == "query.knn"


def test_a_knn_querys_k_is_checked_as_the_top_level_knns(client):
    assert error(search(client, {"query": knn_query(k=20, num_candidates=10)}), 400)["field"] == (
        "query.knn.num_candidates"
    )


def test_a_semantic_query_without_its_text_is_a_400_naming_it(client):
    assert error(search(client, {"query": {"semantic": {"field": "f"}}}), 400)["field"] == "query.semantic.query"


def test_a_knn_query_inside_a_filter_stays_a_501(client):
    body = {"query": {"bool": {"filter": [knn_query()], "should": [{"match": {"title": TEXT}}]}}}
    assert search(client, body).status_code == 501


def test_a_knn_query_in_a_bool_should_is_a_hybrid_search_on_the_cluster_backend(hybrid_cluster_client):
    words = {"match": {"title": "sofa"}}
    body = {"query": {"bool": {"should": [words, knn_query()], "filter": [{"term": {"brand": "Acme"}}]}}}
    answered = answer(hybrid_cluster_client, {**body, "explain": True, "size": 10})
    assert answered["hits"]["hits"] and all(hit["_source"]["brand"] == "Acme" for hit in answered["hits"]["hits"])
    assert {leg for e in explanations(answered) for leg in e["legs"]} == {LEXICAL, DENSE}
