"""Builds with the dense leg on the engine's kNN (``dense.backend = "engine"``): vectors in the cluster documents.

osmem-server maps ``knn_vector`` fields and stores their values but has no
kNN search ("[knn] query is not supported by osmem") and no ``dense_vector``,
so against it these tests check what the build writes (OpenSearch; the
Elasticsearch variants run where ``ES_URL`` names a real cluster). The kNN
searches themselves run only against a real Elasticsearch (``ES_URL``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
from servers import server_retriever, server_settings

from search_rerank.backends.encoder import BiEncoder
from search_rerank.backends.engine_knn import EngineKnnRetriever
from search_rerank.core.errors import ConfigError
from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.core.retrieval import DENSE
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import build_index, open_pipeline, update_index

CATALOG = [
    Product(id="s1", title="grey corner sofa", brand="Acme", category="Furniture > Sofas", price=499.0),
    Product(id="s2", title="brown leather sofa", brand="Bolt", category="Furniture > Sofas", price=899.0),
    Product(id="t1", title="oak dining table", brand="Acme", category="Furniture > Tables", price=249.5),
    Product(id="l1", title="brass desk lamp", brand="Bolt", category="Lighting", price=39.0),
]
FIELD = "embedding"
NEEDS_REAL_CLUSTER = (
    "osmem-server has no kNN search ('[knn] query is not supported by osmem'); "
    "set ES_URL to a real Elasticsearch 9 to run it"
)


@pytest.fixture
def lexical(server_engine, request):
    """Lexical settings for a new alias; every index version is deleted afterwards."""
    if server_engine == "elasticsearch" and not os.environ.get("ES_URL"):
        pytest.skip(
            "Elasticsearch kNN builds need ES_URL: osmem-server has no dense_vector field type "
            "(it refuses the mapping with mapper_parsing_exception)"
        )
    settings = server_settings(server_engine, request)
    yield settings
    cleaner = server_retriever(settings)
    for name in cleaner.aliases(f"{settings.index}*"):
        cleaner.delete_index(name)


def engine_settings(tmp_path: Path, lexical, model: Path | str) -> Settings:
    return Settings(
        index_dir=tmp_path / "index",
        lexical=lexical,
        dense={"backend": "engine", "model": str(model), "device": "cpu", "batch_size": 4},
    )


@pytest.fixture
def settings(tmp_path, lexical, tiny_bert_dir) -> Settings:
    return engine_settings(tmp_path, lexical, tiny_bert_dir)


@pytest.fixture
def encoder(settings) -> BiEncoder:
    return BiEncoder(settings.dense)


def stored_vector(settings: Settings, product_id: str) -> np.ndarray:
    client = server_retriever(settings.lexical)._client
    options = {"source_exclude_vectors": False} if settings.lexical.backend == "elasticsearch" else {}
    doc = client.get(index=settings.lexical.index, id=product_id, **options)
    return np.asarray(getattr(doc, "body", doc)["_source"][FIELD], dtype=np.float32)


def expected_vector(encoder: BiEncoder, product: Product) -> np.ndarray:
    return encoder.encode_documents([product.embedding_text()])[0]


def test_build_stores_the_encoders_vector_in_each_product_document(settings, encoder):
    build_index(CATALOG, settings, progress=False)
    for product in CATALOG:
        np.testing.assert_allclose(
            stored_vector(settings, product.id), expected_vector(encoder, product), rtol=1e-5, atol=1e-6
        )


def test_build_maps_the_vector_field_with_the_encoders_dimension(settings, encoder):
    build_index(CATALOG, settings, progress=False)
    spec = server_retriever(settings.lexical).mapping()["properties"][FIELD]
    engine = settings.lexical.backend
    assert spec["type"] == {"elasticsearch": "dense_vector", "opensearch": "knn_vector"}[engine]
    assert spec[{"elasticsearch": "dims", "opensearch": "dimension"}[engine]] == encoder.dim == 32


def test_build_writes_no_faiss_index_and_records_the_encoder_and_backend(settings):
    report = build_index(CATALOG, settings, progress=False)
    root = settings.index_dir / "versions" / report.version
    manifest = json.loads((root / "manifest.json").read_text(encoding="utf-8"))
    assert not (root / "dense").exists()
    assert manifest["dense_model"] == settings.dense.model and manifest["dense"]["backend"] == "engine"


def test_opened_engine_leg_counts_every_product_with_a_vector(settings):
    build_index(CATALOG, settings, progress=False)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    assert pipeline.legs[DENSE].count() == len(CATALOG)


def test_incremental_update_replaces_the_vector(settings, encoder):
    build_index(CATALOG, settings, progress=False)
    changed = Product(id="t1", title="walnut coffee table", brand="Acme", category="Furniture > Tables")
    update_index([changed], [], settings, progress=False)
    vector = stored_vector(settings, "t1")
    np.testing.assert_allclose(vector, expected_vector(encoder, changed), rtol=1e-5, atol=1e-6)
    assert not np.allclose(vector, expected_vector(encoder, CATALOG[2]))


def test_incremental_delete_removes_the_document_with_its_vector(settings):
    build_index(CATALOG, settings, progress=False)
    update_index([], ["l1"], settings, progress=False)
    cluster = server_retriever(settings.lexical)
    assert cluster.count({"ids": {"values": ["l1"]}}) == 0
    assert open_pipeline(settings).legs[DENSE].count() == len(CATALOG) - 1


def test_another_encoder_is_refused_for_an_engine_index(settings, tmp_path, tiny_bert_dir):
    build_index(CATALOG, settings, progress=False)
    other = tmp_path / "same-weights-other-name"
    other.symlink_to(tiny_bert_dir, target_is_directory=True)
    renamed = settings.override(dense={"model": str(other)})
    with pytest.raises(ConfigError, match="was built with the encoder"):
        open_pipeline(renamed)
    with pytest.raises(ConfigError, match="was built with the encoder"):
        update_index(CATALOG[:1], [], renamed, progress=False)


def test_engine_backend_on_a_version_built_with_faiss_is_a_config_error(settings):
    build_index(CATALOG, settings.override(dense={"backend": "faiss"}), progress=False)
    with pytest.raises(ConfigError, match="built with dense.backend='faiss'.*rebuild"):
        open_pipeline(settings)


def test_faiss_backend_on_a_version_built_with_engine_knn_is_a_config_error(settings):
    build_index(CATALOG, settings, progress=False)
    with pytest.raises(ConfigError, match="built with dense.backend='engine'.*needs a FAISS index"):
        open_pipeline(settings.override(dense={"backend": "faiss"}))


def test_engine_leg_refuses_an_index_without_the_vector_field(settings, encoder):
    build_index(CATALOG, settings.override(dense={"enabled": False}), progress=False)
    leg = EngineKnnRetriever(server_retriever(settings.lexical), encoder, settings.dense)
    with pytest.raises(ConfigError, match="has no vector field 'embedding'"):
        leg.warm_up()


# ------------------------------------------------------------------ kNN on a real cluster


@pytest.fixture
def es_settings(tmp_path, request, tiny_bert_dir):
    if not os.environ.get("ES_URL"):
        pytest.skip(NEEDS_REAL_CLUSTER)
    lexical = server_settings("elasticsearch", request)
    yield engine_settings(tmp_path, lexical, tiny_bert_dir)
    cleaner = server_retriever(lexical)
    for name in cleaner.aliases(f"{lexical.index}*"):
        cleaner.delete_index(name)


def test_knn_on_a_real_cluster_finds_the_product_nearest_to_its_own_text(es_settings):
    build_index(CATALOG, es_settings, progress=False)
    pipeline = open_pipeline(es_settings)
    pipeline.warm_up()
    for product in CATALOG:
        [nearest] = pipeline.legs[DENSE].search(product.embedding_text(), 1)
        assert nearest.product_id == product.id
        assert nearest.score == pytest.approx(1.0, abs=1e-3)


def test_knn_on_a_real_cluster_applies_filters_inside_the_search(es_settings):
    build_index(CATALOG, es_settings, progress=False)
    pipeline = open_pipeline(es_settings)
    pipeline.warm_up()
    filters = Filters(brand=["Bolt"], price_max=100.0)
    found = pipeline.legs[DENSE].search(CATALOG[0].embedding_text(), 10, filters)
    # Only l1 passes, though s1 is the nearest to the query: the filter ran inside the kNN, not after a top-k.
    assert [c.product_id for c in found] == ["l1"]
