"""The OpenAPI document, generated from the same pydantic models that validate requests.

Written by hand, a schema drifts from the code; generated, it is whatever
the service enforces. The Elasticsearch endpoints take the Query DSL, which
is documented by Elastic, so their bodies are described, not modelled.
"""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from .api_models import ErrorResponse, SearchRequest, SearchResponse
from .reco_api import RecoResponse
from .ubi import TrackedQuery, UbiEvent

REF = "#/components/schemas/{model}"


def _json(schema_name: str, description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {"application/json": {"schema": {"$ref": REF.format(model=schema_name)}}},
    }


def _object(description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": {"type": "object"}}}}


def openapi_document(version: str) -> dict[str, Any]:
    _, schemas = models_json_schema(
        [
            (SearchRequest, "validation"),
            (SearchResponse, "serialization"),
            (ErrorResponse, "serialization"),
            (UbiEvent, "validation"),
            (TrackedQuery, "validation"),
            (RecoResponse, "serialization"),
        ],
        ref_template=REF,
    )
    error = _json("ErrorResponse", "invalid request (the fields say which and why)")
    query_id = {"X-Query-Id": {"description": "the search's UBI query id", "schema": {"type": "string"}}}
    ubi_ids = [
        {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}
        for name, description in (
            ("X-Ubi-Client-Id", "the shopper's UBI client id, logged with the query"),
            ("X-Ubi-Session-Id", "the shopper's session, logged with the query"),
        )
    ]
    ubi_ids.append(
        {
            "name": "X-Search-Rerank-Interleave",
            "in": "header",
            "schema": {"enum": ["on", "off"]},
            "description": "on: answer with the served ranking and service.interleave_with's interleaved "
            "by team draft (a 400 when that is unset; two rankings, so only with the admin token, else a 403); "
            "off: never; left out: service.interleave_share decides",
        }
    )
    es_search = {
        "summary": "Elasticsearch-compatible search (Query DSL subset, see search_rerank.serving.es_compat; "
        "ES 9 retriever trees, see search_rerank.serving.retrievers)",
        "parameters": [
            {"name": "index", "in": "path", "required": True, "schema": {"type": "string"}},
            {"name": "explain", "in": "query", "schema": {"type": "boolean"}},
            *ubi_ids,
            *(
                {"name": name, "in": "header", "schema": {"type": "string"}, "description": description}
                for name, description in (
                    (
                        "X-Search-Rerank-User",
                        "the signed-in shopper whose profile personalises the ranking (signed, when the service has an "
                        "identity key: the id, a dot and its HMAC-SHA256 in hex)",
                    ),
                    ("X-Search-Rerank-Session", "the shopping session whose profile personalises the ranking"),
                )
            ),
        ],
        "requestBody": _object("an Elasticsearch search body"),
        "responses": {
            "200": {
                **_object(
                    "an Elasticsearch search response with a search_rerank section; with a "
                    "cluster backend, the cluster's aggregations of the whole match set (or "
                    "search_rerank.degraded.aggregations saying why they are missing)"
                ),
                "headers": query_id,
            },
            "400": _object("malformed query, or aggregations the cluster rejected, in Elasticsearch's error shape"),
            "403": _object(
                "a retriever window, k or X-Search-Rerank-Interleave: on that asks for more work than the served "
                "settings, without the admin token (security_exception; error.field names it)"
            ),
            "501": _object(
                "a part this backend cannot answer (aggregations with the embedded backend); error.unsupported names it"
            ),
        },
    }
    reco_parameters = [
        {"name": "product_id", "in": "path", "required": True, "schema": {"type": "string"}},
        {"name": "size", "in": "query", "schema": {"type": "integer", "minimum": 1}},
        {"name": "category", "in": "query", "schema": {"type": "string"}, "description": "path prefix, 'A > B'"},
        {"name": "brand", "in": "query", "schema": {"type": "array", "items": {"type": "string"}}},
        {"name": "price_min", "in": "query", "schema": {"type": "number", "minimum": 0}},
        {"name": "price_max", "in": "query", "schema": {"type": "number", "minimum": 0}},
    ]

    def reco(summary: str) -> dict[str, Any]:
        return {
            "get": {
                "summary": summary,
                "parameters": reco_parameters,
                "responses": {
                    "200": _json("RecoResponse", "recommended products, and where they came from"),
                    "400": error,
                    "404": _json("ErrorResponse", "no product with this id"),
                },
            }
        }

    def one_or_more(model: str) -> dict[str, Any]:
        ref = {"$ref": REF.format(model=model)}
        schema = {"oneOf": [ref, {"type": "array", "minItems": 1, "items": ref}]}
        return {"required": True, "content": {"application/json": {"schema": schema}}}

    ubi_log_off = _json("ErrorResponse", "UBI logging is off (service.ubi_log_path unset)")
    ubi_unwritten = _json(
        "ErrorResponse",
        "the UBI log could not be written (reason ubi_write_failed): none was kept; send them again after Retry-After",
    )
    ubi_events = {
        "post": {
            "summary": "UBI events (impressions, clicks, ...) from a front end, appended to the UBI log (also at "
            "/ubi_events, where the UBI JavaScript client posts them); "
            "clicks, add_to_cart and purchases with a user_id or session_id update the shoppers' profiles",
            "requestBody": one_or_more("UbiEvent"),
            "responses": {
                "200": _object("the number of events written (accepted)"),
                "400": error,
                "404": ubi_log_off,
                "503": ubi_unwritten,
            },
        }
    }
    ubi_queries = {
        "post": {
            "summary": "UBI query records a front end tracks itself (the UBI JavaScript client's trackQuery posts "
            "them to /ubi_queries), appended to the UBI log beside the service's own; a record of a search this "
            "service logged (its query_id sent in ext.ubi) is kept too, and training reads that search's own hits",
            "requestBody": one_or_more("TrackedQuery"),
            "responses": {
                "200": _object(
                    "the number of records written (accepted) and each one's query_id (query_ids, in order; one "
                    "given here when a record had none)"
                ),
                "400": error,
                "404": ubi_log_off,
                "503": ubi_unwritten,
            },
        }
    }

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "search-rerank",
            "version": version,
            "description": "Hybrid BM25 + dense search with reranking and a long-tail boost. With a cluster "
            "backend, Elasticsearch requests other than searches and counts (_mapping, _cat, "
            "_doc, ...) are passed through to the cluster (reads only, unless "
            "service.passthrough_writes); with the embedded backend they are a 501 naming "
            "the path.",
        },
        "paths": {
            "/search": {
                "post": {
                    "summary": "Search with filters, paging and per-request overrides",
                    "parameters": ubi_ids,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": {"$ref": REF.format(model="SearchRequest")}}},
                    },
                    "responses": {
                        "200": {**_json("SearchResponse", "a page of ranked hits"), "headers": query_id},
                        "400": error,
                        "403": _json(
                            "ErrorResponse",
                            "overrides that raise a cost setting (candidates, rerank window, diversity depth), or "
                            "X-Search-Rerank-Interleave: on, without the admin token; fields names each",
                        ),
                        "413": _json("ErrorResponse", "request body too large"),
                        "503": _json(
                            "ErrorResponse",
                            "overloaded: no thread took the request within service.queue_timeout_s (reason "
                            "queue_timeout); it was not run, try again after Retry-After",
                        ),
                    },
                }
            },
            "/{index}/_search": {"post": es_search, "get": es_search},
            "/{index}/_msearch": {
                "post": {
                    "summary": "Elasticsearch multi-search (what Searchkit sends); each search succeeds or fails alone",
                    "parameters": [{"name": "index", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {"content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                    "responses": {"200": _object("one response (or error) per search, in order")},
                }
            },
            "/{index}/_reactivesearch": {
                "post": {
                    "summary": "ReactiveSearch 4's own requests (what its components send to appbase.io's ReactiveSearch "
                    "API server): each query it executes is translated into an Elasticsearch search and answered "
                    "under its id, each succeeding or failing alone",
                    "parameters": [{"name": "index", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "properties": {
                                        "query": {"type": "array", "items": {"type": "object"}},
                                        "settings": {"type": "object"},
                                    },
                                    "required": ["query"],
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _object(
                            "each executed query's Elasticsearch answer (or error) under its id; settings.took"
                        ),
                        "400": error,
                        "501": _json(
                            "ErrorResponse", "a part only appbase.io's services answer (suggestions, kNN...), named"
                        ),
                    },
                }
            },
            "/{index}/_count": {
                p: {
                    "summary": "Elasticsearch count of what a search's query matches, its field names mapped as a "
                    "search maps them, counted by the cluster or the embedded index",
                    "parameters": [{"name": "index", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "requestBody": _object("an Elasticsearch count body: {query}"),
                    "responses": {
                        "200": _object("count and _shards"),
                        "400": error,
                        "501": _json(
                            "ErrorResponse", "a part of the query the embedded backend does not answer, named"
                        ),
                        "503": _json("ErrorResponse", "the cluster's breaker is open; try again after Retry-After"),
                    },
                }
                for p in ("post", "get")
            },
            "/ubi/events": ubi_events,
            "/ubi_events": ubi_events,
            "/ubi/queries": ubi_queries,
            "/ubi_queries": ubi_queries,
            "/admin/reload": {
                "post": {
                    "summary": "Reopen the indexes and models (after a rebuild) without dropping a request",
                    "security": [{"adminToken": []}],
                    "responses": {
                        "200": _object("reloaded: the new indexes serve from now on"),
                        "401": _json("ErrorResponse", "missing or wrong admin token"),
                        "403": _json("ErrorResponse", "reload disabled: SEARCH_RERANK_ADMIN_TOKEN is not set"),
                        "500": _json("ErrorResponse", "the new indexes failed to open; the old ones serve on"),
                    },
                }
            },
            "/admin/exposure-control": {
                "get": {
                    "summary": "The exposure controller's state: the strength served, its last decision, its settings",
                    "security": [{"adminToken": []}],
                    "responses": {
                        "200": _object("the controller's state (enabled false: the fixed strength of the settings)"),
                        "401": _json("ErrorResponse", "missing or wrong admin token"),
                        "403": _json("ErrorResponse", "disabled: SEARCH_RERANK_ADMIN_TOKEN is not set"),
                    },
                }
            },
            "/profiles/{user_id}": {
                "delete": {
                    "summary": "Forget a shopper: their profile and their sessions', leaving no trace in the store",
                    "security": [{"adminToken": []}],
                    "parameters": [{"name": "user_id", "in": "path", "required": True, "schema": {"type": "string"}}],
                    "responses": {
                        "200": _object("forgotten: how many profiles were removed"),
                        "400": error,
                        "401": _json("ErrorResponse", "missing or wrong admin token"),
                        "403": _json("ErrorResponse", "forgetting disabled: SEARCH_RERANK_ADMIN_TOKEN is not set"),
                        "503": _json("ErrorResponse", "the profile store is off or failed; nothing was forgotten"),
                    },
                }
            },
            "/products/{product_id}/similar": reco(
                "Nearest neighbours by the stored bi-encoder vector, under the search filters (attr.<key> too)"
            ),
            "/products/{product_id}/also": reco(
                "Co-clicked and co-bought products from the UBI log; similar items for a product without history"
            ),
            "/health": {"get": {"summary": "Liveness: the process answers", "responses": {"200": _object("alive")}}},
            "/ready": {
                "get": {
                    "summary": "Readiness: indexes loaded and answering",
                    "responses": {"200": _object("ready"), "503": _object("not ready, and why")},
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics, summed over workers",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
        },
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {
                "adminToken": {"type": "http", "scheme": "bearer", "description": "SEARCH_RERANK_ADMIN_TOKEN"}
            },
        },
    }
