"""Shop platforms' own bodies beyond the front-end suite's (tests/compat/bodies): what each sends on every search."""

from __future__ import annotations

from front_end_catalog import CATALOG

WHOLE_CATEGORY_FACET = {"size": 0, "aggs": {"categories": {"terms": {"field": "category.keyword"}}}}
DECAYED = {
    "query": {
        "function_score": {
            "query": {"match": {"title": "sofa"}},
            "functions": [{"exp": {"created_at": {"scale": "14d", "decay": 0.25, "offset": "7d"}}}, {"weight": 0.001}],
            "score_mode": "sum",
            "boost_mode": "multiply",
        }
    }
}


def test_a_facet_on_the_whole_category_path_is_answered_on_an_index_this_process_just_filled(opensearch_client):
    # The cluster maps the path when the first product holding it is written, after the service first read the
    # mapping (ElasticPress's product_cat facet, Shopware's composite sources).
    answer = opensearch_client.post("/products/_search", json=WHOLE_CATEGORY_FACET)
    assert answer.status_code == 200, answer.get_json()
    buckets = {b["key"]: b["doc_count"] for b in answer.get_json()["aggregations"]["categories"]["buckets"]}
    assert buckets["Furniture > Sofas"] == 5


def test_elasticpress_decay_by_date_around_a_search_is_answered_on_both_backends(service):
    # ElasticPress wraps every search in it (weight_recent, on by default): refused, no search of the shop is answered.
    answer = service.post("/products/_search", json=DECAYED)
    assert answer.status_code == 200, answer.get_json()
    assert {hit["_id"] for hit in answer.get_json()["hits"]["hits"]} == {"s1", "s2", "s3", "s4", "s5"}


def test_a_score_function_on_a_field_the_index_does_not_hold_is_a_501_naming_it(opensearch_client):
    body = {"query": {"function_score": {"functions": [{"exp": {"nosuch": {"scale": "14d"}}}]}}}
    answer = opensearch_client.post("/products/_search", json=body)
    assert answer.status_code == 501
    assert answer.get_json()["error"]["unsupported"] == "query.function_score.functions[0].exp"


def test_a_search_needing_every_word_lists_only_the_products_holding_them_on_both_backends(service):
    # ElasticPress's operator:and multi_match, Shopware's one bool.must per word: "grey sofa" listed every sofa.
    for query in (
        {"match": {"description": {"query": "grey sofa", "operator": "and"}}},
        {"bool": {"must": [{"match": {"title": "grey"}}, {"match": {"title": "sofa"}}]}},
        {"match_phrase": {"title": "grey sofa"}},
    ):
        answer = service.post("/products/_search", json={"query": query}).get_json()
        found = {hit["_id"] for hit in answer["hits"]["hits"]}
        assert found == ({"s1"} if "description" in str(query) else {"s5"}), query
        assert answer["hits"]["total"]["value"] == 1


def test_a_pattern_on_the_title_keyword_matches_the_whole_title_as_written_on_both_backends(service):
    # Shopware's "starts with" / "contains" filters: a prefix or wildcard on a keyword is on the value, case and all.
    def found(clause):
        body = {"query": {"bool": {"filter": [clause]}}, "size": 20}
        answer = service.post("/products/_search", json=body)
        assert answer.status_code == 200, answer.get_json()
        return {hit["_id"] for hit in answer.get_json()["hits"]["hits"]}

    assert found({"prefix": {"title.keyword": "Sofa"}}) == {"s4"}
    assert found({"prefix": {"title.keyword": "sofa"}}) == set()
    assert found({"wildcard": {"title.keyword": "*Sofa*"}}) == {"s4"}
    assert found({"wildcard": {"title.keyword": "*sofa"}}) == {"s1", "s2", "s3", "s5"}
    assert found({"term": {"title.keyword": "Sofa bed"}}) == {"s4"}
    assert found({"term": {"title.keyword": "sofa bed"}}) == set()


def test_a_facet_on_the_title_keyword_counts_each_title_as_written(service):
    body = {"size": 0, "aggs": {"names": {"terms": {"field": "title.keyword", "size": 3, "order": {"_key": "asc"}}}}}
    answer = service.post("/products/_search", json=body)
    assert answer.status_code == 200, answer.get_json()
    buckets = answer.get_json()["aggregations"]["names"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [("Corner sofa", 1), ("Desk lamp", 1), ("Floor lamp", 1)]


def test_a_page_the_body_did_not_sort_carries_no_sort_values_and_a_sorted_one_does(service):
    listing = service.post("/products/_search", json={"query": {"term": {"brand": "Acme"}}}).get_json()
    assert listing["hits"]["hits"] and all("sort" not in hit for hit in listing["hits"]["hits"])
    by_price = service.post("/products/_search", json={"sort": [{"price": "asc"}], "size": 2}).get_json()
    assert [hit["sort"] for hit in by_price["hits"]["hits"]] == [[39.0], [89.0]]


def test_a_score_function_on_a_front_ends_name_for_a_field_reads_that_field(opensearch_client):
    decay = {"gauss": {"price_0_1": {"origin": 100, "scale": 50}}}  # (osmem-server has no field_value_factor)
    body = {"query": {"function_score": {"query": {"match_all": {}}, "functions": [decay]}}}
    assert opensearch_client.post("/products/_search", json=body).status_code == 200
    missing = {"query": {"function_score": {"functions": [{"field_value_factor": {"factor": 2}}]}}}
    answer = opensearch_client.post("/products/_search", json=missing)
    assert answer.status_code == 400
    assert answer.get_json()["error"]["field"] == "query.function_score.functions[0].field_value_factor.field"


def test_a_composite_facet_on_a_front_ends_field_name_counts_that_fields_values_on_both_backends(service):
    # Shopware pages a sorted facet with a composite aggregation; the cluster answered 501 for an aliased name.
    body = {"size": 0, "aggs": {"m": {"composite": {"sources": [{"brand": {"terms": {"field": "manufacturer"}}}]}}}}
    answer = service.post("/products/_search", json=body)
    assert answer.status_code == 200, answer.get_json()
    buckets = {b["key"]["brand"]: b["doc_count"] for b in answer.get_json()["aggregations"]["m"]["buckets"]}
    assert buckets == {"Acme": 4, "Bolt": 3, "Cosy": 1, "Dune": 1}


def test_a_sort_object_naming_two_fields_orders_by_both_on_both_backends(service):
    # Magento's own-value sort names two fields in one sort object, which Elasticsearch reads as two sorts.
    body = {"sort": [{"manufacturer": {"order": "asc"}, "price": {"order": "desc"}}], "size": 20}
    answer = service.post("/products/_search", json=body)
    assert answer.status_code == 200, answer.get_json()
    hits = answer.get_json()["hits"]["hits"]
    keys = [(hit["_source"]["brand"], -hit["_source"]["price"]) for hit in hits]
    assert len(hits) == 9 and keys == sorted(keys)
    assert [len(hit["sort"]) for hit in hits] == [2] * 9


def test_a_common_terms_query_on_a_front_ends_field_name_is_answered_on_both_backends(service):
    # Magento's ElasticSuite sends a common terms query on its own field names; the cluster answered 501.
    body = {"query": {"bool": {"filter": [{"common": {"name": {"query": "sofa", "cutoff_frequency": 0.5}}}]}}}
    answer = service.post("/products/_search", json=body)
    assert answer.status_code == 200, answer.get_json()
    assert {hit["_id"] for hit in answer.get_json()["hits"]["hits"]} == {"s1", "s2", "s3", "s4", "s5"}


def test_django_haystacks_range_and_prefix_filters_match_on_their_fields_on_both_backends(service):
    # haystack writes price__gte=300 as price:([300 TO *]) and title__startswith as title:(sof*): a 400 before, and
    # the wildcard searched the default field.
    def found(text):
        body = {"query": {"bool": {"filter": [{"query_string": {"query": text, "default_operator": "AND"}}]}}}
        answer = service.post("/products/_search", json={**body, "size": 20})
        assert answer.status_code == 200, answer.get_json()
        return {hit["_id"] for hit in answer.get_json()["hits"]["hits"]}

    assert found("price:([300 TO *])") == {p.id for p in CATALOG if p.price >= 300}
    assert found("title:(sof*)") == {p.id for p in CATALOG if any(w.startswith("sof") for w in p.title.lower().split())}


def test_a_term_on_the_category_text_field_matches_a_levels_name_on_both_backends(service):
    # BitBag's Sylius taxon page filters terms product_taxons: ["sofas"], a text field in its index; the cluster
    # read the value as a path from the top and found nothing.
    sofas = {p.id for p in CATALOG if "Sofas" in p.category}
    for clause in ({"terms": {"category": ["sofas"]}}, {"term": {"category": {"value": "Sofas", "boost": 1.0}}}):
        answer = service.post("/products/_search", json={"query": {"bool": {"filter": [clause]}}, "size": 20})
        assert answer.status_code == 200, answer.get_json()
        assert {hit["_id"] for hit in answer.get_json()["hits"]["hits"]} == sofas, clause
