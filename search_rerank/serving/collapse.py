"""Field collapsing on the embedded index: one hit per value of a field, as Elasticsearch's ``collapse``.

ReactiveSearch sends it for a result list's or a search box's ``distinctField`` (one product per brand, a
product's variants folded under one hit by a parent SKU of the shop's catalog); refused, those front ends could
not run on the default backend at all. As in Elasticsearch: each value's first product in the page's order is its
hit, which carries the value under ``fields`` by the name asked (``[null]`` for the products without one, which
share a hit); ``from`` and ``size`` count hits, not products; ``hits.total`` and the aggregations count every
match. The order collapsed is the one served: the pipeline's ranking and the matches past it
(``EmbeddedSearch.filled``), a field sort, or a listing's. The field is one a product holds at most one value of
(a keyword, a number, a date, the category path or a level of it, an attribute or a catalog field each product
holds once); a match with several, on the page or not, is a 400 naming ``collapse.field``, as Elasticsearch
fails such a search. Values are exact, as a keyword's terms: "Acme" and "ACME" are two hits, though a ``term``
filter on the brand matches both.

How: the ordered products are read a page at a time, each read after the first leaving out (a ``must_not``) the
values already answered, exactly as held, so that a value thousands of products share costs one read, not
thousands.
At most :data:`MAX_ROWS_READ` products are read for one page. ``inner_hits`` (ReactiveSearch's
``distinctFieldConfig``) list each hit's value's matches, by score (the words' BM25: what a value's products are
ranked by past the pipeline's window) or by their own sort, with their count; on a cluster they are a 501, their
documents being the product index's.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from ..backends.mappings import document
from ..core.catalog_fields import CatalogFields
from ..core.product import Product
from .body_checks import InvalidQuery, Unsupported, a_count, a_string, an_object, known_keys
from .es_compat import SourceFilter, source_filter
from .hit_fields import IndexedField, Locate, held_values, locate_field

FIELD = "collapse.field"
INNER_HITS = "collapse.inner_hits"
COLLAPSE_KEYS = ("field", "inner_hits", "max_concurrent_group_searches")
INNER_HITS_KEYS = ("name", "from", "size", "sort", "_source")
INNER_HITS_UNSERVED = (
    *("highlight", "explain", "version", "seq_no_primary_term", "track_scores", "stored_fields"),
    *("docvalue_fields", "script_fields", "fields", "collapse", "ignore_unmapped"),
)
"""What Elasticsearch's inner hits take besides these: a 501 naming it."""
DEFAULT_INNER_SIZE = 3
MAX_INNER_WINDOW = 100
"""Elasticsearch's ``index.max_inner_result_window``: from + size past it is a 400."""
MAX_INNER_SEARCHES = 1_000
"""The most inner hits one page expands (its hits times the ``inner_hits`` entries): each is a count and a search
of the hit's value's products (about half a millisecond on 20,000 products), where a ReactiveSearch list of tens of
hits asks for one entry; ten entries on a page of 10,000 hits held a worker for a minute and 700 MB."""
MAX_READ = 10_000
"""The most rows one read of the matches asks for (Elasticsearch's ``index.max_result_window``)."""
MAX_ROWS_READ = 100_000
"""The most rows read to fill one page: past it the page ends with the values found (a page of values that each
hold thousands of products, far down the list)."""
Row = TypeVar("Row")
Key = Hashable
"""A product's value of the field, or None where it holds none."""


@dataclass(frozen=True)
class InnerHits:
    """One ``inner_hits`` of a collapse: each value's products besides its hit, as Elasticsearch expands them."""

    name: str
    """The key of the hit's ``inner_hits`` that answers them (by default the field's name, as asked)."""
    where: str
    """Where it is in the body (``collapse.inner_hits``, ``collapse.inner_hits[1]``), for a refusal to name."""
    offset: int = 0
    size: int = DEFAULT_INNER_SIZE
    sort: Any = None
    """The sort as asked (the backend reads it); none: by score."""
    source: SourceFilter = SourceFilter()


@dataclass(frozen=True)
class Collapse:
    """The field a search's hits are collapsed by."""

    asked: str
    """The name the body gives it (the answer's ``fields`` key)."""
    spot: IndexedField
    inner: tuple[InnerHits, ...] = ()

    def key(self, product: Product, catalog: CatalogFields | None) -> Key:
        """``product``'s value of the field (None without one); a 400 where it holds several."""
        values = held_values(document(product), product, self.spot, catalog)
        if len(values) > 1:
            raise self.several(f"product [{product.id}] holds {len(values)} values")
        return values[0] if values else None

    def several(self, holder: str) -> InvalidQuery:
        """The 400 of a search where a product holds several values of the field, as Elasticsearch fails it."""
        return InvalidQuery(
            FIELD, f"failed to collapse: the collapse field must be single valued, and {holder} of [{self.asked}]"
        )

    def holding(self, keys: Sequence[Key]) -> dict[str, Any]:
        """A query (Query DSL, by the name asked) that matches the products of these values (None: of none)."""
        values = [key for key in keys if key is not None]
        clauses: list[dict[str, Any]] = [{"terms": {self.asked: values}}] if values else []
        if len(values) < len(keys):
            clauses.append({"bool": {"must_not": [{"exists": {"field": self.asked}}]}})
        return {"bool": {"should": clauses}}


def parse_collapse(spec: Any, locate: Locate, aliases: Mapping[str, str]) -> Collapse:
    """``collapse`` as Elasticsearch reads it (CollapseBuilder), its field checked before the search runs."""
    spec = an_object(spec, "collapse")
    known_keys(spec, "collapse", COLLAPSE_KEYS)
    if spec.get("max_concurrent_group_searches") is not None:  # a cluster's fan-out: nothing to bound here
        a_count(spec["max_concurrent_group_searches"], "collapse.max_concurrent_group_searches", minimum=1)
    if "field" not in spec:
        raise InvalidQuery(FIELD, "required")
    name = a_string(spec["field"], FIELD)
    if not name:
        raise InvalidQuery(FIELD, "a field name cannot be empty")
    spot = locate_field(name, FIELD, locate, aliases)
    if spot is None:
        raise InvalidQuery(FIELD, f"no mapping found for [{name}] in order to collapse on")
    return Collapse(name, spot, _inner_hits(spec.get("inner_hits"), name))


def _inner_hits(spec: Any, field: str) -> tuple[InnerHits, ...]:
    """``inner_hits``: one object (``{}``: the defaults) or a list of them, each named once."""
    if spec is None or spec == []:
        return ()
    listed = isinstance(spec, list)
    out: list[InnerHits] = []
    for i, item in enumerate(spec if listed else [spec]):
        where = f"{INNER_HITS}[{i}]" if listed else INNER_HITS
        item = an_object(item, where)
        known_keys(item, where, (*INNER_HITS_KEYS, *INNER_HITS_UNSERVED))
        for key in INNER_HITS_UNSERVED:
            if item.get(key) not in (None, False, [], {}):
                raise Unsupported(f"{where}.{key}", "in inner hits")
        name = a_string(item["name"], f"{where}.name") if item.get("name") is not None else field
        if any(known.name == name for known in out):
            raise InvalidQuery(f"{where}.name", f"[inner_hits] already contains an entry for key [{name}]")
        offset = a_count(item.get("from", 0), f"{where}.from")
        size = a_count(item.get("size", DEFAULT_INNER_SIZE), f"{where}.size")
        if offset + size > MAX_INNER_WINDOW:
            raise InvalidQuery(
                where,
                f"the inner hits' from + size must be at most {MAX_INNER_WINDOW} (Elasticsearch's "
                f"index.max_inner_result_window), was {offset + size}",
            )
        source = source_filter(item["_source"], f"{where}._source") if "_source" in item else SourceFilter()
        out.append(InnerHits(name, where, offset, size, item.get("sort"), source))
    return tuple(out)


def distinct(
    first: Sequence[Row],
    keys: Callable[[Sequence[Row]], list[Key]],
    need: int,
    more: Callable[[list[Key], int], Sequence[Row]],
) -> tuple[list[Row], list[Key]]:
    """The first row of each key, in order, up to ``need`` of them, and their keys.

    ``first``: the rows in order as far as they are known; ``more(seen, n)``: up to ``n`` rows that follow them
    (in the same order) whose keys are not ``seen``, none once there are no more. ``keys``: each row's key."""
    seen: dict[Key, None] = {}
    rows: list[Row] = []

    def take(batch: Sequence[Row]) -> int:
        added = 0
        for row, key in zip(batch, keys(batch), strict=True):
            if len(rows) == need:
                break
            if key not in seen:
                seen[key] = None
                rows.append(row)
                added += 1
        return added

    take(first)
    ask, read = 0, 0
    while len(rows) < need and read < MAX_ROWS_READ:
        # Each read asks twice as many as the last (a read's rows may share values), so that pages of values
        # that hundreds of products each share take a few reads, not one per value.
        ask = min(max(need - len(rows), 2 * ask), MAX_READ)
        batch = more(list(seen), ask)
        read += len(batch)
        if not take(batch):
            break
    return rows, list(seen)
