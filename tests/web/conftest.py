"""A live server for the browser tests: the real app over HTTP, on a small generated catalog.

The catalog has one extra product whose text is markup, so that the page's
escaping is tested against what an attacker would put in a product feed.
The front-end pages are served on both backends (``frontends_server``): the
embedded tantivy index, and an OpenSearch-compatible cluster (osmem-server,
see ``tests/servers.py``) holding the same catalog, with the Query DSL
delegated to it; the dense leg is the same FAISS index on both.
Chromium is Debian's (``apt-get install chromium``), driven by Playwright;
without it the browser tests skip, saying so.
"""

from __future__ import annotations

import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
from live_server import served
from werkzeug.middleware.shared_data import SharedDataMiddleware

from search_rerank.core.product import Product
from search_rerank.core.settings import Settings
from search_rerank.serving import create_app

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FRONTEND = Path(__file__).resolve().parents[2] / "frontend"
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


def web_index(built_index, root: Path, tiny_bert_dir: Path, lexical: dict[str, Any]) -> Settings:
    """The web tests' catalog (300 generated products and MARKUP) built in ``root``, its lexical leg ``lexical``."""
    return built_index(
        products=300,
        queries=30,
        seed=5,
        root=root,
        extra=[MARKUP],
        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 40},
        lexical={"candidates": 40, **lexical},
        service={"ubi_log_path": root / "ubi" / "ubi.ndjson"},
    ).settings


@pytest.fixture(scope="session")
def web_settings(tmp_path_factory, built_index, tiny_bert_dir) -> Settings:
    return web_index(built_index, tmp_path_factory.mktemp("web"), tiny_bert_dir, {})


@pytest.fixture(scope="session")
def cluster_web_settings(tmp_path_factory, built_index, tiny_bert_dir, osmem_server_url) -> Settings:
    """The same catalog with its lexical leg in a fresh index on osmem-server; the front ends still name the
    index ``products`` (``service.index_names``), as they would a shop's previous Elasticsearch index."""
    lexical = {
        "backend": "opensearch",
        "url": osmem_server_url,
        "index": f"web-{uuid.uuid4().hex[:12]}",
        "request_timeout_s": 10,
        "retries": 1,
    }
    return web_index(built_index, tmp_path_factory.mktemp("web-cluster"), tiny_bert_dir, lexical)


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


@pytest.fixture(scope="session")
def frontend_dist() -> Path:
    """frontend/dist, bundled now from the sources by esbuild (``npm ci`` in frontend/ installs it: CI does, and
    ``make frontends``); without node or the installed packages, or when the bundle fails, the tests skip saying why."""
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the front-end pages cannot be bundled")
    if not (FRONTEND / "node_modules" / "esbuild").is_dir():
        pytest.skip("the front ends' npm packages are not installed (make frontends, or npm ci in frontend/)")
    built = subprocess.run([node, "build.mjs"], cwd=FRONTEND, capture_output=True, text=True, timeout=300)
    if built.returncode != 0:
        pytest.skip(f"bundling the front ends failed: {built.stderr[-2000:]}")
    return FRONTEND / "dist"


@pytest.fixture(scope="session", params=["embedded", "opensearch"])
def frontends_server(request, frontend_dist):
    """The app with the bundled front-end pages beside it under /frontends/, so that they call its
    Elasticsearch-compatible API from the same origin, as a shop's page calls its own proxy; once on the
    embedded backend and once on a cluster (the test ids name which)."""
    settings = request.getfixturevalue("web_settings" if request.param == "embedded" else "cluster_web_settings")
    app = SharedDataMiddleware(create_app(settings), {"/frontends": str(frontend_dist)})
    with served(app) as url:
        yield url
