"""A relevance dataset: a catalog, the queries shoppers typed, and judged splits.

Every loader (BEIR, WANDS, ESCI, Home Depot) produces this one shape so that indexing,
tuning and evaluation never need to know where the data came from.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.errors import ConfigError, DataError
from ..core.product import Product
from .qrels import Qrels

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Query:
    """A query and what the source says about it.

    ``meta`` values are strings (``query_class``, ``kind``, heldout flags,
    ``frequency``) so that every dataset format can carry them unchanged; parse
    them where they are used.
    """

    id: str
    text: str
    meta: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.meta, MappingProxyType):
            object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))


@dataclass
class Dataset:
    """Products, queries and qrels per split ("train", "dev", "test", ...).

    Every judged query must be in ``queries``, so evaluation can score every
    judged query; judged products may be missing from ``products`` (they count
    as relevant results the engine cannot find, and a warning says how many). When a split judges none of
    them, its judgments most likely name products by other ids than the catalog
    ("1.0" for "1", a SKU for an internal id) and every figure measured on them
    is 0: that is logged as a warning (the heads of a dataset's files, sampled,
    can also judge none).
    """

    name: str
    products: list[Product]
    queries: dict[str, Query]
    qrels: dict[str, Qrels]

    def __post_init__(self) -> None:
        for split, judged in self.qrels.items():
            missing = [qid for qid in judged if qid not in self.queries]
            if missing:
                raise DataError(
                    self.name,
                    None,
                    f"split {split!r} judges {len(missing)} query id(s) with no query text, e.g. {missing[:5]}; "
                    "add them to the queries or drop their judgments",
                )
        catalog = {product.id for product in self.products}
        for split, judged in self.qrels.items():
            products = sorted({pid for grades in judged.values() for pid in grades})
            if catalog and products and catalog.isdisjoint(products):
                log.warning(
                    "%s: split %r judges none of the %d products of the catalog, so every figure measured on it "
                    "is 0: it judges %s, the catalog holds %s; give the judgments the catalog's product ids",
                    self.name,
                    split,
                    len(catalog),
                    products[:3],
                    sorted(catalog)[:3],
                )
                continue
            relevant = sorted({pid for grades in judged.values() for pid, grade in grades.items() if grade > 0})
            absent = [pid for pid in relevant if pid not in catalog]
            if catalog and absent:
                log.warning(
                    "%s: split %r: %d of the %d products it judges relevant are not in the catalog (e.g. %s): "
                    "no configuration can find them, so recall and nDCG are lower for all alike; add them to the "
                    "catalog, or drop their judgments",
                    self.name,
                    split,
                    len(absent),
                    len(relevant),
                    absent[:3],
                )

    def split(self, name: str) -> tuple[dict[str, Query], Qrels]:
        """The queries judged in split ``name`` and their judgments."""
        if name not in self.qrels:
            available = ", ".join(sorted(self.qrels)) or "none"
            raise ConfigError(f"dataset {self.name!r} has no split {name!r}; available: {available}")
        judged = self.qrels[name]
        if not judged:  # every figure would be 0, read as a configuration that found nothing
            raise ConfigError(f"dataset {self.name!r}: split {name!r} judges no query; its judgments file is empty")
        return {qid: self.queries[qid] for qid in judged}, judged
