"""service.field_aliases: a front end's field names renamed throughout a search body."""

from __future__ import annotations

from search_rerank.serving.field_aliases import rename_fields


def test_field_aliases_rename_fields_in_queries_aggregations_sort_and_highlight():
    aliases = {"color.keyword": "attributes.color"}
    body = {
        "query": {"bool": {"filter": [{"term": {"color.keyword": "red"}}], "must_not": {"exists": {"field": "x"}}}},
        "aggs": {"c": {"terms": {"field": "color.keyword"}}},
        "sort": [{"color.keyword": "asc"}],
        "highlight": {"fields": {"color.keyword": {}}},
    }
    renamed = rename_fields(body, aliases)
    assert renamed["query"]["bool"]["filter"] == [{"term": {"attributes.color": "red"}}]
    assert renamed["aggs"]["c"]["terms"]["field"] == "attributes.color"
    assert renamed["sort"] == [{"attributes.color": "asc"}]
    assert renamed["highlight"]["fields"] == {"attributes.color": {}}
    assert body["aggs"]["c"]["terms"]["field"] == "color.keyword"  # the sent body is not changed
