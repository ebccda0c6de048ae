"""The dense leg on the cluster's own approximate kNN, for a catalog that outgrows one machine's memory.

With ``dense.backend = "engine"`` each product's embedding is a field of its
document in the lexical leg's index (``dense_vector`` in Elasticsearch,
``knn_vector`` in OpenSearch; ``index_mappings/vectors.<engine>.vN.json``), so
one index holds both legs: a version is still one index and one alias swap,
an upsert replaces the vector with the rest of the document, and a delete
removes both. The engine builds and searches the HNSW graph; this module only
encodes (the same :class:`~.encoder.BiEncoder` as the FAISS leg) and writes
the requests.

Filters go inside the kNN search (Elasticsearch's top-level ``knn.filter``,
OpenSearch's ``knn.<field>.filter``, both in :mod:`.es_query`'s clauses), so
the engine returns the k nearest *admitted* products, as FAISS does, rather
than the k nearest of which some are then dropped.

Scores come back as cosines, like the FAISS leg's: both engines score a
cosine kNN hit ``(1 + cos) / 2`` (Lucene's cosine similarity), so
``cos = 2 * score - 1``. Ties are broken by product id.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

from ..core.candidate import Candidate
from ..core.errors import ConfigError, StageError
from ..core.filters import Filters
from ..core.product import Product
from ..core.retrieval import DENSE, Retriever, leg_candidates
from ..core.settings import DenseSettings
from .cluster import ClusterRetriever
from .cluster_query import filter_clauses
from .encoder import BiEncoder
from .mappings import VECTOR_DIMENSION_KEY, vector_field, vector_mapping

# Both engines cap the candidates per shard (and OpenSearch's k) here.
MAX_CANDIDATES = 10_000


def _elasticsearch_body(
    field: str, vector: list[float], k: int, candidates: int, clauses: list[dict[str, Any]]
) -> dict[str, Any]:
    knn: dict[str, Any] = {"field": field, "query_vector": vector, "k": k, "num_candidates": candidates}
    if clauses:
        knn["filter"] = clauses
    return {"knn": knn, "size": k, "_source": False, "track_total_hits": False}


def _opensearch_body(
    field: str, vector: list[float], k: int, candidates: int, clauses: list[dict[str, Any]]
) -> dict[str, Any]:
    # The Lucene engine takes k as its candidate list per segment, so asking for more than ``size``
    # is OpenSearch's num_candidates; ``size`` keeps the best k of them.
    knn: dict[str, Any] = {"vector": vector, "k": candidates}
    if clauses:
        knn["filter"] = {"bool": {"filter": clauses}}
    return {"query": {"knn": {field: knn}}, "size": k, "_source": False, "track_total_hits": False}


KNN_BODIES: dict[str, Callable[..., dict[str, Any]]] = {
    "elasticsearch": _elasticsearch_body,
    "opensearch": _opensearch_body,
}


def knn_body(
    engine: str,
    field: str,
    vector: Iterable[float],
    k: int,
    num_candidates: int,
    filters: Filters | None = None,
    clauses: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """The engine's request for the ``k`` nearest products to ``vector`` that pass ``filters`` and ``clauses``
    (Query DSL filter clauses: a search's own filter context, delegated to the cluster).

    ``num_candidates`` is raised to ``k`` when smaller (the engines refuse fewer) and capped at their limit.
    """
    if engine not in KNN_BODIES:
        raise ConfigError(f"no kNN search for engine {engine!r}; valid: {sorted(KNN_BODIES)}")
    if not 1 <= k <= MAX_CANDIDATES:
        raise ValueError(f"k={k}: a kNN search returns between 1 and {MAX_CANDIDATES} products")
    candidates = min(MAX_CANDIDATES, max(k, num_candidates))
    every = filter_clauses(filters) + [dict(clause) for clause in clauses]
    return KNN_BODIES[engine](field, [float(x) for x in vector], k, candidates, every)


def cosine_hits(response: Mapping[str, Any]) -> list[tuple[str, float]]:
    """(product id, cosine) from a kNN response, best first, ties by id."""
    hits = [(hit["_id"], 2.0 * float(hit.get("_score") or 0.0) - 1.0) for hit in response["hits"]["hits"]]
    return sorted(hits, key=lambda hit: (-hit[1], hit[0]))


class EngineKnnRetriever:
    """The dense leg (``name = "dense"``) as kNN over the vector field of the lexical leg's cluster index.

    ``cluster`` is the lexical leg (its connection, index or alias, and retry
    policy); the constructor is cheap and sends nothing. ``warm_up`` loads
    the encoder and checks that the index maps the vector field with the
    encoder's dimension. ``add`` writes whole documents (text, filter keys and
    vector), since both legs read the same document.
    """

    name = DENSE

    def __init__(self, cluster: Retriever, encoder: BiEncoder, settings: DenseSettings):
        if not isinstance(cluster, ClusterRetriever):
            raise ConfigError(
                f"dense.backend='engine' searches the lexical leg's cluster index, but the lexical "
                f"leg is {type(cluster).__name__}; set lexical.backend to 'elasticsearch' or "
                f"'opensearch'"
            )
        if settings.backend != "engine":
            raise ConfigError(f"dense.backend={settings.backend!r}, but this is the engine kNN leg")
        self.cluster = cluster
        self.encoder = encoder
        self.settings = settings
        self.field = vector_field(cluster.engine, settings.vector_mapping_version)
        self._warm = False
        self._warm_lock = threading.Lock()

    @property
    def dim(self) -> int:
        """The dimension of the vectors the index holds (the encoder's): a client's query vector must match."""
        return self.encoder.dim

    def index_extension(self) -> dict[str, Any]:
        """The create-index fragment for this leg's vector field (loads the encoder for its dimension)."""
        return vector_mapping(self.cluster.engine, self.encoder.dim, self.settings)

    # ------------------------------------------------------------ Retriever protocol

    def warm_up(self) -> None:
        if self._warm:
            return
        with self._warm_lock:
            if self._warm:
                return
            self.encoder.warm_up()
            self.cluster.warm_up()
            self._check_mapping(self._dense(self.cluster.mapping))
            self._warm = True

    def count(self) -> int:
        """Documents that have a vector (all of them, in an index built with this leg)."""
        return self._dense(lambda: self.cluster.count({"exists": {"field": self.field}}))

    def add(self, products: Iterable[Product]) -> int:
        """Upsert products with their vectors; returns how many distinct products were written."""
        products = list(products)
        return self._dense(lambda: self.cluster.add(products, extra=self.vector_fields(products)))

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products (document and vector together); returns how many were indexed."""
        if isinstance(product_ids, str):
            raise TypeError("product_ids must be a collection of ids, not one string; wrap a single id in a list")
        return self._dense(lambda: self.cluster.delete(product_ids))

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        if k < 0:
            raise ValueError(f"k={k}: the number of candidates must be >= 0")
        if k == 0:
            return []
        vector = self.encoder.encode_queries([query])[0]
        return leg_candidates(self.name, self.search_vector(vector, k, filters))

    # ------------------------------------------------------------ beyond the protocol

    def search_vector(
        self,
        vector: np.ndarray,
        k: int,
        filters: Filters | None = None,
        clauses: Sequence[Mapping[str, Any]] = (),
    ) -> list[tuple[str, float]]:
        """(product id, cosine) hits, best first, for an embedding made elsewhere by the same model;
        ``clauses`` are Query DSL filters the engine applies inside the kNN search."""
        if k < 0:
            raise ValueError(f"k={k}: the number of candidates must be >= 0")
        vector = np.asarray(vector, dtype=np.float32).reshape(-1)
        if len(vector) != self.encoder.dim:
            raise ValueError(f"query vector has {len(vector)} dimensions; the index holds {self.encoder.dim}")
        if k == 0:
            return []
        body = knn_body(self.cluster.engine, self.field, vector, k, self.settings.num_candidates, filters, clauses)
        return cosine_hits(self._dense(lambda: self.cluster.run_search(body, "kNN search")))

    def vector_fields(self, products: Sequence[Product]) -> dict[str, dict[str, list[float]]]:
        """Each product's vector as the document field, by id; a repeated id is encoded once, its last record."""
        unique = {product.id: product for product in products}
        vectors = self.encoder.encode_documents([product.embedding_text() for product in unique.values()])
        return {pid: {self.field: vector.tolist()} for pid, vector in zip(unique, vectors)}

    def _check_mapping(self, mappings: Mapping[str, Any]) -> None:
        engine, index = self.cluster.engine, self.cluster.index
        spec = mappings.get("properties", {}).get(self.field)
        if spec is None:
            raise ConfigError(
                f"the {engine} index {index!r} has no vector field {self.field!r} (was it built with "
                f"dense.backend='faiss'?); rebuild it with `search-rerank reindex` and "
                f"dense.backend='engine'"
            )
        dims = spec.get(VECTOR_DIMENSION_KEY[engine])
        if dims != self.encoder.dim:
            raise ConfigError(
                f"the {engine} index {index!r} holds {dims}-d vectors in {self.field!r} but dense.model "
                f"{self.encoder.model_name!r} makes {self.encoder.dim}-d ones; rebuild it with "
                f"`search-rerank reindex`"
            )

    @staticmethod
    def _dense(request: Callable[[], Any]) -> Any:
        """A cluster call, its failures reported as this leg's (the cluster helper names the lexical one), of the
        same kind: the cluster not answering, refusing the request, or missing the index (a ConfigError at
        start-up)."""
        try:
            return request()
        except StageError as exc:
            kind = type(exc) if type(exc).__init__ is StageError.__init__ else StageError  # not RejectedDocuments
            raise kind(DENSE, exc.cause) from exc
