"""The search pipeline: retrieve, fuse, rerank, learned rank, boost, as plain code in that order.

Each stage is a pure function of its input list (see fusion, rerank,
longtail); this module only wires them, times them, and decides what to do
when one fails: a failed or slow leg leaves the other, a failed or slow
reranker leaves the fused order, a failing learned ranker the order before it,
and the result says which happened.

The legs run concurrently, each under its own deadline. A thread cannot be
killed, so a leg that hangs keeps its thread; each stage has a pool of its
own so that such threads can exhaust only that stage, never the others.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field, replace
from typing import TypeVar

import numpy as np

from .candidate import Candidate
from .diversity import StoredVectors, mmr, similarity_matrix
from .errors import ClusterUnavailable, StageError
from .filters import Filters
from .fusion import fuse
from .identifiers import names_a_code
from .learned_rank import LearnedRanker
from .longtail import is_long_tail, long_tail_stage
from .personalise import personalise, skip_reason
from .product import Product
from .profile import ShopperProfile, facet_values
from .ranker_features import FieldScorer, features, names_every_code, query_codes
from .reasons import BUDGET_SPENT, TIMEOUT, reason_code
from .retrieval import DENSE, LEGS, LEXICAL, Reranker, Retriever, Stage, searches_around
from .settings import Settings
from .store import ProductStore

log = logging.getLogger(__name__)
T = TypeVar("T")
TOTAL = "total"
"""The timing of the whole search, kept beside the stages' (not a stage itself)."""
FACET_CACHE_SIZE = 50_000
"""Products whose facet values a pipeline keeps (a few hundred bytes each)."""
ORDERING_STAGES = (Stage.RERANK, Stage.LTR, Stage.LONGTAIL, Stage.PERSONAL, Stage.DIVERSITY)
"""The stages after fusion: they reorder its candidates, and never add or drop one."""
NO_HITS_ASKED = "no hits asked for (size 0): only the number of matches"
"""Why a search that shows no hit skips the stages that order them."""
NO_TEXT_TO_EMBED = "no query text to embed"
"""Why the dense leg skips a search without words (browsing by filters)."""
ANCHOR_DEPTH = 3
"""The lexical leg's top hits a code query's product is looked for in (``dense.code_anchors``): the product a full
code names is the lexical leg's first hit or close to it; deeper, a hit that writes the code is some other
product's part or accessory ("fits DW745-B")."""


@dataclass(frozen=True)
class Hit:
    product: Product
    candidate: Candidate
    long_tail: bool
    ranker: LearnedRanker | None = None
    """The learned ranker that scored this hit, if one did: it explains its score per feature on demand."""

    def explanation(self) -> dict[str, float | list[str]]:
        """What every stage said about this result (the learned ranker's per-feature contributions included)."""
        contributions: dict[str, float] = {}
        if self.ranker is not None and Stage.LTR in self.candidate.features:
            try:
                contributions = self.ranker.contributions(self.candidate)
            except Exception as exc:  # an explanation missing a part must not fail the search
                log.warning("ltr contributions unavailable: %s: %s", type(exc).__name__, exc)
        return {
            "legs": sorted(self.candidate.legs),
            **self.candidate.features,
            **contributions,
            "final": self.candidate.score,
        }


@dataclass
class Ranking:
    """A query's full ranked list plus what happened on the way; what evaluation consumes.

    Retrieval fills ``stages`` with the legs' lists and leaves ``candidates``
    empty; ``SearchPipeline.rank_from`` ranks them into a new Ranking.
    """

    query: str
    candidates: list[Candidate] = field(default_factory=list)
    stages: dict[str, list[Candidate]] = field(default_factory=dict)
    degraded: dict[str, str] = field(default_factory=dict)
    """Stage -> reason code (see reasons); the failure's detail is in the log, not here."""
    skipped: dict[str, str] = field(default_factory=dict)
    timings_ms: dict[str, float] = field(default_factory=dict)
    anchor: str | None = None
    """The product whose vector the dense leg searched by (``dense.code_anchors``): the one the query names by
    its code, which the lexical leg found; None where the dense leg searched the query's text."""


@dataclass(frozen=True)
class SearchResult:
    query: str
    hits: list[Hit]
    total: int
    ranking: Ranking

    @property
    def degraded(self) -> dict[str, str]:
        return self.ranking.degraded


class SearchPipeline:
    """Holds the warmed-up components; every call takes the settings to apply.

    Settings are per call so that per-request overrides and evaluation
    variants never change shared state.
    """

    def __init__(
        self,
        settings: Settings,
        legs: Mapping[str, Retriever],
        store: ProductStore,
        reranker: Reranker | None = None,
        ranker: LearnedRanker | None = None,
    ):
        unknown = set(legs) - set(LEGS)
        if unknown:
            raise ValueError(f"unknown leg(s) {sorted(unknown)}; valid: {[str(leg) for leg in LEGS]}")
        self.settings = settings
        self.legs = dict(legs)
        self.store = store
        self.reranker = reranker
        self.ranker = ranker
        self._facets: OrderedDict[str, tuple[int, dict[str, tuple[str, ...]]]] = OrderedDict()
        self._facet_lock = threading.Lock()
        self._pools = {
            stage: ThreadPoolExecutor(max_workers=4, thread_name_prefix=stage)
            for stage in (LEXICAL, DENSE, Stage.RERANK)
        }

    def with_legs(self, legs: Mapping[str, Retriever]) -> SearchPipeline:
        """This pipeline searching other legs (one request's views of its own), sharing store, reranker and pools."""
        view = copy.copy(self)
        view.legs = dict(legs)
        return view

    def with_reranker(self, reranker: Reranker | None) -> SearchPipeline:
        """This pipeline reranking with another reranker (one request's view of its own, e.g. with the query a
        client names for reranking), sharing legs, store and pools."""
        view = copy.copy(self)
        view.reranker = reranker
        return view

    def warm_up(self, unanswered: Callable[[str, ClusterUnavailable], None] | None = None) -> None:
        """Load and check every leg and the reranker. ``unanswered``: what to do with a leg whose cluster does not
        answer (a service starting before its cluster is up, which then serves without it until it answers),
        instead of raising; a cluster that answers that the settings are wrong still raises."""
        for name, leg in self.legs.items():
            try:
                leg.warm_up()
            except ClusterUnavailable as exc:
                if unanswered is None:
                    raise
                unanswered(name, exc)
        if self.reranker is not None:
            self.reranker.warm_up()

    # ------------------------------------------------------------ stages

    def retrieve(
        self, query: str, filters: Filters | None, settings: Settings | None = None, deadline: float | None = None
    ) -> Ranking:
        """Each enabled leg's list, the legs side by side; a failing or late leg is reported, not raised.

        ``deadline`` (see :meth:`run`) holds the dense leg only when the lexical leg searches beside it: the
        lexical leg is the answer itself, and without it (none loaded, or one a request turned off: a ``knn``
        retriever's, see serving.retrievers) the dense leg is.
        """
        settings = settings if settings is not None else self.settings
        ranking = Ranking(query)
        wanted = {LEXICAL: settings.lexical.candidates, DENSE: settings.dense.candidates}
        started = time.perf_counter()
        timeout_s = {LEXICAL: settings.lexical.timeout_s, DENSE: settings.dense.timeout_s}
        lexical = self.legs.get(LEXICAL)
        if lexical is not None and not getattr(lexical, "off", False):
            timeout_s[DENSE] = _held_to(timeout_s[DENSE], deadline, started)
        if not settings.dense.enabled:
            ranking.skipped[DENSE] = "dense leg disabled in settings"
            wanted.pop(DENSE)
        elif not query.strip() and not getattr(self.legs.get(DENSE), "brings_query", False):
            # An empty query (browsing by filters) has no meaning to embed; its vector ranks at random.
            # A leg that brings its own query (a client's vector, see serving.retrievers) needs no words.
            ranking.skipped[DENSE] = NO_TEXT_TO_EMBED
            wanted.pop(DENSE)
        running = {}
        for name, k in wanted.items():
            leg = self.legs.get(name)
            if leg is None:
                ranking.skipped[name] = f"no {name} index loaded"
                continue
            if timeout_s[name] <= 0:
                ranking.degraded[name] = BUDGET_SPENT
                continue
            running[name] = self._pools[name].submit(_clocked, leg.search, query, k, filters)
        for name, future in running.items():
            try:
                remaining = timeout_s[name] - (time.perf_counter() - started)
                ranking.stages[name], ranking.timings_ms[name] = future.result(timeout=max(remaining, 0.0))
            except FutureTimeout:
                future.cancel()
                ranking.degraded[name] = TIMEOUT
                log.warning("leg %s degraded (%s): no answer within %gs", name, TIMEOUT, timeout_s[name])
            except Exception as exc:  # a leg down must not take search down
                ranking.degraded[name] = reason_code(exc)
                log.warning("leg %s degraded (%s): %s: %s", name, ranking.degraded[name], type(exc).__name__, exc)
            if name in ranking.degraded:
                ranking.timings_ms[name] = (time.perf_counter() - started) * 1000
        if settings.dense.code_anchors and LEXICAL in ranking.stages and DENSE in ranking.stages:
            left_s = timeout_s[DENSE] - (time.perf_counter() - started)
            self._search_around_the_code(ranking, settings.dense.candidates, filters, left_s)
        return ranking

    def _search_around_the_code(self, ranking: Ranking, k: int, filters: Filters | None, timeout_s: float) -> None:
        """For a query that names a product by its code ("dw745b", "4820v"), the dense list as the neighbours of
        the product it names, by that product's stored vector, where the lexical leg found it in its top
        :data:`ANCHOR_DEPTH` (a product that writes every code of the query, :func:`.names_every_code`).

        Why: a text encoder reads a code as noise (the packaged MiniLM scores nDCG@10 0.05 on the hard
        profile's code queries), so the dense leg found nothing of use and was fused at weight 0; but the
        shopper's next best after the product asked for are the products like it, which its vector finds and
        its code does not. It runs on the dense leg's pool within what is left of the leg's deadline (a leg held to
        a cluster's filters asks the cluster); one that fails or is late leaves the text's list as it was (the leg
        already answered)."""
        models = query_codes(ranking.query)
        leg = self.legs.get(DENSE)
        if not models or not names_a_code(ranking.query) or not searches_around(leg):
            return
        started = time.perf_counter()
        top = [c.product_id for c in ranking.stages[LEXICAL][:ANCHOR_DEPTH]]
        products = self.store.get(top)
        anchor = next((pid for pid in top if pid in products and names_every_code(models, products[pid])), None)
        if anchor is None or timeout_s <= 0:
            return
        future = self._pools[DENSE].submit(leg.search_around, anchor, k, filters)  # type: ignore[union-attr]
        try:
            around = future.result(timeout=timeout_s)
        except FutureTimeout:
            future.cancel()
            log.warning("code anchor not searched around (%s): no answer within %.3gs", TIMEOUT, timeout_s)
            return
        except Exception as exc:  # the text's list stands
            log.warning("code anchor not searched around (%s): %s: %s", reason_code(exc), type(exc).__name__, exc)
            return
        if around is None:
            return
        ranking.stages[DENSE] = around
        ranking.anchor = anchor
        ranking.timings_ms[DENSE] = ranking.timings_ms.get(DENSE, 0.0) + (time.perf_counter() - started) * 1000

    def rank_from(
        self,
        retrieved: Ranking,
        settings: Settings | None = None,
        profile: ShopperProfile | None = None,
        deadline: float | None = None,
    ) -> Ranking:
        """Fuse the retrieved legs, then rerank, boost and personalise: a new Ranking; ``retrieved`` is left as it was.

        The one way lists are ranked: a search, interleaving (one retrieval,
        two rankings), tuning (one retrieval, many trials) and evaluation all
        call it (tuning the personalisation stage calls its two halves,
        :meth:`rank_for_everyone` and :meth:`rank_for_shopper`, which are all
        it does), so that they cannot rank differently. ``retrieved`` may be
        deeper than ``settings`` ask: each leg is cut to its own candidate
        count (a leg's top k at depth 100 is its top k at depth k), and a dense
        list is left out when ``settings`` disable the dense leg. ``profile``
        is the shopper's (see core.profile.mix); None ranks for everyone.
        ``deadline``: see :meth:`run`.

        Personalisation runs after the long-tail stage and before diversity:
        after reranking and the long-tail stage so that it nudges the final
        relevance-and-exposure order within its bounds (cap, max_rise) rather
        than feeding the long-tail gate, which must judge relevance alone; and
        before diversity, so that MMR still spreads the list the shopper
        sees instead of being undone by a later reorder.
        """
        settings = settings if settings is not None else self.settings
        return self.rank_for_shopper(self.rank_for_everyone(retrieved, settings, deadline), settings, profile)

    def fused(self, retrieved: Ranking, settings: Settings) -> Ranking:
        """The legs, each cut to its candidate count, fused: a new Ranking whose candidates are every product
        the search matched, in fusion's order; the stages after it only reorder them."""
        ranking = Ranking(
            retrieved.query,
            degraded=dict(retrieved.degraded),
            skipped=dict(retrieved.skipped),
            timings_ms=dict(retrieved.timings_ms),
            anchor=retrieved.anchor,
        )
        depth = {LEXICAL: settings.lexical.candidates, DENSE: settings.dense.candidates}
        for leg in LEGS:
            if leg not in retrieved.stages:
                continue
            if leg == DENSE and not settings.dense.enabled:
                ranking.skipped[DENSE] = "dense leg disabled in settings"
                continue
            ranking.stages[leg] = retrieved.stages[leg][: depth[leg]]
        legs = dict(ranking.stages)
        anchored = retrieved.anchor is not None and DENSE in legs
        fused = self._timed(ranking, Stage.FUSION, lambda: fuse(legs, settings.fusion, retrieved.query, anchored))
        ranking.stages[Stage.FUSION] = ranking.candidates = fused
        return ranking

    def rank_for_everyone(self, retrieved: Ranking, settings: Settings, deadline: float | None = None) -> Ranking:
        """The first part of :meth:`rank_from`: fusion, rerank, learned ranker and long-tail stage, the stages that
        do not depend on who searches; ``candidates`` is the list they leave. Apart so that tuning the
        personalisation stage can rank these once per query and only the rest per trial. ``deadline``: see
        :meth:`run`."""
        ranking = self.fused(retrieved, settings)
        query, current = ranking.query, ranking.candidates

        reranker = self.reranker
        rerank_s = _held_to(settings.rerank.timeout_s, deadline, time.perf_counter())
        if reranker is None or settings.rerank.model is None:
            ranking.skipped[Stage.RERANK] = "no reranker model configured"
        elif current and rerank_s <= 0:
            ranking.degraded[Stage.RERANK] = BUDGET_SPENT
        elif current:
            try:
                current = self._timed(
                    ranking,
                    Stage.RERANK,
                    lambda: self._with_deadline(
                        lambda: self._rerank(reranker, query, current, settings),
                        rerank_s,
                        Stage.RERANK,
                    ),
                )
                ranking.stages[Stage.RERANK] = current
            except StageError as exc:
                ranking.degraded[Stage.RERANK] = reason_code(exc)
                log.warning("rerank degraded (%s): %s", ranking.degraded[Stage.RERANK], exc)

        ranker = self.ranker
        if ranker is None or settings.ltr.model is None:
            ranking.skipped[Stage.LTR] = "no ranker model configured"
        elif not settings.ltr.enabled:
            ranking.skipped[Stage.LTR] = "learned ranker disabled in settings"
        elif current:
            before = current
            try:
                current = self._timed(
                    ranking, Stage.LTR, lambda: ranker.run(before, self.ranker_features(query, before))
                )
                ranking.stages[Stage.LTR] = current
            except Exception as exc:  # fail open: the order before the stage is still a ranking
                current = before
                ranking.degraded[Stage.LTR] = reason_code(exc)
                log.warning("ltr degraded (%s): %s: %s", ranking.degraded[Stage.LTR], type(exc).__name__, exc)

        if not settings.longtail.enabled:
            ranking.skipped[Stage.LONGTAIL] = "long-tail boost disabled in settings"
        elif current:
            popularity = self.store.popularity([c.product_id for c in current])
            current = self._timed(
                ranking, Stage.LONGTAIL, lambda: long_tail_stage(current, popularity, settings.longtail)
            )
            ranking.stages[Stage.LONGTAIL] = current
        ranking.candidates = current
        return ranking

    def rank_for_shopper(self, shared: Ranking, settings: Settings, profile: ShopperProfile | None) -> Ranking:
        """The rest of :meth:`rank_from` on :meth:`rank_for_everyone`'s ranking: personalisation for ``profile``,
        then diversity; a new Ranking, ``shared`` left as it was (it may be ranked for many shoppers)."""
        query = shared.query
        ranking = replace(
            shared,
            stages=dict(shared.stages),
            degraded=dict(shared.degraded),
            skipped=dict(shared.skipped),
            timings_ms=dict(shared.timings_ms),
        )
        current = shared.candidates
        reason = skip_reason(profile, settings.personalisation)
        if reason is not None:
            ranking.skipped[Stage.PERSONAL] = reason
        elif current and profile is not None:
            before = current
            try:
                current = self._timed(
                    ranking, Stage.PERSONAL, lambda: self._personalise(query, before, profile, settings)
                )
                ranking.stages[Stage.PERSONAL] = current
            except Exception as exc:  # fail-open: a broken profile must not take search down
                current = before
                ranking.degraded[Stage.PERSONAL] = reason_code(exc)
                log.warning(
                    "personalisation degraded (%s): %s: %s", ranking.degraded[Stage.PERSONAL], type(exc).__name__, exc
                )

        if not settings.diversity.enabled:
            ranking.skipped[Stage.DIVERSITY] = "diversity (MMR) disabled in settings"
        elif current:
            current = self._timed(ranking, Stage.DIVERSITY, lambda: self._diversify(current, settings))
            ranking.stages[Stage.DIVERSITY] = current
        ranking.candidates = current
        return ranking

    def run(
        self,
        query: str,
        filters: Filters | None = None,
        size: int = 10,
        offset: int = 0,
        settings: Settings | None = None,
        profile: ShopperProfile | None = None,
        deadline: float | None = None,
    ) -> SearchResult:
        """The search's page of ``size`` hits from ``offset``, and what happened on the way.

        ``deadline`` (a ``time.perf_counter()`` value; a multi-search's budget, see serving.es_api) bounds the
        optional stages, those that cost the most and whose loss leaves an answer: the reranker, and the dense
        leg beside the lexical one. Each waits at most until then, and past it is not begun (degraded
        ``budget_spent``); the lexical leg and the fast stages run as ever, so the search is still answered.
        """
        settings = settings if settings is not None else self.settings
        started = time.perf_counter()
        retrieved = self.retrieve(query, filters, settings, deadline)
        if size > 0:
            ranking = self.rank_from(retrieved, settings, profile, deadline)
        else:
            # A search that shows no hit (a front end's facet counts and totals: Searchkit and Search UI send one
            # per refined facet beside the main search) needs only how many products matched; ordering them, a
            # cross-encoder's second on a CPU, would change nothing it answers.
            ranking = self.fused(retrieved, settings)
            ranking.skipped.update(dict.fromkeys(ORDERING_STAGES, NO_HITS_ASKED))
        hits = self.hits(ranking.candidates[offset : offset + size], settings)
        ranking.timings_ms[TOTAL] = (time.perf_counter() - started) * 1000
        return SearchResult(query=query, hits=hits, total=len(ranking.candidates), ranking=ranking)

    def hits(self, candidates: Sequence[Candidate], settings: Settings | None = None) -> list[Hit]:
        """The candidates with their products and long-tail flags; ids no longer in the store are left out."""
        settings = settings if settings is not None else self.settings
        ids = [c.product_id for c in candidates]
        products, popularity = self.store.get(ids), self.store.popularity(ids)
        head = settings.longtail.head_fraction
        return [
            Hit(products[c.product_id], c, is_long_tail(popularity.get(c.product_id, 1.0), head), self.ranker)
            for c in candidates
            if c.product_id in products
        ]

    def ranker_features(self, query: str, candidates: Sequence[Candidate]) -> np.ndarray:
        """The learned ranker's feature rows for ``candidates``: what serving scores and training learns from."""
        ids = [c.product_id for c in candidates]
        leg = self.legs.get(LEXICAL)
        per_field = leg.field_scores(query, ids) if isinstance(leg, FieldScorer) else None
        vectors = self.vectors_of(ids) if query_codes(query) else None  # only code queries have anchors
        return features(query, candidates, self.store.get(ids), self.store.popularity(ids), per_field, vectors)

    # ------------------------------------------------------------ helpers

    def _rerank(
        self, reranker: Reranker, query: str, candidates: Sequence[Candidate], settings: Settings
    ) -> list[Candidate]:
        window = candidates[: settings.rerank.window]
        products = self.store.get([c.product_id for c in window])
        texts = {pid: p.embedding_text() for pid, p in products.items()}
        return reranker.run(query, candidates, texts, settings.rerank)

    def vectors_of(self, product_ids: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored bi-encoder vectors of these products; none without a dense leg that keeps them."""
        leg = self.legs.get(DENSE)
        return leg.vectors_of(product_ids) if isinstance(leg, StoredVectors) else {}

    def product_facets(self, product_ids: Sequence[str]) -> dict[str, dict[str, tuple[str, ...]]]:
        """Each product's profile facet values (see core.profile.facet_values), from a per-pipeline cache.

        Parsing a product record costs about as much as the rest of the
        personalisation stage, and the same products come back search after
        search. An entry is keyed by the product id and checked against a hash
        of its stored record, so an in-place catalogue update is seen at once.
        """
        records = self.store.records(product_ids)
        found: dict[str, dict[str, tuple[str, ...]]] = {}
        fresh: dict[str, tuple[int, dict[str, tuple[str, ...]]]] = {}
        with self._facet_lock:
            for pid, record in records.items():
                cached = self._facets.get(pid)
                if cached is not None and cached[0] == hash(record):
                    self._facets.move_to_end(pid)
                    found[pid] = cached[1]
        for pid, record in records.items():
            if pid not in found:
                found[pid] = facet_values(Product.model_validate_json(record))
                fresh[pid] = (hash(record), found[pid])
        if fresh:
            with self._facet_lock:
                self._facets.update(fresh)
                while len(self._facets) > FACET_CACHE_SIZE:
                    self._facets.popitem(last=False)
        return found

    def _personalise(
        self, query: str, candidates: Sequence[Candidate], profile: ShopperProfile, settings: Settings
    ) -> list[Candidate]:
        ids = [c.product_id for c in candidates[: settings.personalisation.depth]]
        wants_vectors = profile.vector is not None and settings.personalisation.vector_weight > 0
        vectors = self.vectors_of(ids) if wants_vectors else {}
        facets = self.product_facets(ids)
        return personalise(candidates, {}, vectors, profile, settings.personalisation, facets=facets, query=query)

    def _diversify(self, candidates: Sequence[Candidate], settings: Settings) -> list[Candidate]:
        ids = [c.product_id for c in candidates[: settings.diversity.depth]]
        leg = self.legs.get(DENSE)
        vectors: dict[str, np.ndarray] = leg.vectors_of(ids) if isinstance(leg, StoredVectors) else {}
        categories = {pid: p.category for pid, p in self.store.get(ids).items()}
        return mmr(candidates, similarity_matrix(ids, vectors, categories), settings.diversity)

    def _with_deadline(self, fn: Callable[[], T], timeout_s: float, stage: Stage) -> T:
        future = self._pools[stage].submit(fn)
        try:
            return future.result(timeout=timeout_s)
        except FutureTimeout:
            future.cancel()
            raise StageError(stage, TimeoutError(f"timed out after {timeout_s:g}s")) from None
        except Exception as exc:
            raise StageError(stage, exc) from exc

    @staticmethod
    def _timed(ranking: Ranking, stage: str, fn: Callable[[], T]) -> T:
        started = time.perf_counter()
        try:
            return fn()
        finally:
            ranking.timings_ms[stage] = (time.perf_counter() - started) * 1000

    def close(self) -> None:
        for pool in self._pools.values():
            pool.shutdown(wait=False, cancel_futures=True)
        self.store.close()


def _held_to(timeout_s: float, deadline: float | None, now: float) -> float:
    """A stage's ``timeout_s`` cut to what is left at ``now`` before ``deadline`` (None: not cut); 0 or less when
    the deadline has passed."""
    return timeout_s if deadline is None else min(timeout_s, deadline - now)


def _clocked(fn: Callable[..., T], *args) -> tuple[T, float]:
    """``fn(*args)`` and its own duration in ms, measured where it ran rather than where it was awaited."""
    started = time.perf_counter()
    result = fn(*args)
    return result, (time.perf_counter() - started) * 1000
