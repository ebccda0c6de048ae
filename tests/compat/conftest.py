"""The app over the compatibility suite's catalog (tests/front_end_catalog.py) on each backend, for the tests of
this folder that send it front ends' requests."""

from __future__ import annotations

import pytest
from compat_suite import BACKENDS, embedded_app, opensearch_app


@pytest.fixture(scope="module")
def embedded_client(tmp_path_factory):
    app, pipeline = embedded_app(tmp_path_factory.mktemp("compat-embedded"))
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def opensearch_client(tmp_path_factory, osmem_server_url):
    with opensearch_app(tmp_path_factory.mktemp("compat-opensearch"), osmem_server_url) as app:
        yield app.test_client()


@pytest.fixture(params=BACKENDS)
def service(request):
    """The app on each backend, over the suite's catalog."""
    return request.getfixturevalue(f"{request.param}_client")
