"""Team-draft interleaving in the proxy: switched by header or share, teams logged as UBI, credited by the report."""

import json
import os

import pytest
from click.testing import CliRunner

from search_rerank.cli import main
from search_rerank.core.errors import ConfigError
from search_rerank.core.settings import Settings
from search_rerank.serving import create_app
from search_rerank.serving.interleave import ranking_settings

HEADER = "X-Search-Rerank-Interleave"
SHOPPER = {"X-Ubi-Client-Id": "client-7"}
TOKEN = "interleave-admin-token"
# Forcing interleaving runs two rankings: the header's "on" needs the admin token.
ON = {HEADER: "on", "Authorization": f"Bearer {TOKEN}"}
SOFA_QUERY = {"match": {"title": "sofa"}}


@pytest.fixture
def b_file(tmp_path):
    """Ranking B: BM25 alone, no long-tail stage; the served A is hybrid, so the two lists differ."""
    path = tmp_path / "best.toml"
    path.write_text("[dense]\nenabled = false\n\n[longtail]\nenabled = false\n", encoding="utf-8")
    return path


@pytest.fixture
def ubi_path(tmp_path):
    return tmp_path / "ubi" / "ubi.ndjson"


def make_client(settings, pipeline, ubi_path, **service):
    updated = settings.service.model_copy(update={"ubi_log_path": ubi_path, **service})
    return create_app(settings.model_copy(update={"service": updated}), pipeline).test_client()


@pytest.fixture
def ab_client(settings, pipeline, ubi_path, b_file, monkeypatch):
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    return make_client(settings, pipeline, ubi_path, interleave_with=b_file)


def log_file(ubi_path):
    return ubi_path.with_name(f"ubi.{os.getpid()}.ndjson")


def records(ubi_path):
    return [json.loads(line) for line in log_file(ubi_path).read_text(encoding="utf-8").splitlines()]


def search(client, headers=None, **body):
    response = client.post(
        "/search", json={"query": "sofa", "size": 10, **body}, headers={**SHOPPER, **(headers or {})}
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_header_switches_interleaving_on_with_a_team_per_hit(ab_client):
    body = search(ab_client, ON)
    section = body["interleaving"]
    assert section["method"] == "team_draft"
    assert len(section["teams"]) == len(body["hits"]) == 10
    assert set(section["teams"]) == {"A", "B"}


def test_the_answer_names_ranking_b_by_its_file_name_without_the_path_on_the_server(ab_client, b_file):
    assert search(ab_client, ON)["interleaving"]["b"] == b_file.name == "best.toml"


def test_without_the_header_and_no_share_the_served_ranking_answers(ab_client, client):
    assert "interleaving" not in search(ab_client)
    assert [h["id"] for h in search(ab_client)["hits"]] == [h["id"] for h in search(client)["hits"]]


def test_a_share_of_one_interleaves_every_search_and_the_header_switches_it_off(settings, pipeline, ubi_path, b_file):
    ab = make_client(settings, pipeline, ubi_path, interleave_with=b_file, interleave_share=1.0)
    assert "interleaving" in search(ab)
    assert "interleaving" not in search(ab, {HEADER: "off"})


def test_the_interleaved_list_is_the_same_on_every_page_and_every_repeat(ab_client):
    whole = search(ab_client, ON, size=10)
    pages = search(ab_client, ON, size=5), search(ab_client, ON, size=5, **{"from": 5})
    assert [h["id"] for page in pages for h in page["hits"]] == [h["id"] for h in whole["hits"]]
    assert [t for page in pages for t in page["interleaving"]["teams"]] == whole["interleaving"]["teams"]
    assert search(ab_client, ON)["hits"] == whole["hits"]


def test_the_elasticsearch_endpoint_interleaves_and_says_so_in_its_section(ab_client):
    response = ab_client.post(
        "/products/_search", json={"query": {"match": {"title": "sofa"}}, "size": 6}, headers={**SHOPPER, **ON}
    )
    body = response.get_json()
    assert len(body["search_rerank"]["interleaving"]["teams"]) == len(body["hits"]["hits"]) == 6


def test_a_pinned_product_is_on_neither_team_and_its_impression_names_none(ab_client, ubi_path):
    """Both rankings would show a pinned product first: a click on it credits neither."""
    lamp = search(ab_client, query="lamp")["hits"][0]["id"]
    query = {"pinned": {"ids": [lamp], "organic": {"match": {"title": "sofa"}}}}
    response = ab_client.post("/products/_search", json={"query": query, "size": 6}, headers={**SHOPPER, **ON})
    body = response.get_json()
    teams = body["search_rerank"]["interleaving"]["teams"]
    assert body["hits"]["hits"][0]["_id"] == lamp and teams[0] is None
    assert set(teams[1:]) == {"A", "B"}
    shown = [
        r for r in records(ubi_path) if r.get("query_id") == body["search_rerank"]["query_id"] and "action_name" in r
    ]
    assert "team" not in shown[0]["event_attributes"] and shown[1]["event_attributes"]["team"] in ("A", "B")


def test_a_pinned_product_that_a_ranking_holds_is_on_neither_team(settings, pipeline, ubi_path, b_file, monkeypatch):
    """Also when the rankings hold it (a sofa pinned for "sofa"): the pin shows it first, not the team that drafted
    it."""
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    ab = make_client(settings, pipeline, ubi_path, interleave_with=b_file)
    plain = ab.post("/products/_search", json={"query": SOFA_QUERY, "size": 6}, headers={**SHOPPER, **ON}).get_json()
    held = plain["hits"]["hits"][-1]["_id"]  # a product both rankings hold, not first
    query = {"pinned": {"ids": [held], "organic": SOFA_QUERY}}
    body = ab.post("/products/_search", json={"query": query, "size": 6}, headers={**SHOPPER, **ON}).get_json()
    teams = body["search_rerank"]["interleaving"]["teams"]
    assert body["hits"]["hits"][0]["_id"] == held
    assert teams[0] is None, teams


def test_each_shown_product_is_logged_as_an_impression_with_its_team(ab_client, ubi_path):
    body = search(ab_client, ON, size=6, **{"from": 2})
    query, *impressions = records(ubi_path)
    assert query["query_id"] == body["meta"]["query_id"]
    assert [
        (
            e["event_attributes"]["object"]["object_id"],
            e["event_attributes"]["position"]["ordinal"],
            e["event_attributes"]["team"],
        )
        for e in impressions
    ] == [(hit["id"], 2 + i, team) for i, (hit, team) in enumerate(zip(body["hits"], body["interleaving"]["teams"]))]
    assert {e["action_name"] for e in impressions} == {"impression"}
    assert {e["query_id"] for e in impressions} == {query["query_id"]}


def test_the_report_on_the_written_log_credits_the_team_whose_products_were_clicked(ab_client, ubi_path):
    for query in ("sofa", "oak table", "lamp", "rug", "chair"):
        body = search(ab_client, ON, query=query)
        teams = body["interleaving"]["teams"]
        ordinal, hit = next((i, h) for i, (h, t) in enumerate(zip(body["hits"], teams)) if t == "B")
        event = {
            "action_name": "click",
            "query_id": body["meta"]["query_id"],
            "client_id": "client-7",
            "event_attributes": {"object": {"object_id": hit["id"]}, "position": {"ordinal": ordinal}},
        }
        assert ab_client.post("/ubi/events", json=event).status_code == 200
    result = CliRunner().invoke(main, ["interleaving-report", "--json", str(log_file(ubi_path))])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert (report["impressions"], report["b_wins"], report["a_wins"]) == (5, 5, 0)
    assert report["preference_b"] == 1.0


def test_searches_that_are_not_interleaved_log_no_team(ab_client, ubi_path):
    search(ab_client)
    assert [r.get("action_name") for r in records(ubi_path)] == [None]


def test_a_search_that_is_not_interleaved_goes_straight_to_the_pipeline(ab_client, monkeypatch):
    from search_rerank.serving import interleave

    def refuse(*args, **kwargs):
        raise AssertionError("a search that is not interleaved went through interleave.run")

    monkeypatch.setattr(interleave, "run", refuse)
    assert "interleaving" not in search(ab_client, {HEADER: "off"})


def test_the_header_on_without_the_admin_token_is_a_403_naming_it(ab_client):
    response = ab_client.post("/search", json={"query": "sofa"}, headers={**SHOPPER, HEADER: "on"})
    assert response.status_code == 403
    (error,) = response.get_json()["fields"]
    assert error["field"] == HEADER and "admin token" in error["message"]


def test_the_header_on_with_a_wrong_token_is_a_403(ab_client):
    headers = {**SHOPPER, HEADER: "on", "Authorization": "Bearer not-the-token"}
    assert ab_client.post("/search", json={"query": "sofa"}, headers=headers).status_code == 403


def test_the_header_on_without_the_admin_token_is_a_403_on_the_elasticsearch_endpoint(ab_client):
    response = ab_client.post(
        "/products/_search", json={"query": {"match": {"title": "sofa"}}}, headers={**SHOPPER, HEADER: "on"}
    )
    assert response.status_code == 403
    error = response.get_json()["error"]
    assert (error["type"], error["field"]) == ("security_exception", HEADER)


@pytest.mark.parametrize("value", ["yes", "", "1"])
def test_an_unknown_header_value_is_a_400_naming_the_values(ab_client, value):
    response = ab_client.post("/search", json={"query": "sofa"}, headers={HEADER: value})
    assert response.status_code == 400
    assert "['on', 'off']" in response.get_json()["message"]


def test_the_header_on_without_a_second_ranking_is_a_400_naming_the_setting(client):
    response = client.post("/search", json={"query": "sofa"}, headers=ON)
    assert response.status_code == 400
    assert "service.interleave_with" in response.get_json()["message"]


def test_a_share_without_a_second_ranking_is_refused():
    with pytest.raises(ValueError, match="interleave_with"):
        Settings(service={"interleave_share": 0.5})


def test_a_missing_settings_file_b_stops_the_start(settings, pipeline, ubi_path, tmp_path):
    with pytest.raises(SystemExit, match="does not exist"):
        make_client(settings, pipeline, ubi_path, interleave_with=tmp_path / "missing.toml")


def test_settings_b_takes_the_ranking_sections_and_candidates_but_not_the_indexes(settings):
    b = ranking_settings(
        settings,
        {
            "index_dir": "elsewhere",
            "fusion": {"method": "linear"},
            "lexical": {"candidates": 7, "k1": 2.0},
            "longtail": {"strength": 0.3},
        },
    )
    assert (b.fusion.method, b.lexical.candidates, b.longtail.strength) == ("linear", 7, 0.3)
    assert (b.index_dir, b.lexical.k1) == (settings.index_dir, settings.lexical.k1)


def test_settings_b_naming_another_reranker_is_refused(settings):
    with pytest.raises(ConfigError, match="rerank.model"):
        ranking_settings(settings, {"rerank": {"model": "other-reranker"}})


def test_both_rankings_share_one_retrieval_at_the_larger_candidate_count(settings, pipeline, monkeypatch):
    from search_rerank.serving.interleave import run

    calls = []
    retrieve = pipeline.retrieve
    monkeypatch.setattr(
        pipeline, "retrieve", lambda q, f, s, *rest: calls.append(s.lexical.candidates) or retrieve(q, f, s, *rest)
    )
    b = ranking_settings(settings, {"lexical": {"candidates": 60}, "dense": {"enabled": False}})
    search = run(pipeline, "sofa", None, 10, 0, settings, b, draft_seed=1)
    assert calls == [60]
    merged = search.result.ranking.candidates
    assert {c.legs for c, team in zip(merged, search.interleaved.teams) if team == "B"} == {frozenset({"lexical"})}
