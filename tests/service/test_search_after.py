"""``search_after``: a page sorted by fields continued after a hit's sort values (ReactiveSearch 4's
``deepPagination``, a client's "load more" past the result window), on the embedded backend and on a cluster
alike: the matches that sort strictly after the cursor, as Elasticsearch's search_after reads it."""

from __future__ import annotations

import random
from typing import Any

import pytest
import tantivy
from both_backends import backend_fixtures, ids, search

from search_rerank.core.product import Product
from search_rerank.serving import embedded_search
from search_rerank.serving.search_after import TEXT_PATTERN_CHARS, Keywords, keywords_after, keywords_before

CATALOG = [
    Product(id="a1", title="Oak table", brand="Bolt", price=249.0, sales=3, extra={"added": "2025-01-02"}),
    Product(id="a2", title="Corner sofa", brand="Acme", price=499.0, sales=5, extra={"added": "2024-01-02"}),
    Product(id="a3", title="armchair", price=320.0, sales=2, extra={"added": "2023-05-01"}),
    Product(id="a4", title="Oak table", brand="Bolt", price=249.0, sales=3, extra={"added": "2025-01-02"}),
    Product(id="a5", title="Ångström lamp", brand="Acme", price=39.0, sales=9),
    Product(id="a6", title="Bench", brand="Cosy", price=120.0, sales=0, extra={"added": "2022-02-02"}),
    Product(id="a7", title="Modular corner sofa with chaise, left, grey", brand="Dune", price=899.0, sales=4),
    Product(id="a8", title="Modular corner sofa with chaise, right, grey", brand="Dune", price=899.0, sales=1),
    Product(id="a9", title="Modular corner sofa with chaise", brand="Dune", price=799.0, sales=7),
    Product(id="b1", title="Oak table", brand="Bolt", price=310.0, sales=3, extra={"added": "2024-07-07"}),
]  # fmt: skip
EVERY = {"match_all": {}}


embedded, client = backend_fixtures(CATALOG)


def pages(client, sort: list[Any], size: int, **body: Any) -> list[list[str]]:
    """Every page of a sorted search, each asked after the last hit of the one before."""
    asked: dict[str, Any] = {"sort": sort, "size": size, **body}
    found = []
    while True:
        hits = search(client, asked)["hits"]["hits"]
        if not hits:
            return found
        found.append([hit["_id"] for hit in hits])
        asked["search_after"] = hits[-1]["sort"]


def whole(client, sort: list[Any], **body: Any) -> list[str]:
    return ids(search(client, {"sort": sort, "size": 100, **body}))


@pytest.mark.parametrize(
    "sort",
    [
        [{"price": "asc"}, {"id": "asc"}],
        [{"price": "desc"}, {"id": "desc"}],
        [{"sales": "desc"}, {"id": "asc"}],
        [{"title.keyword": "asc"}, {"id": "asc"}],
        [{"title.keyword": "desc"}, {"price": "asc"}, {"id": "asc"}],
        [{"brand.keyword": "asc"}, {"id": "desc"}],
        [{"added": "desc"}, {"id": "asc"}],
    ],
    ids=lambda sort: ",".join(f"{next(iter(k))}:{next(iter(k.values()))}" for k in sort),
)
@pytest.mark.parametrize("size", [1, 3])
def test_paging_by_search_after_lists_every_match_once_in_the_sort_order(client, sort, size):
    listed = [pid for page in pages(client, sort, size) for pid in page]
    assert listed == whole(client, sort)
    assert len(listed) == len(CATALOG)


def test_a_keyword_longer_than_its_pattern_is_continued_among_the_keywords_sharing_its_first_characters(client):
    # Three titles share their first 31 characters; a cursor on each leads on to the next.
    sort = [{"title.keyword": "asc"}, {"id": "asc"}]
    answer = search(client, {"sort": sort, "size": 1, "search_after": ["Modular corner sofa with chaise", "a9"]})
    assert ids(answer) == ["a7"]
    answer = search(client, {"sort": sort, "size": 1, "search_after": [CATALOG[6].title, "a7"]})
    assert ids(answer) == ["a8"]


def test_a_cursor_tying_with_matches_on_every_key_leaves_them_out(client):
    # Elasticsearch puts the cursor after every document whose sort values equal it: a4 ties with a1 on price.
    assert ids(search(client, {"sort": [{"price": "asc"}], "size": 2, "search_after": [249.0]})) == ["b1", "a3"]


def test_products_without_the_value_come_after_every_value_and_continue_among_themselves(client):
    sort = [{"brand.keyword": "asc"}, {"id": "asc"}]
    assert ids(search(client, {"sort": sort, "search_after": ["Dune", "a9"]})) == ["a3"]
    assert ids(search(client, {"sort": sort, "search_after": [None, "a3"]})) == []


def test_a_cursor_after_the_last_value_of_one_key_finds_only_products_without_one(client):
    last = 1735776000000  # 2025-01-02, the latest date
    assert ids(search(client, {"sort": [{"added": "asc"}], "search_after": [last]})) == ["a5", "a7", "a8", "a9"]


def test_the_total_and_the_facets_count_the_whole_search(client):
    body = {
        "sort": [{"price": "asc"}, {"id": "asc"}],
        "query": {"match": {"title": "sofa"}},
        "search_after": [500.0, "a2"],
        "aggs": {"brands": {"terms": {"field": "brand.keyword"}}},
    }
    answer = search(client, body)
    assert ids(answer) == ["a9", "a7", "a8"]
    assert answer["hits"]["total"]["value"] == 4
    assert {b["key"]: b["doc_count"] for b in answer["aggregations"]["brands"]["buckets"]} == {"Dune": 3, "Acme": 1}


def test_a_numeric_cursor_may_be_the_text_of_a_number_as_reactivesearch_sends_it(client):
    assert ids(search(client, {"sort": [{"price": "asc"}], "size": 2, "search_after": ["299"]})) == ["b1", "a3"]


def test_a_fraction_on_a_whole_number_field_is_cut_towards_zero_as_elasticsearch_reads_it(client):
    # 2.5 is read as 2: a3 (2 sales, an id after "a0") follows, then the products of 3 sales.
    answer = search(client, {"sort": [{"sales": "asc"}, {"id": "asc"}], "size": 2, "search_after": [2.5, "a0"]})
    assert ids(answer) == ["a3", "a1"]


def test_reactivesearch_deep_pagination_continues_a_sorted_result_list(client):
    query = {"id": "results", "dataField": ["title"], "size": 2, "sortField": "price", "sortBy": "desc"}
    first = client.post("/products/_reactivesearch", json={"query": [query]}).get_json()["results"]["hits"]["hits"]
    cursor = first[-1]["sort"][0]
    deep = {**query, "deepPagination": True, "deepPaginationConfig": {"cursor": cursor}}
    answer = client.post("/products/_reactivesearch", json={"query": [deep]})
    assert answer.status_code == 200, answer.get_json()
    assert [hit["_id"] for hit in answer.get_json()["results"]["hits"]["hits"]] == ["a9", "a2"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"sort": [{"price": "asc"}], "search_after": [1, 2]}, "search_after"),
        ({"sort": [{"price": "asc"}, {"id": "asc"}], "search_after": [1]}, "search_after"),
        ({"sort": [{"price": "asc"}], "search_after": 249}, "search_after"),
        ({"sort": [{"price": "asc"}], "search_after": ["cheap"]}, "search_after[0]"),
        ({"sort": [{"price": "asc"}], "search_after": [{"lt": 3}]}, "search_after[0]"),
        ({"sort": [{"title.keyword": "asc"}], "search_after": [3]}, "search_after[0]"),
        ({"sort": [{"price": "asc"}], "search_after": [249], "from": 5}, "from"),
    ],
)
def test_a_cursor_that_does_not_fit_the_sort_is_a_400_naming_it(embedded, body, field):
    response = embedded.post("/products/_search", json=body)
    assert response.status_code == 400
    assert f"[{field}]" in response.get_json()["error"]["reason"]


def test_a_page_in_order_of_relevance_cannot_be_continued_a_501_naming_search_after(embedded):
    response = embedded.post("/products/_search", json={"query": {"match": {"title": "sofa"}}, "search_after": [3.2]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "search_after"


def test_a_cursor_among_more_ties_than_a_page_reads_is_a_501_naming_search_after(embedded, monkeypatch):
    monkeypatch.setattr(embedded_search, "MAX_SORT_TIES", 2)
    sort = [{"title.keyword": "asc"}, {"id": "asc"}]  # three "Oak table"s
    response = embedded.post("/products/_search", json={"sort": sort, "search_after": ["Oak table", "a1"]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "search_after"
    assert ids(search(embedded, {"sort": sort, "search_after": ["Corner sofa", "a2"], "size": 1})) == ["a9"]


# Characters at the edges of UTF-8's lengths and of the surrogates, regular expression syntax, a line break and
# the last code point.
AWKWARD = [
    *("a", "z", "\x01", "\n", "\x7f", "\x80", "é", "\u07ff", "\u0800", "\ud7ff", "\ue000", "\uffff"),
    *("😀", "\U0010ffff", *".*[]^-\\(|"),
]


@pytest.fixture(scope="module")
def keywords():
    """A raw keyword field of random keywords of awkward characters, as the embedded index holds a sort keyword."""
    builder = tantivy.SchemaBuilder()
    builder.add_text_field("k", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    schema = builder.build()
    index = tantivy.Index(schema)
    writer = index.writer()
    rng = random.Random(7)
    values = {"".join(rng.choice(AWKWARD) for _ in range(rng.randint(1, 6))) for _ in range(3000)}
    for value in values:
        writer.add_document(tantivy.Document(k=value))
    writer.commit()
    index.reload()
    searcher = index.searcher()

    def matched(found: Keywords) -> set[str]:
        parts = [tantivy.Query.regex_query(schema, "k", pattern) for pattern in found.patterns]
        parts += [tantivy.Query.term_set_query(schema, "k", list(found.terms))] if found.terms else []
        if not parts:
            return set()
        hits = searcher.search(
            tantivy.Query.boolean_query([(tantivy.Occur.Should, p) for p in parts]), len(values)
        ).hits
        return {searcher.doc(address)["k"][0] for _, address in hits}

    return sorted(values), matched


def test_the_keyword_patterns_match_exactly_the_keywords_after_and_before_a_value(keywords):
    values, matched = keywords
    for value in random.Random(3).sample(values, 60):
        assert matched(keywords_after(value)) == {v for v in values if v > value}, value
        assert matched(keywords_before(value)) == {v for v in values if v < value}, value


def test_a_pattern_of_the_longest_keyword_written_out_is_within_tantivys_automaton_limit(keywords):
    _, matched = keywords
    rng = random.Random(5)
    for _ in range(50):
        value = "".join(rng.choice(AWKWARD) for _ in range(TEXT_PATTERN_CHARS))
        matched(keywords_after(value)), matched(keywords_before(value))


def test_a_sorted_pages_score_values_are_its_words_bm25_alone(embedded):
    # A page sorted by a field, then _score, carries each hit's score for the query's words, as the lexical index
    # scores them (a term set restricting the scoring to the page's ids once added 1 of its own).
    leg = embedded.application.extensions["search_rerank"].current.legs["lexical"]
    searcher = leg.searcher()
    bm25 = {
        searcher.doc(address)["id"][0]: score
        for score, address in searcher.search(leg.text_query("oak table"), 100).hits
    }
    answer = search(embedded, {"query": {"match": {"title": "oak table"}}, "sort": [{"price": "asc"}, "_score"]})
    scores = {hit["_id"]: hit["sort"][1] for hit in answer["hits"]["hits"]}
    assert scores and scores == pytest.approx({pid: bm25[pid] for pid in scores})
