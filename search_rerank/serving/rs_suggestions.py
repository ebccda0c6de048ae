"""Index suggestions: what a ReactiveSearch ``suggestion`` query with a value answers in place of its hits.

A SearchBox with ``autosuggest`` on (the default) sends a suggestion query on every keystroke, and shows the
``hits.hits`` of its answer as suggestions: not the documents the search found, but their field values that match
what was typed, made by appbase.io's ReactiveSearch API server from those documents (appbaseio/reactivesearch-api,
plugins/querytranslate/suggestions.go, its ``getIndexSuggestions``). This module makes them the same way, so that
the box shows what it shows against that server:

- the fields read are ``indexSuggestionsConfig.valueFields``, else ``highlightField``, else the data fields, else
  every field of the first hit's ``_source``; a field's highlight (its first fragment) stands for its value, so the
  label carries the ``<mark>``/``<b class="highlight">`` tags of the search's highlight;
- each field value of each hit is one suggestion (a list's first value containing what was typed), unless one with
  the same label (lower-cased, stop words dropped, stemmed) came before; its ``value`` is the label's text
  normalised (tags and lone punctuation dropped, lower case);
- they are ranked by how many typed words match a word of the value (``_rs_score``: 1 a word equal after stemming,
  0.5 one letter off, 0.1 more for each word matching right after the one before; one-letter words not counted),
  then by the hit's ``_score``;
- ``enablePredictiveSuggestions`` cuts each to the typed words and up to ``maxPredictedWords`` (2) words beside
  them, those highlighted, dropping those predicting the same words; ``applyStopwords`` (with ``customStopwords``)
  leaves stop words out of the predicted words; ``showDistinctSuggestions`` keeps one suggestion per document;
- a ``categoryField`` adds one "<value> in <category>" suggestion per category bucket, first; ``size`` cuts the list.

The stop words are the server's (bbalet/stopwords' English list, Jacques Savoy's, BSD), and words are stemmed with
the Snowball English stemmer, as the server stems them (its own stop words left unstemmed).
"""

from __future__ import annotations

import html
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import tantivy

HIGHLIGHT_TAGS = ('<b class="highlight">', "</b>")
"""The server's highlight tags for suggestions: of the search's highlight, and of the predicted words."""
LONE_MARKS = frozenset("'/{([-+.^:,])}")
"""Punctuation the server drops where it stands alone between spaces ("android - black")."""
TAG = re.compile(r"<[^>]*>")
STOPWORDS = frozenset(
    """
a about above across after afterwards again against all almost alone along already also although always am among
amongst amoungst amount an and another any anyhow anyone anything anyway anywhere are around as at back be became
because become becomes becoming been before beforehand behind being below beside besides between beyond bill both
bottom but by call can cannot cant co con could couldnt cry de describe detail do done down due during each eg eight
either eleven else elsewhere empty enough etc even ever every everyone everything everywhere except few fifteen fify
fill find fire first five for former formerly forty found four from front full further get give go had has hasnt
have he hence her here hereafter hereby herein hereupon hers herself him himself his how however hundred ie if in
inc indeed interest into is it its itself keep last latter latterly least less ltd made many may me meanwhile might
mill mine more moreover most mostly move much must my myself name namely neither never nevertheless next nine no
nobody none noone nor not nothing now nowhere of off often on once one only onto or other others otherwise our ours
ourselves out over own part per perhaps please put rather re same see seem seemed seeming seems serious several she
should show side since sincere six sixty so some somehow someone something sometime sometimes somewhere still such
system take ten than that the their them themselves then thence there thereafter thereby therefore therein
thereupon these they thickv thin third this those though three through throughout thru thus to together too top
toward towards twelve twenty two un under until up upon us very via was we well were what whatever when whence
whenever where whereafter whereas whereby wherein whereupon wherever whether which while whither who whoever whole
whom whose why will with within without would yet you your yours yourself yourselves
""".split()
)
"""The words the server drops before matching and comparing (bbalet/stopwords v1.0.0, English)."""
UNSTEMMED = frozenset(
    """
a about above after again against all am an and any are as at be because been before being below between both but
by can did do does doing don down during each few for from further had has have having he her here hers herself him
himself his how i if in into is it its itself just me more most my myself no nor not now of off on once only or
other our ours ourselves out over own s same she should so some such t than that the their theirs them themselves
then there these they this those through to too under until up very was we were what when where which while who
whom why will with you your yours yourself yourselves
""".split()
)
"""The Snowball stemmer's own English stop words, which the server's stemmer (kljensen/snowball) leaves as they are."""
STEMMER = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw()).filter(tantivy.Filter.stemmer("english")).build()


@dataclass(frozen=True)
class SuggestionsConfig:
    """What a suggestion query asks of its suggestions (the server's SuggestionsConfig)."""

    value: str
    data_fields: list[str]
    value_fields: list[str]
    highlight_fields: list[str]
    distinct: bool = False
    predictive: bool = False
    max_predicted_words: int = 2
    apply_stopwords: bool = False
    custom_stopwords: frozenset[str] = frozenset()
    url_field: str | None = None
    category_field: str | None = None
    section_label: str | None = None
    tags: tuple[str, str] = HIGHLIGHT_TAGS
    size: int | None = None


def suggestions_answer(config: SuggestionsConfig, answer: dict[str, Any]) -> dict[str, Any]:
    """The suggestion query's answer: its search's ``answer`` with ``hits.hits`` the suggestions and
    ``hits.total.value`` their count; a failed search's answer (no hits) is answered as it is."""
    hits = answer.get("hits")
    if not isinstance(hits, dict):
        return answer
    made: list[dict[str, Any]] = []
    if sanitize(config.value):  # the server makes none for a blank value
        made = category_suggestions(config, answer) + index_suggestions(config, hits.get("hits") or [])
        made = made if config.size is None else made[: config.size]
    total = {**(hits.get("total") or {"relation": "eq"}), "value": len(made)}
    return {**answer, "hits": {**hits, "total": total, "hits": made}}


def category_suggestions(config: SuggestionsConfig, answer: Mapping[str, Any]) -> list[dict[str, Any]]:
    """One suggestion per bucket of the ``categoryField`` aggregation: the value typed, in that category."""
    if not config.category_field:
        return []
    buckets = ((answer.get("aggregations") or {}).get(config.category_field) or {}).get("buckets") or []
    value = sanitize(config.value)
    return [
        suggestion(config, value, f"{value} in {bucket['key']}", category=bucket["key"], count=bucket["doc_count"])
        for bucket in buckets
        if isinstance(bucket.get("key"), str)
    ]


def index_suggestions(config: SuggestionsConfig, hits: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The suggestions made from the field values of ``hits``, best first (see the module's docstring)."""
    typed = normalize(config.value)
    fields = config.value_fields or config.highlight_fields or config.data_fields
    if not fields and hits:
        fields = list(source_fields(hits[0].get("_source") or {}))
    made: list[dict[str, Any]] = []
    labels: set[str] = set()
    for hit in hits:
        tree = highlighted_source(hit)
        for name in fields:
            for text in field_values(tree, name, typed):
                key = comparable_label(text)
                if key in labels:
                    continue
                labels.add(key)
                label = text.replace('"', "")
                value = normalize(html_text(label))
                score, matched = match(value, typed)
                made.append(suggestion(config, value, label, hit=hit, rs_score=score, matched=matched))
    made.sort(key=lambda s: (-s["_rs_score"], -s["_score"]))  # stable: ties keep the hits' order
    if config.predictive:
        made = predicted(config, made, typed)
    if config.distinct:
        firsts: dict[Any, dict[str, Any]] = {}
        for each in made:
            firsts.setdefault(each["_id"], each)
        made = list(firsts.values())
    return made


def suggestion(
    config: SuggestionsConfig,
    value: str,
    label: str,
    *,
    hit: Mapping[str, Any] | None = None,
    rs_score: float = 0.0,
    matched: list[str] | None = None,
    category: str | None = None,
    count: int | None = None,
) -> dict[str, Any]:
    """One suggestion, with every key the server's has (those of its other kinds of suggestion null); ``url`` and
    ``_category`` are the hit's ``urlField`` and ``categoryField`` texts."""
    source = None if hit is None else hit.get("_source")
    fields = source if isinstance(source, Mapping) else {}
    url = fields.get(config.url_field) if config.url_field else None
    if hit is not None and config.category_field:
        found = fields.get(config.category_field)
        category = found if isinstance(found, str) else None
    return {
        "value": value,
        "label": label,
        "url": url if isinstance(url, str) else None,
        "sectionLabel": config.section_label,
        "sectionId": "index",
        "description": None,
        "action": None,
        "subAction": None,
        "icon": None,
        "iconURL": None,
        "_suggestion_type": "index",
        "_category": category,
        "_count": count,
        "_rs_score": rs_score,
        "_matched_tokens": matched,
        "_id": "" if hit is None else hit.get("_id", ""),
        "_index": None if hit is None else hit.get("_index"),
        "_score": (0 if hit is None else hit.get("_score")) or 0,
        "_source": source,
    }


# Reading the hits -------------------------------------------------------------------------------------------


def highlighted_source(hit: Mapping[str, Any]) -> dict[str, Any]:
    """The hit's ``_source`` with each highlighted field (under its highlight's name) its first fragment."""
    tree = dict(hit.get("_source") or {})
    for name, fragments in (hit.get("highlight") or {}).items():
        if isinstance(fragments, list) and fragments:
            tree[name] = fragments[0]
    return tree


def source_fields(source: Any, prefix: str = "") -> dict[str, None]:
    """Each leaf's dotted path in a ``_source`` (a list's objects' fields under the list's name), once each."""
    items = source.items() if isinstance(source, Mapping) else ((None, item) for item in source)
    paths: dict[str, None] = {}
    for name, value in items:
        path = prefix if name is None else f"{prefix}.{name}" if prefix else name
        if isinstance(value, Mapping | list):
            paths.update(source_fields(value, path))
        elif value is not None:
            paths[path] = None
    return paths


def field_values(tree: Mapping[str, Any], name: str, typed: str) -> Iterable[str]:
    """The texts a field (a dotted path, through objects and lists of objects) gives, as the server walks it: the
    whole name first, then its first part; of a list of texts, the first containing what was typed."""
    if isinstance(tree.get(name), str) and tree[name]:
        yield tree[name]
    first, _, rest = name.partition(".")
    below = tree.get(first)
    if isinstance(below, list):
        for item in below:
            if isinstance(item, str) and typed.lower() in item.lower():
                below = item
                break
            if isinstance(item, Mapping):
                yield from field_values(item, rest, typed)
    if rest and isinstance(below, Mapping):
        yield from field_values(below, rest, typed)
    elif not rest and isinstance(below, str):
        yield below


# Words: normalising, stop words, stems, matching ------------------------------------------------------------


def sanitize(text: str) -> str:
    """Lone punctuation marks dropped, spaces collapsed ("android - black": "android black")."""
    return " ".join(" ".join(" " if token in LONE_MARKS else token for token in text.split(" ")).split())


def normalize(text: str) -> str:
    """``sanitize``d and lower-cased ("Wendy's - burger ": "wendy's burger")."""
    return " ".join(token.lower() for token in text.strip().split(" ") if sanitize(token))


def html_text(text: str) -> str:
    """A highlighted label's text: its tags dropped, as the server's HTML sanitiser leaves it (entities escaped)."""
    return (
        html.escape(html.unescape(TAG.sub("", text)), quote=True).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")
    )


def is_word_char(char: str) -> bool:
    return unicodedata.category(char) in ("Mc", "Mn", "Nd") or unicodedata.category(char)[0] == "L" or char in "-_'"


def without_stopwords(text: str, config: SuggestionsConfig | None = None) -> str:
    """The words of ``text`` (tags dropped, entities read, lower case) less the stop words, and less
    ``customStopwords`` where ``applyStopwords`` is on, normalised."""
    text = unicodedata.normalize("NFC", html.unescape(TAG.sub(" ", text))).lower()
    words, word = [], ""
    for char in text + " ":
        if is_word_char(char):
            word += char
        elif word:
            words.append(word)
            word = ""
    custom = config.custom_stopwords if config is not None and config.apply_stopwords else frozenset()
    return normalize(" ".join(w for w in words if w not in STOPWORDS and w not in custom))


def stem(word: str) -> str:
    word = word.strip().lower()
    if len(word.encode()) <= 2 or word in UNSTEMMED:
        return word
    return "".join(STEMMER.analyze(word))


def stems(text: str) -> list[str]:
    return [stem(word) for word in text.split(" ")]


def comparable_label(label: str) -> str:
    """A label as two labels are compared for being the same suggestion: lower case, no stop words, stemmed."""
    return " ".join(" ".join(stems(without_stopwords(" ".join(label.split()).lower()))).split())


def without_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if unicodedata.category(c) != "Mn"))


def match(value: str, typed: str) -> tuple[float, list[str] | None]:
    """How well what was typed matches a field value (``_rs_score``) and the value's words it matched: each typed
    word (of two letters or more, stop words dropped, stemmed) found among the value's stemmed words counts 1, or
    0.5 one letter off (its letters in order in a word one letter longer), 0.1 more where the word before matched
    too."""
    words_text = without_stopwords(value)
    words, stemmed = words_text.split(" "), stems(words_text)
    score, matched, found = 0.0, [], []
    for i, token in enumerate(stems(without_stopwords(typed))):
        found.append(False)
        if len(token.encode()) <= 1:
            continue
        best, target = 1.0, ""
        for candidate in stemmed:
            distance = one_edit(token, candidate)
            if distance == 0:
                best, target, found[i] = 0.0, candidate, True
            elif distance == 1:
                best, target, found[i] = min(best, 1.0), target or candidate, True
        if target in stemmed:
            matched.append(words[stemmed.index(target)])
        if found[i]:
            score += 1.0 - best / 2 + (0.1 if i > 0 and found[i - 1] else 0.0)
    return score, matched or None


def one_edit(token: str, candidate: str) -> int | None:
    """0 where ``candidate`` is ``token``, 1 where it is ``token`` with one letter more (the server's fuzzy match:
    the token's letters in order in the candidate, accents and case aside, at one edit); None otherwise."""
    if token == candidate:
        return 0
    folded, letters = iter(without_accents(candidate).lower()), without_accents(token).lower()
    if not all(letter in folded for letter in letters):
        return None
    if len(candidate) == len(token) + 1 and any(
        candidate[:i] + candidate[i + 1 :] == token for i in range(len(candidate))
    ):
        return 1
    if len(candidate) == len(token) and sum(a != b for a, b in zip(candidate, token, strict=True)) == 1:
        return 1
    return None


# Predictive suggestions ---------------------------------------------------------------------------------------


def predicted(config: SuggestionsConfig, made: list[dict[str, Any]], typed: str) -> list[dict[str, Any]]:
    """Each suggestion cut to what was typed and the words that follow it (or, short of
    ``maxPredictedWords``, precede it), those highlighted; one per set of predicted words."""
    pre, post = config.tags
    kept, seen = [], set()
    query_words = without_stopwords(typed, config) or typed
    typed_stems = stems(query_words)
    for made_one in made:
        words = normalize(html_text(made_one["label"])).split(" ")
        word_stems = stems(" ".join(words))
        prefix_ends, suffix_starts = max(len(words) - 1, 0), 0
        for token in typed_stems:
            at = next((i for i, s in enumerate(word_stems) if token in s), -1)
            if at != -1:
                prefix_ends, suffix_starts = min(prefix_ends, at - 1), max(suffix_starts, at + 1)
        gap, guess, after = config.max_predicted_words, dict(made_one), False
        if suffix_starts > 0:
            phrase = predicted_phrase(config, " ".join(words[suffix_starts:]), max(gap, 1))
            if phrase and not set(typed_stems) & set(stems(phrase)):
                guess["label"], guess["value"] = f"{typed} {pre}{phrase}{post}", f"{typed} {phrase}"
                gap, after = gap - len(phrase.split(" ")), True
        if prefix_ends >= 0 and gap > 0:
            phrase = predicted_phrase(config, " ".join(words[: prefix_ends + 1]), max(gap, 1))
            if not phrase or set(typed_stems) & set(stems(phrase)):
                continue
            tail_label, tail_value = (guess["label"], guess["value"]) if after else (typed, typed)
            guess["label"], guess["value"] = f"{pre}{phrase}{post} {tail_label}", f"{phrase} {tail_value}"
        key = " ".join(sorted(stems(without_accents(without_stopwords(guess["value"], config)))))
        if key not in seen:
            seen.add(key)
            kept.append(guess)
    return kept


def predicted_phrase(config: SuggestionsConfig, words: str, most: int) -> str:
    """Up to ``most`` words of ``words``, stop words left out where ``applyStopwords`` is on."""
    picked = (without_stopwords(words, config) if config.apply_stopwords else words).split(" ")
    return " ".join(picked[:most]).strip()
