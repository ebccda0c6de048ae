"""The index directory: build a version of it, update it in place, roll it back, open it as a pipeline.

A directory holds versions (:mod:`.versions`), each the lexical index (for
the embedded backend), the dense index and the product store built from one
catalog, with a manifest. A full build writes a new version, checks it as it
will be served (every index holds the catalog, a product is found by its
title, the dense index answers) and only then swaps it in. With an
Elasticsearch or OpenSearch lexical leg the build also fills a new server
index (:mod:`.reindex`), and the swap moves the alias first and the version
pointer right after, moving the alias back if the pointer cannot be written,
so searches and the served version agree except for the moment between the
two. Older versions are kept (``keep``) so that a rollback moves both back
without a rebuild.

A build killed at any moment leaves the served version and the alias as they
were: the new version has no manifest and the new server index no alias yet.
The next build, update or rollback deletes those leftovers, and moves back an
alias that a kill between the two swaps left on an unserved index.

With ``dense.backend = "engine"`` the dense leg has no directory: each
product's vector is a field of its document in the server index
(:mod:`.engine_knn`), encoded once per batch and written in the same bulk
request, so the one alias swap serves both legs' new data.

An incremental update writes into the served version in place (the server
index through the alias), because copying a whole version to change a few
products would cost as much as a rebuild. The price: it is not atomic (a
killed update leaves the version part-updated, and rerunning it finishes the
job, since upserts and deletions can be repeated), and the kept older
versions do not get the changes, so a rollback also drops them.
"""

from __future__ import annotations

import json
import logging
import re
import sqlite3
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm import tqdm

from ..backends.encoder import BiEncoder, resolve_encoder, resolve_model_path
from ..backends.faiss_index import FaissRetriever
from ..backends.gpu_rerank import GpuReranker, on_gpu
from ..backends.tantivy_index import SCHEMA_VERSION, TantivyRetriever, opened_schema_version, reports_os_error
from ..core.breaker import GuardedReranker, Guards
from ..core.candidate import Candidate
from ..core.catalog_fields import CatalogFields
from ..core.errors import ConfigError, StageError
from ..core.learned_rank import load_ranker
from ..core.model_card import resolve_model
from ..core.pipeline import SearchPipeline
from ..core.pretokenised import STORED_MAX_LENGTH, TOKENS_DIR, PretokenisedTexts, TokenWriter, tokenizer_identity
from ..core.product import Product
from ..core.rerank import DEFAULT_BLEND, CrossEncoderReranker, make_reranker
from ..core.retrieval import DENSE, LEXICAL, Retriever
from ..core.settings import PACKAGED_MINILM, SERVER_BACKENDS, LexicalSettings, Settings
from ..core.store import ProductStore
from .versions import MANIFEST, IndexVersions, write_atomically

if TYPE_CHECKING:
    from ..backends.engine_knn import EngineKnnRetriever
    from .reindex import Reindexer

log = logging.getLogger(__name__)

LEXICAL_DIR, DENSE_DIR, STORE_FILE = "lexical", "dense", "products.sqlite"
DEFAULT_KEEP = 2
# The probe product must be among this many lexical hits for its own title.
PROBE_DEPTH = 100
_WORD = re.compile(r"[^\W_]+")


@dataclass
class IndexReport:
    """What a build did and how fast each part went (docs/s per leg is a benchmark figure)."""

    products: int = 0
    """Records written; an id repeated in the catalog is written again (its last record is the one kept)."""
    stored: int | None = None
    """Distinct products in a new version (None for an update): fewer than ``products`` when ids repeat."""
    deleted: int = 0
    not_found: list[str] = field(default_factory=list)
    """Ids named for deletion that no product of the index has (a typing slip, or a product deleted before)."""
    seconds: dict[str, float] = field(default_factory=dict)
    version: str | None = None
    lexical_index: str | None = None
    previous: str | None = None
    pruned: list[str] = field(default_factory=list)
    not_indexed: Counter[str] = field(default_factory=Counter)
    """Values of the catalog's own fields kept for display but not filtered, sorted or faceted, by field: a field
    the index does not type (new in an update, which a full build types; past ``MAX_FIELDS``; a build from products
    read as they come, without ``catalog``), or a value that is not its field's type (``"n/a"`` in a number's)."""
    sorted_by_first: Counter[str] = field(default_factory=Counter)
    """Products holding several values of a field the embedded index keeps no least and greatest of, by field: one of
    a value each in the build, several in an ``--incremental`` update (``CatalogFields.sorted_by_first``); a sort by
    it reads the first value each holds until a full build, which keeps them."""

    def docs_per_second(self) -> dict[str, float]:
        return {part: self.products / s for part, s in self.seconds.items() if s > 0 and part != "total"}


def _batches(items: Iterable[Product], size: int) -> Iterator[list[Product]]:
    it = iter(items)
    while batch := list(islice(it, size)):
        yield batch


def lexical_leg(
    root: Path,
    settings: LexicalSettings,
    index_extension: dict[str, Any] | None = None,
    catalog: CatalogFields | None = None,
) -> Retriever:
    """The embedded index in ``root``, or the server index that ``settings`` name.

    ``index_extension`` goes into server indexes this leg creates (the engine kNN vector field). ``catalog``: the
    catalog fields of an embedded index being built (an index opened reads its own).
    """
    if settings.backend == "tantivy":
        return TantivyRetriever(root / LEXICAL_DIR, settings, catalog)
    from ..backends.cluster import cluster_retriever  # the server clients load only when a server is configured

    return cluster_retriever(settings, index_extension=index_extension)


def lexical_index_current(root: Path, settings: LexicalSettings) -> bool:
    """Whether the embedded lexical index of the version in ``root`` opens and is of this release's schema version:
    one of version 4 opens and is served, in its own words, until the next build, but a benchmark or the demo
    builds it again to measure and show this release's words (folded, sizes spelled out, model codes)."""
    return settings.backend != "tantivy" or opened_schema_version(root / LEXICAL_DIR, settings) == SCHEMA_VERSION


def lexical_index_opens(root: Path, settings: LexicalSettings) -> bool:
    """Whether this release opens the embedded lexical index of the version in ``root`` (one built by a release
    of another schema does not: see tantivy_index.SCHEMA_VERSION); a server index is the cluster's, and is not
    tried here."""
    return settings.backend != "tantivy" or opened_schema_version(root / LEXICAL_DIR, settings) is not None


def _typed_fields(lexical: Retriever) -> CatalogFields:
    """The catalog fields a served lexical index types (its own: the embedded index's file, the cluster's mapping)."""
    from ..backends.cluster import ClusterRetriever  # the server clients load only when a server is configured

    return lexical.catalog if isinstance(lexical, TantivyRetriever | ClusterRetriever) else CatalogFields()


def _engine_knn(settings: Settings) -> bool:
    return settings.dense.enabled and settings.dense.backend == "engine"


def engine_knn_leg(lexical: Retriever, encoder: BiEncoder, settings: Settings) -> EngineKnnRetriever:
    from ..backends.engine_knn import EngineKnnRetriever  # loads the server clients, as lexical_leg does

    return EngineKnnRetriever(lexical, encoder, settings.dense)


def _index_extension(settings: Settings, encoder: BiEncoder | None) -> dict[str, Any] | None:
    """The vector field that new server indexes need when the dense leg is the engine's kNN."""
    if encoder is None or not _engine_knn(settings):
        return None
    from ..backends.mappings import vector_mapping

    return vector_mapping(settings.lexical.backend, encoder.dim, settings.dense)


class _Writers:
    """The stores a version holds, written in step."""

    def __init__(
        self,
        root: Path,
        settings: Settings,
        lexical: Retriever,
        dense_exists: bool,
        encoder: BiEncoder | None = None,
        catalog: CatalogFields | None = None,
    ):
        self.root = root
        self.catalog = CatalogFields() if catalog is None else catalog
        """The catalog fields the lexical index types, against which each product's values are counted."""
        self.ends_kept = isinstance(lexical, TantivyRetriever)
        """Whether sorts by a field of several values read the least and greatest kept beside it (the embedded
        index's; a cluster sorts by the values themselves)."""
        self.settings = settings
        self.store = ProductStore(root / STORE_FILE)
        self.lexical = lexical
        if encoder is None and settings.dense.enabled:
            encoder = dense_encoder(settings)
        self.encoder = encoder
        self.dense: FaissRetriever | None = None
        # Engine kNN: the vectors go into the lexical documents, so there is no dense index of our own.
        self.knn = engine_knn_leg(lexical, encoder, settings) if encoder is not None and _engine_knn(settings) else None
        if self.encoder is not None and self.knn is None:
            self.dense = (
                FaissRetriever.load(root / DENSE_DIR, self.encoder, settings.dense)
                if dense_exists
                else FaissRetriever(self.encoder, settings.dense)
            )
        self.probe: Product | None = None
        # A fresh version's writer sees every product; an update's keeps the ids stored for the others.
        fresh = self.store.count() == 0
        self.tokens = token_writer(settings, None if fresh else PretokenisedTexts.open(root / TOKENS_DIR), fresh)

    def write(self, products: Iterable[Product], report: IndexReport, batch_size: int, progress: bool) -> None:
        bar = tqdm(desc="index", unit="doc", disable=not progress)
        for batch in _batches(products, batch_size):
            self._timed(report, "store", lambda: self.store.add(batch))
            for product in batch:
                report.not_indexed.update(self.catalog.left_out(product))
                if self.ends_kept:
                    report.sorted_by_first.update(self.catalog.sorted_by_first(product))
            if self.knn is not None:  # each batch encoded once, written with its documents
                fields = self._timed(report, DENSE, lambda: self.knn.vector_fields(batch))
                self._timed(report, LEXICAL, lambda: self.knn.cluster.add(batch, extra=fields))
            else:
                self._timed(report, LEXICAL, lambda: self.lexical.add(batch))
            if self.dense is not None:
                self._timed(report, DENSE, lambda: self.dense.add(batch))
            if self.tokens is not None:
                self._timed(report, "tokens", lambda: self.tokens.add(batch))
            # A product to find by its title once built; check() reads it back as its last record was indexed.
            self.probe = next((p for p in reversed(batch) if _searchable(p.title)), self.probe)
            report.products += len(batch)
            bar.update(len(batch))
            log.info("%s: %d products written", self.root, report.products)
        bar.close()

    def _titled_alike(self, found: list[Candidate], title: str) -> bool:
        """Whether the lexical leg's first :data:`PROBE_DEPTH` hits for a title are all products of that very title
        (a catalogue's hundred "Replacement Filter"s tie, and any of them may come first): the probe is then among
        equals, and not finding it says nothing about the index."""
        held = self.store.get([c.product_id for c in found])
        return len(found) == PROBE_DEPTH and all(p.title == title for p in held.values())

    def delete(self, product_ids: list[str], report: IndexReport) -> None:
        held = self.store.records(product_ids).keys()  # their stored text: nothing to validate
        report.not_found += [pid for pid in dict.fromkeys(product_ids) if pid not in held]
        report.deleted += self.store.delete(product_ids)
        self.lexical.delete(product_ids)
        if self.dense is not None:
            self.dense.delete(product_ids)
        if self.tokens is not None:
            self.tokens.delete(product_ids)

    def save(self, report: IndexReport) -> None:
        self._timed(report, "store", self.store.refresh_popularity)
        if self.tokens is not None:
            tokens = self.tokens
            if not tokens.complete:  # an update where the stored ids are missing or from another tokenizer
                self._timed(report, "tokens", lambda: tokens.add(self.store))
            self._timed(report, "tokens", lambda: tokens.save(self.root / TOKENS_DIR))
        if self.dense is not None:
            self._timed(report, DENSE, lambda: self.dense.save(self.root / DENSE_DIR))

    def check(self) -> None:
        """Open the new version as it will be served, and refuse it unless it holds and finds the catalog."""
        expected = self.store.count()
        if expected == 0:
            raise ConfigError("the catalog is empty: nothing to index")
        legs: dict[str, Retriever] = {
            LEXICAL: lexical_leg(self.root, self.settings.lexical)
            if self.settings.lexical.backend == "tantivy"
            else self.lexical,
        }
        if self.knn is not None:
            self.knn.warm_up()  # the new index maps the vector field with the encoder's dimension
            legs[DENSE] = self.knn
        elif self.encoder is not None:
            legs[DENSE] = FaissRetriever.load(self.root / DENSE_DIR, self.encoder, self.settings.dense)
        for name, leg in legs.items():
            if (found := leg.count()) != expected:
                raise StageError(
                    name,
                    f"the new version's {name} index holds {found} documents, expected {expected}; nothing was swapped",
                )
        probe = self.store.get([self.probe.id]).get(self.probe.id) if self.probe is not None else None
        if probe is None or not _searchable(probe.title):
            return
        hits = legs[LEXICAL].search(probe.title, PROBE_DEPTH)
        if not any(c.product_id == probe.id for c in hits) and not self._titled_alike(hits, probe.title):
            raise StageError(
                LEXICAL,
                f"the new version does not find product {probe.id!r} by its title {probe.title!r}; nothing was swapped",
            )
        # The engine's kNN is not probed: its count says every document has a vector, and the engine
        # builds and searches the graph itself.
        if DENSE in legs and self.knn is None and not legs[DENSE].search(probe.title, 1):
            raise StageError(
                DENSE, f"the new version's dense index answers nothing for {probe.title!r}; nothing was swapped"
            )

    @staticmethod
    def _timed(report: IndexReport, part: str, fn):
        started = time.perf_counter()
        result = fn()
        report.seconds[part] = report.seconds.get(part, 0.0) + time.perf_counter() - started
        return result


def _searchable(title: str) -> bool:
    """Whether ``title`` has a word every lexical leg keeps: letters or digits, 2 to 39 bytes.

    Symbols and emoji ("★★★★★", "-") are no word to any analyzer, and tantivy drops a token of 40 bytes or
    more (14 Hangul syllables without a space); a build must not be refused because its probe has no word.
    A run of Chinese or Japanese counts as one word here, though both analyzers cut it into smaller ones: a
    long one is left unprobed, never refused.
    """
    return any(2 <= len(word.encode("utf-8")) < 40 for word in _WORD.findall(title))


def token_writer(settings: Settings, stored: PretokenisedTexts | None, fresh: bool) -> TokenWriter | None:
    """Pre-tokenises product texts for the configured reranker's tokenizer, else the packaged MiniLM's.

    A reranker trained here starts from the packaged MiniLM and keeps its
    tokenizer, so ids stored for it serve the reranker configured later;
    serving checks that (see :mod:`..core.pretokenised`). None, with a
    warning, when the tokenizer cannot be loaded: the reranker then
    tokenises per request, as it would without stored ids.
    """
    if not settings.rerank.pretokenise:
        return None
    name = PACKAGED_MINILM if settings.rerank.model is None else settings.rerank.model
    try:
        if settings.rerank.model is None:
            path = resolve_model_path(PACKAGED_MINILM)
        elif settings.rerank.require_card:
            path, _ = resolve_model(name, settings.models_dir, "reranker")
        else:
            path = name
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=Path(path).is_dir())
    except (ConfigError, OSError, ValueError) as exc:
        log.warning("not pre-tokenising product texts: cannot load the tokenizer of %r (%s)", name, exc)
        return None
    identity = tokenizer_identity(tokenizer, name, STORED_MAX_LENGTH)
    if identity is None:
        log.warning("not pre-tokenising product texts: the tokenizer of %r is not a fast tokenizer", name)
        return None
    return TokenWriter(tokenizer, identity, stored, fresh)


def _manifest(settings: Settings, encoder: BiEncoder | None, products: int, **fields: Any) -> str:
    manifest = {
        **fields,
        "products": products,
        "dense_model": encoder.model_name if encoder is not None else None,
        "dense_card_sha256": encoder.card_sha256 if encoder is not None else None,
        # JSON mode: paths as text, and passwords and API keys masked.
        "lexical": settings.lexical.model_dump(mode="json"),
        "dense": settings.dense.model_dump(mode="json"),
    }
    return json.dumps(manifest, indent=2) + "\n"


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def build_index(
    products: Iterable[Product],
    settings: Settings,
    *,
    batch_size: int = 2048,
    progress: bool = True,
    keep: int = DEFAULT_KEEP,
    catalog: CatalogFields | None = None,
) -> IndexReport:
    """Index a whole catalog as a new version of ``settings.index_dir`` and serve it; on any failure, change nothing.

    ``keep`` older versions stay for :func:`rollback_index`. ``catalog``: the catalog's own fields to index, typed
    (:func:`~search_rerank.data.loaders.catalog_fields` reads them from a catalog file); where it is not given,
    those of ``products`` when they are a list, none when they are read as they come (their fields are then
    kept for display only), since a field's type is decided from every value of it before anything is written.
    """
    if catalog is None:
        catalog = CatalogFields.of_listed(products, settings.lexical.catalog_field_types)
    if keep < 0:
        raise ConfigError(f"keep={keep}: the number of old versions to keep must be >= 0")
    versions = IndexVersions(settings.index_dir)
    report = IndexReport()
    started = time.perf_counter()
    with versions.locked():
        encoder = dense_encoder(settings) if settings.dense.enabled else None
        reindexer = _reindexer(settings, _index_extension(settings, encoder))
        _recover(versions, reindexer)
        name, root = versions.create()
        report.version = name
        try:
            lexical: Retriever
            if reindexer is not None:
                cluster = reindexer.start(name, catalog)
                report.lexical_index = cluster.index
                lexical = cluster
            else:
                lexical = lexical_leg(root, settings.lexical, catalog=catalog)
            writers = _Writers(root, settings, lexical, dense_exists=False, encoder=encoder, catalog=catalog)
            writers.write(products, report, batch_size, progress)
            writers.save(report)
            writers.check()
            report.stored = writers.store.count()
            # Last: the manifest is what makes the version complete.
            write_atomically(
                root / MANIFEST,
                _manifest(
                    settings,
                    writers.encoder,
                    report.stored,
                    version=name,
                    built=_now(),
                    lexical_index=report.lexical_index,
                ),
            )
        except BaseException as exc:
            _discard(versions, name, reindexer, report.lexical_index)
            if not _cannot_write(exc):
                raise
            raise ConfigError(
                f"could not write the new version {root}: {exc}; nothing was swapped, {versions.root} serves what it "
                "served (free disk space or make the directory writable, then run it again)"
            ) from exc
        report.previous = _switch(versions, name, reindexer)
        report.pruned = _prune(versions, keep, reindexer)
    report.seconds["total"] = time.perf_counter() - started
    return report


def update_index(
    products: Iterable[Product],
    delete_ids: Iterable[str],
    settings: Settings,
    *,
    batch_size: int = 2048,
    progress: bool = True,
) -> IndexReport:
    """Upsert changed products and remove deleted ones in the served version, in place (popularity recomputed after).

    ``products`` are read in full before anything is written: a catalog file with a bad row halfway is
    refused while the served version is still as it was, not after the rows before it (and every deletion)
    went in. An update is the changed part of a catalog, so holding it in memory is cheap.
    """
    products = list(products)
    delete_ids = list(delete_ids)
    versions = IndexVersions(settings.index_dir)
    report = IndexReport()
    started = time.perf_counter()
    with versions.locked():
        _recover(versions, _reindexer(settings))
        root = _serving(versions)
        manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
        encoder = dense_encoder(settings) if settings.dense.enabled else None
        if encoder is not None and (_engine_knn(settings) or _built_backend(manifest) == "engine"):
            # Vectors go into the served index, which must have been built with the field, by this very encoder.
            _check_built_with(manifest, settings, root)
            _check_encoder(manifest, encoder, root)
        lexical = lexical_leg(root, settings.lexical, _index_extension(settings, encoder))
        if settings.lexical.backend == "tantivy":
            lexical.warm_up()  # an index of another schema version is refused here, before the store is written
        writers = _Writers(
            root, settings, lexical, (root / DENSE_DIR).exists(), encoder=encoder, catalog=_typed_fields(lexical)
        )
        if writers.dense is not None and writers.encoder is not None and (root / DENSE_DIR).exists():
            _check_encoder(manifest, writers.encoder, root)
        if delete_ids and not products and len(writers.store.records(delete_ids)) >= writers.store.count():
            # As a full build of an empty catalog is refused: the service would be left with nothing to find.
            raise ConfigError(
                f"the update deletes every product of the served version {root} and adds none, which would leave "
                "no product to search; nothing was changed (to serve another catalog, build it with "
                "`search-rerank reindex --catalog PATH`)"
            )
        try:
            writers.delete(delete_ids, report)
            writers.write(products, report, batch_size, progress)
            writers.save(report)
            write_atomically(
                root / MANIFEST,
                _manifest(
                    settings,
                    writers.encoder,
                    writers.store.count(),
                    **{**{k: manifest.get(k) for k in ("version", "built", "lexical_index")}, "updated": _now()},
                ),
            )
        except Exception as exc:
            if not _cannot_write(exc):
                raise
            raise ConfigError(
                f"could not write into the served version {root}: {exc}; it may be part-updated (free disk space "
                "or make the directory writable, then run the same update again, which finishes it)"
            ) from exc
        report.version, report.lexical_index = manifest.get("version"), manifest.get("lexical_index")
    report.seconds["total"] = time.perf_counter() - started
    return report


def rollback_index(settings: Settings) -> tuple[str, str]:
    """Serve the newest kept version older than the served one again (alias included); returns (from, to)."""
    versions = IndexVersions(settings.index_dir)
    with versions.locked():
        reindexer = _reindexer(settings)
        _recover(versions, reindexer)
        current = versions.current()
        if current is None:
            raise ConfigError(f"{versions.root} holds no versions: build one with `search-rerank index`")
        older = [name for name in versions.complete() if name < current]
        if not older:
            raise ConfigError(
                f"no version older than {current!r} is kept in {versions.versions_dir}: nothing to roll back to"
            )
        target = older[-1]
        if not lexical_index_opens(versions.path(target), settings.lexical):  # served, it would stop the service
            raise ConfigError(
                f"version {target!r} cannot be served by this release, so it stays unserved: a release of another "
                f"schema built its lexical index"
            )
        _switch(versions, target, reindexer)
        return current, target


def _reindexer(settings: Settings, index_extension: dict[str, Any] | None = None) -> Reindexer | None:
    if settings.lexical.backend == "tantivy":
        return None
    from ..backends.cluster import cluster_retriever
    from .reindex import Reindexer

    return Reindexer(settings.lexical, retriever=cluster_retriever(settings.lexical, index_extension))


def _recorded_indices(versions: IndexVersions) -> set[str]:
    recorded = (versions.manifest(name).get("lexical_index") for name in versions.complete())
    return {index for index in recorded if index is not None}


def _recover(versions: IndexVersions, reindexer: Reindexer | None) -> None:
    """Undo what a killed writer left: incomplete versions, unrecorded server indices, a stray alias.

    A pointer to no complete version (a version deleted by hand) is removed, so that a build can serve again.
    """
    left = versions.discard_incomplete()
    if left:
        log.warning("deleted incomplete version(s) %s of %s, left by a killed build", left, versions.root)
    try:
        versions.current()
    except ConfigError as exc:
        log.warning("%s; removing that pointer", exc)
        versions.forget_current()
    if reindexer is None:
        return
    current = versions.current()
    index = versions.manifest(current).get("lexical_index") if current is not None else None
    if index is not None and not reindexer.live.exists(index):
        log.warning("the served version %s records index %r, which is gone from the cluster", current, index)
    elif index is not None:
        moved_from = reindexer.point_to([index])
        if moved_from != [index]:
            log.warning(
                "alias %r selected %s, not %r of the served version %s (a build stopped between the "
                "two swaps); moved it back",
                reindexer.alias,
                moved_from,
                index,
                current,
            )
    dropped = reindexer.prune(_recorded_indices(versions))
    if dropped:
        log.warning("deleted server indices %s that no kept version records (left by a killed build)", dropped)


def _discard(versions: IndexVersions, name: str, reindexer: Reindexer | None, index: str | None) -> None:
    """Delete a version that failed, best effort: what is left here, the next writer deletes."""
    versions.remove(name)
    if reindexer is not None and index is not None:
        try:
            reindexer.abandon(index)
        except Exception as exc:  # the build's own error is the one to report
            log.warning("could not delete the failed build's index %r (%s); the next build will", index, exc)


def _switch(versions: IndexVersions, name: str, reindexer: Reindexer | None) -> str | None:
    """Serve version ``name``: the alias to its server index first, then the pointer; returns the version before."""
    previous = versions.current()
    index = versions.manifest(name).get("lexical_index")
    if (index is None) != (reindexer is None):
        built = "a server index" if index is not None else "the embedded lexical index"
        backend = "tantivy" if reindexer is None else reindexer.live.engine
        raise ConfigError(
            f"version {name!r} was built with {built}, but lexical.backend is {backend!r}; rebuild instead"
        )
    if reindexer is None or index is None:  # None together: the check above refused a mix
        versions.point_to(name)
        return previous
    before = reindexer.point_to([index])
    try:
        versions.point_to(name)
    except BaseException:
        reindexer.point_to(before)  # searches must keep agreeing with the served version
        raise
    return previous


def _prune(versions: IndexVersions, keep: int, reindexer: Reindexer | None) -> list[str]:
    pruned = versions.prune(keep)
    if reindexer is not None:
        reindexer.prune(_recorded_indices(versions))
    return pruned


def _cannot_write(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk or directory cannot take what was written (a full disk, a read-only
    directory), from any index: SQLite's and the OS's errors, and tantivy's (:func:`reports_os_error`: "Internal
    error: 'No space left on device (os error 28)'"), which went on as a bare error with no word of the version it
    left part-updated."""
    return isinstance(exc, (OSError, sqlite3.Error)) or reports_os_error(exc)


def _serving(versions: IndexVersions) -> Path:
    root = versions.serving_dir()
    if root is None:
        raise ConfigError(f"no index at {versions.root}: build one with `search-rerank index --catalog PATH`")
    return root


def _check_whole(root: Path, lexical: LexicalSettings) -> None:
    """Refuse a version whose files have gone (deleted by hand, a clean-up): opened, the product store and the
    embedded index each made an empty one in their place, and a reload swapped in a service answering nothing
    while it reported "reloaded"."""
    lost = [name for name in (MANIFEST, STORE_FILE) if not (root / name).is_file()]
    if lexical.backend == "tantivy" and not (root / LEXICAL_DIR / "meta.json").is_file():
        lost.append(LEXICAL_DIR)
    if lost:
        raise ConfigError(
            f"{root} has lost {', '.join(lost)}: rebuild it (search-rerank index), or roll back to a whole version"
        )


def open_pipeline(settings: Settings, guards: Guards | None = None, root: Path | None = None) -> SearchPipeline:
    """Load the served version's indexes (and reranker and ranker, if configured) that ``settings`` point at;
    the version at ``root`` instead, where given (a version of ``settings.index_dir``).

    With ``guards`` (the service's), the legs on a cluster and the reranker are called through their
    circuit breakers; the embedded indexes are local files, with nothing to break.
    """
    versions = IndexVersions(settings.index_dir)
    root = _serving(versions) if root is None else root
    _check_whole(root, settings.lexical)
    store = ProductStore(root / STORE_FILE, versions.hold(root))  # the version stays while the store reads it
    legs: dict[str, Retriever] = {LEXICAL: lexical_leg(root, settings.lexical)}
    manifest = json.loads((root / MANIFEST).read_text(encoding="utf-8"))
    if _engine_knn(settings):
        _check_built_with(manifest, settings, root)
        encoder = dense_encoder(settings)
        _check_encoder(manifest, encoder, root)
        legs[DENSE] = engine_knn_leg(legs[LEXICAL], encoder, settings)
    elif settings.dense.enabled:
        if _built_backend(manifest) == "engine":
            _check_built_with(manifest, settings, root)
        if not (root / DENSE_DIR).exists():
            raise ConfigError(
                f"{root} has no dense index; rebuild it with the dense leg enabled, or set dense.enabled = false"
            )
        encoder = dense_encoder(settings)
        _check_encoder(manifest, encoder, root)
        legs[DENSE] = FaissRetriever.load(root / DENSE_DIR, encoder, settings.dense)
    reranker: CrossEncoderReranker | GuardedReranker | None = (
        load_reranker(settings, PretokenisedTexts.open(root / TOKENS_DIR))
        if settings.rerank.model is not None
        else None
    )
    if guards is not None:
        remote: dict[str, bool] = {LEXICAL: settings.lexical.backend in SERVER_BACKENDS, DENSE: _engine_knn(settings)}
        legs = {name: guards.leg(leg) if remote[name] else leg for name, leg in legs.items()}
        reranker = guards.reranker(reranker) if reranker is not None else None
    ranker = load_ranker(settings) if settings.ltr.model is not None else None
    return SearchPipeline(settings, legs, store, reranker, ranker)


def dense_encoder(settings: Settings) -> BiEncoder:
    """The configured encoder, resolved by registry name or path, refused when its card forbids serving it."""
    return BiEncoder(settings.dense, resolve_encoder(settings.dense, settings.models_dir))


def _built_backend(manifest: dict) -> str | None:
    """Where the version's dense vectors are ("faiss" or "engine"), None when it was built without the dense leg."""
    if manifest.get("dense_model") is None:
        return None
    return manifest.get("dense", {}).get("backend", "faiss")  # versions from before the setting are FAISS


def _check_built_with(manifest: dict, settings: Settings, root: Path) -> None:
    """The dense leg must read the vectors where the version's build wrote them."""
    built = _built_backend(manifest)
    if built == settings.dense.backend:
        return
    how = "without the dense leg" if built is None else f"with dense.backend={built!r}"
    where = {"engine": "vectors in its server index", "faiss": "a FAISS index"}[settings.dense.backend]
    raise ConfigError(
        f"the index {root} was built {how}, but dense.backend is {settings.dense.backend!r}, "
        f"which needs {where}; rebuild with `search-rerank reindex --catalog PATH` "
        f"(or set dense.backend back)"
    )


ENCODING_SETTINGS = ("max_seq_length", "query_prefix", "document_prefix")
"""The dense settings a version's vectors were encoded with, besides the model: a product encoded from 8 tokens,
or without the prefix its model expects, is another vector than the query's encoding reads (dev nDCG@10 of the dense
leg 0.755 fell to 0.512 served against an index built with 8 tokens and a "passage: " prefix, without a word)."""


def _check_encoder(manifest: dict, encoder: BiEncoder, root: Path) -> None:
    """Query vectors are only comparable with document vectors from the very same model, encoded the same way:
    served, or written into the version by an update, with other encoding settings they are refused."""
    built = manifest.get("dense_model"), manifest.get("dense_card_sha256")
    if built == (encoder.model_name, encoder.card_sha256):
        recorded = manifest.get("dense") or {}  # a version built before the manifest held the settings: unknown
        changed = [
            f"dense.{name} {recorded[name]!r} (now {getattr(encoder.settings, name)!r})"
            for name in ENCODING_SETTINGS
            if name in recorded and recorded[name] != getattr(encoder.settings, name)
        ]
        if changed:
            raise ConfigError(
                f"the index {root} was encoded with {', '.join(changed)}; its vectors do not match the settings' "
                "encoding: set them back, or reindex with `search-rerank reindex --catalog PATH`"
            )
        return

    def describe(name: str | None, digest: str | None) -> str:
        return f"{name!r}" + (f" (card sha256 {digest[:12]})" if digest else " (no card)")

    raise ConfigError(
        f"the index {root} was built with the encoder {describe(*built)} but dense.model is "
        f"{describe(encoder.model_name, encoder.card_sha256)}; their vectors do not match: "
        "reindex with `search-rerank reindex --catalog PATH` (or set dense.model back)"
    )


def load_reranker(settings: Settings, pretokenised: PretokenisedTexts | None = None) -> CrossEncoderReranker:
    """The configured reranker, refused when its card is missing or broken, or says it lost to the first stage.

    ``pretokenised``: the served version's product texts as token ids, used if the model's tokenizer made them.
    """
    rerank = settings.rerank
    if not rerank.require_card:
        if on_gpu(rerank.device):
            return GpuReranker(rerank, pretokenised=pretokenised)
        return CrossEncoderReranker(rerank, pretokenised=pretokenised)
    if rerank.model is None:
        raise ConfigError("rerank.model is not set: there is no reranker to load")
    path, card = resolve_model(rerank.model, settings.models_dir, "reranker")
    if not card.promoted and not rerank.allow_unpromoted:
        raise ConfigError(
            f"reranker {card.name!r} was not promoted: {card.promotion_reason}. "
            "Serve it anyway with rerank.allow_unpromoted = true"
        )
    served: dict[str, object] = {"model": path}
    trained_length = card.parameters.get("max_length")
    if rerank.max_length is None and trained_length is not None:
        # Scored as trained: a longer input than the model ever saw buys cost, not accuracy.
        if not isinstance(trained_length, int | float | str):
            raise ConfigError(f"reranker {card.name!r}: its card's max_length {trained_length!r} is not a number")
        served["max_length"] = int(trained_length)
    blend = float(card.dev_metrics.get("best_blend", DEFAULT_BLEND))
    if on_gpu(rerank.device):  # the card's runtime is the CPU's choice; on a GPU the same weights run in fp16
        return GpuReranker(rerank.model_copy(update=served), default_blend=blend, pretokenised=pretokenised)
    return make_reranker(
        rerank.model_copy(update=served),
        runtime=str(card.parameters.get("runtime", "torch")),
        default_blend=blend,
        pretokenised=pretokenised,
    )


def read_manifest(settings: Settings) -> dict:
    return json.loads((_serving(IndexVersions(settings.index_dir)) / MANIFEST).read_text(encoding="utf-8"))


def served_manifest(pipeline: SearchPipeline) -> dict:
    """The manifest of the version ``pipeline`` was opened from (its product store's folder, which the pipeline
    holds): what it serves. The pointer's version may be a newer build not yet reloaded, and ``/ready`` said that
    one was served, so a deploy script polling it took a build as live before any worker served it."""
    return json.loads((pipeline.store.path.parent / MANIFEST).read_text(encoding="utf-8"))
