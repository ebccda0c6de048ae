"""The Elasticsearch-compatible endpoints, driven by the bodies real search front ends send (see fixtures/README.md)."""

import json
from pathlib import Path

import pytest

from search_rerank.core.settings import Settings

FIXTURES = Path(__file__).parent / "fixtures"


def fixture(name):
    return json.loads((FIXTURES / name).read_text())


def es_search(client, body, index="products", **params):
    return client.post(f"/{index}/_search", json=body, query_string=params)


def test_search_ui_query_gets_an_elasticsearch_response(client):
    response = es_search(client, fixture("search_ui_query.json"))
    assert response.status_code == 200
    body = response.get_json()
    assert isinstance(body["took"], int) and body["timed_out"] is False
    assert body["_shards"] == {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
    assert set(body["hits"]["total"]) == {"value", "relation"}
    assert len(body["hits"]["hits"]) == 10
    assert body["hits"]["max_score"] == body["hits"]["hits"][0]["_score"]


def test_hits_carry_index_id_score_and_only_the_requested_source(client):
    hits = es_search(client, fixture("search_ui_query.json")).get_json()["hits"]["hits"]
    for hit in hits:
        assert hit["_index"] == "products"
        assert isinstance(hit["_id"], str) and isinstance(hit["_score"], float)
        assert set(hit["_source"]) <= {"title", "brand", "price"} and "title" in hit["_source"]


def test_responses_identify_as_elasticsearch_for_its_clients(client):
    assert es_search(client, {}).headers["X-Elastic-Product"] == "Elasticsearch"


def test_search_rerank_section_reports_timings_and_ignored_parameters(client):
    section = es_search(client, fixture("search_ui_query.json")).get_json()["search_rerank"]
    assert {"lexical", "dense", "fusion", "total"} <= set(section["timings_ms"])
    assert section["degraded"] == {}
    assert "multi_match.fields" in section["ignored"]


def test_search_ui_filters_apply_to_every_hit(client):
    hits = es_search(client, fixture("search_ui_filters.json")).get_json()["hits"]["hits"]
    assert hits
    for hit in hits:
        assert hit["_source"]["category"][0] == "Furniture"
        assert 0 <= hit["_source"]["price"] <= 600


def test_search_ui_empty_term_browses_the_filtered_catalog(client):
    body = es_search(client, fixture("search_ui_empty_term.json")).get_json()
    assert len(body["hits"]["hits"]) == 10
    assert all(hit["_source"]["category"][0] == "Furniture" for hit in body["hits"]["hits"])
    assert body["search_rerank"]["skipped"]["dense"] == "no query text to embed"


def test_search_ui_facets_and_highlight_are_answered_on_the_embedded_backend(client):
    body = es_search(client, fixture("search_ui_facets_highlight.json")).get_json()
    facets = body["aggregations"]["facet_bucket_all"]
    assert sum(b["doc_count"] for b in facets["categoryKeyword"]["buckets"]) == facets["doc_count"] > 0
    assert any("<em>" in hit.get("highlight", {}).get("title", [""])[0] for hit in body["hits"]["hits"])


def test_searchkit_multi_search_answers_each_search(client):
    ndjson = (FIXTURES / "searchkit_msearch.ndjson").read_text()
    response = client.post("/_msearch", data=ndjson, content_type="application/x-ndjson")
    assert response.status_code == 200
    first, second = response.get_json()["responses"]
    assert first["status"] == second["status"] == 200
    assert first["hits"]["hits"] and all(set(h["_source"]) <= {"title", "brand"} for h in first["hits"]["hits"])
    assert second["hits"]["hits"]
    assert all("red" in h["_source"]["attributes"]["color"] for h in second["hits"]["hits"])


def test_multi_search_refuses_one_search_without_failing_the_others(client):
    unsupported = {"suggest": {"s": {"text": "lamp", "phrase": {"field": "title", "collate": {"query": {}}}}}}
    ndjson = '{}\n{"query": {"match": {"title": "lamp"}}}\n{}\n' + json.dumps(unsupported) + "\n"
    first, second = client.post("/products/_msearch", data=ndjson).get_json()["responses"]
    assert first["status"] == 200
    assert second["status"] == 501 and second["error"]["unsupported"] == "suggest.s.phrase.collate"


def test_uri_search_with_q_and_size(client):
    body = client.get("/products/_search", query_string={"q": "sofa", "size": "3"}).get_json()
    assert len(body["hits"]["hits"]) == 3


def test_uri_size_wins_over_the_bodys_size(client):
    """Elasticsearch sets the parameter over the body (``es.search(body=..., size=5)`` of older clients); the body's
    size was the page's."""
    body = es_search(client, {"query": {"match": {"title": "sofa"}}, "size": 5}, size="2").get_json()
    assert len(body["hits"]["hits"]) == 2


@pytest.mark.parametrize(
    "query_string",
    [
        'source={"query": {"match": {"title": "zebra"}}}&source_content_type=application/json',
        "suggest_field=title&suggest_text=sofa",
    ],
)
def test_a_uri_parameter_that_changes_the_answer_and_is_not_served_is_a_501_naming_it(client, query_string):
    """Elasticsearch reads ``source`` as the body (the search for zebras), or suggests: ignored, each was answered
    with every product's full hits as if it were not there."""
    response = client.get(f"/products/_search?{query_string}")
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == query_string.split("=")[0]


@pytest.mark.parametrize(
    ("path", "method", "misspelt", "meant"),
    [
        ("/products/_search", "get", "szie", "size"),
        ("/products/_msearch", "post", "typed_key", "typed_keys"),
        ("/products/_count", "get", "analyse_wildcard", "analyze_wildcard"),
    ],
)
def test_a_uri_parameter_the_endpoint_does_not_take_is_a_400_naming_it_and_the_nearest(
    client, path, method, misspelt, meant
):
    """Elasticsearch refuses it (``contains unrecognized parameter: [szie] -> did you mean [size]?``): ignored, the
    page of ten answered as if the client had asked for none."""
    body = '{}\n{"query": {"match_all": {}}}\n' if method == "post" else None
    response = getattr(client, method)(path, query_string={misspelt: "5"}, data=body)
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["field"] == misspelt and f"did you mean [{meant}]" in error["reason"]


def test_the_uri_parameters_kibana_and_the_official_clients_send_are_taken(client):
    params = {
        "rest_total_hits_as_int": "true",
        "ignore_unavailable": "true",
        "ignore_throttled": "false",
        "preference": "1700000000000",
        "timeout": "30000ms",
        "track_total_hits": "true",
        "batched_reduce_size": "512",
        "ccs_minimize_roundtrips": "true",
        "pretty": "true",
    }
    assert client.get("/products/_search", query_string=params).status_code == 200


def test_search_without_an_index_is_served(client):
    assert client.post("/_search", json={"query": {"match": {"title": "rug"}}}).status_code == 200


def test_explain_adds_every_stages_scores_per_hit(client):
    body = es_search(client, {"query": {"match": {"title": "rug"}}, "size": 3}, explain="true").get_json()
    explanations = body["search_rerank"]["explanations"]
    assert set(explanations) == {hit["_id"] for hit in body["hits"]["hits"]}
    assert all("fused" in e for e in explanations.values())


def test_explain_gives_each_hit_an_explanation_in_elasticsearchs_shape_valued_at_its_score(client):
    body = es_search(client, {"query": {"match": {"title": "rug"}}, "size": 3}, explain="true").get_json()
    for hit in body["hits"]["hits"]:
        explanation = hit["_explanation"]
        assert explanation["value"] == hit["_score"] and explanation["description"]
        stages = {detail["description"]: detail["value"] for detail in explanation["details"]}
        assert stages["fused"] == body["search_rerank"]["explanations"][hit["_id"]]["fused"]


def test_track_total_hits_false_leaves_the_total_out(client):
    assert "total" not in es_search(client, {"track_total_hits": False}).get_json()["hits"]


MANY = {"match": {"title": "table sofa chair lamp bed desk"}}
"""A query more products match than a leg's candidates."""


def test_the_total_counts_every_match_beyond_the_legs_candidates(client):
    """Front ends page up to hits.total ("1-12 of 5,000"): every product the query matches, with the dense leg's
    products beyond them, though the pipeline ranks only the legs' candidates."""
    query = MANY
    matches = client.post("/products/_count", json={"query": query}).get_json()["count"]
    body = es_search(client, {"query": query, "size": 5}).get_json()
    assert body["hits"]["total"]["relation"] == "eq"
    assert body["hits"]["total"]["value"] >= matches > client.application.config["SETTINGS"].lexical.candidates


def test_pages_past_the_ranked_candidates_go_on_with_every_match_once(client):
    query = MANY
    first = es_search(client, {"query": query, "size": 50}).get_json()["hits"]
    total = first["total"]["value"]
    pages = [es_search(client, {"query": query, "from": start, "size": 50}).get_json()["hits"]["hits"]
             for start in range(0, total, 50)]  # fmt: skip
    seen = [hit["_id"] for page in pages for hit in page]
    assert len(seen) == len(set(seen)) == total


def test_filters_that_exclude_everything_answer_with_no_hits(client):
    query = {"bool": {"filter": [{"term": {"brand": "A"}}, {"term": {"brand": "B"}}]}}
    body = es_search(client, {"query": query}).get_json()
    assert body["hits"]["hits"] == [] and body["hits"]["total"] == {"value": 0, "relation": "eq"}


def test_nested_query_is_a_501_naming_it(client):
    response = es_search(client, {"query": {"nested": {"path": "facet.attributes", "query": {"match_all": {}}}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "query.nested"


def test_malformed_query_is_an_elasticsearch_400_naming_the_field(client):
    response = es_search(client, {"query": {"match": 5}})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "query.match"
    assert response.get_json()["status"] == 400


def test_body_that_is_not_json_is_an_elasticsearch_400(client):
    response = client.post("/products/_search", data="{not json")
    assert response.status_code == 400
    assert response.get_json()["error"]["type"] == "parsing_exception"


@pytest.mark.parametrize(
    "method, path, endpoint",
    [
        ("GET", "/products/_termvectors/P0000001", "_termvectors"),
        ("PUT", "/products/_doc/P0000001", "_doc"),
        ("GET", "/_cat/indices", "_cat"),
        ("PUT", "/products/_mapping", "_mapping"),
        ("POST", "/products/_validate/query", "_validate"),
    ],
)
def test_other_elasticsearch_endpoints_are_a_501_naming_them(client, method, path, endpoint):
    response = client.open(path, method=method)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == endpoint


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("PUT", "/products/_search", "GET, POST"),
        ("DELETE", "/_search", "GET, POST"),
        ("GET", "/products/_msearch", "POST"),
    ],
)
def test_a_served_endpoint_called_with_another_method_is_a_405_saying_which_are_allowed(client, method, path, allowed):
    response = client.open(path, method=method)
    assert response.status_code == 405
    assert response.headers["Allow"] == allowed
    assert response.get_json()["error"]["type"] == "method_not_allowed"


@pytest.mark.parametrize("path", ["/products/_search", "/_search"])
def test_head_on_search_is_a_405_not_a_search(client, path):
    """Elasticsearch has no HEAD for _search; run for an answer nobody reads, it cost a whole search."""
    response = client.head(path)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, POST"


@pytest.mark.parametrize("query_string", ["q=%ff", "q=lamp&size=%c0%af", "q%ff=lamp"])
def test_a_uri_parameter_that_is_not_utf8_is_a_400_naming_it(client, query_string):
    """Decoded with replacement characters, ``%ff`` was searched as a word nobody typed."""
    response = client.get(f"/products/_search?{query_string}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert error["type"] == "parsing_exception" and error["field"] == query_string.split("&")[-1].split("=")[0]
    assert "UTF-8" in error["reason"]


@pytest.mark.parametrize("expression", ["_all", "*", "prod*", "products,products", "products"])
def test_a_search_of_an_index_expression_names_the_served_index_in_its_hits(client, expression):
    """Elasticsearch writes the index a hit is in, never the expression searched."""
    response = client.post(f"/{expression}/_search", json={"query": {"match": {"title": "lamp"}}})
    assert response.status_code == 200
    assert {hit["_index"] for hit in response.get_json()["hits"]["hits"]} == {"products"}


def test_a_count_of_all_indexes_is_the_count_of_the_served_one(client):
    body = {"query": {"match": {"title": "lamp"}}}
    assert client.post("/_all/_count", json=body).get_json() == client.post("/products/_count", json=body).get_json()


def test_a_multi_search_header_of_several_names_names_the_served_index_in_its_hits(client):
    ndjson = '{"index": ["products", "prod*"]}\n{"query": {"match": {"title": "lamp"}}}\n'
    answer = client.post("/_msearch", data=ndjson).get_json()["responses"][0]
    assert {hit["_index"] for hit in answer["hits"]["hits"]} == {"products"}


def test_an_index_name_starting_with_an_underscore_is_a_400(client):
    response = client.post("/_proto_/_search", json={})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "index"


def test_multi_search_of_more_searches_than_the_limit_is_a_400_naming_the_setting(client):
    limit = Settings().service.max_msearch_searches
    ndjson = '{}\n{"query": {"match": {"title": "lamp"}}}\n' * (limit + 1)
    response = client.post("/products/_msearch", data=ndjson)
    assert response.status_code == 400
    assert "max_msearch_searches" in json.dumps(response.get_json())


def test_multi_search_of_as_many_searches_as_the_limit_is_served(client):
    limit = Settings().service.max_msearch_searches
    ndjson = '{}\n{"size": 0}\n' * limit
    responses = client.post("/products/_msearch", data=ndjson).get_json()["responses"]
    assert len(responses) == limit and all(r["status"] == 200 for r in responses)


def test_multi_search_asking_more_hits_in_all_than_the_limit_is_a_400_naming_the_setting(client):
    """Each search is within the result window; together they ask one more hit than a multi-search may (a search
    without a size counts its default ten)."""
    most = client.application.config["SETTINGS"].service.max_msearch_hits
    half = most // 2
    ndjson = f'{{}}\n{{"size": {half}}}\n{{}}\n{{"from": 1, "size": {most - half - 10}}}\n{{}}\n{{}}\n'
    response = client.post("/products/_msearch", data=ndjson)
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "body"
    assert "max_msearch_hits" in response.get_json()["error"]["reason"]


def test_multi_search_asking_as_many_hits_in_all_as_the_limit_is_served(client):
    most = client.application.config["SETTINGS"].service.max_msearch_hits
    half = most // 2
    ndjson = f'{{}}\n{{"size": {half}}}\n{{}}\n{{"size": {most - half - 10}}}\n{{}}\n{{}}\n'
    responses = client.post("/products/_msearch", data=ndjson).get_json()["responses"]
    assert [r["status"] for r in responses] == [200, 200, 200]


def test_a_page_larger_than_a_search_page_is_answered_up_to_the_result_window_as_elasticsearch_answers_it(client):
    """Searchkick asks 10,000 hits wherever no page is given; the ranked candidates come first, then the matches."""
    service = client.application.config["SETTINGS"].service
    window = service.max_result_window
    big = client.post(
        "/products/_search", json={"size": window, "query": {"match": {"description": "sofa table lamp chair a"}}}
    )
    assert big.status_code == 200, big.get_json()
    answer = big.get_json()
    assert len(answer["hits"]["hits"]) == min(answer["hits"]["total"]["value"], window) > service.max_size
    assert len({hit["_id"] for hit in answer["hits"]["hits"]}) == len(answer["hits"]["hits"])
    past = client.post("/products/_search", json={"size": window, "from": 1})
    assert past.status_code == 400 and past.get_json()["error"]["field"] == "from"
