"""A live server for the browser tests: the real app over HTTP, on a small generated catalog.

The catalog has one extra product whose text is markup, so that the page's
escaping is tested against what an attacker would put in a product feed.
Chromium is Debian's (``apt-get install chromium``), driven by Playwright;
without it the browser tests skip, saying so.
"""

from __future__ import annotations

import shutil

import pytest
from live_server import served

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.serving import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
MARKUP = Product(
    id="markup-1",
    title='<img src=x onerror="document.body.dataset.pwned=1">Zebra lamp',
    brand="<b>Bold</b>",
    category="Lighting > Lamps",
    price=12.5,
)


@pytest.fixture(scope="session")
def markup_product() -> Product:
    return MARKUP


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory, built_index, tiny_bert_dir) -> Settings:
    root = tmp_path_factory.mktemp("web")
    return built_index(
        products=300,
        queries=30,
        seed=5,
        root=root,
        extra=[MARKUP],
        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40},
        lexical={"candidates": 40},
        service={"ubi_log_path": root / "ubi" / "ubi.ndjson"},
    ).settings


@pytest.fixture(scope="session")
def live_server(web_settings):
    with served(create_app(web_settings)) as url:
        yield url


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args):
    """pytest-playwright's launch arguments, pointed at the system's Chromium."""
    if CHROMIUM is None:
        pytest.skip("chromium is not installed (Debian: apt-get install -y --no-install-recommends chromium)")
    return {**browser_type_launch_args, "executable_path": CHROMIUM}
