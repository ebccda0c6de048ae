"""What the learned ranker's code-anchor features are worth, on product types it was trained on and on new ones (issue 15).

Why: before these features the learned ranker beat the best linear blend on the
product types of its train split and not on the types the generator kept out of
it (easy at 20,000 products: 0.401 against 0.403, p 0.52). The loss sat in the
queries that name a product code: the code names one product, the shopper's
next best are products like it, and the query names no type, so the only thing
the ranker could learn was which product types tend to answer code queries,
knowledge of the train split's types. The anchors (``core.ranker_features``)
say instead how like the named product each candidate is.

Per profile, on the dataset and tuned settings of ``benchmarks/ltr_at_scale.py``
(run it first), this builds the candidate lists of a sample of train, all of dev
and all of test once (``training.ranker.candidate_lists``, as ``train ranker``
does) and fits the ranker twice with ``fit_booster`` and the default
``RankerTraining``, unjudged candidates as not relevant: with every feature, and
with the two anchor columns blanked to missing, which no tree can split on, as
if the features did not exist. Test nDCG@10 on the sparse and the complete
labels, overall, on the held-out product types and on the queries that name a
code, with paired randomisation tests.

Writes benchmarks/results/code_anchors.json and the "Code anchors" section of
docs/BENCHMARKS.md.

    python benchmarks/code_anchors.py --train-queries 5000
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import numpy as np  # noqa: E402
from hard_profile import LABELS, PROFILES, RESULTS, indexed_profile, label_sets, per_query_ndcg  # noqa: E402
from report import ROOT, command, machine, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.core.learned_rank import LearnedRanker  # noqa: E402
from search_rerank.core.ranker_features import FEATURES, query_codes  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.evaluation.tune import RankingCache  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.training.ranker import (  # noqa: E402
    Lists,
    RankerTraining,
    apply,
    candidate_lists,
    dataset_arrays,
    fit_booster,
    sampled_queries,
    stage_input_settings,
)

OUT = ROOT / "benchmarks" / "results" / "code_anchors.json"
ANCHORS = ("code_anchor_brand", "code_anchor_cosine")
ARMS = ("fused", "without anchors", "with anchors")


def blanked(lists: Lists) -> Lists:
    """The same lists with the anchor columns missing throughout."""
    columns = [FEATURES.index(name) for name in ANCHORS]
    rows = {}
    for qid, matrix in lists.rows.items():
        rows[qid] = matrix.copy()
        rows[qid][:, columns] = np.nan
    return Lists(lists.candidates, rows, lists.grades)


def run_profile(args, profile: str) -> dict[str, Any]:
    at_scale = read_results(RESULTS).get("at_scale", {}).get(profile)
    if at_scale is None:
        raise SystemExit(f"{RESULTS} has no at_scale figures for {profile}: run benchmarks/ltr_at_scale.py first")
    measured = at_scale["hard_profile"]
    products, queries = args.products or measured["products"], args.queries or measured["queries"]
    data, base = indexed_profile(args.work, profile, products, queries, args.seed)
    tuned = base.override(**measured["tuned_sections"])
    sets = label_sets(data, profile)
    training = RankerTraining(seed=args.seed, unjudged="zero")
    pipeline = open_pipeline(tuned)
    pipeline.warm_up()
    settings = stage_input_settings(pipeline.settings)
    splits = {
        "train": sampled_queries(sets["sparse"].split("train"), args.train_queries, args.seed),
        "dev": sets["sparse"].split("dev"),
        "test": sets["sparse"].split("test"),
    }
    lists = {}
    try:
        for split, (queries, qrels) in splits.items():
            cache = RankingCache(pipeline, queries, qrels, depth=training.depth, progress=True)
            try:
                lists[split] = candidate_lists(cache, settings, queries, progress=True)
            finally:
                cache.close()
    finally:
        pipeline.close()
    test_queries = splits["test"][0]
    runs = {"fused": lists["test"].candidates}
    rounds = {}
    for arm, view in (("without anchors", blanked), ("with anchors", lambda kept: kept)):
        train, dev = (dataset_arrays(view(lists[s]), "zero") for s in ("train", "dev"))
        booster, rounds[arm], _ = fit_booster(train, dev, training)
        runs[arm] = apply(LearnedRanker(booster, FEATURES, arm), view(lists["test"]))
    qrels = {"sparse": splits["test"][1], "complete": sets["complete"].split("test")[1]}
    scores = {
        label: {
            arm: per_query_ndcg({q: [(c.product_id, c.score) for c in hits[:100]] for q, hits in run.items()}, judged)
            for arm, run in runs.items()
        }
        for label, judged in qrels.items()
    }
    qids = sorted(scores["sparse"]["fused"])
    groups = {
        "all": qids,
        "held-out types": [q for q in qids if test_queries[q].meta.get("heldout") == "1"],
        "code queries, seen types": [
            q for q in qids if query_codes(test_queries[q].text) and test_queries[q].meta.get("heldout") != "1"
        ],
        "code queries, held-out types": [
            q for q in qids if query_codes(test_queries[q].text) and test_queries[q].meta.get("heldout") == "1"
        ],
    }
    figures: dict[str, Any] = {}
    for label in LABELS:
        per = scores[label]
        figures[label] = {}
        for group, members in groups.items():
            members = [q for q in members if q in per["fused"]]
            mean = {arm: float(np.mean([per[arm][q] for q in members])) if members else None for arm in ARMS}

            def p(a: str, b: str) -> float | None:
                if not members:
                    return None
                return paired_by_query(per[a], per[b], members).p_value

            figures[label][group] = {
                "queries": len(members),
                **mean,
                "p_with_vs_without": p("without anchors", "with anchors"),
                "p_with_vs_fused": p("fused", "with anchors"),
                "p_without_vs_fused": p("fused", "without anchors"),
            }
    return {
        "figures": figures,
        "rounds": rounds,
        "train_queries": len(splits["train"][0]),
        "dev_queries": len(splits["dev"][0]),
        "code_queries_with_an_anchor": float(
            np.mean(
                [
                    not np.isnan(lists["test"].rows[q][0, FEATURES.index(ANCHORS[0])])
                    for q in groups["code queries, seen types"] + groups["code queries, held-out types"]
                ]
            )
        ),
        "measured": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": machine(),
            "command": command(),
        },
    }


def verdict(results: dict[str, Any]) -> str:
    """Per profile, on the held-out types' sparse labels: what the anchors add, and whether the ranker then beats
    the ranking it reorders there."""
    lines = []
    for profile, result in results.items():
        f = result["figures"]["sparse"]["held-out types"]
        gain, over = f["with anchors"] - f["without anchors"], f["with anchors"] - f["fused"]
        lines.append(
            f"- {profile}, held-out types, sparse labels: the anchors add {gain:+.4f} (p {f['p_with_vs_without']:.4f}); "
            f"the ranker with them is {over:+.4f} over the fused ranking (p {f['p_with_vs_fused']:.4f}), "
            f"without them {f['without anchors'] - f['fused']:+.4f} (p {f['p_without_vs_fused']:.4f})."
        )
    return "\n".join(lines)


def render(results: dict[str, Any]) -> str:
    rows = []
    for profile, result in results.items():
        for label in LABELS:
            for group, f in result["figures"][label].items():
                rows.append(
                    [
                        profile,
                        label,
                        f"{group} ({f['queries']:,})",
                        *(f"{f[arm]:.4f}" for arm in ARMS),
                        f"{f['with anchors'] - f['without anchors']:+.4f}",
                        f"{f['p_with_vs_without']:.4f}",
                        f"{f['with anchors'] - f['fused']:+.4f} (p {f['p_with_vs_fused']:.4f})",
                        f"{f['without anchors'] - f['fused']:+.4f} (p {f['p_without_vs_fused']:.4f})",
                    ]
                )
    dates = "; ".join(f"{p}: {r['measured']['date']}, `{r['measured']['command']}`" for p, r in results.items())
    details = "; ".join(
        f"{p}: {r['train_queries']:,} train queries sampled, {r['dev_queries']:,} dev, rounds kept by cross-validation "
        f"{r['rounds']['without anchors']} without and {r['rounds']['with anchors']} with; "
        f"{r['code_queries_with_an_anchor']:.0%} of the code queries had an anchor among their candidates"
        for p, r in results.items()
    )
    return f"""The learned ranker fitted twice on the same candidate lists of the at-scale datasets
(`benchmarks/ltr_at_scale.py`'s data and tuned settings): with every feature, and with the two code-anchor
features (brand agreement and bi-encoder cosine with the candidates whose product code the query names) blanked
to missing. `fused` is the tuned ranking both reorder. Test nDCG@10; p: paired randomisation tests. Code queries
are those naming a product code (`query_codes`); held-out types are product types no train or dev query names.

{
        table(
            [
                "profile",
                "labels",
                "queries",
                *ARMS,
                "with − without",
                "p",
                "with − fused",
                "without − fused",
            ],
            rows,
        )
    }

{verdict(results)}

The anchors carry one assumption: a shopper who types a code wants that product, then products like it from
the same brand. The generator grades code queries that way (the named product exact, the same brand's products
of its type partial), so these figures show the features doing what they are for, not that a shop's shoppers
behave so. On a shop's data the trees weigh the two features by that shop's own judgments, like any other.

{details}. Measured: {dates}.
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profiles", nargs="+", choices=PROFILES, default=list(PROFILES))
    ap.add_argument("--train-queries", type=int, default=5000, help="train queries sampled (dev and test whole)")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--products", type=int, help="another size than ltr_at_scale's (a quick check; not written)")
    ap.add_argument("--queries", type=int, help="with --products")
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs section from the saved results")
    args = ap.parse_args()
    saved = json.loads(OUT.read_text()) if OUT.exists() else {}
    if not args.report_only:
        for profile in args.profiles:
            result = run_profile(args, profile)
            if args.products:
                print(render({profile: result}))
                continue
            saved[profile] = result
            write_results(OUT, saved)
    if args.products:
        return
    write_section("code-anchors", "Code anchors: the learned ranker on product types it never saw", render(saved))


if __name__ == "__main__":
    main()
