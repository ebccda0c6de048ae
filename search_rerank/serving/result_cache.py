"""A per-worker cache of search results for the queries that come back again and again.

Shop traffic is head-heavy (the generator's query frequencies are power-law,
as real logs are), and a head query costs the full retrieve, fuse and rerank
each time although its answer only changes when the index, the settings or
the request does. Those are exactly the key: the query text with its
whitespace normalised, the filters, size and from, a digest of the
effective settings (per-request overrides included), and the version of the
index, that is the pipeline serving it (a reload or a reindex swaps the
pipeline, and the first search on the new one empties the cache) and its
manifest's file stamp (an in-place update rewrites it). Entries expire after
``service.cache_ttl_s`` in any case, and the least recently used go first
past ``service.cache_size`` (0: no cache).

Not cached: an answer with a degraded stage (a leg that timed out now may
answer on the next try), interleaved searches (their ranking depends on
the shopper) and searches that retrieve more candidates per leg than the
served settings (their entries would outgrow what ``cache_size`` was chosen
for; see :func:`outgrows`). A hit answers the stored ranking, stage lists and explanations
included, which are what the same computation would give; its timings say
only ``cache``, the time the lookup took, so no stage time is counted twice.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
import weakref
from collections.abc import Hashable
from dataclasses import replace
from itertools import count

from flask import Flask

from ..core.expiring_cache import Clock, ExpiringCache
from ..core.filters import Filters
from ..core.pipeline import SearchPipeline, SearchResult
from ..core.settings import Settings
from ..indexing.versions import MANIFEST
from . import metrics


class ResultCache:
    """Search results by key, at most ``size`` of them, each for ``ttl_s`` seconds of ``clock``
    (:class:`~search_rerank.core.expiring_cache.ExpiringCache`), hits and misses counted."""

    def __init__(self, size: int, ttl_s: float, clock: Clock = time.monotonic):
        self.size = size
        self._results: ExpiringCache[SearchResult] = ExpiringCache(size, ttl_s, clock)
        self._lock = threading.Lock()
        self._generations: weakref.WeakKeyDictionary[SearchPipeline, int] = weakref.WeakKeyDictionary()
        self._next_generation = count()

    def __len__(self) -> int:
        return len(self._results)

    def get(self, key: Hashable) -> SearchResult | None:
        """The stored result, counted as a hit; None (expired or absent) is counted as a miss."""
        result = self._results.get(key)
        metrics.RESULT_CACHE.labels("miss" if result is None else "hit").inc()
        return result

    def put(self, key: Hashable, result: SearchResult) -> None:
        self._results.put(key, result)

    def clear(self) -> None:
        self._results.clear()

    def generation(self, pipeline: SearchPipeline) -> int:
        """A number per pipeline served; a pipeline not seen before (a reload) empties the cache."""
        with self._lock:
            known = self._generations.get(pipeline)
            if known is not None:
                return known
            self._generations[pipeline] = generation = next(self._next_generation)
            self._results.clear()
            return generation

    def search(
        self,
        pipeline: SearchPipeline,
        query: str,
        filters: Filters | None,
        size: int,
        offset: int,
        settings: Settings,
        deadline: float | None = None,
    ) -> SearchResult:
        """``pipeline.run`` with these arguments, answered from the cache when it can be.

        ``deadline`` is not in the key: an answer it cut short is degraded, so never stored, and a stored answer is
        the whole one, which costs nothing however little time is left."""
        started = time.perf_counter()
        index_stamp = _index_stamp(pipeline)
        if index_stamp is None:  # cannot tell the index's version: never risk a stale answer
            return pipeline.run(query, filters, size=size, offset=offset, settings=settings, deadline=deadline)
        key = (
            self.generation(pipeline),
            index_stamp,
            normalise(query),
            None if filters is None else filters.model_dump_json(),
            size,
            offset,
            settings_digest(settings),
        )
        cached = self.get(key)
        if cached is not None:
            return detached(cached, query, timings_ms={"cache": (time.perf_counter() - started) * 1000})
        result = pipeline.run(query, filters, size=size, offset=offset, settings=settings, deadline=deadline)
        if not result.degraded:
            self.put(key, detached(result))
        return result


def detached(
    result: SearchResult, query: str | None = None, timings_ms: dict[str, float] | None = None
) -> SearchResult:
    """``result`` with lists and dicts of its own: what a route adds to its answer (``degraded.ubi`` when the
    search's UBI record was not written, ...) must not reach the stored entry, which answers other requests."""
    ranking = replace(
        result.ranking,
        candidates=list(result.ranking.candidates),
        stages=dict(result.ranking.stages),
        degraded=dict(result.ranking.degraded),
        skipped=dict(result.ranking.skipped),
        timings_ms=dict(result.ranking.timings_ms) if timings_ms is None else timings_ms,
    )
    return replace(result, query=result.query if query is None else query, hits=list(result.hits), ranking=ranking)


def normalise(query: str) -> str:
    """Whitespace runs as one space, none at the ends: every leg and tokenizer reads those alike.

    Case is kept: a cased model may rank "US" and "us" differently.
    """
    return " ".join(query.split())


def settings_digest(settings: Settings) -> str:
    """Settings as a short digest: equal settings, equal results (a per-request override changes it)."""
    return hashlib.sha256(settings.model_dump_json().encode()).hexdigest()


def _index_stamp(pipeline: SearchPipeline) -> tuple[int, int, int] | None:
    """The served version's manifest as (inode, mtime, size): an in-place update rewrites it by a rename."""
    try:
        stat = os.stat(pipeline.store.path.parent / MANIFEST)
    except OSError:
        return None
    return stat.st_ino, stat.st_mtime_ns, stat.st_size


def search(
    app: Flask,
    pipeline: SearchPipeline,
    query: str,
    filters: Filters | None,
    size: int,
    offset: int,
    settings: Settings,
    deadline: float | None = None,
) -> SearchResult:
    """The search through the worker's cache, or straight through the pipeline when the cache is off or the search
    retrieves more candidates than the served settings do (see :func:`outgrows`); ``deadline`` as
    :meth:`SearchPipeline.run` takes it."""
    cache = for_app(app)
    if cache is None or outgrows(settings, app.config["SETTINGS"]):
        return pipeline.run(query, filters, size=size, offset=offset, settings=settings, deadline=deadline)
    return cache.search(pipeline, query, filters, size, offset, settings, deadline)


def outgrows(settings: Settings, served: Settings) -> bool:
    """Whether a search at ``settings`` retrieves more candidates per leg than one at the ``served`` settings.

    An entry holds every stage's list of candidates (about 500 bytes each), so its size follows the candidates
    per leg: 100 (the default) make entries of about 0.3 MB, and 10,000, which any caller may ask for in
    ``overrides`` (or an Elasticsearch retriever's ``rank_window_size``), about 100 times that. ``cache_size``
    such entries would be tens of gigabytes a worker, so those searches are not cached.
    """
    return (
        settings.lexical.candidates > served.lexical.candidates or settings.dense.candidates > served.dense.candidates
    )


def for_app(app: Flask) -> ResultCache | None:
    """The worker's cache, made on first use from ``service.cache_size`` and ``cache_ttl_s``; None when off."""
    if "result_cache" not in app.extensions:
        service = app.config["SETTINGS"].service
        app.extensions["result_cache"] = (
            ResultCache(service.cache_size, service.cache_ttl_s) if service.cache_size > 0 else None
        )
    return app.extensions["result_cache"]
