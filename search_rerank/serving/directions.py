"""An order's direction as Elasticsearch reads it: ``asc`` or ``desc``, in any case.

Elasticsearch reads a sort's ``order`` and a bucket order's direction whatever their case (``SortOrder``
upper-cases what it is given; the bucket order's parser compares ignoring case), and clients send them upper
case: a Java or C# enum's name (``SortOrder.DESC``), a shop's own ``?sort=price:DESC``. The service's readers
of a body (the retriever planner, both backends' compilers, the embedded aggregations) read the lower-case
words, and read an order they do not know as something else: ``"DESC"`` was a 400, a ``_score`` sort was
refused as ascending, and an embedded histogram's order was not applied. So a search body's directions are
written lower case once, where it comes in, before anything reads it; a direction that is neither word is a
400 naming it, as Elasticsearch refuses it.

What is rewritten is what the service itself reads: the top-level ``sort``, a standard retriever's ``sort``
anywhere in a retriever tree, a collapse's inner hits' ``sort``, and in aggregations at any depth a bucket order
(``terms``, ``histogram``...), a composite source's ``order`` and a ``top_hits`` or ``bucket_sort`` sort. Other
sorts (a nested query's ``inner_hits``) only a cluster reads, which reads any case itself.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from .body_checks import InvalidQuery

DIRECTIONS = ("asc", "desc")
SUB_AGGREGATIONS = ("aggs", "aggregations")
SORTED_AGGREGATIONS = ("top_hits", "bucket_sort")  # aggregations whose ``sort`` is a sort, as a search's is
BUCKET_KEYS = ("_count", "_key")  # what a bucket order may name besides a sub-aggregation


def with_directions(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with its directions lower case (a copy where one changed; the parts not read are shared)."""
    out = dict(body)
    if "sort" in out:
        out["sort"] = _sort(out["sort"], "sort")
    if isinstance(out.get("retriever"), Mapping):
        out["retriever"] = _retriever(out["retriever"], "retriever")
    if isinstance(out.get("collapse"), Mapping) and out["collapse"].get("inner_hits") is not None:
        out["collapse"] = {**out["collapse"], "inner_hits": _inner_hits(out["collapse"]["inner_hits"])}
    for key in SUB_AGGREGATIONS:
        if isinstance(out.get(key), Mapping):
            out[key] = _aggregations(out[key], key)
    return out


def direction(value: Any, path: str) -> str:
    """One direction, lower case; a 400 naming ``path`` for anything but ``asc`` or ``desc`` in some case."""
    if isinstance(value, str) and value.lower() in DIRECTIONS:
        return value.lower()
    raise InvalidQuery(path, f"expected asc or desc, got {value!r}")


def _sort(sort: Any, path: str) -> Any:
    """A sort: a field's name (its default order), ``{field: direction}``, ``{field: {"order": ...}}``, or a
    list of them. An object naming several fields is as many items, in its order: Elasticsearch's parser reads
    each key of a sort object as one sort (``SortBuilder.parseCompoundSortField``), and Magento's own-value sort
    sends two in one. A malformed item is left as it is, for the reader that refuses it to name."""
    if isinstance(sort, Mapping) and len(sort) > 1:
        return _sort([{name: order} for name, order in sort.items()], path)
    if isinstance(sort, list):
        return [
            _sort_item(one, f"{path}[{i}]")
            for i, item in enumerate(sort)
            for one in ([{n: o} for n, o in item.items()] if isinstance(item, Mapping) and len(item) > 1 else [item])
        ]
    return _sort_item(sort, path)


def _sort_item(item: Any, path: str) -> Any:
    if not isinstance(item, Mapping) or len(item) != 1:
        return item
    ((name, order),) = item.items()
    if isinstance(order, Mapping):
        return {name: _ordered(order, path)}
    return {name: direction(order, f"{path}.order")}


def _ordered(options: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """Options whose ``order`` is a direction (a sort's options, a composite source's), that one rewritten."""
    if "order" not in options:
        return options
    return {**options, "order": direction(options["order"], f"{path}.order")}


def _inner_hits(spec: Any) -> Any:
    """A collapse's ``inner_hits`` (one object or a list of them) with each one's ``sort`` rewritten."""
    if isinstance(spec, list):
        return [_inner_hit(item, f"collapse.inner_hits[{i}]") for i, item in enumerate(spec)]
    return _inner_hit(spec, "collapse.inner_hits")


def _inner_hit(spec: Any, path: str) -> Any:
    if not isinstance(spec, Mapping) or "sort" not in spec:
        return spec
    return {**spec, "sort": _sort(spec["sort"], f"{path}.sort")}


def _retriever(tree: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """A retriever tree with each standard retriever's ``sort`` rewritten, the retrievers it holds (``rrf``'s
    and ``linear``'s lists, a reranker's or rescorer's one) walked."""
    if len(tree) != 1:
        return tree
    ((kind, spec),) = tree.items()
    if not isinstance(spec, Mapping):
        return tree
    where = f"{path}.{kind}"
    spec = dict(spec)
    if kind == "standard" and "sort" in spec:
        spec["sort"] = _sort(spec["sort"], f"{where}.sort")
    if isinstance(spec.get("retriever"), Mapping):
        spec["retriever"] = _retriever(spec["retriever"], f"{where}.retriever")
    if isinstance(spec.get("retrievers"), list):
        spec["retrievers"] = [
            _listed(item, f"{where}.retrievers[{i}]") if isinstance(item, Mapping) else item
            for i, item in enumerate(spec["retrievers"])
        ]
    return {kind: spec}


def _listed(item: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """An item of a retrievers list: a retriever, or (``linear``'s) an object holding one beside its weight."""
    if isinstance(item.get("retriever"), Mapping):
        return {**item, "retriever": _retriever(item["retriever"], f"{path}.retriever")}
    return _retriever(item, path)


def _aggregations(aggs: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        out[name] = _aggregation(spec, f"{path}.{name}") if isinstance(spec, Mapping) else spec
    return out


def _aggregation(spec: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    out: dict[str, Any] = {}
    for kind, options in spec.items():
        where = f"{path}.{kind}"
        if kind in SUB_AGGREGATIONS and isinstance(options, Mapping):
            out[kind] = _aggregations(options, where)
        elif not isinstance(options, Mapping) or kind == "meta":
            out[kind] = options
        elif kind == "composite":
            out[kind] = _composite(options, where)
        elif kind in SORTED_AGGREGATIONS and "sort" in options:
            out[kind] = {**options, "sort": _sort(options["sort"], f"{where}.sort")}
        elif options.get("order") == []:  # no order given: the default one, as Elasticsearch reads it
            out[kind] = {key: value for key, value in options.items() if key != "order"}
        elif "order" in options:
            subs: Mapping[str, Any] = next(
                (spec[key] for key in SUB_AGGREGATIONS if isinstance(spec.get(key), Mapping)), {}
            )
            out[kind] = {**options, "order": _bucket_order(options["order"], f"{where}.order", subs)}
        else:
            out[kind] = options
    return out


_STATS = ("count", "min", "max", "avg", "sum")
STATS_VALUES = {
    "stats": _STATS,
    "extended_stats": (
        *_STATS,
        *("sum_of_squares", "variance", "variance_population", "variance_sampling"),
        *("std_deviation", "std_deviation_population", "std_deviation_sampling"),
    ),
}
"""The values a terms order may name of a stats sub-aggregation (``"s.avg"``); another is a 400, as there."""


def _bucket_order(order: Any, path: str, subs: Mapping[str, Any]) -> Any:
    """A bucket order: ``{"_count" | "_key" | metric: direction}``, or a list of them (the first decides)."""
    if isinstance(order, list):
        return [_bucket_order_object(item, f"{path}[{i}]", subs) for i, item in enumerate(order)]
    return _bucket_order_object(order, path, subs)


def _bucket_order_object(order: Any, path: str, subs: Mapping[str, Any]) -> Mapping[str, Any]:
    """One object of a bucket order; anything else (``"order": "desc"``) a 400 naming it, as Elasticsearch's parser
    refuses it: the embedded histogram, which applies its order itself, answered it by key. So is an order by what
    is neither ``_count``, ``_key`` nor a path into the bucket's own aggregations (``_COUNT``, a misspelt name), as
    Elasticsearch refuses it (a cluster may answer it with a 500)."""
    if not isinstance(order, Mapping):
        raise InvalidQuery(path, f'expected an object such as {{"_count": "desc"}}, got {order!r}')
    for by in order:
        head = re.split(r"[>.\[]", by, maxsplit=1)[0]
        if by not in BUCKET_KEYS and head not in subs:
            raise InvalidQuery(
                f"{path}.{by}",
                f"Invalid aggregation order path [{by}]: the aggregation [{head}] does not exist under this one "
                f"(order by {', '.join(BUCKET_KEYS)} or a sub-aggregation)",
            )
        kind = next(iter(subs[head]), "") if isinstance(subs.get(head), Mapping) else ""
        value = by[len(head) + 1 :] if by.startswith(f"{head}.") else None
        if value is not None and kind in STATS_VALUES and value not in STATS_VALUES[kind]:
            raise InvalidQuery(
                f"{path}.{by}",
                f"Invalid aggregation order path [{by}]: a {kind} aggregation has no value [{value}] (it has "
                f"{', '.join(STATS_VALUES[kind])})",
            )
    return {by: direction(value, f"{path}.{by}") for by, value in order.items()}


def _composite(options: Mapping[str, Any], path: str) -> Mapping[str, Any]:
    """A composite aggregation's sources, each ``{name: {type: {..., "order": direction}}}``."""
    sources = options.get("sources")
    if not isinstance(sources, list):
        return options
    rewritten = []
    for i, source in enumerate(sources):
        if isinstance(source, Mapping) and len(source) == 1:
            ((name, typed),) = source.items()
            if isinstance(typed, Mapping) and len(typed) == 1:
                ((kind, spec),) = typed.items()
                if isinstance(spec, Mapping):
                    source = {name: {kind: _ordered(spec, f"{path}.sources[{i}].{name}.{kind}")}}
        rewritten.append(source)
    return {**options, "sources": rewritten}
