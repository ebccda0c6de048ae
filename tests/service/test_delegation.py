"""The Query DSL delegated to the cluster (serving/delegation.py), on osmem-server, with request bodies in the
shapes Elastic Search UI and Searchkit send: filters, ranges, must_not, query_string, function_score, facets,
highlights, sorts and paging are the cluster's; the ranking is the pipeline's."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from front_end_catalog import (
    AROUND_A_CODE,
    BY_ID,
    CATALOG,
    CODE_WITHIN_FILTERS,
    MODEL_NUMBERED,
    NOT_MET_BY_A_MODEL_NUMBER_ALONE,
)
from live_server import hop
from servers import server_retriever, server_settings

from search_rerank.backends import cluster, mappings
from search_rerank.backends.cluster_query import code_lookup
from search_rerank.backends.encoder import BiEncoder
from search_rerank.backends.faiss_index import FaissRetriever
from search_rerank.backends.spelling import QueryWord
from search_rerank.core.fusion import CODE_ANCHOR
from search_rerank.core.pipeline import SearchPipeline
from search_rerank.core.product import Product
from search_rerank.core.reasons import CLUSTER_UNAVAILABLE
from search_rerank.core.retrieval import DENSE, LEXICAL
from search_rerank.core.settings import LexicalSettings, ServiceSettings, Settings
from search_rerank.core.store import ProductStore
from search_rerank.indexing.indexes import build_index
from search_rerank.serving import create_app
from search_rerank.serving.delegation import (
    MAX_BODY_ADDED_TERMS,
    MAX_BODY_SPELLING_ASKS,
    constraints,
    delegate_search,
    query_words,
)
from search_rerank.serving.retrievers import NO_QUERY

ALIASES = {"color.keyword": "attributes.color", "name": "title"}
SEARCH_UI_TEXT = {
    "bool": {
        "minimum_should_match": 1,
        "should": [
            {
                "multi_match": {
                    "fields": ["title^2", "description"],
                    "operator": "and",
                    "query": "sofa",
                    "type": "best_fields",
                }
            },
            {"multi_match": {"fields": ["title^2", "description"], "query": "sofa", "type": "phrase_prefix"}},
        ],
    }
}


def shop_settings(index_dir: Path, lexical: LexicalSettings, dense: Any) -> Settings:
    """The settings of a shop on CATALOG's cluster index: its field aliases, no long-tail boost, and no deadline a
    loaded machine could miss (a leg or the aggregations left out would fail a test about something else)."""
    return Settings(
        index_dir=index_dir,
        lexical=lexical,
        dense=dense,
        longtail={"enabled": False},
        service={"field_aliases": ALIASES, "aggregations_timeout_s": 60.0},
    ).offline()


@pytest.fixture
def make_shop(request, tmp_path, tiny_settings):
    """``make_shop(dense=False, candidates=40, engine="opensearch", products=CATALOG, **lexical)``: the app on a fresh
    index of ``products`` (osmem-server, or ES_URL for Elasticsearch), with a FAISS dense leg over the same products
    when ``dense``; ``lexical`` are more lexical settings (``url`` of a hop in front of the server)."""
    made = []

    def make(
        dense: bool = False,
        candidates: int = 40,
        engine: str = "opensearch",
        products: list[Product] = CATALOG,
        **lexical_settings: Any,
    ):
        direct: LexicalSettings = server_settings(engine, request, candidates=candidates)
        made.append(server_retriever(direct))
        made[-1].add(products)
        lexical = direct.model_copy(update=lexical_settings)
        store = ProductStore(tmp_path / f"{lexical.index}.sqlite")
        store.add(products)
        store.refresh_popularity()
        legs: dict[str, Any] = {LEXICAL: server_retriever(lexical)}
        dense_settings = tiny_settings.model_copy(update={"candidates": len(products)}) if dense else {"enabled": False}
        if dense:
            faiss = FaissRetriever(BiEncoder(tiny_settings), tiny_settings)
            faiss.add(products)
            legs[DENSE] = faiss
        settings = shop_settings(tmp_path / "unused", lexical, dense_settings)
        return create_app(settings, SearchPipeline(settings, legs, store)).test_client()

    yield make
    for retriever in made:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)


@pytest.fixture
def shop(make_shop):
    return make_shop()


def search(client, body: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def ids(answer: dict[str, Any]) -> list[str]:
    return [hit["_id"] for hit in answer["hits"]["hits"]]


def buckets(aggregation: dict[str, Any]) -> dict[str, int]:
    return {bucket["key"]: bucket["doc_count"] for bucket in aggregation["buckets"]}


# ------------------------------------------------------------------ filters reach the cluster as sent


def test_range_with_from_and_to_keeps_only_prices_inside(shop):
    # Search UI's range facets send the legacy from/to bounds.
    query = {"bool": {"must": [SEARCH_UI_TEXT], "filter": [{"range": {"price": {"from": 400, "to": 700}}}]}}
    assert set(ids(search(shop, {"query": query}))) == {"s1", "s3", "s4"}


def test_must_not_excludes_products_from_the_hits(shop):
    query = {"bool": {"must": [SEARCH_UI_TEXT], "must_not": [{"term": {"color.keyword": "grey"}}]}}
    assert set(ids(search(shop, {"query": query}))) == {"s2", "s3"}


@pytest.mark.parametrize(
    "clause",
    [
        {"match": {"title": {"query": "sofa", "operator": "and", "analyzer": "searchkick_search"}}},
        {"multi_match": {"query": "sofa", "fields": ["title"], "analyzer": "searchkick_search2"}},
        {"query_string": {"query": "sofa", "analyzer": "searchkick_search", "quote_analyzer": "x"}},
        {"simple_query_string": {"query": "sofa", "fields": ["title"], "analyzer": "searchkick_word_search"}},
    ],
)
def test_a_full_text_querys_own_analyzer_is_left_out_as_the_served_index_analyses_its_fields(shop, clause):
    """Searchkick names its index's analyzers in every match; the served index defines none of them."""
    body = {"query": {"bool": {"filter": [clause]}}}
    assert sorted(ids(search(shop, body))) == sorted(
        ids(search(shop, {"query": {"bool": {"filter": [{"match": {"title": "sofa"}}]}}}))
    )


def test_a_page_larger_than_a_search_page_lists_every_match_once_as_elasticsearch_does(shop):
    """Searchkick asks 10,000 hits wherever no page is given: the ranked candidates, then the other matches."""
    answer = search(shop, {"size": 10_000, "query": {"match": {"description": "a"}}})
    found = ids(answer)
    assert len(found) == len(set(found)) == answer["hits"]["total"]["value"] > 0


def test_query_string_in_a_filter_is_read_as_lucene_syntax(shop):
    # Searchkit's filter: field names (brand.keyword, rating) and a comparison inside the text.
    query = {
        "bool": {
            "must": {"match": {"title": "sofa"}},
            "filter": [{"query_string": {"query": "rating:>=4 AND brand.keyword:Acme"}}],
        }
    }
    assert set(ids(search(shop, {"query": query}))) == {"s1", "s2"}


def test_query_string_exclusion_is_not_searched_for(shop):
    answer = search(shop, {"query": {"query_string": {"query": "sofa -grey", "fields": ["title", "description"]}}})
    assert set(ids(answer)) == {"s2", "s3", "s4"}


def test_query_string_names_fields_by_their_aliases(shop):
    # Searchkit's filters name the shop index's fields inside the text: color.keyword (aliased to attributes.color).
    query = {"bool": {"filter": [{"query_string": {"query": "color.keyword:grey AND name:sofa"}}]}}
    assert set(ids(search(shop, {"query": query}))) == {"s1", "s4", "s5"}


def test_query_string_minimum_should_match_holds_where_its_text_is_sent_as_query_dsl(shop):
    # brand.keyword inside the text makes it Query DSL on the index's fields; both clauses are wanted.
    query = {"query_string": {"query": "lamp OR brand.keyword:Acme", "minimum_should_match": 2}}
    assert set(ids(search(shop, {"query": query}))) == {"l1"}


def test_query_string_fuzzy_word_keeps_its_edits_where_its_text_is_sent_as_query_dsl(shop):
    answer = search(shop, {"query": {"query_string": {"query": "sofx~1 -grey", "fields": ["title"]}}})
    assert set(ids(answer)) == {"s1", "s2", "s3", "s4"}


def test_query_string_phrase_keeps_its_slop_where_its_text_is_sent_as_query_dsl(shop):
    query = {"query_string": {"query": '"roomy sofa"~2 -leather', "fields": ["description"]}}
    assert set(ids(search(shop, {"query": query}))) == {"s1"}


def test_query_string_word_without_letters_is_dropped_where_its_text_is_sent_as_query_dsl(shop):
    # Elasticsearch's parser drops a word its analyzer leaves nothing of; sent as a match of "&" it matched nothing,
    # so under AND the whole query did.
    query = {"query_string": {"query": "grey & sofa -leather", "fields": ["title"], "default_operator": "and"}}
    expected = search(shop, {"query": {"query_string": {**query["query_string"], "query": "grey sofa -leather"}}})
    assert ids(expected) and set(ids(search(shop, {"query": query}))) == set(ids(expected))


def test_query_string_wildcard_keeps_its_matches_where_its_text_is_sent_as_query_dsl(shop):
    # name (aliased to title) and an exclusion make it Query DSL: the wildcard goes as a wildcard on the field,
    # in any case, as query_string normalises it.
    query = {"query_string": {"query": "name:Sof* -grey", "fields": ["title", "description"]}}
    assert set(ids(search(shop, {"query": query}))) == {"s2", "s3", "s4"}


def test_query_string_type_that_changes_the_matches_is_a_501_where_its_text_is_sent_as_query_dsl(shop):
    query = {"query_string": {"query": "sofa -grey", "type": "phrase_prefix"}}
    response = shop.post("/products/_search", json={"query": query})
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "query.query_string.type"


def test_function_score_without_words_lists_in_the_clusters_order(shop):
    query = {
        "function_score": {
            "query": {"match_all": {}},
            "functions": [{"filter": {"ids": {"values": ["l2"]}}, "weight": 50}],
        }
    }
    assert ids(search(shop, {"query": query, "size": 3}))[0] == "l2"


def test_searchkit_query_rule_that_pins_nothing_searches_its_organic_query_on_opensearch(shop):
    # Searchkit wraps the query in a pinned query for every query rule that fires, a boost or a filter that pins
    # no document included: its ids are empty, and the answer is the organic query's (OpenSearch has no pinned).
    boost = {"filter": {"query_string": {"query": "brand.keyword:Acme"}}, "weight": 10}
    rule = {"function_score": {"query": {"pinned": {"ids": [], "organic": SEARCH_UI_TEXT}}, "functions": [boost]}}
    answer = search(shop, {"query": {"bool": {"filter": [], "must": rule}}})
    assert set(ids(answer)) == {"s1", "s2", "s3", "s4", "s5"}


def test_an_analyser_sub_field_searches_the_fields_words(shop):
    # ReactiveSearch's search box names its index's sub-fields (title.search, title.autosuggest).
    query = {"multi_match": {"query": "lamp", "fields": ["title.search", "title.autosuggest^2"]}}
    assert set(ids(search(shop, {"query": query}))) == {"l1", "l2"}


def test_a_field_the_index_does_not_hold_is_a_501_naming_it(shop):
    response = shop.post("/products/_search", json={"query": {"term": {"marketplace.seller": "x"}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "query.term.marketplace.seller"


def test_top_level_knn_without_a_dense_leg_is_a_501_naming_it(shop):
    response = shop.post("/products/_search", json={"knn": {"field": "v", "query_vector": [0.1], "k": 3}})
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "knn"


def product_vector(tiny_settings, pid: str) -> list[float]:
    """The product's own embedding, by the model the FAISS leg uses: its nearest product is itself."""
    return BiEncoder(tiny_settings).encode_documents([BY_ID[pid].embedding_text()])[0].tolist()


def test_knn_without_words_answers_the_nearest_products(make_shop, tiny_settings):
    client = make_shop(dense=True)
    answer = search(
        client, {"knn": {"field": "embedding", "query_vector": product_vector(tiny_settings, "s3"), "k": 3}}
    )
    assert ids(answer)[0] == "s3" and len(ids(answer)) == 3
    assert answer["search_rerank"]["skipped"][LEXICAL] == NO_QUERY


def test_knn_filter_keeps_the_nearest_products_inside_it(make_shop, tiny_settings):
    client = make_shop(dense=True)
    vector = product_vector(tiny_settings, "s3")
    knn = {"field": "embedding", "query_vector": vector, "k": 9, "filter": {"term": {"brand.keyword": "Acme"}}}
    found = ids(search(client, {"knn": knn, "size": 9}))
    assert found and all(BY_ID[pid].brand == "Acme" for pid in found)


def test_knn_k_above_the_served_candidates_without_the_admin_token_is_a_403_naming_it(
    make_shop, tiny_settings, monkeypatch
):
    # The k nearest are the page: k is the dense leg's candidates (served: one per product of the catalogue).
    monkeypatch.setenv("SEARCH_RERANK_ADMIN_TOKEN", "knn-admin-token")
    client = make_shop(dense=True)
    knn = {"field": "embedding", "query_vector": product_vector(tiny_settings, "s3"), "k": 10_000}
    response = client.post("/products/_search", json={"knn": knn})
    assert response.status_code == 403
    assert (response.get_json()["error"]["type"], response.get_json()["error"]["field"]) == (
        "security_exception",
        "knn.k",
    )
    admin = client.post("/products/_search", json={"knn": knn}, headers={"Authorization": "Bearer knn-admin-token"})
    assert admin.status_code == 200 and ids(admin.get_json())[0] == "s3"


def test_knn_vector_of_the_wrong_length_is_a_400(make_shop):
    client = make_shop(dense=True)
    response = client.post("/products/_search", json={"knn": {"field": "v", "query_vector": [0.1, 0.2], "k": 3}})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "knn.query_vector"


def test_a_script_in_an_aggregation_is_a_501_naming_it_before_the_cluster(shop):
    # Aggregations without a field went to the cluster as they came: osmem ran this bucket_script.
    histogram = {"histogram": {"field": "price", "interval": 100}}
    script = {"bucket_script": {"buckets_path": {"c": "_count"}, "script": "params.c"}}
    response = shop.post("/products/_search", json={"size": 0, "aggs": {"h": {**histogram, "aggs": {"b": script}}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.h.aggs.b.bucket_script.script"


def test_script_fields_of_nested_inner_hits_are_a_501_naming_them(shop):
    inner = {"script_fields": {"s": {"script": "1"}}}
    nested = {"path": "facet.attributes", "query": {"match_all": {}}, "inner_hits": inner}
    response = shop.post("/products/_search", json={"query": {"nested": nested}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "query.nested.inner_hits.script_fields"


@pytest.mark.parametrize("kind", ["phrase", "term"])
def test_a_suggester_on_a_front_ends_name_for_a_text_field_suggests_from_that_field(shop, kind):
    """Searchkick's "did you mean" names its index's field (``name``; aliased to the title)."""

    def suggested(field: str) -> list:
        suggester: dict[str, Any] = {"text": "sofs", kind: {"field": field}}
        if kind == "phrase":
            suggester[kind]["direct_generator"] = [{"field": field, "suggest_mode": "always"}]
        response = shop.post("/products/_search", json={"size": 0, "suggest": {"s": suggester}})
        assert response.status_code == 200, response.get_json()
        return response.get_json()["suggest"]["s"]

    assert suggested("name") == suggested("title")
    assert kind == "term" or suggested("name")[0]["options"]  # osmem-server's term suggester offers none


def test_a_phrase_suggesters_collate_template_is_a_501_naming_it(shop):
    phrase = {"field": "title", "collate": {"query": {"source": {"match_all": {}}}}}
    response = shop.post("/products/_search", json={"size": 0, "suggest": {"s": {"text": "sofa", "phrase": phrase}}})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "suggest.s.phrase.collate"


def test_a_terms_lookup_in_another_index_inside_an_aggregation_is_a_501_naming_it_before_the_cluster(shop):
    # It reached the cluster, which read the other index (here missing: a 500 from the service).
    lookup = {"terms": {"id": {"index": "search-rerank-profiles", "id": "user:alice", "path": "viewed"}}}
    body = {"size": 0, "aggs": {"x": {"adjacency_matrix": {"filters": {"a": lookup}}}}}
    response = shop.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.x.adjacency_matrix.filters.a.terms.id.index"


def test_a_query_the_cluster_refuses_is_a_400_not_an_empty_page(shop):
    response = shop.post("/products/_search", json={"query": {"match": {"title": {"query": "sofa", "no_such": 1}}}})
    assert response.status_code == 400 and "no_such" in response.get_json()["error"]["reason"]


def test_a_query_the_cluster_fails_on_every_shard_is_a_400_giving_the_shards_reason(shop):
    """Elasticsearch wraps a query no shard could run in "all shards failed"; what the front end's developer
    needs is the shard's own reason (its root cause), which names no node."""
    response = shop.post("/products/_search", json={"query": {"range": {"price": {"gte": "cheap"}}}})
    error = response.get_json()["error"]
    assert response.status_code == 400 and "all shards failed" not in error["reason"]
    assert "cheap" in error["reason"] and "osmem" not in json.dumps(error)


def test_a_refusal_quoting_a_java_exception_gives_its_words_without_the_class(shop):
    body = {"query": {"range": {"price": {"gte": "1", "time_zone": "Mars/Olympus"}}}}
    response = shop.post("/products/_search", json=body)
    error = response.get_json()["error"]
    assert response.status_code == 400 and "Mars/Olympus" in error["reason"]
    assert "java." not in json.dumps(error) and "Exception:" not in error["reason"]


# ------------------------------------------------------------------ pages with nothing to rerank


def test_sort_by_rating_is_the_clusters_order_with_its_sort_values(shop):
    answer = search(shop, {"query": {"match": {"title": "sofa"}}, "sort": [{"rating": "desc"}], "size": 3})
    assert ids(answer) == ["s2", "s5", "s1"]
    assert [hit["sort"] for hit in answer["hits"]["hits"]] == [
        [pytest.approx(4.7)],
        [pytest.approx(4.4)],
        [pytest.approx(4.1)],
    ]


def test_terminate_after_as_a_uri_parameter_is_served_as_the_same_key_in_the_body(shop):
    """``GET /_search?size=0&terminate_after=1`` (Elasticsearch's own example; its Go and JavaScript clients send
    terminate_after so) was a 501 where the same key in the body is the cluster's."""
    by_body = shop.post("/products/_search", json={"size": 0, "terminate_after": 1})
    by_uri = shop.get("/products/_search", query_string={"size": "0", "terminate_after": "1"})
    assert by_body.status_code == by_uri.status_code == 200
    assert by_uri.get_json()["hits"]["total"] == by_body.get_json()["hits"]["total"]
    assert shop.get("/products/_search", query_string={"terminate_after": "x"}).status_code == 400


def test_track_scores_as_a_uri_parameter_scores_a_sorted_page_as_the_same_key_in_the_body(shop):
    """Elasticsearch sets the body's ``track_scores`` from the parameter; unread, a sorted page had no scores."""
    by_body = search(shop, {"query": {"match": {"title": "sofa"}}, "sort": [{"price": "asc"}], "track_scores": True})
    response = shop.get("/products/_search", query_string={"q": "title:sofa", "sort": "price:asc", "track_scores": ""})
    assert response.status_code == 200
    scores = [hit["_score"] for hit in response.get_json()["hits"]["hits"]]
    assert scores == [hit["_score"] for hit in by_body["hits"]["hits"]] and all(scores)


def test_lenient_uri_parameter_is_the_query_strings_so_words_on_a_number_field_match_nothing(shop):
    """Elasticsearch puts ``lenient`` (and ``analyzer``, ``analyze_wildcard``) in the query_string ``q`` is;
    dropped, the cluster refused the search a lenient one answers with no hits."""
    response = shop.get("/products/_search", query_string={"q": "price:abc", "lenient": "true"})
    assert response.status_code == 200 and response.get_json()["hits"]["hits"] == []


def test_lenient_uri_parameter_of_a_count_is_the_query_strings(shop):
    response = shop.get("/products/_count", query_string={"q": "price:abc", "lenient": "true"})
    assert response.status_code == 200 and response.get_json()["count"] == 0


def test_a_search_body_in_the_source_parameter_is_a_501_not_a_search_of_everything(shop):
    """Elasticsearch searches a body sent as ``?source=`` (clients that cannot send one with GET); ignored, this
    answered every product where Elasticsearch finds none."""
    body = json.dumps({"query": {"match": {"title": "zebra"}}})
    response = shop.get("/products/_search", query_string={"source": body, "source_content_type": "application/json"})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "source"


@pytest.mark.parametrize("size", [10, 0])
def test_a_standard_retriever_min_score_above_every_score_finds_nothing_on_the_cluster(shop, size):
    """The leg dropped its candidates below min_score, then the page was filled past them in the cluster's order
    and counted by the cluster without it: every sofa came back, where Elasticsearch finds none."""
    retriever = {"standard": {"query": {"match": {"title": "sofa"}}, "min_score": 1000}}
    answer = shop.post("/products/_search", json={"retriever": retriever, "size": size}).get_json()
    assert answer["hits"]["total"] == {"value": 0, "relation": "eq"} and answer["hits"]["hits"] == []


def test_uri_search_reads_q_as_lucene_syntax_and_sorts_by_the_sort_parameter(shop):
    response = shop.get(
        "/products/_search", query_string={"q": "brand.keyword:Acme AND title:sofa", "sort": "price:desc"}
    )
    assert response.status_code == 200 and ids(response.get_json()) == ["s2", "s1"]


def test_sorted_second_page_continues_the_first(shop):
    first = ids(search(shop, {"sort": [{"price": "asc"}], "size": 3}))
    second = ids(search(shop, {"sort": [{"price": "asc"}], "size": 3, "from": 3}))
    assert first + second == ["l1", "l2", "t2", "t1", "s5", "s1"]


def test_a_sort_after_score_orders_a_page_without_words_by_its_later_keys(shop):
    sort = [{"_score": "desc"}, {"price": {"order": "asc", "missing": "_last"}}]
    assert ids(search(shop, {"query": {"match_all": {}}, "sort": sort, "size": 3})) == ["l1", "l2", "t2"]


def test_search_after_continues_a_sort_that_starts_with_score(shop):
    body = {"query": {"match_all": {}}, "sort": [{"_score": "desc"}, {"price": "asc"}], "size": 3}
    after = search(shop, body)["hits"]["hits"][-1]["sort"]
    assert ids(search(shop, {**body, "search_after": after})) == ["t1", "s5", "s1"]


def test_search_after_on_a_reranked_relevance_sort_is_a_501_naming_sort(shop):
    # The first page was the pipeline's ranking, which the cluster's sort values cannot continue.
    body = {"query": {"match": {"title": "sofa"}}, "sort": ["_score", {"price": "asc"}], "search_after": [1.0, 499.0]}
    response = shop.post("/products/_search", json=body)
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "sort"


def test_collapsed_hits_answer_the_collapse_field_under_the_name_asked(shop):
    body = {"query": {"match": {"title": "sofa"}}, "collapse": {"field": "brand.keyword"}, "sort": ["price"]}
    hits = search(shop, body)["hits"]["hits"]
    assert [hit["fields"] for hit in hits] == [
        {"brand.keyword": ["Bolt"]},
        {"brand.keyword": ["Acme"]},
        {"brand.keyword": ["Cosy"]},
    ]


def test_collapse_inner_hits_are_a_501_naming_them(shop):
    # Their documents would be the product index's, not the product records every other hit carries.
    collapse = {"field": "brand.keyword", "inner_hits": {"name": "cheapest", "size": 1}}
    response = shop.post("/products/_search", json={"collapse": collapse, "sort": ["price"]})
    assert response.status_code == 501 and response.get_json()["error"]["unsupported"] == "collapse.inner_hits"


def test_size_zero_answers_facets_from_the_cluster_without_hits(shop):
    body = {"size": 0, "query": {"match": {"title": "sofa"}}, "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    answer = search(shop, body)
    assert answer["hits"]["hits"] == [] and answer["hits"]["total"] == {"value": 5, "relation": "eq"}
    assert buckets(answer["aggregations"]["brands"]) == {"Acme": 2, "Bolt": 2, "Cosy": 1}


def test_attribute_facet_is_answered_in_the_flat_terms_shape(shop):
    answer = search(shop, {"size": 0, "aggs": {"colors": {"terms": {"field": "color.keyword"}}}})
    assert buckets(answer["aggregations"]["colors"]) == {"grey": 3, "brown": 2, "blue": 1, "black": 1, "white": 1}


def test_category_keyword_facet_counts_products_by_their_whole_category(shop):
    # Search UI's and ReactiveSearch's category list: a terms aggregation on the front end's category.keyword.
    answer = search(shop, {"size": 0, "aggs": {"category": {"terms": {"field": "category.keyword"}}}})
    assert buckets(answer["aggregations"]["category"]) == {
        "Furniture > Sofas": 5,
        "Furniture > Tables": 2,
        "Lighting": 2,
    }


def test_category_keyword_sorts_by_the_whole_category(shop):
    answer = search(shop, {"size": 9, "sort": [{"category.keyword": "desc"}, {"id": "asc"}]})
    assert ids(answer) == ["l1", "l2", "t1", "t2", "s1", "s2", "s3", "s4", "s5"]


def test_title_keyword_sorts_by_the_whole_title(shop):
    # A shop's "Name: A-Z": the keyword copy of the title that mapping version 2 holds.
    answer = search(shop, {"size": 9, "sort": [{"title.keyword": "asc"}]})
    assert ids(answer) == sorted(BY_ID, key=lambda pid: BY_ID[pid].title.encode("utf-8"))
    assert [hit["sort"] for hit in answer["hits"]["hits"]] == [[BY_ID[pid].title] for pid in ids(answer)]


def test_title_keyword_on_an_index_of_mapping_version_1_is_a_501_naming_the_sort(make_shop, monkeypatch):
    # An index written before the title had a keyword: sorting by the missing field would order nothing.
    written = mappings.load_mapping
    monkeypatch.setattr(mappings, "load_mapping", lambda version: written(1))
    response = make_shop().post("/products/_search", json={"sort": [{"title.keyword": "asc"}]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "sort[0]"


def test_a_match_on_title_keyword_searches_the_titles_words(shop):
    # As before the title had a keyword: a front end's search fields may name it.
    assert set(ids(search(shop, {"query": {"match": {"title.keyword": "oak"}}}))) == {"t1"}


def test_category_keyword_facet_on_an_index_written_without_the_whole_path_is_a_501_naming_it(make_shop, monkeypatch):
    # An index an earlier version of the product wrote holds the path per level only: no buckets would be wrong.
    def without_whole_path(product, catalog=None, codes=False):
        written = mappings.document(product, catalog, codes)
        written["facet"]["category"].pop("path", None)
        return written

    monkeypatch.setattr(cluster, "document", without_whole_path)
    response = make_shop().post(
        "/products/_search", json={"size": 0, "aggs": {"category": {"terms": {"field": "category.keyword"}}}}
    )
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "aggs.category.terms.field"


def test_composite_facet_pages_through_brands(shop):
    # ReactiveSearch's "load more" facets page a composite aggregation.
    sources = [{"brand.keyword": {"terms": {"field": "brand.keyword"}}}]
    answer = search(shop, {"size": 0, "aggs": {"brand": {"composite": {"size": 2, "sources": sources}}}})
    keys = [bucket["key"]["brand.keyword"] for bucket in answer["aggregations"]["brand"]["buckets"]]
    assert keys == ["Acme", "Bolt"]


def test_scroll_continues_through_the_passthrough(shop):
    first = shop.post("/products/_search?scroll=1m", json={"size": 4, "sort": ["_doc"]}).get_json()
    assert len(first["hits"]["hits"]) == 4
    response = shop.post("/_search/scroll", json={"scroll": "1m", "scroll_id": first["_scroll_id"]})
    assert response.status_code == 200
    assert {hit["_id"] for hit in response.get_json()["hits"]["hits"]}.isdisjoint(ids(first))


def test_a_scroll_kept_alive_longer_than_allowed_is_a_400_naming_it(shop):
    response = shop.post("/products/_search?scroll=24h", json={"size": 4, "sort": ["_doc"]})
    assert response.status_code == 400
    assert "[scroll]" in response.get_json()["error"]["reason"]


def test_a_scrolls_next_page_may_not_extend_it_beyond_the_limit(shop):
    first = shop.post("/products/_search?scroll=1m", json={"size": 4, "sort": ["_doc"]}).get_json()
    response = shop.post("/_search/scroll", json={"scroll": "2d", "scroll_id": first["_scroll_id"]})
    assert response.status_code == 400
    assert response.get_json()["error"]["field"] == "scroll"


def test_a_search_in_a_point_in_time_may_not_keep_it_alive_beyond_the_limit(shop):
    response = shop.post("/_search", json={"pit": {"id": "x", "keep_alive": "1d"}, "sort": [{"price": "asc"}]})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "pit.keep_alive"


def test_count_maps_front_end_field_names_as_a_search_does(shop):
    # A front end's _count names its index's fields: passed through unmapped, the cluster counted 0 (or, under the
    # served name `products`, an index it does not have).
    query = {"bool": {"filter": [{"term": {"color.keyword": "grey"}}, {"terms": {"brand.keyword": ["Acme", "Bolt"]}}]}}
    response = shop.post("/products/_count", json={"query": query})
    assert response.status_code == 200 and response.get_json()["count"] == 2
    assert search(shop, {"query": query})["hits"]["total"]["value"] == 2


def test_count_reads_q_as_lucene_syntax(shop):
    response = shop.get("/products/_count", query_string={"q": "brand.keyword:Acme AND title:sofa"})
    assert response.status_code == 200 and response.get_json()["count"] == 2


def test_count_with_a_key_other_than_query_is_a_400_naming_it(shop):
    response = shop.post("/products/_count", json={"query": {"match_all": {}}, "size": 3})
    assert response.status_code == 400 and response.get_json()["error"]["field"] == "size"


# ------------------------------------------------------------------ ranked pages


def test_post_filter_narrows_the_hits_but_not_the_facets(shop):
    body = {
        "query": {"bool": {"must": [SEARCH_UI_TEXT]}},
        "post_filter": {"bool": {"should": [{"term": {"brand.keyword": "Bolt"}}]}},
        "aggs": {"brands": {"terms": {"field": "brand.keyword"}}},
    }
    answer = search(shop, body)
    assert set(ids(answer)) == {"s3", "s5"}
    assert buckets(answer["aggregations"]["brands"]) == {"Acme": 2, "Bolt": 2, "Cosy": 1}


def test_elasticsearch_backend_answers_facets_highlights_and_a_filter(make_shop):
    client = make_shop(engine="elasticsearch")
    body = {
        "query": {"bool": {"must": [SEARCH_UI_TEXT], "filter": [{"range": {"rating": {"gte": 4}}}]}},
        "aggs": {"colors": {"terms": {"field": "color.keyword"}}},
        "highlight": {"fields": {"title": {}}},
    }
    answer = search(client, body)
    assert set(ids(answer)) == {"s1", "s2", "s5"}
    assert buckets(answer["aggregations"]["colors"]) == {"grey": 2, "brown": 1}
    assert all("<em>" in hit["highlight"]["title"][0] for hit in answer["hits"]["hits"])


def test_highlights_come_from_the_cluster_for_the_page(shop):
    body = {"query": {"bool": {"must": [SEARCH_UI_TEXT]}}, "highlight": {"fields": {"title": {}}}, "size": 2}
    hits = search(shop, body)["hits"]["hits"]
    assert len(hits) == 2 and all("<em>" in hit["highlight"]["title"][0] for hit in hits)


def test_highlights_answer_under_the_aliases_asked_for(shop):
    hits = search(shop, {"query": {"match": {"name": "sofa"}}, "highlight": {"fields": {"name": {}}}})["hits"]["hits"]
    assert hits and all(set(hit["highlight"]) == {"name"} for hit in hits)


def test_highlights_of_a_sorted_page_answer_under_the_keyword_names_asked_for(shop):
    body = {"query": {"match": {"brand": "acme"}}, "highlight": {"fields": {"brand.keyword": {}}}, "sort": ["price"]}
    hits = search(shop, body)["hits"]["hits"]
    assert hits and all(set(hit["highlight"]) == {"brand.keyword"} for hit in hits)


def refusing(cluster_url: str, marker: bytes):
    """An HTTP hop in front of the cluster that answers 503 to every request whose body holds ``marker``;
    yields its URL."""
    return hop(cluster_url, lambda path, body: (503, b'{"error": "busy"}') if marker in body else None)


def test_highlights_left_out_when_the_cluster_fails_them_and_flagged(make_shop, osmem_server_url):
    with refusing(osmem_server_url, b'"highlight"') as url:
        client = make_shop(url=url, retries=0)
        answer = search(client, {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": {}}}})
    assert answer["search_rerank"]["degraded"] == {"highlight": CLUSTER_UNAVAILABLE}
    assert len(ids(answer)) == 5 and not any("highlight" in hit for hit in answer["hits"]["hits"])


def test_total_is_the_clusters_exact_count_beyond_the_candidates(make_shop):
    client = make_shop(candidates=2)
    answer = search(client, {"query": {"match": {"title": "sofa"}}, "track_total_hits": True})
    assert answer["hits"]["total"] == {"value": 5, "relation": "eq"}


def test_pages_past_the_ranked_candidates_continue_in_the_clusters_order(make_shop):
    client = make_shop(candidates=2)
    pages = [
        ids(search(client, {"query": {"match": {"title": "sofa"}}, "from": start, "size": 2})) for start in (0, 2, 4)
    ]
    assert [len(page) for page in pages] == [2, 2, 1]
    assert sorted(pid for page in pages for pid in page) == ["s1", "s2", "s3", "s4", "s5"]


def test_highlights_are_answered_without_a_total(shop):
    body = {"query": {"match": {"title": "sofa"}}, "highlight": {"fields": {"title": {}}}, "track_total_hits": False}
    answer = search(shop, body)
    assert "total" not in answer["hits"] and len(ids(answer)) == 5
    assert all("<em>" in hit["highlight"]["title"][0] for hit in answer["hits"]["hits"])


def test_a_numeric_track_total_hits_answers_a_lower_bound(shop):
    answer = search(shop, {"query": {"match": {"title": "sofa"}}, "track_total_hits": 2})
    assert answer["hits"]["total"] == {"value": 2, "relation": "gte"}


@pytest.mark.parametrize("track", [False, 2])
def test_pages_past_the_ranked_candidates_continue_when_the_total_is_not_an_exact_count(make_shop, track):
    client = make_shop(candidates=2)
    body = {"query": {"match": {"title": "sofa"}}, "track_total_hits": track}
    first, rest = ids(search(client, {**body, "size": 2})), ids(search(client, {**body, "from": 2, "size": 3}))
    assert sorted(first + rest) == ["s1", "s2", "s3", "s4", "s5"]


def test_searchkit_multi_search_answers_facets_and_highlights(shop):
    lines = [
        {"index": "products"},
        {
            "aggs": {"brand": {"terms": {"field": "brand.keyword", "size": 10}}},
            "query": {
                "bool": {
                    "filter": [{"bool": {"should": [{"term": {"brand.keyword": "Acme"}}]}}],
                    "must": {"match": {"title": "sofa"}},
                }
            },
            "size": 20,
            "highlight": {
                "pre_tags": ["<em>"],
                "post_tags": ["</em>"],
                "fields": {"title": {"number_of_fragments": 0}},
            },
        },
    ]
    ndjson = "".join(json.dumps(line) + "\n" for line in lines)
    (answer,) = shop.post("/_msearch", data=ndjson, content_type="application/x-ndjson").get_json()["responses"]
    assert set(ids(answer)) == {"s1", "s2"}
    assert buckets(answer["aggregations"]["brand"]) == {"Acme": 2}
    assert all(hit["highlight"]["title"] for hit in answer["hits"]["hits"])


def msearch(client, bodies: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ndjson = "".join(json.dumps(line) + "\n" for body in bodies for line in ({"index": "products"}, body))
    response = client.post("/_msearch", data=ndjson, content_type="application/x-ndjson")
    assert response.status_code == 200, response.get_json()
    return response.get_json()["responses"]


def test_a_multi_search_item_the_cluster_fails_is_that_items_error_alone(make_shop, osmem_server_url):
    # Searchkit's main search beside a facet search that the cluster does not answer.
    with refusing(osmem_server_url, b"lamp") as url:
        client = make_shop(url=url, retries=0)
        facets = {
            "size": 0,
            "query": {"match": {"title": "lamp"}},
            "aggs": {"b": {"terms": {"field": "brand.keyword"}}},
        }
        main, facet = msearch(client, [{"query": {"match": {"title": "sofa"}}}, facets])
    assert main["status"] == 200 and len(ids(main)) == 5
    assert facet["status"] == 502 and facet["error"]["type"] == "bad_gateway"
    assert url.partition("://")[2] not in json.dumps(facet)


def test_a_multi_search_item_whose_filter_check_fails_is_degraded_alone(make_shop, osmem_server_url, tiny_settings):
    # A kNN search's dense hits are checked against its filter by the cluster, which does not answer here: that
    # item's dense leg is left out and flagged, as any leg that fails is; the other item is answered in full.
    with refusing(osmem_server_url, b'"ids"') as url:
        client = make_shop(dense=True, url=url, retries=0)
        vector = product_vector(tiny_settings, "s3")
        knn = {"field": "embedding", "query_vector": vector, "k": 3, "filter": {"term": {"brand.keyword": "Acme"}}}
        main, nearest = msearch(client, [{"query": {"match": {"title": "sofa"}}}, {"knn": knn}])
    assert main["status"] == 200 and ids(main) and DENSE not in main["search_rerank"]["degraded"]
    assert nearest["status"] == 200 and not ids(nearest)
    assert nearest["search_rerank"]["degraded"][DENSE] == CLUSTER_UNAVAILABLE
    assert url.partition("://")[2] not in json.dumps(nearest)


def test_dense_hits_honour_the_clients_filters(make_shop):
    client = make_shop(dense=True)
    query = {
        "bool": {
            "must": [{"match": {"title": "sofa"}}],
            "filter": [{"term": {"brand.keyword": "Acme"}}],
            "must_not": [{"term": {"color.keyword": "grey"}}],
        }
    }
    answer = search(client, {"query": query, "size": 9, "explain": True})
    explanations = answer["search_rerank"]["explanations"]
    # The dense leg (which sees every product) adds hits without the word, all within the filters.
    assert any(DENSE in explanations[pid]["legs"] and LEXICAL not in explanations[pid]["legs"] for pid in ids(answer))
    for pid in ids(answer):
        assert BY_ID[pid].brand == "Acme" and BY_ID[pid].attributes.get("color") != ("grey",)


def test_a_search_whose_words_match_nothing_counts_the_products_it_answers_in_its_facets(make_shop):
    """The cluster counts no facet for a word it holds nothing near (a first letter mistyped, which no reading
    corrects); the dense leg answers the nearest products, which the facets then count, as hits.total does (as on
    the embedded backend)."""
    client = make_shop(dense=True)
    body = {
        "query": {"bool": {"must": {"match": {"title": "zofa"}}, "filter": {"term": {"brand.keyword": "Acme"}}}},
        "aggs": {"brands": {"terms": {"field": "brand.keyword"}}, "prices": {"max": {"field": "price"}}},
    }
    answer = search(client, body)
    answered = [BY_ID[pid] for pid in ids(answer)]
    assert answered and answer["hits"]["total"]["value"] == len(answered)
    assert answer["aggregations"]["brands"]["buckets"] == [{"key": "Acme", "doc_count": len(answered)}]
    assert answer["aggregations"]["prices"]["value"] == max(p.price for p in answered)


def test_dense_hits_honour_a_query_string_exclusion(make_shop):
    client = make_shop(dense=True)
    answer = search(client, {"query": {"query_string": {"query": "sofa -grey"}}, "size": 9, "explain": True})
    assert any(DENSE in leg["legs"] for leg in answer["search_rerank"]["explanations"].values())
    assert all(BY_ID[pid].attributes.get("color") != ("grey",) for pid in ids(answer))


def test_dense_hits_honour_a_filter_inside_dis_max(make_shop):
    client = make_shop(dense=True)
    acme_sofa = {"bool": {"must": [{"match": {"title": "sofa"}}], "filter": [{"term": {"brand.keyword": "Acme"}}]}}
    answer = search(client, {"query": {"dis_max": {"queries": [acme_sofa]}}, "size": 9, "explain": True})
    assert any(DENSE in leg["legs"] for leg in answer["search_rerank"]["explanations"].values())
    assert ids(answer) and all(BY_ID[pid].brand == "Acme" for pid in ids(answer))


def test_dense_hits_honour_the_filters_a_minimum_should_match_over_text_and_filters_needs(make_shop):
    # Two of three: the words alone cannot make a match, so every hit is an Acme product or a grey one.
    should = [{"match": {"title": "sofa"}}, {"term": {"brand.keyword": "Acme"}}, {"term": {"color.keyword": "grey"}}]
    client = make_shop(dense=True)
    body = {"query": {"bool": {"should": should, "minimum_should_match": 2}}, "size": 9, "explain": True}
    answer = search(client, body)
    assert any(DENSE in leg["legs"] for leg in answer["search_rerank"]["explanations"].values())
    assert ids(answer) and all(
        BY_ID[pid].brand == "Acme" or "grey" in BY_ID[pid].attributes.get("color", ()) for pid in ids(answer)
    )


# ------------------------------------------------------------------ what a query asks


def test_query_words_leave_out_filters_and_exclusions():
    query = {
        "bool": {
            "must": [{"query_string": {"query": "leather sofa -grey"}}],
            "filter": [{"match": {"title": "table"}}],
            "must_not": [{"match": {"title": "bed"}}],
        }
    }
    assert query_words(query) == ["leather sofa"]


def test_constraints_keep_filters_and_exclusions_but_not_text():
    query = {
        "bool": {
            "must": [{"match": {"title": "sofa"}}, {"range": {"price": {"lte": 500}}}],
            "filter": [{"term": {"filter.brand": "acme"}}],
            "must_not": [{"term": {"id": "s1"}}],
        }
    }
    assert constraints(query) == [
        {"term": {"filter.brand": "acme"}},
        {"bool": {"must_not": [{"term": {"id": "s1"}}]}},
        {"range": {"price": {"lte": 500}}},
    ]


def test_a_common_terms_query_the_ranking_reads_constrains_nothing_as_a_match_does():
    common = {"common": {"title": {"query": "leather sofa", "cutoff_frequency": 0.01}}}
    assert constraints({"bool": {"must": [common]}}) == []
    assert constraints({"bool": {"filter": [common]}}) == [common]


def test_constraints_of_should_alternatives_keep_the_filters_of_text_alternatives():
    acme = {"term": {"filter.brand": "acme"}}
    bolt = {"term": {"filter.brand": "bolt"}}
    should = [
        {"bool": {"must": [{"match": {"title": "sofa"}}], "filter": [acme]}},
        {"bool": {"must": [{"match": {"title": "table"}}], "filter": [bolt]}},
    ]
    assert constraints({"bool": {"should": should}}) == [{"bool": {"should": [acme, bolt], "minimum_should_match": 1}}]


def test_constraints_of_should_alternatives_count_a_text_alternative_as_met_toward_the_minimum():
    acme = {"term": {"filter.brand": "acme"}}
    bolt = {"term": {"filter.brand": "bolt"}}
    should = [{"match": {"title": "sofa"}}, acme, bolt]
    assert constraints({"bool": {"should": should, "minimum_should_match": 2}}) == [
        {"bool": {"should": [{"match_all": {}}, acme, bolt], "minimum_should_match": 2}}
    ]


# ------------------------------------------------------------------ model numbers (mapping version 4's code fields)

CODED = [*CATALOG, *MODEL_NUMBERED]


def search_ui_text(words: str) -> dict[str, Any]:
    """Search UI's search-box query: every word in one field, or the words as a phrase's beginning."""
    text = json.loads(json.dumps(SEARCH_UI_TEXT))
    for clause in text["bool"]["should"]:
        clause["multi_match"].update(query=words, fields=["title^3", "description"])
    return text


@pytest.fixture
def tool_shop(make_shop):
    return make_shop(products=CODED)


@pytest.mark.parametrize("words", ["dw745b", "DW 745B", "dw745-b"])
def test_search_uis_query_finds_a_model_number_typed_without_or_with_other_separators(tool_shop, words):
    # The saw has it in its title, the blade ("Fits DW745-B") in its description.
    assert ids(search(tool_shop, {"query": search_ui_text(words)})) == ["saw", "blade"]


def test_search_uis_every_word_query_finds_by_a_model_number_only_with_its_other_words(tool_shop):
    # Its operator-and clause needs "table" too, which the blade ("10 in. Saw Blade", "Fits DW745-B") lacks.
    assert ids(search(tool_shop, {"query": search_ui_text("dw745b table saw")})) == ["saw"]


def test_an_every_word_query_over_several_fields_needs_a_model_number_and_its_other_words_in_one_field(tool_shop):
    # The blade has the code in its description and "blade" in its title: "DW745-B blade" is in no one field.
    def every_word(text, **kind):
        clause = {"multi_match": {"query": text, "fields": ["title", "description"], "operator": "and", **kind}}
        return {"query": {"bool": {"filter": [clause]}}}

    assert ids(search(tool_shop, every_word("dw745b blade"))) == []
    assert ids(search(tool_shop, every_word("dw745b blade", type="cross_fields"))) == ["blade"]


def test_hits_total_and_facet_counts_hold_the_products_found_by_a_model_number(tool_shop):
    body = {"query": search_ui_text("dw745b"), "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    answer = search(tool_shop, body)
    assert answer["hits"]["total"]["value"] == 2
    assert buckets(answer["aggregations"]["brands"]) == {"DEWALT": 1, "Diablo": 1}


def test_a_code_querys_dense_hits_come_from_around_the_product_it_names_within_the_filters(make_shop):
    client = make_shop(dense=True, products=AROUND_A_CODE)
    answer = search(client, {"query": CODE_WITHIN_FILTERS, "size": 40, "explain": True})
    explanations = answer["search_rerank"]["explanations"]
    assert ids(answer)[0] == "asked" and len(ids(answer)) > 1
    assert all(e[CODE_ANCHOR] == 1.0 for e in explanations.values())
    products = {p.id: p for p in AROUND_A_CODE}
    assert all(products[pid].price >= 400 and "miter" not in products[pid].title for pid in ids(answer))


def test_the_pages_highlights_mark_the_model_number_a_search_found_where_each_hit_writes_it(tool_shop):
    # Found through the code keywords, which the cluster's highlighter cannot show: the run's words are marked.
    body = {"query": search_ui_text("dw745b"), "highlight": {"fields": {"title": {}, "description": {}}}}
    marked = {hit["_id"]: hit.get("highlight", {}) for hit in search(tool_shop, body)["hits"]["hits"]}
    assert "<em>DW745" in marked["saw"]["title"][0]
    assert "<em>DW745" in marked["blade"]["description"][0] and "<em>DW745-C" not in marked["blade"]["description"][0]


def test_a_sorted_pages_highlights_mark_the_model_number_where_each_hit_writes_it(tool_shop):
    # The cluster orders the page in one request, and its highlighter cannot show what the code keywords matched:
    # the hits that write the code are highlighted again, as a ranked page's are.
    body = {"query": search_ui_text("dw745b"), "sort": [{"price": "asc"}], "highlight": {"fields": {"*": {}}}}
    marked = {hit["_id"]: hit.get("highlight", {}) for hit in search(tool_shop, body)["hits"]["hits"]}
    assert "<em>DW745" in marked["saw"]["title"][0]
    assert "<em>DW745" in marked["blade"]["description"][0]


def test_the_pages_highlights_mark_a_model_number_only_in_the_fields_its_clause_searched(make_shop):
    # As the embedded backend does (test_es_embedded_model_numbers): a match on the title marks no description.
    saw = Product(id="saw", title="DEWALT DW745-B Table Saw", description="The DW745-B folds away", brand="DEWALT")
    body = {"query": {"match": {"title": "dw745b"}}, "highlight": {"fields": {"title": {}, "description": {}}}}
    [hit] = search(make_shop(products=[saw]), body)["hits"]["hits"]
    assert list(hit["highlight"]) == ["title"]


def test_the_pages_highlights_mark_no_model_number_that_only_an_aggregation_looks_up(tool_shop):
    # Elasticsearch highlights what the query matches: a facet's own query (here the blade's DW745-B) marks nothing.
    facet = {"filter": {"match": {"description": "dw745b"}}}
    body = {"query": {"match": {"title": "blade"}}, "aggs": {"fits": facet}, "highlight": {"fields": {"*": {}}}}
    assert [list(hit["highlight"]) for hit in search(tool_shop, body)["hits"]["hits"]] == [["title"]]


def test_the_pages_highlights_mark_no_model_number_of_a_must_not_clause(tool_shop):
    # The saw is no "dw745b router", so it is found; what the exclusion names is not marked (as on the embedded leg).
    excluded = {"match": {"title": {"query": "dw745b router", "operator": "and"}}}
    body = {
        "query": {"bool": {"must": [{"match": {"title": "saw"}}], "must_not": [excluded]}},
        "highlight": {"fields": {"title": {}}},
    }
    marked = {hit["_id"]: hit["highlight"]["title"][0] for hit in search(tool_shop, body)["hits"]["hits"]}
    assert "<em>DW745" not in marked["saw"]


def test_the_pages_highlights_mark_the_model_number_of_a_query_string_but_not_a_prohibited_one(tool_shop):
    def marked(text):
        body = {"query": {"query_string": {"query": text, "fields": ["title"]}}, "highlight": {"fields": {"title": {}}}}
        return {hit["_id"]: hit["highlight"]["title"][0] for hit in search(tool_shop, body)["hits"]["hits"]}

    assert "<em>DW745" in marked("dw745b")["saw"]
    assert "<em>DW745" not in marked("saw -(dw745b AND router)")["saw"]


@pytest.mark.parametrize(
    "marking",
    [
        {"fields": {"title": {}}, "highlight_query": {"match": {"title": "dw745b"}}},
        {"fields": {"title": {"highlight_query": {"match": {"title": "dw745b"}}}}},
    ],
)
def test_a_highlight_query_of_a_model_number_marks_it_where_each_hit_writes_it(tool_shop, marking):
    # The highlight's own query, the highlight's or a field's, as the embedded backend marks it.
    hits = search(tool_shop, {"query": {"match": {"title": "saw"}}, "highlight": marking})["hits"]["hits"]
    assert "<em>DW745" in {hit["_id"]: hit.get("highlight", {}) for hit in hits}["saw"]["title"][0]


def test_a_match_on_one_field_finds_the_model_numbers_written_in_that_field_only(tool_shop):
    assert ids(search(tool_shop, {"query": {"match": {"title": "dw745b"}}})) == ["saw"]
    assert ids(search(tool_shop, {"query": {"match": {"description": {"query": "dw745b"}}}})) == ["blade"]


def test_a_model_number_in_must_not_leaves_out_the_product_that_has_it(tool_shop):
    query = {"bool": {"must": [{"match": {"title": "saw"}}], "must_not": [{"match": {"title": "dw745b"}}]}}
    assert ids(search(tool_shop, {"query": query})) == ["blade"]


@pytest.mark.parametrize("query", NOT_MET_BY_A_MODEL_NUMBER_ALONE)
def test_a_query_that_needs_every_word_is_not_met_by_a_model_number_alone(tool_shop, query):
    # "router" is in no product: the saw's code would stand for words it does not span.
    assert ids(search(tool_shop, {"query": {"bool": {"filter": [query]}}})) == []


def test_a_phrase_in_must_not_leaves_in_the_product_whose_model_number_it_names_among_other_words(tool_shop):
    query = {
        "bool": {"must": [{"match": {"title": "saw"}}], "must_not": [{"match_phrase": {"title": "dw745-b refurb"}}]}
    }
    assert set(ids(search(tool_shop, {"query": query}))) == {"saw", "blade"}


@pytest.mark.parametrize("words", ["dw745b", "DW 745B", "dw745-b"])
def test_a_query_that_needs_every_word_finds_the_model_number_its_text_is(tool_shop, words):
    query = {"bool": {"filter": [{"match_phrase": {"title": words}}]}}
    assert ids(search(tool_shop, {"query": query})) == ["saw"]


def test_the_text_the_pipeline_reads_holds_each_word_of_a_query_found_by_its_model_number_once(request):
    # The code's alternative asks the query's other words again ("table saw"): the encoder reads them once.
    retriever = server_retriever(server_settings("opensearch", request))
    retriever.add(CODED)
    try:
        split = delegate_search({"query": search_ui_text("dw745b table saw")}, {}, ServiceSettings(), retriever)
    finally:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)
    assert split.search.text == "dw745b table saw"


def added_by_codes(node: Any, in_filter: bool = False) -> int:
    """The code terms of a sent query, and the words (in each field) of the queries of other words they go with."""
    if isinstance(node, list):
        return sum(added_by_codes(n, in_filter) for n in node)
    if not isinstance(node, dict):
        return 0
    if in_filter and "multi_match" in node:
        return len(node["multi_match"]["query"].split()) * len(node["multi_match"]["fields"])
    if "term" in node and any(name.startswith("code.") for name in node["term"]):
        return 1
    return sum(added_by_codes(v, in_filter or k == "filter") for k, v in node.items())


def test_a_long_every_word_query_looks_up_its_codes_of_fewest_pieces_within_the_bound(request):
    # Each span of up to four pieces with a letter and a digit reads as a code ("dewaltdw745b"), and each goes with
    # a query of the other words: ten such clauses would add thousands of clauses, past a cluster's limit.
    text = "dewalt dw745b table saw with stand"
    clause = {"multi_match": {"query": text, "fields": ["title", "description"], "operator": "and"}}
    retriever = server_retriever(server_settings("opensearch", request))
    retriever.add(CODED)
    try:
        split = delegate_search({"query": {"bool": {"should": [clause] * 10}}}, {}, ServiceSettings(), retriever)
    finally:
        for name in retriever.aliases(f"{retriever.index}*"):
            retriever.delete_index(name)
    assert added_by_codes(split.query) <= MAX_BODY_ADDED_TERMS
    # The code alone first, in each field in turn (every word in one field).
    first = [q["bool"]["must"][0] for q in split.query["bool"]["should"][0]["dis_max"]["queries"][1:3]]
    assert [json.dumps(lookup).count('"dw745b"') for lookup in first] == [1, 1]
    assert ['"code.title"' in json.dumps(first[0]), '"code.description"' in json.dumps(first[1])] == [True, True]


def test_a_highlight_of_every_field_answers_the_text_fields_not_the_index_own_ones(tool_shop):
    # The code keywords (code.title) and filter keys (filter.brand) are the index's, named by no front end.
    query = {"bool": {"must": [{"match": {"title": "dw745b saw"}}], "filter": [{"term": {"brand.keyword": "DEWALT"}}]}}
    hits = search(tool_shop, {"query": query, "highlight": {"fields": {"*": {}}}})["hits"]["hits"]
    [highlight] = [hit["highlight"] for hit in hits]
    assert list(highlight) == ["title"]
    assert "<em>Saw</em>" in highlight["title"][0] and "<em>DW745" in highlight["title"][0]


def test_a_negative_field_weight_goes_as_it_came(make_shop):
    # A cluster may take "title^-1" in a multi_match (osmem-server does) and refuse it on a term query.
    body = {"query": {"multi_match": {"query": "dw745b", "fields": ["title^-1"]}}}
    assert ids(search(make_shop(products=CODED), body)) == ids(
        search(make_shop(products=CODED, model_codes=False), body)
    )


def test_without_model_codes_the_query_is_sent_as_it_came(make_shop):
    shop = make_shop(products=CODED, model_codes=False)
    assert ids(search(shop, {"query": search_ui_text("dw745b")})) == []


def test_the_codes_one_body_adds_are_bounded_and_past_the_bound_its_queries_go_as_they_came(tool_shop):
    # Forty clauses of the same 32 codes would add 40 x 32 x 2 term queries, past a cluster's clause limit.
    words = " ".join(f"dw745b{i}" for i in range(32))
    clauses = [{"match": {"title": words}}] * 39 + [{"match": {"title": "dw745b"}}]
    body = {"query": {"bool": {"should": clauses}}}
    assert ids(search(tool_shop, body)) == []  # the last clause's code no longer looked up: "dw745b" is no word


def test_a_model_number_alternative_constrains_nothing_the_dense_leg_is_held_to():
    text = {"multi_match": {"query": "dw745b", "fields": ["title^3"]}}
    assert constraints({"dis_max": {"queries": [text, code_lookup(["dw745b"], {"title": 3.0}, 0.3)]}}) == []


# ------------------------------------------------------------------ misspelt words (lexical.correct_typos)


def test_search_uis_query_finds_by_a_misspelt_word_what_the_word_spelt_right_finds(shop):
    assert ids(search(shop, {"query": search_ui_text("leathr")})) == ids(
        search(shop, {"query": search_ui_text("leather")})
    )
    assert ids(search(shop, {"query": search_ui_text("leathr")})) == ["s2"]


def test_hits_total_and_facet_counts_hold_the_products_found_by_a_misspelt_word(shop):
    body = {"query": search_ui_text("leathr sofa"), "aggs": {"brands": {"terms": {"field": "brand.keyword"}}}}
    answer = search(shop, body)
    assert answer["hits"]["total"]["value"] == 1
    assert buckets(answer["aggregations"]["brands"]) == {"Acme": 1}


def test_any_word_query_scores_a_misspelt_words_reading_beside_the_other_words(shop):
    # "leathr" adds the leather sofa's reading to "sofa", which every sofa has: it ranks first.
    assert ids(search(shop, {"query": {"match": {"title": "leathr sofa"}}}))[0] == "s2"


def test_without_correct_typos_the_query_is_sent_as_it_came(make_shop):
    shop = make_shop(correct_typos=False)
    assert ids(search(shop, {"query": search_ui_text("leathr")})) == []


def test_a_count_holds_the_products_found_by_a_misspelt_word(shop):
    response = shop.post("/products/_count", json={"query": {"match": {"title": "leathr"}}})
    assert response.get_json()["count"] == 1


def texts_asked_about(request, query) -> list[str]:
    """The texts whose misspelt words' readings the cluster is asked for, in order, as ``query`` is translated."""
    asked = []

    def spell(text):
        asked.append(text)
        return {}, None

    cluster_of = server_retriever(server_settings("opensearch", request, correct_typos=True))
    delegate_search({"query": query}, {}, ServiceSettings(), cluster_of, spell=spell)
    return asked


@pytest.mark.parametrize(
    "clause",
    [
        {"match_phrase": {"title": "leathr sofa"}},
        {"match": {"title": {"query": "leathr sofa", "minimum_should_match": 2}}},
        {"match": {"title": {"query": "leathr", "fuzziness": "AUTO"}}},
        {"match": {"brand.keyword": "leathr"}},
    ],
)
def test_a_query_no_reading_could_be_added_to_asks_the_cluster_nothing(request, clause):
    # Each question is two requests before the search: a phrase of several words, a count of words, a query's own
    # fuzziness or a keyword field would send the reading nowhere.
    assert texts_asked_about(request, {"bool": {"filter": [clause]}}) == []


def test_search_uis_two_clauses_of_one_word_ask_the_cluster_about_it_once(request):
    # Its every-word clause and its phrase_prefix clause (a word being typed) share one answer.
    assert texts_asked_about(request, search_ui_text("leathr")) == ["leathr"]


def test_a_body_of_many_misspelt_texts_asks_the_cluster_about_a_few_and_searches_the_rest_as_typed(request):
    # Each question waits on the cluster before the search: a hundred clauses must not cost a hundred round trips.
    texts = [f"leathr{'x' * i}" for i in range(MAX_BODY_SPELLING_ASKS + 6)]
    query = {"bool": {"should": [{"match": {"title": text}} for text in texts]}}
    assert texts_asked_about(request, query) == texts[:MAX_BODY_SPELLING_ASKS]


def test_a_query_strings_words_are_asked_about_in_one_question(request):
    words = [f"leathr{'x' * i}" for i in range(MAX_BODY_SPELLING_ASKS + 6)]
    query = {"query_string": {"query": " AND ".join(words)}}
    assert texts_asked_about(request, query) == [" ".join(words)]


@pytest.mark.parametrize("boost, first", [(100, "s2"), (0.01, "s1")])
def test_a_query_string_read_word_by_word_keeps_its_boost_beside_the_other_clauses(shop, boost, first):
    # Translated for its misspelt word, it must weigh against the corner sofa's clause as it came.
    misspelt = {"query_string": {"query": "leathr", "fields": ["title"], "boost": boost}}
    query = {"bool": {"should": [misspelt, {"match": {"title": "corner"}}]}}
    assert ids(search(shop, {"query": query}))[0] == first


def test_a_query_string_read_word_by_word_keeps_its_tie_breaker_in_each_words_query(request):
    # It scores a word found in several fields as the query_string's own did.
    cluster_of = server_retriever(server_settings("opensearch", request, model_codes=True))
    query = {"query_string": {"query": "dw745b saw", "fields": ["title", "description"], "tie_breaker": 0.3}}
    translated = delegate_search({"query": query}, {}, ServiceSettings(), cluster_of).query
    words = [q["multi_match"] for q in _found(translated, "multi_match") if q["multi_match"]["query"] in ("saw",)]
    assert words and all(word["tie_breaker"] == 0.3 for word in words)


def _found(query, kind):
    """Every ``kind`` query inside ``query``."""
    if isinstance(query, dict):
        return ([query] if kind in query else []) + [q for v in query.values() for q in _found(v, kind)]
    if isinstance(query, list):
        return [q for v in query for q in _found(v, kind)]
    return []


def test_a_query_strings_words_read_word_by_word_are_asked_about_no_more(request):
    # Each word's translation reads its reading from the one answer, however many words and codes the text holds.
    words = [f"leathr{'x' * i}" for i in range(MAX_BODY_SPELLING_ASKS + 2)]
    asked = []

    def spell(text):
        asked.append(text)
        return {word: QueryWord.any_of(word, ["leather"]) for word in words}, None

    cluster_of = server_retriever(server_settings("opensearch", request, correct_typos=True))
    query = {"query_string": {"query": " OR ".join([*words, "dw745b"])}}
    translated = json.dumps(delegate_search({"query": query}, {}, ServiceSettings(), cluster_of, spell=spell).query)
    assert asked == [" ".join([*words, "dw745b"])]
    assert translated.count('"leather"') >= len(words)


def test_a_misspelt_words_reading_constrains_nothing_the_dense_leg_is_held_to():
    text = {"match": {"title": {"query": "leathr sofa", "operator": "and"}}}
    reading = {"dis_max": {"queries": [{"term": {"title": {"value": "leather", "boost": 0.83}}}]}}
    needed = {"bool": {"must": [reading], "filter": [{"match": {"title": {"query": " sofa", "operator": "and"}}}]}}
    assert constraints({"dis_max": {"queries": [text, needed]}}) == []
    assert constraints({"bool": {"should": [{"match": {"title": "leathr sofa"}}, reading]}}) == []


@pytest.mark.parametrize("text", ["leathr sofa", "leathr AND sofa~1", "leathr AND sof*"])
def test_a_lenient_query_strings_misspelt_word_leaves_a_number_field_out_as_the_cluster_does(shop, text):
    # Read here for its reading, the query keeps its lenient: "leathr", "sofa~1" and "sof*" are no prices, which
    # the cluster's parser leaves out of a lenient query where a fuzzy or a wildcard query on a price is refused.
    body = {"query_string": {"query": text, "fields": ["title", "price"], "lenient": True, "default_operator": "and"}}
    assert ids(search(shop, {"query": {"bool": {"filter": [body]}}})) == ["s2"]


def test_a_lenient_query_strings_model_number_leaves_a_number_field_out_as_the_cluster_does(tool_shop):
    for text in ("dw745b AND price:abc", "dw745b AND price:[abc TO 500]"):
        body = {"query_string": {"query": text, "fields": ["title", "price"], "lenient": True}}
        assert ids(search(tool_shop, {"query": {"bool": {"filter": [body]}}})) == []
    body = {"query_string": {"query": "dw745b", "fields": ["title", "price"], "lenient": True}}
    assert ids(search(tool_shop, {"query": {"bool": {"filter": [body]}}})) == ["saw"]


# ------------------------------------------------------------------ the service as it starts from settings


@pytest.fixture
def serve_shop(request, tmp_path):
    """``serve_shop(dense)``: the app as the service starts it, from settings alone (``open_pipeline`` with the
    circuit breakers' guards around the cluster leg), on CATALOG built into a fresh index on the test server,
    with these dense settings."""
    lexical = server_settings("opensearch", request, candidates=40)

    def serve(dense: Any) -> Any:
        settings = shop_settings(tmp_path / "index", lexical, dense)
        build_index(CATALOG, settings, progress=False)
        return create_app(settings)

    yield serve
    retriever = server_retriever(lexical)
    for name in retriever.aliases(f"{lexical.index}*"):
        retriever.delete_index(name)


@pytest.fixture
def served_shop(serve_shop):
    return serve_shop({"enabled": False})


def opened(app) -> None:
    """Open the app's lexical breaker, as consecutive failures of the cluster would."""
    breaker = app.extensions["guards"].breakers[LEXICAL]
    while breaker.state != "open":
        breaker.report(breaker.admit(), ok=False)


def test_a_service_started_from_settings_delegates_the_query_dsl_behind_its_breaker(served_shop):
    # Highlights are the cluster's: without delegation they would be a 501.
    body = {"query": {"match": {"title": "lamp"}}, "highlight": {"fields": {"title": {}}}}
    answer = search(served_shop.test_client(), body)
    assert set(ids(answer)) == {"l1", "l2"}
    assert all("<em>" in hit["highlight"]["title"][0] for hit in answer["hits"]["hits"])


def test_a_delegated_search_leaves_the_cluster_out_once_its_breaker_opens(served_shop):
    opened(served_shop)
    answer = search(served_shop.test_client(), {"query": {"match": {"title": "lamp"}}})
    assert answer["search_rerank"]["degraded"] == {LEXICAL: "circuit_open"}


def test_highlights_are_left_out_at_once_while_the_clusters_breaker_is_open(serve_shop, tiny_settings):
    # The dense leg answers without the cluster; its page's highlights were still asked of it, one more wait on a
    # dead cluster per search.
    app = serve_shop(tiny_settings.model_copy(update={"candidates": len(CATALOG)}))
    opened(app)
    body = {"query": {"match": {"title": "lamp"}}, "highlight": {"fields": {"title": {}}}}
    answer = search(app.test_client(), body)
    assert ids(answer)
    assert answer["search_rerank"]["degraded"] == {LEXICAL: "circuit_open", "highlight": "circuit_open"}


def test_a_page_the_cluster_orders_is_refused_at_once_with_a_503_while_its_breaker_is_open(served_shop):
    # A sorted page is the cluster's alone: it was asked all the same, each one waiting out a dead cluster.
    opened(served_shop)
    body = {"query": {"match": {"title": "lamp"}}, "sort": ["price"]}
    response = served_shop.test_client().post("/products/_search", json=body)
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1


def test_searches_in_a_point_in_time_the_cluster_does_not_know_do_not_open_its_breaker(served_shop):
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    for _ in range(breaker.failures + 1):
        body = {"pit": {"id": "bm90LWEtcGl0"}, "sort": ["price"]}
        assert client.post("/_search", json=body).status_code != 200
    assert breaker.state == "closed"


@pytest.fixture
def other_indexs_point_in_time(osmem_server_url) -> Iterator[str]:
    """A point in time opened on the cluster directly, on an index the service does not serve."""
    url, name = osmem_server_url, f"other-{uuid.uuid4().hex[:12]}"
    urllib3.request("PUT", f"{url}/{name}/_doc/1?refresh=true", json={"title": "lamp"}, retries=False)
    opened = urllib3.request("POST", f"{url}/{name}/_search/point_in_time?keep_alive=1m", retries=False)
    yield opened.json()["pit_id"]
    urllib3.request("DELETE", f"{url}/{name}", retries=False)


def test_searches_in_a_point_in_time_of_another_index_do_not_open_its_breaker(served_shop, other_indexs_point_in_time):
    # The service refuses them itself (as a point in time it does not hold); each refusal counted as the cluster
    # failing, so five opened the breaker for every shopper.
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    for _ in range(breaker.failures + 1):
        body = {"pit": {"id": other_indexs_point_in_time}, "sort": ["price"]}
        assert client.post("/_search", json=body).status_code == 404
    assert breaker.state == "closed"


@pytest.mark.parametrize("pit_id", ["not base64!", "x" * 500], ids=["not-base64", "undecodable"])
def test_a_point_in_time_id_the_cluster_cannot_read_is_a_400_naming_it(served_shop, pit_id):
    # OpenSearch fails an id that decodes to no version it knows with a 500: the service answered a 502, telling the
    # front end it was down, and named the query for an id it could not decode.
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    for _ in range(breaker.failures + 1):
        response = client.post("/_search", json={"pit": {"id": pit_id}, "sort": ["price"]})
        assert response.status_code == 400 and response.get_json()["error"]["field"] == "pit.id"
    assert breaker.state == "closed"


def test_queries_the_cluster_refuses_as_malformed_do_not_open_its_breaker(served_shop):
    # A 400 is the cluster answering: five from one client left it out of every shopper's searches.
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    for _ in range(breaker.failures + 1):
        body = {"query": {"match": {"title": {"query": "lamp", "no_such": 1}}}}
        assert client.post("/products/_search", json=body).status_code == 400
    assert breaker.state == "closed"
    assert search(client, {"query": {"match": {"title": "lamp"}}})["search_rerank"]["degraded"] == {}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"query": {"match": {"title": ["lamp", "desk"]}}}, "query.match.title.query"),
        ({"query": {"multi_match": {"query": ["lamp"], "fields": ["title"]}}}, "query.multi_match.query"),
        ({"from": 2, "sort": [{"price": "asc"}], "search_after": [10]}, "from"),
        # osmem-server dropped the connection on these two, which counted on the breaker as the cluster failing.
        ({"query": {"function_score": {"functions": [{"weight": "NaN"}]}}}, "query.function_score.functions[0].weight"),
        (
            {"size": 0, "suggest": {"a": {"text": "lamp", "phrase": {"field": "title", "size": -1}}}},
            "suggest.a.phrase.size",
        ),
    ],
)
def test_bad_input_opensearch_fails_is_a_400_naming_the_field(served_shop, body, field):
    # Each was a 502 "the cluster failed the search": the shopper's front end was told the service was down.
    response = served_shop.test_client().post("/products/_search", json=body)
    assert response.status_code == 400 and response.get_json()["error"]["field"] == field


def test_a_query_the_cluster_fails_with_a_500_does_not_open_the_breaker(served_shop):
    # OpenSearch fails a negative field boost with a 500 ("invalid score"): five of them left the cluster out of every
    # shopper's searches.
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    body = {"query": {"function_score": {"query": {"multi_match": {"query": "lamp", "fields": ["title^-1"]}}}}}
    for _ in range(breaker.failures + 1):
        assert client.post("/products/_search", json=body).status_code in (200, 400, 502)
    assert breaker.state == "closed"
    assert search(client, {"query": {"match": {"title": "lamp"}}})["search_rerank"]["degraded"] == {}


def test_too_many_buckets_answered_with_a_503_is_the_clients_400_and_does_not_open_the_breaker(served_shop):
    # OpenSearch (and Elasticsearch before 8.8) answers it with a 503: five from one client opened the breaker,
    # and every shopper's search found nothing while it was open.
    breaker = served_shop.extensions["guards"].breakers[LEXICAL]
    client = served_shop.test_client()
    body = {"size": 0, "aggs": {"a": {"histogram": {"field": "price", "interval": 0.000001}}}}
    for _ in range(breaker.failures + 1):
        response = client.post("/products/_search", json=body)
        assert response.status_code == 400 and response.get_json()["error"]["field"] == "aggs"
    assert breaker.state == "closed"
    assert search(client, {"query": {"match": {"title": "lamp"}}})["search_rerank"]["degraded"] == {}


def test_a_misspelt_word_is_searched_as_typed_at_once_while_the_clusters_breaker_is_open(served_shop):
    # Its reading is asked before the search, through the same breaker: not one more wait on a dead cluster.
    opened(served_shop)
    answer = search(served_shop.test_client(), {"query": {"match": {"title": "lemp"}}})
    assert answer["search_rerank"]["degraded"] == {LEXICAL: "circuit_open"}


def test_a_service_started_from_settings_reads_a_misspelt_word_through_its_guard(served_shop):
    assert ids(search(served_shop.test_client(), {"query": {"match": {"title": "lemp"}}})) == ["l1", "l2"]


def test_a_count_is_refused_at_once_with_a_503_while_the_clusters_breaker_is_open(served_shop):
    opened(served_shop)
    response = served_shop.test_client().post("/products/_count", json={"query": {"match": {"title": "lamp"}}})
    assert response.status_code == 503 and int(response.headers["Retry-After"]) >= 1


# ------------------------------------------------------------------ suggestions


def completion_body(prefix: str, field: str = "title", size: int = 0, **extra: Any) -> dict[str, Any]:
    """Search UI's autocomplete suggestions request (SuggestionsAutocompleteBuilder), with ``extra`` beside it."""
    completion = {"size": 5, "skip_duplicates": True, "field": field, "fuzzy": {"fuzziness": 1}}
    return {
        "_source": {"includes": []},
        "size": size,
        "suggest": {"suggest": {"prefix": prefix, "completion": completion}},
        **extra,
    }


def suggested(answer: dict[str, Any], name: str = "suggest") -> list[str]:
    return [option["text"] for option in answer["suggest"][name][0]["options"]]


def test_search_ui_autocomplete_suggestions_are_the_titles_that_begin_with_the_prefix_on_opensearch(shop):
    # The product mapping has no completion field: the titles in the index version's product store answer.
    answer = search(shop, completion_body("s"))
    assert suggested(answer) == ["Small grey sofa", "Sofa bed"]  # best sellers first
    assert answer["suggest"]["suggest"][0]["options"][0]["_id"] == "s5"


def test_a_completion_on_a_name_mapped_onto_the_title_completes_titles_within_the_fuzzy_edits_on_opensearch(shop):
    assert suggested(search(shop, completion_body("flor", field="name"))) == ["Floor lamp"]


def test_completion_suggestions_come_beside_the_pipelines_hits_on_opensearch(shop):
    answer = search(shop, completion_body("des", size=3, query=SEARCH_UI_TEXT))
    assert suggested(answer) == ["Desk lamp"]
    assert ids(answer) and set(ids(answer)) <= {"s1", "s2", "s3", "s4", "s5"}


def test_a_completion_suggester_with_contexts_is_a_501_naming_it_on_opensearch(shop):
    body = completion_body("so")
    body["suggest"]["suggest"]["completion"]["contexts"] = {"category": ["Sofas"]}
    response = shop.post("/products/_search", json=body)
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"] == "suggest.suggest.contexts"


@pytest.mark.parametrize("kind", ["term", "phrase"])
def test_a_suggester_suggests_the_catalogues_words_not_the_index_stems(shop, kind):
    # On the stemmed field "sofs" was the stem "sof", three letters, too short to correct, and "tabels" "tabel",
    # corrected to the stem "tabl": Magento's and Shopware's "did you mean" showed stems.
    suggester: dict[str, Any] = {"text": "corner sofs", kind: {"field": "title"}}
    if kind == "phrase":
        suggester[kind]["direct_generator"] = [{"field": "title", "suggest_mode": "always"}]
    answer = search(shop, {"size": 0, "suggest": {"s": suggester}})["suggest"]["s"]
    options = [option["text"] for entry in answer for option in entry["options"]]
    assert ("sofa" if kind == "term" else "corner sofa") in options
    assert [entry["text"] for entry in answer] == (["corner", "sofs"] if kind == "term" else ["corner sofs"])


def test_a_suggester_on_an_index_written_before_its_words_were_mapped_reads_the_field_itself(make_shop, monkeypatch):
    written = mappings.load_mapping
    monkeypatch.setattr(mappings, "load_mapping", lambda version: written(4))
    suggester = {"text": "corner sofs", "term": {"field": "title"}}
    response = make_shop().post("/products/_search", json={"size": 0, "suggest": {"s": suggester}})
    assert response.status_code == 200 and [entry["text"] for entry in response.get_json()["suggest"]["s"]] == [
        "corner",
        "sof",
    ]
