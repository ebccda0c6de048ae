"""A distilled reranker against its teacher, as served: test nDCG@10 (complete and pooled sparse labels) and CPU latency.

Issue 14, item 2. ``train distill`` measures both models on dev while it
trains; this script is the acceptance check afterwards, on the test split and
through the product's own serving path (``open_pipeline`` with each model as
``rerank.model``, so the runtime and blend come from each card and the
product texts' token ids from the index):

* test nDCG@10 of the first stage alone, and of the full pipeline with the
  teacher and with the student, the student against the teacher paired (randomisation p), against the complete labels and against the pooled
  sparse labels (``pooled/`` beside the dataset) that are all a shop could
  measure;
* the rerank stage at ``--window`` (50) on the same first-stage windows of
  ``--latency-queries`` test queries, teacher and student alternating which
  runs first, so that machine load falls on both alike: p50/p99 and the ratio.

    python benchmarks/distilled_student.py --teacher MODELS/teacher --student MODELS/student-l2 \\
        --data DATASET --index INDEX_DIR

Merges the figures into ``benchmarks/results/rerank_latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from report import ROOT, table, write_section  # noqa: E402

from search_rerank.core.model_card import load_card  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.loaders import load_beir, load_dataset  # noqa: E402
from search_rerank.evaluation.compare import settings_runs  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_latency.json"
MEASURE = "nDCG@10"


def with_reranker(base: Settings, model: Path | None, window: int) -> Settings:
    return base.model_copy(
        update={"rerank": base.rerank.model_copy(update={"model": str(model) if model else None, "window": window})}
    )


def test_ndcg(sides: dict[str, Settings], queries, qrels_by_label: dict[str, dict]) -> dict:
    """nDCG@10 per side on each label set, and the student's paired delta to the teacher."""
    names = list(sides)
    runs, _ = settings_runs(list(sides.values()), queries, qrels_by_label["complete"])
    out: dict = {}
    for label, qrels in qrels_by_label.items():
        per_side = {}
        for name, run in zip(names, runs, strict=True):
            per_query = relevance_metrics(qrels, run)
            per_side[name] = [per_query[qid][MEASURE] for qid in sorted(qrels)]
        suffix = "" if label == "complete" else f"_{label}"
        for name in names:
            out[f"ndcg10_{name}{suffix}"] = float(np.mean(per_side[name]))
        sig = paired_test(per_side["teacher"], per_side["student"])  # the first stage is shown, not tested
        out[f"ndcg10_student_minus_teacher{suffix}"] = sig.mean_delta
        out[f"ndcg10_student_vs_teacher_p{suffix}"] = sig.p_value
        out[f"ndcg10_queries{suffix}"] = sig.queries
    return out


def latency(sides: dict[str, Settings], texts: list[str], window: int) -> dict:
    """The rerank stage as served for each model on the same windows, alternating the order per query."""
    pipelines = {name: open_pipeline(s) for name, s in sides.items() if name != "first_stage"}
    first = sides["first_stage"]
    for p in pipelines.values():
        p.warm_up()
    base = next(iter(pipelines.values()))
    times: dict[str, list[float]] = {name: [] for name in pipelines}
    for n, query in enumerate(texts):
        candidates = base.rank_from(base.retrieve(query, None, first), first).candidates[:window]
        products = base.store.get([c.product_id for c in candidates])
        product_texts = {pid: p.embedding_text() for pid, p in products.items()}
        order = list(pipelines.items())
        for name, pipeline in order if n % 2 else order[::-1]:
            started = time.perf_counter()
            pipeline.reranker.run(query, candidates, product_texts, sides[name].rerank)
            times[name].append((time.perf_counter() - started) * 1000)
    runtimes = {name: p.reranker.runtime for name, p in pipelines.items()}
    for p in pipelines.values():
        p.close()
    out = {"latency_queries": len(texts), "latency_window": window, "student_runtime": runtimes["student"]}
    for name, values in times.items():
        out[f"cpu_{name}_w{window}_p50_ms"] = float(np.percentile(values, 50))
        out[f"cpu_{name}_w{window}_p99_ms"] = float(np.percentile(values, 99))
    out[f"cpu_student_over_teacher_w{window}_p50"] = (
        out[f"cpu_student_w{window}_p50_ms"] / out[f"cpu_teacher_w{window}_p50_ms"]
    )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--student", type=Path, required=True)
    ap.add_argument(
        "--data", type=Path, required=True, help="the generated dataset (pooled/ beside it for sparse labels)"
    )
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--window", type=int, default=50)
    ap.add_argument("--latency-queries", type=int, default=40)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()

    import torch

    base = Settings(index_dir=args.index, longtail={"enabled": False})
    sides = {
        "first_stage": with_reranker(base, None, args.window),
        "teacher": with_reranker(base, args.teacher, args.window),
        "student": with_reranker(base, args.student, args.window),
    }
    data = load_dataset(args.data)
    queries, qrels = data.split("test")
    labels = {"complete": qrels}
    if (args.data / "pooled").is_dir():
        _, pooled = load_beir(args.data / "pooled").split("test")
        labels["pooled"] = {qid: judged for qid, judged in pooled.items() if qid in queries}
    figures = test_ndcg(sides, queries, labels)
    print(json.dumps(figures, indent=2), flush=True)
    texts = [queries[qid].text for qid in sorted(queries)][: args.latency_queries]
    figures.update(latency(sides, texts, args.window))
    figures.update(
        {
            "ndcg10_split": "test",
            "distill_benchmark_products": sum(1 for _ in (args.data / "corpus.jsonl").open()),
            "distill_benchmark_torch_threads": torch.get_num_threads(),
            "distill_benchmark_load_average_1m": os.getloadavg()[0],
        }
    )
    print(json.dumps(figures, indent=2))
    if args.no_write:
        return
    merged = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**merged, **figures}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    write_section(
        "distilled-student", "Distilled reranker against its teacher (test split, as served)", report(figures, args)
    )


def report(f: dict, args: argparse.Namespace) -> str:
    """The section of docs/BENCHMARKS.md: quality on both label sets, latency in one run, and the models' cards."""
    w = args.window
    cards = {name: load_card(path) for name, path in (("teacher", args.teacher), ("student", args.student))}
    layers = {name: card.parameters.get("layers", "all") for name, card in cards.items()}
    rows = [["first stage (no reranker)", "", f["ndcg10_first_stage"], f.get("ndcg10_first_stage_pooled", ""), "", ""]]
    for name in ("teacher", "student"):
        rows.append(
            [
                f"{name} ({cards[name].name}, {layers[name]} layers)",
                "torch" if name == "teacher" else f["student_runtime"],
                f[f"ndcg10_{name}"],
                f.get(f"ndcg10_{name}_pooled", ""),
                f[f"cpu_{name}_w{w}_p50_ms"],
                f[f"cpu_{name}_w{w}_p99_ms"],
            ]
        )
    body = table(
        ["", "runtime", "test nDCG@10", "test nDCG@10, pooled sparse labels", f"CPU w{w} p50 ms", f"CPU w{w} p99 ms"],
        rows,
    )
    pooled = (
        f", pooled sparse labels {f['ndcg10_student_minus_teacher_pooled']:+.4f} "
        f"(p = {f['ndcg10_student_vs_teacher_p_pooled']:.2f}, {f['ndcg10_queries_pooled']} queries)"
        if "ndcg10_student_minus_teacher_pooled" in f
        else ""
    )
    return (
        body + f"\n\nStudent minus teacher, test nDCG@10: complete labels {f['ndcg10_student_minus_teacher']:+.4f} "
        f"(paired randomisation p = {f['ndcg10_student_vs_teacher_p']:.2f}, {f['ndcg10_queries']} queries){pooled}. "
        f"Latency: the rerank stage as served (each card's runtime and blend, token ids from the index) on the same "
        f"first-stage windows of {f['latency_queries']} test queries, teacher and student alternating which goes "
        f"first; student/teacher p50 = {f[f'cpu_student_over_teacher_w{w}_p50']:.3f}. "
        f"{f['distill_benchmark_products']:,} products, {f['distill_benchmark_torch_threads']} torch threads, "
        f"load average {f['distill_benchmark_load_average_1m']:.1f} at the end."
    )


if __name__ == "__main__":
    main()
