import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.errors import ConfigError, DataError
from search_rerank.data.clicks import simulate_clicks
from search_rerank.data.judgments import (
    Judgments,
    parse_ratings,
    read_csv_judgments,
    read_judgments,
    read_srw,
    text_query_id,
    ubi_judgments,
    write_judgments,
)
from search_rerank.data.qrels import read_trec_qrels

SAMPLE = (
    Path(__file__).resolve().parents[3] / "shared" / "datasets" / "esci_opensearch_sample" / "esci_us_judgments.json"
)


def srw(path: Path, *entries) -> Path:
    path.write_text(json.dumps({"name": "x", "judgmentRatings": list(entries)}), encoding="utf-8")
    return path


@pytest.mark.skipif(not SAMPLE.exists(), reason="the SRW sample is not in /work/shared")
def test_srw_sample_reads_every_query_with_esci_grades():
    judgments = read_srw(SAMPLE)
    assert len(judgments.qrels) == 150
    assert sum(map(len, judgments.qrels.values())) == 6678
    towels = judgments.qrels[text_query_id("t towels kitchen")]
    assert (towels["B07NCQWCQS"], towels["B07QLRTGVQ"], towels["B0825VCHDG"], towels["B08JZ36B5B"]) == (3, 2, 1, 0)


def test_rating_map_is_configurable(tmp_path):
    path = srw(
        tmp_path / "j.json",
        {"query": "lamp", "ratings": [{"docId": "a", "rating": "100.000"}, {"docId": "b", "rating": "10.000"}]},
    )
    judgments = read_srw(path, parse_ratings("100=1,10=0"))
    assert judgments.qrels[text_query_id("lamp")] == {"a": 1, "b": 0}


def test_an_unmapped_rating_is_an_error_naming_the_entry(tmp_path):
    path = srw(tmp_path / "j.json", {"query": "lamp", "ratings": [{"docId": "a", "rating": "50"}]})
    with pytest.raises(DataError, match=r"judgmentRatings\[0\]\.ratings\[0\].*docId 'a'.*rating '50'"):
        read_srw(path)


def test_a_file_without_judgment_ratings_is_refused(tmp_path):
    (tmp_path / "j.json").write_text('{"name": "x"}', encoding="utf-8")
    with pytest.raises(DataError, match="judgmentRatings"):
        read_srw(tmp_path / "j.json")


def test_srw_nested_too_deep_to_read_names_the_file_not_a_traceback(tmp_path):
    path = tmp_path / "j.json"
    path.write_text('{"judgmentRatings": ' + "[" * 100_000 + "]" * 100_000 + "}", encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.json: invalid JSON: nested too deep to read"):
        read_srw(path)


def test_srw_saved_with_a_byte_order_mark_reads(tmp_path):
    path = tmp_path / "j.json"
    document = {"judgmentRatings": [{"query": "lamp", "ratings": [{"docId": "a", "rating": "100"}]}]}
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(document).encode("utf-8"))
    assert read_srw(path).qrels == {text_query_id("lamp"): {"a": 3}}


def test_srw_numeric_doc_ids_name_the_products_the_catalog_reads_with_those_numbers(tmp_path):
    """A catalog's id 1 (JSON number) is product "1"; judgments scripted from the same data write it so too."""
    path = srw(tmp_path / "j.json", {"query": "lamp", "ratings": [{"docId": 1, "rating": 100}]})
    assert read_srw(path).qrels == {text_query_id("lamp"): {"1": 3}}


def test_srw_product_graded_twice_for_one_query_names_both_places(tmp_path):
    path = srw(
        tmp_path / "j.json",
        {"query": "sofa", "ratings": [{"docId": "p1", "rating": 100}]},
        {"query": "Sofa ", "ratings": [{"docId": "p1", "rating": 10}]},
    )
    with pytest.raises(DataError, match=r"judgmentRatings\[1\]\.ratings\[0\].*graded 3 at judgmentRatings\[0\]"):
        read_srw(path)


def test_csv_judgments_not_in_utf8_name_file_and_line(tmp_path):
    path = tmp_path / "j.csv"
    path.write_bytes("query,product_id,grade\noak table,P1,2\ncaf\u00e9 table,P2,1\n".encode("cp1252"))
    with pytest.raises(DataError) as caught:
        read_csv_judgments(path)
    assert (caught.value.path, caught.value.line) == (str(path), 3) and "not UTF-8" in caught.value.reason


def test_bad_rating_map_names_the_item():
    with pytest.raises(ConfigError, match="'100:3'"):
        parse_ratings("100:3")


def test_text_keyed_queries_take_the_dataset_id_for_the_same_text(tmp_path):
    path = srw(tmp_path / "j.json", {"query": "Oak  Table", "ratings": [{"docId": "a", "rating": "1"}]})
    judgments = read_judgments(path, "srw", dataset_texts={"Q7": "oak table"})
    assert judgments.qrels == {"Q7": {"a": 1}}


def test_csv_reads_query_text_product_and_grade(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade\noak table,P1,2\noak table,P2,0\n", encoding="utf-8")
    assert read_csv_judgments(path).qrels == {text_query_id("oak table"): {"P1": 2, "P2": 0}}


def test_csv_bad_grade_names_the_line(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade\noak table,P1,2\noak table,P2,high\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.csv:3: grade 'high' is not an integer"):
        read_csv_judgments(path)


def test_csv_grade_with_an_underscore_is_refused_not_read_as_ten(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade\noak table,P1,1_0\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.csv:2: grade '1_0' is not an integer"):
        read_csv_judgments(path)


def test_csv_product_graded_twice_for_one_query_names_both_lines(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade\noak table,P1,2\noak table,P2,0\noak  table,P1,1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.csv:4: query 'oak  table', product 'P1' is graded 2 on line 2 and 1 here"):
        read_csv_judgments(path)


def test_csv_judgment_given_twice_alike_reads_as_one(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade\noak table,P1,2\noak table,P1,2\n", encoding="utf-8")
    assert read_csv_judgments(path).qrels == {text_query_id("oak table"): {"P1": 2}}


@pytest.mark.parametrize("row", ["oak table,P1,2,3", "oak table,P1"])
def test_csv_row_of_another_width_than_the_header_names_the_line_and_the_counts(tmp_path, row):
    path = tmp_path / "j.csv"
    path.write_text(f"query,product_id,grade\n{row}\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"j\.csv:2: row has \d cells but the header has 3"):
        read_csv_judgments(path)


def test_csv_with_other_columns_is_refused_naming_the_expected_ones(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("q,doc,grade\noak,P1,2\n", encoding="utf-8")
    with pytest.raises(DataError, match="expected exactly query, product_id, grade"):
        read_csv_judgments(path)


def test_srw_written_and_read_back_keeps_every_grade(tmp_path):
    judgments = Judgments({"q1": {"a": 3, "b": 0}}, {"q1": "oak table"})
    write_judgments(judgments, tmp_path / "out.json", "srw")
    assert read_srw(tmp_path / "out.json").qrels == {text_query_id("oak table"): {"a": 3, "b": 0}}


def test_writing_text_keyed_judgments_needs_the_query_texts(tmp_path):
    with pytest.raises(ConfigError, match="--dataset"):
        write_judgments(Judgments({"q1": {"a": 1}}), tmp_path / "out.csv", "csv")


def test_a_many_to_one_rating_map_cannot_write_srw(tmp_path):
    with pytest.raises(ConfigError, match="one-to-one"):
        write_judgments(Judgments({"q": {"a": 1}}, {"q": "x"}), tmp_path / "o.json", "srw", ratings={100.0: 1, 10.0: 1})


def test_click_judgments_grade_the_more_attractive_product_higher(tmp_path):
    rng = np.random.default_rng(0)
    grades = {"oak table": {"good": 3, "bad": 0}}
    rankings = [("oak table", ("good", "bad") if i % 2 else ("bad", "good")) for i in range(400)]
    impressions = simulate_clicks(grades, rankings, [1.0, 0.7], rng)
    ubi = tmp_path / "ubi.ndjson"
    lines = []
    for n, imp in enumerate(impressions):
        lines.append({"query_id": f"s{n}", "user_query": imp.query})
        for rank, doc in enumerate(imp.shown):
            for action in ("impression",) + (("click",) if doc in imp.clicked else ()):
                lines.append(
                    {
                        "action_name": action,
                        "query_id": f"s{n}",
                        "timestamp": n * 10 + rank,
                        "event_attributes": {"object": {"object_id": doc}, "position": {"ordinal": rank}},
                    }
                )
    ubi.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    judged = ubi_judgments([ubi]).qrels[text_query_id("oak table")]
    assert judged["good"] > judged["bad"]


def test_convert_command_turns_srw_into_trec_qrels(tmp_path):
    path = srw(tmp_path / "j.json", {"query": "lamp", "ratings": [{"docId": "a", "rating": "100.000"}]})
    result = CliRunner().invoke(
        main, ["judgments", "convert", str(path), str(tmp_path / "q.txt"), "--from", "srw", "--to", "trec"]
    )
    assert result.exit_code == 0, result.output
    assert read_trec_qrels(tmp_path / "q.txt") == {text_query_id("lamp"): {"a": 3}}


def test_convert_command_reports_a_bad_file_without_a_traceback(tmp_path):
    path = srw(tmp_path / "j.json", {"query": "lamp", "ratings": [{"docId": "a", "rating": "7"}]})
    result = CliRunner().invoke(
        main, ["judgments", "convert", str(path), str(tmp_path / "q.txt"), "--from", "srw", "--to", "trec"]
    )
    assert result.exit_code == 1
    assert "rating '7'" in result.output and "Traceback" not in result.output


def test_csv_with_a_title_column_for_the_annotator_reads_past_it(tmp_path):
    path = tmp_path / "j.csv"
    path.write_text("query,product_id,grade,title\noak table,P1,2,Oak Dining Table\n", encoding="utf-8")
    assert read_csv_judgments(path).qrels == {text_query_id("oak table"): {"P1": 2}}
