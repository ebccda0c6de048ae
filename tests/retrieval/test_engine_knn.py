"""The engine kNN leg without a cluster: the request bodies per engine, the vector mapping fragment, and the
retriever's handling of requests and responses through a recording client (kNN itself needs a real
cluster: tests/backends/test_engine_knn_build.py)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from search_rerank.backends.cluster import OpenSearchRetriever, cluster_retriever
from search_rerank.backends.cluster_query import filter_clauses
from search_rerank.backends.encoder import BiEncoder
from search_rerank.backends.engine_knn import EngineKnnRetriever, cosine_hits, knn_body
from search_rerank.backends.mappings import index_body, vector_field, vector_mapping
from search_rerank.core.breaker import Guards
from search_rerank.core.errors import ConfigError, StageError
from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.retrieval import DENSE, Retriever
from search_rerank.core.settings import DenseSettings, LexicalSettings, Settings, load_settings, merged
from search_rerank.serving.delegation import FilteredDenseLeg

VECTOR = [0.6, 0.8, 0.0]
FILTERS = Filters(brand=["Acme"], price_max=500.0, attributes={"color": ["grey"]})


def lexical(engine: str) -> LexicalSettings:
    return LexicalSettings(backend=engine, url="http://127.0.0.1:9", index="products", retries=0)


def engine_dense(**overrides: Any) -> DenseSettings:
    return DenseSettings(backend="engine", **overrides)


# ------------------------------------------------------------------ request bodies


def test_elasticsearch_body_puts_the_filters_inside_the_top_level_knn():
    body = knn_body("elasticsearch", "embedding", VECTOR, 10, 200, FILTERS)
    assert body["knn"]["filter"] == filter_clauses(FILTERS)
    assert "query" not in body and "post_filter" not in body


def test_elasticsearch_body_asks_k_of_num_candidates_and_no_source():
    body = knn_body("elasticsearch", "embedding", VECTOR, 10, 200)
    assert body["knn"] == {"field": "embedding", "query_vector": VECTOR, "k": 10, "num_candidates": 200}
    assert body["size"] == 10 and body["_source"] is False


def test_body_adds_a_searchs_own_filter_clauses_to_the_filters():
    clause = {"bool": {"must_not": [{"term": {"filter.brand": "acme"}}]}}
    body = knn_body("elasticsearch", "embedding", VECTOR, 10, 200, FILTERS, clauses=[clause])
    assert body["knn"]["filter"] == [*filter_clauses(FILTERS), clause]


def test_opensearch_body_puts_the_filters_inside_the_knn_query():
    body = knn_body("opensearch", "embedding", VECTOR, 10, 200, FILTERS)
    assert body["query"]["knn"]["embedding"]["filter"] == {"bool": {"filter": filter_clauses(FILTERS)}}
    assert "post_filter" not in body


def test_opensearch_body_takes_num_candidates_as_k_and_keeps_size_k():
    body = knn_body("opensearch", "embedding", VECTOR, 10, 200)
    assert body["query"] == {"knn": {"embedding": {"vector": VECTOR, "k": 200}}}
    assert body["size"] == 10 and body["_source"] is False


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_num_candidates_below_k_is_raised_to_k_and_capped_at_the_engine_limit(engine):
    def candidates(body):
        return body["knn"]["num_candidates"] if engine == "elasticsearch" else body["query"]["knn"]["e"]["k"]

    assert candidates(knn_body(engine, "e", VECTOR, 50, 10)) == 50
    assert candidates(knn_body(engine, "e", VECTOR, 5000, 10_000)) == 10_000


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_no_filters_sends_no_filter_clause(engine):
    body = knn_body(engine, "embedding", VECTOR, 5, 100, Filters())
    assert "filter" not in str(body)


def test_unknown_engine_lists_the_valid_ones():
    with pytest.raises(ConfigError, match=r"\['elasticsearch', 'opensearch'\]"):
        knn_body("solr", "embedding", VECTOR, 5, 100)


def test_cosine_hits_turn_engine_scores_back_into_cosines_with_ties_by_id():
    response = {
        "hits": {"hits": [{"_id": "b", "_score": 0.75}, {"_id": "a", "_score": 0.75}, {"_id": "c", "_score": 1.0}]}
    }
    assert cosine_hits(response) == [("c", 1.0), ("a", 0.5), ("b", 0.5)]


# ------------------------------------------------------------------ mapping fragment


def test_elasticsearch_fragment_is_an_indexed_cosine_hnsw_dense_vector_with_the_encoder_dims():
    fragment = vector_mapping("elasticsearch", 32, engine_dense(hnsw_m=24, hnsw_ef_construction=150))
    spec = fragment["mappings"]["properties"][vector_field("elasticsearch", 1)]
    assert spec["type"] == "dense_vector" and spec["dims"] == 32
    assert spec["index"] is True and spec["similarity"] == "cosine"
    assert spec["index_options"] == {"type": "hnsw", "m": 24, "ef_construction": 150}


def test_opensearch_fragment_is_a_lucene_hnsw_knn_vector_with_the_encoder_dimension_and_index_knn():
    fragment = vector_mapping("opensearch", 32, engine_dense(hnsw_m=24, hnsw_ef_construction=150))
    spec = fragment["mappings"]["properties"][vector_field("opensearch", 1)]
    assert spec["type"] == "knn_vector" and spec["dimension"] == 32
    assert spec["method"] == {
        "name": "hnsw",
        "space_type": "cosinesimil",
        "engine": "lucene",
        "parameters": {"m": 24, "ef_construction": 150},
    }
    assert fragment["settings"]["index"]["knn"] is True


@pytest.mark.parametrize("engine", ["elasticsearch", "opensearch"])
def test_fragment_merged_into_the_product_index_keeps_every_product_field(engine):
    base = index_body(lexical(engine))
    body = merged(base, vector_mapping(engine, 32, engine_dense()))
    assert set(body["mappings"]["properties"]) == set(base["mappings"]["properties"]) | {"embedding"}
    assert body["mappings"]["dynamic"] == "strict"
    assert body["mappings"]["_meta"]["mapping_version"] == 5
    assert body["mappings"]["_meta"]["vector_mapping_version"] == 1
    assert body["settings"]["index"]["similarity"] == base["settings"]["index"]["similarity"]


def test_missing_vector_mapping_version_is_a_config_error_listing_the_available_ones():
    with pytest.raises(ConfigError, match=r"vectors\.opensearch\.v9\.json.*available versions: \[1\]"):
        vector_mapping("opensearch", 32, engine_dense(vector_mapping_version=9))


def test_cluster_leg_creates_indexes_with_its_extension():
    client = RecordingClient()
    leg = OpenSearchRetriever(
        lexical("opensearch"), client=client, index_extension=vector_mapping("opensearch", 3, engine_dense())
    )
    leg.bound_to("products-new").create_index("products-new")
    [(name, body)] = client.created
    assert name == "products-new" and body["mappings"]["properties"]["embedding"]["dimension"] == 3


# ------------------------------------------------------------------ settings


def test_engine_backend_with_the_embedded_lexical_leg_is_a_config_error():
    with pytest.raises(ConfigError, match=r"dense.backend='engine'.*lexical.backend is 'tantivy'"):
        load_settings(dense={"backend": "engine"})


def test_engine_backend_with_a_cluster_lexical_leg_is_accepted():
    settings = load_settings(dense={"backend": "engine"}, lexical={"backend": "opensearch", "url": "http://h:9200"})
    assert settings.dense.backend == "engine"


# ------------------------------------------------------------------ the retriever, through a recording client


class RecordingClient:
    """Answers like a cluster holding a vector field of ``dims`` dimensions; records what it was sent."""

    def __init__(
        self, dims: int = 32, hits: list[dict[str, Any]] | None = None, fail: bool = False, gone: bool = False
    ):
        self.dims, self.hits, self.fail, self.gone = dims, hits or [], fail, gone
        self.searches: list[dict[str, Any]] = []
        self.bulks: list[list[dict[str, Any]]] = []
        self.created: list[tuple[str, dict[str, Any]]] = []
        self.indices = self

    def search(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        if self.fail:
            import opensearchpy

            raise opensearchpy.TransportError(400, "search_phase_execution_exception", {"error": "bad"})
        self.searches.append(body)
        return {"hits": {"hits": self.hits}}

    def bulk(self, body: list[dict[str, Any]]) -> dict[str, Any]:
        self.bulks.append(body)
        return {"items": [{"index": {"status": 200, "result": "created"}} for line in body if "index" in line]}

    def exists(self, index: str) -> bool:
        return True

    def get_settings(self, index: str) -> dict[str, Any]:
        return {index: {"settings": {"index": {"number_of_shards": "1"}}}}

    def refresh(self, index: str) -> dict[str, Any]:
        return {}

    def create(self, index: str, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append((index, body))
        return {}

    def get_mapping(self, index: str) -> dict[str, Any]:
        if self.gone:  # deleted between the exists check and this call
            import opensearchpy

            error = {"error": {"type": "index_not_found_exception", "reason": f"no such index [{index}]"}}
            raise opensearchpy.NotFoundError(404, "index_not_found_exception", error)
        return {
            "products-1": {"mappings": {"properties": {"embedding": {"type": "knn_vector", "dimension": self.dims}}}}
        }


@pytest.fixture
def encoder(tiny_settings) -> BiEncoder:
    encoder = BiEncoder(tiny_settings)
    encoder.warm_up()
    return encoder


def knn_leg(encoder: BiEncoder, client: RecordingClient, **dense: Any) -> EngineKnnRetriever:
    settings = encoder.settings.model_copy(update={"backend": "engine", **dense})
    return EngineKnnRetriever(OpenSearchRetriever(lexical("opensearch"), client=client), encoder, settings)


def test_retriever_implements_the_protocol_as_the_dense_leg(encoder):
    leg = knn_leg(encoder, RecordingClient())
    assert isinstance(leg, Retriever) and leg.name == DENSE


def test_search_sends_the_query_vector_from_the_same_encoder(encoder):
    client = RecordingClient()
    knn_leg(encoder, client).search("oak table", 7, FILTERS)
    [body] = client.searches
    sent = body["query"]["knn"]["embedding"]
    np.testing.assert_allclose(sent["vector"], encoder.encode_queries(["oak table"])[0], rtol=1e-6)
    assert sent["filter"] == {"bool": {"filter": filter_clauses(FILTERS)}} and body["size"] == 7


def test_search_returns_dense_candidates_with_cosine_scores(encoder):
    client = RecordingClient(hits=[{"_id": "p1", "_score": 0.9}, {"_id": "p2", "_score": 0.6}])
    found = knn_leg(encoder, client).search("oak table", 2)
    assert [(c.product_id, round(c.score, 6)) for c in found] == [("p1", 0.8), ("p2", 0.2)]
    assert all(c.legs == {DENSE} for c in found)
    assert [c.features["dense_rank"] for c in found] == [1.0, 2.0]


def test_k_zero_sends_nothing_and_negative_k_raises(encoder):
    client = RecordingClient()
    leg = knn_leg(encoder, client)
    assert leg.search("oak", 0) == [] and client.searches == []
    with pytest.raises(ValueError, match="k=-1"):
        leg.search("oak", -1)


def test_a_vector_of_another_dimension_is_refused(encoder):
    with pytest.raises(ValueError, match="3 dimensions; the index holds 32"):
        knn_leg(encoder, RecordingClient()).search_vector(np.ones(3), 5)


def test_add_writes_each_document_with_its_vector_encoded_once_per_id(encoder):
    client = RecordingClient()
    old, new = Product(id="a", title="old sofa"), Product(id="a", title="new lamp")
    assert knn_leg(encoder, client).add([old, Product(id="b", title="oak table"), new]) == 2
    [lines] = client.bulks
    docs = {doc["id"]: doc for doc in lines[1::2]}
    np.testing.assert_allclose(docs["a"]["embedding"], encoder.encode_documents([new.embedding_text()])[0], rtol=1e-6)
    assert docs["a"]["title"] == "new lamp" and len(docs["b"]["embedding"]) == encoder.dim


def test_warm_up_refuses_an_index_whose_vectors_have_another_dimension(encoder):
    with pytest.raises(ConfigError, match="holds 16-d vectors"):
        knn_leg(encoder, RecordingClient(dims=16)).warm_up()


def test_cluster_failures_are_reported_as_the_dense_stage(encoder):
    with pytest.raises(StageError) as caught:
        knn_leg(encoder, RecordingClient(fail=True)).search("oak", 5)
    assert caught.value.stage == DENSE and "kNN search" in str(caught.value)


def test_an_index_gone_at_warm_up_is_a_config_error_of_the_dense_stage(encoder):
    """Start-up says what to fix (a ConfigError ends in CannotStart), not a traceback: re-raised as a plain
    StageError of the dense stage, the cluster's answer that the index is missing lost its kind."""
    with pytest.raises(ConfigError, match="no index or alias") as caught:
        knn_leg(encoder, RecordingClient(gone=True)).warm_up()
    assert isinstance(caught.value, StageError) and caught.value.stage == DENSE


def test_engine_leg_needs_a_cluster_lexical_leg(encoder, tmp_path):
    from search_rerank.backends.tantivy_index import TantivyRetriever

    with pytest.raises(ConfigError, match="lexical leg is TantivyRetriever"):
        EngineKnnRetriever(TantivyRetriever(tmp_path, LexicalSettings()), encoder, engine_dense())


def test_cluster_retriever_passes_its_extension_to_the_index_it_is_bound_to():
    extension = vector_mapping("elasticsearch", 8, engine_dense())
    leg = cluster_retriever(lexical("elasticsearch"), extension)
    assert leg.bound_to("products-2").index_extension == extension


def test_a_guarded_leg_held_to_a_delegated_filter_sends_it_inside_the_knn_search(encoder):
    # The service calls the engine kNN leg through its breaker's guard (open_pipeline with guards).
    client = RecordingClient()
    leg = Guards.from_settings(Settings()).leg(knn_leg(encoder, client))
    clause = {"range": {"price": {"lte": 100}}}
    FilteredDenseLeg(leg, leg.inner.cluster, [clause]).search("oak table", 5)
    [body] = client.searches  # one kNN search, no check of its hits after
    assert clause in body["query"]["knn"]["embedding"]["filter"]["bool"]["filter"]
