"""Facets over name/value pairs (Spryker's nested ``string-facet`` and ``integer-facet``), answered from the
product's own fields.

Spryker indexes each facet of a product as a nested pair (``facet-name``, ``facet-value``) and asks for every
facet in one aggregation: ``nested`` on the path, ``terms`` on ``<path>.facet-name``, and under it a ``terms``
(strings) or ``stats`` (integers) on ``<path>.facet-value``; a facet with parameters of its own is a ``filter``
on its name instead of the ``terms`` (``createStandaloneFacetNameAggregation``). Such an aggregation may sit at
the top of ``aggs`` or under a ``global`` and a ``filter`` (a refined facet's counts).

The product holds those facets as fields, so with the path aliased to ``{facet-name}`` (field_aliases) each
name is a field (:func:`~search_rerank.serving.field_aliases.pair_field`): :func:`expand` rewrites the
aggregation as one ``filter`` (``exists``) per field the pairs may name (the brand and the attributes for
strings, the ``service.max_pair_facet_names`` that most products hold; price and rating for numbers), the value aggregation under it on the field, which both backends
answer as they answer any facet; :meth:`PairFacets.collapse` writes the answer back in the nested shape: names
(:func:`~search_rerank.serving.field_aliases.pair_name`) ordered and cut as the ``terms`` asks (by how many
products hold them, ties by name), each with its values. A product holds one pair per name, as Spryker indexes
them, so a name's count is its products and the nested count their sum. A shape other than these is left as it
came, and stays a 501 naming it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from .body_checks import InvalidQuery, a_count
from .es_compat import bucket_order, order_terms_buckets, typed_key
from .field_aliases import ATTRIBUTES, FACET_NAME, FACET_VALUE, NAME_VALUE_PAIRS, pair_field, pair_name
from .refreshed import PerStore

NUMBER_FIELDS = ("price", "rating")
"""The product's fields that numeric pairs (``integer-facet``) may name."""
KEYWORDS = {"brand": "brand.keyword"}
"""The field that holds a product field's whole value, where the field itself is text: a product without a brand
holds none there (an empty brand is no pair)."""
NAME_TERMS_KEYS = {"field", "size", "shard_size", "order", "min_doc_count"}
"""What the ``terms`` on the names may ask beside its field and still be answered here."""
REFRESH_S = 60.0
"""How old the catalogue's attribute names may grow before they are read again (a reindex adds names)."""
PAIR = "pair"
"""The prefix of the ``filter`` aggregation each field is counted under while expanded."""


def attribute_names() -> PerStore[list[str]]:
    """The attribute names of each product store's catalogue (what string pairs may name), read at the first
    search that asks for them, again in the background once older than ``REFRESH_S``."""
    return PerStore(
        lambda store: store.attribute_names(),
        REFRESH_S,
        name="attribute-names",
        failed="name/value facets: reading the attribute names failed",
    )


@dataclass(frozen=True)
class Expanded:
    """One nested aggregation over pairs, as :func:`expand` rewrote it."""

    path: tuple[str, ...]
    """The aggregations' names from the top of ``aggs`` down to it."""
    names_agg: str
    names_spec: Mapping[str, Any] | None
    """The ``terms`` on the names (None: a ``filter`` on one name, :attr:`standalone`)."""
    value_agg: str | None
    fields: list[str]
    labels: list[str]
    """Each field's name in the pairs (:func:`~search_rerank.serving.field_aliases.pair_name`)."""
    standalone: str | None = None
    """The one field a ``filter`` on a name counts."""
    metas: tuple[Any, Any] = (None, None)
    """The ``meta`` of the nested aggregation and of the names aggregation, given back with their answers."""


@dataclass
class PairFacets:
    """A body with its aggregations over pairs rewritten, and how to write their answers back."""

    body: dict[str, Any]
    expanded: list[Expanded] = field(default_factory=list)

    def collapse(self, response: dict[str, Any], typed_keys: bool) -> None:
        """Each expanded aggregation's answer, in ``response`` (in place), in the shape Elasticsearch answers it."""
        aggregations = response.get("aggregations")
        if not isinstance(aggregations, dict):
            return
        for done in self.expanded:
            for container in _containers(aggregations, done.path[:-1]):
                key = _answer_key(container, done.path[-1])
                if key is not None:
                    answered = container.pop(key)
                    name = typed_key("nested", done.path[-1]) if typed_keys else done.path[-1]
                    container[name] = _nested_answer(answered, done, typed_keys)
                    _give_back_meta(container[name], done)


def expand(body: Mapping[str, Any], aliases: Mapping[str, str], attribute_names: Callable[[], list[str]]) -> PairFacets:
    """``body`` with each nested aggregation over name/value pairs rewritten on the product's fields (see the
    module's docstring); ``attribute_names`` (the catalogue's, read only when one is found) are what string pairs
    may name beside the brand."""
    out = PairFacets(dict(body))
    if not any(target == NAME_VALUE_PAIRS for target in aliases.values()):
        return out
    for key in ("aggs", "aggregations"):
        if isinstance(body.get(key), Mapping):
            out.body[key] = _expand_level(body[key], (), aliases, attribute_names, out.expanded)
    return out


def _expand_level(
    aggs: Mapping[str, Any],
    path: tuple[str, ...],
    aliases: Mapping[str, str],
    attribute_names: Callable[[], list[str]],
    expanded: list[Expanded],
) -> dict[str, Any]:
    level: dict[str, Any] = {}
    for name, spec in aggs.items():
        found = _pairs_aggregation(spec, aliases) if isinstance(spec, Mapping) else None
        if found is not None:
            done = _expansion((*path, name), found, aliases, attribute_names)
            level[name] = _rewritten(done, found.value)
            expanded.append(done)
            continue
        if isinstance(spec, Mapping):
            spec = dict(spec)
            for key in ("aggs", "aggregations"):
                if isinstance(spec.get(key), Mapping):
                    spec[key] = _expand_level(spec[key], (*path, name), aliases, attribute_names, expanded)
        level[name] = spec
    return level


@dataclass(frozen=True)
class Found:
    """A nested aggregation over pairs, read: the names aggregation and the value aggregation under it."""

    names_agg: str
    names_terms: Mapping[str, Any] | None
    """The ``terms`` on the names; None for a ``filter`` on one name (:attr:`one_name`)."""
    one_name: str | None
    value: Mapping[str, Any] | None
    """The value aggregation's ``name``, ``kind`` and ``body``."""
    metas: tuple[Any, Any] = (None, None)


def _pairs_aggregation(spec: Mapping[str, Any], aliases: Mapping[str, str]) -> Found | None:
    """``spec`` read when it is a ``nested`` aggregation over pairs of a shape answered here; else None."""
    nested = spec.get("nested")
    subs = spec.get("aggs", spec.get("aggregations"))
    if set(spec) - {"nested", "aggs", "aggregations", "meta"} or not isinstance(nested, Mapping):
        return None
    path = nested.get("path")
    if set(nested) != {"path"} or not isinstance(path, str) or aliases.get(path) != NAME_VALUE_PAIRS:
        return None
    if not isinstance(subs, Mapping) or len(subs) != 1:
        return None
    names_agg, names = next(iter(subs.items()))
    if not isinstance(names, Mapping):
        return None
    values = names.get("aggs", names.get("aggregations"))
    value = _value_aggregation(values, path)
    if values is not None and value is None:
        return None
    kinds = [k for k in names if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1 or not isinstance(names[kinds[0]], Mapping):
        return None
    kind, body = kinds[0], names[kinds[0]]
    if kind == "terms" and body.get("field") == f"{path}.{FACET_NAME}" and not set(body) - NAME_TERMS_KEYS:
        return Found(names_agg, body, None, value, (spec.get("meta"), names.get("meta")))
    one_name = _named(body, path) if kind == "filter" else None
    if one_name is not None and value is not None:
        return Found(names_agg, None, one_name, value, (spec.get("meta"), names.get("meta")))
    return None


def _value_aggregation(values: Any, path: str) -> Mapping[str, Any] | None:
    """The one aggregation on ``<path>.facet-value`` under the names, with no aggregations of its own."""
    if not isinstance(values, Mapping) or len(values) != 1:
        return None
    name, spec = next(iter(values.items()))
    if not isinstance(spec, Mapping) or len(spec) != 1:
        return None
    kind, body = next(iter(spec.items()))
    if not isinstance(body, Mapping) or body.get("field") != f"{path}.{FACET_VALUE}":
        return None
    return {"name": name, "kind": kind, "body": body}


def _named(spec: Mapping[str, Any], path: str) -> str | None:
    """The name a ``filter`` on one name asks for (``{"term": {"<path>.facet-name": "color"}}``)."""
    term = spec.get("term") if len(spec) == 1 else None
    value = term.get(f"{path}.{FACET_NAME}") if isinstance(term, Mapping) and len(term) == 1 else None
    value = value.get("value") if isinstance(value, Mapping) else value
    return value if isinstance(value, str) and value else None


def _expansion(
    path: tuple[str, ...], found: Found, aliases: Mapping[str, str], attribute_names: Callable[[], list[str]]
) -> Expanded:
    numeric = found.value is not None and found.value["kind"] != "terms"
    # An attribute is a name of the pairs when its own name names it: not one with a dot (a path, not a name) nor
    # one named like a product field or an alias (``pair_field`` reads those as theirs).
    attributes = [
        f"{ATTRIBUTES}{n}" for n in attribute_names() if "." not in n and pair_field(n, aliases) == f"{ATTRIBUTES}{n}"
    ]
    fields = list(NUMBER_FIELDS) if numeric else ["brand", *attributes]
    standalone = pair_field(found.one_name, aliases) if found.one_name is not None else None
    if standalone is not None and standalone not in fields:
        fields.append(standalone)
    value = found.value["name"] if found.value is not None else None
    if found.names_terms is not None:
        _check_names_terms(found.names_terms, value, "aggs." + ".aggs.".join(path) + f".aggs.{found.names_agg}.terms")
    return Expanded(
        path,
        found.names_agg,
        found.names_terms,
        value,
        fields,
        [pair_name(name, aliases) for name in fields],
        standalone,
        found.metas,
    )


def _check_names_terms(spec: Mapping[str, Any], value: str | None, where: str) -> None:
    """The ``terms`` on the names' options, checked as Elasticsearch checks a terms aggregation's: a 400 naming the
    option, never a failure; the order by a count, a name, or a metric of the value aggregation."""
    a_count(spec.get("size", 10), f"{where}.size", minimum=1)
    a_count(spec.get("min_doc_count", 1), f"{where}.min_doc_count")
    for by, _ in bucket_order(spec):
        if by not in ("_count", "_key") and (value is None or by.partition(".")[0] != value):
            raise InvalidQuery(f"{where}.order", f"invalid aggregation order path [{by}]")


def _value_metric(bucket: Mapping[str, Any], by: str) -> float | None:
    """A name bucket's value for an order by its value aggregation's metric (``integer-facet-value.max``)."""
    name, _, metric = by.partition(".")
    key = _answer_key(bucket, name)
    answer = bucket.get(key) if key is not None else None
    found = answer.get(metric or "value") if isinstance(answer, Mapping) else None
    return float(found) if isinstance(found, int | float) and not isinstance(found, bool) else None


def _give_back_meta(answer: dict[str, Any], done: Expanded) -> None:
    nested_meta, names_meta = done.metas
    if nested_meta is not None:
        answer["meta"] = nested_meta
    key = _answer_key(answer, done.names_agg)
    if names_meta is not None and key is not None:
        answer[key]["meta"] = names_meta


def _rewritten(done: Expanded, value: Mapping[str, Any] | None) -> dict[str, Any]:
    """One ``filter`` per field (its products), with the value aggregation on the field under each that
    shows its values."""
    subs = {}
    for i, name in enumerate(done.fields):
        held = KEYWORDS.get(name, name)
        counted: dict[str, Any] = {"filter": {"exists": {"field": held}}}
        if value is not None and (done.standalone is None or name == done.standalone):
            counted["aggs"] = {value["name"]: {value["kind"]: {**value["body"], "field": held}}}
        subs[f"{PAIR}{i}"] = counted
    return {"filter": {"match_all": {}}, "aggs": subs}


def _nested_answer(answered: Mapping[str, Any], done: Expanded, typed_keys: bool) -> dict[str, Any]:
    counts = [(name, _part(answered, f"{PAIR}{i}")) for i, name in enumerate(done.fields)]
    labels = dict(zip(done.fields, done.labels))
    total = sum(int(part.get("doc_count", 0)) for _, part in counts)
    if done.standalone is not None:
        part = next(part for name, part in counts if name == done.standalone)
        name = typed_key("filter", done.names_agg) if typed_keys else done.names_agg
        return {"doc_count": total, name: part}
    spec = done.names_spec or {}
    least = a_count(spec.get("min_doc_count", 1), "min_doc_count")  # checked at the expansion
    buckets = []
    for name, part in counts:
        held = int(part.get("doc_count", 0))
        if held < least:
            continue
        bucket = {"key": labels[name], "doc_count": held}
        if done.value_agg is not None:
            bucket.update({k: v for k, v in part.items() if k != "doc_count"})
        buckets.append(bucket)
    names: dict[str, Any] = {"doc_count_error_upper_bound": 0, "sum_other_doc_count": 0, "buckets": buckets}
    order_terms_buckets(names, spec, _value_metric)
    key = typed_key("sterms", done.names_agg) if typed_keys else done.names_agg
    return {"doc_count": total, key: names}


def _part(answered: Mapping[str, Any], name: str) -> dict[str, Any]:
    key = _answer_key(answered, name)
    part = answered.get(key) if key is not None else None
    return dict(part) if isinstance(part, Mapping) else {}


def _containers(aggregations: dict[str, Any], path: tuple[str, ...]) -> Iterator[dict[str, Any]]:
    """The answer objects that hold the aggregation under ``path`` (each bucket of a bucket aggregation above)."""
    if not path:
        yield aggregations
        return
    key = _answer_key(aggregations, path[0])
    node = aggregations.get(key) if key is not None else None
    if not isinstance(node, dict):
        return
    buckets = node.get("buckets")
    inner = buckets.values() if isinstance(buckets, dict) else buckets if isinstance(buckets, list) else [node]
    for container in inner:
        if isinstance(container, dict):
            yield from _containers(container, path[1:])


def _answer_key(container: Mapping[str, Any], name: str) -> str | None:
    """``name``'s key in an answer: itself, or ``<type>#<name>`` under ``?typed_keys``."""
    if name in container:
        return name
    return next((k for k in container if k.partition("#")[2] == name), None)
