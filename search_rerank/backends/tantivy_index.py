"""The lexical leg on an embedded tantivy index: zero setup, BM25, same filters as Elasticsearch.

Scoring follows Elasticsearch's ``multi_match`` with ``best_fields``: per field
a boosted OR of the query's terms, fields combined by a disjunction max with a
tie breaker. A product that repeats a word in every field then does not outrank
one whose title is about that word, which a plain sum over fields would let it.

User text never reaches tantivy's query parser: it is cut into terms by the
same analyzer the text fields were indexed with and only term queries are
built, so ``"``, ``:``, ``(``, ``AND`` or ``*`` are words or nothing, never
operators, and no query can raise a syntax error. (Lucene syntax, where a
request asks for it with ``query_string``, is parsed by
``serving.query_string`` and arrives here as a ``constraint``.)

For Elasticsearch-compatible front ends the index also holds what facets,
sorting and highlighting need (since schema version 2): positions in the text fields
(phrases), the facet display values in one fast JSON field (``facet.brand``,
``facet.category.lvlN``, ``facet.attributes.<key>``, as in the cluster mapping),
and ``rating``, ``sales`` and ``review_count`` as fast numbers beside ``price``; and the catalog's own fields
(core/catalog_fields.py), each a fast field of its type named ``catalog_<n>_<type>`` (their names as the catalog
gives them are in ``catalog_fields.json`` beside the index, from which the schema is built when it opens).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import tantivy

from ..core.candidate import Candidate
from ..core.catalog_fields import CatalogFields
from ..core.errors import ConfigError, StageError
from ..core.filters import Filters, attribute_key, category_key, category_keys, normalise_term
from ..core.product import Product, composed
from ..core.retrieval import LEXICAL, leg_candidates
from ..core.settings import LEXICAL_FIELDS, LexicalSettings
from .codes import product_codes, query_codes
from .spelling import QueryWord, TypoCorrector
from .synonyms import Synonyms, SynonymSpan, read_rules
from .typography import spelled_out, spelled_tokens
from .units import UnitSpellings

# tantivy hard-codes Lucene's defaults; Settings keeps k1/b so that an engine
# that can tune them (Elasticsearch) reads the same file.
TANTIVY_K1 = 1.2
TANTIVY_B = 0.75

# 256 MB is split among the writer's threads (at most 8, each needs >= 15 MB);
# a larger arena means fewer, bigger segments and so fewer merges.
WRITER_HEAP_BYTES = 256_000_000
COMMIT_EVERY = 10_000
# Bumped with every change to _schema() or to the analyzer: an index built with another schema does not open
# (tantivy checks the schema stored in the index) and is rebuilt by `search-rerank index`, which writes a new
# version. Version 3: Chinese and Japanese cut into words (english_analyzer). Version 4: the keyword sort fields
# (SORT_FIELDS). Version 5: words folded to ASCII ("café" is "cafe"), fraction characters spelled out with a
# slash ("1½" is "1 1/2") and inch and foot marks after a number as units ('55"' is "55 in", .typography), and the
# model codes (CODE_FIELD), the changes an index of 4 is still opened and searched without (UNFOLDED_ANALYZER_NAME).
SCHEMA_VERSION = 5
# The index stores the analyzer's name, not the analyzer: named after the schema version, an index analysed
# another way does not open, where it would otherwise be searched with words it was never cut into.
ANALYZER_NAME = f"search_rerank_v{SCHEMA_VERSION}"
UNFOLDED_ANALYZER_NAME = "search_rerank_v4"
"""Schema version 4's analyzer: version 5's words, not folded to ASCII nor with sizes spelled out, in the same
fields. An index of it is opened with it and searched in its words (a query's "café" finds its "café", "cafe" does
not; "½" finds "½"), so an upgrade serves it until the next build, which folds. It has no :data:`CODE_FIELD`: its
codes are found by their words."""
CODE_FIELD = "code"
"""The model codes of a product's text fields, separators dropped, one term each (:mod:`.codes`) named with the
field it is written in (:func:`code_term`): what a query's "ecc102" finds "ECC-10-2" by (``lexical.model_codes``)."""
FACET_FIELD = "facet"
# A product's keywords a page can be sorted by (a shop's "Name: A-Z", Search UI's ``title.keyword``), each as the
# catalog gives it in a fast field of its own: tantivy orders by a fast text field (byte order, as Elasticsearch
# orders a keyword) but not by a path of the JSON ``facet`` field, which holds the same values for aggregations.
SORT_FIELDS = {"title": "sort_title", "brand": "sort_brand", "category": "sort_category"}
# The longest term tantivy indexes, in UTF-8 bytes. A raw token past it is cut at 65,535 bytes in the fast field
# (so may end inside a character: then it reads back as no value, and the product sorts as if it had none) and is
# left out of the term dictionary. A sort value is cut to it at a character boundary: a product with a longer
# title sorts by its first 65,530 bytes.
MAX_TERM_BYTES = 65_530
CATALOG_FIELDS_FILE = "catalog_fields.json"
"""Beside the index: the catalog's own fields it holds and their types (core/catalog_fields.py), from which the
schema is built again when the index is opened. An index without it holds none (one built before it existed opens
as it was, the schema being the same)."""
# How each catalog field type is held: dates as epoch milliseconds, as Elasticsearch holds them, so a range, a
# sort and a histogram on one read whole milliseconds.
CATALOG_FIELD_KINDS = {
    "keyword": tantivy.FieldType.Text,
    "long": tantivy.FieldType.Integer,
    "double": tantivy.FieldType.Float,
    "date": tantivy.FieldType.Integer,
    "boolean": tantivy.FieldType.Boolean,
}
MIN_SUFFIX, MAX_SUFFIX = "_min", "_max"
"""Beside a catalog field some product holds several values of: the least and the greatest of a product's, each a
field of its own, which a sort reads (ascending and descending, as Elasticsearch's default sort ``mode``)."""
# Numeric product fields, each a fast field of the same name (sortable, aggregatable, range-filterable).
NUMERIC_FIELDS: dict[str, tantivy.FieldType] = {
    "price": tantivy.FieldType.Float,
    "rating": tantivy.FieldType.Float,
    "sales": tantivy.FieldType.Integer,
    "review_count": tantivy.FieldType.Integer,
}


# A letter or digit as tantivy's ``simple`` tokenizer counts one (Rust's ``char::is_alphanumeric``).
_ALNUM = r"[\p{Alphabetic}\p{N}]"
# Scripts written without spaces, cut as Unicode word boundaries (UAX #29) and so Elasticsearch's ``standard``
# tokenizer cut them: each Han ideograph and each Hiragana character is a word, a run of Katakana is one, and
# the marks that extend a character (WB4: a halfwidth voiced sound mark) stay with it. Katakana runs are cut
# every 13 characters (39 bytes), as Lucene cuts a token at its maximum length: ``remove_long(40)`` would
# drop the whole word. Every other letter or digit is in a run as ``simple`` makes it, so text without these
# scripts is cut exactly as before (a Hangul, Thai or Devanagari run included). The regex crate's Unicode
# tables may be a version behind Rust's own: letters it does not know yet (Unicode 17's CJK Extension J, with
# tantivy 0.27) are no words here where ``simple`` kept them.
_EXTEND = rf"[\p{{Word_Break=Extend}}&&{_ALNUM}]"
_ONE_CHARACTER_WORD = rf"[[\p{{Han}}\p{{Hiragana}}]&&{_ALNUM}]{_EXTEND}*"
_KATAKANA = rf"[\p{{Word_Break=Katakana}}&&{_ALNUM}]"
_KATAKANA_WORD = rf"{_KATAKANA}(?:{_KATAKANA}|{_EXTEND}){{0,12}}"
_OTHER_WORD = rf"[{_ALNUM}--[\p{{Han}}\p{{Hiragana}}\p{{Word_Break=Katakana}}]]+"
WORD_PATTERN = f"{_ONE_CHARACTER_WORD}|{_KATAKANA_WORD}|{_OTHER_WORD}"


def english_analyzer(folded: bool = True) -> tantivy.TextAnalyzer:
    """tantivy's ``en_stem`` chain with words cut by :data:`WORD_PATTERN`, so Chinese and Japanese text has words,
    and (``folded``) letters folded to ASCII before the stemmer, as Elasticsearch's ``asciifolding`` folds them.

    ``simple`` made a whole line of Chinese one token, dropped at 40 bytes (14 characters) and never matched by
    a word of it. Folding: a catalogue writes the accents of its brands and loan words ("GE Café", "Crème
    Brûlée") and shoppers type them without ("ge cafe"), or the other way round; folded in the index and in the
    query, each finds the other. Built here so that queries are cut with the very object that indexes.
    """
    words = _words().filter(tantivy.Filter.ascii_fold()) if folded else _words()
    return words.filter(tantivy.Filter.stemmer("english")).build()


def normaliser(folded: bool = True) -> tantivy.TextAnalyzer:
    """:func:`english_analyzer`'s lowercase and (``folded``) ASCII folding of a whole text, as one term."""
    builder = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.lowercase())
    return (builder.filter(tantivy.Filter.ascii_fold()) if folded else builder).build()


def typed_words_analyzer() -> tantivy.TextAnalyzer:
    """:func:`english_analyzer` without the stemmer: the same words, one for one, as they were typed (lower case)."""
    return _words().build()


def _words() -> tantivy.TextAnalyzerBuilder:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(WORD_PATTERN))
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.lowercase())
    )


def _schema(catalog: CatalogFields, analyzer_name: str) -> tantivy.Schema:
    builder = tantivy.SchemaBuilder()
    # Fast so that filter-only queries can return the first k by id without loading documents.
    builder.add_text_field("id", stored=True, fast=True, tokenizer_name="raw", index_option="basic")
    for name in LEXICAL_FIELDS:
        # Positions for the phrases of query_string and match_phrase.
        builder.add_text_field(name, tokenizer_name=analyzer_name, index_option="position")
    for name in ("category_path", "brand_key", "attr"):
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    if analyzer_name != UNFOLDED_ANALYZER_NAME:
        builder.add_text_field(CODE_FIELD, tokenizer_name="raw", index_option="freq")
    # Display values, exact, for terms aggregations (the filter keys above are case-folded).
    builder.add_json_field(FACET_FIELD, fast=True, tokenizer_name="raw", index_option="basic")
    for name in SORT_FIELDS.values():
        builder.add_text_field(name, fast=True, tokenizer_name="raw", index_option="basic")
    builder.add_float_field("price", indexed=True, fast=True)
    builder.add_float_field("rating", indexed=True, fast=True)
    builder.add_integer_field("sales", indexed=True, fast=True)
    builder.add_integer_field("review_count", indexed=True, fast=True)
    for name, kind in catalog.types.items():
        field = catalog.index_field(name)
        held = CATALOG_FIELD_KINDS[kind]
        for held_in in (field, *((f"{field}{MIN_SUFFIX}", f"{field}{MAX_SUFFIX}") if name in catalog.several else ())):
            if held == tantivy.FieldType.Text:
                builder.add_text_field(held_in, fast=True, tokenizer_name="raw", index_option="basic")
            elif held == tantivy.FieldType.Integer:
                builder.add_integer_field(held_in, indexed=True, fast=True)
            elif held == tantivy.FieldType.Float:
                builder.add_float_field(held_in, indexed=True, fast=True)
            else:
                builder.add_boolean_field(held_in, indexed=True, fast=True)
    return builder.build()


def facet_values(product: Product) -> dict[str, object]:
    """What the cluster mapping's ``facet`` object holds, with attributes keyed by name (tantivy has no nested)."""
    facet: dict[str, object] = {
        "category": product.category_facets(),
        "attributes": {key: list(values) for key, values in product.attributes.items()},
    }
    if product.brand:
        facet["brand"] = product.brand
    return facet


def sort_values(product: Product) -> dict[str, str]:
    """The product's :data:`SORT_FIELDS` values, as the catalog gives them (up to :data:`MAX_TERM_BYTES`); a field
    it lacks sorts last."""
    values = {"title": product.title, "brand": product.brand, "category": product.category_facets().get("path", "")}
    return {SORT_FIELDS[name]: held_term(value) for name, value in values.items() if value}


def held_term(value: str) -> str:
    """What a sort field holds of ``value``: its longest beginning of at most :data:`MAX_TERM_BYTES` UTF-8 bytes
    that ends at a character boundary (the term an exact query on the field looks up)."""
    encoded = value.encode("utf-8")
    return value if len(encoded) <= MAX_TERM_BYTES else encoded[:MAX_TERM_BYTES].decode("utf-8", "ignore")


def code_term(field: str, code: str) -> str:
    """The :data:`CODE_FIELD` term of ``code`` written in the text field ``field``: a code counts as its field counts
    (a title's code names the product; a description's "fits DW745-B" names another), and not in a field that is not
    searched."""
    return f"{field}:{code}"


def _document(product: Product, catalog: CatalogFields, spelled: Callable[[str], str], codes: bool) -> tantivy.Document:
    """Text fields for scoring (each text as ``spelled``), normalised exact terms that reproduce
    ``Filters.matches``, the catalog's own fields as their types hold them, and (``codes``: the schema has the
    field) the model codes of the text."""
    own: dict[str, list[Any]] = {}
    for name, values in catalog.values(product).items():
        field = catalog.index_field(name)
        own[field] = values
        if name in catalog.several:  # the values a sort reads, one each (a fast field of several sorts by its first)
            own[f"{field}{MIN_SUFFIX}"], own[f"{field}{MAX_SUFFIX}"] = [min(values)], [max(values)]
    texts = product.field_texts()
    held = (code_term(field, c) for field, text in texts.items() for c in product_codes(text))
    held_codes = {CODE_FIELD: list(dict.fromkeys(held))} if codes else {}
    return tantivy.Document(
        id=product.id,
        **{field: spelled(text) for field, text in texts.items()},
        # Every prefix is indexed, so a category filter is a single term lookup.
        category_path=category_keys(product.category),
        brand_key=normalise_term(product.brand),
        attr=[attribute_key(key, value) for key, values in product.attributes.items() for value in values],
        facet=facet_values(product),
        **sort_values(product),
        sales=product.sales,
        review_count=product.review_count,
        **({} if product.price is None else {"price": float(product.price)}),
        **({} if product.rating is None else {"rating": float(product.rating)}),
        **own,
        **held_codes,
    )


def opened_schema_version(path: Path, settings: LexicalSettings) -> int | None:
    """The schema version of the index at ``path`` (:attr:`TantivyRetriever.schema_version`); None when this release
    does not open it: whether an index is served as it is, or built again to show this release's words."""
    try:
        return TantivyRetriever(path, settings).schema_version
    except ConfigError:
        return None


def reports_os_error(exc: BaseException) -> bool:
    """Whether ``exc`` is tantivy's report of an operating-system error (a full disk, a read-only folder):
    tantivy-py raises every error as a ``ValueError``, an OS error's carrying Rust's "(os error N)" or, as a lock
    file's, its debug form ("Os { code: 30, kind: ReadOnlyFilesystem, ... }")."""
    return isinstance(exc, ValueError) and any(mark in str(exc) for mark in ("(os error ", "Os { code: "))


class TantivyRetriever:
    """BM25 over an on-disk (or, with ``path=None``, in-memory) tantivy index.

    The constructor only checks settings; the index is opened (or created) on
    first use or by :meth:`warm_up`, so building the retriever in
    ``create_app()`` touches no disk. Searches run concurrently; writes are
    serialised by a lock, and the writer is released after each call because
    its file lock would otherwise block every other process using the index.

    Fields missing from ``field_boosts`` or boosted 0 are not searched, as with
    a ``multi_match`` field list. Replaced and deleted products still count in
    document frequencies until their segment is merged, so scores drift
    slightly after upserts, exactly as they do in Lucene and Elasticsearch.
    """

    name = LEXICAL

    def __init__(self, path: Path | None, settings: LexicalSettings, catalog: CatalogFields | None = None):
        if (settings.k1, settings.b) != (TANTIVY_K1, TANTIVY_B):
            raise ConfigError(
                f"lexical.k1={settings.k1}, lexical.b={settings.b}: tantivy fixes BM25 at "
                f"k1={TANTIVY_K1}, b={TANTIVY_B}; set lexical.k1/b to these values"
            )
        self._boosts = settings.searched_fields()
        self._tie_breaker = settings.tie_breaker
        self._path = None if path is None else Path(path)
        self._new_catalog = catalog
        """The catalog fields of an index being built, written beside it when it is created."""
        if catalog is None:
            catalog = CatalogFields() if self._path is None else CatalogFields.load(self._path / CATALOG_FIELDS_FILE)
        self._catalog = catalog
        self._held = dict(NUMERIC_FIELDS)
        for name, kind in catalog.types.items():
            field = catalog.index_field(name)
            several = (f"{field}{MIN_SUFFIX}", f"{field}{MAX_SUFFIX}") if name in catalog.several else ()
            self._held.update(dict.fromkeys((field, *several), CATALOG_FIELD_KINDS[kind]))
        self._settings = settings
        self._synonym_rules = read_rules(settings.synonyms_file) if settings.synonyms_file is not None else []
        self._analyse_as(ANALYZER_NAME)
        self._index: tantivy.Index | None = None
        self._open_lock = threading.Lock()
        self._write_lock = threading.Lock()

    def _analyse_as(self, analyzer_name: str) -> None:
        """Fields, words and the query words' readers as the analyzer named ``analyzer_name`` cuts them (the one
        an index is written with, or the one of schema version 4 an opened index was written with)."""
        folded = analyzer_name != UNFOLDED_ANALYZER_NAME
        self._analyzer_name, self._schema = analyzer_name, _schema(self._catalog, analyzer_name)
        self._analyzer, self._normaliser = english_analyzer(folded), normaliser(folded)
        self._spells_sizes = self._codes_held = folded  # schema 4 has neither (nor a CODE_FIELD)
        self._typed = typed_words_analyzer()
        self._typos = TypoCorrector(self._typed, self._analyzer, self._schema) if self._settings.correct_typos else None
        self._units = UnitSpellings(self._analyzer) if self._settings.unit_spellings else None
        self._synonyms = Synonyms(self._synonym_rules, self._cut, self._settings.synonyms_file)

    def warm_up(self) -> None:
        """Open the index, or pick up commits made since (e.g. by an ``index`` run in another process)."""
        self._opened().reload()

    def count(self) -> int:
        return self._opened().searcher().num_docs

    def add(self, products: Iterable[Product]) -> int:
        """Upsert; returns how many distinct products were written.

        Committed every ``COMMIT_EVERY`` products: a commit flushes segments and
        fsyncs, so committing per product would make bulk loads crawl. If the
        input fails part-way, batches already committed stay and the rest is dropped.
        """
        written: set[str] = set()
        batch: dict[str, Product] = {}
        with self._writer() as writer:
            for product in products:
                if not isinstance(product, Product):
                    raise TypeError(f"add() takes Product records, got {type(product).__name__}")
                # Last one wins within a batch, as it would across batches.
                batch[product.id] = product
                if len(batch) >= COMMIT_EVERY:
                    self._write(writer, batch.values())
                    written.update(batch)
                    batch = {}
            if batch:
                self._write(writer, batch.values())
                written.update(batch)
        return len(written)

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products by id; returns how many of them were indexed."""
        ids = sorted(set(product_ids))
        if not ids:
            return 0
        with self._writer() as writer:
            # Counted by a search, not doc_freq: doc_freq still counts deleted documents until a merge.
            existing = (
                self._opened()
                .searcher()
                .search(tantivy.Query.term_set_query(self._schema, "id", ids), 1, count=True)
                .count  # type: ignore[attr-defined]  # tantivy's stub omits SearchResult.count
            )
            for pid in ids:
                writer.delete_documents_by_term("id", pid)
            writer.commit()
        return existing

    def search(
        self,
        query: str,
        k: int,
        filters: Filters | None = None,
        constraint: tantivy.Query | None = None,
        text: tantivy.Query | None = None,
    ) -> list[Candidate]:
        """Best first, ties by product id.

        A query with no words left after analysis returns the filtered products
        (score 0, by id) when there are filters, and nothing when there are none:
        "everything" is not a lexical answer. ``constraint`` (a query built on
        :attr:`schema`, e.g. a ``must_not``) is one more filter. ``text``, when
        given, is scored instead of ``query``'s words (a prefix search's words
        and the words they begin).
        """
        if k < 0:
            raise ValueError(f"k={k}: the number of candidates must be >= 0")
        filter_query = self.restriction(filters, constraint)
        text_query = self.text_query(query) if text is None else text
        if k == 0:
            return []
        searcher = self.searcher()
        if text_query is None:
            if filter_query is None:
                return []
            hits = searcher.search(filter_query, k, count=False, order_by_field="id", order=tantivy.Order.Asc).hits
            return leg_candidates(LEXICAL, [(pid, 0.0) for pid, _ in hits])
        return leg_candidates(LEXICAL, self._top_k(searcher, self.scored(text_query, filter_query), k))

    @property
    def schema_version(self) -> int:
        """The opened index's schema version: :data:`SCHEMA_VERSION`, or 4 for one this release only serves until the
        next build (:meth:`_open_unfolded`)."""
        self._opened()
        return 4 if self._analyzer_name == UNFOLDED_ANALYZER_NAME else SCHEMA_VERSION

    @property
    def schema(self) -> tantivy.Schema:
        """The opened index's schema (its text fields name the analyzer it was written with)."""
        self._opened()
        return self._schema

    @property
    def catalog(self) -> CatalogFields:
        """The catalog's own fields this index holds, typed (filters, sorts and facets on them)."""
        return self._catalog

    def held_as(self, field: str) -> tantivy.FieldType | None:
        """How the fast field ``field`` (the product's number, a catalog field's index field or the least or greatest
        of its several values) holds its values; None for another field."""
        return self._held.get(field)

    @property
    def fields(self) -> tuple[str, ...]:
        """The text fields searched (boosted above 0)."""
        return tuple(self._boosts)

    def analyze(self, text: str) -> list[str]:
        """``text`` as the terms the text fields were indexed with: composed (NFC) first, as a product's text is
        (:func:`~..core.product.composed`), so a query typed with decomposed accents finds the same words."""
        self._opened()
        return self._cut(text)

    def _cut(self, text: str) -> list[str]:
        """:meth:`analyze` by the analyser in use, the index opened or not (a synonym rule is cut as it is read)."""
        return list(self._analyzer.analyze(self._spelled(composed(text))))

    def normalise(self, text: str) -> str:
        """``text`` in lower case and, in an index that folds its words, folded to ASCII, as one piece: what a word
        that is not analysed (a wildcard's literal text, a ``~`` word) is compared with the indexed words as, as
        Elasticsearch normalises it with the analyser's lowercase and asciifolding."""
        self._opened()
        return "".join(self._normaliser.analyze(composed(text)))

    def tokens(self, text: str) -> list[tantivy.Token]:
        """``text``'s terms, each with the characters it was cut from and its position (what highlights mark)."""
        return self._tokens(text, typed=False)

    def typed_tokens(self, text: str) -> list[tantivy.Token]:
        """``text``'s words as typed (lower case, neither folded nor stemmed), one for each of :meth:`analyze`'s
        terms, each with the characters it was cut from."""
        return self._tokens(text, typed=True)

    def _tokens(self, text: str, typed: bool) -> list[tantivy.Token]:
        # The analyzer is read once the index is open: opening one of schema 4 replaces it (_open_unfolded). The
        # products' text is composed already (their offsets are its own); a query's is composed as analyze's is.
        self._opened()
        analyzer = self._typed if typed else self._analyzer
        text = composed(text)
        if self._spells_sizes:
            return list(spelled_tokens(text, analyzer))
        return list(analyzer.pre_tokenize(text).tokens)

    def _spelled(self, text: str) -> str:
        """``text`` as the index's words are cut from it: with fraction characters and inch and foot marks spelled
        out (:mod:`.typography`) in an index of this schema version, as it is in one of version 4."""
        return spelled_out(text) if self._spells_sizes else text

    def searcher(self) -> tantivy.Searcher:
        return self._opened().searcher()

    def holders(self, field: str, term: str, k: int) -> list[str]:
        """The ids of at most ``k`` products whose ``field`` holds the index term ``term``, the least ids first."""
        query = tantivy.Query.term_query(self.schema, field, term)
        hits = self.searcher().search(query, k, count=False, order_by_field="id", order=tantivy.Order.Asc).hits
        return [pid for pid, _ in hits]

    def restriction(self, filters: Filters | None, constraint: tantivy.Query | None) -> tantivy.Query | None:
        """``filters`` and ``constraint`` as one query (None when there is neither)."""
        parts = [q for q in (self.filter_query(filters), constraint) if q is not None]
        if len(parts) < 2:
            return parts[0] if parts else None
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in parts])

    @staticmethod
    def scored(text_query: tantivy.Query, restriction: tantivy.Query | None) -> tantivy.Query:
        """The text query's BM25 over the products that pass ``restriction`` (a zero-scored MUST)."""
        if restriction is None:
            return text_query
        return tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, text_query),
                (tantivy.Occur.Must, tantivy.Query.const_score_query(restriction, 0.0)),
            ]
        )

    def admitted(self, product_ids: Iterable[str], constraint: tantivy.Query) -> set[str]:
        """Those of ``product_ids`` that match ``constraint``: how another leg's candidates are checked."""
        wanted = sorted(set(product_ids))
        if not wanted:
            return set()
        searcher = self.searcher()
        query = tantivy.Query.boolean_query(
            [
                (tantivy.Occur.Must, tantivy.Query.term_set_query(self._schema, "id", wanted)),
                (tantivy.Occur.Must, constraint),
            ]
        )
        hits = searcher.search(query, len(wanted), count=False, order_by_field="id", order=tantivy.Order.Asc).hits
        return {pid for pid, _ in hits}

    def text_query(self, query: str) -> tantivy.Query | None:
        """Best-fields BM25 over the analyzed words of ``query``; None when no word is left."""
        words = self.query_words(query)
        if not words:
            return None
        spans = self._spans_of(query)
        fields = [
            tantivy.Query.boost_query(self._words_query(field, words, spans), boost)
            for field, boost in self._boosts.items()
        ]
        codes = self._codes_query(query)
        return tantivy.Query.disjunction_max_query(fields if codes is None else [*fields, codes], self._tie_breaker)

    def codes(self, query: str) -> list[str]:
        """The model codes of ``query`` the index looks up (:mod:`.codes`): none without ``lexical.model_codes`` or in
        an index of schema version 4, which holds none."""
        return query_codes(query) if self._settings.model_codes and self._codes_held else []

    def _codes_query(self, query: str) -> tantivy.Query | None:
        """With ``lexical.model_codes``, ``query``'s codes in the searched text fields (:meth:`code_query`), one more
        field of the best fields; None without codes (or setting, or field)."""
        codes = self.codes(query)
        return self.code_query(codes, self._boosts) if codes else None  # most queries: no searcher taken

    def code_query(self, codes: Sequence[str], boosts: Mapping[str, float]) -> tantivy.Query | None:
        """An OR of ``codes`` in :data:`CODE_FIELD`: each code in the text fields of ``boosts``, at the boost of the
        field it is written in, the best of them (as the words' fields are combined); None where no product holds
        any of them in those fields."""
        searcher = self.searcher()
        # Only the terms some product holds: a query's spans are mostly no code of the catalogue's, and each term
        # query costs a lookup per segment (a 512-character query of codes, 5 fields: 112 -> 60 ms).
        held = [
            [
                (term, boost)
                for field, boost in boosts.items()
                if searcher.doc_freq(CODE_FIELD, term := code_term(field, c))
            ]
            for c in codes
        ]
        if not any(held):
            return None

        def in_fields(terms: list[tuple[str, float]]) -> tantivy.Query:
            return tantivy.Query.disjunction_max_query(
                [
                    tantivy.Query.boost_query(
                        tantivy.Query.term_query(self._schema, CODE_FIELD, term, index_option="freq"), boost
                    )
                    for term, boost in terms
                ],
                self._tie_breaker,
            )

        return tantivy.Query.boolean_query([(tantivy.Occur.Should, in_fields(terms)) for terms in held if terms])

    def query_words(self, query: str) -> list[QueryWord]:
        """Each analysed word of ``query`` once (repeated words in a shop query are typing, not emphasis), as the
        terms it is searched as: itself; with ``lexical.correct_typos`` the index's nearest terms when neither
        the index nor the language has it (:mod:`.spelling`); with ``lexical.unit_spellings`` a unit after a
        number as every spelling of it (:mod:`.units`)."""
        query = composed(query)  # the typo reader cuts the text again, and must cut it into the same words
        terms = self.analyze(query)
        if self._typos is None:
            words = [QueryWord.as_typed(term) for term in dict.fromkeys(terms)]
        else:
            words = self._typos.words(self._spelled(query), terms, self.searcher(), self._boosts)
        return words if self._units is None else self._units.words(terms, words)

    def synonym_spans(self, words: Sequence[str]) -> list[SynonymSpan]:
        """The synonym rules (``lexical.synonyms_file``, :mod:`.synonyms`) that a query's analysed ``words`` match."""
        return self._synonyms.spans(words) if self._synonyms else []

    def _spans_of(self, query: str) -> list[SynonymSpan]:
        """:meth:`synonym_spans` of ``query``'s words; the text is not cut again where no rule is read."""
        if not self._synonyms:
            return []
        first: dict[tuple[str, ...], SynonymSpan] = {}
        for span in self._synonyms.spans(self.analyze(query)):
            first.setdefault(span.words, span)  # a repeated span adds no match, only the cost of its readings
        return list(first.values())

    def synonym_variants(self, words: Sequence[str]) -> list[list[str]]:
        """``words`` as each text the synonym rules make of them (:meth:`.Synonyms.variants`); ``words`` alone
        without rules."""
        return list(self._synonyms.variants(words)) if self._synonyms else [list(words)]

    def _words_query(self, field: str, words: list[QueryWord], spans: Sequence[SynonymSpan] = ()) -> tantivy.Query:
        """An OR of ``words`` in ``field``; a word searched as several terms matches the best of them there, at
        its weight. The words of a synonym rule's span match the best of the span's readings: its words as
        typed (where the rule keeps them), each other reading a word or a phrase."""

        def term(text: str) -> tantivy.Query:
            return tantivy.Query.term_query(self._schema, field, text, index_option="freq")

        def word_query(word: QueryWord) -> tantivy.Query:
            if word.typed_only:
                return term(word.term)
            return tantivy.Query.disjunction_max_query(
                [tantivy.Query.boost_query(term(text), weight) for text, weight in word.searched_as]
            )

        def reading(words: tuple[str, ...]) -> tantivy.Query:
            return term(words[0]) if len(words) == 1 else tantivy.Query.phrase_query(self._schema, field, list(words))

        def any_of(queries: list[tantivy.Query]) -> tantivy.Query:
            return tantivy.Query.boolean_query([(tantivy.Occur.Should, query) for query in queries])

        def span_query(span: SynonymSpan) -> tantivy.Query:
            typed = [word_query(word) for word in words if word.term in span.words] if span.keeps_words else []
            kept = [any_of(typed)] if typed else []
            return tantivy.Query.disjunction_max_query([*kept, *map(reading, span.alternatives)])

        in_spans = {word for span in spans for word in span.words}
        return any_of([*(word_query(word) for word in words if word.term not in in_spans), *map(span_query, spans)])

    def field_scores(self, query: str, product_ids: Sequence[str]) -> dict[str, dict[str, float]]:
        """Each text field's own BM25 of ``query`` for the given products (unboosted; absent: 0).

        The learned ranker's per-field features: the leg's score is the best
        field's, which hides whether the words were in the title or only in
        the description. One search per field, restricted to these products.
        """
        words = self.query_words(query)
        spans = self._spans_of(query)
        wanted = sorted(set(product_ids))
        out: dict[str, dict[str, float]] = {field: {} for field in LEXICAL_FIELDS}
        if not words or not wanted:
            return out
        searcher = self.searcher()
        only = tantivy.Query.term_set_query(self._schema, "id", wanted)
        ids: dict[tuple[int, int], str] = {}
        for field in LEXICAL_FIELDS:
            text = self._words_query(field, words, spans)
            query_only = tantivy.Query.boolean_query(
                [(tantivy.Occur.Must, text), (tantivy.Occur.Must, tantivy.Query.const_score_query(only, 0.0))]
            )
            for score, address in searcher.search(query_only, len(wanted), count=False).hits:
                key = (address.segment_ord, address.doc)
                if key not in ids:
                    ids[key] = str(searcher.doc(address).get_first("id"))
                out[field][ids[key]] = float(score)
        return out

    def filter_query(self, filters: Filters | None) -> tantivy.Query | None:
        """The same decisions as ``Filters.matches``, clause by clause, as exact-term lookups."""
        if filters is None or filters.is_empty:
            return None
        # Through the property, which opens the index: one of schema 4 (_open_unfolded) numbers its fields otherwise.
        schema = self.schema
        clauses = []
        if filters.category:
            clauses.append(tantivy.Query.term_query(schema, "category_path", category_key(filters.category)))
        if filters.brand:
            clauses.append(
                tantivy.Query.term_set_query(schema, "brand_key", sorted({normalise_term(b) for b in filters.brand}))
            )
        if filters.price_min is not None or filters.price_max is not None:
            # A product without a price has no value in the field, so it fails the range, as in the reference.
            clauses.append(
                tantivy.Query.range_query(
                    schema,
                    "price",
                    tantivy.FieldType.Float,
                    None if filters.price_min is None else float(filters.price_min),
                    None if filters.price_max is None else float(filters.price_max),
                )
            )
        for key, wanted in filters.attributes.items():
            # No wanted values means an empty term set: matches nothing, as in the reference.
            clauses.append(
                tantivy.Query.term_set_query(schema, "attr", sorted({attribute_key(key, value) for value in wanted}))
            )
        return tantivy.Query.boolean_query([(tantivy.Occur.Must, clause) for clause in clauses])

    def _top_k(self, searcher: tantivy.Searcher, query: tantivy.Query, k: int) -> list[tuple[str, float]]:
        """Top k by (score, id).

        tantivy breaks score ties by internal doc address, which changes with
        merges; so the fetch widens until everything tied with the k-th hit is
        in hand, and the ids decide.
        """
        limit = k
        while True:
            hits = searcher.search(query, limit, count=False).hits
            if len(hits) < limit or hits[-1][0] < hits[k - 1][0]:
                break
            limit *= 2
        cutoff = hits[k - 1][0] if len(hits) >= k else -math.inf
        # Every document is written with its id (see _write), so get_first never misses here.
        scored = [(str(searcher.doc(address).get_first("id")), score) for score, address in hits if score >= cutoff]
        scored.sort(key=lambda hit: (-hit[1], hit[0]))
        return scored[:k]

    def _write(self, writer: tantivy.IndexWriter, products: Iterable[Product]) -> None:
        for product in products:
            writer.delete_documents_by_term("id", product.id)
            writer.add_document(_document(product, self._catalog, self._spelled, self._codes_held))
        writer.commit()

    @contextmanager
    def _writer(self) -> Iterator[tantivy.IndexWriter]:
        """A writer for one call, always released, and the searcher reloaded after."""
        with self._write_lock:
            index = self._opened()
            try:
                writer = index.writer(heap_size=WRITER_HEAP_BYTES)
            except ValueError as exc:
                raise StageError(
                    LEXICAL,
                    f"cannot write the index at {self._path}: {exc}. Another process (an `index` run or a "
                    f"service worker) is writing it; wait for it to finish",
                ) from exc
            try:
                yield writer
            finally:
                # Consumes the writer: drops what was not committed, finishes merges, frees the lock.
                writer.wait_merging_threads()
                index.reload()

    def _opened(self) -> tantivy.Index:
        if self._index is None:
            with self._open_lock:
                if self._index is None:
                    self._index = self._open_index()
        return self._index

    def _open_index(self) -> tantivy.Index:
        if self._path is None:
            index = tantivy.Index(self._schema)
        else:
            self._path.mkdir(parents=True, exist_ok=True)
            try:
                index = tantivy.Index(self._schema, path=str(self._path), reuse=True)
            except ValueError as exc:
                if reports_os_error(exc):
                    raise ConfigError(
                        f"cannot open the tantivy index at {self._path}: {exc}; tantivy takes a lock file in the "
                        "index's folder even to read it, so the folder must be writable (not a read-only mount)"
                    ) from exc
                unfolded = self._open_unfolded()
                if unfolded is None:
                    raise ConfigError(
                        f"cannot open the tantivy index at {self._path}: {exc}. It was probably built by another "
                        f"version of search_rerank (this one reads schema versions 4 and {SCHEMA_VERSION} and writes "
                        f"{SCHEMA_VERSION}); build a new version from the whole catalog with `search-rerank index "
                        f"--catalog PATH` (an --incremental update cannot convert it), then restart the service or "
                        f"POST /admin/reload"
                    ) from exc
                index = unfolded
            if self._new_catalog is not None:
                self._new_catalog.save(self._path / CATALOG_FIELDS_FILE)
        # Analyzers are not stored in the index: register on every open, before any writer exists.
        index.register_tokenizer(self._analyzer_name, self._analyzer)
        return index

    def _open_unfolded(self) -> tantivy.Index | None:
        """The index at the path if it is of schema version 4 (:data:`UNFOLDED_ANALYZER_NAME`), then searched and
        updated with that version's analyzer; None if it is of neither schema this release reads."""
        if self._analyzer_name == UNFOLDED_ANALYZER_NAME:
            return None
        try:
            index = tantivy.Index(_schema(self._catalog, UNFOLDED_ANALYZER_NAME), path=str(self._path), reuse=True)
        except ValueError:
            return None
        self._analyse_as(UNFOLDED_ANALYZER_NAME)
        return index
