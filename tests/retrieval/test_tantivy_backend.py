"""The tantivy lexical leg: scoring semantics, filter equivalence, index lifecycle."""

from __future__ import annotations

import math
import random
import threading
import time
from pathlib import Path

import pytest
import tantivy

from search_rerank.errors import ConfigError, StageError
from search_rerank.filters import Filters
from search_rerank.product import Product
from search_rerank.retrieval import Retriever
from search_rerank.settings import LexicalSettings
from search_rerank.tantivy_backend import TantivyRetriever


def make(products=(), path: Path | None = None, **settings) -> TantivyRetriever:
    retriever = TantivyRetriever(path, LexicalSettings(**settings))
    retriever.warm_up()
    if products:
        retriever.add(products)
    return retriever


def ids(candidates) -> list[str]:
    return [c.product_id for c in candidates]


def scores(candidates) -> dict[str, float]:
    return {c.product_id: c.score for c in candidates}


def test_retriever_implements_protocol_as_lexical_leg():
    retriever = make([Product(id="a", title="red sofa")])
    [hit] = retriever.search("sofa", 10)
    assert isinstance(retriever, Retriever)
    assert retriever.name == "lexical"
    assert hit.legs == {"lexical"}
    assert hit.features == {"lexical_score": hit.score, "lexical_rank": 1.0}


# --- scoring ---------------------------------------------------------------------------------


def test_title_match_ranks_above_description_match_with_default_boosts():
    retriever = make([
        Product(id="desc", title="living room set", description="walnut"),
        Product(id="title", title="walnut", description="living room set"),
    ])
    assert ids(retriever.search("walnut", 10)) == ["title", "desc"]


def test_fields_combine_as_max_plus_tie_breaker_not_sum(tmp_path):
    """Elasticsearch best_fields: score = best field + tie_breaker * the other fields, not their sum."""
    catalog = [
        Product(id="both", title="walnut desk", description="walnut top"),
        Product(id="other", title="pine desk", description="pine top"),
    ]
    combined = make(catalog, tmp_path, field_boosts={"title": 3.0, "description": 1.0}, tie_breaker=0.3)
    title_only = make(path=tmp_path, field_boosts={"title": 3.0})
    description_only = make(path=tmp_path, field_boosts={"description": 1.0})

    title_score = scores(title_only.search("walnut", 10))["both"]
    description_score = scores(description_only.search("walnut", 10))["both"]
    assert title_score > description_score > 0
    assert scores(combined.search("walnut", 10))["both"] == pytest.approx(
        title_score + 0.3 * description_score, rel=1e-5)


def test_second_matching_field_adds_nothing_when_tie_breaker_is_zero():
    retriever = make([
        Product(id="title", title="walnut desk", description="pine top"),
        Product(id="title+desc", title="walnut desk", description="walnut top"),
        Product(id="neither", title="pine desk", description="pine top"),
    ], tie_breaker=0.0)
    found = scores(retriever.search("walnut", 10))
    assert found["title"] == pytest.approx(found["title+desc"], rel=1e-6)


@pytest.mark.parametrize(("indexed", "query"), [("leather sofa", "sofas"), ("leather sofas", "sofa"),
                                                 ("running shoes", "run shoe")])
def test_stemmed_query_matches_other_inflection(indexed, query):
    retriever = make([Product(id="a", title=indexed), Product(id="b", title="oak table")])
    assert ids(retriever.search(query, 10)) == ["a"]


def lucene_bm25(tf: int, dl: int, avgdl: float, n_docs: int, doc_freq: int) -> float:
    """Lucene's classic BM25, with the (k1 + 1) numerator that tantivy keeps and Lucene 8 dropped."""
    k1, b = 1.2, 0.75
    idf = math.log(1 + (n_docs - doc_freq + 0.5) / (doc_freq + 0.5))
    return idf * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))


def test_bm25_score_equals_hand_computed_lucene_value_on_title_only_index():
    titles = {"one": "sofa", "two": "red sofa", "tf2": "sofa bed sofa", "four": "big red oak table", "five": "chair"}
    retriever = make([Product(id=pid, title=t) for pid, t in titles.items()], field_boosts={"title": 1.0})
    avgdl = sum(len(t.split()) for t in titles.values()) / len(titles)
    expected = {
        "one": lucene_bm25(1, 1, avgdl, 5, 3),
        "two": lucene_bm25(1, 2, avgdl, 5, 3),
        "tf2": lucene_bm25(2, 3, avgdl, 5, 3),
    }
    found = scores(retriever.search("sofa", 10))
    assert found.keys() == expected.keys()
    for pid, value in expected.items():
        assert found[pid] == pytest.approx(value, rel=1e-5), pid


def test_repeated_query_word_counts_once():
    retriever = make([Product(id="a", title="red sofa"), Product(id="b", title="oak table")])
    assert scores(retriever.search("sofa sofas SOFA", 10)) == scores(retriever.search("sofa", 10))


def test_field_boost_multiplies_bm25_score():
    catalog = [Product(id="a", title="red sofa"), Product(id="b", title="oak table")]
    plain = scores(make(catalog, field_boosts={"title": 1.0}).search("sofa", 10))["a"]
    boosted = scores(make(catalog, field_boosts={"title": 2.5}).search("sofa", 10))["a"]
    assert boosted == pytest.approx(2.5 * plain, rel=1e-6)


def test_score_ties_are_broken_by_product_id_across_segments():
    pids = [f"p{i:02d}" for i in range(30)]
    random.Random(7).shuffle(pids)
    retriever = make([Product(id=pid, title="sofa") for pid in pids[:15]])
    retriever.add(Product(id=pid, title="sofa") for pid in pids[15:])
    assert ids(retriever.search("sofa", 5)) == sorted(pids)[:5]
    assert ids(retriever.search("sofa", 30)) == sorted(pids)


# --- query text is never syntax --------------------------------------------------------------

SYNTAX_CATALOG = [
    Product(id="leather", title="red leather sofa"),
    Product(id="chair", title="chair"),
    Product(id="lamp", title="lamp"),
    Product(id="oak", title="oak shelf", description="sturdy"),
]


@pytest.mark.parametrize(("query", "must_find"), [
    ("sofa -leather", "leather"),
    ("NOT chair", "chair"),
    ("chair AND lamp", "lamp"),
    ("chair AND lamp", "chair"),
    ("description:oak", "oak"),
    ('"sofa red"', "leather"),
    ("oak^0", "oak"),
])
def test_query_operators_act_as_plain_words(query, must_find):
    assert must_find in ids(make(SYNTAX_CATALOG).search(query, 10))


@pytest.mark.parametrize("query", ['"', "(", ")", "title:", "*", "[1 TO 2]", "~2", "^", "\\", "{", "a:b:c",
                                   "+-", "&& || !", 'sofa" OR (', "/regex.*/", "\x00", "🛋️ sofa"])
def test_query_syntax_characters_do_not_raise(query):
    found = make(SYNTAX_CATALOG).search(query, 10)
    assert isinstance(found, list)


# --- empty queries and k ---------------------------------------------------------------------


@pytest.mark.parametrize("query", ["", "   ", "*", "?!"])
def test_empty_query_without_filters_returns_nothing(query):
    assert make(SYNTAX_CATALOG).search(query, 10) == []
    assert make(SYNTAX_CATALOG).search(query, 10, Filters()) == []


def test_empty_query_with_filters_returns_filtered_products_by_id():
    catalog = [Product(id=f"p{i}", title="thing", brand="Acme" if i % 2 else "Bolt") for i in range(9, -1, -1)]
    found = make(catalog).search("", 3, Filters(brand="acme"))
    assert ids(found) == ["p1", "p3", "p5"]
    assert {c.score for c in found} == {0.0}


def test_k_zero_returns_nothing():
    assert make(SYNTAX_CATALOG).search("sofa", 0) == []


def test_negative_k_raises():
    with pytest.raises(ValueError, match="k=-1"):
        make(SYNTAX_CATALOG).search("sofa", -1)


# --- filters against the reference -----------------------------------------------------------

PATHS = [(), ("Furniture",), ("furniture", "Sofas"), ("FURNITURE", "sofas", "Corner"), ("Furniture", "Tables"),
         ("Furn",), ("Furniture Sofas",), ("Lighting", "Lamps"), (" lighting ",)]
BRANDS = ["", "Acme", "ACME", "acme", "Bolt", "Ikea", "Straße"]
PRICES = [None, 0.0, 10.0, 25.5, 100.0]
ATTRIBUTES = {"color": ["Red", "red", "Blue", "dark red", "Weiß"], "size": ["L", "XL", "l"]}


def random_catalog(rng: random.Random, n: int = 80) -> list[Product]:
    catalog = []
    for i in range(n):
        attrs = {key: rng.sample(values, rng.randint(1, 2)) for key, values in ATTRIBUTES.items()
                 if rng.random() < 0.6}
        catalog.append(Product(id=f"p{i:03d}", title=f"item {rng.choice(['sofa', 'lamp', 'table'])}",
                               brand=rng.choice(BRANDS), category=rng.choice(PATHS), price=rng.choice(PRICES),
                               attributes=attrs))
    return catalog


def random_filters(rng: random.Random, kind: str) -> Filters:
    fields: dict = {}
    if kind in ("category", "all"):
        path = rng.choice([p for p in PATHS if p] + [("sofas",), ("furniture", "SOFAS", "corner", "deep")])
        fields["category"] = tuple(part.upper() if rng.random() < 0.3 else part
                                   for part in path[: rng.randint(1, len(path))])
    if kind in ("brand", "all"):
        fields["brand"] = tuple(rng.sample(["acme", "BOLT", "Ikea ", "", "nobody", "STRASSE"], rng.randint(1, 2)))
    if kind in ("price", "all"):
        low, high = sorted(rng.sample([0.0, 10.0, 25.5, 100.0, 5.0], 2))
        fields.update(rng.choice([{"price_min": low}, {"price_max": high}, {"price_min": low, "price_max": high}]))
    if kind in ("attributes", "all"):
        keys = rng.sample(["color", "Size", "material"], rng.randint(1, 2))
        fields["attributes"] = {key: tuple(rng.sample(["red", "RED", "blue", "l", "xl", "dark", "WEISS"], rng.randint(0, 2)))
                                for key in keys}
    return Filters(**fields)


@pytest.mark.parametrize("kind", ["category", "brand", "price", "attributes", "all"])
def test_filters_match_reference_semantics_on_random_catalog(kind):
    rng = random.Random(f"filters-{kind}")
    catalog = random_catalog(rng)
    retriever = make(catalog)
    for _ in range(60):
        filters = random_filters(rng, kind)
        expected = {p.id for p in catalog if filters.matches(p)}
        assert set(ids(retriever.search("", 1000, filters))) == expected, filters
        assert set(ids(retriever.search("item", 1000, filters))) == expected, filters


def test_filter_does_not_change_scores():
    catalog = random_catalog(random.Random(3))
    retriever = make(catalog)
    unfiltered = scores(retriever.search("sofa", 1000))
    filtered = scores(retriever.search("sofa", 1000, Filters(brand=("acme", "bolt"))))
    assert filtered
    assert all(unfiltered[pid] == score for pid, score in filtered.items())


# --- index lifecycle -------------------------------------------------------------------------


def test_upsert_replaces_existing_product():
    retriever = make([Product(id="a", title="red sofa", brand="Acme"), Product(id="b", title="lamp")])
    assert retriever.add([Product(id="a", title="blue chair", brand="Bolt")]) == 1
    assert retriever.count() == 2
    assert retriever.search("sofa", 10) == []
    assert ids(retriever.search("chair", 10)) == ["a"]
    assert retriever.search("", 10, Filters(brand="acme")) == []


def test_upsert_keeps_last_duplicate_within_one_call():
    retriever = make()
    written = retriever.add([Product(id="a", title="red sofa"), Product(id="a", title="blue chair")])
    assert (written, retriever.count()) == (1, 1)
    assert ids(retriever.search("chair sofa", 10)) == ["a"]
    assert retriever.search("sofa", 10) == []


def test_delete_removes_products_and_counts_only_indexed_ids():
    retriever = make([Product(id="a", title="red sofa"), Product(id="b", title="blue sofa")])
    assert retriever.delete(["a", "missing", "a"]) == 1
    assert retriever.count() == 1
    assert ids(retriever.search("sofa", 10)) == ["b"]
    assert retriever.delete(["a"]) == 0


def test_add_rejects_non_product_records_without_writing_their_batch():
    retriever = make([Product(id="a", title="sofa")])
    with pytest.raises(TypeError, match="dict"):
        retriever.add([Product(id="b", title="sofa"), {"id": "c", "title": "sofa"}])
    assert retriever.count() == 1


def test_index_persists_across_reopen(tmp_path):
    first = make([Product(id="a", title="red sofa", price=10.0), Product(id="b", title="lamp")], tmp_path)
    reopened = make(path=tmp_path)
    assert reopened.count() == 2
    assert reopened.search("sofa", 10, Filters(price_max=20)) == first.search("sofa", 10, Filters(price_max=20))
    reopened.add([Product(id="c", title="green sofa")])
    first.warm_up()
    assert set(ids(first.search("sofa", 10))) == {"a", "c"}


def test_reopen_with_other_schema_raises_config_error(tmp_path):
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("body")
    tantivy.Index(builder.build(), path=str(tmp_path))
    with pytest.raises(ConfigError, match=str(tmp_path)):
        make(path=tmp_path)


def test_write_while_another_writer_holds_the_index_raises_stage_error(tmp_path):
    retriever = make([Product(id="a", title="sofa")], tmp_path)
    other = tantivy.Index.open(str(tmp_path)).writer(heap_size=50_000_000)
    try:
        with pytest.raises(StageError, match="Another process"):
            retriever.add([Product(id="b", title="sofa")])
    finally:
        other.wait_merging_threads()
    assert retriever.add([Product(id="b", title="sofa")]) == 1


@pytest.mark.parametrize("bm25", [{"k1": 1.5}, {"b": 0.5}])
def test_non_default_bm25_parameters_raise_config_error(bm25):
    with pytest.raises(ConfigError, match="k1=1.2, b=0.75"):
        TantivyRetriever(None, LexicalSettings(**bm25))


def test_all_zero_field_boosts_raise_config_error():
    with pytest.raises(ConfigError, match="no field a positive boost"):
        TantivyRetriever(None, LexicalSettings(field_boosts={"title": 0.0}))


def test_concurrent_searches_succeed_while_writing():
    retriever = make([Product(id=f"seed{i}", title="sofa") for i in range(50)])
    errors: list[BaseException] = []
    done = threading.Event()

    def search_until_done():
        while not done.is_set():
            try:
                if len(retriever.search("sofa", 20, Filters(price_max=1000))) > 20:
                    raise AssertionError("more than k results")
            except BaseException as exc:  # noqa: BLE001 - reported on the main thread
                errors.append(exc)
                return

    threads = [threading.Thread(target=search_until_done) for _ in range(6)]
    for thread in threads:
        thread.start()
    for batch in range(10):
        retriever.add(Product(id=f"b{batch}-{i}", title="sofa", price=1.0) for i in range(20))
    done.set()
    for thread in threads:
        thread.join()
    assert errors == []
    assert retriever.count() == 250


def test_five_thousand_products_index_and_search_quickly():
    rng = random.Random(5)
    vocabulary = [f"word{i}" for i in range(500)]
    catalog = [Product(id=f"p{i:05d}", title=" ".join(rng.choices(vocabulary, k=6)), brand=rng.choice(BRANDS),
                       description=" ".join(rng.choices(vocabulary, k=40)), price=rng.choice(PRICES))
               for i in range(5000)]
    catalog[1234] = catalog[1234].model_copy(update={"title": "unmistakable teapot"})
    retriever = make()
    start = time.perf_counter()
    assert retriever.add(catalog) == 5000
    assert time.perf_counter() - start < 20
    assert retriever.count() == 5000
    assert ids(retriever.search("teapot", 10)) == ["p01234"]
    found = retriever.search("word1 word2 word3", 100)
    assert len(found) == 100
    assert [c.score for c in found] == sorted((c.score for c in found), reverse=True)
