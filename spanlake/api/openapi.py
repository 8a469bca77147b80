"""`/openapi.json`: the HTTP contract, merged from each route module's OPENAPI_PATHS fragment."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

import spanlake
from spanlake.auth import SCOPES, required_scope

ERROR = {"$ref": "#/components/schemas/Error"}


def error_responses(*statuses: int) -> dict[str, Any]:
    """Shared error responses for a route's `responses` object."""
    text = {
        400: "Invalid input",
        401: "Missing or invalid API key",
        404: "Not found",
        409: "Conflict",
        413: "Body too large",
        415: "Unsupported media type",
        422: "Unprocessable input",
        503: "Unavailable; retry later",
    }
    return {str(s): {"description": text.get(s, "Error"), "content": {"application/json": {"schema": ERROR}}} for s in statuses}


def json_response(description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def query_param(name: str, description: str, schema: dict[str, Any] | None = None, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": required, "description": description, "schema": schema or {"type": "string"}}


def path_param(name: str, description: str, pattern: str | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "string"}
    if pattern:
        schema["pattern"] = pattern
    return {"name": name, "in": "path", "required": True, "description": description, "schema": schema}


TRACE_ID = path_param("trace_id", "32 lowercase hex characters", "^[0-9a-f]{32}$")
SPAN_ID = path_param("span_id", "16 lowercase hex characters", "^[0-9a-f]{16}$")
LIST_PARAMS = [
    query_param("limit", "Page size, 1-1000 (default 50)", {"type": "integer", "minimum": 1, "maximum": 1000}),
    query_param("cursor", "Opaque next_cursor of the previous page"),
]
SEARCH_PARAMS = [
    query_param("filter", "Filter tree as JSON text (see the filter language)"),
    query_param("service", "Service name"),
    query_param("name", "Span name (root span name for traces)"),
    query_param("since", "ISO-8601 time or epoch seconds"),
    query_param("until", "ISO-8601 time or epoch seconds"),
    *LIST_PARAMS,
]


def list_of(item_ref: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {
            "items": {"type": "array", "items": {"$ref": item_ref}},
            "next_cursor": {"type": ["string", "null"]},
        },
    }


SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Span": {
        "type": "object",
        "required": ["trace_id", "span_id", "parent_span_id", "name", "start_time", "end_time", "duration_ms", "status", "service", "attributes"],
        "properties": {
            "trace_id": {"type": "string"},
            "span_id": {"type": "string"},
            "parent_span_id": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "kind": {"type": ["string", "null"]},
            "status": {"type": ["string", "null"]},
            "status_message": {"type": ["string", "null"]},
            "start_time": {"type": ["string", "null"], "format": "date-time"},
            "end_time": {"type": ["string", "null"], "format": "date-time"},
            "duration_ms": {"type": ["number", "null"]},
            "service": {"type": ["string", "null"]},
            "span_type": {"type": ["string", "null"]},
            "model": {"type": ["string", "null"]},
            "input": {"type": ["string", "null"]},
            "output": {"type": ["string", "null"]},
            "input_tokens": {"type": ["integer", "null"]},
            "output_tokens": {"type": ["integer", "null"]},
            "total_tokens": {"type": ["integer", "null"]},
            "session_id": {"type": ["string", "null"]},
            "user_id": {"type": ["string", "null"]},
            "attributes": {"type": ["object", "null"]},
            "resource_attributes": {"type": ["object", "null"]},
            "events": {"type": ["array", "null"]},
            "links": {"type": ["array", "null"]},
        },
    },
    "Trace": {
        "type": "object",
        "required": ["trace_id", "spans"],
        "properties": {"trace_id": {"type": "string"}, "spans": {"type": "array", "items": {"$ref": "#/components/schemas/Span"}}},
    },
    "TraceSummary": {
        "type": "object",
        "required": ["trace_id", "start_time", "duration_ms", "span_count", "error_count", "total_tokens", "scores"],
        "properties": {
            "trace_id": {"type": "string"},
            "root_span_id": {"type": ["string", "null"]},
            "name": {"type": ["string", "null"]},
            "service": {"type": ["string", "null"]},
            "start_time": {"type": ["string", "null"]},
            "end_time": {"type": ["string", "null"]},
            "duration_ms": {"type": ["number", "null"]},
            "span_count": {"type": "integer"},
            "error_count": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "scores": {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}},
        },
    },
}

def _otlp_export(summary: str, rejected: str) -> dict[str, Any]:
    """One OTLP/HTTP export route; traces and logs differ only in what they carry."""
    return {
        "post": {
            "summary": summary,
            "requestBody": {
                "required": True,
                "content": {
                    "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    "application/json": {"schema": {"type": "object"}},
                },
            },
            "responses": {
                "200": {
                    "description": f"Stored (partialSuccess lists {rejected})",
                    "content": {
                        "application/json": {"schema": {"type": "object"}},
                        "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                    },
                },
                **error_responses(400, 401, 413, 415, 503),
            },
        }
    }


CORE_PATHS: dict[str, Any] = {
    "/v1/traces": _otlp_export("OTLP/HTTP trace export (protobuf or JSON, gzip allowed)", "rejected spans"),
    "/v1/logs": _otlp_export(
        "OTLP/HTTP log export: GenAI events (gen_ai.* event names), attached to their spans",
        "log records refused: not GenAI events, or without trace/span ids",
    ),
    "/healthz": {"get": {"summary": "Liveness", "responses": {"200": json_response("Alive", {"type": "object"})}}},
    "/readyz": {
        "get": {
            "summary": "Readiness",
            "responses": {"200": json_response("Ready", {"type": "object"}), "503": json_response("Starting or stopping", {"type": "object"})},
        }
    },
    "/metrics": {
        "get": {
            "summary": "Prometheus metrics",
            "responses": {"200": {"description": "Prometheus text format", "content": {"text/plain": {"schema": {"type": "string"}}}}, **error_responses(401)},
        }
    },
    "/openapi.json": {"get": {"summary": "This document", "responses": {"200": json_response("OpenAPI 3.1", {"type": "object"})}}},
    "/api/traces": {
        "get": {
            "summary": "List traces, newest first; a trace matches a filter when any of its spans does",
            "parameters": SEARCH_PARAMS,
            "responses": {"200": json_response("A page of traces", list_of("#/components/schemas/TraceSummary")), **error_responses(400, 401)},
        }
    },
    "/api/spans": {
        "get": {
            "summary": "Search spans, newest first",
            "parameters": SEARCH_PARAMS,
            "responses": {"200": json_response("A page of spans", list_of("#/components/schemas/Span")), **error_responses(400, 401)},
        }
    },
    "/api/traces/{trace_id}": {
        "get": {
            "summary": "One trace, all spans, parents before children",
            "parameters": [TRACE_ID],
            "responses": {"200": json_response("The trace", {"$ref": "#/components/schemas/Trace"}), **error_responses(400, 401, 404)},
        }
    },
    "/api/traces/{trace_id}/spans/{span_id}": {
        "get": {
            "summary": "One span",
            "parameters": [TRACE_ID, SPAN_ID],
            "responses": {"200": json_response("The span", {"$ref": "#/components/schemas/Span"}), **error_responses(400, 401, 404)},
        }
    },
}


def build_document(extra_fragments: list[dict[str, Any]], extra_schemas: list[dict[str, Any]] = ()) -> dict[str, Any]:
    paths: dict[str, Any] = {}
    for fragment in [CORE_PATHS, *extra_fragments]:
        for path, operations in fragment.items():
            paths.setdefault(path, {}).update(operations)
    # Every route that takes a key may answer 403 when the key lacks its scope (spanlake/auth.py).
    for path, operations in paths.items():
        for method, operation in list(operations.items()):
            responses = operation.get("responses", {})
            scope = required_scope(method, path, protect_metrics=True)
            if "401" in responses and "403" not in responses and scope in SCOPES:
                denied = {
                    "description": f"The key lacks the '{scope}' scope (error code permission_denied, missing_scope)",
                    "content": {"application/json": {"schema": ERROR}},
                }
                operations[method] = {**operation, "responses": {**responses, "403": denied}}
    # Every JSON body may be refused for being declared as another format (api/body.py).
    for operations in paths.values():
        for method, operation in list(operations.items()):
            content = operation.get("requestBody", {}).get("content", {})
            if list(content) == ["application/json"] and "415" not in operation.get("responses", {}):
                refused = {
                    "description": "The body is declared as another format than JSON (error code unsupported_media_type)",
                    "content": {"application/json": {"schema": ERROR}},
                }
                operations[method] = {**operation, "responses": {**operation.get("responses", {}), "415": refused}}
    schemas = dict(SCHEMAS)
    for extra in extra_schemas:
        schemas.update(extra)
    return {
        "openapi": "3.1.0",
        "info": {"title": "spanlake", "version": spanlake.__version__},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{}, {"bearer": []}],
    }


def openapi_endpoint(document: dict[str, Any]):
    async def openapi(request: Request) -> JSONResponse:
        return JSONResponse(document)

    return openapi
