"""A catalog's own fields are typed from every value they hold, before anything is indexed (core/catalog_fields.py)."""

from __future__ import annotations

import pytest

from search_rerank.core.catalog_fields import MAX_DEPTH, MAX_FIELDS, CatalogFields, format_date, parse_date
from search_rerank.core.product import Product


def products(*extras: dict) -> list[Product]:
    return [Product(id=str(i), title=f"t{i}", extra=extra) for i, extra in enumerate(extras)]


def types(*extras: dict, overrides: dict | None = None) -> dict[str, str]:
    return CatalogFields.infer(products(*extras), overrides).types


def test_whole_numbers_are_a_long_and_any_fraction_makes_a_double():
    assert types({"stock": 5}, {"stock": 7}) == {"stock": "long"}
    assert types({"weight": 5}, {"weight": 2.5}) == {"weight": "double"}


def test_numbers_written_as_text_are_numbers_as_a_csv_column_holds_them():
    assert types({"stock": "5"}, {"stock": "12"}) == {"stock": "long"}
    assert types({"weight": "1.5"}, {"weight": "12"}) == {"weight": "double"}


def test_digits_beginning_with_a_zero_are_a_code_not_a_number():
    assert types({"gtin": "00012345"}, {"gtin": "12345"}) == {"gtin": "keyword"}


def test_dates_are_dates_only_where_every_value_is_one():
    assert types({"added": "2025-03-01"}, {"added": "2025-03-01T10:00:00Z"}) == {"added": "date"}
    assert types({"added": "2025-03-01"}, {"added": "soon"}) == {"added": "keyword"}


def test_true_and_false_are_a_boolean_whether_json_or_text():
    assert types({"in_stock": True}, {"in_stock": "false"}) == {"in_stock": "boolean"}


def test_a_field_of_mixed_values_is_a_keyword():
    assert types({"stock": 5}, {"stock": "n/a"}) == {"stock": "keyword"}


def test_an_object_is_flattened_to_its_dotted_fields():
    assert types({"shipping": {"price": 4.5, "country": "DE"}}) == {
        "shipping.country": "keyword",
        "shipping.price": "double",
    }


def test_a_path_both_a_value_and_an_object_is_left_out():
    assert types({"size": "L"}, {"size": {"eu": 40}}) == {"size.eu": "long"}


def test_a_list_holds_several_values_of_one_field():
    catalog = CatalogFields.infer(products({"tags": ["oak", "solid"]}))
    assert catalog.types == {"tags": "keyword"}
    assert catalog.values(products({"tags": ["oak", "solid", "oak"]})[0]) == {"tags": ["oak", "solid"]}


def test_blank_values_are_no_values():
    assert types({"note": ""}, {"note": None}) == {}


def test_a_setting_overrides_the_type_read_and_a_value_that_does_not_fit_is_not_indexed():
    catalog = CatalogFields.infer(products({"stock": 5}, {"stock": "n/a"}), {"stock": "long"})
    assert catalog.types == {"stock": "long"}
    assert catalog.values(products({"stock": "n/a"})[0]) == {}
    assert catalog.values(products({"stock": "7"})[0]) == {"stock": [7]}


def test_a_long_text_is_no_keyword_value():
    catalog = CatalogFields({"notes": "keyword"})
    assert catalog.values(products({"notes": "x" * 300})[0]) == {}


def test_names_elasticsearch_keeps_for_itself_are_left_out():
    assert types({"_secret": 1, "a..b": 2, "ok": 3}) == {"ok": "long"}


def test_at_most_max_fields_are_indexed_the_most_common_first():
    many = {f"f{i}": 1 for i in range(MAX_FIELDS + 5)}
    catalog = CatalogFields.infer(products(many, {"f0": 1}))
    assert len(catalog.types) == MAX_FIELDS and "f0" in catalog.types


def test_an_unknown_type_is_refused():
    with pytest.raises(ValueError, match="none of"):
        CatalogFields({"x": "text"})


def test_the_fields_are_written_and_read_back(tmp_path):
    catalog = CatalogFields({"added": "date", "stock": "long"})
    catalog.save(tmp_path / "fields.json")
    assert CatalogFields.load(tmp_path / "fields.json") == catalog
    assert CatalogFields.load(tmp_path / "absent.json") == CatalogFields()


@pytest.mark.parametrize(
    ("text", "millis"),
    [
        ("2025-03-01", 1740787200000),
        ("2025-03-01T10:00:00Z", 1740823200000),
        ("2025-03-01T10:00:00.5+01:00", 1740819600500),
        ("2025-03", 1740787200000),
    ],
)
def test_a_date_is_read_as_strict_date_optional_time_reads_it(text, millis):
    assert parse_date(text) == millis


@pytest.mark.parametrize("text", ["2025-02-30", "03/01/2025", "2025", "2025-03-01 10:00"])
def test_what_strict_date_optional_time_does_not_read_is_no_date(text):
    assert parse_date(text) is None


def test_a_date_is_written_as_elasticsearch_writes_it():
    assert format_date(1740819600500) == "2025-03-01T09:00:00.500Z"


def test_digits_past_a_long_are_a_double_as_a_number_past_a_long_is():
    catalog = CatalogFields.infer(products({"serial": "18446744073709551616"}, {"serial": "7"}))
    assert catalog.types == {"serial": "double"}
    assert catalog.values(products({"serial": "18446744073709551616"})[0]) == {"serial": [2.0**64]}


PAST_A_DOUBLE = pytest.mark.parametrize("value", [10**400, "1" * 400, "1" * 5000], ids=["int", "text", "long-text"])


@PAST_A_DOUBLE
def test_a_number_past_a_double_is_a_keyword_not_a_failed_index(value):
    assert types({"code": value}, {"code": "12"}) == {"code": "keyword"}


@PAST_A_DOUBLE
def test_a_number_past_a_double_is_not_indexed_in_a_number_field(value):
    assert CatalogFields({"n": "double"}).values(products({"n": value})[0]) == {}
    assert CatalogFields({"n": "long"}).values(products({"n": value})[0]) == {}


@pytest.mark.parametrize(
    ("millis", "written"),
    [
        (2 * 253402214400000, "+18029-12-29T00:00:00.000Z"),  # the sum of two dates of 9999-12-31
        (-62135596800001, "0000-12-31T23:59:59.999Z"),  # the year before the year 1, as Java counts it
        (-30641760000000, "0999-01-01T00:00:00.000Z"),  # written "999-..." before
    ],
)
def test_a_date_outside_the_years_1000_to_9999_is_written_as_java_writes_it(millis, written):
    assert format_date(millis) == written


def test_the_objects_holding_fields_count_against_max_fields_as_elasticsearch_counts_them():
    # each field under its own object: Elasticsearch counts the object as a field too, and refuses the index past
    # its limit, so half as many fields are kept
    nested = {f"group{i}": {"value": 1} for i in range(MAX_FIELDS)}
    catalog = CatalogFields.infer(products(nested))
    assert len(catalog.types) == MAX_FIELDS // 2


def test_a_field_deeper_than_elasticsearch_maps_is_left_out():
    deep: dict = {"leaf": 1}
    for _ in range(MAX_DEPTH):
        deep = {"level": deep}
    assert types({"deep": deep, "ok": 1}) == {"ok": "long"}


def test_a_field_some_product_holds_several_values_of_is_known_as_such_and_written_so(tmp_path):
    catalog = CatalogFields.infer(products({"sizes": [1, 7], "finish": "oak"}, {"sizes": 3}))
    assert catalog.several == {"sizes"}
    catalog.save(tmp_path / "fields.json")
    assert CatalogFields.load(tmp_path / "fields.json").several == {"sizes"}


def test_a_keywords_repeated_value_is_one_and_a_numbers_counts_each_time():
    catalog = CatalogFields({"sizes": "long", "tags": "keyword"}, ["sizes", "tags"])
    assert catalog.values(products({"sizes": [2, 2], "tags": ["oak", "oak"]})[0]) == {"sizes": [2, 2], "tags": ["oak"]}


def test_the_values_kept_for_display_only_are_counted_by_field():
    catalog = CatalogFields({"stock": "long"})
    assert catalog.left_out(products({"stock": "n/a", "colour": "red", "image": None})[0]) == {"stock": 1, "colour": 1}


def test_a_field_of_several_values_not_known_as_such_is_one_a_sort_reads_the_first_of():
    catalog = CatalogFields({"sizes": "long", "tags": "keyword", "codes": "long"}, ["codes"])
    held = products({"sizes": [9, 1], "tags": ["oak", "oak"], "codes": [3, 4]})[0]
    assert catalog.sorted_by_first(held) == ["sizes"]
