"""Search the ranking settings on a dev split, and write the winner as a settings file the service loads.

Retrieval is the expensive part and does not depend on any tuned setting
except how many candidates each leg returns, so every dev query is retrieved
once, at the largest candidate count searched, and every trial ranks from
those cached lists with ``SearchPipeline.rank_from``, as the service ranks,
which cuts them to the trial's own count (a leg's top k at depth 100 is its
top k at depth k). Cross-encoder scores depend only on the (query,
product) pair, so each pair is scored once however many trials rerank it.

Relevance and long-tail exposure pull against each other, so by default the
search is multi-objective (nDCG@10, long-tail share of the top 10) and its
answer is the Pareto front; a user who knows the trade they want states it
as a constraint instead (``min_lt_share`` or ``max_ndcg_cost``) and gets the
single best trial that meets it. TPE with a fixed seed makes a run
repeatable.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np
import optuna
import tomli_w
from tqdm import tqdm

from ..core.candidate import Candidate
from ..core.errors import ConfigError
from ..core.identifiers import names_a_code
from ..core.pipeline import Ranking, SearchPipeline
from ..core.product import Product
from ..core.profile import ShopperProfile
from ..core.ranker_features import FieldScorer
from ..core.rerank import DEFAULT_BLEND, reranked
from ..core.retrieval import DENSE, LEXICAL, Retriever
from ..core.settings import LEXICAL_FIELDS, PROFILE_FACETS, RerankSettings, Settings, load_settings, read_settings_file
from ..core.store import ProductStore
from ..data.dataset import Query
from ..data.qrels import Qrels
from ..indexing.versions import write_atomically
from .evaluate import MEASURES, TOP, long_tail_share, relevance_metrics
from .exposure import tier_shares
from .significance import paired_test, randomisation_p

NDCG = "nDCG@10"
LT_SHARE = "lt_share@10"
TAIL_SHARE = "tail@10"
EXPOSURE_METRICS = (LT_SHARE, TAIL_SHARE)
"""What "long-tail exposure" counts: every product outside the popular head (``lt_share@10``), or only the
tail tier below head and torso (``tail@10``, see exposure.tier)."""
LONGTAIL_METHODS = ("off", "boost", "xquad")
LONGTAIL_TARGETS = ("long_tail", "tail")
RANK_PROGRESS_DELAY_S = 5.0
"""A ranking from the cache shows its progress once it has taken this long: one that reranks or ranks every query
with a model for the first time (an onboarding step measured with a CPU reranker, 6 queries a second on two shared
cores: some 17 minutes for the 6,400 dev queries of a Home Depot-sized dataset) shows how far it is, while the
tuner's later trials, ranked from the scores kept, stay quiet beside optuna's own bar."""
TUNED_SECTIONS = ("lexical", "dense", "fusion", "rerank", "longtail", "personalisation")
PERSONAL_PREFIX = "personal_"
"""Trial parameters of the personalisation stage: ``personal_<facet>`` weights, ``personal_vector_weight``,
``personal_cap``, ``personal_max_rise``."""


# ------------------------------------------------------------ what is searched


@dataclass(frozen=True)
class SearchSpace:
    """Bounds of the search; which parameters exist follows from the pipeline (legs, reranker)."""

    min_candidates: int = 50
    """A floor, not a tunable: nDCG@10 of the fused list alone can be as good with 10 candidates per leg, but a
    reranker or learned ranker added later reorders only what the legs bring (a reranker window of 50 over two
    legs of 10 holds 20 at most). A ``max_candidates`` below it lowers it to that."""
    max_candidates: int = 100
    candidate_step: int = 10
    max_window: int = 100
    longtail_methods: tuple[str, ...] = LONGTAIL_METHODS
    longtail_targets: tuple[str, ...] = ("long_tail",)
    """What the long-tail stage favours (settings.longtail.target); with both, the search picks."""
    ranking: bool = True
    """Search candidates, fusion, rerank window and the long-tail stage."""
    personalisation: bool = False
    """Search the personalisation stage's weights (facet weights, vector weight, cap, max rise, depth up to
    ``max_candidates``); needs judged searches with shopper profiles (see RankingCache's ``profiles``)."""
    max_facet_weight: float = 2.0
    """Up to 2 (the best result's scaled score is 1): a term scaled by relevance (``relevance_power``) needs
    more weight than an unscaled one to settle the same near-ties."""
    max_cap: float = 2.0
    max_rise: int = 50
    code_weights: bool = True
    """After the trials, choose the lexical share of the queries naming a product code (``fusion.identifier_weights``
    and ``fusion.anchored_weights``) on those queries alone, keeping the current share unless another beats it
    significantly (see :func:`choose_share`). Needs both legs and ``ranking``."""
    code_alpha: float = 0.05
    """The significance a code share must reach to replace the current one, before dividing it among the shares
    tried."""

    def __post_init__(self) -> None:
        if self.max_candidates < self.min_candidates:
            object.__setattr__(self, "min_candidates", self.max_candidates)
        if not 1 <= self.min_candidates <= self.max_candidates:
            raise ConfigError(
                f"candidates range must satisfy 1 <= min ({self.min_candidates}) <= max ({self.max_candidates})"
            )
        unknown = set(self.longtail_methods) - set(LONGTAIL_METHODS)
        if unknown or not self.longtail_methods:
            raise ConfigError(f"longtail methods {sorted(unknown) or '(none)'} invalid; choose from {LONGTAIL_METHODS}")
        unknown = set(self.longtail_targets) - set(LONGTAIL_TARGETS)
        if unknown or not self.longtail_targets:
            raise ConfigError(f"longtail targets {sorted(unknown) or '(none)'} invalid; choose from {LONGTAIL_TARGETS}")
        if not self.ranking and not self.personalisation:
            raise ConfigError("nothing to search: enable ranking, personalisation or both")
        if not 0 < self.code_alpha < 1:
            raise ConfigError(f"code_alpha must be between 0 and 1, got {self.code_alpha}")


def suggest(trial: optuna.Trial, space: SearchSpace, hybrid: bool, reranker: bool) -> dict[str, Any]:
    """One trial's parameters; conditional ones (rank constant for RRF only, ...) only when they apply."""
    params: dict[str, Any] = {}
    if space.personalisation:
        params.update(suggest_personalisation(trial, space))
    if not space.ranking:
        return params
    params["candidates"] = trial.suggest_int(
        "candidates", space.min_candidates, space.max_candidates, step=space.candidate_step
    )
    if hybrid:
        params["fusion_method"] = trial.suggest_categorical("fusion_method", ["rrf", "linear"])
        # Only the ratio of the two weights changes a fused order, so one parameter covers them.
        params["lexical_weight"] = trial.suggest_float("lexical_weight", 0.0, 1.0)
        # Not the code queries' weights: tune_code_weights chooses them after the trials, on those queries alone.
        if params["fusion_method"] == "rrf":
            params["rank_constant"] = trial.suggest_float("rank_constant", 1.0, 200.0, log=True)
        else:
            params["normalization"] = trial.suggest_categorical("normalization", ["minmax", "zscore"])
    if reranker:
        params["rerank_window"] = trial.suggest_int("rerank_window", 10, space.max_window, step=10)
    method = trial.suggest_categorical("longtail_method", list(space.longtail_methods))
    params["longtail_method"] = method
    if method == "boost":
        params["longtail_strength"] = trial.suggest_float("longtail_strength", 0.0, 1.0)
        params["longtail_gate"] = trial.suggest_float("longtail_gate", 0.0, 1.0)
    elif method == "xquad":
        params["xquad_lambda"] = trial.suggest_float("xquad_lambda", 0.0, 1.0)
    if method != "off" and len(space.longtail_targets) > 1:
        params["longtail_target"] = trial.suggest_categorical("longtail_target", list(space.longtail_targets))
    return params


def suggest_personalisation(trial: optuna.Trial, space: SearchSpace) -> dict[str, Any]:
    """The personalisation stage's weights: one per profile facet, the vector's, and its bounds (the cap, the
    most a product may rise, how deep it re-ranks): a looser bound helps returning shoppers until it lets taste
    outrank relevance, and only the data says where that is."""
    params: dict[str, Any] = {
        f"{PERSONAL_PREFIX}{facet}": trial.suggest_float(f"{PERSONAL_PREFIX}{facet}", 0.0, space.max_facet_weight)
        for facet in PROFILE_FACETS
    }
    params[f"{PERSONAL_PREFIX}vector_weight"] = trial.suggest_float(
        f"{PERSONAL_PREFIX}vector_weight", 0.0, space.max_facet_weight
    )
    params[f"{PERSONAL_PREFIX}cap"] = trial.suggest_float(f"{PERSONAL_PREFIX}cap", 0.0, space.max_cap)
    params[f"{PERSONAL_PREFIX}max_rise"] = trial.suggest_int(f"{PERSONAL_PREFIX}max_rise", 0, space.max_rise)
    params[f"{PERSONAL_PREFIX}depth"] = trial.suggest_int(f"{PERSONAL_PREFIX}depth", 10, space.max_candidates, step=10)
    params[f"{PERSONAL_PREFIX}relevance_power"] = trial.suggest_float(f"{PERSONAL_PREFIX}relevance_power", 0.0, 2.0)
    return params


def personalisation_section(params: Mapping[str, Any]) -> dict[str, Any]:
    """The ``personal_*`` trial parameters as the ``personalisation`` settings section."""
    return {
        "facet_weights": {facet: round(float(params[f"{PERSONAL_PREFIX}{facet}"]), 6) for facet in PROFILE_FACETS},
        "vector_weight": round(float(params[f"{PERSONAL_PREFIX}vector_weight"]), 6),
        "cap": round(float(params[f"{PERSONAL_PREFIX}cap"]), 6),
        "max_rise": int(params[f"{PERSONAL_PREFIX}max_rise"]),
        "depth": int(params[f"{PERSONAL_PREFIX}depth"]),
        "relevance_power": round(float(params[f"{PERSONAL_PREFIX}relevance_power"]), 6),
    }


def sections(params: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Trial parameters as settings sections, the shape of ``Settings.override`` and of the written file."""
    out: dict[str, dict[str, Any]] = {}
    if any(name.startswith(PERSONAL_PREFIX) for name in params):
        out["personalisation"] = personalisation_section(params)
    if "candidates" not in params:
        return out
    out["lexical"] = {"candidates": int(params["candidates"])}
    out["dense"] = {"candidates": int(params["candidates"])}
    if "fusion_method" in params:
        share = float(params["lexical_weight"])
        fusion: dict[str, Any] = {
            "method": params["fusion_method"],
            "weights": {LEXICAL: round(share, 6), DENSE: round(1.0 - share, 6)},
        }
        if "rank_constant" in params:
            fusion["rank_constant"] = round(float(params["rank_constant"]), 4)
        if "normalization" in params:
            fusion["normalization"] = params["normalization"]
        out["fusion"] = fusion
    if "rerank_window" in params:
        out["rerank"] = {"window": int(params["rerank_window"])}
    method = params["longtail_method"]
    longtail: dict[str, Any] = {"enabled": method != "off"}
    if method != "off":
        longtail["method"] = method
    if method == "boost":
        longtail.update(
            strength=round(float(params["longtail_strength"]), 6), gate=round(float(params["longtail_gate"]), 6)
        )
    elif method == "xquad":
        longtail["xquad_lambda"] = round(float(params["xquad_lambda"]), 6)
    if "longtail_target" in params:
        longtail["target"] = params["longtail_target"]
    out["longtail"] = longtail
    return out


# ------------------------------------------------------------ retrieve once, rank many times


class RerankScores:
    """Cross-encoder probabilities kept across the ranking caches of one process over one index.

    A pair's probability depends on the model, its token length and precision, the query and the product's
    text, never on which trial or which step asks. ``search-rerank demo`` trains its ranker on dev lists the
    reranker has scored, then tunes on the same dev queries: sharing one of these, tuning rescores only the
    windows the ranker's rankings never reached. Keyed by the model, so a cache with another reranker shares
    nothing; the product's text is the index's, which is why it must be one index.

    The reranker's trainer adds the probabilities its dev decision computed (``add``), keyed as the model will
    be served, so that measuring the trained step does not score those dev windows a second time.
    """

    def __init__(self) -> None:
        self.scores: dict[tuple[str, int, str, str, str], float] = {}

    @staticmethod
    def key(model: str, max_length: int, precision: str) -> tuple[str, int, str]:
        """What a probability depends on besides its pair: the model's directory, its token length, precision."""
        return (str(model), int(max_length), str(precision))

    @staticmethod
    def model_key(reranker: Any) -> tuple[str, int, str]:
        return RerankScores.key(reranker.settings.model, reranker.max_length, reranker.settings.precision)

    def add(self, model_key: tuple[str, int, str], query: str, probabilities: Mapping[str, float]) -> None:
        """Keep a query's probabilities per product, scored by the model ``model_key`` names."""
        self.scores.update({(*model_key, query, pid): float(p) for pid, p in probabilities.items()})


class _MemoReranker:
    """The configured cross-encoder, each (query, product) scored once across every trial (and across caches
    sharing one :class:`RerankScores`)."""

    def __init__(self, inner, shared: RerankScores | None = None):
        self.inner = inner
        self.model = RerankScores.model_key(inner)
        self.store = shared if shared is not None else RerankScores()

    def warm_up(self) -> None:
        self.inner.warm_up()

    def run(
        self,
        query: str,
        candidates: Sequence[Candidate],
        texts: Mapping[str, str],
        settings: RerankSettings | None = None,
    ) -> list[Candidate]:
        settings = settings if settings is not None else self.inner.settings
        window = list(candidates[: settings.window])
        scores, key = self.store.scores, (*self.model, query)
        missing = [c.product_id for c in window if (*key, c.product_id) not in scores]
        if missing:
            probs = self.inner.score(query, [texts.get(pid, "") for pid in missing], settings.batch_size)
            scores.update({(*key, pid): float(p) for pid, p in zip(missing, probs)})
        weight = settings.blend if settings.blend is not None else getattr(self.inner, "default_blend", DEFAULT_BLEND)
        probs = np.array([scores[(*key, c.product_id)] for c in window])
        return reranked(window, probs, weight, candidates[len(window) :])


class _MemoFieldScores:
    """The lexical leg's per-field BM25 for the learned ranker, each (query, product) worked out once across
    every trial: a product's field scores do not depend on which other products are scored with it, and each
    trial asked for the same ones again (a tenth of the demo's tuning went there). Only the ranker's features
    ask for them: the cache retrieved its lists before. Anything else is the leg's own."""

    def __init__(self, inner: Retriever):
        self.inner = inner
        self.scores: dict[tuple[str, str], dict[str, float]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def field_scores(self, query: str, product_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        missing = [pid for pid in dict.fromkeys(product_ids) if (query, pid) not in self.scores]
        if missing:
            fresh = cast(FieldScorer, self.inner).field_scores(query, missing)
            for pid in missing:
                self.scores[query, pid] = {name: per[pid] for name, per in fresh.items() if pid in per}
        out: dict[str, dict[str, float]] = {name: {} for name in LEXICAL_FIELDS}
        for pid in product_ids:
            for name, score in self.scores[query, pid].items():
                out.setdefault(name, {})[pid] = score
        return out


class _PopularityStore(ProductStore):
    """The product store with popularity read from one table loaded once, instead of a query per ranked list,
    and each product parsed once: the cache ranks the same candidates trial after trial, and parsing their
    records again for the learned ranker's features took a tenth of a tuning run. The cache's retrieved lists
    already hold the catalogue as it was when they were made, so its products may too."""

    def __init__(self, store: ProductStore, popularity: Mapping[str, float]):
        super().__init__(store.path)
        self.table = dict(popularity)
        self.parsed: dict[str, Product] = {}

    def get(self, product_ids: Sequence[str]) -> dict[str, Product]:
        missing = [pid for pid in product_ids if pid not in self.parsed]
        if missing:
            self.parsed.update(super().get(missing))
        return {pid: self.parsed[pid] for pid in product_ids if pid in self.parsed}

    def popularity(self, product_ids: Sequence[str] | None = None) -> dict[str, float]:
        if product_ids is None:
            return dict(self.table)
        return {pid: self.table[pid] for pid in product_ids if pid in self.table}


@dataclass
class Scored:
    """One configuration's ranked top lists and per-query scores on the cached queries."""

    runs: dict[str, list[str]]
    per_query: dict[str, dict[str, float]]
    metrics: dict[str, float]


class RankingCache:
    """Leg lists retrieved once per query text at ``depth`` candidates; any settings are ranked from them.

    ``popularity`` sets the tiers the exposure metrics count (e.g. from clicks,
    when traffic says what is head better than sales do); the long-tail stage
    always uses the store's, as the service does, so that what is tuned is
    what will be served.

    ``profiles`` gives a judged query the shopper profile it is ranked for
    (personalised evaluation: one judged query per shopper and search); a
    query without one ranks for everyone. Judged queries sharing a text share
    one retrieval, since retrieval never depends on who searches.
    """

    def __init__(
        self,
        pipeline: SearchPipeline,
        queries: Mapping[str, Query],
        qrels: Qrels,
        *,
        depth: int,
        popularity: Mapping[str, float] | None = None,
        profiles: Mapping[str, ShopperProfile | None] | None = None,
        progress: bool = False,
        rerank_scores: RerankScores | None = None,
    ):
        judged = [qid for qid in qrels if qid in queries]
        if not judged:
            raise ConfigError("no judged query has a query text: nothing to tune or compare on")
        self.queries = {qid: queries[qid] for qid in judged}
        self.qrels = {qid: qrels[qid] for qid in judged}
        self.depth = depth
        self.profiles = dict(profiles) if profiles is not None else {}
        store = _PopularityStore(pipeline.store, pipeline.store.popularity())
        self.popularity = dict(popularity) if popularity is not None else store.table
        reranker = _MemoReranker(pipeline.reranker, rerank_scores) if pipeline.reranker is not None else None
        legs = dict(pipeline.legs)
        if isinstance(legs.get(LEXICAL), FieldScorer):
            legs[LEXICAL] = cast(Retriever, _MemoFieldScores(legs[LEXICAL]))
        self.pipeline = SearchPipeline(pipeline.settings, legs, store, reranker, pipeline.ranker)
        # No deadlines: a leg or a reranker timing out on a busy machine would tune for the outage.
        base = pipeline.settings.offline().override(lexical={"candidates": depth}, dense={"candidates": depth})
        started = time.perf_counter()
        self.retrieved: dict[str, Ranking] = {}
        by_text: dict[str, Ranking] = {}
        for qid in tqdm(judged, desc="retrieve", unit="query", disable=not progress):
            text = self.queries[qid].text
            if text not in by_text:
                retrieved = pipeline.retrieve(text, None, base)
                if retrieved.degraded:
                    raise ConfigError(f"retrieval failed for query {qid!r}: {retrieved.degraded}")
                by_text[text] = retrieved
            self.retrieved[qid] = by_text[text]
        self.retrieve_seconds = time.perf_counter() - started
        self.progress = progress
        self._shared_key: str | None = None
        self._shared: dict[str, Ranking] = {}

    @property
    def hybrid(self) -> bool:
        return DENSE in self.pipeline.legs and any(DENSE in r.stages for r in self.retrieved.values())

    @property
    def has_reranker(self) -> bool:
        return self.pipeline.reranker is not None

    def rank(self, settings: Settings, only: Collection[str] | None = None) -> dict[str, list[Candidate]]:
        """Each query's ranked list under ``settings`` (or only those of ``only``), ranked from the cached
        retrieval as the service ranks.

        The stages before personalisation depend on neither the shopper nor the personalisation settings, so
        their lists are kept for the last settings they were ranked with (one per query text): a search over
        the personalisation stage alone ranks them once, not once per trial (they were most of a trial's cost).
        """
        settings = settings.offline()
        key = settings.model_dump_json(exclude={"personalisation"})
        if key != self._shared_key:
            self._shared_key, self._shared = key, {}
        out = {}
        chosen = self.retrieved if only is None else {qid: self.retrieved[qid] for qid in only}
        ranking = tqdm(
            chosen.items(),
            desc="rank",
            unit="query",
            disable=not self.progress,
            delay=RANK_PROGRESS_DELAY_S,
            leave=False,
        )
        for qid, retrieved in ranking:
            shared = self._shared.get(retrieved.query)
            if shared is None:
                shared = self._shared[retrieved.query] = self.pipeline.rank_for_everyone(retrieved, settings)
            out[qid] = self.pipeline.rank_for_shopper(shared, settings, self.profiles.get(qid)).candidates
        return out

    def score(self, settings: Settings, only: Collection[str] | None = None) -> Scored:
        ranked = self.rank(settings, only)
        run = {qid: [(c.product_id, c.score) for c in hits[:100]] for qid, hits in ranked.items()}
        per_query = relevance_metrics(self.qrels, run)
        ids = {qid: [c.product_id for c in hits[:TOP]] for qid, hits in ranked.items()}
        metrics = {str(m): float(np.mean([scores[str(m)] for scores in per_query.values()])) for m in MEASURES}
        metrics[LT_SHARE] = long_tail_share(ids, self.popularity, settings.longtail.head_fraction)
        metrics.update(
            {
                f"{name}@{TOP}": share
                for name, share in tier_shares(ids.values(), self.popularity, settings.longtail).items()
            }
        )
        return Scored(runs=ids, per_query=per_query, metrics=metrics)

    def by_kind(self, scored: Scored) -> dict[str, dict[str, float]]:
        """nDCG@10 and long-tail share per query kind: a trade that only moves one kind of query shows here."""
        kinds: dict[str, list[str]] = {}
        for qid, query in self.queries.items():
            kinds.setdefault(str(query.meta.get("kind", "all")), []).append(qid)
        longtail = self.pipeline.settings.longtail
        return {
            kind: {
                "queries": len(qids),
                NDCG: float(np.mean([scored.per_query[q][NDCG] for q in qids])),
                LT_SHARE: long_tail_share({q: scored.runs[q] for q in qids}, self.popularity, longtail.head_fraction),
                TAIL_SHARE: tier_shares([scored.runs[q] for q in qids], self.popularity, longtail)["tail"],
            }
            for kind, qids in sorted(kinds.items())
        }

    def close(self) -> None:
        self.pipeline.close()


# ------------------------------------------------------------ the code queries' own weights


CODE_WEIGHTS = ("identifier_weights", "anchored_weights")
"""The fusion weights of the queries naming a product code: those whose dense leg searched the text, and those
whose dense leg searched around the named product (core.fusion)."""
CODE_SHARES = tuple(round(0.1 * step, 1) for step in range(11))
"""The lexical shares tried for them. Coarse on purpose: a dev split holds few code queries, and every share tried
is one more chance to fit their noise (the bar each must clear is divided among them)."""


@dataclass(frozen=True)
class ShareChoice:
    """What one kind of code query on dev says about its lexical share, and whether it moved."""

    queries: int
    current: float
    """The lexical share the settings had."""
    current_ndcg: float
    ndcg: dict[str, float]
    """Mean nDCG@10 of these queries at each share tried (keyed ``"0.0"`` .. ``"1.0"``)."""
    best: float
    p_value: float | None
    """Paired randomisation test of the best share against the current one; None where it did not score higher."""
    adopted: bool
    reason: str

    @property
    def share(self) -> float:
        return self.best if self.adopted else self.current


def lexical_share(weights: Mapping[str, float]) -> float:
    """The lexical leg's share of a two-leg weighting (only the ratio changes a fused order)."""
    total = weights.get(LEXICAL, 0.0) + weights.get(DENSE, 0.0)
    return weights.get(LEXICAL, 0.0) / total if total > 0 else 1.0


def share_weights(share: float) -> dict[str, float]:
    return {LEXICAL: round(share, 6), DENSE: round(1.0 - share, 6)}


def choose_share(
    current_share: float,
    current: Sequence[float],
    by_share: Mapping[float, Sequence[float]],
    alpha: float,
    seed: int = 0,
) -> ShareChoice:
    """The share whose queries score highest, adopted only when it beats the current share's on the same queries
    with a paired randomisation p-value below ``alpha`` divided by the number of shares tried.

    Why so strict: choosing the best of many shares on a few dozen queries finds one that scored higher by luck
    (tune once gave the dense leg 0.32 of code queries where that leg scores nDCG@10 0.03, docs/TUNING.md), and
    the current share is the one chosen across both generated profiles. Dividing the bar among the shares tried
    (Bonferroni) keeps the chance of moving on noise below ``alpha``; a dev split with thousands of code queries
    moves on a real difference.
    """
    ndcg = {f"{share:.1f}": float(np.mean(scores)) for share, scores in by_share.items()} if current else {}
    if not current:
        return ShareChoice(0, current_share, 0.0, ndcg, current_share, None, False, "no such query on dev")
    current_ndcg = float(np.mean(current))
    best = max(by_share, key=lambda share: (float(np.mean(by_share[share])), -abs(share - current_share)))
    best_ndcg = float(np.mean(by_share[best]))
    choice = ShareChoice(len(current), current_share, current_ndcg, ndcg, best, None, False, "")
    if best_ndcg <= current_ndcg:
        return replace(choice, reason="no share scored higher than the current one")
    p_value = randomisation_p(np.subtract(by_share[best], current), seed=seed)
    bar = alpha / len(by_share)
    adopted = p_value < bar
    verdict = "below" if adopted else "not below"
    reason = f"p {p_value:.4f} {verdict} {alpha:g} / {len(by_share)} shares = {bar:.4g}"
    return replace(choice, p_value=p_value, adopted=adopted, reason=reason)


def tune_code_weights(cache: RankingCache, settings: Settings, alpha: float, seed: int = 0) -> dict[str, ShareChoice]:
    """Each kind of code query's lexical share, chosen on those queries alone (:func:`choose_share`).

    Separate from the trials because these weights rank only these queries: searched with the others, their
    effect on the mean of all queries is small beside the noise of the other parameters, and the sampler fitted
    it anyway. Both kinds are scored at each share in one ranking, since no query is fused with both.
    """
    groups: dict[str, list[str]] = {name: [] for name in CODE_WEIGHTS}
    for qid, retrieved in cache.retrieved.items():
        if names_a_code(retrieved.query):
            groups["anchored_weights" if retrieved.anchor is not None else "identifier_weights"].append(qid)
    asked = [qid for group in groups.values() for qid in group]
    if not asked:
        return {name: choose_share(lexical_share(getattr(settings.fusion, name)), [], {}, alpha) for name in groups}
    current = cache.score(settings, asked)
    tried = {
        share: cache.score(settings.override(fusion={name: share_weights(share) for name in CODE_WEIGHTS}), asked)
        for share in CODE_SHARES
    }

    def ndcg(scored: Scored, group: Sequence[str]) -> list[float]:
        return [scored.per_query[q][NDCG] for q in group]

    return {
        name: choose_share(
            lexical_share(getattr(settings.fusion, name)),
            ndcg(current, group),
            {share: ndcg(scored, group) for share, scored in tried.items()},
            alpha,
            seed,
        )
        for name, group in groups.items()
    }


# ------------------------------------------------------------ the search


@dataclass(frozen=True)
class Goal:
    """What "best" means: the Pareto front, or one metric maximised under the user's constraints.

    ``exposure`` is the second objective: ``lt_share@10`` (share of the top
    10 outside the head) or ``tail@10`` (share in the tail tier only, which
    leaves room to grow where most of the catalog is long tail and the top
    10 already is). ``max_ndcg_cost`` maximises it with nDCG@10 at most that
    far below the baseline; ``min_lt_share`` alone maximises nDCG@10 with the
    exposure at least that high.
    """

    min_lt_share: float | None = None
    max_ndcg_cost: float | None = None
    exposure: str = LT_SHARE

    def __post_init__(self) -> None:
        if self.exposure not in EXPOSURE_METRICS:
            raise ConfigError(f"exposure metric {self.exposure!r} unknown; choose from {EXPOSURE_METRICS}")
        if self.min_lt_share is not None and not 0 <= self.min_lt_share <= 1:
            raise ConfigError(f"min_lt_share must be between 0 and 1, got {self.min_lt_share}")
        if self.max_ndcg_cost is not None and not 0 <= self.max_ndcg_cost <= 1:
            raise ConfigError(f"max_ndcg_cost must be between 0 and 1, got {self.max_ndcg_cost}")

    @property
    def mode(self) -> str:
        if self.max_ndcg_cost is not None:
            return "max-lt-share"
        return "max-ndcg" if self.min_lt_share is not None else "pareto"

    def constraints(self, metrics: Mapping[str, float], baseline_ndcg: float) -> dict[str, float]:
        """Optuna's convention: a trial is feasible when every value is <= 0."""
        out = {}
        if self.min_lt_share is not None:
            out["min_lt_share"] = self.min_lt_share - metrics[self.exposure]
        if self.max_ndcg_cost is not None:
            out["max_ndcg_cost"] = (baseline_ndcg - self.max_ndcg_cost) - metrics[NDCG]
        return out


GUARD_NDCG = "guard_nDCG@10"
GUARD_COST = "guard_cost"
GUARD_LOSS = "guard_loss"
"""The guard queries' mean nDCG@10 loss against the floor (Guard.cost without standard errors)."""
"""The loss on the guard's queries a trial is held to (Guard.cost), recorded beside its nDCG@10 there."""


@dataclass(frozen=True)
class Guard:
    """Judged queries a trial may not make worse by more than ``max_cost`` nDCG@10, against ``floor``'s ranking.

    What a tuning split alone cannot see: weights chosen for returning
    shoppers' own searches can cost relevance on the queries everyone asks.
    Ranked from a cache of their own (with ``profiles``, each query for a
    shopper); a trial past the cost is infeasible, as with the other
    constraints. ``floor`` defaults to the tuning baseline's settings.
    """

    queries: Mapping[str, Query]
    qrels: Qrels
    profiles: Mapping[str, ShopperProfile | None] | None = None
    max_cost: float = 0.005
    floor: Settings | None = None
    standard_errors: float = 1.0
    """How many standard errors of the mean per-query loss must also fit within ``max_cost``: the cost a trial
    is held to is its mean loss plus this many standard errors (of the paired per-query differences). The
    tuner keeps the best of hundreds of trials, and the best are those at the bound whose guard figure came
    out lucky on these queries; with 0 the chosen weights' cost on other queries is then, on average, beyond
    ``max_cost``. One standard error holds the bound at about 84% one-sided confidence, and costs little
    where the guard is large (its standard error shrinks as the square root of its queries)."""

    def cost(self, floor: Mapping[str, float], trial: Mapping[str, float]) -> float:
        """The nDCG@10 loss a trial is held to: mean of ``floor - trial`` over the guard's queries (per-query
        nDCG@10 of each) plus ``standard_errors`` standard errors of that mean."""
        losses = np.array([floor[q] - trial[q] for q in floor], dtype=np.float64)
        if len(losses) < 2 or self.standard_errors == 0:
            return float(losses.mean()) if len(losses) else 0.0
        return float(losses.mean() + self.standard_errors * losses.std(ddof=1) / np.sqrt(len(losses)))


@dataclass
class TrialRecord:
    number: int
    params: dict[str, Any]
    metrics: dict[str, float]
    feasible: bool


@dataclass
class TuningResult:
    """Everything the report and the written settings come from."""

    dataset: str
    split: str
    queries: int
    mode: str
    goal: dict[str, float | None]
    seed: int
    trials: list[TrialRecord]
    pareto: list[int]
    baseline: dict[str, Any]
    best: dict[str, Any]
    significance: dict[str, Any]
    per_query: list[dict[str, Any]]
    timing: dict[str, float]
    space: dict[str, Any] = field(default_factory=dict)
    exposure: str = LT_SHARE
    """The exposure metric that was the second objective (or constrained)."""
    code_weights: dict[str, Any] = field(default_factory=dict)
    """Per kind of code query (``identifier_weights``, ``anchored_weights``): its :class:`ShareChoice`."""

    def to_json(self) -> dict:
        return asdict(self)


def tune(
    pipeline: SearchPipeline,
    queries: Mapping[str, Query],
    qrels: Qrels,
    *,
    trials: int = 50,
    seed: int = 13,
    goal: Goal = Goal(),
    space: SearchSpace = SearchSpace(),
    popularity: Mapping[str, float] | None = None,
    profiles: Mapping[str, ShopperProfile | None] | None = None,
    guard: Guard | None = None,
    dataset: str = "",
    split: str = "dev",
    progress: bool = False,
    on_trial: Callable[[TrialRecord], None] | None = None,
    rerank_scores: RerankScores | None = None,
) -> TuningResult:
    """Run the search; the baseline is the pipeline's own settings, ranked from the same cache.

    With ``profiles`` (judged query -> the shopper profile it is ranked for),
    each query is ranked for its shopper, and ``space.personalisation``
    searches the personalisation stage's weights on those searches.
    ``guard`` adds a constraint: its queries' nDCG@10 may not fall by more
    than its cost (recorded as ``guard_nDCG@10`` in every trial's metrics).
    ``rerank_scores`` carries cross-encoder scores in from an earlier step over the same index (and out to a
    later one).
    """
    if trials < 1:
        raise ConfigError(f"trials must be at least 1, got {trials}")
    base = pipeline.settings
    depth = max(space.max_candidates, base.lexical.candidates, base.dense.candidates if base.dense.enabled else 0)
    cache = RankingCache(
        pipeline,
        queries,
        qrels,
        depth=depth,
        popularity=popularity,
        profiles=profiles,
        progress=progress,
        rerank_scores=rerank_scores,
    )
    guarded = None
    if guard is not None:
        guard_cache = RankingCache(
            pipeline, guard.queries, guard.qrels, depth=depth, profiles=guard.profiles, rerank_scores=rerank_scores
        )
        guarded = (guard_cache, guard)
    try:
        return _search(cache, base, trials, seed, goal, space, dataset, split, progress, on_trial, guarded)
    finally:
        cache.close()
        if guarded is not None:
            guarded[0].close()


def record_guard(scored: Scored, guard_scored: Scored, guard: Guard, floor: Mapping[str, float]) -> None:
    """Add the guard queries' nDCG@10, mean loss against ``floor`` (per query) and cost to ``scored``'s metrics."""
    per_query = {q: scores[NDCG] for q, scores in guard_scored.per_query.items()}
    scored.metrics[GUARD_NDCG] = guard_scored.metrics[NDCG]
    scored.metrics[GUARD_LOSS] = float(np.mean([floor[q] - per_query[q] for q in floor])) if floor else 0.0
    scored.metrics[GUARD_COST] = guard.cost(floor, per_query)


def _search(
    cache: RankingCache,
    base: Settings,
    trials: int,
    seed: int,
    goal: Goal,
    space: SearchSpace,
    dataset: str,
    split: str,
    progress: bool,
    on_trial: Callable[[TrialRecord], None] | None,
    guarded: tuple[RankingCache, Guard] | None = None,
) -> TuningResult:
    baseline = cache.score(base)
    base_ndcg = baseline.metrics[NDCG]
    guard_floor: dict[str, float] = {}
    if guarded is not None:
        guard_cache, guard = guarded
        floor = guard.floor if guard.floor is not None else base
        guard_floor = {q: scores[NDCG] for q, scores in guard_cache.score(floor).per_query.items()}
        record_guard(baseline, guard_cache.score(base), guard, guard_floor)
    records: list[TrialRecord] = []
    scored: dict[int, Scored] = {}

    def objective(trial: optuna.Trial):
        params = suggest(trial, space, cache.hybrid, cache.has_reranker)
        trial_settings = base.override(**sections(params))
        result = cache.score(trial_settings)
        scored[trial.number] = result
        constraints = goal.constraints(result.metrics, base_ndcg)
        if guarded is not None:
            record_guard(result, guarded[0].score(trial_settings), guarded[1], guard_floor)
            constraints["guard_ndcg_cost"] = result.metrics[GUARD_COST] - guarded[1].max_cost
        for name, value in constraints.items():
            trial.set_constraint(name, value)
        record = TrialRecord(trial.number, params, result.metrics, all(v <= 0 for v in constraints.values()))
        records.append(record)
        if on_trial is not None:
            on_trial(record)
        if goal.mode == "pareto":
            return result.metrics[NDCG], result.metrics[goal.exposure]
        return result.metrics[goal.exposure] if goal.mode == "max-lt-share" else result.metrics[NDCG]

    # A failed trial is a warning to optuna, logged with its traceback (Ctrl-C's included) before the error goes
    # on to stop the tuning, where the command reports it once: its warnings would only repeat that.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    directions: list[Literal["maximize"]] = ["maximize", "maximize"] if goal.mode == "pareto" else ["maximize"]
    started = time.perf_counter()
    with warnings.catch_warnings():
        # multivariate/group TPE (parameters that only exist together, e.g. the RRF constant) is "experimental".
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study = optuna.create_study(
            directions=directions, sampler=optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True)
        )
        study.optimize(objective, n_trials=trials, show_progress_bar=progress)
    trial_seconds = time.perf_counter() - started

    pareto = _front(records, goal.exposure)
    best = _choose(records, pareto, goal, base_ndcg)
    best_sections, best_scored = sections(best.params), scored[best.number]
    code_choices: dict[str, ShareChoice] = {}
    started_codes = time.perf_counter()
    if space.ranking and space.code_weights and cache.hybrid:
        code_choices = tune_code_weights(cache, base.override(**best_sections), space.code_alpha, seed)
        best_sections, best_scored, code_choices = _with_code_weights(
            cache, base, best_sections, best_scored, code_choices, goal, base_ndcg, guarded, guard_floor
        )
    code_seconds = time.perf_counter() - started_codes
    qids = list(cache.qrels)
    significance = paired_test(
        [baseline.per_query[q][NDCG] for q in qids], [best_scored.per_query[q][NDCG] for q in qids], seed=seed
    )
    per_query = [
        {
            "qid": q,
            "query": cache.queries[q].text,
            "kind": str(cache.queries[q].meta.get("kind", "all")),
            "baseline": baseline.per_query[q][NDCG],
            "best": best_scored.per_query[q][NDCG],
            "delta": best_scored.per_query[q][NDCG] - baseline.per_query[q][NDCG],
            "baseline_top": baseline.runs[q][:5],
            "best_top": best_scored.runs[q][:5],
        }
        for q in qids
    ]
    return TuningResult(
        dataset=dataset,
        split=split,
        queries=len(qids),
        mode=goal.mode,
        goal=asdict(goal),
        seed=seed,
        trials=records,
        pareto=[r.number for r in pareto],
        baseline={"metrics": baseline.metrics, "sections": _current(base), "by_kind": cache.by_kind(baseline)},
        best={
            "number": best.number,
            "params": best.params,
            "metrics": best_scored.metrics,
            "sections": best_sections,
            "by_kind": cache.by_kind(best_scored),
        },
        significance=significance.to_json(),
        per_query=per_query,
        timing={
            "retrieve_s": cache.retrieve_seconds,
            "trials_s": trial_seconds,
            "per_trial_ms": 1000 * trial_seconds / len(records),
            "code_weights_s": code_seconds,
        },
        space=asdict(space) | {"hybrid": cache.hybrid, "reranker": cache.has_reranker},
        exposure=goal.exposure,
        code_weights={name: asdict(choice) for name, choice in code_choices.items()},
    )


def _with_code_weights(
    cache: RankingCache,
    base: Settings,
    best_sections: dict[str, dict[str, Any]],
    best_scored: Scored,
    choices: dict[str, ShareChoice],
    goal: Goal,
    base_ndcg: float,
    guarded: tuple[RankingCache, Guard] | None,
    guard_floor: Mapping[str, float],
) -> tuple[dict[str, dict[str, Any]], Scored, dict[str, ShareChoice]]:
    """The chosen trial's sections with the adopted code shares, scored on every query; unchanged (and the
    choices marked kept) where the shares would break what the goal holds the trial to: a constraint, the guard's
    cost, or the exposure a ``max-lt-share`` search maximised."""
    adopted = {name: share_weights(choice.best) for name, choice in choices.items() if choice.adopted}
    if not adopted:
        return best_sections, best_scored, choices
    refined_sections = {**best_sections, "fusion": {**best_sections.get("fusion", {}), **adopted}}
    refined_settings = base.override(**refined_sections)
    refined = cache.score(refined_settings)
    breaks = [name for name, value in goal.constraints(refined.metrics, base_ndcg).items() if value > 0]
    if guarded is not None:
        record_guard(refined, guarded[0].score(refined_settings), guarded[1], guard_floor)
        if refined.metrics[GUARD_COST] > guarded[1].max_cost:
            breaks.append("guard_ndcg_cost")
    if goal.mode == "max-lt-share" and refined.metrics[goal.exposure] < best_scored.metrics[goal.exposure]:
        breaks.append(goal.exposure)
    if not breaks:
        return refined_sections, refined, choices
    kept = {
        name: replace(choice, adopted=False, reason=f"{choice.reason}; kept: it would break {', '.join(breaks)}")
        if choice.adopted
        else choice
        for name, choice in choices.items()
    }
    return best_sections, best_scored, kept


def _current(settings: Settings) -> dict[str, dict[str, Any]]:
    return {name: getattr(settings, name).model_dump(include=_TUNED_FIELDS[name]) for name in _TUNED_FIELDS}


_TUNED_FIELDS = {
    "lexical": {"candidates"},
    "dense": {"candidates"},
    "fusion": {"method", "weights", "rank_constant", "normalization", *CODE_WEIGHTS},
    "rerank": {"window"},
    "longtail": {"enabled", "method", "strength", "gate", "xquad_lambda", "target"},
    "personalisation": {
        "facet_weights",
        "vector_weight",
        "cap",
        "max_rise",
        "depth",
        "relevance_power",
    },
}


def _front(records: Sequence[TrialRecord], exposure: str = LT_SHARE) -> list[TrialRecord]:
    """Trials no other trial beats on both nDCG@10 and the exposure metric (ties on both: the earliest)."""
    front = []
    for r in records:
        a = (r.metrics[NDCG], r.metrics[exposure])
        dominated = any(
            (o.metrics[NDCG] >= a[0] and o.metrics[exposure] >= a[1])
            and ((o.metrics[NDCG], o.metrics[exposure]) != a or o.number < r.number)
            for o in records
            if o is not r
        )
        if not dominated:
            front.append(r)
    return sorted(front, key=lambda r: r.metrics[NDCG])


def _choose(records: Sequence[TrialRecord], front: Sequence[TrialRecord], goal: Goal, base_ndcg: float) -> TrialRecord:
    lt = goal.exposure
    if goal.mode == "pareto":
        return max(front, key=lambda r: (r.metrics[NDCG], r.metrics[lt], -r.number))
    feasible = [r for r in records if r.feasible]
    if not feasible:
        closest = max(records, key=lambda r: (r.metrics[lt], r.metrics[NDCG]))
        wanted = []
        if goal.min_lt_share is not None:
            wanted.append(f"{lt} >= {goal.min_lt_share}")
        if goal.max_ndcg_cost is not None:
            wanted.append(
                f"{NDCG} >= {base_ndcg - goal.max_ndcg_cost:.4f} (baseline {base_ndcg:.4f} - {goal.max_ndcg_cost})"
            )
        if any(GUARD_NDCG in r.metrics for r in records):
            wanted.append(f"{GUARD_NDCG} within the guard's cost")
        raise ConfigError(
            f"no trial met {' and '.join(wanted)}; the highest {lt} reached was "
            f"{closest.metrics[lt]:.4f} at {NDCG} {closest.metrics[NDCG]:.4f}. Loosen the "
            "constraint or run more trials"
        )
    first, second = (lt, NDCG) if goal.mode == "max-lt-share" else (NDCG, lt)
    return max(feasible, key=lambda r: (r.metrics[first], r.metrics[second], -r.number))


# ------------------------------------------------------------ the settings file


def write_settings(
    path: str | Path,
    tuned: Mapping[str, Any],
    base_file: str | Path | None = None,
    *,
    comment: str = "",
    allowed: Collection[str] = TUNED_SECTIONS,
) -> Path:
    """The base settings file (if any) with the tuned sections merged in, as TOML; checked before it is written.

    Only the base file's own values and the tuned fields are written, never
    the full defaults, so later changes to a default still reach the service.
    ``allowed`` names what may be set: the tuned sections by default;
    onboarding also sets the models and the index (a top-level value such as
    ``index_dir`` replaces the base file's). Written atomically: the service
    never reads half a file, and a failed check leaves the old one.
    """
    path = Path(path)
    if path.suffix != ".toml":
        raise ConfigError(f"{path}: tuned settings are written as TOML; name the file *.toml")
    data: dict[str, Any] = read_settings_file(base_file) if base_file is not None else {}
    for name, values in tuned.items():
        if name not in allowed:
            raise ConfigError(f"unknown tuned section {name!r}; valid: {tuple(allowed)}")
        data[name] = {**data.get(name, {}), **values} if isinstance(values, Mapping) else values
    header = "".join(f"# {line}\n" for line in comment.splitlines())
    load_settings(None, **data)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(path, header + tomli_w.dumps(data))
    return path
