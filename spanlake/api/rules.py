"""Rule routes: the loaded rules with their counters (and scoring rules' progress), and backfill
over stored spans."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from spanlake.api.body import read_json_object
from spanlake.api.errors import bad_request, not_found
from spanlake.api.openapi import error_responses, json_response, path_param
from spanlake.api.state import services_of
from spanlake.capture.backfill import SPANS_PER_WINDOW, run_backfill
from spanlake.capture.component import CaptureRules
from spanlake.capture.counters import RuleCounter
from spanlake.capture.rules import Rule, RuleSet, RulesError, parse_rules
from spanlake.filters import FilterError, parse_time
from spanlake.clock import iso_from_datetime
from spanlake.store.rule_scores import backlog_by_rule
from spanlake.clock import utc_now

def _capture(request: Request) -> CaptureRules:
    return services_of(request).capture


def _scoring(rule: Rule, counter: RuleCounter, backlog: int) -> dict[str, Any]:
    """A scoring rule's progress under the names the docs use: matches (targets), then scorer calls."""
    counts = counter.as_dict()
    return {
        "scorers": list(rule.score),
        "matched": counts["matched"],
        "sampled_out": counts["sampled_out"],
        "over_budget": counts["rate_limited"],
        "queued": counts["queued"],
        "already_scored": counts["already_scored"],
        "scored": counts["scored"],
        "failed": counts["failed"],
        "backlog": backlog,
        "recent_failures": counter.failures(),
    }


async def list_rules(request: Request) -> JSONResponse:
    return JSONResponse(await rules_listing(request))


async def rules_listing(request: Request) -> dict[str, Any]:
    """The loaded rules with their counters and the reload state (the rules page shows the same)."""
    capture = _capture(request)
    ruleset: RuleSet = capture.ruleset
    backlog = await services_of(request).store.read(backlog_by_rule) if ruleset.scorer_names() else {}
    items = []
    for rule in ruleset.rules:
        counter = capture.counters.for_rule(rule.name)
        item = {
            "name": rule.name,
            "dataset": rule.dataset,
            "score": list(rule.score),
            "scope": rule.scope,
            "enabled": rule.enabled,
            "definition": rule.definition,
            "counters": counter.as_dict(),
        }
        if rule.score:
            item["scoring"] = _scoring(rule, counter, backlog.get(rule.name, 0))
        items.append(item)
    error = capture.state.error
    return {
        "items": items,
        "next_cursor": None,
        "source": capture.path,
        "loaded_at": iso_from_datetime(capture.state.loaded_at),
        "reload_error": None if error is None else {**error, "at": iso_from_datetime(error["at"])},
    }


def _time(body: dict[str, Any], key: str, default: Any = None) -> Any:
    if key not in body or body[key] is None:
        return default
    try:
        return parse_time(body[key])
    except (ValueError, TypeError, OverflowError, FilterError) as exc:
        raise bad_request(f"{key} must be an ISO-8601 time or epoch seconds, got {body[key]!r} ({exc})") from None


async def backfill(request: Request) -> StreamingResponse:
    capture = _capture(request)
    name = request.path_params["name"]
    body = await read_json_object(request)
    unknown = set(body) - {"since", "until", "rule", "window_spans"}
    if unknown:
        raise bad_request(f"unknown field(s) {sorted(unknown)}; expected since, until, rule, window_spans")
    window_spans = body.get("window_spans", SPANS_PER_WINDOW)
    if isinstance(window_spans, bool) or not isinstance(window_spans, int) or not 100 <= window_spans <= 1_000_000:
        raise bad_request(f"window_spans must be an integer from 100 to 1000000, got {window_spans!r}")
    if body.get("since") is None:
        raise bad_request("since is required: backfill runs over spans that started at or after it")
    since = _time(body, "since")
    until = _time(body, "until", utc_now())
    if until < since:
        raise bad_request("until is before since")
    if body.get("rule") is not None:
        definition = body["rule"]
        if not isinstance(definition, dict) or definition.get("name", name) != name:
            raise bad_request("rule must be a rule definition whose name matches the path")
        try:
            rule = parse_rules(json.dumps({"rules": [{"name": name, **definition}]}), "request body", capture.scorers).rules[0]
        except RulesError as exc:
            raise bad_request("; ".join(exc.problems), problems=exc.problems) from None
    else:
        rule = capture.ruleset.by_name(name)
        if rule is None:
            raise not_found(f"no loaded rule named {name!r}; send its definition as 'rule' to backfill it anyway")

    async def progress() -> AsyncIterator[bytes]:
        async for record in run_backfill(services_of(request).store, rule, since, until, window_spans):
            yield (json.dumps(record) + "\n").encode()

    return StreamingResponse(progress(), media_type="application/x-ndjson")


_RULE = {"type": "object"}
OPENAPI_PATHS: dict = {
    "/api/rules": {
        "get": {
            "summary": "Loaded rules with their counters since start (scoring rules: their progress and recent "
                       "scorer failures), and the last reload error",
            "responses": {
                "200": json_response(
                    "The rules",
                    {
                        "type": "object",
                        "required": ["items"],
                        "properties": {
                            "items": {"type": "array", "items": _RULE},
                            "next_cursor": {"type": ["string", "null"]},
                            "source": {"type": ["string", "null"]},
                            "loaded_at": {"type": ["string", "null"]},
                            "reload_error": {"type": ["object", "null"]},
                        },
                    },
                ),
                **error_responses(401, 503),
            },
        }
    },
    "/api/rules/{name}/backfill": {
        "post": {
            "summary": "Run a rule (loaded, or given in the body) over stored spans; streams NDJSON progress. "
                       "A scoring rule queues the targets not scored yet; scorers run in the background",
            "parameters": [path_param("name", "Rule name")],
            "requestBody": {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {
                            "type": "object",
                            "required": ["since"],
                            "properties": {
                                "since": {"type": ["string", "number"]},
                                "until": {"type": ["string", "number"]},
                                "rule": _RULE,
                                "window_spans": {"type": "integer", "minimum": 100, "maximum": 1000000,
                                                 "description": "spans per transaction (default 100000)"},
                            },
                        }
                    }
                },
            },
            "responses": {
                "200": {"description": "Progress records, one JSON object per line", "content": {"application/x-ndjson": {"schema": {"type": "string"}}}},
                **error_responses(400, 401, 404, 413, 503),
            },
        }
    },
}


def routes() -> list[Route]:
    return [
        Route("/api/rules", list_rules, methods=["GET"]),
        Route("/api/rules/{name}/backfill", backfill, methods=["POST"]),
    ]
