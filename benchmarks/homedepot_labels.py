"""The Home Depot layout's judgments against the complete labels the generator knows for the same queries.

Why: at the real download's sizes (``benchmarks/homedepot_scale.py``) the shipped defaults rank below their BM25
leg on the rows of train.csv and test.csv, as ``evaluate`` reads them. Those rows are the generator's sparse
judgments, pooled from its own BM25 over titles, while the product the layout gives the engine also has a
description and attributes: the pool comes from another engine than the one measured, as a shop's judgments come
from its previous search. Whether the loss is the ranking's or the rows' (a product no row judges counts as
irrelevant) only complete labels can say, and a generator has them. This script scores the test split on both,
for BM25 and the defaults, and for the queries that name a product code with ``dense.code_anchors`` off and at
the shipped weights, with the paired randomisation test; query by its text as the loader keys it, product by
its ``product_uid``.

    python benchmarks/homedepot_scale.py --steps index   # the directory and its index, once
    python benchmarks/homedepot_labels.py                # the real sizes, under /tmp/hdscale

Writes benchmarks/results/homedepot_labels.json and the "Home Depot layout: the rows against complete labels"
section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from anchored_dense import OFF, SHARES, runs_of, share_name  # noqa: E402
from hard_profile import fused_run, leg_run, mean_ndcg, per_query_ndcg  # noqa: E402
from homedepot_scale import FIRST_UID  # noqa: E402
from report import ROOT, table, write_results, write_section  # noqa: E402

from search_rerank.core.identifiers import names_a_code  # noqa: E402
from search_rerank.core.retrieval import LEXICAL  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.qrels import Qrels  # noqa: E402
from search_rerank.evaluation.evaluate import JUDGED, relevance_metrics  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.evaluation.tune import (  # noqa: E402
    RankingCache,
    SearchSpace,
    ShareChoice,
    share_weights,
    tune_code_weights,
)
from search_rerank.evaluation.tuning_report import code_share_lines  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "homedepot_labels.json"
TUNED_CODES = "tuned_codes"
"""The defaults with the code queries' lexical shares `tune` chooses on the dev split's rows."""


def complete_labels(data: Path, queries: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The generator's complete labels of ``queries`` (the loader's, by id), on the written directory's ids: a query
    by its text as the loader keys it (case and spaces aside; queries of one text share their labels, the best
    grade kept), a product by its ``product_uid``."""
    gen = data.parent / f"gen-{data.name}"
    by_text = {" ".join(query.text.casefold().split()): qid for qid, query in queries.items()}
    ours: dict[str, str] = {}
    for line in (gen / "complete" / "queries.jsonl").open(encoding="utf-8"):
        record = json.loads(line)
        qid = by_text.get(" ".join(record["text"].casefold().split()))
        if qid is not None:
            ours[record["_id"]] = qid
    labels: dict[str, dict[str, int]] = {}
    for path in sorted((gen / "complete" / "qrels").glob("*.tsv")):
        with path.open(encoding="utf-8") as qrels:
            next(qrels)
            for line in qrels:
                generated, pid, grade = line.rstrip("\n").split("\t")
                if generated in ours:
                    uid = str(FIRST_UID + int(pid[1:]))
                    judged = labels.setdefault(ours[generated], {})
                    judged[uid] = max(judged.get(uid, 0), int(grade))
    return labels


def judged_share(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]) -> float:
    """Judged@10 (ir-measures, as `evaluate` reports it): the share of each query's top 10 the judgments grade,
    averaged over the judged queries."""
    per_query = relevance_metrics(qrels, run)
    return sum(scores[str(JUDGED)] for scores in per_query.values()) / max(len(per_query), 1)


def tuned_code_shares(
    pipeline: Any, settings: Settings, queries: dict[str, Any], rows: Qrels
) -> dict[str, ShareChoice]:
    """What `tune` makes of the code queries' lexical shares on the dev split's rows (the judgments a shop has),
    ranked from the dev code queries alone, as tune ranks them."""
    coded = {qid: rows[qid] for qid in rows if qid in queries and names_a_code(queries[qid].text)}
    cache = RankingCache(pipeline, queries, coded, depth=100, progress=True)
    return tune_code_weights(cache, settings, SearchSpace().code_alpha)


def dev_share_figures(pipeline: Any, data: Path, dataset: Any, settings: Settings) -> dict[str, Any]:
    """The dev split's code queries on both label sets with ``dense.code_anchors`` off and at each lexical share
    of ``fusion.anchored_weights``. Why: the shipped share is chosen on dev by the largest worst margin over off
    (``anchored_dense.chosen_share``), and this layout, whose rows come from another engine's pool as a shop's
    do, is one of the cells it weighs."""
    queries, rows = dataset.split("dev")
    sets = {"rows": rows, "complete": complete_labels(data, queries)}
    coded = [qid for qid in rows if qid in queries and names_a_code(queries[qid].text)]
    runs, seen = runs_of(pipeline, queries, coded, settings)
    out: dict[str, Any] = {"code_queries": len(coded), "anchored": seen["anchored"]}
    for label, qrels in sets.items():
        on_codes = {qid: qrels[qid] for qid in coded if qid in qrels}
        out[label] = {name: mean_ndcg(run, on_codes) for name, run in runs.items()}
    return out


def paired(a: dict[str, Any], b: dict[str, Any], qrels: dict[str, dict[str, int]]) -> dict[str, Any]:
    """Run ``b`` against run ``a`` on the judged queries: the paired randomisation test's figures."""
    first = per_query_ndcg(a, qrels)
    return paired_by_query(first, per_query_ndcg(b, qrels), sorted(first)).to_json()


def label_figures(work: Path, data: Path, split: str = "test") -> dict[str, Any]:
    """The test split's nDCG@10 for BM25, the shipped defaults and RRF at their weights on the written judgments
    (what ``evaluate`` reads: a few rows per query, pooled from the generator's own BM25 over titles) and on the
    complete labels the generator knows for the same queries; and on the queries that name a code, with
    ``dense.code_anchors`` off and at each lexical share of ``fusion.anchored_weights``. Why: where the defaults
    trail BM25 on the written rows, the complete labels say whether the loss is the ranking's or the rows'
    (products no row judges count as irrelevant)."""
    from search_rerank.data.loaders import load_dataset
    from search_rerank.indexing.indexes import open_pipeline

    started = time.monotonic()
    dataset = load_dataset(data)
    queries, rows = dataset.split(split)
    sets = {"rows": rows, "complete": complete_labels(data, queries)}
    settings = Settings(index_dir=work / "index", models_dir=work / "models")
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    try:
        cache = RankingCache(pipeline, queries, rows, depth=100, progress=True)
        runs = {"bm25": leg_run(cache, LEXICAL), "defaults": fused_run(cache, settings)}
        runs["rrf"] = fused_run(cache, settings.override(fusion={"method": "rrf"}))  # evaluate's hybrid-rrf
        chosen = tuned_code_shares(pipeline, settings, *dataset.split("dev"))
        tuned = {name: share_weights(choice.share) for name, choice in chosen.items()}
        runs[TUNED_CODES] = fused_run(cache, settings.override(fusion=tuned))
        coded = [qid for qid in rows if qid in queries and names_a_code(queries[qid].text)]
        deep = settings.offline().override(lexical={"candidates": 100}, dense={"candidates": 100})
        code_runs, seen = runs_of(pipeline, queries, coded, deep)
        dev_codes = dev_share_figures(pipeline, data, dataset, deep)
    finally:
        pipeline.close()
    shipped = share_name(settings.fusion.anchored_weights[LEXICAL])
    shares = {f"{share:.1f}": code_runs[share_name(share)] for share in SHARES}
    code_runs = {"bm25": {q: runs["bm25"][q] for q in coded}, "off": code_runs[OFF], "on": code_runs[shipped]}
    out: dict[str, Any] = {"split": split, "code_queries": len(coded), "anchored": seen["anchored"]}
    out["shipped_share"] = settings.fusion.anchored_weights[LEXICAL]
    out["dev_code_shares"] = {name: asdict(choice) for name, choice in chosen.items()}
    for label, qrels in sets.items():
        on_codes = {qid: qrels[qid] for qid in coded if qid in qrels}
        out[label] = {
            "queries": sum(qid in cache.retrieved for qid in qrels),
            **{name: mean_ndcg(run, qrels) for name, run in runs.items()},
            "defaults_vs_bm25": paired(runs["bm25"], runs["defaults"], qrels),
            "tuned_codes_vs_defaults": paired(runs["defaults"], runs[TUNED_CODES], qrels),
            "codes": {name: mean_ndcg(run, on_codes) for name, run in code_runs.items()},
            "anchors_on_vs_off": paired(code_runs["off"], code_runs["on"], on_codes),
            "anchored_shares": {share: mean_ndcg(run, on_codes) for share, run in shares.items()},
        }
    out["dev_codes"] = dev_codes
    out["rows"]["judged_top10"] = {name: judged_share(run, rows) for name, run in runs.items()}
    out["seconds"] = round(time.monotonic() - started, 1)
    return out


def labels_report(labels: dict[str, Any]) -> str:
    names = ("rows", "complete")
    rows = [
        [name, f"{labels[name]['queries']:,}", labels[name]["bm25"], labels[name]["defaults"]]
        + [f"{labels[name]['defaults_vs_bm25']['p_value']:.4f}", labels[name]["rrf"]]
        + [labels[name]["codes"][way] for way in ("bm25", "off", "on")]
        + [f"{labels[name]['anchors_on_vs_off']['p_value']:.4f}"]
        for name in names
    ]
    header = ["labels", "queries", "BM25", "defaults", "p", "RRF", "codes: BM25", "codes: anchors off"]
    shares = list(labels["rows"]["anchored_shares"])
    dev = labels["dev_codes"]
    by_share = [
        [f"{labels['split']}: {name}", labels[name]["codes"]["off"], *labels[name]["anchored_shares"].values()]
        for name in names
    ] + [[f"dev: {name}", dev[name][OFF], *(dev[name][share_name(float(s))] for s in shares)] for name in names]
    judged = labels["rows"]["judged_top10"]
    return (
        f"The {labels['split']} split on two label sets ({labels['seconds'] / 60:.1f} min): the rows of train.csv and "
        "test.csv (what `evaluate` reads; pooled from the generator's BM25 over titles, a few per query) and the "
        "complete labels the generator knows for the same queries and products. *RRF* is `evaluate`'s hybrid-rrf "
        "(the shipped weights, ranks fused). Code queries: the "
        f"{labels['code_queries']:,} that name a product code, {labels['anchored']:,} of them with the named "
        "product found (`dense.code_anchors` searches around it); *off* is the setting off, *on* the shipped "
        "weights; *p* the paired randomisation test of defaults against BM25, and of on against off.\n\n"
        + table([*header, "codes: anchors on", "p"], rows)
        + f"\n\nThe rows judge {judged['defaults']:.0%} of the defaults' top 10 and {judged['bm25']:.0%} of BM25's. "
        "The code queries with the anchors off and on at each lexical share of `fusion.anchored_weights` "
        f"({labels['shipped_share']:g} shipped; dev: {dev['code_queries']:,} code queries, {dev['anchored']:,} "
        "of them with the named product found; the dev cells are among those the shipped share is chosen on, "
        '"Code queries" above):\n\n'
        + table(["split: labels", "off", *shares], by_share)
        + "\n\n`tune` chooses the code queries' lexical shares on the dev split's rows after its trials, moving one "
        "only on a significant lead (`evaluation.tune.choose_share`):\n\n"
        + "".join(f"- {line}\n" for line in code_share_lines({"code_weights": labels["dev_code_shares"]}))
        + "\n"
        + table(
            ["labels", "defaults", "defaults, tuned code shares", "p"],
            [
                [
                    name,
                    labels[name]["defaults"],
                    labels[name][TUNED_CODES],
                    f"{labels[name]['tuned_codes_vs_defaults']['p_value']:.4f}",
                ]
                for name in names
            ],
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--scale", type=float, default=1.0, help="the homedepot_scale.py run's --scale")
    ap.add_argument("--work", type=Path, default=Path("/tmp/hdscale"), help="the homedepot_scale.py run's --work")
    ap.add_argument("--split", default="test")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/ or results/")
    args = ap.parse_args()
    work = args.work / f"scale-{args.scale:g}"
    if not (work / "index").is_dir():
        sys.exit(
            f"no index under {work}: run `python benchmarks/homedepot_scale.py --scale {args.scale:g} --steps index`"
        )
    figures = {"scale": args.scale, **label_figures(work, work / "homedepot", args.split)}
    print(json.dumps(figures, indent=2))
    if not args.no_write:
        write_results(RESULTS, figures)
        write_section("homedepot-labels", "Home Depot layout: the rows against complete labels", labels_report(figures))


if __name__ == "__main__":
    main()
