import gzip
import json
import logging
import shutil
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from homedepot_files import TRAIN, TRAIN_HEADER, csv_bytes, write_homedepot
from pyarrow import csv as arrow_csv

from search_rerank.core.errors import ConfigError, DataError
from search_rerank.core.product import EXTRA_DEPTH_LIMIT, Product
from search_rerank.core.store import ProductStore
from search_rerank.data.dataset import Dataset, Query
from search_rerank.data.loaders import (
    LoadStats,
    iter_catalog,
    iter_csv_catalog,
    iter_jsonl_catalog,
    load_beir,
    load_dataset,
    load_esci,
    load_wands,
    write_beir,
)

SHARED = Path(__file__).resolve().parents[3] / "shared" / "datasets"
WANDS_FIXTURE = Path(__file__).resolve().parent / "fixtures" / "wands"


def shared(relative: str) -> Path:
    path = SHARED / relative
    if not path.exists():
        pytest.skip(f"shared sample {path} is missing; it is provisioned under /work/shared/datasets")
    return path


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def jsonl(path: Path, *records: object) -> Path:
    return write(path, "".join(json.dumps(r) + "\n" for r in records))


def raised(call, *args, **kwargs) -> DataError:
    with pytest.raises(DataError) as caught:
        list(call(*args, **kwargs))
    return caught.value


@pytest.fixture
def wands_dir(tmp_path: Path) -> Path:
    """The fixture product/label rows with a small query.csv, tab separated like the real files."""
    for name in ("product.csv", "label.csv"):
        shutil.copy(WANDS_FIXTURE / name, tmp_path / name)
    write(
        tmp_path / "query.csv",
        "query_id\tquery\tquery_class\n0\tsalon chair\tMassage Chairs\n"
        '478\tfawkes 36" blue vanity\t\n486\t54 in bench cushion\tFurniture Cushions\n',
    )
    return tmp_path


# --- JSON Lines catalogs ----------------------------------------------------------


def test_jsonl_catalog_reads_product_fields(tmp_path):
    path = jsonl(
        tmp_path / "c.jsonl",
        {
            "id": 7,
            "title": "Oak desk",
            "category": ["Furniture", "Desks"],
            "attributes": {"Color": ["brown", "oak"]},
            "price": "99.5",
            "sales": 3,
        },
    )
    [product] = iter_jsonl_catalog(path)
    assert product == Product(
        id="7",
        title="Oak desk",
        category=("Furniture", "Desks"),
        attributes={"color": ("brown", "oak")},
        price=99.5,
        sales=3,
    )


def test_jsonl_catalog_accepts_beir_id_and_text_aliases(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"_id": "p1", "title": "Desk", "text": "solid oak"})
    [product] = iter_jsonl_catalog(path)
    assert (product.id, product.description) == ("p1", "solid oak")


def test_jsonl_catalog_passes_over_the_metadata_object_of_a_beir_corpus(tmp_path):
    """BEIR's corpora carry one on every line ({} or source details such as a url)."""
    path = jsonl(
        tmp_path / "corpus.jsonl",
        {"_id": "4983", "title": "Desk", "text": "solid oak", "metadata": {}},
        {"_id": "5836", "title": "Lamp", "text": "brass", "metadata": {"url": "https://example.com/5836"}},
    )
    assert [(p.id, p.description, p.attributes) for p in iter_jsonl_catalog(path)] == [
        ("4983", "solid oak", {}),
        ("5836", "brass", {}),
    ]


def test_jsonl_catalog_null_takes_the_field_default(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "price": None, "sales": None, "brand": None})
    [product] = iter_jsonl_catalog(path)
    assert (product.price, product.sales, product.brand) == (None, 0, "")


def test_catalog_values_with_decomposed_accents_are_one_facet_value_with_composed_ones(tmp_path):
    """A macOS or PIM export writes "ü" as "u" and a combining diaeresis (NFD); the same brand twice otherwise."""
    path = jsonl(
        tmp_path / "c.jsonl",
        {
            "id": "nfd",
            "title": "Mu\u0308ller fridge",
            "brand": "Mu\u0308ller",
            "category": "Ku\u0308che",
            "attributes": {"farbe": "Gru\u0308n"},
        },
        {
            "id": "nfc",
            "title": "Müller fridge",
            "brand": "Müller",
            "category": "Küche",
            "attributes": {"farbe": "Grün"},
        },
    )
    loaded = [(p.title, p.brand, p.category, p.attributes) for p in iter_jsonl_catalog(path)]
    assert loaded[0] == loaded[1] == ("Müller fridge", "Müller", ("Küche",), {"farbe": ("Grün",)})


@pytest.mark.parametrize(
    ("name", "text"),
    [
        (
            "c.jsonl",
            '{"id": "p1", "title": "Chair", "description": "<span style=\\"color:red\\">Teak</span> chair &amp; table&nbsp;set"}\n',
        ),
        (
            "c.csv",
            'id,title,description\np1,Chair,"<span style=""color:red"">Teak</span> chair &amp; table&nbsp;set"\n',
        ),
    ],
)
def test_a_description_in_html_is_loaded_as_the_text_it_shows(tmp_path, name, text):
    [product] = iter_catalog(write(tmp_path / name, text))
    assert product.description == "Teak chair & table set"


@pytest.mark.parametrize("description", ["size < 10 cm, > 5 cm", "R&D <3\nline two"])
def test_a_description_without_html_is_loaded_as_written(tmp_path, description):
    [product] = iter_catalog(jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Chair", "description": description}))
    assert product.description == description


def test_jsonl_catalog_key_one_slip_from_a_field_it_lacks_is_refused_naming_the_field(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "descripton": "solid oak"})
    error = raised(iter_jsonl_catalog, path)
    assert "unknown field 'descripton': did you mean 'description'?" in error.reason


def test_jsonl_catalog_keeps_the_fields_the_product_does_not_read_as_given(tmp_path):
    """An export of a shop's index holds what its front end shows: an image, a page's URL, a date, a list."""
    shown = {"image_url": "https://shop.example/p1.jpg", "in_stock": True, "variants": [{"sku": "p1-s"}]}
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "price": 9.5, **shown})
    [product] = iter_jsonl_catalog(path)
    assert product.extra == shown
    assert product.to_record() == {"id": "p1", "title": "Desk", "price": 9.5, **shown}


def test_jsonl_catalog_reads_a_field_in_another_case_or_with_other_separators_as_the_field(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"ID": "p1", "Title": "Desk", "reviewCount": 7, "Review-Count": None})
    error = raised(iter_jsonl_catalog, path)  # two spellings of one field: which one is meant?
    assert "both 'reviewCount' and 'Review-Count' give 'review_count'" in error.reason
    path = jsonl(tmp_path / "d.jsonl", {"ID": "p1", "Title": "Desk", "reviewCount": 7})
    [product] = iter_jsonl_catalog(path)
    assert (product.id, product.review_count, product.extra) == ("p1", 7, {})


def test_jsonl_catalog_keeps_a_look_alike_of_a_field_the_record_also_gives(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "rating": 4.5, "ratings": [5, 4]})
    [product] = iter_jsonl_catalog(path)
    assert (product.rating, product.extra) == (4.5, {"ratings": [5, 4]})


def nested(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


def test_jsonl_catalog_field_nested_past_the_depth_limit_is_refused_naming_it(tmp_path):
    """Kept, the product store could not read the product back: every search finding it answered a 500."""
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "variants": nested(250)})
    assert "variants: nests objects or lists more than 20 deep" in raised(iter_jsonl_catalog, path).reason


def test_a_kept_field_nested_to_the_depth_limit_is_read_back_by_the_product_store(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "variants": nested(EXTRA_DEPTH_LIMIT - 1)})
    store = ProductStore(tmp_path / "products.sqlite")
    store.add(list(iter_jsonl_catalog(path)))
    assert store.get(["p1"])["p1"].extra == {"variants": nested(EXTRA_DEPTH_LIMIT - 1)}


def test_a_catalog_load_counts_the_products_holding_each_kept_field(tmp_path):
    path = jsonl(
        tmp_path / "c.jsonl",
        {"id": "p1", "title": "Desk", "image": "a.jpg", "url": "/p1"},
        {"id": "p2", "title": "Lamp", "image": "b.jpg"},
    )
    stats = LoadStats()
    list(iter_jsonl_catalog(path, stats=stats))
    assert stats.extra_fields == {"image": 2, "url": 1}


def test_jsonl_catalog_id_given_twice_through_alias_is_an_error(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "_id": "p2", "title": "Desk"})
    assert "keep one" in raised(iter_jsonl_catalog, path).reason


def test_jsonl_catalog_missing_title_names_file_and_line_counting_blank_lines(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"id": "p1", "title": "Desk"}\n\n{"id": "p2"}\n')
    error = raised(iter_jsonl_catalog, path)
    assert (error.path, error.line, error.reason) == (str(path), 3, "title: required but missing")


def test_jsonl_catalog_price_not_a_number_names_the_value(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "price": "cheap"})
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "price" in error.reason and "'cheap'" in error.reason


def test_jsonl_catalog_invalid_json_names_line(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"id": "p1", "title": "Desk"}\n{"id": "p2", \n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 2 and error.reason.startswith("invalid JSON")


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity"])
def test_jsonl_catalog_non_finite_number_is_invalid_json_naming_line(tmp_path, value):
    path = write(tmp_path / "c.jsonl", f'{{"id": "p1", "title": "Desk", "price": {value}}}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and value in error.reason


def test_jsonl_catalog_line_nested_too_deep_is_invalid_json_not_a_traceback(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"id": "p1", "title": "Desk", "x": ' + "[" * 100_000 + "]" * 100_000 + "}\n")
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "too deep" in error.reason


def test_jsonl_catalog_json_array_file_explains_the_fix(tmp_path):
    path = write(tmp_path / "c.json", '[{"id": "p1", "title": "Desk"}]\n')
    assert "JSON Lines" in raised(iter_jsonl_catalog, path).reason


def test_jsonl_catalog_of_objects_spread_over_lines_explains_the_fix(tmp_path):
    """What jq and json.dumps(indent=2) write."""
    path = write(tmp_path / "c.json", '{\n  "id": "p1",\n  "title": "Desk"\n}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "jq -c" in error.reason


def test_jsonl_catalog_comma_after_an_object_explains_the_fix(tmp_path):
    """The lines of a JSON array cut out of a file keep the commas between its objects."""
    path = write(tmp_path / "c.jsonl", '{"id": "p1", "title": "Desk"},\n{"id": "p2", "title": "Lamp"}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "comma after the object" in error.reason


def test_jsonl_catalog_reads_an_elasticdump_export_taking_the_id_from_id(tmp_path):
    """elasticdump, and the hits of a _search (jq -c '.hits.hits[]'), write each document as a hit."""
    hit = {"_index": "products", "_id": "p1", "_score": 1.0, "_source": {"title": "Desk", "brand": "Acme"}}
    [product] = iter_jsonl_catalog(write(tmp_path / "dump.json", json.dumps(hit) + "\n"))
    assert (product.id, product.title, product.brand) == ("p1", "Desk", "Acme")


def test_jsonl_catalog_reads_elasticsearch_bulk_ndjson_taking_the_id_from_the_action_line(tmp_path):
    path = write(
        tmp_path / "bulk.ndjson",
        '{"index": {"_index": "products", "_id": "p1"}}\n{"title": "Desk"}\n'
        '{"create": {"_id": "p2"}}\n{"title": "Lamp"}\n{"index": {}}\n{"id": "p3", "title": "Rug"}\n',
    )
    assert [(p.id, p.title) for p in iter_jsonl_catalog(path)] == [("p1", "Desk"), ("p2", "Lamp"), ("p3", "Rug")]


def test_jsonl_catalog_bulk_action_line_with_no_document_after_it_names_its_line(tmp_path):
    path = write(tmp_path / "bulk.ndjson", '{"index": {"_id": "p1"}}\n{"title": "Desk"}\n{"index": {"_id": "p2"}}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 3 and "no document" in error.reason


def test_jsonl_catalog_elasticsearch_search_response_says_how_to_write_its_hits(tmp_path):
    response = {"took": 3, "hits": {"total": {"value": 1}, "hits": [{"_id": "p1", "_source": {"title": "Desk"}}]}}
    path = write(tmp_path / "response.json", json.dumps(response) + "\n")
    assert "jq -c '.hits.hits[]'" in raised(iter_jsonl_catalog, path).reason


def test_skip_bad_counts_skipped_rows_and_keeps_good_ones(tmp_path):
    path = write(
        tmp_path / "c.jsonl",
        '{"id": "p1", "title": "Desk"}\n{"id": "p2"}\n'
        '{"id": "p3", "title": "Lamp", "price": -1}\n{"id": "p4", "title": "Rug"}\n',
    )
    stats = LoadStats()
    products = list(iter_jsonl_catalog(path, skip_bad=True, stats=stats))
    assert [p.id for p in products] == ["p1", "p4"]
    assert (stats.loaded, stats.skipped) == (2, 2)
    assert stats.errors[0].startswith(f"{path}:2: ") and stats.errors[1].startswith(f"{path}:3: ")


def test_skip_bad_keeps_only_the_first_few_messages(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"id": "ok", "title": "Desk"}\n' + '{"id": "x"}\n' * 5)
    stats = LoadStats(max_errors=2)
    list(iter_jsonl_catalog(path, skip_bad=True, stats=stats))
    assert stats.skipped == 5 and len(stats.errors) == 2


def test_skip_bad_logs_a_warning_naming_the_file(tmp_path, caplog):
    path = write(tmp_path / "c.jsonl", '{"id": "ok", "title": "Desk"}\n{"id": "x"}\n')
    with caplog.at_level(logging.WARNING, logger="search_rerank.data.loaders"):
        list(iter_jsonl_catalog(path, skip_bad=True))
    assert "skipped 1 bad row(s) of 2" in caplog.text and str(path) in caplog.text


def test_skip_bad_still_refuses_a_file_where_every_row_is_bad(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"name": "Desk"}, {"name": "Lamp"})
    error = raised(iter_jsonl_catalog, path, skip_bad=True)
    assert error.line is None and "all 2 rows are bad" in error.reason


# --- CSV catalogs -----------------------------------------------------------------


@pytest.mark.parametrize("path_text", ["Furniture > Office > Desks", "Furniture/Office/Desks"])
def test_csv_catalog_splits_category_path(tmp_path, path_text):
    path = write(tmp_path / "c.csv", f"id,title,category\np1,Desk,{path_text}\n")
    [product] = iter_csv_catalog(path)
    assert product.category == ("Furniture", "Office", "Desks")


@pytest.mark.parametrize(
    ("path_text", "levels"),
    [
        ("Outdoor / Indoor/Outdoor Rugs", ("Outdoor", "Indoor/Outdoor Rugs")),
        ("Decor > Indoor/Outdoor Rugs", ("Decor", "Indoor/Outdoor Rugs")),
        ("Decor | Rugs/Mats", ("Decor", "Rugs/Mats")),
    ],
)
def test_csv_catalog_keeps_a_slash_inside_a_level_of_a_path_with_spaced_separators(tmp_path, path_text, levels):
    path = write(tmp_path / "c.csv", f"id,title,category\np1,Rug,{path_text}\n")
    [product] = iter_csv_catalog(path)
    assert product.category == levels


def test_csv_catalog_repeated_attribute_key_adds_a_value(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,attributes\np1,Rug,Color:red|size : L|color:blue\n")
    [product] = iter_csv_catalog(path)
    assert product.attributes == {"color": ("red", "blue"), "size": ("L",)}


def test_csv_catalog_repeated_attribute_value_is_kept_once(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,attributes\np1,Rug,color:red|color:red\n")
    [product] = iter_csv_catalog(path)
    assert product.attributes == {"color": ("red",)}


def test_csv_catalog_reads_attributes_as_json_object(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title,attributes\np1,Rug,"{""color"": [""red"", ""blue""]}"\n')
    [product] = iter_csv_catalog(path)
    assert product.attributes == {"color": ("red", "blue")}


def test_csv_catalog_attributes_json_with_nan_names_the_line_not_indexed_as_nan(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title,attributes\np1,Rug,"{""weight"": NaN}"\n')
    error = raised(iter_csv_catalog, path)
    assert error.line == 2 and "NaN is not a JSON number" in error.reason


def test_csv_catalog_attribute_without_colon_explains_the_format(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,attributes\np1,Rug,red\n")
    error = raised(iter_csv_catalog, path)
    assert error.line == 2 and "key:value" in error.reason


def test_csv_catalog_sniffs_tab_delimiter(tmp_path):
    path = write(tmp_path / "c.csv", "id\ttitle\tbrand\np1\tDesk, oak\tAcme\n")
    [product] = iter_csv_catalog(path)
    assert (product.title, product.brand) == ("Desk, oak", "Acme")


def test_csv_catalog_blank_cells_take_defaults(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,price,sales,category,attributes\np1,Desk,,,,\n")
    [product] = iter_csv_catalog(path)
    assert (product.price, product.sales, product.category, product.attributes) == (None, 0, (), {})


def test_csv_catalog_bad_price_names_line_and_value(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,price\np1,Desk,10\np2,Lamp,ten\n")
    error = raised(iter_csv_catalog, path)
    assert error.line == 3 and "'ten'" in error.reason


def test_csv_catalog_extra_cell_names_line(tmp_path):
    path = write(tmp_path / "c.csv", "id,title\np1,Desk\np2,Desk, oak\n")
    error = raised(iter_csv_catalog, path)
    assert error.line == 3 and "3 cells but the header has 2" in error.reason


def test_csv_catalog_reads_past_the_empty_columns_a_spreadsheet_leaves_at_the_end(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,,\r\np1,Desk,,\r\np2,Lamp\r\n")
    assert [p.title for p in iter_csv_catalog(path)] == ["Desk", "Lamp"]


def test_csv_catalog_header_names_are_read_without_the_spaces_around_them(tmp_path):
    path = write(tmp_path / "c.csv", "id, title , brand\np1,Desk,Acme\n")
    [product] = iter_csv_catalog(path)
    assert (product.title, product.brand) == ("Desk", "Acme")


def test_csv_catalog_header_in_capitals_names_the_fields(tmp_path):
    path = write(tmp_path / "c.csv", "ID,Title,Brand,Price,Attributes\np1,Desk,Acme,10,color:red|size:L\n")
    [product] = iter_csv_catalog(path)
    assert (product.id, product.title, product.brand, product.price) == ("p1", "Desk", "Acme", 10.0)
    assert product.attributes == {"color": ("red",), "size": ("L",)}


def test_csv_catalog_misspelt_column_is_refused_and_another_kept_as_text(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,brnad,colour\np1,Desk,Acme,red\n")
    assert "unknown field 'brnad': did you mean 'brand'?" in raised(iter_csv_catalog, path).reason
    path = write(tmp_path / "d.csv", "id,title,brand,colour\np1,Desk,Acme,red\n")
    [product] = iter_csv_catalog(path)
    assert (product.brand, product.attributes, product.extra) == ("Acme", {}, {"colour": "red"})


def test_csv_catalog_misspelt_attributes_column_is_refused_naming_the_field(tmp_path):
    # Kept as text, the product's attributes were silently empty.
    path = write(tmp_path / "c.csv", "id,title,atributes\np1,Desk,color:red\n")
    assert "unknown field 'atributes': did you mean 'attributes'?" in raised(iter_csv_catalog, path).reason


def test_csv_catalog_attributes_column_with_other_separators_is_parsed(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,Attributes_\np1,Desk,color:red\n")
    [product] = iter_csv_catalog(path)
    assert (product.attributes, product.extra) == ({"color": ("red",)}, {})


def test_csv_catalog_field_given_twice_in_two_cases_names_both_columns(tmp_path):
    path = write(tmp_path / "c.csv", "id,Title,title\np1,Desk,Desk\n")
    assert "both 'Title' and 'title' give 'title'" in raised(iter_csv_catalog, path).reason


def test_csv_catalog_column_without_a_name_names_the_header_line_and_column(tmp_path):
    """pandas' to_csv writes its row index as a first column with an empty name."""
    path = write(tmp_path / "c.csv", ",id,title\n0,p1,Desk\n")
    error = raised(iter_csv_catalog, path)
    assert error.line == 1 and "column 1 has no name" in error.reason


def test_csv_catalog_column_named_twice_names_the_header_line_and_name(tmp_path):
    path = write(tmp_path / "c.csv", "id,title,description,description\np1,Desk,Oak top,Steel legs\n")
    error = raised(iter_csv_catalog, path)
    assert error.line == 1 and "'description' names columns 3 and 4" in error.reason


def test_csv_catalog_line_number_is_where_a_multiline_row_ends(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title,description\np1,Desk,"two\nlines"\np2,,x\n')
    assert raised(iter_csv_catalog, path).line == 4


@pytest.mark.parametrize("blank", ["   ", ",,,", " , \t,,"])
def test_csv_catalog_passes_over_a_row_of_blank_cells_as_a_blank_line(tmp_path, blank):
    """What a spreadsheet exports for its empty rows; a JSON Lines file's whitespace-only line is passed over too."""
    path = write(tmp_path / "c.csv", f"id,title,brand,price\np1,Desk,,\n{blank}\np2,Lamp,,\n")
    assert [p.id for p in iter_csv_catalog(path)] == ["p1", "p2"]


def test_csv_catalog_reads_a_semicolon_separated_export(tmp_path):
    """Excel in most of Europe writes CSV with semicolons, since the comma is the decimal mark there."""
    path = write(tmp_path / "c.csv", "id;title;brand\np1;Desk, oak;Acme\n")
    [product] = iter_csv_catalog(path)
    assert (product.title, product.brand) == ("Desk, oak", "Acme")


def test_csv_catalog_quote_never_closed_names_the_line_it_opens_on(tmp_path):
    """Read leniently, the cell would run to the end of the file and swallow every later product."""
    path = write(tmp_path / "c.csv", 'id,title,description\np1,Desk,"oak\np2,Lamp,brass\np3,Rug,wool\n')
    error = raised(iter_csv_catalog, path)
    assert error.line == 2 and "never closes" in error.reason


def test_csv_catalog_text_after_a_closing_quote_names_the_line(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title\np1,Desk\np2,"24" monitor"\np3,Rug\n')
    error = raised(iter_csv_catalog, path)
    assert error.line == 3 and "unreadable CSV" in error.reason


def test_csv_catalog_row_unreadable_as_csv_is_skipped_with_skip_bad_naming_its_line(tmp_path):
    path = write(tmp_path / "c.csv", 'id,title\np1,Desk\np2,"24" monitor"\np3,Rug\n')
    stats = LoadStats()
    assert [p.id for p in iter_csv_catalog(path, skip_bad=True, stats=stats)] == ["p1", "p3"]
    assert stats.errors == [f"{path}:3: unreadable CSV: ',' expected after '\"'"]


@pytest.mark.parametrize("cell", ["word " * 30_000, "a line\n" * 20_000])
def test_csv_catalog_cell_past_the_text_limit_is_a_bad_row_as_in_json_lines(tmp_path, cell):
    """csv's own limit (131,072 characters) refused the whole file, and a long cell with line breaks was named a
    quote that never closes; now the product's limit refuses the row, naming the field."""
    path = write(tmp_path / "c.csv", f'id,title,description\np1,Desk,oak\np2,Lamp,"{cell}"\np3,Rug,wool\n')
    stats = LoadStats()
    assert [p.id for p in iter_csv_catalog(path, skip_bad=True, stats=stats)] == ["p1", "p3"]
    assert stats.errors[0].startswith(f"{path}:{3 + cell.count(chr(10))}: description: String should have at most")


def test_csv_catalog_cell_under_the_text_limit_but_past_csvs_own_is_read(tmp_path):
    path = write(tmp_path / "c.csv", f"id,title,description,material\np1,Desk,oak,{'teak ' * 30_000}\n")
    [product] = iter_csv_catalog(path)
    assert len(product.extra["material"]) == 150_000


@pytest.mark.parametrize(
    ("text", "read"),
    [
        (
            'id\ttitle\tdescription\na1\t12" pizza pan\t"Deluxe" pan, oven safe\n',
            ('12" pizza pan', '"Deluxe" pan, oven safe'),
        ),
        ('"id"\t"title"\t"description"\n"a1"\t"Pan, ""Deluxe"""\t"one\n\ttwo"\n', ('Pan, "Deluxe"', "one\n\ttwo")),
    ],
)
def test_tab_separated_catalog_is_read_with_csv_quoting_only_where_its_header_is_quoted(tmp_path, text, read):
    """WANDS and Merchant Center write tab-separated files without CSV quoting: a cell may begin with a quote."""
    [product] = iter_csv_catalog(write(tmp_path / "c.tsv", text))
    assert (product.title, product.description) == read


def test_csv_catalog_reads_crlf_lines_and_a_quoted_cell_spanning_them(tmp_path):
    path = tmp_path / "c.csv"
    path.write_bytes(b'\xef\xbb\xbfid,title,description\r\np1,Desk,"two\r\nlines"\r\np2,Lamp,\r\n')
    assert [(p.id, p.description) for p in iter_csv_catalog(path)] == [("p1", "two\r\nlines"), ("p2", "")]


@pytest.mark.parametrize(
    "name, encoding, line",
    [
        ("c.jsonl", "latin-1", '{"id": "p2", "title": "Caf\u00e9 table"}'),
        ("c.csv", "cp1252", "p2,\u201cOak\u201d desk"),
    ],
)
def test_catalog_not_in_utf8_names_file_line_and_how_to_convert(tmp_path, name, encoding, line):
    """Spreadsheet exports are often Windows-1252: a codec error naming neither file nor line does not help."""
    first = '{"id": "p1", "title": "Desk"}' if name.endswith("jsonl") else "id,title\np1,Desk"
    path = tmp_path / name
    path.write_bytes(f"{first}\n{line}\n".encode(encoding))
    error = raised(iter_catalog, path)
    assert (error.path, error.line) == (str(path), 3 if name.endswith("csv") else 2)
    assert "not UTF-8" in error.reason and "iconv" in error.reason


def test_catalog_in_utf16_says_so(tmp_path):
    path = tmp_path / "c.jsonl"
    path.write_bytes('{"id": "p1", "title": "Desk"}\n'.encode("utf-16"))
    error = raised(iter_catalog, path)
    assert error.line == 1 and "UTF-16" in error.reason


@pytest.mark.parametrize(
    "name, text", [("c.jsonl.gz", '{"id": "p1", "title": "Desk"}\n'), ("c.csv.gz", "id,title\np1,Desk\n")]
)
def test_iter_catalog_reads_a_gzip_compressed_export(tmp_path, name, text):
    path = tmp_path / name
    path.write_bytes(gzip.compress(text.encode("utf-8")))
    assert [p.id for p in iter_catalog(path)] == ["p1"]


def test_a_truncated_gzip_catalog_names_the_file(tmp_path):
    path = tmp_path / "c.jsonl.gz"
    path.write_bytes(gzip.compress(b'{"id": "p1", "title": "Desk"}\n' * 1000)[:-40])
    error = raised(iter_catalog, path)
    assert error.path == str(path) and "gzip" in error.reason


@pytest.mark.parametrize("price", ['"Infinity"', "1e400"])
def test_jsonl_catalog_price_that_is_not_finite_names_the_value(tmp_path, price):
    path = write(tmp_path / "c.jsonl", f'{{"id": "p1", "title": "Desk", "price": {price}}}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "price" in error.reason and "finite" in error.reason


def test_jsonl_catalog_category_list_leaves_out_blank_levels(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Rug", "category": ["Home", "", " ", "Rugs"]})
    assert next(iter_jsonl_catalog(path)).category == ("Home", "Rugs")


def test_jsonl_catalog_attribute_value_of_lists_or_objects_is_refused_naming_the_attribute(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Rug", "attributes": {"size": {"width": 80}}})
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "attributes" in error.reason and "'size'" in error.reason


def test_jsonl_catalog_attribute_value_null_in_a_list_is_left_out(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Rug", "attributes": {"color": [None, "red"]}})
    assert next(iter_jsonl_catalog(path)).attributes == {"color": ("red",)}


def test_jsonl_catalog_attribute_keys_differing_in_case_keep_both_values(tmp_path):
    """Keys are lower-cased, as a CSV's repeated key adds a value: the second no longer replaces the first."""
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Rug", "attributes": {"Color": "red", "color": ["blue"]}})
    assert next(iter_jsonl_catalog(path)).attributes == {"color": ("red", "blue")}


def test_jsonl_catalog_boolean_attribute_is_read_as_json_writes_it(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Rug", "attributes": {"washable": True, "new": False}})
    assert next(iter_jsonl_catalog(path)).attributes == {"washable": ("true",), "new": ("false",)}


@pytest.mark.parametrize("name", ["id", "price", "rating", "sales", "review_count"])
def test_jsonl_catalog_boolean_for_an_id_or_number_is_refused_not_read_as_1(tmp_path, name):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", name: True})
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and name in error.reason and "True" in error.reason


def test_jsonl_catalog_count_past_any_integer_names_the_value_not_a_traceback(tmp_path):
    path = write(tmp_path / "c.jsonl", '{"id": "p1", "title": "Desk", "sales": 1e400}\n')
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "sales" in error.reason and "finite" in error.reason


def test_jsonl_catalog_count_with_a_fraction_is_refused_not_cut_down(tmp_path):
    path = jsonl(tmp_path / "c.jsonl", {"id": "p1", "title": "Desk", "review_count": 3.7})
    error = raised(iter_jsonl_catalog, path)
    assert error.line == 1 and "review_count" in error.reason and "fractional" in error.reason


# --- BEIR -----------------------------------------------------------------------------


def make_dataset() -> Dataset:
    return Dataset(
        name="tiny",
        products=[
            Product(
                id="p1",
                title="Oak desk",
                description="solid oak",
                brand="Acme",
                category=("Office", "Desks"),
                attributes={"color": ("brown", "oak")},
                price=99.5,
                sales=4,
                review_count=2,
                rating=4.5,
            ),
            Product(id="p2", title="Lamp"),
        ],
        queries={"q1": Query("q1", "oak desk", {"kind": "head", "frequency": "12"}), "q2": Query("q2", "lamp")},
        qrels={"train": {"q1": {"p1": 2, "p2": 0}}, "test": {"q2": {"p2": 1}}},
    )


def test_beir_write_then_load_round_trips_the_dataset(tmp_path):
    dataset = make_dataset()
    write_beir(dataset, tmp_path / "tiny")
    assert load_beir(tmp_path / "tiny") == dataset


def test_write_beir_uses_beir_corpus_keys(tmp_path):
    write_beir(make_dataset(), tmp_path)
    record = json.loads((tmp_path / "corpus.jsonl").read_text().splitlines()[0])
    assert (record["_id"], record["title"], record["text"]) == ("p1", "Oak desk", "solid oak")


def test_load_beir_reads_every_qrels_tsv_as_a_split(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", {"_id": "p1", "title": "Desk", "text": ""})
    jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "desk"})
    for split in ("dev", "heldout"):
        write(tmp_path / "qrels" / f"{split}.tsv", "query-id\tcorpus-id\tscore\nq1\tp1\t1\n")
    assert sorted(load_beir(tmp_path).qrels) == ["dev", "heldout"]


def test_load_beir_puts_extra_query_keys_into_meta_as_strings(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", {"_id": "p1", "title": "Desk"})
    jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "desk", "heldout": True, "frequency": 3, "metadata": {}})
    assert dict(load_beir(tmp_path).queries["q1"].meta) == {"heldout": "true", "frequency": "3"}


def test_load_beir_query_without_text_names_line(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", {"_id": "p1", "title": "Desk"})
    jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "desk"}, {"_id": "q2"})
    error = raised(load_beir, tmp_path)
    assert (Path(error.path).name, error.line, error.reason) == ("queries.jsonl", 2, "text: required but missing")


def test_load_beir_query_id_given_twice_with_two_texts_names_the_second_line(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", {"_id": "p1", "title": "Desk"})
    jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "desk"}, {"_id": "q1", "text": "lamp"})
    error = raised(load_beir, tmp_path)
    assert (Path(error.path).name, error.line) == ("queries.jsonl", 2) and "'desk'" in error.reason


def test_wands_query_id_given_twice_with_two_texts_names_the_second_line(wands_dir):
    write(wands_dir / "query.csv", "query_id\tquery\tquery_class\n0\tsalon chair\t\n0\tbar stool\t\n")
    error = raised(load_wands, wands_dir)
    assert (Path(error.path).name, error.line) == ("query.csv", 3) and "'salon chair'" in error.reason


def test_load_beir_skip_bad_does_not_skip_bad_queries(tmp_path):
    jsonl(tmp_path / "corpus.jsonl", {"_id": "p1", "title": "Desk"})
    jsonl(tmp_path / "queries.jsonl", {"_id": "q1", "text": "desk"}, {"_id": "q2"})
    with pytest.raises(DataError):
        load_beir(tmp_path, skip_bad=True)


# --- WANDS ----------------------------------------------------------------------------


def test_wands_shared_query_file_loads_480_queries_with_query_class(tmp_path):
    shutil.copy(shared("wands/query.csv"), tmp_path / "query.csv")
    for name in ("product.csv", "label.csv"):
        shutil.copy(WANDS_FIXTURE / name, tmp_path / name)
    dataset = load_wands(tmp_path)
    assert len(dataset.queries) == 480
    assert dataset.queries["2"] == Query("2", "dinosaur", {"query_class": "Kids Wall Décor"})
    assert sum("query_class" in q.meta for q in dataset.queries.values()) == 474


def test_wands_product_maps_columns_to_product_fields(wands_dir):
    product = next(p for p in load_wands(wands_dir).products if p.id == "1")
    assert product == Product(
        id="1",
        title="all-clad 7 qt . slow cooker",
        description="create delicious slow-cooked meals , from tender meat to flavorful vegetables",
        category=("Kitchen & Tabletop", "Small Kitchen Appliances", "Slow Cookers"),
        attributes={"capacityquarts": ("7",), "producttype": ("slow cooker",), "productfinish": ("stainless steel",)},
        review_count=100,
        rating=2.0,
    )


def test_wands_product_class_becomes_leaf_when_hierarchy_lacks_it(wands_dir):
    product = next(p for p in load_wands(wands_dir).products if p.id == "3")
    assert product.category == ("Browse By Brand", "All-Clad", "Slicers, Peelers And Graters")


def test_wands_any_of_several_product_classes_counts_as_the_leaf(wands_dir):
    product = next(p for p in load_wands(wands_dir).products if p.id == "42992")
    assert product.category[-2:] == ("Chairs & Seating", "Accent Chairs")


def test_wands_feature_with_empty_key_is_dropped_not_fatal(wands_dir):
    product = next(p for p in load_wands(wands_dir).products if p.id == "42990")
    assert product.attributes == {"basematerialdetails": ("steel",), "ofhardwoodused": ("0",)}
    assert product.description == ""


def test_wands_labels_become_grades_every_query_in_test_when_asked(wands_dir):
    dataset = load_wands(wands_dir, train_fraction=0.0, dev_fraction=0.0)
    assert list(dataset.qrels) == ["test"]
    assert dataset.qrels["test"]["0"] == {"25434": 2, "12088": 0, "42931": 2, "2636": 2, "42923": 2}
    assert dataset.qrels["test"]["486"] == {"30764": 1}


def test_wands_queries_are_split_into_train_dev_and_test_by_id_the_same_way_every_time(tmp_path):
    # WANDS ships no splits; onboarding and training need train and dev, and evaluate must read the same test.
    queries = "".join(f"{i}\tquery {i}\t\n" for i in range(200))
    labels = "".join(f"{i}\t{i}\tp{i}\tExact\n" for i in range(200))
    write(tmp_path / "query.csv", "query_id\tquery\tquery_class\n" + queries)
    write(tmp_path / "label.csv", "id\tquery_id\tproduct_id\tlabel\n" + labels)
    shutil.copy(WANDS_FIXTURE / "product.csv", tmp_path / "product.csv")
    first, second = load_dataset(tmp_path), load_dataset(tmp_path)
    train, dev, test = (set(first.qrels[split]) for split in ("train", "dev", "test"))
    assert first.qrels == second.qrels
    assert not (train & dev or train & test or dev & test) and len(train | dev | test) == 200
    assert 90 <= len(train) <= 150 and 20 <= len(dev) <= 60
    # Pinned so that a change to the hash (e.g. Python's per-process hash()) shows up as a failure.
    assert sorted(dev, key=int)[:5] == ["16", "24", "25", "33", "35"]


@pytest.mark.parametrize("fraction", [-0.1, 1.0])
def test_wands_dev_fraction_outside_zero_to_one_is_refused(wands_dir, fraction):
    with pytest.raises(ConfigError, match="dev_fraction"):
        load_wands(wands_dir, dev_fraction=fraction)


def test_wands_unknown_label_names_line_and_valid_labels(wands_dir):
    with open(wands_dir / "label.csv", "a", encoding="utf-8") as labels:
        labels.write("9\t0\t1\tExactly\n")
    error = raised(load_wands, wands_dir)
    assert error.line == 12 and "'Exactly'" in error.reason and "Partial" in error.reason


def test_wands_skip_bad_skips_products_with_empty_name(wands_dir):
    with open(wands_dir / "product.csv", "a", encoding="utf-8") as products:
        products.write("50000\t\tBeds\tFurniture\t\t\t\t\t\n")
    stats = LoadStats()
    dataset = load_wands(wands_dir, skip_bad=True, stats=stats)
    assert (len(dataset.products), stats.loaded, stats.skipped) == (10, 10, 1)


# --- ESCI -----------------------------------------------------------------------------


def vespa_sample() -> Dataset:
    return load_esci(shared("esci_vespa_sample/sample-products.jsonl"), shared("esci_vespa_sample/test-sample.parquet"))


def test_esci_vespa_sample_loads_16_products_and_16_judgments_for_one_query():
    dataset = vespa_sample()
    assert len(dataset.products) == 16
    assert dataset.queries == {"535": Query("535", "06 bmw 325i radio oem not navigation system")}
    assert list(dataset.qrels) == ["test"] and len(dataset.qrels["test"]["535"]) == 16


def test_esci_default_gains_are_3_2_1_0():
    grades = vespa_sample().qrels["test"]["535"]
    assert (grades["B08PB9TTKT"], grades["B08VSJGP1N"], grades["B08SHMLP5S"]) == (3, 2, 0)


def test_esci_vespa_descriptions_lose_html_and_gain_bullets():
    product = next(p for p in vespa_sample().products if p.id == "B08VSJGP1N")
    assert "<" not in product.description and product.description.startswith("Features ●Built-in carplay")
    assert "【2 Din Carpaly Touchscreen Radio】" in product.description


def test_esci_vespa_color_becomes_attribute_and_missing_color_none():
    products = {p.id: p for p in vespa_sample().products}
    assert products["B08VSJGP1N"].attributes == {"color": ("black",)}
    assert products["B08SHMLP5S"].attributes == {}


def test_esci_vespa_bullets_given_as_a_list_each_join_the_description(tmp_path):
    feed = {
        "put": "id:shop:product::B1",
        "fields": {"id": "B1", "title": "Desk", "bullets": ["Oak top", "<b>Steel</b> legs"]},
    }
    [product] = iter_catalog(write(tmp_path / "feed.jsonl", json.dumps(feed) + "\n"))
    assert product.description == "Oak top Steel legs"


def test_esci_description_that_is_not_text_names_file_line_and_field(tmp_path):
    feed = {"put": "id:shop:product::B1", "fields": {"id": "B1", "title": "Desk", "description": {"en": "Oak"}}}
    path = write(tmp_path / "feed.jsonl", '{"put": "id:shop:product::B0", "fields": {"id": "B0", "title": "Lamp"}}\n')
    path.write_text(path.read_text() + json.dumps(feed) + "\n")
    with pytest.raises(DataError, match=r"feed\.jsonl:2: description: expected text"):
        list(iter_catalog(path))


def test_esci_product_table_as_csv_is_read_as_the_same_table_in_json_lines(tmp_path):
    rows = [
        {"product_id": "A1", "product_title": "Oak desk", "product_brand": "Acme", "product_locale": "us"},
        {"product_id": "B2", "product_title": "Floor lamp", "product_color": "red", "product_locale": "us"},
    ]
    header = "product_id,product_title,product_brand,product_color,product_locale\n"
    lines = "".join(",".join(row.get(k, "") for k in header.strip().split(",")) + "\n" for row in rows)
    as_csv = list(iter_catalog(write(tmp_path / "products.csv", header + lines)))
    as_jsonl = list(iter_catalog(write(tmp_path / "products.jsonl", "".join(json.dumps(r) + "\n" for r in rows))))
    assert [(p.id, p.title) for p in as_csv] == [("A1", "Oak desk"), ("B2", "Floor lamp")]
    assert as_csv == as_jsonl


def esci_official(tmp_path: Path) -> tuple[Path, Path]:
    products = pa.table(
        {
            "product_id": ["A1", "A1", "B2"],
            "product_title": ["Desk", "Escritorio", "Lamp"],
            "product_description": ["<p>Oak &amp; steel</p>", None, None],
            "product_bullet_point": ["Sturdy\nCheap", None, None],
            "product_brand": ["Acme", "Acme", None],
            "product_color": [None, None, "red"],
            "product_locale": ["us", "es", "us"],
        }
    )
    pq.write_table(products, tmp_path / "products.parquet")
    examples = write(
        tmp_path / "examples.csv",
        "query,product_id,esci_label,split,product_locale,small_version\n"
        "oak desk,A1,E,train,us,1\noak desk,B2,C,train,us,0\nescritorio,A1,E,test,es,1\nlamp,B2,S,test,us,1\n",
    )
    return tmp_path / "products.parquet", examples


def test_esci_official_parquet_products_of_other_locales_are_left_out(tmp_path):
    products = load_esci(*esci_official(tmp_path)).products
    assert [(p.id, p.title) for p in products] == [("A1", "Desk"), ("B2", "Lamp")]
    assert products[0].description == "Oak & steel\nSturdy\nCheap"  # bullets without HTML kept as written


def test_esci_examples_without_query_id_get_an_id_fixed_by_the_text(tmp_path):
    first, second = load_esci(*esci_official(tmp_path)), load_esci(*esci_official(tmp_path))
    assert first.queries == second.queries
    assert sorted(q.text for q in first.queries.values()) == ["lamp", "oak desk"]


def test_esci_splits_come_from_the_split_column_with_custom_gains(tmp_path):
    dataset = load_esci(*esci_official(tmp_path), gains={"E": 1, "S": 0, "C": 0, "I": 0})
    train, test = dataset.split("train")[1], dataset.split("test")[1]
    assert list(train.values()) == [{"A1": 1, "B2": 0}] and list(test.values()) == [{"B2": 0}]


def test_esci_small_version_keeps_only_task1_rows(tmp_path):
    dataset = load_esci(*esci_official(tmp_path), small_version=True)
    assert [len(judged) for qrels in dataset.qrels.values() for judged in qrels.values()] == [1, 1]


def test_esci_label_without_gain_names_line(tmp_path):
    products, examples = esci_official(tmp_path)
    with open(examples, "a", encoding="utf-8") as out:
        out.write("lamp,A1,X,test,us,1\n")
    error = raised(load_esci, products, examples)
    assert error.line == 6 and "'X'" in error.reason


# --- Home Depot (Kaggle) ---------------------------------------------------------------


@pytest.fixture
def homedepot_dir(tmp_path: Path) -> Path:
    return write_homedepot(tmp_path / "homedepot")


def judged(dataset: Dataset) -> dict[str, dict[str, int]]:
    """Every split's judgments, keyed by query text."""
    return {dataset.queries[qid].text: grades for qrels in dataset.qrels.values() for qid, grades in qrels.items()}


def test_load_dataset_detects_homedepot_layout_from_train_csv_columns(homedepot_dir):
    dataset = load_dataset(homedepot_dir)
    assert sorted(dataset.qrels) == ["dev", "test", "train"]
    assert [p.id for p in dataset.products] == [f"10000{i}" for i in range(1, 8)]


def test_load_dataset_reads_homedepot_when_named(homedepot_dir):
    assert load_dataset(homedepot_dir, fmt="homedepot") == load_dataset(homedepot_dir)


def test_homedepot_latin1_titles_keep_their_degree_and_half_signs(homedepot_dir):
    titles = {p.id: p.title for p in load_dataset(homedepot_dir).products}
    assert titles["100001"] == "Simpson Strong-Tie 12-Gauge 90\u00b0 Angle"
    assert titles["100004"].startswith("Everbilt \u00bd in.")


def test_homedepot_windows_bytes_read_as_the_characters_windows_wrote(tmp_path):
    """A file labelled ISO-8859-1 is nearly always a Windows export: 0x99 is its trademark sign, not a control."""
    write_homedepot(tmp_path, test=False, extras=False)
    row = ("2", "100001", "GE Profile\u2122 30 in. Range \u2013 Stainless", "ge range", "3")
    (tmp_path / "train.csv").write_bytes(csv_bytes(TRAIN_HEADER, [row], encoding="cp1252"))
    titles = {p.id: p.title for p in load_dataset(tmp_path).products}
    assert titles["100001"] == "GE Profile\u2122 30 in. Range \u2013 Stainless"


def test_a_byte_windows_leaves_undefined_still_reads_as_its_latin1_character(tmp_path):
    write_homedepot(tmp_path, test=False, extras=False)
    head = csv_bytes(TRAIN_HEADER, [], encoding="latin-1")
    (tmp_path / "train.csv").write_bytes(head + b"2,100001,Odd \x81 \xb0 title,odd,3\n")
    titles = {p.id: p.title for p in load_dataset(tmp_path).products}
    assert titles["100001"] == "Odd \x81 \u00b0 title"


def test_homedepot_files_saved_again_as_utf8_read_the_same(tmp_path):
    write_homedepot(tmp_path, test=False, extras=False)
    (tmp_path / "train.csv").write_bytes(csv_bytes(TRAIN_HEADER, TRAIN, encoding="utf-8"))
    titles = {p.id: p.title for p in load_dataset(tmp_path).products}
    assert titles["100001"] == "Simpson Strong-Tie 12-Gauge 90\u00b0 Angle"


@pytest.mark.parametrize(
    "relevance, grade",
    [
        ("1", 0),
        ("1.25", 0),
        ("1.33", 0),
        ("1.5", 1),
        ("1.67", 1),
        ("2", 2),
        ("2.33", 2),
        ("2.5", 3),
        ("2.67", 3),
        ("3", 3),
    ],
)
def test_homedepot_mean_relevance_becomes_a_grade_from_0_to_3(tmp_path, relevance, grade):
    write_homedepot(tmp_path, [("1", "100001", "Hex nut", "hex nut", relevance)], test=False, extras=False)
    assert judged(load_dataset(tmp_path)) == {"hex nut": {"100001": grade}}


def test_homedepot_brand_colour_and_material_come_from_attributes(homedepot_dir):
    products = {p.id: p for p in load_dataset(homedepot_dir).products}
    assert products["100001"].brand == "Simpson Strong-Tie"
    assert products["100001"].attributes == {"material": ("Galvanized Steel",)}
    assert (products["100004"].brand, products["100004"].attributes) == ("Everbilt", {"color": ("Zinc",)})
    assert "999999" not in products


@pytest.mark.parametrize("name", ["attributes.csv", "product_descriptions.csv"])
def test_homedepot_file_whose_product_uids_name_no_product_is_warned_of_naming_it(homedepot_dir, name, caplog):
    """A file written with ids of another form (a spreadsheet's 100001.0) would join nothing, silently: no product
    would have a brand, a description or attributes."""
    path = homedepot_dir / name
    header, *rows = path.read_bytes().decode("latin-1").splitlines()
    path.write_bytes(
        "\n".join([header, *(f"{r.split(',')[0]}.0,{r.split(',', 1)[1]}" for r in rows if r[0] != ",")]).encode(
            "latin-1"
        )
    )
    with caplog.at_level(logging.WARNING, logger="search_rerank.data.loaders"):
        load_dataset(homedepot_dir)
    assert str(path) in caplog.text and "'100001.0'" in caplog.text and "no product" in caplog.text


def test_homedepot_files_that_join_their_products_are_not_warned_of(homedepot_dir, caplog):
    with caplog.at_level(logging.WARNING, logger="search_rerank.data.loaders"):
        load_dataset(homedepot_dir)
    assert caplog.text == ""


def test_homedepot_descriptions_join_their_products(homedepot_dir):
    products = {p.id: p for p in load_dataset(homedepot_dir).products}
    assert products["100001"].description == "Angles make joints stronger. 90\u00b0 bend."
    assert products["100002"].description == ""


def test_homedepot_search_term_in_train_and_test_is_one_query(homedepot_dir):
    dataset = load_dataset(homedepot_dir)
    texts = [q.text for q in dataset.queries.values()]
    assert texts.count("angle bracket") == 1 and "Angle  Bracket" not in texts
    assert judged(dataset)["angle bracket"] == {"100001": 3, "100006": 2}


def test_homedepot_solution_rows_ignored_by_kaggle_are_not_judged(homedepot_dir):
    grades = judged(load_dataset(homedepot_dir))
    assert grades["snow shovel"] == {"100007": 3} and "fan light kit" not in grades


def test_homedepot_bad_relevance_names_file_and_line_even_with_skip_bad(tmp_path):
    write_homedepot(tmp_path, [*TRAIN[:3], ("21", "100005", "Ceiling fan", "fan", "3.5")], extras=False)
    error = raised(load_dataset, tmp_path, skip_bad=True)
    assert (error.path, error.line) == (str(tmp_path / "train.csv"), 5) and "'3.5'" in error.reason


def test_homedepot_bad_solution_relevance_names_the_solution_file_and_line(homedepot_dir):
    with open(homedepot_dir / "solution.csv", "a", encoding="latin-1") as solution:
        solution.write("6,high,Public\n")
    error = raised(load_dataset, homedepot_dir)
    assert (error.path, error.line) == (str(homedepot_dir / "solution.csv"), 5) and "'high'" in error.reason


def test_homedepot_skip_bad_skips_a_product_without_title_and_keeps_its_judgment(tmp_path):
    write_homedepot(tmp_path, [*TRAIN, ("21", "100009", "", "fan", "3")], test=False, extras=False)
    stats = LoadStats()
    dataset = load_dataset(tmp_path, skip_bad=True, stats=stats)
    assert stats.skipped == 1 and "100009" not in {p.id for p in dataset.products}
    assert judged(dataset)["fan"] == {"100009": 3}


def test_homedepot_queries_split_by_a_hash_of_their_text_the_same_way_every_time(tmp_path):
    write_homedepot(tmp_path, [(str(i), str(i), f"product {i}", f"term {i}", "3") for i in range(300)], test=False)
    first, second = load_dataset(tmp_path), load_dataset(tmp_path)
    sizes = {split: len(qrels) for split, qrels in first.qrels.items()}
    assert first.qrels == second.qrels and sum(sizes.values()) == 300
    assert 150 <= sizes["train"] <= 210 and 35 <= sizes["dev"] <= 85 and 35 <= sizes["test"] <= 85
    # Pinned so that a change to the hash (e.g. Python's per-process hash()) shows up as a failure.
    assert sorted((first.queries[qid].text for qid in first.qrels["dev"]), key=lambda t: int(t[5:]))[:4] == [
        "term 10",
        "term 15",
        "term 20",
        "term 21",
    ]


@pytest.mark.parametrize("train, dev", [(-0.1, 0.2), (0.8, 0.2), (0.5, 1.5)])
def test_homedepot_split_fractions_out_of_range_are_refused(homedepot_dir, train, dev):
    with pytest.raises(ConfigError, match="train_fraction"):
        load_dataset(homedepot_dir, train_fraction=train, dev_fraction=dev)


def test_a_train_csv_of_other_columns_is_not_taken_for_homedepot(tmp_path):
    write(tmp_path / "train.csv", "query,product_id,grade\noak desk,p1,1\n")
    with pytest.raises(ConfigError, match="Home Depot"):
        load_dataset(tmp_path)


def test_iter_catalog_reads_homedepot_directory_products(homedepot_dir):
    assert len(list(iter_catalog(homedepot_dir))) == 7


# --- dispatch ---------------------------------------------------------------------------


def test_load_dataset_detects_beir_layout(tmp_path):
    write_beir(make_dataset(), tmp_path)
    assert load_dataset(tmp_path) == load_beir(tmp_path)


def test_load_dataset_detects_wands_layout_and_passes_options(wands_dir):
    assert sorted(load_dataset(wands_dir, train_fraction=0.0, dev_fraction=0.5).qrels) == ["dev", "test"]


def test_load_dataset_unknown_layout_says_what_it_looks_for(tmp_path):
    with pytest.raises(ConfigError, match="corpus.jsonl"):
        load_dataset(tmp_path)


def test_load_dataset_unknown_format_lists_valid_ones(tmp_path):
    with pytest.raises(ConfigError, match="valid: auto, beir, wands, esci"):
        load_dataset(tmp_path, fmt="trec")


def test_load_dataset_and_iter_catalog_detect_esci_official_file_names(tmp_path):
    products, examples = esci_official(tmp_path)
    products.rename(tmp_path / "shopping_queries_dataset_products.parquet")
    pq.write_table(arrow_csv.read_csv(examples), tmp_path / "shopping_queries_dataset_examples.parquet")
    assert [p.id for p in iter_catalog(tmp_path)] == ["A1", "B2"]
    assert sorted(load_dataset(tmp_path).qrels) == ["test", "train"]


@pytest.mark.parametrize(
    "name, text",
    [
        ("c.jsonl", '{"id": "p1", "title": "Desk"}\n'),
        ("c.json", '{"id": "p1", "title": "Desk"}\n'),
        ("c.csv", "id,title\np1,Desk\n"),
        ("c.tsv", "id\ttitle\np1\tDesk\n"),
    ],
)
def test_iter_catalog_reads_file_by_suffix(tmp_path, name, text):
    assert [p.id for p in iter_catalog(write(tmp_path / name, text))] == ["p1"]


def test_iter_catalog_reads_beir_directory_corpus(tmp_path):
    write_beir(make_dataset(), tmp_path)
    assert [p.id for p in iter_catalog(tmp_path)] == ["p1", "p2"]


def test_iter_catalog_reads_wands_directory_products(wands_dir):
    assert len(list(iter_catalog(wands_dir))) == 10


def test_iter_catalog_reads_vespa_esci_feed():
    assert len(list(iter_catalog(shared("esci_vespa_sample/sample-products.jsonl")))) == 16


def test_iter_catalog_unknown_suffix_lists_supported(tmp_path):
    with pytest.raises(ConfigError, match=r"\.jsonl, \.json, \.ndjson, \.csv, \.tsv, \.txt, \.xml"):
        iter_catalog(write(tmp_path / "c.parquet", "x"))


def added_grades(directory: Path, split: str, rows: list[tuple[str, str, int]]) -> None:
    (directory / "qrels").mkdir(exist_ok=True)
    lines = ["query-id\tcorpus-id\tscore", *(f"{q}\t{p}\t{g}" for q, p, g in rows)]
    (directory / "qrels" / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def judged_query(dataset) -> tuple[str, str, dict[str, int]]:
    split, judged = next((name, judged) for name, judged in dataset.qrels.items() if judged)
    qid = next(iter(judged))
    return split, qid, judged[qid]


def test_grades_added_in_qrels_join_a_home_depot_querys_split(homedepot_dir):
    split, qid, grades = judged_query(load_dataset(homedepot_dir))
    added_grades(homedepot_dir, split, [(qid, "100007", 2)])
    assert load_dataset(homedepot_dir).qrels[split][qid] == {**grades, "100007": 2}


def test_grades_added_in_another_split_than_the_querys_are_refused_naming_the_file(homedepot_dir):
    split, qid, _ = judged_query(load_dataset(homedepot_dir))
    other = next(name for name in ("train", "dev", "test") if name != split)
    added_grades(homedepot_dir, other, [(qid, "100007", 2)])
    with pytest.raises(DataError, match=rf"{other}\.tsv.*judged in split '{split}'"):
        load_dataset(homedepot_dir)


def test_an_added_grade_that_contradicts_the_downloads_is_refused(homedepot_dir):
    split, qid, grades = judged_query(load_dataset(homedepot_dir))
    pid, grade = next(iter(grades.items()))
    added_grades(homedepot_dir, split, [(qid, pid, grade + 1)])
    with pytest.raises(DataError, match=f"graded {grade} in the dataset and {grade + 1} here"):
        load_dataset(homedepot_dir)


def test_added_grades_of_a_query_the_dataset_lacks_are_refused(homedepot_dir):
    added_grades(homedepot_dir, "dev", [("no-such-query", "100007", 2)])
    with pytest.raises(DataError, match="'no-such-query' is no query of the dataset"):
        load_dataset(homedepot_dir)
