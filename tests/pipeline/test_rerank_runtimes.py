"""The reranker runtimes a card can name: torch, torch's int8 quantisation, and an ONNX Runtime int8 export."""

import shutil
from datetime import UTC, datetime

import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.device import inference_bf16, native_cpu_bf16
from search_rerank.core.errors import ConfigError
from search_rerank.core.model_card import ModelCard, SplitSize, TrainingData, save_card
from search_rerank.core.rerank import CrossEncoderReranker, OnnxReranker, make_reranker
from search_rerank.core.settings import RerankSettings, Settings
from search_rerank.indexing.indexes import load_reranker
from search_rerank.training.distill import export_onnx_int8

TEXTS = {f"p{i:02d}": f"product number {i} {'sofa' if i % 3 else 'lamp'} in grey" for i in range(20)}


def fused(n: int) -> list[Candidate]:
    return [Candidate(product_id=f"p{i:02d}", score=float(n - i), legs=frozenset({"lexical"})) for i in range(n)]


@pytest.fixture(scope="module")
def exported(tmp_path_factory, tiny_cross_encoder_dir):
    """The tiny cross-encoder with its ONNX int8 export beside it, as `train distill` leaves a student."""
    from sentence_transformers.cross_encoder import CrossEncoder

    directory = tmp_path_factory.mktemp("exported") / "student"
    shutil.copytree(tiny_cross_encoder_dir, directory)
    export_onnx_int8(CrossEncoder(str(directory), device="cpu", max_length=64), directory, 64)
    return directory


def settings(directory, **extra) -> RerankSettings:
    return RerankSettings(model=str(directory), device="cpu", window=10, max_length=64, **extra)


def test_onnx_int8_scores_match_the_torch_model_within_quantisation_error(exported):
    torch_probs = CrossEncoderReranker(settings(exported)).score("grey sofa", list(TEXTS.values()))
    onnx_probs = OnnxReranker(settings(exported)).score("grey sofa", list(TEXTS.values()))
    assert onnx_probs.shape == torch_probs.shape
    assert np.abs(onnx_probs - torch_probs).max() < 0.02


def test_onnx_reranker_reorders_only_the_window_like_the_torch_one(exported):
    out = OnnxReranker(settings(exported)).run("sofa", fused(20), TEXTS)
    assert [c.product_id for c in out[10:]] == [f"p{i:02d}" for i in range(10, 20)]
    assert all(0.0 < c.features["rerank"] < 1.0 for c in out[:10])


@pytest.fixture
def pretokenised(exported, tmp_path):
    """TEXTS' token ids stored as an index version stores them, and the texts the stage is given for them."""
    from transformers import AutoTokenizer

    from search_rerank.core.pretokenised import PretokenisedTexts, TokenWriter, tokenizer_identity
    from search_rerank.core.product import Product

    tokenizer = AutoTokenizer.from_pretrained(str(exported))
    writer = TokenWriter(tokenizer, tokenizer_identity(tokenizer, str(exported), 64))
    writer.add(Product(id=pid, title=text) for pid, text in TEXTS.items())
    writer.save(tmp_path / "tokens")
    texts = {pid: Product(id=pid, title=text).embedding_text() for pid, text in TEXTS.items()}
    return PretokenisedTexts.open(tmp_path / "tokens"), texts


def test_onnx_reranker_scores_pretokenised_pairs_as_it_scores_text_pairs(exported, pretokenised):
    """With stored ids the stage calls the model on assembled tensors: the ONNX session must answer that call too."""
    stored, texts = pretokenised
    reranker = OnnxReranker(settings(exported, blend=1.0), pretokenised=stored)
    reranker.warm_up()
    assert reranker.pairs is not None
    out = {c.product_id: c.features["rerank"] for c in reranker.run("grey sofa", fused(10), texts)}
    direct = dict(zip(list(texts)[:10], reranker.score("grey sofa", list(texts.values())[:10])))
    assert out == pytest.approx(direct, abs=1e-4)


def test_torch_int8_runtime_quantises_the_linear_layers(exported):
    import torch

    model = make_reranker(settings(exported), runtime="torch-int8").model
    kinds = {type(m).__module__ for m in model.modules() if "Linear" in type(m).__name__}
    assert any("quantized" in k for k in kinds), kinds
    assert isinstance(model[0].model, torch.nn.Module)


def test_an_unknown_runtime_is_refused(exported):
    with pytest.raises(ConfigError, match="unknown reranker runtime"):
        make_reranker(settings(exported), runtime="tensorrt")


def test_a_missing_onnx_export_is_refused_with_the_file_named(tiny_cross_encoder_dir):
    with pytest.raises(ConfigError, match="model.int8.onnx is missing"):
        OnnxReranker(settings(tiny_cross_encoder_dir)).warm_up()


def _card(name: str, runtime: str) -> ModelCard:
    return ModelCard(
        kind="reranker",
        name=name,
        base_model="tiny",
        created=datetime.now(UTC),
        data=TrainingData(
            path="d", name="shop", label_source="judgments", splits={"train": SplitSize(queries=1, pairs=1)}
        ),
        parameters={"max_length": 64, "runtime": runtime},
        seed=1,
        promoted=True,
        promotion_reason="dev comparison",
        dev_metrics={"model_ndcg10": 0.6, "first_stage_ndcg10": 0.5, "best_blend": 0.5},
        training_seconds=1.0,
        pairs_per_second=1.0,
        library_versions={},
    )


@pytest.mark.parametrize("runtime, cls", [("onnx-int8", OnnxReranker), ("torch-int8", CrossEncoderReranker)])
def test_serving_picks_the_runtime_the_card_names(tmp_path, exported, runtime, cls):
    shutil.copytree(exported, tmp_path / "student")
    save_card(_card("student", runtime), tmp_path / "student")
    reranker = load_reranker(Settings(index_dir=tmp_path / "idx", models_dir=tmp_path, rerank={"model": "student"}))
    assert type(reranker) is cls and reranker.runtime == runtime


def test_bf16_precision_moves_the_scores_by_at_most_a_few_hundredths(exported):
    texts = list(TEXTS.values())
    fp32 = CrossEncoderReranker(settings(exported, precision="fp32")).score("grey sofa", texts)
    bf16 = CrossEncoderReranker(settings(exported, precision="bf16")).score("grey sofa", texts)
    assert not np.array_equal(fp32, bf16)  # autocast did run
    assert np.abs(fp32 - bf16).max() < 0.02


def test_bf16_precision_applies_to_stored_ids_as_to_text_pairs(exported, pretokenised):
    stored, texts = pretokenised

    def rerank_features(precision: str) -> list[float]:
        reranker = CrossEncoderReranker(settings(exported, blend=1.0, precision=precision), pretokenised=stored)
        reranker.warm_up()
        assert reranker.pairs is not None
        return [c.features["rerank"] for c in reranker.run("grey sofa", fused(10), texts)]

    fp32, bf16 = rerank_features("fp32"), rerank_features("bf16")
    assert fp32 != bf16
    assert np.abs(np.array(fp32) - np.array(bf16)).max() < 0.02


def test_auto_precision_scores_in_bf16_exactly_where_the_cpu_has_it_natively(exported):
    reranker = CrossEncoderReranker(settings(exported))
    reranker.warm_up()
    assert reranker.bf16 == native_cpu_bf16()


@pytest.mark.parametrize("runtime", ["torch-int8", "onnx-int8"])
def test_the_int8_runtimes_never_autocast(exported, runtime):
    reranker = make_reranker(settings(exported, precision="bf16"), runtime=runtime)
    reranker.warm_up()
    assert not reranker.bf16


def test_only_a_cpu_model_scores_under_bf16_autocast():
    assert inference_bf16("cpu", "bf16")
    assert not inference_bf16("cpu", "fp32")
    assert not inference_bf16("cuda", "bf16")  # the GPU reranker casts its weights itself


def test_an_unknown_precision_is_refused():
    with pytest.raises(ConfigError, match="precision"):
        inference_bf16("cpu", "int4")


def forward_calls(reranker: CrossEncoderReranker) -> list[int]:
    """How many batches the reranker's model has scored, counted by a forward hook on the model itself."""
    reranker.warm_up()
    calls = [0]
    reranker.model[0].register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    return calls


def test_a_rerank_past_its_deadline_stops_scoring_text_pairs_and_says_so(exported):
    # Its caller has answered without it: each batch more would take the CPU from searches still waiting.
    reranker = CrossEncoderReranker(settings(exported, batch_size=1, timeout_s=1e-9))
    calls = forward_calls(reranker)
    with pytest.raises(TimeoutError):
        reranker.run("grey sofa", fused(10), TEXTS)
    assert calls[0] < 10


def test_a_rerank_past_its_deadline_stops_scoring_stored_ids_and_says_so(exported, pretokenised):
    stored, texts = pretokenised
    reranker = CrossEncoderReranker(settings(exported, batch_size=1, timeout_s=1e-9), pretokenised=stored)
    calls = forward_calls(reranker)
    assert reranker.pairs is not None
    with pytest.raises(TimeoutError):
        reranker.run("grey sofa", fused(10), texts)
    assert calls[0] < 10


def test_a_rerank_within_its_deadline_scores_every_batch(exported):
    reranker = CrossEncoderReranker(settings(exported, batch_size=1))
    calls = forward_calls(reranker)
    reranker.run("grey sofa", fused(10), TEXTS)
    assert calls[0] == 10
