"""Rerank latency on CPU: pre-tokenised product texts against tokenising per request, and the result cache's hit rate.

Issue 14, items 1 and 3. All figures come from one run, so the ratios compare
like with like on a shared, noisy machine:

* ``pretokenised_w100_speedup``: the rerank stage at a window of 100, p50 of
  tokenising every pair per request over p50 of tokenising only the query and
  assembling the pairs from the ids stored at index time; the two run
  alternately on the same queries and candidates. The tokenisation part alone
  (the tokenizer's pair call against the assembly) is reported beside it.
* ``cpu_minilm_w50_p50_ms`` / ``_p99_ms``: the rerank stage at a window of 50
  as served (pre-tokenised). The reranker is the packaged MiniLM-L6 body with
  an **untrained, randomly initialised one-logit head**: the cost of a
  cross-encoder does not depend on its weights, so this is the teacher's
  latency without training one first.
* ``cache_hit_rate``: 5,000 searches drawn from the generated query log by its
  ``frequency`` field (power-law), replayed through the result cache at its
  default size and TTL, with a simulated clock at ``--qps`` searches per second
  for one worker. ``cache_hit_rate_no_ttl`` is the same replay with no expiry.

    python benchmarks/rerank_latency.py --products 5000 --rerank-queries 10

Writes ``benchmarks/results/rerank_latency.json`` (merging into the keys other
scripts put there) and a section of docs/BENCHMARKS.md.
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

from generated import cached_dataset  # noqa: E402
from report import ROOT, table, write_section  # noqa: E402

from search_rerank.backends.encoder import resolve_model_path  # noqa: E402
from search_rerank.core.pretokenised import tokenise_texts  # noqa: E402
from search_rerank.core.rerank import CrossEncoderReranker  # noqa: E402
from search_rerank.core.settings import PACKAGED_MINILM, ServiceSettings, Settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig  # noqa: E402
from search_rerank.data.loaders import iter_catalog  # noqa: E402
from search_rerank.indexing.indexes import build_index, open_pipeline  # noqa: E402
from search_rerank.indexing.versions import IndexVersions  # noqa: E402
from search_rerank.serving.result_cache import ResultCache  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "rerank_latency.json"
MAX_LENGTH = 128  # tokens per pair, the length rerankers are trained at here


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def load_queries(data: Path) -> list[dict]:
    with (data / "queries.jsonl").open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def rerank_timings(settings: Settings, queries: list[str], n_queries: int) -> dict[str, float]:
    """Both rerank paths on the same windows, alternating which goes first, plus the tokenisation alone."""
    import torch

    pipeline = open_pipeline(settings)
    torch.manual_seed(0)
    pipeline.warm_up()
    served = pipeline.reranker
    if served.pairs is None:
        raise SystemExit("the index holds no pre-tokenised texts for this reranker; rebuild it")
    torch.manual_seed(0)
    plain = CrossEncoderReranker(settings.rerank)  # no stored ids: tokenises every pair
    plain.warm_up()
    first_stage = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"model": None})})
    w100 = settings.rerank.model_copy(update={"window": 100})
    w50 = settings.rerank.model_copy(update={"window": 50})
    times: dict[str, list[float]] = {k: [] for k in ("plain100", "pre100", "tok100", "asm100", "pre50")}
    used = 0
    for n, query in enumerate(queries):
        ranking = pipeline.rank_from(pipeline.retrieve(query, None, first_stage), first_stage)
        candidates = ranking.candidates[:100]
        if len(candidates) < 100:
            continue
        products = pipeline.store.get([c.product_id for c in candidates])
        texts = {pid: p.embedding_text() for pid, p in products.items()}
        items = [(c.product_id, texts[c.product_id]) for c in candidates]
        runs = [
            ("plain100", lambda: plain.run(query, candidates, texts, w100)),
            ("pre100", lambda: served.run(query, candidates, texts, w100)),
        ]
        for name, fn in runs if n % 2 else runs[::-1]:
            times[name].append(timed(fn))
        times["tok100"].append(timed(lambda: plain.model.preprocess([(query, t) for _, t in items])))
        pairs = served.pairs
        times["asm100"].append(
            timed(lambda: pairs.features(tokenise_texts(pairs.tokenizer, [query])[0], pairs.stored(items)))
        )
        times["pre50"].append(timed(lambda: served.run(query, candidates, texts, w50)))
        used += 1
        print(f"{used}/{n_queries} {query!r}: " + ", ".join(f"{k} {v[-1]:.0f} ms" for k, v in times.items()))
        if used == n_queries:
            break
    pipeline.close()
    p50 = {k: percentile(v, 50) for k, v in times.items()}
    return {
        "rerank_queries": used,
        "rerank_max_length": MAX_LENGTH,
        "torch_threads": torch.get_num_threads(),
        "cpu_w100_tokenising_p50_ms": p50["plain100"],
        "cpu_w100_pretokenised_p50_ms": p50["pre100"],
        "pretokenised_w100_speedup": p50["plain100"] / p50["pre100"],
        "tokenise_w100_pairs_p50_ms": p50["tok100"],
        "assemble_w100_pairs_p50_ms": p50["asm100"],
        "tokenisation_w100_speedup": p50["tok100"] / p50["asm100"],
        # Not the teacher's keys: benchmarks/distilled_student.py times the trained teacher against its student.
        "cpu_minilm_w50_p50_ms": p50["pre50"],
        "cpu_minilm_w50_p99_ms": percentile(times["pre50"], 99),
    }


def cache_replay(settings: Settings, log: list[dict], searches: int, qps: float, seed: int) -> dict[str, float]:
    """Searches drawn by frequency through the result cache; the first stage only, since hits do not depend on it."""
    first_stage = settings.model_copy(update={"rerank": settings.rerank.model_copy(update={"model": None})})
    pipeline = open_pipeline(first_stage)
    frequency = np.array([q["frequency"] for q in log], dtype=np.float64)
    drawn = np.random.default_rng(seed).choice(len(log), size=searches, p=frequency / frequency.sum())
    defaults = ServiceSettings()
    rates = {}
    for name, ttl in (("cache_hit_rate", defaults.cache_ttl_s), ("cache_hit_rate_no_ttl", float("inf"))):
        now = [0.0]
        cache = ResultCache(defaults.cache_size, ttl, clock=lambda: now[0])
        hits = 0
        for i in drawn:
            result = cache.search(pipeline, log[i]["text"], None, 10, 0, first_stage)
            hits += "cache" in result.ranking.timings_ms
            now[0] += 1 / qps
        rates[name] = hits / searches
    pipeline.close()
    return {
        **rates,
        "cache_searches": searches,
        "cache_distinct_queries": len(set(drawn.tolist())),
        "cache_size": defaults.cache_size,
        "cache_ttl_s": defaults.cache_ttl_s,
        "cache_replay_qps": qps,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.strip().split("\n")[0])
    ap.add_argument("--products", type=int, default=5_000)
    ap.add_argument("--queries", type=int, default=3_000, help="the generated query log's size")
    ap.add_argument("--seed", type=int, default=13)
    ap.add_argument("--rerank-queries", type=int, default=10)
    ap.add_argument("--searches", type=int, default=5_000, help="searches replayed through the cache")
    ap.add_argument("--qps", type=float, default=10.0, help="simulated searches per second per worker")
    ap.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    ap.add_argument("--no-write", action="store_true", help="print, do not touch docs/BENCHMARKS.md")
    args = ap.parse_args()

    data = cached_dataset(args.work, GeneratorConfig(products=args.products, queries=args.queries, seed=args.seed))
    settings = Settings(
        index_dir=args.work / f"idx-rerank-{data.name}",
        dense={"enabled": False},
        longtail={"enabled": False},
        rerank={
            "model": resolve_model_path(PACKAGED_MINILM),
            "require_card": False,
            "device": "cpu",
            "max_length": MAX_LENGTH,
            "batch_size": 32,
        },
    )
    if IndexVersions(settings.index_dir).serving_dir() is None:
        build_index(iter_catalog(data / "corpus.jsonl"), settings)
    log = load_queries(data)
    figures = {
        **rerank_timings(settings, [q["text"] for q in log if q["split"] == "test"], args.rerank_queries),
        **cache_replay(settings, log, args.searches, args.qps, args.seed),
        "products": args.products,
        "load_average_1m": os.getloadavg()[0],  # other jobs on a shared machine inflate the absolute times
    }
    print(json.dumps(figures, indent=2))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    merged = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    RESULTS.write_text(json.dumps({**merged, **figures}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    if args.no_write:
        return
    f = figures
    body = table(
        ["CPU, rerank stage", "p50 ms", "note"],
        [
            ["window 100, tokenising every pair", f["cpu_w100_tokenising_p50_ms"], ""],
            [
                "window 100, pre-tokenised",
                f["cpu_w100_pretokenised_p50_ms"],
                f"speed-up x{f['pretokenised_w100_speedup']:.3f}",
            ],
            ["tokenising 100 pairs alone", f["tokenise_w100_pairs_p50_ms"], ""],
            [
                "assembling 100 pairs from stored ids (query tokenised)",
                f["assemble_w100_pairs_p50_ms"],
                f"x{f['tokenisation_w100_speedup']:.1f} faster",
            ],
            [
                "window 50, as served (MiniLM-L6 body, 128 tokens)",
                f["cpu_minilm_w50_p50_ms"],
                f"p99 {f['cpu_minilm_w50_p99_ms']:.0f} ms",
            ],
        ],
    )
    body += (
        f"\n\nMiniLM-L6 cross-encoder body with an untrained head (cost does not depend on the weights), "
        f"{MAX_LENGTH} tokens per pair, {f['rerank_queries']} test queries of the generated benchmark "
        f"({args.products} products), {f['torch_threads']} torch threads; both paths alternate on the same windows. Load average at the end: "
        f"{f['load_average_1m']:.1f} (other jobs inflate absolute times; the in-run ratios are what to read).\n\n"
        f"Result cache: {f['cache_searches']} searches drawn from the generated query log by frequency "
        f"({f['cache_distinct_queries']} distinct), default size {f['cache_size']} and TTL {f['cache_ttl_s']:g} s at "
        f"{f['cache_replay_qps']:g} searches/s per worker: **hit rate {f['cache_hit_rate']:.1%}** "
        f"({f['cache_hit_rate_no_ttl']:.1%} without expiry)."
    )
    write_section("rerank-latency-pretokenised-cache", "Rerank latency: pre-tokenised texts and the result cache", body)


if __name__ == "__main__":
    main()
