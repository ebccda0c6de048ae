from pathlib import Path

import pytest

from search_rerank.core.errors import DataError
from search_rerank.data.qrels import (
    read_beir_qrels,
    read_trec_qrels,
    read_trec_run,
    write_beir_qrels,
    write_trec_qrels,
    write_trec_run,
)

QRELS = {"q1": {"p1": 2, "p2": 0}, "q 2": {"p3": 1}}


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_trec_qrels_round_trip_keeps_every_grade(tmp_path):
    qrels = {"q1": {"p1": 2, "p2": 0}, "q2": {"p3": 1, "p4": -1}}
    write_trec_qrels(qrels, tmp_path / "qrels.txt")
    assert read_trec_qrels(tmp_path / "qrels.txt") == qrels


def test_read_trec_qrels_ignores_iteration_column_and_blank_lines(tmp_path):
    path = write(tmp_path, "qrels.txt", "q1 7 p1 3\n\nq1 0 p2 1\n")
    assert read_trec_qrels(path) == {"q1": {"p1": 3, "p2": 1}}


def test_read_trec_qrels_short_line_names_file_and_line(tmp_path):
    path = write(tmp_path, "qrels.txt", "q1 0 p1 1\nq1 0 p2\n")
    with pytest.raises(DataError) as caught:
        read_trec_qrels(path)
    assert (caught.value.path, caught.value.line) == (str(path), 2)
    assert "expected 4 fields" in caught.value.reason


def test_read_trec_qrels_ignores_a_byte_order_mark(tmp_path):
    """Windows tools start UTF-8 files with one; kept, it would be part of the first query id."""
    path = tmp_path / "qrels.txt"
    path.write_bytes(b"\xef\xbb\xbfq1 0 p1 2\r\nq2 0 p2 1\r\n")
    assert read_trec_qrels(path) == {"q1": {"p1": 2}, "q2": {"p2": 1}}


def test_read_beir_qrels_header_after_a_byte_order_mark_is_the_header(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_bytes(b"\xef\xbb\xbfquery-id\tcorpus-id\tscore\nq1\tp1\t2\n")
    assert read_beir_qrels(path) == {"q1": {"p1": 2}}


def test_read_trec_qrels_not_in_utf8_names_file_and_line(tmp_path):
    path = tmp_path / "qrels.txt"
    path.write_bytes("q1 0 p1 2\ncaf\u00e9 0 p2 1\n".encode("latin-1"))
    with pytest.raises(DataError) as caught:
        read_trec_qrels(path)
    assert (caught.value.path, caught.value.line) == (str(path), 2) and "not UTF-8" in caught.value.reason


def test_read_trec_qrels_non_integer_grade_names_value(tmp_path):
    path = write(tmp_path, "qrels.txt", "q1 0 p1 high\n")
    with pytest.raises(DataError, match=r"qrels.txt:1: grade 'high' is not an integer"):
        read_trec_qrels(path)


@pytest.mark.parametrize("grade", ["1_0", "\u0661", "\uff12"])
def test_read_trec_qrels_grade_not_in_ascii_digits_is_refused_not_read_as_a_number(tmp_path, grade):
    """Python's int() reads "1_0" as 10 and other scripts' digits as digits; no grade written by hand means that."""
    path = write(tmp_path, "q.txt", f"q1 0 d1 {grade}\n")
    with pytest.raises(DataError, match="q.txt:1: grade .* is not an integer"):
        read_trec_qrels(path)


def test_read_trec_qrels_product_judged_twice_with_two_grades_names_both_lines(tmp_path):
    """Two assessors' files concatenated: read on, the last grade would win without a word."""
    path = write(tmp_path, "qrels.txt", "q1 0 p1 2\nq1 0 p2 1\nq1 0 p1 0\n")
    with pytest.raises(DataError, match=r"qrels.txt:3: query 'q1', product 'p1' is graded 2 on line 1 and 0 here"):
        read_trec_qrels(path)


def test_read_beir_qrels_product_judged_twice_with_one_grade_reads(tmp_path):
    path = write(tmp_path, "test.tsv", "query-id\tcorpus-id\tscore\nq1\tp1\t2\nq1\tp1\t2\n")
    assert read_beir_qrels(path) == {"q1": {"p1": 2}}


def test_write_trec_qrels_rejects_id_with_whitespace(tmp_path):
    with pytest.raises(DataError, match="'q 2'"):
        write_trec_qrels(QRELS, tmp_path / "qrels.txt")


def test_write_trec_run_numbers_ranks_from_one_in_list_order(tmp_path):
    write_trec_run({"q1": [("p9", 2.5), ("p1", 1.0)]}, tmp_path / "run.txt", tag="bm25")
    assert (tmp_path / "run.txt").read_text().splitlines() == ["q1 Q0 p9 1 2.5 bm25", "q1 Q0 p1 2 1.0 bm25"]


def test_trec_run_round_trip_keeps_order_and_exact_scores(tmp_path):
    run = {"q1": [("p2", 1 / 3), ("p1", 0.1 + 0.2)], "q2": [("p3", -4.0)]}
    write_trec_run(run, tmp_path / "run.txt", tag="hybrid")
    assert read_trec_run(tmp_path / "run.txt") == run


def test_read_trec_run_orders_by_score_when_ranks_disagree(tmp_path):
    path = write(tmp_path, "run.txt", "q1 Q0 low 1 0.5 t\nq1 Q0 high 2 0.9 t\n")
    assert read_trec_run(path) == {"q1": [("high", 0.9), ("low", 0.5)]}


def test_read_trec_run_breaks_score_ties_by_rank(tmp_path):
    path = write(tmp_path, "run.txt", "q1 Q0 b 2 1.0 t\nq1 Q0 a 1 1.0 t\n")
    assert [doc for doc, _ in read_trec_run(path)["q1"]] == ["a", "b"]


def test_read_trec_run_bad_score_names_line(tmp_path):
    path = write(tmp_path, "run.txt", "q1 Q0 a 1 1.0 t\nq1 Q0 b 2 x t\n")
    with pytest.raises(DataError, match=r"run.txt:2: score 'x' is not a number"):
        read_trec_run(path)


def test_write_trec_run_rejects_tag_with_space(tmp_path):
    with pytest.raises(DataError, match="'my run'"):
        write_trec_run({"q1": [("p1", 1.0)]}, tmp_path / "run.txt", tag="my run")


def test_beir_qrels_round_trip_writes_header_and_keeps_spaces_in_ids(tmp_path):
    write_beir_qrels(QRELS, tmp_path / "test.tsv")
    assert (tmp_path / "test.tsv").read_text().splitlines()[0] == "query-id\tcorpus-id\tscore"
    assert read_beir_qrels(tmp_path / "test.tsv") == QRELS


def test_read_beir_qrels_accepts_file_without_header(tmp_path):
    path = write(tmp_path, "dev.tsv", "q1\tp1\t1\n")
    assert read_beir_qrels(path) == {"q1": {"p1": 1}}


def test_read_beir_qrels_space_separated_line_names_line(tmp_path):
    path = write(tmp_path, "dev.tsv", "query-id\tcorpus-id\tscore\nq1 p1 1\n")
    with pytest.raises(DataError) as caught:
        read_beir_qrels(path)
    assert caught.value.line == 2
