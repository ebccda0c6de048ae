"""Query words on the cluster backend: its BM25 leg with ``lexical.model_codes`` and ``lexical.correct_typos`` each
off and on, beside the embedded leg's.

Why: the embedded index finds a model number typed without its separators ("KB0123A" for "KB-0123A") through its
code field, and reads a misspelt word as the catalogue's nearest words from its term dictionary. The cluster's
product index holds the same codes since mapping version 4, and the cluster leg asks the cluster's term suggester
for a misspelt word's nearest terms (backends/cluster_query.py). This measures both legs on the same queries, so
the cluster's figures can be read against the embedded ones:

- ``model_codes``: the model queries of each generator profile's test split with the separators of their model
  numbers dropped as shoppers type them (``benchmarks/query_words.py``'s ``without_separators``), and as generated
  (what worked still does);
- ``correct_typos``: the misspelt queries (one typo in the longest word), and every test query (the rest left
  alone), with the share of queries that ask the cluster before searching (a word that no English word is) and
  the cluster leg's time per query off and on (alternating rounds: a ratio measured in one run).

The cluster is osmem-server (an in-memory OpenSearch-compatible server, a dev dependency) through the OpenSearch
backend: its BM25 is not Lucene's to the digit, so compare each leg's off and on, not the legs with each other.

Writes benchmarks/results/cluster_query_words.json and the "Query words on the cluster" section of
docs/BENCHMARKS.md.

    python benchmarks/cluster_query_words.py --products 3000 8000 --queries 1000 4000

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
from search_rerank.backends.spelling import suspect  # noqa: E402
from search_rerank.backends.tantivy_index import TantivyRetriever, typed_words_analyzer  # noqa: E402
from search_rerank.core.candidate import Candidate  # noqa: E402
from search_rerank.core.settings import LexicalSettings  # noqa: E402
from search_rerank.data.dataset import Query  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "cluster_query_words.json"
DEPTH = 100
SETTINGS = ("model_codes", "correct_typos")
ROUNDS = 2
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


def legs(url: str, catalog: Path, profile: str) -> tuple[dict[str, dict[str, Search]], LexicalSettings]:
    """Per leg, its search with the shipped settings ("on") and with each of :data:`SETTINGS` off, each leg's
    index filled with ``catalog`` once; and the cluster leg's shipped settings."""
    index = f"words-{profile}-{uuid.uuid4().hex[:8]}"
    shipped = LexicalSettings(backend="opensearch", url=url, index=index, request_timeout_s=120)
    cluster = cluster_retriever(shipped)
    started = time.perf_counter()
    cluster.add(iter_catalog(catalog))
    print(f"{profile}: {cluster.count()} products on the cluster in {time.perf_counter() - started:.0f} s", flush=True)
    out: dict[str, dict[str, Search]] = {"embedded": {}, "cluster": {"on": cluster.search}}
    embedded = TantivyRetriever(None, LexicalSettings())
    embedded.add(iter_catalog(catalog))
    out["embedded"]["on"] = embedded.search
    for setting in SETTINGS:
        off = TantivyRetriever(None, LexicalSettings(**{setting: False}))
        off.add(iter_catalog(catalog))
        out["embedded"][setting] = off.search
        out["cluster"][setting] = cluster_retriever(shipped.model_copy(update={setting: False})).search
    return out, shipped


def query_sets(test_q: dict[str, Query]) -> dict[str, dict[str, dict[str, Query]]]:
    """Per setting, the query sets it is measured on (see the module docstring)."""
    models = {qid: q for qid, q in test_q.items() if q.meta.get("kind") == "model"}
    dropped = {qid: Query(qid, without_separators(q), q.meta) for qid, q in models.items()}
    return {
        "model_codes": {
            "separators dropped": {qid: q for qid, q in dropped.items() if q.text != models[qid].text},
            "as generated": models,
        },
        "correct_typos": {
            "misspelt": {qid: q for qid, q in test_q.items() if q.meta.get("kind") == "misspelt"},
            "all": test_q,
        },
    }


def timed(shipped: LexicalSettings, texts: list[str]) -> dict[str, list[float]]:
    """Milliseconds per query of the cluster leg with ``correct_typos`` off and on, each round by round, in
    alternating rounds (the machine is shared), each leg new: on, its first round asks about every word no English
    word is, and its later ones only about those it has not been told of (``WORD_FACTS_TTL_S``)."""
    searches = {
        "off": cluster_retriever(shipped.model_copy(update={"correct_typos": False})).search,
        "on": cluster_retriever(shipped).search,
    }
    spent: dict[str, list[float]] = {name: [] for name in searches}
    for _ in range(ROUNDS):
        for name, search in searches.items():
            started = time.perf_counter()
            for text in texts:
                search(text, DEPTH)
            spent[name].append(1000 * (time.perf_counter() - started) / len(texts))
    return spent


def run_profile(url: str, args: argparse.Namespace, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, _ = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    test_q, _ = sets["complete"].split("test")
    qrels = {label: sets[label].split("test")[1] for label in LABELS}
    asked = query_sets(test_q)
    typed = typed_words_analyzer()
    out: dict[str, Any] = {
        "products": products,
        "queries": queries,
        "examples": {
            asked["model_codes"]["as generated"][q].text: asked["model_codes"]["separators dropped"][q].text
            for q in sorted(asked["model_codes"]["separators dropped"])[:3]
        },
        "asking the cluster": sum(any(suspect(w) for w in typed.analyze(q.text)) for q in test_q.values())
        / len(test_q),
    }
    searched, shipped = legs(url, data / "corpus.jsonl", profile)
    for leg, searches in searched.items():
        out[leg] = {setting: {label: {} for label in LABELS} for setting in SETTINGS}
        for setting, named in asked.items():
            for name, queries_ in named.items():
                off, on = run_of(searches[setting], queries_), run_of(searches["on"], queries_)
                for label in LABELS:
                    out[leg][setting][label][name] = compared(off, on, qrels[label])
    out["cluster ms per query"] = timed(shipped, [q.text for q in test_q.values()])
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


def cost_of(figures: dict[str, Any]) -> str:
    """The cluster leg's time per query off and on, on the first round (every word asked) and the second (the
    words remembered), as ratios of the same round off."""
    off, on = figures["cluster ms per query"]["off"], figures["cluster ms per query"]["on"]
    return (
        f"{100 * figures['asking the cluster']:.0f}% of the test queries have a word to ask about; "
        f"first round {off[0]:.1f} → {on[0]:.1f} ms per query (×{on[0] / off[0]:.2f}), "
        f"second {off[1]:.1f} → {on[1]:.1f} ms (×{on[1] / off[1]:.2f})"
    )


def report(results: dict[str, Any]) -> None:
    shown = [profile for profile in PROFILES if profile in results]
    rows = [
        [profile, label, leg, *(cell(results[profile][leg][setting][label][name]) for name in names)]
        for setting, names in (
            ("model_codes", ("separators dropped", "as generated")),
            ("correct_typos", ("misspelt", "all")),
        )
        for profile in shown
        for label in LABELS
        for leg in ("embedded", "cluster")
    ]
    half = len(rows) // 2
    examples = "; ".join(
        f"“{typed}” → “{dropped}”" for profile in shown for typed, dropped in results[profile]["examples"].items()
    )
    cost = "; ".join(f"{profile}: {cost_of(results[profile])}" for profile in shown)
    body = f"""Results: `benchmarks/results/cluster_query_words.json`. The BM25 leg alone, each setting off → on (the others
as shipped), test nDCG@10 of each generator profile's queries (p: paired randomisation test; then the number of
judged queries). The embedded leg is tantivy (schema 5); the cluster leg is the OpenSearch backend on osmem-server
with the product mapping's version 4, both filled with the same catalogue. osmem-server's BM25 is not Lucene's to
the digit: read each leg's off → on, not one leg against the other.

`lexical.model_codes`: the model queries with the separators of their model numbers dropped as shoppers type them
({examples}), and as generated.

{table(["profile", "labels", "leg", "separators dropped", "as generated"], rows[:half])}

`lexical.correct_typos`: the misspelt queries (one typo in the longest word), and all test queries. The embedded leg
reads a misspelt word from its term dictionary and also reads run-together and split words; before its search,
the cluster leg asks the cluster whether the index holds each word of letters that no English word is, and its term
suggester for the words it does not hold, remembering what it was told of each word for five minutes. Its cost
on the cluster leg (all test queries, osmem-server on this machine, {ROUNDS} alternating rounds, each leg new):
{cost}.

{table(["profile", "labels", "leg", "misspelt", "all"], rows[half:])}
"""
    write_section("cluster_query_words", "Query words on the cluster", body)


if __name__ == "__main__":
    main()
