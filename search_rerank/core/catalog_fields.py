"""A catalog's own fields (``Product.extra``: a stock level, a date added, a flag) as typed index fields, so that a
front end filters, sorts and facets on them as it did on its Elasticsearch index ("newest first", "in stock only",
Search UI's date range facet).

Elasticsearch guesses a field's type from the first document that holds it (dynamic mapping), and refuses every
later document whose value does not fit. A product catalog is better read whole: the types here are decided from
every product's values before anything is written (:meth:`CatalogFields.infer`), so a field is a number only where
every value is one, and no product is ever refused for it. The rules are Elasticsearch's dynamic ones, with two
changes a shop's exports need:

- a text that is a number (``"12"``, ``"4.5"``: every value of a CSV column is text) is that number, unless it
  begins with a zero (``"02134"``, a GTIN): that is a code, and stays a keyword;
- ``"true"`` and ``"false"`` are a boolean, as Elasticsearch reads them into a boolean field.

A date is a text Elasticsearch's ``strict_date_optional_time`` reads (``2025-03-01``, ``2025-03-01T10:00:00Z``);
a date or time without an offset is UTC, as in Elasticsearch. Dates are held as epoch milliseconds, as
Elasticsearch holds them. ``lexical.catalog_field_types`` sets a field's type where the guess is wrong (an id of
digits as a keyword); a value that does not fit its field's type is kept for display but not indexed, as with
Elasticsearch's ``ignore_malformed``.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, tzinfo
from pathlib import Path
from typing import Any, Literal, get_args

from .product import Product, composed

FieldType = Literal["keyword", "long", "double", "date", "boolean"]
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
MAX_FIELDS = 900
"""The most catalog fields indexed, the most common first, the objects holding them counted too: Elasticsearch
refuses a mapping of more than 1,000 fields (``index.mapping.total_fields.limit``, which counts each object), and
the product's own take the rest. The others are kept for display."""
MAX_DEPTH = 18
"""The most objects a catalog field is under (``a.b.c`` is under two): Elasticsearch refuses a mapping deeper than
20 (``index.mapping.depth.limit``), the root and the index's ``catalog`` object taking two."""
KEYWORD_MAX_CHARS = 256
"""A keyword value longer than this is not indexed (kept for display), as Elasticsearch's dynamic mapping sets
``ignore_above: 256``: a catalog's long texts (a second description) are no facet."""
MAX_LONG, MIN_LONG = 2**63 - 1, -(2**63)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
CYCLE_MS = 146_097 * 86_400_000
"""The Gregorian calendar's cycle: 400 years are 146,097 days, so a moment this far from another falls on the same
day of the same month."""
_NUMBER = re.compile(r"-?(?:0|[1-9]\d*)(\.\d+)?(?:[eE][+-]?\d+)?")
# strict_date_optional_time: a year and month, a day, then a time to the hour, minute, second or fraction of one,
# and an offset. A year alone is a number.
_DATE = re.compile(
    r"(\d{4})-(\d{2})(?:-(\d{2})(?:T(\d{2})(?::(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?)?"
    r"(Z|[+-]\d{2}(?::?\d{2})?)?)?)?"
)
_BOOLEANS = {"true": True, "false": False}


@dataclass(frozen=True)
class DateParts:
    """A date as written, each part's digits (None: not written): what a date format read of it."""

    year: str
    month: str | None = None
    day: str | None = None
    hour: str | None = None
    minute: str | None = None
    second: str | None = None
    fraction: str | None = None
    offset: str | None = None
    """``Z``, ``+01:00`` or ``+0100``; None: the date is in the reader's time zone (UTC unless one is given)."""

    def millis(self, zone: tzinfo = UTC) -> int | None:
        """The date as epoch milliseconds (None where it is no date, ``2025-02-30``)."""
        try:
            moment = datetime(
                int(self.year),
                int(self.month or 1),
                int(self.day or 1),
                int(self.hour or 0),
                int(self.minute or 0),
                int(self.second or 0),
                tzinfo=UTC if self.offset else zone,
            )
        except ValueError:
            return None
        millis = (moment - EPOCH) // timedelta(milliseconds=1) + int((self.fraction or "0").ljust(3, "0")[:3])
        if self.offset and self.offset != "Z":
            sign = 1 if self.offset[0] == "+" else -1
            digits = self.offset[1:].replace(":", "")
            millis -= sign * (int(digits[:2]) * 60 + int(digits[2:4] or 0)) * 60_000
        return millis

    def rest(self) -> int:
        """The milliseconds from the date to the last of what it names where its time is not all written (a
        day's 23:59:59.999, an hour's 59:59.999): Elasticsearch fills missing time so when it rounds up."""
        rest = 0 if self.fraction else 999
        rest += 0 if self.second else 59_000
        rest += 0 if self.minute else 59 * 60_000
        return rest + (0 if self.hour else 23 * 3_600_000)


def date_parts(text: str) -> DateParts | None:
    """``text`` as Elasticsearch's ``strict_date_optional_time`` reads it; None where it does not."""
    match = _DATE.fullmatch(text)
    return None if match is None else DateParts(*match.groups())


def parse_date(text: str) -> int | None:
    """``text`` as epoch milliseconds where it is a date Elasticsearch's ``strict_date_optional_time`` reads;
    None otherwise (``2025-02-30`` included)."""
    parts = date_parts(text)
    return None if parts is None else parts.millis()


def format_date(millis: int, zone: tzinfo = UTC) -> str:
    """Epoch milliseconds as Elasticsearch writes a date's ``key_as_string``, in ``zone`` with its offset
    (``2025-03-01T00:00:00.000Z``, ``2025-03-01T00:00:00.000+01:00``); a year past four digits signed, as Java
    writes it (``+18029``: the sum of two dates of 9999)."""
    utc, years = in_cycle(millis)
    moment = utc.astimezone(zone)
    year = moment.year + years
    written = f"{year:04d}" if 0 <= year <= 9999 else f"{'+' if year > 0 else '-'}{abs(year):04d}"
    offset = moment.strftime("%z")
    shown = "Z" if moment.utcoffset() == timedelta(0) else f"{offset[:3]}:{offset[3:5]}"
    return written + moment.strftime("-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}{shown}"


def in_cycle(millis: int) -> tuple[datetime, int]:
    """Epoch milliseconds as the UTC moment of the years 1970 to 2369 that falls on the same day, month and time,
    and the years to add to its year (whole :data:`CYCLE_MS`): Python's dates end at the year 9999, a date's
    values (a sum of dates, a "no end" date's next month) do not."""
    cycles, rest = divmod(int(millis), CYCLE_MS)
    return EPOCH + timedelta(milliseconds=rest), 400 * cycles


def _kind(value: Any) -> str:
    """The type one value suggests (an entry of :data:`FIELD_TYPES`)."""
    if isinstance(value, bool):
        return "boolean"
    if not isinstance(value, (int, float)):
        text = str(value).strip()
        if text.lower() in _BOOLEANS:
            return "boolean"
        value = _number(text)
        if value is None:
            return "date" if parse_date(text) is not None else "keyword"
    if isinstance(value, int) and MIN_LONG <= value <= MAX_LONG:
        return "long"
    return "double" if _double(value) is not None else "keyword"


def _type_of(kinds: set[str]) -> FieldType:
    if kinds == {"boolean"}:
        return "boolean"
    if kinds == {"long"}:
        return "long"
    if kinds <= {"long", "double"}:
        return "double"
    if kinds == {"date"}:
        return "date"
    return "keyword"


def leaf_values(extra: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """Each value of ``extra`` with its path (``shipping.price``), a list's items each under the list's path, as
    Elasticsearch flattens a document's objects; no value (null, a blank text) left out."""
    for key, value in extra.items():
        path = f"{prefix}{key}"
        yield from _values_at(path, value)


def _values_at(path: str, value: Any) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping):
        yield from leaf_values(value, f"{path}.")
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _values_at(path, item)
    elif value is not None and not (isinstance(value, str) and not value.strip()):
        if not (isinstance(value, float) and not math.isfinite(value)):
            yield path, value


def _indexable(path: str) -> bool:
    """Whether a path can be an index field: Elasticsearch refuses an empty part (``a..b``) and a field under more
    than :data:`MAX_DEPTH` objects, and keeps names beginning with ``_`` for its own (``_id``)."""
    parts = path.split(".")
    return all(part.strip() for part in parts) and len(parts) <= MAX_DEPTH + 1 and not path.startswith("_")


def _most_common(paths: list[str], holders: Counter[str]) -> list[str]:
    """The most common of ``paths``, as many as fit :data:`MAX_FIELDS` with the objects holding them (``a.b`` and
    ``a.c`` are three fields to Elasticsearch: ``a`` is one)."""
    kept: list[str] = []
    mapped: set[str] = set()
    for path in sorted(paths, key=lambda path: (-holders[path], path)):
        parts = path.split(".")
        new = {".".join(parts[:end]) for end in range(1, len(parts) + 1)} - mapped
        if len(mapped) + len(new) <= MAX_FIELDS:
            mapped |= new
            kept.append(path)
    return kept


class CatalogFields:
    """The typed catalog fields of an index, by the name a front end gives them (``created_at``,
    ``shipping.price``), each the index field :meth:`index_field` names."""

    def __init__(self, types: Mapping[str, str] | None = None, several: Iterable[str] = ()):
        self.types: dict[str, FieldType] = {
            name: _valid_type(name, kind) for name, kind in sorted((types or {}).items())
        }
        self.several = frozenset(name for name in several if name in self.types)
        """The fields some product holds several values of (a list): a sort reads their least or greatest, as
        Elasticsearch sorts by a field's smallest value ascending and its largest descending."""
        self._index_fields = {name: f"catalog_{i}_{kind}" for i, (name, kind) in enumerate(self.types.items())}

    @classmethod
    def infer(cls, products: Iterable[Product], overrides: Mapping[str, str] | None = None) -> CatalogFields:
        """The fields of ``products``' extra values and the type every value of each fits (the module says how),
        ``overrides`` taking the place of a guess; the most common first, as many as :func:`_most_common` keeps."""
        kinds: dict[str, set[str]] = {}
        holders: Counter[str] = Counter()
        several: set[str] = set()
        for product in products:
            seen: dict[str, set[Any]] = {}
            for path, value in leaf_values(product.extra):
                if _indexable(path):
                    kinds.setdefault(path, set()).add(_kind(value))
                    seen.setdefault(path, set()).add((type(value), value))  # 1 and true are two values
            holders.update(seen.keys())
            several.update(path for path, values in seen.items() if len(values) > 1)
        _without_parents(kinds)
        kept = _most_common(list(kinds), holders)
        return cls({path: (overrides or {}).get(path) or _type_of(kinds[path]) for path in kept}, several)

    @classmethod
    def of_listed(cls, products: Iterable[Product], overrides: Mapping[str, str] | None = None) -> CatalogFields:
        """Those of ``products`` where they are a list, read whole (:meth:`infer`); none where they are read as they
        come, since a field's type is decided from every value of it before anything is written."""
        return cls.infer(products, overrides) if isinstance(products, Sequence) else cls()

    def __bool__(self) -> bool:
        return bool(self.types)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CatalogFields) and (self.types, self.several) == (other.types, other.several)

    def __repr__(self) -> str:
        return f"CatalogFields({self.types!r})"

    def type_of(self, name: str) -> FieldType | None:
        return self.types.get(name)

    def named(self, name: str) -> str | None:
        """The field a front end's name means: the name, or the name before ``.keyword``, as a shop's Elasticsearch
        index, dynamically mapped, held a text (a CSV's every value) as text with a ``.keyword``, and its front end
        names the field so; None where it names none."""
        for candidate in (name, name.removesuffix(".keyword")):
            if candidate in self.types:
                return candidate
        return None

    def index_field(self, name: str) -> str:
        """The embedded index's field holding ``name`` (catalog names may hold any character; these do not)."""
        return self._index_fields[name]

    def values(self, product: Product) -> dict[str, list[Any]]:
        """``product``'s indexed values of each field, each as its type holds it (a date as epoch milliseconds);
        one that does not fit its type, or a keyword past :data:`KEYWORD_MAX_CHARS`, left out."""
        out: dict[str, list[Any]] = {}
        for path, value in leaf_values(product.extra):
            kind = self.types.get(path)
            if kind is None:
                continue
            typed = typed_value(kind, value)
            if typed is not None:
                out.setdefault(path, []).append(typed)
        # A keyword's values are a set, as Elasticsearch's keyword doc values are; a number's, a date's and a
        # boolean's each count, as its numeric doc values keep a value repeated ([2, 2] sums to 4).
        return {
            path: list(dict.fromkeys(values)) if self.types[path] == "keyword" else values
            for path, values in out.items()
        }

    def left_out(self, product: Product) -> Counter[str]:
        """How many of ``product``'s own values each field keeps for display only: all of a field not typed here,
        and those that are not their field's type."""
        out: Counter[str] = Counter()
        for path, value in leaf_values(product.extra):
            kind = self.types.get(path)
            if kind is None or typed_value(kind, value) is None:
                out[path] += 1
        return out

    def sorted_by_first(self, product: Product) -> list[str]:
        """The fields ``product`` holds several values of that are not :attr:`several`: a field of one value in the
        products an index was built from, several only in an update, has no least and greatest beside it (the
        embedded index's fields are fixed at its build), so a sort reads the first value held."""
        return [
            path for path, values in self.values(product).items() if path not in self.several and len(set(values)) > 1
        ]

    def to_json(self) -> str:
        return json.dumps({"fields": self.types, "several": sorted(self.several)}, indent=2)

    def save(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def load(cls, path: Path) -> CatalogFields:
        """The fields written beside an index; none where the index was built before it had them."""
        if not path.is_file():
            return cls()
        written = json.loads(path.read_text(encoding="utf-8"))
        return cls(written["fields"], written.get("several", ()))


def typed_value(kind: str, value: Any) -> Any:
    """``value`` as a field of type ``kind`` holds it, or None where it is not one (``"n/a"`` as a number)."""
    if kind == "keyword":
        # Composed, as the product's own texts are (product.composed): an export's decomposed "Mu\u0308ller" is
        # the composed one's value, to a filter and in a facet. The hit's _source keeps it as given.
        text = ("true" if value else "false") if isinstance(value, bool) else composed(str(value))
        return text if len(text) <= KEYWORD_MAX_CHARS else None
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        return _BOOLEANS.get(value.strip().lower()) if isinstance(value, str) else None
    if isinstance(value, bool):
        return None
    if kind == "date":
        if isinstance(value, int):
            return value  # epoch milliseconds, as Elasticsearch's default date format also reads a number
        return parse_date(value.strip()) if isinstance(value, str) else None
    number = value if isinstance(value, (int, float)) else _number(value)
    if number is None or _double(number) is None:
        return None
    if kind == "double":
        return _double(number)
    if isinstance(number, float) and not number.is_integer():
        return None
    return int(number) if MIN_LONG <= number <= MAX_LONG else None


def _number(value: Any) -> float | int | None:
    """A text that is a number as that number: whole where written without a fraction or an exponent (digits past
    a long's nineteen read as a float, as Python refuses to read thousands of digits as an int)."""
    if not isinstance(value, str) or (match := _NUMBER.fullmatch(value.strip())) is None:
        return None
    text = value.strip()
    whole = match.group(1) is None and "e" not in text.lower()
    return int(text) if whole and len(text.lstrip("-")) <= len(str(MAX_LONG)) else float(text)


def _double(number: float) -> float | None:
    """``number`` as a double holds it; None past a double's range (``1e400``, an int of 400 digits), as
    Elasticsearch refuses it in a double field."""
    try:
        held = float(number)
    except OverflowError:
        return None
    return held if math.isfinite(held) else None


def _without_parents(kinds: dict[str, set[str]]) -> None:
    """A path that is a value in one product and an object in another (``size: "L"``, ``size: {"eu": 40}``) is
    left out: an index field cannot be both, and Elasticsearch would refuse one of the two products."""
    parts = (path.split(".") for path in kinds)
    parents = {".".join(split[:end]) for split in parts for end in range(1, len(split))}
    for path in parents & set(kinds):
        del kinds[path]


def _valid_type(name: str, kind: str) -> FieldType:
    if kind not in FIELD_TYPES:
        raise ValueError(f"catalog field {name!r}: type {kind!r} is none of {', '.join(FIELD_TYPES)}")
    return kind  # type: ignore[return-value]  # checked against FIELD_TYPES above
