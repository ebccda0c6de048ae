"""What a hit carries besides its ``_source``: ``stored_fields``, ``docvalue_fields`` and the ``fields`` option.

Magento 2 asks every catalogue search for ``"stored_fields": "_none_"`` and ``"docvalue_fields": ["_id",
"_score"]`` (its Elasticsearch 7 and 8 and OpenSearch adapters, and the storefronts built on its index): hits
without metadata or source, each id read from ``fields._id``, the products then loaded from the shop's database.
Refused, a Magento shop could not put this service in front of its cluster at all.

As in Elasticsearch: ``stored_fields`` given turns ``_source`` off unless the body asks for it (or the list names
``_source``); ``_none_`` leaves out each hit's ``_id`` as well (and cannot be combined with a requested
``_source``); other names list fields the mapping stores, which the product index stores none of: a name
``service.field_aliases`` names is answered from the product's record (a front end's stored ``pk``), another adds
nothing. ``docvalue_fields`` adds
each hit's indexed values of each field under ``fields`` (a list, sorted, a keyword's each once): ``_id``, the
numbers, the keywords (``brand.keyword``, the category path and levels, ``attributes.<name>``, ``title.keyword``)
and the catalog's own fields (a date as Elasticsearch formats it). A text field has none (a 400, as
Elasticsearch's "use a keyword field"), a metadata name other than ``_id`` (Magento's ``_score``), a name the
field aliases give no field and an object's path none either (left out, as Elasticsearch leaves an unmapped field
out); a name aliased to a value holds it on every product; wildcards and a ``format``: 501 naming them.

The values are the served product's, read from what the index holds for it (backends.mappings.document), on
both backends alike, as the hits' ``_source`` is the product's record.

The ``fields`` option (Elasticsearch's recommended way since 7.10 to read a hit's fields, which its guide teaches
first) is read from the hit's source as Elasticsearch reads it there: each field of the record (the front end's
alias names included) whose dotted path a name or a ``*`` pattern asked matches, with its values as a list in the
source's order; ``title.keyword`` and ``brand.keyword``, keyword copies a front end names, match too (``*`` lists
them, as Elasticsearch lists a multi-field); a date of the catalog's own fields written as Elasticsearch writes a
date (``2024-05-10T00:00:00.000Z``; ``format: epoch_millis`` for the number's text). Another ``format``: 501 naming
it. A hit's ``fields`` holds the fields it has values for; ``include_unmapped`` changes nothing, as the source
holds only what the served index maps.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..backends.mappings import TITLE_KEYWORD, document
from ..core.catalog_fields import CatalogFields, format_date, leaf_values
from ..core.product import Product
from .body_checks import InvalidQuery, Unsupported, a_boolean, a_string, an_object, known_keys
from .field_aliases import ABSENT, CONSTANT, source_with_aliases

NONE = "_none_"
SOURCE = "_source"
MAX_DOCVALUE_FIELDS = 100
"""Elasticsearch's ``index.max_docvalue_fields_search``: more is a 400, as there."""
FIELD_AND_FORMAT_KEYS = ("field", "format", "include_unmapped")
MAX_FETCH_FIELDS = 100
"""The most entries of the ``fields`` option: each is matched against every field of every hit."""
DATE_FORMATS = (None, "use_field_mapping", "strict_date_optional_time", "date_optional_time", "epoch_millis")
"""The date formats the ``fields`` option writes: Elasticsearch's default (the first of the mapping's
``strict_date_optional_time||epoch_millis``), and the epoch's milliseconds."""
KEYWORD_COPIES = {"title.keyword": "title", "brand.keyword": "brand"}
"""The keyword copies of text fields a front end names (sorts, facets), each with the text field it copies."""
ATTRIBUTE_VALUES = "facet.attributes.value"
"""The attribute pairs' values in the product's index document (each pair a ``key`` and a ``value``)."""


@dataclass(frozen=True)
class HitFields:
    """What a body asks of each hit besides its source."""

    metadata: bool = True
    """False under ``"stored_fields": "_none_"``: no ``_id``."""
    source: bool = True
    """Whether a hit carries its ``_source`` when the body does not say: not once ``stored_fields`` is given, unless
    it names ``_source`` (how a client asks for the source and no stored field)."""
    docvalues: tuple[str, ...] = ()
    """The ``docvalue_fields`` asked for, by the names the answer gives them."""
    fetch: tuple[Fetched, ...] = ()
    """The ``fields`` option's entries."""
    stored: tuple[str, ...] = ()
    """The ``stored_fields`` named (``_source`` and ``_none_`` aside): those ``service.field_aliases`` names are
    answered under ``fields`` (see :func:`add_hit_fields`)."""


@dataclass(frozen=True)
class Fetched:
    """One entry of the ``fields`` option: a field's name or a pattern (``*`` within it), and how dates are written."""

    pattern: str
    epoch_millis: bool = False


@dataclass(frozen=True)
class IndexedField:
    """Where a front end's field name is in what the index holds for a product."""

    path: str
    """A dotted path into :func:`~search_rerank.backends.mappings.document`, or the catalog's field name."""
    attribute: str | None = None
    """For the attribute pairs (``facet.attributes``): the name whose values these are."""
    catalog: bool = False
    """Whether ``path`` names one of the catalog's own fields (core/catalog_fields.py)."""
    constant: str | None = None
    """The one value every product holds, for a name ``service.field_aliases`` gives one (``"store": "=DE"``)."""


Locate = Callable[[str, str], IndexedField | None]
"""A backend's reading of a name in ``docvalue_fields`` (the name, where it is in the body): its field, or None
for a metadata name without doc values; raises InvalidQuery for a text field, Unsupported for a name the index
does not hold."""


def parse_hit_fields(body: Mapping[str, Any]) -> HitFields:
    """``stored_fields`` and ``docvalue_fields`` as Elasticsearch reads them (StoredFieldsContext, FieldAndFormat)."""
    metadata = source = True
    stored: tuple[str, ...] = ()
    if body.get("stored_fields") is not None:
        stored = body["stored_fields"]
        names = [stored] if isinstance(stored, str) else stored
        if not isinstance(names, list):
            raise InvalidQuery("stored_fields", "expected a field name or a list of them")
        names = [a_string(name, f"stored_fields[{i}]") for i, name in enumerate(names)]
        if NONE in names:
            if len(names) > 1:
                raise InvalidQuery("stored_fields", f"[{NONE}] cannot be combined with other fields")
            asked = body.get("_source")
            if asked is not None and asked is not False:
                raise InvalidQuery("stored_fields", "cannot be disabled if [_source] is requested")
            metadata = False
        source = SOURCE in names
        stored = tuple(name for name in names if name not in (SOURCE, NONE))
    fetch = _fetched(body.get("fields"))
    asked = body.get("docvalue_fields")
    if asked is None:
        return HitFields(metadata, source, fetch=fetch, stored=stored)
    if not isinstance(asked, list):
        raise InvalidQuery("docvalue_fields", "expected a list of field names or {field, format} objects")
    if len(asked) > MAX_DOCVALUE_FIELDS:
        raise InvalidQuery(
            "docvalue_fields",
            f"trying to retrieve too many docvalue_fields: must be at most {MAX_DOCVALUE_FIELDS}, was {len(asked)}",
        )
    names = tuple(_docvalue_name(spec, f"docvalue_fields[{i}]") for i, spec in enumerate(asked))
    return HitFields(metadata, source, names, fetch, stored)


def _fetched(asked: Any) -> tuple[Fetched, ...]:
    """The ``fields`` option's entries (a name or pattern, or ``{field, format, include_unmapped}``)."""
    if asked is None:
        return ()
    if not isinstance(asked, list):
        raise InvalidQuery("fields", "expected a list of field names or {field, format} objects")
    if len(asked) > MAX_FETCH_FIELDS:
        raise InvalidQuery("fields", f"at most {MAX_FETCH_FIELDS} entries, got {len(asked)}")
    out = []
    for i, spec in enumerate(asked):
        where = f"fields[{i}]"
        name, date_format = _field_and_format(spec, where)
        if date_format not in DATE_FORMATS:
            raise Unsupported(f"{where}.format", "a date format other than Elasticsearch's default or epoch_millis")
        out.append(Fetched(name, epoch_millis=date_format == "epoch_millis"))
    return tuple(out)


def _field_and_format(spec: Any, where: str) -> tuple[str, Any]:
    """An entry of ``docvalue_fields`` or ``fields``, as Elasticsearch's ``FieldAndFormat`` reads it: a field's
    name, or ``{field, format, include_unmapped}``; its name and its format (None: none given)."""
    if isinstance(spec, str):
        name, given = spec, None
    else:
        spec = an_object(spec, where)
        known_keys(spec, where, FIELD_AND_FORMAT_KEYS)
        if "field" not in spec:
            raise InvalidQuery(f"{where}.field", "required")
        name, given = a_string(spec["field"], f"{where}.field"), spec.get("format")
        if spec.get("include_unmapped") is not None:
            a_boolean(spec["include_unmapped"], f"{where}.include_unmapped")
    if not name:
        raise InvalidQuery(where, "a field name cannot be empty")
    return name, given


def _docvalue_name(spec: Any, where: str) -> str:
    name, given = _field_and_format(spec, where)
    if given not in (None, "use_field_mapping"):
        raise Unsupported(f"{where}.format", "a format for doc values (they are answered as held)")
    if "*" in name:
        raise Unsupported(where, "a wildcard in docvalue_fields (name each field)")
    return name


def text_field(name: str, where: str) -> InvalidQuery:
    """The refusal of a text field in ``docvalue_fields``: Elasticsearch keeps no doc values of one."""
    return InvalidQuery(
        where,
        f"[{name}] is a text field, which has no doc values: name a keyword field ({name}.keyword, where the "
        "index has one)",
        "illegal_argument_exception",
    )


def located(fields: HitFields, locate: Locate, aliases: Mapping[str, str]) -> dict[str, IndexedField]:
    """Each asked name's field (those without doc values left out), checked before the search runs."""
    out: dict[str, IndexedField] = {}
    for i, name in enumerate(fields.docvalues):
        found = locate_field(name, f"docvalue_fields[{i}]", locate, aliases)
        if found is not None:
            out[name] = found
    return out


def locate_field(name: str, where: str, locate: Locate, aliases: Mapping[str, str]) -> IndexedField | None:
    """The field a name's doc values are read from; None for one without doc values of the product's.

    A name ``aliases`` gives no field (``""``) is one the index does not map, left out as Elasticsearch leaves an
    unmapped field out; one it gives a value (``"=DE"``) holds that value on every product, as a term on it
    matches every product."""
    alias = aliases.get(name)
    if name == "_id":
        return IndexedField("id")
    if alias is not None and alias.startswith(CONSTANT):  # Hibernate Search's "_entity_type": "=Product"
        return IndexedField(name, constant=alias.removeprefix(CONSTANT))
    if alias == ABSENT or (alias is None and name.startswith("_")):  # _score, _index, _routing: none of the product's
        return None
    return locate(name, where)


def add_hit_fields(
    hits: Sequence[dict[str, Any]],
    products: Sequence[Product],
    fields: HitFields,
    where: Mapping[str, IndexedField],
    catalog: CatalogFields | None,
    aliases: Mapping[str, str],
) -> None:
    """Each hit's ``fields`` (the ``fields`` option's, the doc values asked for, those it holds), then its ``_id``
    left out under ``_none_``. ``hits`` are the answer's, ``products`` the served products they are.

    A ``stored_fields`` name that ``service.field_aliases`` names is answered as a field the front end's index
    stored, from the product's record (Wagtail stores ``pk`` and reads each hit's ``fields.pk``; with ``"pk":
    "id"`` it gets the product's id); another names no field the product index stores, and adds nothing."""
    by_id = {product.id: product for product in products}
    fetch = fields.fetch + tuple(Fetched(name) for name in fields.stored if name in aliases)
    for hit in hits:
        product = by_id.get(hit.get("_id", ""))
        if fetch and product is not None:
            found = fetched_values(product, fetch, catalog, aliases)
            if found:
                hit["fields"] = {**hit.get("fields", {}), **found}
        if where and product is not None:
            held = document(product)
            values = {name: held_values(held, product, spot, catalog) for name, spot in where.items()}
            found = {name: listed for name, listed in values.items() if listed}
            if found:
                hit["fields"] = {**hit.get("fields", {}), **found}
        if not fields.metadata:
            hit.pop("_id", None)


def fetched_values(
    product: Product, fetch: Sequence[Fetched], catalog: CatalogFields | None, aliases: Mapping[str, str]
) -> dict[str, list[Any]]:
    """The ``fields`` option's values on ``product``: each field of its source (see the module's docstring) that an
    entry matches, by its path."""
    leaves: dict[str, list[Any]] = {}
    for path, value in leaf_values(source_with_aliases(product.to_record(), aliases)):
        leaves.setdefault(path, []).append(value)
    for copy, text in KEYWORD_COPIES.items():
        if text in leaves:
            leaves[copy] = [value for value in leaves[text] if isinstance(value, str)]
    for name, target in aliases.items():  # a front end's names of keywords (color.keyword, Magento's manufacturer)
        if name not in leaves and target in leaves:
            leaves[name] = leaves[target]
    dates = catalog.values(product) if catalog is not None else {}
    out: dict[str, list[Any]] = {}
    for path, values in leaves.items():
        entry = next((entry for entry in fetch if field_matches(path, entry.pattern)), None)
        if entry is None:
            continue
        own = catalog.named(aliases.get(path, path)) if catalog is not None else None
        if own is not None and catalog is not None and catalog.type_of(own) == "date":
            values = [str(v) if entry.epoch_millis else format_date(v) for v in dates.get(own, [])]
        if values:
            out[path] = values
    return out


def field_matches(name: str, pattern: str) -> bool:
    """Whether a field's dotted name matches a pattern as Elasticsearch matches one (``_source`` and ``fields``):
    ``*`` any characters, every other character itself (``?`` and ``[``, which shell patterns read as wildcards,
    match only themselves)."""
    return _field_pattern(pattern).fullmatch(name) is not None


@lru_cache(maxsize=1024)
def _field_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile(".*".join(map(re.escape, pattern.split("*"))), re.DOTALL)


def held_values(
    held: Mapping[str, Any], product: Product, spot: IndexedField, catalog: CatalogFields | None
) -> list[Any]:
    """The doc values of ``spot`` on ``product`` (``held``: its index document), sorted, each once."""
    if spot.constant is not None:
        return [spot.constant]
    if spot.catalog:
        if catalog is None:
            return []
        listed = sorted(catalog.values(product).get(spot.path, []))
        return [format_date(v) for v in listed] if catalog.type_of(spot.path) == "date" else listed
    path = "title" if spot.path == TITLE_KEYWORD else spot.path
    level: list[Any] = [held]
    for part in path.split("."):
        level = [item for value in level if isinstance(value, Mapping) and part in value for item in _each(value[part])]
        if spot.attribute is not None and part == "attributes":  # the pairs of the one name
            level = [pair for pair in level if str(pair.get("key", "")).lower() == spot.attribute.lower()]
    # An object's path (facet.category) holds no doc values of its own: left out, as Elasticsearch leaves it.
    leaves = {value for value in level if value is not None and value != "" and not isinstance(value, Mapping | list)}
    return sorted(leaves, key=_order)


def _each(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _order(value: Any) -> tuple[int, Any]:
    """Doc values come sorted: numbers by value, keywords by their bytes (booleans as numbers)."""
    return (1, value.encode()) if isinstance(value, str) else (0, value)
