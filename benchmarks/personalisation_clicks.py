"""A personal term learned from shoppers' clicks: the step after the bounded stage, measured before building it.

Why (issue 16): the tuned stage adds hand-shaped terms (a weight per facet
times the shopper's share of the product's value), and with the simulator's
hidden taste in place of the learned one it still stops short of +10%
(``personalisation_ceiling.py``), so the stage's form is one limit. A learned
form could find what a weighted sum cannot (a product matching two facets
being worth more than the sum of each, taste mattering more among close
matches). A shop has no per-shopper judgments, only its UBI log, so the form
is learned from that: every logged search of a warm shopper (at least
``min_events`` before it), with the shopper's profile as it was just before
the search, is a LambdaMART query group over the products both shown on that
page and in the pipeline's top ``--depth`` for the query text; the label is the
deepest action taken (purchase 3, add to cart 2, click 1, shown only 0).
Features: the pipeline's min-max relevance and position, the profile's event
count, the shopper's share of the product's value per facet (the facets the
query names left out, as the stage does), the profile-product cosine, and
the position on the logged page, which is what the click model examines by:
the model learns it from the log and is then asked about position 0
(position as a feature, the usual debiasing of clicks).

Served, the term would be the model's uplift from the profile: its score of
the product against the same row with every profile feature zeroed (no
taste), times a weight, scaled by relevance like the stage's term, and
bounded by the same largest rise. On the dev shoppers of
``personalisation.py``'s dataset it is tried alone and on top of the tuned
stage, over a grid of weights, each held to the tuner's guard (the shared
judgments of train and dev ranked for returning shoppers, at most 0.005
nDCG@10 lost plus one standard error). Dev only: this decides whether to build
it, so test stays unread.

The other way to read more from the same log is tried beside it: taste as
clicks in excess of what the shopper was shown (``Exposure``), ranked by the
tuned stage itself. Writes the ``clicks_ranker`` key of
benchmarks/results/personalisation.json and its section of docs/BENCHMARKS.md.

    python benchmarks/personalisation_clicks.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from personalisation import follow_up_arguments, merge_results, with_tuned_weights  # noqa: E402
from report import table, write_section  # noqa: E402

from search_rerank.core.candidate import Candidate  # noqa: E402
from search_rerank.core.fusion import minmax  # noqa: E402
from search_rerank.core.personalise import bounded_order, cosines, personalise, query_facets  # noqa: E402
from search_rerank.core.pipeline import SearchPipeline  # noqa: E402
from search_rerank.core.profile import ShopperProfile, apply_event, facet_values, mix, shares, user_key  # noqa: E402
from search_rerank.core.settings import PersonalisationSettings  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.personalised import (  # noqa: E402
    PersonalisedEvaluation,
    shared_profiles,
    without_personalisation,
)
from search_rerank.evaluation.tune import NDCG, Guard, RankingCache  # noqa: E402

FACETS = ("category", "brand", "color", "material", "style", "size", "price_band")
FEATURES = ("relevance", "position", "log_events", *(f"share_{f}" for f in FACETS), "cosine")
PROFILE_COLUMNS = slice(2, len(FEATURES))
"""The columns zeroed for the no-taste row the uplift is measured against."""
LABELS = {"click": 1, "add_to_cart": 2, "purchase": 3}
WEIGHTS = (0.05, 0.1, 0.2, 0.4, 0.8)
"""The uplift's weight, in standard deviations of the uplift over the dev windows."""
POWERS = (0.0, 0.5, 1.0)
EXCESS = (0.0, 0.5, 1.0)
"""How much of the clicks that exposure predicts is taken off a taste value (0: the profiles as built)."""


@dataclass
class LoggedSearch:
    text: str
    profile: ShopperProfile
    shown: list[str]
    labels: dict[str, int]


def seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def read_log(log: Path) -> list[dict]:
    """The simulator's UBI records (query records and events), oldest first."""
    records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return sorted(records, key=lambda r: seconds(r["timestamp"]))


def event_product(record: dict) -> str:
    return record["event_attributes"]["object"]["object_id"]


def logged_searches(
    pipeline: SearchPipeline, records: list[dict], settings: PersonalisationSettings
) -> dict[str, LoggedSearch]:
    """Each logged search of a warm signed-in shopper, with the profile built from their events before it (as
    the service would have read it then) and the deepest action per product shown."""
    ids = sorted({event_product(r) for r in records if "action_name" in r})
    products, vectors = pipeline.store.get(ids), pipeline.vectors_of(ids)
    profiles: dict[str, ShopperProfile] = {}
    searches: dict[str, LoggedSearch] = {}
    for r in records:
        at = seconds(r["timestamp"])
        if "action_name" not in r:
            user = r["query_attributes"].get("user_id")
            profile = mix(None, profiles.get(user), settings, at) if user else None
            if profile is not None and profile.events >= settings.min_events:
                searches[r["query_id"]] = LoggedSearch(r["user_query"], profile, r["query_response_hit_ids"], {})
            continue
        pid, action, user = event_product(r), r["action_name"], r.get("user_id")
        search = searches.get(r["query_id"])
        if search is not None and action in LABELS:
            search.labels[pid] = max(search.labels.get(pid, 0), LABELS[action])
        if user and pid in products:
            key = user_key(user)
            profiles[user] = apply_event(
                profiles.get(user), key, products[pid], action, at, vectors.get(pid), settings, user_id=user
            )
    return searches


class Exposure:
    """Per shopper and facet value, the decayed action weight of what they did and the decayed count of what they
    were shown, from the log: enough to read taste as clicks in excess of exposure at any time."""

    def __init__(self, pipeline: SearchPipeline, records: list[dict], settings: PersonalisationSettings):
        self.half_life_s = settings.half_life_s
        ids = sorted({event_product(r) for r in records if "action_name" in r})
        products = pipeline.store.get(ids)
        values = {pid: facet_values(products[pid]) for pid in ids if pid in products}
        rows: dict[str, list[tuple[float, str, str, float, float]]] = {}
        for r in records:
            user, pid = r.get("user_id"), event_product(r) if "action_name" in r else None
            if not user or pid not in values:
                continue
            acted = settings.action_weights.get(r["action_name"], 0.0)
            shown = 1.0 if r["action_name"] == "impression" else 0.0
            if acted <= 0 and shown <= 0:
                continue
            for facet, own in values[pid].items():
                for value in own:
                    rows.setdefault(user, []).append(
                        (seconds(r["timestamp"]), facet, value, acted / len(own), shown / len(own))
                    )
        self.rows = rows

    def affinities(self, user: str, at: float, excess: float) -> dict[str, dict[str, float]]:
        """The shopper's affinities as of ``at``: per taste facet, the decayed weight of what they did to each
        value less ``excess`` times what their own rate of acting on what they are shown predicts from how
        often that value was shown to them (none below 0); the category facet as logged, since which types a
        shopper is shown follows what they search for, which is the signal there."""
        acted: dict[tuple[str, str], float] = {}
        shown: dict[tuple[str, str], float] = {}
        for t, facet, value, a, n in self.rows.get(user, []):
            decay = 0.5 ** (max(at - t, 0.0) / self.half_life_s)
            acted[facet, value] = acted.get((facet, value), 0.0) + a * decay
            shown[facet, value] = shown.get((facet, value), 0.0) + n * decay
        out: dict[str, dict[str, float]] = {}
        for facet in {f for f, _ in acted}:
            did = {v: w for (f, v), w in acted.items() if f == facet and w > 0}
            seen = {v: w for (f, v), w in shown.items() if f == facet}
            total_seen = sum(seen.values())
            rate = sum(did.values()) / total_seen if total_seen > 0 else 0.0
            if facet != "category" and excess > 0:
                did = {v: max(0.0, w - excess * rate * seen.get(v, 0.0)) for v, w in did.items()}
            out[facet] = did
        return out


def window_rows(pipeline: SearchPipeline, text: str, window: list[Candidate], profile: ShopperProfile) -> np.ndarray:
    """``FEATURES`` for each product of the window, for this shopper."""
    ids = [c.product_id for c in window]
    facets = pipeline.product_facets(ids)
    values = [facets.get(pid, {}) for pid in ids]
    named = query_facets(text, values)
    facet_shares = {facet: shares(v) for facet, v in profile.affinities.items() if facet not in named}
    rows = np.zeros((len(ids), len(FEATURES)))
    rows[:, 0] = minmax(np.array([c.score for c in window], dtype=np.float64))
    rows[:, 1] = np.arange(len(ids))
    rows[:, 2] = np.log1p(profile.events)
    for i, own in enumerate(values):
        for j, facet in enumerate(FACETS, start=3):
            known = facet_shares.get(facet)
            if known and facet in own:
                rows[i, j] = max(known.get(v, 0.0) for v in own[facet])
    if profile.vector is not None:
        rows[:, -1] = cosines(profile.vector, ids, pipeline.vectors_of(ids))
    return rows


def uplift(booster, rows: np.ndarray) -> np.ndarray:
    """The model's score with the profile over its score without it, at position 0 of the page."""
    at_top = np.column_stack([rows, np.zeros(len(rows))])
    no_taste = at_top.copy()
    no_taste[:, PROFILE_COLUMNS] = 0.0
    return booster.predict(at_top, num_threads=2) - booster.predict(no_taste, num_threads=2)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    follow_up_arguments(ap)
    ap.add_argument("--depth", type=int, help="the window the term re-ranks (default: the tuned stage's depth)")
    ap.add_argument("--train-searches", type=int, default=12000, help="logged searches with a click to learn from")
    args = ap.parse_args()

    import lightgbm

    started = time.perf_counter()
    data, settings, pipeline, tuned = with_tuned_weights(args)
    stage = settings.override(personalisation=tuned).personalisation
    if args.depth is None:
        args.depth = stage.depth
    everyone_settings = without_personalisation(settings)

    # ---- learning from the log
    records = read_log(data / "shoppers" / "ubi.ndjson")
    searches = logged_searches(pipeline, records, settings.personalisation)
    clicked = sorted(q for q, s in searches.items() if s.labels)
    rng = np.random.default_rng(args.seed)
    sample = sorted(rng.choice(clicked, size=min(args.train_searches, len(clicked)), replace=False))
    lists = {
        text: pipeline.rank_for_everyone(
            pipeline.retrieve(text, None, everyone_settings), everyone_settings
        ).candidates[: args.depth]
        for text in sorted({searches[q].text for q in sample})
    }
    rows, labels, groups = [], [], []
    for qid in sample:
        search = searches[qid]
        window = lists[search.text]
        page = {pid: rank for rank, pid in enumerate(search.shown)}
        keep = [i for i, c in enumerate(window) if c.product_id in page]
        grades = [search.labels.get(window[i].product_id, 0) for i in keep]
        if not keep or max(grades) == 0:
            continue
        features = window_rows(pipeline, search.text, window, search.profile)[keep]
        rows.append(np.column_stack([features, [page[window[i].product_id] for i in keep]]))
        labels.extend(grades)
        groups.append(len(keep))
    train = lightgbm.Dataset(
        np.vstack(rows), np.asarray(labels, dtype=np.float64), group=groups, feature_name=[*FEATURES, "page_position"]
    )
    params = {
        "objective": "lambdarank",
        "num_leaves": 15,
        "learning_rate": 0.05,
        "min_data_in_leaf": 100,
        "seed": args.seed,
        "deterministic": True,
        "num_threads": 2,
        "verbose": -1,
    }
    cv = lightgbm.cv(
        params | {"metric": "ndcg", "eval_at": [5]},
        train,
        num_boost_round=1000,
        nfold=4,
        callbacks=[lightgbm.early_stopping(50, verbose=False)],
    )
    rounds = len(cv["valid ndcg@5-mean"])
    booster = lightgbm.train(params, train, num_boost_round=rounds)
    importance = dict(zip([*FEATURES, "page_position"], booster.feature_importance("gain").tolist()))

    # ---- dev: the uplift alone and on top of the tuned stage, under the guard
    dev = PersonalisedEvaluation(pipeline, data / "shoppers", "dev")
    dataset = load_beir(data)
    guard_queries, guard_qrels = {}, {}
    for split in ("train", "dev"):
        split_queries, split_qrels = dataset.split(split)
        guard_queries.update(split_queries)
        guard_qrels.update(split_qrels)
    guard = Guard(guard_queries, guard_qrels, shared_profiles(guard_qrels, dev.queries, dev.search_profiles))
    guard_cache = RankingCache(pipeline, guard_queries, guard_qrels, depth=100)

    def prepared_windows(cache: RankingCache, qids, profiles, texts):
        """Per query ranked for a warm shopper: its window's relevance, the tuned stage's term and the uplift."""
        ranked = cache.rank(everyone_settings)
        out = {}
        for qid in qids:
            profile = profiles.get(qid)
            if profile is None or profile.events < stage.min_events - 0.01:
                continue
            window = ranked[qid][: args.depth]
            feature_rows = window_rows(pipeline, texts[qid], window, profile)
            staged = personalise(
                window,
                {},
                pipeline.vectors_of([c.product_id for c in window]),
                profile,
                stage,
                facets=pipeline.product_facets([c.product_id for c in window]),
                query=texts[qid],
            )
            term = {c.product_id: c.features.get("personal", 0.0) for c in staged}
            out[qid] = (
                feature_rows[:, 0],
                np.array([term[c.product_id] for c in window]),
                uplift(booster, feature_rows),
            )
        return ranked, out

    returning = dev.segments().get("returning", [])
    dev_ranked, dev_windows = prepared_windows(
        dev.cache, returning, dev.cache.profiles, {q: dev.queries[q].text for q in returning}
    )
    guard_ranked, guard_windows = prepared_windows(
        guard_cache,
        list(guard_cache.qrels),
        guard.profiles or {},
        {q: guard_queries[q].text for q in guard_cache.qrels},
    )
    sd = float(np.std(np.concatenate([w[2] for w in dev_windows.values()])))

    def ndcg(qrels, ranked, windows, additive: bool, weight: float, power: float) -> dict[str, float]:
        run = {}
        for qid, hits in ranked.items():
            if qid in windows:
                relevance, term, up = windows[qid]
                scores = relevance + (term if additive else 0.0) + weight * up * relevance**power
                order = bounded_order(scores, stage.max_rise)
                hits = [hits[i] for i in order] + hits[len(order) :]
            run[qid] = [(c.product_id, float(len(hits) - k)) for k, c in enumerate(hits[:100])]
        per_query = relevance_metrics({q: qrels[q] for q in run}, run)
        return {q: per_query[q][NDCG] for q in run}

    def mean(scores: dict[str, float], qids) -> float:
        return float(np.mean([scores[q] for q in qids]))

    base = mean(ndcg(dev.qrels, dev_ranked, {}, False, 0.0, 0.0), returning)
    guard_floor = ndcg(guard_qrels, guard_ranked, {}, False, 0.0, 0.0)
    grid = []
    for additive in (True, False):
        for k in (0.0, *WEIGHTS) if additive else WEIGHTS:
            for power in (0.0,) if k == 0.0 else POWERS:
                scored = ndcg(dev.qrels, dev_ranked, dev_windows, additive, k / sd, power)
                cost = guard.cost(guard_floor, ndcg(guard_qrels, guard_ranked, guard_windows, additive, k / sd, power))
                grid.append(
                    {
                        "tuned_stage": additive,
                        "weight_sd": k,
                        "relevance_power": power,
                        "dev_returning_ndcg10": mean(scored, returning),
                        "guard_cost": cost,
                    }
                )
    for row in grid:
        row["relative_gain"] = row["dev_returning_ndcg10"] / base - 1
        row["within_guard"] = row["guard_cost"] <= guard.max_cost

    # ---- the other way to read more taste from the log: clicks in excess of what the shopper was shown
    exposure = Exposure(pipeline, records, settings.personalisation)
    dev_texts = {q: dev.queries[q].text for q in returning}
    guard_texts = {q: guard_queries[q].text for q in guard_cache.qrels}

    def stage_ndcg(qrels, ranked, profiles, texts, excess: float, taste_scale: float) -> dict[str, float]:
        weights = {f: w * (1.0 if f == "category" else taste_scale) for f, w in stage.facet_weights.items()}
        scaled = stage.model_copy(update={"facet_weights": weights})
        run = {}
        for qid in texts:
            hits, profile = ranked[qid], profiles.get(qid)
            if profile is not None and profile.user_id in exposure.rows:
                read = exposure.affinities(profile.user_id, profile.updated_at, excess)
                profile = replace(profile, affinities=read)
            ids = [c.product_id for c in hits[: scaled.depth]]
            vectors, facets = pipeline.vectors_of(ids), pipeline.product_facets(ids)
            hits = personalise(hits, {}, vectors, profile, scaled, facets=facets, query=texts[qid])
            run[qid] = [(c.product_id, c.score) for c in hits[:100]]
        per_query = relevance_metrics({q: qrels[q] for q in run}, run)
        return {q: per_query[q][NDCG] for q in run}

    exposure_rows = []
    for excess in EXCESS:
        for taste_scale in (1.0, 2.0):
            scored = stage_ndcg(dev.qrels, dev_ranked, dev.cache.profiles, dev_texts, excess, taste_scale)
            guarded = stage_ndcg(guard_qrels, guard_ranked, guard.profiles or {}, guard_texts, excess, taste_scale)
            value = mean(scored, returning)
            cost = guard.cost(guard_floor, guarded)
            exposure_rows.append(
                {
                    "excess": excess,
                    "taste_weights_scale": taste_scale,
                    "dev_returning_ndcg10": value,
                    "relative_gain": value / base - 1,
                    "guard_cost": cost,
                    "within_guard": cost <= guard.max_cost,
                }
            )
    dev.close()
    guard_cache.close()
    pipeline.close()

    def best(rows):
        kept = [r for r in rows if r["within_guard"]]
        return max(kept, key=lambda r: r["dev_returning_ndcg10"]) if kept else None

    stage_alone = next(r for r in grid if r["tuned_stage"] and r["weight_sd"] == 0.0)
    with_stage = best([r for r in grid if r["tuned_stage"] and r["weight_sd"] > 0])
    alone = best([r for r in grid if not r["tuned_stage"]])
    result = {
        "dev_returning_base": base,
        "tuned_stage": stage_alone,
        "best_uplift_alone": alone,
        "best_uplift_with_stage": with_stage,
        "grid": grid,
        "exposure_corrected": exposure_rows,
        "logged_warm_searches": len(searches),
        "train_searches": len(groups),
        "train_rows": len(labels),
        "rounds": rounds,
        "cv_ndcg5": float(cv["valid ndcg@5-mean"][-1]),
        "gain_importance": importance,
        "returning_searches": len(returning),
        "guard_queries": len(guard_qrels),
        "command": "python benchmarks/personalisation_clicks.py",
        "seconds": time.perf_counter() - started,
    }
    merge_results({"clicks_ranker": result})
    print(json.dumps({k: v for k, v in result.items() if k not in ("grid",)}, indent=2))
    if args.no_write:
        return

    def cells(row) -> list[str]:
        if row is None:
            return ["none within the guard", "", ""]
        return [f"{row['dev_returning_ndcg10']:.4f}", f"{row['relative_gain']:+.1%}", f"{row['guard_cost']:.4f}"]

    top = sorted(importance.items(), key=lambda kv: -kv[1])
    as_built = next(r for r in exposure_rows if r["excess"] == 0 and r["taste_weights_scale"] == 1.0)
    corrected = max((r for r in exposure_rows if r["excess"] > 0), key=lambda r: r["dev_returning_ndcg10"])
    which = f"excess {corrected['excess']:g}, taste weights x{corrected['taste_weights_scale']:g}"
    if (
        corrected["within_guard"]
        and corrected["dev_returning_ndcg10"] - as_built["dev_returning_ndcg10"] >= 0.005 * base
    ):
        exposure_verdict = (
            f"The best corrected reading ({which}) gains {corrected['relative_gain']:+.1%} against "
            f"{as_built['relative_gain']:+.1%} as built, within the guard: worth building into the profiles and "
            "checking on test."
        )
    else:
        exposure_verdict = (
            f"The best corrected reading ({which}) gains {corrected['relative_gain']:+.1%} against "
            f"{as_built['relative_gain']:+.1%} as built, at a guard cost of {corrected['guard_cost']:.4f} against "
            f"{as_built['guard_cost']:.4f} (the guard allows {guard.max_cost}): taking exposure off leaves less "
            "taste to read, not more, so the profiles stay as they are."
        )
    adds = with_stage is not None and with_stage["relative_gain"] - stage_alone["relative_gain"] >= 0.005
    alone_text = f"{alone['relative_gain']:+.1%}" if alone else "nothing within the guard"
    verdict = (
        f"adds {with_stage['relative_gain'] - stage_alone['relative_gain']:+.1%} to the tuned stage on dev (alone "
        f"{alone_text}): worth building as a stage and checking on test"
        if adds
        else f"adds {'nothing within the guard' if with_stage is None else 'less than half a point'} to the tuned "
        f"stage (alone it reaches {alone_text}), so it is not built: "
        f"a shopper's ~35 logged clicks, each made among ten products mostly by position and relevance, "
        f"carry too little taste for a learned form to find more than the weighted sum does"
    )
    body = f"""
Would a personal term learned from the shop's own log beat the hand-shaped one? `benchmarks/personalisation_clicks.py`
learns one the way a shop could: every logged search of a warm shopper ({len(groups):,} with a click among the
products shown and in the pipeline's top {args.depth}, {
        len(labels):,} rows) is a LambdaMART query group, labelled by the
deepest action (purchase 3, cart 2, click 1, shown 0), with the shopper's profile as it was just before that
search: min-max relevance and position in the pipeline's list, the profile's event count, the shopper's share of
the product's value per facet (query-named facets left out), the profile-product cosine, and the position on the
logged page (the click model's examination; learned, then asked about position 0). {rounds} rounds by 4-fold
cross-validation over the searches. The term served would be the model's uplift from the profile (its score
against the same row with no taste), weighted (in standard deviations of the uplift), scaled by relevance, and
bounded by the tuned stage's largest rise; alone, or added to the tuned stage. Dev returning shoppers
({len(returning)} searches), each variant held to the tuner's guard (shared judgments of train and dev,
{len(guard_qrels)} queries, loss plus one standard error at most {guard.max_cost}).

{
        table(
            ["ranking", "dev nDCG@10", "relative to base", "guard cost"],
            [
                ["base (no personalisation)", f"{base:.4f}", "", ""],
                ["tuned stage (as served)", *cells(stage_alone)],
                ["learned uplift alone, best within the guard", *cells(alone)],
                ["tuned stage plus learned uplift, best within the guard", *cells(with_stage)],
            ],
        )
    }

The features the model split on most (gain): {", ".join(f"{name} {value:,.0f}" for name, value in top[:5])}.
What it says: learned this way, the taste left in the clicks {verdict}. The grid is in `clicks_ranker` of
`benchmarks/results/personalisation.json`.

The other way to read more taste from the same log: a shopper clicks the colours they were shown, so a
profile's share of a colour follows the pages as much as the shopper. Read instead as clicks in excess of
exposure (per taste facet: the decayed weight of what they did to a value, less `excess` times what their own
rate of acting on what they are shown predicts from how often it was shown to them; the category facet as
built, since which types a shopper is shown follows what they search for), the tuned stage itself ranks with
it, at its tuned weights and with the taste weights doubled:

{
        table(
            ["taste read as", "taste weights", "dev nDCG@10", "relative to base", "guard cost"],
            [
                [
                    "built (excess 0, recomputed)" if r["excess"] == 0 else f"excess {r['excess']:g}",
                    f"x{r['taste_weights_scale']:g}",
                    f"{r['dev_returning_ndcg10']:.4f}",
                    f"{r['relative_gain']:+.1%}",
                    f"{r['guard_cost']:.4f}",
                ]
                for r in exposure_rows
            ],
        )
    }

{exposure_verdict}

`python benchmarks/personalisation_clicks.py` ({result["seconds"] / 60:.1f} min, dev only).
"""
    write_section("personalisation-clicks", "Personalisation: a term learned from clicks (issue 16)", body)


if __name__ == "__main__":
    main()
