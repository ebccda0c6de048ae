"""Pre-tokenised product texts: the pairs assembled from stored ids are the tokenizer's own, or are not used."""

import json
import logging

import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.pretokenised import (
    TOKENS_DIR,
    PairEncoder,
    PretokenisedTexts,
    TokenizerIdentity,
    tokenise_texts,
    truncated_lengths,
)
from search_rerank.core.rerank import CrossEncoderReranker
from search_rerank.core.settings import RerankSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline, update_index
from search_rerank.indexing.versions import IndexVersions

# Short, long (truncated at a 48-token pair) and punctuation-heavy queries: each side of longest_first truncation.
QUERIES = [
    "sofa",
    "grey velvet three seater sofa with oak legs for a small living room under 500 euros and fast delivery please",
    "lamp!!! ,,, ;;; brass",
    "",
]
MAX_LENGTH = 48


@pytest.fixture(scope="module")
def built(tmp_path_factory, tiny_cross_encoder_dir) -> Settings:
    root = tmp_path_factory.mktemp("pretokenised")
    generate(root / "data", GeneratorConfig(products=200, queries=5, seed=3, workers=1), progress=False)
    settings = Settings(
        index_dir=root / "idx",
        dense={"enabled": False},
        rerank={
            "model": str(tiny_cross_encoder_dir),
            "device": "cpu",
            "require_card": False,
            "max_length": MAX_LENGTH,
            "window": 40,
            "batch_size": 16,
        },
        longtail={"enabled": False},
    )
    build_index(iter_catalog(root / "data"), settings, progress=False)
    return settings


def _serving(settings: Settings):
    return IndexVersions(settings.index_dir).serving_dir()


@pytest.fixture(scope="module")
def stored(built) -> PretokenisedTexts:
    texts = PretokenisedTexts.open(_serving(built) / TOKENS_DIR)
    assert texts is not None
    return texts


@pytest.fixture(scope="module")
def products(built) -> list:
    return list(ProductStore(_serving(built) / "products.sqlite"))[:60]


@pytest.fixture(scope="module")
def reranker(built, stored) -> CrossEncoderReranker:
    reranker = CrossEncoderReranker(built.rerank, pretokenised=stored)
    reranker.warm_up()
    return reranker


def test_a_build_stores_every_products_ids_with_the_tokenizers_identity(built, stored, tiny_cross_encoder_dir):
    assert len(stored) == ProductStore(_serving(built) / "products.sqlite").count()
    assert stored.identity.name == str(tiny_cross_encoder_dir) and stored.identity.max_length == 512
    assert stored.tokens.dtype == np.uint16  # a 30k vocabulary fits: half the bytes of int32


@pytest.mark.parametrize("query", QUERIES)
def test_assembled_pairs_equal_the_tokenizers_pair_encoding_truncation_included(reranker, products, query):
    model = reranker.model
    items = [(p.id, p.embedding_text()) for p in products]
    expected = model.preprocess([(query, text) for _, text in items])
    query_ids = tokenise_texts(model.tokenizer, [query])[0]  # the query tokenised alone, as a request does
    got = reranker.pairs.features(query_ids, reranker.pairs.stored(items))
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert got[key].tolist() == expected[key].tolist(), key
    assert expected["attention_mask"].sum(dim=1).max() == MAX_LENGTH  # some pairs were truncated


@pytest.mark.parametrize("query", QUERIES)
def test_scores_from_stored_ids_equal_scores_from_tokenising(built, reranker, products, query):
    plain = CrossEncoderReranker(built.rerank.model_copy(update={"precision": "fp32"}))  # as the logits below
    plain.warm_up()
    texts = [p.embedding_text() for p in products]
    expected = plain.score(query, texts, batch_size=16)
    logits = reranker.pairs.logits(reranker.model, query, [(p.id, p.embedding_text()) for p in products], 16)
    assert 1 / (1 + np.exp(-logits)) == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("max_length", [33, 34])  # an even and an odd budget: ties split differently
def test_truncated_lengths_follow_longest_first_for_every_length_pair(reranker, max_length):
    tokenizer = reranker.model.tokenizer
    queries, texts, lengths = [], [], []
    for nq in range(0, 30):
        for nt in range(0, 30):
            queries.append(" ".join(["a"] * nq))
            texts.append(" ".join(["b"] * nt))
            lengths.append((nq, nt))
    encoded = tokenizer(queries, texts, truncation="longest_first", max_length=max_length)["input_ids"]
    a, b = tokenizer.convert_tokens_to_ids(["a", "b"])
    kept = [(ids.count(a), ids.count(b)) for ids in encoded]
    assert kept == [truncated_lengths(nq, nt, max_length) for nq, nt in lengths]


def test_the_pipeline_reranks_from_stored_ids(built):
    pipeline = open_pipeline(built)
    pipeline.warm_up()
    assert pipeline.reranker.pairs is not None
    result = pipeline.run("sofa", size=10)
    assert "rerank" in result.ranking.stages and not result.degraded


def test_stored_ids_are_refused_with_a_warning_when_the_tokenizer_differs(built, stored, caplog):
    other = PretokenisedTexts(
        stored.root, TokenizerIdentity("another model", "0" * 64, stored.identity.max_length), stored.product_ids
    )
    reranker = CrossEncoderReranker(built.rerank, pretokenised=other)
    with caplog.at_level(logging.WARNING, logger="search_rerank.core.rerank"):
        reranker.warm_up()
    assert reranker.pairs is None
    assert [r.message for r in caplog.records if "pre-tokenised" in r.message and "differs" in r.message]
    out = reranker.run("sofa", [Candidate(product_id="x", score=1.0, legs=frozenset({"lexical"}))], {"x": "a sofa"})
    assert "rerank" in out[0].features  # scored the old way


def test_stored_ids_are_refused_for_a_reranker_reading_longer_pairs_than_stored(built, stored):
    short = PretokenisedTexts(
        stored.root, TokenizerIdentity(stored.identity.name, stored.identity.vocab_sha256, 32), stored.product_ids
    )
    reranker = CrossEncoderReranker(built.rerank, pretokenised=short)
    reranker.warm_up()
    assert reranker.pairs is None


def test_a_changed_text_is_not_answered_from_the_stored_ids(stored, products):
    product = products[0]
    assert stored.get(product.id, product.embedding_text()) is not None
    assert stored.get(product.id, product.embedding_text() + " new") is None
    assert stored.get("no such product", "text") is None


def test_a_changed_text_is_tokenised_at_request_time(reranker, products):
    product = products[0]
    encoder: PairEncoder = reranker.pairs
    [fresh] = encoder.stored([(product.id, "brand new words")])
    assert fresh.ids.tolist() == reranker.model.tokenizer("brand new words", add_special_tokens=False)["input_ids"]


def test_an_update_keeps_unchanged_ids_replaces_changed_ones_and_drops_deleted(built, tmp_path, products):
    settings = built.model_copy(update={"index_dir": tmp_path / "idx"})
    build_index(products, settings, progress=False)
    changed = products[1].model_copy(update={"title": "completely renamed product"})
    update_index([changed], [products[2].id], settings, progress=False)
    texts = PretokenisedTexts.open(_serving(settings) / TOKENS_DIR)
    assert len(texts) == len(products) - 1 and products[2].id not in texts.product_ids
    assert texts.get(changed.id, changed.embedding_text()) is not None
    assert texts.get(products[3].id, products[3].embedding_text()) is not None


def test_an_update_of_a_version_built_without_ids_stores_them_all(built, tmp_path, products):
    settings = built.model_copy(update={"index_dir": tmp_path / "idx"})
    build_index(products, settings.model_copy(update={"rerank": RerankSettings(pretokenise=False)}), progress=False)
    assert not (_serving(settings) / TOKENS_DIR).exists()
    update_index([products[0]], [], settings, progress=False)
    texts = PretokenisedTexts.open(_serving(settings) / TOKENS_DIR)
    assert len(texts) == len(products)


def test_unreadable_stored_ids_are_ignored(tmp_path):
    (tmp_path / "meta.json").write_text(json.dumps({"format": 99}), encoding="utf-8")
    assert PretokenisedTexts.open(tmp_path) is None
