"""The rerank stage: a window of the fused list rescored by a cross-encoder, blended, and never fatal."""

import shutil
import time
from datetime import UTC, datetime

import numpy as np
import pytest

from search_rerank.core.candidate import Candidate
from search_rerank.core.errors import ConfigError
from search_rerank.core.model_card import ModelCard, SplitSize, TrainingData, save_card
from search_rerank.core.reasons import ERROR, TIMEOUT
from search_rerank.core.rerank import UNTRAINED_MAX_LENGTH, CrossEncoderReranker, blend, reranked
from search_rerank.core.settings import RerankSettings
from search_rerank.indexing.indexes import load_reranker, open_pipeline


def fused(n: int) -> list[Candidate]:
    return [Candidate(product_id=f"p{i:02d}", score=float(n - i), legs=frozenset({"lexical"})) for i in range(n)]


TEXTS = {f"p{i:02d}": f"product number {i} {'sofa' if i % 3 else 'lamp'}" for i in range(30)}


@pytest.fixture(scope="module")
def reranker(tiny_cross_encoder_dir):
    return CrossEncoderReranker(RerankSettings(model=str(tiny_cross_encoder_dir), device="cpu", window=10))


def test_only_the_window_is_rescored_and_the_rest_keeps_its_order_below(reranker):
    out = reranker.run("sofa", fused(30), TEXTS)
    assert [c.product_id for c in out[10:]] == [f"p{i:02d}" for i in range(10, 30)]
    assert {c.product_id for c in out[:10]} == {f"p{i:02d}" for i in range(10)}
    assert min(c.score for c in out[:10]) > max(c.score for c in out[10:])
    assert all("rerank" in c.features for c in out[:10]) and not any("rerank" in c.features for c in out[10:])


def test_blend_weight_one_orders_the_window_by_the_cross_encoder(reranker):
    settings = reranker.settings.model_copy(update={"blend": 1.0})
    out = reranker.run("sofa", fused(30), TEXTS, settings)
    probs = reranker.score("sofa", [TEXTS[f"p{i:02d}"] for i in range(10)])
    expected = [f"p{i:02d}" for i in np.argsort(-probs, kind="stable")]
    assert [c.product_id for c in out[:10]] == expected


def test_blend_weight_zero_keeps_the_first_stage_order():
    window = fused(5)
    out = blend(window, np.array([0.9, 0.1, 0.8, 0.2, 0.5]), weight=0.0)
    assert [c.product_id for c in out] == [c.product_id for c in window]


def test_blend_mixes_reranker_probability_with_min_max_first_stage_score():
    window = fused(3)  # first-stage scores 3, 2, 1 -> 1, 0.5, 0
    out = {c.product_id: c.score for c in blend(window, np.array([0.0, 1.0, 0.2]), weight=0.5)}
    assert out == pytest.approx({"p00": 0.5, "p01": 0.75, "p02": 0.1})


def test_candidates_below_the_window_keep_their_order_below_every_blended_score():
    candidates = fused(7)
    out = reranked(candidates[:3], np.array([0.9, 0.1, 0.5]), 1.0, candidates[3:])
    assert [c.product_id for c in out[3:]] == ["p03", "p04", "p05", "p06"]
    scores = [c.score for c in out]
    assert scores == sorted(scores, reverse=True) and len(set(scores)) == len(scores)


def test_candidates_below_the_window_do_not_stretch_the_lists_score_range():
    """Stages after the reranker min-max the list's scores; the window's spread must stay most of that range."""
    candidates = fused(100)
    out = reranked(candidates[:30], np.linspace(0.9, 0.6, 30), 1.0, candidates[30:])
    window_spread = out[0].score - out[29].score
    assert out[0].score - out[-1].score < 1.01 * window_spread


def test_scores_are_probabilities_in_input_order(reranker):
    texts = ["red sofa", "brass lamp", "oak table"]
    probs = reranker.score("sofa", texts)
    assert probs.shape == (3,) and np.all((probs > 0) & (probs < 1))
    assert reranker.score("sofa", texts[::-1]) == pytest.approx(probs[::-1], abs=1e-6)


def test_no_model_configured_is_refused_with_a_message():
    with pytest.raises(ValueError, match="rerank.model is not set"):
        CrossEncoderReranker(RerankSettings())


# ------------------------------------------------------------ fail-open inside the pipeline


class Hanging(CrossEncoderReranker):
    def score(self, query, texts, batch_size=None, deadline=None):
        time.sleep(3)
        return super().score(query, texts, batch_size)


class Broken(CrossEncoderReranker):
    def score(self, query, texts, batch_size=None, deadline=None):
        raise RuntimeError("CUDA out of memory")


@pytest.fixture(scope="module")
def index(built_index, tiny_cross_encoder_dir):
    return built_index(
        products=300,
        queries=10,
        seed=2,
        dense={"enabled": False},
        rerank={
            "model": str(tiny_cross_encoder_dir),
            "device": "cpu",
            "timeout_s": 0.5,
            "window": 20,
            "require_card": False,
        },
        longtail={"enabled": False},
    ).settings


def _with_reranker(settings, cls):
    pipeline = open_pipeline(settings)
    pipeline.reranker = cls(settings.rerank)
    pipeline.reranker.warm_up()
    return pipeline


def test_pipeline_reranks_the_fused_list(index):
    result = _with_reranker(index, CrossEncoderReranker).run("sofa", size=10)
    assert "rerank" in result.ranking.stages and not result.degraded
    assert all("rerank" in h.candidate.features for h in result.hits)


def test_a_reranker_that_hangs_gives_the_fused_order_within_the_deadline(index):
    pipeline = _with_reranker(index, Hanging)
    started = time.perf_counter()
    result = pipeline.run("sofa", size=10)
    assert time.perf_counter() - started < 2.5
    assert result.degraded["rerank"] == TIMEOUT
    fused_ids = [c.product_id for c in result.ranking.stages["fusion"][:10]]
    assert [h.product.id for h in result.hits] == fused_ids


def test_a_reranker_that_fails_gives_the_fused_order_and_says_why(index, caplog):
    result = _with_reranker(index, Broken).run("sofa", size=10)
    assert result.degraded["rerank"] == ERROR
    assert "CUDA out of memory" in caplog.text
    assert [h.product.id for h in result.hits] == [c.product_id for c in result.ranking.stages["fusion"][:10]]


# ------------------------------------------------------------ loading a trained model by its card


def _card(name: str, promoted: bool, blend: float = 0.7, max_length: int | None = 96) -> ModelCard:
    return ModelCard(
        kind="reranker",
        name=name,
        base_model="tiny",
        created=datetime.now(UTC),
        data=TrainingData(
            path="data", name="shop", label_source="judgments", splits={"train": SplitSize(queries=3, pairs=30)}
        ),
        parameters={} if max_length is None else {"max_length": max_length},
        seed=1,
        promoted=promoted,
        promotion_reason="dev comparison",
        dev_metrics={"model_ndcg10": 0.6 if promoted else 0.4, "first_stage_ndcg10": 0.5, "best_blend": blend},
        training_seconds=1.0,
        pairs_per_second=30.0,
        library_versions={},
    )


@pytest.fixture
def registry(tmp_path, tiny_cross_encoder_dir):
    for name, promoted in (("good", True), ("worse", False)):
        shutil.copytree(tiny_cross_encoder_dir, tmp_path / name)
        save_card(_card(name, promoted), tmp_path / name)
    shutil.copytree(tiny_cross_encoder_dir, tmp_path / "no-card")
    return tmp_path


def _settings(index, registry, **rerank):
    return index.model_copy(
        update={"models_dir": registry, "rerank": index.rerank.model_copy(update={"require_card": True, **rerank})}
    )


def test_a_registered_reranker_loads_by_name_with_the_blend_its_card_chose(index, registry):
    reranker = load_reranker(_settings(index, registry, model="good"))
    assert reranker.default_blend == 0.7
    assert reranker.settings.model == str(registry / "good")


def test_a_reranker_without_a_card_is_refused(index, registry):
    with pytest.raises(ConfigError, match="model_card.json"):
        load_reranker(_settings(index, registry, model=str(registry / "no-card")))


def test_a_reranker_that_lost_to_the_first_stage_is_refused_unless_allowed(index, registry):
    with pytest.raises(ConfigError, match="was not promoted"):
        load_reranker(_settings(index, registry, model="worse"))
    assert load_reranker(_settings(index, registry, model="worse", allow_unpromoted=True)).default_blend == 0.7


def test_a_reranker_is_served_at_the_length_it_was_trained_at(index, registry):
    assert load_reranker(_settings(index, registry, model="good")).settings.max_length == 96


def test_an_explicit_max_length_wins_over_the_card(index, registry):
    assert load_reranker(_settings(index, registry, model="good", max_length=200)).settings.max_length == 200


def test_a_card_without_a_training_length_leaves_the_untrained_default(index, registry):
    save_card(_card("good", True, max_length=None), registry / "good")
    reranker = load_reranker(_settings(index, registry, model="good"))
    reranker.warm_up()
    assert reranker.settings.max_length is None and reranker._model.max_seq_length == UNTRAINED_MAX_LENGTH


def test_an_explicit_blend_setting_wins_over_the_card(index, registry):
    reranker = load_reranker(_settings(index, registry, model="good", blend=0.0))
    reranker.warm_up()
    out = reranker.run("sofa", fused(30), TEXTS)
    assert [c.product_id for c in out[:20]] == [f"p{i:02d}" for i in range(20)]
