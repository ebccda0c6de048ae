"""Personalisation latency (issue 16): how long an event takes to reach the profiles, what the stage adds to a search.

On a generated catalogue with the packaged MiniLM dense leg and the SQLite profile store (the default), in
one process:

* ``profile_update_ms_p99``: one UBI event (a click, add to cart or purchase, drawn 6:3:1, by one of
  ``--shoppers`` shoppers with a session each) applied as ``POST /ubi/events`` applies it: the product and
  its stored vector looked up from the index, then the store's transaction (user and session profile). This
  is the time between the event being accepted and the next search seeing it.
* ``stage_ms_p50``: the personalisation stage's own time in a search (``timings_ms.personal``) for warm
  shoppers, over ``--searches`` searches of the generated queries; ``profile_read_ms_p50`` is reading and
  mixing the shopper's session and long-term profiles before it, and ``added_ms_p50`` the two together per
  request (what a personalised search pays over an anonymous one, besides missing the result cache).

    python benchmarks/personalisation_latency.py --products 1000 --queries 50 --events 1000 --searches 200 --index-store

``--index-store`` also replays the events into the OpenSearch profile index store on an osmem-server started
for the run (``index_store_update_ms_p99``, ``index_store_read_ms_p50``).

Writes ``profile_update_ms_p99``, ``stage_ms_p50`` and the detail keys into
``benchmarks/results/personalisation.json`` (merging: the simulation benchmark writes the quality keys of the
same file) and the ``personalisation-latency`` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from generated import cached_dataset, cached_index  # noqa: E402
from report import ROOT, command, machine, table, write_section  # noqa: E402

from search_rerank.backends.profile_index import open_profile_store  # noqa: E402
from search_rerank.core.pipeline import SearchPipeline  # noqa: E402
from search_rerank.core.profile_store import (  # noqa: E402
    ProfileStore,
    ShopperAction,
    SQLiteProfileStore,
    profile_events,
    search_profile,
)
from search_rerank.core.retrieval import Stage  # noqa: E402
from search_rerank.core.settings import PersonalisationSettings, Settings  # noqa: E402
from search_rerank.data.generate import GeneratorConfig  # noqa: E402
from search_rerank.indexing.indexes import open_pipeline  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "personalisation.json"
ACTIONS = ("click", "add_to_cart", "purchase")
ACTION_ODDS = (0.6, 0.3, 0.1)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values), q))


def update_timings(
    store: ProfileStore, pipeline: SearchPipeline, stream: list[ShopperAction], personal: PersonalisationSettings
) -> list[float]:
    """Per event, ms from accepted to stored, as POST /ubi/events does it: look up product and vector, apply."""
    timings = []
    for act in stream:
        started = time.perf_counter()
        events = profile_events([act], pipeline.store.get([act.product_id]), pipeline.vectors_of([act.product_id]))
        store.apply(events, personal)
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def index_store_timings(
    pipeline: SearchPipeline, stream: list[ShopperAction], personal: PersonalisationSettings, shoppers: int
) -> dict[str, float]:
    """The same events and profile reads against the OpenSearch profile index (osmem-server on loopback)."""
    import osmem_server

    server = osmem_server.OsmemServer.start(japanese=False, addr="127.0.0.1:0", startup_timeout=30)
    try:
        settings = Settings(
            lexical={"backend": "opensearch", "url": server.url},
            personalisation={**personal.model_dump(), "store": "opensearch"},
        )
        store = open_profile_store(settings)
        updates = update_timings(store, pipeline, stream, personal)
        reads = []
        for i in range(200):
            started = time.perf_counter()
            search_profile(store, f"u{i % shoppers}", f"s{i % shoppers}", personal, time.time())
            reads.append((time.perf_counter() - started) * 1000)
        store.close()
    finally:
        server.close()
    return {
        "index_store_update_ms_p99": round(percentile(updates, 99), 3),
        "index_store_update_ms_p50": round(percentile(updates, 50), 3),
        "index_store_read_ms_p50": round(percentile(reads, 50), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--products", type=int, default=2000)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--shoppers", type=int, default=50)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--searches", type=int, default=200)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", type=Path, default=ROOT / "benchmarks" / "work")
    parser.add_argument(
        "--index-store",
        action="store_true",
        help="also time the OpenSearch profile index store, on an osmem-server started here",
    )
    parser.add_argument("--no-write", action="store_true", help="print the figures only")
    args = parser.parse_args()

    data = cached_dataset(args.work, GeneratorConfig(products=args.products, queries=args.queries, seed=args.seed))
    settings = Settings(index_dir=args.work / f"idx-personal-{args.products}-{args.seed}").offline()
    cached_index(data, settings)
    pipeline = open_pipeline(settings)
    pipeline.warm_up()
    personal = settings.personalisation
    rng = np.random.default_rng(args.seed)
    product_ids = [json.loads(line)["_id"] for line in (data / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line)["text"] for line in (data / "queries.jsonl").open(encoding="utf-8")]

    # Each shopper favours a few products (their taste), so profiles concentrate as real ones do.
    favourites = {s: rng.choice(product_ids, size=5, replace=False) for s in range(args.shoppers)}
    now = time.time()
    stream = []
    for i in range(args.events):
        shopper = int(rng.integers(args.shoppers))
        pid = str(rng.choice(favourites[shopper]) if rng.random() < 0.7 else rng.choice(product_ids))
        action = str(rng.choice(ACTIONS, p=ACTION_ODDS))
        at = now + i * 0.01
        stream.append(ShopperAction(f"u{shopper}", f"s{shopper}", pid, action, at, at))

    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteProfileStore(Path(tmp) / "profiles.sqlite3")
        update_ms = update_timings(store, pipeline, stream, personal)
        read_ms: list[float] = []
        stage_ms: list[float] = []
        added_ms: list[float] = []
        moved = 0
        for i in range(args.searches):
            shopper = i % args.shoppers
            query = queries[i % len(queries)]
            retrieved = pipeline.retrieve(query, None, settings)
            started = time.perf_counter()
            profile = search_profile(store, f"u{shopper}", f"s{shopper}", personal, time.time())
            read = (time.perf_counter() - started) * 1000
            ranking = pipeline.rank_from(retrieved, settings, profile)
            if Stage.PERSONAL not in ranking.timings_ms:
                continue  # a shopper still cold: nothing personalised to time
            read_ms.append(read)
            stage_ms.append(ranking.timings_ms[Stage.PERSONAL])
            added_ms.append(read + ranking.timings_ms[Stage.PERSONAL])
            before = [c.product_id for c in ranking.stages[Stage.LONGTAIL][:10]]
            moved += before != [c.product_id for c in ranking.candidates[:10]]
        store.close()
    index_figures = index_store_timings(pipeline, stream, personal, args.shoppers) if args.index_store else {}
    pipeline.close()

    figures = {
        "profile_update_ms_p99": round(percentile(update_ms, 99), 3),
        "profile_update_ms_p50": round(percentile(update_ms, 50), 3),
        "stage_ms_p50": round(percentile(stage_ms, 50), 3),
        "stage_ms_p99": round(percentile(stage_ms, 99), 3),
        "profile_read_ms_p50": round(percentile(read_ms, 50), 3),
        "added_ms_p50": round(percentile(added_ms, 50), 3),
        "personalised_searches": len(stage_ms),
        "top10_changed_share": round(moved / max(len(stage_ms), 1), 3),
        **index_figures,
    }
    print(json.dumps(figures, indent=2))
    if args.no_write:
        return
    merged = json.loads(RESULTS.read_text(encoding="utf-8")) if RESULTS.exists() else {}
    merged.update(figures)
    merged["latency"] = {"machine": machine(), "command": command(), "products": args.products}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(merged, indent=2) + "\n", encoding="utf-8")
    rows = [
        [
            "profile update (event to store), p50 / p99 ms",
            f"{figures['profile_update_ms_p50']:.2f} / {figures['profile_update_ms_p99']:.2f}",
        ],
        ["personalisation stage, p50 / p99 ms", f"{figures['stage_ms_p50']:.2f} / {figures['stage_ms_p99']:.2f}"],
        ["profile read and mix, p50 ms", f"{figures['profile_read_ms_p50']:.2f}"],
        ["added per personalised search, p50 ms", f"{figures['added_ms_p50']:.2f}"],
        ["searches whose top 10 the stage changed", f"{figures['top10_changed_share']:.0%}"],
    ]
    if index_figures:
        rows += [
            [
                "OpenSearch profile index (osmem-server, loopback): update p50 / p99 ms",
                f"{index_figures['index_store_update_ms_p50']:.2f} / {index_figures['index_store_update_ms_p99']:.2f}",
            ],
            ["OpenSearch profile index: profile read p50 ms", f"{index_figures['index_store_read_ms_p50']:.2f}"],
        ]
    write_section(
        "personalisation-latency",
        "Personalisation latency",
        f"{args.products} generated products, the packaged MiniLM dense leg, the SQLite profile store; "
        f"{args.events} events by {args.shoppers} shoppers, then {len(stage_ms)} searches by those shoppers "
        "with the default personalisation settings. An event is visible to the next search as soon as its "
        "update returns (`POST /ubi/events` answers after it).\n\n" + table(["what", "figure"], rows),
    )


if __name__ == "__main__":
    main()
