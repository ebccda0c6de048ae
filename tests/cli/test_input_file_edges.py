"""The files the command line reads, at their edges: JSON nested past Python's recursion, numbers of thousands of
digits, keys given twice, NaN weights and scores, XML with elements or external entities where text belongs,
NUL bytes, megabyte fields, UBI logs that are not UBI's or are empty.

The standard (see test_input_files): a bad file ends in one line naming the file and the line (and the field),
exit status 1, never a traceback, a hang or a silently wrong result.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from command_line import refused, run

from search_rerank.core.profile import user_key
from search_rerank.core.profile_store import SQLiteProfileStore
from search_rerank.core.settings import Settings
from search_rerank.indexing.indexes import open_pipeline

NO_DENSE = {"SEARCH_RERANK_DENSE__ENABLED": "false"}
CATALOG = [{"id": "p1", "title": "oak desk"}, {"id": "p2", "title": "brass lamp"}, {"id": "p3", "title": "wool rug"}]
RSS = (
    '<?xml version="1.0"{declaration}?>\n{doctype}<rss xmlns:g="http://base.google.com/ns/1.0"><channel>\n'
    "<item><g:id>p1</g:id><g:title>oak desk{title}</g:title><g:image_link>http://x/1.jpg</g:image_link>{extra}"
    "</item>\n</channel></rss>\n"
)


def index(tmp_path: Path, catalog: Path, index_dir: Path | None = None):
    return run("--index-dir", str(index_dir or tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))


def jsonl(path: Path, records: list) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def beir(directory: Path, qrels: str, queries: list | None = None) -> Path:
    """A BEIR dataset of CATALOG, its queries and its qrels/test.tsv as given."""
    (directory / "qrels").mkdir(parents=True)
    jsonl(directory / "corpus.jsonl", [{"_id": r["id"], "title": r["title"]} for r in CATALOG])
    queries = queries or [{"_id": "q1", "text": "oak desk"}, {"_id": "q2", "text": "lamp"}]
    jsonl(directory / "queries.jsonl", queries)
    (directory / "qrels" / "test.tsv").write_text(qrels, encoding="utf-8")
    return directory


def indexed_dataset(tmp_path: Path, qrels: str, queries: list | None = None) -> tuple[Path, Path]:
    data = beir(tmp_path / "data", qrels, queries)
    index_dir = tmp_path / "index"
    result = index(tmp_path, data, index_dir)
    assert result.exit_code == 0, result.output
    return data, index_dir


# --- JSON nested deeper than Python recurses: a RecursionError traceback --------------------------------------


def test_a_csv_attributes_cell_of_json_nested_too_deep_is_refused_naming_file_line_and_field(tmp_path):
    """loaders._csv_product parses the cell with json.loads, catching ValueError only: RecursionError escapes."""
    catalog = tmp_path / "catalog.csv"
    nested = '"{""a"": ' + "[" * 10_000 + "]" * 10_000 + '}"'
    catalog.write_text(f"id,title,attributes\np1,oak desk,color:red\np2,brass lamp,{nested}\n", encoding="utf-8")
    assert f"{catalog}:3: attributes" in refused(index(tmp_path, catalog))


def test_an_xml_feed_item_nested_too_deep_is_refused_naming_file_and_line(tmp_path):
    """expat has no depth limit; the product refuses the record, then loaders._describe's repr() of its input
    recurses past the limit: a RecursionError traceback."""
    feed = tmp_path / "feed.xml"
    feed.write_text(
        RSS.format(declaration="", doctype="", title="", extra="<g:x>" + "<a>" * 10_000 + "</a>" * 10_000 + "</g:x>"),
        encoding="utf-8",
    )
    assert f"{feed}:3:" in refused(index(tmp_path, feed))


def test_models_list_shows_a_model_card_nested_too_deep_as_a_broken_card(tmp_path):
    """model_card.load_card catches JSONDecodeError and UnicodeDecodeError only: `models list`, which promises to
    list broken cards with what is wrong, ends in a RecursionError traceback."""
    (tmp_path / "deep").mkdir()
    (tmp_path / "deep" / "model_card.json").write_text('{"x": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run("models", "list", "--models-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, (result.exception, result.output[-300:])
    [entry] = json.loads(result.output)
    assert entry["name"] == "deep" and "model_card.json" in entry["problem"]


# --- an XML declaration naming an encoding Python does not know: a LookupError traceback ----------------------


def test_an_xml_feed_declaring_an_unknown_encoding_is_refused_naming_the_file(tmp_path):
    feed = tmp_path / "feed.xml"
    feed.write_text(RSS.format(declaration=' encoding="latin-9x"', doctype="", title="", extra=""), encoding="utf-8")
    output = refused(index(tmp_path, feed))
    assert str(feed) in output and "latin-9x" in output


# --- integer literals past Python's 4300 digits: a message that names no file -----------------------------------


def test_an_srw_judgment_list_with_a_rating_of_5000_digits_names_the_file(tmp_path):
    """read_srw catches JSONDecodeError; json's int-size ValueError reaches Command's generic handler."""
    srw = tmp_path / "srw.json"
    rating = "1" * 5000
    srw.write_text(
        f'{{"judgmentRatings": [{{"query": "oak desk", "ratings": [{{"docId": "p1", "rating": {rating}}}]}}]}}'
    )
    output = refused(run("judgments", "convert", str(srw), str(tmp_path / "out.tsv"), "--from", "srw", "--to", "beir"))
    assert str(srw) in output and "sys.set_int_max_str_digits" not in output


def test_a_json_settings_file_with_a_number_of_5000_digits_names_the_file_and_setting(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{"rerank": {"window": ' + "9" * 5000 + "}}\n", encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert str(settings) in output and "sys.set_int_max_str_digits" not in output


def test_models_list_shows_a_model_card_with_a_number_of_5000_digits_as_a_broken_card(tmp_path):
    """One such card stops the whole listing, with a message naming no file."""
    (tmp_path / "big").mkdir()
    (tmp_path / "big" / "model_card.json").write_text('{"name": "big", "seed": ' + "9" * 5000 + "}")
    result = run("models", "list", "--models-dir", str(tmp_path), "--json")
    assert result.exit_code == 0, result.output[-300:]
    [entry] = json.loads(result.output)
    assert entry["name"] == "big" and "model_card.json" in entry["problem"]


def test_a_jsonl_catalog_price_of_5000_digits_names_the_field_not_a_python_setting(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text(
        '{"id": "p1", "title": "oak desk"}\n{"id": "p2", "title": "lamp", "price": ' + "9" * 5000 + "}\n"
    )
    output = refused(index(tmp_path, catalog))
    assert f"{catalog}:2:" in output and "sys.set_int_max_str_digits" not in output


# --- a Parquet file that is not one: a message that names no file -----------------------------------------------


def test_an_esci_directory_with_a_damaged_parquet_file_names_the_file(tmp_path):
    """pyarrow's ArrowInvalid is a ValueError, shown by Command as it is: 'Parquet magic bytes not found'."""
    (tmp_path / "esci").mkdir()
    products = tmp_path / "esci" / "shopping_queries_dataset_products.parquet"
    products.write_bytes(b"not a parquet file\n")
    (tmp_path / "esci" / "shopping_queries_dataset_examples.parquet").write_bytes(b"not a parquet file\n")
    assert str(products) in refused(index(tmp_path, tmp_path / "esci"))


# --- JSON objects naming a key twice: the last silently wins --------------------------------------------------


def test_a_jsonl_catalog_record_giving_title_twice_is_refused_naming_the_line_and_field(tmp_path):
    """'Title' beside 'title' is refused ("keep one"), but the same key twice is read as its last value."""
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"id": "p1", "title": "oak desk"}\n{"id": "p2", "title": "lamp", "title": "rug"}\n')
    output = refused(index(tmp_path, catalog))
    assert f"{catalog}:2:" in output and "title" in output


def test_a_json_settings_file_giving_a_section_twice_is_refused_as_toml_refuses_it(tmp_path):
    """TOML refuses a key given twice ("Cannot overwrite a value"); JSON settings take the last one silently."""
    settings = tmp_path / "settings.json"
    settings.write_text('{"rerank": {"window": 30},\n "rerank": {"window": 40}}\n', encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert str(settings) in output and "rerank" in output


# --- NaN and infinity in the settings' weight maps ---------------------------------------------------------------


def test_a_fusion_weight_of_nan_is_refused_naming_file_line_and_setting(tmp_path):
    """Scalar float settings refuse nan; the weight maps (fusion.weights, identifier_weights, lexical.field_boosts,
    personalisation.facet_weights and action_weights) take it: search then answers "score": NaN for every hit."""
    settings = tmp_path / "settings.toml"
    settings.write_text('[fusion]\nmethod = "linear"\n\n[fusion.weights]\nlexical = nan\ndense = 0.2\n')
    output = refused(run("--settings", str(settings), "models", "list"))
    assert str(settings) in output and "fusion.weights.lexical" in output


def test_a_personalisation_action_weight_of_infinity_is_refused_naming_the_setting(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text("[personalisation.action_weights]\nclick = inf\n")
    assert "personalisation.action_weights.click" in refused(run("--settings", str(settings), "models", "list"))


# --- TREC runs: scores that are no number --------------------------------------------------------------------------


def test_compare_refuses_a_trec_run_scoring_a_product_nan_naming_file_line_and_score(tmp_path):
    """qrels.read_trec_run reads the score with float(), which takes "nan" and "inf": the run's order, sorted by a
    NaN, is then whatever the sort makes of it, and compare reports its metrics and significance as valid."""
    data = beir(tmp_path / "data", "query-id\tcorpus-id\tscore\nq1\tp1\t1\nq2\tp2\t1\n")
    good = tmp_path / "a.run"
    good.write_text("q1 Q0 p1 1 2.0 a\nq2 Q0 p2 1 1.0 a\n")
    bad = tmp_path / "b.run"
    bad.write_text("q1 Q0 p3 1 5.0 b\nq1 Q0 p1 2 nan b\nq2 Q0 p2 1 1.0 b\n")
    result = run("--index-dir", str(tmp_path / "index"), "compare", str(good), str(bad), "--dataset", str(data))
    assert f"{bad}:2: score" in refused(result)


# --- BEIR qrels: grades and ids the reader takes and evaluation cannot ---------------------------------------------


def test_evaluate_refuses_a_grade_too_large_for_the_evaluator_naming_file_and_line(tmp_path):
    """qrels.integer reads any number of digits; ir_measures/pytrec_eval then fails with an OverflowError
    traceback ("Python int too large to convert to C long")."""
    data, index_dir = indexed_dataset(tmp_path, "query-id\tcorpus-id\tscore\nq1\tp1\t99999999999999999999\n")
    result = run("--index-dir", str(index_dir), "evaluate", "--dataset", str(data), env=NO_DENSE)
    assert f"{data / 'qrels' / 'test.tsv'}:2: score" in refused(result)


def test_a_beir_qrels_line_with_an_empty_query_id_is_refused_naming_its_file_and_line(tmp_path):
    """The reader takes '' as a query id: `judgments convert` then blames the file it writes, evaluate says a query
    '' has no text, neither naming the line."""
    qrels = tmp_path / "in.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tp1\t1\n\tp2\t1\n", encoding="utf-8")
    out = tmp_path / "out.trec"
    output = refused(run("judgments", "convert", str(qrels), str(out), "--from", "beir", "--to", "trec"))
    assert f"{qrels}:3:" in output


def test_evaluate_of_a_split_that_judges_no_query_is_refused_not_scored_zero(tmp_path):
    """A qrels file with its header alone (or empty) is a split of 0 queries: every metric is printed as 0.0000,
    status ok, exit 0, as though every configuration found nothing."""
    data, index_dir = indexed_dataset(tmp_path, "query-id\tcorpus-id\tscore\n")
    result = run("--index-dir", str(index_dir), "evaluate", "--dataset", str(data), env=NO_DENSE)
    output = refused(result)
    assert "test" in output and "no" in output


def test_a_query_id_given_as_true_is_refused_not_read_as_the_text_true(tmp_path):
    """The catalog refuses a boolean id; queries.jsonl reads `"_id": true` as the id 'True' (str(True)), so the
    query's judgments are reported as judging a query with no text."""
    data, index_dir = indexed_dataset(
        tmp_path,
        "query-id\tcorpus-id\tscore\nq1\tp1\t1\n",
        queries=[{"_id": True, "text": "oak desk"}, {"_id": "q1", "text": "desk"}],
    )
    result = run("--index-dir", str(index_dir), "evaluate", "--dataset", str(data), env=NO_DENSE)
    assert f"{data / 'queries.jsonl'}:1: _id" in refused(result)


# --- Merchant Center XML: what the reader makes of elements where text belongs -----------------------------------


def test_a_feed_colour_holding_an_element_is_refused_not_indexed_as_a_python_repr(tmp_path):
    """<g:color><a>red</a></g:color> is read as {'a': 'red'}, and merchant_feed._values keeps str() of it: the
    product's colour becomes "{'a': 'red'}"."""
    feed = tmp_path / "feed.xml"
    feed.write_text(RSS.format(declaration="", doctype="", title="", extra="<g:color><a>red</a></g:color>"))
    result = index(tmp_path, feed)
    if result.exit_code == 0:
        store = open_pipeline(Settings(index_dir=tmp_path / "index", dense={"enabled": False})).store
        colours = {p.id: p.attributes.get("color") for p in store}
        raise AssertionError(f"indexed, with the colours {colours}")
    assert f"{feed}:3: color" in refused(result)


def test_a_feed_referring_to_an_external_entity_is_refused_not_read_without_its_text(tmp_path):
    """expat neither reads the file (good) nor says so: the reference is dropped and the title loses its text."""
    secret = tmp_path / "secret.txt"
    secret.write_text("walnut")
    feed = tmp_path / "feed.xml"
    doctype = f'<!DOCTYPE rss [<!ENTITY wood SYSTEM "file://{secret}">]>\n'
    feed.write_text(RSS.format(declaration="", doctype=doctype, title=" &wood;", extra=""))
    result = index(tmp_path, feed)
    if result.exit_code == 0:
        store = open_pipeline(Settings(index_dir=tmp_path / "index", dense={"enabled": False})).store
        raise AssertionError(f"indexed, titled {[p.title for p in store]}")
    output = refused(result)
    assert str(feed) in output and "wood" in output and "walnut" not in output


# --- CSV cells: what no catalog means ----------------------------------------------------------------------------


def test_a_csv_catalog_holding_a_nul_byte_is_refused_naming_file_and_line(tmp_path):
    """A NUL in a text file is a binary or UTF-16 file read as UTF-8; JSON Lines refuses it (a control
    character), the CSV reader indexes "p\\x001" as the id."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes(b"id,title\np1,oak desk\np\x002,brass lamp\n")
    assert f"{catalog}:3:" in refused(index(tmp_path, catalog))


def test_a_csv_price_with_an_underscore_is_refused_not_read_as_a_thousand(tmp_path):
    """Python's float() reads "1_000" as 1000.0; qrels.integer refuses "1_0" for just this reason (no number typed in
    a spreadsheet means it), but a price or review_count cell takes it."""
    catalog = tmp_path / "catalog.csv"
    catalog.write_text("id,title,price\np1,oak desk,1_000\n", encoding="utf-8")
    assert f"{catalog}:2: price" in refused(index(tmp_path, catalog))


# --- a catalog field of megabytes -------------------------------------------------------------------------------


def test_a_jsonl_description_of_megabytes_is_refused_as_the_csv_reader_refuses_one(tmp_path):
    """The CSV reader refuses a cell over 131,072 characters (csv's field limit), naming its line; the JSON Lines
    reader took any size, and one product of a 100 MB description took minutes and gigabytes to index."""
    catalog = tmp_path / "catalog.jsonl"
    jsonl(catalog, [CATALOG[0], {"id": "p2", "title": "brass lamp", "description": "word " * 400_000}])
    started = time.monotonic()
    result = index(tmp_path, catalog)
    assert f"{catalog}:2: description" in refused(result), f"after {time.monotonic() - started:.1f}s"


# --- profiles build: the UBI log ----------------------------------------------------------------------------------


def profiles_env(tmp_path: Path) -> dict[str, str]:
    return {**NO_DENSE, "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(tmp_path / "profiles.sqlite3")}


def clicked(user: str, product: object) -> dict:
    return {
        "action_name": "click",
        "user_id": user,
        "session_id": f"s-{user}",
        "timestamp": int(time.time() * 1000),
        "event_attributes": {"object": {"object_id": product}, "position": {"ordinal": 0}},
    }


def profiles_indexed(tmp_path: Path) -> Path:
    index_dir = tmp_path / "index"
    assert index(tmp_path, jsonl(tmp_path / "catalog.jsonl", CATALOG), index_dir).exit_code == 0
    return index_dir


def test_profiles_build_refuses_an_event_whose_object_id_is_no_id_naming_file_and_line(tmp_path):
    """`train --clicks` refuses such a line ("object_id must be a non-empty id"); `profiles build` passes over it
    and says nothing, so the shopper's click counts in the one and not in the other."""
    index_dir = profiles_indexed(tmp_path)
    log = jsonl(tmp_path / "ubi.ndjson", [clicked("u1", "p1"), clicked("u2", ["p2"])])
    result = run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(log), env=profiles_env(tmp_path))
    assert f"{log}:2: " in refused(result) and "object_id" in result.output


def test_profiles_build_from_an_empty_log_leaves_the_profiles_as_they_were(tmp_path):
    """The store is cleared before the replay: an empty log (a rotation that left an empty file, a glob matching
    only it) wipes every shopper's profile, exit 0. `index` refuses an empty catalog for the same reason."""
    index_dir = profiles_indexed(tmp_path)
    env = profiles_env(tmp_path)
    log = jsonl(tmp_path / "ubi.ndjson", [clicked("u1", "p1")])
    first = run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(log), env=env)
    assert first.exit_code == 0, first.output
    assert user_key("u1") in SQLiteProfileStore(tmp_path / "profiles.sqlite3").get_many([user_key("u1")])
    empty = tmp_path / "empty.ndjson"
    empty.write_text("")
    result = run("--index-dir", str(index_dir), "profiles", "build", "--ubi", str(empty), env=env)
    assert user_key("u1") in SQLiteProfileStore(tmp_path / "profiles.sqlite3").get_many([user_key("u1")]), result.output
    assert str(empty) in refused(result)


def test_converting_a_judgments_file_of_its_header_alone_is_refused_not_written_empty(tmp_path):
    qrels = tmp_path / "in.tsv"
    qrels.write_text("query-id\tcorpus-id\tscore\n", encoding="utf-8")
    out = tmp_path / "out.trec"
    output = refused(run("judgments", "convert", str(qrels), str(out), "--from", "beir", "--to", "trec"))
    assert str(qrels) in output and not out.exists()


def test_a_gzipped_qrels_file_is_a_split_and_two_files_of_one_split_are_refused(tmp_path):
    import gzip

    from search_rerank.data.loaders import load_beir

    data = beir(tmp_path / "data", "query-id\tcorpus-id\tscore\nq1\tp1\t1\n")
    (data / "qrels" / "test.tsv").rename(data / "qrels" / "Dev.tsv")
    (data / "qrels" / "test.tsv.gz").write_bytes(gzip.compress(b"query-id\tcorpus-id\tscore\nq2\tp2\t2\n"))
    assert load_beir(data).qrels == {"Dev": {"q1": {"p1": 1}}, "test": {"q2": {"p2": 2}}}
    (data / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq2\tp2\t2\n", encoding="utf-8")
    output = refused(run("--index-dir", str(tmp_path / "i"), "evaluate", "--dataset", str(data), env=NO_DENSE))
    assert "a second file of split 'test'" in output
