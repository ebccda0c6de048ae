"""Personalisation on simulated shoppers: held-out searches ranked with and without each shopper's profile.

What it shows (issue 16): a generated catalogue with simulated shoppers
(``generate --shoppers``: hidden tastes, a UBI log of earlier sessions,
per-(shopper, query) judgments of later ones); profiles built from the log as
``search-rerank profiles build`` replays it; the personalisation stage's
weights chosen on the dev shoppers with optuna (``tune --personalised``: the
tuner's own search, returning shoppers' searches only, since the stage skips
the others); then, on the test shoppers, nDCG@10 of the same pipeline with and
without the stage per segment (returning, cold, anonymous) with paired
significance, the dataset's shared test judgments ranked for returning
shoppers, and team-draft interleaving of the two rankings with clicks from a
position-based model on the shoppers' grades. The stage's defaults are
reported beside the tuned weights.

    python benchmarks/personalisation.py

Small on purpose (3,000 products, 600 queries, 1,000 shoppers; embedded tantivy
+ FAISS with MiniLM, no reranker) so that it runs in about half an hour on two
loaded cores; fewer shoppers run faster and measure mostly noise. Writes benchmarks/results/personalisation.json (merging its keys
into what is there) and its section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.pipeline import SearchPipeline  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig, generate  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.data.shoppers import ShopperConfig  # noqa: E402
from search_rerank.evaluation.personalised import (  # noqa: E402
    PersonalisedEvaluation,
    shared_profiles,
    without_personalisation,
)
from search_rerank.evaluation.tune import GUARD_COST, GUARD_LOSS, Goal, Guard, SearchSpace, tune  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "personalisation.json"


def prepared(args: argparse.Namespace) -> tuple[Path, Settings]:
    """The generated dataset with shoppers (made once per configuration) and settings for its index."""
    config = GeneratorConfig(products=args.products, queries=args.queries, seed=args.seed, workers=1)
    shoppers = ShopperConfig(shoppers=args.shoppers)
    out = args.work / f"gen-shoppers-{args.products}-{args.queries}-{args.seed}-{args.shoppers}"
    manifest = out / "shoppers" / "manifest.json"
    if not manifest.exists() or json.loads(manifest.read_text())["config"] != json.loads(
        json.dumps(vars(shoppers), default=list)
    ):
        generate(out, config, progress=False, shoppers=shoppers)
    # The index is of the catalogue alone (shoppers are simulated after it is written), so shopper counts share it.
    index = args.work / f"idx-gen-shoppers-{args.products}-{args.queries}-{args.seed}"
    return out, Settings(index_dir=index, models_dir=args.work / "models")


def follow_up_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of the scripts that study this benchmark's dataset and tuned weights (ceiling, clicks)."""
    ap.add_argument("--products", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=600)
    ap.add_argument("--shoppers", type=int, default=3000, help="as benchmarks/personalisation.py's")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")


def with_tuned_weights(args: argparse.Namespace) -> tuple[Path, Settings, SearchPipeline, dict]:
    """The dataset, its settings, the opened pipeline and the stage weights this benchmark chose
    (``personalisation_tuned``); exits when it has not run yet."""
    data, settings = prepared(args)
    cached_index(data, settings)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    tuned = json.loads(RESULTS.read_text()).get("personalisation_tuned") if RESULTS.exists() else None
    if tuned is None:
        pipeline.close()
        sys.exit("no personalisation_tuned in personalisation.json: run benchmarks/personalisation.py first")
    return data, settings, pipeline, tuned


def merge_results(keys: dict) -> dict:
    """Merge into personalisation.json: other scripts (the stage's latency) write keys there too."""
    current = read_results(RESULTS) | keys
    write_results(RESULTS, current)
    return current


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--products", type=int, default=3000)
    ap.add_argument("--queries", type=int, default=600, help="generated queries (the shared judgments: dev and test)")
    ap.add_argument(
        "--shoppers",
        type=int,
        default=3000,
        help="simulated shoppers: with 400, test held 157 returning searches and dev far fewer, so both the "
        "tuning and the check were mostly noise; with 1000 (435 returning test searches) the same weights scored "
        "+7.9%% on test and +6.8%% on the test shoppers of 3000, a spread of more than a point either way",
    )
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--trials", type=int, default=300, help="optuna trials on the dev shoppers (13 parameters)")
    ap.add_argument("--interleave", type=int, default=4000, help="simulated interleaved searches on test")
    ap.add_argument(
        "--max-shared-cost", type=float, default=0.005, help="most shared nDCG@10 a trial may lose (a constraint)"
    )
    ap.add_argument(
        "--guard-splits",
        nargs="+",
        default=["train", "dev"],
        help="whose shared judgments the guard ranks: any split but test (no stage here is trained on train)",
    )
    ap.add_argument(
        "--guard-standard-errors",
        type=float,
        default=1.0,
        help="standard errors of the shared loss that must also fit within the cost (Guard.standard_errors)",
    )
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")
    args = ap.parse_args()

    started = time.perf_counter()
    data, settings = prepared(args)
    built = cached_index(data, settings)
    build_seconds = built["seconds"]["total"] if isinstance(built["seconds"], dict) else built["seconds"]
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    shoppers = data / "shoppers"
    manifest = json.loads((shoppers / "manifest.json").read_text())
    dataset = load_beir(data)

    # Dev: the stage's weights, chosen on returning shoppers' held-out searches, with the shared judgments of the
    # guard's splits (ranked for those shoppers) allowed to lose at most the cost against no personalisation.
    # Not dev's alone: dev holds a sixth of the queries (104 of 600), too few for a bound of 0.005 to mean
    # anything, while train's are used by nothing here (no reranker or ranker is trained in this benchmark).
    if "test" in args.guard_splits:
        ap.error("--guard-splits: the guard is tuned against; test is only checked")
    guard_queries, guard_qrels = {}, {}
    for split in args.guard_splits:
        split_queries, split_qrels = dataset.split(split)
        guard_queries.update(split_queries)
        guard_qrels.update(split_qrels)
    dev = PersonalisedEvaluation(pipeline, shoppers, "dev", shared=dataset.split("dev"))
    returning = {q: v for q, v in dev.queries.items() if v.meta.get("segment") == "returning"}
    guard = Guard(
        guard_queries,
        guard_qrels,
        shared_profiles(guard_qrels, dev.queries, dev.search_profiles),
        max_cost=args.max_shared_cost,
        floor=without_personalisation(settings),
        standard_errors=args.guard_standard_errors,
    )

    def tuned_on_dev(guarded: Guard | None):
        return tune(
            pipeline,
            returning,
            {q: dev.qrels[q] for q in returning},
            trials=args.trials,
            seed=args.seed,
            goal=Goal(min_lt_share=0.0),
            space=SearchSpace(ranking=False, personalisation=True),
            profiles=dev.search_profiles,
            guard=guarded,
            split="dev",
        )

    tuned = tuned_on_dev(guard)
    best = settings.override(**tuned.best["sections"])
    # The same search without the guard: what the returning shoppers alone would choose, and what it costs.
    unguarded = settings.override(**tuned_on_dev(None).best["sections"])
    dev_defaults = dev.evaluate(settings)
    dev_tuned = dev.evaluate(best)
    dev_unguarded = dev.evaluate(unguarded)
    dev.close()

    # Test: checked once with the weights chosen on dev, and with the stage's defaults for comparison.
    test = PersonalisedEvaluation(pipeline, shoppers, "test", shared=dataset.split("test"))
    defaults = test.evaluate(settings)
    report = test.evaluate(best, interleave_searches=args.interleave, seed=args.seed)
    free = test.evaluate(unguarded)
    test.close()
    pipeline.close()
    seconds = time.perf_counter() - started

    ret, cold, anon = (report.segments[s] for s in ("returning", "cold", "anonymous"))
    shared = report.shared
    assert shared is not None and report.interleaving is not None
    il = report.interleaving
    keys = {
        "returning_ndcg10_base": ret.ndcg10_base,
        "returning_ndcg10_personal": ret.ndcg10_personal,
        "returning_ndcg10_relative_gain": ret.relative,
        "returning_p_value": ret.significance["p_value"] if ret.significance else None,
        "anonymous_ndcg10_delta": anon.delta,
        "cold_ndcg10_delta": cold.delta,
        "shared_judgments_ndcg10_delta": shared.delta,
        "shared_judgments_p_value": shared.significance["p_value"] if shared.significance else None,
        "returning_ndcg10_personal_defaults": defaults.segments["returning"].ndcg10_personal,
        "shared_judgments_ndcg10_delta_defaults": defaults.shared.delta if defaults.shared is not None else None,
        "unguarded_returning_ndcg10_personal": free.segments["returning"].ndcg10_personal,
        "unguarded_shared_judgments_ndcg10_delta": free.shared.delta if free.shared is not None else None,
        "interleaving_searches": il["impressions"],
        "interleaving_preference_personal": il["preference_b"],
        "interleaving_p_value": il["p_value"],
        "interleaving_searches_needed": il["searches_needed"],
        "personalisation_tuned": tuned.best["sections"]["personalisation"],
        "personalisation_benchmark": {
            "products": args.products,
            "queries": args.queries,
            "shoppers": manifest["shoppers"],
            "heldout_searches": manifest["heldout_queries"],
            "log_events": manifest["log_events"],
            "trials": args.trials,
            "dev_returning_ndcg10": {
                "base": dev_tuned.segments["returning"].ndcg10_base,
                "defaults": dev_defaults.segments["returning"].ndcg10_personal,
                "tuned": dev_tuned.segments["returning"].ndcg10_personal,
            },
            "dev_shared_ndcg10_delta": dev_tuned.shared.delta if dev_tuned.shared is not None else None,
            "guard": {
                "splits": args.guard_splits,
                "queries": len(guard_qrels),
                "max_cost": args.max_shared_cost,
                "standard_errors": args.guard_standard_errors,
                "tuned_mean_loss": tuned.best["metrics"][GUARD_LOSS],
                "tuned_cost": tuned.best["metrics"][GUARD_COST],
            },
            "dev_unguarded": dev_unguarded.to_json(),
            "unguarded_weights": unguarded.personalisation.model_dump(
                include=set(tuned.best["sections"]["personalisation"])
            ),
            "test_unguarded": free.to_json(),
            "test": report.to_json() | {"interleaving": {k: v for k, v in il.items() if k != "curve"}},
            "test_defaults": defaults.to_json(),
            "index_build_s": build_seconds,
            "seconds": seconds,
        },
    }
    merge_results(keys)
    print(json.dumps({k: v for k, v in keys.items() if k != "personalisation_benchmark"}, indent=2))
    if args.no_write:
        return

    def row(name: str, result, default=None) -> list[object]:
        p = result.significance["p_value"] if result.significance is not None else float("nan")
        return [
            name,
            result.searches,
            f"{result.ndcg10_base:.4f}",
            f"{default.ndcg10_personal:.4f}" if default is not None else "",
            f"{result.ndcg10_personal:.4f}",
            f"{result.delta:+.4f} ({result.relative:+.1%})",
            f"{p:.4f}",
        ]

    rows = [row(name, report.segments[name], defaults.segments[name]) for name in ("returning", "cold", "anonymous")]
    rows.append(row("shared test judgments", shared, defaults.shared))
    free_rows = [row(name, free.segments[name]) for name in ("returning", "cold", "anonymous")]
    free_rows.append(row("shared test judgments", free.shared))
    free_rows = [r[:3] + r[4:] for r in free_rows]  # no defaults column
    weights = tuned.best["sections"]["personalisation"]
    needed = il["searches_needed"] if il["searches_needed"] is not None else f"not reached in {il['impressions']}"
    segments = ", ".join(f"{n} {name}" for name, n in manifest["shoppers"].items())
    heldout = "; ".join(
        f"{split}: " + ", ".join(f"{n} {name}" for name, n in by_segment.items())
        for split, by_segment in manifest["heldout_queries"].items()
    )
    target = "meets" if ret.relative >= 0.10 and shared.delta >= -0.005 and cold.delta >= -0.005 else "falls short of"
    body = f"""
Generated catalogue ({args.products:,} products, {args.queries} queries, seed {args.seed}; embedded tantivy +
FAISS with MiniLM, **no reranker**) with {args.shoppers} simulated shoppers (`generate --shoppers`):
{segments}. Each has a hidden taste (2 brands, 2 colours, a style, 2 materials, a price
tier within the product type; each facet kept with probability 0.7, 20% of shoppers have none), shops 1-3
product types, and searches the generated queries of those types (85%; any query otherwise) by frequency. A
result page is a noisy ranker's top 10 of the query's judged products; clicks follow a position-based model
(examination 1.0, 0.85, 0.7 ... 0.25 by rank) with attractiveness 0.03 / 0.2 / 0.5 / 0.8 by grade times
(1 + matched taste facets), then add-to-cart and purchase. Sessions before day 50 go to the UBI log
({manifest["log_events"]["returning"]:,} events of returning shoppers; cold ones at most 2 events; anonymous
searches none); each later search is judged for its shopper: the query's shared grades, one grade up for a
relevant product matching at least 2 taste facets (never an irrelevant one). Shoppers are split between dev
and test; held-out searches {heldout}.

Profiles are built from the log by pers-core's replay (`read_shopper_actions` -> `profile_events` ->
`updated_profiles`) and aged to each search's time (`mix`). The stage's weights were chosen by
`evaluation.tune` (optuna TPE, {args.trials} trials, maximising returning dev shoppers' nDCG@10 under a guard: the
shared judgments of {" and ".join(args.guard_splits)} ({len(guard_qrels)} queries; dev alone has {len(dataset.split("dev")[1])}, too few
for the bound to mean anything, and nothing here is trained on train), each query ranked for a returning dev
shopper, may lose at most {args.max_shared_cost} nDCG@10 against no personalisation, counting the mean loss plus
{args.guard_standard_errors:g} standard error of it: the tuner keeps the best of its trials, which are those at the
bound whose guard figure came out lucky, so a bound on the mean alone is, on other queries, a bound exceeded),
then checked once on the test shoppers; the test rows rank each search with `rank_from` from one retrieval, with
and without the profile. The benchmark first had 400 shoppers and 300 queries and guarded on dev's shared
judgments alone, by the mean: returning +8.6% (p 0.0001), shared -0.0056 (p 0.40) on test. Then 1,000 shoppers
with this guard (435 returning test searches): returning +7.9% (p 0.0001), shared -0.0050; the weights it chose,
checked once (without the profile-vector term, by a one-off harness over the same lists) on the 1,274 returning
test searches of 3,000 shoppers, gained +6.8%: more than a point apart, so it now simulates 3,000.

The stage's term is scaled by the product's min-max scaled relevance to the tuned `relevance_power`, so taste
settles near-ties among good matches instead of lifting weak ones, and a facet whose value the query names
gets no affinity (`skip_query_facets`, on). Three other ideas were measured on the dev shoppers only and left
out because they lost there (fixed weights and a 150-trial tuning each): gating the term to a margin of the
best match (margins 0.3-0.5: returning gain 1-2.5 points below scaling alone at the same weights, e.g. +4.9%
against +7.3%); reading choices against impressions (a value's share of clicks beyond its share of what was
shown: returning gain 2-5 points lower in every setting tried); holding the stage back when the shopper has no
history in the top result's category (gain halved or worse, e.g. +1.3% against +4.9% with tuned weights).
A softer form of the last was tried on 3,000 shoppers with a one-off harness over the same lists (not this
script): the whole stage held back unless at least 5% of the query's top 10, weighted by relevance, lies in
categories the shopper shops. It separates the two kinds of search well (on 1,000 shoppers, three quarters
of the returning dev searches pass, 6% of the guard's), so the guard binds less and a 150-trial tuning reached +10.0% on dev at a
guard figure of 0.0034, against +9.2% at 0.0050 without it; on test it scored +6.9% against +7.3% (shared
-0.0038 and -0.0053), so it was left out. Without any guard, the strongest category term tried scored +8.9% on
that test (two settings tried, with and without the taste terms): none of the settings tried here reached +10% on test.

Why the guard changed, measured on dev only (the old guard: dev's shared judgments, mean loss; dev's returning
shoppers split in two halves by shopper and its 104 shared queries in two halves, tuned on one half with 150
trials, checked on the other): at a bound of 0.005 the tuning half's shared loss was 0.001-0.003 and the other
half's 0.004 and 0.022 (mean 0.013); at 0.003, 0.006 and 0.030. A bound on the mean of 52 queries is met by
the trials whose figure came out lucky on those queries, and the tuner keeps exactly those; hence a guard on
about four times the queries, held to its mean loss plus one standard error.

Test nDCG@10 (base = the same pipeline without the stage; p = paired randomisation test). Against the issue's
targets (returning >= +10% relative, anonymous unchanged, cold and shared >= -0.005) the tuned stage
{target} them: returning {ret.relative:+.1%} (p = {ret.significance["p_value"] if ret.significance else float("nan"):.4f}), anonymous
{anon.delta:+.4f}, cold {cold.delta:+.4f}, shared {shared.delta:+.4f}.

{table(["segment", "searches", "base", "stage defaults", "tuned on dev", "delta (tuned)", "p (tuned)"], rows)}

Chosen on dev: `{json.dumps(weights)}` (dev returning: base
{dev_tuned.segments["returning"].ndcg10_base:.4f}, defaults {dev_defaults.segments["returning"].ndcg10_personal:.4f},
tuned {dev_tuned.segments["returning"].ndcg10_personal:.4f}; dev shared judgments
{dev_tuned.shared.delta if dev_tuned.shared is not None else float("nan"):+.4f}; the guard's queries: mean loss
{tuned.best["metrics"][GUARD_LOSS]:.4f}, the bound's figure {tuned.best["metrics"][GUARD_COST]:.4f}).

The trade-off: the same search on dev without the guard (returning shoppers' nDCG@10 alone) chooses stronger
weights, which gain more for returning shoppers and cost the shared judgments far more (test):

{table(["segment", "searches", "base", "tuned without guard", "delta", "p"], free_rows)}

Interleaving on the test shoppers' searches (all segments, drawn at random; A = without, B = with the tuned
stage; clicks by the position-based model on the shopper's own grades): {il["impressions"]} searches, A wins
{il["a_wins"]}, B wins {il["b_wins"]}, ties {il["ties"]}, preference for personalised {il["preference_b"]:+.3f},
p = {il["p_value"]:.4f}; searches needed for p < 0.05 (and staying there): {needed}.

Whole run {seconds / 60:.1f} min (index build {build_seconds:.0f} s, on the first run only).
"""
    write_section("personalisation", "Personalisation on simulated shoppers (issue 16)", body)


if __name__ == "__main__":
    main()
