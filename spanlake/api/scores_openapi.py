"""OpenAPI 3.1 fragment for the scoring routes (kept apart so spanlake/api/scores.py stays readable)."""

from __future__ import annotations

from typing import Any

from spanlake.api.openapi import LIST_PARAMS, SPAN_ID, TRACE_ID, error_responses, json_response, path_param, query_param

_REF = "#/components/schemas/"
_NULLABLE_STR = {"type": ["string", "null"]}
_HEX32 = {"type": "string", "pattern": "^[0-9a-fA-F]{32}$"}
_HEX16 = {"type": "string", "pattern": "^[0-9a-fA-F]{16}$"}


def _page(item_schema: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": "object",
        "required": ["items", "next_cursor"],
        "properties": {**extra, "items": {"type": "array", "items": item_schema}, "next_cursor": _NULLABLE_STR},
    }


OPENAPI_SCHEMAS: dict[str, Any] = {
    "Score": {
        "type": "object",
        "required": ["id", "trace_id", "span_id", "name", "value", "label", "data_type", "source", "scorer", "explanation", "created_at"],
        "properties": {
            "id": {"type": "string"},
            "trace_id": {"type": ["string", "null"], "description": "null for a dataset run's score whose result has no stored trace, or an item's score without one"},
            "item_id": {"type": ["string", "null"], "description": "the dataset item this score evaluates"},
            "span_id": _NULLABLE_STR,
            "name": {"type": "string"},
            "value": {"type": ["number", "null"]},
            "label": _NULLABLE_STR,
            "data_type": {"type": "string", "enum": ["numeric", "boolean", "categorical"]},
            "source": {"type": "string", "enum": ["eval", "api", "annotation", "rule"]},
            "scorer": _NULLABLE_STR,
            "explanation": _NULLABLE_STR,
            "metadata": {"type": ["object", "null"]},
            "batch_id": _NULLABLE_STR,
            "run_id": _NULLABLE_STR,
            "created_at": {"type": "string", "format": "date-time"},
            "created_by": {"type": ["string", "null"], "description": "name of the API key that wrote it (never the key)"},
            "trace_url": {"type": ["string", "null"]},
        },
    },
    "ScoreInput": {
        "type": "object",
        "required": ["name"],
        "description": "trace_id, item_id or both are required",
        "additionalProperties": False,
        "properties": {
            "trace_id": _HEX32,
            "item_id": {"type": "string", "maxLength": 100, "description": "a dataset item (current version) this score evaluates; with no trace_id, the score has none"},
            "span_id": {**_HEX16, "description": "the scored span; default: the trace's root span"},
            "name": {"type": "string", "minLength": 1, "maxLength": 200},
            "value": {"type": ["number", "boolean", "null"]},
            "label": {"type": ["string", "null"], "maxLength": 1000},
            "data_type": {"type": "string", "enum": ["numeric", "boolean", "categorical"]},
            "source": {"type": "string", "enum": ["api", "annotation"], "default": "api"},
            "scorer": {"type": ["string", "null"], "maxLength": 200},
            "explanation": {"type": ["string", "null"], "maxLength": 10000},
            "metadata": {"type": ["object", "null"]},
        },
    },
    "Scorer": {
        "type": "object",
        "required": ["name", "type", "description", "parameters", "ready"],
        "properties": {
            "name": {"type": "string"},
            "type": {"type": "string"},
            "description": {"type": "string"},
            "origin": {"type": "string", "enum": ["builtin", "config", "plugin"]},
            "params": {"type": ["object", "null"], "description": "configured values (secrets masked)"},
            "parameters": {"type": "object", "description": "JSON Schema of the params"},
            "concurrency": {"type": "integer"},
            "ready": {"type": "boolean", "description": "false: a type that needs params in the config file"},
            "hint": {"type": ["string", "null"]},
        },
    },
    "ScoreSummary": {
        "type": "object",
        "required": ["name", "count", "mean", "min", "max", "pass_rate", "histogram", "labels", "worst"],
        "description": "one score name over trace scores (dataset run scores are summarised per run)",
        "properties": {
            "name": {"type": "string"},
            "count": {"type": "integer"},
            "mean": {"type": ["number", "null"]},
            "min": {"type": ["number", "null"]},
            "max": {"type": ["number", "null"]},
            "pass_rate": {"type": ["number", "null"],
                          "description": "share at or above pass_threshold; without one, of boolean scores that are true"},
            "data_types": {"type": "array", "items": {"type": "string"}},
            "scorers": {"type": "array", "items": {"type": "string"}},
            "sources": {"type": "array", "items": {"type": "string"}},
            "last_scored_at": {"type": ["string", "null"]},
            "histogram": {
                "type": "array",
                "items": {"type": "object", "properties": {"lower": {"type": "number"}, "upper": {"type": "number"},
                                                           "count": {"type": "integer"}}},
            },
            "labels": {"type": "object", "additionalProperties": {"type": "integer"}, "description": "the 10 commonest"},
            "worst": {
                "type": "array",
                "description": "lowest values first (scores read as higher is better)",
                "items": {"type": "object", "properties": {
                    "trace_id": {"type": "string"}, "span_id": _NULLABLE_STR, "value": {"type": "number"},
                    "label": _NULLABLE_STR, "explanation": _NULLABLE_STR, "created_at": {"type": "string"}}},
            },
        },
    },
    "ScoreBatchRequest": {
        "type": "object",
        "required": ["scorer"],
        "description": "exactly one of trace_ids, targets or filter",
        "properties": {
            "scorer": {"type": "string"},
            "trace_ids": {"type": "array", "items": _HEX32, "minItems": 1},
            "targets": {
                "type": "array",
                "minItems": 1,
                "items": {"type": "object", "required": ["trace_id"], "properties": {"trace_id": _HEX32, "span_id": _HEX16}},
            },
            "filter": {"type": "object", "description": "filter tree; a trace is selected when any span matches"},
            "limit": {"type": "integer", "minimum": 1, "maximum": 100000, "default": 1000},
            "sample": {"type": "number", "exclusiveMinimum": 0, "maximum": 1, "description": "deterministic by trace id"},
        },
    },
    "ScoreBatchAccepted": {
        "type": "object",
        "required": ["batch_id", "status", "trace_count", "unknown_trace_ids"],
        "properties": {
            "batch_id": {"type": "string"},
            "status": {"type": "string", "enum": ["accepted"]},
            "trace_count": {"type": "integer"},
            "unknown_trace_ids": {"type": "array", "items": {"type": "string"}},
            "unknown_count": {"type": "integer"},
            "url": {"type": "string"},
        },
    },
    "ScoreBatch": {
        "type": "object",
        "required": ["batch_id", "status", "total", "completed", "failed"],
        "properties": {
            "batch_id": {"type": "string"},
            "status": {"type": "string", "enum": ["pending", "running", "completed", "failed"]},
            "scorer": _NULLABLE_STR,
            "total": {"type": "integer"},
            "completed": {"type": "integer"},
            "failed": {"type": "integer"},
            "pending": {"type": "integer"},
            "errors": {"type": "array", "items": {"type": "object"}, "description": "the first failures"},
            "selection": _NULLABLE_STR,
            "sample": {"type": ["number", "null"]},
            "unknown_trace_ids": {"type": "array", "items": {"type": "string"}},
            "created_at": {"type": "string"},
            "updated_at": {"type": "string"},
            "finished_at": _NULLABLE_STR,
        },
    },
}

_SCORE = {"$ref": _REF + "Score"}
_BATCH = {"$ref": _REF + "ScoreBatch"}
_VALUE_PARAMS = [
    query_param("min_value", "Scores with value >= this", {"type": "number"}),
    query_param("max_value", "Scores with value <= this", {"type": "number"}),
]
_SCORE_FILTERS = [
    query_param("name", "Score name"),
    query_param("scorer", "Scorer that produced it"),
    query_param("source", "eval, api, annotation or rule", {"type": "string", "enum": ["eval", "api", "annotation", "rule"]}),
    query_param("batch_id", "Batch that produced it"),
    *_VALUE_PARAMS,
    *LIST_PARAMS,
]

OPENAPI_PATHS: dict[str, Any] = {
    "/api/scorers": {
        "get": {
            "summary": "Every available scorer with its description and parameters",
            "responses": {"200": json_response("Scorers", _page({"$ref": _REF + "Scorer"})), **error_responses(401, 503)},
        }
    },
    "/api/scorers/{name}/results": {
        "get": {
            "summary": "A scorer's scores with links to their traces, and count, mean, pass rate, histogram",
            "parameters": [
                path_param("name", "scorer name"),
                query_param("pass_threshold", "value counted as a pass (default: true for boolean scores)", {"type": "number"}),
                *[p for p in _SCORE_FILTERS if p["name"] not in ("scorer",)],
            ],
            "responses": {
                "200": json_response(
                    "Stats and a page of scores",
                    _page(_SCORE, scorer={"type": "string"}, stats={"type": "object"}),
                ),
                **error_responses(400, 401, 404, 503),
            },
        }
    },
    "/api/scores/summary": {
        "get": {
            "summary": "Per score name: count, mean, pass rate, histogram, commonest labels and the worst traces",
            "parameters": [
                query_param("pass_threshold", "value counted as a pass (default: true for boolean scores)", {"type": "number"}),
                query_param("bins", "histogram bins, 1-50 (default 10)", {"type": "integer", "minimum": 1, "maximum": 50}),
                query_param("worst", "lowest-valued scores listed per name, 0-50 (default 5)",
                            {"type": "integer", "minimum": 0, "maximum": 50}),
                *[p for p in _SCORE_FILTERS if p["name"] not in ("limit", "cursor")],
            ],
            "responses": {
                "200": json_response("One entry per score name", _page({"$ref": _REF + "ScoreSummary"},
                                                                       pass_threshold={"type": ["number", "null"]})),
                **error_responses(400, 401),
            },
        }
    },
    "/api/scores/batch": {
        "post": {
            "summary": "Score traces in the background; answers 202 before any scoring happens",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": _REF + "ScoreBatchRequest"}}}},
            "responses": {
                "202": json_response("Accepted", {"$ref": _REF + "ScoreBatchAccepted"}),
                **error_responses(400, 401, 404, 413, 503),
            },
        }
    },
    "/api/scores/batches": {
        "get": {
            "summary": "Scoring batches, newest first",
            "parameters": [
                query_param("status", "pending, running, completed or failed",
                            {"type": "string", "enum": ["pending", "running", "completed", "failed"]}),
                query_param("scorer", "Batches of this scorer"),
                *LIST_PARAMS,
            ],
            "responses": {"200": json_response("A page of batches", _page(_BATCH)), **error_responses(400, 401)},
        }
    },
    "/api/scores/batches/{batch_id}": {
        "get": {
            "summary": "A batch's status, progress and first errors",
            "parameters": [path_param("batch_id", "batch id")],
            "responses": {"200": json_response("The batch", _BATCH), **error_responses(401, 404)},
        }
    },
    "/api/scores": {
        "get": {
            "summary": "Scores, newest first",
            "parameters": [
                query_param("trace_id", "32 hex characters"),
                query_param("span_id", "16 hex characters"),
                query_param("item_id", "Scores of this dataset item"),
                *_SCORE_FILTERS,
            ],
            "responses": {"200": json_response("A page of scores", _page(_SCORE)), **error_responses(400, 401)},
        },
        "post": {
            "summary": "Record a manual or external score; refused for a trace the store does not hold",
            "requestBody": {"required": True, "content": {"application/json": {"schema": {"$ref": _REF + "ScoreInput"}}}},
            "responses": {"201": json_response("The stored score", _SCORE), **error_responses(400, 401, 404, 413)},
        },
    },
    "/api/traces/{trace_id}/scores": {
        "get": {
            "summary": "Scores of one trace",
            "parameters": [TRACE_ID, *_SCORE_FILTERS],
            "responses": {
                "200": json_response("A page of scores", _page(_SCORE, trace_id={"type": "string"})),
                **error_responses(400, 401, 404),
            },
        }
    },
    "/api/traces/{trace_id}/spans/{span_id}/scores": {
        "get": {
            "summary": "Scores of one span",
            "parameters": [TRACE_ID, SPAN_ID, *_SCORE_FILTERS],
            "responses": {
                "200": json_response(
                    "A page of scores", _page(_SCORE, trace_id={"type": "string"}, span_id={"type": "string"})
                ),
                **error_responses(400, 401, 404),
            },
        }
    },
}
