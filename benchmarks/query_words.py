"""Misspelt words, unit spellings and model numbers: the BM25 leg and the shipped hybrid with the lexical leg's query-word
settings off and on, both generator profiles, both label sets.

Why: the embedded BM25 leg reads a word neither the catalogue nor English has as the catalogue's nearest words
(``lexical.correct_typos``, backends/spelling.py) and a unit after a number as every spelling of it
(``lexical.unit_spellings``, backends/units.py) and a model number typed without its separators as the one written
with them (``lexical.model_codes``, backends/codes.py). This measures each on the test split where it acts and shows that
the rest is left alone:

- the generator's misspelt queries (one typo in the longest word), ``correct_typos`` off and on;
- the hard profile's unit queries with their units respelt as shoppers type them ("60 in." as "60 inch", "60in" or
  "60 inches"; "18V" as "18 volt"; "5-Gal." as "5 gallon"; seeded per query), ``unit_spellings`` off and on (the
  generator writes a unit query in the catalogue's own spelling, which no setting changes);
- the model queries with the separators of their model numbers dropped as shoppers type them ("KB-0123A" as
  "KB0123A"), ``model_codes`` off and on, and the model queries as generated, off and on (what worked still does);
- every other test query, and all of them, the three settings off against the shipped defaults.

The complete labels say what a shopper gets; the sparse pooled ones are pooled from a BM25 reading words as typed,
so a misspelt query's relevant products that only the corrected word finds are unjudged there, and count as
misses. Also the lexical leg's time per query (alternating rounds: a ratio measured in one run, the machine is
shared), over the test queries and over a larger catalogue (``--scale-products``), where a corrected word has more
terms to walk.

Writes benchmarks/results/query_words.json and the "Query words" section of docs/BENCHMARKS.md.

    python benchmarks/query_words.py --products 3000 8000 --queries 1000 4000 --scale-products 100000

Sizes are per profile (easy, hard); the generated data and indexes are the other benchmarks' caches.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_dataset  # noqa: E402
from hard_profile import (  # noqa: E402
    LABELS,
    PROFILES,
    fused_run,
    indexed_profile,
    label_sets,
    leg_run,
    profiles_parser,
)
from report import ROOT, read_results, table, write_results, write_section  # noqa: E402

from search_rerank.backends.tantivy_index import SCHEMA_VERSION, TantivyRetriever, opened_schema_version  # noqa: E402
from search_rerank.core.retrieval import LEXICAL  # noqa: E402
from search_rerank.core.settings import LexicalSettings, Settings  # noqa: E402
from search_rerank.data.dataset import Query  # noqa: E402
from search_rerank.data.generate import GeneratorConfig  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.evaluation.evaluate import JUDGED, relevance_metrics  # noqa: E402
from search_rerank.evaluation.significance import paired_test  # noqa: E402
from search_rerank.evaluation.tune import NDCG, RankingCache  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "query_words.json"
OFF = {"correct_typos": False, "unit_spellings": False, "model_codes": False}
TIMING_ROUNDS = 3
RESPELLINGS: dict[str, tuple[str, ...]] = {
    "in.": (" inch", " inches", "in", " in"),
    "ft.": (" foot", " feet", "ft", " ft"),
    "V": (" volt", "-volt", " volts"),
    "Gal.": (" gallon", " gal", "gal"),
    "qt.": (" quart", "qt"),
    "oz.": (" ounce", " ounces", "oz"),
    "Amp": (" amps", "a", " amp"),
    "Watt": (" watt", "w", " watts"),
    "mm": (" millimeter", "mm"),
}
"""How shoppers type each unit the hard profile's titles spell (the leading space: apart from the number)."""
WORD = re.compile(r"[^\W\d_]+")
CODE_RUN = re.compile(r"[0-9A-Za-z]+(?:[-./_][0-9A-Za-z]+)+")
SEPARATORS = re.compile(r"[-./_]")
CODE = re.compile(r"[A-Za-z].*\d|\d.*[A-Za-z]")
UNIT = re.compile(r"(\d+)[ -]?(" + "|".join(re.escape(u) for u in RESPELLINGS) + r")(?=\s|$)")


def respelt(query: Query) -> str:
    """``query``'s text with each unit after a number typed another way (seeded by the query id)."""
    rng = random.Random(query.id)
    return UNIT.sub(lambda m: m.group(1) + rng.choice(RESPELLINGS[m.group(2)]), query.text)


def without_separators(query: Query) -> str:
    """``query``'s text with the separators inside its model numbers dropped ("Kobalt KB-0123A" as "Kobalt
    KB0123A"): a run of letters and digits joined by ``-``, ``.``, ``/`` or ``_`` that holds both."""
    return CODE_RUN.sub(lambda m: SEPARATORS.sub("", m.group()) if CODE.search(m.group()) else m.group(), query.text)


def joined_queries(queries: dict[str, Query], catalog: Path) -> set[str]:
    """The queries with two neighbouring words of letters that some product writes as one word, in the singular or
    the plural ("lamp shade", "Lampshades"): read from the catalogue's own words here, not from the leg's code."""
    written: set[str] = set()
    for product in iter_catalog(catalog):
        text = " ".join((product.title, product.description, product.brand, *product.category))
        written.update(w.lower() for w in WORD.findall(text))

    def as_one(a: str, b: str) -> bool:
        joined = a + b
        singular = joined[:-1] if joined.endswith("s") else joined
        return bool(WORD.fullmatch(a) and WORD.fullmatch(b)) and bool({singular, singular + "s"} & written)

    words = {qid: [w.lower() for w in query.text.split()] for qid, query in queries.items()}
    return {qid for qid, ws in words.items() if any(as_one(a, b) for a, b in zip(ws, ws[1:], strict=False))}


def per_query_metrics(run: dict[str, list[tuple[str, float]]], qrels: dict) -> dict[str, dict[str, float]]:
    return relevance_metrics({qid: labels for qid, labels in qrels.items() if qid in run}, run)


def runs_for(settings: Settings, queries: dict[str, Query], qrels: dict) -> dict[str, dict]:
    """The BM25 leg's and the hybrid's runs under ``settings``."""
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    try:
        cache = RankingCache(pipeline, queries, qrels, depth=100, progress=True)
        return {"bm25": leg_run(cache, LEXICAL), "hybrid": fused_run(cache, settings)}
    finally:
        pipeline.close()


def paired(before: dict[str, dict], after: dict[str, dict], qrels: dict, qids: set[str]) -> dict[str, Any]:
    """Per ranking: mean nDCG@10 before and after over ``qids`` (those judged), the paired test, and the share of
    the top 10 that is judged at all (Judged@10) before and after: where it falls, the labels cannot see what
    the change brought up."""
    out: dict[str, Any] = {}
    for ranking in ("bm25", "hybrid"):
        a_all, b_all = (per_query_metrics(run[ranking], qrels) for run in (before, after))
        judged = sorted(q for q in a_all if q in qids)
        a, b = [a_all[q][NDCG] for q in judged], [b_all[q][NDCG] for q in judged]
        out[ranking] = {
            "queries": len(judged),
            "off": sum(a) / max(len(a), 1),
            "on": sum(b) / max(len(b), 1),
            "paired": paired_test(a, b).to_json() if judged else None,
            "judged_at_10": {
                name: sum(run[q][str(JUDGED)] for q in judged) / max(len(judged), 1)
                for name, run in (("off", a_all), ("on", b_all))
            },
        }
    return out


def run_profile(args: argparse.Namespace, profile: str, products: int, queries: int) -> dict[str, Any]:
    data, shipped = indexed_profile(args.work, profile, products, queries, args.seed)
    sets = label_sets(data, profile)
    test_q, complete = sets["complete"].split("test")
    qrels = {"complete": complete, "sparse": sets["sparse"].split("test")[1]}
    kind = {qid: q.meta.get("kind", "") for qid, q in test_q.items()}
    units = {qid: Query(qid, respelt(q), q.meta) for qid, q in test_q.items() if kind[qid] == "unit"}
    units = {qid: q for qid, q in units.items() if q.text != test_q[qid].text}
    models = {qid: q for qid, q in test_q.items() if kind[qid] == "model"}
    joined_models = {qid: Query(qid, without_separators(q), q.meta) for qid, q in models.items()}
    joined_models = {qid: q for qid, q in joined_models.items() if q.text != models[qid].text}
    off = shipped.override(lexical=OFF)
    runs = {
        "off": runs_for(off, test_q, complete),
        "shipped": runs_for(shipped, test_q, complete),
        "typos_off": runs_for(shipped.override(lexical={"correct_typos": False}), test_q, complete),
    }
    if units:
        runs["units_off_respelt"] = runs_for(shipped.override(lexical={"unit_spellings": False}), units, complete)
        runs["units_on_respelt"] = runs_for(shipped.override(lexical={"unit_spellings": True}), units, complete)
    codes_off = shipped.override(lexical={"model_codes": False})
    if models:
        runs["codes_off"] = runs_for(codes_off, models, complete)
    if joined_models:
        runs["codes_off_joined"] = runs_for(codes_off, joined_models, complete)
        runs["codes_on_joined"] = runs_for(shipped.override(lexical={"model_codes": True}), joined_models, complete)
    misspelt = {q for q in test_q if kind[q] == "misspelt"}
    joined = joined_queries(test_q, data / "corpus.jsonl")
    out: dict[str, Any] = {"products": products, "queries": queries, "respelt_examples": {}}
    for label in LABELS:
        comparisons = {
            "misspelt: correct_typos": paired(runs["typos_off"], runs["shipped"], qrels[label], misspelt),
            "joined: correct_typos": paired(runs["typos_off"], runs["shipped"], qrels[label], joined),
            "other: all off vs shipped": paired(runs["off"], runs["shipped"], qrels[label], set(test_q) - misspelt),
            "all: all off vs shipped": paired(runs["off"], runs["shipped"], qrels[label], set(test_q)),
        }
        if units:
            comparisons["unit, respelt: unit_spellings"] = paired(
                runs["units_off_respelt"], runs["units_on_respelt"], qrels[label], set(units)
            )
        if models:
            comparisons["model: model_codes"] = paired(runs["codes_off"], runs["shipped"], qrels[label], set(models))
        if joined_models:
            comparisons["model, separators dropped: model_codes"] = paired(
                runs["codes_off_joined"], runs["codes_on_joined"], qrels[label], set(joined_models)
            )
        out[label] = comparisons
    out["respelt_examples"] = {test_q[q].text: units[q].text for q in sorted(units)[:5]}
    out["separators_dropped_examples"] = {test_q[q].text: joined_models[q].text for q in sorted(joined_models)[:5]}
    out["joined_examples"] = sorted({test_q[q].text for q in joined})[:5]
    texts = [q.text for q in (*test_q.values(), *units.values(), *joined_models.values())]
    out["lexical_ms_per_query"] = {
        name: 1000 * s for name, s in lexical_seconds({"off": off, "shipped": shipped}, texts).items()
    }
    return out


def lexical_seconds(settings_by_name: dict[str, Settings], texts: list[str]) -> dict[str, float]:
    """Median seconds per query of the lexical leg alone, each setting in turn for ``TIMING_ROUNDS`` rounds."""
    pipelines = {name: open_pipeline(s) for name, s in settings_by_name.items()}
    per_round: dict[str, list[float]] = {name: [] for name in pipelines}
    try:
        for pipeline in pipelines.values():
            pipeline.warm_up()
        for _ in range(TIMING_ROUNDS):
            for name, pipeline in pipelines.items():
                leg = pipeline.legs[LEXICAL]
                start = time.perf_counter()
                for text in texts:
                    leg.search(text, 100)
                per_round[name].append((time.perf_counter() - start) / len(texts))
    finally:
        for pipeline in pipelines.values():
            pipeline.close()
    return {name: statistics.median(values) for name, values in per_round.items()}


def scale_timing(work: Path, products: int, queries: int, seed: int) -> dict[str, Any]:
    """The lexical leg alone over a larger generated catalogue (the easy profile: descriptions, so many terms
    per first letter to walk): median ms per misspelt query and per other query, the settings off and shipped,
    alternating rounds."""
    data = cached_dataset(work, GeneratorConfig(products=products, queries=queries, seed=seed))
    path = work / f"lexical-{data.name}"
    built = path / "built"
    if built.exists() and opened_schema_version(path, LexicalSettings()) != SCHEMA_VERSION:  # another schema's
        shutil.rmtree(path)
    if not built.exists():
        path.mkdir(parents=True, exist_ok=True)
        TantivyRetriever(path, LexicalSettings()).add(iter_catalog(data / "corpus.jsonl"))
        built.touch()
    legs = {"off": TantivyRetriever(path, LexicalSettings(**OFF)), "shipped": TantivyRetriever(path, LexicalSettings())}
    texts: dict[str, list[str]] = {"misspelt": [], "other": []}
    for line in (data / "queries.jsonl").read_text(encoding="utf-8").splitlines():
        query = json.loads(line)
        texts["misspelt" if query["kind"] == "misspelt" else "other"].append(query["text"])
    per_round: dict[str, dict[str, list[float]]] = {group: {name: [] for name in legs} for group in texts}
    for leg in legs.values():
        leg.warm_up()
    for _ in range(TIMING_ROUNDS):
        for group, group_texts in texts.items():
            for name, leg in legs.items():
                start = time.perf_counter()
                for text in group_texts:
                    leg.search(text, 100)
                per_round[group][name].append(1000 * (time.perf_counter() - start) / len(group_texts))
    return {
        "products": products,
        "queries": {group: len(group_texts) for group, group_texts in texts.items()},
        "ms_per_query": {
            group: {name: statistics.median(values) for name, values in rounds.items()}
            for group, rounds in per_round.items()
        },
    }


def main() -> None:
    ap = profiles_parser(__doc__, queries=(1000, 4000))
    ap.add_argument("--scale-products", type=int, default=100_000, help="catalogue of the lexical timing at scale")
    ap.add_argument("--report-only", action="store_true", help="write the section from the results file")
    args = ap.parse_args()
    if args.report_only:
        report(read_results(RESULTS))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    results = {
        profile: run_profile(args, profile, n, q)
        for profile, n, q in zip(PROFILES, args.products, args.queries, strict=True)
    }
    results["scale"] = scale_timing(args.work, args.scale_products, 2000, args.seed)
    print(json.dumps(results, indent=1))
    if args.no_write:
        return
    write_results(RESULTS, results)
    report(results)


def paired_table(results: dict[str, Any]) -> str:
    """Each profile's, label set's and ranking's figures before → after (:func:`paired`'s), a column per group of
    queries: ``results[profile][label][group][ranking]``."""

    def cell(figures: dict[str, Any]) -> str:
        if figures["paired"] is None:  # no judged query of the kind in the test split
            return "no query"
        p = figures["paired"]["p_value"]
        return f"{figures['off']:.3f} → {figures['on']:.3f} (p {p:.4f}, {figures['queries']:,})"

    groups = list(dict.fromkeys(g for p in PROFILES for label in LABELS for g in results[p][label]))
    rows = [
        [
            profile,
            label,
            ranking,
            *(cell(results[profile][label][g][ranking]) if g in results[profile][label] else "" for g in groups),
        ]
        for profile in PROFILES
        for label in LABELS
        for ranking in ("bm25", "hybrid")
    ]
    return table(["profile", "labels", "ranking", *groups], rows)


def report(results: dict[str, Any]) -> None:
    """The "Query words" section of docs/BENCHMARKS.md from the figures."""
    scale = results["scale"]
    scale_ms = "; ".join(
        f"{group} queries ({scale['queries'][group]:,}) {ms['off']:.1f} → {ms['shipped']:.1f} ms"
        for group, ms in scale["ms_per_query"].items()
    )

    timing = ", ".join(
        f"{p} {results[p]['lexical_ms_per_query']['off']:.1f} → {results[p]['lexical_ms_per_query']['shipped']:.1f} ms"
        for p in PROFILES
    )
    judged = "; ".join(
        f"{p} {j['off']:.2f} → {j['on']:.2f}"
        for p in PROFILES
        for j in [results[p]["sparse"]["misspelt: correct_typos"]["hybrid"].get("judged_at_10")]
        if j is not None
    )
    examples = "; ".join(f"“{a}” → “{b}”" for a, b in results["hard"]["respelt_examples"].items())
    dropped = "; ".join(
        f"“{a}” → “{b}”" for a, b in list(results["hard"].get("separators_dropped_examples", {}).items())[:3]
    )
    joined_examples = ", ".join(f"“{q}”" for p in PROFILES for q in results[p]["joined_examples"][:3])
    body = f"""The embedded BM25 leg's query words (docs/TUNING.md, "Misspelt words" and "Units"): `correct_typos`
reads a word that no searched field has and that is no English word as the index's terms at the fewest edits
(backends/spelling.py); `unit_spellings` searches a unit after a number as every spelling of it, and a number
glued to its unit as the number and the unit (backends/units.py); `model_codes` finds a model number typed without
its separators or with others (backends/codes.py); the first and the third on by default, the second off (below).
Test nDCG@10, before → after
(p: paired randomisation test; then the number of judged queries), for the BM25 leg and the shipped hybrid:

- `misspelt: correct_typos`: the generator's misspelt queries (one typo in the longest word), `correct_typos`
  off → on (`unit_spellings` on in both);
- `joined: correct_typos`: the test queries with two neighbouring words that some product writes as one (e.g.
  {joined_examples}), `correct_typos` off → on: the words are also searched as the joined word;
- `unit, respelt: unit_spellings`: the hard profile's unit queries with their units typed as shoppers type them
  (seeded per query; e.g. {examples}), `unit_spellings` off → on (`correct_typos` on in both); the generator
  writes a unit query in the catalogue's own spelling, and the easy profile has no unit queries;
- `model, separators dropped: model_codes`: the model queries whose model numbers have separators, typed without
  them (e.g. {dropped}), `model_codes` off → on; `model: model_codes`: the model queries as generated, off → on
  (what the words found before is still found);
- `other` and `all`: every other test query, and all of them, the three settings off → shipped (`correct_typos`
  and `model_codes` on, `unit_spellings` off).

Generated data: {", ".join(f"{p} {results[p]['products']:,} products, {results[p]['queries']:,} queries" for p in PROFILES)}.

{paired_table(results)}

The sparse labels are pooled from a BM25 that reads words as typed (the generator's judging pool, unchanged), so
on a misspelt query the products only the corrected word finds are mostly unjudged and count as misses there
(the share of the hybrid's top 10 that the sparse labels judge at all, misspelt queries, off → on: {judged}): the
complete labels say what a shopper gets. The lexical leg's median time per test query (the settings off →
shipped, {TIMING_ROUNDS} alternating rounds): {timing}. At scale, the lexical leg alone over a generated catalogue
of {scale["products"]:,} products with descriptions (easy profile, top 100, median of {TIMING_ROUNDS} alternating
rounds): {scale_ms}. A corrected word costs a walk of each searched field's terms that begin with its first letter.
"""
    write_section("query_words", "Query words: misspelt words, unit spellings and model numbers in the BM25 leg", body)


if __name__ == "__main__":
    main()
