"""Both profiles at a real catalogue's scale: defaults against BM25, ``tune``, and the learned ranker (issue 15).

Why: the real catalogue behind issue 15 has 54,667 products and 2,313 test
queries. The default sizes of ``benchmarks/hard_profile.py`` and
``benchmarks/learned_ranker.py`` (3,000 and 8,000 products, about 300 and 400
judged test queries) leave their verdicts within noise: the learned ranker's
test gain over the best linear blend is significant for some LightGBM seeds
and not for others. This runs the same two measurements, through the same
functions, on larger datasets of both profiles (by default 20,000 products and
26,000 queries each: about 13,000 judged train, 4,300 dev and 7,000 test
queries on the sparse labels).

Writes the key ``at_scale`` of benchmarks/results/learned_ranking.json, per
profile (``hard_profile``: the BM25 leg, the defaults and ``tune`` on dev, as
in hard_profile.py; ``learned_ranker``: as in learned_ranker.py;
``measured``: when, where and with which command), and the "Both profiles at
scale" section of docs/BENCHMARKS.md. ``--profiles`` runs some profiles only;
the others' saved figures stay in the table with their own date.

    python benchmarks/ltr_at_scale.py --products 20000 --queries 26000 --trials 12
"""

from __future__ import annotations

import json
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

import hard_profile  # noqa: E402
import learned_ranker  # noqa: E402
from generated import dataset_parser  # noqa: E402
from report import command, machine, read_results, table, write_results, write_section  # noqa: E402

KEY = "at_scale"


def measure(args, profile: str) -> dict[str, Any]:
    measured = hard_profile.run_profile(args, profile, args.products, args.queries)
    learned = learned_ranker.run_profile(args, profile, args.products, args.queries, measured)
    stamp = {"date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "command": command()}
    return {"hard_profile": measured, "learned_ranker": learned, "measured": stamp}


def rows(results: dict[str, dict[str, Any]], profiles: list[str]) -> list[list[object]]:
    """One row per configuration, sparse and complete test nDCG@10 per profile side by side."""

    def cells(pick) -> list[object]:
        return [value for p in profiles for value in pick(results[p]["hard_profile"], results[p]["learned_ranker"])]

    return [
        ["BM25 leg", *cells(lambda m, _: (m["bm25"], m["complete"]["bm25"]))],
        ["dense leg", *cells(lambda m, _: (m["dense"], m["complete"]["dense"]))],
        ["defaults", *cells(lambda m, _: (m["defaults"], m["complete"]["defaults"]))],
        [
            "tune on dev",
            *cells(lambda _, r: (r["ltr_detail"]["tuned_recomputed"], r["ltr_detail"]["tuned_recomputed_complete"])),
        ],
        ["best linear blend, chosen on test", *cells(lambda _, r: (learned_ranker.best_linear_on_test(r), ""))],
        ["learned ranker on top of the tune", *cells(lambda _, r: (r["ltr"], r["complete"]["ltr"]))],
    ]


def heldout_cell(learned: dict[str, Any]) -> str:
    """The learned ranker against the best linear blend on the held-out product types' test queries."""
    heldout = learned.get("heldout")
    if heldout is None:
        return "not measured in this run"
    best = learned["ltr_detail"]["best_linear_on_test"]
    return (
        f"{heldout['ltr']:.3f} vs {heldout[best]:.3f}, p {heldout['ltr_p_vs_best_linear']:.4f} "
        f"({heldout['queries']:,} queries)"
    )


def tests(results: dict[str, dict[str, Any]], profiles: list[str]) -> list[list[object]]:
    """Per profile: the sizes, the paired tests and how the ranker was trained and chosen."""
    out = []
    for p in profiles:
        measured, learned = results[p]["hard_profile"], results[p]["learned_ranker"]
        detail = learned["ltr_detail"]
        defaults = measured["test"]["sparse"]["defaults_vs_bm25"]
        out.append(
            [
                p,
                f"{measured['products']:,} / {measured['queries']:,}",
                f"{measured['test']['queries']['sparse']:,}",
                f"{defaults['mean_delta']:+.4f}, p {defaults['p_value']:.4f}",
                f"{learned['ltr_p_vs_tuned']:.4f}",
                f"{detail['best_linear_on_test']}: {learned['ltr_p_vs_best_linear']:.4f}",
                f"{detail['train_queries']:,} / {detail['train_rows']:,}",
                detail["best_iteration"],
                f"{detail['dev_ndcg10']:.4f} vs {detail['dev_best_linear_blend']:.4f}",
                "yes" if detail["promoted"] else "no",
                heldout_cell(learned),
                results[p]["measured"]["date"],
            ]
        )
    return out


def main() -> None:
    ap = dataset_parser(__doc__ or "", pooled=False)  # each profile pools its own (HARD_POOLED)
    ap.set_defaults(products=20000, queries=26000)
    ap.add_argument("--trials", type=int, default=12, help="tune trials on dev")
    ap.add_argument("--profiles", nargs="+", choices=hard_profile.PROFILES, default=list(hard_profile.PROFILES))
    args = ap.parse_args()
    saved = read_results(hard_profile.RESULTS)
    results: dict[str, dict[str, Any]] = dict(saved.get(KEY, {}))
    for profile in args.profiles:
        results[profile] = measure(args, profile)
        saved[KEY] = results
        write_results(hard_profile.RESULTS, saved)
        learned = results[profile]["learned_ranker"]
        print(profile, json.dumps({k: learned[k] for k in ("ltr", "ltr_p_vs_tuned", "ltr_p_vs_best_linear")}))
    if args.no_write:
        return
    profiles = [p for p in hard_profile.PROFILES if p in results]
    columns = [f"{p} {label}" for p in profiles for label in hard_profile.LABELS]
    commands = "; ".join(f"{p}: `{results[p]['measured']['command']}`" for p in profiles)
    body = f"""`benchmarks/hard_profile.py` and `benchmarks/learned_ranker.py`, through the same functions, on one
larger dataset per profile. Test nDCG@10 on the sparse pooled labels and on the complete labels. `tune on dev`
is `search-rerank tune` on the sparse dev labels ({args.trials} trials); the learned ranker is trained on the
sparse train labels on top of that tune, its rounds chosen by cross-validation on train; `best linear blend,
chosen on test` is the best lexical share (0 to 1 by 0.1) on test itself, a baseline no shop could pick.

{table(["configuration", *columns], rows(results, profiles))}

Paired randomisation tests on the sparse test labels: the defaults against the BM25 leg (difference and p), and
the learned ranker against the tune and against the best linear blend chosen on test. `measured` is when each
profile's figures were taken (commands: {commands}).

{
        table(
            [
                "profile",
                "products / queries",
                "sparse test queries",
                "defaults − BM25",
                "p (ltr vs tune)",
                "p (ltr vs best linear)",
                "train queries / rows",
                "rounds",
                "dev: ltr vs best blend",
                "promoted",
                "held-out types: ltr vs best linear",
                "measured",
            ],
            tests(results, profiles),
        )
    }
"""
    write_section("ltr_at_scale", "Both profiles at scale: defaults, tune and the learned ranker", body)


if __name__ == "__main__":
    main()
