"""Model numbers on the cluster backend: its BM25 leg with ``lexical.model_codes`` off and on, beside the embedded one.

Why: the embedded index finds a model number typed without its separators ("KB0123A" for "KB-0123A") through its
code field since schema version 5; the cluster's product index holds the same codes since mapping version 4, and the
cluster leg looks them up the same way (backends/cluster_query.py). This measures both legs on the same queries, so
the cluster's figure can be read against the embedded one:

- the model queries of each generator profile's test split with the separators of their model numbers dropped as
  shoppers type them (``benchmarks/query_words.py``'s ``without_separators``), off and on;
- the model queries as generated, off and on (what worked still does).

The cluster is osmem-server (an in-memory OpenSearch-compatible server, a dev dependency) through the OpenSearch
backend: its BM25 is not Lucene's to the digit, so compare each leg's off and on, not the legs with each other.

Writes benchmarks/results/cluster_codes.json and the "Model numbers on the cluster" section of docs/BENCHMARKS.md.

    python benchmarks/cluster_codes.py --products 3000 8000 --queries 1000 4000

Sizes are per profile (easy, hard); the generated data are the other benchmarks' caches.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hard_profile import LABELS, PROFILES, indexed_profile, label_sets, per_query_ndcg, profiles_parser  # noqa: E402
from query_words import without_separators  # noqa: E402
from reindex import osmem  # noqa: E402
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.backends.cluster import cluster_retriever  # noqa: E402
from search_rerank.backends.tantivy_index import TantivyRetriever  # noqa: E402
from search_rerank.core.candidate import Candidate  # noqa: E402
from search_rerank.core.settings import LexicalSettings  # noqa: E402
from search_rerank.data.dataset import Query  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cluster_codes.json"
DEPTH = 100
Search = Callable[[str, int], list[Candidate]]


def run_of(search: Search, queries: dict[str, Query]) -> dict[str, list[tuple[str, float]]]:
    return {qid: [(c.product_id, c.score) for c in search(q.text, DEPTH)] for qid, q in queries.items()}


def compared(off: dict, on: dict, qrels: dict) -> dict[str, Any]:
    """Mean nDCG@10 off and on over the judged queries, and the paired test."""
    a, b = per_query_ndcg(off, qrels), per_query_ndcg(on, qrels)
    judged = sorted(a)
    before, after = [a[q] for q in judged], [b[q] for q in judged]
    return {
        "queries": len(judged),
        "off": sum(before) / max(len(before), 1),
        "on": sum(after) / max(len(after), 1),
        "paired": paired_test(before, after).to_json() if judged else None,
    }


def legs(url: str, catalog: Path, profile: str) -> dict[str, dict[str, Search]]:
    """Per leg, its search with ``model_codes`` off and on, each leg filled with ``catalog`` once."""
    embedded = TantivyRetriever(None, LexicalSettings())
    embedded.add(iter_catalog(catalog))
    embedded_off = TantivyRetriever(None, LexicalSettings(model_codes=False))
    embedded_off.add(iter_catalog(catalog))
    index = f"codes-{profile}-{uuid.uuid4().hex[:8]}"
    shipped = LexicalSettings(backend="opensearch", url=url, index=index, request_timeout_s=120)
    cluster = cluster_retriever(shipped)
    started = time.perf_counter()
    cluster.add(iter_catalog(catalog))
    print(f"{profile}: {cluster.count()} products on the cluster in {time.perf_counter() - started:.0f} s", flush=True)
    cluster_off = cluster_retriever(shipped.model_copy(update={"model_codes": False}))
    return {
        "embedded": {"off": embedded_off.search, "on": embedded.search},
        "cluster": {"off": cluster_off.search, "on": cluster.search},
    }


def run_profile(url: str, args: argparse.Namespace, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, _ = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    test_q, _ = sets["complete"].split("test")
    qrels = {label: sets[label].split("test")[1] for label in LABELS}
    models = {qid: q for qid, q in test_q.items() if q.meta.get("kind") == "model"}
    dropped = {qid: Query(qid, without_separators(q), q.meta) for qid, q in models.items()}
    dropped = {qid: q for qid, q in dropped.items() if q.text != models[qid].text}
    out: dict[str, Any] = {
        "products": products,
        "queries": queries,
        "examples": {models[q].text: dropped[q].text for q in sorted(dropped)[:3]},
    }
    for leg, searches in legs(url, data / "corpus.jsonl", profile).items():
        runs = {
            (name, setting): run_of(search, asked)
            for name, asked in (("dropped", dropped), ("as generated", models))
            for setting, search in searches.items()
        }
        out[leg] = {
            label: {
                name: compared(runs[(name, "off")], runs[(name, "on")], qrels[label])
                for name in ("dropped", "as generated")
            }
            for label in LABELS
        }
    return out


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 4000))
    ap.add_argument("--report-only", action="store_true", help="write the section from the results file")
    args = ap.parse_args()
    results = read_results(RESULTS)
    if not args.report_only:
        with osmem() as url:
            for profile, products, queries in zip(PROFILES, args.products, args.queries, strict=True):
                results[profile] = run_profile(url, args, profile, products, queries)
                if not args.no_write:
                    write_results(RESULTS, results)
    if not args.no_write:
        report(results)


def cell(figures: dict[str, Any]) -> str:
    p = figures["paired"]["p_value"] if figures["paired"] else None
    tested = f", p {p:.3g}" if p is not None else ""
    return f"{figures['off']:.3f} → {figures['on']:.3f}{tested} ({figures['queries']})"


def report(results: dict[str, Any]) -> None:
    rows = [
        [
            profile,
            label,
            leg,
            cell(results[profile][leg][label]["dropped"]),
            cell(results[profile][leg][label]["as generated"]),
        ]
        for profile in PROFILES
        if profile in results
        for label in LABELS
        for leg in ("embedded", "cluster")
    ]
    examples = "; ".join(
        f"“{typed}” → “{dropped}”"
        for profile in PROFILES
        if profile in results
        for typed, dropped in results[profile]["examples"].items()
    )
    body = f"""Results: `benchmarks/results/cluster_codes.json`. The BM25 leg alone, `lexical.model_codes` off → on, test
nDCG@10 of each generator profile's model queries (p: paired randomisation test; then the number of judged queries):
with the separators of their model numbers dropped as shoppers type them ({examples}), and as generated. The
embedded leg is tantivy (schema 5, the code field); the cluster leg is the OpenSearch backend on osmem-server with
the product mapping's version 4 (the `code.<field>` keywords), both filled with the same catalogue. osmem-server's
BM25 is not Lucene's to the digit: read each leg's off → on, not one leg against the other.

{table(["profile", "labels", "leg", "separators dropped", "as generated"], rows)}
"""
    write_section("cluster_codes", "Model numbers on the cluster", body)


if __name__ == "__main__":
    main()
