"""Products by id on the embedded backend (serving/documents.py), as Elasticsearch's document APIs answer them:
``GET /products/_doc/ID``, ``GET /products/_source/ID``, ``_mget`` (a product page, a script's ``es.get``, a
recently-viewed strip); each was a 501 without a cluster to pass it to. With a cluster backend they are the
cluster's (tests/service/test_passthrough.py)."""

from __future__ import annotations

import pytest
from compat_suite import embedded_app
from elasticsearch import Elasticsearch, NotFoundError
from front_end_catalog import CATALOG
from live_server import served

BY_ID = {p.id: p for p in CATALOG}


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    app, pipeline = embedded_app(tmp_path_factory.mktemp("documents"))
    yield app
    pipeline.close()


@pytest.fixture(scope="module")
def client(app):
    return app.test_client()


@pytest.fixture(scope="module")
def es(app):
    with served(app) as url:
        yield Elasticsearch(url, request_timeout=30, max_retries=0)


def hit_source(client, product_id: str) -> dict:
    """The ``_source`` a search hit carries for the product."""
    body = {"query": {"ids": {"values": [product_id]}}}
    [hit] = client.post("/products/_search", json=body).get_json()["hits"]["hits"]
    return hit["_source"]


def test_a_document_read_by_id_carries_the_source_a_search_hit_carries(client):
    answer = client.get("/products/_doc/l1")
    assert answer.status_code == 200
    body = answer.get_json()
    assert (body["_index"], body["_id"], body["found"]) == ("products", "l1", True)
    assert body["_source"] == hit_source(client, "l1")
    assert body["_source"]["title"] == "Desk lamp"


def test_a_document_no_product_has_is_a_404_saying_it_was_not_found(client):
    answer = client.get("/products/_doc/nope")
    assert answer.status_code == 404
    assert answer.get_json() == {"_index": "products", "_id": "nope", "found": False}


@pytest.mark.parametrize("product_id, status", [("l1", 200), ("nope", 404)])
def test_head_of_a_document_says_whether_it_exists_without_a_body(client, product_id, status):
    answer = client.head(f"/products/_doc/{product_id}")
    assert (answer.status_code, answer.data) == (status, b"")


def test_the_source_parameters_filter_the_documents_source(client):
    assert client.get("/products/_doc/l1?_source_includes=title,price").get_json()["_source"] == {
        "title": "Desk lamp",
        "price": 39.0,
    }
    assert "_source" not in client.get("/products/_doc/l1?_source=false").get_json()
    assert "description" not in client.get("/products/_doc/l1?_source_excludes=description").get_json()["_source"]


def test_the_source_endpoint_answers_the_source_alone(client):
    assert client.get("/products/_source/l1").get_json() == hit_source(client, "l1")
    missing = client.get("/products/_source/nope")
    assert missing.status_code == 404
    assert missing.get_json()["error"]["type"] == "resource_not_found_exception"


def test_a_document_of_an_index_not_served_is_elasticsearchs_404(client):
    answer = client.get("/other/_doc/l1")
    assert answer.status_code == 404
    assert answer.get_json()["error"]["type"] == "index_not_found_exception"


def test_writing_a_document_is_a_501_naming_it(client):
    answer = client.put("/products/_doc/l1", json={"title": "x"})
    assert answer.status_code == 501
    assert client.get("/products/_doc/l1").get_json()["_source"]["title"] == "Desk lamp"


@pytest.mark.parametrize("param, status", [("stored_fields=title", 501), ("colour=red", 400)])
def test_a_parameter_that_would_change_the_answer_is_refused_naming_it(client, param, status):
    answer = client.get(f"/products/_doc/l1?{param}")
    assert answer.status_code == status
    assert param.split("=")[0] in answer.get_data(as_text=True)


def test_multi_get_answers_each_doc_in_its_order_found_or_not(client):
    docs = [{"_index": "products", "_id": "l2"}, {"_index": "products", "_id": "nope"}, {"_id": "l1"}]
    answer = client.post("/products/_mget", json={"docs": docs})
    assert answer.status_code == 200
    got = answer.get_json()["docs"]
    assert [(d["_id"], d["found"]) for d in got] == [("l2", True), ("nope", False), ("l1", True)]
    assert got[0]["_source"] == hit_source(client, "l2")


def test_multi_get_of_docs_and_ids_answers_both_in_the_bodys_order(client):
    got = client.post("/products/_mget", json={"ids": ["l1"], "docs": [{"_id": "l2"}]}).get_json()["docs"]
    assert [d["_id"] for d in got] == ["l1", "l2"]


def test_the_filter_path_parameter_cuts_a_document_and_a_multi_get_as_a_searchs(client):
    assert client.get("/products/_doc/l1?filter_path=_source.title").get_json() == {"_source": {"title": "Desk lamp"}}
    got = client.post("/products/_mget?filter_path=docs._id", json={"ids": ["l1", "l2"]}).get_json()
    assert got == {"docs": [{"_id": "l1"}, {"_id": "l2"}]}


def test_a_docs_source_written_as_a_booleans_text_is_that_boolean(client):
    got = client.post("/products/_mget", json={"docs": [{"_id": "l1", "_source": "false"}]}).get_json()["docs"]
    assert got[0]["found"] is True and "_source" not in got[0]


def test_error_trace_changes_nothing_and_no_trace_is_answered(client):
    answer = client.get("/products/_doc/nope?error_trace=true")
    assert answer.status_code == 404 and "trace" not in answer.get_data(as_text=True)


def test_multi_get_of_ids_reads_the_paths_index(client):
    got = client.post("/products/_mget", json={"ids": ["l1", "l2"]}).get_json()["docs"]
    assert [(d["_index"], d["_id"], d["found"]) for d in got] == [("products", "l1", True), ("products", "l2", True)]


def test_multi_get_gives_a_doc_of_an_index_not_served_its_error_in_its_place(client):
    docs = [{"_index": "other", "_id": "l1"}, {"_index": "products", "_id": "l1"}]
    got = client.post("/_mget", json={"docs": docs}).get_json()["docs"]
    assert got[0]["error"]["type"] == "index_not_found_exception" and got[1]["found"] is True


def test_multi_get_filters_each_docs_source_as_it_asks(client):
    docs = [{"_id": "l1", "_source": ["title"]}, {"_id": "l2", "_source": False}]
    got = client.post("/products/_mget?_source_excludes=description", json={"docs": docs}).get_json()["docs"]
    assert got[0]["_source"] == {"title": "Desk lamp"} and "_source" not in got[1]


@pytest.mark.parametrize(
    "path, body, field",
    [
        ("/_mget", {"docs": [{"_id": "l1"}]}, "docs[0]._index"),
        ("/_mget", {"ids": ["l1"]}, "ids"),
        ("/products/_mget", {"docs": [{"_index": "products"}]}, "docs[0]._id"),
        ("/products/_mget", {"docs": []}, "docs"),
        ("/products/_mget", {"docs": [{"_id": "l1", "_sorce": True}]}, "docs[0]._sorce"),
        ("/products/_mget", {"ids": "l1"}, "ids"),
        ("/products/_mget", {"id": ["l1"]}, "id"),
        ("/products/_mget", {"ids": []}, "ids"),
    ],
)
def test_a_multi_get_elasticsearch_refuses_is_a_400_naming_the_part(client, path, body, field):
    answer = client.post(path, json=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == field


def test_elasticsearch_pys_get_and_mget_read_the_products(es):
    assert es.get(index="products", id="t1")["_source"]["title"] == BY_ID["t1"].title
    assert es.exists(index="products", id="t1") and not es.exists(index="products", id="nope")
    with pytest.raises(NotFoundError):
        es.get(index="products", id="nope")
    got = es.mget(index="products", ids=["t1", "t2"])["docs"]
    assert [d["_source"]["title"] for d in got] == [BY_ID["t1"].title, BY_ID["t2"].title]
    assert es.get_source(index="products", id="t2")["supplier"] == BY_ID["t2"].brand  # as field_aliases name it


@pytest.mark.parametrize("key", ["version", "stored_fields"])
def test_a_multi_get_doc_asking_for_a_version_or_stored_fields_is_a_501_naming_it(client, key):
    answer = client.post("/products/_mget", json={"docs": [{"_id": "l1", key: 1}]})
    assert answer.status_code == 501
    assert answer.get_json()["error"]["unsupported"] == f"docs[0].{key}"
