"""Scrolling (serving/search_contexts.py): what export scripts read a whole catalogue with, elasticsearch-py's
``helpers.scan`` first, each page's id carrying the search it continues, on both backends."""

from __future__ import annotations

import base64
import json
import random
import string
import time
import zlib
from typing import Any

import pytest
from compat_suite import embedded_app, opensearch_app
from elasticsearch import Elasticsearch, helpers
from elasticsearch.dsl import Search
from front_end_catalog import product
from live_server import served

from search_rerank.serving.search_contexts import Scroll, served_version

# Prices repeat every 7 products and sales every 5, so that a sort by either has ties across pages to keep apart.
CATALOG = [
    product(
        f"p{i:03d}",
        f"{'Oak' if i % 3 == 0 else 'Pine'} table number {i}",
        "Acme" if i % 2 else "Dune",
        "Furniture > Tables",
        float(100 + 10 * (i % 7)),
        sales=i % 5,
    )
    for i in range(240)
]
IDS = {p.id for p in CATALOG}
OAK = {p.id for p in CATALOG if p.title.startswith("Oak")}


@pytest.fixture(scope="module", params=["embedded", "opensearch"])
def app(request, tmp_path_factory):
    root = tmp_path_factory.mktemp(f"scroll-{request.param}")
    if request.param == "embedded":
        app, pipeline = embedded_app(root, catalog=CATALOG, aliases={})
        yield app
        pipeline.close()
    else:
        with opensearch_app(root, request.getfixturevalue("osmem_server_url"), catalog=CATALOG, aliases={}) as app:
            yield app


@pytest.fixture()
def embedded(app):
    if app.config["SETTINGS"].lexical.backend != "tantivy":
        pytest.skip("the embedded index's own order")
    return app.test_client()


def version_of(app) -> str:
    return served_version(app.extensions["search_rerank"].current)


@pytest.fixture(scope="module")
def es(app):
    with served(app) as url:
        yield Elasticsearch(url, request_timeout=60, max_retries=0)


@pytest.fixture()
def client(app):
    return app.test_client()


def scrolled(client, body, params="scroll=1m"):
    """Every page of a scroll of ``body``: the answers, first to the empty one."""
    answer = client.post(f"/products/_search?{params}", json=body)
    assert answer.status_code == 200, answer.get_json()
    pages = [answer.get_json()]
    while pages[-1]["hits"]["hits"]:
        answer = client.post("/_search/scroll", json={"scroll": "1m", "scroll_id": pages[-1]["_scroll_id"]})
        assert answer.status_code == 200, answer.get_json()
        pages.append(answer.get_json())
        assert len(pages) < 100
    return pages


def ids_of(pages):
    return [hit["_id"] for page in pages for hit in page["hits"]["hits"]]


def test_helpers_scan_reads_every_product_once_with_its_source(es):
    hits = list(helpers.scan(es, index="products", size=50, query={"query": {"match_all": {}}}))
    assert sorted(hit["_id"] for hit in hits) == sorted(IDS)
    assert all(hit["_source"]["id"] == hit["_id"] and hit["_index"] == "products" for hit in hits)


def test_helpers_scan_pages_of_a_thousand_pass(es, client):
    found = [hit["_id"] for hit in helpers.scan(es, index="products", size=1000)]
    assert sorted(found) == sorted(IDS)


def test_a_scan_in_the_order_of_a_field_follows_it_with_ties_kept_apart_across_pages(es):
    query = {"sort": [{"price": "desc"}], "query": {"match_all": {}}}
    hits = list(helpers.scan(es, index="products", size=16, preserve_order=True, query=query))
    assert sorted(hit["_id"] for hit in hits) == sorted(IDS)
    prices = [hit["sort"][0] for hit in hits]
    assert prices == sorted(prices, reverse=True)
    assert all(len(hit["sort"]) == 1 for hit in hits)  # the id breaking ties is the scroll's, not the body's


@pytest.mark.parametrize("sort", [[{"price": "asc"}], None], ids=["sorted", "index-order"])
def test_a_scroll_of_hits_without_their_ids_pages_on_from_each_pages_last(client, sort):
    # Magento's every search: "stored_fields": "_none_" leaves each hit's _id out, the ids in fields._id (a 500 on
    # the embedded backend, whose cursor was read from the last hit's _id).
    body = {"size": 7, "stored_fields": "_none_", "docvalue_fields": ["_id"], **({"sort": sort} if sort else {})}
    pages = scrolled(client, body)
    found = [hit["fields"]["_id"][0] for page in pages for hit in page["hits"]["hits"]]
    assert sorted(found) == sorted(IDS)


def test_a_scroll_of_a_search_with_words_lists_every_match_best_bm25_first(client):
    pages = scrolled(client, {"size": 7, "query": {"match": {"title": "oak"}}})
    found = ids_of(pages)
    assert sorted(found) == sorted(OAK)
    scores = [hit["_score"] for page in pages for hit in page["hits"]["hits"]]
    assert scores == sorted(scores, reverse=True)


def test_a_scroll_of_filters_alone_is_in_index_order(embedded):
    pages = scrolled(embedded, {"size": 9, "query": {"bool": {"filter": {"term": {"brand": "Acme"}}}}})
    found = ids_of(pages)
    assert found == sorted(p.id for p in CATALOG if p.brand == "Acme")
    assert all("sort" not in hit for page in pages for hit in page["hits"]["hits"])


def test_each_page_counts_every_match(client):
    pages = scrolled(client, {"size": 30, "sort": ["_doc"], "query": {"match": {"title": "oak"}}})
    assert {page["hits"]["total"]["value"] for page in pages} == {len(OAK)}


def test_aggregations_are_the_first_pages_alone(client):
    pages = scrolled(client, {"size": 100, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}})
    assert {b["key"]: b["doc_count"] for b in pages[0]["aggregations"]["brands"]["buckets"]} == {
        "Acme": 120,
        "Dune": 120,
    }
    assert all("aggregations" not in page for page in pages[1:])


def test_a_sort_by_doc_is_the_products_by_id_and_search_after_continues_it(embedded):
    first = embedded.post("/products/_search", json={"size": 5, "sort": ["_doc"]}).get_json()["hits"]["hits"]
    assert [hit["_id"] for hit in first] == sorted(IDS)[:5]
    after = embedded.post("/products/_search", json={"size": 5, "sort": ["_doc"], "search_after": first[-1]["sort"]})
    assert [hit["_id"] for hit in after.get_json()["hits"]["hits"]] == sorted(IDS)[5:10]


@pytest.mark.parametrize("how", ["path", "query string"])
def test_the_next_page_takes_its_id_in_the_path_or_the_query_string(client, how):
    first = client.post("/products/_search?scroll=1m", json={"size": 3, "sort": ["_doc"]}).get_json()
    scroll_id = first["_scroll_id"]
    target = f"/_search/scroll/{scroll_id}" if how == "path" else f"/_search/scroll?scroll_id={scroll_id}"
    answer = client.get(target)
    assert answer.status_code == 200
    assert [hit["_id"] for hit in answer.get_json()["hits"]["hits"]] == sorted(IDS)[3:6]


def test_a_page_asked_with_rest_total_hits_as_int_counts_as_a_number(client):
    first = client.post("/products/_search?scroll=1m", json={"size": 3}).get_json()
    answer = client.post("/_search/scroll?rest_total_hits_as_int=true", json={"scroll_id": first["_scroll_id"]})
    assert answer.get_json()["hits"]["total"] == len(IDS)


def test_an_id_asked_twice_answers_the_same_page(client):
    first = client.post("/products/_search?scroll=1m", json={"size": 4, "sort": ["_doc"]}).get_json()
    again = [client.post("/_search/scroll", json={"scroll_id": first["_scroll_id"]}).get_json() for _ in range(2)]
    assert ids_of(again[:1]) == ids_of(again[1:]) == sorted(IDS)[4:8]


def test_a_scroll_past_its_keep_alive_is_a_404_search_context_missing(client):
    first = client.post("/products/_search?scroll=1ms", json={"size": 3}).get_json()
    time.sleep(0.05)
    answer = client.post("/_search/scroll", json={"scroll_id": first["_scroll_id"]})
    assert answer.status_code == 404
    assert answer.get_json()["error"]["type"] == "search_context_missing_exception"


def test_a_scroll_of_a_version_no_longer_served_is_a_404(client):
    first = client.post("/products/_search?scroll=1m", json={"size": 3, "sort": ["_doc"]}).get_json()
    other = Scroll("products", {"size": 3}, {}, "20200101-000000-000000", time.time() + 60, after=[3])
    assert client.post("/_search/scroll", json={"scroll_id": first["_scroll_id"]}).status_code == 200
    answer = client.post("/_search/scroll", json={"scroll_id": other.scroll_id()})
    assert answer.status_code == 404
    assert answer.get_json()["error"]["type"] == "search_context_missing_exception"


def _packed(raw: bytes) -> str:
    return base64.urlsafe_b64encode(zlib.compress(raw)).decode()


@pytest.mark.parametrize(
    "scroll_id",
    [
        "not-an-id",
        base64.urlsafe_b64encode(b"plain bytes").decode(),
        _packed(b"not json"),
        _packed(b'{"a": 1}'),
        _packed(b"[1]"),
        _packed(json.dumps([2, "products", {}, {}, "v", 1e12, None]).encode()),
        _packed(json.dumps([1, "scroll", "products", {}, {}, "v", 1e12, -3]).encode()),
        _packed(json.dumps([1, "pit", "products", "v", 1e12]).encode()),  # a point in time's id
        _packed(b"[" * 100_000),
        _packed(b" " * 20_000_000),  # inflates past what an id may hold
        ["two", "ids"],
        7,
    ],
    ids=lambda value: str(value)[:20],
)
def test_an_id_that_cannot_be_read_is_a_400_naming_scroll_id(embedded, scroll_id):
    # (On a cluster backend an id not of this service's is the cluster's own, passed through to it.)
    answer = embedded.post("/_search/scroll", json={"scroll_id": scroll_id})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["root_cause"][0]["field"] == "scroll_id"


def test_an_id_written_by_hand_is_checked_as_the_search_it_carries(app, client):
    version = version_of(app)
    fair = Scroll(
        "products", {"size": 2, "sort": [{"price": "asc"}]}, {}, version, time.time() + 60, after=[100.0, "p070"]
    )
    answer = client.post("/_search/scroll", json={"scroll_id": fair.scroll_id()})
    assert [hit["_id"] for hit in answer.get_json()["hits"]["hits"]] == ["p077", "p084"]  # priced 100 and after p070
    forged = Scroll("products", {"size": -1}, {}, version, time.time() + 60)
    answer = client.post("/_search/scroll", json={"scroll_id": forged.scroll_id()})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["root_cause"][0]["field"] == "size"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"from": 5}, "from"),
        ({"size": 0}, "size"),
        ({"search_after": ["p001"], "sort": ["_doc"]}, "search_after"),
        ({"collapse": {"field": "brand.keyword"}}, "collapse"),
        ({"track_total_hits": False}, "track_total_hits"),
        ({"track_total_hits": 100}, "track_total_hits"),
    ],
)
def test_what_elasticsearch_refuses_in_a_scroll_context_is_a_400_naming_it(client, body, field):
    answer = client.post("/products/_search?scroll=1m", json=body)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["root_cause"][0]["field"] == field


def test_a_keep_alive_past_five_minutes_is_a_400_naming_scroll(client):
    first = client.post("/products/_search?scroll=10m", json={})
    assert first.status_code == 400
    assert first.get_json()["error"]["root_cause"][0]["field"] == "scroll"
    opened = client.post("/products/_search?scroll=1m", json={}).get_json()
    later = client.post("/_search/scroll", json={"scroll": "1h", "scroll_id": opened["_scroll_id"]})
    assert later.status_code == 400


def test_clearing_a_scroll_answers_it_freed_and_an_expired_one_is_a_404(client):
    alive = client.post("/products/_search?scroll=1m", json={"size": 2}).get_json()["_scroll_id"]
    expired = client.post("/products/_search?scroll=1ms", json={"size": 2}).get_json()["_scroll_id"]
    time.sleep(0.05)
    both = client.delete("/_search/scroll", json={"scroll_id": [alive, expired]})
    assert (both.status_code, both.get_json()) == (200, {"succeeded": True, "num_freed": 1})
    gone = client.delete(f"/_search/scroll/{expired}")
    assert (gone.status_code, gone.get_json()) == (404, {"succeeded": True, "num_freed": 0})


def test_a_next_page_without_an_id_is_a_400(embedded):
    answer = embedded.post("/_search/scroll", json={"scroll": "1m"})
    assert answer.status_code == 400
    assert answer.get_json()["error"]["root_cause"][0]["field"] == "scroll_id"


def test_clearing_every_scroll_succeeds(client):
    answer = client.delete("/_search/scroll/_all")
    assert (answer.status_code, answer.get_json()) == (200, {"succeeded": True, "num_freed": 0})


# ------------------------------------------------------------------ points in time (the embedded index's own)


def test_elasticsearch_dsl_iterate_reads_every_product_once_through_a_point_in_time(es):
    """On both backends: on an OpenSearch cluster, Elasticsearch's ``_pit`` (which the client opens and closes)
    goes to OpenSearch's endpoint in its shape; it was a 403 there."""
    found = [hit.meta.id for hit in Search(using=es, index="products")[:40].iterate()]
    assert sorted(found) == sorted(IDS)


def test_elasticsearchs_point_in_time_opens_and_closes_in_its_own_shape_on_both_backends(client):
    opened = client.post("/products/_pit?keep_alive=1m")
    assert opened.status_code == 200 and set(opened.get_json()) >= {"id", "_shards"}, opened.get_json()
    assert "pit_id" not in opened.get_json()
    closed = client.delete("/_pit", json={"id": opened.get_json()["id"]})
    assert (closed.status_code, closed.get_json()) == (200, {"succeeded": True, "num_freed": 1})


def test_a_search_in_a_point_in_time_is_sorted_with_the_id_last_and_answers_the_id_to_go_on_with(embedded):
    pit = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    body = {"size": 3, "pit": {"id": pit, "keep_alive": "1m"}, "sort": [{"price": "desc"}]}
    first = embedded.post("/_search", json=body).get_json()
    assert first["pit_id"] and [len(hit["sort"]) for hit in first["hits"]["hits"]] == [2, 2, 2]
    after = {**body, "pit": {"id": first["pit_id"]}, "search_after": first["hits"]["hits"][-1]["sort"]}
    second = embedded.post("/_search", json=after).get_json()["hits"]["hits"]
    prices = [hit["sort"][0] for hit in first["hits"]["hits"] + second]
    assert prices == sorted(prices, reverse=True) and len({hit["_id"] for hit in second}) == 3


def test_opensearchs_point_in_time_opens_and_closes_in_its_own_shape(embedded):
    opened = embedded.post("/products/_search/point_in_time?keep_alive=1m").get_json()
    found = embedded.post("/_search", json={"pit": {"id": opened["pit_id"]}, "sort": ["_doc"], "size": 2}).get_json()
    assert [hit["_id"] for hit in found["hits"]["hits"]] == sorted(IDS)[:2]
    closed = embedded.delete("/_search/point_in_time", json={"pit_id": [opened["pit_id"]]})
    assert closed.get_json() == {"pits": [{"pit_id": opened["pit_id"], "successful": True}]}


def test_a_point_in_time_of_a_version_no_longer_served_or_expired_is_a_404_and_an_index_beside_it_a_400(embedded):
    expired = embedded.post("/products/_pit?keep_alive=1ms").get_json()["id"]
    time.sleep(0.05)
    assert embedded.post("/_search", json={"pit": {"id": expired}}).status_code == 404
    live = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    beside = embedded.post("/products/_search", json={"pit": {"id": live}})
    assert beside.status_code == 400 and beside.get_json()["error"]["field"] == "index"
    garbled = embedded.post("/_search", json={"pit": {"id": "nonsense"}})
    assert garbled.status_code == 400 and garbled.get_json()["error"]["field"] == "pit.id"
    closed = embedded.delete("/_pit", json={"id": live})
    assert (closed.status_code, closed.get_json()) == (200, {"succeeded": True, "num_freed": 1})
    assert embedded.post("/no-such-index/_pit?keep_alive=1m").status_code == 404


def test_a_key_a_scroll_request_does_not_take_is_a_400_naming_it(client):
    first = client.post("/products/_search?scroll=1m", json={"size": 2}).get_json()
    answer = client.post("/_search/scroll", json={"scroll_id": first["_scroll_id"], "scrol": "1m"})
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "scrol"


# ------------------------------------------------------------------ ids written by hand, and what changes under them


def test_an_offset_past_every_match_is_an_empty_page_not_a_request_for_billions_of_hits(app, client):
    # tantivy sets aside room for offset + size hits before it reads one: 4e9 aborted the process.
    forged = Scroll(
        "products", {"size": 2, "query": {"match": {"title": "oak"}}}, {}, version_of(app), time.time() + 60
    )
    forged.after = 4_000_000_000
    answer = client.post("/_search/scroll", json={"scroll_id": forged.scroll_id()})
    assert answer.status_code in (200, 400)
    if answer.status_code == 200:
        assert answer.get_json()["hits"]["hits"] == []


@pytest.mark.parametrize(
    ("body", "after"),
    [
        ({"size": 2, "from": 5, "sort": ["_doc"]}, None),
        ({"size": 0, "sort": ["_doc"]}, None),
        ({"size": 2, "track_total_hits": False, "sort": ["_doc"]}, None),
        ({"size": 2, "query": {"match": {"title": "oak"}}}, True),  # an offset of true
        ({"size": 2, "query": {"match": {"title": "oak"}}}, ["p001"]),  # sort values where hits follow by count
        ({"size": 2, "sort": [{"price": "asc"}]}, 5),  # a count where they follow by sort values
    ],
    ids=["from", "size-0", "no-total", "offset-true", "values-for-an-offset", "offset-for-values"],
)
def test_an_id_written_by_hand_is_held_to_what_a_first_page_is(app, client, body, after):
    forged = Scroll("products", body, {}, version_of(app), time.time() + 60, after=after)
    answer = client.post("/_search/scroll", json={"scroll_id": forged.scroll_id()})
    assert answer.status_code == 400, answer.get_json()


def test_an_id_with_more_after_it_or_an_expiry_no_keep_alive_gives_is_a_400(app, embedded):
    sid = embedded.post("/products/_search?scroll=1m", json={"size": 2}).get_json()["_scroll_id"]
    assert embedded.get(f"/_search/scroll/{sid}/more").status_code == 400
    assert embedded.post("/_search/scroll", json={"scroll_id": sid + sid}).status_code == 400
    lasting = Scroll("products", {"size": 2}, {}, version_of(app), time.time() + 86_400)
    assert embedded.post("/_search/scroll", json={"scroll_id": lasting.scroll_id()}).status_code == 400


def test_an_update_in_place_ends_the_scrolls_and_points_in_time_open_before_it(tmp_path):
    from search_rerank.indexing.indexes import update_index
    from search_rerank.serving.ops import reopen

    app, pipeline = embedded_app(tmp_path, catalog=CATALOG[:20], aliases={})
    client = app.test_client()
    scroll = client.post("/products/_search?scroll=1m", json={"size": 3, "query": {"match": {"title": "oak"}}})
    pit = client.post("/products/_pit?keep_alive=1m").get_json()["id"]
    update_index([], ["p003"], app.config["SETTINGS"], progress=False)
    reopen(app)
    later = client.post("/_search/scroll", json={"scroll_id": scroll.get_json()["_scroll_id"]})
    assert later.status_code == 404  # offsets past the deleted product would skip one still there
    assert client.post("/_search", json={"pit": {"id": pit}, "sort": ["_doc"]}).status_code == 404
    pipeline.close()


def test_a_page_in_a_point_in_time_may_be_as_large_as_the_result_window(embedded):
    pit = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    sorted_page = embedded.post("/_search", json={"pit": {"id": pit}, "size": 1000, "sort": [{"price": "asc"}]})
    assert sorted_page.status_code == 200 and len(sorted_page.get_json()["hits"]["hits"]) == len(IDS)
    ranked_page = embedded.post(
        "/_search", json={"pit": {"id": pit}, "size": 1000, "query": {"match": {"title": "oak"}}}
    )
    assert ranked_page.status_code == 200  # the ranked candidates, then the other matches


@pytest.mark.parametrize(("pit", "field"), [("an id alone", "pit"), ({"id": "x", "keep": "1m"}, "pit.keep")])
def test_a_pit_that_is_not_an_object_of_its_keys_is_a_400_naming_it(embedded, pit, field):
    answer = embedded.post("/_search", json={"pit": pit})
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == field


def test_a_scroll_of_words_sorted_by_score_then_a_field_is_a_501_not_the_lexical_order_alone(embedded):
    body = {"size": 5, "query": {"match": {"title": "oak"}}, "sort": [{"_score": "desc"}, {"price": "asc"}]}
    answer = embedded.post("/products/_search?scroll=1m", json=body)
    assert answer.status_code == 501 and answer.get_json()["error"]["unsupported"] == "scroll"


@pytest.mark.parametrize(
    "sort", [None, ["_score"], [{"_score": "desc"}, {"_shard_doc": "asc"}], [{"_score": {"order": "DESC"}}]]
)
def test_pages_in_a_point_in_time_in_order_of_relevance_go_on_after_each_pages_last_sort_values(embedded, sort):
    """The loop Elasticsearch's docs and JS client page with: each hit's sort values (its score and, for
    `_shard_doc`, its place) as the next page's search_after. Without them the loop asked the first page again."""
    pit = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    body = {"size": 7, "query": {"match": {"title": "oak"}}, **({"sort": sort} if sort is not None else {})}
    ranking = {"query": body["query"], "size": len(OAK)}
    whole = embedded.post("/products/_search", json=ranking).get_json()["hits"]["hits"]
    pages, after = [], None
    while len(pages) < 20:
        asked = {**body, "pit": {"id": pit}, **({"search_after": after} if after is not None else {})}
        answer = embedded.post("/_search", json=asked).get_json()
        hits = answer["hits"]["hits"]
        if not hits:
            break
        pages.append(hits)
        pit, after = answer["pit_id"], hits[-1]["sort"]
    assert [hit["_id"] for page in pages for hit in page] == [hit["_id"] for hit in whole]


def test_a_search_after_in_a_point_in_time_in_order_of_relevance_without_a_place_is_a_400_naming_it(embedded):
    pit = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    answer = embedded.post("/_search", json={"pit": {"id": pit}, "search_after": [1.5, "p001"]})
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "search_after[1]"


def excluding_words(chars: int) -> dict[str, Any]:
    """A body of about ``chars`` characters that compresses little, as a scroll id compresses its body: a filter
    leaving out brands of random letters and digits, which no product has."""
    rng = random.Random(chars)
    letters = string.ascii_letters + string.digits
    brands = ["".join(rng.choices(letters, k=12)) for _ in range(chars // 15)]
    return {"query": {"bool": {"must": {"match": {"title": "oak"}}, "must_not": {"terms": {"brand.keyword": brands}}}}}


def test_a_scroll_whose_id_would_not_fit_in_the_next_pages_request_is_a_400_naming_body(client):
    most = client.application.config["SETTINGS"].service.max_body_bytes
    answer = client.post("/products/_search?scroll=1m", json=excluding_words(most * 6 // 10))
    assert answer.status_code == 400 and answer.get_json()["error"]["field"] == "body"


def test_a_scroll_of_a_body_that_compresses_little_goes_on_to_its_next_page(client):
    most = client.application.config["SETTINGS"].service.max_body_bytes
    assert len(ids_of(scrolled(client, {**excluding_words(most * 4 // 10), "size": 5}))) == len(OAK)


def test_a_multi_search_in_a_point_in_time_answers_each_search_in_it(embedded):
    pit = embedded.post("/products/_pit?keep_alive=1m").get_json()["id"]
    sorted_by_price = {"pit": {"id": pit}, "size": 2, "sort": [{"price": "asc"}]}
    ndjson = f"{{}}\n{json.dumps(sorted_by_price)}\n{{}}\n{json.dumps({'size': 0})}\n"
    first, plain = embedded.post("/_msearch", data=ndjson).get_json()["responses"]
    assert first["status"] == 200 and first["pit_id"] and len(first["hits"]["hits"]) == 2
    assert plain["status"] == 200 and "pit_id" not in plain
