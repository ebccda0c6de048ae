import json

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.data.dataset import Query
from search_rerank.data.qrels import write_trec_run
from search_rerank.evaluation.compare import compare, settings_runs

QRELS = {f"q{i}": {f"q{i}-good": 2, f"q{i}-ok": 1, f"q{i}-bad": 0} for i in range(30)}
QUERIES = {qid: Query(qid, f"query {qid}") for qid in QRELS}


def run(order):
    return {qid: [(f"{qid}-{name}", 1.0 - r / 10) for r, name in enumerate(order)] for qid in QRELS}


def test_identical_runs_show_no_difference_and_no_movers():
    result = compare(run(("good", "ok", "bad")), run(("good", "ok", "bad")), QRELS, QUERIES, resamples=500)
    assert result.significance["mean_delta"] == 0 and result.significance["p_value"] == 1.0
    assert result.movers == []


def test_a_run_with_the_relevant_product_first_wins_significantly():
    result = compare(run(("bad", "ok", "good")), run(("good", "ok", "bad")), QRELS, QUERIES, resamples=500)
    assert result.significance["mean_delta"] > 0 and result.significance["p_value"] < 0.01


def test_movers_are_the_largest_changes_with_both_top_lists_and_their_grades():
    a = run(("good", "ok", "bad"))
    b = dict(a, q3=[("q3-bad", 1.0), ("q3-ok", 0.9)], q4=[("q4-ok", 1.0), ("q4-good", 0.9)])
    result = compare(a, b, QRELS, QUERIES, movers=2, show=2, resamples=500)
    assert [m["qid"] for m in result.movers] == ["q3", "q4"]
    assert [h["grade"] for h in result.movers[0]["b_top"]] == [0, 1]
    assert [h["product_id"] for h in result.movers[0]["a_top"]] == ["q3-good", "q3-ok"]


def test_a_query_missing_from_a_run_scores_zero_there():
    b = {qid: hits for qid, hits in run(("good", "ok", "bad")).items() if qid != "q0"}
    result = compare(run(("good", "ok", "bad")), b, QRELS, QUERIES, resamples=500)
    row = next(r for r in result.per_query if r["qid"] == "q0")
    assert row["b"] == 0.0 and row["delta"] < 0


def test_unknown_measure_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="nDCG@10, R@100, RR@10"):
        compare(run(("good",)), run(("good",)), QRELS, QUERIES, measure="P@5")


def test_compare_command_reads_two_trec_runs_and_prints_json(tmp_path, catalog, dataset):
    queries, qrels = dataset.split("test")
    ideal = {
        qid: sorted(((pid, float(g)) for pid, g in grades.items()), key=lambda h: -h[1])
        for qid, grades in qrels.items()
    }
    worst = {qid: [(pid, -s) for pid, s in hits] for qid, hits in ideal.items()}
    write_trec_run(ideal, tmp_path / "ideal.run", "ideal")
    write_trec_run(worst, tmp_path / "worst.run", "worst")
    result = CliRunner().invoke(
        main,
        [
            "compare",
            str(tmp_path / "worst.run"),
            str(tmp_path / "ideal.run"),
            "--dataset",
            str(catalog),
            "--split",
            "test",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["significance"]["mean_delta"] > 0 and len(report["per_query"]) == len(qrels)


def test_compare_command_ranks_two_settings_files_and_shows_movers(tmp_path, catalog, lexical_toml):
    boosted = tmp_path / "boosted.toml"
    boosted.write_text(lexical_toml.read_text() + '\n[longtail]\nmethod = "xquad"\nxquad_lambda = 0.9\n')
    result = CliRunner().invoke(
        main,
        ["compare", str(lexical_toml), str(boosted), "--dataset", str(catalog), "--movers", "1"],
        terminal_width=200,
    )
    assert result.exit_code == 0, result.output
    assert "randomisation p =" in result.output and "nDCG@10" in result.output


def test_settings_that_share_indexes_are_retrieved_once_per_query(lexical_settings, dataset, monkeypatch):
    import search_rerank.indexing.indexes as indexes

    opened = []
    original = indexes.open_pipeline
    monkeypatch.setattr(indexes, "open_pipeline", lambda s: opened.append(s) or original(s))
    queries, qrels = dataset.split("dev")
    runs, _ = settings_runs([lexical_settings, lexical_settings.override(longtail={"strength": 0.9})], queries, qrels)
    assert len(opened) == 1 and len(runs) == 2


def test_compare_command_reports_a_missing_index_without_a_traceback(tmp_path, catalog):
    missing = tmp_path / "missing.toml"
    missing.write_text(f'index_dir = "{tmp_path / "nothing"}"\n[dense]\nenabled = false\n')
    result = CliRunner().invoke(main, ["compare", str(missing), str(missing), "--dataset", str(catalog)])
    assert result.exit_code == 1 and "no index" in result.output and "Traceback" not in result.output


def test_compare_command_names_the_bad_line_of_a_run_file(tmp_path, catalog):
    good, bad = tmp_path / "good.run", tmp_path / "bad.run"
    good.write_text("Q000001 Q0 P0000001 1 1.0 a\n")
    bad.write_text("Q000001 Q0 P0000001 1 1.0 b\nQ000001 Q0 P0000002 2 high b\n")
    result = CliRunner().invoke(main, ["compare", str(bad), str(good), "--dataset", str(catalog)])
    assert result.exit_code == 1 and "bad.run:2: score 'high' is not a number" in result.output
