"""What service tests share that run a catalogue's requests on the embedded backend and on a cluster alike.

A module takes its ``embedded`` and ``client`` fixtures from :func:`backend_fixtures`.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from search_rerank.core.product import Product

BACKENDS = ("embedded", "opensearch")


def backend_fixtures(catalog: list[Product], **service: Any) -> tuple[Any, Any]:
    """A module's ``embedded`` fixture (module-scoped: one index of ``catalog`` for its tests) and its ``client``
    fixture, parametrized over :data:`BACKENDS` (:func:`backend_client`): ``embedded, client =
    backend_fixtures(CATALOG)``."""

    @pytest.fixture(scope="module")
    def embedded(catalog_client: Any) -> FlaskClient:
        return catalog_client(catalog, **service)

    @pytest.fixture(params=BACKENDS)
    def client(request: Any) -> FlaskClient:
        return backend_client(request, catalog, **service)

    return embedded, client


def backend_client(request: Any, catalog: list[Product], **service: Any) -> FlaskClient:
    """The module's ``embedded`` client, or a client of the app on a fresh OpenSearch index of ``catalog`` (with
    ``service`` settings), as ``request.param`` names."""
    if request.param == "embedded":
        return request.getfixturevalue("embedded")
    return catalog_on(request, catalog, **service)


def catalog_on(request: Any, catalog: list[Product], **service: Any) -> FlaskClient:
    """A client of the app on a fresh index of ``catalog`` (with ``service`` settings) on the backend
    ``request.param`` names: for a catalogue of a few tests, where :func:`backend_client` serves a module's."""
    if request.param == "embedded":
        return request.getfixturevalue("catalog_client")(catalog, **service)
    return request.getfixturevalue("make_cluster_app")("opensearch", catalog=catalog, **service).test_client()


def search(client: FlaskClient, body: dict[str, Any], path: str = "/products/_search") -> dict[str, Any]:
    """The answer to a search that must succeed."""
    response = client.post(path, json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answer: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def filtered(client: FlaskClient, clause: dict[str, Any]) -> list[str]:
    """The ids ``clause`` matches as a filter, sorted: what matches, without the ranking's say."""
    return sorted(ids(search(client, {"query": {"bool": {"filter": [clause]}}})))
