"""The product record every loader produces and every index consumes."""

from __future__ import annotations

import math
import unicodedata
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .number_text import DECIMAL_NUMBER

CATEGORY_SEPARATORS = (" > ", " / ", " | ", "/", ">", "|")
"""A category path's separators, the first one a path holds splitting it: a spaced one first, so that a level
written with a slash of its own ("Outdoor / Indoor/Outdoor Rugs", WANDS' and many PIMs' spaced paths) stays one
level. A bare one splits only a path with no spaced one (Magento's "Default Category/Gear/Bags")."""
EXTRA_DEPTH_LIMIT = 20
"""How many objects and lists an ``extra`` field may nest, the product's own object counted, as Elasticsearch's
``index.mapping.depth.limit`` (20) refuses a document nesting more objects. Past 200, the product store's JSON
reader could not read the product back (every search finding it answered a 500), and past about 500 the store
could not write it (the whole build failed)."""


MAX_TEXT_CHARS = 131_072
"""The longest title, description or brand: a CSV cell's limit (Python's ``csv.field_size_limit``), so a JSON Lines
catalog is held to what its CSV export would be. A product text of megabytes is a page's HTML or a dump, not a
listing, and indexing one costs seconds and a great deal of memory for that one product."""


def composed(text: str) -> str:
    """``text`` in Unicode's composed form (NFC), the one form the product holds and every query is read in.

    Exports from macOS and some PIMs write accents decomposed (NFD: "u" then a combining diaeresis), which an
    analyser cuts as two words ("mu", "ller") and a facet counts as another value than the same brand composed;
    read both ways into one form, "Müller" in either finds and filters the other."""
    return unicodedata.normalize("NFC", text)


def attribute_name(key: Any) -> str:
    """An attribute's key as the product and a filter hold it: "Color" and "color " are one attribute."""
    return composed(str(key)).strip().lower()


class Product(BaseModel):
    """A catalog item.

    ``category`` is the path from department to product type, so a filter on a
    prefix ("Furniture") matches everything below it. Attribute values are
    tuples because shops have multi-valued attributes (features, colours).
    Popularity signals are kept raw; :mod:`search_rerank.core.longtail` turns them
    into a percentile against the whole catalog.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=1, max_length=MAX_TEXT_CHARS)
    description: str = Field(default="", max_length=MAX_TEXT_CHARS)
    brand: str = Field(default="", max_length=MAX_TEXT_CHARS)
    category: tuple[str, ...] = ()
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)
    # Finite: an infinite price ("Infinity", or 1e400 overflowing a double) would be stored as null, silently.
    price: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    sales: int = Field(default=0, ge=0)
    review_count: int = Field(default=0, ge=0)
    rating: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    extra: dict[str, Any] = Field(default_factory=dict)
    """The catalog's other fields (an image, a product page's URL, a stock level, a date), as given: kept with the
    product and answered in its hits' ``_source``, as Elasticsearch answers a document's, so a front end shows
    what it showed before; never searched for words, but filtered, sorted and faceted by the type their values
    read (core/catalog_fields.py). The catalog loaders fill it with the keys that are no field of the product
    (see loaders)."""

    @field_validator("id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value  # true: refused

    @field_validator("title", "description", "brand", mode="before")
    @classmethod
    def _text_composed(cls, value: Any) -> Any:
        return composed(value) if isinstance(value, str) else value

    @field_validator("category", mode="before")
    @classmethod
    def split_category(cls, value: Any) -> Any:
        if value is None:
            return ()
        if isinstance(value, str):
            value = composed(value)
            for sep in CATEGORY_SEPARATORS:
                if sep in value:
                    return tuple(p.strip() for p in value.split(sep) if p.strip())
            return (value.strip(),) if value.strip() else ()
        if isinstance(value, (list, tuple)):  # a blank level, as a path "A >  > B" has none
            return tuple(
                composed(p) if isinstance(p, str) else p for p in value if not (isinstance(p, str) and not p.strip())
            )
        return value

    @field_validator("extra")
    @classmethod
    def _extra_fields_are_not_the_products(cls, value: dict[str, Any]) -> dict[str, Any]:
        """A field of the product's own given as an extra one would be answered twice, once as the product holds
        it and once as given, so it is refused: the product's is the one searched."""
        own = [key for key in value if key in cls.model_fields and key != "extra"]
        if own:
            raise ValueError(f"{', '.join(own)}: a field of the product, not an extra one")
        deep = [key for key, field in value.items() if _nests_past(field, EXTRA_DEPTH_LIMIT - 1)]
        if deep:
            raise ValueError(f"{', '.join(deep)}: nests objects or lists more than {EXTRA_DEPTH_LIMIT} deep")
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_values_as_tuples(cls, value: Any) -> Any:
        if value is None:
            return {}
        if not isinstance(value, dict):
            return value
        out: dict[str, tuple[str, ...]] = {}
        for key, val in value.items():
            if val is None or val == "":
                continue
            texts = (_attribute_text(key, v) for v in (val if isinstance(val, (list, tuple)) else (val,)))
            name = attribute_name(key)
            kept = out.get(name, ())
            out[name] = kept + tuple(text for text in texts if text and text not in kept)
        return out

    @field_validator("price", "rating", mode="before")
    @classmethod
    def _blank_number_is_missing(cls, value: Any) -> Any:
        _not_boolean(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        _decimal_text(value)
        if isinstance(value, float) and math.isnan(value):
            return None
        return value

    @field_validator("price", "rating")
    @classmethod
    def _no_negative_zero(cls, value: float | None) -> float | None:
        """-0.0 passes ``ge=0`` and is 0, but sorts before 0.0 in an index (and in Elasticsearch): held as 0.0."""
        return 0.0 if value == 0 else value

    @field_validator("sales", "review_count", mode="before")
    @classmethod
    def _blank_count_is_zero(cls, value: Any) -> Any:
        _not_boolean(value)
        if value is None or (isinstance(value, str) and not value.strip()):
            return 0
        _decimal_text(value)
        if isinstance(value, float) and math.isnan(value):
            return 0  # a Parquet or pandas column of counts with a gap
        return value  # 12.0 is 12; pydantic refuses 3.7 and 1e400 by name, where int() cut or overflowed

    def attribute_text(self) -> str:
        """Attribute values as words ("red leather"), for matching in text fields."""
        return " ".join(v for values in self.attributes.values() for v in values)

    def field_texts(self) -> dict[str, str]:
        """The text each lexical field (``settings.LEXICAL_FIELDS``) is indexed from, by either backend: what a
        field's words and model codes are cut from, read again where the index's stems are not enough (the words a
        suggestion shows, serving/did_you_mean)."""
        return {
            "title": self.title,
            "brand": self.brand,
            "category": " ".join(self.category),
            "attributes": self.attribute_text(),
            "description": self.description,
        }

    def category_facets(self) -> dict[str, str]:
        """The category as facet keywords: the path down to each depth (``lvl1``, ``lvl2``, ...) for a
        hierarchical facet, and the whole path (``path``) for a flat list of categories (a front end's
        ``category.keyword``), each ``"Furniture > Sofas"``; none without a category."""
        levels = {f"lvl{depth}": " > ".join(self.category[:depth]) for depth in range(1, len(self.category) + 1)}
        return {**levels, "path": " > ".join(self.category)} if self.category else {}

    def embedding_text(self) -> str:
        """What the bi-encoder reads: the fields a shopper's words refer to, most telling first.

        The description comes last so truncation at the model's max length drops
        the least specific text.
        """
        parts = [self.title]
        if self.brand:
            parts.append(self.brand)
        if self.category:
            parts.append(" > ".join(self.category))
        attrs = "; ".join(f"{k}: {', '.join(v)}" for k, v in self.attributes.items())
        if attrs:
            parts.append(attrs)
        if self.description:
            parts.append(self.description)
        return ". ".join(parts)

    def to_record(self) -> dict[str, Any]:
        """A JSON-ready dict (the JSONL catalog format, BEIR corpus extras and hits' ``_source``): the product's
        fields, then its ``extra`` ones beside them, as the catalog gave them."""
        record = self.model_dump(mode="json", exclude_defaults=True, exclude={"extra"})
        record["id"] = self.id
        record["title"] = self.title
        return {**record, **self.extra}


def _nests_past(value: Any, levels: int) -> bool:
    """Whether ``value`` holds objects or lists inside one another more than ``levels`` deep (it stops looking
    there, so a value nested thousands deep costs no more than one at the limit)."""
    if not isinstance(value, (dict, list, tuple)):
        return False
    if levels == 0:
        return True
    return any(_nests_past(item, levels - 1) for item in (value.values() if isinstance(value, dict) else value))


def _not_boolean(value: Any) -> None:
    """pydantic reads JSON's true as the number 1: a price or a count of true is a column mixed up, not a 1."""
    if isinstance(value, bool):
        raise ValueError("expected a number, not a boolean")


def _decimal_text(value: Any) -> None:
    """A number given as text is read only where it is written as one: Python also reads ``1_000`` as a thousand
    and ``nan`` as a number, which no catalog's column means."""
    if isinstance(value, str) and not DECIMAL_NUMBER.fullmatch(value.strip()):
        finite = " finite" if value.strip().lstrip("+-").lower() in ("inf", "infinity", "nan") else ""
        raise ValueError(f"{value.strip()[:40]!r} is not a{finite} number")


def _attribute_text(key: Any, value: Any) -> str:
    """One attribute value as the text it is searched and filtered by: null is no value, a boolean as JSON (and
    Elasticsearch's keyword) writes it; a list or object inside is refused, since str() would index its repr."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list, tuple)):
        raise ValueError(
            f"attribute {str(key)!r}: a value is a {type(value).__name__}; give a text, a number or a list of them"
        )
    return composed(str(value)).strip()
