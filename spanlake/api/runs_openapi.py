"""OpenAPI 3.1 paths and schemas of the dataset run routes (merged into /openapi.json by api/app.py)."""

from __future__ import annotations

from typing import Any

from spanlake.api.openapi import LIST_PARAMS, error_responses, json_response, path_param, query_param

_REF = "#/components/schemas/"
DATASET = path_param("dataset", "Dataset id or name")
RUN_ID = path_param("run_id", "Run id or name")
NULLABLE_TEXT = {"type": ["string", "null"]}
NUMBER_OR_NULL = {"type": ["number", "null"]}
ANY: dict[str, Any] = {}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": _REF + name}


def _body(schema: dict[str, Any]) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": schema}}}


_TOKENS = {
    "type": ["object", "null"],
    "properties": {"input": {"type": ["integer", "null"]}, "output": {"type": ["integer", "null"]},
                   "total": {"type": ["integer", "null"]}},
}
_RUN_SCORE = {
    "type": "object",
    "required": ["id", "name", "value", "label", "data_type", "scorer", "trace_id", "span_id"],
    "properties": {
        "id": {"type": "string"}, "name": {"type": "string"}, "value": NUMBER_OR_NULL, "label": NULLABLE_TEXT,
        "data_type": {"type": "string"}, "scorer": NULLABLE_TEXT, "explanation": NULLABLE_TEXT,
        "metadata": {"type": ["object", "null"]},
        "trace_id": {"type": ["string", "null"], "description": "null when the result's trace is not in the store"},
        "span_id": NULLABLE_TEXT, "created_at": {"type": "string", "format": "date-time"},
    },
}
_SCORER_STATS = {
    "type": "object",
    "properties": {
        "count": {"type": "integer"}, "mean": NUMBER_OR_NULL, "min": NUMBER_OR_NULL, "max": NUMBER_OR_NULL,
        "pass_rate": {"type": ["number", "null"], "description": "share of scores at or above the threshold (boolean: true)"},
        "threshold": NUMBER_OR_NULL,
    },
}
_SIDE = {
    "type": ["object", "null"],
    "properties": {
        "id": {"type": "string"}, "status": {"type": "string"}, "output": ANY, "error": NULLABLE_TEXT,
        "trace_id": NULLABLE_TEXT, "span_id": NULLABLE_TEXT, "latency_ms": NUMBER_OR_NULL, "tokens": _TOKENS,
        "scores": {"type": "object", "additionalProperties": {"type": ["number", "string", "null"]}},
    },
}

OPENAPI_SCHEMAS: dict[str, Any] = {
    "NewRun": {
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "minLength": 1, "maxLength": 200, "description": "unique in the dataset (default: generated)"},
            "mode": {"type": "string", "enum": ["server", "client"], "description": "default: server with a target, client without"},
            "target": {
                "type": ["object", "null"],
                "required": ["url"],
                "additionalProperties": False,
                "description": "HTTP target spanlake POSTs each item to; null for a client-side run",
                "properties": {
                    "url": {"type": "string", "format": "uri"},
                    "headers": {"type": "object", "additionalProperties": {"type": "string"}},
                    "timeout_s": {"type": "number", "exclusiveMinimum": 0, "maximum": 600, "default": 60},
                    "max_attempts": {"type": "integer", "minimum": 1, "maximum": 5, "default": 1},
                },
            },
            "scorers": {"type": "array", "items": {"type": "string"}, "maxItems": 32},
            "thresholds": {"type": "object", "additionalProperties": {"type": "number"},
                           "description": "per scorer: the value a result needs to pass"},
            "concurrency": {"type": "integer", "minimum": 1, "maximum": 64, "default": 4},
            "metadata": {"type": ["object", "null"]},
            "as_of": {"type": "string", "format": "date-time", "description": "run on the dataset as it was then (default: now)"},
        },
    },
    "Run": {
        "type": "object",
        "required": ["id", "dataset_id", "name", "mode", "status", "as_of", "target", "scorers", "total", "completed",
                     "failed", "pending", "created_at", "finished_at"],
        "properties": {
            "id": {"type": "string"}, "dataset_id": {"type": "string"}, "name": {"type": "string"},
            "mode": {"type": "string", "enum": ["server", "client"]},
            "status": {"type": "string", "enum": ["pending", "running", "completed", "failed", "cancelled"]},
            "as_of": {"type": "string", "format": "date-time", "description": "the dataset version the run reads"},
            "target": {"type": ["object", "null"], "description": "headers are shown as ***"},
            "scorers": {"type": "array", "items": {"type": "string"}},
            "thresholds": {"type": "object"}, "concurrency": {"type": "integer"}, "metadata": {"type": "object"},
            "total": {"type": "integer"}, "completed": {"type": "integer", "description": "successful results"},
            "failed": {"type": "integer", "description": "error results"}, "pending": {"type": "integer"},
            "scored": {"type": "integer"}, "scoring_failed": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object"}},
            "created_at": {"type": "string", "format": "date-time"}, "updated_at": {"type": "string", "format": "date-time"},
            "finished_at": {"type": ["string", "null"], "format": "date-time"},
            "created_by": {"type": ["string", "null"], "description": "name of the API key that wrote it (never the key)"},
            "summary": _ref("RunSummary"),
        },
    },
    "RunSummary": {
        "type": "object",
        "required": ["total", "completed", "errors", "latency_ms", "tokens", "scorers"],
        "properties": {
            "total": {"type": "integer"}, "completed": {"type": "integer"}, "errors": {"type": "integer"},
            "pending": {"type": "integer"},
            "latency_ms": {"type": "object", "properties": {"p50": NUMBER_OR_NULL, "p95": NUMBER_OR_NULL, "mean": NUMBER_OR_NULL}},
            "tokens": _TOKENS,
            "scorers": {"type": "object", "additionalProperties": _SCORER_STATS},
        },
    },
    "RunResult": {
        "type": "object",
        "required": ["id", "item_id", "seq", "status", "input", "expected_output", "output", "error", "trace_id",
                     "span_id", "latency_ms", "tokens", "scores"],
        "properties": {
            "id": {"type": "string"}, "run_id": {"type": "string"}, "item_id": {"type": "string"}, "seq": {"type": "integer"},
            "status": {"type": "string", "enum": ["pending", "ok", "error"]},
            "input": ANY, "expected_output": ANY, "output": ANY, "error": NULLABLE_TEXT,
            "trace_id": NULLABLE_TEXT, "span_id": NULLABLE_TEXT, "latency_ms": NUMBER_OR_NULL, "tokens": _TOKENS,
            "scores": {"type": "array", "items": _RUN_SCORE},
        },
    },
    "PostedRunResults": {
        "type": "object",
        "required": ["results"],
        "additionalProperties": False,
        "properties": {
            "results": {
                "type": "array", "minItems": 1, "maxItems": 10000,
                "items": {
                    "type": "object",
                    "required": ["item_id"],
                    "additionalProperties": False,
                    "properties": {
                        "item_id": {"type": "string"}, "output": ANY,
                        "trace_id": {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"},
                        "span_id": {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"},
                        "latency_ms": {"type": "number", "minimum": 0},
                        "tokens": {"type": ["integer", "object"], "description": "a total, or {input, output, total}"},
                        "error": {"type": "string", "description": "the item failed with this message"},
                        "scores": {
                            "type": "array", "maxItems": 32,
                            "description": "the client's own scores of this result (not the run's server scorers); "
                                           "linked to the result's trace when the run is scored",
                            "items": {
                                "type": "object", "required": ["name"], "additionalProperties": False,
                                "properties": {
                                    "name": {"type": "string", "minLength": 1, "maxLength": 200},
                                    "value": {"type": ["number", "boolean", "null"]},
                                    "label": {"type": ["string", "null"], "maxLength": 1000},
                                    "data_type": {"type": "string", "enum": ["numeric", "boolean", "categorical"]},
                                    "explanation": {"type": ["string", "null"], "maxLength": 10000},
                                    "metadata": {"type": ["object", "null"]},
                                },
                            },
                        },
                    },
                },
            }
        },
    },
    "RunComparison": {
        "type": "object",
        "required": ["a", "b", "summary", "items", "next_cursor"],
        "properties": {
            "a": _ref("Run"), "b": _ref("Run"),
            "summary": {"type": "object", "description": "each run's summary, delta (b minus a), and item counts"},
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["item_id", "regression", "a", "b", "score_deltas"],
                    "properties": {
                        "item_id": {"type": "string"}, "input": ANY, "expected_output": ANY,
                        "regression": {"type": "boolean"}, "improvement": {"type": "boolean"},
                        "score_deltas": {"type": "object", "additionalProperties": {"type": "number"}},
                        "a": _SIDE, "b": _SIDE,
                    },
                },
            },
            "next_cursor": NULLABLE_TEXT,
        },
    },
}

_RUN = json_response("The run", _ref("Run"))
OPENAPI_PATHS: dict[str, Any] = {
    "/api/datasets/{dataset}/runs": {
        "get": {
            "summary": "Runs of the dataset, newest first",
            "parameters": [
                DATASET,
                query_param("summary", "true: each run with its summary (per-scorer mean and pass rate, latency, tokens)",
                            {"type": "boolean", "default": False}),
                *LIST_PARAMS,
            ],
            "responses": {
                "200": json_response("A page of runs", {"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": _ref("Run")}, "next_cursor": NULLABLE_TEXT}}),
                **error_responses(400, 401, 404),
            },
        },
        "post": {
            "summary": "Start a run: server-side with a target (202, runs in the background), or client-side without",
            "description": "A target URL the outbound policy (config `outbound.allow`) refuses is a 400 with "
                           "code `outbound_refused` and the refusing `rule`.",
            "parameters": [DATASET],
            "requestBody": _body(_ref("NewRun")),
            "responses": {"202": json_response("Accepted", _ref("Run")), **error_responses(400, 401, 404, 409, 413, 503)},
        },
    },
    "/api/datasets/{dataset}/runs/compare": {
        "get": {
            "summary": "Two runs side by side per item (regressions first) with summary deltas (b minus a)",
            "parameters": [
                DATASET,
                query_param("runs", "Two run ids or names, comma-separated: a,b", required=True),
                *LIST_PARAMS,
            ],
            "responses": {"200": json_response("The comparison", _ref("RunComparison")), **error_responses(400, 401, 404)},
        }
    },
    "/api/datasets/{dataset}/runs/{run_id}": {
        "get": {
            "summary": "One run with its summary: per-scorer mean and pass rate, latency p50/p95, tokens, errors",
            "parameters": [DATASET, RUN_ID],
            "responses": {"200": _RUN, **error_responses(400, 401, 404)},
        },
        "delete": {
            "summary": "Delete a finished or cancelled run with its results and their scores (409 while it runs)",
            "parameters": [DATASET, RUN_ID],
            "responses": {"204": {"description": "Deleted"}, **error_responses(400, 401, 404, 409)},
        },
    },
    "/api/datasets/{dataset}/runs/{run_id}/results": {
        "get": {
            "summary": "Results in item order, each with its scores",
            "parameters": [DATASET, RUN_ID, query_param("status", "pending, ok or error",
                                                        {"type": "string", "enum": ["pending", "ok", "error"]}), *LIST_PARAMS],
            "responses": {
                "200": json_response("A page of results", {"type": "object", "required": ["items", "next_cursor"], "properties": {
                    "items": {"type": "array", "items": _ref("RunResult")}, "next_cursor": NULLABLE_TEXT}}),
                **error_responses(400, 401, 404),
            },
        },
        "post": {
            "summary": "Client-side runs: post results; posting an item again replaces its result",
            "parameters": [DATASET, RUN_ID],
            "requestBody": _body(_ref("PostedRunResults")),
            "responses": {
                "200": json_response("Stored", {"type": "object", "required": ["accepted", "run"],
                                                "properties": {"accepted": {"type": "integer"}, "run": _ref("Run")}}),
                **error_responses(400, 401, 404, 409, 413),
            },
        },
    },
    "/api/datasets/{dataset}/runs/{run_id}/complete": {
        "post": {
            "summary": "Client-side runs: no more results; unposted items become errors and scoring starts",
            "parameters": [DATASET, RUN_ID],
            "responses": {"202": json_response("Scoring", _ref("Run")), **error_responses(400, 401, 404, 409)},
        }
    },
    "/api/datasets/{dataset}/runs/{run_id}/cancel": {
        "post": {
            "summary": "Cancel a run: nothing new is dispatched, calls in flight are recorded",
            "parameters": [DATASET, RUN_ID],
            "responses": {"200": _RUN, **error_responses(400, 401, 404, 409)},
        }
    },
}
