"""Products by id on the embedded backend, as Elasticsearch's document APIs answer them:
``GET /products/_doc/ID``, ``GET /products/_source/ID`` and ``_mget``.

A shop's product page, a script's ``es.get(index="products", id=...)`` or a
recently-viewed strip's ``mget`` read products by id; without a cluster to pass
them to they were a 501. They are answered from the served product records,
the same ``_source`` a search hit carries (``service.field_aliases``
applied). There is one version of a product here, so ``_version`` is 1 and
``_seq_no`` 0. With a cluster backend they are the cluster's (serving/passthrough), unless
``service.passthrough`` is off, where they are answered here too: the served records are what searches show.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.product import Product
from ..core.settings import Settings
from ..core.store import ProductStore
from .answer_params import FILTER_PATH
from .body_checks import a_string, an_object
from .es_compat import InvalidQuery, SourceFilter, Unsupported, index_not_found_cause, source_filter, source_from_uri
from .field_aliases import source_with_aliases

READ_METHODS = ("GET", "HEAD")
MGET_METHODS = ("GET", "POST")
IGNORED_PARAMS = frozenset({"realtime", "refresh", "routing", "preference", "pretty", "human", "error_trace"})
"""URI parameters that change nothing here: there is one copy of each product, always current, on no shard, and
no stack trace is ever answered (``filter_path`` is applied where the answer is written, as a search's is)."""
SOURCE_PARAMS = frozenset({"_source", "_source_includes", "_source_excludes"})
DOC_KEYS = frozenset({"_index", "_id", "_source", "routing"})
"""What an ``_mget`` doc may hold besides :data:`UNSERVED`."""
UNSERVED = ("stored_fields", "version", "version_type", "_source_exclude_vectors")
"""What would change a read of a product here, where the index stores no field and a product has one version: a
501 naming it, as a URI parameter or an ``_mget`` doc's key."""
MGET_KEYS = frozenset({"docs", "ids"})


def uri_source(params: Mapping[str, str]) -> SourceFilter:
    """The ``_source`` URI parameters as a filter (none: the whole source); any other parameter that would change
    the answer (``stored_fields``, ``version``) is a 501 naming it, one Elasticsearch does not take a 400."""
    for name in params:
        if name in SOURCE_PARAMS or name in IGNORED_PARAMS or name == FILTER_PATH:
            continue
        if name in UNSERVED:
            raise Unsupported(name, "reading a product by its stored fields or version")
        raise InvalidQuery(name, "request contains unrecognized parameter")
    uri = source_from_uri({k: v for k, v in params.items() if k in SOURCE_PARAMS})
    return SourceFilter() if uri is None else source_filter(uri)


def found(index: str, product: Product, source: SourceFilter, settings: Settings) -> dict[str, Any]:
    """A product as Elasticsearch's get API answers a document it found."""
    answer: dict[str, Any] = {"_index": index, "_id": product.id, "_version": 1, "_seq_no": 0, "_primary_term": 1}
    answer["found"] = True
    if source.enabled:
        answer["_source"] = source.apply(source_with_aliases(product.to_record(), settings.service.field_aliases))
    return answer


def missing(index: str, product_id: str) -> dict[str, Any]:
    return {"_index": index, "_id": product_id, "found": False}


def get_document(
    store: ProductStore, settings: Settings, index: str, product_id: str, params: Mapping[str, str]
) -> tuple[dict[str, Any], int]:
    """``GET /{index}/_doc/{id}``: the answer and its status (404 with ``found: false`` for an id no product has)."""
    source = uri_source(params)
    product = store.get([product_id]).get(product_id)
    if product is None:
        return missing(index, product_id), 404
    return found(index, product, source, settings), 200


def source_document(
    store: ProductStore, settings: Settings, index: str, product_id: str, params: Mapping[str, str]
) -> tuple[dict[str, Any], int]:
    """``GET /{index}/_source/{id}``: the product's source alone, or Elasticsearch's 404 error."""
    answer, status = get_document(store, settings, index, product_id, params)
    if status == 404:
        reason = f"Document not found [{index}]/[{product_id}]"
        cause = {"type": "resource_not_found_exception", "reason": reason}
        return {"error": {"root_cause": [cause], **cause}, "status": 404}, 404
    return answer.get("_source", {}), 200


def multi_get(
    store: ProductStore,
    settings: Settings,
    index: str | None,
    body: Any,
    params: Mapping[str, str],
    served: set[str],
) -> dict[str, Any]:
    """``_mget``: each doc asked for (``docs`` of ``_index``/``_id``/``_source``, or ``ids`` of the path's index) in
    its order, found or not; one naming an index not served carries Elasticsearch's error in its place. A doc
    without an index (none in the path either) or an id is a 400 naming it, as Elasticsearch validates them; more
    docs than ``service.max_result_window``, a 400."""
    default_source = uri_source(params)
    body = an_object(body, "body")
    for key in body:
        if key not in MGET_KEYS:
            raise InvalidQuery(key, "unknown key (expected docs or ids)")
    asked = _asked(body, index)
    limit = settings.service.max_result_window
    if len(asked) > limit:
        raise InvalidQuery("docs", f"{len(asked)} documents asked for, more than service.max_result_window ({limit})")
    products = store.get(sorted({pid for name, pid, _, _ in asked if name in served}))
    docs = []
    for name, pid, source, where in asked:
        if name not in served:
            cause = index_not_found_cause(name)
            docs.append({"_index": name, "_id": pid, "error": {"root_cause": [cause], **cause}})
            continue
        product = products.get(pid)
        chosen = default_source if source is None else source_filter(source, f"{where}._source")
        docs.append(missing(name, pid) if product is None else found(name, product, chosen, settings))
    return {"docs": docs}


def _asked(body: Mapping[str, Any], index: str | None) -> list[tuple[str, str, Any, str]]:
    """Each doc of an ``_mget`` body as (index, id, its ``_source`` or None, where it is in the body): its
    ``docs`` and its ``ids`` (of the path's index), in the body's order, as Elasticsearch reads both."""
    asked: list[tuple[str, str, Any, str]] = []
    for key in body:
        listed = body[key]
        if not isinstance(listed, list):
            raise InvalidQuery(key, f"expected a list of {'ids' if key == 'ids' else 'documents'}")
        if key == "ids":
            if index is None and listed:
                raise InvalidQuery("ids", f"index is missing for doc {len(asked)} (ids need an index in the path)")
            asked += [(str(index), _an_id(value, f"ids[{i}]"), None, f"ids[{i}]") for i, value in enumerate(listed)]
        else:
            asked += [_doc(doc, i, len(asked) + i, index) for i, doc in enumerate(listed)]
    if not asked:
        raise InvalidQuery(next(iter(body), "docs"), "no documents to get")
    return asked


def _doc(doc: Any, i: int, number: int, index: str | None) -> tuple[str, str, Any, str]:
    """``docs[i]``, the request's doc ``number``: its index (the path's where it names none), id and ``_source``."""
    where = f"docs[{i}]"
    doc = an_object(doc, where)
    for key in doc:
        if key in UNSERVED:
            raise Unsupported(f"{where}.{key}", "reading a product by its stored fields or version")
        if key not in DOC_KEYS:
            raise InvalidQuery(f"{where}.{key}", "unknown key")
    name = doc.get("_index", index)
    if name is None:
        raise InvalidQuery(f"{where}._index", f"index is missing for doc {number}")
    if doc.get("_id") is None:
        raise InvalidQuery(f"{where}._id", f"id is missing for doc {number}")
    source = doc.get("_source")
    if source in ("true", "false"):  # a boolean's text, as Elasticsearch's parser reads it there
        source = source == "true"
    return a_string(name, f"{where}._index"), _an_id(doc["_id"], f"{where}._id"), source, where


def _an_id(value: Any, where: str) -> str:
    """A document id as Elasticsearch reads one: a string, or a number's text."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise InvalidQuery(where, "expected an id")
    return str(value)
