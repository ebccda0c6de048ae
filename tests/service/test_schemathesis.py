"""Property-based requests to every operation in /openapi.json: whatever is sent, the service never answers 5xx.

The schema is the document the service publishes; the requests go over HTTP
to the app on the small test index, as a client's would.
"""

import pytest
from live_server import served

from search_rerank import __version__
from search_rerank.serving.openapi import openapi_document

schemathesis = pytest.importorskip("schemathesis", reason="schemathesis is not installed (pip install -e '.[dev]')")
from hypothesis import HealthCheck, settings  # noqa: E402

pytestmark = pytest.mark.slow
schema = schemathesis.openapi.from_dict(openapi_document(__version__))


@schemathesis.serializer("application/x-ndjson")
def ndjson(ctx, value):
    """A multi-search body is documented as a string: send it as it is."""
    return value.encode("utf-8") if isinstance(value, str) else str(value).encode("utf-8")


@pytest.fixture(scope="module")
def base_url(index_settings):
    from search_rerank.serving import create_app

    with served(create_app(index_settings)) as url:
        yield url


def no_server_error(ctx, response, case):
    """Any 5xx fails, except the documented 501 that names an Elasticsearch feature not served here."""
    if response.status_code == 501 and "unsupported" in response.json().get("error", {}):
        return
    assert response.status_code < 500, f"{response.status_code}: {response.text[:500]}"


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_makes_the_service_fail(case, base_url):
    case.call_and_validate(base_url=base_url, checks=[no_server_error])
