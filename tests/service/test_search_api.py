"""POST /search: the request contract (validation, limits, overrides, explain) and JSON-only errors."""

import pytest
import tantivy

from search_rerank.serving import create_app


def search(client, **body):
    return client.post("/search", json=body)


def field_errors(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json()["fields"]}


def es_field(response) -> str:
    """The field an Elasticsearch-shaped error names."""
    return response.get_json()["error"]["root_cause"][0]["field"]


def test_search_returns_a_page_of_hits_with_products(client):
    response = search(client, query="sofa", size=5)
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["hits"]) == 5
    assert all(hit["product"]["id"] == hit["id"] for hit in body["hits"])
    assert body["total"] >= 5 and body["from"] == 0 and body["size"] == 5


def test_search_reports_stage_timings_and_skipped_stages(client):
    body = search(client, query="sofa").get_json()
    assert {"lexical", "dense", "fusion", "total"} <= set(body["timings_ms"])
    assert body["skipped"]["rerank"] == "no reranker model configured"
    assert body["degraded"] == {}


def test_filters_apply_to_every_hit(client):
    body = search(client, query="table", size=20, filters={"category": "Furniture", "price_max": 400}).get_json()
    assert body["hits"]
    for hit in body["hits"]:
        assert hit["product"]["category"][0] == "Furniture"
        assert hit["product"]["price"] <= 400


def test_explain_adds_each_stage_score_to_every_hit(client):
    hits = search(client, query="lamp", size=3, explain=True).get_json()["hits"]
    assert all({"legs", "fused", "final"} <= set(hit["explanation"]) for hit in hits)


def test_hits_carry_no_explanation_unless_asked(client):
    hits = search(client, query="lamp", size=3).get_json()["hits"]
    assert all("explanation" not in hit for hit in hits)


def test_override_changes_the_fusion_for_one_request_only(client, settings):
    rrf = search(client, query="rug", explain=True, overrides={"fusion": {"method": "rrf"}}).get_json()
    default = search(client, query="rug", explain=True).get_json()
    assert rrf["hits"][0]["explanation"]["fused"] != default["hits"][0]["explanation"]["fused"]
    assert settings.fusion.method == "linear"


def test_override_changes_the_fusion_even_where_a_variable_sets_the_served_one(client, monkeypatch):
    """A container sets settings as variables: validating the request's settings read them again, over the
    request's own values, so the override was silently ignored."""
    monkeypatch.setenv("SEARCH_RERANK_FUSION__METHOD", "linear")
    rrf = search(client, query="rug", explain=True, overrides={"fusion": {"method": "rrf"}}).get_json()
    default = search(client, query="rug", explain=True).get_json()
    assert rrf["hits"][0]["explanation"]["fused"] != default["hits"][0]["explanation"]["fused"]


def test_override_of_candidates_bounds_the_ranked_list(client):
    pool = {"lexical": {"candidates": 3}, "dense": {"candidates": 2}}
    body = search(client, query="chair", overrides=pool).get_json()
    assert body["total"] <= 5


def test_longtail_can_be_switched_off_per_request(client):
    body = search(client, query="chair", overrides={"longtail": {"enabled": False}}).get_json()
    assert body["skipped"]["longtail"] == "long-tail boost disabled in settings"


def test_longtail_method_can_be_switched_to_xquad_per_request(client):
    hits = search(client, query="chair", explain=True, overrides={"longtail": {"method": "xquad"}}).get_json()["hits"]
    assert all("xquad_gain" in hit["explanation"] for hit in hits)
    default = search(client, query="chair", explain=True).get_json()["hits"]
    assert not any("xquad_gain" in hit["explanation"] for hit in default)


@pytest.mark.parametrize(
    "body, field",
    [
        ({}, "query"),
        ({"query": ""}, "query"),
        ({"query": "x" * 101}, "query"),
        ({"query": "sofa", "size": 51}, "size"),
        ({"query": "sofa", "size": -1}, "size"),
        ({"query": "sofa", "from": -1}, "from"),
        ({"query": "sofa", "from": 190, "size": 20}, "from"),
        ({"query": "sofa", "size": "ten"}, "size"),
        ({"query": "sofa", "size": True}, "size"),
        ({"query": "sofa", "from": False}, "from"),
        ({"query": "sofa", "colour": "red"}, "colour"),
        ({"query": "sofa", "filters": {"price_min": -5}}, "filters.price_min"),
        ({"query": "sofa", "filters": {"shape": "round"}}, "filters.shape"),
        ({"query": "sofa", "overrides": {"fusion": {"method": "borda"}}}, "overrides.fusion.method"),
        ({"query": "sofa", "overrides": {"fusion": {"weights": {"dense": -1}}}}, "overrides.fusion.weights.dense"),
        ({"query": "sofa", "overrides": {"rerank": {"window": 0}}}, "overrides.rerank.window"),
        ({"query": "sofa", "overrides": {"longtail": {"gate": 2}}}, "overrides.longtail.gate"),
        ({"query": "sofa", "overrides": {"dense": {"model": "other"}}}, "overrides.dense.model"),
    ],
)
def test_bad_field_is_a_400_naming_it(client, body, field):
    response = client.post("/search", json=body)
    assert response.status_code == 400
    assert field in field_errors(response)


def test_body_that_is_not_a_json_object_is_a_400_on_body(client):
    response = client.post("/search", data="query=sofa", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 400
    assert "body" in field_errors(response)


def test_json_without_content_type_is_accepted(client):
    response = client.post("/search", data='{"query": "sofa"}', content_type="text/plain")
    assert response.status_code == 200


def test_oversized_body_is_a_json_413(client, settings):
    response = client.post("/search", json={"query": "sofa", "pad": "x" * settings.service.max_body_bytes})
    assert response.status_code == 413
    assert response.is_json


@pytest.mark.parametrize(("path", "named"), [("/search", field_errors), ("/products/_search", es_field)])
def test_an_oversized_body_is_refused_naming_the_body_and_the_limit(client, settings, path, named):
    """werkzeug's own text said "The data value transmitted exceeds the capacity limit.", naming neither."""
    response = client.post(path, json={"query": "sofa", "pad": "x" * settings.service.max_body_bytes})
    assert response.status_code == 413 and "body" in named(response)
    assert f"{settings.service.max_body_bytes:,}" in response.get_data(as_text=True)


def test_unknown_path_is_a_json_404(client):
    response = client.get("/nothing-here")
    assert response.status_code == 404
    assert response.get_json()["error"] == "Not Found"


def test_wrong_method_is_a_json_405(client):
    response = client.get("/search")
    assert response.status_code == 405
    assert response.is_json


def test_a_405_says_which_methods_the_path_allows(client):
    # HTTP requires it of a 405 (RFC 9110, 15.5.6): a client or proxy learns from it what to send instead.
    response = client.get("/search")
    assert set(response.headers["Allow"].split(", ")) >= {"POST"}


def test_unexpected_exception_is_a_json_500_not_a_traceback(client, pipeline):
    def broken(*args, **kwargs):
        raise RuntimeError("secret internals")

    pipeline.run = broken
    response = search(client, query="sofa")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal error",
        "message": f"request id {response.headers['X-Request-Id']}",
    }


def test_a_panic_of_the_engine_is_a_json_500_not_a_dropped_connection(client, pipeline):
    # pyo3 raises a Rust panic as a BaseException, past Flask's handlers: the server dropped the connection.
    def panicking(*args, **kwargs):
        builder = tantivy.SchemaBuilder()
        builder.add_text_field("t", index_option="position")
        tantivy.Query.phrase_query(builder.build(), "t", ["one"])  # tantivy panics on a phrase of one word

    pipeline.run = panicking
    response = search(client, query="sofa")
    assert response.status_code == 500
    assert response.get_json() == {
        "error": "internal error",
        "message": f"request id {response.headers['X-Request-Id']}",
    }


def test_stages_list_the_page_as_lexical_dense_fusion_and_final_ranked_it(client):
    body = search(client, query="oak table", size=5, stages=True).get_json()
    stages = body["stages"]
    assert set(stages) == {"lexical", "dense", "fusion", "final"}
    assert stages["final"] == [hit["id"] for hit in body["hits"]]
    assert all(len(ids) == 5 for ids in stages.values())
    assert stages["lexical"] != stages["dense"]  # the random dense model disagrees with BM25


def test_timings_and_skipped_stages_are_keyed_by_the_plain_stage_names(client):
    body = search(client, query="oak table", size=5).get_json()
    assert set(body["timings_ms"]) == {"lexical", "dense", "fusion", "longtail", "total"}
    assert set(body["skipped"]) == {"rerank", "ltr", "diversity", "personal"}


def test_stages_follow_the_page_window(client):
    first = search(client, query="oak table", size=5, stages=True).get_json()["stages"]
    second = search(client, query="oak table", size=5, stages=True, **{"from": 5}).get_json()["stages"]
    everything = search(client, query="oak table", size=10, stages=True).get_json()["stages"]
    assert all(first[name] + second[name] == everything[name] for name in everything)


def test_every_product_in_a_stage_list_comes_with_its_record_and_explanation(client):
    body = search(client, query="lamp", size=5, stages=True).get_json()
    listed = {pid for ids in body["stages"].values() for pid in ids}
    assert set(body["stage_products"]) == listed
    assert all(p["product"]["id"] == pid and "final" in p["explanation"] for pid, p in body["stage_products"].items())


def test_a_leg_that_did_not_run_has_no_list(settings, pipeline):
    del pipeline.legs["dense"]
    body = search(create_app(settings, pipeline).test_client(), query="lamp", stages=True).get_json()
    assert set(body["stages"]) == {"lexical", "fusion", "final"}


def test_no_stages_unless_asked(client):
    body = search(client, query="lamp").get_json()
    assert "stages" not in body and "stage_products" not in body


# ------------------------------------------------------------------ what a request may cost

TOKEN = "cost-admin-token"
ADMIN = {"Authorization": f"Bearer {TOKEN}"}
# Each override that sets how much work a search does, as the served value plus one (the tests' settings serve 40
# candidates per leg, a rerank window of 50 and an MMR depth of 30).
RAISES = [
    ("overrides.lexical.candidates", {"lexical": {"candidates": 41}}),
    ("overrides.dense.candidates", {"dense": {"candidates": 41}}),
    ("overrides.rerank.window", {"rerank": {"window": 51}}),
    ("overrides.diversity.depth", {"diversity": {"enabled": True, "depth": 31}}),
]


@pytest.fixture
def guarded_client(settings, pipeline, monkeypatch):
    """The service with an admin token configured: the token exists, the shopper's browser does not send it."""
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", TOKEN)
    return create_app(settings, pipeline).test_client()


@pytest.mark.parametrize("field, overrides", RAISES, ids=[field for field, _ in RAISES])
def test_raising_a_cost_override_without_the_admin_token_is_a_403_naming_it(guarded_client, field, overrides):
    response = search(guarded_client, query="sofa", overrides=overrides)
    assert response.status_code == 403
    assert list(field_errors(response)) == [field]
    assert "admin token" in field_errors(response)[field]


def test_raising_a_cost_override_with_a_wrong_token_is_a_403(guarded_client):
    response = guarded_client.post(
        "/search",
        json={"query": "sofa", "overrides": {"rerank": {"window": 1000}}},
        headers={"Authorization": "Bearer not-the-token"},
    )
    assert response.status_code == 403


def test_raising_a_cost_override_is_a_403_when_no_admin_token_is_configured(client):
    response = search(client, query="sofa", overrides={"lexical": {"candidates": 10_000}})
    assert response.status_code == 403
    assert "overrides.lexical.candidates" in field_errors(response)


def test_every_raised_cost_override_is_named(guarded_client):
    overrides = {"lexical": {"candidates": 500}, "dense": {"candidates": 500}, "rerank": {"window": 1000}}
    response = search(guarded_client, query="sofa", overrides=overrides)
    assert response.status_code == 403
    assert set(field_errors(response)) == {
        "overrides.lexical.candidates",
        "overrides.dense.candidates",
        "overrides.rerank.window",
    }


@pytest.mark.parametrize("field, overrides", RAISES, ids=[field for field, _ in RAISES])
def test_raising_a_cost_override_with_the_admin_token_is_served(guarded_client, field, overrides):
    response = guarded_client.post("/search", json={"query": "sofa", "overrides": overrides}, headers=ADMIN)
    assert response.status_code == 200, response.get_json()


def test_raised_candidates_with_the_admin_token_rank_more_candidates(guarded_client):
    served = search(guarded_client, query="sofa", size=5).get_json()["total"]
    more = {"query": "sofa", "size": 5, "overrides": {"lexical": {"candidates": 200}, "dense": {"candidates": 200}}}
    raised = guarded_client.post("/search", json=more, headers=ADMIN).get_json()["total"]
    assert raised > served


@pytest.mark.parametrize(
    "overrides",
    [
        {"lexical": {"candidates": 40}, "dense": {"candidates": 40}, "rerank": {"window": 50}},
        {"lexical": {"candidates": 5}, "dense": {"candidates": 5}, "rerank": {"window": 1}},
        {"diversity": {"enabled": True, "depth": 30}},
        {"diversity": {"enabled": True, "depth": 3}},
    ],
)
def test_lowering_or_keeping_a_cost_override_is_served_without_the_token(guarded_client, overrides):
    response = search(guarded_client, query="sofa", overrides=overrides)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize(
    "overrides",
    [
        {"fusion": {"method": "rrf", "rank_constant": 10, "weights": {"lexical": 0.2, "dense": 0.8}}},
        {"longtail": {"strength": 10.0, "gate": 0.0}},
        {"personalisation": {"vector_weight": 10.0, "cap": 10.0, "max_rise": 1000}},
    ],
)
def test_cost_free_overrides_are_served_without_the_token(guarded_client, overrides):
    response = search(guarded_client, query="sofa", overrides=overrides)
    assert response.status_code == 200, response.get_json()


@pytest.mark.parametrize("bound", ["price_min", "price_max"])
@pytest.mark.parametrize("value", ["inf", "Infinity", "1e400", "NaN"])
def test_a_price_bound_that_is_no_finite_number_is_a_400_naming_it(client, bound, value):
    """Taken, "inf" was written into the result cache's key as null, so that after one shopper's search with no
    lower bound left (nothing), another's with no upper bound was answered from it: nothing."""
    response = client.post("/search", json={"query": "sofa", "filters": {bound: value}})
    assert response.status_code == 400
    assert response.get_json()["fields"][0]["field"] == f"filters.{bound}"
