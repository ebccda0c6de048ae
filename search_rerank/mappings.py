"""The product index's shape: settings and mappings from ``index_mappings/``, and the document per product.

The JSON is the single definition of the index: a file is a ready create-index
body, and a new version is a new file, never an edit, so an index built from
v1 can always be told apart (``_meta.mapping_version``) and rebuilt the same
way. Code only fills in what varies per deployment: BM25's k1/b, and the
synonym rules of the hook filter named in ``_meta.synonyms_filter``. The
mapping is ``dynamic: strict``, so a document field that the JSON lacks is
rejected at index time instead of being guessed.
"""

from __future__ import annotations

import json
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .filters import _norm, attribute_key, category_keys
from .longtail import popularity_signal
from .product import Product
from .settings import LexicalSettings

MAPPINGS = "index_mappings"


def mappings_dir() -> Path:
    """The repository's top-level ``index_mappings/`` (source checkouts, editable installs, the Docker
    image), or the copy a wheel installs under ``<prefix>/share/search-rerank/``."""
    for candidate in (Path(__file__).resolve().parent.parent / MAPPINGS,
                      Path(sys.prefix) / "share" / "search-rerank" / MAPPINGS):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no {MAPPINGS}/ directory found next to the package or under {sys.prefix}/share/search-rerank")


def available_versions() -> list[int]:
    names = (entry.name for entry in mappings_dir().iterdir())
    return sorted(int(name[len("products.v"):-len(".json")]) for name in names
                  if name.startswith("products.v") and name.endswith(".json"))


@lru_cache(maxsize=None)
def _read(version: int) -> str:
    source = mappings_dir() / f"products.v{version}.json"
    if not source.is_file():
        raise ConfigError(f"lexical.mapping_version={version}: no {MAPPINGS}/products.v{version}.json; "
                          f"available versions: {available_versions()}")
    return source.read_text(encoding="utf-8")


def load_mapping(version: int) -> dict[str, Any]:
    """The file as written (a fresh copy each call, so callers may edit it)."""
    return json.loads(_read(version))


def read_synonyms(path: Path) -> list[str]:
    """Solr-format rules (``sofa, couch`` or ``tv => television``), one a line, ``#`` comments."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"lexical.synonyms_file: cannot read {path}: {exc.strerror}") from exc
    rules = [line.strip() for line in text.splitlines()]
    return [rule for rule in rules if rule and not rule.startswith("#")]


def index_body(settings: LexicalSettings) -> dict[str, Any]:
    """The create-index body for ``settings``: the versioned file with k1/b and synonyms filled in.

    Without synonym rules the hook filter is taken out of the analysis chain:
    engines differ on whether a synonym filter with no rules is an error.
    """
    body = load_mapping(settings.mapping_version)
    body["settings"]["index"]["similarity"]["default"].update(k1=settings.k1, b=settings.b)
    hook = body["mappings"]["_meta"]["synonyms_filter"]
    analysis = body["settings"]["analysis"]
    rules = read_synonyms(settings.synonyms_file) if settings.synonyms_file is not None else []
    if rules:
        analysis["filter"][hook]["synonyms"] = rules
    else:
        del analysis["filter"][hook]
        for analyzer in analysis["analyzer"].values():
            analyzer["filter"] = [name for name in analyzer["filter"] if name != hook]
    return body


def document(product: Product) -> dict[str, Any]:
    """Text fields as the tantivy leg indexes them, normalised filter keys, and display values for facets.

    Filter keys are computed here rather than by an engine normaliser because
    ``Filters`` compares with Unicode case folding ("Straße" = "STRASSE"),
    which no built-in normaliser reproduces.
    """
    doc: dict[str, Any] = {
        "id": product.id,
        "title": product.title,
        "brand": product.brand,
        "category": " ".join(product.category),
        "attributes": product.attribute_text(),
        "description": product.description,
        "sales": product.sales,
        "review_count": product.review_count,
        "popularity": float(popularity_signal(product.sales, product.review_count)),
        "filter": {
            "category_path": category_keys(product.category),
            "brand": _norm(product.brand),
            "attribute": [attribute_key(key, value) for key, values in product.attributes.items()
                          for value in values],
        },
        "facet": {
            "category": {f"lvl{depth}": " > ".join(product.category[:depth])
                         for depth in range(1, len(product.category) + 1)},
            "attributes": [{"key": key, "value": value} for key, values in product.attributes.items()
                           for value in values],
        },
    }
    if product.price is not None:
        doc["price"] = product.price
    if product.rating is not None:
        doc["rating"] = product.rating
    if product.brand:
        doc["facet"]["brand"] = product.brand
    return doc
