"""The on-disk index directory: build it, update it, open it as a pipeline.

A directory holds the lexical index, the dense index and the product store
built from one catalog, with a manifest of what built them. A full build
writes a staging directory next to the serving one and swaps it in by rename
only once everything is written, so a failed or killed build leaves the
serving index untouched. With an Elasticsearch or OpenSearch lexical leg the
lexical index lives on the cluster instead: a full build fills a new index
version and moves the alias to it (:mod:`.reindex`) once the whole build has
succeeded, just before the directory is swapped in.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from pathlib import Path
from typing import Iterable, Iterator

from tqdm import tqdm

from .dense import FaissRetriever
from .encoder import BiEncoder
from .errors import ConfigError
from .pipeline import SearchPipeline
from .product import Product
from .rerank import CrossEncoderReranker
from .retrieval import DENSE, LEXICAL, Retriever
from .settings import LexicalSettings, Settings
from .store import ProductStore
from .tantivy_backend import TantivyRetriever

LEXICAL_DIR, DENSE_DIR, STORE_FILE, MANIFEST = "lexical", "dense", "products.sqlite", "manifest.json"


@dataclass
class IndexReport:
    """What a build did and how fast each part went (docs/s per leg is a benchmark figure)."""

    products: int = 0
    deleted: int = 0
    seconds: dict[str, float] = field(default_factory=dict)

    def docs_per_second(self) -> dict[str, float]:
        return {part: self.products / s for part, s in self.seconds.items() if s > 0 and part != "total"}


def _batches(items: Iterable[Product], size: int) -> Iterator[list[Product]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def lexical_leg(root: Path, settings: LexicalSettings) -> Retriever:
    """The embedded index in ``root``, or the server index that ``settings`` name."""
    if settings.backend == "tantivy":
        return TantivyRetriever(root / LEXICAL_DIR, settings)
    from .es_backend import cluster_retriever  # the server clients load only when a server is configured

    return cluster_retriever(settings)


class _Writers:
    """The three stores an index directory holds, written in step.

    A full build with a server lexical leg writes a new index version
    (``reindexer``), moved behind the alias in :meth:`finish`.
    """

    def __init__(self, root: Path, settings: Settings, dense_exists: bool, full_build: bool = False):
        self.root = root
        self.store = ProductStore(root / STORE_FILE)
        self.reindexer = None
        if full_build and settings.lexical.backend != "tantivy":
            from .reindex import Reindexer

            self.reindexer = Reindexer(settings.lexical)
            self.lexical: Retriever = self.reindexer.start()
        else:
            self.lexical = lexical_leg(root, settings.lexical)
        self.dense: FaissRetriever | None = None
        if settings.dense.enabled:
            encoder = BiEncoder(settings.dense)
            self.dense = (
                FaissRetriever.load(root / DENSE_DIR, encoder, settings.dense)
                if dense_exists else FaissRetriever(encoder, settings.dense)
            )

    def write(self, products: Iterable[Product], report: IndexReport, batch_size: int, progress: bool) -> None:
        bar = tqdm(desc="index", unit="doc", disable=not progress)
        for batch in _batches(products, batch_size):
            self._timed(report, "store", lambda: self.store.add(batch))
            self._timed(report, LEXICAL, lambda: self.lexical.add(batch))
            if self.dense is not None:
                self._timed(report, DENSE, lambda: self.dense.add(batch))
            report.products += len(batch)
            bar.update(len(batch))
        bar.close()

    def delete(self, product_ids: list[str], report: IndexReport) -> None:
        report.deleted += self.store.delete(product_ids)
        self.lexical.delete(product_ids)
        if self.dense is not None:
            self.dense.delete(product_ids)

    def finish(self, settings: Settings, report: IndexReport) -> None:
        self._timed(report, "store", self.store.refresh_popularity)
        if self.dense is not None:
            self._timed(report, DENSE, lambda: self.dense.save(self.root / DENSE_DIR))
        if self.reindexer is not None:
            # Last, once everything else is written: searches move to the new version now.
            self.reindexer.check(self.store.count(), None)
            self.reindexer.swap()
            self.reindexer.prune()
        manifest = {
            "built": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "products": self.store.count(),
            "dense_model": settings.dense.model if settings.dense.enabled else None,
            # JSON mode: paths as text, and passwords and API keys masked.
            "lexical": settings.lexical.model_dump(mode="json"),
            "dense": settings.dense.model_dump(mode="json"),
        }
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")

    @staticmethod
    def _timed(report: IndexReport, part: str, fn) -> None:
        started = time.perf_counter()
        fn()
        report.seconds[part] = report.seconds.get(part, 0.0) + time.perf_counter() - started


def build_index(products: Iterable[Product], settings: Settings, *, batch_size: int = 2048,
                progress: bool = True) -> IndexReport:
    """Index a whole catalog into ``settings.index_dir``, replacing what is there only on success."""
    target = Path(settings.index_dir)
    staging = target.with_name(f"{target.name}.building-{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    report = IndexReport()
    started = time.perf_counter()
    writers = None
    try:
        writers = _Writers(staging, settings, dense_exists=False, full_build=True)
        writers.write(products, report, batch_size, progress)
        if report.products == 0:
            raise ConfigError("the catalog is empty: nothing to index")
        writers.finish(settings, report)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        if writers is not None and writers.reindexer is not None:
            writers.reindexer.abandon()
        raise
    _swap_in(staging, target)
    report.seconds["total"] = time.perf_counter() - started
    return report


def _swap_in(staging: Path, target: Path) -> None:
    """Rename the new directory into place; the old one is removed only after."""
    retired = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def update_index(products: Iterable[Product], delete_ids: Iterable[str], settings: Settings, *,
                 batch_size: int = 2048, progress: bool = True) -> IndexReport:
    """Upsert changed products and remove deleted ones in place (popularity recomputed after)."""
    root = _existing(settings)
    writers = _Writers(root, settings, dense_exists=(root / DENSE_DIR).exists())
    report = IndexReport()
    started = time.perf_counter()
    writers.delete(list(delete_ids), report)
    writers.write(products, report, batch_size, progress)
    writers.finish(settings, report)
    report.seconds["total"] = time.perf_counter() - started
    return report


def _existing(settings: Settings) -> Path:
    root = Path(settings.index_dir)
    if not (root / MANIFEST).exists():
        raise ConfigError(f"no index at {root}: build one with `search-rerank index --catalog PATH`")
    return root


def open_pipeline(settings: Settings) -> SearchPipeline:
    """Load the indexes (and reranker, if one is configured) that ``settings`` point at."""
    root = _existing(settings)
    legs: dict[str, Retriever] = {LEXICAL: lexical_leg(root, settings.lexical)}
    if settings.dense.enabled:
        if not (root / DENSE_DIR).exists():
            raise ConfigError(f"{root} has no dense index; rebuild it with the dense leg enabled, "
                              "or set dense.enabled = false")
        legs[DENSE] = FaissRetriever.load(root / DENSE_DIR, BiEncoder(settings.dense), settings.dense)
    reranker = CrossEncoderReranker(settings.rerank) if settings.rerank.model is not None else None
    return SearchPipeline(settings, legs, ProductStore(root / STORE_FILE), reranker)


def read_manifest(settings: Settings) -> dict:
    return json.loads((_existing(settings) / MANIFEST).read_text(encoding="utf-8"))

