"""What a hit carries besides its source: ``stored_fields`` (Magento's ``_none_``: no ``_id``, no ``_source``) and
``docvalue_fields`` (each field's indexed values under ``fields``), on the embedded backend and on a cluster alike."""

from __future__ import annotations

import json
from typing import Any

import pytest
from both_backends import BACKENDS, backend_fixtures, catalog_on, search

from search_rerank.core.product import Product

CATALOG = [
    Product(
        id="p1",
        title="Oak table",
        brand="Bolt",
        category=["Furniture", "Tables"],
        price=249.0,
        attributes={"color": ["brown", "amber", "brown"]},
        sales=30,
        extra={"created_at": "2025-03-01", "sizes": [9, 2, 2]},
    ),
    Product(id="p2", title="Oak chair", brand="Acme", category=["Furniture", "Chairs"], price=120.0, sales=20),
    Product(id="p3", title="Oak shelf", brand="Acme", category=["Furniture"], price=80.0, sales=10),
]
OAK = {"query": {"match": {"title": "oak"}}, "sort": [{"price": "desc"}]}
MAGENTO = {"stored_fields": "_none_", "docvalue_fields": ["_id", "_score"]}
# A front end's names: one onto the product's, one the product lacks, two every product holds with one value (the
# second, Hibernate Search's type discriminator, begins with an underscore, as metadata fields do).
ALIASES = {"manufacturer": "brand.keyword", "ean": "", "store": "=DE", "_entity_type": "=Product"}


embedded, client = backend_fixtures(CATALOG, field_aliases=ALIASES)


def hits(client, **body: Any) -> list[dict[str, Any]]:
    return search(client, {**OAK, **body})["hits"]["hits"]


def refusal(client, body: dict[str, Any], status: int = 400) -> dict[str, Any]:
    response = client.post("/products/_search", json={**OAK, **body})
    assert response.status_code == status, response.get_json()
    return response.get_json()["error"]


def test_stored_fields_none_answers_hits_without_id_or_source_their_ids_in_fields(client):
    answered = hits(client, **MAGENTO)
    assert all("_id" not in hit and "_source" not in hit for hit in answered)
    assert [hit["fields"] for hit in answered] == [{"_id": ["p1"]}, {"_id": ["p2"]}, {"_id": ["p3"]}]


def test_stored_fields_none_answers_a_ranked_search_in_the_same_order_as_without_it(client):
    body = {"query": {"match": {"title": "oak table"}}, "size": 3}
    plain = [hit["_id"] for hit in search(client, body)["hits"]["hits"]]
    bare = [hit["fields"]["_id"][0] for hit in search(client, {**body, **MAGENTO})["hits"]["hits"]]
    assert bare == plain


def test_stored_fields_of_names_keeps_the_id_and_leaves_the_source_out(client):
    assert [sorted(hit) for hit in hits(client, stored_fields=["title"])] == [["_id", "_index", "_score", "sort"]] * 3


@pytest.fixture(params=BACKENDS)
def stored_pk(request):
    """A shop whose front end's index stored ``pk`` (Wagtail's Elasticsearch backend), aliased to the id."""
    return catalog_on(request, CATALOG, field_aliases={**ALIASES, "pk": "id"})


def test_a_stored_field_the_aliases_name_is_answered_under_fields(stored_pk):
    """Wagtail searches with ``?_source=false&stored_fields=pk`` and reads each hit's ``fields.pk``."""
    response = stored_pk.post("/products/_search?_source=false&stored_fields=pk", json=OAK)
    assert response.status_code == 200
    found = response.get_json()["hits"]["hits"]
    assert found and all(hit["fields"] == {"pk": [hit["_id"]]} and "_source" not in hit for hit in found)


def test_a_stored_field_no_alias_names_adds_nothing(stored_pk):
    assert all("fields" not in hit for hit in hits(stored_pk, stored_fields=["title"]))


def test_stored_fields_beside_a_source_asked_for_keeps_the_source(client):
    assert all(
        hit["_source"] == {"title": hit["_source"]["title"]}
        for hit in hits(client, stored_fields=[], _source=["title"])
    )


def test_stored_fields_naming_source_keeps_the_source(client):
    """How a client asks for the source and no stored field (Elasticsearch's FetchContext fetches it then)."""
    assert all(hit["_source"]["title"].startswith("Oak") for hit in hits(client, stored_fields=["_source"]))


def test_stored_fields_none_with_a_source_asked_for_is_a_400_naming_stored_fields(client):
    assert refusal(client, {**MAGENTO, "_source": True})["field"] == "stored_fields"


def test_stored_fields_none_among_other_names_is_a_400(client):
    assert refusal(client, {"stored_fields": ["_none_", "title"]})["field"] == "stored_fields"


def test_doc_values_are_each_fields_indexed_values_sorted_and_each_keyword_once(client):
    asked = ["price", "sales", "manufacturer", "category.keyword", "attributes.color"]
    first = hits(client, docvalue_fields=asked)[0]
    assert first["fields"] == {
        "price": [249.0],
        "sales": [30],
        "manufacturer": ["Bolt"],
        "category.keyword": ["Furniture > Tables"],
        "attributes.color": ["amber", "brown"],
    }
    assert "_source" in first


def test_doc_values_of_a_catalog_date_are_formatted_as_elasticsearch_formats_them(client):
    first = hits(client, docvalue_fields=["created_at", {"field": "sizes"}])[0]
    assert first["fields"] == {"created_at": ["2025-03-01T00:00:00.000Z"], "sizes": [2, 2, 9]}


def test_a_field_a_hit_has_no_value_of_is_left_out_of_its_fields(client):
    answered = hits(client, docvalue_fields=["attributes.color", "_id"])
    assert [sorted(hit["fields"]) for hit in answered] == [["_id", "attributes.color"], ["_id"], ["_id"]]


def test_doc_values_of_a_name_aliased_to_no_field_are_left_out_as_an_unmapped_fields(client):
    assert [hit["fields"] for hit in hits(client, docvalue_fields=["_id", "ean"])] == [
        {"_id": [pid]} for pid in ("p1", "p2", "p3")
    ]


def test_doc_values_of_a_name_aliased_to_a_value_are_that_value_on_every_hit(client):
    assert [hit["fields"] for hit in hits(client, docvalue_fields=["store"])] == [{"store": ["DE"]}] * 3


def test_doc_values_of_an_underscored_name_aliased_to_a_value_are_that_value_on_every_hit(client):
    """Hibernate Search asks ``_entity_type`` of every search with ``_source: false`` and fails on a hit without it."""
    answered = hits(client, _source=False, docvalue_fields=["_entity_type"])
    assert [hit["fields"] for hit in answered] == [{"_entity_type": ["Product"]}] * 3


def test_doc_values_of_an_objects_path_are_left_out_or_named_unsupported(client):
    """Elasticsearch leaves an object's path out; the cluster backend reached the object and failed with a 500."""
    response = client.post("/products/_search", json={**OAK, "docvalue_fields": ["facet.category"]})
    assert response.status_code in (200, 501), response.get_json()
    if response.status_code == 200:
        assert not any("fields" in hit for hit in response.get_json()["hits"]["hits"])


def test_doc_values_of_a_text_field_are_a_400_naming_it(client):
    error = refusal(client, {"docvalue_fields": ["price", "title"]})
    assert error["field"] == "docvalue_fields[1]" and "keyword" in error["reason"]


def test_a_wildcard_in_doc_values_is_a_501_naming_it(client):
    assert refusal(client, {"docvalue_fields": ["pri*"]}, 501)["unsupported"] == "docvalue_fields[0]"


def test_a_format_for_doc_values_is_a_501_naming_it(client):
    error = refusal(client, {"docvalue_fields": [{"field": "price", "format": "0.00"}]}, 501)
    assert error["unsupported"] == "docvalue_fields[0].format"


def test_more_doc_values_than_elasticsearch_allows_are_a_400(client):
    assert refusal(client, {"docvalue_fields": ["price"] * 101})["field"] == "docvalue_fields"


def test_an_unknown_key_of_a_doc_value_field_is_a_400_naming_it(client):
    assert (
        refusal(client, {"docvalue_fields": [{"field": "price", "fromat": "x"}]})["field"]
        == "docvalue_fields[0].fromat"
    )


def test_stored_and_doc_value_fields_in_the_uri_are_read_as_elasticsearch_reads_them(client):
    response = client.post(
        "/products/_search",
        json={**OAK, "docvalue_fields": ["sales"]},
        query_string={"stored_fields": "_none_", "docvalue_fields": "_id,price"},
    )
    first = response.get_json()["hits"]["hits"][0]
    assert "_id" not in first and first["fields"] == {"sales": [30], "_id": ["p1"], "price": [249.0]}


def test_a_multi_search_answers_each_search_with_its_own_hit_fields(client):
    lines = [{}, {**OAK, **MAGENTO, "size": 1}, {}, {**OAK, "size": 1}]
    ndjson = "".join(json.dumps(line) + "\n" for line in lines)
    answers = client.post("/products/_msearch", data=ndjson, content_type="application/x-ndjson").get_json()
    bare, plain = (answer["hits"]["hits"][0] for answer in answers["responses"])
    assert "_id" not in bare and "_source" not in bare and bare["fields"] == {"_id": ["p1"]}
    assert plain["_id"] == "p1" and "fields" not in plain
