"""Screenshot of the comparison page at / for the docs (docs/img/web_page.png).

    python benchmarks/screenshot_web.py [--query "oak dining table"] [--out docs/img/web_page.png]

Generates a small catalog, indexes it with the packaged MiniLM (a small
catalog, so a few seconds on a CPU; real semantics make the BM25 and hybrid
columns differ the way they do in a shop), serves the app on a free local
port, searches in Debian's Chromium (apt-get install chromium) through
Playwright, opens the top result's explanation and saves the PNG.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import threading
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from playwright.sync_api import sync_playwright  # noqa: E402
from werkzeug.serving import make_server  # noqa: E402

from search_rerank.core.settings import PACKAGED_MINILM, Settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig, generate  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.indexing.indexes import build_index  # noqa: E402
from search_rerank.serving import create_app  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--query", default="oak dining table")
    ap.add_argument("--products", type=int, default=300)
    ap.add_argument("--model", default=PACKAGED_MINILM, help="bi-encoder: a path, a hub name or the packaged MiniLM")
    ap.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser"))
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "img" / "web_page.png")
    args = ap.parse_args()
    if not args.chromium:
        sys.exit("chromium not found: apt-get install -y --no-install-recommends chromium, or pass --chromium PATH")
    with tempfile.TemporaryDirectory(prefix="web-shot-") as tmp:
        catalog = Path(tmp) / "catalog"
        generate(catalog, GeneratorConfig(products=args.products, queries=10, seed=7, workers=1), progress=False)
        settings = Settings(index_dir=Path(tmp) / "idx", dense={"model": args.model, "device": "cpu"})
        build_index(iter_catalog(catalog), settings, progress=False)
        server = make_server("127.0.0.1", 0, create_app(settings), threaded=True)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        try:
            shoot(f"http://127.0.0.1:{server.server_port}", args)
        finally:
            server.shutdown()
    print(f"wrote {args.out}")


def shoot(url: str, args: argparse.Namespace) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=args.chromium)
        page = browser.new_page(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
        page.goto(url)
        page.fill("#query", args.query)
        page.press("#query", "Enter")
        page.locator('.column[data-stage="final"] .result').first.wait_for()
        page.locator('.column[data-stage="final"] .result').first.click()
        args.out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(args.out))
        browser.close()


if __name__ == "__main__":
    main()
