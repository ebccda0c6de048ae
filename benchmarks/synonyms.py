"""A shop's synonym file on the embedded BM25 leg: the BM25 leg and the shipped hybrid without and with
``lexical.synonyms_file``, both generator profiles, both label sets.

Why: a shop on Elasticsearch keeps a synonym file, and the embedded leg now reads it as the cluster's search
analyzer does (backends/synonyms.py). The file here is the generator's own: each product type's names as one
equivalence rule ("sofa, couch, settee"), the vocabulary a shop knows of its catalogue, so it is the best file a
shop could write for this catalogue, not one tuned on its queries. It measures, on the test split:

- the generator's synonym queries (a type named by one of its other names: the gap BM25 alone cannot cross);
- every other test query, and all of them (a rule also reads the usual name as the others, and an accessory's
  name holds its type's: "sofa slipcover").

Also the lexical leg's median time per test query, without and with the file (alternating rounds: a ratio
measured in one run, the machine is shared).

Writes benchmarks/results/synonyms.json and the "Synonyms" section of docs/BENCHMARKS.md.

    python benchmarks/synonyms.py --products 3000 8000 --queries 1000 4000

Sizes are per profile (easy, hard); the generated data and indexes are the other benchmarks' caches.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hard_profile import LABELS, PROFILES, indexed_profile, label_sets, profiles_parser  # noqa: E402
from query_words import TIMING_ROUNDS, lexical_seconds, paired, paired_table, runs_for  # noqa: E402
from report import ROOT, read_results, write_results, write_section  # noqa: E402

from search_rerank.data.taxonomy import TYPES  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "synonyms.json"


def write_rules(path: Path) -> int:
    """The generator's names of each product type as one equivalence rule a line; the number of rules."""
    rules = [", ".join(t.names) for t in TYPES if len(t.names) > 1]
    path.write_text("# each product type's names (search_rerank/data/taxonomy.py)\n" + "\n".join(rules) + "\n")
    return len(rules)


def run_profile(args: Any, profile: str, products: int, queries: int, rules: Path) -> dict[str, Any]:
    data, shipped = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    test_q, complete = sets["complete"].split("test")
    qrels = {"complete": complete, "sparse": sets["sparse"].split("test")[1]}
    synonym = {qid for qid, q in test_q.items() if q.meta.get("kind") == "synonym"}
    with_rules = shipped.override(lexical={"synonyms_file": str(rules)})
    runs = {"off": runs_for(shipped, test_q, complete), "on": runs_for(with_rules, test_q, complete)}
    out: dict[str, Any] = {"products": products, "queries": queries, "synonym_queries": len(synonym)}
    for label in LABELS:
        groups = {"other": set(test_q) - synonym, "all": set(test_q)}
        if synonym:
            groups = {"synonym": synonym, **groups}
        out[label] = {name: paired(runs["off"], runs["on"], qrels[label], qids) for name, qids in groups.items()}
    texts = [q.text for q in test_q.values()]
    seconds = lexical_seconds({"off": shipped, "on": with_rules}, texts)
    out["lexical_ms_per_query"] = {name: 1000 * s for name, s in seconds.items()}
    return out


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 4000))
    ap.add_argument("--report-only", action="store_true", help="write the section from the results file")
    args = ap.parse_args()
    if args.report_only:
        report(read_results(RESULTS))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    rules = args.work / "synonyms.txt"
    results: dict[str, Any] = {"rules": write_rules(rules)}
    results.update(
        {
            profile: run_profile(args, profile, n, q, rules)
            for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
        }
    )
    if args.no_write:
        print(results)
        return
    write_results(RESULTS, results)
    report(results)


def report(results: dict[str, Any]) -> None:
    """The "Synonyms" section of docs/BENCHMARKS.md from the figures."""

    timing = ", ".join(
        f"{p} {results[p]['lexical_ms_per_query']['off']:.2f} → {results[p]['lexical_ms_per_query']['on']:.2f} ms"
        for p in PROFILES
    )
    sizes = ", ".join(
        f"{p} {results[p]['products']:,} products, {results[p]['queries']:,} queries "
        f"({results[p]['synonym_queries']:,} synonym queries in test)"
        for p in PROFILES
    )
    judged = "; ".join(
        f"{p} {j['off']:.2f} → {j['on']:.2f}"
        for p in PROFILES
        for j in [results[p]["sparse"]["all"]["hybrid"]["judged_at_10"]]
    )
    body = f"""`lexical.synonyms_file` on the embedded leg (docs/TUNING.md, "Synonyms"): the same Solr-format file a
cluster's index is created with, read by the embedded BM25 leg at search time (backends/synonyms.py). The file here
is the generator's own vocabulary: each product type's names as one rule ({results["rules"]} rules, e.g. "sofa,
couch, settee"), the best file a shop could write for this catalogue. Test nDCG@10, without → with the file (p:
paired randomisation test; then the number of judged queries), for the BM25 leg and the shipped hybrid; `synonym`:
the generator's queries that name a type by another of its names.

Generated data: {sizes}.

{paired_table(results)}

The sparse labels are pooled from a BM25 that reads the words as typed (the generator's judging pool), so the
products only a rule finds are mostly unjudged there and count as misses (the share of the hybrid's top 10 that
the sparse labels judge at all, every test query, without → with the file: {judged}); the complete labels say
what a shopper gets.

The lexical leg's median time per test query, without → with the file (median of {TIMING_ROUNDS} alternating
rounds): {timing}.
"""
    write_section("synonyms", "Synonyms: a shop's synonym file on the embedded BM25 leg", body)


if __name__ == "__main__":
    main()
