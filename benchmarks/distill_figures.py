"""Copy a distilled reranker's card figures into benchmarks/results/rerank_latency.json (merged, other keys kept).

    python benchmarks/distill_figures.py MODELS_DIR/student-l2

`search-rerank train distill` measures everything in one run on the machine it
trains on: the dev nDCG@10 of teacher and student through the same evaluator,
and the window-50 CPU latency of the teacher and of the student under each
runtime (torch fp32, torch int8, ONNX Runtime int8). This script only moves
those figures to the results file; the student's latency keys are those of the
runtime its card says serves it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from search_rerank.core.model_card import load_card  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_latency.json"


def figures(directory: Path) -> dict:
    card = load_card(directory)
    p, m = card.parameters, card.dev_metrics
    latency: dict[str, dict[str, float]] = p["cpu_latency_ms"]  # type: ignore[assignment]
    runtime = str(p["runtime"])
    out = {
        "student_runtime": runtime,
        "student_layers": p["layers"],
        "student_parameters": p["student_parameters"],
        "teacher_parameters": p["teacher_parameters"],
        "student_train_pairs": card.data.splits["train"].pairs,
        "student_dev_queries": card.data.splits["dev"].queries,
        "ndcg10_split": "dev",
        "ndcg10_teacher": m["teacher_model_ndcg10"],
        "ndcg10_student": m["model_ndcg10"],
        "ndcg10_first_stage": m["first_stage_ndcg10"],
        "cpu_distill_teacher_w50_p50_ms": latency["teacher"]["p50_ms"],
        "cpu_student_w50_p50_ms": latency[runtime]["p50_ms"],
        "cpu_student_w50_p99_ms": latency[runtime]["p99_ms"],
        "cpu_student_torch_threads": p["cpu_torch_threads"],
    }
    for name, timing in latency.items():
        if name == "teacher":
            continue
        out[f"cpu_student_{name.replace('-', '_')}_w50_p50_ms"] = timing["p50_ms"]
    return out


if __name__ == "__main__":
    found = figures(Path(sys.argv[1]))
    existing = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**existing, **found}, indent=2, sort_keys=True) + "\n")
    print(json.dumps(found, indent=2))
