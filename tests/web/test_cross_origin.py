"""A shop's page on another origin calling the service, in a real headless Chromium: the browser itself decides
whether the answer may be read (its preflight, the headers it lets a script see), so it is what is tested."""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

import pytest
from live_server import handled, served

from search_rerank.serving import create_app

pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (pip install -e '.[dev]')")
from playwright.sync_api import Page  # noqa: E402

# A Search UI-style search with the header a front end adds for personalisation: a custom header and a JSON body
# both make Chromium ask in a preflight first.
FETCH = """async (url) => {
  try {
    const answer = await fetch(url + "/products/_search", {
      method: "POST",
      headers: {"Content-Type": "application/json", "X-Search-Rerank-User": "shopper-1"},
      body: JSON.stringify({query: {match: {title: "lamp"}}, size: 3}),
    });
    const body = await answer.json();
    return {status: answer.status, queryId: answer.headers.get("X-Query-Id"), hits: body.hits.hits.length};
  } catch (error) {
    return {blocked: String(error)};
  }
}"""


class Blank(BaseHTTPRequestHandler):
    """The shop's own page: an empty document, so that the script runs from its origin."""

    def do_GET(self):
        body = b"<!doctype html><title>shop</title>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def shop_pages():
    """Two shops' pages on origins of their own: the first allowed by the service, the second not."""
    with handled(Blank) as allowed, handled(Blank) as other:
        yield allowed, other


@pytest.fixture(scope="module")
def cors_server(web_settings, shop_pages):
    allowed, _ = shop_pages
    service = web_settings.service.model_copy(update={"cors_allow_origins": (allowed,)})
    with served(create_app(web_settings.model_copy(update={"service": service}))) as url:
        yield url


def test_a_page_of_an_allowed_origin_reads_the_search_and_its_query_id(page: Page, shop_pages, cors_server):
    page.goto(shop_pages[0])
    answer = page.evaluate(FETCH, cors_server)
    assert answer.get("status") == 200 and answer["hits"] > 0
    assert answer["queryId"], "the UBI query id must be readable, or the page's events cannot name their search"


def test_a_page_of_another_origin_is_refused_by_the_browser(page: Page, shop_pages, cors_server):
    page.goto(shop_pages[1])
    assert "blocked" in page.evaluate(FETCH, cors_server)
