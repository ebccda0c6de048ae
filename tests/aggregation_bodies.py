"""Seeded aggregation requests and the catalogue they run on, for the differential test of the embedded backend's
aggregations against an Elasticsearch-compatible engine holding the same products (tests/service/test_aggregations.py).

``bodies(seed, n)`` draws ``n`` search bodies from what the service says it answers: terms (keyword, attribute and
numeric fields; size, order by count, key or a sub-aggregation's metric, missing, include/exclude), range (open
ends, decimal bounds, custom keys, keyed, overlapping), histogram (decimal intervals, min_doc_count,
extended_bounds, offset, keyed), the metrics on fields some products lack, filter, filters and global buckets,
sub-aggregations two levels deep, under a query (some matching nothing) and a post_filter. Left out are the
answers in which the reference engine (osmem-server) is known to differ from Elasticsearch: percentiles (it
sketches where Elasticsearch keeps every value below 2,000), min_doc_count with a size cut (it cuts before it
drops), filters' other_bucket and keyed: false (the embedded backend's 501, the reference's 400).
"""

from __future__ import annotations

import random
from typing import Any

from search_rerank.core.product import Product

KEYWORDS = ["brand.keyword", "attributes.color", "attributes.size", "facet.category.lvl1"]
NUMBERS = ["price", "rating", "sales"]
METRICS = ["min", "max", "avg", "sum", "value_count", "cardinality", "stats", "extended_stats"]
BRANDS = ["Acme", "Bolt", "Cosy", "Dune", "Elm"]
CATEGORIES = [("Furniture", "Sofas"), ("Furniture", "Tables"), ("Lighting", "Lamps"), ("Lighting",), ("Garden",)]
COLOURS = ["grey", "brown", "blue", "red", "black"]


def catalog(seed: int = 7, n: int = 60) -> list[Product]:
    """Products with repeated and missing values: a colour or two or none, a size or none, some without rating."""
    r = random.Random(seed)
    out = []
    for i in range(n):
        category = r.choice(CATEGORIES)
        attributes = {"color": r.sample(COLOURS, r.choice([0, 1, 1, 2]))} if r.random() < 0.9 else {}
        if r.random() < 0.5:
            attributes["size"] = [r.choice(["S", "M", "L"])]
        out.append(
            Product(
                id=f"p{i:02d}",
                title=f"{r.choice(['oak', 'glass', 'velvet'])} {category[-1].lower()}",
                brand=r.choice(BRANDS),
                category=category,
                attributes={k: v for k, v in attributes.items() if v},
                price=r.choice([round(r.uniform(5, 900), 2), float(r.randint(1, 9) * 100), 199.0]),
                rating=None if r.random() < 0.25 else round(r.uniform(1, 5), 1),
                sales=r.choice([0, r.randint(0, 300)]),
            )
        )
    return out


def reference_document(p: Product) -> dict[str, Any]:
    """A product as a shop's own index holds it, under the names the bodies use."""
    return {
        "title": p.title,
        "brand": p.brand,
        "attributes": {k: list(v) for k, v in p.attributes.items()},
        "facet": {"category": {"lvl1": p.category[0]}},
        "sales": p.sales,
        **({} if p.price is None else {"price": p.price}),
        **({} if p.rating is None else {"rating": p.rating}),
    }


REFERENCE_MAPPING = {
    "properties": {
        "title": {"type": "text"},
        "brand": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "attributes": {"properties": {"color": {"type": "keyword"}, "size": {"type": "keyword"}}},
        "facet": {"properties": {"category": {"properties": {"lvl1": {"type": "keyword"}}}}},
        "price": {"type": "double"},
        "rating": {"type": "double"},
        "sales": {"type": "long"},
    }
}


def bodies(seed: int, n: int) -> list[dict[str, Any]]:
    return [_body(random.Random(seed * 100_003 + i)) for i in range(n)]


def _body(r: random.Random) -> dict[str, Any]:
    body: dict[str, Any] = {"size": 0, "aggs": _level(r, 0, buckets=True)}
    query = _query(r)
    if query:
        body["query"] = query
    if r.random() < 0.2:
        body["post_filter"] = {"term": {"brand.keyword": r.choice(BRANDS)}}
    return body


def _query(r: random.Random) -> dict[str, Any] | None:
    return r.choice(
        [
            None,
            {"match": {"title": r.choice(["oak", "sofas", "lamps"])}},
            {"term": {"brand.keyword": r.choice(BRANDS)}},
            {"range": {"price": {"gte": r.choice([0, 50.5, 200]), "lt": r.choice([199, 500, 999.99])}}},
            {"bool": {"filter": [{"term": {"attributes.color": r.choice(COLOURS)}}]}},
            {"match_none": {}},
        ]
    )


def _level(r: random.Random, depth: int, buckets: bool) -> dict[str, Any]:
    """Aggregations at one level; ``buckets``: filter, filters and global among them (the embedded backend
    answers those only at the top and under one another, a 501 under a terms, range or histogram bucket)."""
    return {f"a{depth}{i}": _aggregation(r, depth, buckets) for i in range(r.randint(1, 3))}


def _aggregation(r: random.Random, depth: int, buckets: bool) -> dict[str, Any]:
    kind = r.choice(["terms", "terms", "range", "histogram", "metric", "metric"] + ["filter"] * buckets)
    if kind == "filter":
        return _filter(r, depth)
    if kind == "metric":
        metric = r.choice(METRICS)
        field = r.choice(NUMBERS + (KEYWORDS if metric in ("value_count", "cardinality") else []))
        spec: dict[str, Any] = {"field": field}
        if metric == "extended_stats" and r.random() < 0.5:
            spec["sigma"] = r.choice([1, 2.5])
        if metric in ("min", "max", "avg", "sum") and field in ("price", "rating") and r.random() < 0.2:
            spec["missing"] = r.choice([0, 2.5])
        return {metric: spec}
    out: dict[str, Any] = {kind: {"terms": _terms, "range": _range, "histogram": _histogram}[kind](r)}
    if kind == "terms" and isinstance(out["terms"].get("order"), dict) and "m" in out["terms"]["order"]:
        out["aggs"] = {"m": {r.choice(["avg", "max", "sum"]): {"field": r.choice(NUMBERS)}}}
    elif depth < 2 and r.random() < 0.35:
        out["aggs"] = _level(r, depth + 1, buckets=False)
    return out


def _terms(r: random.Random) -> dict[str, Any]:
    numeric = r.random() < 0.3
    spec: dict[str, Any] = {"field": r.choice(NUMBERS if numeric else KEYWORDS), "size": r.choice([1, 3, 10, 50])}
    spec["order"] = r.choice([{"_count": "desc"}, {"_count": "asc"}, {"_key": "asc"}, {"_key": "desc"}, {"m": "desc"}])
    if r.random() < 0.2:
        spec["missing"] = r.choice([0, 9.5]) if numeric else "N/A"
    if not numeric and spec["field"] != "attributes.color" and r.random() < 0.2:
        spec[r.choice(["include", "exclude"])] = r.choice([["Acme", "Bolt", "M"], "A.*|L.*"])
    return spec


def _range(r: random.Random) -> dict[str, Any]:
    field = r.choice(NUMBERS)
    bounds = {"price": [0, 49.99, 100, 199, 250.5, 500], "rating": [1, 2.5, 3, 4, 4.5], "sales": [0, 5, 50, 100]}
    ranges = []
    for i in range(r.randint(1, 4)):
        low, high = sorted(r.sample(bounds[field], 2))
        spec = {k: v for k, v in (("from", low), ("to", high)) if r.random() < 0.8}
        if r.random() < 0.2:
            spec["key"] = f"k{i}"
        ranges.append(spec)
    return {"field": field, "ranges": ranges, **({"keyed": True} if r.random() < 0.3 else {})}


def _histogram(r: random.Random) -> dict[str, Any]:
    field = r.choice(NUMBERS)
    interval = r.choice({"price": [100, 250, 99.5], "rating": [0.5, 1], "sales": [50, 25]}[field])
    spec: dict[str, Any] = {"field": field, "interval": interval}
    if r.random() < 0.2:
        spec["extended_bounds"] = {"min": 0, "max": interval * r.randint(1, 6)}
    if r.random() < 0.2:
        spec["offset"] = r.choice([0.5, 5])
    if r.random() < 0.2:
        spec["keyed"] = True
    return spec


def _filter(r: random.Random, depth: int) -> dict[str, Any]:
    kind = r.choice(["filter", "filters", "global"] if depth == 0 else ["filter", "filters"])
    if kind == "filter":
        out: dict[str, Any] = {"filter": _query(r) or {"match_all": {}}}
    elif kind == "global":
        out = {"global": {}}
    else:
        queries = [q for q in (_query(r) for _ in range(r.randint(1, 3))) if q] or [{"match_all": {}}]
        out = {"filters": {"filters": {f"f{i}": q for i, q in enumerate(queries)} if r.random() < 0.5 else queries}}
    if depth < 2:
        out["aggs"] = _level(r, depth + 1, buckets=True)
    return out
