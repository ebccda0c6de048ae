"""Spryker's facets over name/value pairs (a nested ``string-facet`` aggregation) on the embedded index: what they
cost beside one ordinary facet, by how many attribute names they count, and whether their counts are right.

Why: the service answers the nested aggregation as one filter and terms aggregation per attribute name the pairs
may name (serving/name_value_facets.py), at most ``service.max_pair_facet_names`` of them, those most products
hold. A catalogue with many attribute names makes each facet request that many aggregations; this times it
against a ``terms`` on the brand, each as a ratio in the same run (the machine is shared: read the ratios), for
several settings, and checks every name's and value's count against a count over the catalogue.

The catalogue is synthetic and built here (no model; the dense leg off): ``--products`` products, each with a
brand and 3 to 12 attributes whose names are drawn from ``--names`` names, a few common and many rare (a
power law), each with one of eight values.

Writes benchmarks/results/pair_facets.json and the "Facets over name/value pairs" section of docs/BENCHMARKS.md.

    python benchmarks/pair_facets.py --products 20000 --names 400
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import ROOT, answered, table, timed_pair, write_results, write_section  # noqa: E402

from search_rerank.core.product import Product  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.indexing.indexes import build_index, open_pipeline  # noqa: E402
from search_rerank.serving import create_app  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "pair_facets.json"
ALIASES = {"string-facet": "{facet-name}"}
BRANDS = ("Acme", "Bolt", "Cosy", "Dune", "Elm", "Fern")
CAPS = (25, 100, 200)
ACME = {"bool": {"filter": [{"term": {"brand.keyword": "Acme"}}]}}
SPRYKER = {
    "string-facet": {
        "nested": {"path": "string-facet"},
        "aggs": {
            "string-facet-name": {
                "terms": {"field": "string-facet.facet-name", "size": 100},
                "aggs": {"string-facet-value": {"terms": {"field": "string-facet.facet-value", "size": 10}}},
            }
        },
    }
}
BRAND_FACET = {"brand": {"terms": {"field": "brand.keyword", "size": 10}}}


def catalogue(products: int, names: int, seed: int) -> list[Product]:
    rng = random.Random(seed)
    weights = [1 / (rank + 1) for rank in range(names)]
    pool = [f"attr{rank:03d}" for rank in range(names)]
    out = []
    for i in range(products):
        chosen = set(rng.choices(pool, weights, k=rng.randint(3, 12)))
        attributes = {name: (f"v{rng.randrange(8)}",) for name in chosen}
        out.append(Product(id=f"p{i:06d}", title=f"oak item {i}", brand=rng.choice(BRANDS), attributes=attributes))
    return out


def wrong_counts(answer: dict[str, Any], matched: list[Product], counted_names: set[str]) -> int:
    """How many name or value counts differ from a count over ``matched`` (the names the answer may hold)."""
    names: Counter[str] = Counter()
    values: dict[str, Counter[str]] = {}
    for p in matched:
        for name, held in {"brand": (p.brand,), **p.attributes}.items():
            if name in counted_names:
                names[name] += 1
                values.setdefault(name, Counter()).update(held)
    wrong = 0
    for bucket in answer["string-facet"]["string-facet-name"]["buckets"]:
        name = bucket["key"]
        wrong += bucket["doc_count"] != names[name]
        expected = dict(values[name].most_common())
        wrong += sum(v["doc_count"] != expected.get(v["key"]) for v in bucket["string-facet-value"]["buckets"])
    return wrong


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--names", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    products = catalogue(args.products, args.names, args.seed)
    root = Path(tempfile.mkdtemp()) / "idx"
    base = Settings(index_dir=root, dense={"enabled": False})
    build_index(products, base, progress=False)
    held = Counter(name for p in products for name in p.attributes)
    acme = [p for p in products if p.brand == "Acme"]
    rows, figures = [], {}
    for cap in CAPS:
        settings = base.override(service={"field_aliases": ALIASES, "max_pair_facet_names": cap})
        pipeline = open_pipeline(settings)
        client = create_app(settings, pipeline).test_client()
        plain = {"query": ACME, "size": 0, "aggs": BRAND_FACET}
        pairs = {"query": ACME, "size": 0, "aggs": SPRYKER}
        timed_pair(client, plain, pairs, 2)  # warm the searcher and the attribute names
        plain_ms, pairs_ms = timed_pair(client, plain, pairs, args.repeats)
        answer = answered(client, pairs)[1]["aggregations"]
        counted = {"brand", *(name for name, _ in sorted(held.items(), key=lambda kv: (-kv[1], kv[0]))[:cap])}
        wrong = wrong_counts(answer, acme, counted)
        names_answered = len(answer["string-facet"]["string-facet-name"]["buckets"])
        figures[str(cap)] = {
            "brand_facet_ms": round(plain_ms, 2),
            "pair_facets_ms": round(pairs_ms, 2),
            "ratio": round(pairs_ms / plain_ms, 2),
            "names_answered": names_answered,
            "wrong_counts": wrong,
        }
        rows.append([str(cap), f"{plain_ms:.1f}", f"{pairs_ms:.1f}", f"{pairs_ms / plain_ms:.1f}", str(wrong)])
        pipeline.close()
    results = {
        "products": args.products,
        "attribute_names": args.names,
        "names_held": len(held),
        "matched": len(acme),
        "repeats": args.repeats,
        "by_max_pair_facet_names": figures,
    }
    write_results(RESULTS, results)
    body = f"""
A synthetic catalogue of {args.products:,} products, each with a brand and 3 to 12 attributes named from
{args.names} names (a power law: a few common, many rare; {len(held)} names held), on the embedded backend
without the dense leg. One brand's {len(acme):,} products are searched (a filter), with one `terms` facet on the
brand, and with Spryker's nested `string-facet` aggregation (names `size` 100, values `size` 10) answered from the
product's fields, for three settings of `service.max_pair_facet_names` (how many of the names most products hold
it counts); asked in turn {args.repeats} times each through the service's Elasticsearch endpoint (median), as a
ratio in the same run (the milliseconds are this run's). Every name's and value's count is checked against a
count over those products.

{table(["max_pair_facet_names", "brand facet, ms", "pair facets, ms", "ratio", "wrong counts"], rows)}
"""
    write_section("pair-facets", "Facets over name/value pairs (Spryker)", body)
    print(body)


if __name__ == "__main__":
    main()
