"""Google Merchant Center product feeds: the catalog format most shops already keep, for Google Shopping.

A feed is a tab-separated file (``products.txt``, its header Google's attribute names) or RSS 2.0 / Atom XML
whose items hold those attributes in the ``g:`` namespace. Read as any catalog, its ``price`` ("15.00 USD")
would be refused, its category (``product_type``, "Home > Furniture > Sofas") and facets (``color``,
``material``...) would be display fields, so a feed is mapped onto the product's fields first
(:func:`merchant_fields`):

- ``product_type`` (the shop's own taxonomy; the first when several are given: a text feed's separated by
  commas, an XML feed's each its own element) is the category, else ``google_product_category`` when it is a
  path (Google's taxonomy by name; its numeric id is no path);
- ``price`` is the number before its currency (a lone point before three digits groups thousands in a currency
  of fewer decimals, "1.299 EUR" as "1,299 USD"); ``sale_price`` stays as given, for display;
- ``color``, ``size``, ``material``, ``pattern``, ``gender``, ``age_group`` are attributes, a colour's values
  split at ``/`` as Google writes up to three ("Black/White");
- every other attribute (``link``, ``image_link``, ``availability``, ``gtin``...) is kept for display.

A record is read as a feed's when it holds one of :data:`MARKERS`, names no other catalog gives. A text feed
may name an attribute as Google's help pages write it, with spaces and capitals ("Image link", "product type"):
Google reads those as the underscored name, which only XML must use, and so does :func:`merchant_fields`.
"""

from __future__ import annotations

import re
import xml.parsers.expat
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from ..core.errors import DataError
from .text_files import byte_blocks

MARKERS = ("image_link", "google_product_category")
ATTRIBUTES = ("color", "size", "material", "pattern", "gender", "age_group")
ITEMS = ("item", "entry")  # RSS 2.0's and Atom's
PRICE = re.compile(r"^\s*([0-9][0-9.,]*)\s*([A-Za-z]{3})?\s*$")
MINOR_UNITS = {
    **dict.fromkeys("BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split(), 0),
    **dict.fromkeys("BHD IQD JOD KWD LYD OMR TND".split(), 3),
    **dict.fromkeys("CLF UYW".split(), 4),
}
"""ISO 4217's currencies whose minor unit is not the cent: how many decimals an amount in them may have (every
other currency has 2). A point followed by more digits than that ("1.299 EUR") groups thousands."""
NUMERIC_CATEGORY = re.compile(r"^\s*\d+\s*$")
DECIMAL_COMMA = re.compile(r",\d{1,2}$")


def is_merchant_record(record: Mapping[str, Any]) -> bool:
    return any(google_name(key) in MARKERS for key in record)


def google_name(key: str) -> str:
    """An attribute's name as Google reads a text feed's header: ``Image link`` and ``image link`` are
    ``image_link``."""
    return "_".join(key.lower().split())


def merchant_fields(record: Mapping[str, Any], *, xml: bool = False) -> dict[str, Any]:
    """A feed's record with its category, price and facets as the product's fields, the rest as it is, each
    attribute by its underscored name; ``xml``: the record is an XML feed's item (:func:`_main_type`)."""
    named: dict[str, Any] = {}
    for key, value in record.items():
        name = google_name(key)
        if name in named:
            raise ValueError(f"two columns give the attribute {name!r}; keep one")
        named[name] = value
    record = named
    out = {key: value for key, value in record.items() if key not in ("price", *ATTRIBUTES)}
    if "summary" in out and "description" not in out:  # an Atom entry's
        out["description"] = out.pop("summary")
    category = _main_type(record.get("product_type"), xml) or _path(record.get("google_product_category"))
    if category and "category" not in record:
        out["category"] = category
        if _first(record.get("product_type")) == category:
            del out["product_type"]
    if record.get("price") not in (None, ""):
        out["price"] = _amount(record["price"])
    attributes = {name: _values(name, record[name]) for name in ATTRIBUTES if record.get(name) not in (None, "")}
    if attributes:
        if record.get("attributes") not in (None, ""):
            raise ValueError("both Google's facet attributes (color, size...) and an attributes field; keep one")
        out["attributes"] = attributes
    return out


def _first(value: Any) -> str | None:
    """A text, or a list's first (an XML feed may repeat ``product_type``; the first is the main one)."""
    if isinstance(value, list):
        value = value[0] if value else None
    return value.strip() if isinstance(value, str) and value.strip() else None


def _main_type(value: Any, xml: bool) -> str | None:
    """The first product type. A text feed gives several in one cell, separated by commas, as Google reads them
    there ("Books > Sports,Books > Business"), so the first is the text before the first comma; an XML feed
    repeats the element instead, so its text is one type whole, commas and all ("Food, Beverages & Tobacco >
    Coffee"). The rest stay for display."""
    text = _first(value)
    return _first(text.split(",", 1)[0]) if text and not xml else text


def _path(value: Any) -> str | None:
    text = _first(value)
    return None if text is None or NUMERIC_CATEGORY.match(text) else text


def _amount(value: Any) -> Any:
    """ "15.00 USD", "1,299.00 USD" or "1.299,00 EUR" as the number; a number as it is; anything else left for the
    product to refuse, naming it."""
    if not isinstance(value, str):
        return value
    found = PRICE.match(value)
    if found is None:
        return value
    number, currency = found.groups()
    comma, point = number.rfind(","), number.rfind(".")
    if comma > point and (point >= 0 or DECIMAL_COMMA.search(number)):  # "1.299,00", "15,00": a decimal comma
        return number.replace(".", "").replace(",", ".")
    decimals = MINOR_UNITS.get(currency.upper(), 2) if currency else None
    if comma < 0 and decimals is not None and len(number) - point - 1 == 3 > decimals:  # "1.299 EUR": thousands
        return number.replace(".", "")
    return number.replace(",", "")  # "1,299.00", "1,299": commas group thousands


def _values(name: str, value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str | int | float) for item in items):
        raise ValueError(f"{name}: expected text, found elements inside it")
    texts = [str(item).strip() for item in items if str(item).strip()]
    if name == "color":
        texts = [part.strip() for text in texts for part in text.split("/") if part.strip()]
    return texts


def iter_xml_records(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each ``item`` (RSS) or ``entry`` (Atom) of an XML feed as a record of its children by local name (``g:id``
    is ``id``), numbered by the line it starts on: a child's text, a repeated child's texts as a list, a child
    with children of its own (``g:shipping``) as an object of them. The file is parsed in blocks of bytes, so a
    feed written on one line streams as any other and expat decodes it as its declaration says."""
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[tuple[str, dict[str, Any], list[str], str | None]] = []
    done: list[tuple[int, dict[str, Any]]] = []
    starts: list[int] = []
    read = 0

    def start(tag: str, attributes: dict[str, str]) -> None:
        name = tag.rsplit(" ", 1)[-1]
        if stack or name in ITEMS:
            if not stack:
                starts.append(parser.CurrentLineNumber)
            stack.append((name, {}, [], attributes.get("href")))

    def end(_tag: str) -> None:
        if not stack:
            return
        name, children, texts, href = stack.pop()
        value: Any = children if children else "".join(texts).strip() or href or ""  # Atom's <link href="..."/>
        if not stack:
            done.append((starts.pop(), children))
            return
        siblings = stack[-1][1]
        if name in siblings:
            kept = siblings[name]
            siblings[name] = [*kept, value] if isinstance(kept, list) else [kept, value]
        else:
            siblings[name] = value

    def text(data: str) -> None:
        if stack:
            stack[-1][2].append(data)

    def external(name: str | None, _base: str | None, system_id: str | None, _public_id: str | None) -> int:
        # expat reads no external entity, and without this handler drops the reference without a word.
        raise DataError(
            path,
            parser.CurrentLineNumber,
            f"refers to the external entity {name or system_id!r}, which is not read: write its text in the feed",
        )

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = text
    parser.ExternalEntityRefHandler = external
    try:
        for block in byte_blocks(path):
            parser.Parse(block, False)
            read += len(done)
            yield from done
            done.clear()
        parser.Parse("", True)
        read += len(done)
        yield from done
    except xml.parsers.expat.ExpatError as exc:
        raise DataError(path, exc.lineno, f"unreadable XML: {xml.parsers.expat.ErrorString(exc.code)}") from exc
    except LookupError as exc:  # the declaration's encoding="..." names none Python knows
        raise DataError(path, None, f"unreadable XML: {exc}") from None
    if not read:
        raise DataError(
            path, None, "no <item> or <entry> elements: a feed's products are its items (RSS) or entries (Atom)"
        )
