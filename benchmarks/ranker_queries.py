"""How many train queries the learned ranker needs once a reranker feeds it, and what each costs (issue 15).

Why: with a reranker promoted, every train query the ranker learns from goes
through the cross-encoder for its feature, so ``onboard --ranker-queries``
(``train ranker --max-queries``) can cut the step's time by sampling train.
Whether a default cap is worth its quality is a learning curve: this trains
the ranker as the onboarding's ranker step does (same settings, same dev,
the models ``benchmarks/onboarding.py`` made: run it first with the same
options) from samples of train, and reports dev nDCG@10 and the seconds of
each training. Dev only: it decides a default, so test stays unread.

Writes the key ``ranker_queries`` of benchmarks/results/learned_ranking.json
and the "Ranker: train queries" section of docs/BENCHMARKS.md.

    python benchmarks/ranker_queries.py --profiles hard --products 8000 --queries 4000 --samples 500 1000
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from onboarding import PROFILES, onboarding_plan, parser, profile_sizes  # noqa: E402
from report import command, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.cli.onboard import promoted_changes, read_state, with_changes  # noqa: E402
from search_rerank.cli.training import training_pipeline  # noqa: E402
from search_rerank.core.model_card import MODEL_METRIC  # noqa: E402
from search_rerank.data.loaders import load_dataset  # noqa: E402
from search_rerank.training.ranker import RankerTraining, train_ranker  # noqa: E402

KEY = "ranker_queries"


def curve(args, profile: str, products: int, queries: int) -> dict[str, Any]:
    """Dev nDCG@10 and training seconds of the ranker from each sample size of train (and all of it), on the
    settings the onboarding's ranker step trained on (the steps promoted before it)."""
    plan, base, _ = onboarding_plan(args, profile, products, queries)
    state = read_state(plan.out, plan.dataset, base)
    if "reranker" not in state["steps"]:
        raise SystemExit(f"{plan.out}: the onboarding has not reached its ranker step; run benchmarks/onboarding.py")
    before = {step: record for step, record in state["steps"].items() if step != "ranker"}
    settings = with_changes(base, promoted_changes({"steps": before}))
    data = load_dataset(plan.dataset)
    train, dev = data.split("train"), data.split("dev")
    rows = []
    with training_pipeline(settings, with_ranker=False) as pipeline, tempfile.TemporaryDirectory() as tmp:
        for n in [*sorted(args.samples), None]:
            config = RankerTraining(max_rounds=args.rounds, max_queries=n, seed=args.seed)
            card = train_ranker(
                pipeline,
                train,
                dev,
                Path(tmp) / f"ranker-{n}",
                config,
                data_path=str(plan.dataset),
                data_name=data.name,
                label_source="judgments",
            )
            rows.append(
                {
                    "train_queries": card.data.splits["train"].queries,
                    "dev_ndcg10": card.dev_metrics[MODEL_METRIC],
                    "seconds": card.training_seconds,
                    "promoted": card.promoted,
                }
            )
            print(json.dumps({profile: rows[-1]}), flush=True)
    return {"reranker": settings.rerank.model, "dev_queries": len(dev[1]), "rows": rows}


def marginal(smaller: list[dict[str, Any]], row: dict[str, Any]) -> str:
    """Seconds each train query added over the largest smaller sample, or empty for the first."""
    if not smaller:
        return ""
    last = smaller[-1]
    return f"{(row['seconds'] - last['seconds']) / max(row['train_queries'] - last['train_queries'], 1):.2f}"


def main() -> None:
    ap = parser(__doc__ or "")
    ap.add_argument("--samples", type=int, nargs="+", default=[500, 1000], help="train queries sampled (and all)")
    ap.add_argument("--report-only", action="store_true", help="rewrite the docs section from the saved results")
    args = ap.parse_args()
    saved = read_results(args.results)
    if not args.report_only:
        results = {p: curve(args, p, n, q) for p, n, q in profile_sizes(args)}
        saved[KEY] = {**saved.get(KEY, {}), **results, "command": command()}
        write_results(args.results, saved)
    if args.no_write:
        return
    rows = [
        [
            p,
            r["reranker"] or "none",
            f"{row['train_queries']:,}",
            f"{row['dev_ndcg10']:.4f}",
            f"{row['seconds']:.0f}",
            marginal(r["rows"][:k], row),
        ]
        for p, r in saved[KEY].items()
        if p in PROFILES
        for k, row in enumerate(r["rows"])
    ]
    body = f"""The learned ranker trained as the onboarding's ranker step trains it (the steps promoted before it, the
onboarding's reranker among them when it was promoted, so each train query goes through the cross-encoder for its
feature), from samples of train and from all of it; dev nDCG@10 on the sparse labels (all of dev, as promotion
uses) and the seconds of each training (retrieval, features with the reranker, cross-validated boosting, the dev
check). One run each on a shared machine, measured with `{saved[KEY].get("command", "")}`.

{table(["profile", "reranker", "train queries", "dev nDCG@10", "seconds", "seconds per train query more"], rows)}

`seconds per train query more`: against the row above, what each further train query cost (the dev check's
part of the time is the same in every row).

A sample of train is `onboard --ranker-queries N` (`train ranker --max-queries N`). While dev still rises with
the whole of train, no cap is the default: the time it saves is paid in quality.
"""
    write_section(KEY, "Ranker: train queries against quality and time", body)


if __name__ == "__main__":
    main()
