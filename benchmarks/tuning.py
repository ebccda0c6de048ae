"""Relevance tuning on a generated catalog: search on dev, confirm on test, and the report's screenshot.

What it shows (issue 6): what the seeded TPE search finds on the dev split
(the nDCG@10 / long-tail Pareto front and the chosen settings), whether the
chosen settings still beat the defaults on the untouched test split (paired
randomisation test and bootstrap interval), and what retrieving each dev query
once saves against retrieving it again in every trial. The tuning report's
first screen is saved to docs/img/tuning_report.png.

    python benchmarks/tuning.py --products 5000 --queries 1000 --trials 60

Generated data and indexes are cached under ``--work``, as in the other benchmarks.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import tomli_w

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import IMG, ROOT, table, write_section  # noqa: E402

from search_rerank.compare import compare  # noqa: E402
from search_rerank.indexes import open_pipeline  # noqa: E402
from search_rerank.loaders import load_beir  # noqa: E402
from search_rerank.tune import LT_SHARE, NDCG, Goal, RankingCache, tune, write_settings  # noqa: E402
from search_rerank.tuning_report import write_report  # noqa: E402

METRICS = (NDCG, "R@100", "RR@10", LT_SHARE)


def screenshot(page: Path, out: Path) -> None:
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("chromium not found: apt-get install -y --no-install-recommends chromium")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium)
        view = browser.new_page(viewport={"width": 1280, "height": 1700}, device_scale_factor=1)
        view.goto(page.as_uri())
        out.parent.mkdir(parents=True, exist_ok=True)
        view.screenshot(path=str(out))
        browser.close()


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.set_defaults(products=5_000, queries=1_000, pooled=0)
    ap.add_argument("--trials", type=int, default=60)
    ap.add_argument("--tune-seed", type=int, default=13, help="TPE and significance-test seed")
    ap.add_argument("--max-ndcg-cost", type=float, default=None,
                    help="tune with this constraint instead of taking the front's most accurate point")
    args = ap.parse_args()

    data, settings = prepared(args)
    cached_index(data, settings)
    dataset = load_beir(data)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    dev_q, dev_qrels = dataset.split("dev")
    result = tune(pipeline, dev_q, dev_qrels, trials=args.trials, seed=args.tune_seed,
                  goal=Goal(max_ndcg_cost=args.max_ndcg_cost), dataset=data.name, split="dev", progress=True)
    out = ROOT / "benchmarks" / "results" / "tuning"
    page, _ = write_report(result.to_json(), out)
    write_settings(out / "best.toml", result.best["sections"], comment=f"benchmarks/tuning.py on {data.name}")

    test_q, test_qrels = dataset.split("test")
    tuned = settings.override(**result.best["sections"])
    cache = RankingCache(pipeline, test_q, test_qrels, depth=max(100, tuned.lexical.candidates))
    runs = [{qid: [(c.product_id, c.score) for c in hits[:100]] for qid, hits in cache.rank(s).items()}
            for s in (settings, tuned)]
    test_scores = [cache.score(s).metrics for s in (settings, tuned)]
    cache.close()
    test = compare(runs[0], runs[1], test_qrels, test_q, names=("defaults", "tuned"), seed=args.tune_seed)
    sig = test.significance
    naive_s = result.timing["retrieve_s"] * args.trials
    summary = {"dataset": data.name, "dev": {"baseline": result.baseline["metrics"], "best": result.best["metrics"],
                                             "significance": result.significance},
               "test": {"baseline": test_scores[0], "best": test_scores[1], "significance": sig},
               "best": result.best["sections"], "pareto": len(result.pareto), "timing": result.timing}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({"test": summary["test"], "best": summary["best"]}, indent=2))
    if args.no_write:
        return
    screenshot(page, IMG / "tuning_report.png")

    front = sorted((t for t in result.trials if t.number in result.pareto), key=lambda t: -t.metrics[NDCG])
    body = f"""
Catalog `{data.name}` ({args.products:,} generated products, BM25 + MiniLM), {result.queries} dev queries for the
search, {len(test_qrels)} test queries to confirm. {args.trials} TPE trials (seed {args.tune_seed}), mode
**{result.mode}**: fusion method and weights, RRF constant or normalisation, candidates per leg, long-tail method
(off / gated boost / popularity-aware xQuAD) and its parameters. Chosen: trial {result.best['number']},

```toml
{tomli_w.dumps(result.best['sections']).strip()}
```

### Defaults against the chosen settings

{table(['split', 'settings', *METRICS], [
        ['dev', 'defaults', *(result.baseline['metrics'][m] for m in METRICS)],
        ['dev', 'tuned', *(result.best['metrics'][m] for m in METRICS)],
        ['test', 'defaults', *(test_scores[0][m] for m in METRICS)],
        ['test', 'tuned', *(test_scores[1][m] for m in METRICS)]])}

On test, tuned - defaults nDCG@10: {sig['mean_delta']:+.4f}, 95% bootstrap CI [{sig['ci_low']:+.4f},
{sig['ci_high']:+.4f}], paired randomisation p = {sig['p_value']:.4f}; the tuned settings win {sig['wins']} queries,
lose {sig['losses']}, tie {sig['ties']}. (On dev, where they were chosen: p = {result.significance['p_value']:.4f}.)

### Pareto front on dev (nDCG@10 against long-tail share of the top 10)

{table(['trial', NDCG, LT_SHARE, 'parameters'], [[t.number, t.metrics[NDCG], t.metrics[LT_SHARE],
        ', '.join(f'{k}={v:.3g}' if isinstance(v, float) else f'{k}={v}' for k, v in t.params.items())]
        for t in front])}

### Cost

Each dev query retrieved once: {result.timing['retrieve_s']:.1f} s; then {result.timing['per_trial_ms']:.0f} ms per
trial ({result.timing['trials_s']:.1f} s for {args.trials}). Retrieving again in every trial would have added about
{naive_s:.0f} s.

![tuning report](img/tuning_report.png)

The full report (`search-rerank tune --out DIR` writes the same) is in `benchmarks/results/tuning/report.html`.
"""
    write_section("tuning", "Relevance tuning and long-tail exposure (issue 6)", body)


if __name__ == "__main__":
    main()
