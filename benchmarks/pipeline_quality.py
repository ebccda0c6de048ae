"""The evaluate table on both generator profiles, indexing throughput per leg, and per-stage query latency.

What it shows: where each leg and each fusion stands on both profiles (the
generator's easy one and the hard, title-only one shaped like a real hardware
catalogue, issue 15), on complete labels and on the sparse BM25-pooled ones a
shop has; that the shipped defaults hold at least the BM25 leg on both; what
the long-tail boost the defaults ship with costs and brings; per query kind
and on the product types held out of train; how fast each leg indexes;
p50/p99 per stage. The trained stages (reranker, learned ranker) have their
own sections: "Onboarding" and "Learned ranker".

    python benchmarks/pipeline_quality.py --products 50000 50000 --queries 3000 4000

Sizes are per profile (easy, hard). Generated data and indexes are cached
under ``--work`` and reused when their parameters match, so a rerun only
repeats the measurements.
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

from hard_profile import PROFILES, indexed_profile, label_sets, per_query_ndcg, profiles_parser  # noqa: E402
from report import ROOT, save_figure, table, write_results, write_section  # noqa: E402

from search_rerank.backends.encoder import resolve_model_path  # noqa: E402
from search_rerank.core.rerank import CrossEncoderReranker  # noqa: E402
from search_rerank.core.retrieval import DENSE, LEXICAL  # noqa: E402
from search_rerank.core.settings import PACKAGED_MINILM, Settings  # noqa: E402
from search_rerank.evaluation.evaluate import CONDENSED, JUDGED, Config, Report, evaluate, ranked_runs  # noqa: E402
from search_rerank.evaluation.significance import paired_by_query  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

BOTH = (LEXICAL, DENSE)
METRICS = ("nDCG@10", "R@100", "RR@10", "lt_share@10", "coverage@10", "gini@10")
MAX_BOOST_COST = 0.005
EQUAL = {"weights": {LEXICAL: 1.0, DENSE: 1.0}}
CONFIGS = (
    Config("bm25", (LEXICAL,)),
    Config("dense", (DENSE,)),
    # What a hybrid looks like before anyone chose its weights: the trap the hard profile reproduces.
    Config("rrf, equal weights", BOTH, "rrf", overrides={"fusion": EQUAL}),
    Config("linear, equal weights", BOTH, "linear", overrides={"fusion": {**EQUAL, "normalization": "minmax"}}),
    Config("defaults, boost off", BOTH),
    Config("defaults", BOTH, longtail=True),
)
"""``defaults`` is ``Settings()`` as shipped (its fusion and its long-tail boost); only the rows before it
change anything."""
STAGES = ("lexical", "dense", "fusion", "rerank", "longtail", "total")


def subset(queries, qrels, keep):
    ids = [q for q in qrels if keep(queries[q])]
    return {q: queries[q] for q in ids}, {q: qrels[q] for q in ids}


def metric_rows(report: Report) -> list[list[object]]:
    return [[r.config, *(r.metrics[m] for m in METRICS)] for r in report.rows]


def latency(pipeline, settings: Settings, texts: list[str], warm: int = 10) -> dict[str, dict[str, float]]:
    for text in texts[:warm]:
        pipeline.run(text, size=10, settings=settings)
    samples: dict[str, list[float]] = {}
    for text in texts:
        result = pipeline.run(text, size=10, settings=settings)
        if result.degraded:
            raise RuntimeError(f"degraded during the latency run: {result.degraded}")
        for stage, ms in result.ranking.timings_ms.items():
            samples.setdefault(stage, []).append(ms)
    return {
        stage: {"p50": float(np.percentile(v, 50)), "p99": float(np.percentile(v, 99)), "n": len(v)}
        for stage, v in samples.items()
    }


def checks(test: Report, sparse: Report) -> dict[str, bool]:
    complete = {r.config: r.metrics for r in test.rows}
    pooled = {r.config: r.metrics for r in sparse.rows}
    return {
        "defaults >= BM25 (complete labels)": complete["defaults"]["nDCG@10"] >= complete["bm25"]["nDCG@10"],
        "defaults >= BM25 (sparse labels)": pooled["defaults"]["nDCG@10"] >= pooled["bm25"]["nDCG@10"],
        "boost raises long-tail share": complete["defaults"]["lt_share@10"]
        > complete["defaults, boost off"]["lt_share@10"],
        f"boost costs <= {MAX_BOOST_COST} nDCG@10": complete["defaults, boost off"]["nDCG@10"]
        - complete["defaults"]["nDCG@10"]
        <= MAX_BOOST_COST,
    }


def defaults_against_bm25(pipeline, queries, labels: dict[str, dict]) -> dict[str, dict[str, Any]]:
    """The paired randomisation test of the defaults against the BM25 leg, per label set, from one retrieval."""
    qids = sorted({q for qrels in labels.values() for q in qrels if q in queries})
    runs, _ = ranked_runs(pipeline, queries, qids, [CONFIGS[0], CONFIGS[-1]], progress=False)
    out = {}
    for label, qrels in labels.items():
        bm25, defaults = (per_query_ndcg(runs[c.name], qrels) for c in (CONFIGS[0], CONFIGS[-1]))
        out[label] = paired_by_query(bm25, defaults, sorted(bm25)).to_json()
    return out


def run_profile(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, settings = indexed_profile(args.work, profile, products, queries, args.seed)
    build = json.loads((Path(settings.index_dir) / "build-report.json").read_text())
    sets = label_sets(data, profile)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    try:
        test_q, complete = sets["complete"].split("test")
        sparse = sets["sparse"].split("test")[1]
        test = evaluate(pipeline, test_q, complete, configs=CONFIGS, dataset=data.name, split="test")
        pooled = evaluate(pipeline, test_q, {q: sparse[q] for q in sparse if q in test_q}, configs=CONFIGS)
        held_q, held_qrels = subset(test_q, complete, lambda q: q.meta.get("heldout") == "1")
        held = evaluate(pipeline, held_q, held_qrels, configs=CONFIGS, split="test-heldout")
        paired = defaults_against_bm25(pipeline, test_q, {"complete": complete, "sparse": sparse})

        texts = [test_q[q].text for q in list(complete)[: args.latency_queries]]
        lat = latency(pipeline, settings.offline(), texts)
        # The rerank stage's cost does not depend on its weights: the MiniLM body with an untrained head times
        # it at the shipped window without a training run per profile.
        timing = settings.offline().override(
            rerank={"model": resolve_model_path(PACKAGED_MINILM), "window": 50, "device": "cpu", "require_card": False}
        )
        pipeline.reranker = CrossEncoderReranker(timing.rerank)
        pipeline.reranker.warm_up()
        lat_rerank = latency(pipeline, timing, texts[: args.rerank_queries])
    finally:
        pipeline.close()
    return {
        "dataset": data.name,
        "products": products,
        "build": build,
        "test": test.to_json(),
        "sparse": pooled.to_json(),
        "heldout": held.to_json(),
        "defaults_vs_bm25": paired,
        "latency_ms": lat,
        "latency_with_rerank_ms": lat_rerank,
        "latency_queries": len(texts),
        "rerank_queries": min(len(texts), args.rerank_queries),
        "checks": checks(test, pooled),
    }


def plot(results: dict[str, dict[str, Any]]) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [c.name for c in CONFIGS]
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    for ax, (key, label) in zip(axes, (("test", "complete labels"), ("sparse", "sparse pooled labels"))):
        y = np.arange(len(names))
        for off, profile in zip((-0.2, 0.2), PROFILES):
            values = {r["config"]: r["metrics"]["nDCG@10"] for r in results[profile][key]["rows"]}
            ax.barh(y + off, [values[n] for n in names], height=0.4, label=profile)
            for i, n in enumerate(names):
                ax.text(values[n], i + off, f" {values[n]:.3f}", va="center", fontsize=7)
        ax.set_yticks(y, names)
        ax.set_xlabel(f"test nDCG@10, {label}")
        ax.legend(fontsize=8)
    axes[0].invert_yaxis()
    quality = save_figure(fig, "pipeline_quality.png")

    fig, ax = plt.subplots(figsize=(9, 3.6))
    x = np.arange(len(STAGES))
    series = [
        (f"{p}{suffix}", results[p][key])
        for p in PROFILES
        for suffix, key in (("", "latency_ms"), (", rerank w50", "latency_with_rerank_ms"))
    ]
    width = 0.8 / len(series)
    for i, (label, data) in enumerate(series):
        ax.bar(
            x - 0.4 + width * (i + 0.5),
            [data.get(s, {}).get("p50", 0) for s in STAGES],
            width=width,
            label=f"{label} p50",
        )
    ax.set_xticks(x, STAGES)
    ax.set_yscale("log")
    ax.set_ylabel("ms")
    ax.legend(fontsize=8)
    return [quality, save_figure(fig, "pipeline_latency.png")]


def side_by_side(results: dict[str, dict[str, Any]], key: str, metrics: tuple[str, ...]) -> str:
    """One row per configuration, each profile's figures beside the other's."""
    values = {p: {r["config"]: r["metrics"] for r in results[p][key]["rows"]} for p in PROFILES}
    header = ["config", *(f"{p} {m}" for m in metrics for p in PROFILES)]
    return table(header, [[c.name, *(values[p][c.name][m] for m in metrics for p in PROFILES)] for c in CONFIGS])


def paired_lines(results: dict[str, dict[str, Any]]) -> str:
    return "; ".join(
        f"{p} {label} labels {t['mean_delta']:+.4f} (p {t['p_value']:.3f}, {t['queries']} queries)"
        for p in PROFILES
        for label, t in results[p]["defaults_vs_bm25"].items()
    )


def below_lines(results: dict[str, dict[str, Any]]) -> str:
    """What ``evaluate`` says of the shipped defaults where they rank below the BM25 leg, word for word."""
    said = [
        f'{p}, {key} labels: "{w["message"]}"'
        for p in PROFILES
        for key, label in (("test", "complete"), ("sparse", "sparse"))
        for w in results[p][key]["below_bm25"]
        if w["config"] == "defaults"
    ]
    return ("Where the defaults rank below BM25, `evaluate` says: " + " ".join(said)) if said else ""


def kind_rows(results: dict[str, dict[str, Any]]) -> list[list[object]]:
    """nDCG@10 per query kind on complete labels: each profile's BM25, dense and defaults, '' where a profile
    has no query of that kind."""
    by_kind = {p: {r["config"]: r["by_kind"] for r in results[p]["test"]["rows"]} for p in PROFILES}
    kinds = sorted({k for p in PROFILES for k in by_kind[p]["bm25"]})
    rows = []
    for kind in kinds:
        row: list[object] = [kind]
        for p in PROFILES:
            figures = [by_kind[p][c].get(kind, {}).get("nDCG@10", "") for c in ("bm25", "dense", "defaults")]
            row += figures
        rows.append(row)
    return rows


def main() -> None:
    ap = profiles_parser(__doc__, queries=(3000, 4000))
    ap.set_defaults(products=[50_000, 50_000])
    ap.add_argument("--latency-queries", type=int, default=300)
    ap.add_argument("--rerank-queries", type=int, default=100)
    args = ap.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    results = {
        profile: run_profile(args, profile, n, q)
        for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
    }
    write_results(ROOT / "benchmarks" / "results" / "pipeline_quality.json", results)
    for profile in PROFILES:
        for name, ok in results[profile]["checks"].items():
            print(("PASS " if ok else "FAIL ") + f"{profile}: {name}")
    if args.no_write:
        return

    images = plot(results)
    sizes = "; ".join(
        f"{p}: `{r['dataset']}`, {r['products']:,} products, {r['test']['queries']} test queries with complete "
        f"labels ({r['heldout']['queries']} on held-out product types), {r['sparse']['queries']} with sparse ones"
        for p, r in results.items()
    )
    check_lines = "; ".join(
        f"{p}: " + ", ".join(("✅ " if ok else "❌ ") + name for name, ok in results[p]["checks"].items())
        for p in PROFILES
    )
    kind_header = ["kind", *(f"{p} {c}" for p in PROFILES for c in ("bm25", "dense", "defaults"))]
    build_rows = [
        [
            p,
            part,
            f"{seconds:.1f}",
            f"{results[p]['build']['docs_per_second'].get(part, results[p]['build']['products'] / seconds):,.0f}",
        ]
        for p in PROFILES
        for part, seconds in results[p]["build"]["seconds"].items()
    ]
    body = f"""
Both generator profiles side by side: the easy one (products with descriptions, attributes and popularity) and
the hard one (title-only hardware listings with model numbers and units, no popularity for most products,
issue 15). {sizes}. `defaults` is `Settings()` as shipped, no trained model: linear fusion of the BM25 leg and
the packaged MiniLM over FAISS, and the long-tail boost; `defaults, boost off` the same without the boost;
the two "equal weights" rows are a hybrid before anyone chose its weights. Every row's dense leg is the leg as
served: for a query that names a product code whose product the lexical leg found, that product's neighbours
(`dense.code_anchors`, the "model" kind below; "Code queries" has it on and off). The trained stages are in the
sections "Onboarding: each step on both profiles" and "Learned ranker (LTR) against the tuned blend".

### Test split, complete labels, full catalogue

{side_by_side(results, "test", ("nDCG@10", "R@100", "RR@10"))}

{side_by_side(results, "test", ("lt_share@10", "coverage@10", "gini@10"))}

![quality]({images[0]})

Checks: {check_lines}.

### The same runs on sparse pooled judgments

The labels a shop has: a few judgments per query pooled from this engine's BM25 top 20, the rest unjudged and
counted as irrelevant, so the lexical leg, which chose the pool, is flattered and a product the dense leg brings
up from outside the pool counts against it.

{side_by_side(results, "sparse", ("nDCG@10", str(JUDGED), str(CONDENSED)))}

`Judged@10` is the share of the top 10 the labels judge, and the last columns nDCG@10 on the judged products
alone. The defaults against the BM25 leg, test nDCG@10 (paired randomisation test): {paired_lines(results)}.
{below_lines(results)}

### nDCG@10 per query kind (test, complete labels)

{table(kind_header, kind_rows(results))}

### Held-out product types (test queries on types no train or dev query names)

{side_by_side(results, "heldout", ("nDCG@10", "R@100"))}

### Indexing throughput (one build per profile)

{table(["profile", "part", "seconds", "docs/s"], build_rows)}

`dense` is MiniLM encoding (CPU) plus FAISS adds; `lexical` is tantivy; `store` the SQLite product store.
"""
    write_section("pipeline-quality", "Pipeline quality and indexing, both profiles", body)

    def fmt(d, s, q):
        return f"{d[s][q]:.1f}" if s in d else "–"

    stage_rows = [
        [
            p,
            s,
            *(fmt(results[p][key], s, q) for key in ("latency_ms", "latency_with_rerank_ms") for q in ("p50", "p99")),
        ]
        for p in PROFILES
        for s in STAGES
        if s in results[p]["latency_ms"] or s in results[p]["latency_with_rerank_ms"]
    ]
    lat_body = f"""
`SearchPipeline.run` in process (no HTTP), top 10, the shipped settings without stage deadlines (so a slow
stage is timed, not cut), on {results["easy"]["latency_queries"]} test queries per profile (rerank: the first
{results["easy"]["rerank_queries"]}, MiniLM cross-encoder with an untrained head, window 50: the cost of the
stage, not its quality). Milliseconds, on this shared 2-core machine: compare rows, not machines.

{table(["profile", "stage", "p50", "p99", "p50 with rerank", "p99 with rerank"], stage_rows)}

![latency]({images[1]})
"""
    write_section("pipeline-latency", "Query latency per stage, both profiles", lat_body)


if __name__ == "__main__":
    main()
