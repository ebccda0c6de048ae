"""The command line given the files and settings a shop really has: exports from spreadsheets and Windows
tools, paths that cannot be written, misspelt variables. Each ends read correctly or in one line naming the
file (and line), exit status 1, never a traceback."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from homedepot_files import write_homedepot

from search_rerank.cli import main
from search_rerank.core.settings import Settings
from search_rerank.data.judgments import read_judgments
from search_rerank.data.loaders import load_dataset
from search_rerank.indexing.indexes import open_pipeline

CATALOG = [{"id": "p1", "title": "oak desk"}, {"id": "SKU 2", "title": "brass lamp"}, {"id": "p3", "title": "wool rug"}]


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env)


def refused(result) -> str:
    """The output of a command that ended in its one-line message (a traceback would leave another exception)."""
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    return result.output


def indexed(tmp_path: Path) -> Path:
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text("".join(json.dumps(record) + "\n" for record in CATALOG), encoding="utf-8")
    index_dir = tmp_path / "index"
    result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    return index_dir


def served_ids(index_dir: Path) -> set[str]:
    store = open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False})).store
    return {product.id for product in store}


def test_index_of_a_windows_1252_export_names_file_and_line(tmp_path):
    catalog = tmp_path / "catalog.csv"
    catalog.write_bytes("id,title\np1,Desk\np2,\u201cOak\u201d desk\n".encode("cp1252"))
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    assert f"{catalog}:3: not UTF-8" in refused(result)


def test_an_index_dir_that_cannot_be_created_is_a_message_naming_it(tmp_path):
    """As an unwritable directory would be (the tests may run as root, whom permissions do not stop)."""
    (tmp_path / "a-file").write_text("", encoding="utf-8")
    catalog = tmp_path / "catalog.jsonl"
    catalog.write_text('{"id": "p1", "title": "oak desk"}\n', encoding="utf-8")
    index_dir = tmp_path / "a-file" / "index"
    result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog))
    assert "a-file" in refused(result)


def deleted(tmp_path: Path, deletions: bytes) -> tuple[Path, str]:
    """An index of the test catalog updated in place with the delete file ``deletions`` (and no new products):
    its directory and the command's output."""
    index_dir = indexed(tmp_path)
    (tmp_path / "gone.txt").write_bytes(deletions)
    empty = tmp_path / "none.jsonl"
    empty.write_text("", encoding="utf-8")
    result = run(
        "--index-dir", str(index_dir), "index", "--no-dense", "--incremental", "--catalog", str(empty),
        "--delete", str(tmp_path / "gone.txt"),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return index_dir, result.output


def test_a_delete_file_saved_with_a_byte_order_mark_deletes_its_first_id(tmp_path):
    index_dir, _ = deleted(tmp_path, b"\xef\xbb\xbfp1\r\np3\r\n")
    assert served_ids(index_dir) == {"SKU 2"}


def test_a_delete_file_takes_each_line_as_one_id_spaces_and_all(tmp_path):
    index_dir, _ = deleted(tmp_path, b"SKU 2\n")
    assert served_ids(index_dir) == {"p1", "p3"}


def test_ids_to_delete_that_no_product_has_are_named_in_a_warning(tmp_path):
    _, output = deleted(tmp_path, b"p1\nSKU 9\np1\n")
    assert "deleted 1 products" in output
    assert "1 id(s) to delete are in no product of the index: 'SKU 9'" in output


def test_a_settings_file_saved_with_a_byte_order_mark_is_read(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_bytes(b'\xef\xbb\xbfmodels_dir = "registry"\r\n[fusion]\r\nmethod = "linear"\r\n')
    result = run("--settings", str(settings), "models", "list")
    assert result.exit_code == 0, result.output
    assert "registry" in result.output


def test_a_settings_file_not_in_utf8_names_file_and_line(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_bytes('[fusion]\nmethod = "linear"\n[service]\nhost = "caf\u00e9"\n'.encode("latin-1"))
    result = run("--settings", str(settings), "models", "list")
    assert f"{settings}:4: not UTF-8" in refused(result)


def test_a_json_settings_file_that_is_not_an_object_is_refused_by_name(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('[{"fusion": {"method": "linear"}}]\n', encoding="utf-8")
    assert f"{settings}: settings must be a JSON object" in refused(run("--settings", str(settings), "models", "list"))


@pytest.mark.parametrize(("suffix", "nested"), [(".json", "[" * 100_000), (".toml", "x = " + "[" * 100_000)])
def test_a_settings_file_nested_too_deep_to_read_is_refused_by_name_not_a_traceback(tmp_path, suffix, nested):
    settings = tmp_path / f"settings{suffix}"
    settings.write_text(nested, encoding="utf-8")
    assert f"{settings}: cannot parse" in refused(run("--settings", str(settings), "models", "list"))


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SEARCH_RERANK_SERVICE__CORS_ALLOW_ORIGINS", "https://shop.example"),
        ("SEARCH_RERANK_LEXICAL__FIELD_BOOSTS", "title:3"),
        ("SEARCH_RERANK_RERANK", '{"window": 3'),
    ],
)
def test_a_list_map_or_section_variable_that_is_not_json_is_named_saying_it_takes_json(variable, value):
    """It said 'error parsing value for field "service" from source "EnvSettingsSource"', naming neither."""
    output = refused(run("models", "list", env={variable: value}))
    assert f"environment variable {variable}: " in output and "takes JSON" in output


def test_a_misspelt_key_in_a_settings_file_is_named_with_its_line_and_likely_spelling(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text('[fusion]\nmethod = "linear"\n\n[rerank]\nwindw = 30\n', encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert f"{settings}:5: rerank.windw: no such setting; did you mean rerank.window?" in output


def test_a_bad_value_in_a_json_settings_file_is_named_with_its_line_and_value(tmp_path):
    settings = tmp_path / "settings.json"
    settings.write_text('{\n  "fusion": {\n    "method": "weighted"\n  }\n}\n', encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert f"{settings}:3: fusion.method: Input should be 'rrf' or 'linear' (given 'weighted')" in output


def test_a_section_that_does_not_validate_shows_none_of_its_values(tmp_path):
    """A check across a section's fields is refused with the section's whole input, the password among them."""
    settings = tmp_path / "settings.toml"
    settings.write_text('[lexical]\nbackend = "elasticsearch"\npassword = "hunter2-secret"\n', encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert "lexical.url" in output and "hunter2-secret" not in output


def test_a_bad_value_from_a_variable_names_the_variable_once_per_mistake(tmp_path):
    output = refused(run("models", "list", env={"SEARCH_RERANK_RERANK__WINDOW": "fifty"}))
    assert "environment variable SEARCH_RERANK_RERANK__WINDOW: rerank.window:" in output
    assert "errors.pydantic.dev" not in output


def test_a_bad_value_inside_a_sections_json_variable_names_that_variable_and_the_setting(tmp_path):
    output = refused(run("models", "list", env={"SEARCH_RERANK_FUSION": '{"weights": {"lexical": "x"}}'}))
    assert "environment variable SEARCH_RERANK_FUSION: fusion.weights.lexical:" in output


def test_a_secret_setting_that_does_not_validate_is_named_but_not_shown(tmp_path):
    settings = tmp_path / "settings.toml"
    settings.write_text("[lexical]\npassword = 271828182845\n", encoding="utf-8")
    output = refused(run("--settings", str(settings), "models", "list"))
    assert "lexical.password" in output and "271828182845" not in output


def test_a_settings_variable_with_one_underscore_for_two_is_named_with_the_right_spelling(tmp_path):
    """SEARCH_RERANK_LEXICAL_URL would be ignored: the service would search its embedded index, not the cluster."""
    result = run("models", "list", env={"SEARCH_RERANK_LEXICAL_URL": "http://search.internal:9200"})
    output = refused(result)
    assert "SEARCH_RERANK_LEXICAL_URL" in output and "SEARCH_RERANK_LEXICAL__URL" in output


@pytest.mark.parametrize(
    ("variable", "setting"),
    [
        ("SEARCH_RERANK_SERVICE__UBI_LOG_PATH", "service.ubi_log_path"),
        ("SEARCH_RERANK_RERANK__MODEL", "rerank.model"),
        ("SEARCH_RERANK_INDEX_DIR", "index_dir"),
    ],
)
def test_a_path_or_model_setting_given_empty_is_refused_by_name(tmp_path, variable, setting):
    """An empty value is read as the current directory (a path) or models_dir itself (a model name): a
    variable set to "" in a compose file must not serve from, or log into, wherever the service started."""
    output = refused(run("models", "list", env={variable: ""}))
    assert f"environment variable {variable}: {setting}: empty" in output


def test_a_flag_wins_over_the_variable_of_its_setting(tmp_path):
    """The Docker image sets SEARCH_RERANK_INDEX_DIR: `--index-dir` went unheeded, searching another index."""
    index_dir = indexed(tmp_path)
    env = {"SEARCH_RERANK_INDEX_DIR": str(tmp_path / "elsewhere"), "SEARCH_RERANK_DENSE__ENABLED": "false"}
    result = run("--index-dir", str(index_dir), "search", "oak desk", env=env)
    assert result.exit_code == 0, result.output
    assert "p1" in result.output


def test_the_variables_that_are_not_settings_are_not_refused(tmp_path):
    env = {"SEARCH_RERANK_ADMIN_TOKEN": "secret", "SEARCH_RERANK_LOG_LEVEL": "warning"}
    result = run("--index-dir", str(tmp_path), "models", "list", env=env)
    assert result.exit_code == 0, result.output


def test_index_of_a_catalog_repeating_an_id_says_how_many_products_it_made(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [*CATALOG, {"id": "p1", "title": "oak desk, walnut"}]
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    index_dir = tmp_path / "index"
    result = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    assert "4 records made 3 products" in result.output
    assert {p.id: p.title for p in open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False})).store}[
        "p1"
    ] == "oak desk, walnut"


def test_index_of_a_catalog_repeating_an_id_names_the_lines_that_repeat_it(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [*CATALOG, {"id": "p1", "title": "oak desk, walnut"}, {"id": "[p2]", "title": "x"}]
    records.append({"id": "[p2]", "title": "y"})
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    assert f"line {len(CATALOG) + 1}: id 'p1'; line {len(CATALOG) + 3}: id '[p2]'" in " ".join(result.output.split())


def test_evaluate_scores_a_kaggle_home_depot_download_as_it_comes(tmp_path):
    """Latin-1 files as Kaggle ships them, indexed and judged from the same directory: every train query found."""
    data = write_homedepot(tmp_path / "home-depot-product-search-relevance")
    index_dir = tmp_path / "index"
    indexed = run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(data))
    assert indexed.exit_code == 0, indexed.output
    out = tmp_path / "report.json"
    result = run(
        *("--index-dir", str(index_dir), "evaluate", "--dataset", str(data), "--split", "train", "--json", str(out)),
        env={"SEARCH_RERANK_DENSE__ENABLED": "false"},
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text(encoding="utf-8"))
    assert (report["queries"], report["catalog_size"]) == (4, 7)
    bm25 = next(row for row in report["rows"] if row["config"] == "bm25")
    assert bm25["status"] == "ok" and bm25["metrics"]["R@100"] == 1.0, bm25


def test_an_incremental_reindex_from_a_file_bad_halfway_leaves_the_served_index_untouched(tmp_path):
    index_dir = indexed(tmp_path)
    update = tmp_path / "update.jsonl"
    update.write_text('{"id": "p1", "title": "pine desk"}\n{"id": "p4", "title": "cane chair"}\n{"id": "p5"}\n')
    (tmp_path / "gone.txt").write_text("p3\n")
    result = run(
        "--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental", "--batch-size", "1",
        "--catalog", str(update), "--delete", str(update.with_name("gone.txt")),
    )  # fmt: skip
    assert f"{update}:3: title" in refused(result)
    store = open_pipeline(Settings(index_dir=index_dir, dense={"enabled": False})).store
    assert {product.id: product.title for product in store} == {record["id"]: record["title"] for record in CATALOG}


def test_index_lists_the_fields_kept_for_display_with_the_products_holding_each(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [{**record, "image_url": f"/img/{record['id']}.jpg"} for record in CATALOG]
    records[0] = {**records[0], "in_stock": True}
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    output = " ".join(result.output.split())
    assert "kept for hits' _source (products holding each): image_url (3), in_stock (1)" in output


def test_index_lists_the_catalog_fields_it_filters_sorts_and_facets_with_their_types(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [{**record, "added": f"2025-0{i + 1}-01", "stock": str(i)} for i, record in enumerate(CATALOG)]
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    result = run("--index-dir", str(tmp_path / "index"), "index", "--no-dense", "--catalog", str(catalog))
    assert result.exit_code == 0, result.output
    assert "faceted as their values read: added (date), stock (long)" in " ".join(result.output.split())


def test_an_incremental_update_lists_the_values_it_cannot_filter_by_field(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [{**record, "stock": i} for i, record in enumerate(CATALOG)]
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog)).exit_code == 0
    update = tmp_path / "update.jsonl"
    update.write_text(json.dumps({**CATALOG[0], "stock": "n/a", "colour": "red"}) + "\n", encoding="utf-8")
    result = run("--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental", "--catalog", str(update))
    assert result.exit_code == 0, result.output
    assert "not filtered, sorted or faceted (values of each): stock (1), colour (1)" in " ".join(result.output.split())


def test_an_incremental_update_lists_the_fields_of_several_values_it_sorts_by_the_first(tmp_path):
    catalog = tmp_path / "catalog.jsonl"
    records = [{**record, "size": i} for i, record in enumerate(CATALOG)]
    catalog.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    index_dir = tmp_path / "index"
    assert run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(catalog)).exit_code == 0
    update = tmp_path / "update.jsonl"
    update.write_text(json.dumps({**CATALOG[0], "size": [9, 1]}) + "\n", encoding="utf-8")
    result = run("--index-dir", str(index_dir), "reindex", "--no-dense", "--incremental", "--catalog", str(update))
    assert result.exit_code == 0, result.output
    assert "sorted by the first of their values (products of each): size (1)" in " ".join(result.output.split())


def test_grades_added_as_judgments_pool_says_are_read_back_from_a_home_depot_download(tmp_path):
    data = write_homedepot(tmp_path / "home-depot-product-search-relevance")
    index_dir = tmp_path / "index"
    assert run("--index-dir", str(index_dir), "index", "--no-dense", "--catalog", str(data)).exit_code == 0
    pool = tmp_path / "to_grade.csv"
    result = run(
        *("--index-dir", str(index_dir), "judgments", "pool", "--dataset", str(data), "--split", "dev"),
        *("--out", str(pool)),
        env={"SEARCH_RERANK_DENSE__ENABLED": "false"},
    )
    assert result.exit_code == 0, result.output
    pool.write_text("query,product_id,grade\ndeck over,100005,3\n", encoding="utf-8")  # a dev query, graded
    graded = read_judgments(pool, "csv", dataset_texts={q.id: q.text for q in load_dataset(data).queries.values()})
    new = tmp_path / "new.tsv"
    converted = run(
        "judgments", "convert", str(pool), str(new), "--from", "csv", "--to", "beir", "--dataset", str(data)
    )
    assert converted.exit_code == 0, converted.output
    target = Path(re.search(r"to (\S+\.tsv)\s*$", " ".join(result.output.split())).group(1))
    target.parent.mkdir(parents=True, exist_ok=True)
    with target.open("a", encoding="utf-8") as added:
        added.writelines(new.read_text(encoding="utf-8").splitlines(keepends=True)[1:])
    _, dev = load_dataset(data).split("dev")
    assert graded.qrels and all(dev.get(q, {}).get(p) == 3 for q, products in graded.qrels.items() for p in products)
