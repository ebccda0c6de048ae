"""Structured filters applied identically by both retrieval legs.

A filter narrows the candidate set *before* ranking in each leg (not after
fusion), so that a filtered query still gets a full candidate list from both.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from .product import Product, attribute_name, composed


def normalise_term(value: str) -> str:
    """The folded form every exact filter match compares (brand, category part, attribute value).

    Public because each backend (tantivy, FAISS, cluster mappings and queries) must fold exactly as
    :class:`Filters` does, or the same filter would match different products per backend.
    """
    return composed(value).strip().casefold()


def category_key(parts: Iterable[str]) -> str:
    """A normalised category prefix as one exact term, so that a prefix filter is a single lookup.

    JSON, so that no separator inside a category name can make two paths collide.
    """
    return json.dumps([normalise_term(part) for part in parts], ensure_ascii=False)


def category_keys(path: Iterable[str]) -> list[str]:
    """Every prefix of a product's category path, each as a :func:`category_key`."""
    parts = list(path)
    return [category_key(parts[:depth]) for depth in range(1, len(parts) + 1)]


def attribute_key(key: str, value: str) -> str:
    """One attribute key/value pair as one exact term (keys are already normalised by the models)."""
    return json.dumps([key, normalise_term(value)], ensure_ascii=False)


class Filters(BaseModel):
    """``category`` is a path prefix; ``brand`` and each attribute match any listed value.

    Matching is case-insensitive: shops' facet values vary in case between
    the catalog and the front end.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    category: tuple[str, ...] | None = None
    brand: tuple[str, ...] | None = None
    # A bound of "inf" or "1e400" is no price (and JSON, the result cache's key, writes it as null, so an infinite
    # lower bound and an infinite upper one would be one key): a 400, as a number Elasticsearch cannot parse.
    price_min: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    price_max: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    attributes: dict[str, tuple[str, ...]] = Field(default_factory=dict)

    @field_validator("category", mode="before")
    @classmethod
    def _category_path(cls, value: Any) -> Any:
        if isinstance(value, str):
            return Product.split_category(value)
        return value

    @field_validator("brand", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return (value,) if isinstance(value, str) else value

    @field_validator("price_min", "price_max", mode="before")
    @classmethod
    def _not_a_boolean(cls, value: Any) -> Any:
        if isinstance(value, bool):  # pydantic reads true as 1.0: a bound nobody meant
            raise ValueError("a number, not true or false")
        return value

    @field_validator("attributes", mode="before")
    @classmethod
    def _attribute_lists(cls, value: Any) -> Any:
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, values in value.items():
            name = attribute_name(key)
            if name in out:  # "Color" and "color ": one attribute, and one of the two would be dropped unseen
                raise ValueError(f"{key!r} names the attribute {name!r} another key names too: give it once")
            out[name] = (values,) if isinstance(values, str) else values
        return out

    @field_validator("price_max")
    @classmethod
    def _price_range_ordered(cls, value: float | None, info: ValidationInfo) -> float | None:
        """On the field, not the model, so that a refusal names ``price_max`` (a model's error has no place, and a
        query parameter's refusal named no parameter)."""
        low = info.data.get("price_min")
        if value is not None and low is not None and low > value:
            raise ValueError(f"price_min ({low}) is above price_max ({value})")
        return value

    @property
    def is_empty(self) -> bool:
        return (
            not self.category
            and not self.brand
            and self.price_min is None
            and self.price_max is None
            and not self.attributes
        )

    def matches(self, product: Product) -> bool:
        """The reference semantics that every backend's filter must reproduce."""
        if self.category:
            path = [normalise_term(p) for p in product.category]
            if [normalise_term(p) for p in self.category] != path[: len(self.category)]:
                return False
        if self.brand and normalise_term(product.brand) not in {normalise_term(b) for b in self.brand}:
            return False
        if self.price_min is not None and (product.price is None or product.price < self.price_min):
            return False
        if self.price_max is not None and (product.price is None or product.price > self.price_max):
            return False
        for key, wanted in self.attributes.items():
            have = {normalise_term(v) for v in product.attributes.get(key, ())}
            if not have & {normalise_term(v) for v in wanted}:
                return False
        return True
