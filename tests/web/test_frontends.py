"""Real front-end libraries from npm, bundled by esbuild (frontend/), in a real headless Chromium against the
service's Elasticsearch-compatible API on both backends (the embedded one and an OpenSearch cluster, see
``frontends_server``; the test ids name which): Elastic Search UI (its headless SearchDriver
and Elasticsearch connector, POST /products/_search), Searchkit with InstantSearch.js widgets (POST /_msearch),
and ReactiveSearch 4 (React; POST /products/_reactivesearch, its own query language, translated by the service).

A search shows highlighted hits, a brand facet narrows them to its count, a price range to the range, a second
page continues the first, sorting by price orders them, and Search UI's autocomplete suggests as one types. Where
the page's numbers are checked against the API, the request the library sent is replayed, so the libraries' own
bodies are what is tested.
"""

from __future__ import annotations

import json
import re

import pytest
import requests

pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (pip install -e '.[dev]')")
from playwright.sync_api import Page, expect  # noqa: E402

QUERY = "lamp"
WAIT_MS = 20_000


def shown(page: Page, selector: str, attribute: str = "id") -> list[str]:
    return page.locator(selector).evaluate_all(f"items => items.map(i => i.dataset.{attribute})")


def wait_until_changed(page: Page, selector: str, before: list[str]) -> None:
    """Until the items under ``selector`` are rendered and are not ``before`` (a timeout fails the test)."""
    page.wait_for_function(
        "([selector, before]) => { const ids = [...document.querySelectorAll(selector)].map(e => e.dataset.id);"
        " return ids.length > 0 && JSON.stringify(ids) !== JSON.stringify(before); }",
        arg=[selector, before],
        timeout=WAIT_MS,
    )


def replay(url: str, sent: str, endpoint: str = "_search") -> dict:
    """The API's answer to a request body the page sent to /products/``endpoint``."""
    return requests.post(f"{url}/products/{endpoint}", json=json.loads(sent), timeout=30).json()


# Elastic Search UI ------------------------------------------------------------------------------------------


@pytest.fixture
def search_ui(page: Page, frontends_server) -> Page:
    page.goto(f"{frontends_server}/frontends/search-ui.html")
    return page


def is_search(request) -> bool:
    """Whether the page's request is Search UI's search (its autocomplete asks for no facets)."""
    return request.url.endswith("/products/_search") and '"facet_bucket_all"' in (request.post_data or "")


def search_ui_search(page: Page, query: str = QUERY) -> list[str]:
    """Submits ``query``; returns the ids of the first page once rendered."""
    with page.expect_request(is_search):
        page.fill("#query", query)
        page.press("#query", "Enter")
    wait_until_changed(page, "#results .result", [])
    return shown(page, "#results .result")


def test_search_ui_search_shows_hits_with_the_query_word_highlighted(search_ui, frontends_server):
    with search_ui.expect_request(is_search) as sent:
        search_ui_search(search_ui)
    answer = replay(frontends_server, sent.value.post_data)
    assert shown(search_ui, "#results .result") == [hit["_id"] for hit in answer["hits"]["hits"]]
    expect(search_ui.locator("#total")).to_have_text(f"{answer['hits']['total']['value']} results")
    marked = search_ui.locator("#results .result .title em")
    expect(marked.first).to_have_text(QUERY, ignore_case=True)


def price_counts(page: Page) -> list[int]:
    return [int(c) for c in page.locator("#prices .count").all_inner_texts()]


def test_search_ui_brand_facet_narrows_the_hits_and_the_other_facets_counts_to_that_brand(search_ui):
    first_page = search_ui_search(search_ui)
    before = price_counts(search_ui)
    facet = search_ui.locator("#brands li").first
    brand = facet.locator("input").get_attribute("value")
    count = int(facet.locator(".count").inner_text())
    facet.locator("input").check()
    wait_until_changed(search_ui, "#results .result", first_page)
    search_ui.wait_for_function(
        "count => [...document.querySelectorAll('#prices .count')].reduce((n, e) => n + Number(e.textContent), 0)"
        " === count",
        arg=count,
        timeout=WAIT_MS,
    )
    assert sum(before) > count and price_counts(search_ui) != before
    brands = search_ui.locator("#results .result .brand").all_inner_texts()
    assert brands and set(brands) == {brand}
    # The brand facet is disjunctive: it still offers the other brands, with their counts unchanged.
    expect(search_ui.locator("#brands li")).not_to_have_count(1)


def test_search_ui_next_page_continues_the_first(search_ui, frontends_server):
    first_page = search_ui_search(search_ui)
    with search_ui.expect_request(is_search) as sent:
        search_ui.click("#next")
    expect(search_ui.locator("#page")).to_have_attribute("data-current", "2", timeout=WAIT_MS)
    wait_until_changed(search_ui, "#results .result", first_page)
    body = json.loads(sent.value.post_data)
    assert (body["from"], body["size"]) == (5, 5)
    second_page = shown(search_ui, "#results .result")
    assert second_page == [hit["_id"] for hit in replay(frontends_server, sent.value.post_data)["hits"]["hits"]]
    assert not set(second_page) & set(first_page)


def test_search_ui_sort_by_price_orders_the_hits_cheapest_first(search_ui, frontends_server):
    first_page = search_ui_search(search_ui)
    with search_ui.expect_request(is_search) as sent:
        search_ui.select_option("#sort", "price:asc")
    wait_until_changed(search_ui, "#results .result", first_page)
    prices = [float(p) for p in shown(search_ui, "#results .result .price", "price")]
    assert prices == sorted(prices)
    answer = replay(frontends_server, sent.value.post_data)
    assert [hit["_source"]["price"] for hit in answer["hits"]["hits"]] == prices


def test_search_ui_autocomplete_suggests_highlighted_titles_while_typing(search_ui):
    search_ui.locator("#query").press_sequentially(QUERY, delay=50)
    suggestions = search_ui.locator("#suggestions .suggestion")
    expect(suggestions.first).to_be_visible(timeout=WAIT_MS)
    expect(suggestions.first.locator("em")).to_have_text(QUERY, ignore_case=True)


# Searchkit + InstantSearch.js -------------------------------------------------------------------------------


@pytest.fixture
def searchkit(page: Page, frontends_server) -> Page:
    page.goto(f"{frontends_server}/frontends/searchkit.html")
    expect(page.locator(".ais-Stats-text")).to_be_visible(timeout=WAIT_MS)  # InstantSearch's first search, no query
    return page


def searchkit_search(page: Page, query: str = QUERY) -> list[str]:
    before = shown(page, "#hits .result")
    page.fill(".ais-SearchBox-input", query)
    wait_until_changed(page, "#hits .result", before)
    expect(page.locator("#hits .result mark").first).to_be_visible(timeout=WAIT_MS)
    return shown(page, "#hits .result")


def test_searchkit_first_load_without_a_query_lists_products(searchkit):
    wait_until_changed(searchkit, "#hits .result", [])


def test_searchkit_search_shows_hits_with_the_query_word_highlighted(searchkit):
    searchkit_search(searchkit)
    expect(searchkit.locator("#hits .result .title mark").first).to_have_text(QUERY, ignore_case=True)
    expect(searchkit.locator("#error")).to_have_text("")


def test_searchkit_refinement_narrows_the_hits_to_that_brand_and_keeps_the_other_brands_counts(searchkit):
    first_page = searchkit_search(searchkit)
    items = searchkit.locator(".ais-RefinementList-item")
    counts = items.all_inner_texts()
    item = items.first
    brand = item.locator(".ais-RefinementList-labelText").inner_text()
    item.locator("input").check()
    expect(item).to_have_class(re.compile("ais-RefinementList-item--selected"), timeout=WAIT_MS)
    wait_until_changed(searchkit, "#hits .result", first_page)
    # The refinement is disjunctive (InstantSearch's "or"): the brand facet's counts ignore it.
    assert items.all_inner_texts() == counts
    brands = searchkit.locator("#hits .result .brand").all_inner_texts()
    assert brands and set(brands) == {brand}


def test_searchkit_second_page_continues_the_first(searchkit):
    first_page = searchkit_search(searchkit)
    searchkit.locator(".ais-Pagination-item--page a", has_text="2").click()
    wait_until_changed(searchkit, "#hits .result", first_page)
    expect(searchkit.locator(".ais-Pagination-item--selected")).to_have_text("2")
    assert not set(shown(searchkit, "#hits .result")) & set(first_page)


def test_searchkit_sort_by_price_orders_the_hits_cheapest_first(searchkit):
    first_page = searchkit_search(searchkit)
    searchkit.select_option(".ais-SortBy-select", "products_price_asc")
    wait_until_changed(searchkit, "#hits .result", first_page)
    prices = [float(p) for p in shown(searchkit, "#hits .result .price", "price")]
    assert len(prices) > 1 and prices == sorted(prices)


# ReactiveSearch 4 ---------------------------------------------------------------------------------------------


@pytest.fixture
def reactivesearch(page: Page, frontends_server) -> Page:
    page.goto(f"{frontends_server}/frontends/reactivesearch.html")
    wait_until_changed(page, "#results .result", [])  # ReactiveList's first search, no query
    return page


def executes_results(request) -> bool:
    """Whether the page's request searches ReactiveSearch's result list (a facet's own request does not)."""
    if not request.url.endswith("/products/_reactivesearch"):
        return False
    return any(q["id"] == "results" and q["execute"] for q in json.loads(request.post_data)["query"])


def sent_query(request, query_id: str) -> dict:
    """One query (one component) of a ReactiveSearch request the page sent."""
    return next(q for q in json.loads(request.post_data)["query"] if q["id"] == query_id)


def replayed_results(url: str, request) -> dict:
    """The API's answer for the result list to the ReactiveSearch request the page sent."""
    return replay(url, request.post_data, "_reactivesearch")["results"]


def reactivesearch_search(page: Page, query: str = QUERY) -> list[str]:
    """Types ``query`` into ReactiveSearch's SearchBox; returns the ids of the first page once rendered."""
    before = shown(page, "#results .result")
    page.fill(".query", query)
    wait_until_changed(page, "#results .result", before)
    expect(page.locator("#results .result mark").first).to_be_visible(timeout=WAIT_MS)
    return shown(page, "#results .result")


def test_reactivesearch_search_shows_hits_with_the_query_word_highlighted(reactivesearch, frontends_server):
    with reactivesearch.expect_request(executes_results) as sent:
        reactivesearch_search(reactivesearch)
    assert sent_query(sent.value, "search")["value"] == QUERY
    answer = replayed_results(frontends_server, sent.value)
    assert shown(reactivesearch, "#results .result") == [hit["_id"] for hit in answer["hits"]["hits"]]
    expect(reactivesearch.locator("#total")).to_have_text(f"{answer['hits']['total']['value']} results")
    expect(reactivesearch.locator("#results .result .title mark").first).to_have_text(QUERY, ignore_case=True)
    expect(reactivesearch.locator("#error")).to_have_count(0)


def test_reactivesearch_brand_facet_narrows_the_hits_to_that_brand_and_its_count_is_theirs(
    reactivesearch, frontends_server
):
    # Browsing, without words: with them the dense leg adds hits that no facet counts (docs/COMPATIBILITY.md, 5).
    first_page = shown(reactivesearch, "#results .result")
    facet = reactivesearch.locator("#brands .brand-facet").first
    brand, count = facet.get_attribute("data-brand"), int(facet.locator(".count").inner_text())
    with reactivesearch.expect_request(executes_results) as sent:
        facet.click()
    wait_until_changed(reactivesearch, "#results .result", first_page)
    assert sent_query(sent.value, "brand")["value"] == [brand]
    expect(reactivesearch.locator("#total")).to_have_text(f"{count} results", timeout=WAIT_MS)
    assert replayed_results(frontends_server, sent.value)["hits"]["total"]["value"] == count
    brands = reactivesearch.locator("#results .result .brand").all_inner_texts()
    assert brands and set(brands) == {brand}


def wait_until_shown(page: Page, selector: str, ids: list[str]) -> None:
    """Until the items under ``selector`` are ``ids``, in order (a timeout fails the test)."""
    page.wait_for_function(
        "([selector, ids]) => JSON.stringify([...document.querySelectorAll(selector)].map(e => e.dataset.id))"
        " === JSON.stringify(ids)",
        arg=[selector, ids],
        timeout=WAIT_MS,
    )


def test_reactivesearch_price_range_narrows_the_hits_to_the_range(reactivesearch, frontends_server):
    reactivesearch_search(reactivesearch)
    reactivesearch.fill("#prices input[name=start]", "100")  # each bound is a search of its own
    with reactivesearch.expect_request(
        lambda r: executes_results(r) and sent_query(r, "price").get("value") == {"start": 100, "end": 200}
    ) as sent:
        reactivesearch.fill("#prices input[name=end]", "200")
    answer = replayed_results(frontends_server, sent.value)
    hits = answer["hits"]["hits"]
    wait_until_shown(reactivesearch, "#results .result", [hit["_id"] for hit in hits])
    prices = [float(p) for p in shown(reactivesearch, "#results .result .price", "price")]
    assert len(prices) > 1 and all(100 <= p <= 200 for p in prices)


def test_reactivesearch_second_page_continues_the_first(reactivesearch, frontends_server):
    first_page = reactivesearch_search(reactivesearch)
    with reactivesearch.expect_request(executes_results) as sent:
        reactivesearch.locator(".pages a", has_text=re.compile(r"^2$")).click()
    wait_until_changed(reactivesearch, "#results .result", first_page)
    results = sent_query(sent.value, "results")
    assert (results["from"], results["size"]) == (5, 5)
    second_page = shown(reactivesearch, "#results .result")
    assert second_page == [hit["_id"] for hit in replayed_results(frontends_server, sent.value)["hits"]["hits"]]
    assert not set(second_page) & set(first_page)


def test_reactivesearch_sort_by_price_orders_the_hits_cheapest_first(reactivesearch, frontends_server):
    first_page = reactivesearch_search(reactivesearch)
    with reactivesearch.expect_request(executes_results) as sent:
        reactivesearch.select_option(".sort", label="price, lowest first")
    wait_until_changed(reactivesearch, "#results .result", first_page)
    assert sent_query(sent.value, "results")["sortBy"] == "asc"
    prices = [float(p) for p in shown(reactivesearch, "#results .result .price", "price")]
    assert len(prices) > 1 and prices == sorted(prices)
    answer = replayed_results(frontends_server, sent.value)
    assert [hit["_source"]["price"] for hit in answer["hits"]["hits"]] == prices
