"""A catalog's own fields (a date added, a stock level, a flag, a material code) are filtered, sorted and faceted as
a front end did on its Elasticsearch index, on the embedded backend and on a cluster alike: the types are read
from the catalog's values when it is indexed (core/catalog_fields.py)."""

from __future__ import annotations

from typing import Any

import pytest
from both_backends import backend_fixtures, search

from search_rerank.core.product import Product

CATALOG = [
    Product(
        id="p1",
        title="Oak table",
        brand="Bolt",
        price=249.0,
        extra={
            "created_at": "2025-03-01T10:00:00Z",
            "stock": "5",
            "in_stock": True,
            "finish": "oiled",
            "gtin": "0042",
            "popularity": 3,
            "sizes": [2, 2, 9],
            "weight": 2.5,
            "offers": [{"seller": "north", "price": 30}, {"seller": "south", "price": 12}],
        },
    ),
    Product(
        id="p2",
        title="Oak chair",
        brand="Acme",
        price=120.0,
        extra={
            "created_at": "2024-11-20",
            "stock": "0",
            "in_stock": False,
            "finish": "lacquered",
            "gtin": "0043",
            "popularity": 9,
            "sizes": [5],
            "weight": 4,
            "offers": [{"seller": "north", "price": 20}],
        },
    ),
    Product(
        id="p3",
        title="Oak shelf",
        brand="Acme",
        price=80.0,
        extra={
            "created_at": "2025-06-15T08:30:00+02:00",
            "stock": "12",
            "in_stock": True,
            "finish": "oiled",
            "popularity": 1,
            "sizes": [1, 7],
            "offers": [{"seller": "east", "price": 15}, {"seller": "west", "price": 40}],
        },
    ),
    Product(id="p4", title="Oak stool", brand="Bolt", price=45.0),
]


embedded, client = backend_fixtures(CATALOG)


def ids(client, query: dict[str, Any], **body: Any) -> list[str]:
    return [hit["_id"] for hit in search(client, {"query": query, "size": 10, **body})["hits"]["hits"]]


def test_a_date_range_keeps_the_products_added_since_then(client):
    found = ids(client, {"range": {"created_at": {"gte": "2025-01-01T00:00:00Z"}}})
    assert sorted(found) == ["p1", "p3"]


def test_a_date_without_its_time_as_an_upper_bound_takes_in_the_whole_day(client):
    assert ids(client, {"range": {"created_at": {"lte": "2024-11-20"}}}) == ["p2"]
    assert ids(client, {"range": {"created_at": {"lt": "2024-11-20"}}}) == []


def test_date_math_rounds_to_the_unit_asked(client):
    # 2025-06-15T08:30+02:00 is 06:30 UTC: within June, rounded to months
    found = ids(client, {"range": {"created_at": {"gte": "2025-06-20||/M", "lte": "2025-06-01||/M"}}})
    assert found == ["p3"]


def test_a_date_bound_that_is_no_date_is_a_400_naming_it(client):
    response = client.post("/products/_search", json={"query": {"range": {"created_at": {"gte": "last spring"}}}})
    assert response.status_code == 400
    assert "created_at" in str(response.get_json())


def test_date_math_past_the_year_9999_is_a_400_not_a_failure(client):
    response = client.post("/products/_search", json={"query": {"range": {"created_at": {"gte": "now+10000y"}}}})
    assert response.status_code == 400
    assert "created_at" in str(response.get_json())


def test_a_number_the_catalog_wrote_as_text_is_filtered_as_a_number(client):
    # "12" > "5" only as numbers: as texts it would come first
    assert sorted(ids(client, {"range": {"stock": {"gte": 5}}})) == ["p1", "p3"]


def test_a_boolean_field_filters_by_true_or_false(client):
    assert sorted(ids(client, {"bool": {"filter": [{"term": {"in_stock": True}}]}})) == ["p1", "p3"]
    assert ids(client, {"term": {"in_stock": "false"}}) == ["p2"]


def test_a_keyword_field_matches_its_exact_value_by_either_name(client):
    assert sorted(ids(client, {"terms": {"finish": ["oiled"]}})) == ["p1", "p3"]
    assert sorted(ids(client, {"term": {"finish.keyword": "oiled"}})) == ["p1", "p3"]


def test_a_code_with_a_leading_zero_stays_a_keyword(client):
    assert ids(client, {"term": {"gtin": "0042"}}) == ["p1"]


def test_exists_keeps_the_products_holding_the_field(client):
    assert sorted(ids(client, {"exists": {"field": "created_at"}})) == ["p1", "p2", "p3"]


@pytest.mark.parametrize("query", [{"exists": {"field": "_id"}}, {"query_string": {"query": "_exists_:_id"}}])
def test_every_product_holds_an_id(client, query):
    # Elasticsearch's exists on _id matches every document; a search box's _id:* is the same query.
    assert sorted(ids(client, query)) == ["p1", "p2", "p3", "p4"]


def test_a_query_strings_exists_keeps_the_products_holding_the_field(client):
    # Lucene's _exists_:field, as a search box that passes on what is typed sends it.
    assert sorted(ids(client, {"query_string": {"query": "_exists_:created_at"}})) == ["p1", "p2", "p3"]


def test_newest_first_sorts_by_the_date_missing_last(client):
    answer = search(client, {"query": {"match_all": {}}, "sort": [{"created_at": "desc"}]})
    assert [hit["_id"] for hit in answer["hits"]["hits"]] == ["p3", "p1", "p2", "p4"]
    assert answer["hits"]["hits"][0]["sort"][0] == 1749969000000  # epoch milliseconds, as Elasticsearch's


def test_a_terms_facet_on_a_keyword_field_counts_its_values(client):
    answer = search(client, {"size": 0, "aggs": {"finish": {"terms": {"field": "finish.keyword"}}}})
    buckets = answer["aggregations"]["finish"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [("oiled", 2), ("lacquered", 1)]


def test_a_date_range_facet_counts_each_range_keyed_by_its_dates(client):
    body = {
        "size": 0,
        "aggs": {
            "added": {"date_range": {"field": "created_at", "ranges": [{"to": "2025-01-01"}, {"from": "2025-01-01"}]}}
        },
    }
    buckets = search(client, body)["aggregations"]["added"]["buckets"]
    assert [(b["key"], b["doc_count"]) for b in buckets] == [
        ("*-2025-01-01T00:00:00.000Z", 1),
        ("2025-01-01T00:00:00.000Z-*", 2),
    ]
    assert buckets[1]["from_as_string"] == "2025-01-01T00:00:00.000Z"


def test_a_date_histogram_counts_products_by_month_length_interval(client):
    body = {"size": 0, "aggs": {"added": {"date_histogram": {"field": "created_at", "calendar_interval": "week"}}}}
    buckets = search(client, body)["aggregations"]["added"]["buckets"]
    first = buckets[0]
    assert first["key_as_string"] == "2024-11-18T00:00:00.000Z" and first["doc_count"] == 1  # the Monday before
    assert sum(b["doc_count"] for b in buckets) == 3


def test_stats_of_a_number_written_as_text(client):
    stats = search(client, {"size": 0, "aggs": {"s": {"stats": {"field": "stock"}}}})["aggregations"]["s"]
    assert (stats["count"], stats["min"], stats["max"]) == (3, 0.0, 12.0)


def test_search_uis_date_range_facet_body_is_answered(client):
    within = {"range": {"created_at": {"gte": "2025-01-01T00:00:00Z"}}}
    body = {
        "query": {"multi_match": {"query": "oak", "fields": ["title^3"]}},
        "aggs": {
            "facet_bucket_all": {
                "filter": {"bool": {"must": [{"bool": {"should": [within]}}]}},
                "aggs": {
                    "created_at": {
                        "filters": {
                            "filters": {
                                "new this year": within,
                                "older": {"range": {"created_at": {"lte": "2025-01-01T00:00:00Z"}}},
                            }
                        }
                    }
                },
            }
        },
        "post_filter": {"bool": {"must": [{"bool": {"should": [within]}}]}},
    }
    answer = search(client, body)
    assert sorted(hit["_id"] for hit in answer["hits"]["hits"]) == ["p1", "p3"]
    counts = answer["aggregations"]["facet_bucket_all"]["created_at"]["buckets"]
    assert counts["new this year"]["doc_count"] == 2 and counts["older"]["doc_count"] == 0


def test_a_date_histogram_by_month_runs_from_the_first_month_holding_a_product_to_the_last(client):
    body = {"size": 0, "aggs": {"added": {"date_histogram": {"field": "created_at", "calendar_interval": "month"}}}}
    buckets = search(client, body)["aggregations"]["added"]["buckets"]
    assert buckets[0] == {"key_as_string": "2024-11-01T00:00:00.000Z", "key": 1730419200000, "doc_count": 1}
    assert buckets[-1]["key_as_string"] == "2025-06-01T00:00:00.000Z" and len(buckets) == 8
    assert [b["doc_count"] for b in buckets if b["doc_count"]] == [1, 1, 1]


def test_a_date_histogram_by_year_counts_each_calendar_year(client):
    body = {"size": 0, "aggs": {"added": {"date_histogram": {"field": "created_at", "calendar_interval": "1y"}}}}
    buckets = search(client, body)["aggregations"]["added"]["buckets"]
    assert [(b["key_as_string"], b["doc_count"]) for b in buckets] == [
        ("2024-01-01T00:00:00.000Z", 1),
        ("2025-01-01T00:00:00.000Z", 2),
    ]


def test_a_date_histogram_under_a_facet_runs_over_each_buckets_own_dates(client):
    by_year = {"date_histogram": {"field": "created_at", "calendar_interval": "year"}}
    body = {"size": 0, "aggs": {"brand": {"terms": {"field": "brand.keyword"}, "aggs": {"added": by_year}}}}
    buckets = {b["key"]: b["added"]["buckets"] for b in search(client, body)["aggregations"]["brand"]["buckets"]}
    assert [(b["key_as_string"][:4], b["doc_count"]) for b in buckets["Acme"]] == [("2024", 1), ("2025", 1)]
    assert [(b["key_as_string"][:4], b["doc_count"]) for b in buckets["Bolt"]] == [("2025", 1)]


def test_pages_sorted_by_a_date_follow_one_another(client):
    body = {"query": {"match_all": {}}, "sort": [{"created_at": "asc"}, {"id": "asc"}], "size": 2}
    first = search(client, body)["hits"]["hits"]
    second = search(client, {**body, "from": 2})["hits"]["hits"]
    assert [hit["_id"] for hit in first + second] == ["p2", "p1", "p3", "p4"]
    assert first[0]["sort"] == [1732060800000, "p2"]


def test_a_terms_facet_on_a_date_keys_each_by_its_millisecond_and_its_date(client):
    answer = search(
        client, {"size": 0, "aggs": {"added": {"terms": {"field": "created_at", "size": 1, "order": {"_key": "asc"}}}}}
    )
    assert answer["aggregations"]["added"]["buckets"] == [
        {"key": 1732060800000, "key_as_string": "2024-11-20T00:00:00.000Z", "doc_count": 1}
    ]


def test_a_composite_facet_pages_a_keyword_fields_values(client):
    body = {
        "size": 0,
        "aggs": {"c": {"composite": {"size": 1, "sources": [{"finish": {"terms": {"field": "finish"}}}]}}},
    }
    first = search(client, body)["aggregations"]["c"]
    assert first["buckets"] == [{"key": {"finish": "lacquered"}, "doc_count": 1}]
    body["aggs"]["c"]["composite"]["after"] = first["after_key"]
    assert search(client, body)["aggregations"]["c"]["buckets"] == [{"key": {"finish": "oiled"}, "doc_count": 2}]


def test_the_stats_of_a_date_are_written_as_dates_too(client):
    stats = search(client, {"size": 0, "aggs": {"s": {"stats": {"field": "created_at"}}}})["aggregations"]["s"]
    assert (stats["min_as_string"], stats["max_as_string"]) == ("2024-11-20T00:00:00.000Z", "2025-06-15T06:30:00.000Z")


def test_a_prefix_on_a_keyword_field_matches_its_values_beginning_so(client):
    assert sorted(ids(client, {"prefix": {"finish": "oil"}})) == ["p1", "p3"]


def test_a_query_string_range_of_dates_reads_its_ends_as_dates(client):
    assert sorted(ids(client, {"query_string": {"query": "created_at:[2025-01-01 TO *] AND finish:oiled"}})) == [
        "p1",
        "p3",
    ]


@pytest.mark.parametrize("dates", ["created_at:[abc TO *]", "created_at:abc", "stock:abc", "stock:[abc TO 5]"])
def test_a_lenient_query_strings_value_its_field_cannot_hold_matches_nothing_there(client, dates):
    # Lucene's parser leaves the field out of a lenient query; without lenient it is a 400.
    query = {"query_string": {"query": f"{dates} OR finish:lacquered", "lenient": True}}
    assert ids(client, query) == ["p2"]
    strict = {"query_string": {**query["query_string"], "lenient": False}}
    assert client.post("/products/_search", json={"query": strict}).status_code == 400


@pytest.mark.parametrize("field", ["stock", "created_at"])
def test_a_lenient_query_strings_fuzzy_word_leaves_a_number_or_date_field_out(client, field):
    # Lucene's parser refuses a fuzzy query on such a field, and leaves the field out where lenient; "oka" is
    # misspelt, so a cluster's query is read here word by word and must do the same.
    spec = {"query": "oka AND tabel~1", "fields": ["title", field], "lenient": True}
    assert ids(client, {"query_string": spec}) == ["p1"]


def test_a_lenient_query_strings_wildcard_word_leaves_a_number_field_out(embedded):
    # Elasticsearch's parser leaves the field out (a wildcard query on a long is refused otherwise). The embedded
    # backend only: a cluster is sent it as it came, and osmem-server refuses it, lenient or not.
    spec = {"query": "stock:ab* OR finish:lacquered", "lenient": True}
    assert ids(embedded, {"query_string": spec}) == ["p2"]


@pytest.mark.parametrize("zone, found", [(None, ["p3"]), ("-08:00", []), ("+05:00", ["p3"])])
def test_a_query_string_range_of_dates_is_read_in_its_time_zone(client, zone, found):
    # As Kibana's search bar sends it: p3 was added at 06:30 UTC on June 15, which is June 14 in Los Angeles.
    query = {"query_string": {"query": "created_at:[2025-06-15 TO 2025-06-15] AND oak"}}
    if zone is not None:
        query["query_string"]["time_zone"] = zone
    assert ids(client, query) == found


def test_a_lenient_query_strings_time_zone_that_is_none_is_a_400_naming_it(client):
    # lenient forgives a value its field cannot hold, not the query's own option: Elasticsearch refuses it.
    spec = {"query": "created_at:[2025-01-01 TO *]", "time_zone": "Mars/Base", "lenient": True}
    response = client.post("/products/_search", json={"query": {"query_string": spec}})
    assert response.status_code == 400
    assert "time_zone" in str(response.get_json())


def test_a_date_range_in_the_format_and_time_zone_it_names(client):
    # ReactiveSearch's DateRange sends its queryFormat's dates; "2025-06-15" in Berlin ends at 21:59:59.999 UTC
    bounds = {"gte": "20250101", "lte": "20250615", "format": "basic_date", "time_zone": "Europe/Berlin"}
    assert sorted(ids(client, {"range": {"created_at": bounds}})) == ["p1", "p3"]


def test_a_date_histogram_of_a_keyword_is_a_400(client):
    by_day = {"date_histogram": {"field": "finish", "calendar_interval": "day"}}
    response = client.post("/products/_search", json={"aggs": {"x": by_day}})
    assert response.status_code == 400


def test_the_embedded_index_names_the_field_a_date_histogram_cannot_read(embedded):
    by_day = {"date_histogram": {"field": "finish", "calendar_interval": "day"}}
    error = embedded.post("/products/_search", json={"aggs": {"x": by_day}}).get_json()["error"]
    assert error["root_cause"][0]["field"] == "aggs.x.date_histogram.field"


def test_a_case_insensitive_term_on_a_keyword_field_matches_its_value_in_any_case(client):
    query = {"term": {"finish": {"value": "OILED", "case_insensitive": True}}}
    assert sorted(ids(client, query)) == ["p1", "p3"]


def test_a_terms_facet_on_a_date_counts_the_products_without_one_under_its_missing_date(client):
    aggs = {"added": {"terms": {"field": "created_at", "missing": "2020-01-01", "order": {"_key": "asc"}}}}
    buckets = search(client, {"size": 0, "aggs": aggs})["aggregations"]["added"]["buckets"]
    assert buckets[0] == {"key": 1577836800000, "key_as_string": "2020-01-01T00:00:00.000Z", "doc_count": 1}


def test_the_embedded_index_names_the_missing_value_of_a_boolean_facet_it_cannot_count(embedded):
    aggs = {"stocked": {"terms": {"field": "in_stock", "missing": False}}}
    response = embedded.post("/products/_search", json={"size": 0, "aggs": aggs})
    assert response.status_code == 501
    assert response.get_json()["error"]["root_cause"][0]["unsupported"] == "aggs.stocked.terms.missing"


def test_a_date_range_facet_in_a_time_zone_writes_its_keys_in_that_zone(client):
    ranges = [{"from": "2025-03-01", "to": "2025-07-01"}]
    aggs = {"added": {"date_range": {"field": "created_at", "time_zone": "Europe/Berlin", "ranges": ranges}}}
    bucket = search(client, {"size": 0, "aggs": aggs})["aggregations"]["added"]["buckets"][0]
    assert bucket["key"] == "2025-03-01T00:00:00.000+01:00-2025-07-01T00:00:00.000+02:00"
    assert (bucket["from"], bucket["from_as_string"]) == (1740783600000, "2025-03-01T00:00:00.000+01:00")
    assert bucket["doc_count"] == 2


def test_a_composite_facet_on_a_boolean_pages_on_after_its_first_value(client):
    body = {
        "size": 0,
        "aggs": {"c": {"composite": {"size": 1, "sources": [{"stocked": {"terms": {"field": "in_stock"}}}]}}},
    }
    first = search(client, body)["aggregations"]["c"]
    assert first["buckets"] == [{"key": {"stocked": False}, "doc_count": 1}]
    body["aggs"]["c"]["composite"]["after"] = first["after_key"]
    assert search(client, body)["aggregations"]["c"]["buckets"] == [{"key": {"stocked": True}, "doc_count": 2}]


NEVER_ENDING = [Product(id=f"n{i}", title="Oak bench", extra={"valid_until": "9999-12-31"}) for i in range(2)]
"""A shop's "no end" date: the last day Elasticsearch's default date format writes with four digits."""


@pytest.fixture(scope="module")
def never_ending(catalog_client):
    return catalog_client(NEVER_ENDING)


def test_the_stats_of_dates_whose_sum_is_past_the_year_9999_are_answered(never_ending):
    stats = search(never_ending, {"size": 0, "aggs": {"s": {"stats": {"field": "valid_until"}}}})["aggregations"]["s"]
    assert stats["max_as_string"] == "9999-12-31T00:00:00.000Z"
    assert stats["sum_as_string"] == "+18029-12-29T00:00:00.000Z"  # as Java writes a year past four digits


def test_a_date_histogram_by_month_of_the_last_month_of_9999_is_answered(never_ending):
    by_month = {"date_histogram": {"field": "valid_until", "calendar_interval": "month"}}
    buckets = search(never_ending, {"size": 0, "aggs": {"m": by_month}})["aggregations"]["m"]["buckets"]
    assert [(b["key_as_string"], b["doc_count"]) for b in buckets] == [("9999-12-01T00:00:00.000Z", 2)]


@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ({"sizes": "asc"}, ["p3", "p1", "p2", "p4"]),  # by each product's least: 1, 2, 5
        ({"sizes": "desc"}, ["p1", "p3", "p2", "p4"]),  # by each product's greatest: 9, 7, 5
        ({"sizes": {"order": "asc", "mode": "max"}}, ["p2", "p3", "p1", "p4"]),
    ],
)
def test_a_field_of_several_values_sorts_by_its_least_or_greatest_as_elasticsearch_does(client, sort, expected):
    assert ids(client, {"match_all": {}}, sort=[sort]) == expected


@pytest.mark.parametrize(
    ("order", "expected"),
    [("desc", ["p3", "p1", "p2", "p4"]), ("asc", ["p1", "p3", "p2", "p4"])],  # by greatest 40, 30, 20; least 12, 15
)
def test_searchkits_sort_on_a_nested_field_sorts_by_its_objects_values(client, order, expected):
    # Searchkit's sortOptions with nestedPath (packages/searchkit/src/___tests___/functional/sorting.test.ts)
    sort = {"offers.price": {"order": order, "nested": {"path": "offers"}}}
    assert ids(client, {"match_all": {}}, sort=sort) == expected


def test_a_nested_sort_that_chooses_among_the_objects_is_a_501_naming_it(client):
    nested = {"path": "offers", "filter": {"term": {"offers.seller": "north"}}}
    response = client.post("/products/_search", json={"sort": [{"offers.price": {"nested": nested}}]})
    assert response.status_code == 501
    assert response.get_json()["error"]["unsupported"].endswith("offers.price.nested.filter")


def test_a_nested_sort_on_a_path_the_field_is_not_under_is_a_400_naming_the_path(client):
    response = client.post("/products/_search", json={"sort": [{"offers.price": {"nested": {"path": "stock"}}}]})
    assert response.status_code == 400
    assert "offers.price.nested.path" in str(response.get_json())


def test_a_number_repeated_in_a_list_counts_each_time(client):
    stats = search(client, {"size": 0, "aggs": {"s": {"stats": {"field": "sizes"}}}})["aggregations"]["s"]
    assert (stats["count"], stats["sum"]) == (6, 26.0)


def test_a_composite_key_of_a_decimal_field_is_a_decimal(client):
    body = {"size": 0, "aggs": {"c": {"composite": {"sources": [{"w": {"terms": {"field": "weight"}}}]}}}}
    keys = [bucket["key"]["w"] for bucket in search(client, body)["aggregations"]["c"]["buckets"]]
    assert keys == [2.5, 4.0] and all(isinstance(key, float) for key in keys)


def test_a_date_histogram_by_day_starts_its_days_at_the_offset_asked(client):
    by_day = {
        "date_histogram": {"field": "created_at", "calendar_interval": "day", "offset": "+12h", "min_doc_count": 1}
    }
    buckets = search(client, {"size": 0, "aggs": {"d": by_day}})["aggregations"]["d"]["buckets"]
    # 2025-03-01T10:00Z falls in the day from 2025-02-28T12:00
    assert [b["key_as_string"] for b in buckets][:2] == ["2024-11-19T12:00:00.000Z", "2025-02-28T12:00:00.000Z"]


def test_a_histogram_extended_to_one_end_reaches_it_on_that_side_only(client):
    histogram = {"field": "price", "interval": 100, "min_doc_count": 0, "extended_bounds": {"min": -200}}
    buckets = search(client, {"size": 0, "aggs": {"p": {"histogram": histogram}}})["aggregations"]["p"]["buckets"]
    assert [bucket["key"] for bucket in buckets] == [-200.0, -100.0, 0.0, 100.0, 200.0]


@pytest.mark.parametrize("end", [{"min": 500}, {"max": -100}])
def test_a_histogram_extended_to_one_end_on_the_far_side_of_its_values_adds_no_buckets(client, end):
    histogram = {"field": "price", "interval": 100, "min_doc_count": 0, "extended_bounds": end}
    buckets = search(client, {"size": 0, "aggs": {"p": {"histogram": histogram}}})["aggregations"]["p"]["buckets"]
    assert [bucket["key"] for bucket in buckets] == [0.0, 100.0, 200.0]


def test_words_searched_in_catalog_fields_alone_match_their_values(client):
    assert sorted(ids(client, {"simple_query_string": {"query": "oiled", "fields": ["finish"]}})) == ["p1", "p3"]


OILED_TABLES = [Product(id=f"t{i:02}", title="Oak table", extra={"finish": "oiled"}) for i in range(30)]
"""More products holding a value than a leg takes candidates (20): those its words would find are not all of them."""


@pytest.fixture(scope="module")
def oiled_tables(catalog_client):
    return catalog_client(OILED_TABLES)


@pytest.mark.parametrize("kind", ["query_string", "simple_query_string"])
def test_words_searched_in_catalog_fields_alone_match_every_product_holding_them(oiled_tables, kind):
    body = {"query": {kind: {"query": "oiled", "fields": ["finish"]}}, "size": 50}
    hits = search(oiled_tables, body)["hits"]
    assert (hits["total"]["value"], len(hits["hits"])) == (30, 30)


def test_a_page_sorted_by_a_catalog_field_says_so_by_the_fields_name(embedded):
    body = {"query": {"match": {"title": "oak"}}, "sort": [{"sizes": "desc"}]}
    skipped = embedded.post("/products/_search", json=body).get_json()["search_rerank"]["skipped"]
    assert skipped["rerank"] == "sorted by sizes: every match is ordered by the field"


def test_a_monthly_histogram_spans_the_dates_of_the_matches_not_the_whole_catalogs(catalog_client):
    # A "no end" date among the products would make some 95,000 months of the whole catalogue: too many buckets.
    far = Product(id="p9", title="Pine bench", brand="Dune", price=60.0, extra={"created_at": "9999-12-31"})
    client = catalog_client([*CATALOG, far])
    body = {
        "size": 0,
        "query": {"bool": {"filter": [{"range": {"created_at": {"lt": "2026-01-01"}}}]}},
        "aggs": {"added": {"date_histogram": {"field": "created_at", "calendar_interval": "month"}}},
    }
    response = client.post("/products/_search", json=body)
    assert response.status_code == 200, response.get_json()
    buckets = response.get_json()["aggregations"]["added"]["buckets"]
    assert len(buckets) == 8 and sum(bucket["doc_count"] for bucket in buckets) == 3


def test_a_field_of_the_catalog_named_as_one_of_the_services_own_is_the_catalogs(client):
    """The service's popularity signal is held as `popularity` in a cluster's index; a shop's own `popularity`
    column is what its front end sorts and facets by, on the cluster as on the embedded index."""
    answer = search(
        client,
        {
            "query": {"match_all": {}},
            "sort": [{"popularity": "desc"}],
            "aggs": {"most": {"max": {"field": "popularity"}}},
        },
    )
    assert [hit["_id"] for hit in answer["hits"]["hits"]] == ["p2", "p1", "p3", "p4"]
    assert answer["aggregations"]["most"]["value"] == 9
