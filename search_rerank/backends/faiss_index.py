"""The dense leg: a FAISS index over product embeddings, filtered before ranking.

Rows are int64 ids in insertion order (a faiss label *is* the row), with a map
from product id to its live row. Nothing is ever removed from the faiss index:
an upsert or delete tombstones the old row in the ``alive`` column, and search
only admits live rows. HNSW cannot remove vectors at all, so this keeps one
behaviour for every index type. Once more than ``REBUILD_DEAD_FRACTION`` of
the rows are dead, the index is rebuilt from its live vectors with new rows;
saved indexes keep their tombstones, so a load gives back exactly what was saved.

Filters become a boolean mask over rows from columnar metadata, then a faiss
``IDSelectorBitmap``, so faiss only ranks admitted products. HNSW and IVF
visit fewer admitted products the more selective a filter is, so efSearch and
nprobe grow with selectivity, and a selection of at most
``EXACT_SEARCH_MAX_SELECTED`` products is searched exhaustively (a bitmap check
per row and one dot product per admitted product, cheaper than a graph walk).

On a GPU (faiss GPU build, a visible GPU, device not "cpu") flat and IVF
indexes get a GPU copy that is kept in step with adds. GPU indexes take no
selector, so a filtered GPU search over-fetches and drops rows outside the
mask; when the over-fetch would exceed the GPU's k limit the CPU index serves
the query instead. HNSW stays on the CPU.
"""

from __future__ import annotations

import json
import logging
import math
import os
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import faiss
import numpy as np

from ..core.candidate import Candidate
from ..core.errors import ConfigError
from ..core.filters import Filters, normalise_term  # the reference normaliser: filter semantics must be identical
from ..core.product import Product
from ..core.retrieval import DENSE, leg_candidates
from ..core.settings import DenseSettings
from .encoder import BiEncoder

logger = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST, INDEX_FILE, METADATA_FILE, COLUMNS_FILE = "manifest.json", "index.faiss", "metadata.json", "columns.npz"
REBUILD_DEAD_FRACTION = 0.25
EXACT_SEARCH_MAX_SELECTED = 20_000
IVF_REBUILD_GROWTH = 4  # retrain once the index holds this many times what its centroids were trained on
MAX_EF_SEARCH = 4096
GPU_MAX_K = 2048  # faiss GPU's largest k


class _Column:
    """A numpy array that grows by doubling, so one-product upserts stay cheap on a large catalog."""

    def __init__(self, dtype, values: np.ndarray | None = None):
        self._data = np.asarray(values if values is not None else [], dtype=dtype)
        self._size = len(self._data)

    def extend(self, values) -> None:
        values = np.asarray(values, dtype=self._data.dtype)
        end = self._size + len(values)
        if end > len(self._data):
            grown = np.empty(max(end, 2 * len(self._data), 16), dtype=self._data.dtype)
            grown[: self._size] = self._data[: self._size]
            self._data = grown
        self._data[self._size : end] = values
        self._size = end

    @property
    def values(self) -> np.ndarray:
        return self._data[: self._size]


class _Metadata:
    """Per-row filter columns, so a filter costs a few vectorised numpy operations.

    Brand and category are codes into small vocabularies, and a filter on them
    is a lookup table indexed by the code column. Attributes are posting lists
    per (key, value), because a product has several values per key.
    """

    def __init__(
        self,
        ids: list[str],
        columns: dict[str, np.ndarray],
        brands: list[str],
        categories: list[tuple[str, ...]],
        attribute_values: list[tuple[str, str]],
    ):
        self.ids = ids
        self.alive = _Column(np.bool_, columns["alive"])
        self.price = _Column(np.float64, columns["price"])
        self.brand = _Column(np.int32, columns["brand"])
        self.category = _Column(np.int32, columns["category"])
        self.brands = {b: i for i, b in enumerate(brands)}
        self.categories = {c: i for i, c in enumerate(categories)}
        self.attribute_values = {kv: i for i, kv in enumerate(attribute_values)}
        rows, codes = columns["attr_rows"], columns["attr_codes"]
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(attribute_values) + 1))
        self.postings = [_Column(np.int64, rows[order[a:b]]) for a, b in zip(bounds[:-1], bounds[1:])]
        self.row_of = {ids[r]: int(r) for r in np.flatnonzero(self.alive.values)}

    @classmethod
    def empty(cls) -> _Metadata:
        columns: dict[str, np.ndarray] = {name: np.empty(0, dtype) for name, dtype in _COLUMN_DTYPES.items()}
        return cls([], columns, [], [], [])

    @property
    def dead(self) -> int:
        return len(self.ids) - len(self.row_of)

    def append(self, products: Sequence[Product]) -> None:
        first = len(self.ids)
        self.ids.extend(p.id for p in products)
        self.row_of.update((p.id, first + i) for i, p in enumerate(products))
        self.alive.extend(np.ones(len(products), dtype=bool))
        self.price.extend([np.nan if p.price is None else p.price for p in products])
        self.brand.extend([_code(self.brands, normalise_term(p.brand)) for p in products])
        self.category.extend([_code(self.categories, tuple(normalise_term(c) for c in p.category)) for p in products])
        for i, product in enumerate(products):
            pairs = {(key, normalise_term(v)) for key, values in product.attributes.items() for v in values}
            for pair in pairs:
                code = _code(self.attribute_values, pair)
                if code == len(self.postings):
                    self.postings.append(_Column(np.int64))
                self.postings[code].extend([first + i])

    def kill(self, product_ids: Iterable[str]) -> int:
        rows = [self.row_of.pop(pid) for pid in product_ids if pid in self.row_of]
        self.alive.values[rows] = False
        return len(rows)

    def mask(self, filters: Filters | None) -> np.ndarray | None:
        """Rows a search may return, or None when every row may (no filter, no tombstones)."""
        if (filters is None or filters.is_empty) and not self.dead:
            return None
        mask = self.alive.values.copy()
        if filters is None:
            return mask
        if filters.category:
            prefix = tuple(normalise_term(c) for c in filters.category)
            wanted = [path[: len(prefix)] == prefix for path in self.categories]
            mask &= np.array(wanted, dtype=bool)[self.category.values]
        if filters.brand:
            mask &= self._lookup(self.brands, {normalise_term(b) for b in filters.brand})[self.brand.values]
        with np.errstate(invalid="ignore"):  # a missing price is NaN, which fails both bounds as required
            if filters.price_min is not None:
                mask &= self.price.values >= filters.price_min
            if filters.price_max is not None:
                mask &= self.price.values <= filters.price_max
        for key, values in filters.attributes.items():
            has_any = np.zeros(len(mask), dtype=bool)
            for value in values:
                code = self.attribute_values.get((key, normalise_term(value)))
                if code is not None:
                    has_any[self.postings[code].values] = True
            mask &= has_any
        return mask

    @staticmethod
    def _lookup(vocabulary: dict, wanted: set) -> np.ndarray:
        table = np.zeros(len(vocabulary), dtype=bool)
        table[[vocabulary[w] for w in wanted if w in vocabulary]] = True
        return table

    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        """JSON-ready vocabularies and numpy columns; attributes as (row, code) pairs."""
        codes = [np.full(len(p.values), c, dtype=np.int32) for c, p in enumerate(self.postings)]
        columns = {
            "alive": self.alive.values,
            "price": self.price.values,
            "brand": self.brand.values,
            "category": self.category.values,
            "attr_rows": np.concatenate([p.values for p in self.postings] or [np.empty(0, np.int64)]),
            "attr_codes": np.concatenate(codes or [np.empty(0, np.int32)]),
        }
        vocab = {
            "ids": self.ids,
            "brands": list(self.brands),
            "categories": [list(c) for c in self.categories],
            "attribute_values": [list(kv) for kv in self.attribute_values],
        }
        return vocab, columns

    @classmethod
    def from_state(cls, vocab: dict, columns: dict[str, np.ndarray]) -> _Metadata:
        return cls(
            list(vocab["ids"]),
            columns,
            list(vocab["brands"]),
            [tuple(c) for c in vocab["categories"]],
            [tuple(kv) for kv in vocab["attribute_values"]],
        )

    def take(self, rows: np.ndarray) -> _Metadata:
        """The given rows renumbered from 0, for compaction."""
        vocab, columns = self.state()
        new_row = np.full(len(self.ids), -1, dtype=np.int64)
        new_row[rows] = np.arange(len(rows))
        attr_rows = new_row[columns["attr_rows"]]
        kept = attr_rows >= 0
        taken = {name: columns[name][rows] for name in ("alive", "price", "brand", "category")}
        taken.update(attr_rows=attr_rows[kept], attr_codes=columns["attr_codes"][kept])
        vocab["ids"] = [self.ids[r] for r in rows]
        return _Metadata.from_state(vocab, taken)


_COLUMN_DTYPES = {
    "alive": np.bool_,
    "price": np.float64,
    "brand": np.int32,
    "category": np.int32,
    "attr_rows": np.int64,
    "attr_codes": np.int32,
}


def _code(vocabulary: dict, value) -> int:
    return vocabulary.setdefault(value, len(vocabulary))


class _ReadWriteLock:
    """Many searches at once, or one writer: faiss indexes are safe to read concurrently, not while growing.

    A waiting writer holds back new readers so that upserts are not starved by traffic.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._readers = 0
        self._writing = False
        self._writers_waiting = 0

    @contextmanager
    def reading(self) -> Iterator[None]:
        with self._cond:
            self._cond.wait_for(lambda: not self._writing and not self._writers_waiting)
            self._readers += 1
        try:
            yield
        finally:
            with self._cond:
                self._readers -= 1
                self._cond.notify_all()

    @contextmanager
    def writing(self) -> Iterator[None]:
        with self._cond:
            self._writers_waiting += 1
            self._cond.wait_for(lambda: not self._writing and not self._readers)
            self._writers_waiting -= 1
            self._writing = True
        try:
            yield
        finally:
            with self._cond:
                self._writing = False
                self._cond.notify_all()


def _ivf_lists(n: int) -> int:
    # ~4*sqrt(n) lists, but at least 39 training points per list (faiss's k-means minimum).
    return max(1, min(int(4 * math.sqrt(n)), n // 39))


def _build_index(kind: str, vectors: np.ndarray, settings: DenseSettings) -> faiss.Index:
    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = settings.hnsw_ef_search
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, _ivf_lists(len(vectors)), faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.set_direct_map_type(faiss.DirectMap.Array)  # compaction reconstructs vectors by row
        index.nprobe = settings.ivf_nprobe
    index.add(vectors)
    return index


def _index_kind(index: faiss.Index) -> str:
    if isinstance(index, faiss.IndexHNSW):
        return "hnsw"
    return "ivf" if isinstance(index, faiss.IndexIVF) else "flat"


def _write(path: Path, write) -> None:
    # Write beside, then rename: a crash mid-save never leaves a truncated file under the real name.
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)


def _last_of_each(products: Sequence[Product]) -> list[int]:
    """Positions of the last occurrence of each product id: within one upsert batch the last version wins."""
    return sorted({p.id: i for i, p in enumerate(products)}.values())


class FaissRetriever:
    """The dense leg (``name = "dense"``): cosine search over product embeddings.

    ``path`` is where ``warm_up`` loads a saved index from, when one is there,
    and where ``save()`` writes by default; without a saved index the retriever
    starts empty. Every public method warms up on first use; call ``warm_up``
    at start-up so the first request does not pay for it.
    """

    name = DENSE

    def __init__(self, encoder: BiEncoder, settings: DenseSettings, path: Path | None = None):
        self._encoder = encoder
        self._settings = settings
        self._path = None if path is None else Path(path)
        self._index: faiss.Index | None = None
        self._ivf_trained_on = 0
        self._meta = _Metadata.empty()
        self._lock = _ReadWriteLock()
        self._warm = False
        self._warm_lock = threading.Lock()
        self._use_gpu = settings.device != "cpu" and hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0
        self._gpu_index = None
        self._gpu_resources = None
        self._gpu_lock = threading.Lock()  # faiss GPU resources must not be used from two threads at once

    @classmethod
    def load(cls, path: Path | str, encoder: BiEncoder, settings: DenseSettings) -> FaissRetriever:
        """A warmed retriever over the index saved at ``path``; fails if there is none or it does not fit ``encoder``."""
        path = Path(path)
        if not (path / MANIFEST).is_file():
            raise ConfigError(
                f"no dense index at {path} ({MANIFEST} is missing); build one with add() and save() first"
            )
        retriever = cls(encoder, settings, path)
        retriever.warm_up()
        return retriever

    def warm_up(self) -> None:
        if self._warm:
            return
        with self._warm_lock:
            if self._warm:
                return
            self._encoder.warm_up()
            if self._path is not None and (self._path / MANIFEST).is_file():
                self._read(self._path)
            self._warm = True

    def count(self) -> int:
        self.warm_up()
        return len(self._meta.row_of)

    @property
    def dim(self) -> int:
        """The dimension of the vectors this index holds (its encoder's): a client's query vector must match."""
        return self._encoder.dim

    @property
    def index_type(self) -> str | None:
        """The type in use ("flat", "hnsw" or "ivf"; "auto" resolved), None while empty."""
        return None if self._index is None else _index_kind(self._index)

    def add(self, products: Iterable[Product], show_progress: bool = False) -> int:
        """Upsert products, encoding them in batches; returns how many were indexed (an id repeated in the batch counts once)."""
        self.warm_up()
        products = list(products)
        unique = [products[i] for i in _last_of_each(products)]
        vectors = self._encoder.encode_documents([p.embedding_text() for p in unique], show_progress=show_progress)
        return self._insert(unique, vectors)

    def add_vectors(self, products: Sequence[Product], vectors: np.ndarray) -> int:
        """Upsert products whose embeddings were made elsewhere by the same model (reindexing, benchmarks).

        Vectors are normalised here, so the index keeps cosine semantics whatever the caller passes.
        """
        self.warm_up()
        products = list(products)
        vectors = np.array(vectors, dtype=np.float32)
        expected = (len(products), self._encoder.dim)
        if vectors.shape != expected:
            raise ValueError(
                f"vectors have shape {vectors.shape}, expected {expected}: one row per product, "
                f"made by the model {self._encoder.model_name!r}"
            )
        keep = _last_of_each(products)
        vectors = np.ascontiguousarray(vectors[keep])
        faiss.normalize_L2(vectors)
        return self._insert([products[i] for i in keep], vectors)

    def delete(self, product_ids: Iterable[str]) -> int:
        """Tombstone products; returns how many were indexed. Unknown ids are ignored."""
        if isinstance(product_ids, str):
            raise TypeError("product_ids must be a collection of ids, not one string; wrap a single id in a list")
        self.warm_up()
        with self._lock.writing():
            removed = self._meta.kill(set(product_ids))
            if removed:
                self._rebuild_if_due()
        return removed

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        if k == 0:
            return []
        vector = self._encoder.encode_queries([query])[0]
        return leg_candidates(self.name, self.search_vector(vector, k, filters))

    def search_vector(self, vector: np.ndarray, k: int, filters: Filters | None = None) -> list[tuple[str, float]]:
        """(product id, cosine) hits, best first, for an embedding made elsewhere (benchmarks, query caches)."""
        if k < 0:
            raise ValueError(f"k must be >= 0, got {k}")
        self.warm_up()
        query = np.array(vector, dtype=np.float32).reshape(1, -1)
        if query.shape[1] != self._encoder.dim:
            raise ValueError(f"query vector has {query.shape[1]} dimensions; the index holds {self._encoder.dim}")
        faiss.normalize_L2(query)
        with self._lock.reading():
            if self._index is None or k == 0:
                return []
            mask = self._meta.mask(filters)
            admitted = len(self._meta.row_of) if mask is None else int(np.count_nonzero(mask))
            if admitted == 0:
                return []
            k = min(k, admitted)
            scores, labels = self._search_index(query, k, mask, admitted)
            keep = labels >= 0
            if mask is not None:
                keep &= mask[np.where(keep, labels, 0)]
            ids = self._meta.ids
            return [(ids[label], float(score)) for label, score in zip(labels[keep][:k], scores[keep][:k])]

    def search_around(self, product_id: str, k: int, filters: Filters | None = None) -> list[Candidate] | None:
        """The ``k`` products nearest ``product_id``'s stored vector under ``filters`` (itself first), as this
        leg's candidates; None when it is not indexed (see :func:`.searches_around`)."""
        vector = self.vectors_of([product_id]).get(product_id)
        return None if vector is None else leg_candidates(self.name, self.search_vector(vector, k, filters))

    def vectors_of(self, product_ids: Iterable[str]) -> dict[str, np.ndarray]:
        """The stored (unit) embeddings of those products that are indexed: similar items and diversity reuse
        what indexing computed instead of encoding the products again."""
        self.warm_up()
        with self._lock.reading():
            found = [(pid, self._meta.row_of[pid]) for pid in dict.fromkeys(product_ids) if pid in self._meta.row_of]
            if not found or self._index is None:
                return {}
            vectors = self._index.reconstruct_batch(np.array([row for _, row in found], dtype=np.int64))
        return {pid: vectors[i] for i, (pid, _) in enumerate(found)}

    def save(self, path: Path | str | None = None) -> Path:
        """Write index, ids, filter metadata and a manifest to ``path`` (default: the constructor's); the manifest goes last."""
        self.warm_up()
        target = self._path if path is None else Path(path)
        if target is None:
            raise ConfigError("no directory to save the dense index to; pass one to save() or to FaissRetriever()")
        target.mkdir(parents=True, exist_ok=True)
        with self._lock.reading():
            vocab, columns = self._meta.state()
            if self._index is not None:
                _write(target / INDEX_FILE, lambda p: faiss.write_index(self._index, str(p)))
            manifest = {
                "format_version": FORMAT_VERSION,
                "model": self._encoder.model_name,
                "dim": self._encoder.dim,
                "count": len(self._meta.row_of),
                "rows": len(self._meta.ids),
                "index_type": self.index_type,
                "ivf_trained_on": self._ivf_trained_on,
            }
        _write(target / METADATA_FILE, lambda p: p.write_text(json.dumps(vocab), encoding="utf-8"))
        _write(target / COLUMNS_FILE, lambda p: _save_npz(p, columns))
        _write(target / MANIFEST, lambda p: p.write_text(json.dumps(manifest, indent=2), encoding="utf-8"))
        return target

    def _read(self, path: Path) -> None:
        manifest = json.loads((path / MANIFEST).read_text(encoding="utf-8"))
        if manifest.get("format_version") != FORMAT_VERSION:
            raise ConfigError(
                f"dense index at {path} has format {manifest.get('format_version')!r}, this version "
                f"reads {FORMAT_VERSION}; rebuild the index"
            )
        if manifest["model"] != self._encoder.model_name:
            raise ConfigError(
                f"dense index at {path} was built with model {manifest['model']!r} but dense.model is "
                f"{self._encoder.model_name!r}; set dense.model to {manifest['model']!r} or rebuild the index"
            )
        if manifest["dim"] != self._encoder.dim:
            raise ConfigError(
                f"dense index at {path} holds {manifest['dim']}-d vectors but model "
                f"{self._encoder.model_name!r} makes {self._encoder.dim}-d ones; rebuild the index"
            )
        vocab = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
        with np.load(path / COLUMNS_FILE) as data:
            columns = {name: data[name] for name in data.files}
        index = faiss.read_index(str(path / INDEX_FILE)) if manifest["rows"] else None
        if (0 if index is None else index.ntotal) != len(vocab["ids"]):
            raise ConfigError(
                f"dense index at {path} is inconsistent ({INDEX_FILE} and {METADATA_FILE} disagree "
                "on the number of rows); rebuild the index"
            )
        with self._lock.writing():
            self._meta = _Metadata.from_state(vocab, columns)
            self._install(index, manifest["ivf_trained_on"])
        if index is not None and self._settings.index_type not in ("auto", _index_kind(index)):
            logger.warning(
                "dense index at %s is %s but dense.index_type is %s; it is rebuilt at the next change",
                path,
                _index_kind(index),
                self._settings.index_type,
            )

    def _insert(self, products: list[Product], vectors: np.ndarray) -> int:
        if not products:
            return 0
        with self._lock.writing():
            self._meta.kill(p.id for p in products)
            self._meta.append(products)
            if self._index is None:
                self._install(_build_index(self._wanted_kind(len(products)), vectors, self._settings), len(products))
            else:
                self._index.add(vectors)
                if self._gpu_index is not None:
                    with self._gpu_lock:
                        self._gpu_index.add(vectors)
            self._rebuild_if_due()
        return len(products)

    def _wanted_kind(self, n: int, current: str | None = None) -> str:
        # "auto" goes back from HNSW to flat only at a compaction, so a catalog
        # hovering around flat_max_size is not rebuilt on every change.
        if self._settings.index_type != "auto":
            return self._settings.index_type
        return "hnsw" if current == "hnsw" or n > self._settings.flat_max_size else "flat"

    def _rebuild_if_due(self) -> None:
        alive, kind = len(self._meta.row_of), _index_kind(self._index)
        if self._meta.dead > REBUILD_DEAD_FRACTION * len(self._meta.ids):
            reason = f"{self._meta.dead} of {len(self._meta.ids)} rows are tombstones"
        elif kind != self._wanted_kind(alive, kind):
            reason = f"{alive} products call for {self._wanted_kind(alive, kind)}, not {kind}"
        elif kind == "ivf" and alive > IVF_REBUILD_GROWTH * self._ivf_trained_on:
            reason = f"IVF centroids were trained on {self._ivf_trained_on} products, now {alive}"
        else:
            return
        logger.info("rebuilding the dense index: %s", reason)
        rows = np.flatnonzero(self._meta.alive.values)
        vectors = self._index.reconstruct_batch(rows) if len(rows) and self._index is not None else None
        self._meta = self._meta.take(rows)
        index = None if vectors is None else _build_index(self._wanted_kind(len(rows)), vectors, self._settings)
        self._install(index, len(rows))

    def _install(self, index: faiss.Index | None, trained_on: int) -> None:
        self._index, self._ivf_trained_on = index, trained_on
        self._gpu_index = None
        if self._use_gpu and index is not None and _index_kind(index) != "hnsw":
            if self._gpu_resources is None:
                self._gpu_resources = faiss.StandardGpuResources()
            with self._gpu_lock:
                self._gpu_index = faiss.index_cpu_to_gpu(self._gpu_resources, 0, index)
                if _index_kind(index) == "ivf":
                    faiss.GpuParameterSpace().set_index_parameter(self._gpu_index, "nprobe", self._settings.ivf_nprobe)

    def _search_index(self, query: np.ndarray, k: int, mask: np.ndarray | None, admitted: int):
        """Top-k (scores, labels) rows; labels may include -1 or, from the GPU, rows outside the mask."""
        rows = len(self._meta.ids)
        if self._gpu_index is not None:
            fetch = k if mask is None else math.ceil(2 * k * rows / admitted)
            if fetch <= GPU_MAX_K:
                with self._gpu_lock:
                    scores, labels = self._gpu_index.search(query, min(fetch, rows))
                return scores[0], labels[0]
        index, kind = self._index, _index_kind(self._index)
        if index is None:  # every product deleted: nothing to search
            return np.empty(0, np.float32), np.empty(0, np.int64)
        bitmap = None if mask is None else np.packbits(mask, bitorder="little")
        selector = None if bitmap is None else faiss.IDSelectorBitmap(bitmap)
        exact = mask is not None and admitted <= EXACT_SEARCH_MAX_SELECTED
        fraction = admitted / rows
        if kind == "hnsw" and exact:
            index, params = faiss.downcast_index(index.storage), faiss.SearchParameters(sel=selector)
        elif kind == "hnsw":
            ef = max(k, min(MAX_EF_SEARCH, math.ceil(max(self._settings.hnsw_ef_search, k) / fraction)))
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=ef)
        elif kind == "ivf":
            nprobe = index.nlist if exact else min(index.nlist, math.ceil(self._settings.ivf_nprobe / fraction))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, labels = index.search(query, k, params=params)
        return scores[0], labels[0]


def _save_npz(path: Path, columns: dict[str, np.ndarray]) -> None:
    with open(path, "wb") as handle:  # a file handle, so numpy does not append ".npz" to the temporary name
        np.savez(handle, **columns)  # type: ignore[arg-type]  # numpy's stub takes **kwds for allow_pickle
