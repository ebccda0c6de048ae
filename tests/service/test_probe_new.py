"""Probes of signed shopper ids and of stored_fields / docvalue_fields: each test asserts the behaviour meant (as
Elasticsearch answers, or as the README says), so that it fails where the service is wrong."""

from __future__ import annotations

import pytest
from both_backends import BACKENDS, backend_client, search

from search_rerank.core.product import Product
from search_rerank.serving import create_app
from search_rerank.serving.identity import IDENTITY_KEY_VARIABLE

CATALOG = [
    Product(
        id="p1",
        title="Oak table",
        brand="Bolt",
        category=["Furniture", "Tables"],
        price=249.0,
        attributes={"color": ["brown", "amber"]},
        sales=30,
    ),
    Product(id="p2", title="Oak chair", brand="Acme", category=["Furniture", "Chairs"], price=120.0, sales=20),
    Product(id="p3", title="Oak shelf", brand="Acme", category=["Furniture"], price=80.0, sales=10),
]
ALIASES = {"manufacturer": "brand.keyword", "ean": "", "store": "=DE"}
OAK = {"query": {"match": {"title": "oak"}}, "sort": [{"price": "desc"}]}


@pytest.fixture(scope="module")
def embedded(catalog_client):
    return catalog_client(CATALOG, field_aliases=ALIASES)


@pytest.fixture(params=BACKENDS)
def client(request):
    return backend_client(request, CATALOG, field_aliases=ALIASES)


def hits(client, **body):
    return search(client, {**OAK, **body})["hits"]["hits"]


# ------------------------------------------------------------------ stored_fields / docvalue_fields


def test_stored_fields_naming_source_keeps_the_source(client):
    """Elasticsearch (FetchContext.buildFetchSourceContext) and OpenSearch (FetchPhase) fetch the source when
    ``stored_fields`` lists ``_source``: ``"stored_fields": ["_source"]`` is how a client asks for source and no
    stored fields. The service drops ``_source`` for any list."""
    answered = hits(client, stored_fields=["_source"])
    assert all(hit.get("_source", {}).get("title", "").startswith("Oak") for hit in answered), answered


def test_doc_values_of_an_object_path_are_no_500(client):
    """``facet.category`` is an object in the index (``path``, ``lvl1``...); the cluster backend's walk over the
    indexed document reaches the object and puts dicts into a set (TypeError: unhashable type: 'dict'), a 500
    after the search already ran and was logged. Elasticsearch (and osmem-server) leave an object path out of
    ``fields``; a 501 naming it, as the embedded backend answers, would do too."""
    response = client.post("/products/_search", json={**OAK, "docvalue_fields": ["facet.category"]})
    assert response.status_code in (200, 501), response.get_data(as_text=True)[:300]
    if response.status_code == 200:
        assert all("facet.category" not in hit.get("fields", {}) for hit in response.get_json()["hits"]["hits"])


def test_doc_values_of_a_field_aliased_to_nothing_are_left_out(client):
    """A name aliased to ``""`` is, per field_aliases, a field the index does not map, with Elasticsearch's meaning:
    Elasticsearch answers a docvalue field it does not map by leaving it out of ``fields`` (hit_fields' own
    docstring says so of ``_score``). The service answers a 501."""
    response = client.post("/products/_search", json={**OAK, "docvalue_fields": ["_id", "ean"]})
    assert response.status_code == 200, response.get_json()
    assert [hit["fields"] for hit in response.get_json()["hits"]["hits"]] == [{"_id": [p]} for p in ("p1", "p2", "p3")]


def test_doc_values_of_a_constant_field_are_its_one_value(client):
    """A name aliased to ``"=DE"`` is a field every product holds with that one value (a term on it matches every
    product); its doc values are that value, as a ``constant_keyword``'s are. The service answers a 501."""
    response = client.post("/products/_search", json={**OAK, "docvalue_fields": ["store"]})
    assert response.status_code == 200, response.get_json()
    assert [hit.get("fields") for hit in response.get_json()["hits"]["hits"]] == [{"store": ["DE"]}] * 3


# ------------------------------------------------------------------ signed ids

KEY = "k" * 40
SHOPPER = "shopper-5d1e77"


@pytest.fixture
def signed_client(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, KEY)
    return create_app(personal_settings, pipeline).test_client()


@pytest.mark.parametrize("value", [SHOPPER, "not an id!"])
def test_count_refuses_a_user_header_that_is_not_a_signed_id(signed_client, value):
    """README: the Elasticsearch-compatible endpoints read X-Search-Rerank-User; an id that is not one is a 400
    naming the header, and with SEARCH_RERANK_IDENTITY_KEY set only a signed one is taken. ``_count`` never reads
    the header: an unsigned or malformed one is answered 200, where ``_search`` on the same body is a 400."""
    query = {"query": {"match": {"title": "sofa"}}}
    headers = {"X-Search-Rerank-User": value}
    assert signed_client.post("/products/_search", json=query, headers=headers).status_code == 400
    response = signed_client.post("/products/_count", json=query, headers=headers)
    assert response.status_code == 400 and "X-Search-Rerank-User" in response.get_data(as_text=True)
