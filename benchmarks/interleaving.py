"""Online comparison by team-draft interleaving, on simulated shoppers: does it find the known better ranking?

What it shows (issue 6): two rankings whose order is known offline (test
nDCG@10 on complete graded labels) are interleaved by the service itself
(Flask app, ``service.interleave_with``, ``service.interleave_share = 1``:
every search, as the header ``on`` would, which needs the admin token); simulated shoppers, one client id each, search test queries and
click by a position-based model on the true grades
(``clicks.simulate_clicks``); the clicks go back as UBI events, and
``search-rerank interleaving-report`` reads the written log. Reported: wins
per ranking, the preference and its p-value, and how many searches it took
to reach significance (the preference against searches is plotted).

    python benchmarks/interleaving.py --searches 1500

Pairs: the dense leg alone (A) against hybrid linear fusion (B); with
``--tuned FILE`` (e.g. benchmarks/results/tuning/best.toml) also the defaults
(A) against it (B).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from click.testing import CliRunner  # noqa: E402
from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import save_figure, table, write_section  # noqa: E402

from search_rerank.cli import main as cli  # noqa: E402
from search_rerank.core.settings import read_settings_file  # noqa: E402
from search_rerank.data.clicks import simulate_clicks  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.evaluation.interleaving import (  # noqa: E402
    credit,
    preference_curve,
    read_interleaved_ubi,
    searches_needed,
)
from search_rerank.evaluation.tune import NDCG, RankingCache  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.serving import create_app  # noqa: E402
from search_rerank.serving.interleave import ranking_settings  # noqa: E402

# Examination probability per rank (position bias), as in eye-tracking studies of result pages.
THETA = [1.0, 0.85, 0.7, 0.6, 0.5, 0.43, 0.37, 0.32, 0.28, 0.25]
# Linear fusion with the lexical weight at 0 ranks by the dense leg alone: the weaker ranking on this benchmark.
DENSE_ONLY = {"fusion": {"method": "linear", "weights": {"lexical": 0.0, "dense": 1.0}}}
HYBRID_LINEAR = {"fusion": {"method": "linear", "weights": {"lexical": 1.0, "dense": 1.0}}}


def write_toml(path: Path, data: dict) -> Path:
    import tomli_w

    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def run_pair(
    name: str, a_settings, b_file: Path, pipeline, queries, grades, searches: int, seed: int, work: Path
) -> dict:
    """Serve A with B interleaved, send ``searches`` simulated shoppers, report from the written UBI log."""
    ubi_path = work / name / "ubi.ndjson"
    every = {"ubi_log_path": ubi_path, "interleave_with": b_file, "interleave_share": 1.0}
    service = a_settings.service.model_copy(update=every)
    client = create_app(a_settings.model_copy(update={"service": service}), pipeline).test_client()
    rng = np.random.default_rng(seed)
    qids = sorted(queries)
    started = time.perf_counter()
    clicks = 0
    for i in range(searches):
        qid = qids[rng.integers(len(qids))]
        response = client.post(
            "/search",
            json={"query": queries[qid].text, "size": len(THETA)},
            headers={"X-Ubi-Client-Id": f"shopper-{i}"},
        )
        body = response.get_json()
        if response.status_code != 200:
            raise SystemExit(f"search {queries[qid].text!r} failed: {response.status_code} {body}")
        shown = [hit["id"] for hit in body["hits"]]
        if not shown:
            continue
        [impression] = simulate_clicks(grades, [(qid, shown)], THETA, rng)
        events = [
            {
                "action_name": "click",
                "query_id": body["meta"]["query_id"],
                "client_id": f"shopper-{i}",
                "event_attributes": {"object": {"object_id": pid}, "position": {"ordinal": shown.index(pid)}},
            }
            for pid in impression.clicked
        ]
        if events:
            clicks += len(events)
            client.post("/ubi/events", json=events)
    seconds = time.perf_counter() - started
    logs = sorted(str(p) for p in ubi_path.parent.glob("ubi.*.ndjson*"))
    report = CliRunner().invoke(cli, ["interleaving-report", "--json", "--seed", str(seed), *logs])
    if report.exit_code != 0:
        raise SystemExit(report.output)
    result = json.loads(report.output)
    outcomes = [credit(teams, clicked) for teams, clicked in read_interleaved_ubi(*logs)]
    curve = preference_curve(outcomes, seed=seed)  # about 100 checkpoints, each a sign-flip test
    needed = searches_needed(curve)
    return {
        "name": name,
        "report": result,
        "curve": curve,
        "needed": needed,
        "clicks": clicks,
        "seconds": seconds,
        "searches": searches,
    }


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.add_argument("--searches", type=int, default=1500, help="simulated shoppers' searches per pair")
    ap.add_argument("--tuned", type=Path, default=None, help="a tuned settings file: also defaults against it")
    ap.add_argument(
        "--tuned-searches",
        type=int,
        default=None,
        help="searches for the defaults / tuned pair (a smaller difference needs more); default --searches",
    )
    ap.add_argument("--sim-seed", type=int, default=7)
    args = ap.parse_args()

    data, settings = prepared(args)
    cached_index(data, settings)
    dataset = load_beir(data)
    test_q, test_qrels = dataset.split("test")
    grades = {qid: dict(judged) for qid, judged in test_qrels.items()}
    queries = {qid: test_q[qid] for qid in grades if qid in test_q}
    pipeline = open_pipeline(settings)
    pipeline.warm_up()

    work = Path(tempfile.mkdtemp(prefix="interleaving-"))
    pairs = [
        (
            "dense vs hybrid",
            "dense only",
            settings.override(**DENSE_ONLY),
            "hybrid linear",
            write_toml(work / "hybrid.toml", HYBRID_LINEAR),
            args.searches,
        )
    ]
    if args.tuned is not None:
        pairs.append(
            (
                "defaults vs tuned",
                "defaults",
                settings,
                "tuned",
                args.tuned,
                args.tuned_searches if args.tuned_searches is not None else args.searches,
            )
        )

    cache = RankingCache(pipeline, queries, test_qrels, depth=100)
    rows, results = [], []
    for name, a_name, a, b_name, b_file, searches in pairs:
        b = ranking_settings(a, read_settings_file(b_file))
        offline = [cache.score(s).metrics[NDCG] for s in (a, b)]
        run = run_pair(name.replace(" ", "-"), a, b_file, pipeline, queries, grades, searches, args.sim_seed, work)
        run.update(a=a_name, b=b_name, offline=offline)
        results.append(run)
        r = run["report"]
        better = "B" if offline[1] > offline[0] else "A"
        found = ("B" if r["preference_b"] > 0 else "A") if r["p_value"] < 0.05 else "none"
        rows.append(
            [
                name,
                f"{a_name} / {b_name}",
                f"{offline[0]:.4f} / {offline[1]:.4f}",
                r["impressions"],
                r["a_wins"],
                r["b_wins"],
                r["ties"],
                f"{r['preference_b']:+.3f}",
                f"{r['p_value']:.4f}",
                run["needed"] if run["needed"] is not None else "not reached",
                f"{better} / {found}",
            ]
        )
        print(json.dumps({k: v for k, v in run.items() if k != "curve"}, indent=2), flush=True)
    cache.close()
    out = Path(__file__).resolve().parent / "results" / "interleaving.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    if args.no_write:
        return

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    for run in results:
        n, pref, p = (np.array(v) for v in zip(*run["curve"]))
        (line,) = ax.plot(n, pref, label=f"{run['name']} (B = {run['b']})")
        ax.scatter(n[p < 0.05], pref[p < 0.05], s=8, color=line.get_color())
        if run["needed"] is not None:
            ax.axvline(run["needed"], color=line.get_color(), ls=":", lw=1)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("interleaved searches")
    ax.set_ylabel("preference for B\n(B wins - A wins) / searches")
    ax.set_title("Team-draft interleaving on simulated shoppers (dots: p < 0.05)")
    ax.legend(fontsize=8)
    img = save_figure(fig, "interleaving.png")

    total_s = sum(r["seconds"] for r in results)
    total_n = sum(r["searches"] for r in results)
    body = f"""
Catalog `{data.name}` ({args.products:,} products; BM25 + MiniLM, no reranker), test queries. The service
(`create_app`, `service.interleave_with` = B's settings file, `service.interleave_share` = 1) answers
{
        " and ".join(f"{r['searches']:,}" for r in results)
    } searches (per pair, in order), each by a new simulated shopper (its own UBI client id) on a test query drawn
at random; the shopper examines rank r with probability {THETA} and clicks an examined product with probability
0.03 / 0.2 / 0.5 / 0.8 for grade 0 / 1 / 2 / 3 of the complete labels (`clicks.simulate_clicks`); the clicks go
back through `POST /ubi/events`, and the figures below are `search-rerank interleaving-report` on the log the
service wrote (impressions with `event_attributes.team`).

{
        table(
            [
                "pair",
                "A / B",
                "test nDCG@10 A / B",
                "searches",
                "A wins",
                "B wins",
                "ties",
                "preference for B",
                "p",
                "searches to p < 0.05",
                "better offline / found",
            ],
            rows,
        )
    }

"Searches to p < 0.05": the first checkpoint (about 100 per pair) from which the sign-flip p-value of "no
preference" stays below 0.05. Ties are mostly searches without clicks, or with as many clicks on each side.
{total_n:,} searches with their click events took {total_s:.0f} s through the app (about
{1000 * total_s / max(total_n, 1):.0f} ms each, two rankings per search).

![preference against searches]({img})
"""
    write_section("interleaving", "Interleaving on simulated shoppers (issue 6)", body)


if __name__ == "__main__":
    main()
