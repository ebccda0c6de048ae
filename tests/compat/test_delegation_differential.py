"""The cluster backend's answers against a shop's own index: generated bodies must answer what that index answers.

A seeded generator writes search bodies as front ends send them, with the field names of a shop's flat index
(``brand.keyword``, ``color.keyword``, ``category.keyword``, ``name``, Spryker's nested ``string-facet`` pairs,
mapped by ``service.field_aliases``): match, multi_match, match_phrase(_prefix), prefix, combined_fields,
query_string (field names, exclusions, ranges, ``~``, minimum_should_match), simple_query_string, term, terms,
range, exists, ids, nested bool with should and minimum_should_match, constant_score, dis_max, function_score,
boosting; a post_filter, a sort by one or two fields, from/size, search_after, track_total_hits, ``_source``,
highlights and facets. Each is sent to the service on the OpenSearch backend (osmem-server, the dense leg off,
few lexical candidates so that pages go on past the ranked list) and to the shop's index of the same catalogue
on the same server (analysed as the product index is), and the two must agree on the status, hits.total, the
hits (as a set where the pipeline ranks; in order, by sort values, where a field sorts), highlights, ``_source``,
facet counts and the same query's ``_count``. Ranking is left out: the product reranks by design.

Left out of the generator on purpose: what the service answers otherwise by design (a term on a category path
matches the products under it; a keyword term matches in any case; a whole ``_source`` is the product record),
a text query naming an attribute's keyword (``multi_match`` on ``color.keyword`` searches the attributes'
words, where a keyword field matches only the whole value: docs/COMPATIBILITY.md), ``simple_query_string``'s
``-`` (the parser that reads it as Elasticsearch does came after this test), and osmem-server's own departures
from Elasticsearch (a term on a text field matches nothing; phrase_prefix over every field refuses the keyword
fields, where Elasticsearch is lenient there; no inner hits).
"""

from __future__ import annotations

import json
import random
import uuid
from typing import Any

import pytest
import requests
from compat_suite import opensearch_app
from front_end_catalog import product

from search_rerank.backends.mappings import index_body
from search_rerank.core.settings import LexicalSettings

BODIES = 150
NOUNS = ["sofa", "table", "lamp", "chair", "rug", "shelf", "desk", "bed"]
ADJECTIVES = ["oak", "glass", "velvet", "leather", "corner", "floor", "small", "grey", "round", "tall", "folding"]
DESCRIPTIONS = ["solid", "soft", "reading", "dining", "coffee", "office", "garden", "bright", "two", "seat", "modern"]
BRANDS = ["Acme", "Bolt", "Cosy", "Dune", "Elm"]
CATEGORIES = ["Furniture > Sofas", "Furniture > Tables", "Furniture > Chairs", "Lighting > Lamps", "Home > Rugs"]
COLOURS = ["grey", "brown", "blue", "black", "white"]
WORDS = NOUNS + ADJECTIVES + DESCRIPTIONS + [b.lower() for b in BRANDS] + COLOURS
ALIASES = {
    "color.keyword": "attributes.color",
    "color": "attributes.color",
    "name": "title",
    "string-facet": "{facet-name}",
}


def catalogue(size: int = 48, seed: int = 11) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(size):
        title = " ".join([*rnd.sample(ADJECTIVES, rnd.choice([1, 1, 2])), rnd.choice(NOUNS)]).capitalize()
        colours = rnd.sample(COLOURS, rnd.choice([0, 1, 1, 1, 2]))
        price = rnd.choice([49.0, 99.0, 199.0, 299.0, round(rnd.uniform(10, 900), 2)])
        item = product(
            f"p{i:02d}",
            title,
            rnd.choice(BRANDS),
            rnd.choice(CATEGORIES),
            price,
            None,
            None if rnd.random() < 0.25 else round(rnd.uniform(1, 5), 1),
            rnd.randrange(0, 300),
            " ".join(rnd.sample(DESCRIPTIONS + ADJECTIVES + NOUNS, rnd.randint(2, 6))),
        )
        out.append(item.model_copy(update={"attributes": {"color": tuple(colours)} if colours else {}}))
    return out


CATALOG = catalogue()


def reference_mapping() -> dict[str, Any]:
    """A shop's flat index: text with .keyword sub-fields, analysed as the product index is (without synonyms)."""
    analysis = index_body(LexicalSettings())["settings"]["analysis"]
    text = {"type": "text", "analyzer": "product_text", "search_analyzer": "product_search"}
    pairs = {"facet-name": {"type": "keyword"}, "facet-value": {"type": "keyword"}}
    return {
        "settings": {"number_of_shards": 1, "analysis": analysis},
        "mappings": {
            "properties": {
                "title": text,
                "name": text,
                "description": text,
                **{
                    name: {**text, "fields": {"keyword": {"type": "keyword"}}}
                    for name in ("brand", "category", "color")
                },
                "price": {"type": "double"},
                "rating": {"type": "float"},
                "sales": {"type": "long"},
                "string-facet": {"type": "nested", "properties": pairs},
            }
        },
    }


def reference_document(p) -> dict[str, Any]:
    colours = list(p.attributes.get("color", ()))
    return {
        "title": p.title,
        "name": p.title,
        "description": p.description,
        "brand": p.brand,
        "category": " > ".join(p.category),
        "price": p.price,
        "sales": p.sales,
        "string-facet": [
            {"facet-name": "brand", "facet-value": p.brand},
            *({"facet-name": "color", "facet-value": c} for c in colours),
        ],
        **({"color": colours} if colours else {}),
        **({"rating": p.rating} if p.rating is not None else {}),
    }


@pytest.fixture(scope="module")
def reference(osmem_server_url):
    name = f"shop-{uuid.uuid4().hex[:8]}"
    index = f"{osmem_server_url}/{name}"
    requests.put(index, json=reference_mapping(), timeout=30).raise_for_status()
    lines = "".join(
        json.dumps({"index": {"_index": name, "_id": p.id}}) + "\n" + json.dumps(reference_document(p)) + "\n"
        for p in CATALOG
    )
    headers = {"Content-Type": "application/x-ndjson"}
    requests.post(f"{osmem_server_url}/_bulk?refresh=true", data=lines, headers=headers, timeout=30).raise_for_status()
    yield index
    requests.delete(index, timeout=30)


@pytest.fixture(scope="module")
def service(osmem_server_url, tmp_path_factory):
    """The app on the OpenSearch backend over the same catalogue, lexical leg only, 8 candidates ranked."""
    root = tmp_path_factory.mktemp("delegation-differential")
    sections = {"lexical": {"candidates": 8}, "longtail": {"enabled": False}}
    with opensearch_app(root, osmem_server_url, CATALOG, ALIASES, **sections) as app:
        yield app.test_client()


# ------------------------------------------------------------------ bodies


class Bodies:
    """One seeded body: its clauses drawn from ``rnd``."""

    def __init__(self, rnd: random.Random):
        self.rnd = rnd

    def words(self, n: int | None = None) -> str:
        return " ".join(self.rnd.sample(WORDS, n or self.rnd.choice([1, 1, 2, 3])))

    def phrase(self) -> str:
        words = self.rnd.choice(CATALOG).title.lower().split()
        start = self.rnd.randrange(len(words))
        return " ".join(words[start : start + 2])

    def text(self) -> dict[str, Any]:
        r = self.rnd
        field = r.choice(["title", "description", "name", "brand", "category", "color"])
        kind = r.randrange(9)
        if kind == 0:
            return {"match": {field: self.words()}}
        if kind == 1:
            spec: dict[str, Any] = {"query": self.words(r.choice([2, 3]))}
            if r.random() < 0.5:
                spec["operator"] = r.choice(["and", "or"])
            if r.random() < 0.4:
                spec["minimum_should_match"] = r.choice(["2", "75%", "-1", 1])
            if r.random() < 0.2:
                spec["fuzziness"] = r.choice(["AUTO", 1])
            return {"match": {field: spec}}
        if kind in (2, 3):
            fields = r.sample(["title^2", "description", "name", "brand", "category", "color", "brand.keyword"], 2)
            spec = {"query": self.words(), "fields": fields}
            if r.random() < 0.7:
                spec["type"] = r.choice(["best_fields", "most_fields", "cross_fields", "phrase", "bool_prefix"])
            if r.random() < 0.4 and spec.get("type") != "phrase":
                spec["operator"] = r.choice(["and", "or"])
            return {"multi_match": spec}
        if kind == 4:
            return {r.choice(["match_phrase", "match_phrase_prefix"]): {r.choice(["title", "name"]): self.phrase()}}
        if kind == 5:
            word = r.choice(WORDS)
            return r.choice([{"prefix": {"title": word[:3]}}, {"prefix": {"brand.keyword": r.choice(BRANDS)[:2]}}])
        if kind == 6:
            return {"query_string": self.query_string()}
        if kind == 7:
            word = lambda: r.choice(WORDS)  # noqa: E731
            text = r.choice([f"{word()} +{word()}", f"{word()} | {word()}", f'"{self.phrase()}"', f"{word()} {word()}"])
            return {"simple_query_string": {"query": text, "fields": r.sample(["title^2", "description", "brand"], 2)}}
        return {"combined_fields": {"query": self.words(), "fields": ["title", "description"]}}

    def query_string(self) -> dict[str, Any]:
        r = self.rnd
        word = lambda: r.choice(WORDS)  # noqa: E731
        brand, colour = r.choice(BRANDS), r.choice(COLOURS)
        text = r.choice(
            [
                f"{word()} AND {word()}",
                f"{word()} -{word()}",
                f"title:{word()}",
                f"brand.keyword:{brand}",
                f"{word()} AND price:[100 TO 500]",
                f"{word()} AND rating:>=4",
                f"({word()} OR {word()}) AND brand:{brand.lower()}",
                f"color:{colour}",
                f"color.keyword:{colour} AND name:{r.choice(NOUNS)}",
                f"{word()} OR brand.keyword:{brand}",
                f"{word()[:-1]}x~1 -{word()}",
                f'"{self.phrase()}"~2 -{word()}',
            ]
        )
        spec: dict[str, Any] = {"query": text, "default_field": r.choice(["title", "description", "name"])}
        if r.random() < 0.3:
            spec["default_operator"] = r.choice(["AND", "OR"])
        if r.random() < 0.2:
            spec["minimum_should_match"] = r.choice(["2", "50%"])
        return spec

    def filter(self) -> dict[str, Any]:
        r = self.rnd
        kind = r.randrange(11)
        if kind == 0:
            return {"term": {"brand.keyword": r.choice(BRANDS)}}
        if kind == 1:
            return {"terms": {"brand.keyword": r.sample(BRANDS, 2)}}
        if kind == 2:
            return {"terms": {"color.keyword": r.sample(COLOURS, r.choice([1, 2]))}}
        if kind == 3:
            return {"term": {"category.keyword": r.choice(CATEGORIES)}}
        if kind in (4, 5):
            name, bounds = r.choice(
                [("price", [50, 99, 199.0, 300, 600]), ("rating", [2, 3.5, 4]), ("sales", [10, 100])]
            )
            ops = r.choice([("gte",), ("lte",), ("gt", "lt"), ("from", "to")])
            return {"range": {name: dict(zip(ops, sorted(r.sample(bounds, len(ops)))))}}
        if kind == 6:
            return {"exists": {"field": r.choice(["rating", "color", "color.keyword", "description"])}}
        if kind == 7:
            return {"ids": {"values": r.sample([p.id for p in CATALOG], 6)}}
        if kind == 8:
            pair = [
                {"term": {"string-facet.facet-name": "color"}},
                {"terms": {"string-facet.facet-value": COLOURS[:2]}},
            ]
            return {"nested": {"path": "string-facet", "query": {"bool": {"filter": pair}}}}
        if kind == 9:
            return {"bool": {"should": [self.filter(), self.filter()]}}
        return {"bool": {"must_not": [self.filter()]}}

    def query(self, depth: int = 0) -> dict[str, Any]:
        r = self.rnd
        kind = r.randrange(10)
        if kind < 2 or depth > 1:
            return self.text()
        if kind < 7:
            bool_: dict[str, Any] = {}
            if r.random() < 0.7:
                bool_["must"] = [self.query(depth + 1) if r.random() < 0.3 else self.text()]
            if r.random() < 0.6:
                bool_["filter"] = [self.filter() for _ in range(r.choice([1, 2]))]
            if r.random() < 0.35:
                bool_["should"] = [
                    self.text() if r.random() < 0.6 else self.filter() for _ in range(r.choice([1, 2, 3]))
                ]
                if r.random() < 0.6:
                    bool_["minimum_should_match"] = r.choice([1, 2, "50%"])
            if r.random() < 0.3:
                bool_["must_not"] = [self.filter() if r.random() < 0.7 else self.text()]
            return {"bool": bool_}
        if kind == 7:
            return {"constant_score": {"filter": self.filter()}}
        if kind == 8:
            return {"dis_max": {"queries": [self.query(depth + 1), self.text()]}}
        function = {"filter": self.filter(), "weight": 3}
        return r.choice(
            [
                {"function_score": {"query": self.query(depth + 1), "functions": [function]}},
                {"boosting": {"positive": self.text(), "negative": self.filter(), "negative_boost": 0.5}},
            ]
        )

    def body(self) -> dict[str, Any]:
        r = self.rnd
        body: dict[str, Any] = {"query": self.query()} if r.random() < 0.95 else {}
        if r.random() < 0.2:
            body["post_filter"] = self.filter()
        body["sort"] = r.choice(
            [None, None, None, [{"price": "asc"}], [{"sales": "desc"}], [{"brand.keyword": "asc"}, {"price": "desc"}]]
            + [[{"rating": {"order": "desc", "missing": "_last"}}, {"sales": "desc"}]]
        )
        body["size"] = r.choice([0, 3, 10, 20, 48])
        body["from"] = r.choice([0, 0, 0, 5, 12])
        body["track_total_hits"] = r.choice([None, None, True, False, 5])
        body["_source"] = r.choice([None, False, ["title", "price"], {"includes": ["title", "brand", "price"]}])
        if r.random() < 0.25 and "name" not in json.dumps(body.get("query")):
            body["highlight"] = {
                "fields": {r.choice(["title", "description"]): r.choice([{}, {"number_of_fragments": 0}])}
            }
        if r.random() < 0.15:
            body["aggs"] = {
                "brands": {"terms": {"field": "brand.keyword"}},
                "colours": {"terms": {"field": "color.keyword"}},
            }
        return {key: value for key, value in body.items() if value is not None}


def bodies(seed: int, n: int) -> list[dict[str, Any]]:
    return [Bodies(random.Random(seed * 1_000_003 + i)).body() for i in range(n)]


# ------------------------------------------------------------------ comparison


def differences(body: dict[str, Any], theirs: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """What in our answer is not the shop index's answer; empty when they agree."""
    out = []
    if theirs["hits"].get("total") != ours["hits"].get("total"):
        out.append(f"hits.total {ours['hits'].get('total')} != {theirs['hits'].get('total')}")
    their_hits, our_hits = theirs["hits"]["hits"], ours["hits"]["hits"]
    if body.get("sort"):
        # Ties in sort values are in each index's own order.
        if [h["sort"] for h in our_hits] != [h["sort"] for h in their_hits]:
            out.append(f"sorted hits {[h['_id'] for h in our_hits]} != {[h['_id'] for h in their_hits]}")
    elif body.get("from", 0) == 0 and len(their_hits) < body.get("size", 10):  # every match is on the page
        if {h["_id"] for h in our_hits} != {h["_id"] for h in their_hits}:
            out.append(f"hits {sorted(h['_id'] for h in our_hits)} != {sorted(h['_id'] for h in their_hits)}")
    by_id = {h["_id"]: h for h in their_hits}
    for hit in our_hits:
        their = by_id.get(hit["_id"])
        if their is None:
            continue
        if hit.get("highlight") != their.get("highlight"):
            out.append(f"{hit['_id']}: highlight {hit.get('highlight')} != {their.get('highlight')}")
        if "_source" not in body:
            continue  # the whole _source is the product record, by design
        if ("_source" in hit) != ("_source" in their):
            out.append(f"{hit['_id']}: _source {hit.get('_source')} != {their.get('_source')}")
        elif "_source" in their and hit["_source"] != their["_source"]:
            out.append(f"{hit['_id']}: _source {hit['_source']} != {their['_source']}")
    for name, facet in (theirs.get("aggregations") or {}).items():
        ours_facet = (ours.get("aggregations") or {}).get(name, {})
        buckets = {b["key"]: b["doc_count"] for b in facet["buckets"]}
        if {b["key"]: b["doc_count"] for b in ours_facet.get("buckets", [])} != buckets:
            out.append(f"aggregations.{name} {ours_facet} != {buckets}")
    return out


def test_generated_bodies_answer_what_the_shops_own_index_answers(service, reference):
    wrong = []
    for i, body in enumerate(bodies(seed=1, n=BODIES)):
        theirs = requests.post(f"{reference}/_search", json=body, timeout=30)
        ours = service.post("/products/_search", json=body)
        assert theirs.status_code == 200, (i, body, theirs.text[:300])
        if ours.status_code != 200:
            wrong.append((i, body, f"status {ours.status_code}: {ours.get_json()}"))
            continue
        wrong += [(i, body, reason) for reason in differences(body, theirs.json(), ours.get_json())]
        if body.get("sort") and ours.get_json()["hits"]["hits"]:
            after = {**body, "search_after": ours.get_json()["hits"]["hits"][-1]["sort"], "from": 0}
            theirs_after = requests.post(f"{reference}/_search", json=after, timeout=30).json()
            wrong += [(i, after, r) for r in differences(after, theirs_after, search_page(service, after))]
        counted = {"query": body["query"]} if "query" in body else {}
        their_count = requests.post(f"{reference}/_count", json=counted, timeout=30).json()["count"]
        our_count = service.post("/products/_count", json=counted).get_json().get("count")
        if our_count != their_count:
            wrong.append((i, counted, f"_count {our_count} != {their_count}"))
    assert not wrong, "\n".join(f"#{i} {json.dumps(body)}\n    {reason}" for i, body, reason in wrong[:10])


def search_page(service, body: dict[str, Any]) -> dict[str, Any]:
    response = service.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.mark.parametrize("kind", ["value_count", "cardinality"])
@pytest.mark.parametrize("query", [None, {"match": {"title": "sofa"}}], ids=["every-product", "matches"])
def test_a_count_of_an_attributes_values_answers_what_the_shops_own_index_answers(service, reference, kind, query):
    # A 501 on the cluster backend ("a terms aggregation without sub-aggregations"), where the embedded one answered.
    body = {"size": 0, "aggs": {"colours": {kind: {"field": "color.keyword"}}}, **({"query": query} if query else {})}
    theirs = requests.post(f"{reference}/_search", json=body, timeout=30).json()["aggregations"]["colours"]
    ours = search_page(service, body)["aggregations"]["colours"]
    assert ours == theirs and theirs["value"] > 0
