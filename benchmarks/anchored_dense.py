"""Queries that name a product by its code: the dense leg searched around the named product (``dense.code_anchors``).

Why: a text encoder reads "4820V" or "JE2-9498Y" as noise, so on such a
query the dense leg found nothing of use and was fused at weight 0
(``fusion.identifier_weights``); the shopper's next best after the product
asked for are the products like it, which no lexical match finds. With
``code_anchors`` on, the product the lexical leg found with the query's code
is the dense leg's query: its stored vector's neighbours, fused at
``fusion.anchored_weights``.

This script measures it on both generator profiles, on the queries that name
a code (``core.identifiers``), with the sparse pooled labels a shop has and
the complete ones only a generator can give: off (the text's dense list at
``identifier_weights``), and on at lexical shares 0.5 to 0.9. The share is
chosen on dev by the rule the fusion defaults follow (the largest worst
margin over off across profiles and label sets, docs/TUNING.md) and checked
on test with the paired randomisation test. The Home Depot layout's code
queries are among the cells weighed when ``benchmarks/homedepot_labels.py``
has measured them (its rows are pooled from another engine than the one
measured, as a shop's judgments are; the generator's sparse labels come from
this engine's own BM25). Also: how many code queries find
their product (an anchor), and the dense leg's time with and without.

    python benchmarks/anchored_dense.py --products 3000 8000 --queries 1000 4000

Sizes are per profile (easy, hard); data and indexes are the cached ones of
``hard_profile.py``. Writes benchmarks/results/code_queries.json and the
"Code queries" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hard_profile import LABELS, PROFILES, indexed_profile, label_sets, per_query_ndcg, profiles_parser  # noqa: E402
from report import ROOT, table, write_results, write_section  # noqa: E402

from search_rerank.core.identifiers import names_a_code  # noqa: E402
from search_rerank.core.retrieval import DENSE, LEXICAL  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

SHARES = (0.5, 0.6, 0.7, 0.8, 0.9)
OFF = "off"
RESULTS = ROOT / "benchmarks" / "results" / "code_queries.json"
LAYOUT = ROOT / "benchmarks" / "results" / "homedepot_labels.json"
LAYOUT_LABELS = ("rows", "complete")


def share_name(share: float) -> str:
    return f"on, lexical {share:.1f}"


def runs_of(pipeline, queries, qids: list[str], settings: Settings) -> tuple[dict[str, dict], dict[str, Any]]:
    """Each variant's top 100 per query, from one retrieval with the anchors off and one with them on; and how
    many queries found an anchor, with the dense leg's time per query each way."""
    off = settings.override(dense={"code_anchors": False})
    runs: dict[str, dict] = {OFF: {}, **{share_name(s): {} for s in SHARES}}
    anchored, times = 0, {OFF: [], "on": []}
    for qid in qids:
        text = queries[qid].text
        plain = pipeline.retrieve(text, None, off)
        runs[OFF][qid] = [(c.product_id, c.score) for c in pipeline.rank_from(plain, off).candidates[:100]]
        around = pipeline.retrieve(text, None, settings)
        anchored += around.anchor is not None
        times[OFF].append(plain.timings_ms.get(DENSE, float("nan")))
        times["on"].append(around.timings_ms.get(DENSE, float("nan")))
        for share in SHARES:
            weights = {LEXICAL: share, DENSE: round(1 - share, 6)}
            ranked = pipeline.rank_from(around, settings.override(fusion={"anchored_weights": weights}))
            runs[share_name(share)][qid] = [(c.product_id, c.score) for c in ranked.candidates[:100]]
    return runs, {
        "anchored": anchored,
        "dense_ms_p50": {way: float(np.nanmedian(t)) if t else None for way, t in times.items()},
    }


def run_profile(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, settings = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    deep = settings.offline().override(lexical={"candidates": 100}, dense={"candidates": 100})
    out: dict[str, Any] = {"products": products, "queries": queries}
    try:
        for split in ("dev", "test"):
            split_q, complete = sets["complete"].split(split)
            qrels = {"complete": complete, "sparse": sets["sparse"].split(split)[1]}
            coded = [q for q in split_q if names_a_code(split_q[q].text) and any(q in qrels[lb] for lb in LABELS)]
            runs, seen = runs_of(pipeline, split_q, coded, deep)
            per_query = {
                label: {name: per_query_ndcg(run, qrels[label]) for name, run in runs.items()} for label in LABELS
            }
            out[split] = {
                "code_queries": len(coded),
                "all_queries": {label: sum(q in split_q for q in qrels[label]) for label in LABELS},
                **seen,
                **{
                    label: {
                        name: float(np.mean(list(v.values()))) if v else None for name, v in per_query[label].items()
                    }
                    for label in LABELS
                },
                "per_query": per_query,
            }
    finally:
        pipeline.close()
    return out


def layout_cells() -> dict[str, dict[str, dict[str, float]]]:
    """The Home Depot layout's code queries per split and label set, off and at each share, from
    ``benchmarks/homedepot_labels.py``'s results; none before that script has measured its dev split."""
    if not LAYOUT.is_file():
        return {}
    labels = json.loads(LAYOUT.read_text(encoding="utf-8"))
    if "dev_codes" not in labels:
        return {}
    test = {
        f"homedepot {label}": {
            OFF: labels[label]["codes"][OFF],
            **{share_name(float(s)): v for s, v in labels[label]["anchored_shares"].items()},
        }
        for label in LAYOUT_LABELS
    }
    return {"dev": {f"homedepot {label}": labels["dev_codes"][label] for label in LAYOUT_LABELS}, "test": test}


def dev_cells(results: dict[str, dict[str, Any]], layout: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Every dev cell the share is chosen on: each profile's label sets, and the layout's when measured."""
    cells = {f"{p} {label}": results[p]["dev"][label] for p in PROFILES for label in LABELS}
    return cells | layout.get("dev", {})


def chosen_share(cells: dict[str, dict[str, float]]) -> tuple[str, dict[str, float]]:
    """The share whose worst dev margin over off, across the cells, is largest."""
    margins = {share_name(s): min(cell[share_name(s)] - cell[OFF] for cell in cells.values()) for s in SHARES}
    return max(margins, key=lambda name: margins[name]), margins


def paired(results: dict[str, dict[str, Any]], chosen: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for p in PROFILES:
        for label in LABELS:
            scores = results[p]["test"]["per_query"][label]
            out[f"{p} {label}"] = paired_by_query(scores[OFF], scores[chosen], sorted(scores[OFF])).to_json()
    return out


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 4000))
    args = ap.parse_args()
    results = {
        profile: run_profile(args, profile, n, q)
        for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
    }
    layout = layout_cells()
    chosen, margins = chosen_share(dev_cells(results, layout))
    tests = paired(results, chosen)
    generated, generated_margins = chosen_share(dev_cells(results, {}))
    saved = {
        "chosen": chosen,
        "worst_dev_margin_over_off": margins,
        "layout_cells": sorted(layout.get("dev", {})),
        "chosen_on_generated_only": generated,
        "test_vs_off": tests,
        **{
            p: {split: {k: v for k, v in r[split].items() if k != "per_query"} for split in ("dev", "test")}
            | {"products": r["products"], "queries": r["queries"]}
            for p, r in results.items()
        },
    }
    write_results(RESULTS, saved)
    print("chosen on dev:", chosen, margins)
    for name, t in tests.items():
        print(f"test {name}: {t['mean_delta']:+.4f} p {t['p_value']:.4f} ({t['queries']} queries)")
    if args.no_write:
        return

    names = [OFF, *(share_name(s) for s in SHARES)]
    columns = [f"{p} {label}" for p in PROFILES for label in LABELS]
    laid = sorted(layout.get("dev", {}))
    rows = [
        [f"{split}: {name}", *(results[p][split][label][name] for p in PROFILES for label in LABELS)]
        + [layout[split][cell][name] for cell in laid]
        + ([margins[name]] if split == "dev" and name in margins else [""])
        for split in ("dev", "test")
        for name in names
    ]
    layout_note = (
        f" The Home Depot layout's columns are `benchmarks/homedepot_labels.py`'s ({', '.join(laid)}: its rows are "
        "pooled from another engine than the one measured, as a shop's judgments are, while the generator's sparse "
        f"labels come from this engine's own BM25); without them the rule would choose {generated} (worst dev margin "
        f"{generated_margins[generated]:+.4f}; {chosen}: {generated_margins[chosen]:+.4f})."
        if laid
        else ""
    )
    counts = "; ".join(
        f"{p}: {results[p][split]['code_queries']} {split} code queries, {results[p][split]['anchored']} of them "
        f"found their product"
        for p in PROFILES
        for split in ("dev", "test")
    )
    paired_lines = "; ".join(
        f"{name} {t['mean_delta']:+.4f} (p {t['p_value']:.4f}, {t['queries']} queries)" for name, t in tests.items()
    )
    shares = "; ".join(
        f"{p} {split} {results[p][split]['code_queries'] / max(results[p][split]['all_queries']['complete'], 1):.0%}"
        for p in PROFILES
        for split in ("test",)
    )
    timing = "; ".join(
        f"{p}: {results[p]['test']['dense_ms_p50'][OFF]:.1f} → {results[p]['test']['dense_ms_p50']['on']:.1f} ms"
        for p in PROFILES
    )
    body = f"""
`dense.code_anchors` on the queries that name a product code (`core.identifiers`), nDCG@10 on the sparse pooled
labels a shop has and on the complete labels. `off`: the dense leg searched the query's text and was fused at
`fusion.identifier_weights` (lexical only), as before; `on, lexical s`: it searched by the vector of the product the
lexical leg found with the code (in its top 3), fused at lexical share s. {counts}. Sizes: easy
{results["easy"]["products"]:,} products, {results["easy"]["queries"]:,} queries; hard {results["hard"]["products"]:,}
products, {results["hard"]["queries"]:,} queries (code queries are {shares} of the test queries; the others rank as
before).

{table(["split: variant", *columns, *laid, "worst dev margin over off"], rows)}

Chosen on dev (largest worst margin over off across profiles and label sets): **{chosen}**.{layout_note} On test
against off
(paired randomisation test): {paired_lines}. The dense leg's time per code query, p50, off → on: {timing} (the
text is still encoded, then the product's neighbours searched).
"""
    write_section("code-queries", "Code queries: the dense leg around the named product", body)


if __name__ == "__main__":
    main()
