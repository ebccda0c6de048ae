"""Recommendations and diversity on the generated catalogue: similar items, also-clicked items, the MMR curve.

What it shows (issue 17, items 1-2):

- ``similar_same_type_at10``: for a sample of products, the share of the 10
  nearest neighbours (``GET /products/{id}/similar``, the stored bi-encoder
  vectors in FAISS) that are of the product's own type (its category path),
  beside the share a random list would have;
- ``also_precision_at10``: simulated shoppers each have one interest (a
  product type): a session is two searches, the second about the same type
  with probability ``--focus``, else about anything; clicks follow a
  position-based model on the true grades (``clicks.simulate_clicks``) over
  the pipeline's top 10. The co-interest table is mined from those sessions
  as the service mines UBI logs (``data.co_interest``), and precision@10 is
  the share of a product's also-clicked list of its own type (the simulated
  co-interest);
- ``mmr_curve``: per λ, nDCG@10 on the test queries against intra-list
  diversity (mean 1 - cosine of the top 10's vectors) and distinct types in
  the top 10, one retrieval per query ranked at every λ.

    python benchmarks/reco_exposure.py --products 3000 --queries 300

Small on purpose: the shared machine is loaded; the figures are ratios.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_index, dataset_parser, prepared  # noqa: E402
from report import ROOT, table, write_section  # noqa: E402

from search_rerank.core.diversity import intra_list_diversity, similarity_matrix  # noqa: E402
from search_rerank.core.retrieval import DENSE  # noqa: E402
from search_rerank.data.clicks import simulate_clicks  # noqa: E402
from search_rerank.data.co_interest import co_interest  # noqa: E402
from search_rerank.data.loaders import load_beir  # noqa: E402
from search_rerank.evaluation.evaluate import relevance_metrics  # noqa: E402
from search_rerank.evaluation.tune import NDCG  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402
from search_rerank.serving.reco_api import similar  # noqa: E402

THETA = [1.0, 0.85, 0.7, 0.6, 0.5, 0.43, 0.37, 0.32, 0.28, 0.25]
RESULTS = ROOT / "benchmarks" / "results" / "reco_exposure.json"
LAMBDAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0)


def similar_share(pipeline, type_of, sample) -> tuple[float, float]:
    """Mean same-type share of the top 10 similar; and what a random list of other products would have."""
    shares, base = [], []
    counts: dict[tuple, int] = defaultdict(int)
    for t in type_of.values():
        counts[t] += 1
    n = len(type_of)
    for pid in sample:
        hits, why_not = similar(pipeline, pid, 10)
        if why_not is not None or not hits:
            continue
        shares.append(np.mean([type_of[c.product_id] == type_of[pid] for c in hits]))
        base.append((counts[type_of[pid]] - 1) / (n - 1))
    return float(np.mean(shares)), float(np.mean(base))


def also_precision(pipeline, settings, dataset, type_of, sessions: int, focus: float, rng) -> dict:
    queries = dataset.queries
    grades: dict[str, dict[str, int]] = {}
    for judged in dataset.qrels.values():
        for qid, docs in judged.items():
            grades.setdefault(qid, {}).update(docs)
    qids = sorted(grades)
    by_type: dict[str, list[str]] = defaultdict(list)
    for qid in qids:
        by_type[queries[qid].meta.get("types", "").split(",")[0]].append(qid)
    ranking = {
        qid: [h.product.id for h in pipeline.run(queries[qid].text, size=10, settings=settings).hits] for qid in qids
    }
    baskets = []
    for _ in range(sessions):
        first = qids[rng.integers(len(qids))]
        peers = by_type[queries[first].meta.get("types", "").split(",")[0]]
        second = peers[rng.integers(len(peers))] if rng.random() < focus else qids[rng.integers(len(qids))]
        shown = [(q, ranking[q]) for q in (first, second) if ranking[q]]
        clicked = set().union(*(i.clicked for i in simulate_clicks(grades, shown, THETA, rng)))
        if clicked:
            baskets.append(clicked)
    table_ = co_interest(baskets)
    precisions = [
        np.mean([type_of.get(other) == type_of.get(pid) for other, _ in table_.also(pid, 10)])
        for pid in table_.companions
    ]
    clicked_products = {pid for basket in baskets for pid in basket}
    return {
        "precision": float(np.mean(precisions)) if precisions else 0.0,
        "products_with_history": len(table_.companions),
        "clicked_products": len(clicked_products),
        "sessions_with_clicks": len(baskets),
    }


def mmr_curve(pipeline, settings, dataset, type_of, limit: int) -> list[dict]:
    queries, qrels = dataset.split("test")
    qids = sorted(qrels)[:limit]
    retrieved = {qid: pipeline.retrieve(queries[qid].text, None, settings) for qid in qids}
    leg = pipeline.legs[DENSE]
    curve = []
    for lam in LAMBDAS:
        run_settings = settings.override(diversity={"enabled": True, "lambda_": lam, "depth": 30})
        run, ild, types = {}, [], []
        for qid in qids:
            top = pipeline.rank_from(retrieved[qid], run_settings).candidates[:10]
            run[qid] = [(c.product_id, c.score) for c in top]
            ids = [c.product_id for c in top]
            ild.append(intra_list_diversity(similarity_matrix(ids, leg.vectors_of(ids), {})))
            types.append(len({type_of[pid] for pid in ids}))
        per_query = relevance_metrics({q: qrels[q] for q in qids}, run)
        ndcg = float(np.mean([per_query[q][NDCG] for q in qids]))
        curve.append(
            {"lambda": lam, "ndcg_at10": ndcg, "ild_at10": float(np.mean(ild)), "types_at10": float(np.mean(types))}
        )
        print(f"λ={lam:.1f}: nDCG@10 {ndcg:.3f}, ILD@10 {np.mean(ild):.3f}, types@10 {np.mean(types):.2f}", flush=True)
    return curve


def main() -> None:
    ap = dataset_parser(__doc__)
    ap.set_defaults(products=3000, queries=300)
    ap.add_argument("--sample", type=int, default=300, help="products whose similar items are checked")
    ap.add_argument("--sessions", type=int, default=3000, help="simulated shopper sessions")
    ap.add_argument("--focus", type=float, default=0.8, help="chance a session's second search shares its type")
    ap.add_argument("--mmr-queries", type=int, default=200, help="test queries on the MMR curve")
    args = ap.parse_args()
    data, settings = prepared(args)
    cached_index(data, settings)
    settings = settings.offline()
    pipeline = open_pipeline(settings)
    dataset = load_beir(data)
    type_of = {p.id: tuple(p.category) for p in dataset.products}
    rng = np.random.default_rng(args.seed)
    started = time.perf_counter()
    sample = [str(pid) for pid in rng.choice(sorted(type_of), size=min(args.sample, len(type_of)), replace=False)]
    same, base = similar_share(pipeline, type_of, sample)
    print(f"similar: same type {same:.3f} (random {base:.3f})", flush=True)
    also = also_precision(pipeline, settings, dataset, type_of, args.sessions, args.focus, rng)
    print(f"also: {also}", flush=True)
    curve = mmr_curve(pipeline, settings, dataset, type_of, args.mmr_queries)
    results = {
        "dataset": data.name,
        "similar_same_type_at10": same,
        "similar_random_same_type": base,
        "similar_sample": len(sample),
        "also_precision_at10": also["precision"],
        "also": {**also, "sessions": args.sessions, "focus": args.focus},
        "mmr_curve": curve,
        "seconds": round(time.perf_counter() - started, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    # Merged: benchmarks/exposure_controller.py writes its keys into the same file.
    merged = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**merged, **results}, indent=2) + "\n", encoding="utf-8")
    pipeline.close()
    if args.no_write:
        return
    body = f"""
On `{data.name}` (MiniLM bi-encoder, default settings). Raw figures: `benchmarks/results/reco_exposure.json`.

{
        table(
            ["measure", "value", "baseline"],
            [
                ["similar items: same product type in the top 10", same, f"{base:.3f} (a random list)"],
                [
                    "also-clicked: precision@10 against simulated co-interest",
                    also["precision"],
                    f"{also['products_with_history']} of {len(type_of)} products with history",
                ],
            ],
        )
    }

Also-clicked sessions: {args.sessions} simulated shoppers, two searches each, the second about the same product type
with probability {args.focus}; {also["sessions_with_clicks"]} sessions clicked something. A product without history
gets its similar items instead (`source: similar`). A random companion is of the same type about as often as the
similar-items baseline; the precision is bounded by the shoppers' focus, since a session's second search is about
another type one time in {1 / (1 - args.focus):.0f}.

### MMR: intra-list diversity against nDCG@10 over λ ({args.mmr_queries} test queries, window 30)

{
        table(
            ["λ", "nDCG@10", "ILD@10 (1 - cosine)", "types in top 10"],
            [[f"{p['lambda']:.1f}", p["ndcg_at10"], p["ild_at10"], f"{p['types_at10']:.2f}"] for p in curve],
        )
    }

λ = 1.0 is the relevance order (the stage off); ILD is the mean pairwise 1 - cosine of the top 10's stored vectors.
"""
    write_section("reco_exposure", "Recommendations beside search and MMR diversity (issue 17)", body)


if __name__ == "__main__":
    main()
