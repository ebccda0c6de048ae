"""A front end's field names onto the product's, throughout a search body (``service.field_aliases``).

A front end configured for a shop's previous index names that index's fields
(``color.keyword``, ``brand.keyword``); the table maps each onto the product's
(``attributes.color``, ``brand``) wherever the body names a field: query and
filter clauses, ``fields`` lists (with their ``^boost``), aggregations,
``sort`` and ``highlight.fields``. Names not in the table stay as they are.
``query_string`` text names fields inside the text; those are mapped where the
text is parsed (see embedded_search, and delegation's ``ClusterFields`` on a cluster). Hits' ``_source`` carries each aliased
field under the front end's name too (:func:`source_with_aliases`), as pages
read their results by their index's names.

Three kinds of entry say more than a new name:

- a name aliased to ``""`` (:data:`ABSENT`) is a field the product does not
  have, with Elasticsearch's meaning of a field its index does not map: it is
  left out of ``fields`` lists (``multi_match``, ``query_string``...), and a
  clause on it matches nothing. Chorus' search box lists ``ean`` beside the
  title; Spryker filters on an ``active-from``/``active-to`` window.
- a name aliased to ``"=<value>"`` (:data:`CONSTANT`) is a field every product
  holds with that one value: a ``term``/``terms``/``match`` on it matches every
  product or none, an ``exists`` every product (Spryker's ``store``, ``locale``,
  ``type``, ``is-active`` filters in a one-store shop).
- a nested path aliased to ``"{facet-name}"`` (:data:`NAME_VALUE_PAIRS`) holds
  name/value pairs (``<path>.facet-name``, ``<path>.facet-value``), Spryker's
  ``string-facet``/``integer-facet``: a ``nested`` clause that filters one name
  and its values (``NestedTermQuery``, ``NestedTermsQuery``, ``NestedRangeQuery``)
  becomes those value clauses on the field the name names (:func:`pair_field`:
  its alias, the product's field of that name, else the attribute: ``color``
  is ``attributes.color``). Other shapes stay, and are a 501; the nested
  aggregations over the pairs are answered in name_value_facets.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from fnmatch import fnmatchcase
from typing import Any

from ..core.settings import LEXICAL_FIELDS

# Query types whose single key (besides these options) is a field name.
FIELD_KEYED = {
    "term",
    "terms",
    "range",
    "match",
    "match_phrase",
    "match_phrase_prefix",
    "match_bool_prefix",
    "prefix",
    "wildcard",
    "regexp",
    "fuzzy",
    "common",
}
OPTIONS = {"boost", "_name"}
FIELD_LISTS = {"multi_match", "query_string", "simple_query_string", "combined_fields"}
QUERY_KEYS = ("query", "post_filter")
# Compound queries and the keys under which they hold clauses.
NESTING = {
    "bool": ("must", "filter", "should", "must_not"),
    "constant_score": ("filter",),
    "function_score": ("query",),
    "boosting": ("positive", "negative"),
    "dis_max": ("queries",),
    "nested": ("query",),
    "pinned": ("organic",),
}
ABSENT = ""
CONSTANT = "="
MATCH_ALL: dict[str, Any] = {"match_all": {}}
MATCH_NONE: dict[str, Any] = {"match_none": {}}
NAME_VALUE_PAIRS = "{facet-name}"
FACET_NAME, FACET_VALUE = "facet-name", "facet-value"
ATTRIBUTES = "attributes."
PAIR_FIELDS = frozenset({"brand", "category", "price", "rating"})
"""The product's own fields that a name of name/value pairs may name without an alias."""


def rename_fields(body: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """A copy of the search ``body`` with every aliased field name replaced; the body itself is not changed."""
    out = dict(body)
    if not aliases:
        return out
    for key in QUERY_KEYS:
        if key in out:
            out[key] = rename_query(out[key], aliases)
    for key in ("aggs", "aggregations"):
        if isinstance(out.get(key), Mapping):
            out[key] = _aggs(out[key], aliases)
    if "sort" in out:
        out["sort"] = _sort(out["sort"], aliases)
    highlight = out.get("highlight")
    if isinstance(highlight, Mapping) and isinstance(highlight.get("fields"), Mapping | list):
        fields = highlight["fields"]
        if isinstance(fields, Mapping):
            renamed: Any = {alias_of(k, aliases): v for k, v in fields.items()}
        else:
            renamed = [{alias_of(k, aliases): v for k, v in f.items()} if isinstance(f, Mapping) else f for f in fields]
        out["highlight"] = {**highlight, "fields": renamed}
    return out


def highlight_names(highlight: Any, aliases: Mapping[str, str]) -> dict[str, list[str]]:
    """The names ``highlight.fields`` asks for, by the name each becomes (its alias): an answer's keys are the
    renamed ones, and Elasticsearch answers a hit's highlight under the names asked (see :func:`rename_highlights`)."""
    fields = highlight.get("fields") if isinstance(highlight, Mapping) else None
    if isinstance(fields, Mapping):
        asked = list(fields)
    else:
        asked = [k for f in fields if isinstance(f, Mapping) for k in f] if isinstance(fields, list) else []
    out: dict[str, list[str]] = {}
    for name in asked:
        out.setdefault(alias_of(name, aliases), []).append(name)
    return out


def rename_highlights(hits: list[dict[str, Any]], names: Mapping[str, list[str]]) -> None:
    """Each hit's highlight keyed by the names asked for (``names``: by the key answered), in place."""
    for hit in hits:
        highlight = hit.get("highlight")
        if isinstance(highlight, Mapping):
            hit["highlight"] = {name: frags for key, frags in highlight.items() for name in names.get(key, [key])}


def rename_query(query: Any, aliases: Mapping[str, str]) -> Any:
    """One query clause (and the clauses inside it) with aliased field names replaced."""
    if not isinstance(query, Mapping) or len(query) != 1:
        return query  # malformed: left for the parser to name
    kind, spec = next(iter(query.items()))
    if not isinstance(spec, Mapping):
        return query
    settled = settled_clause(kind, spec, aliases)
    if settled is not None:
        return settled
    if kind in FIELD_KEYED:
        spec = {k if k in OPTIONS else alias_of(k, aliases): v for k, v in spec.items()}
    elif kind == "exists" and isinstance(spec.get("field"), str):
        spec = {**spec, "field": alias_of(spec["field"], aliases)}
    elif kind in FIELD_LISTS:
        spec = dict(spec)
        if isinstance(spec.get("fields"), list):
            kept = [f for f in spec["fields"] if not isinstance(f, str) or aliases.get(f.partition("^")[0]) != ABSENT]
            spec["fields"] = [_boosted(f, aliases) for f in kept or spec["fields"]]
        if isinstance(spec.get("default_field"), str):
            spec["default_field"] = _boosted(spec["default_field"], aliases)
    elif kind == "nested" and aliases.get(str(spec.get("path"))) == NAME_VALUE_PAIRS:
        flat = name_value_clauses(spec, aliases)
        if flat is not None:
            return flat
    if kind in NESTING:
        spec = {k: _clauses(v, aliases) if k in NESTING[kind] else v for k, v in spec.items()}
    if kind == "function_score" and isinstance(spec.get("functions"), list):
        spec = {**spec, "functions": [_function(f, aliases) for f in spec["functions"]]}
    return {kind: spec}


def _function(function: Any, aliases: Mapping[str, str]) -> Any:
    """A ``function_score`` function with the clause of its ``filter`` renamed."""
    if not isinstance(function, Mapping) or "filter" not in function:
        return function
    return {**function, "filter": _clauses(function["filter"], aliases)}  # a query, or a list of one


def source_with_aliases(record: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """A product record with each aliased field also under the front end's name, for hits' ``_source``.

    A page reads its results by its index's names (Chorus' cards show ``supplier``, a Spryker page
    ``full-text-boosted``): each alias that names one of the product's fields gets its value, a one-value list as
    the value (``color`` for ``attributes.color``), a dotted name as nested objects, as Elasticsearch keeps it;
    one aliased to ``"=<value>"``, which every product holds, that value (Laravel Scout's matchish driver makes
    each hit's model from ``_source.__class_name``); one aliased to a keyword (``title.keyword``), its field's
    value. A front end's sub-fields are not in a ``_source``: a
    ``.keyword``, or any name under another aliased name (Searchkick's ``name.analyzed`` beside ``name``, both
    aliased to the title: ``name`` is the title, not an object of its sub-fields). Names the record already has are
    left alone.
    """
    out = dict(record)
    for name, target in aliases.items():
        if target in (ABSENT, NAME_VALUE_PAIRS) or name.endswith(".keyword") or name in record:
            continue
        if any(name.startswith(f"{other}.") for other in aliases):
            continue
        if target.startswith(CONSTANT):
            value: Any = target[len(CONSTANT) :]
        else:
            value = record
            # A keyword holds its field's value (Pimcore's keyword ``attributes.name`` aliased to ``title.keyword``).
            for part in target.removesuffix(".keyword").split("."):
                value = value.get(part) if isinstance(value, Mapping) else None
        if value is None:
            continue
        if isinstance(value, list) and len(value) == 1:
            value = value[0]
        *parents, leaf = name.split(".")
        node = out
        for part in parents:
            child = node.get(part, {})
            if not isinstance(child, Mapping):
                break  # the record holds a value there: no room for the alias
            node[part] = node = dict(child)
        else:
            node.setdefault(leaf, value)
    return out


def settled_clause(kind: str, spec: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any] | None:
    """A clause on a field the product lacks (``""``) or holds one value in (``"=<value>"``), as what it matches.

    On a field its index does not map, Elasticsearch matches nothing (so ``must_not`` ``exists`` holds for every
    document): Spryker's ``active-from``/``active-to`` window. On a field every product holds with one value
    (Spryker's ``store``, ``locale``, ``type``, ``is-active`` in a one-store shop) a ``term``, ``terms``,
    ``match`` (of the whole value, as on a keyword) or ``exists`` matches every product or none. None: the clause is not one of these, and is renamed as usual.
    """
    field = spec.get("field") if kind == "exists" else _clause_field({kind: spec})
    if not isinstance(field, str):
        return None
    target = aliases.get(field)
    if target == ABSENT:
        return MATCH_NONE
    if target is None or not target.startswith(CONSTANT) or kind not in ("term", "terms", "match", "exists"):
        return None
    if kind == "exists":
        return MATCH_ALL
    value = spec[field]
    if kind in ("term", "match"):  # Elastica's Match::setField sends {"match": {"store": "DE"}}
        value = [value.get("query" if kind == "match" else "value") if isinstance(value, Mapping) else value]
    if not isinstance(value, list):
        return None  # a terms lookup: left for the parser to name
    return MATCH_ALL if any(_as_text(v) == target[len(CONSTANT) :] for v in value) else MATCH_NONE


def _as_text(value: Any) -> str:
    """A term as the text it matches: JSON's ``true`` as ``"true"``, numbers as written."""
    return json.dumps(value) if isinstance(value, bool | int | float) else str(value)


def name_value_clauses(spec: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any] | None:
    """A ``nested`` clause over name/value pairs as clauses on the named field; None when it is not one name's.

    Spryker filters a facet as ``nested`` ``bool.filter`` of a ``term`` on ``<path>.facet-name`` and a ``term``,
    ``terms`` or ``range`` on ``<path>.facet-value``: the pair holds exactly when the product's field of that name
    has those values, so the value clauses move onto that field.
    """
    path = spec["path"]
    inner = spec.get("query")
    body = inner.get("bool") if isinstance(inner, Mapping) and len(inner) == 1 else None
    if not isinstance(body, Mapping) or set(body) - {"filter", "must"}:
        return None
    clauses = [c for key in ("filter", "must") for c in _as_list(body.get(key))]
    names = [c for c in clauses if _clause_field(c) == f"{path}.{FACET_NAME}" and next(iter(c)) == "term"]
    values = [c for c in clauses if _clause_field(c) == f"{path}.{FACET_VALUE}" and next(iter(c)) in FIELD_KEYED]
    if len(names) != 1 or not values or len(names) + len(values) != len(clauses):
        return None
    name = next(iter(names[0]["term"].values()))
    name = name.get("value") if isinstance(name, Mapping) else name
    if not isinstance(name, str) or not name:
        return None
    field = pair_field(name, aliases)
    moved = [
        {kind: {k if k in OPTIONS else field: v for k, v in body_.items()}}
        for clause in values
        for kind, body_ in clause.items()
    ]
    return moved[0] if len(moved) == 1 else {"bool": {"filter": moved}}


def pair_field(name: str, aliases: Mapping[str, str]) -> str:
    """The product's field that a name of name/value pairs names: its alias; else the product's own field of that
    name (``brand``, ``price``...); else the attribute of that name (Spryker's ``color`` is ``attributes.color``)."""
    field = alias_of(name, aliases)
    return field if field != name or name in PAIR_FIELDS else f"{ATTRIBUTES}{name}"


def pair_name(field: str, aliases: Mapping[str, str]) -> str:
    """The name that names ``field`` in name/value pairs (:func:`pair_field` backwards): its own name (``color``
    for ``attributes.color``) where that names it, else a name aliased onto it (one without a dot first)."""
    own = field.removeprefix(ATTRIBUTES)
    if pair_field(own, aliases) == field:
        return own
    named = sorted((name for name, target in aliases.items() if target == field), key=lambda n: ("." in n, n))
    return next((name for name in named if pair_field(name, aliases) == field), own)


def alias_of(name: str, aliases: Mapping[str, str]) -> str:
    """``name``'s alias, or ``name`` itself when it has none or its entry is not a new name (absent, name/value).

    A front end's ``<name>.keyword`` with no entry of its own is the keyword of what ``<name>`` is aliased to
    (``name`` → ``title``: ``name.keyword`` is ``title.keyword``), as its index's text field had its keyword
    sub-field: Bagisto and Drupal sort by ``name.keyword``, and one entry for the name was one too few."""
    target = aliases.get(name)
    if target is None and name.endswith(".keyword"):
        base = alias_of(name.removesuffix(".keyword"), aliases)
        return name if base == name.removesuffix(".keyword") else f"{base.removesuffix('.keyword')}.keyword"
    return name if target is None or target in (ABSENT, NAME_VALUE_PAIRS) or target.startswith(CONSTANT) else target


def text_fields_matching(pattern: str, aliases: Mapping[str, str]) -> list[str]:
    """The text fields a ``fields`` pattern (``*.analyzed``, ``ti*``) names: those it matches, and those a front
    end's names it matches are aliased to. Searchkick searches ``*.analyzed`` wherever a shop names no fields,
    meaning its index's ``name.analyzed`` and ``description.analyzed``: with those aliased, the pattern is their
    fields, where it matched none of the product's own and found nothing."""
    named = [field for field in LEXICAL_FIELDS if fnmatchcase(field, pattern)]
    named += [alias_of(name, aliases) for name in aliases if fnmatchcase(name, pattern)]
    return [field for field in dict.fromkeys(named) if field in LEXICAL_FIELDS]


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [] if value is None else [value]


def _clause_field(clause: Any) -> str | None:
    """The one field a field-keyed clause (``term``, ``range``...) names, without options; None otherwise."""
    if not isinstance(clause, Mapping) or len(clause) != 1:
        return None
    kind, spec = next(iter(clause.items()))
    if kind not in FIELD_KEYED or not isinstance(spec, Mapping):
        return None
    fields = [k for k in spec if k not in OPTIONS]
    return fields[0] if len(fields) == 1 else None


def _clauses(value: Any, aliases: Mapping[str, str]) -> Any:
    return [rename_query(c, aliases) for c in value] if isinstance(value, list) else rename_query(value, aliases)


def _boosted(name: Any, aliases: Mapping[str, str]) -> Any:
    if not isinstance(name, str):
        return name
    field, caret, boost = name.partition("^")
    return alias_of(field, aliases) + caret + boost


def _aggs(aggs: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        if not isinstance(spec, Mapping):
            out[name] = spec
            continue
        renamed: dict[str, Any] = {}
        for kind, value in spec.items():
            if kind in ("aggs", "aggregations") and isinstance(value, Mapping):
                renamed[kind] = _aggs(value, aliases)
            elif kind == "filter":
                renamed[kind] = rename_query(value, aliases)
            elif kind in ("filters", "adjacency_matrix") and isinstance(value, Mapping) and "filters" in value:
                inner = value["filters"]
                inner = (
                    {k: rename_query(q, aliases) for k, q in inner.items()}
                    if isinstance(inner, Mapping)
                    else [rename_query(q, aliases) for q in inner]
                    if isinstance(inner, list)
                    else inner
                )
                renamed[kind] = {**value, "filters": inner}
            elif isinstance(value, Mapping):
                renamed[kind] = _aggregation_fields(value, aliases)
            else:
                renamed[kind] = value
        out[name] = renamed
    return out


def _aggregation_fields(spec: Mapping[str, Any], aliases: Mapping[str, str]) -> dict[str, Any]:
    """One aggregation's options with aliased names replaced: its ``field``, the field of each part that names
    one (a weighted_avg's ``value`` and ``weight``), a composite's sources' (Shopware's sorted facets) and a
    significant_terms' ``background_filter``."""
    out = dict(spec)
    if isinstance(out.get("field"), str):
        out["field"] = alias_of(out["field"], aliases)
    if isinstance(out.get("sources"), list):
        out["sources"] = [
            {name: _source_fields(typed, aliases) for name, typed in source.items()}
            if isinstance(source, Mapping)
            else source
            for source in out["sources"]
        ]
    for part in ("value", "weight"):
        if isinstance(out.get(part), Mapping) and isinstance(out[part].get("field"), str):
            out[part] = {**out[part], "field": alias_of(out[part]["field"], aliases)}
    if "background_filter" in out:
        out["background_filter"] = rename_query(out["background_filter"], aliases)
    return out


def _source_fields(typed: Any, aliases: Mapping[str, str]) -> Any:
    """A composite source (``{"terms": {"field": ...}}``) with its field's alias."""
    if not isinstance(typed, Mapping):
        return typed
    return {kind: _aggregation_fields(o, aliases) if isinstance(o, Mapping) else o for kind, o in typed.items()}


def _sort(sort: Any, aliases: Mapping[str, str]) -> Any:
    if isinstance(sort, list):
        return [_sort(item, aliases) for item in sort]
    if isinstance(sort, str):
        return alias_of(sort, aliases)
    if isinstance(sort, Mapping):
        return {alias_of(k, aliases): _nested_path(k, alias_of(k, aliases), v) for k, v in sort.items()}
    return sort


def _nested_path(name: str, renamed: str, options: Any) -> Any:
    """A sort's options with its ``nested.path`` renamed as its field was: the path is the field's first parts
    (``variants`` of ``variants.price``), so it becomes as many first parts of the new name (``offers``)."""
    nested = options.get("nested") if isinstance(options, Mapping) else None
    path = nested.get("path") if isinstance(nested, Mapping) else None
    if (
        renamed == name
        or not isinstance(nested, Mapping)
        or not isinstance(path, str)
        or not name.startswith(f"{path}.")
    ):
        return options
    parts = renamed.split(".")
    depth = path.count(".") + 1
    if len(parts) <= depth:
        return options  # the new name is no field under as deep a path: left for the sort to name
    return {**options, "nested": {**nested, "path": ".".join(parts[:depth])}}
