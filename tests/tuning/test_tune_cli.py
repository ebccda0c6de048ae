import json
from pathlib import Path

from click.testing import CliRunner, Result

from search_rerank.cli import main
from search_rerank.core.settings import load_settings


def tune(settings: Path, catalog: Path, out: Path, *options: str) -> Result:
    """``search-rerank --settings SETTINGS tune --dataset CATALOG --out OUT OPTIONS...``."""
    return CliRunner().invoke(
        main, ["--settings", str(settings), "tune", "--dataset", str(catalog), "--out", str(out), *options]
    )


def test_tune_command_writes_loadable_settings_a_report_and_its_json(tmp_path, catalog, lexical_toml):
    out = tmp_path / "out"
    result = tune(lexical_toml, catalog, out, "--trials", "4")
    assert result.exit_code == 0, result.output
    tuned = load_settings(out / "best.toml")
    assert tuned.dense.enabled is False  # the base file's values are kept
    data = json.loads((out / "tuning.json").read_text())
    assert tuned.lexical.candidates == data["best"]["sections"]["lexical"]["candidates"]
    assert (out / "report.html").read_text().startswith("<!doctype html>")


def test_tune_command_trades_against_the_tail_tier_when_asked(tmp_path, catalog, lexical_toml):
    out = tmp_path / "out"
    result = tune(lexical_toml, catalog, out, "--trials", "3", "--exposure", "tail@10")
    assert result.exit_code == 0, result.output
    assert json.loads((out / "tuning.json").read_text())["exposure"] == "tail@10"
    assert "<th>tail@10 baseline</th>" in (out / "report.html").read_text()


def test_tune_command_with_an_unreachable_constraint_exits_with_the_reason(tmp_path, catalog, lexical_toml):
    result = tune(lexical_toml, catalog, tmp_path, "--trials", "2", "--min-lt-share", "1")
    assert result.exit_code == 1
    assert "no trial met" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "best.toml").exists()


def test_tune_command_refuses_an_unknown_long_tail_method(tmp_path, catalog, lexical_toml):
    result = tune(lexical_toml, catalog, tmp_path, "--longtail-methods", "boost,mmr")
    assert result.exit_code == 1 and "mmr" in result.output


def test_tune_command_on_a_missing_split_names_the_available_ones(tmp_path, catalog, lexical_toml):
    result = tune(lexical_toml, catalog, tmp_path, "--split", "validation")
    assert result.exit_code == 1 and "available: dev, test, train" in result.output


def test_the_service_settings_variable_loads_the_tuned_file(tmp_path, catalog, lexical_toml, monkeypatch):
    out = tmp_path / "out"
    tune(lexical_toml, catalog, out, "--trials", "2")
    monkeypatch.setenv("SEARCH_RERANK_SETTINGS", str(out / "best.toml"))
    result = CliRunner().invoke(main, ["search", "sofa", "--size", "3", "--json"])
    assert result.exit_code == 0, result.output


def test_tune_script_runs_the_tune_command(tmp_path):
    import subprocess
    import sys

    script = Path(__file__).resolve().parents[2] / "scripts" / "tune_relevance.py"
    done = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "--min-lt-share" in done.stdout


def hybrid_toml(tmp_path: Path, hybrid_settings) -> Path:
    path = tmp_path / "hybrid.toml"
    dense = hybrid_settings.dense
    path.write_text(
        f'index_dir = "{hybrid_settings.index_dir}"\n\n[dense]\nmodel = "{dense.model}"\ndevice = "cpu"\n',
        encoding="utf-8",
    )
    return path


def test_tune_command_chooses_the_code_queries_shares_and_says_so(tmp_path, catalog, hybrid_settings):
    result = tune(hybrid_toml(tmp_path, hybrid_settings), catalog, tmp_path / "out", "--trials", "2")
    assert result.exit_code == 0, result.output
    assert "fusion.anchored_weights" in result.output
    data = json.loads((tmp_path / "out" / "tuning.json").read_text())
    assert set(data["code_weights"]) == {"identifier_weights", "anchored_weights"}


def test_tune_command_without_code_shares_leaves_them_alone(tmp_path, catalog, hybrid_settings):
    result = tune(
        hybrid_toml(tmp_path, hybrid_settings), catalog, tmp_path / "out", "--trials", "2", "--no-code-shares"
    )
    assert result.exit_code == 0, result.output
    assert "fusion.anchored_weights" not in result.output
    assert json.loads((tmp_path / "out" / "tuning.json").read_text())["code_weights"] == {}
