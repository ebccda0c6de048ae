"""The product index's shape: settings and mappings from ``index_mappings/``, and the document per product.

The JSON is the single definition of the index: a file is a ready create-index
body, and a new version is a new file, never an edit, so an index built from
v1 can always be told apart (``_meta.mapping_version``) and rebuilt the same
way. Code only fills in what varies per deployment: BM25's k1/b, and the
synonym rules of the hook filter named in ``_meta.synonyms_filter``. The
mapping is ``dynamic: strict``, so a document field that the JSON lacks is
rejected at index time instead of being guessed.

With the dense leg on the engine (``dense.backend = "engine"``) the index also
holds each product's vector: ``vectors.<engine>.vN.json`` is a fragment
(settings and mappings) merged into the product body, versioned the same way
(``_meta.vector_mapping_version``), with the encoder's dimension and the HNSW
parameters filled in at index creation.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ..core.catalog_fields import CatalogFields
from ..core.errors import ConfigError
from ..core.filters import attribute_key, category_keys, normalise_term
from ..core.longtail import popularity_signal
from ..core.product import Product
from ..core.settings import DenseSettings, LexicalSettings
from .codes import product_codes
from .synonyms import read_synonyms

MAPPINGS = "index_mappings"
# The whole category path as a keyword (a front end's ``category.keyword``). The dynamic template maps it, so an
# index written before documents carried it lacks it: searches ask the served index (``ClusterRetriever.fields``).
WHOLE_CATEGORY = "facet.category.path"
# The title as one keyword (a shop's "Name: A-Z" sort), since mapping version 2: an index of version 1 lacks it.
TITLE_KEYWORD = "title.keyword"
WORDS = "words"
"""Each text field's sub-field of its words unstemmed (``title.words``), since mapping version 5: what term and phrase
suggesters read, so that they suggest words ("table"), not the index's stems ("tabl")."""
CODE = "code"
"""The object holding each text field's model codes, separators dropped (``code.title``: ["dw745b"]), since mapping
version 4: what a query's "dw745b" finds "DW745-B" by on the cluster (``lexical.model_codes``, :mod:`.codes`)."""
CATALOG = "catalog"
"""The object holding the catalog's own fields (core/catalog_fields.py), mapped with their types when an index is
created, so that a front end's filters, sorts and facets on them run on the cluster as they are sent."""
# How each catalog field type is mapped; a date takes Elasticsearch's default formats (a date or epoch millis).
CATALOG_MAPPING = {
    "keyword": {"type": "keyword"},
    "long": {"type": "long"},
    "double": {"type": "double"},
    "date": {"type": "date"},
    "boolean": {"type": "boolean"},
}


def mappings_dir() -> Path:
    """The repository's top-level ``index_mappings/`` (source checkouts, editable installs, the Docker
    image), or the copy a wheel installs under ``<prefix>/share/search-rerank/``."""
    for candidate in (
        Path(__file__).resolve().parents[2] / MAPPINGS,
        Path(sys.prefix) / "share" / "search-rerank" / MAPPINGS,
    ):
        if candidate.is_dir():
            return candidate
    raise ConfigError(f"no {MAPPINGS}/ directory found next to the package or under {sys.prefix}/share/search-rerank")


def available_versions() -> list[int]:
    names = (entry.name for entry in mappings_dir().iterdir())
    return sorted(
        int(name[len("products.v") : -len(".json")])
        for name in names
        if name.startswith("products.v") and name.endswith(".json")
    )


@cache
def _read(version: int) -> str:
    source = mappings_dir() / f"products.v{version}.json"
    if not source.is_file():
        raise ConfigError(
            f"lexical.mapping_version={version}: no {MAPPINGS}/products.v{version}.json; "
            f"available versions: {available_versions()}"
        )
    return source.read_text(encoding="utf-8")


def available_vector_versions(engine: str) -> list[int]:
    prefix = f"vectors.{engine}.v"
    names = (entry.name for entry in mappings_dir().iterdir())
    return sorted(
        int(name[len(prefix) : -len(".json")]) for name in names if name.startswith(prefix) and name.endswith(".json")
    )


@cache
def _read_vectors(engine: str, version: int) -> str:
    name = f"vectors.{engine}.v{version}.json"
    source = mappings_dir() / name
    if not source.is_file():
        raise ConfigError(
            f"dense.vector_mapping_version={version}: no {MAPPINGS}/{name} for lexical.backend="
            f"{engine!r}; available versions: {available_vector_versions(engine)}"
        )
    return source.read_text(encoding="utf-8")


def load_mapping(version: int) -> dict[str, Any]:
    """The file as written (a fresh copy each call, so callers may edit it)."""
    return json.loads(_read(version))


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


def synonym_rules(settings: Mapping[str, Any], hook: str) -> list[str]:
    """The rules of the synonym filter ``hook`` in an index's ``settings`` (a create-index body's, or an index's
    own as the cluster answers them): none where the filter was left out."""
    index = settings.get("index", {})
    analysis = settings.get("analysis") or (index.get("analysis") if isinstance(index, Mapping) else None) or {}
    return list(analysis.get("filter", {}).get(hook, {}).get("synonyms", []))


def _fill_elasticsearch(field: dict[str, Any], dims: int, dense: DenseSettings) -> None:
    field["dims"] = dims
    field["index_options"].update(m=dense.hnsw_m, ef_construction=dense.hnsw_ef_construction)


def _fill_opensearch(field: dict[str, Any], dims: int, dense: DenseSettings) -> None:
    field["dimension"] = dims
    field["method"]["parameters"].update(m=dense.hnsw_m, ef_construction=dense.hnsw_ef_construction)


# Where each engine's vector field takes the values that vary per deployment; the rest is the file's.
_VECTOR_FILLERS = {"elasticsearch": _fill_elasticsearch, "opensearch": _fill_opensearch}
# The mapping parameter that holds the dimension, to read an existing index's mapping back.
VECTOR_DIMENSION_KEY = {"elasticsearch": "dims", "opensearch": "dimension"}


def _vector_engine(engine: str) -> str:
    if engine not in _VECTOR_FILLERS:
        raise ConfigError(
            f"dense.backend='engine' needs a cluster lexical backend, not {engine!r}; valid: {sorted(_VECTOR_FILLERS)}"
        )
    return engine


def vector_field(engine: str, version: int) -> str:
    """The name of the vector field in ``vectors.<engine>.v<version>.json``."""
    return json.loads(_read_vectors(_vector_engine(engine), version))["mappings"]["_meta"]["vector_field"]


def vector_mapping(engine: str, dims: int, dense: DenseSettings) -> dict[str, Any]:
    """The fragment that adds the kNN vector field to a new index: the versioned file, with the encoder's
    dimension and ``dense.hnsw_m`` / ``dense.hnsw_ef_construction`` filled in."""
    if dims < 1:
        raise ValueError(f"dims={dims}: a vector field needs at least one dimension")
    body = json.loads(_read_vectors(_vector_engine(engine), dense.vector_mapping_version))
    field = body["mappings"]["_meta"]["vector_field"]
    _VECTOR_FILLERS[engine](body["mappings"]["properties"][field], dims, dense)
    return body


def field_paths(mappings: Mapping[str, Any]) -> frozenset[str]:
    """Every field path (``facet.category.lvl1``) of a ``mappings`` object, its objects' own paths and its fields'
    multi-fields (``title.keyword``) included."""

    def paths(properties: Mapping[str, Any], prefix: str) -> set[str]:
        out = set()
        for name, spec in properties.items():
            path = f"{prefix}{name}"
            out |= {path, *paths({**spec.get("properties", {}), **spec.get("fields", {})}, f"{path}.")}
        return out

    return frozenset(paths(mappings.get("properties", {}), ""))


def catalog_mapping(catalog: CatalogFields) -> dict[str, Any]:
    """The create-index fragment that maps ``catalog``'s fields under :data:`CATALOG` (a dotted name as the
    objects it names)."""
    properties = _nested(((name, dict(CATALOG_MAPPING[kind])) for name, kind in catalog.types.items()), "properties")
    return {"mappings": {"properties": {CATALOG: {"properties": properties}}}} if properties else {}


def mapped_catalog(mappings: Mapping[str, Any]) -> CatalogFields:
    """The catalog fields an index's ``mappings`` hold (none in an index created before them)."""
    types: dict[str, str] = {}
    kinds = {spec["type"]: kind for kind, spec in CATALOG_MAPPING.items()}

    def visit(properties: Mapping[str, Any], prefix: str) -> None:
        for name, spec in properties.items():
            if "properties" in spec:
                visit(spec["properties"], f"{prefix}{name}.")
            elif spec.get("type") in kinds:
                types[f"{prefix}{name}"] = kinds[spec["type"]]

    visit(mappings.get("properties", {}).get(CATALOG, {}).get("properties", {}), "")
    return CatalogFields(types)


def catalog_values(product: Product, catalog: CatalogFields) -> dict[str, Any]:
    """``product``'s :data:`CATALOG` object: its values of ``catalog``'s fields, typed (a date in epoch millis),
    a dotted name as the objects it names."""
    values = catalog.values(product).items()
    return _nested(((name, held if len(held) > 1 else held[0]) for name, held in values), None)


def _nested(named: Iterable[tuple[str, Any]], children: str | None) -> dict[str, Any]:
    """Values by dotted name (``shipping.price``) as the objects the names walk, each object's fields under
    ``children`` (a mapping's ``properties``) or in the object itself (a document's)."""
    out: dict[str, Any] = {}
    for name, value in named:
        *parents, leaf = name.split(".")
        level = out
        for parent in parents:
            level = level.setdefault(parent, {children: {}} if children else {})
            level = level[children] if children else level
        level[leaf] = value
    return out


def document(product: Product, catalog: CatalogFields | None = None, codes: bool = False) -> dict[str, Any]:
    """Text fields as the tantivy leg indexes them, normalised filter keys, display values for facets, and
    (``codes``: the index maps :data:`CODE`, mapping version 4 on) each text field's model codes.

    Filter keys are computed here rather than by an engine normaliser because
    ``Filters`` compares with Unicode case folding ("Straße" = "STRASSE"),
    which no built-in normaliser reproduces. Codes too: which runs are codes and
    which are sizes (:mod:`.codes`) is no analyser's rule.
    """
    texts = product.field_texts()
    doc: dict[str, Any] = {
        "id": product.id,
        # A text the product lacks is left out, not written as "": Elasticsearch's ``exists`` counts "" as a value,
        # and a front end's ``must_not exists`` asks for the products its shopper sees without the field.
        **{field: text for field, text in texts.items() if text},
        "sales": product.sales,
        "review_count": product.review_count,
        "popularity": float(popularity_signal(product.sales, product.review_count)),
        "filter": {
            "category_path": category_keys(product.category),
            "brand": normalise_term(product.brand),
            "attribute": [attribute_key(key, value) for key, values in product.attributes.items() for value in values],
        },
        "facet": {
            "category": product.category_facets(),
            "attributes": [
                {"key": key, "value": value} for key, values in product.attributes.items() for value in values
            ],
        },
    }
    if product.price is not None:
        doc["price"] = product.price
    if product.rating is not None:
        doc["rating"] = product.rating
    if product.brand:
        doc["facet"]["brand"] = product.brand
    own = catalog_values(product, catalog) if catalog else {}
    if own:
        doc[CATALOG] = own
    held = {field: found for field, text in texts.items() if (found := product_codes(text))} if codes else {}
    if held:
        doc[CODE] = held
    return doc
