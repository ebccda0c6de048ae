"""Signed shopper ids: with SEARCH_RERANK_IDENTITY_KEY set, only an id the shop's server signed names a shopper."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from test_personalisation_api import SHOPPER, buy, ids, purchase

from search_rerank.cli import main
from search_rerank.core.settings import check_variables
from search_rerank.serving import create_app
from search_rerank.serving.app import CannotStart
from search_rerank.serving.identity import IDENTITY_KEY_VARIABLE, signed

KEY = "k" * 40
OLD_KEY = "o" * 40


@pytest.fixture
def client(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, KEY)
    return create_app(personal_settings, pipeline).test_client()


def search(client, user):
    return client.post("/search", json={"query": "sofa", "size": 10, "explain": True, "user_id": user})


def logged(settings):
    """Every record the UBI log holds (one file per worker process)."""
    files = settings.service.ubi_log_path.parent.glob("*.ndjson")
    return [json.loads(line) for path in files for line in path.read_text(encoding="utf-8").splitlines()]


def field_errors(response):
    return {error["field"]: error["message"] for error in response.get_json()["fields"]}


def test_a_signed_user_id_personalises_the_search(client):
    before = search(client, signed(KEY, SHOPPER)).get_json()
    target = before["hits"][-1]["id"]
    buy(client, target, user=signed(KEY, SHOPPER))
    after = search(client, signed(KEY, SHOPPER)).get_json()
    assert "personal" not in after["skipped"]
    assert ids(after).index(target) < len(before["hits"]) - 1


def test_a_user_id_without_a_signature_is_a_400_naming_it(client):
    response = search(client, SHOPPER)
    assert response.status_code == 400
    assert "signed" in field_errors(response)["user_id"]


def test_a_user_id_signed_with_another_key_is_a_400(client):
    response = search(client, signed("x" * 40, SHOPPER))
    assert response.status_code == 400 and "user_id" in field_errors(response)


def test_a_signature_moved_to_another_id_is_a_400(client):
    forged = "shopper-1." + signed(KEY, SHOPPER).rpartition(".")[2]
    assert search(client, forged).status_code == 400


def test_a_signature_in_capitals_is_a_400(client):
    """HMAC libraries write hex in lowercase; one spelling only, so that an id has one signed form."""
    user, _, sig = signed(KEY, SHOPPER).rpartition(".")
    assert search(client, f"{user}.{sig.upper()}").status_code == 400


def test_the_refusal_names_neither_the_key_nor_the_right_signature(client):
    text = search(client, SHOPPER).get_data(as_text=True)
    assert KEY not in text and signed(KEY, SHOPPER).rpartition(".")[2] not in text


def test_an_empty_user_id_is_an_anonymous_search_without_a_signature(client):
    response = search(client, "")
    assert response.status_code == 200 and ids(response.get_json())


def test_an_event_with_an_unsigned_user_id_is_refused_and_not_logged(client, personal_settings):
    response = client.post("/ubi/events", json=[purchase("p1", user=SHOPPER)])
    assert response.status_code == 400 and "0.user_id" in field_errors(response)
    assert not [record for record in logged(personal_settings) if record.get("action_name") == "purchase"]


def test_an_event_logs_the_user_id_without_its_signature(client, personal_settings, pipeline):
    product = next(iter(pipeline.store)).id
    assert client.post("/ubi/events", json=[purchase(product, user=signed(KEY, SHOPPER))]).status_code == 200
    purchases = [record for record in logged(personal_settings) if record.get("action_name") == "purchase"]
    assert [record["user_id"] for record in purchases] == [SHOPPER]


@pytest.fixture
def admin(personal_settings, pipeline, monkeypatch):
    """A client of a service with the identity key and the admin token DELETE /profiles needs."""
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, KEY)
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "forget-token")
    return create_app(personal_settings, pipeline).test_client()


def forget(client, user):
    return client.delete(f"/profiles/{user}", headers={"Authorization": "Bearer forget-token"})


def test_forgetting_a_signed_id_forgets_the_shopper_it_verifies_to(admin, personal_settings, pipeline):
    buy(admin, next(iter(pipeline.store)).id, user=signed(KEY, SHOPPER))
    assert forget(admin, signed(KEY, SHOPPER)).get_json() == {"forgotten": 2}
    forgets = [r for r in logged(personal_settings) if r["action_name"] == "forget_shopper"]
    assert [r["user_id"] for r in forgets] == [SHOPPER]


def test_forgetting_an_id_whose_signature_does_not_verify_is_a_400_naming_it_and_logs_no_forget(
    admin, personal_settings, pipeline
):
    """Taken as sent, it would forget no one and log a forget of an id no event can carry."""
    buy(admin, next(iter(pipeline.store)).id, user=signed(KEY, SHOPPER))
    response = forget(admin, f"{SHOPPER}.{'0' * 64}")
    assert response.status_code == 400 and "user_id" in field_errors(response)
    assert not [r for r in logged(personal_settings) if r["action_name"] == "forget_shopper"]


def forget_on_the_command_line(settings, user):
    env = {
        IDENTITY_KEY_VARIABLE: KEY,
        "SEARCH_RERANK_SERVICE__UBI_LOG_PATH": str(settings.service.ubi_log_path),
        "SEARCH_RERANK_PERSONALISATION__STORE_PATH": str(settings.personalisation.store_path),
    }
    return CliRunner().invoke(main, ["--index-dir", str(settings.index_dir), "profiles", "forget", user], env=env)


def test_profiles_forget_of_a_signed_id_forgets_the_shopper_it_verifies_to(admin, personal_settings, pipeline):
    """It took the signed id as a stored one: "0 profile(s) removed", and the shopper stayed personalised."""
    buy(admin, next(iter(pipeline.store)).id, user=signed(KEY, SHOPPER))
    forgot = forget_on_the_command_line(personal_settings, signed(KEY, SHOPPER))
    assert forgot.exit_code == 0, forgot.output
    assert "2 profile(s) removed" in forgot.output
    assert [r["user_id"] for r in logged(personal_settings) if r["action_name"] == "forget_shopper"] == [SHOPPER]


def test_profiles_forget_of_an_id_whose_signature_does_not_verify_is_refused_and_logs_no_forget(
    admin, personal_settings, pipeline
):
    buy(admin, next(iter(pipeline.store)).id, user=signed(KEY, SHOPPER))
    forgot = forget_on_the_command_line(personal_settings, f"{SHOPPER}.{'0' * 64}")
    assert forgot.exit_code != 0 and "signature" in forgot.output
    assert not [r for r in logged(personal_settings) if r["action_name"] == "forget_shopper"]


def test_a_query_record_with_an_unsigned_user_id_is_refused(client):
    response = client.post("/ubi/queries", json={"user_query": "sofa", "user_id": SHOPPER})
    assert response.status_code == 400 and "user_id" in field_errors(response)


def test_the_user_header_must_be_signed_on_the_elasticsearch_endpoints(client):
    query = {"query": {"match": {"title": "sofa"}}}
    refused = client.post("/products/_search", json=query, headers={"X-Search-Rerank-User": SHOPPER})
    taken = client.post("/products/_search", json=query, headers={"X-Search-Rerank-User": signed(KEY, SHOPPER)})
    assert refused.status_code == 400 and "X-Search-Rerank-User" in refused.get_data(as_text=True)
    assert taken.status_code == 200


@pytest.mark.parametrize("value", [SHOPPER, "not an id!"])
def test_a_count_refuses_a_user_header_as_a_search_does(client, value):
    """Nothing personalises a count, but the header is read on every Elasticsearch endpoint alike."""
    response = client.post(
        "/products/_count", json={"query": {"match_all": {}}}, headers={"X-Search-Rerank-User": value}
    )
    assert response.status_code == 400 and "X-Search-Rerank-User" in response.get_data(as_text=True)


def test_a_session_id_needs_no_signature(client):
    response = client.post("/search", json={"query": "sofa", "session_id": "sess-1"})
    assert response.status_code == 200


def test_an_id_signed_with_an_older_key_still_listed_is_taken(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, f"{KEY}, {OLD_KEY}\n")
    client = create_app(personal_settings, pipeline).test_client()
    assert search(client, signed(OLD_KEY, SHOPPER)).status_code == 200
    assert search(client, signed(KEY, SHOPPER)).status_code == 200


def test_a_short_identity_key_stops_the_service_from_starting(personal_settings, pipeline, monkeypatch):
    monkeypatch.setenv(IDENTITY_KEY_VARIABLE, "secret")
    with pytest.raises(CannotStart, match="fewer than 32 characters"):
        create_app(personal_settings, pipeline)


def test_without_a_key_a_user_id_is_taken_as_sent(personal_settings, pipeline, monkeypatch):
    monkeypatch.delenv(IDENTITY_KEY_VARIABLE, raising=False)
    client = create_app(personal_settings, pipeline).test_client()
    assert search(client, SHOPPER).status_code == 200


def test_profiles_sign_prints_an_id_the_service_takes(client):
    printed = CliRunner().invoke(main, ["profiles", "sign", SHOPPER], env={IDENTITY_KEY_VARIABLE: KEY})
    assert printed.exit_code == 0, printed.output
    assert search(client, printed.output.strip()).status_code == 200


def test_profiles_sign_without_a_key_says_which_variable_to_set():
    printed = CliRunner().invoke(main, ["profiles", "sign", SHOPPER], env={IDENTITY_KEY_VARIABLE: ""})
    assert printed.exit_code != 0 and IDENTITY_KEY_VARIABLE in printed.output


def test_the_identity_key_variable_is_not_taken_for_a_misspelt_setting():
    check_variables({IDENTITY_KEY_VARIABLE: KEY})
