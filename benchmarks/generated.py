"""The generated benchmark that several scripts share: made once, indexed once, cached under ``--work``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from report import ROOT

from search_rerank.core.settings import Settings
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, lexical_index_current
from search_rerank.indexing.versions import IndexVersions


def dataset_parser(doc: str, pooled: bool = True) -> argparse.ArgumentParser:
    """The options every script on a generated dataset takes; ``pooled=False`` for a script whose profiles
    fix their own number of pooled judgments."""
    ap = argparse.ArgumentParser(description=doc.strip().split("\n")[0])
    ap.add_argument("--products", type=int, default=50_000)
    ap.add_argument("--queries", type=int, default=3_000)
    ap.add_argument("--seed", type=int, default=13)
    if pooled:
        ap.add_argument("--pooled", type=int, default=5, help="sparse pooled judgments per query, written beside")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")
    return ap


def prepared(args: argparse.Namespace) -> tuple[Path, Settings]:
    """The generated dataset for these arguments and settings pointing at its index (models beside it)."""
    data = cached_dataset(
        args.work, GeneratorConfig(products=args.products, queries=args.queries, seed=args.seed, pooled=args.pooled)
    )
    return data, Settings(index_dir=args.work / f"idx-{data.name}", models_dir=args.work / "models")


def cached_dataset(work: Path, config: GeneratorConfig) -> Path:
    profile = "" if config.profile == "easy" else f"{config.profile}-"
    out = work / f"gen-{profile}{config.products}-{config.queries}-{config.seed}"
    manifest = out / "manifest.json"
    if not manifest.exists() or json.loads(manifest.read_text())["config"] != json.loads(json.dumps(vars(config))):
        generate(out, config)
    return out


def cached_index(data: Path, settings: Settings) -> dict:
    """Build once; the build's throughput is kept beside the index so a rerun can still report it. Built again
    when the cached index is not of this release's schema (a release of another schema built it: one of schema 4
    still opens, but is searched in its own words)."""
    report_file = Path(settings.index_dir) / "build-report.json"
    served = IndexVersions(settings.index_dir).serving_dir()
    if served is None or not lexical_index_current(served, settings.lexical):
        report_file.unlink(missing_ok=True)
    if not report_file.exists():
        report = build_index(iter_catalog(data / "corpus.jsonl"), settings)
        saved = {"products": report.products, "seconds": report.seconds, "docs_per_second": report.docs_per_second()}
        report_file.write_text(json.dumps(saved, indent=2))
    return json.loads(report_file.read_text())
