"""Elasticsearch's term and phrase suggesters ("did you mean") on the embedded index, from its own terms.

A shop's platform asks for its "did you mean" this way: Magento 2.4's Elasticsearch adapter sends a phrase
suggester on each searchable text field (``analyzer: standard``, ``max_errors: 1``, a ``direct_generator`` with
``min_word_length: 3``), Shopware, Sylius and custom front ends a term suggester; a 501 failed the whole search.

Candidates are the index terms near each word of the text, found by the walk of the term dictionary that corrects
a typed word in a search (:func:`~search_rerank.backends.spelling.near_terms`), under Elasticsearch's rules and
defaults: ``suggest_mode`` (``missing``: only words no product holds), ``max_edits`` (2), ``prefix_length`` (1),
``min_word_length`` (4), ``min_doc_freq`` (0), ``max_term_freq`` (0.01 of the products: a word that common is
taken as spelt right), ``accuracy`` (0.5), each scored as Lucene's spell checker scores one (``1 - edits / the
shorter length``) and sorted by ``score`` or ``frequency``.

The words shown are words, not stems. The embedded index holds stems ("furnitur", "batteri"); Elasticsearch's
term suggester on a stemmed field answers them, which is why its guides suggest from an unstemmed field, and a
shopper reads the suggestion. So a suggested stem is shown as the catalogue writes it: of the words that stem to
it in the field of the first :data:`SURFACE_SAMPLE` products holding it, the one closest to the typed word (so
"chiars" suggests "chairs", "chiar" "chair"), then the most written; the typed words are shown as typed, lower
case. That is the answer Elasticsearch gives on the unstemmed, lower-cased field a shop makes for suggestions.
Which stems are suggested, their scores and ``freq`` are the index's (products holding any form of the word).

The phrase suggester is Elasticsearch's noisy channel model: each word is kept (its channel score
``real_word_error_likelihood``, 0.95) or replaced by one of its candidates (its channel score the candidate's
similarity), at most ``max_errors`` words replaced (1: one word; below 1, that fraction of the words), a phrase
scored as Elasticsearch scores it (``exp`` of the sum of ``log10(channel × P(word))``), only those scoring above
``confidence`` (1.0) times the typed phrase's score kept, the best ``size`` answered, the replaced words between
``highlight`` tags. Differences from Lucene (docs/COMPATIBILITY.md): the language model is unigrams (the index
holds no shingles: ``gram_size`` is read and scored as 1, as Elasticsearch scores a field without them), over
document counts and the number of products (as Elasticsearch does on a field that keeps no term frequencies);
``prefix_length: 0`` reads as 1 (a typo in the first letter is not corrected): a walk of a field's whole term
dictionary takes 14-30 ms per word on 20,000 products, and grows with the catalogue.

What a body may ask for is bounded before any work: its words looked up (each word of each suggester's text in
each field it draws from) by ``service.max_suggest_words``, a text by ``service.max_query_length``, the options
and candidates per word by :data:`MAX_SIZE`, a phrase's words by its ``token_limit`` (10; a longer phrase gets no
corrections, as in Elasticsearch) up to :data:`MAX_PHRASE_WORDS`.
"""

from __future__ import annotations

import heapq
import math
import sys
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import OSA

from ..backends.spelling import NearTerm, near_terms
from ..backends.tantivy_index import TantivyRetriever
from ..core.settings import LEXICAL_FIELDS, ServiceSettings
from ..core.store import ProductStore
from .body_checks import (
    InvalidQuery,
    Unsupported,
    a_boolean,
    a_count,
    a_number,
    a_string,
    an_object,
    known_keys,
    one_of,
)
from .es_compat import typed_key
from .field_aliases import alias_of

MAX_SIZE = 20
"""The most options (``size``, ``shard_size``) or candidates per word (a generator's ``size``) one suggester may
ask for (Elasticsearch's default is 5): each option's word is read from the products that hold it."""
MAX_PHRASE_WORDS = 16
"""The largest ``token_limit`` a phrase suggester may set (Elasticsearch's default is 10): the phrases scored grow
with its words, their candidates and ``max_errors`` together."""
SURFACE_SAMPLE = 8
"""Products read for the words a suggested stem is written as (see the module docstring)."""
SURFACE_PRODUCTS = 256
"""The most products one request reads for the words its suggestions are written as, but one per stem: each is
read from the product store and cut into words (some 200 µs with a description)."""
MAX_EDITS_WALKED = 2
"""Lucene's spell checker corrects at most two edits; a walk keeps every term within them once per request."""
MAX_LOG = math.log(sys.float_info.max)
"""The largest number whose ``exp`` is a double (709.78)."""
MIN_DOUBLE = 5e-324
"""Java's ``Double.MIN_VALUE``: Elasticsearch's cutoff when ``confidence`` is 0 (every phrase scoring above 0)."""

SUGGESTER_KEYS = ("text", "prefix", "regex", "term", "phrase")
COMMON_KEYS = ("field", "analyzer", "size", "shard_size")
GENERATOR_KEYS = (
    *("suggest_mode", "accuracy", "sort", "string_distance", "max_edits", "max_inspections", "max_term_freq"),
    *("prefix_length", "min_word_length", "min_doc_freq"),
)
PHRASE_KEYS = (
    *COMMON_KEYS,
    *("max_errors", "real_word_error_likelihood", "separator", "confidence", "gram_size", "force_unigrams"),
    *("token_limit", "highlight", "collate", "smoothing", "direct_generator"),
)
STRING_DISTANCES = ("internal", "damerau_levenshtein", "levenshtein", "jaro_winkler", "ngram")
ANALYZERS = (None, "standard")
"""``standard`` (Magento sends it) cuts words as the index does, and the words shown are unstemmed, lower case."""


@dataclass(frozen=True)
class Generator:
    """Where and how a word's candidates are drawn: a term suggester's options, a phrase's ``direct_generator``
    (Elasticsearch's defaults applied where the body leaves them out, see :func:`parse_corrections`)."""

    field: str
    size: int
    suggest_mode: str
    max_edits: int
    prefix_length: int
    min_word_length: int
    min_doc_freq: float
    max_term_freq: float
    accuracy: float
    sort: str


@dataclass(frozen=True)
class TermSuggester:
    name: str
    text: str
    generator: Generator


@dataclass(frozen=True)
class PhraseSuggester:
    name: str
    text: str
    field: str
    generators: tuple[Generator, ...]
    size: int
    shard_size: int
    max_errors: float
    confidence: float
    real_word_error_likelihood: float
    token_limit: int
    laplace_alpha: float | None
    """The ``laplace`` smoothing's ``alpha``; None: the unigram ``stupid_backoff`` and ``linear_interpolation``
    score."""
    pre_tag: str | None
    post_tag: str | None


Suggester = TermSuggester | PhraseSuggester


def parse_corrections(
    suggesters: Mapping[str, Any], aliases: Mapping[str, str], limits: ServiceSettings
) -> list[Suggester]:
    """The term and phrase suggesters of a body's ``suggest`` (``text``: the text they share), checked: each bad
    value a 400 naming its path, what the embedded index cannot answer a 501 naming it."""
    shared = suggesters.get("text")
    out: list[Suggester] = []
    for name, spec in suggesters.items():
        if name == "text":
            continue
        where = f"suggest.{name}"
        known_keys(spec, where, SUGGESTER_KEYS)
        if "regex" in spec:
            raise Unsupported(f"{where}.regex", "a regex in a term or phrase suggester")
        raw = spec.get("text", spec.get("prefix", shared))
        if raw is None:
            raise InvalidQuery(f"{where}.text", "the required text option is missing", "illegal_argument_exception")
        text = a_string(raw, f"{where}.text", scalars=True)
        if len(text) > limits.max_query_length:
            raise InvalidQuery(
                f"{where}.text", f"the suggest text must be at most {limits.max_query_length} characters"
            )
        if "term" in spec:
            options = an_object(spec["term"], f"{where}.term")
            known_keys(options, f"{where}.term", (*COMMON_KEYS, *GENERATOR_KEYS))
            _analyzer_checked(options, f"{where}.term")
            if "shard_size" in options:  # checked only: the one index is one shard, its options answered whole
                a_count(options["shard_size"], f"{where}.term.shard_size", minimum=1)
            out.append(TermSuggester(name, text, _generator(options, f"{where}.term", aliases)))
        else:
            out.append(_phrase(name, text, an_object(spec["phrase"], f"{where}.phrase"), aliases))
    return out


def words_looked_up(suggesters: Sequence[Suggester], leg: TantivyRetriever, limits: ServiceSettings) -> None:
    """A 400 naming the first suggester past ``service.max_suggest_words`` words looked up in all (each word of
    its text in each field it draws from; a phrase past its ``token_limit`` draws none): each is a walk of the
    field's term dictionary and a read of the products its candidates are written in."""
    looked_up = 0
    for suggester in suggesters:
        words = len(leg.analyze(suggester.text))
        if isinstance(suggester, TermSuggester):
            looked_up += words
        elif words < suggester.token_limit:
            looked_up += words * len(suggester.generators)
        if looked_up > limits.max_suggest_words:
            raise InvalidQuery(
                f"suggest.{suggester.name}",
                f"the body's term and phrase suggesters look up more than service.max_suggest_words "
                f"({limits.max_suggest_words}) words (each word of a suggester's text in each field it draws from)",
            )


def _analyzer_checked(options: Mapping[str, Any], where: str) -> None:
    analyzer = options.get("analyzer")
    if analyzer not in ANALYZERS:
        raise Unsupported(f"{where}.analyzer", f"the analyzer {analyzer!r} (the field's own, or standard)")


def suggester_field(options: Mapping[str, Any], where: str, aliases: Mapping[str, str]) -> str:
    """A suggester's (or a candidate generator's) ``field``: one of the text fields, by its name or a front end's
    alias of it; the cluster backend's suggesters read theirs so too (serving/delegation)."""
    if options.get("field") is None:
        raise InvalidQuery(f"{where}.field", "the required field option is missing", "illegal_argument_exception")
    named = a_string(options["field"], f"{where}.field")
    field = alias_of(named, aliases)
    if field not in LEXICAL_FIELDS:
        raise Unsupported(
            f"{where}.field",
            f"suggestions from {named!r} (the product's text fields: {', '.join(LEXICAL_FIELDS)}; "
            "service.field_aliases maps other names onto them)",
        )
    return field


def _size(options: Mapping[str, Any], key: str, where: str, default: int) -> int:
    size = a_count(options.get(key, default), f"{where}.{key}", minimum=1)
    if size > MAX_SIZE:
        raise InvalidQuery(f"{where}.{key}", f"expected a whole number from 1 to {MAX_SIZE}")
    return size


def _enum(value: Any, choices: Sequence[str], where: str) -> str:
    """One of ``choices`` in any case: Elasticsearch reads a suggest mode, a sort and a string distance as an
    enumeration's upper-cased name."""
    return one_of(a_string(value, where).lower(), choices, where)


def _generator(options: Mapping[str, Any], where: str, aliases: Mapping[str, str]) -> Generator:
    """A term suggester's options, or a phrase's ``direct_generator``: Elasticsearch's defaults where left out."""
    distance = _enum(options.get("string_distance", "internal"), STRING_DISTANCES, f"{where}.string_distance")
    if distance != "internal":
        raise Unsupported(f"{where}.string_distance", f"string_distance {distance} (internal is answered)")
    if "max_inspections" in options:
        a_count(options["max_inspections"], f"{where}.max_inspections", minimum=1)
    max_edits = a_count(options.get("max_edits", 2), f"{where}.max_edits", minimum=1)
    if max_edits > MAX_EDITS_WALKED:
        raise InvalidQuery(f"{where}.max_edits", "expected 1 or 2", "illegal_argument_exception")
    fractions = {
        key: a_number(options.get(key, default), f"{where}.{key}")
        for key, default in (("min_doc_freq", 0.0), ("max_term_freq", 0.01), ("accuracy", 0.5))
    }
    for key in ("min_doc_freq", "max_term_freq"):
        if fractions[key] < 0:
            raise InvalidQuery(f"{where}.{key}", "expected a number of at least 0", "illegal_argument_exception")
    return Generator(
        field=suggester_field(options, where, aliases),
        size=_size(options, "size", where, 5),
        suggest_mode=_enum(
            options.get("suggest_mode", "missing"), ("missing", "popular", "always"), f"{where}.suggest_mode"
        ),
        max_edits=max_edits,
        prefix_length=a_count(options.get("prefix_length", 1), f"{where}.prefix_length"),
        min_word_length=a_count(options.get("min_word_length", 4), f"{where}.min_word_length", minimum=1),
        min_doc_freq=fractions["min_doc_freq"],
        max_term_freq=fractions["max_term_freq"],
        accuracy=fractions["accuracy"],
        sort=_enum(options.get("sort", "score"), ("score", "frequency"), f"{where}.sort"),
    )


def _phrase(name: str, text: str, options: Mapping[str, Any], aliases: Mapping[str, str]) -> PhraseSuggester:
    where = f"suggest.{name}.phrase"
    known_keys(options, where, PHRASE_KEYS)
    _analyzer_checked(options, where)
    if "collate" in options:
        raise Unsupported(f"{where}.collate", "collate (a template query run for each suggestion)")
    field = suggester_field(options, where, aliases)
    size = _size(options, "size", where, 5)
    shard_size = _size(options, "shard_size", where, max(size, 5))
    numbers = {
        key: a_number(options.get(key, default), f"{where}.{key}")
        for key, default in (("max_errors", 1.0), ("confidence", 1.0), ("real_word_error_likelihood", 0.95))
    }
    for key, low, strict in (
        ("max_errors", 0, True),
        ("confidence", 0, False),
        ("real_word_error_likelihood", 0, True),
    ):
        if numbers[key] < low or (strict and numbers[key] == low):
            relation = "above" if strict else "at least"
            raise InvalidQuery(f"{where}.{key}", f"expected a number {relation} {low}", "illegal_argument_exception")
    a_count(options.get("gram_size", 1), f"{where}.gram_size", minimum=1)
    a_boolean(options.get("force_unigrams", True), f"{where}.force_unigrams")
    a_string(options.get("separator", " "), f"{where}.separator")
    token_limit = a_count(options.get("token_limit", 10), f"{where}.token_limit", minimum=1)
    if token_limit > MAX_PHRASE_WORDS:
        raise InvalidQuery(f"{where}.token_limit", f"expected a whole number from 1 to {MAX_PHRASE_WORDS}")
    pre_tag = post_tag = None
    if options.get("highlight") is not None:
        highlight = an_object(options["highlight"], f"{where}.highlight")
        known_keys(highlight, f"{where}.highlight", ("pre_tag", "post_tag"))
        pre_tag, post_tag = (highlight.get(k) for k in ("pre_tag", "post_tag"))
        if (pre_tag is None) != (post_tag is None):
            raise InvalidQuery(f"{where}.highlight", "pre and post tag must both be null or both not be null")
        if pre_tag is not None:
            pre_tag = a_string(pre_tag, f"{where}.highlight.pre_tag")
            post_tag = a_string(post_tag, f"{where}.highlight.post_tag")
    raw_generators = options.get("direct_generator", [{"field": options.get("field")}])
    if not isinstance(raw_generators, list) or not raw_generators:
        raise InvalidQuery(f"{where}.direct_generator", "expected a list of candidate generators")
    generators = []
    for i, raw in enumerate(raw_generators):
        at = f"{where}.direct_generator[{i}]"
        spec = an_object(raw, at)
        known_keys(spec, at, ("field", "size", "pre_filter", "post_filter", *GENERATOR_KEYS))
        for unsupported in ("pre_filter", "post_filter"):
            if unsupported in spec:
                raise Unsupported(f"{at}.{unsupported}", f"a candidate generator's {unsupported} (an analyzer)")
        generators.append(_generator(spec, at, aliases))
    return PhraseSuggester(
        name=name,
        text=text,
        field=field,
        generators=tuple(generators),
        size=size,
        shard_size=shard_size,
        max_errors=numbers["max_errors"],
        confidence=numbers["confidence"],
        real_word_error_likelihood=numbers["real_word_error_likelihood"],
        token_limit=token_limit,
        laplace_alpha=_laplace_alpha(options.get("smoothing"), f"{where}.smoothing"),
        pre_tag=pre_tag,
        post_tag=post_tag,
    )


def _laplace_alpha(smoothing: Any, where: str) -> float | None:
    """The ``smoothing`` model, checked: ``laplace``'s ``alpha`` (0.5), or None for the two whose unigram is
    Elasticsearch's plain one (``stupid_backoff``, its default, and ``linear_interpolation``)."""
    if smoothing is None:
        return None
    model, spec = next(iter(an_object(smoothing, where).items()), (None, None))
    if len(smoothing) != 1:
        raise InvalidQuery(where, "expected one smoothing model")
    model = one_of(model, ("stupid_backoff", "laplace", "linear_interpolation"), where)
    at = f"{where}.{model}"
    spec = an_object(spec, at)
    if model == "stupid_backoff":
        known_keys(spec, at, ("discount",))
        a_number(spec.get("discount", 0.4), f"{at}.discount")
        return None
    if model == "laplace":
        known_keys(spec, at, ("alpha",))
        return a_number(spec.get("alpha", 0.5), f"{at}.alpha")
    lambdas = ("trigram_lambda", "bigram_lambda", "unigram_lambda")
    known_keys(spec, at, lambdas)
    for key in lambdas:
        if key not in spec:
            raise InvalidQuery(f"{at}.{key}", "required")
    if not math.isclose(sum(a_number(spec[key], f"{at}.{key}") for key in lambdas), 1.0, abs_tol=0.001):
        raise InvalidQuery(at, "linear smoothing lambdas must sum to 1", "illegal_argument_exception")
    return None


# ------------------------------------------------------------------ answering


def utf16_length(text: str) -> int:
    """``text``'s length as Elasticsearch counts an offset or a length: Java's UTF-16 code units (an emoji is 2)."""
    return len(text.encode("utf-16-le")) // 2


@dataclass(frozen=True)
class Word:
    """One word of a suggester's text: as typed (lower case), where it was, and the index term it is."""

    typed: str
    start: int
    end: int
    term: str


class Lookups:
    """What one request reads from the index and the product store, each once: the terms near a word, a term's
    products, the word a stem is written as."""

    def __init__(self, leg: TantivyRetriever, store: ProductStore):
        self.leg = leg
        self.store = store
        self.searcher = leg.searcher()
        self.products = max(self.searcher.num_docs, 1)
        self._near: dict[tuple[str, str, int], list[NearTerm]] = {}
        self._freq: dict[tuple[str, str], int] = {}
        self._forms: dict[tuple[str, str], Counter[str]] = {}

    def words(self, text: str) -> list[Word]:
        tokens = self.leg.typed_tokens(text)
        terms = self.leg.analyze(text)
        return [
            Word(t.text, utf16_length(text[: t.char_offset_from]), utf16_length(text[: t.char_offset_to]), term)
            for t, term in zip(tokens, terms, strict=True)
        ]

    def freq(self, field: str, term: str) -> int:
        key = (field, term)
        if key not in self._freq:
            self._freq[key] = self.searcher.doc_freq(field, term)
        return self._freq[key]

    def near(self, field: str, term: str, first_letters: int) -> list[NearTerm]:
        key = (field, term, first_letters)
        if key not in self._near:
            self._near[key] = near_terms(term, self.searcher, (field,), MAX_EDITS_WALKED, first_letters)
        return self._near[key]

    def read_forms(self, field: str, stems: Iterable[str]) -> None:
        """Read the words ``stems`` are written as in ``field``, all at once: from each stem's first products
        (:data:`SURFACE_SAMPLE`, fewer when that would pass :data:`SURFACE_PRODUCTS`, never none), each product
        read and cut into words once."""
        wanted = [stem for stem in dict.fromkeys(stems) if (field, stem) not in self._forms]
        if not wanted:
            return
        sample = max(1, min(SURFACE_SAMPLE, SURFACE_PRODUCTS // len(wanted)))
        ids = dict.fromkeys(pid for stem in wanted for pid in self.leg.holders(field, stem, sample))
        counts: dict[str, Counter[str]] = {stem: Counter() for stem in wanted}
        for product in self.store.get(list(ids)).values():
            text = product.field_texts()[field]
            typed = [token.text for token in self.leg.typed_tokens(text)]
            for word, term in zip(typed, self.leg.analyze(text), strict=True):
                if term in counts:
                    counts[term][word] += 1
        self._forms.update(((field, stem), found) for stem, found in counts.items())

    def written(self, field: str, stem: str, typed: str) -> str:
        """The word the catalogue writes ``stem`` as in ``field``, the closest to ``typed`` (module docstring)."""
        self.read_forms(field, [stem])
        forms = self._forms[(field, stem)]
        ranked = sorted(forms, key=lambda w: (OSA.distance(typed, w), -forms[w], w))
        return ranked[0] if ranked else stem


@dataclass(frozen=True)
class Candidate:
    term: str
    score: float
    """Lucene's spell checker's: ``1 - edits / the shorter length``."""
    freq: int


def candidates(word: Word, generator: Generator, lookups: Lookups) -> list[Candidate]:
    """The index terms ``generator`` suggests for ``word``, best first, at most its ``size`` (Lucene's
    ``DirectSpellChecker.suggestSimilar`` with Elasticsearch's options)."""
    if len(word.typed) < generator.min_word_length:
        return []
    field = generator.field
    freq = lookups.freq(field, word.term)
    if generator.suggest_mode == "missing" and freq > 0:
        return []
    most = generator.max_term_freq
    if freq > (most if most >= 1 else math.ceil(most * lookups.products)):
        return []
    least = generator.min_doc_freq if generator.min_doc_freq >= 1 else int(generator.min_doc_freq * lookups.products)
    if generator.suggest_mode == "popular":
        least = max(least, freq + 1)
    found = []
    for near in lookups.near(field, word.term, max(generator.prefix_length, 1)):
        score = near.similarity(word.term)
        if near.edits <= generator.max_edits and near.doc_freq >= least and score >= generator.accuracy:
            found.append(Candidate(near.term, score, near.doc_freq))
    if generator.sort == "score":
        found.sort(key=lambda c: (-c.score, -c.freq, c.term))
    else:
        found.sort(key=lambda c: (-c.freq, -c.score, c.term))
    return found[: generator.size]


def term_suggestions(suggester: TermSuggester, lookups: Lookups) -> list[dict[str, Any]]:
    """Elasticsearch's term suggestion: an entry per word of the text, each with its options."""
    field = suggester.generator.field
    words = lookups.words(suggester.text)
    found = [candidates(word, suggester.generator, lookups) for word in words]
    lookups.read_forms(field, (c.term for options in found for c in options))
    entries = []
    for word, options in zip(words, found, strict=True):
        entries.append(
            {
                "text": word.typed,
                "offset": word.start,
                "length": word.end - word.start,
                "options": [
                    {"text": lookups.written(field, c.term, word.typed), "score": c.score, "freq": c.freq}
                    for c in options
                ],
            }
        )
    return entries


@dataclass(frozen=True)
class Choice:
    """A word of a phrase, kept as typed (``term`` None) or replaced by a candidate term, with the log10 of its
    channel score times its probability."""

    term: str | None
    log: float


def phrase_suggestions(suggester: PhraseSuggester, lookups: Lookups) -> list[dict[str, Any]]:
    """Elasticsearch's phrase suggestion: one entry for the whole text, its options the corrected phrases."""
    text = suggester.text
    entry: dict[str, Any] = {"text": text, "offset": 0, "length": utf16_length(text), "options": []}
    words = lookups.words(text)
    if not words or len(words) >= suggester.token_limit:
        return [entry]
    choices = [_choices(word, suggester, lookups) for word in words]
    typed_score = phrase_score(sum(options[0].log for options in choices))
    cutoff = typed_score * suggester.confidence if suggester.confidence > 0 else MIN_DOUBLE
    errors = suggester.max_errors
    most = int(errors) if errors >= 1 else math.floor(errors * len(words) + 0.5)
    phrases = best_phrases(choices, max(1, most), suggester.shard_size)
    kept = sorted(
        ((phrase_score(log), path) for log, path in phrases if phrase_score(log) > cutoff),
        key=lambda found: (-found[0], found[1]),
    )[: suggester.size]
    replaced = (choices[i][j].term for _, path in kept for i, j in enumerate(path))
    lookups.read_forms(suggester.field, (term for term in replaced if term is not None))
    for score, path in kept:
        shown = [_shown(word, choices[i][j], suggester.field, lookups) for i, (word, j) in enumerate(zip(words, path))]
        option: dict[str, Any] = {"text": " ".join(shown)}
        if suggester.pre_tag is not None:
            option["highlighted"] = _highlighted(
                shown, [j > 0 for j in path], suggester.pre_tag, suggester.post_tag or ""
            )
        option["score"] = score
        entry["options"].append(option)
    return [entry]


def phrase_score(log: float) -> float:
    """Elasticsearch's score of a phrase, ``exp`` of its summed log10s, at most the largest double: neither
    ``real_word_error_likelihood`` nor laplace's ``alpha`` is bounded above, and their logs summed past 709 made
    Python's ``exp`` raise (Java's gives infinity, which JSON cannot carry)."""
    return math.exp(min(log, MAX_LOG))


def _shown(word: Word, choice: Choice, field: str, lookups: Lookups) -> str:
    return word.typed if choice.term is None else lookups.written(field, choice.term, word.typed)


def _choices(word: Word, suggester: PhraseSuggester, lookups: Lookups) -> list[Choice]:
    """The word as typed, then its candidates from every generator (each once, Elasticsearch's strongest first,
    at most ``shard_size``), each with its log score."""
    field = suggester.field
    drawn: dict[str, tuple[float, float]] = {}
    for generator in suggester.generators:
        for c in candidates(word, generator, lookups):
            strength = c.score * (c.freq + 1) / (lookups.products + 1)
            if c.term not in drawn or drawn[c.term][0] < strength:
                drawn[c.term] = (strength, c.score)
    best = sorted(drawn.items(), key=lambda item: (-item[1][0], item[0]))[: suggester.shard_size]

    def log(term: str, channel: float) -> float:
        freq = lookups.freq(field, term)
        alpha = suggester.laplace_alpha
        probability = (1 + freq) / lookups.products if alpha is None else (alpha + freq) / lookups.products
        return math.log10(channel * probability) if channel * probability > 0 else -math.inf

    typed = Choice(None, log(word.term, suggester.real_word_error_likelihood))
    return [typed, *(Choice(term, log(term, score)) for term, (_, score) in best)]


def best_phrases(choices: list[list[Choice]], most_errors: int, keep: int) -> list[tuple[float, tuple[int, ...]]]:
    """The ``keep`` best phrases (log score, the choice taken at each word) with at most ``most_errors`` words
    replaced. A word's score does not depend on its neighbours (a unigram model), so the best phrases with ``e``
    words replaced extend the best beginnings with ``e`` or ``e - 1``: kept per count of replaced words, the work
    is words × errors × ``keep`` × candidates, where trying every phrase (Elasticsearch's walk) grows as
    candidates to the power of the errors."""
    beginnings: dict[int, list[tuple[float, tuple[int, ...]]]] = {0: [(0.0, ())]}
    for options in choices:
        grown: dict[int, list[tuple[float, tuple[int, ...]]]] = {}
        for replaced, paths in beginnings.items():
            for log, path in paths:
                grown.setdefault(replaced, []).append((log + options[0].log, (*path, 0)))
                if replaced < most_errors:
                    for j in range(1, len(options)):
                        grown.setdefault(replaced + 1, []).append((log + options[j].log, (*path, j)))
        beginnings = {e: heapq.nlargest(keep, paths, key=_rank) for e, paths in grown.items()}
    return heapq.nlargest(keep, [p for paths in beginnings.values() for p in paths], key=_rank)


def _rank(found: tuple[float, tuple[int, ...]]) -> tuple[float, tuple[int, ...]]:
    log, path = found
    return log, tuple(-j for j in path)


def _highlighted(words: list[str], replaced: list[bool], pre: str, post: str) -> str:
    """The phrase with each run of replaced words between the tags, as Elasticsearch's ``Correction.join``."""
    out = []
    for i, (word, changed) in enumerate(zip(words, replaced, strict=True)):
        if changed:
            opened = i == 0 or not replaced[i - 1]
            closed = i == len(words) - 1 or not replaced[i + 1]
            word = f"{pre if opened else ''}{word}{post if closed else ''}"
        out.append(word)
    return " ".join(out)


def correction_suggestions(
    suggesters: Sequence[Suggester], leg: TantivyRetriever, store: ProductStore, typed_keys: bool = False
) -> dict[str, Any]:
    """The answer's ``suggest`` entries of the term and phrase suggesters (``term#<name>``, ``phrase#<name>`` with
    ``typed_keys``)."""
    lookups = Lookups(leg, store)
    out = {}
    for suggester in suggesters:
        if isinstance(suggester, TermSuggester):
            kind, answered = "term", term_suggestions(suggester, lookups)
        else:
            kind, answered = "phrase", phrase_suggestions(suggester, lookups)
        out[typed_key(kind, suggester.name) if typed_keys else suggester.name] = answered
    return out
