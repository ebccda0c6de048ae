"""What Elasticsearch's own clients ask before they search: ``GET /`` and ``HEAD /`` (``info()``, ``ping()``), and
``HEAD /<index>`` (``indices.exists``), on the embedded backend, which has no cluster to pass them to."""

from __future__ import annotations

import pytest
from compat_suite import embedded_app
from elasticsearch import Elasticsearch
from live_server import served


@pytest.fixture(scope="module")
def es(tmp_path_factory):
    app, pipeline = embedded_app(tmp_path_factory.mktemp("handshake"))
    with served(app) as url:
        yield Elasticsearch(url, request_timeout=30, max_retries=0)
    pipeline.close()


def test_an_elasticsearch_client_pings_and_reads_the_services_info(es):
    assert es.ping()
    info = es.info()
    assert info["version"]["number"].startswith("8.")
    assert info["tagline"] == "You Know, for Search"


def test_the_served_index_exists_for_a_client_and_another_does_not(es):
    assert es.indices.exists(index="products")
    assert not es.indices.exists(index="no-such-index")


def test_a_browser_still_gets_the_page_at_the_root(embedded_client):
    answer = embedded_client.get("/", headers={"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"})
    assert answer.status_code == 200
    assert answer.mimetype == "text/html"


def test_reading_the_index_itself_is_a_501_naming_it_and_another_name_a_404(embedded_client):
    served = embedded_client.get("/products", headers={"Accept": "application/json"})
    assert served.status_code == 501
    assert served.get_json()["error"]["unsupported"] == "products"
    assert embedded_client.get("/no-such-index", headers={"Accept": "application/json"}).status_code == 404


@pytest.mark.parametrize("accept", ["application/json, text/html;q=0.9", "text/html;q=0", ""])
def test_a_client_that_prefers_json_or_takes_no_html_gets_the_root_answer(embedded_client, accept):
    answer = embedded_client.get("/", headers={"Accept": accept} if accept else {})
    assert answer.get_json()["tagline"] == "You Know, for Search"
    assert answer.headers["X-Elastic-Product"] == "Elasticsearch"
