"""What to grade next: the unjudged products in the top of the configurations compared."""

import csv

from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.data.judgments import read_csv_judgments, text_query_id
from search_rerank.evaluation.pooling import unjudged_pool


def _run(*pids: str) -> list[tuple[str, float]]:
    return [(pid, float(len(pids) - i)) for i, pid in enumerate(pids)]


def test_the_pool_holds_only_products_the_labels_do_not_judge():
    runs = {"bm25": {"q": _run("a", "b", "c")}}
    assert unjudged_pool(runs, {"q": {"a": 2, "c": 0}}) == {"q": ["b"]}


def test_the_pool_reads_only_the_top_depth_of_each_run():
    runs = {"bm25": {"q": _run("a", "b", "c", "d")}}
    assert unjudged_pool(runs, {"q": {"x": 1}}, depth=2) == {"q": ["a", "b"]}


def test_the_pool_is_the_union_of_the_runs_ordered_by_the_best_rank_any_gives():
    runs = {"bm25": {"q": _run("a", "b", "c")}, "dense": {"q": _run("c", "d", "a")}}
    assert unjudged_pool(runs, {"q": {"x": 1}}) == {"q": ["a", "c", "b", "d"]}


def test_queries_without_judgments_or_without_anything_new_are_left_out():
    runs = {"bm25": {"judged": _run("a"), "unjudged": _run("b"), "complete": _run("c")}}
    qrels = {"judged": {"x": 1}, "complete": {"c": 1}}
    assert unjudged_pool(runs, qrels) == {"judged": ["a"]}


def test_pool_command_writes_unjudged_top_products_to_grade_with_their_titles(tmp_path, lexical_toml, catalog, dataset):
    out = tmp_path / "pool.csv"
    result = CliRunner().invoke(
        main,
        ["--settings", str(lexical_toml), "judgments", "pool", "--dataset", str(catalog), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    queries, qrels = dataset.split("dev")
    by_text = {queries[qid].text: qid for qid in qrels if qid in queries}
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert rows and list(rows[0]) == ["query", "product_id", "grade", "title"]
    assert all(row["grade"] == "" and row["title"] for row in rows)
    assert all(row["product_id"] not in qrels[by_text[row["query"]]] for row in rows)


def test_a_graded_pool_file_reads_back_as_csv_judgments(tmp_path, lexical_toml, catalog):
    out = tmp_path / "pool.csv"
    args = ["--settings", str(lexical_toml), "judgments", "pool", "--dataset", str(catalog), "--out", str(out)]
    assert CliRunner().invoke(main, [*args, "--depth", "2"]).exit_code == 0
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.DictWriter(f, ["query", "product_id", "grade", "title"])
        writer.writeheader()
        writer.writerows({**row, "grade": "1"} for row in rows)
    read = read_csv_judgments(out).qrels
    assert sum(map(len, read.values())) == len(rows)
    assert read[text_query_id(rows[0]["query"])][rows[0]["product_id"]] == 1


def test_pool_command_refuses_a_configuration_the_settings_do_not_have(tmp_path, lexical_toml, catalog):
    result = CliRunner().invoke(
        main,
        [
            "--settings", str(lexical_toml), "judgments", "pool", "--dataset", str(catalog),
            "--out", str(tmp_path / "p.csv"), "--config", "hybrid+rerank",
        ],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "hybrid+rerank" in result.output and "bm25" in result.output and "Traceback" not in result.output
