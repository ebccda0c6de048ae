"""The lexical leg on an Elasticsearch or OpenSearch cluster.

Both engines get the same index definition and documents (:mod:`.mappings`)
and the same Query DSL (:mod:`.es_query`); only the client library differs. So
:class:`ClusterRetriever` holds all the behaviour, and each engine's subclass
only builds its client and reads its exceptions. The two clients take the
same call shapes (``body=`` everywhere), and a response's ``body`` attribute
(Elasticsearch) or the response itself (OpenSearch) is the decoded JSON.

Retries live here, not in the clients (built with ``max_retries=0``): one
policy for both engines, exponential backoff with jitter, applied to requests
that got no answer and to the statuses a busy cluster answers with (429, 502,
503, 504), and to bulk items rejected with 429. Any other failure is final,
and a document the cluster refuses is reported by id and reason rather than
lost in a bulk response.

Bulk batches go out in parallel, ``lexical.bulk_workers`` in flight at once,
each with its own retries; rejections from all of them are reported together.
A product id is never in two batches in flight at once, so the last record of
an id is the one indexed, as when the batches go one after another.
"""

from __future__ import annotations

import dataclasses
import logging
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, ClassVar

import elastic_transport
import elasticsearch
import opensearchpy

from ..core.candidate import Candidate
from ..core.catalog_fields import CatalogFields
from ..core.errors import ClusterMisconfigured, ClusterUnavailable, ConfigError, RequestRefused, StageError
from ..core.expiring_cache import ExpiringCache
from ..core.filters import Filters
from ..core.product import Product, composed
from ..core.retrieval import LEXICAL, leg_candidates
from ..core.settings import LexicalSettings, merged
from ..indexing.versions import new_stamp
from .cluster_query import (
    aggregation_body,
    corrections,
    held_body,
    search_body,
    searched_codes,
    started,
    suggest_body,
    unheld,
    whole,
)
from .mappings import CODE, catalog_mapping, document, field_paths, index_body, mapped_catalog, synonym_rules
from .spelling import QueryWord, suspect
from .tantivy_index import typed_words_analyzer

log = logging.getLogger(__name__)

TRANSIENT_STATUSES = frozenset({429, 502, 503, 504})
TOO_MANY_BUCKETS = "too_many_buckets_exception"
REQUEST_FAULTS = frozenset({TOO_MANY_BUCKETS})
"""Errors a cluster answers with a 5xx that the request caused, not the cluster's state: OpenSearch and
Elasticsearch before 8.8 answer an aggregation of more buckets than ``search.max_buckets`` with a 503
(elastic/elasticsearch#37957). Read as a 400 is: not retried, not counted on the lexical leg's breaker (five
anonymous requests would otherwise open it, and every shopper's search would find nothing while it is open), and
answered as the client's 400."""
# 500 products make a bulk request of a few hundred KB: large enough to amortise
# the round trip, small enough not to trip the cluster's request size limits.
BULK_BATCH = 500
BACKOFF_BASE_S = 0.2
BACKOFF_CAP_S = 10.0
REJECTIONS_SHOWN = 5
MAX_SUSPECT_WORDS = 16
"""Words of one query the cluster is asked to correct at most (a term suggester per searched field each): a
shopper's query has a word or two that no English word is, a pasted paragraph hundreds."""
MAX_WORD_FACTS = 10_000
"""Words whose readings a retriever remembers at most (:class:`WordFacts`)."""
WORD_FACTS_TTL_S = 300.0
"""How long a word's reading is remembered: a word the catalogue gains, or loses, through another writer (a
reindex's alias move, another worker's update) reads as it now should within five minutes (this retriever's own
writes forget them all at once), and a brand typed all day is asked about once per five minutes, not before every
search. Meanwhile a word the catalogue gained is searched as typed and as its old reading, so its new products are
found."""
FIELDS_REREAD_S = 10.0
"""The least time between two readings of the served mapping for one field not in it (:meth:`ClusterRetriever.holds`):
bodies naming it again and again cost one mapping request per period, not one each."""
CONNECTIONS_PER_NODE = 10  # kept open per node: searches, aggregations and bulk requests run side by side


def version_name(alias: str) -> str:
    """A new index version for ``alias``: a version stamp suffix, so versions sort by age by name."""
    return f"{alias}-{new_stamp()}"


def backoff_s(attempt: int) -> float:
    """Exponential with equal jitter, so clients that failed together do not retry together."""
    ceiling = min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2**attempt)
    return ceiling / 2 + random.uniform(0, ceiling / 2)


@dataclass(frozen=True)
class Failure:
    """A client exception in engine-neutral terms; ``status`` is None when no HTTP answer came."""

    status: int | None
    type: str
    reason: str

    @property
    def request_fault(self) -> bool:
        """Whether the request is what is wrong (a 400, or a 5xx it caused: :data:`REQUEST_FAULTS`), not the
        cluster."""
        return self.status == 400 or self.type in REQUEST_FAULTS

    @property
    def transient(self) -> bool:
        return (self.status is None or self.status in TRANSIENT_STATUSES) and not self.request_fault


def failure_from_body(status: int, body: Any, fallback: str) -> Failure:
    """Type and reason from an error response (``{"error": {"type", "reason"}}``), whatever its shape.

    A search no shard could run is ``search_phase_execution_exception``, "all shards failed", which says
    nothing of why: its first root cause does ("failed to create query: For input string: ..."), and names
    the index and node in keys of their own, not in its reason; one that failed past the shards (too many buckets
    reduced) has no root cause, and says why in ``caused_by``."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and error.get("type") == "search_phase_execution_exception":
        causes = error.get("root_cause")
        first = causes[0] if isinstance(causes, list) and causes else error.get("caused_by")
        if isinstance(first, dict) and first.get("reason"):
            error = first
    if isinstance(error, dict):
        return Failure(status, str(error.get("type", "error")), str(error.get("reason") or fallback))
    return Failure(status, "error", str(error or body or fallback))


def _no_answer(exc: BaseException) -> Failure:
    # Connection errors often say little themselves ("Connection error ()"); the cause says why.
    cause = exc.__cause__ or exc.__context__
    reason = str(exc) if cause is None else f"{exc} ({cause})"
    return Failure(None, type(exc).__name__, reason)


@dataclass(frozen=True)
class Rejection:
    product_id: str
    status: int
    type: str
    reason: str

    def __str__(self) -> str:
        return f"{self.product_id!r}: {self.status} {self.type}: {self.reason}"


class RejectedDocuments(StageError):
    """Bulk items the cluster refused, each with the product id and the cluster's reason."""

    def __init__(self, index: str, rejections: Sequence[Rejection], attempted: int):
        self.index = index
        self.rejections = list(rejections)
        shown = "; ".join(str(r) for r in self.rejections[:REJECTIONS_SHOWN])
        more = len(self.rejections) - REJECTIONS_SHOWN
        super().__init__(
            LEXICAL,
            f"index {index!r} rejected {len(self.rejections)} of {attempted} documents: "
            f"{shown}" + (f" (and {more} more)" if more > 0 else ""),
        )


@dataclass(frozen=True)
class WordFacts:
    """What the cluster said of a word that may be a typo: whether a searched field holds it, whether one holds a
    word it starts (None: not asked; a prefix query's last word is), and its reading (None: held, or no term near).
    """

    held: bool
    begins: bool | None = None
    reading: QueryWord | None = None


def _read(
    suspects: list[str], facts: Mapping[str, WordFacts], last: str | None
) -> tuple[dict[str, QueryWord], str | None]:
    """The readings of ``suspects`` by what the cluster said of each (``facts``), and ``last`` where it begins a
    word the index holds."""
    readings = {word: reading for word in suspects if (reading := facts[word].reading) is not None}
    return readings, last if last is not None and facts[last].begins else None


class ClusterRetriever:
    """BM25 on a server index, behind the same protocol as the embedded leg.

    ``settings.index`` is what searches and writes address: normally an alias
    that a reindex points at a new index, or a plain index. Nothing is sent to
    the cluster until the first call, so building the retriever in
    ``create_app()`` needs no cluster. Writes are made visible (refreshed)
    before ``add`` and ``delete`` return, as the embedded leg commits.

    ``index_extension`` is a create-index fragment merged into every index
    this creates (the dense leg's vector field, :mod:`.engine_knn`).

    Subclasses build their engine's client and classify its exceptions.
    """

    name = LEXICAL
    engine: ClassVar[str]

    def __init__(
        self,
        settings: LexicalSettings,
        client: Any = None,
        index_extension: Mapping[str, Any] | None = None,
        catalog: CatalogFields | None = None,
    ):
        if settings.backend != self.engine:
            raise ConfigError(f"lexical.backend={settings.backend!r}, but this is the {self.engine} leg")
        settings.searched_fields()  # no searchable field is a settings error, not a failed search
        self.settings = settings
        self.index = settings.index
        self.url = settings.url
        self._client = client if client is not None else self.connect(settings)
        self.index_extension = index_extension
        self._index_ready = False
        self._fields: frozenset[str] | None = None
        self._fields_missing: dict[str, float] = {}
        self._catalog = catalog
        self._typed_words = typed_words_analyzer()
        self._words: ExpiringCache[WordFacts] = ExpiringCache(MAX_WORD_FACTS, WORD_FACTS_TTL_S)
        """What the cluster said of each word asked about (:meth:`readings`): a shop's non-English words repeat
        (its brands), and each would cost a request before every search."""

    @classmethod
    def connect(cls, settings: LexicalSettings, **options: Any) -> Any:
        """The engine's client for ``settings``; ``options`` go to its constructor as they are."""
        raise NotImplementedError

    def failure(self, exc: BaseException) -> Failure | None:
        """``exc`` in neutral terms, or None when it is not the client's (a bug, to be raised as it is)."""
        raise NotImplementedError

    def bound_to(self, index: str, catalog: CatalogFields | None = None) -> ClusterRetriever:
        """The same connection addressing another index (a reindex fills a new index this way, created with
        ``catalog``'s fields)."""
        return type(self)(
            self.settings.model_copy(update={"index": index}),
            client=self._client,
            index_extension=self.index_extension,
            catalog=catalog,
        )

    # ------------------------------------------------------------ Retriever protocol

    def warm_up(self) -> None:
        """Check that the cluster answers, accepts the credentials and has the index or alias; warn where the index
        applies other synonym rules than the settings name (:meth:`check_synonyms`)."""
        if not self.exists(self.index):
            raise ConfigError(
                f"no index or alias {self.index!r} at {self.url}: build it with "
                f"`search-rerank index` or `search-rerank reindex`"
            )
        self.check_synonyms()

    def check_synonyms(self) -> None:
        """Log a warning naming ``lexical.synonyms_file`` where the served index's search analyzer holds other rules
        than the file. An index takes its rules when it is created, so a file changed since (or set, or unset) is
        applied only by the next full build; the searches meanwhile go on with the index's rules. Why a warning,
        not a refusal: the index still answers as it did, and a reload must not stop serving over a file. A key
        that may search but not read the index's settings (no ``view_index_metadata``) leaves it unchecked."""
        body = index_body(self.settings)
        hook = body["mappings"]["_meta"]["synonyms_filter"]
        wanted = synonym_rules(body["settings"], hook)
        try:
            answer = self._call("get settings", lambda: self._client.indices.get_settings(index=self.index))
        except (ClusterMisconfigured, ClusterUnavailable, RequestRefused) as exc:
            log.info("the index's synonym rules were not compared with lexical.synonyms_file: %s", exc)
            return
        for name, entry in answer.items() if isinstance(answer, Mapping) else ():
            if not isinstance(entry, Mapping):  # no index's settings: a proxy's or stand-in's own answer
                continue
            held = synonym_rules(entry.get("settings", {}), hook)
            if held != wanted:
                log.warning(
                    "lexical.synonyms_file names %d synonym rules, but the index %r was created with %d others: "
                    "searches apply the index's until a full build (`search-rerank index`) creates one with the file's",
                    len(wanted),
                    name,
                    len(held),
                )

    def count(self, query: Mapping[str, Any] | None = None) -> int:
        """Documents in the index, or those that ``query`` (Query DSL) matches."""
        if query is None:
            return int(self._call("count", lambda: self._client.count(index=self.index))["count"])
        body = {"query": dict(query)}
        return int(self._call("count", lambda: self._client.count(index=self.index, body=body))["count"])

    def add(self, products: Iterable[Product], extra: Mapping[str, Mapping[str, Any]] | None = None) -> int:
        """Upsert in bulk batches, ``bulk_workers`` in flight; returns how many distinct products were written.

        A record that is not a :class:`Product` stops the load there; batches
        already sent stay written, as in the embedded leg. Documents the
        cluster refuses are raised together (:class:`RejectedDocuments`) once
        every batch has been answered and the accepted ones made visible.
        ``extra`` holds fields to add to a product's document, by product id
        (the vector of an engine kNN index).
        """
        self.ensure_index(products)
        written: set[str] = set()
        batch: dict[str, Product] = {}
        try:
            with _ParallelBulk(self, "index") as bulk:
                for product in products:
                    if not isinstance(product, Product):
                        raise TypeError(f"add() takes Product records, got {type(product).__name__}")
                    # Last one wins within a batch, as it would across batches.
                    batch[product.id] = product
                    if len(batch) >= BULK_BATCH:
                        bulk.send(self._index_items(batch.values(), extra))
                        written.update(batch)
                        batch = {}
                if batch:
                    bulk.send(self._index_items(batch.values(), extra))
                    written.update(batch)
                bulk.finish()
            self.refresh()
        finally:
            self._words.clear()  # what the catalogue holds has changed, wholly or (a load stopped) in part
        bulk.raise_rejections()
        return len(written)

    def delete(self, product_ids: Iterable[str]) -> int:
        """Remove products by id; returns how many of them were indexed."""
        ids = sorted(set(product_ids))
        if not ids:
            return 0
        self.ensure_index()
        try:
            with _ParallelBulk(self, "delete") as bulk:
                for start in range(0, len(ids), BULK_BATCH):
                    bulk.send(
                        [
                            (pid, [{"delete": {"_index": self.index, "_id": pid}}])
                            for pid in ids[start : start + BULK_BATCH]
                        ]
                    )
                bulk.finish()
            self.refresh()
        finally:
            self._words.clear()
        bulk.raise_rejections()
        return sum(result.get("result") == "deleted" for result in bulk.results.values())

    def search(self, query: str, k: int, filters: Filters | None = None) -> list[Candidate]:
        """Best first, ties by product id; same rules for empty text and filters as the embedded leg."""
        if k < 0:
            raise ValueError(f"k={k}: the number of candidates must be >= 0")
        body = search_body(query, k, filters, self.settings, self.codes(query), list(self.spellings(query).values()))
        if body is None:
            return []
        response = self._call("search", lambda: self._client.search(index=self.index, body=body))
        hits = response["hits"]["hits"]
        return leg_candidates(LEXICAL, [(hit["_id"], hit.get("_score") or 0.0) for hit in hits])

    # ------------------------------------------------------------ beyond the protocol

    def aggregate(self, aggs: dict[str, Any], query: str = "", filters: Filters | None = None) -> dict[str, Any]:
        """Run ``aggs`` (any Query DSL aggregations) over what ``query`` and ``filters`` match; the raw result.

        For facets: the counts are over the same products a search would
        retrieve, with no words meaning the whole catalog.
        """
        body = aggregation_body(
            aggs, query, filters, self.settings, self.codes(query), list(self.spellings(query).values())
        )
        response = self._call("aggregate", lambda: self._client.search(index=self.index, body=body))
        return response.get("aggregations", {})

    def codes(self, text: str) -> list[str]:
        """The model codes of ``text`` to look up in the index's code fields (``lexical.model_codes``).

        The served index is not asked whether it has them: a ``term`` on a field an index does not map matches
        nothing, so an index of mapping version 3 or before finds a code by its words until a reindex, and a
        search asks nothing of the cluster beyond itself (a mapping request would wait out a dead cluster that
        the search's own breaker would have skipped)."""
        return searched_codes(text, self.settings)

    def typed_words(self, text: str) -> list[str]:
        """``text``'s words as typed (lower case, unstemmed), one for each word the index analyser cuts."""
        return self._typed_words.analyze(composed(text))

    def suspects(self, text: str) -> list[str]:
        """The words of ``text`` that :meth:`spellings` asks the cluster about (``lexical.correct_typos``): each word
        of letters that no English word is, as typed (lower case), each once, at most :data:`MAX_SUSPECT_WORDS`.
        Read without asking the cluster."""
        if not self.settings.correct_typos:
            return []
        return list(dict.fromkeys(word for word in self.typed_words(text) if suspect(word)))[:MAX_SUSPECT_WORDS]

    def spellings(self, text: str) -> dict[str, QueryWord]:
        """With ``lexical.correct_typos``, the readings of ``text``'s misspelt words, by the word as typed (lower
        case): each word of letters that is no English word and that no searched field holds, as the index's
        nearest terms (:mod:`.spelling`'s rules, the terms named by the cluster's term suggester). The cluster is
        asked only when some word is no English word (a brand, a typo), before the search: whether the index holds
        them, then (for a typo) the terms near those it does not; none otherwise."""
        return self.readings(text)[0]

    def readings(self, text: str, typing: bool = False) -> tuple[dict[str, QueryWord], str | None]:
        """:meth:`spellings`, and (``typing``) ``text``'s last word where it is one of them that starts a word the
        index holds, asked in the same request: a prefix query reads that word as being typed, no typo ("leat" is
        "leather" so far, not "leaf"), where a query of whole words reads it as typed. What the cluster said of a
        word is remembered for :data:`WORD_FACTS_TTL_S`, and only the words it has not been asked about are asked."""
        suspects, last = self._asked_about(text, typing)
        as_of = self._words.cleared  # an answer that a write of this retriever's overtakes is not remembered
        facts = self._known(suspects)
        asked = [word for word in suspects if word not in facts]
        typing_asked = last if last is not None and (last not in facts or facts[last].begins is None) else None
        if asked or typing_asked is not None:
            answer = self.run_search(held_body(asked, self.settings, typing_asked), action="spelling")
            misspelt = unheld(answer, asked)
            suggested = self.run_search(suggest_body(misspelt, self.settings), action="spelling") if misspelt else {}
            read = corrections(suggested, misspelt, self.settings) if misspelt else {}
            facts.update({word: WordFacts(word not in misspelt, reading=read.get(word)) for word in asked})
            if typing_asked is not None:
                facts[typing_asked] = dataclasses.replace(facts[typing_asked], begins=started(answer))
            if whole(answer) and whole(suggested):
                for word in {*asked, *([typing_asked] if typing_asked is not None else [])}:
                    self._words.put(word, facts[word], as_of)
        return _read(suspects, facts, last)

    def remembered(self, text: str, typing: bool = False) -> tuple[dict[str, QueryWord], str | None] | None:
        """:meth:`readings` from what the cluster said before alone, or None where it must be asked: a caller that
        counts the cluster's answers (the lexical leg's breaker) counts none for these."""
        suspects, last = self._asked_about(text, typing)
        facts = self._known(suspects)
        if len(facts) < len(suspects) or (last is not None and facts[last].begins is None):
            return None
        return _read(suspects, facts, last)

    def _known(self, words: list[str]) -> dict[str, WordFacts]:
        """What the cluster said of each of ``words`` that is still remembered."""
        return {word: known for word in words if (known := self._words.get(word)) is not None}

    def _asked_about(self, text: str, typing: bool) -> tuple[list[str], str | None]:
        """The words of ``text`` that may be typos (:meth:`suspects`), and its last word where ``typing`` and it is
        one of them."""
        suspects = self.suspects(text)
        typed = self.typed_words(text) if typing and suspects else []
        return suspects, typed[-1] if typed and typed[-1] in suspects else None

    def run_search(self, body: Mapping[str, Any], action: str = "search", **options: Any) -> dict[str, Any]:
        """One search request with ``body`` as it is, under the retry policy; the decoded response.

        ``options`` go to the client's ``search`` (``scroll="1m"``; ``index=None`` for a point in time,
        which names its index itself).
        """
        options = {"index": self.index, **options}
        return self._call(action, lambda: self._client.search(body=body, **options))

    def mapping(self) -> dict[str, Any]:
        """The mappings of the index, or of the index the alias selects (the first, if it selects several)."""
        response = self._call("get mapping", lambda: self._client.indices.get_mapping(index=self.index))
        first: dict[str, Any] = next(iter(response.values()), {})
        return first.get("mappings", {})

    def fields(self) -> frozenset[str]:
        """The field paths of the served index's mapping, asked once per retriever (a reload after a reindex
        opens a new one): what an index holds depends on the version of the product that wrote it, not only
        on its mapping file, since its dynamic template maps the category keywords documents carry."""
        if self._fields is None:
            self._fields = field_paths(self.mapping())
        return self._fields

    def holds(self, path: str) -> bool:
        """Whether the served index maps ``path``: :meth:`fields`, read again when the path is not among them (at
        most once every :data:`FIELDS_REREAD_S` for each path). The dynamic template maps a field when the first
        document holding it is written, which may come after the mapping was first read (an index this process
        created and then filled), and the field would otherwise be refused until a restart."""
        if path in self.fields():
            return True
        now = time.monotonic()
        if now - self._fields_missing.get(path, -FIELDS_REREAD_S) >= FIELDS_REREAD_S:
            self._fields_missing[path] = now
            self._fields = None
        return path in self.fields()

    @property
    def catalog(self) -> CatalogFields:
        """The catalog fields the index maps (core/catalog_fields.py), read from its mapping once where it was not
        created here: an update writes each product's values as the served index holds them."""
        if self._catalog is None:
            self._catalog = mapped_catalog(self.mapping())
        return self._catalog

    def refresh(self) -> None:
        self._call("refresh", lambda: self._client.indices.refresh(index=self.index))

    def exists(self, name: str) -> bool:
        """Whether an index or an alias has this name."""
        return bool(self._call("exists", lambda: self._client.indices.exists(index=name)))

    def ensure_index(self, first_products: Iterable[Product] = ()) -> None:
        """Unless an index or alias has the name, create a first index version and the alias to it, mapping the
        catalog fields of ``first_products`` when they are a list (those written first).

        Writing to a missing index would make the cluster create one with
        guessed field types, on which filters silently stop working; and an
        alias from the start is what a later reindex swaps.
        """
        if self._index_ready:
            return
        if not self.exists(self.index):
            first = version_name(self.index)
            self.create_index(first, CatalogFields.of_listed(first_products, self.settings.catalog_field_types))
            self.update_aliases([{"add": {"index": first, "alias": self.index}}])
        self._index_ready = True

    def create_index(self, name: str, catalog: CatalogFields | None = None) -> None:
        """A new index with the settings' mapping version, k1/b and synonyms, and ``catalog``'s fields. An existing
        one is an error."""
        body = index_body(self.settings)
        if self.index_extension is not None:
            body = merged(body, self.index_extension)
        if catalog:
            body = merged(body, catalog_mapping(catalog))
        self._call(f"create index {name!r}", lambda: self._client.indices.create(index=name, body=body))

    def delete_index(self, name: str) -> None:
        self._call(f"delete index {name!r}", lambda: self._client.indices.delete(index=name))

    def aliases(self, pattern: str) -> dict[str, set[str]]:
        """Indices matching ``pattern``, each with the aliases that point at it."""
        response = self._call("get aliases", lambda: self._client.indices.get_alias(index=pattern))
        return {name: set(entry.get("aliases", {})) for name, entry in response.items()}

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        """Apply alias ``actions`` in one request, which the cluster applies atomically."""
        self._call("update aliases", lambda: self._client.indices.update_aliases(body={"actions": actions}))

    # ------------------------------------------------------------ requests

    def _index_items(
        self, products: Iterable[Product], extra: Mapping[str, Mapping[str, Any]] | None = None
    ) -> list[tuple[str, list[dict[str, Any]]]]:
        extra = {} if extra is None else extra
        codes = CODE in self.fields()  # written only into an index that maps them: its mapping is strict
        return [
            (
                p.id,
                [
                    {"index": {"_index": self.index, "_id": p.id}},
                    {**document(p, self.catalog, codes), **extra.get(p.id, {})},
                ],
            )
            for p in products
        ]

    def _bulk(
        self, action: str, items: list[tuple[str, list[dict[str, Any]]]]
    ) -> tuple[dict[str, dict[str, Any]], list[Rejection]]:
        """Send (product id, bulk lines) items in one request; per-item results by id, and the refused items.

        Items refused with 429 (the cluster's write queue was full) are sent
        again after a backoff; any other refusal is returned with its reason.
        """
        results: dict[str, dict[str, Any]] = {}
        pending = items
        for attempt in range(self.settings.retries + 1):
            lines = [line for _, item_lines in pending for line in item_lines]
            response = self._call(f"bulk {action}", lambda: self._client.bulk(body=lines))
            busy = []
            for (pid, item_lines), outcome in zip(pending, response["items"]):
                (result,) = outcome.values()
                if result.get("status") == 429 and attempt < self.settings.retries:
                    busy.append((pid, item_lines))
                else:
                    results[pid] = result
            if not busy:
                break
            log.info("%d of %d bulk items refused with 429; retrying", len(busy), len(pending))
            time.sleep(backoff_s(attempt))
            pending = busy
        rejections = []
        for pid, result in results.items():
            if "error" in result:
                failure = failure_from_body(result["status"], {"error": result["error"]}, "rejected")
                rejections.append(Rejection(pid, result["status"], failure.type, failure.reason))
        return results, rejections

    def _call(self, action: str, request: Callable[[], Any]) -> Any:
        """One request with the retry policy; the decoded JSON, or an error that says what to fix."""
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                response = request()
                return getattr(response, "body", response)
            except Exception as exc:
                failure = self.failure(exc)
                if failure is None:
                    raise
                if failure.transient and attempt + 1 < attempts:
                    log.info("%s on %s failed (%s: %s); retrying", action, self.url, failure.type, failure.reason)
                    time.sleep(backoff_s(attempt))
                    continue
                raise self._error(action, failure, attempt + 1) from exc
        raise AssertionError("unreachable: the last attempt returns or raises")

    def _error(self, action: str, failure: Failure, attempts: int) -> Exception:
        where = f"{self.engine} at {self.url}"
        if failure.status is None:
            return ClusterUnavailable(
                LEXICAL, f"{action}: no answer from {where} after {attempts} attempt(s): {failure.reason}"
            )
        if failure.status in (401, 403):
            return ClusterMisconfigured(
                LEXICAL,
                f"{action}: {where} refused the request ({failure.status} {failure.type}: "
                f"{failure.reason}); check lexical.username/password/api_key",
            )
        if failure.type == "index_not_found_exception":
            return ClusterMisconfigured(
                LEXICAL,
                f"{action}: no index or alias {self.index!r} at {self.url}: build it with "
                f"`search-rerank index` or `search-rerank reindex`",
            )
        # Not transient: the cluster is up and answered this request, refusing it (a client's query) or failing it
        # (a 500 that its body set off: OpenSearch's "invalid score" for a negative field boost).
        error = ClusterUnavailable if failure.transient else RequestRefused
        return error(LEXICAL, f"{action} on {where}: {failure.status} {failure.type}: {failure.reason}")


class _ParallelBulk:
    """Bulk requests of one ``add`` or ``delete``, at most ``bulk_workers`` in flight.

    :meth:`send` blocks while the pool is full, and while an id of the new
    batch is in a batch still in flight (so the later record is written
    later). A request that fails for good (no answer after its retries) is
    raised when it is collected, by :meth:`finish` at the latest; leaving the
    block on an error drops the batches not yet started and waits for those
    in flight. Rejections are reported in product id order, whatever order
    the batches were answered in.
    """

    def __init__(self, retriever: ClusterRetriever, action: str):
        self.retriever = retriever
        self.action = action
        self.workers = retriever.settings.bulk_workers
        self.results: dict[str, dict[str, Any]] = {}
        self.rejections: list[Rejection] = []
        self.attempted = 0
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="bulk")
        self._in_flight: dict[Future, list[str]] = {}
        self._owner: dict[str, Future] = {}

    def __enter__(self) -> _ParallelBulk:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def send(self, items: list[tuple[str, list[dict[str, Any]]]]) -> None:
        clashing = {self._owner[pid] for pid, _ in items if pid in self._owner}
        if clashing:
            self._collect(wait(clashing).done)
        while len(self._in_flight) >= self.workers:
            self._collect(wait(self._in_flight, return_when=FIRST_COMPLETED).done)
        future = self._pool.submit(self.retriever._bulk, self.action, items)
        ids = [pid for pid, _ in items]
        self._in_flight[future] = ids
        self._owner.update(dict.fromkeys(ids, future))
        self.attempted += len(items)

    def finish(self) -> None:
        """Wait for every batch in flight."""
        if self._in_flight:
            self._collect(wait(self._in_flight).done)

    def raise_rejections(self) -> None:
        if self.rejections:
            rejections = sorted(self.rejections, key=lambda r: r.product_id)
            raise RejectedDocuments(self.retriever.index, rejections, self.attempted)

    def _collect(self, done: Iterable[Future]) -> None:
        for future in done:
            for pid in self._in_flight.pop(future, []):
                if self._owner.get(pid) is future:
                    del self._owner[pid]
            results, rejections = future.result()
            self.results.update(results)
            self.rejections.extend(rejections)


class ElasticsearchRetriever(ClusterRetriever):
    """The lexical leg on Elasticsearch 9, with the official client."""

    engine = "elasticsearch"

    @classmethod
    def connect(cls, settings: LexicalSettings, **options: Any) -> elasticsearch.Elasticsearch:
        if settings.api_key is not None:
            options.setdefault("api_key", settings.api_key.get_secret_value())
        elif settings.username is not None and settings.password is not None:  # settings pair them
            options.setdefault("basic_auth", (settings.username, settings.password.get_secret_value()))
        try:
            return elasticsearch.Elasticsearch(
                settings.url,
                verify_certs=settings.verify_certs,
                request_timeout=settings.request_timeout_s,
                max_retries=0,
                retry_on_timeout=False,
                connections_per_node=CONNECTIONS_PER_NODE,
                **options,
            )
        except ValueError as exc:
            raise ConfigError(f"lexical.url={settings.url!r}: {exc}") from exc

    def failure(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, elasticsearch.ApiError):
            return failure_from_body(exc.meta.status, exc.body, exc.message)
        if isinstance(exc, elastic_transport.TransportError):
            return _no_answer(exc)
        return None


class OpenSearchRetriever(ClusterRetriever):
    """The lexical leg on OpenSearch, with opensearch-py."""

    engine = "opensearch"

    @classmethod
    def connect(cls, settings: LexicalSettings, **options: Any) -> opensearchpy.OpenSearch:
        if settings.username is not None and settings.password is not None:  # settings pair them
            options.setdefault("http_auth", (settings.username, settings.password.get_secret_value()))
        try:
            return opensearchpy.OpenSearch(
                hosts=[settings.url],
                verify_certs=settings.verify_certs,
                timeout=settings.request_timeout_s,
                max_retries=0,
                retry_on_timeout=False,
                pool_maxsize=CONNECTIONS_PER_NODE,
                **options,
            )
        except (ValueError, opensearchpy.ImproperlyConfigured) as exc:
            raise ConfigError(f"lexical.url={settings.url!r}: {exc}") from exc

    def failure(self, exc: BaseException) -> Failure | None:
        if isinstance(exc, opensearchpy.ConnectionError):
            return _no_answer(exc)
        if isinstance(exc, opensearchpy.TransportError) and isinstance(exc.status_code, int):
            return failure_from_body(exc.status_code, exc.info, exc.error)
        return None


RETRIEVERS: dict[str, type[ClusterRetriever]] = {
    cls.engine: cls for cls in (ElasticsearchRetriever, OpenSearchRetriever)
}


def cluster_retriever(settings: LexicalSettings, index_extension: Mapping[str, Any] | None = None) -> ClusterRetriever:
    """The retriever for ``settings.backend``, which must name a server engine."""
    if settings.backend not in RETRIEVERS:
        raise ConfigError(
            f"lexical.backend={settings.backend!r} is not a server engine; expected one of {sorted(RETRIEVERS)}"
        )
    return RETRIEVERS[settings.backend](settings, index_extension=index_extension)
