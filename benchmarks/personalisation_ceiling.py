"""Where the personalisation stage's gain comes from, and how much a perfect reading of taste would add.

Why (issue 16): the tuned stage gains about +7.7% nDCG@10 for returning
shoppers on dev (+5.7% on test) against a target of +10%, and whether the gap is the stage's form or
what profiles learn from behaviour decides what to build next. On the dev
shoppers of ``benchmarks/personalisation.py``'s dataset, with the weights that
benchmark chose (``personalisation_tuned`` in personalisation.json), this
ranks the returning shoppers' held-out searches with:

- the profiles built from the log, as served, and with the category term
  alone or the taste terms alone (what the shopper shops for, against how
  they choose among what they are shown);
- oracle profiles: each shopper's logged category affinities, but brand,
  colour, style and material read from the simulator's hidden taste
  (``shoppers.jsonl``) instead of from clicks, at the tuned weights and with
  the taste weights doubled and quadrupled; and the same with the hidden
  price tier too. The simulator's tier is a price tertile within the product
  type, which no profile facet holds (price bands are one per doubling of
  price across the catalogue), so for those rows the stage is given each
  product's tier in place of its price band (``personalise``'s ``facets``).

- how much taste the log holds at all: per taste facet, the share of a
  returning shopper's clicks on their hidden values against the share of
  what they were shown, and how many of those values their most-clicked ones
  are (the profile's reading of taste, at its best).

Dev only: nothing here is chosen, so test stays unread. Writes the
``ceiling`` key of benchmarks/results/personalisation.json and its section of
docs/BENCHMARKS.md.

    python benchmarks/personalisation_ceiling.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from personalisation import follow_up_arguments, merge_results, with_tuned_weights  # noqa: E402
from report import table, write_section  # noqa: E402

from search_rerank.core.personalise import personalise  # noqa: E402
from search_rerank.core.profile import ShopperProfile  # noqa: E402
from search_rerank.data.clicks import read_shopper_actions  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.personalised import PersonalisedEvaluation, without_personalisation  # noqa: E402
from search_rerank.evaluation.tune import NDCG  # noqa: E402

TASTE_FACETS = {"brand": "brand", "colour": "color", "style": "style", "material": "material"}
"""The simulator's taste facets and the profile facet each is read into."""


PRICE = "price_band"
"""The profile facet the oracle's price tier goes into (the stage is given tiers there in place of bands)."""


def price_tiers(corpus: Path) -> dict[str, str]:
    """Each product's price tertile within its category, as the simulator's ``price_tiers`` (one category path
    per product type in the generator), named ``tier0`` (budget) to ``tier2`` (premium)."""
    records = [json.loads(line) for line in corpus.read_text(encoding="utf-8").splitlines()]
    by_path: dict[str, list[dict]] = {}
    for record in records:
        by_path.setdefault(" > ".join(record["category"]), []).append(record)
    tiers = {}
    for group in by_path.values():
        low, high = np.quantile([r["price"] for r in group], [1 / 3, 2 / 3])
        for r in group:
            tiers[r["_id"]] = f"tier{int(r['price'] > low) + int(r['price'] > high)}"
    return tiers


def returning_behaviour(shoppers: Path) -> tuple[dict[str, dict], dict[str, dict[str, list[str]]]]:
    """Each returning shopper's hidden taste, and the product ids of their logged clicks and impressions (one
    read of the log for both measures below)."""
    taste = {
        r["user_id"]: r["taste"]
        for r in map(json.loads, (shoppers / "shoppers.jsonl").read_text().splitlines())
        if r["segment"] == "returning"
    }
    seen: dict[str, dict[str, list[str]]] = {user: {"click": [], "impression": []} for user in taste}
    for a in read_shopper_actions(shoppers / "ubi.ndjson", ["click", "impression"])[0]:
        if a.user_id in seen:
            seen[a.user_id][a.action].append(a.product_id)
    return taste, seen


def clicks_per_shopper(seen: dict[str, dict[str, list[str]]]) -> float:
    """Mean logged clicks per returning shopper: how much behaviour a profile has to read taste from."""
    return sum(len(acted["click"]) for acted in seen.values()) / max(len(seen), 1)


def taste_in_clicks(
    taste: dict[str, dict],
    seen: dict[str, dict[str, list[str]]],
    facets: Callable[[list[str]], dict[str, dict[str, tuple[str, ...]]]],
) -> dict:
    """Per taste facet, over returning shoppers with a taste in it: the mean share of their clicks on a preferred
    value, the same share of the products they were shown, and the share of their preferred values among their
    k most-clicked values (k = how many they prefer). The click model multiplies a product's attraction per
    matched facet, so these say how much of that survives relevance, position and the attraction cap."""
    values = facets(sorted({pid for acted in seen.values() for pids in acted.values() for pid in pids}))
    out = {}
    for facet, into in TASTE_FACETS.items():
        clicked, shown, recovered = [], [], []
        for user, wants in taste.items():
            wanted = {str(v).lower() for v in wants.get(facet, [])}
            if not wanted or not seen[user]["click"]:
                continue
            counts = {
                kind: Counter(v for pid in pids for v in values.get(pid, {}).get(into, ()))
                for kind, pids in seen[user].items()
            }
            clicks, impressions = counts["click"], counts["impression"]
            clicked.append(sum(clicks[v] for v in wanted) / max(sum(clicks.values()), 1))
            shown.append(sum(impressions[v] for v in wanted) / max(sum(impressions.values()), 1))
            top = {v for v, _ in clicks.most_common(len(wanted))}
            recovered.append(len(top & wanted) / len(wanted))
        out[facet] = {
            "shoppers": len(clicked),
            "click_share": float(np.mean(clicked)),
            "shown_share": float(np.mean(shown)),
            "top_clicked_recovered": float(np.mean(recovered)),
        }
    return out


def oracle_profile(profile: ShopperProfile, taste: dict[str, list], with_price: bool) -> ShopperProfile:
    """``profile`` with its taste facets replaced by the hidden taste (equal shares of the preferred values) and
    no vector: its category affinities, event count and age are the logged ones."""
    affinities = {"category": dict(profile.affinities.get("category", {}))}
    for facet, into in TASTE_FACETS.items():
        wanted = [str(v).lower() for v in taste.get(facet, [])]
        if wanted:
            affinities[into] = dict.fromkeys(wanted, 1.0)
    if with_price and taste.get("price_tier"):
        affinities[PRICE] = {f"tier{t}": 1.0 for t in taste["price_tier"]}
    return ShopperProfile(
        key=profile.key,
        affinities=affinities,
        events=profile.events,
        updated_at=profile.updated_at,
        user_id=profile.user_id,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    follow_up_arguments(ap)
    args = ap.parse_args()

    started = time.perf_counter()
    data, settings, pipeline, tuned = with_tuned_weights(args)
    weights = tuned["facet_weights"]
    only = {facet: 0.0 for facet in weights}
    tastes = {
        record["user_id"]: record["taste"]
        for record in map(json.loads, (data / "shoppers" / "shoppers.jsonl").read_text().splitlines())
        if record["user_id"]
    }

    dev = PersonalisedEvaluation(pipeline, data / "shoppers", "dev")
    learned = dict(dev.cache.profiles)

    def returning(personalisation: dict) -> float:
        return dev.returning_ndcg(settings.override(personalisation=personalisation))

    rows = {
        "base": dev.returning_ndcg(settings.override(personalisation={"enabled": False})),
        "learned_tuned": returning(tuned),
        "learned_category_only": returning(
            dict(tuned, facet_weights=dict(only, category=weights["category"]), vector_weight=0.0)
        ),
        "learned_taste_only": returning(dict(tuned, facet_weights=dict(weights, category=0.0))),
    }
    # The oracle rows rank the same first-stage lists with the stage itself, given the oracle profiles.
    qids = dev.segments().get("returning", [])
    everyone = dev.cache.rank(without_personalisation(settings))
    tiers = price_tiers(data / "corpus.jsonl")
    for with_price in (False, True):
        taste = {*TASTE_FACETS.values(), *([PRICE] if with_price else [])}
        variants = {f"x{k}": {f: w * (k if f in taste else 1) for f, w in weights.items()} for k in (1, 2, 4)}
        for w in (0.3, 0.6):
            variants[f"equal{w}"] = {f: w if f in taste else weights[f] if f == "category" else 0.0 for f in weights}
        for variant, facet_weights in variants.items():
            stage = settings.override(
                personalisation=dict(tuned, facet_weights=facet_weights, cap=max(tuned["cap"], 5.0))
            ).personalisation
            run = {}
            for qid in qids:
                user, hits = dev.queries[qid].meta.get("user_id"), everyone[qid]
                profile = learned.get(qid)
                if profile is not None and user in tastes:
                    profile = oracle_profile(profile, tastes[user], with_price)
                facets = pipeline.product_facets([c.product_id for c in hits[: stage.depth]])
                if with_price:
                    facets = {pid: {**values, PRICE: (tiers[pid],)} for pid, values in facets.items()}
                ranked = personalise(hits, {}, {}, profile, stage, facets=facets, query=dev.queries[qid].text)
                run[qid] = [(c.product_id, c.score) for c in ranked[:100]]
            scores = relevance_metrics({q: dev.qrels[q] for q in qids}, run)
            name = f"oracle_taste{'_price' if with_price else ''}_{variant}"
            rows[name] = float(np.mean([scores[q][NDCG] for q in qids]))
    taste, seen = returning_behaviour(data / "shoppers")
    in_clicks = taste_in_clicks(taste, seen, pipeline.product_facets)
    dev.close()
    pipeline.close()

    base = rows["base"]
    ceiling = {
        "dev_returning_ndcg10": rows,
        "dev_returning_relative_gain": {name: value / base - 1 for name, value in rows.items() if name != "base"},
        "returning_searches": len(dev.segments().get("returning", [])),
        "clicks_per_returning_shopper": clicks_per_shopper(seen),
        "taste_in_clicks": in_clicks,
        "command": "python benchmarks/personalisation_ceiling.py",
        "seconds": time.perf_counter() - started,
    }
    merge_results({"ceiling": ceiling})
    print(json.dumps(ceiling, indent=2))
    if args.no_write:
        return
    labels = {
        "learned_tuned": "profiles from the log, tuned weights (as served)",
        "learned_category_only": "the same, category term alone",
        "learned_taste_only": "the same, taste terms alone (brand, colour, material, style, size, price, vector)",
        "oracle_taste_x1": "oracle taste (hidden brand, colour, style, material), tuned weights",
        "oracle_taste_x2": "oracle taste, taste weights x2",
        "oracle_taste_x4": "oracle taste, taste weights x4",
        "oracle_taste_equal0.3": "oracle taste, 0.3 per taste facet",
        "oracle_taste_equal0.6": "oracle taste, 0.6 per taste facet",
        "oracle_taste_price_x1": "oracle taste and price tier, tuned weights",
        "oracle_taste_price_x2": "oracle taste and price tier, taste weights x2",
        "oracle_taste_price_x4": "oracle taste and price tier, taste weights x4",
        "oracle_taste_price_equal0.3": "oracle taste and price tier, 0.3 per taste facet",
        "oracle_taste_price_equal0.6": "oracle taste and price tier, 0.6 per taste facet",
    }

    def gain(name: str) -> str:
        return f"{rows[name] / base - 1:+.1%}"

    def points(a: str, b: str) -> str:
        return f"{100 * (rows[a] - rows[b]) / base:+.1f}"

    best_oracle = max((n for n in rows if n.startswith("oracle")), key=rows.__getitem__)
    best_no_price = max((n for n in rows if n.startswith("oracle_taste_") and "price" not in n), key=rows.__getitem__)
    reachable = rows[best_oracle] / base - 1 >= 0.10
    share_recovered = (rows["learned_tuned"] - rows["learned_category_only"]) / max(
        rows[best_oracle] - rows["learned_category_only"], 1e-9
    )
    body = f"""
Dev returning shoppers' held-out searches ({ceiling["returning_searches"]}) of the personalisation benchmark's
dataset, ranked with the weights `benchmarks/personalisation.py` chose, to see where the gain comes from. The
oracle profiles keep each shopper's logged category affinities and replace the taste facets with the
simulator's hidden taste. Its price tier is a price tertile within the product type, which no profile facet
holds (price bands are one per doubling of price), so in the rows with the price tier the stage is given each
product's tier in place of its price band.

{
        table(
            ["ranking", "dev nDCG@10", "relative to base"],
            [["base (no personalisation)", f"{base:.4f}", ""]]
            + [[labels[n], f"{v:.4f}", f"{v / base - 1:+.1%}"] for n, v in rows.items() if n != "base"],
        )
    }

What it says: of the learned stage's {gain("learned_tuned")} the category term alone gives
{gain("learned_category_only")} (a returning shopper's searches are about the product types they shop for);
the taste terms read from clicks add {points("learned_tuned", "learned_category_only")} points on top of it. Given
each shopper's true taste, price tier included, the same stage gains {gain("oracle_taste_price_x1")} at the tuned
weights and at best {gain(best_oracle)} (`{best_oracle}`, the best of the five weightings
tried; without the price tier at best {gain(best_no_price)}). So the issue's +10% is
{"within" if reachable else "beyond"} this stage's reach with perfect knowledge of
taste on this simulator (on dev), the price tier is part of what it can reach (a price tertile within the product
type, which the profile's price bands, one per doubling of price, cannot express), and the learned profiles
recover {share_recovered:.0%} of what the best-known taste adds over the category term. Reading taste from
{ceiling["clicks_per_returning_shopper"]:.0f} logged clicks per returning shopper (mean), each driven by
relevance and position as well as by taste, is {
        "what is missing"
        if reachable
        else "one gap; the other is the stage's form, which stops short of the target even with perfect taste"
    }.

How much taste the log holds (returning shoppers, all splits: their logged clicks against the products their
logged pages showed them, per taste facet among shoppers with a taste in it):

{
        table(
            [
                "taste facet",
                "shoppers",
                "clicks on a preferred value",
                "shown a preferred value",
                "top-clicked values preferred",
            ],
            [
                [
                    f,
                    str(v["shoppers"]),
                    f"{v['click_share']:.1%}",
                    f"{v['shown_share']:.1%}",
                    f"{v['top_clicked_recovered']:.0%}",
                ]
                for f, v in in_clicks.items()
            ],
        )
    }

The simulator multiplies a product's click attraction by one plus the number of taste facets it matches, but a
relevant product is clicked often anyway (attraction is capped at 0.95) and a page's clicks follow position, so a
preferred value's share of clicks is only about {
        np.mean([v["click_share"] / max(v["shown_share"], 1e-9) for v in in_clicks.values()]):.1f} times its share
of what was shown, and a shopper's most-clicked values are their preferred ones in {
        min(v["top_clicked_recovered"] for v in in_clicks.values()):.0%} to {
        max(
            v["top_clicked_recovered"] for v in in_clicks.values()
        ):.0%} of cases: that is how little taste there is to read
from about {ceiling["clicks_per_returning_shopper"]:.0f} clicks.

`python benchmarks/personalisation_ceiling.py` ({ceiling["seconds"] / 60:.1f} min, dev only).
"""
    write_section("personalisation-ceiling", "Personalisation: where the gain comes from (issue 16)", body)


if __name__ == "__main__":
    main()
