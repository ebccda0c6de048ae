import json
import os
import threading
import time

import pytest

from search_rerank.core.filters import Filters
from search_rerank.core.product import Product
from search_rerank.data.co_interest import MAX_LINE_BYTES, CoInterest, co_interest, ubi_baskets
from search_rerank.serving import create_app
from search_rerank.serving.reco_api import co_interest_cache


def _ids(body):
    return [hit["id"] for hit in body["hits"]]


def _event(session, product, action="click"):
    return {
        "action_name": action,
        "query_id": f"q-{session}",
        "session_id": session,
        "event_attributes": {"object": {"object_id": product}, "position": {"ordinal": 0}},
    }


@pytest.fixture
def products(pipeline):
    return sorted(p.id for p in pipeline.store)


@pytest.fixture
def ubi_path(tmp_path):
    return tmp_path / "ubi" / "ubi.ndjson"


def _app_with_log(settings, pipeline, ubi_path, events, **reco):
    ubi_path.parent.mkdir(parents=True, exist_ok=True)
    (ubi_path.parent / "ubi.1.ndjson").write_text("\n".join(json.dumps(e) for e in events) + "\n", encoding="utf-8")
    service = settings.service.model_copy(update={"ubi_log_path": ubi_path})
    changed = {"service": service}
    if reco:
        changed["reco"] = settings.reco.model_copy(update=reco)
    app = create_app(settings.model_copy(update=changed), pipeline)
    deadline = time.monotonic() + 30  # the table is mined on a thread of its own
    while app.extensions["co_interest"].built_at == -float("inf") and time.monotonic() < deadline:
        time.sleep(0.01)
    return app.test_client()


def test_similar_returns_neighbours_without_the_product_itself(client, products):
    body = client.get(f"/products/{products[0]}/similar?size=5").get_json()
    assert body["source"] == "similar" and len(body["hits"]) == 5
    assert products[0] not in _ids(body)


def test_similar_applies_the_search_filters(client, pipeline, products):
    brand = next(iter(pipeline.store.get([products[1]]).values())).brand
    body = client.get(f"/products/{products[0]}/similar", query_string={"brand": brand, "size": 20}).get_json()
    assert body["hits"] and all(hit["product"]["brand"] == brand for hit in body["hits"])


def test_similar_of_an_unknown_product_is_a_json_404(client):
    response = client.get("/products/no-such-product/similar")
    assert response.status_code == 404 and response.get_json()["error"] == "not found"


def test_similar_refuses_a_size_that_is_not_a_number_naming_it(client, products):
    response = client.get(f"/products/{products[0]}/similar?size=lots")
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == "size"


def test_similar_refuses_an_unknown_parameter_naming_it(client, products):
    response = client.get(f"/products/{products[0]}/similar?colour=red")
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == "colour"


def test_similar_refuses_a_size_over_the_limit_naming_it(client, products, settings):
    response = client.get(f"/products/{products[0]}/similar?size={settings.service.max_size + 1}")
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == "size"


def test_similar_refuses_an_inverted_price_range_naming_the_bound(client, products):
    response = client.get(f"/products/{products[0]}/similar?price_min=10&price_max=1")
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == "price_max"


def test_also_falls_back_to_similar_items_without_history(client, products):
    body = client.get(f"/products/{products[0]}/also?size=3").get_json()
    assert body["source"] == "similar" and len(body["hits"]) == 3


def test_also_returns_products_clicked_in_the_same_sessions_most_shared_first(settings, pipeline, ubi_path, products):
    a, b, c = products[:3]
    events = [_event("s1", a), _event("s1", b), _event("s2", a), _event("s2", b), _event("s3", a, "purchase")]
    events.append(_event("s3", c, "add_to_cart"))
    client = _app_with_log(settings, pipeline, ubi_path, events)
    body = client.get(f"/products/{a}/also").get_json()
    assert body["source"] == "also" and _ids(body) == [b, c]


def test_also_ignores_impressions(settings, pipeline, ubi_path, products):
    a, b = products[:2]
    client = _app_with_log(settings, pipeline, ubi_path, [_event("s1", a), _event("s1", b, "impression")])
    assert client.get(f"/products/{a}/also").get_json()["source"] == "similar"


def test_co_interest_needs_the_minimum_support():
    table = co_interest([{"a", "b"}, {"a", "b"}, {"a", "c"}], min_support=2)
    assert table.also("a", 10) == [("b", 2)]


def test_co_interest_leaves_out_a_basket_over_the_limit_and_counts_it():
    table = co_interest([{"a", "b"}, {"a", "c", "d"}], max_basket=2)
    assert table.also("a", 10) == [("b", 1)] and table.oversized == 1


def test_co_interest_past_its_pairs_bound_drops_the_pairs_fewest_sessions_share():
    """Random pairs, one session each, are what a flood of made-up events adds; the pairs many sessions share are
    the table, and stay."""
    noise = [{f"x{i}", f"y{i}"} for i in range(3_000)]  # each pair once: the table drops them several times over
    table = co_interest([{"a", "b"}, {"a", "b"}, *noise], max_pairs=1_000)
    assert table.also("a", 10) == [("b", 2)] and table.dropped_below == 1
    assert len(table.companions) <= 1_000


def test_also_leaves_out_events_on_products_the_catalogue_does_not_hold(settings, pipeline, ubi_path, products):
    a, b = products[:2]
    made_up = [_event("s1", f"no-such-product-{i}") for i in range(5)]
    client = _app_with_log(settings, pipeline, ubi_path, [_event("s1", a), _event("s1", b), *made_up])
    assert client.application.extensions["co_interest"].current().companions.keys() == {a, b}


def test_also_ignores_a_session_that_clicked_more_products_than_a_shopper_would(settings, pipeline, ubi_path, products):
    a, b = products[:2]
    crawler = [_event("shared-id", pid) for pid in (a, *products[2:12])]
    client = _app_with_log(settings, pipeline, ubi_path, [_event("s1", a), _event("s1", b), *crawler], max_basket=5)
    body = client.get(f"/products/{a}/also").get_json()
    assert body["source"] == "also" and _ids(body) == [b]


def test_the_service_starts_without_waiting_for_the_ubi_log_to_be_mined(settings, pipeline, ubi_path, products):
    a, b = products[:2]
    ubi_path.parent.mkdir(parents=True)
    os.mkfifo(ubi_path.parent / "ubi.1.ndjson")  # mining reads it until a writer has written and closed it
    service = settings.service.model_copy(update={"ubi_log_path": ubi_path})
    apps = []
    starting = threading.Thread(
        target=lambda: apps.append(create_app(settings.model_copy(update={"service": service}), pipeline))
    )
    starting.start()
    starting.join(30)
    started = not starting.is_alive()
    with open(ubi_path.parent / "ubi.1.ndjson", "w", encoding="utf-8") as fifo:  # the log's content arrives
        fifo.write(json.dumps(_event("s1", a)) + "\n" + json.dumps(_event("s1", b)) + "\n")
    starting.join(30)
    assert started
    client, deadline = apps[0].test_client(), time.monotonic() + 30
    while client.get(f"/products/{a}/also").get_json()["source"] != "also" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _ids(client.get(f"/products/{a}/also").get_json()) == [b]


def test_a_stale_table_is_mined_again_off_the_request_while_the_old_one_answers():
    mined, release = [], threading.Event()

    def mine():  # the second mining (the stale table's) lasts until the test releases it
        mined.append(len(mined) + 1)
        if len(mined) == 2:
            release.wait(60)
        return CoInterest({"a": (("b", len(mined)),)})

    cache = co_interest_cache(refresh_s=0.001, mine=mine)
    cache.refresh()
    time.sleep(0.01)  # the table is now older than refresh_s
    started = time.monotonic()
    assert cache.current().also("a", 1) == [("b", 1)]  # answered from the old table, not after the mining
    assert time.monotonic() - started < 30
    release.set()
    deadline = time.monotonic() + 30
    while cache.current().also("a", 1) == [("b", 1)] and time.monotonic() < deadline:
        time.sleep(0.01)
    assert cache.current().also("a", 1)[0][1] >= 2


def test_a_failed_mining_keeps_the_previous_table(caplog):
    tables = iter([CoInterest({"a": (("b", 1),)})])
    cache = co_interest_cache(refresh_s=300, mine=lambda: next(tables))
    cache.refresh()
    cache.refresh()  # the iterator is spent: StopIteration, as a broken log would raise
    assert cache.current().also("a", 1) == [("b", 1)] and "mining the UBI log failed" in caplog.text


def test_ubi_baskets_skip_unreadable_lines_and_count_them(tmp_path):
    path = tmp_path / "ubi.1.ndjson"
    path.write_text(json.dumps(_event("s1", "a")) + "\nnot json\n" + json.dumps(_event("s1", "b")) + "\n")
    baskets, skipped = ubi_baskets([path])
    assert baskets == [{"a", "b"}] and skipped == 1


def test_a_search_with_few_results_carries_a_flagged_fallback_block(pipeline, client):
    # a price that only one product has leaves one candidate
    prices = [p.price for p in pipeline.store if p.price is not None]
    unique = next(price for price in prices if prices.count(price) == 1)
    filters = {"price_min": unique, "price_max": unique}
    body = client.post("/search", json={"query": "sofa", "filters": filters}).get_json()
    assert body["total"] < 3
    assert body["fallback"]["source"] == "similar" and body["fallback"]["reason"] in ("few_results", "no_results")
    assert body["fallback"]["hits"] and not set(_ids(body["fallback"])) & set(_ids(body))


def test_a_search_with_enough_results_has_no_fallback_block(client):
    assert "fallback" not in client.post("/search", json={"query": "sofa"}).get_json()


def test_filters_from_query_parameters_match_the_search_filters(app):
    from search_rerank.serving.reco_api import filters_from_args

    with app.test_request_context("/?category=Furniture > Sofas&brand=A&brand=B&attr.color=grey&price_max=5"):
        assert filters_from_args() == Filters(
            category="Furniture > Sofas", brand=("A", "B"), attributes={"color": "grey"}, price_max=5
        )


def test_ubi_baskets_skip_a_line_longer_than_the_limit_and_read_on(tmp_path):
    """A log cut by a crash can hold a run of NUL bytes without a line end: skipped in bounded pieces."""
    path = tmp_path / "ubi.1.ndjson"
    damage = b"\0" * (MAX_LINE_BYTES * 3)
    path.write_bytes(damage + b"\n" + (json.dumps(_event("s1", "a")) + "\n").encode() + damage)
    baskets, skipped = ubi_baskets([path])
    assert (baskets, skipped) == ([{"a"}], 2)


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here")
def test_ubi_baskets_do_not_read_a_device_under_a_log_name(tmp_path):
    """/dev/full never ends: read as a log, its NUL bytes filled the worker's memory until it was killed."""
    (tmp_path / "ubi.1.ndjson").symlink_to("/dev/full")
    (tmp_path / "ubi.2.ndjson").write_text(json.dumps(_event("s1", "a")) + "\n", encoding="utf-8")
    baskets, skipped = ubi_baskets(sorted(tmp_path.glob("ubi.*.ndjson")))
    assert (baskets, skipped) == ([{"a"}], 0)


def test_ubi_baskets_leave_out_what_a_forgotten_shopper_did_before_the_forget(tmp_path):
    # "Also bought" from a forgotten shopper's basket would show their purchases to anyone (min_support 1).
    def at(event, user, received):
        return event | {"user_id": user, "received_at": received} if user else event | {"received_at": received}

    before, forgot, after = "2026-12-01T10:00:00.000Z", "2026-12-01T11:00:00.000Z", "2026-12-01T12:00:00.000Z"
    events = [
        at(_event("s1", "a"), None, before),  # before logging in: the session they named is theirs
        at(_event("s1", "b"), "u1", before),
        at(_event("s2", "c"), "u2", before),
        at(_event("s2", "d"), "u2", before),
        {"action_name": "forget_shopper", "user_id": "u1", "timestamp": forgot, "received_at": forgot},
        at(_event("s3", "e"), "u1", after),  # a new visit after the forget counts again
        at(_event("s3", "f"), "u1", after),
    ]
    path = tmp_path / "ubi.1.ndjson"
    path.write_text("".join(json.dumps(e) + "\n" for e in events), encoding="utf-8")
    baskets, skipped = ubi_baskets([path])
    assert sorted(map(sorted, baskets)) == [["c", "d"], ["e", "f"]] and skipped == 0


@pytest.mark.parametrize(
    "product_id", ["%00", "a%00b", "%2E%2E", "%C3%A9", "%F0%9F%98%80", "x" * 5000, "%ff", "%20", "%5C"]
)
@pytest.mark.parametrize("route", ["similar", "also"])
def test_an_id_no_product_has_is_a_json_404_without_internals(client, product_id, route):
    response = client.get(f"/products/{product_id}/{route}")
    assert response.status_code == 404 and response.is_json
    text = response.get_data(as_text=True)
    assert not any(leak in text for leak in ("Traceback", "/tmp/", 'File "', "Error:", "Exception"))


def test_similar_with_a_filter_few_products_pass_returns_every_one_of_them(client, pipeline, products):
    """The filter is applied in the vector search, not to its first few neighbours after it."""
    by_brand: dict[str, list[str]] = {}
    for product in pipeline.store:
        by_brand.setdefault(product.brand, []).append(product.id)
    brand, ids = min(((b, i) for b, i in by_brand.items() if b and len(i) >= 3), key=lambda item: len(item[1]))
    body = client.get(f"/products/{products[0]}/similar", query_string={"brand": brand, "size": 50}).get_json()
    assert set(_ids(body)) == set(ids) - {products[0]}


@pytest.fixture(scope="module")
def slashed_client(catalog_client):
    return catalog_client([Product(id="sku/100 A", title="oak desk"), Product(id="sku/200", title="oak desk lamp")])


@pytest.mark.parametrize("route", ["similar", "also"])
@pytest.mark.parametrize("written", ["sku/100 A", "sku%2F100%20A"])
def test_an_id_holding_a_slash_reaches_its_product_escaped_or_not(slashed_client, route, written):
    body = slashed_client.get(f"/products/{written}/{route}").get_json()
    assert body["id"] == "sku/100 A" and _ids(body) == ["sku/200"]
