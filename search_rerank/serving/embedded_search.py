"""Elasticsearch searches on the embedded tantivy index: the Query DSL compiled into tantivy queries.

Front ends send bool trees with ``must_not``, ranges on any number, Lucene
``query_string`` syntax, facets (``aggs``), ``highlight`` and sorting by a
field. The product's ``Filters`` cannot say most of that, but tantivy can, so
on the embedded backend the whole query is compiled into one tantivy query
(the *constraint*) and:

- the pipeline still ranks: the lexical leg searches within the constraint,
  and the dense leg's candidates are checked against it
  (:class:`ConstrainedLeg`), so no hit breaks a clause; the words the query
  wants (not the excluded ones) are what the encoder and the reranker read;
- ``aggs`` are counted by tantivy's own Elasticsearch-format aggregations
  over every product the query matches, without the ``post_filter``, as
  Elasticsearch counts them (``filter``, ``filters`` and ``global``, which
  tantivy lacks, are computed here as one tantivy aggregation per bucket);
- ``highlight`` comes from tantivy's snippet generator, for the page's hits;
- ``sort`` by a number (price, rating, sales, review_count), a keyword or a
  field of the catalog's own (a date added) has nothing to rerank: the
  matches are ordered by the field, ties by ``_score``, then id;
- a search without words (``match_all``, filters only) lists every match,
  best sellers first (:meth:`EmbeddedSearch.browse_result`);
- words being typed (``bool_prefix``, ``phrase_prefix``, ``match_*_prefix``)
  match as Elasticsearch matches them, the last one as a prefix, even when
  scoring: a cut-short word means nothing to the encoder or the reranker.

Scoring in text clauses (``match``, ``multi_match``) keeps the product's
meaning: the words are ranked by the pipeline and constrain nothing, as on
the cluster path. In filter context (``filter``, ``must_not``, aggregation
filters), and in what facets count and sorted pages list, a text clause
matches like Elasticsearch's, ``fuzziness`` (a word within some edits of the
query's) and ``slop`` (a phrase's words apart) included. What the product's
schema cannot express (nested documents, geo, scripts, a sort on text) is an
:class:`Unsupported` naming the part.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC
from decimal import Decimal
from fnmatch import fnmatchcase
from typing import Any, TypeGuard

import tantivy

from ..backends.codes import MAX_QUERY_CODES, code_rests
from ..backends.mappings import TITLE_KEYWORD
from ..backends.spelling import QueryWord
from ..backends.tantivy_index import (
    FACET_FIELD,
    MAX_SUFFIX,
    MIN_SUFFIX,
    NUMERIC_FIELDS,
    SORT_FIELDS,
    TantivyRetriever,
    held_term,
)
from ..core.candidate import Candidate
from ..core.catalog_fields import CatalogFields, format_date
from ..core.filters import Filters, attribute_key, category_key, normalise_term
from ..core.fuzziness import Fuzziness
from ..core.pipeline import NO_TEXT_TO_EMBED, Ranking, SearchPipeline, SearchResult
from ..core.product import Product
from ..core.reasons import TIMEOUT
from ..core.retrieval import DENSE, LEXICAL, Retriever, Stage, leg_candidates, searches_around
from ..core.settings import LEXICAL_FIELDS, ServiceSettings
from . import lucene_regexp, metrics, query_string, wildcards
from .body_checks import (
    MAX_INT,
    MAX_LONG,
    MIN_LONG,
    a_boolean,
    a_count,
    a_keyword,
    a_long,
    a_number,
    a_string,
    an_object,
    clause_list,
    fuzzy_counts,
    known_keys,
    one_of,
    single_key,
    within_long,
)
from .collapse import INNER_HITS, MAX_INNER_SEARCHES, Collapse, Key, distinct, parse_collapse
from .completion import Completion, split_suggest
from .date_math import (
    DEFAULT_FORMAT,
    ISO_FORMATS,
    calendar_interval,
    calendar_months,
    check_options,
    date_bound,
    fixed_interval,
    month_edges,
    time_zone,
)
from .did_you_mean import Suggester, parse_corrections, words_looked_up
from .es_compat import (
    EsSearch,
    InvalidQuery,
    SourceFilter,
    Unsupported,
    bucket_order,
    flag,
    function_filter,
    nested_sort,
    order_buckets,
    order_terms_buckets,
    parse_search,
    pinned_query,
    source_filter,
    typed_key,
    unmapped_sort_type,
    without_unmapped,
)
from .field_aliases import alias_of, rename_query, source_with_aliases, text_fields_matching
from .fuzziness import parse_fuzziness
from .highlighting import HighlightField, Mark, highlight
from .hit_fields import ATTRIBUTE_VALUES, IndexedField, located, text_field
from .search_after import (
    TEXT_PATTERN_CHARS,
    Cursor,
    CursorKey,
    KeyKind,
    cursor,
    follows,
    keywords_after,
    keywords_before,
    keywords_from,
)

log = logging.getLogger(__name__)

HIGHLIGHT = "highlight"
"""A body's highlight, and the part of an answer left out past its time (``degraded.highlight``)."""

# The body keys compiled here; parse_search reads the rest (paging, _source, track_total_hits, ext, ...).
COMPILED_KEYS = (
    *("query", "post_filter", "aggs", "aggregations", "highlight", "sort", "search_after", "suggest", "collapse"),
    *("min_score", "terminate_after", "track_scores"),
)
TEXT_QUERIES = {"match", "match_phrase", "match_phrase_prefix", "match_bool_prefix"}
PREFIX_QUERIES = {"match_phrase_prefix", "match_bool_prefix"}
PREFIX_TYPES = {"bool_prefix", "phrase_prefix"}
WILDCARD_KINDS = ("text", "id", "keyword", "brand", "attribute")
"""The fields a wildcard word searches (:meth:`Compiler.wildcard`); on another a lenient query_string's matches
nothing, as Elasticsearch's parser leaves a number's, a date's or a flag's field out rather than refuse the query."""
FUZZY_QUERY_KEYS = frozenset(
    {"value", "fuzziness", "prefix_length", "max_expansions", "transpositions", "rewrite", "boost", "_name"}
)
UNFUZZY_KINDS = ("numeric", "date", "boolean")
"""The fields a fuzzy word cannot search: Elasticsearch refuses one there (a lenient query leaves the field out)."""
MULTI_MATCH_TYPES = ("best_fields", "most_fields", "cross_fields", "phrase", "phrase_prefix", "bool_prefix", "boolean")
"""What Elasticsearch's multi_match ``type`` may be (``boolean``: best_fields' old name)."""
_COMMON_KEYS = frozenset({"query", "analyzer", "boost", "_name"})
_FUZZY_KEYS = frozenset({"fuzziness", "prefix_length", "max_expansions", "fuzzy_transpositions", "fuzzy_rewrite"})
_MATCH_KEYS = frozenset({"operator", "minimum_should_match", "zero_terms_query", "lenient", "cutoff_frequency"})
_SYNONYMS = frozenset({"auto_generate_synonyms_phrase_query"})
QUERY_KEYS = {
    "match": _COMMON_KEYS | _FUZZY_KEYS | _MATCH_KEYS | _SYNONYMS,
    "match_phrase": _COMMON_KEYS | {"slop", "zero_terms_query"},
    "match_phrase_prefix": _COMMON_KEYS | {"slop", "max_expansions", "zero_terms_query"},
    "match_bool_prefix": _COMMON_KEYS | _FUZZY_KEYS | {"operator", "minimum_should_match"},
    "multi_match": _COMMON_KEYS | _FUZZY_KEYS | _MATCH_KEYS | _SYNONYMS | {"fields", "type", "slop", "tie_breaker"},
    "combined_fields": _COMMON_KEYS | _SYNONYMS | {"fields", "operator", "minimum_should_match", "zero_terms_query"},
    "match_all": frozenset({"boost", "_name"}),
    "common": _COMMON_KEYS
    | {"cutoff_frequency", "low_freq_operator", "high_freq_operator", "minimum_should_match", "disable_coord"},
}
"""The keys Elasticsearch's parser reads in each full-text query (and ``match_all``): another is a 400 naming it,
as there, rather than an option read nowhere."""
MULTI_FIELD_QUERIES = {"multi_match", "combined_fields"}
# function_score's one-function shorthand keys, beside its "functions" list.
FUNCTION_SCORE_FUNCTIONS = ("weight", "field_value_factor", "script_score", "random_score", "gauss", "linear", "exp")
FUNCTION_SCORE_KEYS = (
    *("query", "functions", "score_mode", "boost_mode", "max_boost", "min_score", "boost", "_name"),
    *FUNCTION_SCORE_FUNCTIONS,
)
"""What Elasticsearch's FunctionScoreQueryBuilder reads: another key is a 400 naming it, as there."""
BOOSTING_KEYS = ("positive", "negative", "negative_boost", "boost", "_name")
"""What Elasticsearch's BoostingQueryBuilder reads."""
SCORE_MODES = ("multiply", "sum", "avg", "first", "max", "min")
BOOST_MODES = ("multiply", "replace", "sum", "avg", "max", "min")
# tantivy computes these itself (Elasticsearch's request and response format), each answered to ``?typed_keys``
# under its type's name in Elasticsearch (a terms aggregation's by its field: TERMS_TYPES).
NATIVE_AGGREGATIONS = {
    "terms": "sterms",
    "range": "range",
    "histogram": "histogram",
    "stats": "stats",
    "extended_stats": "extended_stats",
    "min": "min",
    "max": "max",
    "avg": "avg",
    "sum": "sum",
    "value_count": "value_count",
    "cardinality": "cardinality",
    "percentiles": "tdigest_percentiles",  # Elasticsearch's default method ("hdr" is a 501)
    "composite": "composite",
    "date_histogram": "date_histogram",
    "date_range": "date_range",
}
# The aggregations answered by another of tantivy's: a date's histogram and ranges are a number's, in milliseconds.
TANTIVY_KIND = {"date_histogram": "histogram", "date_range": "range"}
COMPOSITE_SOURCES = ("terms", "histogram")
"""The value sources of a composite aggregation tantivy computes (``date_histogram`` needs a date field)."""
COMPOSITE_OPTIONS = {
    "terms": {"field", "order", "missing_bucket"},
    "histogram": {"field", "interval", "order", "missing_bucket"},
}
"""What tantivy reads of each source; another option (a script, ``missing_order``) is a 501 naming it, not
ignored."""
# The buckets counted here (Aggregations._run), each its own type's name.
FILTER_AGGREGATIONS = ("filter", "filters", "global", "missing")
SINGLE_BUCKETS = ("filter", "global", "missing")
"""The aggregations of one bucket, answered as ``{"doc_count": ..., <sub-aggregations>}``."""
# Elasticsearch's terms aggregation on a whole number is LongTerms, on a decimal one DoubleTerms.
TERMS_TYPES = {tantivy.FieldType.Integer: "lterms", tantivy.FieldType.Float: "dterms"}
SUB_AGGREGATIONS = ("aggs", "aggregations")
DEFAULT_FRAGMENT_SIZE, DEFAULT_FRAGMENTS = 100, 5
HIGHLIGHTERS = ("unified", "plain", "fvh")
# Ties with the last hit of a page sorted by a field are ordered by _score; past this many, by id alone.
# (sorted_page reads them all, up to this many, for each page.)
MAX_SORT_TIES = 10_000
# The distinct values of a number that a terms aggregation orders itself (Aggregations._native says why).
MAX_NUMERIC_TERMS = 10_000
MAX_SLOPPY_WORDS, MAX_LONG_PHRASE_SLOP = 4, 3
"""A phrase of more words than the first may have a slop of at most the second. tantivy matches a phrase of more
than two words with a slop by carrying each word's positions to the next, and the positions it carries multiply
with each word whose positions stand within the slop: its cost grows exponentially with the words and the slop
together. A 187-byte filter, forty times "a" within 100,000 positions, took 405 s and 3 GB on 20,000 generated
products; eight times "the" in texts holding it thirty times, 6.6 s per thousand products. Up to four words, or a
slop of three, it stays within milliseconds (what a shopper's phrase asks; Elasticsearch, whose sloppy phrase
matching is linear, sets no such bound)."""
# A percentiles aggregation's percents when it names none, and its TDigest's compression (Elasticsearch's defaults).
DEFAULT_PERCENTS = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
TDIGEST_COMPRESSION = 100
PERCENTILE_VALUES = "values"  # the part of a percentiles that counts its values (Aggregations._translated)
_LEVEL = re.compile(r"facet\.category\.lvl\d+")
WHOLE_NUMBER = re.compile(r"[-+]?[0-9]+")
MAX_BUCKET_CLAUSES = 10_000
"""The most query clauses the bucket searches of one request's aggregations may run in all: each ``filter``,
``filters``, ``global`` or ``missing`` bucket here is a tantivy search of the request's query within its own
filter, which costs about a third of a millisecond per clause of the query on this machine's cores, so 300
``filters`` buckets over an 800-clause query held a worker for 113 s. A body past it is a 400 naming its
aggregations, before anything runs (Elasticsearch caches each filter's matches, and needs no such bound); the
front ends' facets ask for a few buckets over a query of tens of clauses."""
EVERY_SEGMENT_TERM = 2**32 - 1
"""A terms aggregation's ``segment_size`` for tantivy: every term of each segment (its largest, a u32)."""


MAX_BUCKETS = 65_536
"""The most buckets one search's aggregations may answer, every level and every filter bucket together
(Elasticsearch's ``search.max_buckets``). tantivy's own limit is per aggregation it computes, and filter buckets
are computed here one tantivy aggregation each, so a hundred buckets each just under its limit took seconds,
gigabytes and a response of hundreds of megabytes."""
# tantivy's refusals of an aggregation too large to compute: its bucket and memory limits.
_TANTIVY_LIMITS = ("bucket limit was exceeded", "memory limit was exceeded")


def serves(leg: Any) -> TypeGuard[TantivyRetriever]:
    """Whether the lexical leg is the embedded index, whose searches this module answers."""
    return isinstance(leg, TantivyRetriever)


@dataclass(frozen=True)
class Target:
    """What a field name means on the product: ``kind`` (text, brand, category, attribute, numeric, id; a
    catalog field's own: numeric, date, keyword, boolean)."""

    kind: str
    name: str
    facet: str | None = None
    """The fast field (or JSON path) that aggregations read."""
    sort: str | None = None
    """The fast field a sort reads; None where the field has no order (text, an attribute's several values)."""
    number: tantivy.FieldType | None = None
    """How a number (or a date, in epoch milliseconds) is held: whole or decimal."""
    field: str | None = None
    """The index field a number, a date, a keyword or a boolean of the catalog's is in, where it is not ``name``."""
    sort_max: str | None = None
    """For a catalog field some product holds several values of: the field of each product's greatest, ``sort``
    being that of its least (``parse_sort`` picks one by the sort's order and ``mode``)."""

    @property
    def indexed(self) -> str:
        return self.field or self.name


@dataclass
class Compiled:
    """A clause as a tantivy query (None: it restricts nothing) and the words it wants ranked."""

    constraint: tantivy.Query | None = None
    texts: list[str] = field(default_factory=list)
    scored: list[tantivy.Query] = field(default_factory=list)
    """Queries the lexical leg scores beside the words: a word being typed as a prefix, the words within a
    ``fuzziness``'s edits."""

    def add_words(self, part: Compiled) -> None:
        """Take ``part``'s words (a clause of a bool) as this query's too."""
        self.texts += part.texts
        self.scored += part.scored


def _all(queries: Iterable[tantivy.Query | None]) -> tantivy.Query | None:
    parts = [q for q in queries if q is not None]
    if len(parts) < 2:
        return parts[0] if parts else None
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in parts])


@dataclass(frozen=True)
class Tilde:
    """What ``~`` means in a query_string: a bare one's fuzziness (its ``fuzziness``, default ``AUTO``) and a
    phrase's slop without one (its ``phrase_slop``, default 0), as Elasticsearch's query_string reads them."""

    fuzziness: Fuzziness
    phrase_slop: int

    def of(self, word: query_string.Word, path: str) -> tuple[Fuzziness | None, int]:
        """The fuzziness and the slop that ``word`` matches with (``sofa~1``, ``"leather sofa"~2``)."""
        if word.tilde is None:
            return None, self.phrase_slop if word.phrase else 0
        number = word.tilde.rstrip(".")
        if not re.fullmatch(r"\d*(\.\d*)?", number):
            raise InvalidQuery(path, f"~{word.tilde} is not a number")
        if word.phrase:
            return None, query_string.saturated_int(number) if number else self.phrase_slop
        if not number:
            return self.fuzziness, 0
        # A number of edits above 2 is 2, as Elasticsearch's query_string caps it.
        return Fuzziness.edits(min(2, query_string.saturated_int(number)), self.fuzziness.transpositions), 0


_JSON_CHAR = r"(?:[^\\]|\\[^u]|\\u[0-9a-f]{4})"
"""One character of a text as ``json.dumps`` writes it in a filter key: itself, or its escape (\\" \\\\ \\n \\u001f)."""


class Compiler:
    """Query DSL (and query_string trees) into tantivy queries on the leg's schema."""

    def __init__(self, leg: TantivyRetriever, limits: ServiceSettings):
        self.leg = leg
        self.schema = leg.schema
        self.limits = limits
        """The service's bounds on a body (``max_fuzzy_terms``, ``max_wildcard_terms``, ``max_sloppy_phrases``), read
        by :meth:`_count`."""
        self.aliases = limits.field_aliases
        self._fuzzy_terms: dict[tuple[str, str, str], int] = {}
        """The fuzzy words compiled, by where: the same body compiled again (scored, then as a filter, then for
        its highlights) counts each once."""
        self._wildcard_terms: dict[tuple[str, str, str], int] = {}
        """The wildcard patterns compiled, by where, counted as the fuzzy words are, each by its wildcards."""
        self._sloppy_phrases: dict[tuple[str, str, str], int] = {}
        """The phrases of three words or more with a slop compiled, by where, counted as the fuzzy words are."""
        self._regex_queries: dict[tuple[str, str], tantivy.Query] = {}
        """The automata built, by field and regular expression: a body compiled again builds none twice."""
        self.ignored: list[str] = []
        """Parts of the query that change only Elasticsearch's scores, which the pipeline's ranking replaces,
        and a fuzzy word's ``prefix_length``, which tantivy's fuzzy query cannot hold a word to."""
        self.worded_terms = False
        """Whether a ``term``/``terms`` named a text field (``brand``, ``category``): it matches a word there."""
        self._marks: list[Mark] | None = None
        self._negated = 0
        self._text_options: Mapping[str, Any] = {}
        """The options of the full-text query being compiled (a ``match``'s, a ``multi_match``'s, a
        ``query_string``'s, :meth:`options_of`): its ``lenient`` (:meth:`leniently`) and a query_string's
        ``time_zone`` (:meth:`span`)."""
        self._read: dict[str, None] = {}
        """The texts whose misspelt words are read (:meth:`misspelt_alternatives`), in order, each once however
        often the body is compiled: at most ``service.max_query_length`` characters of them."""
        self._read_all = False

    def marks(self, query: Any, path: str) -> list[Mark]:
        """What highlights mark for ``query``: the words of each of its text clauses, in the fields it searched.

        Every clause counts but those under ``must_not`` (filters, ``constant_score``, ``should`` alike), as
        Lucene's highlighter visits a query; compiling has no other effect here.
        """
        worded, self._marks = self.worded_terms, []
        try:
            self.query(query, path, False)
            return self._marks
        finally:
            self.worded_terms, self._marks = worded, None

    def _mark(self, mark: Mark) -> None:
        if self._marks is not None and not self._negated:
            self._marks.append(mark)

    def excluded(self, clause: Any, path: str) -> Compiled:
        """A ``must_not`` clause: it decides what matches, and highlights mark none of its words."""
        self._negated += 1
        try:
            return self.query(clause, path, False)
        finally:
            self._negated -= 1

    def ignore(self, what: str) -> None:
        if what not in self.ignored:
            self.ignored.append(what)

    # ------------------------------------------------------------ fields

    def target(self, name: str, path: str) -> Target:
        name = alias_of(name, self.aliases)
        if name in ("_id", "id"):
            return Target("id", "id", sort="id")
        if name == TITLE_KEYWORD:  # the title as written, in its sort field (a keyword: exact, patterns, facets)
            held = SORT_FIELDS["title"]
            return Target("keyword", TITLE_KEYWORD, held, held, field=held)
        if name in NUMERIC_FIELDS:
            return Target("numeric", name, name, name, NUMERIC_FIELDS[name])
        if name in LEXICAL_FIELDS:
            facet = {"brand": "facet.brand", "category": "facet.category.path"}.get(name)
            return Target("text", name, facet, SORT_FIELDS[name] if facet is not None else None)
        base = name.removesuffix(".keyword")
        if base in ("brand", "facet.brand"):
            return Target("brand", "brand", "facet.brand", SORT_FIELDS["brand"])
        if _LEVEL.fullmatch(base):
            return Target("category", "category", base)
        if base in ("category", "facet.category.path"):
            return Target("category", "category", "facet.category.path", SORT_FIELDS["category"])
        for prefix in ("attributes.", "facet.attributes."):
            key = base.removeprefix(prefix)
            if base.startswith(prefix) and key and "." not in key:
                return Target("attribute", key.lower(), f"facet.attributes.{key.lower()}")
        own = self.catalog_target(name)
        if own is not None:
            return own
        raise Unsupported(
            path,
            f"field {name!r} (the product's fields: id, {', '.join(LEXICAL_FIELDS)}, attributes.<name>, "
            f"{', '.join(NUMERIC_FIELDS)}{self._catalog_names()}; service.field_aliases maps other names onto them)",
        )

    def indexed(self, name: str, where: str) -> IndexedField:
        """Where a ``docvalue_fields`` name's values are in what the index holds for a product (see hit_fields)."""
        if alias_of(name, self.aliases) == TITLE_KEYWORD:
            return IndexedField(TITLE_KEYWORD)
        target = self.target(name, where)
        if target.kind == "text":
            raise text_field(name, where)
        if target.kind == "attribute":
            return IndexedField(ATTRIBUTE_VALUES, attribute=target.name)
        if target.kind in ("brand", "category") and target.facet is not None:
            return IndexedField(target.facet)
        if target.kind == "id" or (target.kind == "numeric" and target.field is None):
            return IndexedField(target.name)
        return IndexedField(target.name, catalog=True)

    def catalog_target(self, name: str) -> Target | None:
        """One of the catalog's own fields (core/catalog_fields.py), by the name a front end gives it
        (``CatalogFields.named``)."""
        catalog = self.leg.catalog
        own = catalog.named(name)
        if own is None:
            return None
        name, kind = own, catalog.types[own]
        field = catalog.index_field(name)
        held = self.leg.held_as(field)
        number = held if held in (tantivy.FieldType.Integer, tantivy.FieldType.Float) else None
        several = name in catalog.several
        return Target(
            "numeric" if kind in ("long", "double") else kind,
            name,
            field,
            f"{field}{MIN_SUFFIX}" if several else field,
            number=number,
            field=field,
            sort_max=f"{field}{MAX_SUFFIX}" if several else None,
        )

    def _catalog_names(self) -> str:
        names = list(self.leg.catalog.types)
        if not names:
            return ""
        shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
        return f", and the catalog's own: {shown}"

    def default_fields(self, names: Any, path: str) -> list[str]:
        """A ``fields`` list (``title^2``, ``*``, wildcards) as the text fields it names; none: the searched ones."""
        if names in (None, [], "*", ["*"]):
            return list(self.leg.fields)
        names = [names] if isinstance(names, str) else names
        if not isinstance(names, list):
            raise InvalidQuery(path, "expected a list of field names")
        out: list[str] = []
        for raw in names:
            if not isinstance(raw, str):
                raise InvalidQuery(path, "expected a list of field names")
            name = alias_of(raw.partition("^")[0], self.aliases)
            if "*" in name:
                out += [f for f in text_fields_matching(name, self.aliases) if f not in out]
            elif name not in out:
                out.append(name)
        return out

    # ------------------------------------------------------------ leaf queries

    def exact(self, target: Target, values: list[Any], path: str) -> tantivy.Query:
        """``term``/``terms``: any of ``values``, with the product's filter semantics (case-insensitive keys)."""
        if not values:
            return tantivy.Query.empty_query()
        texts = [a_keyword(v, path) for v in values]
        if target.kind == "id":
            return tantivy.Query.term_set_query(self.schema, "id", texts)
        if target.kind == "brand":
            return tantivy.Query.term_set_query(self.schema, "brand_key", sorted({normalise_term(v) for v in texts}))
        if target.kind == "category":
            keys = {category_key(Filters.model_validate({"category": v}).category or ()) for v in texts}
            return tantivy.Query.term_set_query(self.schema, "category_path", sorted(keys))
        if target.kind == "attribute":
            keys = {attribute_key(target.name, v) for v in texts}
            return tantivy.Query.term_set_query(self.schema, "attr", sorted(keys))
        if target.kind == "numeric":
            return _any(self._number(target, text, path) for text in texts)
        if target.kind == "keyword":
            return tantivy.Query.term_set_query(self.schema, target.indexed, sorted(set(texts)))
        if target.kind == "boolean":
            return _any(tantivy.Query.term_query(self.schema, target.indexed, a_boolean(v, path)) for v in values)
        if target.kind == "date":
            # Elasticsearch's term on a date is the range of what it names: "2025-03-01" is the whole day.
            return _any(
                self.range(target, date_bound(v, False, path), date_bound(v, True, path), True, True, path)
                for v in values
            )
        self.worded_terms = True
        return _any(self.words([target.name], v, phrase=False, every=True) for v in texts)

    def value(self, target: Target, text: str, fuzzy: Fuzziness | None, path: str) -> tantivy.Query:
        """A word of a full-text query on a field that is not text: its exact value (:meth:`exact`) or, where the
        word is fuzzy, what Elasticsearch makes of a fuzzy word there: a keyword's values (a brand's as its filter
        key folds them) within the word's edits, and on a number, a date or a flag a 400 naming where, as
        Elasticsearch refuses the query ("Can only use fuzzy queries on keyword and text fields"); a lenient
        query leaves the field out instead (:meth:`leniently`). An id, a category or an attribute matches exactly."""
        if fuzzy is None:
            return self.exact(target, [text], path)
        if target.kind in UNFUZZY_KINDS:
            raise InvalidQuery(
                path, f"a fuzzy word on {target.name!r}, a {target.kind} field: only keyword and text fields take one"
            )
        if target.kind == "keyword":
            return self.term(target.indexed, text, fuzzy, path)
        if target.kind == "brand":
            return self.term("brand_key", normalise_term(text), fuzzy, path)
        return self.exact(target, [text], path)

    def _number(self, target: Target, text: str, path: str) -> tantivy.Query:
        """One number's term. A whole number on a field of whole numbers is looked up as it is written: read as
        a double, 9007199254740993 would be 9007199254740992, another product's value."""
        if target.number == tantivy.FieldType.Integer and WHOLE_NUMBER.fullmatch(text.strip()):
            whole = int(text)
            if not MIN_LONG <= whole <= MAX_LONG:  # as a double it was Long.MAX_VALUE's, and matched nothing
                raise InvalidQuery(path, f"Value [{text.strip()}] is out of range for a long")
            return tantivy.Query.term_query(self.schema, target.indexed, whole)
        number = a_number(text, path)
        return self.range(target, number, number, True, True, path)

    def words(
        self,
        fields: list[str],
        text: str,
        phrase: bool,
        every: bool,
        path: str = "",
        prefix: bool = False,
        fuzzy: Fuzziness | None = None,
        slop: int = 0,
        minimum_should_match: ShouldMatch | None = None,
        across: bool = False,
        readings: bool = False,
    ) -> tantivy.Query:
        """Text matched as Elasticsearch matches it on analyzed fields: any field; every word or any (or a phrase).

        A field that is not a text field matches its values instead (a ``match`` on ``brand.keyword``, see
        :meth:`value`). With ``prefix`` the last word is one being typed
        (``bool_prefix``, ``phrase_prefix``): it also matches the words it begins, so "sof" finds sofas.
        ``fuzzy`` lets each other word match within its edits ("sofw" finds sofas); ``slop`` lets a phrase's
        words be that many positions apart. ``minimum_should_match`` is how many of the words must match
        (:func:`_each_word`). The words are matched within each field (``best_fields``, ``most_fields``), or
        ``across`` the text fields, each word in any of them (``cross_fields``, ``combined_fields``). With
        ``readings`` (a ``match`` or a ``multi_match`` that decides what matches) the text's model codes and its
        misspelt words' readings are alternatives to its words (:meth:`code_alternatives`,
        :meth:`misspelt_alternatives`, the readings not beside the query's own ``fuzziness``), as the cluster
        backends add them to the same body.
        """
        tokens = self.leg.analyze(text)
        per_field: list[tantivy.Query] = []
        names: list[str] = []
        for name in fields:
            target = self.target(name, path or name)
            if target.kind != "text":
                per_field.append(self.leniently(functools.partial(self.value, target, text, fuzzy, path or name)))
            elif tokens and target.name not in names:
                names.append(target.name)
        found = tuple(self.leg.codes(text)) if names else ()
        # What a synonym rule reads the words as is marked too, as a cluster's highlighter marks the terms its
        # search analyzer made: "couch" marks the "sofa" it found.
        synonymous = [v for v in self.leg.synonym_variants(tokens) if v != tokens] if names else []
        for name in names:
            self._mark(Mark(name, tuple(tokens), fuzzy, prefix, phrase and len(tokens) > 1, slop, codes=found))
            for variant in synonymous:
                self._mark(Mark(name, tuple(variant), phrase=phrase and len(variant) > 1, slop=slop))
        if names:
            spelled = functools.partial(
                self.text_words,
                names,
                phrase=phrase,
                every=every,
                path=path,
                prefix=prefix,
                fuzzy=fuzzy,
                slop=slop,
                minimum_should_match=minimum_should_match,
                across=across,
            )
            per_field += spelled(tokens)
            if readings:
                counted = minimum_should_match is not None and minimum_should_match.of(len(tokens)) > 1
                in_order = len(tokens) > 1 and (phrase or counted)
                if found:
                    per_field += self.code_alternatives(names, text, found, in_order, every, spelled, across)
                if fuzzy is None:  # a query's own fuzziness is its typo tolerance
                    per_field += self.misspelt_alternatives(
                        names, text, tokens, in_order, every, spelled, prefix, across
                    )
        if not per_field:
            return tantivy.Query.empty_query()
        return _any(per_field)

    def text_words(
        self,
        names: list[str],
        tokens: list[str],
        *,
        phrase: bool,
        every: bool,
        path: str,
        prefix: bool,
        fuzzy: Fuzziness | None,
        slop: int,
        minimum_should_match: ShouldMatch | None,
        across: bool,
    ) -> list[tantivy.Query]:
        """The analysed words ``tokens`` in the text fields ``names``, as :meth:`words` matches them: a query per
        field (one across them all). The words a rule of the shop's synonyms matches (``lexical.synonyms_file``,
        :mod:`.backends.synonyms`) match as any of the rule's readings, as the cluster's search analyzer has
        them matched: in a phrase, each text the rules make of it; otherwise the span as one word, any reading
        of it (a reading of several words a phrase)."""
        if phrase and len(tokens) > 1:
            return [
                query
                for variant in self.leg.synonym_variants(tokens)
                for query in (
                    self.phrases(names, variant, path=path, prefix=prefix, slop=slop)
                    if len(variant) > 1  # a rule may read a phrase as one word ("hooded sweatshirt" as "hoodie")
                    else [self.term(name, variant[0], None, path) for name in names]
                )
            ]

        def word(name: str, i: int) -> tantivy.Query:
            if prefix and i == len(tokens) - 1:
                return self.prefix(name, tokens[i])
            return self.term(name, tokens[i], fuzzy, path)

        def reading(name: str, words: tuple[str, ...]) -> tantivy.Query:
            if len(words) == 1:
                return self.term(name, words[0], None, path)
            return tantivy.Query.phrase_query(self.schema, name, list(words))

        spans = {span.start: span for span in self.leg.synonym_spans(tokens)}

        def each(
            one: Callable[[int], tantivy.Query], other: Callable[[tuple[str, ...]], tantivy.Query]
        ) -> list[tantivy.Query]:
            """The words' queries in order, a synonym rule's span one of them: its words (where the rule keeps
            them: as a phrase, as Elasticsearch's graph of the span reads them, or all of them where the last is
            being typed) or ``other`` reading. A span repeating an earlier one is left out where no
            ``minimum_should_match`` counts the words: it matches nothing more, at the cost of all its readings."""
            out: list[tantivy.Query] = []
            seen: set[tuple[str, ...]] = set()
            i = 0
            while i < len(tokens):
                span = spans.get(i)
                if span is None:
                    out.append(one(i))
                    i += 1
                    continue
                i = span.end
                if span.words in seen and minimum_should_match is None:
                    continue
                seen.add(span.words)
                typing = prefix and span.end == len(tokens)
                typed = _each_word([one(j) for j in range(span.start, span.end)], True, None) if typing else None
                kept = [typed or other(span.words)] if span.keeps_words else []
                out.append(_any([*kept, *map(other, span.alternatives)]))
            return out

        if across:
            in_any = each(
                lambda i: _any(word(name, i) for name in names),
                lambda words: _any(reading(name, words) for name in names),
            )
            return [_each_word(in_any, every, minimum_should_match)]
        return [
            _each_word(
                each(functools.partial(word, name), functools.partial(reading, name)), every, minimum_should_match
            )
            for name in names
        ]

    def phrases(
        self, names: list[str], tokens: list[str], *, path: str, prefix: bool, slop: int
    ) -> list[tantivy.Query]:
        """The phrase ``tokens`` in each text field of ``names`` (the last word being typed with ``prefix``)."""
        if not prefix and len(tokens) > MAX_SLOPPY_WORDS and slop > MAX_LONG_PHRASE_SLOP:
            raise InvalidQuery(
                path,
                f"a phrase of {len(tokens)} words may have a slop of at most {MAX_LONG_PHRASE_SLOP} here, not "
                f"{slop} (one of at most {MAX_SLOPPY_WORDS} words, any slop)",
            )
        words: list[str | tuple[int, str]] = list(tokens)
        if prefix:
            return [tantivy.Query.phrase_prefix_query(self.schema, name, words) for name in names]
        if slop and len(tokens) > 2:
            for name in names:
                key = (path, name, f"{' '.join(tokens)}~{slop}")
                self._count(
                    self._sloppy_phrases, key, "max_sloppy_phrases", "phrases of three words or more with a slop"
                )
        return [tantivy.Query.phrase_query(self.schema, name, words, slop) for name in names]

    def misspelt_alternatives(
        self,
        names: list[str],
        text: str,
        tokens: list[str],
        in_order: bool,
        every: bool,
        spelled: Callable[[list[str]], list[tantivy.Query]],
        prefix: bool,
        across: bool,
    ) -> list[tantivy.Query]:
        """The ways ``text``'s misspelt words (``lexical.correct_typos``: each word the leg reads as other terms,
        :meth:`.TantivyRetriever.query_words`) match by their readings in the text fields ``names``, by the rules of
        :meth:`.delegation.ClusterFields.with_readings`: where any word will do, each reading an alternative; where
        every word is needed, all of them with the other words (``spelled``), in one field unless the words match
        ``across`` the fields; ``in_order``, only a text that is the one word. A word the leg also searches as typed (a unit's spellings, a joined word) is no misspelt one, nor
        is the word being typed (``prefix``) where it starts a word the searched fields hold, as a whole word is
        held there ("leat" is "leather" so far, no typo of "leaf")."""
        if in_order or not self.reads(text):  # before the leg reads the words: nothing it says would be used
            return []
        typing = tokens[-1] if prefix and tokens else None
        held_in = self.leg.fields
        misspelt = [
            word
            for word in self.leg.query_words(text)
            if word.term in tokens
            and word.term not in dict(word.searched_as)
            and not (word.term == typing and count(self.leg.searcher(), _any(self.prefix(n, typing) for n in held_in)))
        ]
        if not misspelt:
            return []

        def reading(word: QueryWord, fields: list[str]) -> tantivy.Query:
            return _any(
                tantivy.Query.boost_query(tantivy.Query.term_query(self.schema, name, term), weight)
                for name in fields
                for term, weight in word.searched_as
            )

        if not every:
            return [reading(word, names) for word in misspelt]
        rest = [token for token in tokens if token not in {word.term for word in misspelt}]
        return _with_the_other_words(
            lambda fields: _all(reading(word, fields) for word in misspelt), rest, names, spelled, across
        )

    def reads(self, text: str) -> bool:
        """Whether ``text``'s misspelt words are read: while the body's texts read stay within
        ``service.max_query_length`` characters, the most a ranked text may hold. Each word is a walk of the
        index's terms, so a filter of a thousand misspelt words would cost a thousand walks; from the text that
        would pass the bound on, each is matched as typed, as on a cluster past its questions
        (:data:`.delegation.MAX_BODY_SPELLING_ASKS`)."""
        if text in self._read:
            return True
        if self._read_all or sum(map(len, self._read)) + len(text) > self.limits.max_query_length:
            self._read_all = True  # and no later text, as the cluster asks about none after its last question
            return False
        self._read[text] = None
        return True

    def code_alternatives(
        self,
        names: list[str],
        text: str,
        codes: Sequence[str],
        in_order: bool,
        every: bool,
        spelled: Callable[[list[str]], list[tantivy.Query]],
        across: bool,
    ) -> list[tantivy.Query]:
        """The ways ``text``'s model ``codes`` match beside its words in the text fields ``names``, by the rules of
        :meth:`.delegation.ClusterFields.with_readings`: "dw745b" and "dw 745b" find "DW745-B" in a filter as in a
        search. A code stands for the words it spans: where any word will do it is an alternative alone; where
        every word is needed it goes with the words it leaves (``spelled``: "dw745b table saw" is the code, "table"
        and "saw", in one field unless the words match ``across`` the fields); ``in_order`` (a phrase, a ``minimum_should_match``), whose words cannot be asked apart, only
        the code the whole text is. At most :data:`.codes.MAX_QUERY_CODES`, and only the codes some product holds
        in those fields."""
        boosts = dict.fromkeys(names, 1.0)
        rests = code_rests(text)
        alternatives = []
        for code in codes[:MAX_QUERY_CODES]:
            lookup = self.leg.code_query([code], boosts)
            rest = self.leg.analyze(rests[code]) if every or in_order else []
            if lookup is None or (rest and in_order):
                continue

            def found_in(fields: list[str], code: str = code, lookup: tantivy.Query = lookup) -> tantivy.Query | None:
                """The code in ``fields``: the lookup in them all already made, or one field's."""
                return lookup if fields == names else self.leg.code_query([code], dict.fromkeys(fields, 1.0))

            alternatives += _with_the_other_words(found_in, rest, names, spelled, across)
        return alternatives

    def term(self, name: str, term: str, fuzzy: Fuzziness | None, path: str) -> tantivy.Query:
        """The analysed ``term``, or any word within its edits when ``fuzzy`` allows some.

        A fuzzy word walks the field's whole term dictionary and unions the postings of every word within its
        edits (tantivy's fuzzy query has no ``max_expansions``), about a millisecond each on a catalogue of
        thousands, where an exact word costs microseconds; so a body's fuzzy words are counted, each word in each
        field once, and past ``service.max_fuzzy_terms`` the body is a 400 naming where (Lucene's
        ``max_clause_count`` plays this part in Elasticsearch). Without it, sixty copies of one fuzzy
        ``multi_match`` (34 KB) cost 5 s of CPU, on a thread that went on after the lexical leg's deadline had
        answered without it."""
        if fuzzy is None or (edits := fuzzy.distance(term)) == 0:
            return tantivy.Query.term_query(self.schema, name, term)
        self._count(self._fuzzy_terms, (path, name, term), "max_fuzzy_terms", "fuzzy words")
        return tantivy.Query.fuzzy_term_query(
            self.schema, name, term, distance=edits, transposition_cost_one=fuzzy.transpositions
        )

    def _count(
        self, seen: dict[tuple[str, str, str], int], key: tuple[str, str, str], setting: str, what: str, weight: int = 1
    ) -> None:
        """Count a word that walks a term dictionary, by (where, field, word), ``weight`` times (a pattern's
        wildcards): past ``service.<setting>`` of its kind the body is a 400 naming where (``key[0]``)."""
        seen[key] = weight
        limit = getattr(self.limits, setting)
        if sum(seen.values()) > limit:
            raise InvalidQuery(
                key[0],
                f"more than {limit} {what} in the query, counting each word in each field it searches "
                f"(service.{setting})",
            )

    def wildcard(
        self, target: Target, pattern: wildcards.Pattern, path: str, case_insensitive: bool = False
    ) -> tantivy.Query:
        """The products with a word (a text field) or a value (an id, a brand, an attribute) that ``pattern``
        matches whole, as a tantivy regular-expression query over the field's terms.

        A text field's words are matched in lower case and folded to ASCII as they are indexed, as Elasticsearch's
        ``query_string`` normalises a wildcard word (so ``Sof*`` finds sofas, ``Café*`` cafés); a brand and an attribute value as their filter keys
        fold them (any case); an id as written unless ``case_insensitive``. The indexed words are stems ("sofas"
        is indexed "sofa"), as under Elasticsearch's ``english`` analyser, so ``sofas*`` finds no sofa.
        """
        if target.kind == "text":
            field_name, regex = target.name, wildcards.regex(pattern, self.leg.normalise)
        elif target.kind in ("id", "keyword"):  # a value as written, as Elasticsearch's keyword holds it
            field_name, regex = target.indexed, ("(?i)" if case_insensitive else "") + wildcards.regex(pattern)
        elif target.kind == "brand":
            # A product without a brand holds the key "" (so that a filter can name none): no brand to match,
            # as the cluster's facet.brand and Elasticsearch's keyword hold no value for it.
            if not pattern:
                return tantivy.Query.empty_query()
            field_name, regex = "brand_key", wildcards.regex(pattern, str.casefold)
            if wildcards.matches(pattern, ""):
                regex = f"{wildcards.ANY_CHAR}+"
        elif target.kind == "attribute":
            opening, closing = attribute_key(target.name, "\x00").split("\\u0000")
            field_name = "attr"
            value = wildcards.regex(
                pattern, lambda text: json.dumps(text.casefold(), ensure_ascii=False)[1:-1], _JSON_CHAR
            )
            regex = wildcards.escape(opening) + value + wildcards.escape(closing)
        else:
            raise Unsupported(
                path, f"a wildcard or prefix on {target.name!r} (on text fields, ids, brands, attributes, keywords)"
            )
        if wildcards.tail(pattern) > wildcards.MAX_TAIL:
            raise InvalidQuery(
                path,
                f"at most {wildcards.MAX_TAIL} characters from a pattern's first wildcard on (the size of the "
                "automaton that walks the field's terms grows with them)",
            )
        self._count(
            self._wildcard_terms,
            (path, field_name, regex),
            "max_wildcard_terms",
            "wildcards (* and ?)",
            wildcards.weight(pattern),
        )
        query = self._regex_queries.get((field_name, regex))
        if query is None:
            try:
                query = tantivy.Query.regex_query(self.schema, field_name, regex)
            except ValueError:  # tantivy's automaton for it would be too large (``?`` hundreds of times)
                raise InvalidQuery(path, "the pattern is too large to search") from None
            self._regex_queries[(field_name, regex)] = query
        if target.kind == "text":
            self._mark(Mark(target.name, (wildcards.literal_text(pattern),), pattern=pattern))
        return query

    def lucene_pattern(self, pattern: str, field_name: str, path: str) -> str:
        """A terms aggregation's ``include`` or ``exclude`` (Lucene's regular expression) in tantivy's syntax,
        its repetitions counted against ``service.max_wildcard_terms`` with the body's wildcards: a 56 KB body of
        fourteen aggregations took 6 s before."""
        regex, repetitions = lucene_regexp.to_tantivy(pattern, path)
        self._count(
            self._wildcard_terms, (path, field_name, regex), "max_wildcard_terms", "wildcards (* and ?)", repetitions
        )
        return regex

    def fuzziness(self, options: Mapping[str, Any], path: str) -> Fuzziness | None:
        """A text query's ``fuzziness`` (None: exact words), with ``fuzzy_transpositions``.

        tantivy's fuzzy query has no ``prefix_length`` (letters that must match exactly): a nonzero one is
        listed as ignored, since the words it would leave out still match.
        """
        if options.get("fuzziness") is None:
            return None
        if options.get("prefix_length") not in (None, 0, "0"):
            self.ignore(f"{path}.prefix_length")
        return parse_fuzziness(options["fuzziness"], options.get("fuzzy_transpositions", True), path)

    def prefix(self, name: str, term: str) -> tantivy.Query:
        """The analysed ``term`` as itself or as the start of a longer word.

        tantivy's phrase-prefix query with a single word is a term-prefix query that expands to at most 50
        words of the index (its ``max_expansions``), so a one-letter prefix stays cheap; the exact word is
        OR'ed in so that it always counts, with its BM25 score, whatever the expansions left out.
        """
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Should, tantivy.Query.term_query(self.schema, name, term)),
                (tantivy.Occur.Should, tantivy.Query.phrase_prefix_query(self.schema, name, [term])),
            ]
        )

    def range(
        self, target: Target, low: float | None, high: float | None, include_low: bool, include_high: bool, path: str
    ) -> tantivy.Query:
        if target.number is None:
            raise Unsupported(path, f"a range on {target.name!r} (ranges: {', '.join(NUMERIC_FIELDS)})")
        kind = target.number
        if kind == tantivy.FieldType.Integer:
            for bound in (low, high):
                if bound is not None:
                    within_long(bound, path)
            # Whole numbers: an exclusive or fractional bound becomes the inclusive whole bound it means.
            if low is not None:
                low, include_low = (
                    (math.floor(low) + 1 if not include_low and low.is_integer() else math.ceil(low)),
                    True,
                )
            if high is not None:
                high = math.ceil(high) - 1 if not include_high and high.is_integer() else math.floor(high)
                include_high = True
            if (low is not None and high is not None and low > high) or (low or 0) > MAX_LONG or (high or 0) < MIN_LONG:
                return tantivy.Query.empty_query()  # above the largest long, or below the smallest: nothing
        if low is None and high is None:
            return tantivy.Query.exists_query(target.indexed)
        return tantivy.Query.range_query(
            self.schema,
            target.indexed,
            kind,
            None if low is None else (a_long(low) if kind == tantivy.FieldType.Integer else float(low)),
            None if high is None else (a_long(high) if kind == tantivy.FieldType.Integer else float(high)),
            include_low if low is not None else True,
            include_high if high is not None else True,
        )

    def exists(self, target: Target) -> tantivy.Query:
        """The products with a value in ``target``'s field. Every product has an id and a title; an attribute,
        brand or category is there when its facet is; a text without a fast field of its own (the description)
        is there when it holds a word, so a description of punctuation alone counts as none (Elasticsearch counts
        any text, "" included; the catalogue holds no "": a missing field and an empty one are the same product)."""
        if target.kind == "id" or target.name == "title":
            return tantivy.Query.all_query()
        if target.name == "attributes":
            return tantivy.Query.exists_query(f"{FACET_FIELD}.attributes", json_subpaths=True)
        if target.facet is None:
            return tantivy.Query.regex_query(self.schema, target.indexed, ".+")
        return tantivy.Query.exists_query(target.facet, json_subpaths=target.kind == "category")

    # ------------------------------------------------------------ the DSL

    def query(self, query: Any, path: str, scoring: bool) -> Compiled:
        kind, spec = single_key(query, path)
        where = f"{path}.{kind}"
        fuzzy_counts(kind, spec, where)
        if kind == "match_all":
            known_keys(an_object(spec, where), where, QUERY_KEYS[kind])
            return Compiled()
        if kind == "match_none":
            return Compiled(tantivy.Query.empty_query())
        if kind in TEXT_QUERIES:
            return self._match(kind, spec, where, scoring)
        if kind in MULTI_FIELD_QUERIES:
            return self._multi_match(kind, spec, where, scoring)
        if kind == "common":
            return self._common(spec, where, scoring)
        if kind in ("query_string", "simple_query_string"):
            return self._query_string(kind, spec, where, scoring)
        if kind in ("term", "terms"):
            return Compiled(self._term(kind, spec, where))
        if kind == "range":
            return Compiled(self._range(spec, where))
        if kind in ("prefix", "wildcard"):
            return self._pattern(kind, spec, where, scoring)
        if kind == "fuzzy":
            return self._fuzzy(spec, where, scoring)
        if kind == "exists":
            name = a_string(an_object(spec, where).get("field"), f"{where}.field")
            target = self.target(name, f"{where}.field")
            return Compiled(self.exists(target))
        if kind == "ids":
            values = an_object(spec, where).get("values")
            if not isinstance(values, list):
                raise InvalidQuery(f"{where}.values", "expected a list of ids")
            return Compiled(self.exact(Target("id", "id"), values, where))
        if kind == "bool":
            return self._bool(spec, where, scoring)
        if kind == "constant_score":
            return Compiled(self.query(an_object(spec, where).get("filter"), f"{where}.filter", False).constraint)
        if kind == "function_score":
            return self._function_score(an_object(spec, where), where, scoring)
        if kind == "boosting":
            return self._boosting(an_object(spec, where), where, scoring)
        if kind == "dis_max":
            queries = an_object(spec, where).get("queries")
            if not isinstance(queries, list) or not queries:
                raise InvalidQuery(f"{where}.queries", "expected a list of queries")
            return self._alternatives(queries, f"{where}.queries", scoring, required=1)
        if kind == "pinned":
            return self._pinned(an_object(spec, where), where, scoring)
        raise Unsupported(where, f"query type {kind!r}")

    def _pinned(self, spec: Mapping[str, Any], path: str, scoring: bool) -> Compiled:
        """Its ids or its organic query, as Elasticsearch matches it; scored, the organic query alone: the pipeline
        ranks by it, and the pinned products the search matches are put first after (see serving.pinned)."""
        ids, organic_query = pinned_query(spec, path)
        organic = self.query(organic_query, f"{path}.organic", scoring)
        if scoring or not ids:
            return organic
        if organic.constraint is None:
            return Compiled()  # the organic query matches every product
        return Compiled(_any([self.exact(Target("id", "id"), ids, f"{path}.ids"), organic.constraint]))

    def _function_score(self, spec: Mapping[str, Any], path: str, scoring: bool) -> Compiled:
        """Its ``query`` (none: every product): the functions change only scores, and the pipeline ranks.

        A front end's boosts (Spryker's cart-colour ``weight`` functions, Searchkit's query rules) then do not
        move hits, and are listed as ignored; ``min_score``, which would drop hits by those scores, is a 501.
        """
        _check_function_score(spec, path)
        for i, function in enumerate(spec.get("functions") or ()):
            if function.get("filter") is not None:
                # Read, though ignored, as Elasticsearch parses it: a malformed filter is a 400; one this index
                # cannot answer changes nothing here, the function being ignored.
                with contextlib.suppress(Unsupported):
                    self.excluded(function_filter(function), f"{path}.functions[{i}].filter")
        if spec.get("min_score") is not None:
            raise Unsupported(f"{path}.min_score", "dropping hits by their function score (the pipeline ranks)")
        for key in ("functions", *FUNCTION_SCORE_FUNCTIONS):
            if spec.get(key) is not None:
                self.ignore(f"{path}.{key}")
        inner = spec.get("query")
        return Compiled() if inner is None else self.query(inner, f"{path}.query", scoring)

    def _boosting(self, spec: Mapping[str, Any], path: str, scoring: bool) -> Compiled:
        """Its ``positive`` query: ``negative`` only lowers the scores of the matches it also matches (a shop's
        "sold out last"), and the pipeline ranks, so it is ignored as a function_score's functions are, after it
        is read as Elasticsearch's parser reads it (a malformed one, or no ``negative_boost``, is a 400)."""
        known_keys(spec, path, BOOSTING_KEYS)
        for key in ("positive", "negative", "negative_boost"):
            if spec.get(key) is None:
                raise InvalidQuery(f"{path}.{key}", "required")
        if a_number(spec["negative_boost"], f"{path}.negative_boost") < 0:
            raise InvalidQuery(f"{path}.negative_boost", "must not be negative")
        with contextlib.suppress(Unsupported):  # one this index cannot answer changes nothing here either
            self.excluded(spec["negative"], f"{path}.negative")  # nor do highlights mark its words
        self.ignore(f"{path}.negative")
        return self.query(spec["positive"], f"{path}.positive", scoring)

    def _match(self, kind: str, spec: Any, path: str, scoring: bool) -> Compiled:
        name, value = single_key(spec, path)
        options = value if isinstance(value, Mapping) else {"query": value}
        known_keys(options, f"{path}.{name}", QUERY_KEYS[kind])
        text = a_string(options.get("query"), f"{path}.{name}.query", scalars=True)
        target = self.target(name, f"{path}.{name}")
        every = _every_word(options, f"{path}.{name}")
        phrase = kind in ("match_phrase", "match_phrase_prefix")
        where = f"{path}.{name}"
        # Elasticsearch's match_phrase(_prefix) takes no fuzziness, and only a whole-word phrase a slop here.
        fuzzy = None if phrase else self.fuzziness(options, where)
        msm = ShouldMatch.parse(options.get("minimum_should_match"), f"{where}.minimum_should_match")
        if self.zero_terms_match_all(options, text, [name], where):
            return Compiled()
        if kind in PREFIX_QUERIES:
            return self._typed(text, [name], phrase, every, where, scoring, fuzzy, msm)
        if scoring and target.kind == "text":
            return self._ranked(text, [name], every, where, fuzzy, msm)
        if kind == "match" and options.get("cutoff_frequency") is not None:
            text, every, msm = self.rare_words_needed(text, [name], options["cutoff_frequency"], every, msm, where)
        slop = a_count(options.get("slop", 0), f"{where}.slop")
        with self.options_of(options):
            return Compiled(
                self.words(
                    [name], text, phrase, every, where, fuzzy=fuzzy, slop=slop, minimum_should_match=msm, readings=True
                )
            )

    def _multi_match(self, kind: str, spec: Any, path: str, scoring: bool) -> Compiled:
        spec = an_object(spec, path)
        known_keys(spec, path, QUERY_KEYS[kind])
        text = a_string(spec.get("query"), f"{path}.query", scalars=True)
        fields = self.default_fields(spec.get("fields"), f"{path}.fields")
        every = _every_word(spec, path)
        if spec.get("type") is not None:
            one_of(spec["type"], MULTI_MATCH_TYPES, f"{path}.type")
        phrase = spec.get("type") in ("phrase", "phrase_prefix")
        # combined_fields and the phrase types take no fuzziness in Elasticsearch.
        fuzzy = self.fuzziness(spec, path) if kind == "multi_match" and not phrase else None
        msm = ShouldMatch.parse(spec.get("minimum_should_match"), f"{path}.minimum_should_match")
        # Term-centric: each word in any of the fields, as one field made of them all.
        across = kind == "combined_fields" or spec.get("type") == "cross_fields"
        if self.zero_terms_match_all(spec, text, fields, path):
            return Compiled()
        if spec.get("type") in PREFIX_TYPES:
            return self._typed(text, fields, phrase, every, f"{path}.fields", scoring, fuzzy, msm)
        if scoring and all(self.target(f, f"{path}.fields").kind == "text" for f in fields):
            return self._ranked(text, fields, every, f"{path}.fields", fuzzy, msm, across)
        if kind == "multi_match" and not phrase and spec.get("cutoff_frequency") is not None:
            text, every, msm = self.rare_words_needed(text, fields, spec["cutoff_frequency"], every, msm, path)
        slop = a_count(spec.get("slop", 0), f"{path}.slop")
        with self.options_of(spec):
            return Compiled(
                self.words(
                    fields,
                    text,
                    phrase,
                    every,
                    f"{path}.fields",
                    fuzzy=fuzzy,
                    slop=slop,
                    minimum_should_match=msm,
                    across=across,
                    readings=True,
                )
            )

    def _common(self, spec: Any, path: str, scoring: bool) -> Compiled:
        """The ``common`` terms query (Elasticsearch 7, OpenSearch): a ``match`` whose rare words are needed by
        ``low_freq_operator`` and ``minimum_should_match`` (or its ``low_freq``) and whose frequent words only
        score; with no rare word, the frequent ones by ``high_freq_operator`` and ``high_freq``, all of them
        where neither says otherwise (Lucene's CommonTermsQuery, :meth:`common_words`)."""
        name, value = single_key(spec, path)
        where = f"{path}.{name}"
        options = value if isinstance(value, Mapping) else {"query": value}
        known_keys(options, where, QUERY_KEYS["common"])
        text = a_string(options.get("query"), f"{where}.query", scalars=True)
        target = self.target(name, where)
        low = _every_word(options, where, "low_freq_operator")
        high = _every_word(options, where, "high_freq_operator")
        counts = options.get("minimum_should_match")
        if isinstance(counts, Mapping):
            known_keys(counts, f"{where}.minimum_should_match", frozenset({"low_freq", "high_freq"}))
        else:
            counts = {"low_freq": counts}
        least = {
            key: ShouldMatch.parse(counts.get(key), f"{where}.minimum_should_match.{key}")
            for key in ("low_freq", "high_freq")
        }
        if scoring and target.kind == "text":
            return self._ranked(text, [name], False, where, None)
        rare, frequent = self.common_words(text, [name], options.get("cutoff_frequency", 0.01), where)
        if rare:
            text, every, msm = rare, low, least["low_freq"]
        else:
            text, every, msm = frequent, high or least["high_freq"] is None, least["high_freq"]
        return Compiled(self.words([name], text, False, every, where, minimum_should_match=msm))

    def rare_words_needed(
        self, text: str, fields: list[str], cutoff: Any, every: bool, msm: ShouldMatch | None, path: str
    ) -> tuple[str, bool, ShouldMatch | None]:
        """What a ``match`` or ``multi_match`` with ``cutoff_frequency`` needs, as Elasticsearch 7 and OpenSearch
        build it (Lucene's CommonTermsQuery): its rare words by its operator and ``minimum_should_match``, its
        frequent words only scoring; with no rare word, every frequent one. Magento's ElasticSuite filters its
        searches so: "leather lamp" needs the rare "leather", not the common "lamp"."""
        rare, frequent = self.common_words(text, fields, cutoff, f"{path}.cutoff_frequency")
        return (rare, every, msm) if rare else (frequent, True, None)

    def common_words(self, text: str, fields: list[str], cutoff: Any, path: str) -> tuple[str, str]:
        """``text``'s rare words and its frequent ones, each as written: a word is frequent where more products
        hold it than ``cutoff`` says (a share of the products below 1, a count from 1) in any of ``fields``' text,
        by Lucene's rule; a word no product holds is rare, and so is the whole text on fields of no text."""
        limit = a_number(cutoff, path)
        if limit < 0:
            raise InvalidQuery(path, "must be >= 0")
        names = list(dict.fromkeys(t.name for t in (self.target(f, path) for f in fields) if t.kind == "text"))
        if not names:  # a keyword's value is one term, needed whole
            return text, ""
        searcher = self.leg.searcher()
        bound = limit if limit >= 1 else math.ceil(limit * searcher.num_docs)
        rare: list[str] = []
        frequent: list[str] = []
        for token in self.leg.tokens(text):
            held = max((searcher.doc_freq(name, token.text) for name in names), default=0)
            (frequent if held > bound else rare).append(text[token.char_offset_from : token.char_offset_to])
        return " ".join(rare), " ".join(frequent)

    def zero_terms_match_all(self, options: Mapping[str, Any], text: str, fields: list[str], path: str) -> bool:
        """Whether the query matches every product: ``zero_terms_query: all`` and the analyzer leaves no words
        ("!!", "") for the text fields, as in Elasticsearch (with the default ``none`` such a query matches nothing)."""
        option = str(options.get("zero_terms_query", "none")).lower()
        if option not in ("none", "all"):
            raise InvalidQuery(f"{path}.zero_terms_query", "expected none or all")
        return (
            option == "all"
            and not self.leg.analyze(text)
            and any(self.target(name, path).kind == "text" for name in fields)
        )

    def _ranked(
        self,
        text: str,
        fields: list[str],
        every: bool,
        path: str,
        fuzzy: Fuzziness | None,
        minimum_should_match: ShouldMatch | None = None,
        across: bool = False,
    ) -> Compiled:
        """Whole words in scoring context: the pipeline ranks them, and they constrain nothing.

        With ``fuzzy`` the lexical leg also scores the words within its edits, as Elasticsearch matches them:
        Searchkit sends ``fuzziness`` with every search, and a typo ("sofw") would otherwise find nothing
        lexically while the facets, which count what Elasticsearch matches, counted the sofas.
        """
        scored = (
            [
                self.words(
                    fields,
                    text,
                    False,
                    every,
                    path,
                    fuzzy=fuzzy,
                    minimum_should_match=minimum_should_match,
                    across=across,
                )
            ]
            if fuzzy is not None
            else []
        )
        return Compiled(texts=[text], scored=scored)

    def _typed(
        self,
        text: str,
        fields: list[str],
        phrase: bool,
        every: bool,
        path: str,
        scoring: bool,
        fuzzy: Fuzziness | None,
        minimum_should_match: ShouldMatch | None = None,
    ) -> Compiled:
        """Words still being typed (autocomplete): they match as Elasticsearch matches them, even when scoring.

        Unlike a whole-word ``match`` they constrain the hits: a word cut short means nothing to the encoder
        or the reranker, so nothing but the products the prefix finds is an answer. The lexical leg scores
        the same query beside the typed words; the encoder and the reranker read the typed words. ``fuzzy``
        applies to the whole words before the one being typed, as in Elasticsearch's ``bool_prefix``.
        """
        query = self.words(
            fields,
            text,
            phrase,
            every,
            path,
            prefix=True,
            fuzzy=fuzzy,
            minimum_should_match=minimum_should_match,
            readings=True,
        )
        if not scoring:
            return Compiled(query)
        return Compiled(query, texts=[text], scored=[query])

    def _query_string(self, kind: str, spec: Any, path: str, scoring: bool) -> Compiled:
        spec = an_object(spec, path)
        text = a_string(spec.get("query"), f"{path}.query")
        msm = ShouldMatch.parse(spec.get("minimum_should_match"), f"{path}.minimum_should_match")
        flags = query_string.flags_of(kind, spec, path)
        operator = spec.get("default_operator", "or")
        names = spec.get("fields", spec.get("default_field"))
        defaults = self.default_fields(names, f"{path}.fields")
        every = str(operator).lower() == "and"
        # Read before the query: Elasticsearch refuses a zone that is none as it parses the body, lenient or not,
        # where a lenient range (:meth:`leniently`) would take its refusal for a date its field cannot hold.
        time_zone(spec.get("time_zone"), f"{path}.time_zone")

        def is_text(name: str | None) -> bool:
            """Whether words on ``name`` are text to rank; None (a word naming no field) is on the defaults, of
            which one text field is enough."""
            if name is None:
                return any(is_text(default) for default in defaults)
            return self.target(name, f"{path}.query").kind == "text"

        def wordless(word: query_string.Word) -> bool:
            """A word of no words on text fields ("&"); a fuzzy one is matched as typed, never dropped."""
            if word.tilde is not None and not word.phrase:
                return False
            fields = defaults if word.field is None else [word.field]
            return all(is_text(name) for name in fields) and not self.leg.analyze(word.text)

        try:
            tree = query_string.parse(
                text, str(operator), simple=kind == "simple_query_string", wordless=wordless, flags=flags
            )
        except query_string.QuerySyntaxError as exc:
            raise InvalidQuery(f"{path}.query", str(exc)) from None
        except query_string.SyntaxUnsupported as exc:
            raise Unsupported(f"{path}.query", str(exc)) from None

        wanted = query_string.positive_text(tree, is_text) if scoring else ""
        if scoring and _only_words(tree) and is_text(None):
            # Words for the pipeline to rank; in no text field at all (a keyword's, a catalog field's) they are
            # values to match, as a match on one is, and nothing to rank: the legs would find only the products
            # whose text holds them.
            return Compiled(texts=[wanted])
        if spec.get("fuzzy_prefix_length") not in (None, 0, "0"):
            self.ignore(f"{path}.fuzzy_prefix_length")
        tilde = Tilde(
            parse_fuzziness(spec.get("fuzziness", "AUTO"), spec.get("fuzzy_transpositions", True), path),
            a_count(spec.get("phrase_slop", 0), f"{path}.phrase_slop"),
        )
        with self.options_of(spec):
            if msm is None:
                constraint = self.tree(tree, defaults, every, f"{path}.query", tilde)
            else:
                across = kind == "simple_query_string"
                constraint = self._at_least(tree, defaults, every, f"{path}.query", tilde, msm, across)
        # Wildcard words (sof*) are no words the legs can search for: the lexical leg scores the query's
        # matches beside its words, as it does a word being typed, or a query of wildcards alone would find none.
        scored = [constraint] if scoring and query_string.has_wildcards(tree) else []
        return Compiled(constraint, [wanted] if wanted else [], scored)

    def _at_least(
        self,
        tree: query_string.Node,
        defaults: list[str],
        every: bool,
        path: str,
        tilde: Tilde,
        msm: ShouldMatch,
        across: bool,
    ) -> tantivy.Query:
        """A query string with a ``minimum_should_match``, which Elasticsearch applies to the parsed text's top
        clause where that is a boolean query: a text of plain words on the default fields ("oak dining table"), at
        least that many of the words, in one field as a ``multi_match`` counts them (Elasticsearch's documented
        reading of a ``query_string`` over several fields) or ``across`` them (a ``simple_query_string``, whose
        parser makes each word one clause over every field); otherwise at least that many of the top clause's
        optional clauses. A text of one clause (one word, or a ``simple_query_string`` whose flags leave white space
        as text) is that many of its words where it is searched in one field; over several Elasticsearch makes it
        a disjunction of the fields, to which it applies none."""
        words = query_string.words(tree)
        if isinstance(tree, query_string.Word) and len(defaults) > 1:
            return self.tree(tree, defaults, every, path, tilde)
        if _only_words(tree) and all(word.tilde is None for word in words):
            text = " ".join(word.text for word in words)
            return self.words(
                defaults, text, False, False, path, minimum_should_match=msm, across=across, readings=True
            )
        if not isinstance(tree, query_string.Group):
            return self.tree(tree, defaults, every, path, tilde)
        optional = sum(occur == query_string.SHOULD for occur, _ in tree.clauses)
        required = msm.of(optional)
        if required > optional:
            return tantivy.Query.empty_query()
        return self.tree(tree, defaults, every, path, tilde, optional=required)

    def tree(
        self, node: query_string.Node, defaults: list[str], every: bool, path: str, tilde: Tilde, optional: int = 0
    ) -> tantivy.Query:
        """The query of a parsed query string; a group's, with at least ``optional`` of its optional clauses."""
        if isinstance(node, query_string.Everything):
            return tantivy.Query.all_query()
        if isinstance(node, query_string.Word):
            fields = defaults if node.field is None else [node.field]
            fuzzy, slop = tilde.of(node, path)
            target = None if node.field is None else self.target(node.field, path)
            if target is not None and target.kind != "text":
                return self.leniently(functools.partial(self.value, target, node.text, fuzzy, path))
            if fuzzy is not None:
                return self.as_typed(fields, node.text, fuzzy, path)
            return self.words(fields, node.text, node.phrase, every, path, slop=slop, readings=True)
        if isinstance(node, query_string.Wildcard):
            if query_string.is_exists(node):
                exists = self.query({"exists": {"field": node.field}}, path, False).constraint
                assert exists is not None  # an exists query always constrains
                return exists
            targets = [self.target(name, path) for name in (defaults if node.field is None else [node.field])]
            if query_string.is_lenient(self._text_options):
                targets = [target for target in targets if target.kind in WILDCARD_KINDS]
            if not targets:
                return tantivy.Query.empty_query()
            return _any(self.wildcard(target, node.pattern, path) for target in targets)
        if isinstance(node, query_string.Span):
            return self.leniently(lambda: self.span(node, path))
        occurs = {
            query_string.MUST: tantivy.Occur.Must,
            query_string.SHOULD: tantivy.Occur.Should,
            query_string.MUST_NOT: tantivy.Occur.MustNot,
        }
        clauses = []
        for occur, child in node.clauses:
            self._negated += occur == query_string.MUST_NOT
            try:
                clauses.append((occurs[occur], self.tree(child, defaults, every, path, tilde)))
            finally:
                self._negated -= occur == query_string.MUST_NOT
        return tantivy.Query.boolean_query(clauses, minimum_number_should_match=optional or None)

    def span(self, node: query_string.Span, path: str) -> tantivy.Query:
        """A query_string range (``price:[10 TO *]``, ``price:>=10``) on its field; a date's ends in the query's
        ``time_zone`` (Kibana's search bar sends the browser's), as Elasticsearch reads them."""
        target = self.target(node.field, path)
        if target.kind == "date":  # an exclusive low end and an inclusive high one round up, as in a range query
            zone = {"time_zone": self._text_options.get("time_zone")}
            low = None if node.low is None else float(date_bound(node.low, not node.include_low, path, zone))
            high = None if node.high is None else float(date_bound(node.high, node.include_high, path, zone))
        else:
            low = None if node.low is None else a_number(node.low, path)
            high = None if node.high is None else a_number(node.high, path)
        return self.range(target, low, high, node.include_low, node.include_high, path)

    def leniently(self, compile: Callable[[], tantivy.Query]) -> tantivy.Query:
        """``compile()``; in a ``lenient`` query_string, where the value is none its field holds (a word or a range
        of words on a price, a date that is none), nothing in that field, as Lucene's parser leaves the field out
        of such a query (Elasticsearch refuses the query otherwise, and so is it refused here)."""
        try:
            return compile()
        except InvalidQuery:
            if not query_string.is_lenient(self._text_options):
                raise
            return tantivy.Query.empty_query()

    @contextlib.contextmanager
    def options_of(self, options: Mapping[str, Any]) -> Iterator[None]:
        """Compile a full-text query's parts under its ``options`` (:attr:`_text_options`)."""
        kept, self._text_options = self._text_options, options
        try:
            yield
        finally:
            self._text_options = kept

    def as_typed(self, fields: list[str], text: str, fuzzy: Fuzziness, path: str) -> tantivy.Query:
        """A query_string word with ``~`` (``sofw~1``): Lucene's query parsers do not analyse it, they only normalise
        it (lower case, folded to ASCII), so the indexed words (stems) within its edits of what was typed match ("Tables~1" is two edits from
        "tabl"), and its ``AUTO`` edits count the letters typed."""
        word = self.leg.normalise(text)
        edits = fuzzy.distance(word)
        per_field: list[tantivy.Query] = []
        for name in fields:
            target = self.target(name, path)
            if target.kind != "text":
                per_field.append(self.leniently(functools.partial(self.value, target, text, fuzzy, path)))
                continue
            self._mark(Mark(target.name, (word,), fuzzy if edits else None))
            per_field.append(self.term(target.name, word, fuzzy, path))
        return _any(per_field) if per_field else tantivy.Query.empty_query()

    def _term(self, kind: str, spec: Any, path: str) -> tantivy.Query:
        spec = {k: v for k, v in an_object(spec, path).items() if k not in ("boost", "_name", "case_insensitive")}
        name, value = single_key(spec, path)
        target = self.target(name, f"{path}.{name}")
        if kind == "term" and isinstance(value, Mapping) and value.get("case_insensitive") is True:
            if target.kind in ("id", "keyword"):  # held as written: its value in any case, as a pattern of itself
                text = a_keyword(value.get("value"), f"{path}.{name}.value")
                return self.wildcard(target, (text,), f"{path}.{name}", case_insensitive=True)
        if kind == "term":
            values = [value.get("value") if isinstance(value, Mapping) else value]
        elif isinstance(value, list):
            values = value
        else:
            raise Unsupported(f"{path}.{name}", "terms lookup (only a list of values)")
        return self.exact(target, values, f"{path}.{name}")

    def _pattern(self, kind: str, spec: Any, path: str, scoring: bool) -> Compiled:
        """A ``prefix`` or ``wildcard`` query (see :meth:`wildcard`). On a text field in a scoring clause its text
        is also a query's words, and the lexical leg scores the pattern beside them, as a word being typed is."""
        name, where, options = _field_options(spec, path)
        key = "value" if kind == "prefix" or "value" in options else "wildcard"
        for option in options:
            if option not in (key, "boost", "_name", "case_insensitive", "rewrite"):
                raise InvalidQuery(f"{where}.{option}", f"unknown key for a {kind} query")
        text = a_keyword(options.get(key), f"{where}.{key}")
        pattern = wildcards.prefix(text) if kind == "prefix" else wildcards.parse(text)
        target = self.target(name, where)
        query = self.wildcard(target, pattern, where, options.get("case_insensitive") is True)
        words = wildcards.literal_text(pattern)
        if scoring and target.kind == "text" and words:
            return Compiled(query, texts=[words], scored=[query])
        return Compiled(query)

    def _fuzzy(self, spec: Any, path: str, scoring: bool) -> Compiled:
        """A ``fuzzy`` query: a text field's words, or a keyword's values (:meth:`value`), within the edits of the
        value (``AUTO`` unless ``fuzziness`` says), which is taken as given, not analysed, as Elasticsearch takes a
        term-level query's: "Sofa" is an edit from the indexed "sofa". Scored on a text field, its value is also
        the query's words."""
        name, where, options = _field_options(spec, path)
        known_keys(options, where, FUZZY_QUERY_KEYS)
        text = a_keyword(options.get("value"), f"{where}.value")
        fuzzy = self.fuzziness(
            {
                "fuzziness": "AUTO" if options.get("fuzziness") is None else options["fuzziness"],
                "prefix_length": options.get("prefix_length"),
                "fuzzy_transpositions": options.get("transpositions", True),
            },
            where,
        )
        target = self.target(name, where)
        if target.kind != "text":
            return Compiled(self.value(target, text, fuzzy, where))
        self._mark(Mark(target.name, (text,), fuzzy))
        query = self.term(target.name, text, fuzzy, where)
        return Compiled(query, texts=[text], scored=[query]) if scoring else Compiled(query)

    def _range(self, spec: Any, path: str) -> tantivy.Query:
        spec = {k: v for k, v in an_object(spec, path).items() if k not in ("boost", "_name")}
        name, bounds = single_key(spec, path)
        where = f"{path}.{name}"
        bounds = an_object(bounds, where)
        # The field first: its bounds are numbers only where it is one. A range on a date or a keyword field (Search
        # UI's date filters send "2024-01-01" and "now") is valid Elasticsearch the product cannot answer, not a 400.
        target = self.target(name, where)
        if target.number is None:
            raise Unsupported(where, f"a range on {name!r} (ranges: {', '.join(NUMERIC_FIELDS)}, dates)")
        if target.kind == "date":
            check_options(bounds, where)
        low = high = None
        include_low = include_high = True
        for key, value in bounds.items():
            if key in ("boost", "format", "relation") or (key == "time_zone" and target.kind == "date"):
                continue
            if key in ("include_lower", "include_upper"):
                continue
            if key not in ("gt", "gte", "lt", "lte", "from", "to"):
                raise Unsupported(f"{where}.{key}")
            if value is None:  # "from": null is an open bound
                continue
            if target.kind == "date":  # gt and lte round up, as Elasticsearch rounds them (date_math says how)
                up = key in ("gt", "lte") or (key == "to" and bounds.get("include_upper") is not False)
                up = up or (key == "from" and bounds.get("include_lower") is False)
                number = float(date_bound(value, up, f"{where}.{key}", bounds))
            else:
                number = a_number(value, f"{where}.{key}")
            if key in ("gt", "gte", "from"):
                exclusive = key == "gt" or (key == "from" and bounds.get("include_lower") is False)
                if low is None or number > low or (number == low and exclusive):
                    low, include_low = number, not exclusive
            else:
                exclusive = key == "lt" or (key == "to" and bounds.get("include_upper") is False)
                if high is None or number < high or (number == high and exclusive):
                    high, include_high = number, not exclusive
        if low is not None and high is not None and (low > high or (low == high and not include_low & include_high)):
            return tantivy.Query.empty_query()
        return self.range(target, low, high, include_low, include_high, where)

    def _bool(self, spec: Any, path: str, scoring: bool) -> Compiled:
        spec = an_object(spec, path)
        for key in spec:
            if key not in {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}:
                raise InvalidQuery(f"{path}.{key}", "unknown key for a bool query")
        out = Compiled()
        required: list[tantivy.Query | None] = []
        for key, ctx in (("must", scoring), ("filter", False)):
            for i, clause in enumerate(clause_list(spec.get(key))):
                part = self.query(clause, f"{path}.{key}[{i}]", ctx)
                required.append(part.constraint)
                out.add_words(part)
        excluded = [
            self.excluded(clause, f"{path}.must_not[{i}]").constraint
            for i, clause in enumerate(clause_list(spec.get("must_not")))
        ]
        should = clause_list(spec.get("should"))
        msm = ShouldMatch.parse(spec.get("minimum_should_match"), f"{path}.minimum_should_match")
        if should:
            # Without must or filter clauses, Lucene's bool needs one should clause whatever minimum_should_match says.
            least = 0 if msm is None else msm.of(len(should))
            if not clause_list(spec.get("must")) and not clause_list(spec.get("filter")):
                least = max(least, 1)
            part = self._alternatives(should, f"{path}.should", scoring, least)
            required.append(part.constraint)
            out.add_words(part)
        elif msm is not None and msm.of(0) > 0 and (required or excluded):
            # Elasticsearch counts it against no should clauses at all: nothing can match.
            required.append(tantivy.Query.empty_query())
        if any(q is None for q in excluded):
            # A must_not clause that matches everything (match_all, an empty bool) leaves nothing.
            required.append(tantivy.Query.empty_query())
        positive = _all(required)
        negative = [q for q in excluded if q is not None]
        if negative:
            base = positive if positive is not None else tantivy.Query.all_query()
            positive = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, base)] + [(tantivy.Occur.MustNot, q) for q in negative]
            )
        out.constraint = positive
        return out

    def _alternatives(self, clauses: list[Any], path: str, scoring: bool, required: int) -> Compiled:
        """``should`` clauses: their words all count; at least ``required`` of them must match."""
        parts = [self.query(clause, f"{path}[{i}]", scoring) for i, clause in enumerate(clauses)]
        out = Compiled()
        for part in parts:
            out.add_words(part)
        # A clause without a constraint matches every product (match_all; in scoring context a text clause, which
        # the pipeline ranks): it counts towards ``required`` for each of them.
        everything = sum(p.constraint is None for p in parts)
        queries = [p.constraint for p in parts if p.constraint is not None]
        if required <= everything:
            return out
        if required > len(parts):
            out.constraint = tantivy.Query.empty_query()
        elif len(queries) == 1:
            out.constraint = queries[0]
        else:
            out.constraint = tantivy.Query.boolean_query(
                [(tantivy.Occur.Should, q) for q in queries], minimum_number_should_match=required - everything
            )
        return out


def _only_words(tree: query_string.Node) -> bool:
    """Optional words on the default fields only: as a ``match``, they rank and constrain nothing."""
    if isinstance(tree, query_string.Word):
        return tree.field is None and not tree.phrase
    if isinstance(tree, query_string.Group):
        return all(occur == query_string.SHOULD and _only_words(child) for occur, child in tree.clauses)
    return False


def _each_word(words: list[tantivy.Query], every: bool, minimum_should_match: ShouldMatch | None) -> tantivy.Query:
    """The words' queries joined by the operator (``every``: and), at least ``minimum_should_match`` of them.

    As in Elasticsearch, one word is a term query, which ``minimum_should_match`` leaves alone; of several, it
    counts the optional ones: more than there are (with ``and``, any at all) matches nothing.
    """
    if len(words) == 1:
        return words[0]
    required = minimum_should_match.of(0 if every else len(words)) if minimum_should_match is not None else 0
    if every:
        if required:
            return tantivy.Query.empty_query()
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in words])
    if required > len(words):
        return tantivy.Query.empty_query()
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Should, q) for q in words], minimum_number_should_match=max(required, 1)
    )


def _with_the_other_words(
    found_in: Callable[[list[str]], tantivy.Query | None],
    rest: list[str],
    names: list[str],
    spelled: Callable[[list[str]], list[tantivy.Query]],
    across: bool,
) -> list[tantivy.Query]:
    """What a model code or a misspelt word's reading (``found_in`` the given text fields; None: in none of them)
    matches with the other words ``rest`` where every word is needed: in any of ``names`` where the words match
    ``across`` the fields, else with the other words in the same field (best_fields), field by field."""
    if not rest or across:
        groups = [(names, spelled(rest) if rest else [])]
    else:
        groups = [([name], [others]) for name, others in zip(names, spelled(rest), strict=True)]
    needed = [(found_in(fields), others) for fields, others in groups]
    return [query for found, others in needed if found is not None and (query := _all([found, *others])) is not None]


TOP_HITS_BUCKETS = ("terms", "composite")
"""The aggregations whose buckets a ``top_hits`` under them is answered in: a bucket of each is a set of field
values, the products holding them its hits (ReactiveSearch's ReactiveList ``aggregationField``, a facet's example
product)."""
TOP_HITS_OPTIONS = {"size", "from", "_source", "sort"}
MAX_TOP_HITS_SEARCHES = 200
"""The most buckets times top_hits one aggregation answers: each is a search of the bucket's products (about a
millisecond on a catalogue of tens of thousands), where a facet's list or a ReactiveList page holds tens."""
MAX_INNER_RESULT_WINDOW = 100
"""Elasticsearch's ``index.max_inner_result_window``: a top_hits' from + size past it is a 400, as there."""


def top_hits_options(spec: Any, path: str) -> tuple[int, int, SourceFilter]:
    """A ``top_hits``' ``from``, ``size`` (Elasticsearch's default 3) and ``_source`` filter. Its hits are in the
    order of the query's score: a ``sort`` other than ``_score`` (descending), and its other options (highlight,
    docvalue_fields...), are a 501 naming them."""
    spec = an_object(spec, path)
    for option in spec.keys() - TOP_HITS_OPTIONS:
        raise Unsupported(f"{path}.{option}", f"{option!r} in a top_hits aggregation on the embedded backend")
    if "sort" in spec and not by_score(spec["sort"]):
        raise Unsupported(f"{path}.sort", "a top_hits sort other than by _score")
    start, size = a_count(spec.get("from", 0), f"{path}.from"), a_count(spec.get("size", 3), f"{path}.size")
    if start + size > MAX_INNER_RESULT_WINDOW:
        raise InvalidQuery(
            f"{path}.size",
            f"Top hits result window is too large, the top hits aggregator [from + size] must be less than or equal to: [{MAX_INNER_RESULT_WINDOW}]",
        )
    return start, size, source_filter(spec["_source"], f"{path}._source") if "_source" in spec else SourceFilter()


def by_score(sort: Any) -> bool:
    """Whether a sort is the score's, best first (``_score``, ``{"_score": "desc"}``, ``{"_score": {"order":
    "desc"}}``, alone or as a list of one)."""
    sort = sort[0] if isinstance(sort, list) and len(sort) == 1 else sort
    if sort == "_score":
        return True
    order = sort.get("_score") if isinstance(sort, dict) and len(sort) == 1 else None
    return order == "desc" or (isinstance(order, dict) and order.get("order", "desc") == "desc" and len(order) <= 1)


def _top_hits_of(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The ``top_hits`` directly under an aggregation, by name."""
    return {
        name: sub["top_hits"]
        for key in SUB_AGGREGATIONS
        for name, sub in spec.get(key, {}).items()
        if "top_hits" in sub
    }


def _without_top_hits(spec: Mapping[str, Any]) -> dict[str, Any]:
    """``spec`` without the ``top_hits`` directly under it, which tantivy is not asked (see Aggregations._top_hits)."""
    out = dict(spec)
    for key in SUB_AGGREGATIONS:
        if key in out:
            kept = {name: sub for name, sub in out[key].items() if "top_hits" not in sub}
            if kept:
                out[key] = kept
            else:
                del out[key]
    return out


def _within(base: tantivy.Query, query: tantivy.Query | None) -> tantivy.Query:
    """``base`` narrowed by ``query`` (a filter bucket of an aggregation)."""
    return (
        base
        if query is None
        else tantivy.Query.boolean_query([(tantivy.Occur.Must, base), (tantivy.Occur.Must, query)])
    )


def _excluding(base: tantivy.Query, excluded: Sequence[tantivy.Query | None]) -> tantivy.Query:
    """``base`` less the products any of ``excluded`` matches; None is a clause without a constraint, which
    matches every product and so leaves none (a filter of match_all beside a filters' other bucket)."""
    if any(query is None for query in excluded):
        return tantivy.Query.empty_query()
    if not excluded:
        return base
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, base), *((tantivy.Occur.MustNot, query) for query in excluded if query is not None)]
    )


def count(searcher: tantivy.Searcher, query: tantivy.Query) -> int:
    """How many products match ``query`` (tantivy needs a page of at least one hit to count)."""
    return int(searcher.search(query, 1, count=True).count)  # type: ignore[attr-defined]


def _every_word(options: Mapping[str, Any], path: str, key: str = "operator") -> bool:
    """Whether a full-text query's ``operator`` (or the operator named ``key``) is ``and`` (any case, as
    Elasticsearch's ``Operator.fromString`` reads it); another word is a 400 naming it."""
    operator = options.get(key)
    if operator is None:
        return False
    word = a_string(operator, f"{path}.{key}").lower()
    if word not in ("and", "or"):
        raise InvalidQuery(f"{path}.{key}", f"Unknown operator [{operator}]")
    return word == "and"


def _exact_field(spot: IndexedField) -> str | None:
    """The index field holding ``spot``'s values exactly as a hit carries them, where its filter term is folded
    (a brand, a category, an attribute) or the query compiler has none (``title.keyword``); None: the others."""
    if spot.constant is None and (spot.path in ("facet.brand", "facet.category.path") or _LEVEL.fullmatch(spot.path)):
        return spot.path
    if spot.path == ATTRIBUTE_VALUES and spot.attribute is not None:
        return f"{FACET_FIELD}.attributes.{spot.attribute}"
    if spot.path == TITLE_KEYWORD:
        return SORT_FIELDS["title"]
    return None


def _field_options(spec: Any, path: str) -> tuple[str, str, dict[str, Any]]:
    """A term-level query's one field (its query-level ``boost`` and ``_name`` aside), where it is, and its
    options: the object given, or ``{"value": ...}`` for the short form (``{"prefix": {"title": "sof"}}``)."""
    spec = {k: v for k, v in an_object(spec, path).items() if k not in ("boost", "_name")}
    name, value = single_key(spec, path)
    where = f"{path}.{name}"
    return name, where, dict(an_object(value, where)) if isinstance(value, Mapping) else {"value": value}


def _any(queries: Iterable[tantivy.Query]) -> tantivy.Query:
    parts = list(queries)
    if len(parts) == 1:
        return parts[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in parts])


@dataclass(frozen=True)
class ShouldMatch:
    """A ``minimum_should_match``: a number or a percentage of the optional clauses; negative, all but that many."""

    number: int
    percent: bool = False

    @classmethod
    def parse(cls, value: Any, path: str) -> ShouldMatch | None:
        if value is None:
            return None
        text = str(value).strip()
        if re.fullmatch(r"-?\d+%?", text):
            # Elasticsearch reads it as an int; Python stops converting at 4,300 digits (a ValueError, a 500).
            digits = text.lstrip("-").rstrip("%")
            if len(digits) > len(str(MAX_INT)) or int(digits) > MAX_INT:
                raise InvalidQuery(path, f"{text} is out of range for an int")
            return cls(int(text.rstrip("%")), text.endswith("%"))
        raise Unsupported(path, f"{value!r} (a number or a percentage)")

    def of(self, count: int) -> int:
        """How many of ``count`` optional clauses must match: Elasticsearch's arithmetic (a share truncated),
        not capped at ``count`` (asking for more than there are matches nothing)."""
        n = math.floor(count * abs(self.number) / 100) if self.percent else abs(self.number)
        return max(0, count - n if self.number < 0 else n)


# ------------------------------------------------------------------ aggregations


class TooManyBuckets(Exception):
    """The aggregations answer more than :data:`MAX_BUCKETS` buckets: a 400, as Elasticsearch's
    ``too_many_buckets_exception`` (a 400 since 8.8; retrying will not help)."""

    def __init__(self) -> None:
        super().__init__(
            f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}]. "
            "This limit can be set by changing the [search.max_buckets] cluster level setting."
        )


class Aggregations:
    """``aggs`` counted by tantivy over a match set; filter, filters and global buckets computed here.

    Where tantivy's answer is not Elasticsearch's, an aggregation is asked of tantivy in parts that
    :func:`_es_shape` joins back (named ``<name>>...``, a name Elasticsearch refuses, so no asked one):
    overlapping ranges (which tantivy refuses) in groups of disjoint ones, and a percentiles' values (see
    :func:`_percentiles`).
    """

    def __init__(
        self,
        compiler: Compiler,
        aggs: Mapping[str, Any],
        typed_keys: bool = False,
        path: str = "aggs",
        query_clauses: int = 0,
    ):
        """``query_clauses``: the size of the query the aggregations count within (:func:`clauses`)."""
        self.compiler = compiler
        self.aggs = aggs
        self.typed_keys = typed_keys
        self.path = path
        """The body's key of them (``aggs`` or ``aggregations``), which a refusal names."""
        self.buckets = 0
        """The buckets answered so far, counted against :data:`MAX_BUCKETS`."""
        self.sourced: list[tuple[dict[str, Any], SourceFilter]] = []
        """The ``top_hits`` hits answered, each with its ``_source`` filter, filled in by :meth:`fill_sources`."""
        self._matching: tantivy.Query | None = None
        """The products the aggregations being translated count (a histogram by months spans their dates); None
        while the body is checked, before any search."""
        self.check(aggs, path, top=True)
        if _filter_buckets(aggs) > MAX_BUCKETS:
            raise TooManyBuckets()
        if (searches := _filter_buckets(aggs, searches=True)) * max(1, query_clauses) > MAX_BUCKET_CLAUSES:
            raise InvalidQuery(
                path,
                f"{searches} bucket searches (filter, filters, global, missing) of a query of {query_clauses} "
                f"clauses: more than {MAX_BUCKET_CLAUSES:,} clauses searched in all; ask for fewer buckets, or "
                "filter with fewer clauses (a terms query holds any number of values in one)",
            )

    def check(
        self, aggs: Any, path: str, native_only: bool = False, top: bool = False, bucketed_by: str | None = None
    ) -> None:
        """Refuse what cannot be answered before anything runs (a 501 naming it; a 400 for what Elasticsearch
        refuses). ``bucketed_by``: the kind of the aggregation ``aggs`` are under, where that one is answered at a
        level of its own (the top, or a filter bucket's), whose buckets :meth:`_top_hits` fills."""
        for name, spec in an_object(aggs, path).items():
            where = f"{path}.{name}"
            if any(c in name for c in "[]>"):
                raise InvalidQuery(where, "an aggregation name cannot contain '[', ']' or '>'")
            kinds = [k for k in an_object(spec, where) if k not in (*SUB_AGGREGATIONS, "meta")]
            if len(kinds) != 1:
                raise InvalidQuery(where, "expected one aggregation type")
            kind = kinds[0]
            if kind in ("global", "composite") and not top:
                raise InvalidQuery(f"{where}.{kind}", f"a {kind} aggregation can only be a top-level aggregation")
            if kind == "percentiles" and "hdr" in an_object(spec[kind], f"{where}.{kind}"):
                raise Unsupported(f"{where}.{kind}.hdr", "HDR histogram percentiles (TDigest's are answered)")
            if kind == "top_hits":
                if bucketed_by not in TOP_HITS_BUCKETS:
                    raise Unsupported(f"{where}.{kind}", "a top_hits other than directly under a terms or composite")
                if any(sub in spec for sub in SUB_AGGREGATIONS):
                    raise InvalidQuery(where, "Aggregator [top_hits] of type [top_hits] cannot accept sub-aggregations")
                top_hits_options(spec[kind], f"{where}.{kind}")
            elif kind in NATIVE_AGGREGATIONS:
                self._native(kind, spec[kind], f"{where}.{kind}")
                if kind == "composite" and _top_hits_of(spec):
                    for i, source in enumerate(spec[kind]["sources"]):
                        if any("terms" not in typed for typed in source.values()):
                            raise Unsupported(f"{where}.{kind}.sources[{i}]", "top_hits under a histogram source")
                answered_here = not native_only and kind in TOP_HITS_BUCKETS
                for sub in SUB_AGGREGATIONS:
                    if sub in spec:
                        self.check(
                            spec[sub], f"{where}.{sub}", native_only=True, bucketed_by=kind if answered_here else None
                        )
            elif kind in FILTER_AGGREGATIONS and not native_only:
                if kind == "missing":
                    self._missing_target(spec[kind], f"{where}.{kind}")
                for sub in SUB_AGGREGATIONS:
                    if sub in spec:
                        self.check(spec[sub], f"{where}.{sub}")
            elif kind in FILTER_AGGREGATIONS:
                raise Unsupported(f"{where}.{kind}", "a filter aggregation under a terms, range or histogram bucket")
            else:
                raise Unsupported(f"{where}.{kind}", f"aggregation type {kind!r} on the embedded backend")

    def _native(self, kind: str, spec: Any, path: str) -> dict[str, Any]:
        spec = dict(an_object(spec, path))
        if kind == "composite":
            return self._composite(spec, path)
        if "field" not in spec:
            raise Unsupported(path, "an aggregation without a field (scripts)")
        target = self.compiler.target(a_string(spec["field"], f"{path}.field"), f"{path}.field")
        if target.facet is None:
            raise Unsupported(f"{path}.field", f"aggregating {spec['field']!r} (a text field)")
        spec["field"] = target.facet
        if kind in TANTIVY_KIND and target.number is None:  # Elasticsearch reads a number as epoch milliseconds
            raise InvalidQuery(f"{path}.field", f"field [{target.name}] is not supported for aggregation [{kind}]")
        if kind == "date_histogram":
            spec = self._date_histogram(spec, path)
            kind = "range" if "ranges" in spec else "histogram"
        if "missing" in spec and kind in ("histogram", "range"):
            # tantivy takes the option and counts a product without a value in no bucket: a silent undercount.
            raise Unsupported(f"{path}.missing", f"a missing value of a {kind} aggregation")
        if "missing" in spec and target.kind == "date":  # "2020-01-01" is read as the field's dates are
            spec["missing"] = date_bound(spec["missing"], False, f"{path}.missing")
        if "missing" in spec and target.kind == "boolean":
            raise Unsupported(f"{path}.missing", "a missing value of a boolean (tantivy holds none for one)")
        if "missing" in spec and target.number is None and target.kind != "date":
            # A keyword's missing bucket is keyed by the value as text, as Elasticsearch formats a number or true.
            spec["missing"] = a_keyword(spec["missing"], f"{path}.missing")
        elif "missing" in spec and target.kind != "date":  # a number's, as Elasticsearch parses it ("5" is 5)
            spec["missing"] = a_number(spec["missing"], f"{path}.missing")
        for count_option in ("size", "min_doc_count"):  # "3" and 3.0 as Elasticsearch reads them, 3 for tantivy
            if count_option in spec and kind in ("terms", "histogram"):
                spec[count_option] = a_count(spec[count_option], f"{path}.{count_option}")
        if kind == "terms" and spec.get("size") == 0:  # Elasticsearch 5 and later; tantivy answered no bucket
            raise InvalidQuery(f"{path}.size", "[size] must be greater than 0")
        if kind == "terms":
            if target.kind == "numeric" and spec.get("min_doc_count") == 0:
                raise Unsupported(f"{path}.min_doc_count", "min_doc_count 0 on a number (its values left out as 0)")
            # One index is one shard, which Elasticsearch counts exactly whatever its shard_size (its error bound
            # 0); tantivy takes it per segment (counts ordered ascending came out wrong), and by default keeps ten
            # times the size of each segment's terms, which left a term under the cut in one segment uncounted
            # there. Every segment's terms are merged instead: exact, at a merge of the field's matched values.
            spec.pop("shard_size", None)
            spec["segment_size"] = EVERY_SEGMENT_TERM
            for option in ("include", "exclude"):
                if isinstance(spec.get(option), str):  # a pattern in Lucene's syntax, not tantivy's
                    spec[option] = self.compiler.lucene_pattern(spec[option], target.facet, f"{path}.{option}")
                elif option == "include" and isinstance(spec.get(option), Mapping):
                    raise Unsupported(
                        f"{path}.include", "partitions of a terms aggregation (partition, num_partitions)"
                    )
                elif option in spec and not isinstance(spec[option], list):
                    raise InvalidQuery(f"{path}.{option}", "expected a pattern or a list of values")
            if target.kind == "numeric" or _ordered_here(spec):
                # tantivy orders a number with a fraction after every whole one, whatever the order asked, breaks
                # ties of a sub-aggregation's metric its own way, keeping the buckets it shows by that order, and
                # takes one key to order by: every value is asked for, in the first key's order, and _es_shape
                # orders and cuts them.
                spec["size"] = MAX_NUMERIC_TERMS
                if isinstance(spec.get("order"), list):
                    first = spec.pop("order")[:1]
                    spec.update({"order": first[0]} if first else {})
        if kind == "histogram":
            spec.pop("order", None)  # tantivy answers by key, ascending; _es_shape applies the order asked
            if a_number(spec.get("interval"), f"{path}.interval") <= 0:
                raise InvalidQuery(f"{path}.interval", "must be > 0")
            if "offset" in spec:
                spec["offset"] = a_number(spec["offset"], f"{path}.offset")
            if "keyed" in spec:
                spec["keyed"] = a_boolean(spec["keyed"], f"{path}.keyed")
            for bounds in ("extended_bounds", "hard_bounds"):
                if bounds in spec:  # "0" is read as Elasticsearch reads it, a number
                    ends = an_object(spec[bounds], f"{path}.{bounds}")
                    spec[bounds] = {end: a_number(value, f"{path}.{bounds}.{end}") for end, value in ends.items()}
            ends = spec.get("extended_bounds")
            if isinstance(ends, dict) and len(ends) == 1:
                # One end (Search UI's open range): tantivy takes two, and the given one twice reaches it on its side;
                # on the other, where it lies beyond the values, _towards_one_end drops the buckets it added.
                spec["extended_bounds"] = dict.fromkeys(("min", "max"), next(iter(ends.values())))
            _extended_within_hard(spec, path)
            if spec.get("min_doc_count", 0) > 0:
                # Elasticsearch adds the empty buckets of extended_bounds only with min_doc_count 0, and otherwise
                # ignores them; tantivy refused the two together.
                spec.pop("extended_bounds", None)
            if "hard_bounds" in spec:
                spec["hard_bounds"] = _counted_values(spec)
        if kind == "percentiles":
            if spec.get("percents") == []:
                raise InvalidQuery(f"{path}.percents", "[percents] must not be empty")
            for i, percent in enumerate(_percents(spec)):
                if not 0 <= a_number(percent, f"{path}.percents[{i}]") <= 100:
                    raise InvalidQuery(f"{path}.percents[{i}]", f"percent must be in [0,100], got [{percent}]")
        if kind in ("range", "date_range"):
            # Each range keyed by its place in Elasticsearch's order, which tantivy's answer keeps beside the
            # buckets it adds for the gaps around and between them; _es_shape keeps the asked ones. Whole
            # numbers keep the meaning of an integer field's bounds (from inclusive, to exclusive), which
            # tantivy would round down.
            whole = target.number == tantivy.FieldType.Integer
            spec.pop("keyed", None)
            dates = None
            if target.kind == "date":  # the bounds are read in the format and time zone, the keys written in ISO
                _keys_as_iso(spec, path)
                dates = {option: spec.pop(option) for option in ("format", "time_zone") if option in spec}
            spec["ranges"] = [
                {
                    # A float past 2**53 is whole already, and as an int past a long, tantivy could not read it.
                    **{
                        k: math.ceil(v) if whole and abs(v) < 2**53 else v
                        for k, v in (("from", r.low), ("to", r.high))
                        if v is not None
                    },
                    "key": str(i),
                }
                for i, r in enumerate(_asked_ranges(spec.get("ranges"), f"{path}.ranges", dates))
            ]
        return spec

    def _date_histogram(self, spec: dict[str, Any], path: str) -> dict[str, Any]:
        """A date_histogram as tantivy's histogram of the date's milliseconds: a fixed interval, or a calendar one
        of a fixed length (:func:`.date_math.calendar_interval`), from its offset; its buckets are UTC's days."""
        _keys_as_iso(spec, path)
        if time_zone(spec.get("time_zone"), f"{path}.time_zone") != UTC:
            raise Unsupported(f"{path}.time_zone", "a date_histogram in a time zone other than UTC")
        fixed, calendar = spec.pop("fixed_interval", None), spec.pop("calendar_interval", None)
        if (fixed is None) == (calendar is None):
            raise InvalidQuery(path, "expected one of calendar_interval and fixed_interval")
        if "interval" in spec:
            raise InvalidQuery(f"{path}.interval", "unknown key [interval], use calendar_interval or fixed_interval")
        if fixed is not None:
            interval, offset = fixed_interval(fixed, f"{path}.fixed_interval"), 0
        elif calendar_months(calendar) is not None:
            return self._calendar_ranges(spec, calendar_months(calendar) or 1, path)
        else:
            interval, offset = calendar_interval(calendar, f"{path}.calendar_interval")
        if "offset" in spec:  # from the start of a day or a week (a calendar's) as from the epoch (a fixed one's)
            text = str(spec.pop("offset")).strip()
            sign = -1 if text.startswith("-") else 1
            offset += sign * fixed_interval(text.lstrip("+-"), f"{path}.offset")
        for option in ("hard_bounds", "missing", "keyed_as_string"):
            if option in spec:
                raise Unsupported(f"{path}.{option}", f"{option} of a date_histogram")
        spec.pop("format", None)  # read by _keys_as_iso above
        spec.pop("time_zone", None)
        if "extended_bounds" in spec:
            ends = an_object(spec["extended_bounds"], f"{path}.extended_bounds")
            spec["extended_bounds"] = {
                end: date_bound(value, False, f"{path}.extended_bounds.{end}") for end, value in ends.items()
            }
        return {**spec, "interval": interval, **({"offset": offset % interval} if offset else {})}

    def _calendar_ranges(self, spec: dict[str, Any], months: int, path: str) -> dict[str, Any]:
        """A date_histogram by month, quarter or year, whose buckets differ in length, as a range aggregation of
        every such period from the first date the matches hold to the last (:func:`_shape_date_ranges` keeps those
        of each bucket from the first to the last holding a product, as Elasticsearch's buckets run)."""
        for option in ("offset", "extended_bounds", "hard_bounds", "missing", "keyed_as_string"):
            if option in spec:
                raise Unsupported(f"{path}.{option}", f"{option} of a date_histogram by month, quarter or year")
        field = spec["field"]
        if self._matching is None:  # the body checked before any search: one period stands for them all
            return {"field": field, "ranges": [{"from": 0, "to": 1}]}
        span = self.compiler.leg.searcher().aggregate(self._matching, {"span": {"stats": {"field": field}}})["span"]
        edges = month_edges(span.get("min"), span.get("max"), months, MAX_BUCKETS)
        if len(edges) > MAX_BUCKETS:
            raise TooManyBuckets()
        return {"field": field, "ranges": [{"from": low, "to": high} for low, high in zip(edges, edges[1:])]}

    def field_type(self, name: Any) -> str | None:
        """``name``'s type as an answer is written for it (:data:`FieldTypes`)."""
        if not isinstance(name, str):
            return None
        target = self.compiler.target(name, "field")
        if target.kind in ("date", "boolean", "keyword"):
            return target.kind
        return {tantivy.FieldType.Float: "double", tantivy.FieldType.Integer: "long"}.get(target.number)  # type: ignore[arg-type]

    def _composite(self, spec: dict[str, Any], path: str) -> dict[str, Any]:
        """A composite aggregation (ReactiveSearch's lists with showLoadMore page their values with one) in
        tantivy's form: each source's field as the product's, and ``after`` in tantivy's typed encoding (see
        :func:`_after_value`). Its keys and ``after_key`` are answered as Elasticsearch's (:func:`_composite_keys`,
        given what this returns)."""
        size = a_count(spec.get("size", 10), f"{path}.size")
        if size == 0:
            raise InvalidQuery(f"{path}.size", "[size] must be greater than 0")
        if size > MAX_BUCKETS:
            raise TooManyBuckets()
        for option in spec.keys() - {"sources", "size", "after"}:
            raise InvalidQuery(f"{path}.{option}", f"[composite] unknown field [{option}]")
        if not isinstance(spec.get("sources"), list):
            raise InvalidQuery(f"{path}.sources", "expected a list of sources")
        sources, encodings, missing = [], {}, {}
        for i, source in enumerate(spec["sources"]):
            name, typed = single_key(source, f"{path}.sources[{i}]")
            kind, options = single_key(typed, f"{path}.sources[{i}].{name}")
            where = f"{path}.sources[{i}].{name}.{kind}"
            if name in encodings:
                raise InvalidQuery(
                    f"{path}.sources[{i}]", f"Composite source names must be unique, found duplicates: [{name}]"
                )
            if kind not in COMPOSITE_SOURCES:
                raise Unsupported(where, f"a composite source of type {kind!r} on the embedded backend")
            options = dict(an_object(options, where))
            for option in options.keys() - COMPOSITE_OPTIONS[kind]:
                raise Unsupported(f"{where}.{option}", f"{option!r} in a composite source on the embedded backend")
            target = self.compiler.target(a_string(options.get("field"), f"{where}.field"), f"{where}.field")
            if target.facet is None:
                raise Unsupported(f"{where}.field", f"aggregating {options['field']!r} (a text field)")
            if kind == "histogram" and target.kind != "numeric":
                raise InvalidQuery(f"{where}.field", f"a histogram of {options['field']!r}, which is not a number")
            if kind == "histogram" and a_number(options.get("interval"), f"{where}.interval") <= 0:
                raise InvalidQuery(f"{where}.interval", "must be > 0")
            missing[name] = options["missing_bucket"] = flag(
                options.get("missing_bucket", False), f"{where}.missing_bucket"
            )
            encodings[name] = (
                "f64"
                if kind == "histogram" or target.kind == "numeric"
                else "bool"
                if target.kind == "boolean"
                else "str"
            )
            sources.append({name: {kind: {**options, "field": target.facet}}})
        if not sources:
            raise InvalidQuery(f"{path}.sources", "a composite aggregation needs at least one source")
        spec["sources"], spec["size"] = sources, size
        if spec.get("after") is not None:
            after = an_object(spec["after"], f"{path}.after")
            if sorted(after) != sorted(encodings):
                raise InvalidQuery(f"{path}.after", f"expected a value for each source: {', '.join(encodings)}")
            for n in encodings:
                if after[n] is None and not missing[n]:
                    raise InvalidQuery(f"{path}.after.{n}", "null, but the source has no missing_bucket")
            spec["after"] = {n: _after_value(after[n], encodings[n], f"{path}.after.{n}") for n in encodings}
        return spec

    def run(self, base: tantivy.Query) -> dict[str, Any]:
        answer = self._run(self.aggs, base, self.path)
        return self._typed(answer, self.aggs, self.path) if self.typed_keys else answer

    def _typed(self, level: Mapping[str, Any], aggs: Mapping[str, Any], path: str) -> dict[str, Any]:
        """``level`` (the answer's aggregations, or a bucket) with each of ``aggs`` under its :func:`typed_key`,
        its sub-aggregations too, in every bucket."""
        out: dict[str, Any] = {}
        for key, value in level.items():
            if key not in aggs:  # a bucket's key, doc_count, ...
                out[key] = value
                continue
            where = f"{path}.{key}"
            spec = aggs[key]
            kind, subs = _kind(spec), _subs(spec)
            if subs and kind in SINGLE_BUCKETS:
                value = self._typed(value, subs, where)
            elif subs:
                buckets = value["buckets"]
                value["buckets"] = (
                    {k: self._typed(b, subs, where) for k, b in buckets.items()}
                    if isinstance(buckets, dict)
                    else [self._typed(b, subs, where) for b in buckets]
                )
            out[typed_key(self._type(kind, spec[kind], f"{where}.{kind}"), key)] = value
        return out

    def _type(self, kind: str, spec: Mapping[str, Any], path: str) -> str:
        """The name of an aggregation's type in Elasticsearch's answer (``check`` admitted ``kind``)."""
        if kind == "terms":
            target = self.compiler.target(spec["field"], f"{path}.field")
            if target.kind in ("date", "boolean"):
                return "lterms"  # Elasticsearch's terms of a date or a boolean are longs, each with its key_as_string
            return "sterms" if target.number is None else TERMS_TYPES[target.number]
        return NATIVE_AGGREGATIONS.get(kind, kind)  # filter, filters and global are their types' names

    def _run(self, aggs: Mapping[str, Any], base: tantivy.Query, path: str) -> dict[str, Any]:
        searcher = self.compiler.leg.searcher()
        out: dict[str, Any] = {}
        native: dict[str, Any] = {}
        for name, spec in aggs.items():
            where = f"{path}.{name}"
            kind, subs = _kind(spec), _subs(spec)
            below = f"{where}.{next((s for s in SUB_AGGREGATIONS if s in spec), SUB_AGGREGATIONS[0])}"
            if kind == "filter":
                inner = _within(base, self.compiler.query(spec["filter"], f"{where}.filter", False).constraint)
                out[name] = self._bucket(inner, subs, below)
            elif kind == "global":
                out[name] = self._bucket(tantivy.Query.all_query(), subs, below)
            elif kind == "missing":  # the products without a value in the field
                held = self.compiler.exists(self._missing_target(spec["missing"], f"{where}.missing"))
                out[name] = self._bucket(_excluding(base, [held]), subs, below)
            elif kind == "filters":
                out[name] = self._filters(spec["filters"], base, subs, f"{where}.filters", below)
            else:
                native[name] = spec
            if "meta" in spec and name in out:
                out[name]["meta"] = spec["meta"]
        if native:
            tops = {name: _top_hits_of(spec) for name, spec in native.items()}
            native = {name: _without_top_hits(spec) for name, spec in native.items()}
            answer = self._aggregate(searcher, base, native, path)

            def empty(aggs: Mapping[str, Any]) -> dict[str, Any]:
                """The answer to ``aggs`` over no product, for a bucket tantivy left them out of."""
                nothing = self._aggregate(searcher, tantivy.Query.empty_query(), aggs, path)
                _shape_level(nothing, aggs, path, empty, self.field_type)
                return nothing

            _shape_level(answer, native, path, empty, self.field_type)
            for name, spec in native.items():
                if _kind(spec) == "composite":  # only at the top: its sources' fields are resolved here
                    translated = self._native("composite", spec["composite"], f"{path}.{name}")
                    _composite_keys(answer[name], translated, self.compiler.leg.held_as)
                if tops[name]:
                    self._top_hits(answer[name], spec, tops[name], base, f"{path}.{name}")
                out[name] = answer[name]
                if "meta" in spec:
                    out[name]["meta"] = spec["meta"]
        return out

    def _aggregate(
        self, searcher: tantivy.Searcher, base: tantivy.Query, aggs: Mapping[str, Any], path: str
    ) -> dict[str, Any]:
        """tantivy's answer to ``aggs``; when the values of percentiles exceed tantivy's bucket limit (under many
        buckets of a large catalog), asked again with the percentiles its sketch's alone."""
        self._matching = base
        translated = self._translated(aggs, path, exact=True)
        if self.buckets + self._expected_buckets(searcher, base, translated) > MAX_BUCKETS:
            raise TooManyBuckets()
        try:
            return self._counted(searcher.aggregate(base, translated))
        except ValueError as exc:
            failure = exc
        if _has_percentiles(aggs):
            try:
                return self._counted(searcher.aggregate(base, self._translated(aggs, path, exact=False)))
            except ValueError as exc:
                failure = exc
        if any(limit in str(failure) for limit in _TANTIVY_LIMITS):
            raise TooManyBuckets() from None
        # tantivy's words stay in the log: they name its internals, not the request's part.
        log.warning("tantivy refused the aggregations at %s: %s", path, failure)
        raise Unsupported(path, "aggregations the embedded index cannot compute") from None

    def _expected_buckets(
        self, searcher: tantivy.Searcher, base: tantivy.Query, translated: Mapping[str, Any]
    ) -> float:
        """At most how many buckets the histograms, ranges and terms of ``translated`` (tantivy's form) make over
        ``base``, and values the metrics under them, from their fields' least and greatest values and their
        distinct values there (one pass over the matches, only when a histogram or a terms is asked): tantivy
        counts its buckets as it builds them, so a histogram of a tiny interval, or one under another's every
        bucket, took seconds and most of a gigabyte before its limit stopped it, and an interval of 1e-300 was
        answered as one wrong bucket; and it counts no metric, so two hundred of them under a terms of 20,000
        buckets took 145 s and 14 GB."""
        fields = sorted({spec["histogram"]["field"] for spec in _nodes(translated) if "histogram" in spec})
        # A terms aggregation's values are read only where it has sub-aggregations to multiply (a facet's list
        # alone is left to tantivy's own limit and the answer's count, and costs no pass).
        terms = sorted({spec["terms"]["field"] for spec in _nodes(translated) if "terms" in spec and spec.get("aggs")})
        if not fields and not terms:
            return 0
        asked = {f"s{i}": {"stats": {"field": name}} for i, name in enumerate(fields)}
        for i, name in enumerate(terms):  # how many values a terms aggregation may make buckets of, and hold
            asked.update({f"d{i}": {"cardinality": {"field": name}}, f"n{i}": {"value_count": {"field": name}}})
        found = searcher.aggregate(base, asked)
        facts = {name: found[f"s{i}"] for i, name in enumerate(fields)}
        for i, name in enumerate(terms):
            facts.setdefault(name, {}).update(distinct=found[f"d{i}"]["value"], held=found[f"n{i}"]["value"])
        return _buckets_made(translated, facts, {})

    def _counted(self, answer: dict[str, Any]) -> dict[str, Any]:
        """``answer``, its buckets counted against :data:`MAX_BUCKETS` (:class:`TooManyBuckets` past it)."""
        self._consume(_bucket_count(answer))
        return answer

    def _consume(self, buckets: int) -> None:
        self.buckets += buckets
        if self.buckets > MAX_BUCKETS:
            raise TooManyBuckets()

    def _translated(self, aggs: Mapping[str, Any], path: str, exact: bool) -> dict[str, Any]:
        """The tantivy aggregations that answer ``aggs``: each translated, with the parts :func:`_es_shape` joins
        back (``exact``: a percentiles' values beside it)."""
        out: dict[str, Any] = {}
        for name, spec in aggs.items():
            where = f"{path}.{name}"
            kind, subs = _kind(spec), _subs(spec)
            native = self._native(kind, spec[kind], f"{where}.{kind}")
            below = self._translated(subs, where, exact) if subs else {}
            if kind in ("range", "date_range") or "ranges" in native:
                parts = {
                    _part(name, i): {"range": {**native, "ranges": group}} for i, group in enumerate(_disjoint(native))
                }
            else:
                parts = {name: {TANTIVY_KIND.get(kind, kind): native}}
            for part in parts.values():
                if below:
                    part["aggs"] = below
            if kind == "percentiles" and exact:
                size = min(_exact_percentiles_limit(spec[kind], f"{where}.{kind}"), MAX_NUMERIC_TERMS)
                missing = {"missing": native["missing"]} if "missing" in native else {}
                parts[_part(name, PERCENTILE_VALUES)] = {"terms": {"field": native["field"], "size": size, **missing}}
            out.update(parts)
        return out

    def _missing_target(self, spec: Any, path: str) -> Target:
        """The field of a ``missing`` aggregation (its only option)."""
        spec = an_object(spec, path)
        for option in spec.keys() - {"field"}:
            raise InvalidQuery(f"{path}.{option}", f"[missing] unknown field [{option}]")
        return self.compiler.target(a_string(spec.get("field"), f"{path}.field"), f"{path}.field")

    def _top_hits(
        self,
        answer: dict[str, Any],
        spec: Mapping[str, Any],
        tops: Mapping[str, Any],
        base: tantivy.Query,
        path: str,
    ) -> None:
        """Each bucket of a terms or composite aggregation (``answer``, Elasticsearch's shape) with its ``top_hits``
        (``tops``, by name): the bucket's matches by the query's BM25, as Elasticsearch orders them by the query's
        score, each hit's ``_source`` filled in by :meth:`fill_sources` (the product records are the store's)."""
        kind = _kind(spec)
        options = spec[kind]
        if kind == "terms":
            fields = {None: self.compiler.target(options["field"], f"{path}.{kind}.field")}
        else:
            fields = {
                name: self.compiler.target(typed["terms"]["field"], f"{path}.{kind}.sources")
                for source in options["sources"]
                for name, typed in source.items()
            }
        searcher = self.compiler.leg.searcher()
        buckets = list(answer["buckets"].values()) if isinstance(answer["buckets"], dict) else answer["buckets"]
        if len(buckets) * len(tops) > MAX_TOP_HITS_SEARCHES:
            raise InvalidQuery(
                f"{path}.{kind}",
                f"top_hits in {len(buckets)} buckets: each bucket's is a search of its own; at most "
                f"{MAX_TOP_HITS_SEARCHES} in one aggregation (ask for fewer buckets, or page a composite)",
            )
        asked = {name: top_hits_options(top, f"{path}.aggs.{name}.top_hits") for name, top in tops.items()}
        for bucket in buckets:
            keys = {None: bucket["key"]} if kind == "terms" else bucket["key"]
            held = _all(
                self.compiler.exact(target, [keys[name]], path)
                if keys[name] is not None
                else _excluding(tantivy.Query.all_query(), [self.compiler.exists(target)])
                for name, target in fields.items()
            )
            group = _within(base, held)
            for name, (start, size, source) in asked.items():
                found = searcher.search(group, size, count=False, offset=start).hits if size else []
                hits = [
                    {"_index": None, "_id": str(searcher.doc(address).get_first("id")), "_score": score}
                    for score, address in found
                ]
                self.sourced.extend((hit, source) for hit in hits)
                total = {"value": bucket["doc_count"], "relation": "eq"}
                bucket[name] = {
                    "hits": {"total": total, "max_score": max((h["_score"] for h in hits), default=None), "hits": hits}
                }

    def fill_sources(self, store: Any, index: str) -> None:
        """The ``top_hits`` hits' index and ``_source`` (each product record as a search hit's, by its filter)."""
        products = store.get([hit["_id"] for hit, _ in self.sourced]) if self.sourced else {}
        for hit, source in self.sourced:
            hit["_index"] = index
            product = products.get(hit["_id"])
            if source.enabled and product is not None:
                hit["_source"] = source.apply(source_with_aliases(product.to_record(), self.compiler.aliases))

    def _bucket(self, query: tantivy.Query, subs: Mapping[str, Any] | None, path: str) -> dict[str, Any]:
        found = count(self.compiler.leg.searcher(), query)
        return {"doc_count": found, **(self._run(subs, query, path) if subs else {})}

    def _filters(self, spec: Any, base: tantivy.Query, subs: Any, path: str, below: str) -> dict[str, Any]:
        """A ``filters`` aggregation (``path``: where it is) and its buckets' sub-aggregations (at ``below``); with
        ``other_bucket`` (or an ``other_bucket_key``), last, the bucket of the products no filter matches (key
        ``_other_``), as Elasticsearch answers it."""
        spec = an_object(spec, path)
        named = spec.get("filters")
        if isinstance(named, Mapping):
            # by key, as Elasticsearch orders named filters whatever the request's order
            filters = [(key, q, f"{path}.filters.{key}") for key, q in sorted(named.items())]
        elif isinstance(named, list):
            filters = [(None, q, f"{path}.filters[{i}]") for i, q in enumerate(named)]
        else:
            raise InvalidQuery(f"{path}.filters", "expected named filters or a list of filters")
        other = spec.get("other_bucket_key")
        if other is not None:  # Elasticsearch: setting it sets other_bucket
            other = a_string(other, f"{path}.other_bucket_key")
        elif flag(spec.get("other_bucket", False), f"{path}.other_bucket"):
            other = "_other_"
        self._consume(len(filters) + (other is not None))
        constraints = [(key, self.compiler.query(q, where, False).constraint) for key, q, where in filters]
        buckets = [(key, self._bucket(_within(base, constraint), subs, below)) for key, constraint in constraints]
        if other is not None:
            rest = _excluding(base, [constraint for _, constraint in constraints])
            buckets.append((other, self._bucket(rest, subs, below)))
        if not isinstance(named, Mapping):
            return {"buckets": [bucket for _, bucket in buckets]}
        if spec.get("keyed", True):
            return {"buckets": {key: bucket for key, bucket in buckets}}
        return {"buckets": [{"key": key, **bucket} for key, bucket in buckets]}


def _nodes(translated: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Every aggregation of ``translated`` (tantivy's form), at every level, a composite's sources too."""
    for spec in translated.values():
        yield spec
        yield from _composite_sources(spec)
        yield from _nodes(spec.get("aggs") or {})


def _composite_sources(spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """The sources of a composite aggregation (tantivy's form) as aggregations of their own (none for another)."""
    for source in spec.get("composite", {}).get("sources", []):
        yield next(iter(source.values()))


def _buckets_made(
    level: Mapping[str, Any], values: Mapping[str, Mapping[str, Any]], within: Mapping[str, float]
) -> float:
    """At most how many buckets the histograms, ranges and terms of ``level`` make in one bucket of the level above,
    and values its metrics (one each, a percentiles one per percent): ``values`` holds each histogram field's stats
    over the matches and each terms field's distinct and held values there, ``within`` the interval of each
    histogram above on that field (a bucket of it spans no more). Other aggregations count no bucket of their own, and
    the ``extended_bounds`` of a histogram under an empty bucket are left out (tantivy's own limit and the
    count of the answer's buckets still hold there): an estimate that refuses what Elasticsearch answers would
    be worse than one that lets tantivy stop it."""
    total = 0.0
    for name, spec in level.items():
        below = spec.get("aggs") or {}
        if name.endswith(f">{PERCENTILE_VALUES}"):
            continue  # a percentiles' own values, counted with it
        if "histogram" in spec:
            histogram = spec["histogram"]
            field, interval = histogram["field"], float(histogram["interval"])
            made = _histogram_buckets(histogram, values[field], within.get(field))
            if made <= MAX_BUCKETS:
                _a_precise_interval(histogram, values[field])
            # Below, only the buckets that hold a value count: an empty one has nothing to divide.
            holding = min(made, values[field].get("count") or 0)
            total += made + holding * _buckets_made(below, values, {**within, field: interval})
        elif "composite" in spec:
            for source in _composite_sources(spec):
                if "histogram" in source:
                    _a_precise_interval(source["histogram"], values[source["histogram"]["field"]])
            total += spec["composite"]["size"] * (1 + _buckets_made(below, values, within))
        elif "range" in spec:
            made = 2 * len(spec["range"]["ranges"]) + 1  # the ranges and the gaps tantivy adds around them
            total += made * (1 + _buckets_made(below, values, within))
        elif "terms" in spec and below:
            facts = values[spec["terms"]["field"]]
            made = min(float(spec["terms"].get("size", 10)), float(facts["distinct"]))
            holding = min(made, float(facts["held"]))
            total += made + holding * _buckets_made(below, values, within)
        elif "percentiles" in spec:
            total += len(spec["percentiles"].get("percents") or DEFAULT_PERCENTS)  # each a value, as answered
        elif below or "terms" in spec:
            total += _buckets_made(below, values, within)
        else:
            total += 1  # a metric's value: counted as a bucket is (see _expected_buckets)
    return total


def _a_precise_interval(histogram: Mapping[str, Any], stats: Mapping[str, Any]) -> None:
    """Refuse an interval so small against the field's values that tantivy's bucket numbers (whole numbers of
    intervals, 64 bits) cannot hold them: it answered an interval of 1e-300 as one bucket keyed 9.2e-282 holding
    every product, where Elasticsearch's doubles give each value its own."""
    largest = max((abs(v) for v in (stats.get("min"), stats.get("max")) if v is not None), default=0.0)
    if largest / float(histogram["interval"]) >= 2**62:
        raise Unsupported(
            "aggs", f"a histogram interval of {histogram['interval']} for values up to {largest:g} (too fine here)"
        )


def _extended_within_hard(spec: Mapping[str, Any], path: str) -> None:
    """Refuse a histogram's ``extended_bounds`` reaching past its ``hard_bounds`` as Elasticsearch refuses them (a
    400; tantivy's refusal was a 501)."""
    extended, hard = spec.get("extended_bounds") or {}, spec.get("hard_bounds") or {}
    if extended.get("min", math.inf) < hard.get("min", -math.inf) or extended.get("max", -math.inf) > hard.get(
        "max", math.inf
    ):
        raise InvalidQuery(f"{path}.extended_bounds", "Extended bounds have to be inside hard bounds")


def _bucket_indexes(hard: Mapping[str, float], interval: float) -> tuple[float, float]:
    """The first and last bucket numbers ``k`` (a bucket's key is ``k × interval + offset``) whose values a
    histogram's ``hard_bounds`` keep: Elasticsearch keeps a value when ``k × interval``, its bucket's key without the
    offset, is within them (NumericHistogramAggregator), not the value itself; an open end is infinite."""
    low, high = hard.get("min", -math.inf) / interval, hard.get("max", math.inf) / interval
    first = math.ceil(low) if math.isfinite(low) else low  # beyond a double: every bucket, or none
    last = math.floor(high) if math.isfinite(high) else high
    # k × interval, as Elasticsearch computes it, decides, not the quotient's rounding.
    if math.isfinite(first):
        first += (first * interval < hard["min"]) - ((first - 1) * interval >= hard["min"])
    if math.isfinite(last):
        last += ((last + 1) * interval <= hard["max"]) - (last * interval > hard["max"])
    return first, last


def _counted_values(histogram: Mapping[str, Any]) -> dict[str, float]:
    """The values a histogram with ``hard_bounds`` counts, as tantivy's ``hard_bounds`` (values from min to max),
    which bound values, not buckets: from the first kept bucket's lower end to just below the end of the last
    (:func:`_bucket_indexes`), each open end the greatest double. Stretched to ``extended_bounds``, which tantivy
    wants inside them and Elasticsearch only inside the ``hard_bounds`` asked: the values then counted outside the
    kept buckets are taken out again (:func:`_hard_bounds_kept`)."""
    interval, offset = float(histogram["interval"]), float(histogram.get("offset", 0))
    first, last = _bucket_indexes(histogram["hard_bounds"], interval)
    extended = histogram.get("extended_bounds") or {}
    high = max(math.nextafter((last + 1) * interval + offset, -math.inf), extended.get("max", -math.inf))
    low = min(first * interval + offset, extended.get("min", math.inf), high)  # no bucket kept: no range either
    return {"min": max(low, -sys.float_info.max), "max": min(high, sys.float_info.max)}


def _hard_bounds_kept(listed: list[dict[str, Any]], spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A histogram's buckets without those its ``hard_bounds`` leave out in Elasticsearch (:func:`_bucket_indexes`),
    which tantivy counted for ``extended_bounds`` (:func:`_counted_values`): there, with min_doc_count 0,
    Elasticsearch answers them empty."""
    interval, offset = a_number(spec["interval"], "interval"), a_number(spec.get("offset", 0), "offset")
    hard = {end: a_number(value, end) for end, value in an_object(spec["hard_bounds"], "hard_bounds").items()}
    first, last = _bucket_indexes(hard, interval)
    empty = "extended_bounds" in spec and a_count(spec.get("min_doc_count", 0), "min_doc_count") == 0
    kept = []
    for bucket in listed:
        if first <= round((bucket["key"] - offset) / interval) <= last:
            kept.append(bucket)
        elif empty:
            kept.append({"key": bucket["key"], "doc_count": 0})
    return kept


def _histogram_buckets(histogram: Mapping[str, Any], stats: Mapping[str, Any], enclosing: float | None) -> float:
    """At most how many buckets a histogram makes: one per interval from the field's least to its greatest
    value (stretched by ``extended_bounds``, cut by ``hard_bounds``), no more than an enclosing bucket of
    ``enclosing`` width holds, and with a ``min_doc_count`` no more than there are values."""
    extended, hard = histogram.get("extended_bounds") or {}, histogram.get("hard_bounds") or {}
    lows = [v for v in (stats.get("min"), extended.get("min")) if v is not None]
    highs = [v for v in (stats.get("max"), extended.get("max")) if v is not None]
    if not lows or not highs:
        return 0
    low, high = max(min(lows), hard.get("min", -math.inf)), min(max(highs), hard.get("max", math.inf))
    if high < low:
        return 0
    interval = float(histogram["interval"])
    made = (high - low) / interval + 2  # the buckets the ends fall in
    if enclosing is not None:
        made = min(made, enclosing / interval + 2)
    if histogram.get("min_doc_count", 0) > 0:
        made = min(made, stats.get("count") or 0)
    return made


def _bucket_count(answer: Mapping[str, Any]) -> int:
    """The buckets in tantivy's answer to some aggregations, at every level; a percentiles' values count one each,
    as they are answered: a thousand percents under 10,000 buckets made a 3 GB answer after half a minute, every
    bucket within the limit."""
    total = 0
    for value in answer.values():
        if not isinstance(value, Mapping):
            continue
        if isinstance(percents := value.get("values"), Mapping | list):
            total += len(percents)
        buckets = value.get("buckets")
        inner = buckets.values() if isinstance(buckets, Mapping) else buckets if isinstance(buckets, list) else ()
        for bucket in inner:
            total += 1 + (_bucket_count(bucket) if isinstance(bucket, Mapping) else 0)
    return total


def _filter_buckets(aggs: Mapping[str, Any], searches: bool = False) -> int:
    """The buckets the ``filters`` aggregations of ``aggs`` (checked) answer whatever the products: each of their
    filters is a bucket, empty or not, under every bucket of the ``filters`` above. Counted before anything runs:
    each is a tantivy search here, so three hundred filters under three hundred took 65,536 searches (seconds)
    before :meth:`Aggregations._consume` refused them, where the body alone says they pass the limit. With
    ``searches``, the bucket searches they run (:data:`MAX_BUCKET_CLAUSES`): a ``filter``, ``global`` or ``missing``
    bucket is one too, and so is a ``filters``' other bucket."""
    total = 0
    for spec in aggs.values():
        kind, subs = _kind(spec), _subs(spec)
        below = _filter_buckets(subs, searches) if subs else 0
        named = spec[kind].get("filters") if kind == "filters" and isinstance(spec[kind], Mapping) else None
        if isinstance(named, Mapping | list):
            other = searches and any(
                spec[kind].get(k) not in (None, False) for k in ("other_bucket", "other_bucket_key")
            )
            total += (len(named) + other) * (1 + below)
        elif kind in SINGLE_BUCKETS:
            total += searches + below
    return total


def clauses(query: Any) -> int:
    """How many objects a query holds (its clauses and their options): roughly what one search of it costs."""
    if isinstance(query, Mapping):
        return 1 + sum(clauses(value) for value in query.values())
    if isinstance(query, list):
        return sum(clauses(value) for value in query)
    return 0


def _kind(spec: Mapping[str, Any]) -> str:
    """An aggregation's type (``check`` made sure it has exactly one)."""
    return next(k for k in spec if k not in (*SUB_AGGREGATIONS, "meta"))


def _subs(spec: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """An aggregation's sub-aggregations, if it has any."""
    return next((spec[s] for s in SUB_AGGREGATIONS if s in spec), None)


def _has_percentiles(aggs: Mapping[str, Any]) -> bool:
    return any(_kind(spec) == "percentiles" or _has_percentiles(_subs(spec) or {}) for spec in aggs.values())


def _part(name: str, index: int | str) -> str:
    """The name tantivy answers a part of aggregation ``name`` under (the first part of a range: ``name``)."""
    return name if index == 0 else f"{name}>{index}"


@dataclass(frozen=True)
class AskedRange:
    """A range of a range aggregation: its Elasticsearch key and its bounds (None: open)."""

    key: str
    low: float | None
    high: float | None


def _keys_as_iso(spec: Mapping[str, Any], path: str) -> None:
    """A date aggregation's ``format`` writes its keys: one of the ISO dates (``strict_date_optional_time``, as
    answered here) passes, another is a 501, as its keys would be written otherwise."""
    check_options(spec, path)
    formats = str(spec.get("format") or DEFAULT_FORMAT).split("||")
    if formats[0] not in ISO_FORMATS:
        raise Unsupported(f"{path}.format", f"keys written in the date format {formats[0]!r}")


def _asked_ranges(ranges: Any, path: str, dates: Mapping[str, Any] | None = None) -> list[AskedRange]:
    """A range aggregation's ``ranges``, each keyed as Elasticsearch keys it (its ``key``, else ``from-to``, a
    date's bounds written as dates), in Elasticsearch's order: by from, then to, an open end first (it answers
    them so, whatever the order asked). A date's bounds are read as dates (``now-1M/M``), in milliseconds."""
    if not isinstance(ranges, list) or not ranges:
        raise InvalidQuery(path, "expected a non-empty list of ranges")
    out = []
    for i, spec in enumerate(ranges):
        where = f"{path}[{i}]"
        for key in an_object(spec, where):
            if key not in ("from", "to", "key"):
                raise InvalidQuery(f"{where}.{key}", "unknown key for a range (from, to, key)")
        low, high = (None if spec.get(k) is None else _bound(spec[k], f"{where}.{k}", dates) for k in ("from", "to"))
        key = spec.get("key")
        if key is None:
            key = f"{'*' if low is None else _end_text(low, dates)}-{'*' if high is None else _end_text(high, dates)}"
        out.append(AskedRange(a_string(key, f"{where}.key", scalars=True), low, high))
    return sorted(out, key=lambda r: (-math.inf if r.low is None else r.low, math.inf if r.high is None else r.high))


def _disjoint(spec: Mapping[str, Any]) -> list[list[dict[str, Any]]]:
    """A translated range aggregation's ranges in groups of ranges that do not overlap (tantivy refuses
    overlapping ones): each range in the first group it overlaps nothing of."""
    groups: list[list[dict[str, Any]]] = []
    for asked in spec["ranges"]:
        low, high = asked.get("from", -math.inf), asked.get("to", math.inf)
        for group in groups:
            if all(high <= r.get("from", -math.inf) or r.get("to", math.inf) <= low for r in group):
                group.append(asked)
                break
        else:
            groups.append([asked])
    return groups


def _java_double(number: float) -> str:
    """``number`` as Java's ``Double.toString`` writes it, as Elasticsearch's range keys do: 100.0, 1.0E7."""
    if number == 0 or 1e-3 <= abs(number) < 1e7:
        return repr(float(number))  # Python's shortest digits, positional in this span as Java's
    sign, digits, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)  # a finite number
    mantissa = "".join(map(str, digits))
    return f"{'-' if sign else ''}{mantissa[0]}.{mantissa[1:] or '0'}E{len(digits) - 1 + exponent}"


Empty = Callable[[Mapping[str, Any]], dict[str, Any]]
FieldTypes = Callable[[Any], str | None]
"""A field's type as an aggregation's answer is written for it (``double``, ``date``; None: another)."""


def _bound(value: Any, path: str, dates: Mapping[str, Any] | None) -> float:
    """A range's end: a number, or a date read in the aggregation's ``format`` and ``time_zone``."""
    return a_number(value, path) if dates is None else float(date_bound(value, False, path, dates))


def _end_text(end: float, dates: Mapping[str, Any] | None) -> str:
    """A range's end as its key and ``from_as_string`` write it: a number as Java writes a double, a date in the
    aggregation's ``time_zone`` (``2025-03-01T00:00:00.000+01:00``), as Elasticsearch's date format prints it."""
    if dates is None:
        return _java_double(end)
    return format_date(int(end), time_zone(dates.get("time_zone"), "time_zone"))


def _shape_level(level: dict[str, Any], aggs: Mapping[str, Any], path: str, empty: Empty, types: FieldTypes) -> None:
    """tantivy's answer at one level (the top, or a bucket) to the aggregations ``aggs`` as Elasticsearch words
    it, their parts joined back (and gone from ``level``); ``empty`` answers those tantivy left out of an empty
    bucket, as Elasticsearch answers them there."""
    absent = {name: spec for name, spec in aggs.items() if name not in level}
    for name, spec in aggs.items():
        if name not in absent:
            level[name] = _es_shape(level, name, spec, f"{path}.{name}", empty, types)
    if absent:
        level.update(empty(absent))


def _es_shape(
    level: dict[str, Any], name: str, spec: Mapping[str, Any], path: str, empty: Empty, types: FieldTypes
) -> Any:
    """tantivy's answer to aggregation ``name`` at ``level`` as Elasticsearch words it, in its buckets'
    sub-aggregations too."""
    kind, subs = _kind(spec), _subs(spec) or {}
    options = spec[kind]
    answer = level[name]
    field_type = types(options["field"]) if isinstance(options, Mapping) and "field" in options else None
    if kind in ("range", "date_range"):
        found = {}
        for i in range(len(options["ranges"])):  # at most one part per range
            part = level.pop(_part(name, i), None) if i else answer
            found.update({bucket["key"]: bucket for bucket in (part or {}).get("buckets", [])})
        shaped = []
        for i, asked in enumerate(
            _asked_ranges(options["ranges"], "ranges", options if field_type == "date" else None)
        ):
            # tantivy answers no buckets at all under an empty bucket of a histogram (min_doc_count 0)
            bucket = found.get(str(i), {"doc_count": 0})
            bounds: dict[str, Any] = {k: v for k, v in (("from", asked.low), ("to", asked.high)) if v is not None}
            if field_type == "date":
                bounds.update({f"{k}_as_string": _end_text(v, options) for k, v in list(bounds.items())})
            rest = {k: v for k, v in bucket.items() if k not in ("key", "from", "to", "doc_count")}
            rest = {k: v for k, v in rest.items() if not k.endswith("_as_string")}
            shaped.append({"key": asked.key, **bounds, "doc_count": bucket["doc_count"], **rest})
        keyed = options.get("keyed") is True
        answer = {"buckets": {b.pop("key"): b for b in shaped} if keyed else shaped}
    elif kind == "terms":
        _order_terms(answer, options, subs, field_type)
        answer.setdefault("doc_count_error_upper_bound", 0)
    elif kind == "date_histogram" and calendar_months(options.get("calendar_interval")) is not None:
        answer = _shape_date_ranges(level, name, options, subs)
    elif kind in ("histogram", "date_histogram"):
        _shape_histogram(answer, options, subs, field_type)
    elif kind in ("value_count", "cardinality") and answer.get("value") is not None:
        answer["value"] = int(answer["value"])
    elif kind == "extended_stats":
        _extended_stats(answer, options)
    elif kind == "percentiles":
        answer = _percentiles(answer, level.pop(_part(name, PERCENTILE_VALUES), None), options, path)
    if field_type == "date" and kind in ("stats", "min", "max", "avg", "sum"):
        # Elasticsearch writes each value of a date's metric as a date too (min_as_string, value_as_string)
        for key in ("value", "min", "max", "avg", "sum"):
            if isinstance(answer.get(key), int | float):
                answer[f"{key}_as_string"] = format_date(int(answer[key]))
    buckets = answer.get("buckets")
    for bucket in buckets.values() if isinstance(buckets, dict) else buckets or []:
        _shape_level(bucket, subs, path, empty, types)
    return answer


def _after_value(value: Any, encoding: str, path: str) -> str:
    """A composite ``after`` value in tantivy's ``encoding`` of the source's field, read as Elasticsearch reads it
    (``"12"`` after a number is 12, ``"false"`` after a boolean false): a number (``f64:``, which tantivy compares
    with whole ones too), a boolean (``bool:``), a keyword (``str:``), or null (``null:``, a missing bucket's)."""
    if value is None:
        return "null:"
    if encoding == "f64":
        return f"f64:{a_number(value, path)!r}"
    if encoding == "bool":
        return f"bool:{'true' if a_boolean(value, path) else 'false'}"
    return f"str:{a_string(value, path)}"


def _composite_keys(
    answer: dict[str, Any], translated: Mapping[str, Any], held_as: Callable[[str], tantivy.FieldType | None]
) -> None:
    """A composite answer as Elasticsearch words it: each key's values in the order of the sources, a float
    field's and a histogram's as floats (tantivy answers a whole one as an integer), and ``after_key`` the last
    bucket's key (tantivy's is in its own encoding), none when there is no bucket. ``translated`` is the
    aggregation in tantivy's form (:meth:`Aggregations._composite`), whose fields are the index's, each held as
    ``held_as`` says."""
    floats = set()
    names = []
    for source in translated["sources"]:
        name, typed = next(iter(source.items()))
        kind, spec = next(iter(typed.items()))
        names.append(name)
        if kind == "histogram" or held_as(spec["field"]) == tantivy.FieldType.Float:
            floats.add(name)
    for bucket in answer.get("buckets", []):
        key = bucket["key"]
        bucket["key"] = {n: float(key[n]) if n in floats and key.get(n) is not None else key.get(n) for n in names}
    answer.pop("after_key", None)
    if answer.get("buckets"):
        answer["after_key"] = dict(answer["buckets"][-1]["key"])


def _ordered_here(spec: Mapping[str, Any]) -> bool:
    """Whether a terms aggregation's ``order`` is one tantivy cannot apply: several keys, or a sub-aggregation's
    metric (see ``Aggregations._native``)."""
    order = bucket_order(spec)
    return len(order) > 1 or any(by not in ("_count", "_key") for by, _ in order)


def _order_terms(
    answer: dict[str, Any], spec: Mapping[str, Any], subs: Mapping[str, Any], field_type: str | None
) -> None:
    """A terms aggregation every value of which tantivy answered (a number, or an order by a sub-aggregation's
    metric; see ``Aggregations._native``): its ``size`` buckets in the order asked, ties by key as
    Elasticsearch breaks them, the rest counted as others; the keys of a decimal field (price, rating)
    decimals, as Elasticsearch answers a double field's (199.0, not 199); a date's each with its date."""
    buckets = answer.get("buckets")
    if field_type == "date" and isinstance(buckets, list):
        for bucket in buckets:
            bucket["key"] = int(bucket["key"])
            bucket["key_as_string"] = format_date(bucket["key"])
    numeric = isinstance(buckets, list) and any(
        isinstance(b.get("key"), int | float) and not isinstance(b.get("key"), bool) for b in buckets
    )
    if not isinstance(buckets, list) or not (numeric or _ordered_here(spec)):
        return
    if numeric and field_type == "double":
        for bucket in buckets:
            bucket["key"] = float(bucket["key"])
    order_terms_buckets(answer, spec, lambda bucket, by: _metric(bucket, by, subs))


def _shape_histogram(
    answer: dict[str, Any], spec: Mapping[str, Any], subs: Mapping[str, Any], field_type: str | None
) -> None:
    """A histogram's buckets within its ``hard_bounds`` (:func:`_hard_bounds_kept`), in the ``order`` asked, by key
    ascending when none is (tantivy's keyed answer is in no order), ties by key; a keyed one's keyed by its bound
    as Elasticsearch writes a double."""
    buckets = answer.get("buckets")
    listed = list(buckets.values()) if isinstance(buckets, dict) else buckets
    if "hard_bounds" in spec:
        listed = _hard_bounds_kept(listed or [], spec)
    if not isinstance(listed, list):
        return
    extended = spec.get("extended_bounds")
    if isinstance(extended, Mapping) and len(extended) == 1:
        listed = _towards_one_end(listed, "min" in extended)
    order = bucket_order(spec) if "order" in spec else [("_key", "asc")]
    order_buckets(listed, order, lambda bucket, by: _metric(bucket, by, subs))
    if field_type == "date":  # keys in milliseconds, each with its date, a keyed one's keyed by it
        for bucket in listed:
            bucket.update(key_as_string=format_date(int(bucket["key"])), key=int(bucket["key"]))
        answer["buckets"] = {b["key_as_string"]: b for b in listed} if isinstance(buckets, dict) else listed
        return
    answer["buckets"] = {_java_double(float(b["key"])): b for b in listed} if isinstance(buckets, dict) else listed


def _towards_one_end(listed: list[dict[str, Any]], low: bool) -> list[dict[str, Any]]:
    """A histogram's buckets extended to its low end only (``low``) or its high end only: tantivy, which takes both
    ends, was given the one end twice (``Aggregations._native``), so an end on the far side of the values made empty
    buckets up to it there, where Elasticsearch extends a histogram towards the end given alone; those past the
    values on the other side go (all of them where no bucket holds a value, as Elasticsearch answers none)."""
    held = [bucket["key"] for bucket in listed if bucket["doc_count"] > 0]
    if not held:
        return []
    if low:
        return [bucket for bucket in listed if bucket["key"] <= max(held)]
    return [bucket for bucket in listed if bucket["key"] >= min(held)]


def _shape_date_ranges(
    level: dict[str, Any], name: str, spec: Mapping[str, Any], subs: Mapping[str, Any]
) -> dict[str, Any]:
    """A date_histogram by month, quarter or year answered as ranges (``Aggregations._calendar_ranges``) as
    Elasticsearch's buckets: each keyed by its first millisecond, from the first bucket holding a product to the
    last (with ``min_doc_count`` above 0, only those holding that many), in the ``order`` asked."""
    answer = level[name]
    ranges = sorted(
        (b for b in answer.get("buckets", []) if str(b.get("key", "")).isdigit()), key=lambda b: b.get("from", 0)
    )
    least = a_count(spec.get("min_doc_count", 0), "min_doc_count")
    filled = [i for i, b in enumerate(ranges) if b["doc_count"] > 0]
    kept = ranges[filled[0] : filled[-1] + 1] if filled else []
    listed = []
    for bucket in kept:
        if bucket["doc_count"] < least:
            continue
        rest = {
            k: v
            for k, v in bucket.items()
            if k not in ("key", "from", "to", "doc_count", "from_as_string", "to_as_string")
        }
        start = int(bucket["from"])
        listed.append({"key_as_string": format_date(start), "key": start, "doc_count": bucket["doc_count"], **rest})
    if "order" in spec:
        order_buckets(listed, bucket_order(spec), lambda bucket, by: _metric(bucket, by, subs))
    if spec.get("keyed") is True:
        return {"buckets": {b["key_as_string"]: b for b in listed}}
    return {"buckets": listed}


def _metric(bucket: Mapping[str, Any], path: str, subs: Mapping[str, Any]) -> float | None:
    """The metric a terms order names in a bucket: ``name`` (a single value) or ``name.value`` (``stats.avg``).
    Of no values, a min is +Infinity and a max -Infinity to Elasticsearch, as they order; anything else None."""
    name, _, value = path.partition(".")
    found = bucket.get(name)
    if not isinstance(found, Mapping):
        return None
    number = found.get(value or "value")
    if isinstance(number, int | float) and not math.isnan(number):
        return float(number)
    kind = _kind(subs[name]) if name in subs else ""
    return {"min": math.inf, "max": -math.inf}.get(value or kind)


def _extended_stats(answer: dict[str, Any], spec: Mapping[str, Any]) -> None:
    """The deviations of an extended_stats answer by Elasticsearch's arithmetic (InternalExtendedStats): from the
    count, sum and sum of squares; a sample of one has no deviation, written "NaN" as Elasticsearch writes a
    number that is none; no values: every deviation and bound null. (tantivy answered null for a single value.)"""
    count = answer.get("count") or 0
    bounds = ("upper", "lower", "upper_population", "lower_population", "upper_sampling", "lower_sampling")
    deviations = (
        "variance",
        "variance_population",
        "variance_sampling",
        "std_deviation",
        "std_deviation_population",
        "std_deviation_sampling",
    )
    if not count:
        answer.update(dict.fromkeys(deviations, None), std_deviation_bounds=dict.fromkeys(bounds, None))
        return
    total, squares = answer["sum"], answer["sum_of_squares"]
    population = max((squares - total * total / count) / count, 0.0)
    sampling = max((squares - total * total / count) / (count - 1), 0.0) if count > 1 else math.nan
    sigma = float(spec.get("sigma", 2.0))
    avg = total / count
    values = {"variance": population, "variance_population": population, "variance_sampling": sampling}
    values |= {
        "std_deviation": math.sqrt(population),
        "std_deviation_population": math.sqrt(population),
        "std_deviation_sampling": math.sqrt(sampling),
    }
    spread = {"": math.sqrt(population), "_population": math.sqrt(population), "_sampling": math.sqrt(sampling)}
    answer.update({k: _json_number(v) for k, v in values.items()})
    answer["std_deviation_bounds"] = {
        f"{side}{kind}": _json_number(avg + sign * sigma * deviation)
        for kind, deviation in spread.items()
        for side, sign in (("upper", 1), ("lower", -1))
    }


def _json_number(number: float) -> float | str:
    """A double as Elasticsearch writes it in JSON: NaN as the string "NaN" (JSON has no such number)."""
    return "NaN" if math.isnan(number) else number


def _exact_percentiles_limit(spec: Mapping[str, Any], path: str) -> int:
    """How many values Elasticsearch's TDigest keeps every one of (HybridDigest: 20 × its compression)."""
    tdigest = an_object(spec.get("tdigest", {}), f"{path}.tdigest")
    compression = a_number(tdigest.get("compression", TDIGEST_COMPRESSION), f"{path}.tdigest.compression")
    return max(round(compression), 1) * 20


def _percents(spec: Mapping[str, Any]) -> list[Any]:
    """A percentiles aggregation's percents: one or a list of them; none (or null) asks for the defaults."""
    percents = spec.get("percents")
    return list(DEFAULT_PERCENTS) if percents is None else clause_list(percents)


def _percentiles(answer: dict[str, Any], values: Any, spec: Mapping[str, Any], path: str) -> dict[str, Any]:
    """A percentiles answer as Elasticsearch's TDigest gives it.

    Below 20 × its compression values (2,000 by default) Elasticsearch keeps them all and interpolates between
    the two around a percentile's rank, ``q × (n - 1)``; ``values`` is a terms aggregation of the field (with
    ``missing``), from which the same numbers are computed here. Past that, both engines sketch: tantivy's
    answer stands (it leaves ``missing`` out, so that is then a 501). No values: null, as Elasticsearch answers.
    The percents are answered in ascending order, as Elasticsearch sorts them when it reads the request.
    """
    percents = sorted(float(p) for p in _percents(spec))
    counted = (values or {}).get("buckets")
    total = sum(b["doc_count"] for b in counted or [])
    if counted is not None and not values.get("sum_other_doc_count") and total < _exact_percentiles_limit(spec, path):
        ordered = sorted((float(b["key"]), b["doc_count"]) for b in counted)
        found = {p: _quantile(ordered, total, p / 100) for p in percents}
    elif "missing" in spec:
        raise Unsupported(f"{path}.missing", "missing with percentiles of more values than TDigest keeps exactly")
    else:
        sketch = answer.get("values")
        pairs = sketch.items() if isinstance(sketch, Mapping) else ((v["key"], v["value"]) for v in sketch or [])
        found = {float(k): v for k, v in pairs}
    clean = {p: None if (v := found.get(p)) is None or math.isnan(v) else v for p in percents}
    if spec.get("keyed", True) is False:
        return {"values": [{"key": p, "value": v} for p, v in clean.items()]}
    return {"values": {_java_double(p): v for p, v in clean.items()}}


def _quantile(ordered: list[tuple[float, int]], total: int, q: float) -> float | None:
    """The ``q`` quantile of the values (value, how many times) by Elasticsearch's Dist.quantile: between the
    values at ranks below and above ``q × (total - 1)``, linearly."""
    if not total:
        return None
    index = min(max(q * (total - 1), 0.0), total - 1.0)
    low = math.floor(index)

    def at(rank: int) -> float:
        seen = 0
        for value, times in ordered:
            seen += times
            if rank < seen:
                return value
        return ordered[-1][0]

    below = at(low)
    return below + (index - low) * (at(min(low + 1, total - 1)) - below)


# ------------------------------------------------------------------ highlighting


def parse_highlight(spec: Any, compiler: Compiler, marks: list[Mark]) -> list[HighlightField]:
    """The fields a ``highlight`` asks for (names, ``*`` patterns), each with its options and what it marks: the
    ``marks`` of the query (or of its ``highlight_query``) on the field, or on any field with ``require_field_match:
    false``, or on its ``matched_fields``."""
    spec = an_object(spec, "highlight")
    raw = spec.get("fields", {})
    entries: list[tuple[str, Mapping[str, Any], str]] = []  # a field's name, its options, where they are
    if isinstance(raw, Mapping):
        entries = [(k, an_object(v or {}, f"highlight.fields.{k}"), f"highlight.fields.{k}") for k, v in raw.items()]
    elif isinstance(raw, list):
        for i, item in enumerate(raw):
            spot = f"highlight.fields[{i}]"
            entries += [(k, an_object(v or {}, f"{spot}.{k}"), f"{spot}.{k}") for k, v in an_object(item, spot).items()]
    else:
        raise InvalidQuery("highlight.fields", "expected an object of fields")
    if spec.get("highlight_query") is not None:
        marks = compiler.marks(spec["highlight_query"], "highlight.highlight_query")
    out: list[HighlightField] = []
    for name, options, where in entries:
        merged = {**spec, **options}

        def at(option: str, options: Mapping[str, Any] = options, where: str = where) -> str:
            """Where an option is in the body: the field's own, else the top level's, which every field takes."""
            return f"{where}.{option}" if option in options else f"highlight.{option}"

        kind = merged.get("type", "unified")
        if kind not in HIGHLIGHTERS:
            raise InvalidQuery(
                at("type"), f"unknown highlighter type {kind!r} (expected one of {', '.join(HIGHLIGHTERS)})"
            )
        wanted = marks
        if options.get("highlight_query") is not None:
            wanted = compiler.marks(options["highlight_query"], f"{where}.highlight_query")
        every_field = not flag(merged.get("require_field_match", True), at("require_field_match"))
        matched = set(_matched_fields(merged.get("matched_fields", []), at("matched_fields"), compiler))
        pre, post = _tags(merged, at)
        names = [f for f in LEXICAL_FIELDS if fnmatchcase(f, name)] if "*" in name else [name]
        for each in names:
            try:
                target = compiler.target(each, f"highlight.fields.{each}")
            except Unsupported:
                continue  # Elasticsearch answers no highlight for a field it does not have
            if target.kind not in ("text", "brand", "category", "attribute"):
                continue
            source = target.name if target.kind == "text" else {"attribute": "attributes"}.get(target.kind, target.kind)
            out.append(
                HighlightField(
                    name=each,
                    source=source,
                    marks=tuple(m for m in wanted if every_field or m.field == source or m.field in matched),
                    pre=pre,
                    post=post,
                    fragment_size=a_count(merged.get("fragment_size", DEFAULT_FRAGMENT_SIZE), at("fragment_size")),
                    fragments=a_count(merged.get("number_of_fragments", DEFAULT_FRAGMENTS), at("number_of_fragments")),
                    no_match_size=a_count(merged.get("no_match_size", 0), at("no_match_size")),
                    escape=merged.get("encoder") == "html",
                    by_score=str(merged.get("order", "none")).lower() == "score",  # any case; else none, as there
                    # A phrase is one span in the unified highlighter's weight-matches mode (only with
                    # require_field_match) and in the fast vector highlighter's; the plain one marks each word.
                    whole_phrases=kind != "plain" and not every_field,
                )
            )
    return out


def _tags(options: Mapping[str, Any], at: Callable[[str], str]) -> tuple[str, str]:
    """The tags around a match: the first of ``pre_tags``/``post_tags`` (the unified highlighter uses one pair), or
    ``tags_schema: styled``'s first; ``at`` says where an option is in the body."""
    styled = options.get("tags_schema") == "styled"
    pre = options.get("pre_tags", ['<em class="hlt1">' if styled else "<em>"])
    post = options.get("post_tags", ["</em>"])
    return (
        a_string(pre[0] if isinstance(pre, list) and pre else pre, at("pre_tags")),
        a_string(post[0] if isinstance(post, list) and post else post, at("post_tags")),
    )


def _matched_fields(value: Any, path: str, compiler: Compiler) -> list[str]:
    """``matched_fields``: the text fields whose matches a field also marks (a field the product lacks: none)."""
    names = [value] if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise InvalidQuery(path, "expected a list of field names")
    out = []
    for name in names:
        try:
            out.append(compiler.target(name, path).name)
        except Unsupported:
            continue
    return out


def _field_text(product: Product, target: Target) -> str:
    if target.kind == "attribute":
        return ", ".join(product.attributes.get(target.name, ()))
    if target.name == "category":
        return " > ".join(product.category)
    if target.name == "attributes":
        return product.attribute_text()
    return str(getattr(product, target.name, "") or "")


def highlights(
    compiler: Compiler, fields: list[HighlightField], products: list[Product], deadline: float
) -> tuple[dict[str, dict[str, list[str]]], bool]:
    """Per product id, per field asked for, the highlighted fragments (:mod:`.highlighting` says how), in the
    page's order until ``deadline`` (``time.perf_counter``); and whether every product was highlighted. Each takes
    Python's time, fields times hits: a page of 10,000 hits with every field asked held a worker for 8 s, so past
    the deadline the rest of the page goes without, as a part too slow to wait for."""
    targets = [(spec, compiler.target(spec.name, f"highlight.fields.{spec.name}")) for spec in fields]
    out: dict[str, dict[str, list[str]]] = {}
    for product in products:
        if time.perf_counter() > deadline:
            return out, False
        for spec, target in targets:
            value = _field_text(product, target)
            if not value:
                continue
            fragments = highlight(value, compiler.leg.tokens(value), spec)
            if fragments:
                out.setdefault(product.id, {})[spec.name] = fragments
    return out, True


# ------------------------------------------------------------------ sorting


SCORE = "_score"
INDEX_ORDER = "_doc"
"""Elasticsearch's index order (a scroll's, elasticsearch-py's ``helpers.scan``): here the products by id, the order
the index holds one of its own, so that pages follow one another as they do there."""


SORTABLE = f"{', '.join(NUMERIC_FIELDS)}, brand, category, title.keyword, id, _doc and _score"


@dataclass(frozen=True)
class SortKey:
    """A key after a sort's first field: another field (its fast field), or ``_score`` (highest first)."""

    field: str
    descending: bool
    missing_first: bool = False
    """Whether the products without a value come before those with one (``missing: _first``), not after."""


@dataclass(frozen=True)
class FieldSort:
    field: str
    descending: bool
    then: tuple[SortKey, ...] = ()
    """The keys after the first, each ordering the ties of those before it (Search UI's sortList, Searchkit's
    sorting arrays); each hit's sort values carry them all, ``_score`` included, as in Elasticsearch."""
    named: str = ""
    """The first key's field as the request names it, for the answer's reason (``field`` is the index's own)."""
    score_first: bool = False
    """Whether ``_score`` came before these keys: a search with words is then the pipeline's ranking (its scores
    seldom tie), one without (every match scored alike) is ordered by these keys, as in Elasticsearch."""
    missing_first: bool = False
    """The first key's ``missing: _first`` (see :attr:`SortKey.missing_first`)."""
    unmapped_at: tuple[int, ...] = ()
    """The places in the request's sort of the keys left out, on fields the index does not hold
    (:func:`~.es_compat.unmapped_sort_type`)."""

    @property
    def lists_missing_first(self) -> bool:
        """Whether a key puts the products without a value first: a cursor (``search_after``, a scroll's next
        page) reads the products without one as after every value, so such a sort is served on pages by
        ``from``."""
        return self.missing_first or any(key.missing_first for key in self.then)


# A search without words lists its matches by sales, most first (EmbeddedSearch.browse_result says why).
BROWSE_ORDER = FieldSort("sales", descending=True)


MAX_SORT_VALUES = 1_000_000
"""The most sort values one page's hits carry: its keys times the hits up to its end (this service's bound;
Elasticsearch sets none). Each hit carries each key's value: 7,000 keys on a page of 10,000 hits took 24 s and
1.25 GB and answered 435 MB, where a shop's sort has two or three keys (7,000 on a page of 20 are answered)."""


def parse_sort(sort: Any, compiler: Compiler, path: str = "sort") -> FieldSort | None:
    """None for relevance order (the pipeline's); the fields' keys (and ``_score`` after one) otherwise."""
    items = sort if isinstance(sort, list) else [] if sort is None else [sort]
    keys: list[SortKey] = []
    unmapped: list[int] = []
    first = ""
    score_first = False
    for i, item in enumerate(items):
        where = f"{path}[{i}]"
        if isinstance(item, str):
            name, order = item, None
        else:
            name, options = single_key(item, where)
            order = options.get("order") if isinstance(options, Mapping) else options
            nested_sort(name, options, where)
        if name == SCORE:
            if (order or "desc") != "desc":
                raise Unsupported(where, "ascending _score")
            if not keys:
                score_first = True  # relevance first (see FieldSort.score_first)
            elif not score_first:
                keys.append(SortKey(SCORE, True))
            continue
        descending = (order or "asc") == "desc"
        target = _sort_target(compiler, name, options if isinstance(item, Mapping) else None, where)
        if target is None:
            unmapped.append(i)
            continue
        sortable = target.sort
        if sortable is None:
            raise Unsupported(where, f"sorting by {name!r} (sortable: {SORTABLE})")
        if target.sort_max is not None:
            sortable = _several(target, item[name] if isinstance(item, Mapping) else None, descending, where)
        missing = options.get("missing") if isinstance(item, Mapping) and isinstance(options, Mapping) else None
        first = first or name
        keys.append(SortKey(sortable, descending, _missing_first(compiler, sortable, missing, descending, where, name)))
    if not keys:
        return None
    head = keys[0]
    return FieldSort(
        head.field,
        head.descending,
        tuple(keys[1:]),
        named=first,
        score_first=score_first,
        missing_first=head.missing_first,
        unmapped_at=tuple(unmapped),
    )


def _missing_first(compiler: Compiler, field: str, missing: Any, descending: bool, where: str, name: str) -> bool:
    """Whether a key's ``missing`` puts the products without a value before the others: ``_first``; ``_last`` or
    none, after. A value of its own (``"missing": 0``) sorts them as if they held it, which here is exact where it
    lies beyond every value the index holds in the field: past the last one in the sort's direction, they come
    after (``rating`` descending with ``missing: 0``); before the first, before. A value among the field's own, or
    on a field that is not a number: 501 naming it."""
    if missing in (None, "_last"):
        return False
    if missing == "_first":
        return True
    at = f"{where}.{name}.missing"
    held = compiler.leg.held_as(field)
    if held not in (tantivy.FieldType.Integer, tantivy.FieldType.Float) or isinstance(missing, bool):
        raise Unsupported(at, "a missing value of its own on a field that is not a number (use _first or _last)")
    value = a_number(missing, at)
    span = compiler.leg.searcher().aggregate(tantivy.Query.all_query(), {"span": {"stats": {"field": field}}})["span"]
    if not span.get("count"):
        return False  # no product holds a value: every one is missing, and the key orders nothing
    low, high = span["min"], span["max"]
    if (value > high and not descending) or (value < low and descending):
        return False
    if (value < low and not descending) or (value > high and descending):
        return True
    raise Unsupported(at, f"a missing value among the field's own values ({low:g} to {high:g}; use _first or _last)")


def _sort_target(compiler: Compiler, name: str, options: Any, where: str) -> Target | None:
    """The field a sort key names; None for one the index does not hold that names an ``unmapped_type``.

    Elasticsearch sorts by such a field as if no product had a value in it: the key orders nothing, and a
    client names the type so that one sort can serve indexes that hold the field and ones that do not (Kibana's
    and dashboards' ``@timestamp``, a shop's optional ``rating``). Here the key is left out, its sort value too;
    without an ``unmapped_type``, an unknown field is refused as before.
    """
    unmapped = unmapped_sort_type(name, options, where)
    try:
        return compiler.target("id" if name == INDEX_ORDER else name, where)
    except Unsupported:  # a field the index does not hold (Compiler.target)
        if unmapped is None:
            raise
        return None


def _several(target: Target, options: Any, descending: bool, where: str) -> str:
    """The field a sort by a field of several values reads: each product's least ascending and greatest descending,
    as Elasticsearch's default ``mode``, or the ``mode`` asked (``min``, ``max``; an average, a sum or a median
    of them is a 501)."""
    mode = options.get("mode") if isinstance(options, Mapping) else None
    if mode not in (None, "min", "max"):
        raise Unsupported(f"{where}.{target.name}.mode", f"sorting by the {mode} of a field's several values")
    assert target.sort is not None and target.sort_max is not None  # a catalog field of several values has both
    return target.sort_max if mode == "max" or (mode is None and descending) else target.sort


def sorted_page(
    leg: TantivyRetriever, match: tantivy.Query, text_query: tantivy.Query | None, sort: FieldSort, need: int
) -> tuple[list[tuple[str, list[Any], float]], int]:
    """The first ``need`` matches by the sort's keys (missing values last, or first where a key says so), ties by
    score then id, each with its sort values; and how many match.

    The matches sharing the page's last value are read whole, so every page orders them alike; where more than
    :data:`MAX_SORT_TIES` share a value, they are ordered by id alone (the first of them by id read), so that
    pages still follow one another without overlap. Where the first key lists the products without a value first,
    they are such a group ahead of the others.
    """
    searcher = leg.searcher()
    total = count(searcher, match)
    if need == 0 or total == 0:
        return [], total
    crowded: set[Any] = set()
    rows: list[tuple[str, Any]] = []
    if sort.missing_first:
        lacking = _equal_to(leg, match, sort.field, None)
        rows = [(pid, None) for pid in _tied(searcher, lacking, [], need, crowded, None)]
        match = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, match), (tantivy.Occur.Must, tantivy.Query.exists_query(sort.field))]
        )
    if len(rows) < need:
        rows += _by_first_key(leg, searcher, match, sort, need - len(rows), crowded)
    # A value before the last, shared by more than MAX_SORT_TIES (a page past them), is ordered as its own page was.
    shared = Counter(value for _, value in rows)
    crowded.update(value for value, n in shared.items() if n > MAX_SORT_TIES)
    ids = sorted({pid for pid, _ in rows})
    scores: dict[str, float] = {}
    if text_query is not None and rows:
        scored = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, text_query),
                (tantivy.Occur.Must, _ids_only(leg, ids)),
            ]
        )
        for score, address in searcher.search(scored, len(ids), count=False).hits:
            scores[str(searcher.doc(address).get_first("id"))] = score
    # The later keys' values, for the rows kept: every tie of the page's last value is among them. Each field is
    # read once, and only its first key orders: a key naming a field again orders nothing (the rows it would order
    # tie on that field). A body may name one field thousands of times, and each key read the field for every row.
    later: dict[str, dict[str, Any]] = {SCORE: scores}
    deciding = {sort.field: (sort.descending, sort.missing_first)}
    for later_key in sort.then:
        if later_key.field not in later and later_key.field != sort.field:
            later[later_key.field] = _field_values(leg, ids, later_key.field)
        deciding.setdefault(later_key.field, (later_key.descending, later_key.missing_first))

    def later_value(pid: str, name: str) -> Any:
        return later[name].get(pid, 0.0 if name == SCORE else None)

    def values(row: tuple[str, Any]) -> list[Any]:
        pid, value = row
        return [value, *(value if k.field == sort.field else later_value(pid, k.field) for k in sort.then)]

    def value_of(name: str) -> Callable[[tuple[str, Any]], Any]:
        if name == sort.field:
            return lambda row: row[1]
        return lambda row: None if row[1] in crowded else later_value(row[0], name)

    rows.sort(key=lambda row: (0.0 if row[1] in crowded else -scores.get(row[0], 0.0), row[0]))
    for name, (descending, missing_first) in reversed(deciding.items()):
        _sort_stably(rows, value_of(name), descending, missing_first)
    return [(pid, values((pid, value)), scores.get(pid, 0.0)) for pid, value in rows[:need]], total


def _by_first_key(
    leg: TantivyRetriever,
    searcher: tantivy.Searcher,
    match: tantivy.Query,
    sort: FieldSort,
    need: int,
    crowded: set[Any],
) -> list[tuple[str, Any]]:
    """The first ``need`` matches by the first key (missing values last), each with its value, and every match
    that shares the last one's value (:func:`_tied`; a value too many share is added to ``crowded``)."""
    order = tantivy.Order.Desc if sort.descending else tantivy.Order.Asc
    hits = searcher.search(match, need, count=False, order_by_field=sort.field, order=order).hits
    rows = [(str(searcher.doc(address).get_first("id")), value) for value, address in hits]
    if len(rows) < need:
        return rows
    # Every match before the last value is here; those sharing it may reach past the page.
    boundary = rows[-1][1]
    before = [row for row in rows if row[1] != boundary]
    ties = _equal_to(leg, match, sort.field, boundary)
    on_page = [pid for pid, value in rows if value == boundary]
    return before + [(pid, boundary) for pid in _tied(searcher, ties, on_page, need - len(before), crowded, boundary)]


def _tied(
    searcher: tantivy.Searcher, ties: tantivy.Query, on_page: list[str], need: int, crowded: set[Any], value: Any
) -> list[str]:
    """The ids of the matches ``ties`` (which share one value of the first key) that a page of ``need`` of them
    orders: all of them, for later keys, the score and the id to order; where more than :data:`MAX_SORT_TIES`
    share it, the first ``need`` by id, and ``value`` is added to ``crowded`` (ordered by id alone). ``on_page``
    stay too: an id past tantivy's longest term has no term to be found by."""
    tied = count(searcher, ties)
    if tied > MAX_SORT_TIES:
        crowded.add(value)
        found = searcher.search(ties, need, count=False, order_by_field="id", order=tantivy.Order.Asc)
    else:
        found = searcher.search(ties, max(tied, 1), count=False)
    return sorted({str(searcher.doc(address).get_first("id")) for _, address in found.hits} | set(on_page))


def _equal_to(leg: TantivyRetriever, match: tantivy.Query, field: str, value: Any) -> tantivy.Query:
    """The matches whose fast field ``field`` holds ``value`` (None: no value)."""
    if value is None:
        return tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, match), (tantivy.Occur.MustNot, tantivy.Query.exists_query(field))]
        )
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, match), (tantivy.Occur.Must, tantivy.Query.term_query(leg.schema, field, value))]
    )


def sorted_page_after(
    leg: TantivyRetriever,
    match: tantivy.Query,
    text_query: tantivy.Query | None,
    sort: FieldSort,
    need: int,
    after: Cursor,
) -> tuple[list[tuple[str, list[Any], float]], int]:
    """:func:`sorted_page` of the matches that sort strictly after the cursor ``after`` (:mod:`.search_after`).

    tantivy is asked for the matches whose first key is after the cursor's first value, or from it on where
    later keys order its ties (and, for a long keyword, from the keywords sharing its first characters on), and
    those without a value; the ones among them that do not follow the cursor are the first rows of that page and
    are dropped. Where more than :data:`MAX_SORT_TIES` might be dropped (that many matches share the cursor's
    first value and later keys order them), the page would read them all: a 501 naming ``search_after``.
    """
    searcher = leg.searcher()
    total = count(searcher, match)
    candidates, ties = _from_cursor(leg, sort, after.values[0])
    if candidates is None:
        return [], total
    within = tantivy.Query.boolean_query([(tantivy.Occur.Must, match), (tantivy.Occur.Must, candidates)])
    tied = [(tantivy.Occur.Must, match), (tantivy.Occur.Must, ties)] if ties is not None else []
    skipped = count(searcher, tantivy.Query.boolean_query(tied)) if tied else 0
    if skipped > MAX_SORT_TIES:
        raise Unsupported(
            "search_after",
            f"continuing among more than {MAX_SORT_TIES} matches that tie with the cursor's first value "
            "(add a later sort key such as id)",
        )
    rows, _ = sorted_page(leg, within, text_query, sort, need + skipped)
    return [row for row in rows if follows(row[1], after)][:need], total


def cursor_keys(leg: TantivyRetriever, sort: FieldSort) -> list[CursorKey]:
    """How each of the sort's keys reads and compares a cursor's value."""

    catalog = leg.catalog
    dates = {catalog.index_field(name) for name, kind in catalog.types.items() if kind == "date"}

    def kind(field: str) -> KeyKind:
        if field == SCORE:
            return "score"
        held = leg.held_as(field)
        if held is None or held == tantivy.FieldType.Text:
            return "keyword"
        if held == tantivy.FieldType.Boolean:
            return "boolean"
        if held == tantivy.FieldType.Float:
            return "double"
        named = {field, field.removesuffix(MIN_SUFFIX), field.removesuffix(MAX_SUFFIX)}  # a least or greatest too
        return "date" if named & dates else "long"

    return [CursorKey(kind(k.field), k.descending) for k in (SortKey(sort.field, sort.descending), *sort.then)]


def _from_cursor(
    leg: TantivyRetriever, sort: FieldSort, first: Any
) -> tuple[tantivy.Query | None, tantivy.Query | None]:
    """The products that may follow a cursor whose first value is ``first`` (None: none may), and those of them
    that may not (None: every one does): the values after ``first`` in the sort's direction, ``first`` itself
    where later keys order its ties, and no value, which sorts last. ``first`` is of its key's type
    (:func:`~.search_after.cursor`: a whole number for a whole-number field)."""
    field, inclusive = sort.field, bool(sort.then)
    missing = _equal_to(leg, tantivy.Query.all_query(), field, None)
    if first is None:
        return (missing, missing) if inclusive else (None, None)
    held = leg.held_as(field)
    ties = tantivy.Query.term_query(leg.schema, field, first) if inclusive else None
    if held is None or held == tantivy.FieldType.Text:
        bound, ties = _keywords_bound(leg, field, first, sort.descending, ties)
    elif held == tantivy.FieldType.Boolean:
        # false sorts before true.
        values = [
            v for v in (False, True) if (v < first if sort.descending else v > first) or (inclusive and v == first)
        ]
        bound = _any([tantivy.Query.term_query(leg.schema, field, v) for v in values]) if values else None
    else:
        low, high = (None, first) if sort.descending else (first, None)
        bound = tantivy.Query.range_query(
            leg.schema, field, held, low, high, inclusive or low is None, inclusive or high is None
        )
    return _any([q for q in (bound, missing) if q is not None]), ties


def _keywords_bound(
    leg: TantivyRetriever, field: str, first: str, descending: bool, exact: tantivy.Query | None
) -> tuple[tantivy.Query | None, tantivy.Query | None]:
    """The keywords after ``first`` in the sort's direction (and ``first`` itself where its ties are read:
    ``exact``), and those that may still not follow the cursor: ``first``'s ties, or, for a keyword longer than
    tantivy's patterns can write (:data:`~.search_after.TEXT_PATTERN_CHARS`), every keyword sharing its first
    characters."""
    prefix = first[:TEXT_PATTERN_CHARS]
    found = keywords_before(prefix) if descending else keywords_after(prefix)
    parts = [tantivy.Query.regex_query(leg.schema, field, pattern) for pattern in found.patterns]
    if found.terms:
        parts.append(tantivy.Query.term_set_query(leg.schema, field, list(found.terms)))
    if prefix != first:
        sharing = tantivy.Query.regex_query(leg.schema, field, keywords_from(prefix))
        return _any([*parts, sharing]), sharing
    parts += [exact] if exact is not None else []
    return (_any(parts) if parts else None), exact


def _sort_stably(rows: list[Any], value: Callable[[Any], Any], descending: bool, missing_first: bool = False) -> None:
    """Order ``rows`` by ``value`` (numbers or text), a missing value after every value in either order (before,
    ``missing_first``), ties left as they were: applied from the last key to the first, the keys order the rows as
    one compound key would, with no need to negate a text value for a descending key."""
    rows.sort(key=lambda row: () if value(row) is None else (value(row),), reverse=descending)
    rows.sort(key=lambda row: (value(row) is None) != missing_first)


def _field_values(leg: TantivyRetriever, ids: list[str], name: str) -> dict[str, Any]:
    """The fast field ``name`` (a number or a keyword) of the products ``ids`` (None where one has no value), read
    from the index."""
    searcher = leg.searcher()
    query = tantivy.Query.term_set_query(leg.schema, "id", ids)
    hits = searcher.search(query, len(ids), count=False, order_by_field=name).hits
    return {str(searcher.doc(address).get_first("id")): value for value, address in hits}


# ------------------------------------------------------------------ the search


class ConstrainedLeg:
    """A leg whose candidates must also match the request's constraint.

    The lexical leg searches within it (scoring ``text`` when the request has
    words being typed); another leg's candidates are checked against it in one
    tantivy lookup, so a dense hit never breaks a clause.
    """

    def __init__(
        self,
        leg: Retriever,
        lexical: TantivyRetriever,
        constraint: tantivy.Query | None,
        text: tantivy.Query | None = None,
    ):
        self.leg = leg
        self.lexical = lexical
        self.constraint = constraint
        self.text = text
        """What the lexical leg scores instead of the words (None: the words)."""
        self.name = leg.name

    def search(self, query: str, k: int, filters: Any = None) -> list[Candidate]:
        if self.leg is self.lexical:
            return self.lexical.search(query, k, filters, constraint=self.constraint, text=self.text)
        return self._held(self.leg.search(query, k, filters))

    def search_around(self, product_id: str, k: int, filters: Any = None) -> list[Candidate] | None:
        """The wrapped leg's search around a product (:func:`.searches_around`), its candidates held to the
        constraint as :meth:`search`'s are; None where that leg cannot."""
        if not searches_around(self.leg):
            return None
        found = self.leg.search_around(product_id, k, filters)  # type: ignore[attr-defined]
        return None if found is None else self._held(found)

    def _held(self, found: list[Candidate]) -> list[Candidate]:
        """The candidates of ``found`` that match the constraint, checked in one tantivy lookup."""
        if self.constraint is None:
            return found
        allowed = self.lexical.admitted([c.product_id for c in found], self.constraint)
        return [c for c in found if c.product_id in allowed]

    def __getattr__(self, name: str) -> Any:
        return getattr(self.leg, name)


@dataclass
class EmbeddedSearch:
    """A search body compiled for the embedded index: what the pipeline ranks and what is added to its answer."""

    search: EsSearch
    compiler: Compiler
    query_constraint: tantivy.Query | None
    """What the pipeline's hits must match (text clauses left to the ranking)."""
    post_constraint: tantivy.Query | None
    matched: tantivy.Query | None
    """What Elasticsearch would match for the query, text clauses included: what facets count and sorts order."""
    aggregations: Aggregations | None
    highlight: list[HighlightField]
    sort: FieldSort | None
    lexical_text: tantivy.Query | None = None
    """What the lexical leg scores when the query has words being typed or fuzzy words: the words, the words they
    begin, the words within their edits."""
    sort_values: dict[str, list[Any]] = field(default_factory=dict)
    after: Cursor | None = None
    """A sorted page's ``search_after``: the sort values its hits follow (:mod:`.search_after`)."""
    suggest: list[Completion] = field(default_factory=list)
    """The completion suggesters asked for (the answer's ``suggest``)."""
    corrections: list[Suggester] = field(default_factory=list)
    """The term and phrase suggesters asked for, answered from the index's terms (see did_you_mean)."""
    docvalues: dict[str, IndexedField] = field(default_factory=dict)
    """The ``docvalue_fields`` asked for, where each is (see hit_fields)."""
    matches: int | None = None
    """Every product a ranked search answers, once :meth:`filled` has counted them: the query's matches and the
    dense leg's candidates beyond them (the answer's ``hits.total``)."""
    beyond: list[str] = field(default_factory=list)
    """The ranked products the query does not match (the dense leg's, a corrected word's), once :meth:`filled`
    has found them: what the aggregations count when the words match nothing (:meth:`answered_query`)."""
    collapse: Collapse | None = None
    """The field the hits are collapsed by (see collapse), None when they are not."""
    collapse_keys: dict[str, Key] = field(default_factory=dict)
    """Each hit's value of the collapse field, by product id."""
    inner_sorts: dict[str, FieldSort | None] = field(default_factory=dict)
    """Each of the collapse's inner hits' sort, by its name (None: by score)."""
    expanded: dict[str, dict[str, tuple[int, list[tuple[Product, float | None, list[Any] | None]]]]] = field(
        default_factory=dict
    )
    """Each hit's inner hits by name: how many products hold its value, and the page of them asked for (each with
    its score, or its sort values)."""
    lexical_order: bool = False
    """Whether the page lists the matches in the lexical leg's order (a scroll's, see :meth:`lexical_result`)."""
    hold: HeldMatches = field(default_factory=lambda: HeldMatches())
    """What ``min_score`` and ``terminate_after`` hold the search to (its constraint is already in the ones above)."""
    track_scores: bool = False
    """Whether a page sorted by a field keeps its hits' scores (``track_scores``), as a page led by _score does."""

    @property
    def constraint(self) -> tantivy.Query | None:
        """Everything a hit must match: the query and the post filter."""
        return _all([self.query_constraint, self.post_constraint])

    def pipeline(self, pipeline: SearchPipeline) -> SearchPipeline:
        """``pipeline`` with its lexical leg held to what the query matches as in Elasticsearch, and its other legs
        to the query's filter context (itself when there is neither and no prefix words).

        The lexical leg's candidates are the query's matches, its words' ``operator``, phrases and
        ``minimum_should_match`` included (misspelt words and model codes read as the query reads them), as a
        cluster backend's lexical leg is the cluster's answer to the query: ElasticPress's and Shopware's every
        search needs each word, and "grey sofa" listed every sofa. The dense leg's nearest products need hold
        only the filters (a difference by design, docs/COMPATIBILITY.md)."""
        constraint, matched = self.constraint, _all([self.matched, self.post_constraint])
        if constraint is None and matched is None and self.lexical_text is None:
            return pipeline
        lexical = self.compiler.leg
        return pipeline.with_legs(
            {
                name: ConstrainedLeg(leg, lexical, matched if leg is lexical else constraint, self.lexical_text)
                for name, leg in pipeline.legs.items()
            }
        )

    def match_query(self, post_filter: bool) -> tantivy.Query:
        """The products the query matches as in Elasticsearch, with or without the post filter."""
        query = _all([self.matched, self.post_constraint if post_filter else None])
        return query if query is not None else tantivy.Query.all_query()

    def answered_query(self) -> tantivy.Query:
        """What the facets count: the query's matches without the post filter, as Elasticsearch counts them; when
        the words match nothing at all, the ranked products instead.

        A hybrid search answers products that hold none of the words (the dense leg's, a misspelt or accented
        word's correction), and ``hits.total`` counts them. Facets counting the words' matches alone came back
        empty for a misspelt search that answered dozens of products, leaving the shopper nothing to narrow
        them by. When the words do match, the facets stay the matches' own: the dense leg's nearest products
        are a fixed number whatever the query, and counting them would put every query's facets among products
        far from it (a price range stretched by the nearest products of a search for two tables).
        """
        matched = self.match_query(post_filter=False)
        if not self.beyond or count(self.compiler.leg.searcher(), matched):
            return matched
        return tantivy.Query.term_set_query(self.compiler.leg.schema, "id", self.beyond)

    @property
    def ranks_by_score(self) -> bool:
        """Whether the page is in order of relevance (no field sort, or one led by ``_score``), where pins count."""
        return self.sort is None or self.sort.score_first

    @property
    def catalog(self) -> CatalogFields:
        """The catalog's own fields the index holds (for their doc values)."""
        return self.compiler.leg.catalog

    def widen(self) -> None:
        """Ask for every hit from the first to the end of the page (pinned products move the others down)."""
        self.search = dataclasses.replace(self.search, offset=0, size=self.search.offset + self.search.size)

    def pinned_matches(self, ids: list[str]) -> set[str]:
        """Which of the pinned ``ids`` the search matches (its query and post filter)."""
        query = self.match_query(post_filter=True) if self.hold.pinnable is None else self.hold.pinnable
        return self.compiler.leg.admitted(ids, query)

    @property
    def browses(self) -> bool:
        """Whether the search has no words (``match_all``, filters only): a listing, not a ranking."""
        return not self.search.text.strip()

    def sorted_result(self, pipeline: SearchPipeline) -> SearchResult:
        """A page ordered by the field: every match is ranked by it, so there is nothing to rerank."""
        assert self.sort is not None
        reason = f"sorted by {self.sort.named or self.sort.field}: every match is ordered by the field"
        result, rows = self._ordered(pipeline, self.sort, reason)
        for pid, values, score in rows:
            self.sort_values[pid] = [score, *values] if self.sort.score_first else values
        return result

    def browse_result(self, pipeline: SearchPipeline) -> SearchResult:
        """Every match of a search without words, best sellers first, then by id.

        Elasticsearch answers such a search with every matching document at one constant score, in index
        order, which means nothing to a shopper; a front end's first page (Searchkit's, before anything is
        typed) is a shop window, so the products that sell are shown first. ``sales`` (the main part of the
        store's popularity percentile) is a fast field that tantivy orders by without reading every match,
        where the store's percentile would need every matching id looked up; id breaks ties, so pages
        follow one another without overlap. The total is exact (tantivy counts the matches).
        """
        result, _ = self._ordered(pipeline, BROWSE_ORDER, "no words: the matches are listed by sales")
        result.ranking.skipped[Stage.DENSE] = NO_TEXT_TO_EMBED
        return result

    def lexical_result(self, pipeline: SearchPipeline, skip: int) -> SearchResult:
        """The page of the matches in the lexical leg's order (best BM25 first), ``skip`` of them passed over: a
        scroll of a search with words, which lists its matches as a cluster's own page does (see search_contexts);
        the pipeline's ranking is one page's, which a scroll cannot continue. tantivy is asked for no more than
        the matches hold (it sets aside room for ``skip`` + size hits before it reads one)."""
        match = self.match_query(post_filter=True)
        total = count(self.compiler.leg.searcher(), match)
        size = min(self.search.size, max(0, total - skip))
        candidates = self._unranked(match, [], size, skip) if size else []
        reason = "a scroll: every match is listed in the lexical leg's order"
        ranking = Ranking(
            self.search.text,
            candidates=candidates,
            skipped={Stage.RERANK: reason, Stage.LTR: reason, Stage.FUSION: reason, Stage.DENSE: reason},
        )
        return SearchResult(query=self.search.text, hits=pipeline.hits(candidates), total=total, ranking=ranking)

    def held_result(self, pipeline: SearchPipeline) -> SearchResult:
        """The page, in order of relevance, of a search held to ``min_score``: the matches scoring at least that
        much, best lexical score first, as a cluster backend answers one (its own page, not reranked). The
        pipeline's scores are fused or reranked ones, on no scale a client could name a least score on; the
        lexical leg's are, and each hit's ``_score`` is the one it was held to."""
        assert self.hold.held is not None
        rows = self.hold.held
        if self.post_constraint is not None:
            kept = self.compiler.leg.admitted([pid for pid, _ in rows], self.post_constraint)
            rows = [row for row in rows if row[0] in kept]
        candidates = leg_candidates(LEXICAL, rows[self.search.offset : self.search.offset + self.search.size])
        reason = "min_score: the matches are listed by the lexical scores it holds them to"
        ranking = Ranking(
            self.search.text,
            candidates=candidates,
            skipped={Stage.RERANK: reason, Stage.LTR: reason, Stage.FUSION: reason, Stage.DENSE: reason},
        )
        return SearchResult(query=self.search.text, hits=pipeline.hits(candidates), total=len(rows), ranking=ranking)

    def _ordered(
        self, pipeline: SearchPipeline, sort: FieldSort, reason: str
    ) -> tuple[SearchResult, list[tuple[str, list[Any], float]]]:
        search = self.search
        leg = self.compiler.leg
        match, text, need = self.match_query(post_filter=True), leg.text_query(search.text), search.offset + search.size
        if self.after is not None:
            rows, total = sorted_page_after(leg, match, text, sort, need, self.after)
        else:
            rows, total = sorted_page(leg, match, text, sort, need)
        if self.collapse is not None:
            self._single_valued(match)
            rows = self._distinct(
                rows, need, pipeline, lambda seen, n: sorted_page(leg, self._without(match, seen), text, sort, n)[0]
            )
        page = rows[search.offset :]
        if self.collapse is not None and self.collapse.inner:
            self._expand([pid for pid, _, _ in page], pipeline)
        candidates = [Candidate(pid, score, legs=frozenset({LEXICAL})) for pid, _, score in page]
        ranking = Ranking(
            search.text, candidates=candidates, skipped={Stage.RERANK: reason, Stage.LTR: reason, Stage.FUSION: reason}
        )
        return SearchResult(query=search.text, hits=pipeline.hits(candidates), total=total, ranking=ranking), page

    def filled(self, result: SearchResult, pipeline: SearchPipeline) -> SearchResult:
        """The ranked page, continued past the end of the ranked list with the matches not ranked, best BM25 first,
        and every match counted (:attr:`matches`), as the cluster backend answers.

        The pipeline ranks only the legs' candidates; a front end offers pages up to ``hits.total`` (Magento's and
        Search UI's pagers, "1-12 of 5,000"), so the total is every product the search answers, and a page past
        the ranked ones goes on with the other matches (one request that leaves the ranked ones out), so that
        every page the total offers has hits and no product is shown twice.
        """
        leg, search = self.compiler.leg, self.search
        if not search.text.strip():  # a kNN search's nearest products: what the query matches is not its answer
            return result
        match = self.match_query(post_filter=True)
        ranked = [c.product_id for c in result.ranking.candidates]
        searcher = leg.searcher()
        self.beyond = sorted(set(ranked) - leg.admitted(ranked, match))
        self.matches = count(searcher, match) + len(self.beyond)
        if self.collapse is not None:
            return self._collapsed(result, pipeline, match)
        missing = search.size - len(result.hits)
        if missing <= 0 or self.matches <= len(ranked):
            return result
        skip = max(0, search.offset - len(ranked))
        rest = self._unranked(match, ranked, missing, skip)
        return dataclasses.replace(result, hits=result.hits + pipeline.hits(rest))

    def _unranked(self, match: tantivy.Query, ranked: list[str], size: int, skip: int = 0) -> list[Candidate]:
        """The matches past the ranked list: those it does not hold, best BM25 first, as the lexical leg ranks."""
        leg = self.compiler.leg
        clauses = [(tantivy.Occur.Must, match)]
        if ranked:
            clauses.append((tantivy.Occur.MustNot, tantivy.Query.term_set_query(leg.schema, "id", ranked)))
        text = leg.text_query(self.search.text)
        if text is not None:
            clauses.append((tantivy.Occur.Should, text))
        searcher = leg.searcher()
        found = searcher.search(tantivy.Query.boolean_query(clauses), size, count=False, offset=skip).hits
        return leg_candidates(
            LEXICAL, [(str(searcher.doc(address).get_first("id")), score) for score, address in found]
        )

    def _collapsed(self, result: SearchResult, pipeline: SearchPipeline, match: tantivy.Query) -> SearchResult:
        """The ranked page collapsed: each value's first product in the ranking, then in the matches past it."""
        search = self.search
        ranked = result.ranking.candidates
        ids = [c.product_id for c in ranked]
        self._single_valued(match)
        rows = self._distinct(
            ranked,
            search.offset + search.size,
            pipeline,
            lambda seen, n: self._unranked(self._without(match, seen), ids, n),
        )
        page = rows[search.offset :]
        if self.collapse is not None and self.collapse.inner:
            self._expand([c.product_id for c in page], pipeline)
        return dataclasses.replace(result, hits=pipeline.hits(page))

    def _distinct(self, rows: list[Any], need: int, pipeline: SearchPipeline, more: Callable) -> list[Any]:
        """The first of ``rows`` (then of ``more``) for each value of the collapse field, their values kept."""
        assert self.collapse is not None
        collapse, catalog = self.collapse, self.catalog

        def pid_of(row: Any) -> str:  # a ranked Candidate, or a sorted page's (id, values, score)
            return row.product_id if isinstance(row, Candidate) else row[0]

        def keys(batch: Sequence[Any]) -> list[Key]:
            ids = [pid_of(row) for row in batch]
            products = pipeline.store.get(ids)
            return [collapse.key(products[pid], catalog) if pid in products else pid for pid in ids]

        kept, values = distinct(rows, keys, need, more)
        self.collapse_keys.update((pid_of(row), value) for row, value in zip(kept, values, strict=True))
        return kept

    def _single_valued(self, match: tantivy.Query) -> None:
        """A 400 where any match holds several values of the collapse field (an attribute, a catalog field some
        product lists), read for the page or not: Elasticsearch's collapsing collector visits every match and fails
        the search, so a body that fails there fails here too, whatever the page and the order. One count of the
        values the matches hold against one of the matches holding any."""
        assert self.collapse is not None
        spot, catalog = self.collapse.spot, self.catalog
        if spot.attribute is not None:
            held = f"{FACET_FIELD}.attributes.{spot.attribute}"
        elif spot.catalog and catalog is not None and spot.path in catalog.several:
            held = catalog.index_field(spot.path)
        else:
            return  # a brand, a category, a title, a number: one value a product
        searcher = self.compiler.leg.searcher()
        values = searcher.aggregate(match, {"values": {"value_count": {"field": held}}})["values"]["value"]
        holding = tantivy.Query.boolean_query(
            [(tantivy.Occur.Must, match), (tantivy.Occur.Must, tantivy.Query.exists_query(held))]
        )
        if values > count(searcher, holding):
            raise self.collapse.several("a matching product holds several values")

    def _holding(self, keys: list[Key]) -> tantivy.Query:
        """The products holding one of these values of the collapse field, each value exactly as held.

        The hits' values are exact (as a keyword's terms in Elasticsearch: "Acme" and "ACME" are two hits), where
        a ``term`` filter on a brand, a category or an attribute matches any case (``Filters``): those are looked
        up in the index's display values (the ``facet`` field), so that leaving "Acme" out of a read leaves
        "ACME" in; ``title.keyword`` is its sort field's term. The other fields' terms are exact already."""
        assert self.collapse is not None
        spot, schema = self.collapse.spot, self.compiler.schema
        exact = _exact_field(spot)
        values = [key for key in keys if key is not None]
        if exact is None or not values:
            query = rename_query(self.collapse.holding(keys), self.compiler.aliases)
            return self.compiler.query(query, "collapse", False).constraint or tantivy.Query.all_query()
        terms = [held_term(str(value)) for value in values] if spot.path == TITLE_KEYWORD else values
        held = tantivy.Query.term_set_query(schema, exact, terms)
        if len(values) == len(keys):
            return held
        return _any([held, self._holding([None])])

    def _without(self, match: tantivy.Query, seen: list[Key]) -> tantivy.Query:
        """``match`` less the products of the collapse field's ``seen`` values."""
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, match), (tantivy.Occur.MustNot, self._holding(seen))])

    def _expand(self, page: list[str], pipeline: SearchPipeline) -> None:
        """Each hit's inner hits (``collapse.inner_hits``): its value's matches, by score or by their sort."""
        assert self.collapse is not None
        if len(page) * len(self.collapse.inner) > MAX_INNER_SEARCHES:
            raise InvalidQuery(
                INNER_HITS,
                f"{len(self.collapse.inner)} inner hits for each of {len(page)} hits: at most {MAX_INNER_SEARCHES} "
                "in one page, each a search of its own (ask for a smaller page or fewer inner hits)",
            )
        leg = self.compiler.leg
        searcher, match = leg.searcher(), self.match_query(post_filter=True)
        text = leg.text_query(self.search.text)
        for pid in page:
            group = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, match), (tantivy.Occur.Must, self._holding([self.collapse_keys[pid]]))]
            )
            total = count(searcher, group)
            for inner in self.collapse.inner:
                sort, need = self.inner_sorts.get(inner.name), inner.offset + inner.size
                rows: list[tuple[str, float | None, list[Any] | None]]
                if sort is None:  # by the words' BM25, as the matches past the ranked list
                    rows = [(c.product_id, c.score, None) for c in self._unranked(group, [], need)] if need else []
                else:
                    rows = [(i, None, values) for i, values, _ in sorted_page(leg, group, text, sort, need)[0]]
                rows = rows[inner.offset :]
                products = pipeline.store.get([row[0] for row in rows])
                listed = [(products[i], score, values) for i, score, values in rows if i in products]
                self.expanded.setdefault(pid, {})[inner.name] = (total, listed)

    def _inner_hits(self, pid: str, index: str) -> dict[str, Any]:
        """A hit's ``inner_hits`` in Elasticsearch's shape, each product's ``_source`` as a hit's."""
        assert self.collapse is not None
        out: dict[str, Any] = {}
        for inner in self.collapse.inner:
            total, listed = self.expanded[pid][inner.name]
            hits = []
            for product, score, values in listed:
                item: dict[str, Any] = {"_index": index, "_id": product.id, "_score": score}
                if inner.source.enabled:
                    item["_source"] = inner.source.apply(
                        source_with_aliases(product.to_record(), self.compiler.aliases)
                    )
                if values is not None:
                    item["sort"] = values
                hits.append(item)
            scores = [score for _, score, _ in listed if score is not None]
            section = {"total": {"value": total, "relation": "eq"}, "max_score": max(scores, default=None)}
            out[inner.name] = {"hits": {**section, "hits": hits}}
        return out

    def complete(self, response: dict[str, Any], result: SearchResult | None, deadline: float | None = None) -> None:
        """Add aggregations, highlights and sort values to the Elasticsearch response, and a ranked search's count
        of every match (see :meth:`filled`). ``deadline``: a multi-search's budget (``time.perf_counter``), which
        its highlights go without past, as its other optional parts do."""
        if self.aggregations is not None:
            response["aggregations"] = self.aggregations.run(self.answered_query())
        hits = response["hits"]["hits"]
        if self.matches is not None and "total" in response["hits"]:
            track = self.search.track_total_hits
            capped = track is not True and self.matches > track
            # A leg left out (timed out, failing) may have had more to add: the count is then a lower bound.
            partial = result is not None and bool({LEXICAL, DENSE} & set(result.ranking.degraded))
            value = track if capped else self.matches
            response["hits"]["total"] = {"value": value, "relation": "gte" if capped or partial else "eq"}
        if self.hold.terminated_early is not None:
            response["terminated_early"] = self.hold.terminated_early
        if self.sort is not None:
            # A sort led by _score keeps the scores, as Elasticsearch does, and so does one asking track_scores.
            scored = self.sort.score_first or self.track_scores
            response["hits"]["max_score"] = max((h["_score"] for h in hits), default=None) if scored else None
            for hit in hits:
                if not scored:
                    hit["_score"] = None
                hit["sort"] = self.sort_values.get(hit["_id"], [None])
        if self.collapse is not None:
            for hit in hits:
                if hit["_id"] in self.collapse_keys:
                    hit["fields"] = {**hit.get("fields", {}), self.collapse.asked: [self.collapse_keys[hit["_id"]]]}
                if hit["_id"] in self.expanded:
                    hit["inner_hits"] = self._inner_hits(hit["_id"], hit["_index"])
        if self.highlight and result is not None:
            products = [h.product for h in result.hits]
            own = time.perf_counter() + self.compiler.limits.highlight_timeout_s
            found, whole = highlights(self.compiler, self.highlight, products, min(own, deadline or own))
            if not whole:
                response["search_rerank"]["degraded"][HIGHLIGHT] = TIMEOUT
                metrics.DEGRADED.labels(HIGHLIGHT).inc()
                log.warning("highlights left out past %gs of a page's", self.compiler.limits.highlight_timeout_s)
            for hit in hits:
                if hit["_id"] in found:
                    hit["highlight"] = found[hit["_id"]]


def _check_function_score(spec: Mapping[str, Any], path: str) -> None:
    """A 400 naming what Elasticsearch's parser refuses in a ``function_score``: the functions change no hit here
    (see Compiler._function_score), but a misspelt option or mode would otherwise be read nowhere, unseen."""
    known_keys(spec, path, FUNCTION_SCORE_KEYS)
    for key, modes in (("score_mode", SCORE_MODES), ("boost_mode", BOOST_MODES)):
        if spec.get(key) is not None:
            one_of(a_string(spec[key], f"{path}.{key}").lower(), modes, f"{path}.{key}")  # any case, as there
    for key in ("max_boost", "boost", "weight"):
        if spec.get(key) is not None:
            a_number(spec[key], f"{path}.{key}")
    functions = spec.get("functions")
    if functions is None:
        return
    if not isinstance(functions, list):
        raise InvalidQuery(f"{path}.functions", "expected a list of functions")
    for i, function in enumerate(functions):
        where = f"{path}.functions[{i}]"
        function = an_object(function, where)
        known_keys(function, where, ("filter", *FUNCTION_SCORE_FUNCTIONS))
        if function.get("weight") is not None:
            a_number(function["weight"], f"{where}.weight")
        if function.get("filter") is not None:
            an_object(function_filter(function), f"{where}.filter")


def compile_search(
    body: Mapping[str, Any], params: Mapping[str, str], limits: ServiceSettings, leg: TantivyRetriever
) -> EmbeddedSearch:
    """Compile ``body`` (field aliases already applied) for the embedded index."""
    compiler = Compiler(leg, limits)
    rest = {k: v for k, v in body.items() if k not in COMPILED_KEYS}
    base = parse_search(rest, params, limits)
    query = compiler.query(body["query"], "query", True) if body.get("query") is not None else Compiled()
    post = compiler.query(body["post_filter"], "post_filter", False) if body.get("post_filter") is not None else None
    text = " ".join(dict.fromkeys(t.strip() for t in [base.text, *query.texts] if t.strip()))
    if len(text) > limits.max_query_length:
        raise InvalidQuery("query", f"the query text must be at most {limits.max_query_length} characters")
    aggs_key = [k for k in ("aggs", "aggregations") if body.get(k) not in ({}, [], None)]
    if len(aggs_key) > 1:
        raise InvalidQuery("aggregations", "found two aggregation type definitions: use aggs or aggregations")
    aggs = an_object(body[aggs_key[0]], aggs_key[0]) if aggs_key else None
    aggregations = (
        Aggregations(compiler, aggs, base.typed_keys, aggs_key[0], clauses(body.get("query")))
        if aggs is not None
        else None
    )
    highlight = (
        parse_highlight(body["highlight"], compiler, _marks(compiler, body))
        if body.get("highlight") not in (None, {})
        else []
    )
    sort = parse_sort(body.get("sort"), compiler)
    keys = len(body["sort"]) if isinstance(body.get("sort"), list) else 1
    if sort is not None and keys * (base.offset + base.size) > MAX_SORT_VALUES:
        raise InvalidQuery(
            "sort",
            f"a sort of {keys} keys on a page ending at hit {base.offset + base.size}: each hit carries each key's "
            f"value, at most {MAX_SORT_VALUES:,} in one page",
        )
    if sort is not None and sort.score_first and text.strip():
        sort = None  # the pipeline's ranking: see FieldSort.score_first
    after = None
    if body.get("search_after") is not None:
        if sort is None or sort.score_first:
            raise Unsupported(
                "search_after",
                "on a page in order of relevance, the pipeline's ranking, which it cannot continue "
                "(sort by a field, or page with from)",
            )
        if sort.lists_missing_first:
            raise Unsupported("search_after", "on a sort that lists missing values first (page it with from)")
        given = without_unmapped(body["search_after"], sort.unmapped_at, 1 + len(sort.then))
        after = cursor(given, cursor_keys(leg, sort), base.offset)
    suggest: list[Completion] = []
    corrections: list[Suggester] = []
    if body.get("suggest") not in (None, {}):
        suggest, rest = split_suggest(body["suggest"], limits.field_aliases)
        corrections = parse_corrections(rest, limits.field_aliases, limits)
        words_looked_up(corrections, leg, limits)
    collapse, inner_sorts = None, {}
    if body.get("collapse") is not None:
        collapse = parse_collapse(body["collapse"], compiler.indexed, limits.field_aliases)
        if after is not None:
            raise Unsupported("collapse", "with search_after (page a collapsed search with from)")
        for inner in collapse.inner:
            inner_sort = parse_sort(inner.sort, compiler, f"{inner.where}.sort")
            inner_sorts[inner.name] = None if inner_sort is None or inner_sort.score_first else inner_sort
    matched = compiler.query(body["query"], "query", False).constraint if body.get("query") is not None else None
    if collapse is not None and sort is None and body.get("min_score") is not None:
        raise Unsupported("min_score", "with collapse on a page in order of relevance")
    words = leg.text_query(text)
    hold = HeldMatches.of(body, leg, words, matched, None if post is None else post.constraint, limits)
    filters, nothing, ignored = _prefilter(body, limits, compiler.worded_terms)
    search = dataclasses.replace(
        base,
        text=text,
        filters=filters,
        matches_nothing=nothing,
        ignored=tuple(dict.fromkeys(base.ignored + ignored + tuple(compiler.ignored))),
    )
    return EmbeddedSearch(
        search=search,
        compiler=compiler,
        query_constraint=_all([query.constraint, hold.constraint]),
        post_constraint=None if post is None else post.constraint,
        matched=_all([matched, hold.constraint]),
        aggregations=aggregations,
        highlight=highlight,
        sort=sort,
        after=after,
        suggest=suggest,
        corrections=corrections,
        collapse=collapse,
        inner_sorts=inner_sorts,
        docvalues=located(base.hit_fields, compiler.indexed, limits.field_aliases),
        lexical_text=_any([q for q in [words, *query.scored] if q is not None]) if query.scored else None,
        hold=hold,
        track_scores=flag(body.get("track_scores", False), "track_scores"),
    )


@dataclass(frozen=True)
class HeldMatches:
    """What a body's ``min_score`` and ``terminate_after`` hold a search to: the matches scoring at least so much,
    then the first so many of them (Elasticsearch applies them in that order), as a constraint every page, count
    and facet of the search is held to."""

    constraint: tantivy.Query | None = None
    held: list[tuple[str, float]] | None = None
    """The matches ``min_score`` keeps, best first, with their lexical scores (see :func:`scoring_at_least`)."""
    pinnable: tantivy.Query | None = None
    """What a pinned product must match where ``min_score`` holds the others: the query and post filter without
    it, a pinned product scoring above every other, as in Elasticsearch."""
    terminated_early: bool | None = None
    """Whether ``terminate_after`` cut the matches short (None without one): the answer's ``terminated_early``."""

    @classmethod
    def of(
        cls,
        body: Mapping[str, Any],
        leg: TantivyRetriever,
        words: tantivy.Query | None,
        matched: tantivy.Query | None,
        post: tantivy.Query | None,
        limits: ServiceSettings,
    ) -> HeldMatches:
        hold = cls()
        if body.get("min_score") is not None:
            least = a_number(body["min_score"], "min_score")
            if words is None:
                raise Unsupported("min_score", "on a search without words: its matches have no score here")
            held = scoring_at_least(leg, matched, words, least, limits.max_result_window)
            pinnable = _all([matched or tantivy.Query.all_query(), post])
            hold = cls(_ids_only(leg, [pid for pid, _ in held]), held, pinnable)
        if body.get("terminate_after") in (None, 0):
            return hold
        most = a_count(body["terminate_after"], "terminate_after")
        cut = first_in_index_order(leg, _all([matched, hold.constraint]), most, limits.max_result_window)
        if cut is None:
            return dataclasses.replace(hold, terminated_early=False)
        up_to, last = cut
        first = None if hold.held is None else [row for row in hold.held if row[0] <= last]  # tantivy's order
        return cls(_all([hold.constraint, up_to]), first, None, True)


def _ids_only(leg: TantivyRetriever, ids: list[str]) -> tantivy.Query:
    """The products ``ids`` names, scored 0, so that a hit's _score stays its words' alone (a term set scores 1
    of its own)."""
    return tantivy.Query.const_score_query(tantivy.Query.term_set_query(leg.schema, "id", ids), 0.0)


def first_in_index_order(
    leg: TantivyRetriever, match: tantivy.Query | None, most: int, window: int
) -> tuple[tantivy.Query, str] | None:
    """The first ``most`` products ``match`` matches in the index's order (by id, its ``_doc`` order), as
    ``terminate_after`` collects them: the query holding them (scored 0) and the last one's id; None where no more
    than ``most`` match, so nothing is cut.

    Finding the last costs tantivy about 25 microseconds a product before it (an id is text), so a cut past
    ``window`` (the result window) is a 400: 999,999 of a million products would take half a minute. The query is
    the ids up to the last one's, a few patterns over the id terms, checked to hold exactly as many; an id longer
    than the patterns write (:data:`~.search_after.TEXT_PATTERN_CHARS`) is held by the set of the ids themselves."""
    searcher, query = leg.searcher(), match or tantivy.Query.all_query()
    matches = count(searcher, query)
    if matches <= most:  # asked first: tantivy sets aside room for every hit asked before reading one
        return None
    if most > window:
        raise InvalidQuery(
            "terminate_after",
            f"cutting {matches:,} matches short past the first {window:,} (service.max_result_window): "
            "search without it, or with a smaller one",
        )
    asc = tantivy.Order.Asc
    last = str(searcher.search(query, 1, count=False, order_by_field="id", order=asc, offset=most - 1).hits[0][0])
    exact = tantivy.Query.term_query(leg.schema, "id", last)
    up_to, _ = _keywords_bound(leg, "id", last, True, exact)
    assert up_to is not None  # the last id itself, at least
    if count(searcher, tantivy.Query.boolean_query([(tantivy.Occur.Must, query), (tantivy.Occur.Must, up_to)])) != most:
        ids = [str(pid) for pid, _ in searcher.search(query, most, count=False, order_by_field="id", order=asc).hits]
        up_to = tantivy.Query.term_set_query(leg.schema, "id", ids)
    return tantivy.Query.const_score_query(up_to, 0.0), last


def scoring_at_least(
    leg: TantivyRetriever, match: tantivy.Query | None, words: tantivy.Query, least: float, most: int
) -> list[tuple[str, float]]:
    """The products ``match`` matches whose lexical score for ``words`` is at least ``least`` (a body's
    ``min_score``), best first, ties by id; the score is the one a sorted page gives its hits.

    tantivy has no least score of its own, so the matches are read best first and cut where they fall below it;
    past ``most`` (the result window) of them it is a 400: the set is held as their ids, which every count, facet
    and page of the search is then held to, as Elasticsearch's min_score holds its hits and aggregations alike."""
    searcher = leg.searcher()
    scored = tantivy.Query.boolean_query(
        [
            (tantivy.Occur.Must, tantivy.Query.const_score_query(match or tantivy.Query.all_query(), 0.0)),
            (tantivy.Occur.Should, words),
        ]
    )
    found = searcher.search(scored, most + 1, count=False).hits
    rows = [(str(searcher.doc(address).get_first("id")), score) for score, address in found if score >= least]
    if len(rows) > most:
        raise InvalidQuery(
            "min_score",
            f"more than {most:,} matches score at least {least:g} (service.max_result_window): "
            "raise min_score or narrow the query",
        )
    return sorted(rows, key=lambda row: (-row[1], row[0]))


def count_matches(raw: Any, limits: ServiceSettings, leg: TantivyRetriever) -> int:
    """``_count`` of the query ``raw`` (see :func:`~search_rerank.serving.es_compat.count_query`; field aliases
    already applied): the products it matches as Elasticsearch would, the set a search's facets count."""
    compiler = Compiler(leg, limits)
    constraint = compiler.query(raw, "query", False).constraint if raw is not None else None
    return count(leg.searcher(), constraint if constraint is not None else tantivy.Query.all_query())


def _marks(compiler: Compiler, body: Mapping[str, Any]) -> list[Mark]:
    """What the search's highlights mark: the query's words (a URI search's ``q`` among them, see uri_search)."""
    return compiler.marks(body["query"], "query") if body.get("query") is not None else []


def _prefilter(
    body: Mapping[str, Any], limits: ServiceSettings, worded_terms: bool
) -> tuple[Any, bool, tuple[str, ...]]:
    """The query's conditions as the product's ``Filters``, where they can say them: the dense leg then
    searches within them rather than having its candidates thinned out after (the constraint still decides).

    ``Filters`` read a term on ``brand`` or ``category`` as a brand key or a category path, where the
    compiled query (``worded_terms``) matches a word of the analysed field: they would drop hits that the
    constraint admits, so such a query has no prefilter.
    """
    part = {k: body[k] for k in ("query", "post_filter") if body.get(k) is not None}
    try:
        search = parse_search(part, {}, limits)
    except (Unsupported, InvalidQuery):
        return None, False, ()
    if worded_terms:
        return None, False, search.ignored
    return search.filters, search.matches_nothing, search.ignored


# ------------------------------------------------------------------ value checks
