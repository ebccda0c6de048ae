"""The lexical leg's Query DSL, shared by the Elasticsearch and OpenSearch clients.

Scoring is ``multi_match`` with ``best_fields``: per field a boosted OR of the
analysed query terms, fields combined by a disjunction max with a tie breaker,
the same model as the tantivy leg. User text only ever goes into the ``query``
string of a match-family query, which the server analyses as plain words:
``query_string``/``simple_query_string`` would read ``"``, ``:``, ``(``,
``AND`` or ``*`` as operators and can fail on unbalanced input.

A query's model codes ("dw745b"; ``lexical.model_codes``, :mod:`.codes`) are
looked up in the index's code fields (mapping version 4 on) beside its words.

Filters are ``bool.filter`` clauses, which narrow the candidates without
scoring; they look up the normalised exact keys that
:mod:`search_rerank.core.filters` defines, so they decide as ``Filters.matches`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..core.filters import Filters, attribute_key, category_key, normalise_term
from ..core.settings import LexicalSettings
from .codes import MAX_QUERY_CODES, query_codes
from .mappings import CODE

# Ties in score are broken by id, as in the tantivy leg, so the k-th place does
# not depend on shard, segment or refresh order.
SORT = [{"_score": "desc"}, {"id": "asc"}]


def has_words(text: str) -> bool:
    """Whether any letter or digit is left for the analyser: punctuation alone is not a query."""
    return any(ch.isalnum() for ch in text)


def filter_clauses(filters: Filters | None) -> list[dict[str, Any]]:
    """The same decisions as ``Filters.matches``, clause by clause."""
    if filters is None or filters.is_empty:
        return []
    clauses: list[dict[str, Any]] = []
    if filters.category:
        clauses.append({"term": {"filter.category_path": category_key(filters.category)}})
    if filters.brand:
        clauses.append({"terms": {"filter.brand": sorted({normalise_term(b) for b in filters.brand})}})
    if filters.price_min is not None or filters.price_max is not None:
        # A product without a price has no value in the field, so it fails the range, as in the reference.
        bounds = {"gte": filters.price_min, "lte": filters.price_max}
        clauses.append({"range": {"price": {op: value for op, value in bounds.items() if value is not None}}})
    for key, wanted in filters.attributes.items():
        # No wanted values means an empty terms list: matches nothing, as in the reference.
        clauses.append({"terms": {"filter.attribute": sorted({attribute_key(key, value) for value in wanted})}})
    return clauses


def text_query(text: str, settings: LexicalSettings, codes: Sequence[str] = ()) -> dict[str, Any]:
    """Best fields over the searched fields; with ``codes`` (the query's model codes, :func:`searched_codes`) each
    code in the index's :data:`~.mappings.CODE` fields too, one more field of the best fields, as the tantivy leg
    searches them."""
    fields = settings.searched_fields()
    if not codes:
        return {
            "multi_match": {
                "query": text,
                "type": "best_fields",
                "fields": [f"{field}^{boost:g}" for field, boost in fields.items()],
                "tie_breaker": settings.tie_breaker,
                "operator": "or",
            }
        }
    # best_fields is a dis_max of a match per field (Elasticsearch's own definition), written out so that the codes
    # join the same disjunction.
    words = [{"match": {field: {"query": text, "operator": "or", "boost": boost}}} for field, boost in fields.items()]
    found = code_lookup(codes, fields, settings.tie_breaker)
    return {"dis_max": {"queries": [*words, found], "tie_breaker": settings.tie_breaker}}


def code_lookup(codes: Sequence[str], fields: Mapping[str, float], tie_breaker: float) -> dict[str, Any]:
    """Any of ``codes`` in the :data:`~.mappings.CODE` fields of the text ``fields``: a code in a field counts at
    that field's boost, the best field of each code counts (as the words' fields are combined), and the codes
    found add up."""
    in_fields = [
        {
            "dis_max": {
                "queries": [
                    {"term": {f"{CODE}.{field}": {"value": code, "boost": boost}}} for field, boost in fields.items()
                ],
                "tie_breaker": tie_breaker,
            }
        }
        for code in codes
    ]
    return {"bool": {"should": in_fields}}


def searched_codes(text: str, settings: LexicalSettings) -> list[str]:
    """The model codes of ``text`` to look up (``lexical.model_codes``), at most :data:`MAX_QUERY_CODES`."""
    return query_codes(text)[:MAX_QUERY_CODES] if settings.model_codes else []


def search_body(
    text: str, k: int, filters: Filters | None, settings: LexicalSettings, codes: Sequence[str] = ()
) -> dict[str, Any] | None:
    """The request for the top ``k``, or ``None`` when the answer is empty without asking.

    As in the tantivy leg, text with no words returns the filtered products
    (score 0, by id) when there are filters and nothing when there are none:
    "everything" is not a lexical answer.
    """
    clauses = filter_clauses(filters)
    if k == 0 or (not has_words(text) and not clauses):
        return None
    query: dict[str, Any] = {"bool": {"filter": clauses}}
    if has_words(text):
        query["bool"]["must"] = [text_query(text, settings, codes)]
    return {"query": query, "size": k, "sort": SORT, "track_scores": True, "track_total_hits": False, "_source": False}


def aggregation_body(
    aggs: dict[str, Any], text: str, filters: Filters | None, settings: LexicalSettings, codes: Sequence[str] = ()
) -> dict[str, Any]:
    """Aggregations over the products a search with the same text and filters would match.

    Unlike a search, no words and no filters means the whole catalog: facet
    counts for a landing page.
    """
    query: dict[str, Any] = {"bool": {"filter": filter_clauses(filters)}}
    if has_words(text):
        query["bool"]["must"] = [text_query(text, settings, codes)]
    return {"query": query, "size": 0, "aggs": aggs, "track_total_hits": True}
