"""The compatibility suite: request bodies in the shapes real front ends send, run against the service.

Each ``bodies/*.json`` holds one request taken from a front-end library's own source or tests: ``source``
names the repository and file (and test) it comes from, ``library`` and ``feature`` say what it exercises,
and either ``body`` (a ``POST /products/_search``), ``msearch`` (the header and body lines of a
``POST /_msearch``) or ``reactivesearch`` (a ReactiveSearch 4 request, posted to its ``path``,
``/products/_reactivesearch``: its searches are the queries it executes, as the service translates them).
Field names and values are this catalog's (``title``, ``brand.keyword``, ``price``...) where the original used
its own demo index's (``imdb_movies``, ``category.keyword: electronics``); the shape is the library's.
``expect`` holds what Elasticsearch would answer on CATALOG (one per search of a multi-search or a
ReactiveSearch request, in order), checked by :func:`judge`: ``total``, ``ids`` (in order), ``first`` (the ids the
hits begin with, in order: pinned ones), ``ids_within``,
``buckets`` (an aggregation path onto ``{key: doc_count}``), ``highlight`` (a text some hit's highlight must
contain) and ``source_fields`` (fields every hit's ``_source`` must hold, as the page reads them).

Used by tests/compat/test_bodies.py and benchmarks/compat.py, on the embedded (tantivy) backend and on the
OpenSearch backend over osmem-server, both with the dense leg off: the suite tests the Query DSL, and a
dense leg would add its own (correct, but not Elasticsearch's) hits to every text query.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from front_end_catalog import CATALOG

from search_rerank.backends.cluster import OpenSearchRetriever
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.retrieval import LEXICAL
from search_rerank.core.settings import LexicalSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import build_index, open_pipeline
from search_rerank.serving import create_app
from search_rerank.serving.reactivesearch import translate

BODIES = Path(__file__).with_name("bodies")
BACKENDS = ("embedded", "opensearch")
ANSWERED, UNSUPPORTED, WRONG, SERVER_ERROR = "answered", "unsupported_501", "wrong", "server_errors"
# Front ends configured for a typical Elasticsearch product index name their fields like this; Chorus' demo shop
# (supplier, name, short_description) and Spryker's page index (full-text, *-sort.*) name them their own way.
FIELD_ALIASES = {
    "color.keyword": "attributes.color",
    "color": "attributes.color",
    "supplier": "brand",
    "name": "title",
    "title_suggest": "title",  # Search UI's autocomplete suggestions: a completion field in its documentation
    "short_description": "description",
    "full-text": "description",
    "full-text-boosted": "title",
    "integer-sort.price": "price",
    "string-sort.name": "title.keyword",
    "string-facet": "{facet-name}",
    "integer-facet": "{facet-name}",
    # Magento's index: a catch-all text field, the price per customer group and website, ids of categories.
    "_search": "title",
    "price_0_1": "price",
    "manufacturer": "brand.keyword",
    "category_ids": "category.keyword",
    # Fields the product does not have (Chorus' codes, Spryker's activity window), and Spryker's one-store context.
    **dict.fromkeys(("id", "ean", "product_type", "search_attributes", "active-from", "active-to", "sku"), ""),
    # ElasticPress's every WP_Query: published products.
    "post_type.raw": "=product",
    "post_status": "=publish",
    "visibility": "=4",
    "store": "=DE",
    "locale": "=de_DE",
    "is-active": "=true",
}


@dataclass(frozen=True)
class Case:
    name: str
    spec: dict[str, Any]

    @property
    def source(self) -> str:
        return self.spec["source"]


def cases() -> list[Case]:
    return [Case(path.stem, json.loads(path.read_text(encoding="utf-8"))) for path in sorted(BODIES.glob("*.json"))]


def embedded_app(
    root: Path,
    catalog: Sequence[Product] = CATALOG,
    aliases: Mapping[str, str] = FIELD_ALIASES,
    lexical: Mapping[str, Any] | None = None,
):
    """The app on the embedded backend (tantivy), lexical leg only, over ``catalog``, with ``lexical`` settings;
    and its pipeline."""
    settings = Settings(
        index_dir=root / "idx",
        dense={"enabled": False},
        lexical=dict(lexical or {}),
        service={"field_aliases": dict(aliases)},
    )
    build_index(catalog, settings, progress=False)
    pipeline = open_pipeline(settings)
    return create_app(settings, pipeline), pipeline


@contextmanager
def opensearch_app(
    root: Path,
    url: str,
    catalog: Sequence[Product] = CATALOG,
    aliases: Mapping[str, str] = FIELD_ALIASES,
    **sections: Any,
) -> Iterator[Any]:
    """The app on the OpenSearch backend, lexical leg only: ``catalog`` in a fresh index on the server at ``url``,
    deleted after; ``sections`` override settings sections (``lexical={"candidates": 8}``)."""
    lexical = LexicalSettings(
        backend="opensearch",
        url=url,
        index=f"compat-{uuid.uuid4().hex[:12]}",
        request_timeout_s=10,
        retries=1,
        **sections.pop("lexical", {}),
    )
    retriever = OpenSearchRetriever(lexical)
    retriever.add(catalog)
    store = ProductStore(root / "products.sqlite")
    store.add(catalog)
    store.refresh_popularity()
    settings = Settings(
        index_dir=root / "unused",
        lexical=lexical,
        dense={"enabled": False},
        service={"field_aliases": dict(aliases)},
        **sections,
    )
    try:
        yield create_app(settings, SearchPipeline(settings, {LEXICAL: retriever}, store))
    finally:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)


# A shop's own Elasticsearch index for CATALOG, mapped as front ends expect (text with .keyword sub-fields):
# the reference that the service's answers are compared with (benchmarks/compat.py).
REFERENCE_MAPPING = {
    "properties": {
        "title": {"type": "text"},
        "description": {"type": "text"},
        **{
            name: {"type": "text", "fields": {"keyword": {"type": "keyword"}}}
            for name in ("brand", "category", "color")
        },
        "price": {"type": "double"},
        "rating": {"type": "float"},
        "created_at": {"type": "date"},
        # The same catalog under Chorus' and Spryker's field names, for their bodies.
        "supplier": {"type": "keyword"},
        **{name: {"type": "text"} for name in ("name", "short_description", "full-text", "full-text-boosted")},
        **{
            nested: {"type": "nested", "properties": {"facet-name": {"type": "keyword"}, "facet-value": {"type": kind}}}
            for nested, kind in (("string-facet", "keyword"), ("integer-facet", "integer"))
        },
        "integer-sort": {"properties": {"price": {"type": "integer"}}},
        "string-sort": {"properties": {"name": {"type": "keyword"}}},
        **{name: {"type": "keyword"} for name in ("store", "locale")},
        "is-active": {"type": "boolean"},
        # ... and under Magento's.
        "_search": {"type": "text"},
        "price_0_1": {"type": "double"},
        **{name: {"type": "keyword"} for name in ("manufacturer", "category_ids", "visibility")},
        # ... and under ElasticPress's (WordPress posts of the product type, published).
        **{name: {"type": "keyword"} for name in ("post_type.raw", "post_status")},
    }
}


def reference_documents() -> dict[str, dict[str, Any]]:
    """CATALOG as a shop's index holds it: the category path as text, the colour a field of its own."""
    return {
        p.id: {
            "title": p.title,
            "description": p.description,
            "brand": p.brand,
            "category": " > ".join(p.category),
            **({"color": p.attributes["color"][0]} if "color" in p.attributes else {}),
            "price": p.price,
            **({"rating": p.rating} if p.rating is not None else {}),
            **p.extra,
            "supplier": p.brand,
            "name": p.title,
            "short_description": p.description,
            "full-text": p.description,
            "full-text-boosted": p.title,
            "string-facet": [
                {"facet-name": "brand", "facet-value": p.brand},
                *({"facet-name": "color", "facet-value": v} for v in p.attributes.get("color", [])),
            ],
            "integer-facet": [{"facet-name": "price", "facet-value": int(p.price)}],
            "integer-sort": {"price": int(p.price)},
            "string-sort": {"name": p.title.lower()},
            "store": "DE",
            "locale": "de_DE",
            "is-active": True,
            "_search": p.title,
            "price_0_1": p.price,
            "manufacturer": p.brand,
            "category_ids": " > ".join(p.category),
            "visibility": "4",
            "post_type.raw": "product",
            "post_status": "publish",
        }
        for p in CATALOG
    }


def reference_index(url: str, name: str) -> str:
    """CATALOG in a fresh index ``name`` on the engine at ``url``, mapped by REFERENCE_MAPPING; returns its URL."""
    index = f"{url}/{name}"
    requests.delete(index, timeout=30)
    requests.put(index, json={"mappings": REFERENCE_MAPPING}, timeout=30).raise_for_status()
    lines = "".join(
        json.dumps({"index": {"_index": name, "_id": pid}}) + "\n" + json.dumps(doc) + "\n"
        for pid, doc in reference_documents().items()
    )
    bulk = requests.post(
        f"{url}/_bulk?refresh=true", data=lines, headers={"Content-Type": "application/x-ndjson"}, timeout=30
    )
    bulk.raise_for_status()
    return index


def searches(case: Case) -> list[dict[str, Any]]:
    """The search bodies of a case: its one body, each body line of its multi-search, or the Elasticsearch body of
    each query its ReactiveSearch request executes."""
    if "body" in case.spec:
        return [case.spec["body"]]
    if "reactivesearch" in case.spec:
        return [search.body for search in translate(case.spec["reactivesearch"]).searches]
    return case.spec["msearch"][1::2]


@dataclass
class Outcome:
    """How one body fared: its class (answered, unsupported_501, wrong, server_errors) and why."""

    outcome: str
    status: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)


def run(client, case: Case) -> Outcome:
    """Send the case's request with a Flask test client and judge the answer."""
    if "msearch" in case.spec:
        ndjson = "".join(json.dumps(line) + "\n" for line in case.spec["msearch"])
        path = case.spec.get("path", "/_msearch")  # ReactiveSearch posts to /<app>/_msearch, headers without index
        response = client.post(path, data=ndjson, content_type="application/x-ndjson")
        if response.status_code != 200:
            return classify(case, response.status_code, response.get_json(silent=True))
        return worst(case, response.get_json()["responses"])
    if "reactivesearch" in case.spec:
        request = case.spec["reactivesearch"]
        response = client.post(case.spec["path"], json=request)
        if response.status_code != 200:
            return classify(case, response.status_code, response.get_json(silent=True))
        executed = [query["id"] for query in request["query"] if query.get("execute", True)]
        return worst(case, [response.get_json()[query_id] for query_id in executed])
    response = client.post("/products/_search", json=case.spec["body"])
    return classify(case, response.status_code, response.get_json(silent=True))


def worst(case: Case, answers: list[dict[str, Any]]) -> Outcome:
    """The worst outcome of a case's several answers (a multi-search's, in order), with all their reasons."""
    outcomes = [classify(case, answer.get("status", 200), answer, item) for item, answer in enumerate(answers)]
    bad = max(outcomes, key=lambda o: [ANSWERED, UNSUPPORTED, WRONG, SERVER_ERROR].index(o.outcome))
    return Outcome(bad.outcome, [s for o in outcomes for s in o.status], [r for o in outcomes for r in o.reasons])


def classify(case: Case, status: int, body: Any, item: int = 0) -> Outcome:
    """One answer's class; ``item`` is its place in a multi-search."""
    if status >= 500 and status != 501:
        return Outcome(SERVER_ERROR, [status], [f"HTTP {status}"])
    if status == 501:
        part = ((body or {}).get("error") or {}).get("unsupported")
        if part:
            return Outcome(UNSUPPORTED, [status], [f"unsupported: {part}"])
        return Outcome(WRONG, [status], ["501 without naming the unsupported part"])
    if status != 200:
        return Outcome(WRONG, [status], [f"HTTP {status}: {json.dumps((body or {}).get('error'))[:300]}"])
    reasons = judge(case, body, item)
    return Outcome(WRONG if reasons else ANSWERED, [status], reasons)


def judge(case: Case, answer: dict[str, Any], item: int = 0) -> list[str]:
    """What in ``answer`` differs from Elasticsearch's shape or from the case's ``expect``; empty when right."""
    reasons: list[str] = []
    request = searches(case)[item]
    expect = case.spec["expect"] if "body" in case.spec else case.spec["expect"][item]
    hits = answer.get("hits")
    if not isinstance(hits, dict) or not isinstance(hits.get("hits"), list):
        return ["no hits.hits"]
    total = hits.get("total")
    if not (isinstance(total, dict) and isinstance(total.get("value"), int) and total.get("relation") in ("eq", "gte")):
        reasons.append(f"hits.total is not Elasticsearch's {{value, relation}}: {total!r}")
    metadata = request.get("stored_fields") not in ("_none_", ["_none_"])
    source = request.get("_source", "stored_fields" not in request) is not False
    for hit in hits["hits"]:
        if isinstance(hit.get("_id"), str) != metadata or ("_source" in hit) != source:
            reasons.append(f"a hit {'with' if metadata else 'without'} _id, {'with' if source else 'without'} _source?")
            break
        if not isinstance(hit_id(hit), str):
            reasons.append(f"a hit without an id in _id or fields._id: {sorted(hit)}")
            break
    asked = request.get("aggs") or request.get("aggregations")
    if request.get("suggest") and "suggest" not in answer:
        reasons.append("suggest asked but not answered")
    if asked and set(asked) - set(answer.get("aggregations") or {}):
        reasons.append(f"aggregations missing: {sorted(set(asked) - set(answer.get('aggregations') or {}))}")
    ids = [hit_id(hit) for hit in hits["hits"]]
    if "total" in expect and isinstance(total, dict) and total.get("value") != expect["total"]:
        reasons.append(f"hits.total.value {total.get('value')} != {expect['total']}")
    if "ids" in expect and ids != expect["ids"]:
        reasons.append(f"hits {ids} != {expect['ids']}")
    if "first" in expect and ids[: len(expect["first"])] != expect["first"]:
        reasons.append(f"hits {ids} do not begin with {expect['first']}")
    if "ids_within" in expect and not set(ids) <= set(expect["ids_within"]):
        reasons.append(f"hits {sorted(set(ids) - set(expect['ids_within']))} should not match")
    for path, wanted in expect.get("buckets", {}).items():
        got = buckets_at(answer.get("aggregations") or {}, path)
        if got != wanted:
            reasons.append(f"aggregations.{path}: {got} != {wanted}")
    for name in expect.get("source_fields", []):
        if any(name not in hit.get("_source", {}) for hit in hits["hits"]):
            reasons.append(f"a hit's _source has no {name!r}")
    if "highlight" in expect:
        texts = [text for hit in hits["hits"] for frags in (hit.get("highlight") or {}).values() for text in frags]
        if not any(expect["highlight"] in text for text in texts):
            reasons.append(f"no highlight contains {expect['highlight']!r} (got {texts[:3]})")
    return reasons


def without_id_doc_values(case: Case) -> Case:
    """``case`` asking for ids the usual way: osmem-server answers no ``fields._id`` for ``docvalue_fields: ["_id"]``
    (Elasticsearch 7 and OpenSearch do, Elasticsearch 8 with ``indices.id_field_data.enabled``, as Magento's
    installation asks), which Magento's bodies read their ids from."""
    body = case.spec.get("body", {})
    if "_id" not in body.get("docvalue_fields", []):
        return case
    kept = {key: value for key, value in body.items() if key not in ("stored_fields", "docvalue_fields")}
    return Case(case.name, {**case.spec, "body": kept})


def hit_id(hit: Mapping[str, Any]) -> str | None:
    """A hit's id: its ``_id``, or under ``"stored_fields": "_none_"`` the ``_id`` of its ``docvalue_fields``
    (``fields._id``), where Magento reads it."""
    if "_id" in hit:
        return hit["_id"]
    listed = (hit.get("fields") or {}).get("_id") or [None]
    return listed[0]


def buckets_at(aggregations: dict[str, Any], path: str) -> dict[str, int] | None:
    """``{key: doc_count}`` of the aggregation at a dotted path (``facet_bucket_all>brand``, '>' between levels)."""
    node: Any = aggregations
    for part in path.split(">"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    raw = node.get("buckets") if isinstance(node, dict) else None
    if isinstance(raw, list):
        return {_key(b.get("key")): b.get("doc_count") for b in raw}
    if isinstance(raw, dict):
        return {key: b.get("doc_count") for key, b in raw.items()}
    return None


def _key(key: Any) -> str:
    """A bucket's key as ``expect`` writes it: a number as a float (199.0), as a front end's JavaScript reads 199
    and 199.0 alike."""
    return str(float(key)) if isinstance(key, int | float) and not isinstance(key, bool) else str(key)
