"""The lexical leg's Query DSL, shared by the Elasticsearch and OpenSearch clients.

Scoring is ``multi_match`` with ``best_fields``: per field a boosted OR of the
analysed query terms, fields combined by a disjunction max with a tie breaker,
the same model as the tantivy leg. User text only ever goes into the ``query``
string of a match-family query, which the server analyses as plain words:
``query_string``/``simple_query_string`` would read ``"``, ``:``, ``(``,
``AND`` or ``*`` as operators and can fail on unbalanced input.

A query's model codes ("dw745b"; ``lexical.model_codes``, :mod:`.codes`) are
looked up in the index's code fields (mapping version 4 on) beside its words, and
(``lexical.correct_typos``) a word no searched field holds is searched as the
index's nearest terms, which the cluster's term suggester names
(:func:`held_body`, :func:`suggest_body`, :func:`corrections`; the rules are
:mod:`.spelling`'s).

Filters are ``bool.filter`` clauses, which narrow the candidates without
scoring; they look up the normalised exact keys that
:mod:`search_rerank.core.filters` defines, so they decide as ``Filters.matches`` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..core.filters import Filters, attribute_key, category_key, normalise_term
from ..core.fuzziness import AUTO
from ..core.product import composed
from ..core.settings import LexicalSettings
from .codes import MAX_QUERY_CODES, query_codes
from .mappings import CODE
from .spelling import FIRST_LETTERS, QueryWord, corrected, nearest

SUGGESTED_TERMS = 20
"""Terms each suggester names at most (by similarity, then products): more than the three a word is read as,
since a field's few are summed with the others' before the nearest are taken."""
TYPING = "typing"
"""The bucket of :func:`held_body`'s answer for the word being typed."""
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


def text_query(
    text: str, settings: LexicalSettings, codes: Sequence[str] = (), spellings: Sequence[QueryWord] = ()
) -> dict[str, Any]:
    """Best fields over the searched fields; with ``codes`` (the query's model codes, :func:`searched_codes`) each
    code in the index's :data:`~.mappings.CODE` fields too, one more field of the best fields, as the tantivy leg
    searches them; with ``spellings`` (its misspelt words' readings, :func:`corrections`) each such word also as
    the index terms it stands for, in each field, the best of them at its weight."""
    fields = settings.searched_fields()
    text = composed(text)  # as the products were indexed: the cluster's analyser cuts a decomposed accent apart
    if not codes and not spellings:
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
    # join the same disjunction and the corrections each field's words. A misspelt word is in no searched field (that
    # is what made it one), so the match scores the other words and its readings score it.
    words = [
        {"match": {field: {"query": text, "operator": "or", "boost": boost}}}
        if not spellings
        else {"bool": {"should": [{"match": {field: text}}, *reading_lookup(spellings, {field: 1.0})], "boost": boost}}
        for field, boost in fields.items()
    ]
    found = [code_lookup(codes, fields, settings.tie_breaker)] if codes else []
    return {"dis_max": {"queries": [*words, *found], "tie_breaker": settings.tie_breaker}}


def reading_lookup(spellings: Iterable[QueryWord], fields: Mapping[str, float]) -> list[dict[str, Any]]:
    """Each misspelt word as the best of the index terms it is read as in the text ``fields``, each at the field's
    boost times its weight: terms, not words to analyse, since they are the index's own (stems)."""
    return [
        {
            "dis_max": {
                "queries": [
                    {"term": {field: {"value": term, "boost": boost * weight}}}
                    for field, boost in fields.items()
                    for term, weight in word.searched_as
                ]
            }
        }
        for word in spellings
    ]


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


def held_body(suspects: Sequence[str], settings: LexicalSettings, typing: str | None = None) -> dict[str, Any]:
    """One request that says, for each of ``suspects`` (typed words that may be typos, :func:`.spelling.suspect`),
    whether a searched field holds it: a ``filters`` aggregation of its match, named by its position. Most such
    words are held (a brand, a product word English lacks), and the term suggesters cost three times as much
    (:func:`unheld`, :func:`suggest_body`). With ``typing`` (the last word of the text, which a prefix query reads
    as being typed) also whether a field holds a word it starts (:func:`started`), in the same request."""
    fields = list(settings.searched_fields())
    held = {str(i): {"multi_match": {"query": word, "fields": fields}} for i, word in enumerate(suspects)}
    if typing is not None:
        held[TYPING] = {"multi_match": {"query": typing, "fields": fields, "type": "phrase_prefix"}}
    return {"size": 0, "track_total_hits": False, "aggs": {"held": {"filters": {"filters": held}}}}


def whole(response: Mapping[str, Any]) -> bool:
    """Whether every shard answered ``response`` in time: what a partial answer says of a word (held or not, its
    nearest terms) may be wrong for the shards that did not, so it is not remembered."""
    return not response.get("timed_out") and not response.get("_shards", {}).get("failed")


def unheld(response: Mapping[str, Any], suspects: Sequence[str]) -> list[str]:
    """The ``suspects`` that :func:`held_body`'s answer says no searched field holds."""
    buckets = response.get("aggregations", {}).get("held", {}).get("buckets", {})
    return [word for i, word in enumerate(suspects) if buckets.get(str(i), {}).get("doc_count", 1) == 0]


def started(response: Mapping[str, Any]) -> bool:
    """Whether :func:`held_body`'s answer says a searched field holds a word its ``typing`` word starts."""
    buckets = response.get("aggregations", {}).get("held", {}).get("buckets", {})
    return bool(buckets.get(TYPING, {}).get("doc_count", 1))


def suggest_body(words: Sequence[str], settings: LexicalSettings) -> dict[str, Any]:
    """One request for the index terms near each of ``words`` in each searched field: a term suggester per word and
    field (``<position>.<field>``) with the spell checker's rules (the first letter kept, a swap of neighbours one
    edit, up to two edits, which :func:`corrections` narrows to the word's ``AUTO`` edits)."""
    suggesters = {
        f"{i}.{field}": {
            "text": word,
            "term": {
                "field": field,
                "suggest_mode": "missing",
                "max_edits": 2,
                "prefix_length": FIRST_LETTERS,
                "min_word_length": int(AUTO.low),
                "size": SUGGESTED_TERMS,
                "string_distance": "damerau_levenshtein",
            },
        }
        for i, word in enumerate(words)
        for field in settings.searched_fields()
    }
    return {"size": 0, "track_total_hits": False, "suggest": suggesters}


def corrections(response: Mapping[str, Any], words: Sequence[str], settings: LexicalSettings) -> dict[str, QueryWord]:
    """The readings of the ``words`` that :func:`suggest_body` asked about, by word: each as the index terms nearest
    its analysed form (its ``AUTO`` edits, the fewest of them, the terms in the most products summed over the
    fields; :func:`.spelling.corrected`), none where no term is near."""
    suggested = response.get("suggest", {})
    out: dict[str, QueryWord] = {}
    for i in range(len(words)):
        in_products: dict[str, int] = {}
        terms = set()
        for field in settings.searched_fields():
            for entry in suggested.get(f"{i}.{field}", []):
                terms.add(entry.get("text"))
                for option in entry.get("options", []):
                    in_products[option["text"]] = in_products.get(option["text"], 0) + int(option.get("freq", 0))
        if len(terms) != 1:  # the word is more than one term to the cluster's analyser, or none
            continue
        term = str(terms.pop())
        read = corrected(term, nearest(term, in_products, AUTO.distance(term))) if term.isalpha() else None
        if read is not None:
            out[words[i]] = read
    return out


def search_body(
    text: str,
    k: int,
    filters: Filters | None,
    settings: LexicalSettings,
    codes: Sequence[str] = (),
    spellings: Sequence[QueryWord] = (),
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
        query["bool"]["must"] = [text_query(text, settings, codes, spellings)]
    return {"query": query, "size": k, "sort": SORT, "track_scores": True, "track_total_hits": False, "_source": False}


def aggregation_body(
    aggs: dict[str, Any],
    text: str,
    filters: Filters | None,
    settings: LexicalSettings,
    codes: Sequence[str] = (),
    spellings: Sequence[QueryWord] = (),
) -> dict[str, Any]:
    """Aggregations over the products a search with the same text and filters would match.

    Unlike a search, no words and no filters means the whole catalog: facet
    counts for a landing page.
    """
    query: dict[str, Any] = {"bool": {"filter": filter_clauses(filters)}}
    if has_words(text):
        query["bool"]["must"] = [text_query(text, settings, codes, spellings)]
    return {"query": query, "size": 0, "aggs": aggs, "track_total_hits": True}
