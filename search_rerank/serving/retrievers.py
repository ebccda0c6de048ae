"""Elasticsearch 9's ``retriever`` search bodies mapped onto the pipeline.

A retriever tree describes a multi-stage search: first-stage retrievers
(``standard`` for a Query DSL query, ``knn`` for a vector search), a fusion of
them (``rrf``, ``linear``), a reranker (``text_similarity_reranker``,
``rescorer``) and, since 9.3, a ``diversify`` (MMR) stage. The pipeline has
exactly those stages, in that order, so a tree that follows it maps onto one
pipeline call:

- ``standard`` is the lexical leg: its ``query`` goes through the same Query
  DSL translation as a body's top-level ``query``; ``min_score`` drops the
  leg's candidates scored below it;
- ``knn`` is the dense leg: ``query_vector_builder.text_embedding.model_text``
  is encoded by our bi-encoder (whatever ``model_id`` says), a client's
  ``query_vector`` is searched as it is when its dimension is the index's;
  ``k`` is the leg's candidates, ``similarity`` the least cosine kept;
- ``rrf`` / ``linear`` set the fusion: method, per-retriever weights,
  ``rank_constant``, ``normalizer``, and ``rank_window_size`` as each leg's
  candidates;
- ``text_similarity_reranker`` is our reranker: ``rank_window_size`` its
  window, ``inference_text`` the query it reads, ``min_score`` the least
  reranker score kept; a ``rescorer`` whose rescore query is a text query is
  the same stage, reading that text;
- ``diversify`` (type ``mmr``) is the MMR stage with its ``lambda`` and
  ``rank_window_size`` as depth; its ``size`` caps the results;
- ``pinned`` (9.1), around the rest of the tree, puts its ``ids`` or
  ``docs`` first, as a ``pinned`` query around the tree's query (its
  filters included, as Elasticsearch rewrites it) does (serving.pinned).

Filters anywhere in the tree hold every leg they apply to, as the pipeline
holds both legs to one set of filters; legs the tree does not name are left
out (and the response says so). A tree the pipeline cannot express (an
``rrf`` inside an ``rrf``, two ``standard`` retrievers with their own
queries, a reranker inside a fusion, legs with different filters) is a 501
naming the part, never a different search; a bad value is a 400 naming its
field (``retriever.rrf.rank_constant``). Stages the tree does not mention
run as the deployment configures them (the reranker, the long-tail boost),
as they do for a body with a top-level ``query``: ranking is the pipeline's.
The response's ``search_rerank.retriever`` section says how the tree was
mapped.

Elasticsearch 8's hybrid search, before retrievers, is mapped the same way
(:meth:`_Planner.top_level`), as Elastic documents its retriever equivalent: a
top-level ``knn`` (Searchkit's ``getKnnQuery``, Elastic's kNN examples) is the
``knn`` retriever, beside the body's ``query`` (or its one ``sub_searches``
query) as the ``standard`` one; ``rank.rrf`` is the ``rrf`` above them. Without
a ``rank`` Elasticsearch adds the two scores; here the legs are fused as the
deployment's fusion fuses them, which is what the service is for. The errors
name the body's own keys (``knn.k``, ``rank.rrf.rank_constant``). A ``knn``
``filter`` holds the kNN search alone in Elasticsearch, the pipeline holds both
legs to one set of filters: beside a query, a kNN filter the query's own
``bool.filter`` holds too (as Searchkit sends them) changes nothing, any other
is a 501 naming it.

A tree's windows set what the search costs (``rank_window_size`` and ``k``
the candidates per leg, the reranker's window, the MMR depth), so a value
above the served setting is refused, as Elasticsearch refuses a window past
its limits rather than answering another search: a 403
``security_exception`` naming the field, unless the request carries the
admin token (see cost_limits). Without ``k``, a ``knn`` asks for the page
size, at most the served candidates.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.candidate import Candidate
from ..core.errors import ConfigError
from ..core.pipeline import SearchPipeline
from ..core.retrieval import DENSE, LEXICAL, Stage, leg_candidates
from ..core.settings import RerankSettings, Settings
from .body_checks import a_count, a_string, an_object, known_keys, one_of, single_key
from .cost_limits import check_cost
from .embedded_search import ConstrainedLeg
from .es_compat import EsSearch, InvalidQuery, Unsupported, pinned_ids
from .pinned import PINNED

RETRIEVER = "retriever"
LEAVES = ("standard", "knn")
FUSIONS = ("rrf", "linear")
RERANKERS = ("text_similarity_reranker", "rescorer")
# Retrievers of Elasticsearch with no stage here.
OTHER_RETRIEVERS = ("rule",)
# Top-level keys that say what to retrieve or how to order and page it, which a retriever replaces (Elasticsearch
# refuses both: its search request's validation; a standard retriever takes its own sort and search_after).
REPLACED_KEYS = ("query", "knn", "rank", "sub_searches", "sort", "search_after", "terminate_after", "rescore")
HYBRID_KEYS = ("knn", "rank", "sub_searches")
"""Elasticsearch 8's hybrid search at the top of a body (:meth:`_Planner.top_level`)."""
DENSE_QUERIES = ("knn", "semantic")
"""Queries that search by meaning: the knn query (8.12) and the semantic query (8.15), searched by the dense leg
where they make a kNN or hybrid search (:meth:`_Planner.query_knn`)."""
RANKERS = ("rrf",)
ORDERED_KEYS = ("sort", "search_after", "pit", "collapse", "suggest")
"""Keys that make a page the engine's own order, not a ranking: a hybrid search cannot have them here."""
NORMALIZERS = ("none", "minmax", "l2_norm")
MAX_WINDOW = 10_000  # Elasticsearch's limit on rank_window_size and num_candidates
ES_WINDOW = 10  # Elasticsearch's default rank_window_size (rrf, linear, text_similarity_reranker, diversify)
ES_RANK_CONSTANT = 60
TEXT_QUERIES = ("match", "match_phrase", "match_phrase_prefix", "match_bool_prefix")
FIELDLESS_TEXT_QUERIES = ("multi_match", "combined_fields", "query_string", "simple_query_string")
NOT_IN_TREE = "not in the retriever tree"
NO_QUERY = "no query beside the top-level knn"


# ------------------------------------------------------------------ what the pipeline is asked


class AskedLeg:
    """A leg searched as one retriever of the tree asks: its own text or vector, its least score, or not at all.

    ``brings_query`` tells the pipeline that the leg needs no words from the
    search (a client's vector), so a search without text still runs it.
    """

    def __init__(
        self,
        leg: Any,
        text: str | None = None,
        vector: np.ndarray | None = None,
        min_score: float | None = None,
        off: bool = False,
    ):
        self.leg = leg
        self.name = leg.name
        self.text = text
        self.vector = vector
        self.min_score = min_score
        self.off = off
        self.brings_query = vector is not None or bool(text)

    def search(self, query: str, k: int, filters: Any = None) -> list[Candidate]:
        if self.off:
            return []
        if self.vector is not None:
            found = leg_candidates(self.name, self.leg.search_vector(self.vector, k, filters))
        else:
            found = self.leg.search(query if self.text is None else self.text, k, filters)
        return found if self.min_score is None else [c for c in found if c.score >= self.min_score]

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("leg")  # not self.leg: a half-built copy must not recurse
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


class AskedReranker:
    """The reranker reading the query the tree names (``inference_text``), keeping what scores ``min_score``."""

    def __init__(self, reranker: Any, query: str | None, min_score: float | None):
        self.reranker = reranker
        self.query = query
        self.min_score = min_score

    def warm_up(self) -> None:
        self.reranker.warm_up()

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]:
        out = self.reranker.run(query if self.query is None else self.query, candidates, texts, settings)
        if self.min_score is None:
            return out
        # Past the window nothing was scored: Elasticsearch returns only the window's documents.
        return [c for c in out if c.features.get("rerank", -math.inf) >= self.min_score]

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("reranker")  # not self.reranker: a half-built copy must not recurse
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)


@dataclass
class Leaf:
    """A first-stage retriever (``standard`` or ``knn``) and what the fusion above it says of it."""

    kind: str
    path: str
    spec: Mapping[str, Any]
    filters: list[Any]
    weight: float = 1.0
    normalizer: str | None = None
    entry: str = ""
    """Where the fusion lists it (``retriever.linear.retrievers[1]``): its weight and normalizer are there."""


@dataclass
class RetrieverPlan:
    """A retriever tree as one pipeline search: the body the Query DSL translation reads, the settings, the legs."""

    body: dict[str, Any]
    settings: Settings
    section: dict[str, Any]
    """``search_rerank.retriever`` in the response: how the tree was mapped."""
    ignored: list[str] = field(default_factory=list)
    text: str | None = None
    """The search's words when the tree has no ``standard`` retriever (a knn's ``model_text``)."""
    lexical_off: bool = False
    lexical_min_score: float | None = None
    dense_text: str | None = None
    dense_vector: np.ndarray | None = None
    dense_similarity: float | None = None
    rerank_query: str | None = None
    rerank_min_score: float | None = None
    size_cap: int | None = None
    skipped: dict[str, str] = field(default_factory=dict)
    origins: list[tuple[str, str]] = field(default_factory=list)
    """Where the parts of :attr:`body`'s query were in the request: (their path in ``body``, in the request)."""

    def sent(self, path: str) -> str:
        """``path`` in :attr:`body` as the request has it (a retriever's query, a knn's filter)."""
        for made, at in sorted(self.origins, key=lambda pair: -len(pair[0])):
            if path == made or path.startswith((f"{made}.", f"{made}[")):
                return at + path.removeprefix(made)
        return path

    @property
    def browses(self) -> bool:
        """Whether a search without words is a listing: not when the dense leg brings its own text or vector,
        as a ``knn`` answers its nearest products in Elasticsearch."""
        return self.dense_text is None and self.dense_vector is None

    def search(self, search: EsSearch) -> EsSearch:
        """The translated search with the tree's words (when no ``standard`` gave any) and ``diversify.size``."""
        changes: dict[str, Any] = {}
        if self.text is not None:
            changes["text"] = self.text
        if self.size_cap is not None:
            changes["size"] = max(0, min(search.size, self.size_cap - search.offset))
        return dataclasses.replace(search, **changes) if changes else search

    def pipeline(self, view: SearchPipeline) -> SearchPipeline:
        """``view`` with its legs and reranker asked as the tree asks them (call it on the request's last view)."""
        legs = {}
        for name, leg in view.legs.items():
            if name == LEXICAL and (self.lexical_off or self.lexical_min_score is not None):
                leg = AskedLeg(leg, min_score=self.lexical_min_score, off=self.lexical_off)
            elif name == DENSE and (
                self.dense_text is not None or self.dense_vector is not None or self.dense_similarity is not None
            ):
                leg = _under_constraint(
                    leg, lambda inner: AskedLeg(inner, self.dense_text, self.dense_vector, self.dense_similarity)
                )
            legs[name] = leg
        view = view.with_legs(legs)
        if view.reranker is not None and (self.rerank_query is not None or self.rerank_min_score is not None):
            view = view.with_reranker(AskedReranker(view.reranker, self.rerank_query, self.rerank_min_score))
        return view

    def complete(self, response: dict[str, Any]) -> None:
        """Say in the response how the tree was mapped, and why the stages it leaves out were skipped."""
        section = response["search_rerank"]
        section["retriever"] = self.section
        section["ignored"] = list(dict.fromkeys([*section.get("ignored", []), *self.ignored]))
        skipped = section.get("skipped")
        if isinstance(skipped, dict):
            skipped.update({k: v for k, v in self.skipped.items() if k in skipped or k == LEXICAL})


def _under_constraint(leg: Any, wrap) -> Any:
    """``wrap`` applied beneath the embedded engine's constraint, so that what the leg finds is still checked."""
    if isinstance(leg, ConstrainedLeg):
        return ConstrainedLeg(wrap(leg.leg), leg.lexical, leg.constraint, leg.text)
    return wrap(leg)


# ------------------------------------------------------------------ the tree


def plan(
    body: Mapping[str, Any], settings: Settings, pipeline: SearchPipeline, admin: bool = False
) -> RetrieverPlan | None:
    """Map ``body["retriever"]``, or Elasticsearch 8's top-level hybrid search (:data:`HYBRID_KEYS`), onto the
    pipeline; None for a body with neither. Raises InvalidQuery (400) or Unsupported (501) naming the part, or,
    unless ``admin`` (the request carries the admin token), CostRaised (403) for a window above the served
    setting."""
    if body.get(RETRIEVER) is not None:
        for key in REPLACED_KEYS:
            if body.get(key) is not None:
                raise InvalidQuery(key, f"cannot specify [{RETRIEVER}] and [{key}]")
        return _Planner(body, settings, pipeline, admin).run()
    if any(body.get(key) not in (None, [], {}) for key in HYBRID_KEYS) or _dense_clauses(body.get("query")):
        return _Planner(body, settings, pipeline, admin).top_level()
    return None


class _Planner:
    def __init__(self, body: Mapping[str, Any], settings: Settings, pipeline: SearchPipeline, admin: bool):
        self.body = body
        self.settings = settings
        self.pipeline = pipeline
        self.admin = admin
        self.size = _page_size(body.get("size", 10))
        self.ignored: list[str] = []
        self.filters: list[Any] = []  # the filters of the stages above the first stage, which hold every leg
        self.overrides: dict[str, dict[str, Any]] = {}
        self.section: dict[str, Any] = {}
        self.out = RetrieverPlan(body={}, settings=settings, section=self.section)
        self.pins: dict[str, Any] | None = None
        """The ``ids`` or ``docs`` a ``pinned`` retriever puts first."""
        self.pinned_filters: list[Any] = []
        """A ``pinned`` retriever's own filters: they hold its products too."""
        self.filter_origins: list[str] = []
        self.pinned_origins: list[str] = []
        """Where :attr:`filters` and :attr:`pinned_filters` are in the body, each's, for a refusal to name."""

    def run(self) -> RetrieverPlan:
        node, path = self.body[RETRIEVER], RETRIEVER
        stages: list[str] = []
        while True:
            kind, spec = single_key(node, path)
            where = f"{path}.{kind}"
            spec = an_object(spec, where)
            if kind == "diversify":
                if stages:
                    raise Unsupported(where, f"diversify inside {stages[-1]}: the pipeline diversifies last")
                self._diversify(spec, where)
            elif kind in RERANKERS:
                if any(s in RERANKERS for s in stages):
                    raise Unsupported(where, f"{kind} inside {stages[-1]}: the pipeline reranks once")
                self._rerank(kind, spec, where)
            elif kind in FUSIONS:
                leaves = self._fusion(kind, spec, where)
                break
            elif kind in LEAVES:
                leaves = [Leaf(kind, where, spec, _filters(spec.get("filter"), f"{where}.filter"))]
                self.section["first_stage"] = kind
                break
            elif kind == PINNED:
                if stages:
                    raise Unsupported(where, f"pinned inside {stages[-1]}: the pinned products come first, last")
                self._pinned(spec, where)
            elif kind in OTHER_RETRIEVERS:
                raise Unsupported(where, f"the {kind} retriever")
            else:
                raise InvalidQuery(where, f"unknown retriever [{kind}]")
            stages.append(kind)
            if RETRIEVER not in spec:
                raise InvalidQuery(f"{where}.{RETRIEVER}", "required")
            node, path = spec[RETRIEVER], f"{where}.{RETRIEVER}"
        return self._planned(leaves, RETRIEVER)

    def top_level(self) -> RetrieverPlan:
        """Elasticsearch 8's hybrid search: ``query`` (or one ``sub_searches`` query) as the ``standard``
        retriever, the top-level ``knn`` as the ``knn`` one, ``rank.rrf`` as the ``rrf`` above them; a knn or
        semantic query the query holds as the top-level ``knn`` (:meth:`query_knn`)."""
        lifted, query = self.query_knn()
        leaves = self._queries(query)
        knn = self._top_level_knn()
        if knn is not None and lifted is not None:
            raise Unsupported(lifted.path, "a kNN query beside a top-level knn (the pipeline has one dense leg)")
        knn = knn or lifted
        rank = self.body.get("rank")
        if knn is None and rank in (None, {}):
            # One sub_searches query, alone: the body's query, searched as the deployment searches a query.
            self.out.body = {k: v for k, v in self.body.items() if k not in HYBRID_KEYS}
            self.out.body.update({"query": leaves[0].spec["query"]} if leaves else {})
            return self.out
        for key in ORDERED_KEYS:
            if self.body.get(key) not in (None, [], {}) and not (key == "sort" and _by_score(self.body[key])):
                raise Unsupported(key, "beside a top-level knn or rank (the page is the pipeline's ranking)")
        if knn is not None:
            if leaves and knn.filters:
                _held_by_query(knn, leaves[0].spec["query"])
                knn = dataclasses.replace(knn, filters=[])
            leaves.append(knn)
        if rank not in (None, {}):
            kind, spec = single_key(rank, "rank")
            if kind not in RANKERS:
                raise Unsupported(f"rank.{kind}", "a rank other than rrf")
            if len(leaves) < 2:
                raise InvalidQuery("rank", "[rank] requires a minimum of [2] result sets: a query and a knn search")
            where = f"rank.{kind}"
            spec = an_object(spec, where)
            known_keys(spec, where, {"rank_constant", "rank_window_size", "window_size"})
            if "window_size" in spec and "rank_window_size" in spec:
                raise InvalidQuery(f"{where}.window_size", "cannot specify both window_size and rank_window_size")
            window_key = "window_size" if "window_size" in spec else "rank_window_size"  # 8.8-8.13, then 8.14 on
            self._fuse(kind, spec, where, leaves, self._rank_window(spec.get(window_key), f"{where}.{window_key}"))
        else:
            self.section["first_stage"] = "knn" if len(leaves) == 1 else "query and knn, the service's fusion"
        return self._planned(leaves, "knn")

    def query_knn(self) -> tuple[Leaf | None, Any]:
        """Elasticsearch's knn and semantic queries where they make a kNN or hybrid search, as the top-level ``knn``
        they are equivalent to: the whole ``query``, or one clause of a ``bool``'s ``should`` (Elastic's hybrid
        example: a ``match`` and a ``knn`` as should clauses), the rest of the bool staying the lexical leg's
        query. Returns the kNN leaf (None: the query holds none) and the query left (None: nothing left).

        Both forms match what either part matches, as a query beside a top-level ``knn`` does, as long as the bool
        asks no more: a ``must`` beside the clause (the kNN would only score the must's matches) or a
        ``minimum_should_match`` above 1 (counting the kNN) is a 501 naming it. A knn or semantic clause anywhere
        else (a filter, a must, a nested bool) stays what the Query DSL translation makes of it, a 501."""
        query = self.body.get("query")
        found = _dense_clauses(query)
        if not found:
            return None, query
        if len(found) > 1:
            raise Unsupported(found[1], "a second kNN query (the pipeline has one dense leg)")
        kind, spec = single_key(query, "query")  # found: an object of one key
        if kind in DENSE_QUERIES:
            return _dense_leaf(kind, spec, f"query.{kind}", self.ignored), None
        should = spec["should"]
        clauses = should if isinstance(should, list) else [should]
        index = next(i for i, clause in enumerate(clauses) if _dense_kind(clause))
        where = found[0]
        if spec.get("must") not in (None, [], {}):
            raise Unsupported(where, "a kNN query beside bool.must (it would only score the must's matches)")
        if spec.get("minimum_should_match") not in (None, 1, "1"):
            raise Unsupported("query.bool.minimum_should_match", "beside a kNN query (the kNN search is not counted)")
        ((dense_kind, dense_spec),) = clauses[index].items()
        leaf = _dense_leaf(dense_kind, dense_spec, f"{where}.{dense_kind}", self.ignored)
        rest = clauses[:index] + clauses[index + 1 :]
        kept = {key: value for key, value in spec.items() if key != "should"} | ({"should": rest} if rest else {})
        if not rest:
            kept.pop("minimum_should_match", None)
        return leaf, ({"bool": kept} if kept else None)

    def _queries(self, query: Any) -> list[Leaf]:
        """The lexical leg's leaf: ``query`` (the body's, less a kNN query it held), or the body's
        ``sub_searches`` (one query: there is one leg)."""
        subs = self.body.get("sub_searches")
        if subs in (None, []):
            return [] if query is None else [Leaf("standard", "query", {"query": an_object(query, "query")}, [])]
        if self.body.get("query") is not None:
            raise InvalidQuery("sub_searches", "cannot specify both [query] and [sub_searches]")
        if not isinstance(subs, list):
            raise InvalidQuery("sub_searches", "expected a list of objects with a query")
        for i, sub in enumerate(subs):
            known_keys(an_object(sub, f"sub_searches[{i}]"), f"sub_searches[{i}]", {"query"})
            _required(sub, "query", f"sub_searches[{i}]")
            if i > 0:
                raise Unsupported(f"sub_searches[{i}]", "a second query (the pipeline has one lexical leg)")
        return [Leaf("standard", "sub_searches[0]", {"query": subs[0]["query"]}, [])]

    def _top_level_knn(self) -> Leaf | None:
        """The ``knn`` as a knn retriever's leaf (:func:`_dense_leaf`)."""
        spec, where = self.body.get("knn"), "knn"
        if spec in (None, [], {}):
            return None
        if isinstance(spec, list):
            if len(spec) > 1:
                raise Unsupported("knn[1]", "a second kNN search (the pipeline has one dense leg)")
            spec, where = spec[0], "knn[0]"
        return _dense_leaf("knn", spec, where, self.ignored)

    def _planned(self, leaves: list[Leaf], root: str) -> RetrieverPlan:
        self._legs(leaves)
        try:
            self.out.settings = self.settings.override(**self.overrides) if self.overrides else self.settings
        except ConfigError as exc:  # the values were checked above, against the settings' own limits
            raise InvalidQuery(root, "the search's values do not fit this service's settings") from exc
        self.out.ignored = self.ignored
        return self.out

    # ------------------------------------------------------------ stages above the first

    def _diversify(self, spec: Mapping[str, Any], where: str) -> None:
        """MMR over the top ``rank_window_size``; ES's ``query_vector`` is not needed: relevance is the score."""
        ignored = {"query_vector", "query_vector_builder", "top_n_chunks"}
        known_keys(spec, where, {"type", "field", "lambda", "rank_window_size", RETRIEVER, "size", "_name"} | ignored)
        _known_ignored(spec, where, ignored, self.ignored, "MMR's relevance is the pipeline's score")
        kind = a_string(_required(spec, "type", where), f"{where}.type")
        if kind != "mmr":
            raise InvalidQuery(f"{where}.type", f"unknown diversification type [{kind}] (only mmr)")
        a_string(_required(spec, "field", where), f"{where}.field")
        lam = _number(_required(spec, "lambda", where), f"{where}.lambda")
        if not 0.0 <= lam <= 1.0:
            raise InvalidQuery(f"{where}.lambda", "must be between 0.0 and 1.0")
        depth = _window(spec.get("rank_window_size", ES_WINDOW), f"{where}.rank_window_size", limit=1000)
        self._within(depth, "diversity.depth", f"{where}.rank_window_size")
        if "size" in spec:
            self.out.size_cap = a_count(spec["size"], f"{where}.size", minimum=1)
        self.overrides["diversity"] = {"enabled": True, "lambda_": lam, "depth": depth}
        self.section["diversity"] = {"lambda": lam, "depth": depth, "size": self.out.size_cap}

    def _pinned(self, spec: Mapping[str, Any], where: str) -> None:
        """The products put first, as Elasticsearch's pinned retriever does: a ``pinned`` query around the rest of
        the tree's query, its filters included (see serving.pinned)."""
        known_keys(spec, where, {"ids", "docs", RETRIEVER, "rank_window_size", "filter", "min_score", "_name"})
        if "min_score" in spec:
            raise Unsupported(f"{where}.min_score", "a least score of the pinned retriever's results")
        if "rank_window_size" in spec:
            _window(spec["rank_window_size"], f"{where}.rank_window_size")
            _known_ignored(spec, where, {"rank_window_size"}, self.ignored, "the pipeline's windows rank")
        ids = pinned_ids(spec, where)  # checked as a pinned query's
        listed = [key for key in ("ids", "docs") if spec.get(key)]
        if len(listed) != 1:
            raise InvalidQuery(where, "either 'ids' or 'docs' must be provided and non-empty for pinned retriever")
        self.pinned_filters = _filters(spec.get("filter"), f"{where}.filter")
        self.pinned_origins = _paths(spec.get("filter"), f"{where}.filter")
        self.pins = {listed[0]: spec[listed[0]]}
        self.section[PINNED] = ids

    def _rerank(self, kind: str, spec: Mapping[str, Any], where: str) -> None:
        if self.pipeline.reranker is None or self.settings.rerank.model is None:
            raise Unsupported(where, "no reranker model is configured on this service (rerank.model)")
        self.filters += _filters(spec.get("filter"), f"{where}.filter")
        self.filter_origins += _paths(spec.get("filter"), f"{where}.filter")
        if kind == "text_similarity_reranker":
            keys = {RETRIEVER, "field", "inference_text", "rank_window_size", "min_score", "filter", "_name"}
            known_keys(spec, where, keys | {"inference_id", "chunk_rescorer"})
            _known_ignored(spec, where, {"inference_id"}, self.ignored, "the service's reranker ranks")
            if "chunk_rescorer" in spec:
                raise Unsupported(f"{where}.chunk_rescorer", "the reranker reads each product's text whole")
            a_string(_required(spec, "field", where), f"{where}.field")
            query = a_string(_required(spec, "inference_text", where), f"{where}.inference_text")
            window = _window(spec.get("rank_window_size", ES_WINDOW), f"{where}.rank_window_size", limit=1000)
            self._within(window, "rerank.window", f"{where}.rank_window_size")
            if "min_score" in spec:
                self.out.rerank_min_score = _number(spec["min_score"], f"{where}.min_score")
        else:
            known_keys(spec, where, {RETRIEVER, "rescore", "filter", "_name"})
            query, window = self._rescore(spec.get("rescore"), f"{where}.rescore")
        self.out.rerank_query = query
        self.overrides["rerank"] = {"window": window}
        self.section["rerank"] = {
            "from": kind,
            "window": window,
            "query": query,
            "min_score": self.out.rerank_min_score,
        }

    def _rescore(self, rescore: Any, where: str) -> tuple[str, int]:
        """A ``query`` rescore by a text query is a reranking by that text; other rescorers have no stage here."""
        if rescore is None:
            raise InvalidQuery(where, "required")
        if isinstance(rescore, list):
            if len(rescore) != 1:
                raise Unsupported(where, "several rescorers in sequence (the pipeline reranks once)")
            rescore, where = rescore[0], f"{where}[0]"
        rescore = an_object(rescore, where)
        known_keys(rescore, where, {"window_size", "query", "learning_to_rank"})
        if "query" not in rescore:
            other = next(iter(rescore.keys() - {"window_size"}), "query")
            raise Unsupported(f"{where}.{other}", "a rescorer other than a query rescore")
        window = _window(rescore.get("window_size", ES_WINDOW), f"{where}.window_size", limit=1000)
        if window < self.size:
            raise InvalidQuery(f"{where}.window_size", f"must be greater than or equal to size [{self.size}]")
        self._within(window, "rerank.window", f"{where}.window_size")
        spec = an_object(rescore["query"], f"{where}.query")
        known_keys(spec, f"{where}.query", {"rescore_query", "query_weight", "rescore_query_weight", "score_mode"})
        _known_ignored(
            spec,
            f"{where}.query",
            {"query_weight", "rescore_query_weight", "score_mode"},
            self.ignored,
            "the reranker's blend weighs",
        )
        where = f"{where}.query.rescore_query"
        kind, query = single_key(_required(spec, "rescore_query", f"{where}.query"), where)
        text = _query_text(kind, query, f"{where}.{kind}")
        if text is None:
            raise Unsupported(
                f"{where}.{kind}",
                "a rescore query other than a text query (it maps onto the reranker, which reads text)",
            )
        return text, window

    # ------------------------------------------------------------ fusion and first stage

    def _fusion(self, kind: str, spec: Mapping[str, Any], where: str) -> list[Leaf]:
        keys = {"retrievers", "rank_window_size", "filter", "query", "fields", "min_score", "_name"}
        known_keys(spec, where, keys | ({"rank_constant"} if kind == "rrf" else {"normalizer"}))
        if "min_score" in spec:
            raise Unsupported(f"{where}.min_score", "a least fused score")
        self.filters += _filters(spec.get("filter"), f"{where}.filter")
        self.filter_origins += _paths(spec.get("filter"), f"{where}.filter")
        window = self._rank_window(spec.get("rank_window_size"), f"{where}.rank_window_size")
        top_normalizer = None
        if kind == "linear" and "normalizer" in spec:
            top_normalizer = one_of(spec["normalizer"], NORMALIZERS, f"{where}.normalizer")
        if "query" in spec:
            leaves = self._multi_field(kind, spec, where, top_normalizer)
        else:
            leaves = self._children(kind, spec, where, top_normalizer)
        self._fuse(kind, spec, where, leaves, window, top_normalizer)
        return leaves

    def _rank_window(self, value: Any, where: str) -> int | None:
        if value is None:
            return None
        window = _window(value, where)
        if window < self.size:
            raise InvalidQuery(where, f"must be greater than or equal to size [{self.size}]")
        return window

    def _fuse(
        self,
        kind: str,
        spec: Mapping[str, Any],
        where: str,
        leaves: list[Leaf],
        window: int | None,
        top_normalizer: str | None = None,
    ) -> None:
        """The fusion ``kind`` of the leaves as the settings override, and the legs' candidates as its window."""
        fusion: dict[str, Any] = {"method": kind}
        if kind == "rrf":
            constant = spec.get("rank_constant", ES_RANK_CONSTANT)
            fusion["rank_constant"] = float(a_count(constant, f"{where}.rank_constant", minimum=1))
        else:
            normalizers = [leaf.normalizer or top_normalizer or "none" for leaf in leaves]
            for leaf, normalizer in zip(leaves, normalizers):
                if normalizer != normalizers[0]:
                    raise Unsupported(
                        f"{leaf.entry}.normalizer",
                        f"[{normalizer}] beside [{normalizers[0]}]: linear fusion here normalises every leg alike",
                    )
            fusion["normalization"] = normalizers[0]
        fusion["weights"] = {_leg(leaf): leaf.weight for leaf in leaves}
        for leg in (LEXICAL, DENSE):
            fusion["weights"].setdefault(leg, 1.0)
        # The client named its weights: they hold for every query, one naming a product code too, as in Elasticsearch.
        self.overrides["fusion"] = {**fusion, "identifier_weights": fusion["weights"]}
        self.section["first_stage"] = kind
        self.section["fusion"] = {**fusion, "rank_window_size": window}
        if window is not None:
            for leaf in leaves:  # one of each kind: a second is refused above
                self._within(window, f"{_leg(leaf)}.candidates", f"{where}.rank_window_size")
            self.overrides.setdefault("lexical", {})["candidates"] = window
            self.overrides.setdefault("dense", {})["candidates"] = window

    def _children(self, kind: str, spec: Mapping[str, Any], where: str, normalizer: str | None) -> list[Leaf]:
        children = _required(spec, "retrievers", where)
        if not isinstance(children, list) or not children:
            raise InvalidQuery(f"{where}.retrievers", "expected a non-empty list of retrievers")
        if kind == "rrf" and len(children) < 2:
            raise InvalidQuery(f"{where}.retrievers", "the rrf retriever needs two or more retrievers")
        leaves: list[Leaf] = []
        for i, entry in enumerate(children):
            at = f"{where}.retrievers[{i}]"
            entry = an_object(entry, at)
            weight, leaf_normalizer = 1.0, None
            if RETRIEVER in entry:  # the wrapped form: {"retriever": ..., "weight": w}
                known_keys(entry, at, {RETRIEVER, "weight"} | ({"normalizer"} if kind == "linear" else set()))
                if "weight" in entry:
                    weight = _number(entry["weight"], f"{at}.weight")
                    if weight < 0:
                        raise InvalidQuery(f"{at}.weight", "must be greater than or equal to 0")
                if "normalizer" in entry:
                    leaf_normalizer = one_of(entry["normalizer"], NORMALIZERS, f"{at}.normalizer")
                entry, at = an_object(entry[RETRIEVER], f"{at}.{RETRIEVER}"), f"{at}.{RETRIEVER}"
            elif kind == "linear":
                raise InvalidQuery(at, "expected an object with retriever, weight and normalizer")
            child, child_spec = single_key(entry, at)
            child_at = f"{at}.{child}"
            if child in FUSIONS:
                raise Unsupported(child_at, f"{child} inside {kind}: the pipeline fuses once, its two legs")
            if child in RERANKERS or child == "diversify":
                raise Unsupported(
                    child_at, f"{child} inside {kind}: the pipeline reranks and diversifies the fused list"
                )
            if child == PINNED:
                raise Unsupported(child_at, f"pinned inside {kind}: the pinned products come first, after fusion")
            if child in OTHER_RETRIEVERS:
                raise Unsupported(child_at, f"the {child} retriever")
            if child not in LEAVES:
                raise InvalidQuery(child_at, f"unknown retriever [{child}]")
            if any(leaf.kind == child for leaf in leaves):
                leg = "lexical" if child == "standard" else "dense"
                raise Unsupported(child_at, f"a second {child} retriever (the pipeline has one {leg} leg)")
            child_spec = an_object(child_spec, child_at)
            own = _filters(child_spec.get("filter"), f"{child_at}.filter")
            leaves.append(Leaf(child, child_at, child_spec, own, weight, leaf_normalizer, f"{where}.retrievers[{i}]"))
        return leaves

    def _multi_field(self, kind: str, spec: Mapping[str, Any], where: str, normalizer: str | None) -> list[Leaf]:
        """The multi-field format (``query`` and ``fields``): the text for both legs, the fields the pipeline's."""
        if "retrievers" in spec:
            raise InvalidQuery(f"{where}.query", "cannot specify both query and retrievers")
        if kind == "linear" and normalizer is None:
            raise InvalidQuery(f"{where}.normalizer", "required when query is specified")
        text = a_string(spec["query"], f"{where}.query")
        if "fields" in spec:
            self.ignored.append(f"{where}.fields (the pipeline searches the product's fields)")
        standard = Leaf("standard", f"{where}.query", {"query": {"multi_match": {"query": text}}}, [])
        knn = Leaf("knn", f"{where}.query", {"text": text}, [])
        return [standard, knn] if self._dense_leg() is not None else [standard]

    def _legs(self, leaves: list[Leaf]) -> None:
        """The first stage: each leaf's leg, their one set of filters, and the body the Query DSL translation reads."""
        filters = self._common_filters(leaves)
        standard = next((leaf for leaf in leaves if leaf.kind == "standard"), None)
        knn = next((leaf for leaf in leaves if leaf.kind == "knn"), None)
        query = None
        if standard is not None:
            query = self._standard(standard)
        else:
            for key in ("aggs", "aggregations"):
                if self.body.get(key) not in (None, {}):
                    # Elasticsearch aggregates the k nearest; facets here count what the query matches, and
                    # without one that is the whole catalogue, a silently different answer.
                    raise Unsupported(key, "aggregations over a kNN search's nearest products (no query beside it)")
            self.out.lexical_off = True
            self.out.skipped[LEXICAL] = NOT_IN_TREE if RETRIEVER in self.body else NO_QUERY
        if knn is not None:
            self._knn(knn, has_text=standard is not None)
        else:
            self.overrides.setdefault("dense", {})["enabled"] = False
            self.out.skipped[DENSE] = NOT_IN_TREE
        # Where the query's parts were in the body: a refusal of one names that, not the query they make here.
        origins: list[tuple[str, str]] = []
        if query is not None and standard is not None:
            origins.append(("query", "query" if standard.path == "query" else f"{standard.path}.query"))
        if filters:
            query = {"bool": {"must": [] if query is None else [query], "filter": filters}}
            origins = _moved(origins, "query.bool.must[0]")
            origins += list(zip((f"query.bool.filter[{i}]" for i in range(len(filters))), self._origins(leaves)))
        if self.pins is not None:
            query = {PINNED: {**self.pins, "organic": {"match_all": {}} if query is None else query}}
            origins = _moved(origins, f"query.{PINNED}.organic")
            if self.pinned_filters:
                query = {"bool": {"must": [query], "filter": self.pinned_filters}}
                origins = _moved(origins, "query.bool.must[0]")
                origins += [(f"query.bool.filter[{i}]", at) for i, at in enumerate(self.pinned_origins)]
        self.out.origins = origins
        body = {k: v for k, v in self.body.items() if k not in (RETRIEVER, "query", *HYBRID_KEYS)}
        if query is not None:
            body["query"] = query
        self.out.body = body
        self.section["filters"] = len(filters)

    def _origins(self, leaves: list[Leaf]) -> list[str]:
        """Where each of :meth:`_common_filters`' filters is in the body."""
        own = _paths(leaves[0].spec.get("filter"), f"{leaves[0].path}.filter") if leaves else []
        return self.filter_origins + own

    def _common_filters(self, leaves: list[Leaf]) -> list[Any]:
        """The pipeline holds every leg to one set of filters, so the leaves' own filters must agree."""
        if len(leaves) == 2 and _canonical(leaves[0].filters) != _canonical(leaves[1].filters):
            raise Unsupported(
                f"{leaves[1].path}.filter",
                "filters that differ between the retrievers (the pipeline holds both legs to one set of filters; "
                "put them on the compound retriever)",
            )
        return self.filters + (leaves[0].filters if leaves else [])

    def _standard(self, leaf: Leaf) -> Any:
        spec, where = leaf.spec, leaf.path
        known_keys(
            spec,
            where,
            {"query", "filter", "min_score", "_name", "sort", "collapse", "search_after", "terminate_after"},
        )
        for key in ("sort", "collapse", "search_after", "terminate_after"):
            if key in spec:
                raise Unsupported(f"{where}.{key}", "in a standard retriever")
        if "min_score" in spec:
            self.out.lexical_min_score = _number(spec["min_score"], f"{where}.min_score")
        self.section["lexical"] = {"from": where, "min_score": self.out.lexical_min_score}
        query = spec.get("query")
        if query is not None:
            an_object(query, f"{where}.query")
        return query

    def _knn(self, leaf: Leaf, has_text: bool) -> None:
        spec, where = leaf.spec, leaf.path
        leg = self._dense_leg()
        if leg is None:
            raise Unsupported(where, "this service has no dense leg (dense.enabled = false or no dense index)")
        described: dict[str, Any] = {"from": where}
        if "text" in spec:  # the multi-field format's text
            described["query"] = "text"
            self.section["dense"] = described
            return
        known_keys(
            spec,
            where,
            {"field", "query_vector", "query_vector_builder", "k", "num_candidates", "filter", "similarity", "_name"}
            | {"rescore_vector", "inner_hits", "boost"},
        )
        _known_ignored(spec, where, {"rescore_vector"}, self.ignored, "vectors are not quantised")
        for key in ("inner_hits", "boost"):
            if key in spec:
                raise Unsupported(f"{where}.{key}", "in a knn retriever")
        described["field"] = a_string(_required(spec, "field", where), f"{where}.field")
        if ("query_vector" in spec) == ("query_vector_builder" in spec):
            raise InvalidQuery(where, "exactly one of [query_vector, query_vector_builder] must be provided")
        if "query_vector" in spec:
            self.out.dense_vector = _vector(spec["query_vector"], f"{where}.query_vector", _dim(leg))
            described["query"] = "query_vector"
        else:
            self.out.dense_text = _model_text(
                spec["query_vector_builder"], f"{where}.query_vector_builder", self.ignored
            )
            if not has_text:
                self.out.text = self.out.dense_text  # the search's words: what the reranker reads
            described["query"] = "model_text"
        k = a_count(spec.get("k", min(max(self.size, 1), self.settings.dense.candidates)), f"{where}.k", minimum=1)
        if k > MAX_WINDOW:
            raise InvalidQuery(f"{where}.k", f"must be at most {MAX_WINDOW}")
        candidates = a_count(
            spec.get("num_candidates", min(math.ceil(1.5 * k), MAX_WINDOW)), f"{where}.num_candidates", minimum=1
        )
        if candidates < k:
            raise InvalidQuery(f"{where}.num_candidates", f"cannot be less than [k] ({k})")
        if candidates > MAX_WINDOW:
            raise InvalidQuery(f"{where}.num_candidates", f"must be at most {MAX_WINDOW}")
        if "similarity" in spec:
            self.out.dense_similarity = _number(spec["similarity"], f"{where}.similarity")
        dense = self.overrides.setdefault("dense", {})
        dense["candidates"] = min(k, dense.get("candidates", k))  # a fusion's rank_window_size, checked there, holds it
        self._within(dense["candidates"], "dense.candidates", f"{where}.k")
        dense["num_candidates"] = candidates
        described.update(k=k, num_candidates=candidates, similarity=self.out.dense_similarity)
        self.section["dense"] = described
        if not has_text and self.out.dense_vector is not None and self.out.rerank_query is None:
            # Nothing to read for the reranker: a client's vector has no words.
            self.overrides.setdefault("rerank", {})["model"] = None
            self.out.skipped[Stage.RERANK] = "no query text to rerank by (the knn retriever's query_vector only)"

    def _within(self, asked: int, setting: str, field: str) -> None:
        """A window above the served ``setting`` needs the admin token (a 403 naming ``field``, see cost_limits)."""
        check_cost(asked, setting, self.settings, field, self.admin)

    def _dense_leg(self) -> Any:
        if not self.settings.dense.enabled:
            return None
        return self.pipeline.legs.get(DENSE)


# ------------------------------------------------------------------ pieces


def _leg(leaf: Leaf) -> str:
    return LEXICAL if leaf.kind == "standard" else DENSE


def _dim(leg: Any) -> int | None:
    return getattr(leg, "dim", None)


def _query_text(kind: str, spec: Any, where: str) -> str | None:
    """The words of a text query (``match`` and kin, ``multi_match`` and kin); None for any other query."""
    if kind in TEXT_QUERIES:
        _, value = single_key(spec, where)
        if isinstance(value, Mapping):
            return a_string(value.get("query"), f"{where}.query")
        return a_string(value, where)
    if kind in FIELDLESS_TEXT_QUERIES:
        return a_string(an_object(spec, where).get("query"), f"{where}.query")
    return None


def _model_text(builder: Any, where: str, ignored: list[str]) -> str:
    kind, spec = single_key(builder, where)
    if kind != "text_embedding":
        raise Unsupported(f"{where}.{kind}", "a query vector builder other than text_embedding")
    spec = an_object(spec, f"{where}.{kind}")
    known_keys(spec, f"{where}.{kind}", {"model_id", "model_text"})
    if "model_id" in spec:
        ignored.append(f"{where}.{kind}.model_id (the service's bi-encoder embeds the text)")
    text = a_string(_required(spec, "model_text", f"{where}.{kind}"), f"{where}.{kind}.model_text")
    if not text.strip():
        raise InvalidQuery(f"{where}.{kind}.model_text", "must not be empty")
    return text


def _vector(value: Any, where: str, dim: int | None) -> np.ndarray:
    if not isinstance(value, list) or not value:
        raise InvalidQuery(where, "expected a non-empty array of numbers")
    vector = np.array([_number(v, f"{where}[{i}]") for i, v in enumerate(value)], dtype=np.float32)
    if dim is not None and len(vector) != dim:
        raise InvalidQuery(where, f"has {len(vector)} dimensions; the index's vectors have {dim}")
    if not np.any(vector):
        raise InvalidQuery(where, "a zero vector has no direction to search in")
    return vector


def _dense_kind(clause: Any) -> str | None:
    """``knn`` or ``semantic`` when ``clause`` is that query, else None."""
    if isinstance(clause, Mapping) and len(clause) == 1:
        kind = next(iter(clause))
        return kind if kind in DENSE_QUERIES else None
    return None


def _dense_clauses(query: Any) -> list[str]:
    """Where ``query`` holds a knn or semantic query that :meth:`_Planner.query_knn` maps: the query itself, or
    clauses of its bool's ``should``."""
    kind = _dense_kind(query)
    if kind is not None:
        return [f"query.{kind}"]
    spec = query.get("bool") if isinstance(query, Mapping) and len(query) == 1 else None
    should = spec.get("should") if isinstance(spec, Mapping) else None
    if isinstance(should, list):
        return [f"query.bool.should[{i}]" for i, clause in enumerate(should) if _dense_kind(clause)]
    return ["query.bool.should"] if _dense_kind(should) else []


def _dense_leaf(kind: str, spec: Any, where: str, ignored: list[str]) -> Leaf:
    """A knn query as the knn retriever's leaf (the same keys but ``boost``, which weighs a sum of scores not
    made here); a semantic query as one embedding its ``query`` (its ``field``, a semantic_text field, names
    Elasticsearch's embeddings: the service's bi-encoder embeds the text)."""
    spec = dict(an_object(spec, where))
    if "boost" in spec:
        _number(spec.pop("boost"), f"{where}.boost")
        ignored.append(f"{where}.boost (the legs are fused, not their scores added)")
    if kind == "semantic":
        known_keys(spec, where, {"field", "query", "_name"})
        a_string(_required(spec, "field", where), f"{where}.field")
        text = a_string(_required(spec, "query", where), f"{where}.query")
        spec = {"field": spec["field"], "query_vector_builder": {"text_embedding": {"model_text": text}}}
    return Leaf("knn", where, spec, _filters(spec.get("filter"), f"{where}.filter"))


def _paths(value: Any, where: str) -> list[str]:
    """Where each of :func:`_filters`' clauses is in the body."""
    if value is None:
        return []
    return [f"{where}[{i}]" for i in range(len(value))] if isinstance(value, list) else [where]


def _moved(origins: list[tuple[str, str]], to: str) -> list[tuple[str, str]]:
    """``origins`` once the query they are in is put at ``to`` (inside a bool, a pinned query)."""
    return [(to + made.removeprefix("query"), at) for made, at in origins]


def _filters(value: Any, where: str) -> list[Any]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    for i, item in enumerate(items):
        an_object(item, f"{where}[{i}]" if isinstance(value, list) else where)
    return list(items)


def _by_score(sort: Any) -> bool:
    """Whether a ``sort`` is relevance alone (``_score``, descending), the order a ranking has."""
    for item in sort if isinstance(sort, list) else [sort]:
        if isinstance(item, str):
            name, order = item, None
        elif isinstance(item, Mapping) and len(item) == 1:
            ((name, order),) = item.items()
        else:
            return False
        if isinstance(order, Mapping):
            order = order.get("order")
        if name != "_score" or order not in (None, "desc"):
            return False
    return True


def _held_by_query(knn: Leaf, query: Any) -> None:
    """Refuse a top-level ``knn`` filter beside a query unless the query's own ``bool.filter`` holds it: the
    pipeline holds both legs to the query's filters, so only then is the kNN search filtered as asked."""
    held = set()
    if isinstance(query, Mapping) and isinstance(query.get("bool"), Mapping):
        held = set(_canonical(_filters(query["bool"].get("filter"), "query.bool.filter")))
    for clause in knn.filters:
        if _canonical([clause])[0] not in held:
            raise Unsupported(
                f"{knn.path}.filter",
                "a filter on the kNN search alone (the pipeline holds both legs to one set of filters: put it in "
                "the query's bool.filter too)",
            )


def _canonical(filters: list[Any]) -> list[str]:
    return sorted(json.dumps(f, sort_keys=True) for f in filters)


def _known_ignored(spec: Mapping[str, Any], where: str, keys: set[str], out: list[str], why: str) -> None:
    for key in sorted(keys & set(spec)):
        out.append(f"{where}.{key} ({why})")


def _required(spec: Mapping[str, Any], key: str, where: str) -> Any:
    if spec.get(key) is None:
        raise InvalidQuery(f"{where}.{key}", "required")
    return spec[key]


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidQuery(where, "expected a number")
    return float(value)


def _page_size(value: Any) -> int:
    """The body's ``size`` as far as the windows are checked against it; a bad one is parse_search's 400."""
    try:
        return max(int(value), 0)
    except (TypeError, ValueError, OverflowError):
        return 0


def _window(value: Any, where: str, limit: int = MAX_WINDOW) -> int:
    window = a_count(value, where, minimum=1)
    if window > MAX_WINDOW:
        raise InvalidQuery(where, f"must be at most {MAX_WINDOW}")
    if window > limit:
        raise Unsupported(where, f"more than {limit} (this stage's limit here)")
    return window
