"""A catalog's own fields (a date added, a stock level, a flag, a finish) filtered, sorted and faceted on the
embedded index: what typing them costs when a catalog is indexed, and what a search on one costs beside the same
search on a product field.

Why: the types are read from every value in a pass over the catalog before it is indexed
(``data.loaders.catalog_fields``), and each field is one more fast field of the index. This times the pass and
the build with and without the typed fields, and searches of the same shape on a product field (price) and on a
catalog field, each as a ratio measured in the same run (the machine is shared: read the ratios). It also counts,
for each filter, the products the search finds against those the catalog holds, so a wrong date or number
reading shows here.

The catalogue is synthetic and built here (no model; the dense leg off): ``--products`` products, each with
``created_at`` (a date in five years), ``stock`` (a whole number written as text, as a CSV holds it),
``in_stock`` and ``finish`` (one of six).

Writes benchmarks/results/catalog_fields.json and the "Catalog fields" section of docs/BENCHMARKS.md.

    python benchmarks/catalog_fields.py --products 20000
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import ROOT, answered, table, timed_pair, write_results, write_section  # noqa: E402

from search_rerank.core.catalog_fields import CatalogFields, parse_date  # noqa: E402
from search_rerank.core.settings import Settings  # noqa: E402
from search_rerank.data.loaders import catalog_fields, iter_catalog  # noqa: E402
from search_rerank.indexing.indexes import build_index, open_pipeline  # noqa: E402
from search_rerank.serving import create_app  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "catalog_fields.json"
FINISHES = ("oiled", "lacquered", "painted", "raw", "waxed", "stained")
START = datetime(2021, 1, 1, tzinfo=UTC)
SINCE = "2024-07-01"


def write_catalogue(path: Path, products: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = [
        {
            "id": f"p{i:06d}",
            "title": f"{rng.choice(FINISHES)} oak item {i % 97}",
            "brand": rng.choice(("Acme", "Bolt", "Cosy", "Dune")),
            "category": "Furniture > Tables",
            "price": round(rng.uniform(20, 900), 2),
            "created_at": (START + timedelta(minutes=rng.randrange(5 * 365 * 24 * 60))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "stock": str(rng.randrange(0, 50)),
            "in_stock": rng.random() < 0.8,
            "finish": rng.choice(FINISHES),
        }
        for i in range(products)
    ]
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return records


def built(catalog: Path, root: Path, fields: CatalogFields) -> tuple[Any, float]:
    settings = Settings(index_dir=root, dense={"enabled": False})
    started = time.perf_counter()
    build_index(iter_catalog(catalog), settings, progress=False, catalog=fields)
    seconds = time.perf_counter() - started
    pipeline = open_pipeline(settings)
    return create_app(settings, pipeline).test_client(), seconds


def built_twice(catalog: Path, work: Path, fields: CatalogFields) -> tuple[Any, float, float]:
    """The app on the catalog's index with ``fields`` typed, and the faster of two builds without them and with
    them, built in turn (the first build of a process also pays for its imports and caches)."""
    plain_s, typed_s, client = [], [], None
    for attempt in range(2):
        plain_s.append(built(catalog, work / f"plain{attempt}", CatalogFields())[1])
        client, seconds = built(catalog, work / f"typed{attempt}", fields)
        typed_s.append(seconds)
    return client, min(plain_s), min(typed_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--products", type=int, default=20_000)
    ap.add_argument("--repeats", type=int, default=15)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp())
    catalog = work / "catalog.jsonl"
    records = write_catalogue(catalog, args.products, args.seed)
    started = time.perf_counter()
    fields = catalog_fields(catalog)
    pass_s = time.perf_counter() - started
    typed, plain_s, typed_s = built_twice(catalog, work, fields)

    since = parse_date(SINCE) or 0
    recent = sum(1 for r in records if (parse_date(r["created_at"]) or 0) >= since)
    # The price above which as many products lie as were added since SINCE: the two filters keep as many.
    threshold = sorted(r["price"] for r in records)[len(records) - recent]
    words = {"multi_match": {"query": "oak", "fields": ["title"]}}
    pairs = {
        "filter": (
            {"query": {"bool": {"must": [words], "filter": [{"range": {"price": {"gte": threshold}}}]}}},
            {"query": {"bool": {"must": [words], "filter": [{"range": {"created_at": {"gte": SINCE}}}]}}},
        ),
        "sort": (
            {"query": {"match_all": {}}, "sort": [{"price": "desc"}]},
            {"query": {"match_all": {}}, "sort": [{"created_at": "desc"}]},
        ),
        "facet": (
            {"size": 0, "aggs": {"f": {"terms": {"field": "brand.keyword"}}}},
            {"size": 0, "aggs": {"f": {"terms": {"field": "finish"}}}},
        ),
        "histogram": (
            {"size": 0, "aggs": {"f": {"histogram": {"field": "price", "interval": 50}}}},
            {"size": 0, "aggs": {"f": {"date_histogram": {"field": "created_at", "calendar_interval": "month"}}}},
        ),
    }
    timed_pair(typed, *pairs["filter"], 2)  # warm the searcher
    rows, figures = [], {}
    for name, (product_body, catalog_body) in pairs.items():
        product_ms, catalog_ms = timed_pair(typed, product_body, catalog_body, args.repeats)
        figures[name] = {
            "product_field_ms": round(product_ms, 2),
            "catalog_field_ms": round(catalog_ms, 2),
            "ratio": round(catalog_ms / product_ms, 2),
        }
        rows.append([name, f"{product_ms:.1f}", f"{catalog_ms:.1f}", f"{catalog_ms / product_ms:.2f}"])
        if name == "filter":  # every match counted: a search without words
            only = {"size": 0, "track_total_hits": True, "query": catalog_body["query"]["bool"]["filter"][0]}
            counted = answered(typed, only)[1]["hits"]["total"]["value"]
            figures[name].update(found=counted, catalog_holds=recent)
        if name == "histogram":
            buckets = answered(typed, catalog_body)[1]["aggregations"]["f"]["buckets"]
            figures[name].update(months=len(buckets), products_counted=sum(b["doc_count"] for b in buckets))
    checks = {
        "stock_read_as": fields.type_of("stock"),
        "created_at_read_as": fields.type_of("created_at"),
        "in_stock_read_as": fields.type_of("in_stock"),
        "finish_read_as": fields.type_of("finish"),
    }
    results = {
        "products": args.products,
        "repeats": args.repeats,
        "types_pass_s": round(pass_s, 2),
        "build_s_without_typed_fields": round(plain_s, 2),
        "build_s_with_typed_fields": round(typed_s, 2),
        "pass_to_build_ratio": round(pass_s / typed_s, 2),
        "build_ratio_with_to_without": round(typed_s / plain_s, 2),
        **checks,
        "searches": figures,
    }
    write_results(RESULTS, results)
    body = f"""
A synthetic catalogue of {args.products:,} products with four fields of its own (`created_at`, a date in five
years; `stock`, a whole number written as text; `in_stock`; `finish`, one of six), indexed on the embedded
backend without the dense leg. Read as: `stock` {checks["stock_read_as"]}, `created_at` {checks["created_at_read_as"]},
`in_stock` {checks["in_stock_read_as"]}, `finish` {checks["finish_read_as"]}.

Indexing: the pass that reads the types took {pass_s:.1f} s, {pass_s / typed_s:.2f} of the build after it
({typed_s:.1f} s); the build with the four typed fields took {typed_s / plain_s:.2f} times the build without them
({plain_s:.1f} s); each build the faster of two, built in turn, on a shared machine.

Searches of one shape on a product field and on a catalog field (the filters keep as many products: `price` from
the price above which as many lie as were added since {SINCE}), asked in turn {args.repeats} times each through
the service's Elasticsearch endpoint (median), as a ratio in the same run (the milliseconds are this run's):

{table(["search", "product field, ms", "catalog field, ms", "ratio"], rows)}

The date filter alone (`created_at` from {SINCE}) matched {figures["filter"]["found"]:,} products; the catalogue holds
{figures["filter"]["catalog_holds"]:,} from that date. The monthly histogram counted
{figures["histogram"]["products_counted"]:,} products in {figures["histogram"]["months"]} months.
"""
    write_section("catalog-fields", "Catalog fields: typing them and searching on them", body)
    print(body)


if __name__ == "__main__":
    main()
