import base64
import copy
import json
import re
import shutil

import pytest

from search_rerank.evaluation.tune import tune
from search_rerank.evaluation.tuning_report import render_html, write_report
from search_rerank.indexing.indexes import open_pipeline

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def result(hybrid_settings, dataset):
    pipeline = open_pipeline(hybrid_settings)
    try:
        return tune(pipeline, *dataset.split("dev"), trials=8, seed=4).to_json()
    finally:
        pipeline.close()


def embedded_images(page: str) -> list[bytes]:
    return [base64.b64decode(data) for data in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_report_embeds_the_parameter_pareto_and_per_query_plots_as_png(result):
    images = embedded_images(render_html(result))
    assert len(images) == 3 and all(image.startswith(PNG) for image in images)


def test_report_states_the_significance_result(result):
    page = render_html(result)
    assert f"{result['significance']['p_value']:.4f}" in page
    assert "not significant" in page or "significant" in page


def test_report_escapes_query_text(result):
    hostile = copy.deepcopy(result)
    hostile["per_query"][0].update(query="<script>alert(1)</script>", delta=0.5)
    page = render_html(hostile)
    assert "<script>" not in page and "&lt;script&gt;" in page


def test_report_json_is_the_result_it_was_drawn_from(result, tmp_path):
    _, data = write_report(result, tmp_path)
    assert json.loads(data.read_text()) == json.loads(json.dumps(result))


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)")
def test_report_renders_in_chromium_with_every_image_loaded_and_no_console_errors(result, tmp_path, playwright):
    # pytest-playwright's session-wide Playwright, not a sync_playwright() of our own: a second one in the same
    # process (after the browser tests, as pytest-xdist may order them) refuses to start inside the first one's loop.
    page_file, _ = write_report(result, tmp_path)
    errors = []
    browser = playwright.chromium.launch(executable_path=CHROMIUM)
    try:
        page = browser.new_page()
        page.on("console", lambda message: message.type == "error" and errors.append(message.text))
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(page_file.as_uri())
        loaded = page.eval_on_selector_all("img", "images => images.map(i => i.complete && i.naturalWidth > 0)")
        heading = page.text_content("h1")
    finally:
        browser.close()
    assert loaded == [True, True, True]
    assert heading == "Tuning report"
    assert errors == []


def test_report_says_each_kind_of_code_querys_share_and_why_it_moved_or_stayed(result):
    page = render_html(result)
    for name, choice in result["code_weights"].items():
        assert f"fusion.{name}" in page and choice["reason"] in page
