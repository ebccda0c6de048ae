"""The comparison page at /, in a real headless Chromium: three rankings side by side, badges, explanations, filters."""

import json
import os
import time

import pytest
import requests

pytest.importorskip("pytest_playwright", reason="pytest-playwright is not installed (pip install -e '.[dev]')")
from playwright.sync_api import Page, expect  # noqa: E402

COLUMNS = ("lexical", "fusion", "final")


def api_search(live_server, query, **filters):
    body = {"query": query, "size": 10, "stages": True, "explain": True, "filters": filters}
    return requests.post(f"{live_server}/search", json=body, timeout=30).json()


def search_on_page(page: Page, live_server, query, **fields):
    if page.url != f"{live_server}/":
        page.goto(live_server)
    page.fill("#query", query)
    for field, value in fields.items():
        page.fill(f"#{field}", value)
    page.press("#query", "Enter")


def results(page: Page, stage):
    return page.locator(f'.column[data-stage="{stage}"] .result')


def wait_for_ids(page: Page, stage, ids):
    """Until the column lists exactly ``ids``, in order (a timeout fails the test)."""
    page.wait_for_function(
        "([selector, ids]) => JSON.stringify([...document.querySelectorAll(selector)].map(e => e.dataset.id))"
        " === JSON.stringify(ids)",
        arg=[f'.column[data-stage="{stage}"] .result', ids],
        timeout=15_000,
    )


def test_a_search_fills_the_three_columns_with_each_stages_ranking(page, live_server):
    expected = api_search(live_server, "oak table")["stages"]
    search_on_page(page, live_server, "oak table")
    for stage in COLUMNS:
        wait_for_ids(page, stage, expected[stage])
    assert all(len(expected[stage]) == 10 for stage in COLUMNS)
    assert expected["lexical"] != expected["final"]


def test_long_tail_badges_mark_exactly_the_long_tail_products(page, live_server):
    body = api_search(live_server, "lamp")
    search_on_page(page, live_server, "lamp")
    wait_for_ids(page, "final", body["stages"]["final"])
    badged = results(page, "final").filter(has=page.locator(".badge.long-tail"))
    shown = badged.evaluate_all("items => items.map(i => i.dataset.id)")
    long_tail = [pid for pid in body["stages"]["final"] if body["stage_products"][pid]["long_tail"]]
    assert shown == long_tail and long_tail


def test_clicking_a_result_shows_its_explanation(page, live_server):
    body = api_search(live_server, "sofa")
    search_on_page(page, live_server, "sofa")
    wait_for_ids(page, "final", body["stages"]["final"])
    first = results(page, "final").first
    explanation = first.locator(".explanation")
    expect(explanation).to_be_hidden()
    first.click()
    expect(explanation).to_be_visible()
    expect(explanation).to_contain_text("fused")
    final = body["stage_products"][body["stages"]["final"][0]]["explanation"]["final"]
    expect(explanation).to_contain_text(f"{final:.4f}")


def test_a_brand_filter_narrows_the_results_to_that_brand(page, live_server):
    unfiltered = api_search(live_server, "lamp")
    brand = unfiltered["hits"][0]["product"]["brand"]
    filtered = api_search(live_server, "lamp", brand=brand)
    assert filtered["total"] < unfiltered["total"]
    search_on_page(page, live_server, "lamp")
    wait_for_ids(page, "final", unfiltered["stages"]["final"])
    search_on_page(page, live_server, "lamp", brand=brand)
    wait_for_ids(page, "final", filtered["stages"]["final"])
    facts = results(page, "final").locator(".facts").all_text_contents()
    assert facts and all(text.startswith(brand) for text in facts)


def test_product_text_is_shown_as_text_never_run_as_markup(page, live_server, markup_product):
    search_on_page(page, live_server, "zebra lamp", brand=markup_product.brand)
    wait_for_ids(page, "final", [markup_product.id])
    item = results(page, "final").first
    expect(item.locator(".title")).to_have_text(markup_product.title)
    expect(item.locator(".facts")).to_contain_text(markup_product.brand)
    assert page.locator(".result img, .result b").count() == 0
    assert page.evaluate("document.body.dataset.pwned") is None


def test_the_page_allows_no_inline_script(live_server):
    policy = requests.get(live_server, timeout=10).headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy


def test_a_search_and_a_click_on_the_page_are_logged_as_ubi_records(page, live_server, web_settings):
    search_on_page(page, live_server, "walnut desk")
    expect(results(page, "final")).to_have_count(10)
    clicked = results(page, "final").first
    clicked.click()
    log = web_settings.service.ubi_log_path.with_name(f"ubi.{os.getpid()}.ndjson")
    # The page sends the impressions and the click as two requests, which may land in either order: wait for both.
    deadline = time.monotonic() + 120
    while True:
        records = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
        queries = [r for r in records if r.get("user_query") == "walnut desk" and "action_name" not in r]
        ids = {r["query_id"] for r in queries}
        events = [r for r in records if r.get("query_id") in ids and "action_name" in r]
        objects = {
            action: [e["event_attributes"]["object"]["object_id"] for e in events if e["action_name"] == action]
            for action in ("impression", "click")
        }
        shown = queries[0]["query_response_hit_ids"] if queries else []
        if (objects["click"] and len(objects["impression"]) >= len(shown) > 0) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    [query] = queries
    impressions, clicks = objects["impression"], objects["click"]
    assert impressions == query["query_response_hit_ids"]
    assert clicks == [clicked.get_attribute("data-id")]


def test_opening_a_final_result_lists_its_similar_products(page, live_server):
    body = api_search(live_server, "oak table")
    search_on_page(page, live_server, "oak table")
    wait_for_ids(page, "final", body["stages"]["final"])
    first = body["stages"]["final"][0]
    similar = requests.get(f"{live_server}/products/{first}/similar?size=5", timeout=30).json()
    results(page, "final").first.click()
    wait_for_ids(page, "related", [hit["id"] for hit in similar["hits"]])
