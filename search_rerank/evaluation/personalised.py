"""Personalised evaluation: shoppers' held-out searches ranked with and without their profiles.

The judged searches are the simulator's (data.shoppers): one query id per
(shopper, search), judged by that shopper's hidden taste. Each shopper's
profile is built from their logged UBI events by ``core.profile.apply_event``,
the function the service updates profiles with, then aged to the time of the
held-out search as the service would read it (``core.profile.mix``). Both
rankings come from ``SearchPipeline.rank_from`` on lists retrieved once (the
tuner's ``RankingCache``), so the only difference between them is the
personalisation stage. Results are split by segment (returning, cold,
anonymous), because a stage that helps returning shoppers must also be seen
to leave cold and anonymous ones alone.

Two more checks: the dataset's shared, non-personal judgments ranked with a
returning shopper's profile (taste must not cost relevance for the queries
everyone asks), and team-draft interleaving of the two rankings on simulated
shoppers, credited from clicks of a position-based model on the shopper's own
grades (how many searches an online test would need).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from ..core.diversity import StoredVectors
from ..core.interleaving import team_draft
from ..core.pipeline import SearchPipeline
from ..core.profile import ShopperProfile, mix, user_key
from ..core.profile_store import profile_events, updated_profiles
from ..core.retrieval import DENSE
from ..core.settings import Settings
from ..data.clicks import DEFAULT_ATTRACTION, read_shopper_actions, simulate_clicks
from ..data.dataset import Query
from ..data.loaders import read_beir_queries
from ..data.qrels import Qrels, read_beir_qrels
from ..data.shoppers import SEGMENTS, THETA
from .interleaving import credit, preference_curve, searches_needed, summarise
from .significance import paired_test
from .tune import NDCG, RankingCache

DEPTH = 100


# ------------------------------------------------------------ reading the simulator's files


def read_searches(directory: str | Path, split: str) -> tuple[dict[str, Query], Qrels]:
    """The held-out (shopper, search) queries judged in ``split`` and their judgments."""
    directory = Path(directory)
    qrels = read_beir_qrels(directory / "qrels" / f"{split}.tsv")
    queries = read_beir_queries(directory / "queries.jsonl", check=search_time)
    return {qid: query for qid, query in queries.items() if qid in qrels}, qrels


def search_time(query: Query) -> float | None:
    """When the held-out search happened (seconds since the epoch), from its ``timestamp`` (ISO 8601)."""
    stamp = query.meta.get("timestamp")
    if not stamp:
        return None
    try:
        return datetime.fromisoformat(stamp).timestamp()
    except ValueError:
        raise ValueError(f"timestamp: {stamp[:80]!r} is no ISO 8601 time") from None


def shopper_profiles(
    pipeline: SearchPipeline, shoppers_dir: str | Path, queries: Mapping[str, Query]
) -> dict[str, ShopperProfile | None]:
    """Per judged search, the profile the service would rank it with: its shopper's long-term profile built
    from ``shoppers_dir/ubi.ndjson`` as ``search-rerank profiles build`` replays a log, aged to the search's time
    (``mix``, as a search reads it); None for an anonymous search. Held-out searches start new sessions, so
    there is no session profile to mix in."""
    settings = pipeline.settings.personalisation
    users = {q.meta["user_id"] for q in queries.values() if q.meta.get("user_id")}
    actions = [
        a
        for a in read_shopper_actions(Path(shoppers_dir) / "ubi.ndjson", settings.action_weights)[0]
        if a.user_id in users
    ]
    ids = sorted({a.product_id for a in actions})
    leg = pipeline.legs.get(DENSE)
    vectors: dict[str, np.ndarray] = leg.vectors_of(ids) if isinstance(leg, StoredVectors) else {}
    profiles = updated_profiles({}, profile_events(actions, pipeline.store.get(ids), vectors), settings)
    out: dict[str, ShopperProfile | None] = {}
    for qid, query in queries.items():
        user = query.meta.get("user_id")
        profile = profiles.get(user_key(user)) if user else None
        if profile is None:
            out[qid] = None
            continue
        at = search_time(query)
        out[qid] = mix(None, profile, settings, at if at is not None else profile.updated_at)
    return out


def shared_profiles(
    shared_qrels: Qrels, queries: Mapping[str, Query], profiles: Mapping[str, ShopperProfile | None]
) -> dict[str, ShopperProfile | None]:
    """The shared judged queries, each given a returning shopper's profile in turn (by sorted search id): the
    queries everyone asks, asked by someone with a taste."""
    returning = [
        profile
        for qid in sorted(queries)
        if queries[qid].meta.get("segment") == "returning" and (profile := profiles.get(qid)) is not None
    ]
    if not returning:
        return {}
    return {qid: returning[i % len(returning)] for i, qid in enumerate(shared_qrels)}


# ------------------------------------------------------------ the report


@dataclass
class SegmentResult:
    searches: int
    ndcg10_base: float
    ndcg10_personal: float
    significance: dict[str, Any] | None

    @property
    def delta(self) -> float:
        return self.ndcg10_personal - self.ndcg10_base

    @property
    def relative(self) -> float:
        return self.delta / self.ndcg10_base if self.ndcg10_base > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "delta": self.delta, "relative": self.relative}


@dataclass
class PersonalisedReport:
    split: str
    segments: dict[str, SegmentResult]
    shared: SegmentResult | None = None
    interleaving: dict[str, Any] | None = None
    profiles: int = 0
    """Held-out searches whose shopper has a profile (cold ones included: the stage skips those itself)."""
    settings: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "split": self.split,
            "segments": {name: r.to_json() for name, r in self.segments.items()},
            "shared": None if self.shared is None else self.shared.to_json(),
            "interleaving": self.interleaving,
            "profiles": self.profiles,
            "settings": self.settings,
        }


def without_personalisation(settings: Settings) -> Settings:
    return settings.override(personalisation={"enabled": False})


def _segment(base: Mapping[str, float], personal: Mapping[str, float], qids: Sequence[str], seed: int) -> SegmentResult:
    a = [base[q] for q in qids]
    b = [personal[q] for q in qids]
    return SegmentResult(
        searches=len(qids),
        ndcg10_base=float(np.mean(a)) if qids else 0.0,
        ndcg10_personal=float(np.mean(b)) if qids else 0.0,
        significance=paired_test(a, b, seed=seed).to_json() if qids else None,
    )


class PersonalisedEvaluation:
    """One split's held-out searches, their profiles and their cached retrieval: evaluated for any settings.

    Profiles are built once, with the pipeline's own personalisation settings
    (what an event weighs, how fast it decays); the stage's weights are what
    ``evaluate`` is given, so the tuner can try many on one build.
    """

    def __init__(
        self,
        pipeline: SearchPipeline,
        shoppers_dir: str | Path,
        split: str,
        *,
        shared: tuple[Mapping[str, Query], Qrels] | None = None,
        progress: bool = False,
    ):
        self.split = split
        self.queries, self.qrels = read_searches(shoppers_dir, split)
        self.search_profiles = shopper_profiles(pipeline, shoppers_dir, self.queries)
        self.cache = RankingCache(
            pipeline, self.queries, self.qrels, depth=DEPTH, profiles=self.search_profiles, progress=progress
        )
        self.shared_cache: RankingCache | None = None
        if shared is not None:
            shared_queries, shared_qrels = shared
            assigned = shared_profiles(shared_qrels, self.queries, self.search_profiles)
            self.shared_cache = RankingCache(
                pipeline, shared_queries, shared_qrels, depth=DEPTH, profiles=assigned, progress=progress
            )

    def segments(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for qid in self.cache.qrels:
            found.setdefault(self.queries[qid].meta.get("segment", "returning"), []).append(qid)
        return {name: found[name] for name in SEGMENTS if name in found}

    def returning_ndcg(self, settings: Settings) -> float:
        """Mean personalised nDCG@10 of returning shoppers' searches (the tuning objective's figure)."""
        scored = self.cache.score(settings)
        qids = self.segments().get("returning", [])
        return float(np.mean([scored.per_query[q][NDCG] for q in qids])) if qids else 0.0

    def evaluate(self, settings: Settings, *, interleave_searches: int = 0, seed: int = 13) -> PersonalisedReport:
        base_scored = self.cache.score(without_personalisation(settings))
        personal_scored = self.cache.score(settings)
        base = {q: s[NDCG] for q, s in base_scored.per_query.items()}
        personal = {q: s[NDCG] for q, s in personal_scored.per_query.items()}
        report = PersonalisedReport(
            split=self.split,
            segments={name: _segment(base, personal, qids, seed) for name, qids in self.segments().items()},
            profiles=sum(p is not None for p in self.search_profiles.values()),
            settings=settings.personalisation.model_dump(
                include={
                    "facet_weights",
                    "vector_weight",
                    "cap",
                    "max_rise",
                    "depth",
                    "min_events",
                    "relevance_power",
                    "skip_query_facets",
                }
            ),
        )
        if self.shared_cache is not None:
            shared_base = self.shared_cache.score(without_personalisation(settings)).per_query
            shared_personal = self.shared_cache.score(settings).per_query
            qids = list(self.shared_cache.qrels)
            report.shared = _segment(
                {q: shared_base[q][NDCG] for q in qids}, {q: shared_personal[q][NDCG] for q in qids}, qids, seed
            )
        if interleave_searches > 0:
            report.interleaving = self.interleave(settings, interleave_searches, seed)
        return report

    def interleave(self, settings: Settings, searches: int, seed: int) -> dict[str, Any]:
        """Team draft of the unpersonalised (A) and personalised (B) top 10 over the held-out searches drawn at
        random (every segment, as traffic comes), clicks by a position-based model on the shopper's grades."""
        base = self.cache.rank(without_personalisation(settings))
        personal = self.cache.rank(settings)
        rng = np.random.default_rng(seed)
        qids = sorted(self.cache.qrels)
        outcomes = []
        for _ in range(searches):
            qid = qids[int(rng.integers(len(qids)))]
            merged = team_draft(
                [c.product_id for c in base[qid][: len(THETA)]],
                [c.product_id for c in personal[qid][: len(THETA)]],
                rng,
                length=len(THETA),
            )
            if not merged.ids:
                continue
            [impression] = simulate_clicks(
                self.cache.qrels, [(qid, merged.ids)], THETA, rng, attraction=DEFAULT_ATTRACTION
            )
            outcomes.append(credit(merged.team_of(), impression.clicked))
        curve = preference_curve(outcomes, seed=seed)
        return {**summarise(outcomes, seed=seed).to_json(), "searches_needed": searches_needed(curve), "curve": curve}

    def close(self) -> None:
        self.cache.close()
        if self.shared_cache is not None:
            self.shared_cache.close()
