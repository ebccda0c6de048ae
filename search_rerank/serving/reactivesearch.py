"""ReactiveSearch 4's own request language (``POST /<app>/_reactivesearch``), translated into Elasticsearch bodies.

ReactiveSearch 4 (appbase.io's ``@appbaseio/reactivesearch``, on reactivecore 10) has no Elasticsearch mode any
more: every search a page makes is one request to appbase.io's ReactiveSearch API server, the page's components as
a list of queries (``{"id", "type", "dataField", "value", "react", ...}``). That server translates them into an
Elasticsearch multi-search and answers each executed query's Elasticsearch answer under its id. This module is
that translation, as the server's open-source version (appbaseio/reactivesearch-api, plugins/querytranslate)
makes it, so that a shop's ReactiveSearch 4 page can call this service where it called that server and its
cluster; each translated body is then searched as a ``_search`` body is (es_api.es_reactivesearch), on either
backend, and whatever in it a backend cannot answer is named there.

A query's ``react`` names the queries whose clauses join its own (``and`` as ``bool.must``, ``or`` as
``bool.should``, ``not`` as ``bool.must_not``, nested as the React prop nests them), and whose options (a search
box's ``highlight``, a list's ``sort``) it takes on. A ``term`` query is never narrowed by its own value, and a
``range`` query only while nothing it reacts to has a clause: a facet keeps offering the values beside the one
picked.

A ``suggestion`` query with a value is answered, as the API server answers it, with the index suggestions made
from its hits in place of them (rs_suggestions); its search highlights with the server's suggestion tags.

What the API server does beyond translating is named, a 501, never left out: kNN (``queryVector``),
``rankFeature``, ``geo`` queries, an ``endpoint`` of its own to fetch, AI answers, featured suggestions.
``settings`` (analytics, query rules, caching: appbase.io's services) change no hit, and are not read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .body_checks import InvalidQuery, a_string, an_object
from .es_compat import Unsupported
from .json_input import size_and_depth
from .rs_suggestions import HIGHLIGHT_TAGS, SuggestionsConfig, sanitize, suggestions_answer

SEARCH, TERM, RANGE, GEO, SUGGESTION = "search", "term", "range", "geo", "suggestion"
TYPES = (SEARCH, TERM, RANGE, GEO, SUGGESTION)
REACT_CLAUSES = {"and": "must", "or": "should", "not": "must_not"}
# Options of a query that the queries reacting to it do not take on: they are its own page and its own facets.
OWN_OPTIONS = ("size", "from", "aggs", "_source", "query")
# Fields the API server leaves out of the phrase_prefix clause: exact or pre-analysed sub-fields.
NOT_PREFIXED = (".keyword", ".autosuggest", ".search")
SYNONYMS = ".synonyms"
PIVOT_SEPARATOR = " > "
RESERVED_IDS = ("settings", "error")
# Props of each type, checked once where a query is read (a wrong type is a 400 naming it, as the API server's
# reading of the request refuses it).
FLAGS = (
    "execute",
    "highlight",
    "showMissing",
    "pagination",
    "queryString",
    "searchOperators",
    "includeNullValues",
    "deepPagination",
    "enableSynonyms",
    "enableIndexSuggestions",
    "enableEndpointSuggestions",
    "showDistinctSuggestions",
    "enablePredictiveSuggestions",
    "applyStopwords",
)
OBJECTS = (
    "react",
    "defaultQuery",
    "customQuery",
    "highlightConfig",
    "customHighlight",
    "distinctFieldConfig",
    "deepPaginationConfig",
    "after",
    "range",
    "indexSuggestionsConfig",
)
NAMES = ("categoryField", "aggregationField", "nestedField", "distinctField", "index", "urlField", "searchLanguage")
# Keys of the API server's query whose effect is a service of appbase.io's (or a search this service has no way
# to make), named when a query asks for it: (key, what it asks).
UNSERVED = {
    "queryVector": "a kNN search of ReactiveSearch's own (script_score over a vector field)",
    "imageValue": "a kNN search by an image",
    "rankFeature": "rank_feature boosts",
    "endpoint": "a search sent to another endpoint",
    "enableAI": "AI answers",
}
NO_HITS = {
    "took": 0,
    "timed_out": False,
    "_shards": {"total": 1, "successful": 1, "skipped": 0, "failed": 0},
    "hits": {"total": {"value": 0, "relation": "eq"}, "max_score": None, "hits": []},
    "status": 200,
}
"""The API server's answer to a suggestion query it does not run (index suggestions switched off)."""
# Keys of a suggestion query for appbase.io's other suggestions that change the index suggestions it answers.
UNSERVED_SUGGESTIONS = {
    "enableFeaturedSuggestions": "featured suggestions (which also lift the size limit off the index suggestions)",
}


@dataclass(frozen=True)
class Search:
    """One executed query: its id, the index it names (None: the request's), and its Elasticsearch body."""

    id: str
    index: str | None
    body: dict[str, Any]
    suggestions: SuggestionsConfig | None = None
    """A suggestion query's: its hits are answered as the suggestions made from them (rs_suggestions)."""


@dataclass
class Translation:
    """A ReactiveSearch request as the searches it executes, in order, and the ids answered without a search."""

    searches: list[Search] = field(default_factory=list)
    unsearched: list[str] = field(default_factory=list)

    def response(self, answers: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
        """The API server's answer: each query's Elasticsearch answer (or its error) under its id, and the time
        the searches took under ``settings``; ``answers`` holds each search's answer by id."""
        response: dict[str, Any] = {query_id: {**NO_HITS} for query_id in self.unsearched}
        for search in self.searches:
            answer = answers[search.id]
            response[search.id] = (
                answer if search.suggestions is None else suggestions_answer(search.suggestions, answer)
            )
        took = sum(answer.get("took", 0) for answer in answers.values())
        return {**response, "settings": {"took": took}}


def translate(
    body: Mapping[str, Any],
    *,
    max_searches: int | None = None,
    max_body_bytes: int | None = None,
    max_depth: int | None = None,
) -> Translation:
    """The searches a ReactiveSearch API request executes (``execute`` true, the default), each as an
    Elasticsearch body; a query that is malformed is a 400 naming it (``query[2].react``), one that asks for what
    only appbase.io's services give a 501 naming the key.

    Each body is held to what a ``_search`` body may be, as what runs is checked, not what was sent: a request
    executing more than ``max_searches`` queries (``service.max_msearch_searches``) is refused before any is
    translated, and a body longer as JSON than ``max_body_bytes`` (``service.max_body_bytes``) or deeper than
    ``max_depth`` (``service.max_json_depth``) is a 400 naming its query. A ``react`` copies the clauses it names
    into the body, so a body can be far larger and deeper than the request (a query named thousands of times, its
    clause as often; each level of ``react`` two or three of ``bool``). None: not checked."""
    if "settings" in body:
        an_object(body["settings"], "settings")
    raw = body.get("query")
    if not isinstance(raw, list) or not raw:
        raise InvalidQuery("query", "expected a list of one or more queries")
    by_id: dict[str, Query] = {}
    queries: list[Query] = []
    for i, item in enumerate(raw):
        query = Query(an_object(item, f"query[{i}]"), f"query[{i}]")
        earlier = by_id.get(query.id)
        if earlier is None:
            by_id[query.id] = query
            queries.append(query)
        elif query.spec == earlier.spec:
            continue  # a server-side render lists the component a URL gives a value twice, alike
        elif query.executes and earlier.executes:
            raise InvalidQuery(
                f"{query.path}.id", f"a second query with the id {query.id!r} to execute: each answers under its id"
            )
        else:
            # A search box's suggestions (executed, answered under its id) beside its query as the dependency of
            # a facet that reacts to it (not executed: what a react names), as reactivecore's getDependentQueries
            # sends them.
            queries.append(query)
            if not query.executes:
                by_id[query.id] = query
    executed = sum(query.executes for query in queries)
    if max_searches is not None and executed > max_searches:
        # Each search costs a whole pipeline run, as a multi-search's does.
        raise InvalidQuery(
            "query", f"{executed} queries to execute; at most {max_searches} (service.max_msearch_searches)"
        )
    translation = Translation()
    for query in queries:
        if query.switched_off:
            translation.unsearched.append(query.id)
        if not query.executes:
            continue
        suggestions = query.suggestions_config() if query.type == SUGGESTION else None
        search = Search(query.id, query.spec.get("index"), query.body(by_id), suggestions)
        within_limits(search.body, query.path, max_body_bytes, max_depth)
        translation.searches.append(search)
    return translation


def within_limits(body: Any, path: str, max_body_bytes: int | None, max_depth: int | None) -> None:
    """Refuse the body of the query at ``path`` when a ``_search`` could not send it (see :func:`translate`)."""
    if max_body_bytes is None and max_depth is None:
        return
    size, depth = size_and_depth(body)
    if max_depth is not None and depth > max_depth:
        raise InvalidQuery(
            path,
            f"the search this query makes would be nested {depth} levels deep, deeper than a _search body may be "
            f"({max_depth}, service.max_json_depth): its react, or what it names, nests too deep",
        )
    if max_body_bytes is not None and size > max_body_bytes:
        raise InvalidQuery(
            path,
            f"the search this query makes would be a body of {size} bytes, more than a _search body may be "
            f"({max_body_bytes}, service.max_body_bytes): its react names too much, or the same queries too often",
        )


class Query:
    """One query of the request (``spec``, at ``path`` in the body), read as the API server reads it."""

    def __init__(self, spec: Mapping[str, Any], path: str):
        self.spec, self.path = spec, path
        self.id = a_string(spec.get("id"), f"{path}.id")
        if self.id in RESERVED_IDS:
            raise InvalidQuery(f"{path}.id", f"{self.id!r} names a part of the answer, not a query")
        kind = spec.get("type") or SEARCH
        if kind not in TYPES:
            raise InvalidQuery(f"{path}.type", f"expected one of {', '.join(TYPES)}")
        self.type: str = kind
        for key, what in UNSERVED.items():
            if spec.get(key) not in (None, False) and (key != "queryVector" or spec.get("vectorDataField")):
                raise Unsupported(f"{path}.{key}", f"{what} is a service of appbase.io's, not served here")
        if kind == GEO:
            raise Unsupported(f"{path}.type", "geo queries: products have no location")
        for key in FLAGS:
            if spec.get(key) is not None and not isinstance(spec[key], bool):
                raise InvalidQuery(f"{path}.{key}", "expected true or false")
        for key in OBJECTS:
            if spec.get(key) is not None:
                an_object(spec[key], f"{path}.{key}")
        for key in NAMES:
            if spec.get(key) is not None:
                a_string(spec[key], f"{path}.{key}")
        # The API server answers a suggestion query whose suggestions are switched off with no hits, unsearched.
        self.switched_off = kind == SUGGESTION and any(
            spec.get(key) is False for key in ("enableIndexSuggestions", "enableEndpointSuggestions")
        )
        self.executes = spec.get("execute") is not False and not self.switched_off
        if spec.get("highlightConfig") is not None and spec.get("highlight") is not True:
            raise InvalidQuery(f"{path}.highlightConfig", "highlightConfig is read only with highlight: true")
        self.fields = data_fields(spec, path)
        self._lends: tuple[Any, dict[str, Any]] | None = None

    def flag(self, key: str) -> bool:
        """A true/false prop (one of FLAGS); absent or null is false."""
        return self.spec.get(key) is True

    def field(self) -> str:
        """The first data field: a term, range or sort's."""
        if not self.fields:
            raise InvalidQuery(f"{self.path}.dataField", "a field is needed for this query")
        return self.fields[0][0]

    def body(self, by_id: Mapping[str, Query]) -> dict[str, Any]:
        """The Elasticsearch body this query executes: its query joined with what its ``react`` names, the
        options those lend it, then its own options and its ``defaultQuery``'s."""
        lenders: dict[str, Mapping[str, Any]] = {}
        clauses = self.react_clauses(by_id, lenders)
        lent: dict[str, Any] = {}
        for options in lenders.values():  # in the order of each one's last mention, as one update per mention
            lent.update(options)
        default = self.spec.get("defaultQuery")
        query: Any
        if clauses:
            if default is not None:
                clauses += [default["query"]] if "query" in default else []
            elif self.type in (SEARCH, SUGGESTION):
                clauses += [own] if (own := self.own_query()) is not None else []
            query = {"bool": {"must": clauses}}
        elif default is not None and "query" in default:
            query = default["query"]
        else:
            query = self.own_query() if self.type != TERM else None
        options = {**lent, "query": query if query is not None else {"match_all": {}}}
        deep = self.spec.get("deepPaginationConfig")
        cursor = deep.get("cursor") if self.flag("deepPagination") and deep is not None else None
        if cursor:
            options["search_after"] = [cursor]
        options.update(self.options())
        if cursor:
            options["from"] = 0
        if default is not None:
            options.update((k, v) for k, v in default.items() if k != "query")
        return options

    def react_clauses(self, by_id: Mapping[str, Query], lenders: dict[str, Mapping[str, Any]]) -> list[Any]:
        """The clauses of the queries ``react`` names, each under its conjunction; the options each named query
        lends are put in ``lenders`` by its id, last mentioned last. An id that names no query of the request adds
        nothing, as in the API server."""
        react = self.spec.get("react")
        if react is None:
            return []
        return list(self.conjunctions(react, f"{self.path}.react", by_id, lenders))

    def conjunctions(
        self,
        react: Mapping[str, Any],
        path: str,
        by_id: Mapping[str, Query],
        lenders: dict[str, Mapping[str, Any]],
    ) -> Iterator[Any]:
        """One bool clause per conjunction of ``react``: a list's queries (or nested conjunctions) together under
        it, a single id's alone."""
        for conjunction, value in react.items():
            if conjunction not in REACT_CLAUSES:
                raise InvalidQuery(f"{path}.{conjunction}", "expected and, or or not")
            where = f"{path}.{conjunction}"
            items = value if isinstance(value, list) else [value]
            joined: list[Any] = []
            for i, item in enumerate(items):
                at = f"{where}[{i}]" if isinstance(value, list) else where
                if isinstance(item, Mapping):
                    joined += self.conjunctions(item, at, by_id, lenders)
                elif isinstance(item, str):
                    other = by_id.get(item)
                    if other is None:
                        continue
                    clause, options = other.lends()
                    lenders.pop(item, None)
                    lenders[item] = options
                    if clause is not None:
                        joined.append(clause)
                else:
                    raise InvalidQuery(at, "expected the id of a query, or and/or/not of them")
            if joined:
                occur = REACT_CLAUSES[conjunction]
                bool_query: dict[str, Any] = {occur: joined if isinstance(value, list) else joined[0]}
                if occur == "should":
                    bool_query["minimum_should_match"] = 1
                yield {"bool": bool_query}

    def lends(self) -> tuple[Any, dict[str, Any]]:
        """This query as another that reacts to it takes it: its clause (its ``customQuery``'s, or its value's),
        and its options, all but its own page and facets. Made once, however often it is named: the same clause
        object each time (a body measures it once, see json_input.size_and_depth)."""
        if self._lends is None:
            custom = self.spec.get("customQuery")
            options = {k: v for k, v in self.options().items() if k not in OWN_OPTIONS}
            clause: Any
            if custom is not None:
                options.update((k, v) for k, v in custom.items() if k not in OWN_OPTIONS)
            if custom is not None and "query" in custom:
                clause = custom["query"]
            else:
                clause = self.own_query()
                if clause is not None and self.spec.get("compoundClause") == "filter":
                    clause = {"bool": {"filter": [clause]}}  # matches the same, scores nothing: a filter's context
            self._lends = (clause, options)
        return self._lends

    # The query a value makes, by type ------------------------------------------------------------------------

    def own_query(self) -> Any:
        """The clause this query's own value makes (None: no value, no clause)."""
        if self.type == TERM:
            clause = self.term_query()
        elif self.type == RANGE:
            clause = self.range_query()
        else:
            clause = self.search_query()
        nested = self.spec.get("nestedField")
        if clause is not None and nested is not None:
            clause = {"nested": {"path": nested, "query": clause}}
        return clause

    def words(self) -> list[str]:
        """A search's value: its text, or a list's texts (none of them blank); empty when it has none. A
        suggestion's is one text, its lone punctuation marks dropped, as the API server searches it."""
        value = self.spec.get("value")
        if value is None:
            return []
        if isinstance(value, list) and self.type == SEARCH:
            return [item for item in value if isinstance(item, str) and item.strip()]
        if not isinstance(value, str):
            listed = " or a list of texts" if self.type == SEARCH else ""
            raise InvalidQuery(f"{self.path}.value", f"expected a text{listed}")
        if self.type == SUGGESTION:
            value = sanitize(value)
        return [value] if value.strip() else []

    def search_query(self) -> Any:
        words = self.words()
        if not words:
            return None
        text, several = " ".join(words), len(words) > 1
        if not self.fields:
            raise InvalidQuery(f"{self.path}.dataField", "a search needs the fields to search")
        operator = self.spec.get("queryFormat") or "or"
        if operator not in ("or", "and"):
            raise InvalidQuery(f"{self.path}.queryFormat", "expected or or and")
        fields = [f"{name}^{weight:.2f}" if weight > 0 else name for name, weight in self.fields]
        query: Any
        if self.flag("queryString"):
            query = {"query_string": {"query": text, "default_operator": operator}}
        elif self.flag("searchOperators"):
            query = {"simple_query_string": {"query": text, "fields": fields, "default_operator": operator}}
        else:
            query = {"bool": {"should": self.text_clauses(text, fields, operator, several), "minimum_should_match": 1}}
        category, field_name = self.spec.get("categoryValue"), self.spec.get("categoryField")
        if category is not None and field_name and category != "*":
            query = {"bool": {"must": [query, {"term": {field_name: category}}]}}
        return query

    def text_clauses(self, text: str, fields: list[str], operator: str, several: bool) -> list[dict[str, Any]]:
        """The API server's multi_match clauses for a search's text: the words across the fields (the last one
        made plural), the best field (with the query's ``fuzziness``; not with ``and``), the phrase, and the
        phrase's last word as a prefix (not for a list of values, nor in exact sub-fields)."""

        def clause(kind: str, query: str, searched: list[str], **extra: Any) -> dict[str, Any]:
            return {"multi_match": {"query": query, "fields": searched, "type": kind, "operator": operator, **extra}}

        prefixed = [f"{n}^1.0" if w > 0 else n for n, w in self.fields if not n.endswith(NOT_PREFIXED)]
        clauses = [clause("cross_fields", plural(text), fields)]
        if operator == "or":
            clauses.append(clause("best_fields", text, fields, fuzziness=self.spec.get("fuzziness", 0)))
        clauses.append(clause("phrase", text, fields))
        if prefixed and not several:
            clauses.append(clause("phrase_prefix", text, prefixed))
        return clauses

    def term_query(self) -> Any:
        value = self.spec.get("value")
        if value is None or value == "" or value == []:
            return None
        if not isinstance(value, str | list):
            raise InvalidQuery(f"{self.path}.value", "expected a value or a list of values")
        name = self.field()
        select_all = self.spec.get("selectAllLabel")
        if select_all is not None and (value == select_all or (isinstance(value, list) and select_all in value)):
            return {"match_all": {}} if self.flag("showMissing") else {"exists": {"field": name}}
        # The API server matches an unnamed missing label as "" here but counts it as "N/A": "N/A" in both.
        missing_label = self.spec.get("missingLabel") or "N/A"
        missing = {"bool": {"must_not": {"exists": {"field": name}}}}
        if isinstance(value, str):
            return missing if self.flag("showMissing") and value == missing_label else {"term": {name: value}}
        operator = self.spec.get("queryFormat") or "or"
        if len(self.fields) > 1:  # pivot facets: "Furniture > Sofas" is one value per field, in order
            pivots = [
                {
                    "bool": {
                        "must": [
                            {"term": {self.fields[i][0]: part}}
                            for i, part in enumerate(item.split(PIVOT_SEPARATOR)[: len(self.fields)])
                        ]
                    }
                }
                for item in value
                if isinstance(item, str)
            ]
            return {"bool": {"should" if operator == "or" else "must": pivots}}
        if operator != "or":
            return {"bool": {"must": [{"term": {name: item}} for item in value]}}
        should: list[Any] = [{"terms": {name: [item for item in value if item != missing_label]}}]
        if self.flag("showMissing") and missing_label in value:
            should.append(missing)
        return {"bool": {"should": should}}

    def range_query(self) -> Any:
        value = self.spec.get("value")
        if value is None:
            return None
        if not isinstance(value, list):
            return self.one_range(value, f"{self.path}.value")
        ranges = [self.one_range(item, f"{self.path}.value[{i}]") for i, item in enumerate(value)]
        if not ranges or any(r is None for r in ranges):  # the API server drops the whole list for one open range
            return None
        return {"bool": {"should": ranges, "minimum_should_match": 1, "boost": 1.0}}

    def one_range(self, value: Any, path: str) -> Any:
        bounds = an_object(value, path)
        start, end = bounds.get("start"), bounds.get("end")
        if start is None and end is None:
            return None
        name = self.field()
        spec: dict[str, Any] = {}
        if start is not None:
            spec["gte"] = start
        if end is not None:
            spec["lte"] = end
        date_format = self.spec.get("queryFormat")
        if date_format is not None and date_format not in ("and", "or"):
            spec["format"] = date_format
        if isinstance(bounds.get("boost"), int | float) and not isinstance(bounds.get("boost"), bool):
            spec["boost"] = bounds["boost"]
        clause: Any = {"range": {name: spec}}
        if self.flag("includeNullValues"):
            clause = {"bool": {"should": [clause, {"bool": {"must_not": {"exists": {"field": name}}}}]}}
        return clause

    def suggestions_config(self) -> SuggestionsConfig:
        """What this suggestion query asks of the suggestions made from its hits (see rs_suggestions). Keys for
        appbase.io's recent, popular and FAQ suggestions add none here and are not read; one that would change the
        index suggestions (UNSERVED_SUGGESTIONS), or a ``searchLanguage`` other than English (the only one whose
        stop words and stems are held), is a 501 naming it where there is a value to suggest for."""
        spec, path = self.spec, self.path
        if self.words():
            for key, what in UNSERVED_SUGGESTIONS.items():
                if spec.get(key) not in (None, False):
                    raise Unsupported(f"{path}.{key}", f"{what} are a service of appbase.io's, not served here")
            if (spec.get("searchLanguage") or "english").lower() not in ("english", "en"):
                raise Unsupported(f"{path}.searchLanguage", "suggestions in English only: its stop words and stems")
        index_config = spec.get("indexSuggestionsConfig") or {}
        section_label = index_config.get("sectionLabel")
        if section_label is not None:
            a_string(section_label, f"{path}.indexSuggestionsConfig.sectionLabel")
        most = spec.get("maxPredictedWords")
        if most is not None and (not isinstance(most, int) or isinstance(most, bool) or most < 0):
            raise InvalidQuery(f"{path}.maxPredictedWords", "expected a whole number")
        size = spec.get("size")
        return SuggestionsConfig(
            value=spec.get("value") or "",
            data_fields=[name for name, _ in self.fields],
            value_fields=texts(index_config.get("valueFields"), f"{path}.indexSuggestionsConfig.valueFields"),
            highlight_fields=texts(spec.get("highlightField"), f"{path}.highlightField"),
            distinct=self.flag("showDistinctSuggestions"),
            predictive=self.flag("enablePredictiveSuggestions"),
            max_predicted_words=2 if most is None else most,
            apply_stopwords=self.flag("applyStopwords"),
            custom_stopwords=frozenset(texts(spec.get("customStopwords"), f"{path}.customStopwords")),
            url_field=spec.get("urlField"),
            category_field=spec.get("categoryField"),
            section_label=section_label,
            tags=self.predicted_tags(),
            size=size if isinstance(size, int) and not isinstance(size, bool) and size >= 0 else None,
        )

    def predicted_tags(self) -> tuple[str, str]:
        """The tags around predicted words: ``highlightConfig``'s (a tag, or tags run together), else the API
        server's."""
        config = self.spec.get("highlightConfig") or {}
        tags = []
        for key, default in zip(("pre_tags", "post_tags"), HIGHLIGHT_TAGS, strict=True):
            given = config.get(key)
            tags.append(
                given
                if isinstance(given, str)
                else "".join(t for t in given if isinstance(t, str))
                if isinstance(given, list)
                else default
            )
        return tags[0], tags[1]

    # Options: page, sort, source, highlight, aggregations ---------------------------------------------------

    def options(self) -> dict[str, Any]:
        """The body's keys besides its query, from this query's own props (the API server's buildQueryOptions)."""
        spec, options = self.spec, {}
        if spec.get("size") is not None:
            options["size"] = spec["size"]
        elif self.type in (TERM, RANGE):
            options["size"] = 0
        distinct = spec.get("distinctField")
        if spec.get("distinctFieldConfig") is not None:
            collapse = dict(spec["distinctFieldConfig"])
            options["collapse"] = {**collapse, **({"field": distinct} if distinct is not None else {})}
        elif distinct is not None:
            options["collapse"] = {"field": distinct}
        if spec.get("from") is not None and self.type != TERM:
            options["from"] = spec["from"]
        if self.type == SEARCH and (spec.get("sortBy") is not None or spec.get("sortField") is not None):
            options["sort"] = self.sort()
        includes, excludes = spec.get("includeFields"), spec.get("excludeFields")
        options["_source"] = {
            "includes": ["*"] if includes is None else includes,
            "excludes": [] if excludes is None else excludes,
        }
        if self.flag("highlight"):
            options["highlight"] = self.highlight()
        aggs = self.aggregations()
        if aggs:
            options["aggs"] = aggs
        return options

    def sort(self) -> list[dict[str, Any]]:
        """``sortField`` (a field, or a list of fields and ``{field: order}``) in ``sortBy``'s order (ascending
        by default; ``_score`` descending), or the first data field."""
        order = self.spec.get("sortBy") or "asc"
        if order not in ("asc", "desc"):
            raise InvalidQuery(f"{self.path}.sortBy", "expected asc or desc to sort a search")
        given = self.spec.get("sortField")
        if given is None:
            return [{self.field(): {"order": order}}]
        keys: list[tuple[str, str]] = []
        for i, item in enumerate(given if isinstance(given, list) else [given]):
            at = f"{self.path}.sortField" + (f"[{i}]" if isinstance(given, list) else "")
            if isinstance(item, str):
                keys.append((item, "desc" if item == "_score" else order))
            elif isinstance(item, Mapping) and isinstance(given, list) and len(item) == 1:
                (name, direction), *_ = item.items()
                if direction not in ("asc", "desc"):
                    raise InvalidQuery(f"{at}.{name}", "expected asc or desc")
                keys.append((name, direction))
            else:
                raise InvalidQuery(at, "expected a field, or {field: order} in a list")
        return [{name: {"order": direction}} for name, direction in keys]

    def highlight(self) -> dict[str, Any]:
        """Highlights of the ``highlightField`` fields (by default the data fields): with ``<mark>`` tags, or as
        ``highlightConfig`` says."""
        names = self.spec.get("highlightField") or [name for name, _ in self.fields]
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise InvalidQuery(f"{self.path}.highlightField", "expected a field or a list of fields")
        config = self.spec.get("highlightConfig") or self.spec.get("customHighlight")
        if config is not None:
            return {"fields": {n: {} for n in names}, **config}
        if self.type == SUGGESTION:  # the API server's own tags for suggestions, in every data or highlight field
            pre, post = HIGHLIGHT_TAGS
            return {"fields": {n: {} for n in names}, "pre_tags": [pre], "post_tags": [post]}
        highlight: dict[str, Any] = {"pre_tags": ["<mark>"], "post_tags": ["</mark>"], "fields": {n: {} for n in names}}
        if self.spec.get("highlightField"):
            highlight["require_field_match"] = False
        return highlight

    def aggregations(self) -> dict[str, Any]:
        spec = self.spec
        if self.type == TERM:
            if self.flag("pagination"):
                return self.composite(self.field())
            return self.terms_aggregation()
        aggs: dict[str, Any] = {}
        if spec.get("aggregationField") is not None:
            aggs = self.composite(spec["aggregationField"])
        category = self.spec.get("categoryField")
        if category and self.type in (SEARCH, SUGGESTION):
            terms: dict[str, Any] = {"field": category}
            terms.update(self.value_filters())
            if spec.get("aggregationSize") is not None:
                terms["size"] = spec["aggregationSize"]
            aggs = {category: {"terms": terms}, **aggs}
        if spec.get("aggregations") is not None and self.type == RANGE:
            aggs = self.range_aggregations()
        return aggs

    def value_filters(self) -> dict[str, Any]:
        spec = self.spec
        return {
            **({"include": spec["includeValues"]} if spec.get("includeValues") is not None else {}),
            **({"exclude": spec["excludeValues"]} if spec.get("excludeValues") is not None else {}),
        }

    def terms_aggregation(self) -> dict[str, Any]:
        """A ``terms`` aggregation of each data field, each within the one before (pivot facets)."""
        if not self.fields:
            raise InvalidQuery(f"{self.path}.dataField", "a term query needs the field to count values of")
        spec = self.spec
        aggs: dict[str, Any] = {}
        order = spec.get("sortBy") or "count"
        if order not in ("asc", "desc", "count"):
            raise InvalidQuery(f"{self.path}.sortBy", "expected asc, desc or count")
        for name, _ in reversed(self.fields):
            terms: dict[str, Any] = {"field": name, **self.value_filters()}
            size = spec.get("aggregationSize") if spec.get("aggregationSize") is not None else spec.get("size")
            if size is not None:
                terms["size"] = size
            terms["order"] = {"_count": "desc"} if order == "count" else {"_key": order}
            if self.flag("showMissing"):
                terms["missing"] = spec.get("missingLabel") or "N/A"
            aggs = {name: {"terms": terms, **({"aggs": aggs} if aggs else {})}}
        nested = spec.get("nestedField")
        if nested is not None:
            return {"reactivesearch_nested": {"nested": {"path": nested}, "aggs": aggs}}
        return aggs

    def composite(self, name: str) -> dict[str, Any]:
        """One page of a field's values (``after`` the last page's key), with the top hit of each value for an
        ``aggregationField``."""
        spec = self.spec
        terms: dict[str, Any] = {"field": name}
        if self.flag("showMissing"):
            terms["missing_bucket"] = True
        if spec.get("sortBy") not in (None, "count"):
            terms["order"] = spec["sortBy"]
        composite: dict[str, Any] = {"sources": [{name: {"terms": terms}}]}
        if spec.get("after") is not None:
            composite["after"] = spec["after"]
        size = spec.get("aggregationSize") if spec.get("aggregationSize") is not None else spec.get("size")
        if size is not None:
            composite["size"] = size
        aggregation: dict[str, Any] = {"composite": composite}
        if spec.get("aggregationField") is not None:
            aggregation["aggs"] = {name: {"top_hits": {"size": 1}}}
        return {name: aggregation}

    def range_aggregations(self) -> dict[str, Any]:
        """``aggregations`` of a range query: ``min``, ``max``, and a ``histogram`` over its ``range`` (or value)
        in about a hundred bars, or a ``date_histogram`` by its ``calendarInterval``."""
        wanted = self.spec["aggregations"]
        if not isinstance(wanted, list):
            raise InvalidQuery(f"{self.path}.aggregations", "expected a list: min, max, histogram")
        name = self.field()
        aggs: dict[str, Any] = {}
        for kind in ("min", "max"):
            if kind in wanted:
                aggs[kind] = {kind: {"field": name}}
        if "histogram" in wanted:
            interval = self.spec.get("calendarInterval") or self.spec.get("calendarinterval")
            if interval is not None:
                aggs[name] = {"date_histogram": {"field": name, "calendar_interval": interval}}
            else:
                bounds = self.spec.get("range") if self.spec.get("range") is not None else self.spec.get("value")
                histogram = self.histogram(name, bounds)
                if histogram is not None:
                    aggs[name] = histogram
        nested = self.spec.get("nestedField")
        if nested is not None:
            return {nested: {"nested": {"path": nested}, "aggs": aggs}}
        return aggs

    def histogram(self, name: str, bounds: Any) -> dict[str, Any] | None:
        interval = self.spec.get("interval")
        if interval is not None and (not isinstance(interval, int) or isinstance(interval, bool) or interval < 1):
            raise InvalidQuery(f"{self.path}.interval", "expected a whole number from 1")
        if bounds is None:  # no bounds to cut into bars: bars of the interval asked, from 0
            return {"histogram": {"field": name, "interval": interval or 1}}
        if not isinstance(bounds, Mapping):  # a list of ranges: the API server cannot read bars from it, nor here
            return None
        start, end = bounds.get("start"), bounds.get("end")
        if start is None or end is None:
            return None
        numbers = all(isinstance(b, int | float) and not isinstance(b, bool) for b in (start, end))
        least = max(math.ceil((end - start) / 100), 1) if numbers else 1
        return {"histogram": {"field": name, "interval": max(interval or 1, least), "offset": start}}


def texts(given: Any, path: str) -> list[str]:
    """A field or word, or a list of them, as a list (empty when absent); anything else is a 400 naming it."""
    items = [] if given is None else [given] if isinstance(given, str) else given
    if not isinstance(items, list) or not all(isinstance(item, str) for item in items):
        raise InvalidQuery(path, "expected a text or a list of texts")
    return items


def data_fields(spec: Mapping[str, Any], path: str) -> list[tuple[str, float]]:
    """``dataField`` (a field, ``{field, weight}``, or a list of them; weights also from the older
    ``fieldWeights``) as (field, weight) pairs, weight 0 where none is given; ``enableSynonyms: false`` leaves out
    the ``.synonyms`` sub-fields."""
    given = spec.get("dataField")
    items = [] if given is None else given if isinstance(given, list) else [given]
    weights = spec.get("fieldWeights") or []
    if not isinstance(weights, list):
        raise InvalidQuery(f"{path}.fieldWeights", "expected a list of numbers")
    fields: list[tuple[str, float]] = []
    for i, item in enumerate(items):
        at = f"{path}.dataField" + (f"[{i}]" if isinstance(given, list) else "")
        if isinstance(item, str):
            weight = weights[i] if i < len(weights) else 0
        elif isinstance(item, Mapping) and isinstance(item.get("field"), str):
            item, weight = item["field"], item.get("weight", 0)
        else:
            raise InvalidQuery(at, "expected a field, or {field, weight}")
        if not isinstance(weight, int | float) or isinstance(weight, bool) or not math.isfinite(weight):
            raise InvalidQuery(at, "expected a number for the weight")
        fields.append((item, float(weight)))
    if spec.get("enableSynonyms") is False:
        kept = [f for f in fields if not f[0].endswith(SYNONYMS)]
        fields = kept or fields
    return fields


UNCOUNTABLE = {
    "deer", "equipment", "fish", "furniture", "information", "jeans", "luggage", "money", "news", "rice",
    "series", "sheep", "species", "trousers",
}  # fmt: skip
IRREGULAR = {
    "child": "children", "foot": "feet", "goose": "geese", "man": "men", "mouse": "mice", "ox": "oxen",
    "person": "people", "tooth": "teeth", "woman": "women",
}  # fmt: skip
# (ending, plural ending): the first that the word ends with applies; the word's case is kept.
PLURAL_ENDINGS = (
    ("sis", "ses"),
    ("ss", "sses"),
    ("us", "uses"),
    ("s", "s"),
    ("x", "xes"),
    ("ch", "ches"),
    ("sh", "shes"),
    ("zz", "zzes"),
    ("knife", "knives"),
    ("wife", "wives"),
    ("life", "lives"),
    ("alf", "alves"),
    ("elf", "elves"),
    ("olf", "olves"),
    ("eaf", "eaves"),
    ("oaf", "oaves"),
    ("arf", "arves"),
    ("hero", "heroes"),
    ("ato", "atoes"),
)


def plural(text: str) -> str:
    """``text`` tidied (a lone punctuation mark between spaces dropped) with its last word made plural, as the
    API server's ``cross_fields`` clause searches it ("lamp" finds "lamps" too). The server uses the pluralize
    library; this follows its regular rules and its commonest irregular and uncountable words. A last word that is
    not all ASCII letters ("4k", "café") is left as it is."""
    words = sanitize(text).split()
    if not words or not (words[-1].isascii() and words[-1].isalpha()):
        return " ".join(words)
    return " ".join([*words[:-1], plural_word(words[-1])])


def plural_word(word: str) -> str:
    """One word (ASCII letters) made plural, in its case (an all-capital word stays all capitals)."""
    lower = word.lower()
    if lower in UNCOUNTABLE or lower in IRREGULAR.values():
        return word
    if lower in IRREGULAR:
        made = IRREGULAR[lower]
    elif (ending := next((e for e in PLURAL_ENDINGS if lower.endswith(e[0])), None)) is not None:
        made = lower[: len(lower) - len(ending[0])] + ending[1]
    elif len(lower) > 1 and lower.endswith("y") and (lower[-2] not in "aeiou" or lower.endswith("quy")):
        made = lower[:-1] + "ies"
    else:
        made = lower + "s"
    return made.upper() if word.isupper() and len(word) > 1 else word[0] + made[1:]
