"""A relevance dataset: a catalog, the queries shoppers typed, and judged splits.

Every loader (BEIR, WANDS, ESCI, Home Depot) produces this one shape so that indexing,
tuning and evaluation never need to know where the data came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from ..core.errors import ConfigError, DataError
from ..core.product import Product
from .qrels import Qrels


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
    as relevant results the engine cannot find).
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

    def split(self, name: str) -> tuple[dict[str, Query], Qrels]:
        """The queries judged in split ``name`` and their judgments."""
        if name not in self.qrels:
            available = ", ".join(sorted(self.qrels)) or "none"
            raise ConfigError(f"dataset {self.name!r} has no split {name!r}; available: {available}")
        judged = self.qrels[name]
        return {qid: self.queries[qid] for qid in judged}, judged
