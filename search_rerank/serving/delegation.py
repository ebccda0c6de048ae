"""Elasticsearch searches on a cluster backend: the client's Query DSL delegated to the cluster.

The service only wants to change the *ranking*; everything else a front end
asks (``must_not``, ``function_score``, ``nested``, ``query_string``, ranges
in any form, facets, highlights, sorting by a field, suggestions, scrolling)
the cluster already answers exactly. So with ``lexical.backend`` =
``elasticsearch`` or ``opensearch`` a search body is not re-implemented but
split and sent on:

- **Nothing to rerank** (a sort by a field other than ``_score``, ``size: 0``,
  ``suggest``, ``scroll``, ``pit``, ``search_after``, or a query without words
  and no text or vector for the dense leg):
  the body goes to the cluster as one request, as it came, and the cluster's
  page, total, sort values, highlights, aggregations, suggestions and scroll or
  PIT ids are the answer (:meth:`DelegatedSearch.ordered_result`). A query without
  words and without a sort is listed ``_score`` first (``function_score``
  boosts and pins count), then best sellers, then id, as the embedded backend
  lists it: Elasticsearch's index order means nothing to a shopper. A sort
  that ``_score`` only leads (``_score``, then ``price``) is sent whole; with
  words its page is the pipeline's ranking, which ``search_after`` cannot
  continue (a 501 naming ``sort``).
- **A ranking**: the lexical leg is the client's own ``query`` (with its
  ``post_filter`` as Elasticsearch's ``post_filter``), ``size`` = the leg's
  candidates, ``_source``, paging, aggregations and highlights split off
  (:class:`DelegatedLeg`); the dense leg searches within the same filter
  context (:func:`constraints`: ``bool.filter``, ``must_not``, the non-text
  clauses of ``must``, the ``post_filter``): engine kNN takes them as its
  ``filter``, FAISS candidates are checked in one ``ids`` + filter request
  (:class:`FilteredDenseLeg`), so no dense hit breaks a filter. The words for the
  encoder and the reranker are read from the text clauses in scoring
  position (:func:`query_words`: ``match`` and ``multi_match`` as sent,
  ``query_string``/``simple_query_string`` parsed for their wanted terms).
  Aggregations go in a second, ``size: 0`` request with the client's query
  (the existing :class:`~.aggregations.Aggregator`), not in the leg's request:
  the leg has a tight deadline that a slow aggregation would blow, costing the
  hits; apart, the two run side by side, and facets degrade on their own.
  ``highlight`` is asked once, after ranking, for the page's hits: an ``ids``
  request with the client's highlight and the client's query as its
  ``highlight_query``, so hits that only the dense leg found get theirs too.
  ``hits.total`` is the cluster's count for the query and post filter
  (``track_total_hits`` as sent), raised to the ranked list's length when the
  dense leg added more; a page past the ranked list goes on with the other
  matches in the cluster's order (:meth:`DelegatedSearch.filled`).

Every request goes through the lexical leg's client (its credentials, retry
policy and timeouts) to ``_search`` on the configured index or alias, or
without an index for a point in time: a read, whatever the body says, so
nothing here widens what the passthrough's read-only allow-list lets through.
A scroll's later pages are the passthrough's (``/_search/scroll``, on its list).

Field names are the one thing translated (:class:`ClusterFields`), and
two things added to a full-text query (:meth:`ClusterFields.with_readings`): its
model codes ("dw745b"), looked up in the text fields' code keywords, since the
cluster's analyser cuts "DW745-B" into words that "dw745b" does not match; and its
misspelt words' readings ("toliet" as the index's "toilet"), which the cluster's
term suggester names before the search (asked through the lexical leg's guard,
:func:`guarded_spellings`); and
``_source`` is the product record (from the store, filtered as asked), as on
every page this service answers. The index
is the product's (``index_mappings/``), so a front end's ``brand.keyword`` or
``attributes.color`` (after ``service.field_aliases``) is mapped onto the
normalised filter keys (``term``/``terms``), the facet keywords (aggregations,
sorts; an attribute's terms aggregation runs over the nested
``facet.attributes`` and is answered in the flat shape) and the text fields.
``query_string`` text that names such fields is parsed and sent as the same
query in Query DSL. A field the index does not hold, a query type not on
:data:`QUERY_TYPES`, or anything else that cannot be honoured is a 501 naming
it (:class:`~.es_compat.Unsupported`), never dropped.

A top-level ``knn`` arrives here already mapped by ``retrievers.plan`` (as a
retriever tree's ``knn`` is): the dense leg brings its own text or vector, held
to the query's filter context (:class:`FilteredDenseLeg`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from typing import Any, TypeVar

import numpy as np
from werkzeug.exceptions import BadGateway, GatewayTimeout, ServiceUnavailable

from ..backends.cluster import TOO_MANY_BUCKETS, ClusterRetriever, Failure
from ..backends.cluster_query import code_lookup, reading_lookup
from ..backends.codes import PIECE, code_rests, code_spans
from ..backends.engine_knn import EngineKnnRetriever
from ..backends.mappings import CATALOG, TITLE_KEYWORD, WHOLE_CATEGORY, WORDS, field_paths, load_mapping
from ..backends.spelling import QueryWord
from ..core.breaker import CircuitBreaker, DeadlineExceeded, GuardedRetriever
from ..core.candidate import Candidate
from ..core.catalog_fields import CatalogFields
from ..core.errors import CircuitOpenError, ClusterMisconfigured, ClusterUnavailable, StageError
from ..core.filters import Filters, attribute_key, category_key, normalise_term
from ..core.pipeline import Ranking, SearchPipeline, SearchResult
from ..core.product import Product
from ..core.reasons import reason_code
from ..core.retrieval import DENSE, LEXICAL, Retriever, Stage, leg_candidates, searches_around
from ..core.settings import LEXICAL_FIELDS, ServiceSettings
from . import metrics, query_string, wildcards
from .body_checks import (
    ContextMissing,
    a_count,
    a_keep_alive,
    a_keyword,
    a_number,
    a_string,
    an_object,
    clause_list,
    fuzzy_counts,
    single_key,
)
from .completion import Completion, split_suggest, suggester_kind
from .date_math import check_options, date_bound
from .did_you_mean import parse_corrections, suggester_field
from .embedded_search import HIGHLIGHT, PREFIX_QUERIES, ShouldMatch
from .es_compat import (
    EsSearch,
    InvalidQuery,
    Unsupported,
    function_filter,
    nested_sort,
    order_terms_buckets,
    parse_search,
    pinned_query,
    unmapped_sort_type,
    without_unmapped,
)
from .field_aliases import alias_of, rename_highlights, text_fields_matching
from .hit_fields import ATTRIBUTE_VALUES, IndexedField, located, text_field
from .passthrough import BODY_REFUSALS, refused_at
from .pinned import pinned_hits

log = logging.getLogger(__name__)
T = TypeVar("T")

# The body keys read here; parse_search reads the rest (paging, _source, track_total_hits, explain, ext).
DELEGATED_KEYS = (
    "query",
    "post_filter",
    "aggs",
    "aggregations",
    "highlight",
    "sort",
    "suggest",
    "search_after",
    "pit",
    "min_score",
    "collapse",
    "terminate_after",
    "track_scores",
)
# Keys the cluster answers only on a page it orders itself: on a reranked page they would mean nothing.
CLUSTER_ORDER_ONLY = ("search_after", "pit", "min_score", "collapse", "terminate_after")
MATCH_QUERIES = {"match", "match_phrase", "match_phrase_prefix", "match_bool_prefix"}
MULTI_FIELD_QUERIES = {"multi_match", "combined_fields"}
PHRASE_QUERIES = {"match_phrase", "match_phrase_prefix"}
ANY_WORD, EVERY_WORD, IN_ORDER = "any word", "every word", "in order"
"""How many of its words a full-text query needs (:func:`needs`): what a model code may stand for in it."""
STRING_QUERIES = {"query_string", "simple_query_string"}
LEAF_FIELD_QUERIES = {"term", "terms", "range", "prefix", "wildcard", "regexp", "fuzzy", "common"}
"""Queries on one field, sent on with its name on the index (``common``: OpenSearch's and Elasticsearch 7's
common terms query, which Magento's ElasticSuite sends; an Elasticsearch 8 cluster refuses it)."""
# Every query type sent on; each is rewritten for the index's field names below.
QUERY_TYPES = (
    MATCH_QUERIES
    | MULTI_FIELD_QUERIES
    | STRING_QUERIES
    | LEAF_FIELD_QUERIES
    | {"bool", "constant_score", "function_score", "boosting", "dis_max", "nested", "pinned"}
    | {"match_all", "match_none", "ids", "exists"}
)
OPTIONS = {"boost", "_name", "case_insensitive", "rewrite"}
Spell = Callable[[str], tuple[Mapping[str, QueryWord], str | None]]
"""A text's misspelt words' readings, by the word as typed, and its last word where a prefix query reads it as
being typed (:meth:`.ClusterRetriever.readings`)."""
MAX_BODY_ADDED_TERMS = 256
"""Term queries the model codes and the misspelt words' readings of one body's full-text queries add at most (a code
in a field is one, a reading's term in a field one, and so is each word of the query of the other words a code or a
reading goes with under ``operator: and``, in each field): a cluster
refuses a body of more clauses than its limit (OpenSearch's ``indices.query.bool.max_clause_count``, 1,024 by
default), and a body a front end sent within it must not be pushed past it by what the service adds. Search UI's
four clauses of a shopper's query hold a few codes or misspelt words each."""
MAX_BODY_SPELLING_ASKS = 4
"""Texts of one body whose misspelt words' readings the cluster is asked for, before the search, each one or two
requests waiting on it (a text whose every word it was asked about lately is read from memory, and costs none):
a front end's body holds a shopper's text in a few clauses, and a filter's; a body of a hundred clauses, each a
different word, would otherwise hold its search for a hundred round trips. Past them a text is searched as typed.
One ``query_string`` asks about all its words at once (:meth:`ClusterFields.read_here`)."""
# query_string / simple_query_string options honoured where the text is sent as Query DSL (see _string_query): the
# query itself, what only scores or errors depend on, and what _tree and _fuzzy apply. Any other is a 501.
TRANSLATED_OPTIONS = {
    "query",
    "fields",
    "default_field",
    "default_operator",
    "minimum_should_match",
    "fuzziness",
    "phrase_slop",
    "boost",
    "_name",
    "tie_breaker",
    "lenient",
    "analyze_wildcard",
    "allow_leading_wildcard",
    "auto_generate_synonyms_phrase_query",
    "rewrite",
    "max_determinized_states",
    "enable_position_increments",
    "escape",
    "time_zone",
    "flags",
}
# Options whose one value here is what the translation does (a type that only scores).
TRANSLATED_OPTIONS_VALUES = {"type": ("best_fields", "most_fields")}
# A fuzzy word's options, by the query_string name: the fuzzy query's.
FUZZY_OPTIONS = {
    "fuzzy_max_expansions": "max_expansions",
    "fuzzy_prefix_length": "prefix_length",
    "fuzzy_transpositions": "transpositions",
}
SORT_OPTIONS = {"order", "missing", "mode", "unmapped_type", "format"}
NUMERIC = ("price", "rating", "sales", "review_count", "popularity")
_ATTRIBUTE = re.compile(r"attributes\.([^.]+?)(?:\.keyword)?")
_LEVEL = re.compile(r"facet\.category\.lvl\d+")
ATTRIBUTES_PATH = "facet.attributes"
HELD_WHERE_PRESENT = {"brand": "facet.brand", "category": "facet.category.lvl1"}
"""The keyword an ``exists`` on a text field reads: a document written before empty texts were left out of it
(backends.mappings.document) holds "" there, which Elasticsearch counts as a value."""
# Names of the wrapper aggregations an attribute's terms aggregation is sent in (unwrapped in the answer).
WRAP_KEY, WRAP_VALUES = "search_rerank_key", "search_rerank_values"
# Aggregations of an attribute's values that are sent in those wrappers: each reads the values alone.
ATTRIBUTE_VALUE_AGGREGATIONS = ("terms", "value_count", "cardinality")
# Prefix of the name of the count of products without an attribute, beside its terms aggregation (``missing``).
MISSING_PREFIX = "search_rerank_missing_"
# A page ordered by the cluster with no sort of its own: its ranking, then best sellers, then id.
BROWSE_SORT = [{"_score": "desc"}, {"sales": "desc"}, {"id": "asc"}]
LEG_SORT = [{"_score": "desc"}, {"id": "asc"}]  # ties by id, as the lexical leg breaks them
PAST_RANKED = "past_ranked"  # the cluster's continuation of a page past the ranked list (a degraded part's name)
DECAY = ("gauss", "linear", "exp")  # score functions keyed by the field they read
BLAMED = ("aggs", "suggest", "highlight", "sort", "post_filter")  # the parts a cluster's 400 may be about
# Aggregations that name fields elsewhere than in ``field``: they could reach the index unmapped, so they are named.
UNMAPPED_AGGREGATIONS = {
    "multi_terms",
    "top_metrics",
    "scripted_metric",
    "significant_text",
    "matrix_stats",
    "t_test",
    "geo_line",
    "frequent_item_sets",
}
WEIGHTED_PARTS = ("value", "weight")  # a weighted_avg's parts, each naming its field
# Aggregations that run a model on the cluster (Elasticsearch's inference pipeline aggregation, per bucket).
MODEL_AGGREGATIONS = {"inference"}
EXACT, KEYWORD, TEXT = "exact", "keyword", "text"


def delegated_cluster(leg: Any) -> ClusterRetriever | None:
    """The cluster to which this module delegates the Query DSL: the lexical leg's, or None when it is not one.

    The service calls a cluster leg through its circuit breaker's guard (``open_pipeline`` with guards), so the
    cluster is looked for behind the guard too; :meth:`DelegatedSearch.pipeline` puts the guard back around the
    delegated leg.
    """
    inner = leg.inner if isinstance(leg, GuardedRetriever) else leg
    return inner if isinstance(inner, ClusterRetriever) else None


# ------------------------------------------------------------------ field names


@dataclass(frozen=True)
class Field:
    """A field name on the index: ``name``; ``value`` maps a term's value onto the stored key;
    ``attribute`` is the product attribute when the name was ``attributes.<key>``."""

    name: str
    value: Callable[[Any], Any] | None = None
    attribute: str | None = None


@functools.cache
def index_fields(mapping_version: int) -> frozenset[str]:
    """Every field path of the product index's mapping (read once per version, not per search)."""
    return field_paths(load_mapping(mapping_version)["mappings"])


def _category(value: Any) -> str:
    return category_key(Filters.model_validate({"category": str(value)}).category or ())


def _date_bounds(bounds: Any, path: str) -> None:
    """A date range's bounds checked here, so that one the cluster cannot read is a 400 naming it (the cluster's
    refusal names only the query): the same reading as the embedded index's (date_math)."""
    for key, value in an_object(bounds, path).items():
        if key in ("gt", "gte", "lt", "lte", "from", "to") and value is not None:
            date_bound(value, False, f"{path}.{key}", bounds)
    check_options(bounds, path)


class ClusterFields:
    """A front end's field names (after ``service.field_aliases``) onto the product index's, by use.

    ``exact`` (term, terms): brand, category and attributes onto the normalised
    filter keys, so a term filter decides as the product's ``Filters`` do
    (case-insensitive; a category is a path prefix). ``keyword``
    (aggregations, sorts, collapse): onto the facet keywords; a text field is
    a 501 there. ``text`` (match, prefix, wildcard, exists, ``fields`` lists):
    the text fields as they are, keyword names (``brand.keyword``) onto the
    facet keywords.
    """

    def __init__(
        self,
        cluster: ClusterRetriever,
        aliases: Mapping[str, str] | None = None,
        spell: Spell | None = None,
    ):
        self.engine = cluster.engine
        self.searched = [f"{name}^{boost:g}" for name, boost in cluster.settings.searched_fields().items()]
        self.known = index_fields(cluster.settings.mapping_version)
        self.served = cluster.holds
        """The served index's own fields, asked only for a field that not every index holds (the whole
        category path), so a search that names none sends the cluster nothing more."""
        self.catalog = lambda: cluster.catalog
        """The catalog fields the served index maps, read from its mapping once, when a name is none of the
        product's own fields."""
        self.aliases = aliases or {}
        """``service.field_aliases``: the body is renamed before it comes here, but not the field names inside a
        ``query_string``'s text, which are mapped where the text is read (:meth:`_string_query`)."""
        self.codes = cluster.codes
        """A text's model codes to look up, where ``lexical.model_codes`` is on (in an index without code fields
        they match nothing)."""
        self.spell = spell
        """A text's misspelt words' readings, by the word as typed (:meth:`.ClusterRetriever.spellings` behind the
        lexical leg's guard, :func:`guarded_spellings`); None: words as typed (``lexical.correct_typos`` off)."""
        self._spelt: dict[str, tuple[Mapping[str, QueryWord], str | None]] = {}
        """Each text's readings, asked once per body (Search UI sends the same text in two clauses)."""
        self._read_apart: dict[str, Mapping[str, QueryWord]] = {}
        """Each word of a ``query_string`` read word by word, with its readings from the one question about all
        its words (:meth:`read_here`): asked apart, each word of the last was a question more, past the body's."""
        self.unmapped_at: list[int] = []
        """The places in the body's sort of the keys left out, on fields the index does not hold (:meth:`sort`)."""
        self.remembered = cluster.remembered
        self.asks_left = MAX_BODY_SPELLING_ASKS
        """Texts whose readings this body may still ask the cluster for (:meth:`spelt`)."""
        self.typed_words = cluster.typed_words
        self.tie_breaker = cluster.settings.tie_breaker
        self.looked_up: dict[str, set[str]] = {}
        """The model codes the query being translated (:meth:`marking`) looks up but in a ``must_not``, in order,
        each with the text fields it is looked up in: the page's highlights mark where each hit writes them in those
        fields (:meth:`DelegatedSearch.code_phrases`), as a field the clause did not search is not marked."""
        self.highlight_codes: dict[str | None, dict[str, set[str]]] = {}
        """The model codes a highlight's own ``highlight_query`` looks up (as :attr:`looked_up`), by the field whose
        query it is (None: the highlight's), which the page's highlights mark too."""
        self.terms_left = MAX_BODY_ADDED_TERMS
        """Term queries the codes and readings of this body's full-text queries may still add
        (:meth:`with_readings`)."""

    def resolve(self, name: Any, use: str, path: str) -> Field:
        if not isinstance(name, str):
            raise InvalidQuery(path, "expected a field name")
        own = self._catalog_field(name) if self._index_own(name) else None
        if own is not None:
            # The shop's own field before the index's own of that name: a catalogue's "popularity" column is what
            # its front end sorts by, not the service's popularity signal, as on the embedded index.
            return Field(own)
        base = name.removesuffix(".keyword")
        if name in ("_id", "id") or name in NUMERIC or _LEVEL.fullmatch(name):
            return Field(name)
        if base in ("brand", "facet.brand"):
            if use == EXACT:
                return Field("filter.brand", lambda v: normalise_term(str(v)))
            return Field("brand" if use == TEXT and name == "brand" else "facet.brand")
        if base == "category" and use == EXACT:
            return Field("filter.category_path", _category)
        if name in ("category.keyword", WHOLE_CATEGORY):
            if self.served(WHOLE_CATEGORY):
                return Field(WHOLE_CATEGORY)
            if use == KEYWORD:
                raise Unsupported(
                    path,
                    f"field {name!r}: the served index holds the category path per level only "
                    "(facet.category.lvl<n>); an index written by `search-rerank reindex` of this version "
                    "holds the whole path too",
                )
        if name == TITLE_KEYWORD:
            if use == TEXT:
                return Field("title")  # words typed into a match are the title's words, as before it had a keyword
            if self.served(TITLE_KEYWORD):
                return Field(TITLE_KEYWORD)
            raise Unsupported(
                path,
                f"field {name!r}: the served index was written before the title had a keyword (mapping version "
                "2); an index written by `search-rerank reindex` of this version holds it",
            )
        if name in LEXICAL_FIELDS and use == TEXT:
            return Field(name)
        attribute = _ATTRIBUTE.fullmatch(name)
        if attribute is not None:
            key = attribute.group(1).lower()
            if use == EXACT:
                return Field("filter.attribute", lambda v: attribute_key(key, str(v)), attribute=key)
            return Field(f"{ATTRIBUTES_PATH}.value", attribute=key)
        if name in LEXICAL_FIELDS and use == EXACT:
            return Field(name)  # a term on a text field: its analysed tokens, as in Elasticsearch
        if name in self.known and not name.startswith(ATTRIBUTES_PATH) and name not in ("facet", "filter"):
            if use != TEXT and name in LEXICAL_FIELDS:
                raise Unsupported(path, f"field {name!r} is text: sort or aggregate on a keyword field")
            return Field(name)
        if name.startswith(f"{ATTRIBUTES_PATH}."):
            return Field(name)
        if use == TEXT and name.partition(".")[0] in LEXICAL_FIELDS:
            # A front end's analyser sub-field (``title.search``, ``title.autosuggest``): the words of the field.
            return Field(name.partition(".")[0])
        own = self._catalog_field(name)
        if own is not None:
            return Field(own)
        raise Unsupported(
            path,
            f"field {name!r} is not in the index (its fields: id, {', '.join(LEXICAL_FIELDS)}, "
            f"brand.keyword, attributes.<name>, {', '.join(NUMERIC)}, facet.category.lvl<n>; "
            "service.field_aliases maps a front end's names onto them)",
        )

    def indexed(self, name: str, where: str) -> IndexedField:
        """Where a ``docvalue_fields`` name's values are in what the index holds for a product (see hit_fields)."""
        name = alias_of(name, self.aliases)
        if name in LEXICAL_FIELDS:
            raise text_field(name, where)
        found = self.resolve(name, KEYWORD, where)
        if found.attribute is not None:
            return IndexedField(ATTRIBUTE_VALUES, attribute=found.attribute)
        if found.name.startswith(f"{CATALOG}."):
            return IndexedField(found.name.removeprefix(f"{CATALOG}."), catalog=True)
        return IndexedField(found.name)

    def _index_own(self, name: str) -> bool:
        """Whether ``name`` is a field of the index's own at its top level that is no field of the product
        (``popularity``): a catalogue may have one of that name. Other names (``facet.brand``) are read without
        the catalogue's fields, which the cluster is asked for once, and a frozen cluster would hold."""
        return name in self.known and "." not in name and name not in Product.model_fields

    def _catalog_field(self, name: str) -> str | None:
        """The catalog's own field ``name`` names (``CatalogFields.named``), as the served index maps it under
        ``catalog`` (core/catalog_fields.py)."""
        own = self.catalog().named(name)
        return None if own is None else f"{CATALOG}.{own}"

    def text_fields(self, names: Any, path: str) -> list[str]:
        """A ``fields`` list (``title^2``, wildcards) on the index's text fields; none or ``*``: the searched ones."""
        if names in (None, [], "*", ["*"]):
            return list(self.searched)
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list):
            raise InvalidQuery(path, "expected a list of field names")
        out: list[str] = []
        for i, raw in enumerate(names):
            if not isinstance(raw, str):
                raise InvalidQuery(f"{path}[{i}]", "expected a field name")
            name, caret, boost = raw.partition("^")
            if "*" in name:
                out += [f"{f}{caret}{boost}" for f in text_fields_matching(name, self.aliases)]
                continue
            resolved = self.resolve(name, TEXT, f"{path}[{i}]")
            if resolved.attribute is not None:
                resolved = Field("attributes")  # one attribute's words are in the attributes text
            out.append(f"{resolved.name}{caret}{boost}")
        return out or list(self.searched)

    # ------------------------------------------------------------ queries

    def query(self, query: Any, path: str) -> dict[str, Any]:
        """``query`` with every field name on the index; :class:`Unsupported` for what it cannot say."""
        kind, spec = single_key(query, path)
        where = f"{path}.{kind}"
        if kind not in QUERY_TYPES:
            raise Unsupported(where, f"query type {kind!r}")
        fuzzy_counts(kind, spec, where)
        if kind in ("match_all", "match_none", "ids"):
            return {kind: spec}
        if kind in MATCH_QUERIES | MULTI_FIELD_QUERIES | STRING_QUERIES | {"common"}:
            spec = _without_analyzers(spec)
        if kind == "bool":
            spec = an_object(spec, where)
            out = {k: v for k, v in spec.items() if k not in ("must", "filter", "should", "must_not")}
            for key in ("must", "filter", "should", "must_not"):
                if key not in spec:
                    continue
                clauses = clause_list(spec[key])
                out[key] = self.unmarked(
                    lambda: [self.query(c, f"{where}.{key}[{i}]") for i, c in enumerate(clauses)], key == "must_not"
                )
            return {kind: out}
        if kind == "pinned":
            # What it matches, its ids or its organic query, on every engine (OpenSearch has no pinned query):
            # the pipeline ranks, and the pinned products are put first after (see serving.pinned).
            spec = an_object(spec, where)
            ids, organic_query = pinned_query(spec, where)
            organic = self.query(organic_query, f"{where}.organic")
            return (
                {"bool": {"should": [{"ids": {"values": ids}}, organic], "minimum_should_match": 1}} if ids else organic
            )
        if kind in ("constant_score", "function_score", "boosting", "dis_max", "nested"):
            return {kind: self._compound(kind, an_object(spec, where), where)}
        if kind == "exists":
            name = an_object(spec, where).get("field")
            resolved = self.resolve(name, TEXT, f"{where}.field")
            if resolved.attribute is not None:
                return _nested_key(resolved.attribute)
            if resolved.name == "attributes":
                return {"nested": {"path": ATTRIBUTES_PATH, "query": {"exists": {"field": f"{ATTRIBUTES_PATH}.key"}}}}
            return {kind: {**spec, "field": HELD_WHERE_PRESENT.get(resolved.name, resolved.name)}}
        if kind in MULTI_FIELD_QUERIES:
            spec = dict(an_object(spec, where))
            a_string(spec.get("query"), f"{where}.query", scalars=True)
            spec["fields"] = self.text_fields(spec.get("fields"), f"{where}.fields")
            asking = functools.partial(_asking, kind, spec, "query")
            return self.with_readings({kind: spec}, spec.get("query"), spec["fields"], spec.get("boost"), asking)
        if kind in STRING_QUERIES:
            return self._string_query(kind, an_object(spec, where), where)
        return self._leaf(kind, spec, where)

    def with_readings(
        self, query: dict[str, Any], text: Any, fields: list[str], boost: Any, asking: Callable[[str], dict[str, Any]]
    ) -> dict[str, Any]:
        """``query`` (a full-text query of ``text`` on ``fields``, ``name^boost``, at ``boost``), with what else its
        words are searched as in those text fields: its model codes (``lexical.model_codes``: "dw745b" and "dw
        745b" find "DW745-B", :meth:`code_alternatives`) and its misspelt words' readings (``lexical.correct_typos``:
        "toliet" finds "toilet", :meth:`spelling_alternatives`; not where the query says its own ``fuzziness``), as
        the embedded index and the service's own lexical leg search them. What they add constrains nothing the
        dense leg is held to (:func:`constraints`).

        A code stands for the words it spans and a reading for the word it corrects, so in a query that needs more
        than any one word (:func:`needs`) neither is an alternative alone, or "dw745b router" in a filter, or a
        ``must_not`` phrase, would match every DW745-B: with ``operator: and`` each goes with the same query of
        the text it leaves (``asking`` that text: Search UI's "dw745b table saw") as a filter, so that the encoder
        reads those words once (:func:`query_words`); in a phrase or under ``minimum_should_match``, whose words
        cannot be asked apart, only a whole text that is one code or one misspelt word ("dw 745b", "toliet"). A
        boost that is no number is left for the cluster to refuse, and a negative one (which a term query refuses
        where a ``multi_match`` field may take it) goes as it came. Past :data:`MAX_BODY_ADDED_TERMS` in one body,
        a query goes as it came (under ``operator: and``, with what fits)."""
        if not isinstance(text, str):
            return query
        try:
            scale = 1.0 if boost is None else float(boost)
            boosts = {
                name: scale * (float(weight) if weight else 1.0)
                for name, _, weight in (entry.partition("^") for entry in fields)
                if name in LEXICAL_FIELDS
            }
        except (TypeError, ValueError):
            return query
        if not boosts or min(boosts.values()) < 0:
            return query
        words = len(self.typed_words(text))
        asked = needs(query, words)
        codes = self.codes(text)
        # The cluster is asked only where a reading could be added: not for a keyword field, nor for a phrase of
        # several words, nor beside the query's own fuzziness.
        readable = not _fuzzy_options(query) and (asked != IN_ORDER or words == 1)
        spelt = self.spelt(text, _typing(query)) if readable else {}
        if not codes and not spelt:
            return query
        kind = next(iter(query))
        apart = kind in MULTI_FIELD_QUERIES and not _across(query) and len(boosts) > 1
        groups = [{name: weight} for name, weight in boosts.items()] if apart else [boosts]

        def asking_in(rest: str, group: Mapping[str, float]) -> dict[str, Any]:
            # Under best_fields every word must be in one field (Elasticsearch's rule): the other words in the
            # group's fields only, as the code or reading is.
            asked_for = asking(rest)
            if not apart:
                return asked_for
            return {kind: {**asked_for[kind], "fields": [f for f in fields if f.partition("^")[0] in group]}}

        found = self.code_alternatives(text, codes, boosts, asked, fields, asking_in, groups) if codes else []
        read = self.spelling_alternatives(text, spelt, boosts, asked, fields, asking_in, groups) if spelt else []
        if asked == ANY_WORD:
            # A code is its words (the better of the two counts); a reading is a word the query's own words miss.
            coded = {"dis_max": {"queries": [query, *found]}} if found else query
            return {"bool": {"should": [coded, *read]}} if read else coded
        alternatives = [*found, *read]
        return {"dis_max": {"queries": [query, *alternatives]}} if alternatives else query

    def spelt(self, text: str, typing: bool) -> Mapping[str, QueryWord]:
        """``text``'s misspelt words' readings (:attr:`spell`), asked once per text (Search UI's phrase_prefix
        clause shares its every-word clause's answer) and of at most :data:`MAX_BODY_SPELLING_ASKS` texts per body;
        ``typing`` (a prefix query), without its last word where that starts a word the index holds."""
        if self.spell is None:
            return {}
        if not typing and text in self._read_apart:
            return self._read_apart[text]
        if text not in self._spelt:
            asks = self.remembered(text, True) is None
            if asks and not self.asks_left:
                return {}  # past the body's questions: as typed (not kept, the question may be answered after all)
            self.asks_left -= asks
            self._spelt[text] = self.spell(text)
        readings, begun = self._spelt[text]
        return {word: read for word, read in readings.items() if word != begun} if typing else readings

    def code_alternatives(
        self,
        text: str,
        codes: list[str],
        boosts: dict[str, float],
        asked: str,
        fields: list[str],
        asking: Callable[[str, Mapping[str, float]], dict[str, Any]],
        groups: list[dict[str, float]],
    ) -> list[dict[str, Any]]:
        """The ways ``text``'s model ``codes`` match beside its words (:meth:`with_readings`): where any word will
        do, one lookup of them all; else each code of fewest pieces first ("dw745b" before "dewaltdw745b", which a
        sentence's spans also join), with the query of the other words where every word is needed (in each of
        ``groups`` of fields, the fields every word must be in together), while the body's bound allows it (its
        terms, and the words of its query of the other words in each field)."""
        if asked == ANY_WORD:
            terms = len(codes) * len(boosts)  # a code in a field is one
            if terms > self.terms_left:
                return []
            self.terms_left -= terms
            self.look_up(codes, boosts)
            return [code_lookup(codes, boosts, self.tie_breaker)]
        rests = code_rests(text)
        words = len(PIECE.findall(text))
        alternatives = []
        for c in sorted(codes, key=lambda c: words - len(PIECE.findall(rests[c]))):
            rest = len(PIECE.findall(rests[c]))
            if rest and asked == IN_ORDER:
                continue
            cost = len(boosts) + rest * len(fields)
            if cost > self.terms_left:
                break
            self.terms_left -= cost
            self.look_up([c], boosts)
            if not rest:
                alternatives.append(code_lookup([c], boosts, self.tie_breaker))
                continue
            alternatives += [
                {"bool": {"must": [code_lookup([c], group, self.tie_breaker)], "filter": [asking(rests[c], group)]}}
                for group in groups
            ]
        return alternatives

    def marking(self, query: Any, path: str) -> tuple[dict[str, Any], dict[str, set[str]]]:
        """:meth:`query`, and the model codes it looks up (as :attr:`looked_up`): what a highlight of it marks,
        which a query translated beside it (a post_filter's, an aggregation's) does not."""
        kept, self.looked_up = self.looked_up, {}
        try:
            translated = self.query(query, path)
            return translated, self.looked_up
        finally:
            self.looked_up = kept

    def unmarked(self, translate: Callable[[], T], prohibited: bool) -> T:
        """``translate()``; where it translates what a hit must not match (``prohibited``: a ``must_not``, a
        query_string's ``-word``), no highlight marks the model codes it looks up."""
        if not prohibited:
            return translate()
        marked = {c: set(fields) for c, fields in self.looked_up.items()}
        translated = translate()
        self.looked_up = marked
        return translated

    def look_up(self, codes: list[str], fields: Mapping[str, float]) -> None:
        """Note that ``codes`` are looked up in ``fields`` (:attr:`looked_up`)."""
        for c in codes:
            self.looked_up.setdefault(c, set()).update(fields)

    def spelling_alternatives(
        self,
        text: str,
        spelt: Mapping[str, QueryWord],
        boosts: dict[str, float],
        asked: str,
        fields: list[str],
        asking: Callable[[str, Mapping[str, float]], dict[str, Any]],
        groups: list[dict[str, float]],
    ) -> list[dict[str, Any]]:
        """The ways ``text``'s misspelt words match by their readings (:meth:`with_readings`): each word as the best
        of its terms in the text fields, at the field's boost times the reading's weight; where any word will do,
        each an optional clause beside the query; where every word is needed, all of them with the query of the
        other words as a filter (in each of ``groups`` of fields, the fields every word must be in together); in a
        phrase, only a text that is one misspelt word. Within the body's bound, or none."""
        readings = reading_lookup(spelt.values(), boosts)
        rest = text
        for typed in spelt:
            rest = re.sub(rf"(?<!\w){re.escape(typed)}(?!\w)", " ", rest, flags=re.IGNORECASE)
        others = len(PIECE.findall(rest)) if asked != ANY_WORD else 0
        if asked == IN_ORDER and (others or len(readings) > 1):
            return []
        cost = sum(len(word.searched_as) for word in spelt.values()) * len(boosts) + others * len(fields)
        if cost > self.terms_left:
            return []
        self.terms_left -= cost
        if asked == ANY_WORD:
            return readings
        if others:
            return [
                {"bool": {"must": reading_lookup(spelt.values(), group), "filter": [asking(rest, group)]}}
                for group in groups
            ]
        return [readings[0] if len(readings) == 1 else {"bool": {"must": readings}}]

    def _compound(self, kind: str, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
        out = dict(spec)
        for key in ("filter", "query", "positive", "negative"):
            if key in spec:
                out[key] = self.query(spec[key], f"{where}.{key}")
        if kind == "dis_max":
            queries = clause_list(spec.get("queries"))
            out["queries"] = [self.query(c, f"{where}.queries[{i}]") for i, c in enumerate(queries)]
        if kind == "nested" and spec.get("path") != ATTRIBUTES_PATH:
            raise Unsupported(f"{where}.path", f"nested path {spec.get('path')!r} (the index nests {ATTRIBUTES_PATH})")
        if kind == "function_score":
            functions = []
            for i, function in enumerate(clause_list(spec.get("functions"))):
                function = dict(an_object(function, f"{where}.functions[{i}]"))
                # Checked as on the embedded backend: osmem-server dropped the connection on a weight of "NaN",
                # which counted as the cluster failing.
                if "weight" in function:
                    a_number(function["weight"], f"{where}.functions[{i}].weight")
                for script in ("script_score", "field_value_factor", *DECAY):
                    if script in function:
                        at = f"{where}.functions[{i}].{script}"
                        function[script] = self._function_fields(script, function[script], at)
                if "filter" in function:
                    function["filter"] = self.query(function_filter(function), f"{where}.functions[{i}].filter")
                functions.append(function)
            if "functions" in spec:
                out["functions"] = functions
            if "weight" in spec:
                a_number(spec["weight"], f"{where}.weight")
            for script in ("script_score", "field_value_factor", *DECAY):
                if script in spec:
                    out[script] = self._function_fields(script, spec[script], f"{where}.{script}")
        return out

    def _function_fields(self, kind: str, spec: Any, path: str) -> dict[str, Any]:
        """A score function with the fields it reads by name mapped onto the index's: the product's numbers as they
        are, a catalog's own number or date where the index holds it (ElasticPress's decay by post date, wrapped
        around every search)."""
        if kind == "script_score":
            raise Unsupported(path, "scripts (they read the index's fields by name, which this service maps)")
        spec = an_object(spec, path)

        def mapped(name: Any) -> str:
            name = alias_of(name, self.aliases) if isinstance(name, str) else name
            own = (
                self._catalog_field(name)
                if isinstance(name, str) and (name not in NUMERIC or self._index_own(name))
                else None
            )
            if name not in NUMERIC and own is None:
                numbers = ", ".join(NUMERIC)
                raise Unsupported(path, f"a score function on {name!r} (numbers: {numbers}, and the catalog's own)")
            return own or name

        if kind == "field_value_factor":
            if spec.get("field") is None:
                raise InvalidQuery(f"{path}.field", "required")
            return {**spec, "field": mapped(spec["field"])}
        return {mapped(k) if k != "multi_value_mode" else k: v for k, v in spec.items()}

    def _leaf(self, kind: str, spec: Any, where: str) -> dict[str, Any]:
        if kind in MATCH_QUERIES:
            name, value = _field_key(spec, where)
            resolved = self.resolve(name, TEXT, f"{where}.{name}")
            if resolved.attribute is not None:
                resolved = Field("attributes")  # one attribute's words are in the attributes text
            sent = {kind: {**{k: v for k, v in spec.items() if k in OPTIONS}, resolved.name: value}}
            options = value if isinstance(value, Mapping) else {"query": value}
            # Checked here as on the embedded backend: OpenSearch fails a list of words with a 500.
            a_string(options.get("query"), f"{where}.{name}.query", scalars=True)
            asking = functools.partial(_asking, kind, {**sent[kind], resolved.name: options}, resolved.name)
            return self.with_readings(sent, options.get("query"), [resolved.name], options.get("boost"), asking)
        name, value = _field_key(spec, where)
        if kind in ("term", "terms") and name == "category":
            return self._category_words(kind, spec, name, value, where)
        # prefix, wildcard...: a text field matches by token, a keyword (title.keyword) by its whole value, as typed.
        use = EXACT if kind in ("term", "terms") else KEYWORD if name == TITLE_KEYWORD else TEXT
        if kind == "range":
            own = self._catalog_field(name)
            if own is not None:
                if self.catalog().type_of(own.removeprefix(f"{CATALOG}.")) == "date":
                    _date_bounds(spec[name], f"{where}.{name}")
                return {kind: {**{k: v for k, v in spec.items() if k != name}, own: spec[name]}}
            if name not in NUMERIC and not (name in ("_id", "id") or _LEVEL.fullmatch(name)):
                raise Unsupported(f"{where}.{name}", f"a range on {name!r} (ranges: {', '.join(NUMERIC)}, dates)")
            return {kind: dict(spec)}
        resolved = self.resolve(name, use, f"{where}.{name}")
        options = {k: v for k, v in spec.items() if k != name}
        if resolved.attribute is not None and use != EXACT:
            raise Unsupported(f"{where}.{name}", f"a {kind} query on an attribute (term or terms only)")
        if kind == "term":
            inner = value.get("value") if isinstance(value, Mapping) else value
            mapped = resolved.value(inner) if resolved.value is not None else inner
            if isinstance(value, Mapping):
                return {kind: {**options, resolved.name: {**value, "value": mapped}}}
            return {kind: {**options, resolved.name: mapped}}
        if kind == "terms":
            value = _terms_values(value, f"{where}.{name}")
            values = [resolved.value(v) for v in value] if resolved.value is not None else value
            return {kind: {**options, resolved.name: values}}
        return {kind: {**options, resolved.name: value}}

    def _category_words(self, kind: str, spec: Mapping[str, Any], name: str, value: Any, where: str) -> dict[str, Any]:
        """A ``term``/``terms`` on ``category``, the product's text field (not ``category.keyword``, a path): each
        value's words all in the category path, as the embedded index reads a term on a text field. A level's name
        (BitBag's Sylius taxon filter sends ``product_taxons: ["sofas"]``) or a whole path both match; as a path
        alone, "sofas" matched nothing on a cluster while the embedded index found the sofas."""
        options = {k: v for k, v in spec.items() if k != name}
        if kind == "term":
            if isinstance(value, Mapping):
                options = {**options, **{k: v for k, v in value.items() if k != "value"}}
                value = value.get("value")
            values = [value]
        else:
            values = _terms_values(value, f"{where}.{name}")
        words = [{"match": {name: {"query": a_keyword(v, f"{where}.{name}"), "operator": "and"}}} for v in values]
        return {"bool": {"should": words, "minimum_should_match": 1, **options}}

    def _string_query(self, kind: str, spec: Mapping[str, Any], where: str) -> dict[str, Any]:
        """As sent when it names only fields the index holds as they are; otherwise, or when it excludes
        something (``sofa -grey``), the text is parsed and sent as the same query in Query DSL on the index's
        fields, where the exclusion is a ``must_not`` that the dense leg is held to as well (:func:`constraints`)."""
        text = spec.get("query")
        if not isinstance(text, str):
            raise InvalidQuery(f"{where}.query", "expected a string")
        defaults = self.text_fields(spec.get("fields", spec.get("default_field")), f"{where}.fields")
        sent = {k: v for k, v in spec.items() if k != "default_field"}
        sent["fields"] = defaults

        def wordless(word: query_string.Word) -> bool:
            """A word on text fields that the index's analyser leaves nothing of (see :func:`leaves_no_words`)."""
            field = alias_of(word.field, self.aliases) if word.field is not None else None
            fuzzy = word.tilde is not None and not word.phrase  # matched as typed
            return (field is None or field in LEXICAL_FIELDS) and not fuzzy and leaves_no_words(word.text)

        operator = str(spec.get("default_operator", "or"))
        try:
            tree = query_string.parse(
                text,
                operator,
                simple=kind != "query_string",
                wordless=wordless,
                flags=query_string.flags_of(kind, spec, where),
            )
        except query_string.QuerySyntaxError as exc:
            raise InvalidQuery(f"{where}.query", str(exc)) from None
        except query_string.SyntaxUnsupported:
            tree = None  # regular expressions, field:*: the cluster reads them, if the fields are the index's
        named = query_string.fields(tree) if tree is not None else set(re.findall(r"([\w.]+):", text))
        excludes = isinstance(tree, query_string.Group) and any(o == query_string.MUST_NOT for o, _ in tree.clauses)
        as_sent = all(name in LEXICAL_FIELDS or name in NUMERIC for name in named) and not excludes
        if as_sent and (tree is None or not self.read_here(tree, defaults, spec)):
            return {kind: sent}
        if tree is None:
            raise Unsupported(f"{where}.query", "regular expressions on fields the index names otherwise")
        option = _untranslated(spec)
        if option is not None:
            raise Unsupported(f"{where}.{option}", f"{option} {spec[option]!r} where the text is read here")
        out = self._tree(tree, defaults, spec, f"{where}.query")
        if "minimum_should_match" in spec and "bool" in out:
            # As Elasticsearch applies it: to the top clause of the parsed text when that is a boolean query.
            out["bool"]["minimum_should_match"] = spec["minimum_should_match"]
        if "boost" in spec:  # it weighs the text against the body's other clauses, as the query_string's own did
            out = {"bool": {"must": [out], "boost": spec["boost"]}}
        return out

    def read_here(self, tree: query_string.Node, defaults: list[str], spec: Mapping[str, Any]) -> bool:
        """Whether a ``query_string`` that could go as it came is read here instead, as Query DSL (:meth:`_tree`):
        where a word on text fields is a model code or a misspelt word (``lexical.model_codes``,
        ``lexical.correct_typos``), which the cluster's parser would search as typed, and its options let it be
        read here. Its words are asked about in one request to the cluster (a model code's text too, which is read
        here anyway), and each word's translation reads its readings from that answer (:attr:`_read_apart`)."""
        if _untranslated(spec) is not None:
            return False
        searched = [
            word.text
            for word in query_string.words(tree)
            if (word.tilde is None or word.phrase) and self._text_fields_of(word, defaults)
        ]
        joined = " ".join(searched)
        readings = self.spelt(joined, False) if searched else {}
        if joined in self._spelt:  # answered (not past the body's questions): each word's translation reads it
            for text in searched:
                self._read_apart[text] = {word: readings[word] for word in self.typed_words(text) if word in readings}
        return bool(readings) or any(self.codes(text) for text in searched)

    def kind_of(self, name: str) -> str | None:
        """A number field's type (the product's are doubles here), a catalog field's; None for another field."""
        own = self.catalog().named(name)
        return self.catalog().type_of(own) if own is not None else "double" if name in NUMERIC else None

    def of_words(self, fields: list[str]) -> list[str]:
        """``fields`` (``name^boost``) without those of numbers, dates or flags (the product's or the catalog's),
        which a lenient query leaves a fuzzy or a wildcard word out of: the cluster's parser refuses such a query
        on them otherwise."""
        # A name is the index's (a catalog field's under CATALOG) or, named in the query, the front end's.
        kinds = {name: self.kind_of(name.partition("^")[0].removeprefix(f"{CATALOG}.")) for name in fields}
        return [name for name in fields if kinds[name] in (None, "keyword")]

    def holds(self, name: str, value: str) -> bool:
        """Whether ``value`` may be one of the field's values: a number in a number field (the product's, or the
        catalog's own), a date in a date field; any in another. A lenient query leaves a field out of a word it
        cannot hold (:func:`.query_string.is_lenient`), where the cluster would refuse the word."""
        kind = self.kind_of(name)
        try:
            if kind in ("long", "double"):
                a_number(value, name)
            elif kind == "date":
                date_bound(value, False, name)
        except InvalidQuery:
            return False
        return True

    def _text_fields_of(self, word: query_string.Word, defaults: list[str]) -> list[str] | None:
        """The text fields a ``query_string`` word is searched in (the query's defaults where it names none), or
        None where it names a field of exact values."""
        field = alias_of(word.field, self.aliases) if word.field is not None else None
        return defaults if field is None else [field] if field in LEXICAL_FIELDS else None

    def _tree(
        self, node: query_string.Node, defaults: list[str], options: Mapping[str, Any], path: str
    ) -> dict[str, Any]:
        """A parsed ``query_string`` as Query DSL on the index's fields, its field names mapped by the aliases;
        each word and phrase with its readings, as a ``multi_match`` of it takes them (:meth:`with_readings`)."""
        if isinstance(node, query_string.Everything):
            return {"match_all": {}}
        lenient = query_string.is_lenient(options)
        if isinstance(node, query_string.Word):
            fields = self._text_fields_of(node, defaults)
            if fields is None:
                if node.tilde is not None:
                    raise Unsupported(path, f"~ on {node.field!r}, a field of another index")
                assert node.field is not None  # a word on the defaults is on text fields
                exact = alias_of(node.field, self.aliases)
                if lenient and not self.holds(exact, node.text):
                    return {"match_none": {}}
                return self.query({"term": {exact: node.text}}, path)
            if node.tilde is not None and not node.phrase:
                return _fuzzy(node.text, self.of_words(fields) if lenient else fields, node.tilde, options, path)
            spec: dict[str, Any] = {"query": node.text, "fields": fields, "type": "best_fields"}
            spec.update({option: options[option] for option in ("lenient", "tie_breaker") if option in options})
            if not node.phrase and str(options.get("default_operator", "or")).lower() == "and":
                spec["operator"] = "and"  # a term of several words ("corner-sofa") needs each, as Lucene reads it
            if node.phrase:
                spec.update(type="phrase", slop=_slop(node.tilde, options))
            asking = functools.partial(_asking, "multi_match", spec, "query")
            return self.with_readings({"multi_match": spec}, node.text, fields, None, asking)
        if isinstance(node, query_string.Wildcard):
            field = alias_of(node.field, self.aliases) if node.field is not None else None
            if field is not None and query_string.is_exists(node):
                return self.query({"exists": {"field": field}}, path)
            value = {"value": wildcards.lucene(node.pattern), "case_insensitive": True}  # as query_string normalises
            named = defaults if field is None else [field]
            each = [
                self.query({"wildcard": {name.partition("^")[0]: value}}, path)
                for name in (self.of_words(named) if lenient else named)
            ]
            return {"match_none": {}} if not each else each[0] if len(each) == 1 else {"bool": {"should": each}}
        if isinstance(node, query_string.Span):
            bounds = {
                ("gte" if node.include_low else "gt"): node.low,
                ("lte" if node.include_high else "lt"): node.high,
            }
            field = alias_of(node.field, self.aliases)
            given: dict[str, Any] = {k: v for k, v in bounds.items() if v is not None}
            if lenient and not all(self.holds(field, v) for v in given.values()):
                return {"match_none": {}}
            if options.get("time_zone") is not None and self.kind_of(field) == "date":
                given["time_zone"] = options["time_zone"]  # Kibana's search bar sends the browser's
            return self.query({"range": {field: given}}, path)
        out: dict[str, list[dict[str, Any]]] = {}
        for occur, child in node.clauses:
            translated = self.unmarked(
                lambda: self._tree(child, defaults, options, path), occur == query_string.MUST_NOT
            )
            out.setdefault(occur, []).append(translated)
        return {"bool": out}

    # ------------------------------------------------------------ the rest of a body

    def aggregations(self, aggs: Any, path: str) -> tuple[dict[str, Any], dict[str, Any]]:
        """The aggregations on the index's fields, and the plan :func:`unwrap` follows to answer them as asked."""
        out: dict[str, Any] = {}
        plan: dict[str, Any] = {}
        for name, spec in an_object(aggs, path).items():
            where = f"{path}.{name}"
            spec = an_object(spec, where)
            subs_key = next((k for k in ("aggs", "aggregations") if k in spec), None)
            kinds = [k for k in spec if k not in ("aggs", "aggregations", "meta")]
            if len(kinds) != 1:
                raise InvalidQuery(where, "expected one aggregation type")
            kind = kinds[0]
            body = an_object(spec[kind], f"{where}.{kind}")
            sub_out, sub_plan = self.aggregations(spec[subs_key], f"{where}.{subs_key}") if subs_key else ({}, {})
            wrapped = False
            missing: Mapping[str, Any] | None = None
            if kind == "filter":
                body = self.query(body, f"{where}.filter")
            elif kind in ("filters", "adjacency_matrix"):
                filters = body.get("filters")
                if isinstance(filters, Mapping):
                    body = {**body, "filters": {k: self.query(q, f"{where}.filters.{k}") for k, q in filters.items()}}
                else:
                    listed = clause_list(filters)
                    body = {**body, "filters": [self.query(q, f"{where}.filters[{i}]") for i, q in enumerate(listed)]}
            elif kind == "nested":
                if body.get("path") != ATTRIBUTES_PATH:
                    raise Unsupported(f"{where}.nested.path", f"nested path {body.get('path')!r}")
            elif kind not in ("global", "reverse_nested") and "field" in body:
                resolved = self.resolve(body["field"], KEYWORD, f"{where}.{kind}.field")
                body = {**body, "field": resolved.name}
                if resolved.attribute is not None:
                    # The values of its pairs under the attribute's key are its values: what a terms aggregation
                    # lists, a value count counts and a cardinality tells apart, as on a field of several values.
                    if kind not in ATTRIBUTE_VALUE_AGGREGATIONS or subs_key:
                        raise Unsupported(
                            f"{where}.{kind}",
                            "on an attribute: a terms aggregation without sub-aggregations, a value_count or a "
                            "cardinality",
                        )
                    if kind != "terms" and "missing" in body:
                        raise Unsupported(f"{where}.{kind}.missing", "a missing value on an attribute")
                    # The nested values cannot say which values are of this attribute where none is counted
                    # (min_doc_count 0 listed every attribute's values).
                    if body.get("min_doc_count") == 0:
                        raise Unsupported(f"{where}.{kind}.min_doc_count", "min_doc_count 0 on an attribute")
                    # Nor which products lack it: those with no pair of its key are counted beside the nested
                    # aggregation, and unwrap answers them as the bucket of the ``missing`` key (ReactiveSearch's
                    # lists with showMissing ask for one).
                    if body.get("missing") is not None:
                        out[MISSING_PREFIX + name] = {
                            "filter": {"bool": {"must_not": [_nested_key(resolved.attribute)]}}
                        }
                        # The missing key as the keyword Elasticsearch makes of it, and the size it cuts to.
                        missing = {
                            **body,
                            "missing": a_keyword(body["missing"], f"{where}.{kind}.missing"),
                            "size": a_count(body.get("size", 10), f"{where}.{kind}.size"),
                        }
                        body = {k: v for k, v in body.items() if k != "missing"}
                    wrapped = True
                    spec = {
                        "nested": {"path": ATTRIBUTES_PATH},
                        "aggs": {
                            WRAP_KEY: {
                                "filter": {"term": {f"{ATTRIBUTES_PATH}.key": resolved.attribute}},
                                "aggs": {WRAP_VALUES: {kind: body}},
                            }
                        },
                    }
            elif kind == "composite":
                body = {**body, "sources": self._sources(body.get("sources"), f"{where}.composite.sources")}
            elif kind == "weighted_avg":
                body = {**body, **self._parts(body, WEIGHTED_PARTS, f"{where}.{kind}")}
            elif kind in MODEL_AGGREGATIONS:
                raise Unsupported(f"{where}.{kind}", BODY_REFUSALS["inference_refused"])
            elif kind in UNMAPPED_AGGREGATIONS:
                raise Unsupported(f"{where}.{kind}", f"aggregation type {kind!r}")
            if "background_filter" in body:  # significant_terms: the set its terms are compared with
                body = {
                    **body,
                    "background_filter": self.query(body["background_filter"], f"{where}.{kind}.background_filter"),
                }
            if not wrapped:
                spec = {**{k: v for k, v in spec.items() if k == "meta"}, kind: body}
                if subs_key:
                    spec["aggs"] = sub_out
            out[name] = spec
            if wrapped or sub_plan:
                plan[name] = {"wrapped": wrapped, "missing": missing, "subs": sub_plan}
        return out, plan

    def _parts(self, body: Mapping[str, Any], parts: tuple[str, ...], path: str) -> dict[str, Any]:
        """An aggregation's ``parts`` that each name a field (a weighted_avg's value and weight), on the index's
        numbers."""
        out = {}
        for part in parts:
            spec = an_object(body.get(part), f"{path}.{part}")
            resolved = self.resolve(spec.get("field"), KEYWORD, f"{path}.{part}.field")
            if resolved.attribute is not None:
                raise Unsupported(f"{path}.{part}.field", "an attribute (several values per product)")
            out[part] = {**spec, "field": resolved.name}
        return out

    def _sources(self, sources: Any, path: str) -> list[dict[str, Any]]:
        """A composite aggregation's sources (ReactiveSearch's "load more" facets), each on the index's keyword."""
        out = []
        for i, source in enumerate(clause_list(sources)):
            name, spec = single_key(source, f"{path}[{i}]")
            kind, options = single_key(spec, f"{path}[{i}].{name}")
            options = an_object(options, f"{path}[{i}].{name}.{kind}")
            resolved = self.resolve(options.get("field"), KEYWORD, f"{path}[{i}].{name}.{kind}.field")
            if resolved.attribute is not None:
                raise Unsupported(f"{path}[{i}]", "a composite source on an attribute (use a terms aggregation)")
            out.append({name: {kind: {**options, "field": resolved.name}}})
        return out

    def sort(self, sort: Any) -> list[Any] | None:
        """The sort on the index's fields; None when it is relevance alone (``_score``, descending).

        A sort that relevance only leads (``_score``, then ``price``) is kept whole: the cluster orders a page
        without words by it, and its ``search_after`` values are one per key (see :func:`led_by_score`).
        """
        items = sort if isinstance(sort, list) else [] if sort is None else [sort]
        if not items:
            return None
        out: list[Any] = []
        for i, item in enumerate(items):
            path = f"sort[{i}]" if isinstance(sort, list) else "sort"
            if isinstance(item, str):
                name, order = item, None
            else:
                name, order = single_key(item, path)
            if name in ("_score", "_doc", "_shard_doc"):  # _shard_doc: a point in time's tiebreak, the cluster's own
                out.append(item)
                continue
            extra = set(order) - SORT_OPTIONS - {"nested"} if isinstance(order, Mapping) else set()
            if extra:
                raise Unsupported(path, f"sort options {sorted(extra)}")
            if isinstance(order, Mapping) and "nested" in order:
                nested_sort(name, order, path)  # the index holds a catalog's objects flattened: the field's values
                order = {k: v for k, v in order.items() if k != "nested"}
            unmapped = unmapped_sort_type(name, order, path)
            try:
                resolved = self.resolve(name, KEYWORD, path)
            except Unsupported:
                if unmapped is None:
                    raise
                # A field no product holds: it orders nothing (as embedded_search._sort_target says), and is not
                # sent, so that a name the service does not answer for never reaches the cluster's own fields.
                self.unmapped_at.append(i)
                continue
            if resolved.attribute is not None:
                raise Unsupported(path, "sorting by an attribute (several values per product)")
            out.append(resolved.name if order is None else {resolved.name: order})
        if not out:
            return None
        return None if len(out) == 1 and led_by_score(out) else out

    def highlight(self, spec: Any) -> tuple[dict[str, Any], dict[str, list[str]]]:
        """The highlight with its fields and queries on the index's names (keyword names onto their text), and
        the names asked for by the index's (:func:`~.field_aliases.rename_highlights` answers under them). A
        pattern (``*``) is the text fields it matches: as it came, the cluster would also answer the keywords a
        query matched that no front end names (``code.title`` for "dw745b", ``filter.brand`` for a brand)."""
        spec = dict(an_object(spec, HIGHLIGHT))
        fields = spec.get("fields", {})
        pairs = (
            fields.items()
            if isinstance(fields, Mapping)
            else [single_key(f, "highlight.fields") for f in clause_list(fields)]
        )
        mapped: dict[str, Any] = {}
        names: dict[str, list[str]] = {}
        for name, options in pairs:
            every = [f for f in LEXICAL_FIELDS if fnmatchcase(f, name)] if isinstance(name, str) and "*" in name else []
            for target in every:  # a pattern names the text fields, not the index's own keys (code.*, filter.*)
                mapped.setdefault(target, options)
                names.setdefault(target, [target])
            if every:
                continue
            base = name.removesuffix(".keyword")
            target = "attributes" if _ATTRIBUTE.fullmatch(name) else base if base in LEXICAL_FIELDS else name
            if isinstance(options, Mapping) and "highlight_query" in options:
                where = f"highlight.fields.{name}.highlight_query"
                translated, self.highlight_codes[target] = self.marking(options["highlight_query"], where)
                options = {**options, "highlight_query": translated}
            mapped[target] = options
            names.setdefault(target, []).append(name)
        spec["fields"] = mapped
        if "highlight_query" in spec:
            spec["highlight_query"], self.highlight_codes[None] = self.marking(
                spec["highlight_query"], "highlight.highlight_query"
            )
        return spec, names

    def suggest(self, spec: Any, limits: ServiceSettings) -> tuple[dict[str, Any] | None, list[Completion]]:
        """Term and phrase suggesters for the cluster, on the index's text fields, and the completion suggesters,
        which the product titles answer here (the index has no completion field; see ``completion``).

        Their values are checked first as the embedded backend checks them, each bad one a 400 naming it: OpenSearch
        (osmem-server) dropped the connection on a phrase suggester's negative ``size``, which counted as the cluster
        failing. What the embedded index cannot answer (a ``string_distance``, a ``pre_filter``) the cluster can:
        the checks stop at the first such option, and it is sent."""
        aliases = limits.field_aliases
        completions, rest = split_suggest(spec, aliases)
        with contextlib.suppress(Unsupported):
            parse_corrections(rest, aliases, limits)
        sent: dict[str, Any] = {}
        for name, suggester in rest.items():
            if name == "text":
                sent[name] = suggester
                continue
            kind = suggester_kind(suggester, f"suggest.{name}")
            options = dict(an_object(suggester[kind], f"suggest.{name}.{kind}"))
            # A front end's name for the text (Searchkick's ``name.suggest``), as the embedded index reads it.
            where = f"suggest.{name}.{kind}"
            options["field"] = self.words_of(suggester_field(options, where, aliases))
            generators = options.get("direct_generator")
            if isinstance(generators, list):
                options["direct_generator"] = [
                    {**g, "field": self.words_of(suggester_field(g, f"{where}.direct_generator[{i}]", aliases))}
                    if isinstance(g, Mapping)
                    else g
                    for i, g in enumerate(generators)
                ]
            sent[name] = {**suggester, kind: options}
        return sent or None, completions

    def words_of(self, field: str) -> str:
        """The field a suggester on text field ``field`` reads: its words unstemmed (``title.words``, mapping
        version 5), where the served index holds them, as the field a shop makes for suggestions; on an index
        written before, the field itself, whose terms are stems ("tabl" for "table"; "sofs", a stem of three
        letters, too short to be corrected) until a reindex."""
        return f"{field}.{WORDS}" if self.served(f"{field}.{WORDS}") else field


def led_by_score(sort: list[Any]) -> bool:
    """Whether a sort's first key is relevance, descending: a page with words is then the pipeline's ranking."""
    first = sort[0]
    name, order = (first, None) if isinstance(first, str) else next(iter(first.items()))
    if isinstance(order, Mapping):
        order = order.get("order")
    return name == "_score" and order in (None, "desc")


def _nested_key(key: str) -> dict[str, Any]:
    return {"nested": {"path": ATTRIBUTES_PATH, "query": {"term": {f"{ATTRIBUTES_PATH}.key": key}}}}


WORD = re.compile(r"[^\W_]+")
LONGEST_WORD = 39
"""The index's text analyser (index_mappings/products.v1.json: the standard tokenizer, words longer than this
dropped; no stop words) keeps a word of letters or digits of at most this length."""


def leaves_no_words(text: str) -> bool:
    """Whether the index's text analyser leaves no word of ``text`` ("&", "!!", a 40-letter run): Elasticsearch's
    query_string drops such a clause, where a match of it, sent in the Query DSL the text is rewritten into, would
    match nothing."""
    return all(len(word) > LONGEST_WORD for word in WORD.findall(text))


def _fuzzy(text: str, fields: list[str], tilde: str, options: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A ``query_string`` word with ``~`` as Lucene's parser reads it: the word lower-cased, not analysed (so not
    stemmed), within that many edits (a bare ``~``: the query's ``fuzziness``) of a word in any of ``fields``."""
    if tilde:
        edits = float(tilde)
        if not edits.is_integer():
            raise Unsupported(path, f"~{tilde}: a fuzzy similarity (give the number of edits, 0 to 2)")
        fuzziness: Any = min(2, int(edits))
    else:
        fuzziness = options.get("fuzziness", "AUTO")
    fuzzy = {"value": text.lower(), "fuzziness": fuzziness}
    for option, name in FUZZY_OPTIONS.items():
        if option in options:
            fuzzy[name] = options[option]
    queries = [{"fuzzy": {name.partition("^")[0]: fuzzy}} for name in fields]
    if not queries:  # a lenient query's word on number fields alone
        return {"match_none": {}}
    return queries[0] if len(queries) == 1 else {"dis_max": {"queries": queries}}


def _slop(tilde: str | None, options: Mapping[str, Any]) -> Any:
    """A phrase's slop: the number after its ``~``, else the query's ``phrase_slop`` (as Lucene's parser reads a
    bare ``~`` too)."""
    try:
        return query_string.saturated_int(tilde) if tilde else options.get("phrase_slop", 0)
    except ValueError:
        return options.get("phrase_slop", 0)


def unwrap(aggregations: dict[str, Any], plan: Mapping[str, Any], typed_keys: bool) -> None:
    """Answer attribute aggregations in the shape asked: the nested wrapper's inner result in its place.

    With ``typed_keys`` the cluster named each aggregation ``<type>#<name>``: the wrapper ``nested#<name>``,
    which is answered as its inner terms aggregation, ``sterms#<name>``.
    """
    for name, step in plan.items():
        found = _answered(aggregations, name, typed_keys)
        if found is None:
            continue
        key, result = found
        if step["wrapped"]:
            del aggregations[key]
            _, filtered = _answered(result, WRAP_KEY, typed_keys) or (WRAP_KEY, {})
            key, result = _answered(filtered, WRAP_VALUES, typed_keys) or (WRAP_VALUES, {})
            aggregations[key.removesuffix(WRAP_VALUES) + name] = result
        if step["missing"] is not None:
            _with_missing(result, step["missing"], aggregations, name, typed_keys)
        if not step["subs"] or not isinstance(result, dict):
            continue
        unwrap(result, step["subs"], typed_keys)
        buckets = result.get("buckets")
        for bucket in buckets.values() if isinstance(buckets, dict) else buckets or []:
            unwrap(bucket, step["subs"], typed_keys)


def _with_missing(
    result: dict[str, Any], spec: Mapping[str, Any], level: dict[str, Any], name: str, typed_keys: bool
) -> None:
    """An attribute's terms ``result`` with the products lacking it (counted in ``level`` beside it) as the bucket
    of the ``missing`` key, in the order and within the size asked, as Elasticsearch counts them: a value like the
    others, left out when no match lacks it."""
    key, lacking = _answered(level, MISSING_PREFIX + name, typed_keys) or ("", {})
    level.pop(key, None)
    if lacking.get("doc_count") and isinstance(result.get("buckets"), list):
        result["buckets"].append({"key": spec["missing"], "doc_count": lacking["doc_count"]})
        order_terms_buckets(result, spec, lambda bucket, by: None)


def _answered(level: Mapping[str, Any], name: str, typed_keys: bool) -> tuple[str, Any] | None:
    """The key and the result of aggregation ``name`` in the cluster's ``level`` of aggregations (or a bucket):
    under ``<type>#<name>`` with ``typed_keys`` (a type holds no ``#``), else under ``name``."""
    for key, value in level.items():
        if (key.partition("#")[2] if typed_keys else key) == name:
            return key, value
    return None


# ------------------------------------------------------------------ what a query asks


def query_words(query: Any) -> list[str]:
    """The words of the text clauses in scoring position (not ``filter``/``must_not``), for the encoder."""
    if not isinstance(query, Mapping) or len(query) != 1:
        return []
    kind, spec = next(iter(query.items()))
    if not isinstance(spec, Mapping):
        return []
    if kind in MATCH_QUERIES:
        name, value = next(((k, v) for k, v in spec.items() if k not in OPTIONS), (None, None))
        value = value.get("query") if isinstance(value, Mapping) else value
        return [str(value)] if isinstance(value, str | int | float) and not isinstance(value, bool) else []
    if kind in MULTI_FIELD_QUERIES:
        return [spec["query"]] if isinstance(spec.get("query"), str) else []
    if kind in STRING_QUERIES:
        text = spec.get("query")
        if not isinstance(text, str):
            return []
        try:
            flags = query_string.flags_of(kind, spec, kind)
            tree = query_string.parse(
                text, str(spec.get("default_operator", "or")), simple=kind != "query_string", flags=flags
            )
        except (query_string.QuerySyntaxError, query_string.SyntaxUnsupported, InvalidQuery):
            return [text]
        wanted = query_string.positive_text(tree, lambda name: name is None or name in LEXICAL_FIELDS)
        return [wanted] if wanted else []
    if kind == "bool":
        return [w for key in ("must", "should") for c in clause_list(spec.get(key)) for w in query_words(c)]
    inner = {"function_score": "query", "boosting": "positive", "nested": "query"}.get(kind)
    if inner is not None:
        return query_words(spec.get(inner))
    if kind == "dis_max":
        return [w for c in clause_list(spec.get("queries")) for w in query_words(c)]
    return []


def constraints(query: Any) -> list[dict[str, Any]]:
    """What every hit must match, text clauses left to the ranking: the dense leg's filter context.

    ``bool.filter`` and ``must_not`` as they are, the ``must`` clauses' own
    constraints, and alternatives (required ``should`` clauses, ``dis_max``
    queries) as one of their
    constraints (:func:`_any_of`); a text clause constrains nothing (the
    dense leg finds by meaning what the words may not say).
    """
    kind, spec = next(iter(query.items()))
    if kind == "bool":
        out = list(clause_list(spec.get("filter")))
        if clause_list(spec.get("must_not")):
            out.append({"bool": {"must_not": clause_list(spec["must_not"])}})
        for clause in clause_list(spec.get("must")):
            out += constraints(clause)
        should = clause_list(spec.get("should"))
        msm = spec.get("minimum_should_match")
        required = msm not in (None, 0, "0") or not (clause_list(spec.get("must")) or clause_list(spec.get("filter")))
        if should and required:
            out += _any_of(should, msm if msm is not None else 1)
        return out
    if kind == "dis_max":
        return _any_of(clause_list(spec.get("queries")))
    if kind in MATCH_QUERIES | MULTI_FIELD_QUERIES | STRING_QUERIES | {"match_all", "common"}:
        return []
    if kind == "constant_score":
        return [spec["filter"]] if spec.get("filter") is not None else []
    if kind in ("function_score", "boosting"):
        inner = spec.get("query" if kind == "function_score" else "positive")
        return constraints(inner) if inner is not None else []
    if kind == "nested" and query_words(query):
        return []
    return [query]


def _any_of(alternatives: list[Any], minimum: Any = 1) -> list[dict[str, Any]]:
    """What a hit matching ``minimum`` (a ``minimum_should_match``) of ``alternatives`` must match: as many of
    their constraints.

    Each alternative implies its own constraints, so the same count of them
    holds; an alternative that constrains nothing (a text clause) counts as
    met, since the dense leg finds by meaning what the words may not say: one
    such alternative leaves the hit free when one is needed, and with two of
    three needed (a text clause and two filters), one filter must still hold.
    The cluster counts ``minimum`` as it counts the client's own (percentages,
    more than there are), and a filter inside a text alternative
    (``pinned.organic``, a ``dis_max`` query) still holds the dense leg.
    """
    held = [constraints(c) for c in alternatives]
    if not held or (minimum in (1, "1") and not all(held)):
        return []
    either: list[dict[str, Any]] = [
        {"match_all": {}} if not h else h[0] if len(h) == 1 else {"bool": {"filter": h}} for h in held
    ]
    return [{"bool": {"should": either, "minimum_should_match": minimum}}]


# ------------------------------------------------------------------ legs


class DelegatedLeg:
    """The lexical leg as the client's own query: the cluster's top ``k`` for it, and its exact total."""

    name = LEXICAL

    def __init__(
        self,
        cluster: ClusterRetriever,
        query: dict[str, Any],
        post_filter: dict[str, Any] | None,
        track: Any,
        typed_keys: bool = False,
        min_score: float | None = None,
    ):
        self.cluster = cluster
        self.query = query
        self.post_filter = post_filter
        self.track = track
        self.typed_keys = typed_keys
        """Whether the aggregations are asked for under their types' names (the client's ``?typed_keys``)."""
        self.min_score = min_score
        """The least score of a match (a standard retriever's ``min_score``): the cluster leaves out, counts and
        aggregates none below it."""
        self.answered = False
        """Whether the cluster answered the search (a leg cut off or failed has no matches to go on with)."""
        self.total: dict[str, Any] | None = None
        """The cluster's ``hits.total`` for the query and post filter, once searched; None too when the client
        asked for none (``track_total_hits: false``)."""
        self.refused: str | None = None
        """The cluster's reason when it refused the query as malformed (its 400): the request's fault, not a
        leg to degrade."""

    def search(self, text: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        body: dict[str, Any] = {
            "query": self.query,
            "size": k,
            "sort": LEG_SORT,
            "track_scores": True,
            "track_total_hits": self.track,
            "_source": False,
        }
        if self.post_filter is not None:
            body["post_filter"] = self.post_filter
        if self.min_score is not None:
            body["min_score"] = self.min_score
        try:
            response = self.cluster.run_search(body)
        except StageError as exc:
            self.refused = malformed(self.cluster, exc)
            raise
        self.answered = True
        self.total = response["hits"].get("total")
        return leg_candidates(LEXICAL, [(hit["_id"], hit.get("_score") or 0.0) for hit in response["hits"]["hits"]])

    def aggregate(self, aggs: dict[str, Any], text: str = "", filters: Filters | None = None) -> dict[str, Any]:
        """The aggregations over what the client's query matches (Elasticsearch leaves the post filter out)."""
        body = {"query": self.query, "size": 0, "aggs": aggs, "track_total_hits": False}
        if self.min_score is not None:
            body["min_score"] = self.min_score
        options = {"typed_keys": True} if self.typed_keys else {}
        return self.cluster.run_search(body, "aggregate", **options).get("aggregations", {})

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cluster, name)


def admitted(cluster: ClusterRetriever, ids: list[str], clauses: list[dict[str, Any]]) -> set[str]:
    """Which of ``ids`` match every clause, in one ``ids`` + filter request."""
    if not ids:
        return set()
    body = {
        "query": {"bool": {"filter": [{"ids": {"values": ids}}, *clauses]}},
        "size": len(ids),
        "_source": False,
        "track_total_hits": False,
    }
    return {hit["_id"] for hit in cluster.run_search(body, "filter check")["hits"]["hits"]}


class FilteredDenseLeg:
    """The dense leg held to the client's filter context: engine kNN filters inside the search,
    other legs' candidates are checked against the cluster, so no dense hit breaks a filter."""

    name = DENSE

    def __init__(
        self,
        leg: Retriever,
        cluster: ClusterRetriever,
        clauses: list[dict[str, Any]],
    ):
        self.leg = leg
        self.cluster = cluster
        self.clauses = clauses

    def search(self, text: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        return self._filtered(text, None, k, filters)

    def search_vector(
        self, vector: np.ndarray | list[float], k: int, filters: Filters | None = None
    ) -> list[tuple[str, float]]:
        """(id, cosine) hits for a vector, in the filter context too: without it a retriever's ``query_vector``
        (which the retriever tree searches by this method) would reach the unfiltered leg behind this one."""
        return [(c.product_id, c.score) for c in self._filtered("", vector, k, filters)]

    def _filtered(
        self, text: str, vector: np.ndarray | list[float] | None, k: int, filters: Filters | None
    ) -> list[Candidate]:
        """The leg's hits for ``vector`` (or, without one, ``text``'s embedding) that match every clause."""
        # The service calls an engine kNN leg through its breaker's guard: the filters still go inside the kNN
        # search (a check after it would leave fewer than k hits), and the search still goes through the guard.
        guarded = self.leg if isinstance(self.leg, GuardedRetriever) else None
        engine = guarded.inner if guarded is not None else self.leg
        if isinstance(engine, EngineKnnRetriever):
            vector = np.asarray(vector) if vector is not None else engine.encoder.encode_queries([text])[0]
            knn = functools.partial(engine.search_vector, clauses=self.clauses)
            hits = guarded.guard.call(knn, vector, k, filters) if guarded is not None else knn(vector, k, filters)
            return leg_candidates(DENSE, hits)
        if vector is not None:
            found = leg_candidates(DENSE, self.leg.search_vector(vector, k, filters))  # type: ignore[attr-defined]
        else:
            found = self.leg.search(text, k, filters)
        return self._admitted(found)

    def search_around(self, product_id: str, k: int, filters: Filters | None = None) -> list[Candidate] | None:
        """The wrapped leg's search around a product (:func:`.searches_around`), in the filter context as
        :meth:`search`'s hits are; None where that leg cannot (an engine kNN leg keeps no vectors here)."""
        if not searches_around(self.leg):
            return None
        found = self.leg.search_around(product_id, k, filters)  # type: ignore[attr-defined]
        return None if found is None else self._admitted(found)

    def _admitted(self, found: list[Candidate]) -> list[Candidate]:
        """The candidates of ``found`` that match every clause, asked of the cluster in one request."""
        if not self.clauses:
            return found
        try:
            allowed = admitted(self.cluster, [c.product_id for c in found], self.clauses)
        except StageError as exc:
            raise StageError(DENSE, exc.cause) from exc
        return [c for c in found if c.product_id in allowed]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.leg, name)


# ------------------------------------------------------------------ the search


@dataclass
class DelegatedSearch:
    """A search body split for the cluster: what the pipeline ranks and what the cluster adds to the answer."""

    search: EsSearch
    cluster: ClusterRetriever
    query: dict[str, Any]
    post_filter: dict[str, Any] | None
    leg: DelegatedLeg
    ordered_body: dict[str, Any] | None
    """The one request a page with nothing to rerank is; None when the pipeline ranks."""
    highlight: dict[str, Any] | None
    highlighted: dict[str, list[str]]
    """The highlight fields' names as asked, by the index's names the cluster answers under."""
    aggs_plan: dict[str, Any] = field(default_factory=dict)
    answer: dict[str, Any] | None = None
    """The cluster's response to ``ordered_body``."""
    params: dict[str, Any] = field(default_factory=dict)
    """Options of the cluster request (``scroll``, ``typed_keys``; no ``index`` for a point in time)."""
    dense: FilteredDenseLeg | None = None
    """The request's dense leg, once :meth:`pipeline` has made it."""
    completions: list[Completion] = field(default_factory=list)
    """The body's completion suggesters, answered from the product titles, not by the cluster."""
    collapsed: dict[str, str] = field(default_factory=dict)
    """The collapse field's name on the index, and as asked: the cluster answers each hit's value under the first."""
    breaker: CircuitBreaker | None = None
    """The served lexical leg's breaker, once :meth:`pipeline` or :meth:`ordered_result` has found it: the
    request's other calls to the cluster (highlights, the page past the ranked list) are asked behind it too."""

    ranks_by_score: bool = True
    """Whether the page is in order of relevance (no sort, or one led by ``_score``), where pins count."""
    shows_sort: bool = True
    """Whether the hits carry the cluster's sort values: those of the body's sort, not of a listing's own order
    (:data:`BROWSE_SORT`), which Elasticsearch would not show for a body without one."""
    docvalues: dict[str, IndexedField] = field(default_factory=dict)
    """The ``docvalue_fields`` asked for, where each is (see hit_fields)."""
    codes: dict[str, set[str]] = field(default_factory=dict)
    """The model codes the query looks up, each with its fields (:attr:`ClusterFields.looked_up`), which its
    highlights mark too."""
    highlight_codes: dict[str | None, dict[str, set[str]]] = field(default_factory=dict)
    """The model codes the highlight's own queries look up (:attr:`ClusterFields.highlight_codes`)."""

    @property
    def catalog(self) -> CatalogFields:
        """The catalog's own fields the served index maps (for their doc values)."""
        return self.cluster.catalog

    @property
    def ordered(self) -> bool:
        """Whether the page is not the pipeline's to rank but the cluster's own."""
        return self.ordered_body is not None

    def widen(self) -> None:
        """Ask for every hit from the first to the end of the page (pinned products move the others down)."""
        self.search = dataclasses.replace(self.search, offset=0, size=self.search.offset + self.search.size)
        if self.ordered_body is not None:
            self.ordered_body = {**self.ordered_body, "from": 0, "size": self.search.size}

    def pinned_matches(self, ids: list[str]) -> set[str]:
        """Which of the pinned ``ids`` the search matches (its query and post filter), asked behind the lexical
        leg's breaker."""
        clauses = [self.query, *([self.post_filter] if self.post_filter is not None else [])]
        with behind(self.breaker):
            return admitted(self.cluster, ids, clauses)

    def pipeline(self, pipeline: SearchPipeline) -> SearchPipeline:
        """The pipeline with the client's query as its lexical leg (behind the served leg's guard, if it has one,
        so that a slow or failing cluster is cut off and counted as before) and the dense leg in its filter context."""
        served = pipeline.legs.get(LEXICAL)
        self.breaker = served_breaker(pipeline)
        legs: dict[str, Retriever] = {
            LEXICAL: GuardedRetriever(self.leg, served.guard) if isinstance(served, GuardedRetriever) else self.leg
        }
        clauses = constraints(self.query) + ([self.post_filter] if self.post_filter is not None else [])
        dense = pipeline.legs.get(DENSE)
        if dense is not None:
            self.dense = FilteredDenseLeg(dense, self.cluster, clauses)
        if self.dense is not None:
            legs[DENSE] = self.dense
        return pipeline.with_legs(legs)

    def ordered_result(self, pipeline: SearchPipeline) -> SearchResult:
        """The cluster's own page (nothing to rerank: its order, total and extras are the answer).

        The page is asked behind the lexical leg's breaker (see :func:`behind`): while it is open the search is an
        immediate 503 with ``Retry-After``, as a count is.
        """
        assert self.ordered_body is not None
        self.breaker = served_breaker(pipeline)
        try:
            with behind(self.breaker):
                if "pit" in self.ordered_body:
                    held_to_served(self.cluster, self.ordered_body["pit"])
                self.answer = self.cluster.run_search(self.ordered_body, "search", **self.params)
        except CircuitOpenError as exc:
            raise ServiceUnavailable(
                f"the cluster keeps failing ({reason_code(exc)})", retry_after=max(1, round(exc.retry_after_s))
            ) from exc
        except StageError as exc:
            raise cluster_error(self.cluster, exc, self.ordered_body) from exc
        hits = self.answer["hits"]["hits"]
        text = self.search.text
        candidates = [Candidate(h["_id"], h.get("_score") or 0.0, legs=frozenset({LEXICAL})) for h in hits]
        reason = "the cluster orders this page (a sort, no words, or no hits asked for): nothing to rerank"
        ranking = Ranking(text, candidates=candidates, skipped={Stage.RERANK: reason, Stage.FUSION: reason})
        total = self.answer["hits"].get("total") or {}
        return SearchResult(
            query=text, hits=pipeline.hits(candidates), total=int(total.get("value", 0)), ranking=ranking
        )

    def filled(self, result: SearchResult, pipeline: SearchPipeline) -> SearchResult:
        """The page, continued past the end of the ranked list in the cluster's own order.

        ``hits.total`` is the cluster's count of every match, so a front end offers pages up to it; the
        pipeline ranks only the candidates. A page that reaches past them goes on with the matches not ranked,
        best first by the cluster (one request that leaves the ranked ones out), so every page a front end
        offers has hits and no product is shown twice. Only an exact count within the ranked list says that
        there are none: without a count (``track_total_hits: false``) or with a lower bound (``gte``, from a
        numeric ``track_total_hits``) more may match, as Elasticsearch would page them.
        """
        search = self.search
        ranked = [c.product_id for c in result.ranking.candidates]
        total = self.leg.total
        missing = search.size - len(result.hits)
        every = (
            isinstance(total, Mapping)
            and total.get("relation", "eq") == "eq"
            and int(total.get("value", 0)) <= len(ranked)
        )
        if missing <= 0 or not self.leg.answered or every:
            return result
        body: dict[str, Any] = {
            "query": {"bool": {"must": [self.query], "must_not": [{"ids": {"values": ranked}}]}},
            "from": max(0, search.offset - len(ranked)),
            "size": missing,
            "sort": LEG_SORT,
            "track_scores": True,
            "track_total_hits": False,
            "_source": False,
        }
        if self.post_filter is not None:
            body["post_filter"] = self.post_filter
        if self.leg.min_score is not None:
            body["min_score"] = self.leg.min_score
        try:
            with behind(self.breaker):
                found = self.cluster.run_search(body, "search past the ranked list")["hits"]["hits"]
        except (StageError, CircuitOpenError) as exc:
            result.ranking.degraded[PAST_RANKED] = reason_code(exc)
            metrics.DEGRADED.labels(PAST_RANKED).inc()
            log.warning("page not continued past the ranked list (%s): %s", reason_code(exc), exc)
            return result
        rest = leg_candidates(LEXICAL, [(hit["_id"], hit.get("_score") or 0.0) for hit in found])
        return dataclasses.replace(result, hits=result.hits + pipeline.hits(rest))

    def facets_of_the_ranked(self, result: SearchResult | None) -> DelegatedLeg | None:
        """A leg whose aggregations count the ranked products, when the client's query matched none of them: a
        misspelt word answered by the dense leg alone, whose facets the cluster counted empty (see
        ``EmbeddedSearch.answered_query``). Only an exact count of none without a post filter says the words match
        nothing; otherwise (and when nothing was ranked) None, the facets being the query's matches'."""
        total = self.leg.total
        if result is None or not result.ranking.candidates or self.post_filter is not None:
            return None
        if not isinstance(total, Mapping) or total.get("relation", "eq") != "eq" or int(total.get("value", 1)):
            return None
        ranked = {"ids": {"values": [c.product_id for c in result.ranking.candidates]}}
        return DelegatedLeg(self.cluster, ranked, None, False, self.leg.typed_keys)

    def check_refused(self) -> None:
        """A 400 naming the query when the cluster refused the search as malformed: before anything else of the
        answer is read (the aggregations' own request, carrying the query too, is refused for it as well)."""
        if self.leg.refused is not None:
            raise InvalidQuery("query", f"the cluster refused the search: {self.leg.refused}")

    def complete(self, response: dict[str, Any], result: SearchResult | None) -> None:
        """The cluster's parts of the answer: total, sort values, highlights, aggregations, suggestions, ids."""
        self.check_refused()
        hits = response["hits"]
        if self.answer is not None:
            by_id = {h["_id"]: h for h in self.answer["hits"]["hits"]}
            # A pinned product keeps the score that puts it first (the cluster's page may not hold it).
            pinned = pinned_hits(result) if result is not None else set()
            scores = [hit["_score"] for hit in hits["hits"] if hit["_id"] in pinned]
            hits["max_score"] = max([*scores, self.answer["hits"].get("max_score")], key=lambda s: s or 0.0)
            for hit in hits["hits"]:
                theirs = by_id.get(hit["_id"], {})
                if hit["_id"] not in pinned:
                    hit["_score"] = theirs.get("_score")
                for key in ("sort", HIGHLIGHT, "inner_hits", "fields"):
                    if key in theirs and (key != "sort" or self.shows_sort):
                        hit[key] = theirs[key]
                if "fields" in hit:
                    hit["fields"] = {self.collapsed.get(name, name): value for name, value in hit["fields"].items()}
            for key in ("aggregations", "suggest", "_scroll_id", "pit_id", "terminated_early"):
                if key in self.answer:
                    response[key] = self.answer[key]
            self._total(hits, self.answer["hits"].get("total"), len(hits["hits"]))
            # Pinned products the cluster's page does not hold, and hits that write a model code the search looked
            # up, which the cluster's highlighter marked only as words.
            writing = self.writing_codes(result)
            again = [hit for hit in hits["hits"] if hit["_id"] not in by_id or hit["_id"] in writing]
            if self.highlight is not None and again:
                self._highlight(response, again, result)
        else:
            ranked = len(result.ranking.candidates) if result is not None else 0
            self._total(hits, self.leg.total, ranked)
            if self.highlight is not None and hits["hits"]:
                self._highlight(response, hits["hits"], result)
        rename_highlights(hits["hits"], self.highlighted)
        if "aggregations" in response and self.aggs_plan:
            unwrap(response["aggregations"], self.aggs_plan, self.search.typed_keys)

    def _total(self, hits: dict[str, Any], total: Any, ranked: int) -> None:
        """The cluster's count, raised to the ranked list's length when the dense leg added more; a lower bound
        (``gte``) stays one, and no count goes past a numeric ``track_total_hits``, as in Elasticsearch."""
        if "total" not in hits or not isinstance(total, Mapping):
            return
        value, relation = max(int(total.get("value", 0)), ranked), total.get("relation", "eq")
        track = self.leg.track
        if track is not True and value > track:
            value, relation = track, "gte"
        hits["total"] = {"value": value, "relation": relation}

    def _highlight(self, response: dict[str, Any], hits: list[dict[str, Any]], result: SearchResult | None) -> None:
        """One ``ids`` request for the highlights of ``hits`` (of ``response``'s page), the client's query as their
        highlight query, with the model numbers it looks up where those hits write them (:meth:`code_phrases`)."""
        assert self.highlight is not None
        products = {hit.product.id: hit.product for hit in result.hits} if result is not None else {}
        shown = [products[hit["_id"]] for hit in hits if hit["_id"] in products]

        def marked(query: dict[str, Any], codes: dict[str, set[str]]) -> dict[str, Any]:
            phrases = self.code_phrases(shown, codes)
            return {"bool": {"should": [query, *phrases]}} if phrases else query

        highlight = {**self.highlight, "fields": dict(self.highlight.get("fields", {}))}
        own = "highlight_query" in highlight
        highlight["highlight_query"] = marked(
            highlight["highlight_query"] if own else self.query,
            self.highlight_codes.get(None, {}) if own else self.codes,
        )
        for name, options in highlight["fields"].items():
            if isinstance(options, Mapping) and "highlight_query" in options:
                query = marked(options["highlight_query"], self.highlight_codes.get(name, {}))
                highlight["fields"][name] = {**options, "highlight_query": query}
        body = {
            "query": {"ids": {"values": [hit["_id"] for hit in hits]}},
            "highlight": highlight,
            "size": len(hits),
            "_source": False,
            "track_total_hits": False,
        }
        try:
            with behind(self.breaker):
                found = self.cluster.run_search(body, "highlight")["hits"]["hits"]
        except (StageError, CircuitOpenError) as exc:
            reason = malformed(self.cluster, exc) if isinstance(exc, StageError) else None
            if reason is not None:
                raise InvalidQuery(HIGHLIGHT, reason) from exc
            response["search_rerank"]["degraded"][HIGHLIGHT] = reason_code(exc)
            metrics.DEGRADED.labels(HIGHLIGHT).inc()
            log.warning("answered without highlights (%s): %s", reason_code(exc), exc)
            return
        by_id = {hit["_id"]: hit.get(HIGHLIGHT) for hit in found}
        for hit in hits:
            if by_id.get(hit["_id"]):
                hit[HIGHLIGHT] = by_id[hit["_id"]]

    def writing_codes(self, result: SearchResult | None) -> set[str]:
        """The page's products that write a model code the highlight marks (the query's, or a highlight query's)
        in a field it was looked up in (:meth:`code_phrases`); none where no highlight is asked."""
        if self.highlight is None or result is None:
            return set()
        marked: dict[str, set[str]] = {}
        for codes in (self.codes, *self.highlight_codes.values()):
            for code, fields in codes.items():
                marked.setdefault(code, set()).update(fields)
        return {hit.product.id for hit in result.hits if self.code_phrases([hit.product], marked)}

    def code_phrases(self, products: list[Product], codes: dict[str, set[str]]) -> list[dict[str, Any]]:
        """A ``match_phrase`` of each run in ``products``' text fields that writes one of the looked-up model codes
        ("DW745-B" for ``dw745b``) in a field it is looked up in: the query finds those products through the
        index's code keywords, which the cluster's highlighter cannot show in the text, where it marks the run's
        words. At most :data:`MAX_BODY_ADDED_TERMS` of them."""
        if not codes:
            return []
        runs = dict.fromkeys(
            (name, text[start:end])
            for product in products
            for name, text in product.field_texts().items()
            for start, end in code_spans(text, [c for c, fields in codes.items() if name in fields])
        )
        return [{"match_phrase": {name: run}} for name, run in list(runs)[:MAX_BODY_ADDED_TERMS]]


def served_breaker(pipeline: SearchPipeline) -> CircuitBreaker | None:
    """The breaker of the pipeline's lexical leg, when the service serves it behind one."""
    served = pipeline.legs.get(LEXICAL)
    return served.guard.breaker if isinstance(served, GuardedRetriever) else None


@contextmanager
def behind(breaker: CircuitBreaker | None) -> Iterator[None]:
    """A call to the cluster outside the lexical leg (its own page, highlights, the page past the ranked list),
    counted on the leg's breaker: refused at once (:class:`CircuitOpenError`) while it is open, rather than one
    more wait on a dead cluster per request. The cluster not answering (or answering 502/503/504) counts toward
    opening it, and so does its answer that the service's own index is missing or its credentials refused (as on the
    leg's own guard); any other answer, an error about the request included (a point in time it does not know, a
    malformed query), is the cluster serving, since a client must not open the breaker for every shopper. Not
    held to the leg's deadline, which is the ranking's and too tight for facets asked in the same request."""
    attempt = breaker.admit() if breaker is not None else None
    try:
        yield
    except BaseException as exc:
        if attempt is not None:
            attempt.report(
                ok=isinstance(exc, (StageError, ContextMissing, InvalidQuery))
                and not isinstance(exc, (ClusterUnavailable, ClusterMisconfigured))
            )
        raise
    if attempt is not None:
        attempt.report(ok=True)


def guarded_spellings(leg: Any, cluster: ClusterRetriever) -> Spell | None:
    """The readings of a text's misspelt words and its last word if begun (:meth:`.ClusterRetriever.readings`: a
    body's prefix query may read it as being typed), asked through the lexical
    leg's guard (``leg``, as the service serves it: its deadline and its breaker), since they are asked before the
    body's own search; None with ``lexical.correct_typos`` off. A cluster that does not answer them in time, or
    refuses them, leaves the words as typed: the search goes on without the readings, as the leg's own search
    would (the failure counts on the breaker)."""
    if not cluster.settings.correct_typos:
        return None

    def spelt(text: str) -> tuple[Mapping[str, QueryWord], str | None]:
        # Nothing to ask (no word that may be a typo, or all asked before): no call through the guard, which
        # would count a success of the cluster's.
        known = cluster.remembered(text, True)
        if known is not None:
            return known
        ask = functools.partial(cluster.readings, text, True)
        try:
            return leg.guard.call(ask) if isinstance(leg, GuardedRetriever) else ask()
        except (DeadlineExceeded, CircuitOpenError, StageError) as exc:
            log.warning("misspelt words searched as typed: the cluster did not read them (%s)", reason_code(exc))
            return {}, None

    return spelt


def malformed(cluster: ClusterRetriever, exc: StageError) -> str | None:
    """The cluster's reason when it answered 400 (the request is wrong), else None (the cluster is)."""
    failure = cluster.failure(exc.__cause__) if exc.__cause__ is not None else None
    return refusal_text(failure) if failure is not None and failure.request_fault else None


def cluster_error(cluster: ClusterRetriever, exc: StageError, body: Mapping[str, Any]) -> Exception:
    """A failed request of the client's: its 400 when the cluster found ``body`` wrong, else a 502 by reason code
    (the cluster's address and the exception stay in the log).

    The 400 names the part of the body that holds what the cluster's reason quotes (``[no_such_aggregation]``).
    """
    failure = cluster.failure(exc.__cause__) if exc.__cause__ is not None else None
    if failure is None or not failure.request_fault:
        return BadGateway(f"the cluster failed the search ({reason_code(exc)})")
    quoted = re.findall(r"\[([^\]]+)\]", failure.reason)
    blamed = next(
        (key for key in BLAMED if key in body and any(q in json.dumps(body[key]) for q in quoted)),
        next((key for key in ("aggs", "aggregations") if key in body and failure.type == TOO_MANY_BUCKETS), "query"),
    )
    return InvalidQuery(blamed, f"the cluster refused the search: {refusal_text(failure)}")


JAVA_CLASS = re.compile(r"\b(?:[a-z_][\w$]*\.)+[A-Z][\w$]*(?:Exception|Error)\b:?\s*")


def refusal_text(failure: Failure) -> str:
    """The cluster's reason for refusing a request as a browser is told it: its type and words, without the Java
    exception classes a reason can quote ("java.time.zone.ZoneRulesException: Unknown time-zone ID: Mars/Base"):
    the words say what to mend; the class is the cluster's insides."""
    return f"{failure.type}: {JAVA_CLASS.sub('', failure.reason)}"


def delegate_search(
    body: Mapping[str, Any],
    params: Mapping[str, str],
    limits: ServiceSettings,
    cluster: ClusterRetriever,
    dense_query: bool = False,
    min_score: float | None = None,
    spell: Spell | None = None,
) -> DelegatedSearch:
    """Split ``body`` (field aliases already applied) for the cluster behind ``cluster``.

    ``dense_query``: the dense leg brings its own text or vector (a retriever tree's ``knn``), so a query
    without words is still a ranking, its nearest products, not a listing of what the query matches.
    ``min_score``: a standard retriever's, the least score of a lexical match, in every request for the query
    (the leg's, the page past the ranked list, facets, the cluster's own page), so its hits, total and facets
    leave out the matches below it. ``spell``: the misspelt words' readings (:func:`guarded_spellings`).
    """
    if (found := refused_at(body, {*limits.index_names, cluster.index})) is not None:
        # Parts of a body go to the cluster as they came (an aggregation without a field, inner hits, a phrase
        # suggester's options): what would run a script there or read another index is refused wherever it is.
        where, _, code = found
        raise Unsupported(where, BODY_REFUSALS[code])
    fields = ClusterFields(cluster, limits.field_aliases, spell)
    params = dict(params)
    scroll = params.pop("scroll", None)
    if scroll is not None:
        scroll = a_keep_alive(scroll, "scroll")
    rest = {k: v for k, v in body.items() if k not in DELEGATED_KEYS}
    base = parse_search(rest, params, limits)
    raw = body.get("query")
    query, codes = fields.marking(raw, "query") if raw is not None else ({"match_all": {}}, {})
    post = fields.query(body["post_filter"], "post_filter") if body.get("post_filter") is not None else None
    text = " ".join(dict.fromkeys(w.strip() for w in query_words(query) if w.strip()))
    if len(text) > limits.max_query_length:
        raise InvalidQuery("query", f"the query text must be at most {limits.max_query_length} characters")
    given = [k for k in ("aggs", "aggregations") if body.get(k) not in ({}, [], None)]
    if len(given) > 1:
        raise InvalidQuery("aggregations", "found two aggregation type definitions: use aggs or aggregations")
    aggs, plan = fields.aggregations(body[given[0]], given[0]) if given else (None, {})
    highlight, highlighted = fields.highlight(body[HIGHLIGHT]) if body.get(HIGHLIGHT) not in (None, {}) else (None, {})
    sort = fields.sort(body.get("sort"))
    suggest, completions = (
        fields.suggest(body["suggest"], limits) if body.get("suggest") not in (None, {}) else (None, [])
    )
    extras = {k: body[k] for k in CLUSTER_ORDER_ONLY if body.get(k) is not None}
    if "min_score" in extras:  # refused by the cluster, it was a 400 naming the query
        extras["min_score"] = a_number(extras["min_score"], "min_score")
    if "search_after" in extras:
        extras["search_after"] = without_unmapped(extras["search_after"], fields.unmapped_at, len(sort or []))
        if base.offset != 0:  # Elasticsearch's 400 (OpenSearch fails it with a 500)
            raise InvalidQuery("from", "from parameter must be set to 0 when search_after is used")
    if "keep_alive" in (pit := an_object(extras.get("pit", {}), "pit")):
        a_keep_alive(pit["keep_alive"], "pit.keep_alive")  # each search in a point in time extends it
    collapsed: dict[str, str] = {}
    if "collapse" in extras:
        collapse = an_object(extras["collapse"], "collapse")
        if "inner_hits" in collapse:
            raise Unsupported("collapse.inner_hits", "inner hits (their documents would be the product index's)")
        asked = collapse.get("field")
        resolved = fields.resolve(
            alias_of(asked, fields.aliases) if isinstance(asked, str) else asked, KEYWORD, "collapse.field"
        )
        if resolved.attribute is not None:
            raise Unsupported("collapse.field", "collapsing by an attribute (several values per product)")
        extras["collapse"] = {**collapse, "field": resolved.name}
        collapsed[resolved.name] = collapse["field"]
    ranks = sort is None or led_by_score(sort)
    ordered = not ranks or base.size == 0 or suggest is not None or scroll is not None or bool(extras)
    if text and ranks and "search_after" in extras and "pit" not in extras:
        # The page before was the pipeline's ranking: the cluster's sort values could not continue it.
        raise Unsupported(
            "sort",
            "search_after on a relevance sort of a query with words (its pages are reranked here): "
            "page by from/size, or in a point in time (pit)",
        )
    if dense_query:
        # A kNN search's nearest products are the pipeline's to rank: the cluster's own page (its order, a scroll,
        # its min_score or terminate_after, or a count of what a query without words matches) would answer the
        # query alone, the kNN search silently left out.
        asked = [
            *(["scroll"] if scroll is not None else []),
            *extras,
            *(["sort"] if not ranks else []),
            *(["suggest"] if suggest is not None else []),
            *(["size"] if base.size == 0 and not text else []),
        ]
        if asked:
            raise Unsupported(asked[0], "beside a kNN search (the cluster's own page would leave the kNN search out)")
    ordered = ordered or (not text and not dense_query)
    search = dataclasses.replace(base, text=text, filters=None, aggs=None if ordered else aggs)
    leg = DelegatedLeg(cluster, query, post, base.track_total_hits, base.typed_keys, min_score)
    delegated = DelegatedSearch(
        search,
        cluster,
        query,
        post,
        leg,
        None,
        highlight,
        highlighted,
        aggs_plan=plan,
        completions=completions,
        collapsed=collapsed,
        ranks_by_score=ranks,
        shows_sort=sort is not None,
        docvalues=located(base.hit_fields, fields.indexed, limits.field_aliases),
        codes=codes,
        highlight_codes=fields.highlight_codes,
    )
    if not ordered:
        return delegated
    request: dict[str, Any] = {
        "query": query,
        "from": base.offset,
        "size": base.size,
        "sort": sort if sort is not None else BROWSE_SORT,
        "_source": False,
        **extras,
    }
    if "pit" in extras:
        request["query"] = within_served(cluster, query)
    if min_score is not None and "min_score" not in request:
        request["min_score"] = min_score
    if "track_total_hits" in body and scroll is None:  # a scroll always counts: the cluster refuses it there
        request["track_total_hits"] = base.track_total_hits
    if sort is not None and body.get("track_scores") is not None:
        request["track_scores"] = body["track_scores"]
    for key, value in (("post_filter", post), ("aggs", aggs), (HIGHLIGHT, highlight), ("suggest", suggest)):
        if value is not None:
            request[key] = value
    if (scroll is not None or "pit" in extras) and base.offset == 0:
        del request["from"]  # Elasticsearch refuses ``from`` in a scroll, and pages a point in time by search_after
    delegated.ordered_body = request
    if scroll is not None:
        delegated.params["scroll"] = scroll
    if base.typed_keys:  # the cluster's aggregations and term or phrase suggestions are the answer's
        delegated.params["typed_keys"] = True
    if "pit" in extras:
        delegated.params["index"] = None  # a point in time names its index itself
    return delegated


def served_documents(cluster: ClusterRetriever) -> dict[str, Any]:
    """The query of the served index's documents: the served name and the indices behind it, since a document's
    ``_index`` is its concrete index."""
    return {"terms": {"_index": sorted({cluster.index, *cluster.aliases(cluster.index)})}}


def within_served(cluster: ClusterRetriever, query: dict[str, Any] | None) -> dict[str, Any]:
    """``query`` held to the served index's documents, for a search in a point in time: its id, not the path,
    names what it searches, and a caller holding one opened on another index of the cluster (the shopper profiles',
    another application's) would read that index through the service, which searches as the cluster's one user."""
    served = served_documents(cluster)
    return {"bool": {"filter": [served]} if query is None else {"must": [query], "filter": [served]}}


def held_to_served(cluster: ClusterRetriever, pit: Any) -> None:
    """:class:`ContextMissing`, as for a point in time the cluster does not hold, unless every document of ``pit``
    (a search's ``pit``) is the served index's. The query alone is held to them (:func:`within_served`), and a
    ``global`` aggregation ignores it (a ``top_hits`` under one read another index's documents whole), as a
    suggester does (its words are the index's terms): a point in time of another index is not searched at all. One
    more request per page in a point in time, which pages a whole catalogue out, not a shopper's search."""
    pit_id = pit.get("id") if isinstance(pit, Mapping) else None
    others = {"bool": {"must_not": [served_documents(cluster)]}}
    probe = {"pit": {"id": pit_id}, "size": 0, "track_total_hits": 1, "query": others}
    try:
        total = cluster.run_search(probe, "search", index=None)["hits"].get("total") or {}
    except StageError as exc:
        raise unread_point_in_time(cluster, exc) from exc
    if int(total.get("value", 0) if isinstance(total, Mapping) else total) > 0:
        log.warning("a search in a point in time of another index was refused")
        raise ContextMissing()


def unread_point_in_time(cluster: ClusterRetriever, exc: StageError) -> Exception:
    """Why the cluster did not search in a client's point in time: one it does not hold (its 404) is
    :class:`ContextMissing`; any other answer (OpenSearch fails an id it cannot decode with a 500,
    ``unsupported_version_exception``; Elasticsearch with a 400) is the id's fault, the rest of the probe being the
    service's own: a 400 naming ``pit.id``, where it was a 502 telling the front end the service was down. Not
    answering (a timeout, a 502, 503 or 504) is the cluster's, and raised as it is."""
    failure = cluster.failure(exc.__cause__) if exc.__cause__ is not None else None
    if failure is None or failure.status is None or (failure.transient and not failure.request_fault):
        return exc
    if failure.status == 404:
        return ContextMissing()
    return InvalidQuery("pit.id", f"the cluster could not read the point in time id: {refusal_text(failure)}")


def delegate_count(raw: Any, limits: ServiceSettings, leg: Any) -> int:
    """``_count`` of the query ``raw`` (see :func:`~search_rerank.serving.es_compat.count_query`; field aliases
    already applied): the cluster's count of the query on the index's fields, asked through the lexical leg's
    guard (``leg``, as the service serves it), so a cluster that hangs costs its deadline.

    Passed through as it came, a front end's names (``brand.keyword``, an attribute's ``color.keyword``) would
    name no field of the product index, and the cluster would count 0 where the same query's search finds
    products.
    """
    cluster = delegated_cluster(leg)
    assert cluster is not None
    fields = ClusterFields(cluster, limits.field_aliases, guarded_spellings(leg, cluster))
    query = fields.query(raw, "query") if raw is not None else None
    count = functools.partial(cluster.count, query)
    try:
        return leg.guard.call(count) if isinstance(leg, GuardedRetriever) else count()
    except DeadlineExceeded as exc:
        raise GatewayTimeout(f"the cluster did not answer the count ({reason_code(exc)})") from exc
    except CircuitOpenError as exc:
        raise ServiceUnavailable(
            f"the cluster keeps failing ({reason_code(exc)})", retry_after=max(1, round(exc.retry_after_s))
        ) from exc
    except StageError as exc:
        raise cluster_error(cluster, exc, {"query": query}) from exc


# ------------------------------------------------------------------ value checks


def needs(query: Mapping[str, Any], words: int) -> str:
    """How many of its ``words`` a full-text ``query`` needs: :data:`ANY_WORD`; :data:`EVERY_WORD` (``operator:
    and``), each of them on its own; or :data:`IN_ORDER`, which cannot be asked apart (a phrase's words, or a
    ``minimum_should_match``'s count of them past one, as the embedded backend counts it: "-1" of two words is
    one, any of them)."""
    kind = next(iter(query))
    options = _text_options(query)
    if kind in PHRASE_QUERIES or options.get("type") in ("phrase", "phrase_prefix") or _counted(options, words):
        return IN_ORDER
    return EVERY_WORD if str(options.get("operator", "or")).lower() == "and" else ANY_WORD


def _counted(options: Mapping[str, Any], words: int) -> bool:
    """Whether a full-text query's ``minimum_should_match`` needs more than one of its ``words``; one it cannot
    count (a combination, "3<90%") does, so nothing is added that it might not allow."""
    needed = options.get("minimum_should_match")
    if needed is None:
        return False
    try:
        counted = ShouldMatch.parse(needed, "minimum_should_match")
    except (InvalidQuery, Unsupported):
        return True
    return counted is not None and counted.of(words) > 1


def _across(query: Mapping[str, Any]) -> bool:
    """Whether a full-text ``query`` matches each word in any of its fields (``cross_fields``,
    ``combined_fields``), rather than every word it needs in one field."""
    return next(iter(query)) == "combined_fields" or _text_options(query).get("type") == "cross_fields"


def _typing(query: Mapping[str, Any]) -> bool:
    """Whether a full-text ``query``'s last word is being typed (a prefix), as Elasticsearch reads it."""
    kind = next(iter(query))
    # A tuple, not PREFIX_TYPES: a type that is no string (a list) must not fail the membership test here; the
    # cluster refuses it, with a 400 naming it.
    return kind in PREFIX_QUERIES or _text_options(query).get("type") in ("bool_prefix", "phrase_prefix")


def _fuzzy_options(query: Mapping[str, Any]) -> bool:
    """Whether a full-text ``query`` says its own typo tolerance (a ``fuzziness``, even 0: Searchkit sends one with
    every search), which the service's readings of misspelt words then leave as it is."""
    return _text_options(query).get("fuzziness") is not None


def _text_options(query: Mapping[str, Any]) -> Mapping[str, Any]:
    """A full-text query's options: a ``multi_match``'s own keys, a ``match``'s under its field (none where the
    field names its text alone)."""
    kind, spec = next(iter(query.items()))
    options = spec if kind in MULTI_FIELD_QUERIES else next((v for k, v in spec.items() if k not in OPTIONS), {})
    return options if isinstance(options, Mapping) else {}


def _untranslated(spec: Mapping[str, Any]) -> str | None:
    """The first option of a ``query_string`` that its translation into Query DSL would not honour, or None."""
    return next(
        (
            option
            for option, value in spec.items()
            if option not in TRANSLATED_OPTIONS
            and option not in FUZZY_OPTIONS
            and value not in TRANSLATED_OPTIONS_VALUES.get(option, ())
        ),
        None,
    )


def _asking(kind: str, spec: Mapping[str, Any], key: str, text: str) -> dict[str, Any]:
    """The query ``kind`` of ``spec`` with ``text`` for its text (``key``: ``query`` or the field a ``match``
    names)."""
    inner = spec[key]
    return {kind: {**spec, key: {**inner, "query": text} if key != "query" else text}}


ANALYZER_KEYS = ("analyzer", "search_analyzer", "quote_analyzer")
"""A full-text query's analyzers, which name the front end's own index's analysis (Searchkick's
``searchkick_search``): the served index analyses its fields its own way, which the cluster reads them with, as
the embedded index does (a name it does not define was the cluster's 400 for every search)."""


def _without_analyzers(spec: Any) -> Any:
    """A full-text query's spec without :data:`ANALYZER_KEYS`, at its top (``multi_match``, ``query_string``) or
    in its field's options (``match``)."""
    if not isinstance(spec, Mapping):
        return spec
    return {
        key: ({k: v for k, v in value.items() if k not in ANALYZER_KEYS} if isinstance(value, Mapping) else value)
        for key, value in spec.items()
        if key not in ANALYZER_KEYS
    }


def _terms_values(value: Any, path: str) -> list[Any]:
    """A ``terms`` query's values: a list; a lookup (the values of another document) is a 501, else a 400."""
    if isinstance(value, Mapping):
        raise Unsupported(path, "a terms lookup (the values from another document)")
    if not isinstance(value, list):
        raise InvalidQuery(path, "terms takes a list of values")
    return value


def _field_key(spec: Any, path: str) -> tuple[str, Any]:
    """The one field a leaf query names, beside its options (``boost``, ``_name``...)."""
    spec = an_object(spec, path)
    names = [k for k in spec if k not in OPTIONS]
    if len(names) != 1:
        raise InvalidQuery(path, "expected one field")
    return names[0], spec[names[0]]
