import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from pydantic import ValidationError

from search_rerank.cli import main
from search_rerank.core.errors import ConfigError
from search_rerank.core.model_card import (
    CARD_FILE,
    README_FILE,
    ModelCard,
    list_models,
    load_card,
    resolve_model,
    save_card,
)


def card(**overrides) -> ModelCard:
    fields = dict(
        kind="reranker",
        name="rr-esci",
        base_model="cross-encoder/ms-marco-MiniLM-L-6-v2",
        created=datetime(2025, 3, 1, 12, 30, tzinfo=UTC),
        data={
            "path": "data/esci",
            "name": "esci",
            "label_source": "clicks",
            "splits": {"train": {"queries": 120, "pairs": 2400}, "dev": {"queries": 30, "pairs": 600}},
        },
        parameters={"epochs": 1, "lr": 2e-5},
        seed=13,
        dev_metrics={"first_stage_ndcg10": 0.41, "model_ndcg10": 0.45, "best_blend": 0.7},
        promoted=True,
        promotion_reason="beats the first stage on dev by 0.04 nDCG@10",
        training_seconds=81.5,
        pairs_per_second=29.4,
        library_versions={"torch": "2.13.0"},
    )
    return ModelCard(**{**fields, **overrides})


def registered(root, **overrides) -> ModelCard:
    saved = card(**overrides)
    save_card(saved, root / saved.name)
    return saved


def write_card(directory, data) -> None:
    directory.mkdir(parents=True)
    (directory / CARD_FILE).write_text(json.dumps(data), encoding="utf-8")


# --- the card ------------------------------------------------------------------------


def test_saved_card_loads_back_equal(tmp_path):
    saved = registered(tmp_path)
    assert load_card(tmp_path / "rr-esci") == saved


def test_readme_is_rendered_next_to_the_card(tmp_path):
    registered(tmp_path)
    readme = (tmp_path / "rr-esci" / README_FILE).read_text(encoding="utf-8")
    assert readme.startswith("# rr-esci\n")
    assert "**Promoted: yes.** beats the first stage" in readme
    assert "| model_ndcg10 | 0.4500 |" in readme and "| train | 120 | 2400 |" in readme


def test_card_cannot_claim_promotion_without_beating_the_first_stage():
    with pytest.raises(ValidationError, match=r"does not beat first_stage_ndcg10"):
        card(dev_metrics={"first_stage_ndcg10": 0.45, "model_ndcg10": 0.44})


def test_unpromoted_card_needs_no_dev_win():
    assert not card(
        promoted=False,
        promotion_reason="no better than BM25 on dev",
        dev_metrics={"first_stage_ndcg10": 0.45, "model_ndcg10": 0.44},
    ).promoted


# --- load_card refusals --------------------------------------------------------------


def test_directory_without_card_is_refused_naming_the_missing_file(tmp_path):
    (tmp_path / "bare").mkdir()
    with pytest.raises(ConfigError, match=rf"bare/{CARD_FILE} is missing: .* has no model card"):
        load_card(tmp_path / "bare")


def test_missing_directory_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"model directory .*nowhere does not exist"):
        load_card(tmp_path / "nowhere")


def test_unparseable_card_is_refused_naming_the_file(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / CARD_FILE).write_text("{kind: encoder", encoding="utf-8")
    with pytest.raises(ConfigError, match=rf"m/{CARD_FILE}: not valid JSON \(.*line 1"):
        load_card(tmp_path / "m")


def test_card_missing_a_field_is_refused_naming_the_field(tmp_path):
    data = card().model_dump(mode="json")
    del data["seed"]
    write_card(tmp_path / "m", data)
    with pytest.raises(ConfigError, match=rf"m/{CARD_FILE}: invalid model card: field 'seed' is missing"):
        load_card(tmp_path / "m")


def test_card_with_bad_nested_value_is_refused_naming_the_path_to_it(tmp_path):
    data = card().model_dump(mode="json")
    data["data"]["label_source"] = "ctr"
    write_card(tmp_path / "m", data)
    with pytest.raises(
        ConfigError,
        match=r"field 'data\.label_source': .*'judgments', 'clicks' or "
        r"'judgments\+clicks' \(got 'ctr'\)",
    ):
        load_card(tmp_path / "m")


def test_card_with_unknown_field_is_refused(tmp_path):
    write_card(tmp_path / "m", {**card().model_dump(mode="json"), "promotd": True})
    with pytest.raises(ConfigError, match=r"unknown field 'promotd'"):
        load_card(tmp_path / "m")


def test_card_with_unearned_promotion_is_refused_with_the_numbers(tmp_path):
    data = card().model_dump(mode="json")
    data["dev_metrics"]["model_ndcg10"] = 0.40
    write_card(tmp_path / "m", data)
    with pytest.raises(ConfigError, match=r"model_ndcg10 \(0\.4000\) does not beat first_stage_ndcg10 \(0\.4100\)"):
        load_card(tmp_path / "m")


# --- registry ------------------------------------------------------------------------


def test_resolve_by_registry_name_returns_directory_and_card(tmp_path):
    saved = registered(tmp_path)
    assert resolve_model("rr-esci", tmp_path, "reranker") == (str(tmp_path / "rr-esci"), saved)


def test_resolve_by_path_outside_the_registry(tmp_path):
    saved = card(name="elsewhere")
    save_card(saved, tmp_path / "other" / "dir")
    assert resolve_model(str(tmp_path / "other" / "dir"), tmp_path / "models", "reranker")[1] == saved


def test_unknown_name_is_refused_listing_the_registered_ones(tmp_path):
    registered(tmp_path)
    with pytest.raises(ConfigError, match=r"no model named 'rr-wands' in the registry .*models there: rr-esci"):
        resolve_model("rr-wands", tmp_path, "reranker")


def test_model_of_the_wrong_kind_is_refused(tmp_path):
    registered(tmp_path)
    with pytest.raises(ConfigError, match=r"holds a reranker model \('rr-esci'\) but a encoder is needed"):
        resolve_model("rr-esci", tmp_path, "encoder")


def test_registered_directory_without_card_is_refused(tmp_path):
    (tmp_path / "raw-minilm").mkdir()
    with pytest.raises(ConfigError, match=rf"{CARD_FILE} is missing"):
        resolve_model("raw-minilm", tmp_path, "encoder")


def test_path_without_card_is_refused(tmp_path):
    (tmp_path / "raw").mkdir()
    with pytest.raises(ConfigError, match=rf"{CARD_FILE} is missing"):
        resolve_model(str(tmp_path / "raw"), tmp_path, "encoder")


def test_path_to_the_card_file_instead_of_the_model_directory_is_refused(tmp_path):
    registered(tmp_path)
    with pytest.raises(ConfigError, match=r"is a file; give the model directory"):
        resolve_model(str(tmp_path / "rr-esci" / CARD_FILE), tmp_path, "reranker")


def test_registry_directory_named_unlike_its_card_is_refused(tmp_path):
    save_card(card(), tmp_path / "renamed")
    with pytest.raises(ConfigError, match=r"card names the model 'rr-esci' but its registry directory is 'renamed'"):
        resolve_model("renamed", tmp_path, "reranker")


def test_list_models_reports_broken_entries_instead_of_failing(tmp_path):
    registered(tmp_path)
    (tmp_path / "broken").mkdir()
    entries = list_models(tmp_path)
    assert [(e.name, e.card is not None) for e in entries] == [("broken", False), ("rr-esci", True)]
    assert f"{CARD_FILE} is missing" in entries[0].problem


def test_list_models_of_a_missing_registry_is_empty(tmp_path):
    assert list_models(tmp_path / "models") == []


# --- CLI -----------------------------------------------------------------------------


def run_list(*args):
    return CliRunner().invoke(main, ["models", "list", *args], env={"COLUMNS": "200"})


def test_models_list_prints_a_table_with_metrics_and_promotion(tmp_path):
    registered(tmp_path)
    registered(tmp_path, name="enc-wands", kind="encoder", promoted=False, promotion_reason="no dev win")
    result = run_list("--models-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if "│" in line}
    assert "reranker" in rows["rr-esci"] and "2025-03-01" in rows["rr-esci"] and "12:30 UTC" in result.output
    assert rows["rr-esci"].rstrip("│ ").endswith("yes") and rows["enc-wands"].rstrip("│ ").endswith("no")
    assert "│ model_ndcg10=0.4500" in result.output


def test_models_list_json_includes_cards_and_problems(tmp_path):
    registered(tmp_path)
    (tmp_path / "broken").mkdir()
    result = run_list("--models-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output
    broken, good = json.loads(result.output)
    assert broken["card"] is None and CARD_FILE in broken["problem"]
    assert good["card"]["dev_metrics"]["model_ndcg10"] == 0.45 and good["problem"] is None


def test_models_list_uses_the_settings_registry_folder(tmp_path, monkeypatch):
    registered(tmp_path / "reg")
    monkeypatch.setenv("SEARCH_RERANK_MODELS_DIR", str(tmp_path / "reg"))
    assert "rr-esci" in run_list("--json").output


def test_models_list_says_when_the_registry_does_not_exist(tmp_path):
    result = run_list("--models-dir", str(tmp_path / "models"))
    assert result.exit_code == 0 and "(the folder does not exist)" in result.output
