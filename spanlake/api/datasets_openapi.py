"""OpenAPI 3.1 paths and schemas of the dataset routes (merged into /openapi.json by api/app.py)."""

from __future__ import annotations

from typing import Any

from spanlake.api.openapi import LIST_PARAMS, SPAN_ID, TRACE_ID, error_responses, json_response, path_param, query_param

_REF = "#/components/schemas/"
DATASET = path_param("dataset", "Dataset id or name")
ITEM_ID = path_param("item_id", "Item id (stable across versions)")
AS_OF = query_param("as_of", "ISO-8601 instant: read items as they were then (default: now)", {"type": "string", "format": "date-time"})
ANY: dict[str, Any] = {}  # any JSON value
NULLABLE_TEXT = {"type": ["string", "null"]}
TAGS = {"type": "array", "items": {"type": "string"}, "maxItems": 64}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _list(name: str) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {"items": {"type": "array", "items": _ref(name)}, "next_cursor": NULLABLE_TEXT},
    }


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Dataset": {
        "type": "object",
        "required": ["id", "name", "description", "metadata", "item_count", "created_at", "updated_at"],
        "properties": {
            "id": {"type": "string"},
            "name": {"type": "string"},
            "description": NULLABLE_TEXT,
            "metadata": {"type": "object"},
            "item_count": {"type": "integer", "description": "current items"},
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time", "description": "last change to the dataset or its items"},
        },
    },
    "NewDataset": {
        "type": "object",
        "required": ["name"],
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "unique; no '/'"},
            "description": NULLABLE_TEXT,
            "metadata": {"type": ["object", "null"]},
        },
    },
    "DatasetPatch": {
        "type": "object",
        "additionalProperties": False,
        "properties": {"name": {"type": "string"}, "description": NULLABLE_TEXT, "metadata": {"type": ["object", "null"]}},
    },
    "DatasetItem": {
        "type": "object",
        "required": ["id", "dataset_id", "input", "expected_output", "metadata", "topic", "tags", "source_trace_id",
                     "source_span_id", "created_at", "updated_at", "valid_from", "valid_to"],
        "properties": {
            "id": {"type": "string"},
            "dataset_id": {"type": "string"},
            "input": ANY,
            "expected_output": ANY,
            "metadata": {"type": "object"},
            "topic": NULLABLE_TEXT,
            "tags": TAGS,
            "source_trace_id": NULLABLE_TEXT,
            "source_span_id": NULLABLE_TEXT,
            "created_at": {"type": "string", "format": "date-time"},
            "updated_at": {"type": "string", "format": "date-time", "description": "when this version opened"},
            "created_by": {"type": ["string", "null"], "description": "name of the API key that wrote it (never the key)"},
            "valid_from": {"type": "string", "format": "date-time"},
            "valid_to": {"type": ["string", "null"], "format": "date-time", "description": "when this version closed"},
            "score": {"type": ["number", "null"], "description": "mean score, when sorted by sort=score:<name> or sort=evaluation"},
            "evaluation": {"type": ["number", "null"], "description": "mean of every numeric score of the item: those posted for it (`item_id`) and those on its source span (its trace when it has no span); null when unscored; in listings"},
        },
    },
    "NewDatasetItem": {
        "type": "object",
        "required": ["input"],
        "properties": {
            "input": ANY,
            "expected_output": ANY,
            "metadata": {"type": ["object", "null"]},
            "topic": NULLABLE_TEXT,
            "tags": {"type": ["array", "null"], "items": {"type": "string"}},
            "source_trace_id": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{32}$"},
            "source_span_id": {"type": ["string", "null"], "pattern": "^[0-9a-fA-F]{16}$"},
        },
    },
    "DatasetItemPatch": {
        "type": "object",
        "minProperties": 1,
        "additionalProperties": False,
        "properties": {"input": ANY, "expected_output": ANY, "metadata": {"type": ["object", "null"]},
                       "topic": NULLABLE_TEXT, "tags": TAGS},
    },
    "DatasetVersion": {
        "type": "object",
        "required": ["version", "added", "updated", "deleted", "item_count"],
        "properties": {
            "version": {"type": "string", "format": "date-time", "description": "pass as as_of to read this state"},
            "added": {"type": "integer"},
            "updated": {"type": "integer"},
            "deleted": {"type": "integer"},
            "item_count": {"type": "integer", "description": "items right after this change"},
        },
    },
    "DatasetMembership": {
        "type": "object",
        "required": ["dataset_id", "dataset_name", "item_id", "captured_at"],
        "properties": {"dataset_id": {"type": "string"}, "dataset_name": {"type": "string"}, "item_id": {"type": "string"},
                       "captured_at": {"type": "string", "format": "date-time"}},
    },
    "CaptureRequest": {
        "type": "object",
        "description": "Exactly one of span_ids, trace_ids (root span of each, or spans matching span_filter), filter.",
        "properties": {
            "span_ids": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}, "maxItems": 10000},
            "trace_ids": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}, "maxItems": 10000},
            "span_filter": {"type": "object", "description": "filter tree choosing spans of the traces"},
            "filter": {"type": "object", "description": "filter tree over stored spans"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100000, "description": "with filter: newest N spans (default 1000)"},
            "input": {"type": "string", "description": "span field for input (default input), e.g. attributes.llm.prompt"},
            "expected_output": {"type": ["string", "null"], "description": "span field (default output); null for none"},
            "topic": NULLABLE_TEXT,
            "tags": TAGS,
            "metadata": {"type": ["object", "null"]},
        },
    },
    "CaptureResult": {
        "type": "object",
        "required": ["captured", "duplicates", "matched", "unknown_span_ids", "unknown_trace_ids"],
        "properties": {
            "captured": {"type": "integer"},
            "duplicates": {"type": "integer", "description": "spans already in the dataset (no-op)"},
            "matched": {"type": "integer"},
            "unknown_span_ids": {"type": "array", "items": {"type": "string"}},
            "unknown_trace_ids": {"type": "array", "items": {"type": "string"}},
        },
    },
    "BulkItems": {
        "type": "object",
        "required": ["ids"],
        "properties": {
            "ids": {"type": "array", "items": {"type": "string"}, "minItems": 1, "maxItems": 10000},
            "set": {"type": "object", "properties": {"topic": NULLABLE_TEXT, "tags": TAGS}, "additionalProperties": False},
            "add_tags": TAGS,
            "remove_tags": TAGS,
            "delete": {"type": "boolean", "const": True},
        },
    },
    "BulkResult": {
        "type": "object",
        "required": ["unknown_ids"],
        "properties": {"updated": {"type": "integer"}, "deleted": {"type": "integer"},
                       "unknown_ids": {"type": "array", "items": {"type": "string"}}},
    },
}

_ITEM_LIST_PARAMS = [
    AS_OF,
    query_param("topic", "Only this topic (empty: items without one)"),
    query_param("tag", "Only items with this tag (repeat for all of several)"),
    query_param("source_trace_id", "Only items captured from this trace", {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}),
    query_param("source_span_id", "Only items captured from this span", {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}),
    query_param("search", "Only items whose input, expected output or metadata (as JSON text) contain this, any case"),
    query_param("metadata.<key>", "Only items whose metadata value at <key> is this (a string, or other JSON as "
                "its text: 1, true); repeat for any of several. Other unknown parameters are refused"),
    query_param("sort", "created_at (default; also called timestamp), topic (empty last), evaluation (the items' evaluations, see DatasetItem; unscored last) or score:<name> (mean score of that name on the source span; unscored last)"),
    query_param("order", "asc (default) or desc", {"type": "string", "enum": ["asc", "desc"]}),
    *LIST_PARAMS,
]
_FILE = {"type": "string", "format": "binary"}

OPENAPI_PATHS: dict[str, Any] = {
    "/api/datasets": {
        "get": {
            "summary": "List datasets by name, with current item counts",
            "parameters": [query_param("search", "Case-insensitive substring of the name"), *LIST_PARAMS],
            "responses": {"200": json_response("A page of datasets", _list("Dataset")), **error_responses(400, 401)},
        },
        "post": {
            "summary": "Create a dataset",
            "requestBody": _body(_ref("NewDataset")),
            "responses": {"201": json_response("Created", _ref("Dataset")), **error_responses(400, 401, 409, 413)},
        },
    },
    "/api/datasets/{dataset}": {
        "get": {"summary": "One dataset", "parameters": [DATASET], "responses": {"200": json_response("The dataset", _ref("Dataset")), **error_responses(400, 401, 404)}},
        "patch": {
            "summary": "Rename or change description/metadata",
            "parameters": [DATASET],
            "requestBody": _body(_ref("DatasetPatch")),
            "responses": {"200": json_response("Updated", _ref("Dataset")), **error_responses(400, 401, 404, 409, 413)},
        },
        "delete": {"summary": "Delete a dataset (its name becomes free)", "parameters": [DATASET], "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 404)}},
    },
    "/api/datasets/{dataset}/versions": {
        "get": {
            "summary": "Instants the items changed, newest first, with counts added/updated/deleted",
            "parameters": [DATASET, *LIST_PARAMS],
            "responses": {"200": json_response("A page of versions", _list("DatasetVersion")), **error_responses(400, 401, 404)},
        }
    },
    "/api/datasets/{dataset}/items": {
        "get": {
            "summary": "List items (current, or as_of an instant); pages read one instant",
            "parameters": [DATASET, *_ITEM_LIST_PARAMS],
            "responses": {"200": json_response("A page of items", _list("DatasetItem")), **error_responses(400, 401, 404)},
        },
        "post": {
            "summary": "Add items (one version)",
            "parameters": [DATASET],
            "requestBody": _body({"type": "object", "required": ["items"], "properties": {
                "items": {"type": "array", "minItems": 1, "maxItems": 10000, "items": _ref("NewDatasetItem")}}}),
            "responses": {
                "201": json_response("Created", {"type": "object", "required": ["items"],
                                                 "properties": {"items": {"type": "array", "items": _ref("DatasetItem")}}}),
                **error_responses(400, 401, 404, 409, 413),
            },
        },
    },
    "/api/datasets/{dataset}/items/bulk": {
        "post": {
            "summary": "Set topic/tags, add or remove tags, or delete many items (one version)",
            "parameters": [DATASET],
            "requestBody": _body(_ref("BulkItems")),
            "responses": {"200": json_response("Done", _ref("BulkResult")), **error_responses(400, 401, 404, 413)},
        }
    },
    "/api/datasets/{dataset}/items/{item_id}": {
        "get": {
            "summary": "One item (current, or as_of an instant)",
            "parameters": [DATASET, ITEM_ID, AS_OF],
            "responses": {"200": json_response("The item", _ref("DatasetItem")), **error_responses(400, 401, 404)},
        },
        "patch": {
            "summary": "Update an item: opens its next version, same id",
            "parameters": [DATASET, ITEM_ID],
            "requestBody": _body(_ref("DatasetItemPatch")),
            "responses": {"200": json_response("The new version", _ref("DatasetItem")), **error_responses(400, 401, 404, 413)},
        },
        "delete": {"summary": "Delete an item (its history stays readable with as_of)",
                   "parameters": [DATASET, ITEM_ID], "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 404)}},
    },
    "/api/datasets/{dataset}/capture": {
        "post": {
            "summary": "Capture stored spans as items (a span already in the dataset counts as a duplicate)",
            "parameters": [DATASET],
            "requestBody": _body(_ref("CaptureRequest")),
            "responses": {"200": json_response("Counts", _ref("CaptureResult")), **error_responses(400, 401, 404, 413)},
        }
    },
    "/api/datasets/{dataset}/import": {
        "post": {
            "summary": "Import a JSON array, JSON Lines, CSV or Parquet file: every row valid, or nothing imported",
            "parameters": [DATASET, query_param("dry_run", "Only validate", {"type": "boolean"})],
            "requestBody": {"required": True, "content": {
                "application/json": {"schema": {"type": "array", "items": _ref("NewDatasetItem")}},
                "application/x-ndjson": {"schema": _FILE},
                "text/csv": {"schema": _FILE},
                "application/vnd.apache.parquet": {"schema": _FILE},
            }},
            "responses": {
                "201": json_response("Imported", {"type": "object", "required": ["imported"], "properties": {"imported": {"type": "integer"}}}),
                "200": json_response("Dry run: all rows valid", {"type": "object", "properties": {
                    "imported": {"type": "integer"}, "valid": {"type": "integer"}, "dry_run": {"type": "boolean"}}}),
                **error_responses(400, 401, 404, 413, 415, 422),
            },
        }
    },
    "/api/datasets/{dataset}/export": {
        "get": {
            "summary": "Stream the items (current, or as_of an instant) as jsonl, csv, openai or parquet",
            "parameters": [
                DATASET,
                query_param("format", "jsonl (default), csv, openai (chat fine-tuning) or parquet",
                            {"type": "string", "enum": ["jsonl", "csv", "openai", "parquet"]}),
                AS_OF,
                query_param("report", "with format=openai: answer JSON, how many items make examples and "
                            "why each skipped one does not, instead of the file", {"type": "boolean"}),
            ],
            "responses": {
                "200": {"description": "The file; with format=openai&report=true, the report as JSON", "content": {
                    "application/x-ndjson": {"schema": _FILE},
                    "text/csv": {"schema": _FILE},
                    "application/vnd.apache.parquet": {"schema": _FILE},
                    "application/json": {"schema": {
                        "type": "object",
                        "required": ["format", "total", "exported", "skipped", "skipped_items"],
                        "properties": {
                            "format": {"type": "string"},
                            "as_of": {"type": ["string", "null"]},
                            "total": {"type": "integer"},
                            "exported": {"type": "integer"},
                            "skipped": {"type": "integer"},
                            "skipped_items": {"type": "array", "items": {"type": "object", "properties": {
                                "item_id": {"type": "string"}, "reason": {"type": "string"}}}},
                        },
                    }},
                }},
                **error_responses(400, 401, 404),
            },
        }
    },
    "/api/traces/{trace_id}/spans/{span_id}/datasets": {
        "get": {
            "summary": "Datasets this span was captured into (404 for a span the store does not hold)",
            "parameters": [TRACE_ID, SPAN_ID, *LIST_PARAMS],
            "responses": {"200": json_response("Memberships", _list("DatasetMembership")), **error_responses(400, 401, 404)},
        }
    },
}
