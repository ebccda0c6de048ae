"""The files the command line reads, beyond test_input_files and test_input_file_edges, as an adversarial probe
found them (each docstring says what the command did before: "Was"): lone UTF-16
surrogates that JSON's ``\\uXXXX`` escapes let into a str (valid JSON, no valid UTF-8), files that fail part-way
through a write, UTF-16 files with their byte-order mark, and values of megabytes in an error message.

The standard (see test_input_files): a bad file ends in one line naming the file and the line (or record), exit
status 1, never a traceback, a hang or a silently wrong result; and a failed reindex leaves the served index as
it was.
"""

from __future__ import annotations

import codecs
import json
import time
from pathlib import Path

from command_line import refused, run

from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import open_pipeline

NO_DENSE = {"SEARCH_RERANK_DENSE__ENABLED": "false"}
CATALOG = [{"id": "p1", "title": "oak desk"}, {"id": "p2", "title": "brass lamp"}, {"id": "p3", "title": "wool rug"}]
LONE_SURROGATE = "\\ud83d"  # as a JSON file writes it: half of an emoji's surrogate pair, the other half lost


def jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def indexed(tmp_path: Path) -> Path:
    index_dir = tmp_path / "index"
    catalog = jsonl(tmp_path / "catalog.jsonl", CATALOG)
    result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    return index_dir


def served(index_dir: Path) -> dict[str, str]:
    store = open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False})).store
    return {product.id: product.title for product in store}


# --- a lone surrogate in a display field: valid JSON, no UTF-8 ---------------------------------------------------


def test_an_incremental_reindex_failing_on_a_lone_surrogate_leaves_the_served_index_untouched(tmp_path):
    """Was: the record passes the loader (the id and title refuse a surrogate, a display field does not) and
    fails when the store serialises it, after the --delete ids were removed and the earlier batch written: exit
    1, but p3 is gone from the served index and p1 retitled. Must: refuse the file naming its line before
    anything is written (or change nothing), as an update failing on a bad row does."""
    index_dir = indexed(tmp_path)
    update = tmp_path / "update.jsonl"
    update.write_text(
        f'{{"id": "p1", "title": "pine desk"}}\n{{"id": "p4", "title": "cane chair", "image": "{LONE_SURROGATE}"}}\n',
        encoding="utf-8",
    )
    (tmp_path / "gone.txt").write_text("p3\n", encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental", "--batch-size", "1",
        "--catalog", str(update), "--delete", str(tmp_path / "gone.txt"),
    )  # fmt: skip
    assert result.exit_code != 0
    assert served(index_dir) == {record["id"]: record["title"] for record in CATALOG}


def test_an_incremental_reindex_failing_on_a_lone_surrogate_keeps_the_products_it_was_to_delete(tmp_path):
    """The same with the default batch size, one bad record, one deletion: it was p3 is deleted though the command
    failed (exit 1, "Error serializing to JSON: UnicodeEncodeError ..."). Must: p3 still served."""
    index_dir = indexed(tmp_path)
    update = tmp_path / "update.jsonl"
    update.write_text(f'{{"id": "p4", "title": "cane chair", "image": "{LONE_SURROGATE}"}}\n', encoding="utf-8")
    (tmp_path / "gone.txt").write_text("p3\n", encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental",
        "--catalog", str(update), "--delete", str(tmp_path / "gone.txt"),
    )  # fmt: skip
    assert result.exit_code != 0
    assert "p3" in served(index_dir)


def test_a_catalog_display_field_holding_a_lone_surrogate_is_refused_naming_file_line_and_field(tmp_path):
    """Was: exit 1 with "Error: Error serializing to JSON: UnicodeEncodeError: 'utf-8' codec can't encode
    character '\\ud83d' in position 0: surrogates not allowed": no file, no line, no field. The id and title
    are refused at load with their line ("unable to parse raw data as a unicode string"). Must: the same for
    every field, e.g. "catalog.jsonl:2: image: ..."."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        f'{{"id": "p1", "title": "oak desk"}}\n{{"id": "p2", "title": "brass lamp", "image": "{LONE_SURROGATE}"}}\n',
        encoding="utf-8",
    )
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    output = refused(result)
    assert f"{catalog}:2:" in output and "image" in output


def test_an_srw_judgment_list_whose_query_holds_a_lone_surrogate_is_refused_naming_the_file(tmp_path):
    """Was: exit 1 with "Error: 'utf-8' codec can't encode character '\\ud800' in position 5: surrogates not
    allowed" (hashing the text into a query id): neither the file nor the judgment is named. Must: name the file
    and the entry (judgmentRatings[1].query), as read_srw names every other bad entry."""
    srw = tmp_path / "srw.json"
    srw.write_text(
        '{"judgmentRatings": [{"query": "oak desk", "ratings": [{"docId": "p1", "rating": 100}]},\n'
        ' {"query": "lamp \\ud800", "ratings": [{"docId": "p2", "rating": 10}]}]}\n',
        encoding="utf-8",
    )
    output = refused(run("judgments", "convert", str(srw), str(tmp_path / "out.csv"), "--from", "srw", "--to", "csv"))
    assert str(srw) in output and "judgmentRatings[1]" in output


# --- a write that fails part-way ---------------------------------------------------------------------------------


def test_converting_to_trec_an_id_trec_cannot_hold_leaves_no_half_written_file(tmp_path):
    """Was: exit 1 ("out.trec: 'SKU 2' cannot be written: TREC ids ... without spaces") but out.trec is left
    holding the judgments before it ("q1 0 p1 1"), which evaluate would read as the whole set. Must: write
    nothing (check first, or write to a temporary file and rename it), and name the line of IN."""
    qrels = tmp_path / "in.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tSKU 2\t2\n", encoding="utf-8")
    out = tmp_path / "out.trec"
    refused(run("judgments", "convert", str(qrels), str(out), "--from", "beir", "--to", "trec"))
    assert not out.exists(), out.read_text(encoding="utf-8")


def test_a_failed_conversion_leaves_an_existing_output_file_as_it_was(tmp_path):
    """Was: the earlier out.trec is truncated and half rewritten. Must: be as it was."""
    qrels = tmp_path / "in.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\nq1\tSKU 2\t2\n", encoding="utf-8")
    out = tmp_path / "out.trec"
    out.write_text("q7 0 p7 3\nq8 0 p8 1\n", encoding="utf-8")
    refused(run("judgments", "convert", str(qrels), str(out), "--from", "beir", "--to", "trec"))
    assert out.read_text(encoding="utf-8") == "q7 0 p7 3\nq8 0 p8 1\n"


# --- UTF-16 with its byte-order mark ---------------------------------------------------------------------------


def test_a_utf16_catalog_with_its_byte_order_mark_is_named_as_utf16_not_as_lacking_one(tmp_path):
    """text_files has a message for this very file ("the file is UTF-16 (it starts with a UTF-16 byte-order
    mark); save it as UTF-8"), but the NUL check runs first: it was "catalog.jsonl:1: holds a NUL byte: a binary
    file, or UTF-16 without its byte-order mark", which tells the user the mark is missing when it is there.
    Must: the UTF-16 message."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_bytes(codecs.BOM_UTF16_LE + '{"id": "p1", "title": "oak desk"}\n'.encode("utf-16-le"))
    output = refused(run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog)))
    assert f"{catalog}:1:" in output and "without its byte-order mark" not in output
    assert "UTF-16" in output


# --- a value of megabytes in the message --------------------------------------------------------------------------


def test_profiles_build_shows_a_bad_timestamp_of_a_megabyte_shortened(tmp_path):
    """Was: the message repeats the whole value: a megabyte timestamp prints a megabyte error line (the catalog
    reader shows at most 80 characters of a refused value). Must: name file, line and field, the value cut."""
    index_dir = indexed(tmp_path)
    log = tmp_path / "ubi.ndjson"
    event = {
        "action_name": "click",
        "user_id": "u1",
        "session_id": "s1",
        "timestamp": "x" * 1_000_000,
        "event_attributes": {"object": {"object_id": "p1"}, "position": {"ordinal": 0}},
    }
    jsonl(log, [event])
    env = {**NO_DENSE, "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(tmp_path / "profiles.sqlite3")}
    started = time.monotonic()
    output = refused(run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(log), env=env))
    assert f"{log}:1: timestamp" in output
    assert len(output) < 2_000, (len(output), time.monotonic() - started)


# --- a lone surrogate in the other files ---------------------------------------------------------------------------


def clicked(user: str, product: str) -> dict:
    return {
        "action_name": "click",
        "user_id": user,
        "session_id": f"s-{user}",
        "timestamp": int(time.time() * 1000),
        "event_attributes": {"object": {"object_id": product}, "position": {"ordinal": 0}},
    }


def test_profiles_build_failing_on_a_lone_surrogate_in_an_object_id_leaves_the_profiles_as_they_were(tmp_path):
    """Was: the log is read, the store emptied, then looking the product up in the index fails: exit 1 with
    "'utf-8' codec can't encode character '\\ud800' ...: surrogates not allowed", and every shopper's profile is
    gone. Must: refuse the line (ubi.ndjson:2: object_id ...) before the store is touched, u1's profile kept."""
    from search_rerank.core.profile import user_key
    from search_rerank.core.profile_store import SQLiteProfileStore

    index_dir = indexed(tmp_path)
    env = {**NO_DENSE, "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(tmp_path / "profiles.sqlite3")}
    good = jsonl(tmp_path / "good.ndjson", [clicked("u1", "p1")])
    first = run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(good), env=env)
    assert first.exit_code == 0, first.output
    log = tmp_path / "ubi.ndjson"
    log.write_text(
        json.dumps(clicked("u1", "p1")) + "\n" + json.dumps(clicked("u2", "p2")).replace('"p2"', '"p\\ud8002"') + "\n",
        encoding="utf-8",
    )
    result = run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(log), env=env)
    assert result.exit_code != 0
    profiles = SQLiteProfileStore(tmp_path / "profiles.sqlite3").get_many([user_key("u1")])
    assert user_key("u1") in profiles, result.output


def test_profiles_build_refuses_an_object_id_holding_a_lone_surrogate_naming_file_and_line(tmp_path):
    """Was: the message names neither the log nor the line. Must: "ubi.ndjson:2: ..."."""
    index_dir = indexed(tmp_path)
    env = {**NO_DENSE, "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(tmp_path / "profiles.sqlite3")}
    log = tmp_path / "ubi.ndjson"
    log.write_text(
        json.dumps(clicked("u1", "p1")) + "\n" + json.dumps(clicked("u2", "p2")).replace('"p2"', '"p\\ud8002"') + "\n",
        encoding="utf-8",
    )
    output = refused(run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(log), env=env))
    assert f"{log}:2:" in output


def test_ubi_judgments_whose_query_text_holds_a_lone_surrogate_are_refused_naming_the_file(tmp_path):
    """Was: `judgments convert --from ubi` ends in "'utf-8' codec can't encode character '\\ud800' in position
    5: surrogates not allowed", naming no file or line. Must: name the log and the query record's line."""
    now = int(time.time() * 1000)
    lines = [
        {"query_id": "q1", "user_query": "oak desk", "query_response_hit_ids": ["p1", "p2"], "timestamp": now},
        {
            "action_name": "click",
            "query_id": "q1",
            "timestamp": now,
            "event_attributes": {"object": {"object_id": "p1"}, "position": {"ordinal": 1}},
        },
        {"query_id": "q2", "user_query": "lamp \ud800", "query_response_hit_ids": ["p1", "p2"], "timestamp": now},
        {
            "action_name": "click",
            "query_id": "q2",
            "timestamp": now,
            "event_attributes": {"object": {"object_id": "p2"}, "position": {"ordinal": 2}},
        },
    ]
    log = tmp_path / "ubi.ndjson"
    log.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    result = run(
        "judgments", "convert", str(log), str(tmp_path / "out.tsv"), "--from", "ubi", "--to", "beir",
        "--min-impressions", "1",
    )  # fmt: skip
    output = refused(result)
    assert str(log) in output


def test_a_json_settings_path_holding_a_lone_surrogate_is_refused_naming_file_and_setting(tmp_path):
    """Was: "'utf-8' codec can't encode character '\\ud800' in position 16: surrogates not allowed *** You may
    need to add PYTHONIOENCODING=utf-8 to your environment ***": the advice is wrong and neither the file nor
    the setting is named. A text setting (service.ubi_application) is refused naming both. Must: the same for
    models_dir."""
    settings = tmp_path / "settings.json"
    settings.write_text('{"models_dir": "registry\\ud800"}\n', encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert str(settings) in output and "models_dir" in output
    assert "PYTHONIOENCODING" not in output


# --- compare: TREC runs that rank nothing of the split -------------------------------------------------------------


def beir(directory: Path) -> Path:
    (directory / "qrels").mkdir(parents=True)
    jsonl(directory / "corpus.jsonl", [{"_id": r["id"], "title": r["title"]} for r in CATALOG])
    jsonl(directory / "queries.jsonl", [{"_id": "q1", "text": "oak desk"}, {"_id": "q2", "text": "lamp"}])
    (directory / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\nq2\tp2\t1\n")
    return directory


def compared(tmp_path: Path, b_run: str) -> tuple[Path, object]:
    data = beir(tmp_path / "data")
    good = tmp_path / "a.run"
    good.write_text("q1 Q0 p1 1 2.0 a\nq2 Q0 p2 1 1.0 a\n", encoding="utf-8")
    other = tmp_path / "b.run"
    other.write_text(b_run, encoding="utf-8")
    result = run(
        "--index-dir", str(tmp_path / "index"), "compare", str(good), str(other), "--dataset", str(data),
        "--split", "test",
    )  # fmt: skip
    return other, result


def test_compare_refuses_an_empty_trec_run_naming_the_file(tmp_path):
    """Was: exit 0, "nDCG@10 B - A: -1.0000 ... B wins 0, loses 2": an empty file (a run that was never
    written, a failed export) is compared as a system that found nothing. Must: refuse it, as `evaluate`
    refuses a split that judges no query and `judgments convert` an empty judgments file."""
    other, result = compared(tmp_path, "")
    assert str(other) in refused(result)


def test_compare_refuses_a_trec_run_that_ranks_none_of_the_splits_queries(tmp_path):
    """Was: exit 0, B "loses" every query: a run of another dataset or split (its query ids q9...) scores 0 on
    each. A run missing some queries scoring 0 there is documented; one sharing no query id with the split is
    the wrong file. Must: refuse it, naming the file and that none of its query ids is judged."""
    other, result = compared(tmp_path, "q9 Q0 p1 1 2.0 b\nq10 Q0 p2 1 1.0 b\n")
    assert str(other) in refused(result)


def test_compare_refuses_a_trec_run_listing_a_product_twice_for_one_query_naming_the_line(tmp_path):
    """Was: exit 0; p1 ranked 1st and 2nd for q1 is read without a word (trec_eval refuses such a run). As two
    grades for one pair in qrels are refused naming both lines, so should this be: "b.run:2: ... p1 ...
    line 1"."""
    other, result = compared(tmp_path, "q1 Q0 p1 1 2.0 b\nq1 Q0 p1 2 1.0 b\nq2 Q0 p2 1 1.0 b\n")
    output = refused(result)
    assert f"{other}:2" in output and "p1" in output


# --- onboard: the state file of an earlier run in --out -------------------------------------------------------------


def onboarded_with_state(tmp_path: Path, state: bytes):
    data = beir(tmp_path / "data")
    out = tmp_path / "out"
    out.mkdir()
    (out / "state.json").write_bytes(state)
    return out / "state.json", run(
        "--index-dir", str(tmp_path / "index"), "onboard", "--dataset", str(data), "--out", str(out), env=NO_DENSE
    )


def test_onboard_refuses_a_state_file_that_is_a_json_array_naming_it(tmp_path):
    """Was: read_state calls state.get() on whatever the JSON is: an AttributeError traceback ("'list' object
    has no attribute 'get'"). A state file that is not JSON is refused ("not a state file ...; use another
    --out"). Must: the same for JSON that is not an object."""
    state, result = onboarded_with_state(tmp_path, b"[]\n")
    assert str(state) in refused(result)


def test_onboard_refuses_a_state_file_not_in_utf8_naming_it(tmp_path):
    """Was: "Error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte", naming no file
    (read_state catches JSONDecodeError only). Must: name OUT/state.json."""
    state, result = onboarded_with_state(tmp_path, b"\xff{}\n")
    assert str(state) in refused(result)


# --- exposure-control: the controller's state file ------------------------------------------------------------------


def test_exposure_control_refuses_a_state_file_that_is_a_json_array_naming_it(tmp_path):
    """Was: state.pop("totals", None) on a list: a TypeError traceback. A state file that is not JSON is named
    ("... is not JSON: ..."). Must: the same for JSON that is not an object."""
    state = tmp_path / "exposure.json"
    state.write_text("[1]\n", encoding="utf-8")
    result = run("exposure-control", env={"SEARCH_RERANK_EXPOSURE_CONTROL__STATE_PATH": str(state)})
    assert str(state) in refused(result)


def test_exposure_control_refuses_a_state_file_not_in_utf8_naming_it(tmp_path):
    """Was: "Error: 'utf-8' codec can't decode byte 0xff in position 0: invalid start byte", no file named.
    Must: name the file."""
    state = tmp_path / "exposure.json"
    state.write_bytes(b"\xff{}\n")
    result = run("exposure-control", env={"SEARCH_RERANK_EXPOSURE_CONTROL__STATE_PATH": str(state)})
    assert str(state) in refused(result)


# --- evaluate --personalised: the simulated shoppers' folder ---------------------------------------------------------


def personalised(tmp_path: Path, queries: str):
    """evaluate --personalised of a shoppers folder whose queries.jsonl is ``queries``."""
    data = beir(tmp_path / "data")
    index_dir = tmp_path / "index"
    built = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(data))
    assert built.exit_code == 0, built.output
    shoppers = tmp_path / "shoppers"
    (shoppers / "qrels").mkdir(parents=True)
    (shoppers / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\ns1\tp1\t1\n", encoding="utf-8")
    jsonl(shoppers / "ubi.ndjson", [clicked("u1", "p1")])
    (shoppers / "queries.jsonl").write_text(queries, encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "evaluate", "--dataset", str(data), "--split", "test",
        "--personalised", str(shoppers), env=NO_DENSE,
    )  # fmt: skip
    return shoppers / "queries.jsonl", result


def test_evaluate_personalised_refuses_a_search_without_an_id_naming_file_and_line(tmp_path):
    """personalised.read_searches reads record["_id"]: a record that names it "id" ends in a KeyError traceback.
    Must: "shoppers/queries.jsonl:1: _id: required but missing", as the dataset's own queries.jsonl says."""
    queries, result = personalised(tmp_path, '{"id": "s1", "text": "oak desk", "user_id": "u1"}\n')
    assert f"{queries}:1" in refused(result)


def test_evaluate_personalised_reads_a_queries_file_with_a_blank_line(tmp_path):
    """Was: "Error: Expecting value: line 1 column 1 (char 0)": json.loads of the blank last line (a file saved
    by an editor), naming neither file nor line. Every other JSON Lines reader passes blank lines over. Must:
    read it (exit 0), or at worst name the file and line."""
    queries, result = personalised(
        tmp_path, '{"_id": "s1", "text": "oak desk", "user_id": "u1", "segment": "returning"}\n\n'
    )
    assert result.exit_code == 0, (result.exception, result.output[-400:])


def test_evaluate_personalised_refuses_a_search_time_that_is_no_date_naming_file_and_line(tmp_path):
    """Was: "Error: Invalid isoformat string: 'yesterday'", naming neither the file nor the search. Must:
    "shoppers/queries.jsonl:1: timestamp ...", as profiles build names a bad event time."""
    queries, result = personalised(
        tmp_path, '{"_id": "s1", "text": "oak desk", "user_id": "u1", "timestamp": "yesterday"}\n'
    )
    output = refused(result)
    assert f"{queries}:1" in output and "timestamp" in output


# --- CSV: a quote that never closes, in a file of some size ------------------------------------------------------------


def test_a_csv_quote_that_never_closes_is_named_at_its_line_in_a_file_of_thousands_of_rows(tmp_path):
    """A small file gets "catalog.csv:3: unreadable CSV: a quoted cell on this line never closes". With a few
    thousand rows after it, the cell reaches csv's field limit first: it was "catalog.csv:2383: unreadable CSV:
    field larger than field limit (131072)", a line 2,380 rows past the quote, itself a good row. Must: name
    line 3 and the quote."""
    catalog = tmp_path / "catalog.csv"
    rows = [f"p{i},product number {i} with a longer title text here" for i in range(3, 6003)]
    catalog.write_text("\n".join(["id,title", "p1,oak desk", 'p2,"brass lamp', *rows]) + "\n", encoding="utf-8")
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    output = refused(result)
    assert f"{catalog}:3:" in output and "never closes" in output


# --- settings: a boolean where a number belongs ----------------------------------------------------------------------


def test_a_settings_file_giving_a_number_setting_as_true_is_refused_naming_file_line_and_setting(tmp_path):
    """Was: `[rerank] window = true` is read as window = 1 (pydantic's lax bool-to-int), exit 0: the reranker
    then reorders the top one hit, i.e. nothing. The catalog refuses true for a price or an id for just this
    reason. Must: "settings.toml:2: rerank.window: ..." refused."""
    settings = tmp_path / "settings.toml"
    settings.write_text("[rerank]\nwindow = true\n", encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert f"{settings}:2: rerank.window" in output


def test_a_fusion_weight_given_as_true_is_refused_naming_the_setting(tmp_path):
    """Was: read as 1.0, exit 0."""
    settings = tmp_path / "settings.json"
    settings.write_text('{"fusion": {"method": "linear", "weights": {"lexical": true, "dense": 0.2}}}\n')
    output = refused(run("--settings", str(settings), "models", "list"))
    assert str(settings) in output and "fusion.weights: lexical" in output


# --- a number past a double in a display field ----------------------------------------------------------------------


def test_a_catalog_display_number_past_a_double_is_refused_not_stored_as_null(tmp_path):
    """json reads 1e400 as inf (json_text refuses the literals NaN and Infinity, not a number that overflows);
    the price refuses it ("would be stored as null, silently"), a display field does not: it was exit 0 and p1's
    weight is stored and answered as null. Must: "catalog.jsonl:1: weight ..." refused."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        '{"id": "p1", "title": "oak desk", "weight": 1e400}\n{"id": "p2", "title": "brass lamp", "weight": 2.5}\n',
        encoding="utf-8",
    )
    index_dir = tmp_path / "index"
    result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog))
    if result.exit_code == 0:
        store = open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False})).store
        raise AssertionError(f"indexed, p1's weight {[p.extra for p in store if p.id == 'p1']}")
    output = refused(result)
    assert f"{catalog}:1:" in output and "weight" in output


# --- train --clicks: a glob whose first file is empty ----------------------------------------------------------------


def test_train_clicks_reads_a_glob_whose_first_file_is_an_empty_rotated_log(tmp_path):
    """read_clicks tells the format from the first file's first record: a glob whose first match is empty (the
    file a rotation just opened, as `profiles build` expects) it was ends in "ubi.1.ndjson: the click log is empty",
    though ubi.2.ndjson holds the clicks. Must: read the other files (here the command then goes on to refuse
    the labels for --min-impressions, before any training)."""
    now = int(time.time() * 1000)
    lines = []
    for i in range(3):
        lines.append({"query_id": f"q{i}", "user_query": "oak desk", "query_response_hit_ids": ["p1", "p2"],
                      "timestamp": now})  # fmt: skip
        lines.append({"action_name": "click", "query_id": f"q{i}", "timestamp": now,
                      "event_attributes": {"object": {"object_id": "p1"}, "position": {"ordinal": 1}}})  # fmt: skip
    (tmp_path / "ubi.1.ndjson").write_text("", encoding="utf-8")
    jsonl(tmp_path / "ubi.2.ndjson", lines)
    result = run(
        "--index-dir", str(tmp_path / "index"), "train", "reranker", "--clicks", str(tmp_path / "ubi.*.ndjson"),
        "--name", "probe", "--min-impressions", "1000", env=NO_DENSE,
    )  # fmt: skip
    output = refused(result)
    assert "empty" not in output and "no query with a relevant product" in output


# --- reindex --rollback: a delete file given with it ------------------------------------------------------------------


def test_reindex_rollback_with_a_delete_file_is_refused_not_ignored(tmp_path):
    """`--rollback takes no --catalog or --incremental`, but --delete FILE passes: it was exit 0, the previous
    version served again with the ids of FILE still in it, and no word that FILE was not read (a takedown
    believed done). Must: a usage error naming --delete, as --catalog gets."""
    index_dir = indexed(tmp_path)
    newer = jsonl(tmp_path / "newer.jsonl", [*CATALOG, {"id": "p4", "title": "cane chair"}])
    assert run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(newer)).exit_code == 0
    (tmp_path / "gone.txt").write_text("p2\n", encoding="utf-8")
    result = run("--index-dir", str(index_dir), "reindex", "--rollback", "--delete", str(tmp_path / "gone.txt"))
    assert result.exit_code != 0 and "--delete" in result.output, (result.output, served(index_dir))


def test_an_incremental_update_shows_an_unknown_delete_id_of_a_megabyte_shortened(tmp_path):
    """A delete file of one long line (ids joined by spaces, `echo $IDS > gone.txt`) is one id, as documented;
    the warning naming the ids to delete that no product has then prints the whole line: it was a megabyte of
    output for a megabyte line (30 MB for 30 MB). Must: show the id cut, as the catalog reader cuts a value."""
    index_dir = indexed(tmp_path)
    (tmp_path / "gone.txt").write_text("p9 " * 350_000 + "\n", encoding="utf-8")
    empty = tmp_path / "none.jsonl"
    empty.write_text("", encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental", "--catalog", str(empty),
        "--delete", str(tmp_path / "gone.txt"),
    )  # fmt: skip
    assert "in no product of the index" in result.output, result.output[-300:]
    assert len(result.output) < 5_000, len(result.output)


# --- a catalog streamed through a named pipe -----------------------------------------------------------------------


def test_index_of_a_catalog_from_a_named_pipe_does_not_wait_for_a_second_writer(tmp_path):
    """`mkfifo catalog.jsonl; zcat export.gz > catalog.jsonl & search-rerank index --catalog catalog.jsonl`:
    index reads the catalog twice (catalog_fields types the fields, then build_index writes the products), so
    after the first pass it opens the pipe again and waits for a writer that never comes: a hang. (Here a
    thread stands in for a second writer with nothing to write, so the test ends: the build then finds "the
    catalog is empty: nothing to index", exit 1.) Must: index the products the pipe gave, or refuse a file that
    cannot be read twice, naming it, before waiting on it."""
    import os
    import threading

    fifo = tmp_path / "catalog.jsonl"
    os.mkfifo(fifo)
    stop = threading.Event()

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as out:
            out.write("".join(json.dumps(record) + "\n" for record in CATALOG))
        while not stop.wait(0.05):  # answer any later open with an empty stream, so that nothing hangs
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        index_dir = tmp_path / "index"
        result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(fifo))
    finally:
        stop.set()
        feeder.join(5)
    if result.exit_code == 0:
        assert set(served(index_dir)) == {"p1", "p2", "p3"}
    else:
        assert str(fifo) in refused(result)


# --- a catalog of its header alone ----------------------------------------------------------------------------------


def test_index_of_a_csv_catalog_of_its_header_alone_names_the_file(tmp_path):
    """Was: "Error: the catalog is empty: nothing to index", naming no file (a BEIR directory, a glob in a
    script: which file?). `judgments convert` and `profiles build` name the file they found empty. Must: name
    it."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(b"\xef\xbb\xbfid,title,price\r\n")
    output = refused(run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog)))
    assert str(catalog) in output
