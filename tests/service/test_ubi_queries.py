"""UBI query records a front end tracks itself: ``POST /ubi_queries`` (and ``/ubi/queries``), logged beside the
service's own records, read by the training reader without letting them replace what a search logged.

The bodies marked "captured" are what the OpenSearch UBI JavaScript client sends: ``UbiClient(baseUrl).trackQuery``
of a ``UbiQueryRequest`` (opensearch-project/user-behavior-insights, ``ubi-javascript-collector/ubi.js`` at
3fee2d8), run in node 20 with axios 1.21 against a recording server. It posts ``JSON.stringify([query])`` to
``baseUrl + "/ubi_queries"`` with ``Content-type: application/json`` and ``Accept: application/json``; a ``null``
argument stays ``null`` in the array (the class's null-dropping ``toJson`` is not what ``trackQuery`` calls), and
``trackQuery(query, message, message_type)`` adds ``message``/``message_type``, or ``extra_info``/
``extra_info_type`` beside a message the record has.
"""

import json
import os

import pytest

from search_rerank.data.clicks import read_ubi
from search_rerank.serving import create_app

TRACKED = (
    '[{"application":"shop","query_id":"qid-1","client_id":"client-1","user_query":"red sofa",'
    '"query_attributes":{"experiment":"b","page":2},"object_id_field":"id","timestamp":"2026-12-03T17:22:16.564Z"}]'
)
"""Captured: ``trackQuery(new UbiQueryRequest("shop", "client-1", "qid-1", "red sofa", "id", {...}))``."""
TRACKED_WITH_NULLS = (
    '[{"application":"shop","query_id":"qid-2","client_id":null,"user_query":"lamp","query_attributes":{},'
    '"timestamp":"2026-12-03T17:22:16.584Z","message":"a message","message_type":null}]'
)
"""Captured: ``trackQuery(new UbiQueryRequest("shop", null, "qid-2", "lamp", undefined), "a message")``."""
TRACKED_WITH_EXTRA_INFO = (
    '[{"application":"shop","query_id":"qid-3","client_id":"client-1","user_query":"rug","query_attributes":{},'
    '"object_id_field":"id","timestamp":"2026-12-03T17:22:16.587Z","message":"first","extra_info":"second",'
    '"extra_info_type":"DEBUG"}]'
)
"""Captured: a record with ``message = "first"``, then ``trackQuery(query, "second", "DEBUG")``."""
CLIENT_HEADERS = {"Accept": "application/json"}


@pytest.fixture
def ubi_path(tmp_path):
    return tmp_path / "ubi" / "ubi.ndjson"


@pytest.fixture
def ubi_client(settings, pipeline, ubi_path):
    service = settings.service.model_copy(update={"ubi_log_path": ubi_path, "ubi_application": "shop"})
    return create_app(settings.model_copy(update={"service": service}), pipeline).test_client()


def this_workers_file(ubi_path):
    return ubi_path.with_name(f"ubi.{os.getpid()}.ndjson")


def records(ubi_path):
    return [json.loads(line) for line in this_workers_file(ubi_path).read_text(encoding="utf-8").splitlines()]


def track_query(client, body: str, path: str = "/ubi_queries"):
    """What ``UbiClient.trackQuery`` sends: the JSON text of a one-record array."""
    return client.post(path, data=body, content_type="application/json", headers=CLIENT_HEADERS)


def click_on(query_id, product_id, ordinal):
    """A click as the UBI JavaScript client's ``UbiEvent`` sends it (no query text: that is in the query record)."""
    return {
        "application": "shop",
        "action_name": "click",
        "query_id": query_id,
        "session_id": "session-1",
        "client_id": "client-1",
        "user_id": "",
        "event_attributes": {
            "object": {"object_id": product_id, "object_id_field": "id"},
            "position": {"ordinal": ordinal},
        },
    }


@pytest.mark.parametrize("body", [TRACKED, TRACKED_WITH_NULLS, TRACKED_WITH_EXTRA_INFO])
def test_the_ubi_javascript_clients_query_records_are_accepted_and_logged(ubi_client, ubi_path, body):
    response = track_query(ubi_client, body)
    assert response.status_code == 200 and response.get_json()["accepted"] == 1
    [sent] = json.loads(body)
    given = {key: value for key, value in sent.items() if value is not None}  # a null is left out, as not given
    [logged] = records(ubi_path)
    assert {key: logged[key] for key in given} == given


def test_a_tracked_query_is_read_by_the_training_reader_as_the_text_of_its_clicks(ubi_client, ubi_path):
    """The client's events carry no query text: without the query record its clicks would label nothing."""
    assert track_query(ubi_client, TRACKED).status_code == 200
    assert ubi_client.post("/ubi_events", json=[click_on("qid-1", "p-7", 2)]).get_json() == {"accepted": 1}
    [impression] = read_ubi(this_workers_file(ubi_path))
    assert (impression.query, impression.query_id, impression.clicked) == ("red sofa", "qid-1", {"p-7"})


def test_the_query_attributes_the_front_end_tracked_are_kept_as_sent(ubi_client, ubi_path):
    track_query(ubi_client, TRACKED)
    assert records(ubi_path)[0]["query_attributes"] == {"experiment": "b", "page": 2}


def test_ubi_queries_is_also_served_beside_ubi_events(ubi_client, ubi_path):
    assert track_query(ubi_client, TRACKED, "/ubi/queries").get_json()["accepted"] == 1
    assert records(ubi_path)[0]["query_id"] == "qid-1"


def test_a_single_record_not_in_a_list_is_accepted_too(ubi_client, ubi_path):
    [sent] = json.loads(TRACKED)
    assert ubi_client.post("/ubi_queries", json=sent).get_json()["accepted"] == 1


def test_a_tracked_query_gets_the_time_it_was_received(ubi_client, ubi_path):
    """Beside its own ``timestamp``, as an event is logged: the training reader tells a front end's record from the
    search's by it."""
    track_query(ubi_client, TRACKED)
    [logged] = records(ubi_path)
    assert logged["timestamp"] == "2026-12-03T17:22:16.564Z" and logged["received_at"].endswith("Z")


def test_a_record_without_a_query_id_gets_one_and_is_told_it(ubi_client, ubi_path):
    """The UBI schema requires only ``user_query``; the id given is the one its events must carry."""
    response = ubi_client.post("/ubi_queries", json=[{"user_query": "lamp"}])
    [query_id] = response.get_json()["query_ids"]
    [logged] = records(ubi_path)
    assert logged["query_id"] == query_id and logged["application"] == "shop"


@pytest.mark.parametrize(("sent", "meant"), [("queryId", "query_id"), ("User-Query", "user_query")])
def test_a_misspelt_key_is_refused_naming_it_and_the_field_meant(ubi_client, ubi_path, sent, meant):
    """Kept, ``queryId`` would be a record no event joins, and the client's own query id lost."""
    [record] = json.loads(TRACKED)
    record[sent] = record.pop(meant)
    response = ubi_client.post("/ubi_queries", json=[record])
    assert response.status_code == 400
    [error] = response.get_json()["fields"]
    assert error["field"] == f"0.{sent}" and f"did you mean {meant}?" in error["message"]
    assert not ubi_path.parent.exists()


def test_a_record_without_its_query_text_is_refused_naming_it(ubi_client, ubi_path):
    response = ubi_client.post("/ubi_queries", json=[{"query_id": "qid-1"}])
    assert response.status_code == 400
    assert [e["field"] for e in response.get_json()["fields"]] == ["0.user_query"]


@pytest.mark.parametrize("query_id", ["", "   ", "a\nb", "x" * 129])
def test_a_query_id_no_search_could_carry_is_refused(ubi_client, ubi_path, query_id):
    """An id as ``ext.ubi.query_id`` takes it; a blank one could not be read back by the training reader."""
    response = ubi_client.post("/ubi_queries", json={"query_id": query_id, "user_query": "lamp"})
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "query_id"
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("key", ["action_name", "_source"])
def test_a_query_record_holding_what_makes_a_line_an_event_or_an_export_is_refused(ubi_client, ubi_path, key):
    """Logged, ``action_name`` would make the line an event to every reader (``forget_shopper`` a forget), and a
    ``_source`` object would be read in its place."""
    body = {"query_id": "qid-1", "user_query": "lamp", key: {"action_name": "forget_shopper", "user_id": "u-1"}}
    response = ubi_client.post("/ubi_queries", json=body)
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == key
    assert not ubi_path.parent.exists()


def test_a_bad_record_in_a_list_refuses_the_whole_list(ubi_client, ubi_path):
    [good] = json.loads(TRACKED)
    response = ubi_client.post("/ubi_queries", json=[good, {"query_id": "qid-2", "user_query": 5}])
    assert [e["field"] for e in response.get_json()["fields"]] == ["1.user_query"]
    assert not ubi_path.parent.exists()


@pytest.mark.parametrize("body", ["[]", "42", "not json"])
def test_a_body_that_is_not_query_records_is_refused(ubi_client, body):
    response = ubi_client.post("/ubi_queries", data=body, content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == "body"


def test_query_records_are_refused_when_ubi_logging_is_off(client):
    response = track_query(client, TRACKED)
    assert response.status_code == 404
    assert response.get_json()["error"] == "UBI logging is off"


@pytest.mark.parametrize("path", ["/ubi_queries", "/ubi/queries"])
def test_get_on_the_query_endpoint_is_a_405_as_on_the_event_endpoint(ubi_client, path):
    events, queries = ubi_client.get("/ubi_events"), ubi_client.get(path)
    assert queries.status_code == events.status_code == 405
    assert queries.get_json() == events.get_json()


def test_a_client_record_for_a_search_the_service_logged_leaves_the_searchs_hits_alone(ubi_client, ubi_path):
    """The front end tracks the query it sent with ``ext.ubi.query_id``, here before the search's own record is
    written (a front end's order, or another worker's file read first): the hits the search showed stand, the
    client's do not replace them, and the search is one impression, not one per record."""
    [tracked] = json.loads(TRACKED)
    claimed = ["not-shown-1", "not-shown-2", "not-shown-3"]
    assert ubi_client.post("/ubi_queries", json=[tracked | {"query_response_hit_ids": claimed}]).status_code == 200
    search = {"query": {"match": {"title": "sofa"}}, "size": 3, "ext": {"ubi": {"query_id": "qid-1"}}}
    shown = [hit["_id"] for hit in ubi_client.post("/products/_search", json=search).get_json()["hits"]["hits"]]
    ubi_client.post("/ubi_events", json=[click_on("qid-1", shown[1], 1)])
    [impression] = read_ubi(this_workers_file(ubi_path))
    assert (impression.shown, impression.clicked) == (tuple(shown), {shown[1]})


def test_the_openapi_document_describes_the_query_endpoint(client):
    doc = client.get("/openapi.json").get_json()
    assert doc["components"]["schemas"]["TrackedQuery"]["required"] == ["user_query"]
    for path in ("/ubi_queries", "/ubi/queries"):
        assert {"200", "400", "404", "503"} <= set(doc["paths"][path]["post"]["responses"])
