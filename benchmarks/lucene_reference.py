"""A lexical leg that scores as Lucene does (Elasticsearch, OpenSearch), for benchmarks without a cluster.

osmem-server, the in-memory server the tests and benchmarks run against,
matches the same documents as a real cluster (same analysis, same query
structure) but does not score them with Lucene's BM25: on a controlled
corpus its scores are 0.4-0.65 times Lucene's, varying with document length,
so rankings differ. This leg answers the question osmem-server cannot: would
a Lucene engine with ``index_mappings/products.v1.json`` and the
``multi_match`` of :mod:`search_rerank.backends.cluster_query` rank like the tantivy leg?

It reproduces, in numpy, for the ``multi_match`` ``best_fields`` query:

* Lucene's ``BM25Similarity``: ``idf = ln(1 + (docCount - df + 0.5) / (df + 0.5))``
  with ``docCount`` the documents that have the field, ``tf / (tf + k1 (1 - b + b dl / avgdl))``
  with ``dl`` read back from Lucene's one-byte length norm (``SmallFloat.intToByte4``)
  and ``avgdl = sumTotalTermFreq / docCount``;
* per field a boosted sum over the query's terms (duplicates count twice, as
  Lucene's ``QueryBuilder`` makes a clause per token), fields combined by
  ``dis_max`` with the tie breaker;
* the ``product_text`` analyzer: the standard tokenizer approximated by a
  regex (letters and digits, joined inside a word by ``.`` or ``'``, as UAX #29
  keeps ``3.5mm`` and ``don't`` whole), lowercase, tokens under 40 characters,
  Snowball English (Lucene's ``porter2``).

Ties by product id, as both real legs. No filters: evaluation does not use them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

import numpy as np
import tantivy

from search_rerank.core.candidate import Candidate
from search_rerank.core.product import Product
from search_rerank.core.retrieval import LEXICAL, leg_candidates
from search_rerank.core.settings import LexicalSettings

STANDARD_WORD = r"[^\W_]+(?:[.'’][^\W_]+)*"


def standard_analyzer() -> tantivy.TextAnalyzer:
    return (
        tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.regex(STANDARD_WORD))
        .filter(tantivy.Filter.lowercase())
        .filter(tantivy.Filter.remove_long(40))
        .filter(tantivy.Filter.stemmer("english"))
        .build()
    )


def _long_to_int4(i: int) -> int:
    bits = i.bit_length()
    if bits < 4:
        return i
    shift = bits - 4
    return ((i >> shift) & 0x07) | ((shift + 1) << 3)


def _int4_to_long(i: int) -> int:
    bits, shift = i & 0x07, (i >> 3) - 1
    return bits if shift == -1 else (bits | 0x08) << shift


_FREE = 255 - _long_to_int4(2**31 - 1)  # lengths below 24 are stored exactly


def lucene_length(length: int) -> int:
    """A field length as Lucene's BM25 reads it back from its one-byte norm."""
    if length < _FREE:
        return length
    return _FREE + _int4_to_long(_long_to_int4(length - _FREE))


class LuceneBM25Leg:
    """BM25 over the five text fields, scored as Lucene scores a ``multi_match`` ``best_fields`` query."""

    name = LEXICAL

    def __init__(self, products: Iterable[Product], settings: LexicalSettings):
        self.k1, self.b, self.tie = settings.k1, settings.b, settings.tie_breaker
        self.boosts = settings.searched_fields()
        self.analyzer = standard_analyzer()
        self.ids: list[str] = []
        texts: dict[str, list[str]] = {field: [] for field in self.boosts}
        for product in products:
            self.ids.append(product.id)
            fields = {
                "title": product.title,
                "brand": product.brand,
                "category": " ".join(product.category),
                "attributes": product.attribute_text(),
                "description": product.description,
            }
            for field in self.boosts:
                texts[field].append(fields[field])
        self.order = np.argsort(np.array(self.ids))  # ties by id: rank of each doc in id order
        self.id_rank = np.empty(len(self.ids), dtype=np.int64)
        self.id_rank[self.order] = np.arange(len(self.ids))
        self.fields = {field: self._index(values) for field, values in texts.items()}

    def _index(self, values: list[str]) -> dict:
        postings: dict[str, tuple[list[int], list[int]]] = {}
        lengths = np.zeros(len(values), dtype=np.float64)
        for doc, text in enumerate(values):
            tokens = self.analyzer.analyze(text) if text else []
            lengths[doc] = len(tokens)
            for term, tf in Counter(tokens).items():
                docs, tfs = postings.setdefault(term, ([], []))
                docs.append(doc)
                tfs.append(tf)
        doc_count = int((lengths > 0).sum())
        avgdl = lengths.sum() / max(doc_count, 1)
        decoded = np.array([lucene_length(int(n)) for n in lengths], dtype=np.float64)
        norms = self.k1 * (1 - self.b + self.b * decoded / avgdl)
        return {
            "postings": {t: (np.array(d), np.array(f, dtype=np.float64)) for t, (d, f) in postings.items()},
            "doc_count": doc_count,
            "norms": norms,
        }

    def warm_up(self) -> None:
        return None

    def count(self) -> int:
        return len(self.ids)

    def search(self, query: str, k: int, filters=None) -> list[Candidate]:
        if filters is not None and not filters.is_empty:
            raise NotImplementedError("the reference leg takes no filters")
        terms = self.analyzer.analyze(query)
        if not terms or k == 0:
            return []
        per_field = np.zeros((len(self.fields), len(self.ids)))
        for row, (field, index) in enumerate(self.fields.items()):
            for term in terms:
                posting = index["postings"].get(term)
                if posting is None:
                    continue
                docs, tfs = posting
                idf = np.log(1 + (index["doc_count"] - len(docs) + 0.5) / (len(docs) + 0.5))
                per_field[row, docs] += self.boosts[field] * idf * tfs / (tfs + index["norms"][docs])
        best = per_field.max(axis=0)
        scores = (best + self.tie * (per_field.sum(axis=0) - best)).astype(np.float32)
        matched = np.flatnonzero(scores > 0)
        top = matched[np.lexsort((self.id_rank[matched], -scores[matched]))][:k]
        return leg_candidates(LEXICAL, [(self.ids[i], float(scores[i])) for i in top])
