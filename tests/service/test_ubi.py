"""UBI logging: every search writes a query record and returns its query id; front ends post events against it."""

import json
import os
import time

import pytest

from search_rerank.core.product import Product
from search_rerank.data.clicks import epoch_ms, read_ubi
from search_rerank.serving import create_app
from search_rerank.serving.ubi import UbiEvent, UbiLog, UbiQuery

CLICK = {"action_name": "click", "client_id": "client-1", "session_id": "session-1"}


@pytest.fixture
def ubi_path(tmp_path):
    return tmp_path / "ubi" / "ubi.ndjson"


@pytest.fixture
def ubi_client(settings, pipeline, ubi_path):
    service = settings.service.model_copy(update={"ubi_log_path": ubi_path, "ubi_application": "shop"})
    return create_app(settings.model_copy(update={"service": service}), pipeline).test_client()


def records(ubi_path):
    """Every line of this process's UBI file, parsed."""
    path = ubi_path.with_name(f"ubi.{os.getpid()}.ndjson")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def click_on(query_id, product_id, ordinal=0):
    return {
        **CLICK,
        "query_id": query_id,
        "event_attributes": {
            "object": {"object_id": product_id, "object_id_field": "id"},
            "position": {"ordinal": ordinal},
        },
    }


def test_search_returns_its_query_id_in_the_header_and_the_body(ubi_client):
    response = ubi_client.post("/search", json={"query": "sofa", "size": 3})
    assert response.headers["X-Query-Id"] == response.get_json()["meta"]["query_id"]


def test_search_logs_a_ubi_query_record_with_the_hits_in_shown_order(ubi_client, ubi_path):
    response = ubi_client.post(
        "/search",
        json={"query": "oak table", "size": 5},
        headers={"X-Ubi-Client-Id": "client-1", "X-Ubi-Session-Id": "session-1"},
    )
    [record] = records(ubi_path)
    query = UbiQuery.model_validate(record)
    assert query.query_id == response.headers["X-Query-Id"]
    assert query.user_query == "oak table"
    assert query.query_response_hit_ids == [hit["id"] for hit in response.get_json()["hits"]]
    assert (query.application, query.client_id) == ("shop", "client-1")
    assert query.query_attributes["session_id"] == "session-1"


def test_a_client_id_that_is_not_an_id_is_not_logged(ubi_client, ubi_path):
    ubi_client.post("/search", json={"query": "lamp"}, headers={"X-Ubi-Client-Id": "<script>alert(1)</script>"})
    assert "client_id" not in records(ubi_path)[0]


def test_elasticsearch_search_logs_a_query_and_returns_its_id(ubi_client, ubi_path):
    response = ubi_client.post("/products/_search", json={"query": {"match": {"title": "rug"}}, "size": 4})
    body = response.get_json()
    [record] = records(ubi_path)
    assert record["query_id"] == body["search_rerank"]["query_id"] == response.headers["X-Query-Id"]
    assert record["query_response_hit_ids"] == [hit["_id"] for hit in body["hits"]["hits"]]


def test_multi_search_logs_one_query_per_search(ubi_client, ubi_path):
    lines = (
        "\n".join(
            json.dumps(x)
            for x in ({}, {"query": {"match": {"title": "lamp"}}}, {}, {"query": {"match": {"title": "chair"}}})
        )
        + "\n"
    )
    body = ubi_client.post("/_msearch", data=lines, content_type="application/x-ndjson").get_json()
    logged = {r["query_id"]: r["user_query"] for r in records(ubi_path)}
    assert logged == {r["search_rerank"]["query_id"]: q for r, q in zip(body["responses"], ["lamp", "chair"])}


def test_a_search_then_a_click_are_logged_with_the_same_query_id(ubi_client, ubi_path):
    hits = ubi_client.post("/search", json={"query": "sofa", "size": 3})
    query_id, first = hits.headers["X-Query-Id"], hits.get_json()["hits"][0]["id"]
    assert ubi_client.post("/ubi/events", json=click_on(query_id, first)).get_json() == {"accepted": 1}
    query, event = records(ubi_path)
    assert UbiQuery.model_validate(query).query_id == UbiEvent.model_validate(event).query_id == query_id
    assert event["event_attributes"]["object"]["object_id"] == first


def test_events_without_time_or_application_get_the_receipt_time_and_the_services_name(ubi_client, ubi_path):
    ubi_client.post("/ubi/events", json={"action_name": "search", "query_id": "q-1"})
    [event] = records(ubi_path)
    assert event["application"] == "shop" and event["timestamp"].endswith("Z")


def test_the_log_keeps_when_the_service_received_an_event_not_a_time_the_front_end_sent_for_it(ubi_client, ubi_path):
    # The receipt time orders events against a forget (profiles build): a front end must not be able to date
    # its events after a forget that came later.
    sent = click_on("q-1", "p-1") | {"received_at": "2999-01-01T00:00:00.000Z"}
    before = time.time()
    assert ubi_client.post("/ubi/events", json=sent).get_json() == {"accepted": 1}
    [event] = records(ubi_path)
    assert before - 1 <= epoch_ms(event["received_at"]) / 1000 <= time.time() + 1


def test_a_list_of_events_is_accepted_in_order(ubi_client, ubi_path):
    events = [click_on("q-1", "p-1", 0) | {"action_name": "impression"}, click_on("q-1", "p-1", 0)]
    assert ubi_client.post("/ubi/events", json=events).get_json() == {"accepted": 2}
    assert [e["action_name"] for e in records(ubi_path)] == ["impression", "click"]


def test_a_click_without_its_product_is_refused_naming_the_field(ubi_client, ubi_path):
    event = click_on("q-1", "p-1")
    del event["event_attributes"]["object"]
    response = ubi_client.post("/ubi/events", json=event)
    assert response.status_code == 400
    [error] = response.get_json()["fields"]
    assert error["field"] == "event_attributes" and "object.object_id" in error["message"]
    assert not ubi_path.parent.exists()


def test_a_click_spelt_in_upper_case_without_its_product_is_refused_as_a_click_is(ubi_client, ubi_path):
    """Every reader of the log takes ``CLICK`` for a click, and training refuses a click naming no product."""
    event = {**click_on("q-1", "p-1"), "action_name": "CLICK"}
    del event["event_attributes"]["object"]
    response = ubi_client.post("/ubi/events", json=event)
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == "event_attributes"
    assert not ubi_path.parent.exists()


def test_a_click_without_its_rank_is_accepted_as_the_ubi_schema_allows(ubi_client, ubi_path):
    """A position may be screen coordinates alone, and the UBI JavaScript client sends none unless told."""
    event = click_on("q-1", "p-1")
    event["event_attributes"]["position"] = {"xy": {"x": 120, "y": 48}}
    assert ubi_client.post("/ubi/events", json=event).get_json() == {"accepted": 1}
    [logged] = records(ubi_path)
    assert logged["event_attributes"]["position"] == {"xy": {"x": 120, "y": 48}}


def test_a_bad_event_in_a_list_is_named_by_its_index_and_nothing_is_written(ubi_client, ubi_path):
    response = ubi_client.post("/ubi/events", json=[click_on("q-1", "p-1"), {"query_id": "q-1"}])
    assert [e["field"] for e in response.get_json()["fields"]] == ["1.action_name"]
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize(
    ("sent", "meant"), [("query_Id", "query_id"), ("queryId", "query_id"), ("SESSION-ID", "session_id")]
)
def test_a_misspelt_top_level_field_is_refused_naming_the_field_meant(ubi_client, ubi_path, sent, meant):
    """Kept, a misspelt query id would be an event never joined to its search."""
    response = ubi_client.post("/ubi/events", json={"action_name": "search", sent: "q-1"})
    assert response.status_code == 400
    [error] = response.get_json()["fields"]
    assert error["field"] == sent and f"did you mean {meant}?" in error["message"]
    assert not ubi_path.parent.exists()


def test_an_event_holding_a_source_object_is_refused_naming_it(ubi_client, ubi_path):
    """Every reader takes a log line's ``_source`` object for its record (an exported hit keeps it there): logged,
    this click was lost, and the forget inside it, which a front end may not send, kept the shopper's events out of
    every profile rebuild."""
    forged = {"action_name": "forget_shopper", "user_id": "u-1", "received_at": "9999-01-01T00:00:00Z"}
    response = ubi_client.post("/ubi/events", json={**click_on("q-1", "p-1"), "_source": forged})
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "_source"
    assert not ubi_path.parent.exists()


def test_a_misspelt_rank_is_refused_naming_where(ubi_client):
    event = click_on("q-1", "p-1")
    event["event_attributes"]["position"] = {"Ordinal": 3}
    [error] = ubi_client.post("/ubi/events", json=event).get_json()["fields"]
    assert error["field"] == "event_attributes.position.Ordinal" and "did you mean ordinal?" in error["message"]


def test_a_front_ends_own_field_merely_close_to_a_ubi_one_is_kept(ubi_client, ubi_path):
    event = {"action_name": "view", "event_attributes": {"objects": ["s1", "s2"], "positions": [0, 1]}}
    assert ubi_client.post("/ubi/events", json=event).get_json() == {"accepted": 1}
    [logged] = records(ubi_path)
    assert logged["event_attributes"] == {"objects": ["s1", "s2"], "positions": [0, 1]}


def test_fields_of_the_front_ends_own_are_kept_at_every_level(ubi_client, ubi_path):
    """The UBI schema leaves events open: the reference JavaScript client adds ``extra_info`` to an event that
    has a message already, OpenSearch's documented data structures send ``page_id``, a position's ``trail``
    and the product's own details beside its id."""
    event = click_on("q-1", "p-1") | {"page_id": "/search", "extra_info": "second message", "extra_info_type": "INFO"}
    event["event_attributes"] |= {"dwell_seconds": 12, "browser": "Firefox"}
    event["event_attributes"]["position"] |= {"trail": "home>search"}
    event["event_attributes"]["object"] |= {"object_detail": {"price": 499.0}, "objectID": "sku-1"}
    assert ubi_client.post("/ubi/events", json=event).get_json() == {"accepted": 1}
    [logged] = records(ubi_path)
    assert {key: logged[key] for key in ("page_id", "extra_info", "extra_info_type")} == {
        "page_id": "/search",
        "extra_info": "second message",
        "extra_info_type": "INFO",
    }
    assert logged["event_attributes"]["dwell_seconds"] == 12
    assert logged["event_attributes"]["position"] == {"ordinal": 0, "trail": "home>search"}
    assert logged["event_attributes"]["object"]["objectID"] == "sku-1"


def test_an_unreadable_timestamp_is_refused(ubi_client):
    response = ubi_client.post("/ubi/events", json={"action_name": "search", "timestamp": "yesterday"})
    assert response.get_json()["fields"][0]["field"] == "timestamp"


@pytest.mark.parametrize("timestamp", ["0001-01-01T00:00:00", "9999-12-31T23:59:59Z", 10_000_000_000_000_000])
def test_a_time_profiles_could_not_age_by_is_refused(ubi_client, ubi_path, timestamp):
    """Year 1 without a zone cannot be placed, and a time far ahead would keep a profile from ever decaying:
    accepted, either would be lost from the profiles or poison one."""
    response = ubi_client.post(
        "/ubi/events", json=[click_on("q-1", "p-1"), {**click_on("q-1", "p-2"), "timestamp": timestamp}]
    )
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["fields"]] == ["1.timestamp"]
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("timestamp", [1_764_842_400, "1764842400"])
def test_epoch_seconds_are_refused_saying_what_they_read_as(ubi_client, ubi_path, timestamp):
    """Seconds (Python's time.time(), ``date +%s``) read as milliseconds are January 1970: a profile would age the
    event to nothing as it arrives."""
    response = ubi_client.post("/ubi/events", json={**click_on("q-1", "p-1"), "timestamp": timestamp})
    assert response.status_code == 400
    (refused,) = response.get_json()["fields"]
    assert refused["field"] == "timestamp" and "1970-01-21T10:14:02Z" in refused["message"]
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("timestamp", ["1970-01-01T00:00:00Z", "1973-03-03T09:46:39Z"])
def test_an_iso_time_before_the_earliest_epoch_milliseconds_taken_is_refused_saying_so(ubi_client, ubi_path, timestamp):
    """A front end's zero date ages to nothing in a profile as it arrives, as epoch seconds read as milliseconds
    would: accepted, the event would be lost from the profiles without a word."""
    response = ubi_client.post("/ubi/events", json={**click_on("q-1", "p-1"), "timestamp": timestamp})
    assert response.status_code == 400
    (refused,) = response.get_json()["fields"]
    assert refused["field"] == "timestamp" and "before 1973-03-03" in refused["message"]
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("timestamp", [1_764_842_400_000, "1764842400000", "2025-12-04T10:00:00Z"])
def test_epoch_milliseconds_and_iso_times_are_accepted(ubi_client, timestamp):
    sent = {**click_on("q-1", "p-1"), "timestamp": timestamp}
    assert ubi_client.post("/ubi/events", json=sent).get_json() == {"accepted": 1}


@pytest.mark.parametrize("field", ["user_id", "session_id"])
def test_a_shopper_id_a_search_or_a_forget_could_not_name_is_refused(ubi_client, field):
    response = ubi_client.post("/ubi/events", json={**click_on("q-1", "p-1"), field: "alice@example.com"})
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == field


def test_an_empty_user_id_as_the_ubi_javascript_client_sends_is_an_anonymous_event(ubi_client, ubi_path):
    """The UBI JavaScript client sets ``user_id = ''`` on every event (the UBI schema: "null/empty in case of
    an unauthenticated user"); Chorus' events in the ESCI sample carry it too."""
    sent = click_on("q-1", "p-1") | {"user_id": ""}
    assert ubi_client.post("/ubi/events", json=sent).get_json() == {"accepted": 1}
    [event] = records(ubi_path)
    assert "user_id" not in event and event["session_id"] == "session-1"


def test_a_product_id_sent_as_a_number_is_accepted_and_logged_as_the_catalog_reads_it(ubi_client, ubi_path):
    """The UBI schema lets ``object_id`` be an integer; a catalog with numeric ids (WANDS, Home Depot) holds it as
    its text, which is what the training reader and the profiles look up."""
    sent = click_on("q-1", 4033874254060)
    assert ubi_client.post("/ubi/events", json=sent).get_json() == {"accepted": 1}
    [event] = records(ubi_path)
    assert event["event_attributes"]["object"]["object_id"] == "4033874254060"


def test_events_posted_where_the_ubi_javascript_client_posts_them_are_logged(ubi_client, ubi_path):
    """``UbiClient(baseUrl).trackEvent(e)`` posts ``[e]`` to ``baseUrl + "/ubi_events"``; this event is the
    client's ``UbiEvent`` with its ``UbiEventAttributes`` (the product's own details merged into ``object``)."""
    sent = {
        "application": "shop",
        "action_name": "add_to_cart",
        "query_id": "q-1",
        "session_id": "session-1",
        "client_id": "client-1",
        "user_id": "",
        "timestamp": "2026-12-01T10:00:00.000Z",
        "message_type": "INFO",
        "message": "Corner sofa (s1)",
        "extra_info": "added from the results page",
        "extra_info_type": "INFO",
        "event_attributes": {
            "object": {"object_id": "s1", "object_id_field": "product", "description": "Corner sofa", "price": 499}
        },
    }
    response = ubi_client.post("/ubi_events", data=json.dumps([sent]), content_type="application/json")
    assert response.get_json() == {"accepted": 1}
    [logged] = records(ubi_path)
    assert logged["action_name"] == "add_to_cart" and logged["extra_info"] == "added from the results page"


@pytest.mark.parametrize("body", ["[]", "42", "not json"])
def test_a_body_that_is_not_events_is_refused(ubi_client, body):
    response = ubi_client.post("/ubi/events", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "body"


def test_events_are_refused_when_ubi_logging_is_off(client):
    response = client.post("/ubi/events", json={"action_name": "search"})
    assert response.status_code == 404
    assert response.get_json()["error"] == "UBI logging is off"


def test_searches_still_get_a_query_id_when_ubi_logging_is_off(client):
    assert client.post("/search", json={"query": "lamp"}).get_json()["meta"]["query_id"]


def test_the_log_rotates_past_its_size_between_batches_keeping_whole_lines(ubi_path):
    log = UbiLog(ubi_path, max_bytes=2048, backups=2)
    for i in range(100):
        log.write([UbiEvent(action_name="search", query_id=f"q-{i}", timestamp=1_764_000_000_000)])
    log.close()
    current = ubi_path.with_name(f"ubi.{os.getpid()}.ndjson")
    files = [current, current.with_name(current.name + ".1"), current.with_name(current.name + ".2")]
    assert all(f.exists() and f.stat().st_size <= 2048 for f in files)
    assert not current.with_name(current.name + ".3").exists()
    assert all(json.loads(line)["action_name"] == "search" for f in files for line in f.read_text().splitlines())


def test_the_training_reader_turns_a_logged_search_and_click_into_an_impression(ubi_client, ubi_path):
    clicks = pytest.importorskip(
        "search_rerank.data.clicks", reason="the UBI reader (search_rerank.data.clicks) is not merged"
    )
    hits = ubi_client.post("/search", json={"query": "sofa", "size": 3})
    query_id, shown = hits.headers["X-Query-Id"], [hit["id"] for hit in hits.get_json()["hits"]]
    events = [click_on(query_id, doc, rank) | {"action_name": "impression"} for rank, doc in enumerate(shown)]
    ubi_client.post("/ubi/events", json=events + [click_on(query_id, shown[1], 1)])
    [impression] = clicks.read_ubi(ubi_path.with_name(f"ubi.{os.getpid()}.ndjson"))
    assert (impression.query, impression.shown, impression.clicked) == ("sofa", tuple(shown), {shown[1]})


def test_the_training_reader_places_a_click_sent_without_its_rank_where_the_search_showed_it(ubi_client, ubi_path):
    hits = ubi_client.post("/search", json={"query": "sofa", "size": 3})
    query_id, shown = hits.headers["X-Query-Id"], [hit["id"] for hit in hits.get_json()["hits"]]
    click = click_on(query_id, shown[2])
    del click["event_attributes"]["position"]
    assert ubi_client.post("/ubi_events", json=[click]).get_json() == {"accepted": 1}
    [impression] = read_ubi(ubi_path.with_name(f"ubi.{os.getpid()}.ndjson"))
    assert (impression.shown, impression.clicked) == (tuple(shown), {shown[2]})


SKU_CATALOG = [
    Product(id="p1", title="oak table", extra={"sku": "SKU-1"}),
    Product(id="p2", title="oak chair", extra={"sku": "SKU-2"}),
    Product(id="p3", title="oak shelf"),
]


def test_a_search_naming_an_object_id_field_logs_its_hits_by_that_fields_values(catalog_client, ubi_path):
    """As OpenSearch's UBI plugin logs them, so that a UBI tool joins them with events naming products by SKU; a
    hit without the field is named by its id, and the catalog ids go beside them for this service's readers."""
    client = catalog_client(SKU_CATALOG, ubi_log_path=ubi_path)
    body = {"query": {"match": {"title": "oak"}}, "ext": {"ubi": {"object_id_field": "sku"}}}
    response = client.post("/products/_search", json=body)
    shown = [hit["_id"] for hit in response.get_json()["hits"]["hits"]]
    [record] = records(ubi_path)
    assert record["query_response_hit_ids"] == [{"p1": "SKU-1", "p2": "SKU-2"}.get(pid, pid) for pid in shown]
    assert record["query_response_internal_ids"] == shown


def test_the_training_reader_reads_a_search_logged_by_skus_as_catalog_products(catalog_client, ubi_path):
    client = catalog_client(SKU_CATALOG, ubi_log_path=ubi_path)
    body = {"query": {"match": {"title": "oak"}}, "ext": {"ubi": {"object_id_field": "sku", "query_id": "q-sku"}}}
    shown = [hit["_id"] for hit in client.post("/products/_search", json=body).get_json()["hits"]["hits"]]
    click = {**CLICK, "query_id": "q-sku", "event_attributes": {"object": {"object_id": "SKU-2", "internal_id": "p2"}}}
    assert client.post("/ubi/events", json=[click]).get_json() == {"accepted": 1}
    [impression] = read_ubi(ubi_path.with_name(f"ubi.{os.getpid()}.ndjson"))
    assert (impression.shown, impression.clicked) == (tuple(shown), {"p2"})


def test_the_openapi_document_describes_the_event_endpoint_and_the_query_id_header(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["components"]["schemas"]["UbiEvent"]["required"] == ["action_name"]
    assert "X-Query-Id" in doc["paths"]["/search"]["post"]["responses"]["200"]["headers"]
    assert "404" in doc["paths"]["/ubi/events"]["post"]["responses"]


def test_a_ubi_front_end_names_its_own_query_id_in_ext_ubi(ubi_client, ubi_path):
    ext = {
        "ubi": {
            "query_id": "front-end-qid-1",
            "client_id": "client-9",
            "user_query": "Rug!",
            "query_attributes": {"page": "home"},
        }
    }
    response = ubi_client.post("/products/_search", json={"query": {"match": {"title": "rug"}}, "ext": ext})
    body = response.get_json()
    assert body["ext"] == {"ubi": {"query_id": "front-end-qid-1"}}
    assert response.headers["X-Query-Id"] == "front-end-qid-1"
    [record] = records(ubi_path)
    assert (record["query_id"], record["client_id"], record["user_query"]) == ("front-end-qid-1", "client-9", "Rug!")
    assert record["query_attributes"]["page"] == "home"


def test_a_client_id_in_ext_ubi_is_taken_as_an_event_takes_it(ubi_client, ubi_path):
    """The UBI schema's own example of a client id has characters no query id may (it never reaches a header)."""
    ext = {"ubi": {"client_id": "BugsBunny::Firefox@0967084"}}
    response = ubi_client.post("/products/_search", json={"query": {"match": {"title": "rug"}}, "ext": ext})
    assert response.status_code == 200
    assert records(ubi_path)[0]["client_id"] == "BugsBunny::Firefox@0967084"


def test_a_query_id_that_is_not_an_id_is_refused_naming_the_field(ubi_client):
    response = ubi_client.post("/products/_search", json={"ext": {"ubi": {"query_id": "a\r\nSet-Cookie: x"}}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "ext.ubi.query_id"


def test_search_extensions_of_other_plugins_are_a_501_naming_them(ubi_client):
    response = ubi_client.post("/products/_search", json={"ext": {"rerank": {}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "ext.rerank"


def test_a_batch_of_events_answered_accepted_is_all_in_the_log_even_when_it_spans_rotations(
    settings, pipeline, tmp_path
):
    """``accepted`` means written: a batch is one write, after at most one rotation. Rotating between its lines,
    with a small rotation size (valid settings), one 40-event batch deleted its own earlier lines: 40 accepted,
    4 kept."""
    log_path = tmp_path / "ubi" / "ubi.ndjson"
    service = settings.service.model_copy(
        update={"ubi_log_path": log_path, "ubi_log_max_bytes": 1024, "ubi_log_backups": 1}
    )
    client = create_app(settings.model_copy(update={"service": service}), pipeline).test_client()
    events = [{"action_name": "search", "query_id": f"q-{i}", "message": "m" * 300} for i in range(40)]

    response = client.post("/ubi/events", json=events)

    if response.status_code == 200:
        assert response.get_json() == {"accepted": 40}
        kept = [line for path in log_path.parent.iterdir() for line in path.read_text(encoding="utf-8").splitlines()]
        assert len(kept) == 40, f"{len(kept)} of 40 accepted events are in the UBI log"
    else:  # refusing the batch (a 503 to send again, or a 413/400 naming it) is also a kept promise
        assert response.status_code in (400, 413, 503)


@pytest.mark.parametrize("field", ["query_id", "action_name"])
def test_an_event_whose_query_id_or_action_is_blanks_is_refused_naming_it(ubi_client, ubi_path, field):
    """Each reader of the log (training's, the profiles' rebuild) refuses such a line: accepted, one front end's
    event would stop every training run."""
    response = ubi_client.post("/ubi/events", json={**click_on("q-1", "p-1"), field: "   "})
    assert response.status_code == 400 and response.get_json()["fields"][0]["field"] == field
    assert not ubi_path.parent.exists()


def test_an_event_of_no_search_may_send_its_query_id_empty_and_the_log_stays_readable(ubi_client, ubi_path):
    assert ubi_client.post("/ubi/events", json={**click_on("", "p-1")}).get_json() == {"accepted": 1}
    read_ubi(ubi_path.with_name(f"ubi.{os.getpid()}.ndjson"))  # raises on a line it cannot read


def test_a_session_id_in_the_events_attributes_that_is_no_text_is_refused_naming_it(ubi_client, ubi_path):
    """Front ends that put the session's id among the attributes have it read from there: a number would stop
    both the profile update of the whole batch and the profiles' rebuild from the log."""
    event = click_on("q-1", "p-1")
    event["event_attributes"]["session_id"] = 42
    response = ubi_client.post("/ubi/events", json=[click_on("q-1", "p-2"), event])
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "1.event_attributes.session_id"
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("session_id", ["../../x y", "s" * 10_000])
def test_a_session_id_in_the_events_attributes_that_is_not_an_id_is_refused_as_the_events_own_is(
    ubi_client, ubi_path, session_id
):
    """The profiles read it where the event has none of its own: accepted, the event would be logged and then
    dropped from the session's profile without a word."""
    event = click_on("q-1", "p-1")
    del event["session_id"]
    event["event_attributes"]["session_id"] = session_id
    response = ubi_client.post("/ubi/events", json=event)
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "event_attributes.session_id"
    assert not ubi_path.parent.exists()
