"""The real service on a small embedded index, for the bad-input, UBI and leak tests of tests/security.

Plain functions rather than fixtures, so that each test module declares its
own (module-scoped, uniquely named) fixtures and tests/security needs no
conftest shared with the other suites there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from flask import Flask

from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.settings import Settings
from search_rerank.data.generate import GeneratorConfig, generate
from search_rerank.data.loaders import iter_catalog
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app


def small_index(root: Path, tiny_bert_dir: Path) -> Settings:
    """Settings of a freshly built index of 80 generated products (tantivy and the tiny random encoder)."""
    generate(root / "catalog", GeneratorConfig(products=80, queries=5, seed=11, workers=1), progress=False)
    settings = Settings(
        index_dir=root / "idx",
        dense={"model": str(tiny_bert_dir), "device": "cpu", "candidates": 20},
        lexical={"candidates": 20},
    )
    build_index(iter_catalog(root / "catalog"), settings, progress=False)
    return settings


def small_app(settings: Settings, **service: Any) -> tuple[Flask, SearchPipeline]:
    """The app on ``settings`` with these ``service`` settings; the caller closes the pipeline."""
    settings = settings.model_copy(update={"service": settings.service.model_copy(update=service)})
    pipeline = open_pipeline(settings)
    return create_app(settings, pipeline), pipeline


def deep_json(levels: int, leaf: str = "1") -> str:
    """``levels`` nested arrays around ``leaf``, as text: json.dumps itself would recurse that deep."""
    return "[" * levels + leaf + "]" * levels
