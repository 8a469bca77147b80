"""Rule routes: the loaded rules with their counters (and scoring rules' progress), and backfill
over stored spans."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from pydantic import Field, StrictFloat, StrictInt

from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.errors import bad_request, not_found
from spanlake.api.shapes.common import Body, Returned
from spanlake.api.state import services_of
from spanlake.capture.backfill import SPANS_PER_WINDOW, run_backfill
from spanlake.capture.component import CaptureRules
from spanlake.capture.counters import RuleCounter
from spanlake.capture.rules import Rule, RuleSet, RulesError, parse_rules
from spanlake.filters import FilterError, parse_time
from spanlake.clock import iso_from_datetime
from spanlake.store.rule_scores import backlog_by_rule
from spanlake.clock import utc_now

class BackfillRequest(Body):
    since: str | StrictFloat = Field(description="ISO-8601 time or epoch seconds: spans that started at or after it")
    until: str | StrictFloat | None = Field(None, description="default: now")
    rule: dict[str, Any] | None = Field(None, description="a rule definition to run instead of the loaded one")
    window_spans: StrictInt = Field(SPANS_PER_WINDOW, ge=100, le=1_000_000, description="spans per transaction")


class RuleStatus(Returned):
    name: str
    dataset: str | None
    score: list[str]
    scope: str
    enabled: bool
    definition: dict[str, Any]
    counters: dict[str, int]
    scoring: dict[str, Any] | None = Field(None, description="a scoring rule's progress and recent scorer failures")


class RulesListing(Returned):
    items: list[RuleStatus]
    next_cursor: str | None = None
    source: str | None = None
    loaded_at: str | None = None
    reload_error: dict[str, Any] | None = None


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


def _time(value: Any, key: str) -> Any:
    try:
        return parse_time(value)
    except (ValueError, TypeError, OverflowError, FilterError) as exc:
        raise bad_request(f"{key} must be an ISO-8601 time or epoch seconds, got {value!r} ({exc})") from None


async def backfill(request: Request, *, body: BackfillRequest) -> StreamingResponse:
    capture = _capture(request)
    name = request.path_params["name"]
    since = _time(body.since, "since")
    until = utc_now() if body.until is None else _time(body.until, "until")
    if until < since:
        raise bad_request("until is before since")
    window_spans = body.window_spans
    if body.rule is not None:
        definition = body.rule
        if definition.get("name", name) != name:
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


_TAGS = ("rules",)
OPERATIONS = [
    Operation("GET", "/api/rules", list_rules, "Loaded rules with their counters since start (scoring rules: their progress "
              "and recent scorer failures), and the last reload error", _TAGS,
              (json_reply(200, "The rules", RulesListing),), errors=(503,)),
    Operation("POST", "/api/rules/{name}/backfill", backfill, "Run a rule (loaded, or given in the body) over stored spans; "
              "streams NDJSON progress. A scoring rule queues the targets not scored yet; scorers run in the background",
              _TAGS, (Reply(200, "Progress records, one JSON object per line", {"application/x-ndjson": str}),),
              errors=(404, 503), body=BackfillRequest, strict_json=False),
]
