"""Learned-ranker training: it writes a loadable model with its card, and is refused when it cannot beat the blend."""

import json
from dataclasses import replace

import lightgbm
import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.errors import ConfigError
from search_rerank.core.learned_rank import MODEL_FILE, load_ranker
from search_rerank.core.model_card import load_card
from search_rerank.core.product import Product
from search_rerank.core.ranker_features import FEATURES
from search_rerank.core.settings import Settings
from search_rerank.data.dataset import Query
from search_rerank.indexing.indexes import build_index
from search_rerank.training.model_folder import staged
from search_rerank.training.ranker import RankerTraining, sampled_queries

QUICK = RankerTraining(max_rounds=30, early_stopping_rounds=10, min_data_in_leaf=5)


@pytest.fixture(scope="module")
def generated(built_index):
    built = built_index(products=400, queries=150, seed=4, dense={"enabled": False}, longtail={"enabled": False})
    return built.settings, built.dataset(), built.data


def test_training_writes_the_model_and_a_card_recording_features_and_the_unjudged_choice(
    generated, trained_ranker, tmp_path
):
    settings, data, _ = generated
    card = trained_ranker(settings, data.split("train"), data.split("dev"), tmp_path / "gen-ranker", QUICK)
    assert (tmp_path / "gen-ranker" / MODEL_FILE).is_file()
    assert load_card(tmp_path / "gen-ranker") == card and card.kind == "ranker"
    assert card.parameters["features"] == list(FEATURES)
    assert card.parameters["unjudged_chosen"] in ("zero", "drop")
    assert set(card.parameters["unjudged_dev_ndcg10"]) == {"zero", "drop"}  # type: ignore[arg-type]
    assert card.promoted == (card.dev_metrics["model_ndcg10"] > card.dev_metrics["first_stage_ndcg10"])
    assert card.data.splits["train"].pairs > 0


def test_retraining_under_a_name_replaces_its_folder_whole(generated, trained_ranker, tmp_path):
    """A file the new run does not write (a distilled student's ONNX graph, under a name now given to another
    model) must not stay beside the new model."""
    settings, data, _ = generated
    stale = tmp_path / "ranker" / "model.int8.onnx"
    stale.parent.mkdir()
    stale.write_bytes(b"an older model's graph")
    trained_ranker(settings, data.split("train"), data.split("dev"), tmp_path / "ranker", QUICK)
    assert (tmp_path / "ranker" / MODEL_FILE).is_file() and not stale.exists()
    assert [p.name for p in tmp_path.iterdir()] == ["ranker"]


def test_a_run_that_fails_while_saving_leaves_the_model_it_would_replace(tmp_path):
    served = tmp_path / "ranker"
    served.mkdir()
    (served / MODEL_FILE).write_text("the served model")
    with pytest.raises(OSError), staged(served) as folder:
        (folder / MODEL_FILE).write_text("half of a new one")
        raise OSError("No space left on device")
    assert (served / MODEL_FILE).read_text() == "the served model"
    assert [p.name for p in tmp_path.iterdir()] == ["ranker"]


def test_the_saved_model_keeps_the_rounds_cross_validation_on_train_chose(generated, trained_ranker, tmp_path):
    settings, data, _ = generated
    card = trained_ranker(settings, data.split("train"), data.split("dev"), tmp_path / "cv", QUICK)
    rounds = card.parameters["best_iteration"]
    assert 1 <= rounds <= QUICK.max_rounds  # type: ignore[operator]
    assert 0 < card.parameters["cv_ndcg10"] <= 1  # type: ignore[operator]
    assert lightgbm.Booster(model_file=str(tmp_path / "cv" / MODEL_FILE)).num_trees() == rounds


def test_a_query_cap_trains_on_that_many_train_queries_at_most(generated, trained_ranker, tmp_path):
    settings, data, _ = generated
    capped = replace(QUICK, max_queries=20)
    card = trained_ranker(settings, data.split("train"), data.split("dev"), tmp_path / "capped", capped)
    assert 0 < card.data.splits["train"].queries <= 20
    assert card.parameters["max_queries"] == 20


def test_the_query_sample_is_the_same_for_a_seed_and_keeps_each_query_with_its_judgments(generated):
    _, data, _ = generated
    queries, qrels = data.split("train")
    first, second = sampled_queries((queries, qrels), 25, seed=7), sampled_queries((queries, qrels), 25, seed=7)
    assert first == second and len(first[1]) == 25
    assert set(first[0]) == set(first[1]) and all(first[1][qid] == qrels[qid] for qid in first[1])
    assert sampled_queries((queries, qrels), None, seed=7) == (queries, qrels)


def test_stopping_on_dev_records_no_cross_validation(generated, trained_ranker, tmp_path):
    settings, data, _ = generated
    card = trained_ranker(
        settings, data.split("train"), data.split("dev"), tmp_path / "dev", replace(QUICK, stopping="dev")
    )
    assert card.parameters["cv_ndcg10"] is None
    assert (
        lightgbm.Booster(model_file=str(tmp_path / "dev" / MODEL_FILE)).num_trees() >= card.parameters["best_iteration"]
    )  # type: ignore[operator]


def test_train_ranker_command_registers_the_ranker_and_prints_the_verdict(generated, tmp_path):
    settings, _, path = generated
    file = tmp_path / "settings.json"
    file.write_text(
        json.dumps(
            {
                "index_dir": str(settings.index_dir),
                "models_dir": str(tmp_path / "models"),
                "dense": {"enabled": False},
                "longtail": {"enabled": False},
            }
        ),
        encoding="utf-8",
    )
    args = ["--settings", str(file), "train", "ranker", "--dataset", str(path), "--name", "cli", "--rounds", "20"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "dev nDCG@10" in result.output and "best linear blend" in result.output
    assert load_card(tmp_path / "models" / "cli").kind == "ranker"


# Every query names one product's unique code, which only that product's title holds: BM25 alone puts the one
# relevant product first for every query, so no ranker can beat the blend on dev (nDCG@10 is already 1).
CODES = [f"code{i:03d}" for i in range(60)]


@pytest.fixture(scope="module")
def solved(tmp_path_factory):
    products = [Product(id=f"p{i}", title=f"steel bracket {code}", price=float(i + 1)) for i, code in enumerate(CODES)]
    root = tmp_path_factory.mktemp("solved")
    settings = Settings(
        index_dir=root / "idx", models_dir=root / "models", dense={"enabled": False}, longtail={"enabled": False}
    )
    build_index(products, settings, progress=False)

    def split(ids):
        return {f"q{i}": Query(f"q{i}", f"bracket {CODES[i]}") for i in ids}, {f"q{i}": {f"p{i}": 2} for i in ids}

    return settings, split(range(40)), split(range(40, 60))


def test_a_ranker_that_cannot_beat_the_best_blend_on_dev_is_not_promoted(solved, trained_ranker):
    settings, train, dev = solved
    card = trained_ranker(settings, train, dev, settings.models_dir / "solved", QUICK)
    assert card.dev_metrics["first_stage_ndcg10"] == pytest.approx(1.0)
    assert not card.promoted and "does not beat" in card.promotion_reason


def test_serving_refuses_an_unpromoted_ranker(solved, trained_ranker):
    settings, train, dev = solved
    trained_ranker(settings, train, dev, settings.models_dir / "refused", QUICK)
    with pytest.raises(ConfigError, match="not promoted"):
        load_ranker(settings.override(ltr={"model": "refused"}))
    assert load_ranker(settings.override(ltr={"model": "refused", "allow_unpromoted": True})).model_name == "refused"
