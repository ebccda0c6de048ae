"""The ``fields`` option (serving/hit_fields.py): each hit's values of the fields asked, read from its source as
Elasticsearch reads them there, on both backends alike."""

from __future__ import annotations

import pytest

LAMP = {"query": {"ids": {"values": ["l1"]}}, "_source": False}


def fields_of(service, asked, **body):
    answer = service.post("/products/_search", json={**LAMP, "fields": asked, **body})
    assert answer.status_code == 200, answer.get_json()
    (hit,) = answer.get_json()["hits"]["hits"]
    return hit


def test_each_field_named_is_listed_with_its_values(service):
    hit = fields_of(service, ["title", "price", "sales", "brand.keyword", "attributes.color", "description"])
    assert hit["fields"] == {
        "title": ["Desk lamp"],
        "price": [39.0],
        "sales": [15],
        "brand.keyword": ["Acme"],
        "attributes.color": ["black"],
        "description": ["a reading lamp"],
    }
    assert "_source" not in hit


def test_a_front_ends_own_name_for_a_field_is_listed_by_that_name(service):
    assert fields_of(service, ["supplier", "color"])["fields"] == {"supplier": ["Acme"], "color": ["black"]}


def test_a_pattern_lists_each_field_it_matches(service):
    assert fields_of(service, ["attributes.*", "rat*"])["fields"] == {"attributes.color": ["black"], "rating": [4.2]}


def test_a_star_lists_every_field_the_keyword_copies_included(service):
    listed = fields_of(service, ["*"])["fields"]
    assert {"id", "title", "title.keyword", "brand", "brand.keyword", "price", "attributes.color"} <= set(listed)
    assert listed["title.keyword"] == ["Desk lamp"]


def test_a_date_is_written_as_elasticsearch_writes_one_or_as_epoch_millis_when_asked(service):
    assert fields_of(service, ["created_at"])["fields"] == {"created_at": ["2024-12-24T00:00:00.000Z"]}
    millis = fields_of(service, [{"field": "created_at", "format": "epoch_millis"}])["fields"]
    assert millis == {"created_at": ["1734998400000"]}


def test_a_field_the_hit_has_no_value_for_is_left_out(service):
    answer = service.post(
        "/products/_search", json={"query": {"ids": {"values": ["l2"]}}, "fields": ["rating", "nosuch"]}
    )
    (hit,) = answer.get_json()["hits"]["hits"]
    assert "fields" not in hit
    assert hit["_source"]["id"] == "l2"  # the source stays unless the body turns it off


def test_the_fields_option_and_doc_values_are_answered_together(service):
    hit = fields_of(service, ["title"], docvalue_fields=["price"])
    assert hit["fields"] == {"title": ["Desk lamp"], "price": [39.0]}


@pytest.mark.parametrize(
    ("fields", "status", "named"),
    [
        ("title", 400, "fields"),
        ([{"format": "epoch_millis"}], 400, "fields[0].field"),
        ([{"field": "title", "unmapped": True}], 400, "fields[0].unmapped"),
        ([""], 400, "fields[0]"),
        (["title"] * 101, 400, "fields"),
        ([{"field": "created_at", "format": "yyyy-MM-dd"}], 501, "fields[0].format"),
    ],
)
def test_a_fields_option_that_cannot_be_read_is_refused_naming_it(service, fields, status, named):
    answer = service.post("/products/_search", json={**LAMP, "fields": fields})
    assert answer.status_code == status
    cause = answer.get_json()["error"]["root_cause"][0]
    assert cause.get("field", cause.get("unsupported")) == named


@pytest.mark.parametrize("pattern", ["?itle", "[t]itle", "titl[e]"])
def test_only_a_star_is_a_wildcard_in_a_field_pattern(service, pattern):
    assert "fields" not in fields_of(service, [pattern])


def test_a_front_ends_name_for_a_keyword_is_listed_by_that_name(service):
    assert fields_of(service, ["color.keyword", "manufacturer"])["fields"] == {
        "color.keyword": ["black"],
        "manufacturer": ["Acme"],
    }
