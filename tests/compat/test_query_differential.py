"""The embedded backend's Query DSL against a reference: generated bodies must match what the reference matches.

A seeded generator writes query clauses (match with operator, minimum_should_match and fuzziness, the phrase
and prefix queries, every multi_match type, combined_fields, query_string and simple_query_string with
minimum_should_match and flags, term, terms, range, exists, ids, nested bool, constant_score, dis_max,
function_score, boosting) from the words of a seeded catalogue, with misspellings, digits, capitals,
punctuation and empty text. Each runs on the embedded backend
and on a reference index of the same catalogue on osmem-server (analysed as the product index is: standard
words, lower-cased, porter2 stems), in filter context, as a post_filter and on a page sorted by price (where
Elasticsearch's match set decides the hits), and the two must agree on hits.total, the set of hits and the
sorted order. Ranking is left out: the product reranks by design. The same generator's clauses with generated
highlight options (fields by name and pattern, tags, fragments, no_match_size, the HTML encoder,
highlight_query) must highlight the same fields and mark the same words as the reference, and a whole value
(number_of_fragments 0) must read the same.

What is left out of the generator on purpose: a term on an analysed field and a keyword term in another case
(the product matches a word, and keys case-insensitively, docs/COMPATIBILITY.md), wildcards, prefix and fuzzy
queries, and the reference's own departures from Elasticsearch found by the first runs
(osmem-server shortens a typed prefix ending in "s", counts combined_fields' minimum_should_match against one word, reads a
query_string over several fields field by field, and counts fuzzy edits of simple_query_string otherwise).
"""

from __future__ import annotations

import json
import random
import re
import uuid

import pytest
import requests
from compat_suite import embedded_app
from front_end_catalog import product

BODIES_PER_MODE = 80
HIGHLIGHT_BODIES = 150
NOUNS = ["sofa", "table", "lamp", "chair", "desk", "bed", "shelf", "rug", "mirror", "cushion", "stool", "cabinet"]
ADJECTIVES = ["corner", "leather", "velvet", "oak", "glass", "small", "large", "floor", "reading", "folding", "round"]
ADJECTIVES += ["wooden", "modern", "vintage", "running", "soft", "tall"]
COLOURS = ["grey", "brown", "blue", "red", "black", "white", "green"]
BRANDS = ["Acme", "Bolt", "Cosy", "Dune", "Nord Living", "Kinwick", "acme home"]
CATEGORIES = ["Furniture > Sofas", "Furniture > Tables", "Furniture > Chairs", "Lighting > Lamps", "Decor > Rugs"]
DESCRIPTIONS = [
    "a {a} {n} for the living room",
    "two-seat {n}, {a} finish",
    "{a} {n} with {c} legs, 120 cm wide",
    "The {n} folds out into a bed!",
    "{c} {n} in {a} style (2 pieces)",
    "a {n} by the sofa side table",
]
WORDS = NOUNS + ADJECTIVES + COLOURS + ["acme", "bolt", "nord", "living", "furniture", "sofas", "lamps", "the", "for"]
ODD_WORDS = ["120", "2", "Lamps", "TABLE", "sofa,", "lamp!", "two-seat", "", "xyzzy", "grey & sofa"]
TEXT_FIELDS = ["title", "description", "brand", "category", "attributes"]
ALIASES = {"color": "attributes.color", "color.keyword": "attributes.color", "material": "attributes.material"}


def catalogue(size: int = 80, seed: int = 7) -> list:
    rnd = random.Random(seed)
    out = []
    for i in range(size):
        noun = rnd.choice(NOUNS)
        title = " ".join([*rnd.sample(ADJECTIVES, rnd.choice([1, 1, 2])), noun])
        title = title.capitalize() if rnd.random() < 0.7 else title.title()
        description = rnd.choice(DESCRIPTIONS).format(
            a=rnd.choice(ADJECTIVES), n=rnd.choice(NOUNS), c=rnd.choice(COLOURS)
        )
        price = rnd.choice([round(rnd.uniform(10, 999), 2), float(rnd.randrange(10, 1000, 10)), 100.0, 249.5])
        rating = rnd.choice([None, round(rnd.uniform(1, 5), 1), 4.0])
        item = product(
            f"p{i:03d}",
            title,
            rnd.choice(BRANDS),
            rnd.choice(CATEGORIES),
            price,
            rnd.choice([*COLOURS, None]),
            rating,
            rnd.randrange(0, 200),
            description,
        )
        attributes = dict(item.attributes)
        if rnd.random() < 0.5:
            attributes["material"] = (rnd.choice(["oak", "steel", "glass", "fabric", "leather"]),)
        out.append(item.model_copy(update={"attributes": attributes, "review_count": rnd.randrange(0, 50)}))
    return out


CATALOG = catalogue()


class Clauses:
    """A seeded writer of query clauses over the catalogue's words."""

    def __init__(self, seed: int):
        self.rnd = random.Random(seed)

    def word(self) -> str:
        r = self.rnd
        if r.random() < 0.08:
            return r.choice(ODD_WORDS)
        word = r.choice(WORDS)
        if r.random() < 0.12 and len(word) > 3:  # a typo
            i = r.randrange(len(word))
            word = word[:i] + r.choice("aeioux") + word[i + 1 :]
        return word.upper() if r.random() < 0.05 else word

    def text(self, most: int = 3) -> str:
        return " ".join(self.word() for _ in range(self.rnd.randint(1, most)))

    def typed(self) -> str:
        """Words with the last one cut short, never after an "s" (the reference shortens such a prefix)."""
        words = self.text().split(" ")
        last = words[-1]
        if len(last) > 2 and self.rnd.random() < 0.7:
            words[-1] = last[: self.rnd.randint(1, len(last) - 1)]
        if words[-1].endswith("s"):
            words[-1] = words[-1][:-1] or "so"
        return " ".join(words)

    def fields(self) -> list[str]:
        return self.rnd.sample(TEXT_FIELDS, self.rnd.randint(1, 3))

    def options(self, fuzzy: bool = True, operator: bool = True, msm: bool = True) -> dict:
        r = self.rnd
        out: dict = {}
        if operator and r.random() < 0.4:
            out["operator"] = r.choice(["and", "or"])
        if fuzzy and r.random() < 0.25:
            out["fuzziness"] = r.choice(["AUTO", 1, 2, 0, "AUTO:3,6"])
        if msm and r.random() < 0.25:
            out["minimum_should_match"] = r.choice([1, 2, "-1", "50%", "75%", "100%"])
        return out

    def leaf(self) -> dict:
        r = self.rnd
        kind = r.choice(
            ["match", "match", "match_phrase", "match_phrase_prefix", "match_bool_prefix", "multi_match", "multi_match"]
            + ["combined_fields", "query_string", "query_string", "simple_query_string", "simple_query_string"]
            + ["term", "terms", "range", "range", "exists", "ids", "match_all"]
        )
        if kind == "match":
            return {"match": {r.choice(TEXT_FIELDS): {"query": self.text(), **self.options()}}}
        if kind == "match_phrase":
            return {"match_phrase": {r.choice(TEXT_FIELDS): {"query": self.text(), "slop": r.randint(0, 2)}}}
        if kind == "match_phrase_prefix":
            return {"match_phrase_prefix": {r.choice(TEXT_FIELDS): self.typed()}}
        if kind == "match_bool_prefix":
            return {"match_bool_prefix": {r.choice(TEXT_FIELDS): {"query": self.typed(), **self.options()}}}
        if kind == "multi_match":
            kind = r.choice(["best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix"])
            words = self.typed() if kind.endswith("prefix") else self.text()
            options = self.options(fuzzy=kind in ("best_fields", "most_fields", "bool_prefix"))
            return {"multi_match": {"query": words, "fields": self.fields(), "type": kind, **options}}
        if kind == "combined_fields":
            # No minimum_should_match: the reference applies it to a single word, which Elasticsearch leaves alone.
            options = self.options(fuzzy=False, msm=False)
            return {"combined_fields": {"query": self.text(), "fields": ["title", "description"], **options}}
        if kind in ("query_string", "simple_query_string"):
            return self.lucene(kind)
        if kind in ("term", "terms"):
            name, values = r.choice(
                [
                    ("brand.keyword", BRANDS),
                    ("color", COLOURS),
                    ("material", ["oak", "steel", "glass"]),
                    ("category.keyword", CATEGORIES),
                    ("sales", list(range(0, 200, 7))),
                    ("price", [100, 249.5, "100"]),
                ]
            )
            chosen = r.sample(values, r.randint(1, 3))
            return {"term": {name: chosen[0]}} if kind == "term" else {"terms": {name: chosen}}
        if kind == "range":
            name, bounds = r.choice(
                [
                    ("price", [0, 99.99, 100, 249.5, "500", 1000]),
                    ("rating", [1.3, 3.5, 4, "4.0"]),
                    ("sales", [10, 99.5]),
                ]
            )
            keys = r.sample([r.choice(["gt", "gte"]), r.choice(["lt", "lte"])], r.randint(1, 2))
            return {"range": {name: {key: r.choice(bounds) for key in keys}}}
        if kind == "exists":
            return {"exists": {"field": r.choice(["rating", "color", "material", "brand.keyword"])}}
        if kind == "ids":
            return {"ids": {"values": [f"p{r.randrange(85):03d}" for _ in range(r.randint(0, 4))]}}
        return {"match_all": {}}

    def lucene(self, kind: str) -> dict:
        r = self.rnd
        simple = kind == "simple_query_string"
        parts = []
        for i in range(r.randint(1, 4)):
            roll = r.random()
            if roll < 0.5:
                part = self.word()
            elif roll < 0.6:
                part = f'"{self.text()}"'
            elif roll < 0.7 and not simple:
                part = f"{r.choice(['title', 'description', 'color'])}:{self.word() or 'sofa'}"
            elif roll < 0.78 and not simple:
                part = r.choice(["price:[100 TO 500]", "price:>300", "rating:>=4", "price:{100 TO 249.5]"])
            elif roll < 0.84 and not simple:
                part = f"{self.word() or 'sofa'}~{r.choice(['', '1', '2'])}"
            else:
                part = f"({self.word()} {self.word()})"
            if r.random() < 0.25:
                part = r.choice("-+") + part
            if i and r.random() < 0.3:
                parts.append(r.choice(["|", "+"] if simple else ["AND", "OR", "NOT"]))
            parts.append(part)
        spec: dict = {"query": " ".join(parts)}
        operator = r.choice(["OR", "OR", "AND"])
        # The reference reads a query_string over several fields under AND field by field (Elasticsearch word by
        # word): one field then.
        spec["fields"] = [r.choice(TEXT_FIELDS)] if operator == "AND" and not simple else self.fields()
        spec["default_operator"] = operator
        if simple and r.random() < 0.3:
            spec["flags"] = r.choice(["OR|AND|PREFIX", "NONE", "AND|WHITESPACE", "NOT|PHRASE|WHITESPACE", "ALL"])
        if (simple or len(spec["fields"]) == 1) and r.random() < 0.25:
            # Over several fields Elasticsearch counts a query_string's words field by field (its documented
            # reading), the reference word by word: one field then.
            spec["minimum_should_match"] = r.choice([1, 2, "-1", "50%", "100%"])
        return {kind: spec}

    def clause(self, depth: int = 0) -> dict:
        r = self.rnd
        roll = r.random()
        if depth >= 2 or roll < 0.55:
            return self.leaf()
        if roll < 0.85:
            spec: dict = {}
            for key in ("must", "should", "must_not", "filter"):
                if r.random() < 0.45:
                    spec[key] = [self.clause(depth + 1) for _ in range(r.randint(1, 2))]
            if "should" in spec and r.random() < 0.4:
                spec["minimum_should_match"] = r.choice([0, 1, 2, "-1", "100%"])
            return {"bool": spec}
        if roll < 0.9:
            return {"constant_score": {"filter": self.clause(depth + 1)}}
        if roll < 0.95:
            return {"dis_max": {"queries": [self.clause(depth + 1) for _ in range(r.randint(1, 2))]}}
        if roll < 0.97:
            boosting = {"positive": self.clause(depth + 1), "negative": self.leaf(), "negative_boost": 0.5}
            return {"boosting": boosting}
        return {
            "function_score": {"query": self.clause(depth + 1), "functions": [{"filter": self.leaf(), "weight": 2}]}
        }


def body(clause: dict, mode: str) -> dict:
    """The clause in filter context, as a post_filter, or as the query of a page sorted by price."""
    page = {"size": 100, "track_total_hits": True}
    if mode == "filter":
        return {"query": {"bool": {"filter": [clause]}}, **page}
    if mode == "post_filter":
        return {"post_filter": clause, **page}
    return {"query": clause, "sort": [{"price": "asc"}], **page}


def bodies() -> list[tuple[str, dict]]:
    return [
        (mode, body(Clauses(1000 * n + i).clause(), mode))
        for n, mode in enumerate(("filter", "post_filter", "sorted"))
        for i in range(BODIES_PER_MODE)
    ]


def reference_document(item) -> dict:
    document = {
        "title": item.title,
        "description": item.description,
        "brand": item.brand,
        "category": " > ".join(item.category),
        "attributes": item.attribute_text(),
        "price": item.price,
        "sales": item.sales,
        "review_count": item.review_count,
        **{name: values[0] for name, values in item.attributes.items()},
    }
    if item.rating is not None:
        document["rating"] = item.rating
    return document


TEXT = {"type": "text", "analyzer": "product"}
REFERENCE_INDEX = {
    "settings": {
        "analysis": {
            "filter": {"product_stemmer": {"type": "stemmer", "language": "porter2"}},
            "analyzer": {
                "product": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "product_stemmer"]}
            },
        }
    },
    "mappings": {
        "properties": {
            **{name: TEXT for name in ("title", "description", "attributes")},
            **{name: {**TEXT, "fields": {"keyword": {"type": "keyword"}}} for name in ("brand", "category")},
            "color": {"type": "keyword", "fields": {"keyword": {"type": "keyword"}}},
            "material": {"type": "keyword"},
            "price": {"type": "double"},
            "rating": {"type": "float"},
            "sales": {"type": "long"},
            "review_count": {"type": "long"},
        }
    },
}


@pytest.fixture(scope="module")
def embedded(tmp_path_factory):
    # The product reads a misspelt word as the catalogue's nearest (lexical.correct_typos), where Elasticsearch, the
    # reference, matches words as typed: off here (tests/service/test_misspelt_words_in_bodies.py tests it).
    app, pipeline = embedded_app(tmp_path_factory.mktemp("differential"), CATALOG, ALIASES, {"correct_typos": False})
    yield app.test_client()
    pipeline.close()


@pytest.fixture(scope="module")
def reference(osmem_server_url):
    index = f"{osmem_server_url}/differential-{uuid.uuid4().hex[:8]}"
    requests.put(index, json=REFERENCE_INDEX, timeout=30).raise_for_status()
    lines = "".join(
        json.dumps({"index": {"_id": item.id}}) + "\n" + json.dumps(reference_document(item)) + "\n" for item in CATALOG
    )
    requests.post(
        f"{index}/_bulk?refresh=true", data=lines, headers={"Content-Type": "application/x-ndjson"}, timeout=30
    ).raise_for_status()
    yield index
    requests.delete(index, timeout=30)


def matched(answer: dict) -> tuple[int, list[str], list[float]]:
    """hits.total, the hits as a set (sorted ids), and their prices in the page's order."""
    hits = answer["hits"]["hits"]
    return answer["hits"]["total"]["value"], sorted(hit["_id"] for hit in hits), [h["_source"]["price"] for h in hits]


def answers(embedded, session: requests.Session, reference: str, endpoint: str, request: dict) -> tuple | None:
    """Both answers to ``request`` at ``endpoint``; None when the product refuses it, naming the part (a 501), or
    the reference does not take it."""
    ours = embedded.post(f"/products/{endpoint}", json=request)
    theirs = session.post(f"{reference}/{endpoint}", json=request, timeout=30)
    if ours.status_code == 501 or theirs.status_code != 200:
        return None
    assert ours.status_code == 200, (request, ours.get_json())
    return ours.get_json(), theirs.json()


def test_generated_queries_match_what_the_reference_matches(embedded, reference):
    session = requests.Session()
    differences = []
    compared = 0
    for mode, request in bodies():
        if (both := answers(embedded, session, reference, "_search", request)) is None:
            continue
        compared += 1
        (total, hits, prices), (want_total, want_hits, want_prices) = map(matched, both)
        if (total, hits) != (want_total, want_hits) or (mode == "sorted" and prices != want_prices):
            differences.append({"body": request, "ours": (total, hits), "reference": (want_total, want_hits)})
    assert compared >= 0.9 * 3 * BODIES_PER_MODE  # not a comparison of refusals
    assert not differences, json.dumps(differences[:3], indent=1)


def test_generated_queries_are_counted_as_the_reference_counts_them(embedded, reference):
    session = requests.Session()
    differences = []
    compared = 0
    for n in range(BODIES_PER_MODE):
        counted = {"query": Clauses(5000 + n).clause()}
        if (both := answers(embedded, session, reference, "_count", counted)) is None:
            continue
        compared += 1
        ours, theirs = (answer["count"] for answer in both)
        if ours != theirs:
            differences.append({"body": counted, "ours": ours, "reference": theirs})
    assert compared >= 0.9 * BODIES_PER_MODE
    assert not differences, json.dumps(differences[:3], indent=1)


def highlight_options(rnd: random.Random) -> dict:
    """A highlight as front ends write one: fields by name or pattern, tags, fragments, the HTML encoder, ...

    Left out: ``*`` (the reference also highlights keyword sub-fields for a term on them, which the product does
    not answer) and ``require_field_match: false`` (the reference then leaves out the fuzzy and prefix matches
    in other fields, which Elasticsearch marks); docs/COMPATIBILITY.md, "Highlights".
    """
    names = rnd.sample(TEXT_FIELDS, rnd.randint(1, 3)) if rnd.random() < 0.85 else [rnd.choice(["t*", "desc*"])]
    fields = {}
    for name in names:
        options: dict = {}
        if rnd.random() < 0.5:
            options["number_of_fragments"] = rnd.choice([0, 0, 1, 3])
        if rnd.random() < 0.3:
            options["fragment_size"] = rnd.choice([20, 50, 150])
        if rnd.random() < 0.15:
            options["no_match_size"] = rnd.choice([5, 12, 200])
        fields[name] = options
    highlight: dict = {"fields": fields}
    if rnd.random() < 0.3:
        highlight["pre_tags"], highlight["post_tags"] = ["<mark>"], ["</mark>"]
    if rnd.random() < 0.2:
        highlight["encoder"] = "html"
    if rnd.random() < 0.1:
        highlight["highlight_query"] = Clauses(rnd.randrange(10**6)).leaf()
    return highlight


TAGGED = re.compile(r"<(em|mark)>(.*?)</\1>")


def highlighted(answer: dict) -> dict[str, dict[str, list[str]]]:
    return {hit["_id"]: hit.get("highlight", {}) for hit in answer["hits"]["hits"]}


def marked_words(fragments: list[str]) -> list[str]:
    """The words between the tags (a phrase the reference marks word by word, Elasticsearch 8 as one span)."""
    return sorted(w.lower() for f in fragments for m in TAGGED.finditer(f) for w in re.findall(r"\w+", m.group(2)))


def highlight_differences(ours: dict, theirs: dict, highlight: dict) -> list[tuple]:
    """Per hit both answered: the fields highlighted, the words marked (where both cut the same number of
    fragments) and, for a whole value (number_of_fragments 0), its text."""
    out: list[tuple] = []
    mine, reference = highlighted(ours), highlighted(theirs)
    for pid in sorted(set(mine) & set(reference)):
        if set(mine[pid]) != set(reference[pid]):
            out.append((pid, mine[pid], reference[pid]))
            continue
        for name, fragments in mine[pid].items():
            want = reference[pid][name]
            whole = highlight["fields"].get(name, {}).get("number_of_fragments") == 0
            if (whole or len(fragments) == len(want)) and marked_words(fragments) != marked_words(want):
                out.append((pid, name, fragments, want))
            elif whole and [TAGGED.sub(r"\2", f) for f in fragments] != [TAGGED.sub(r"\2", f) for f in want]:
                out.append((pid, name, fragments, want))
    return out


def test_generated_highlights_mark_what_the_reference_marks(embedded, reference):
    session = requests.Session()
    differences = []
    compared = 0
    for i in range(HIGHLIGHT_BODIES):
        request = {
            "query": Clauses(50_000 + i).clause(),
            "highlight": highlight_options(random.Random(i)),
            "sort": [{"price": "asc"}],  # every match on the page: the hits are the same on both
            "size": 100,
        }
        if (both := answers(embedded, session, reference, "_search", request)) is None:
            continue
        compared += 1
        found = highlight_differences(*both, request["highlight"])
        if found:
            differences.append({"body": request, "differences": found[:2]})
    assert compared >= 0.9 * HIGHLIGHT_BODIES
    assert not differences, json.dumps(differences[:3], indent=1)
