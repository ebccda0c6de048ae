"""What makes the encoder's fine-tune fast enough on a CPU: training length from the data, a frozen token-embedding
matrix, evaluations spaced out for long runs, and native bf16 where the hardware has it."""

import pytest

from search_rerank.backends.encoder import resolve_model_path
from search_rerank.core.device import training_precision
from search_rerank.core.errors import ConfigError
from search_rerank.core.settings import PACKAGED_MINILM
from search_rerank.training.encoder import (
    EncoderTraining,
    evaluation_interval,
    freeze_word_embeddings,
    training_seq_length,
)


@pytest.fixture(scope="module")
def tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(resolve_model_path(PACKAGED_MINILM), local_files_only=True)


def test_training_length_is_the_quantile_of_the_texts_token_lengths(tokenizer):
    title = "Bosch GSR 18V-55 cordless drill driver, 2 x 2.0 Ah batteries"
    texts = [title] * 39 + ["cordless drill " * 40]  # one outlier in forty
    length = training_seq_length(tokenizer, texts, 0.95, 256)
    assert length == len(tokenizer(title)["input_ids"]) > 8


def test_training_length_never_exceeds_the_served_length(tokenizer):
    assert training_seq_length(tokenizer, ["cordless drill " * 40] * 5, 0.95, 64) == 64


def test_freezing_leaves_only_the_token_embedding_matrix_untrainable(tiny_bert_dir):
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    frozen = freeze_word_embeddings(model)
    untrainable = [name for name, p in model.named_parameters() if not p.requires_grad]
    assert len(untrainable) == 1 and untrainable[0].endswith("word_embeddings.weight")
    assert frozen == dict(model.named_parameters())[untrainable[0]].numel()


def test_a_long_run_spaces_its_evaluations_out():
    assert evaluation_interval(steps=2000, eval_steps=200, max_evaluations=4) == 500


def test_a_short_run_evaluates_every_eval_steps():
    assert evaluation_interval(steps=300, eval_steps=200, max_evaluations=4) == 200


def test_an_unknown_precision_is_refused_when_the_config_is_made():
    with pytest.raises(ConfigError, match="precision must be one of"):
        EncoderTraining(precision="bf8")


def test_fp16_training_on_the_cpu_is_refused():
    with pytest.raises(ConfigError, match="CUDA"):
        training_precision("cpu", "fp16")


def test_auto_precision_on_the_cpu_is_bf16_exactly_where_onednn_has_native_bf16():
    import torch

    assert training_precision("cpu", "auto") == (bool(torch.ops.mkldnn._is_mkldnn_bf16_supported()), False)


def test_fp32_is_kept_when_asked_for():
    assert training_precision("cpu", "fp32") == (False, False)


def test_a_length_quantile_outside_zero_to_one_is_refused():
    with pytest.raises(ConfigError, match="length_quantile"):
        EncoderTraining(length_quantile=1.5)


def test_dev_evaluation_reads_texts_as_long_as_served_whatever_the_training_length(tiny_bert_dir):
    from sentence_transformers import SentenceTransformer

    from search_rerank.data.dataset import Query
    from search_rerank.training.encoder import DevDenseEvaluator

    queries = {f"q{i}": Query(f"q{i}", text) for i, text in enumerate(("red drill", "blue saw", "green hammer"))}
    tools = [("red", "drill"), ("blue", "saw"), ("green", "hammer"), ("red", "saw"), ("blue", "hammer")]
    # what tells the products apart comes after the first 8 tokens: cut there, they all read the same
    pool = {f"p{i}": f"this product is one of our tools: {colour} {tool}" for i, (colour, tool) in enumerate(tools)}
    qrels = {"q0": {"p0": 2}, "q1": {"p1": 2}, "q2": {"p2": 2}}
    model = SentenceTransformer(str(tiny_bert_dir), device="cpu")
    model.max_seq_length = 64
    served = DevDenseEvaluator(queries, qrels, pool).ndcg(model)
    model.max_seq_length = 8
    assert DevDenseEvaluator(queries, qrels, pool).ndcg(model) != served  # the cut matters to this metric
    evaluator = DevDenseEvaluator(queries, qrels, pool, max_seq_length=64)
    assert evaluator.ndcg(model) == served and model.max_seq_length == 8


def test_measuring_long_product_texts_warns_of_no_indexing_errors(caplog):
    """Home Depot's descriptions run to 5,000 characters: measured untruncated, transformers warned that running
    the 1,333-token sequence "through the model will result in indexing errors", which training never does."""
    from transformers import AutoTokenizer

    fresh = AutoTokenizer.from_pretrained(resolve_model_path(PACKAGED_MINILM), local_files_only=True)
    with caplog.at_level("WARNING"):
        assert training_seq_length(fresh, ["cordless drill " * 400] * 5, 0.95, 64) == 64
    assert "indexing errors" not in caplog.text
