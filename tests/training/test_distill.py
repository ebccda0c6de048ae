"""Distillation: a student of the teacher's first layers, trained on its logits, exported and timed per runtime."""

import shutil
from datetime import UTC, datetime

import pytest

from search_rerank.core.model_card import ModelCard, SplitSize, TrainingData, load_card, save_card
from search_rerank.core.rerank import ONNX_INT8_FILE, RUNTIMES
from search_rerank.training.distill import DistillTraining, train_distilled


@pytest.fixture(scope="module")
def small(built_index):
    built = built_index(products=200, queries=60, seed=5, dense={"enabled": False}, longtail={"enabled": False})
    return built.pipeline(), built.dataset()


@pytest.fixture(scope="module")
def teacher(tmp_path_factory, tiny_cross_encoder_dir):
    directory = tmp_path_factory.mktemp("registry") / "teacher"
    shutil.copytree(tiny_cross_encoder_dir, directory)
    card = ModelCard(
        kind="reranker",
        name="teacher",
        base_model="tiny",
        created=datetime.now(UTC),
        data=TrainingData(
            path="d", name="gen", label_source="judgments", splits={"train": SplitSize(queries=1, pairs=1)}
        ),
        parameters={"max_length": 48},
        seed=1,
        promoted=True,
        promotion_reason="dev comparison",
        dev_metrics={"model_ndcg10": 0.6, "first_stage_ndcg10": 0.5, "best_blend": 0.5},
        training_seconds=1.0,
        pairs_per_second=1.0,
        library_versions={},
    )
    save_card(card, directory)
    return directory, card


@pytest.fixture(scope="module")
def distilled(small, teacher, tmp_path_factory):
    pipeline, data = small
    config = DistillTraining(
        layers=1, depth=10, max_pairs=120, eval_steps=4, batch_size=16, window=10, dev_queries=6, latency_queries=2
    )
    out = tmp_path_factory.mktemp("student") / "student"
    card = train_distilled(pipeline, *teacher, data.split("train"), data.split("dev"), out, config, progress=False)
    return out, card


def test_the_student_keeps_only_the_first_layers_asked_for(distilled):
    from transformers import AutoConfig

    out, card = distilled
    assert AutoConfig.from_pretrained(str(out)).num_hidden_layers == 1
    assert card.parameters["student_parameters"] < card.parameters["teacher_parameters"]


def test_the_card_records_teacher_runtime_and_a_latency_per_runtime(distilled, teacher):
    out, card = distilled
    assert load_card(out) == card
    assert card.parameters["teacher"] == "teacher" and card.parameters["runtime"] in RUNTIMES
    assert set(card.parameters["cpu_latency_ms"]) == {"teacher", *RUNTIMES}
    assert {"model_ndcg10", "teacher_model_ndcg10", "first_stage_ndcg10"} <= set(card.dev_metrics)
    assert card.data.splits["train"].pairs == 120


def test_the_int8_onnx_export_is_saved_beside_the_weights(distilled):
    out, _ = distilled
    assert (out / ONNX_INT8_FILE).is_file() and not (out / "model.onnx").exists()
