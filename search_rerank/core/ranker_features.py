"""The features the learned ranker (LambdaMART, see learned_rank) scores each candidate by.

Why these: on a title-only catalogue with sparse judgments, the legs' scores
alone leave most of the gap to a learned ranker; what a tree ensemble adds is
how the scores interact with cheap text evidence (does the title cover the
query, does the model number match, is the brand the one asked for) and with
what is missing (a product only one leg found). So every leg's score and rank
comes with a missing flag, and the text features are computed on the fly from
the product record, the same way in training and serving.

A query that names a product code ("dhp482", or "7466h" for "JD-7466H", the
number off a box without its brand prefix) names one product; the shopper's
next best are products like it. No per-product feature can say which those
are, since the query names no type, so the candidates whose code the query
names are the list's *anchors*, and every candidate gets its brand agreement
and its bi-encoder cosine with them. Without them the ranker learnt which
product types tend to answer code queries, which helps only on types it was
trained on (measured in docs/BENCHMARKS.md, "Code anchors").

``features`` is a pure function of (query, candidates, products, popularity,
per-field BM25, product vectors); the pipeline gathers those and passes them
in. A missing value is NaN, which LightGBM routes as missing rather than as a
number.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

from .candidate import Candidate
from .identifiers import UNITS
from .product import Product
from .retrieval import DENSE, LEXICAL

BM25_FIELDS = ("title", "brand", "category", "attributes", "description")
"""The per-field BM25 features, named ``bm25_<field>`` (the lexical leg's text fields)."""

FEATURES: tuple[str, ...] = (
    "lexical_score",
    "lexical_rank",
    "lexical_missing",
    "dense_score",
    "dense_rank",
    "dense_missing",
    "fused_score",
    "fused_rank",
    "rerank_probability",
    "rerank_missing",
    *(f"bm25_{field}" for field in BM25_FIELDS),
    "popularity",
    "query_terms",
    "query_chars",
    "title_coverage",
    "text_coverage",
    "title_terms",
    "phrase_in_title",
    "head_in_title",
    "title_trigram_coverage",
    "query_numbers",
    "number_match",
    "model_number_match",
    "model_number_prefix",
    "code_anchor_brand",
    "code_anchor_cosine",
    "brand_match",
    "category_match",
    "price",
    "log_price",
    "price_vs_median",
)
"""The feature order a model is trained on; its card records it, and serving refuses a model trained on another."""

MISSING = math.nan
_WORD = re.compile(r"[a-z0-9]+(?:[./-][a-z0-9]+)*")
_DIGIT = re.compile(r"\d")
_LETTER = re.compile(r"[a-z]")
_SEPARATOR = re.compile(r"[./-]")
HEAD_ENDS = frozenset({"for", "with", "without", "in", "on", "of", "to", "from", "by", "under"})
"""Words that end a query's noun phrase ("paint for deck", "faucet with sprayer"): its head is before them."""
_UNIT_WORDS = frozenset(UNITS)


@runtime_checkable
class FieldScorer(Protocol):
    """A lexical leg that can score given products field by field (the tantivy leg)."""

    def field_scores(self, query: str, product_ids: Sequence[str]) -> dict[str, dict[str, float]]: ...


def words(text: str) -> list[str]:
    """Lowercase words, keeping model numbers and decimals whole ("dw-735x", "2.5"), plurals folded ("drills")."""
    return [_fold(w) for w in _WORD.findall(text.lower())]


def _fold(word: str) -> str:
    if len(word) > 3 and word.endswith("s") and not word.endswith("ss") and not _has_digit(word):
        return word[:-1]
    return word


def _has_digit(word: str) -> bool:
    return _DIGIT.search(word) is not None


def _is_model_number(word: str) -> bool:
    """Letters and digits mixed ("dcd771", "xr-20"): a part number, where an exact match is strong evidence."""
    return _has_digit(word) and _LETTER.search(word) is not None


def _squash(word: str) -> str:
    return _SEPARATOR.sub("", word)


def query_head(query_words: Sequence[str]) -> str | None:
    """The word a query is about, its noun phrase's head: the last word of letters before a preposition that
    does not follow a number, leaving out units and words right after a number ("8 foot step ladder" and
    "ladder 8 ft" give "ladder", "paint brush for trim" "brush"); ``None`` for a query without one ("dw745").

    Why: English puts the head last, and a shop's queries are noun phrases whose head is the product type. A
    title that lacks the head but covers the other words ("paint" for "paint brush") is the classic wrong
    answer that word coverage alone scores as nearly right; on real hardware search logs, whether the query's
    last word is in the title was among the strongest hand-made features."""
    head = None
    previous = ""
    for word in query_words:
        after_number = _has_digit(previous)
        if word in HEAD_ENDS and head is not None and not after_number:
            break
        if word.isalpha() and len(word) > 1 and word not in _UNIT_WORDS and not after_number:
            head = word
        previous = word
    return head


def trigrams(text_words: Sequence[str]) -> frozenset[str]:
    """The letter trigrams of ``text_words`` run together ("deck over" and "deckover" share all but one).

    Why: a word the title writes otherwise, misspelt ("delux"), run together ("deckover") or cut ("dish
    washer"), counts as missing for word coverage, though the lexical leg found the product by correcting or
    joining it; the trigrams the two share say how close the title's wording is to the query's."""
    joined = "".join(text_words)
    return frozenset(joined[i : i + 3] for i in range(len(joined) - 2))


def query_codes(query: str) -> set[str]:
    """The product codes a query names, squashed ("DW-735X" and "dw735x" alike): what makes code anchors."""
    return {_squash(w) for w in words(query) if _is_model_number(w)}


def names_every_code(models: AbstractSet[str], product: Product) -> bool:
    """Whether ``product`` writes every code of ``models`` (a query's :func:`query_codes`), as its
    ``model_number_match`` of 1 says: the product the query names, a code anchor."""
    own = product_terms(product.title, product.brand, product.category, product.attribute_text())
    return bool(models) and all(m in own.codes for m in models)


def _product_codes(text_words: AbstractSet[str]) -> set[str]:
    """A product's squashed codes (and numbers), each with the parts between its separators that are codes
    themselves: "jd-7466h" gives "jd7466h" and "7466h", which is what a shopper copies off the box."""
    codes = set()
    for word in text_words:
        if _has_digit(word):
            codes.add(_squash(word))
            codes.update(p for p in _SEPARATOR.split(word) if len(p) >= 4 and _is_model_number(p))
    return codes


def _coverage(terms: Sequence[str], found: AbstractSet[str]) -> float:
    return sum(t in found for t in terms) / len(terms) if terms else 0.0


def features(
    query: str,
    candidates: Sequence[Candidate],
    products: Mapping[str, Product],
    popularity: Mapping[str, float],
    field_scores: Mapping[str, Mapping[str, float]] | None = None,
    vectors: Mapping[str, np.ndarray] | None = None,
) -> np.ndarray:
    """One row of ``FEATURES`` per candidate, in the candidates' order (float64, NaN where unknown).

    ``candidates`` are the list the ranker reorders (fused, possibly reranked),
    so ``fused_rank`` is the position in it. ``field_scores``: per field, the
    BM25 of each product against the query (absent: NaN features). ``vectors``:
    the products' unit bi-encoder vectors, needed only when the query names a
    code (``query_codes``); without them the anchor cosine is NaN.
    """
    query_words = words(query)
    terms = list(dict.fromkeys(query_words))
    numbers = [t for t in terms if _has_digit(t)]
    models = query_codes(query)
    phrase = " ".join(query_words)
    head = query_head(query_words)
    query_trigrams = trigrams(query_words)
    prices = [p.price for p in products.values() if p.price is not None]
    median_price = float(np.median(prices)) if prices else MISSING
    index = {name: i for i, name in enumerate(FEATURES)}
    out = np.full((len(candidates), len(FEATURES)), MISSING, dtype=np.float64)
    for row, candidate in enumerate(candidates):
        values = out[row]
        f = candidate.features
        for leg in (LEXICAL, DENSE):
            missing = leg not in candidate.legs
            values[index[f"{leg}_missing"]] = float(missing)
            if not missing:
                values[index[f"{leg}_score"]] = f.get(f"{leg}_score", MISSING)
                values[index[f"{leg}_rank"]] = f.get(f"{leg}_rank", MISSING)
        values[index["fused_score"]] = f.get("fused", MISSING)
        values[index["fused_rank"]] = row + 1
        values[index["rerank_missing"]] = float("rerank" not in f)
        values[index["rerank_probability"]] = f.get("rerank", MISSING)
        for field in BM25_FIELDS:
            if field_scores is not None:
                values[index[f"bm25_{field}"]] = field_scores.get(field, {}).get(candidate.product_id, 0.0)
        values[index["popularity"]] = popularity.get(candidate.product_id, MISSING)
        values[index["query_terms"]] = len(terms)
        values[index["query_chars"]] = len(query.strip())
        values[index["query_numbers"]] = len(numbers)
        product = products.get(candidate.product_id)
        if product is None:
            continue
        _text_features(values, index, product, terms, numbers, models, phrase, head, query_trigrams)
        if product.price is not None:
            values[index["price"]] = product.price
            values[index["log_price"]] = math.log1p(product.price)
            if median_price > 0:
                values[index["price_vs_median"]] = product.price / median_price
    _code_anchor_features(out, index, candidates, products, vectors or {})
    return out


def _code_anchor_features(
    out: np.ndarray,
    index: Mapping[str, int],
    candidates: Sequence[Candidate],
    products: Mapping[str, Product],
    vectors: Mapping[str, np.ndarray],
) -> None:
    """Brand agreement and bi-encoder cosine with the anchors (candidates whose code the query names in full,
    ``model_number_match`` 1); left NaN when the list has none, as for any query without a code."""
    anchors = [
        c.product_id
        for row, c in enumerate(candidates)
        if out[row, index["model_number_match"]] == 1.0 and c.product_id in products
    ]
    if not anchors:
        return
    brands = {products[a].brand.casefold() for a in anchors if products[a].brand}
    anchor_vectors = [vectors[a] for a in anchors if a in vectors]
    for row, candidate in enumerate(candidates):
        product = products.get(candidate.product_id)
        if product is not None:
            out[row, index["code_anchor_brand"]] = float(bool(product.brand) and product.brand.casefold() in brands)
        vector = vectors.get(candidate.product_id)
        if vector is not None and anchor_vectors:
            out[row, index["code_anchor_cosine"]] = float(max(np.dot(vector, a) for a in anchor_vectors))


@dataclass(frozen=True)
class ProductTerms:
    """What the text features read from a product, whatever the query: its words, word sets and codes."""

    title: tuple[str, ...]
    title_text: str
    """The title's words joined and padded with spaces, for the whole-phrase test."""
    title_set: frozenset[str]
    brand: tuple[str, ...]
    text_set: frozenset[str]
    codes: frozenset[str]
    leaf: tuple[str, ...]
    """The words of the category's last level: the product type."""
    trigrams: frozenset[str]
    """The title's letter trigrams (see :func:`trigrams`)."""


@lru_cache(maxsize=16384)
def product_terms(title: str, brand: str, category: tuple[str, ...], attribute_text: str) -> ProductTerms:
    """A product's :class:`ProductTerms`, worked out once per distinct product text.

    Cached because the same products come back query after query, and trial
    after trial when ``tune`` ranks its dev lists with the learned ranker in
    place: worked out per candidate, this was half of the features' cost.
    Keyed by the texts, not the product id, so an edited product is worked
    out again.
    """
    title_words = tuple(words(title))
    title_set = frozenset(title_words)
    brand_words = tuple(words(brand))
    text_set = title_set.union(brand_words, words(" ".join(category)), words(attribute_text))
    return ProductTerms(
        title=title_words,
        title_text=f" {' '.join(title_words)} ",
        title_set=title_set,
        brand=brand_words,
        text_set=text_set,
        codes=frozenset(_product_codes(text_set)),
        leaf=tuple(words(category[-1])) if category else (),
        trigrams=trigrams(title_words),
    )


def _text_features(
    values: np.ndarray,
    index: Mapping[str, int],
    product: Product,
    terms: Sequence[str],
    numbers: Sequence[str],
    models: set[str],
    phrase: str,
    head: str | None,
    query_trigrams: frozenset[str],
) -> None:
    own = product_terms(product.title, product.brand, product.category, product.attribute_text())
    values[index["title_coverage"]] = _coverage(terms, own.title_set)
    values[index["text_coverage"]] = _coverage(terms, own.text_set)
    values[index["title_terms"]] = len(own.title)
    values[index["phrase_in_title"]] = float(bool(phrase) and f" {phrase} " in own.title_text)
    values[index["head_in_title"]] = MISSING if head is None else float(head in own.title_set)
    if query_trigrams:
        values[index["title_trigram_coverage"]] = len(query_trigrams & own.trigrams) / len(query_trigrams)
    values[index["number_match"]] = _coverage(numbers, own.text_set) if numbers else MISSING
    if models:
        values[index["model_number_match"]] = sum(m in own.codes for m in models) / len(models)
        values[index["model_number_prefix"]] = sum(any(s.startswith(m) for s in own.codes) for m in models) / len(
            models
        )
    query_set = set(terms)
    values[index["brand_match"]] = float(bool(own.brand) and all(w in query_set for w in own.brand))
    values[index["category_match"]] = _coverage(own.leaf, query_set) if own.leaf else MISSING
