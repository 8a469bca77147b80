"""Code scorers that ship with spanlake, registered through the same hook as any plugin.

Pure functions of the trace: no I/O, so the engine runs them in bulk on a worker thread.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

import jsonschema

from spanlake.scoring.base import FunctionScorer, ScoreContext, ScoreResult, ScorerType, as_text

_FIELD = {"type": "string", "enum": ["input", "output"], "default": "output", "description": "which text to check"}


def _subtree(ctx: ScoreContext) -> list[dict[str, Any]]:
    """The scored spans: the whole trace, or the target span and its descendants."""
    if ctx.target is None:
        return ctx.spans
    keep, out = {ctx.target["span_id"]}, []
    for span in ctx.spans:  # parents come first, so one pass collects descendants
        if span["span_id"] in keep or span.get("parent_span_id") in keep:
            keep.add(span["span_id"])
            out.append(span)
    return out


def no_errors(ctx: ScoreContext) -> ScoreResult:
    spans = _subtree(ctx)
    failed = [s for s in spans if s.get("status") == "ERROR"]
    if not failed:
        return ScoreResult(True, explanation=f"no span of {len(spans)} has status ERROR")
    names = ", ".join(sorted({s["name"] for s in failed})[:5])
    return ScoreResult(
        False,
        explanation=f"{len(failed)} of {len(spans)} spans have status ERROR: {names}",
        metadata={"error_span_ids": [s["span_id"] for s in failed[:20]]},
    )


class Latency:
    def __init__(self, params: Mapping[str, Any]):
        self.threshold_ms = params.get("threshold_ms")

    def score(self, ctx: ScoreContext) -> ScoreResult:
        duration_ms = float(ctx.span.get("duration_ms") or 0.0)
        meta = {"duration_ms": duration_ms}
        if self.threshold_ms is None:
            return ScoreResult(duration_ms / 1000.0, explanation=f"{duration_ms:.1f} ms", metadata=meta)
        ok = duration_ms <= self.threshold_ms
        sign = "<=" if ok else ">"
        return ScoreResult(ok, explanation=f"{duration_ms:.1f} ms {sign} {self.threshold_ms} ms", metadata=meta)


class TokenUsage:
    def __init__(self, params: Mapping[str, Any]):
        self.max_tokens = params.get("max_tokens")

    def score(self, ctx: ScoreContext) -> ScoreResult:
        spans = _subtree(ctx)
        # Count LLM spans only when the trace marks them: agents often repeat their children's usage.
        llm = [s for s in spans if s.get("span_type") == "llm"] or spans
        inp = sum(int(s.get("input_tokens") or 0) for s in llm)
        out = sum(int(s.get("output_tokens") or 0) for s in llm)
        total = inp + out or sum(int(s.get("total_tokens") or 0) for s in llm)
        meta = {"input_tokens": inp, "output_tokens": out, "total_tokens": total}
        if self.max_tokens is None:
            return ScoreResult(total, explanation=f"{total} tokens ({inp} in, {out} out)", metadata=meta)
        ok = total <= self.max_tokens
        return ScoreResult(ok, explanation=f"{total} tokens, limit {self.max_tokens}", metadata=meta)


def _is_empty(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        text = value.strip()
        if text in ("", "null", '""', "[]", "{}"):
            return True
        return False
    return not value


def output_not_empty(ctx: ScoreContext) -> ScoreResult:
    output = ctx.output
    if _is_empty(output):
        return ScoreResult(False, explanation="output is missing or empty")
    return ScoreResult(True, explanation=f"output has {len(as_text(output))} characters")


class JsonOutput:
    def __init__(self, params: Mapping[str, Any]):
        schema = params.get("schema")
        self.validator = None
        if schema is not None:
            jsonschema.Draft202012Validator.check_schema(schema)
            self.validator = jsonschema.Draft202012Validator(schema)

    def score(self, ctx: ScoreContext) -> ScoreResult:
        output = ctx.output
        if isinstance(output, str):
            try:
                doc = json.loads(output)
            except ValueError as exc:
                return ScoreResult(False, explanation=f"output is not JSON: {exc}")
        elif output is None:
            return ScoreResult(False, explanation="output is missing")
        else:
            doc = output
        if self.validator is not None:
            error = jsonschema.exceptions.best_match(self.validator.iter_errors(doc))
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                return ScoreResult(False, explanation=f"output does not match the schema at {where}: {error.message}")
        return ScoreResult(True, explanation="output is valid JSON" + (" matching the schema" if self.validator else ""))


class Regex:
    def __init__(self, params: Mapping[str, Any]):
        flags = re.IGNORECASE if params.get("ignore_case") else 0
        try:
            self.pattern = re.compile(params["pattern"], flags)
        except re.error as exc:
            raise ValueError(f"pattern {params['pattern']!r} is not a valid regular expression: {exc}") from None
        self.field = params.get("field", "output")

    def score(self, ctx: ScoreContext) -> ScoreResult:
        text = as_text(getattr(ctx, self.field))
        match = self.pattern.search(text)
        if match is None:
            return ScoreResult(False, explanation=f"{self.field} does not match /{self.pattern.pattern}/")
        return ScoreResult(True, explanation=f"{self.field} matches at {match.start()}: {match.group(0)[:80]!r}")


class Contains:
    def __init__(self, params: Mapping[str, Any]):
        values = params.get("values") or []
        if "value" in params:
            values = [params["value"], *values]
        if not values:
            raise ValueError("give `value` (a string) or `values` (a list of strings)")
        self.case_sensitive = bool(params.get("case_sensitive", False))
        self.values = [v if self.case_sensitive else v.lower() for v in values]
        self.mode = params.get("mode", "any")
        self.field = params.get("field", "output")

    def score(self, ctx: ScoreContext) -> ScoreResult:
        text = as_text(getattr(ctx, self.field))
        if not self.case_sensitive:
            text = text.lower()
        found = [v for v in self.values if v in text]
        ok = bool(found) if self.mode == "any" else len(found) == len(self.values)
        missing = [v for v in self.values if v not in found]
        explanation = f"{self.field} contains {found}" if ok else f"{self.field} lacks {missing}"
        return ScoreResult(ok, explanation=explanation, metadata={"found": found})


def _schema(properties: dict[str, Any], required: list[str] | None = None) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False}
    if required:
        schema["required"] = required
    return schema


def _fn(fn: Any) -> Any:
    return lambda params: FunctionScorer(fn)


def spanlake_scorers() -> list[ScorerType]:
    return [
        ScorerType("no_errors", "true (1) when no span of the trace has status ERROR", _fn(no_errors), _schema({})),
        ScorerType(
            "latency",
            "seconds of the root (or target) span; with threshold_ms, pass when at or under it",
            Latency,
            _schema({"threshold_ms": {"type": "number", "exclusiveMinimum": 0, "description": "pass/fail bar"}}),
        ),
        ScorerType(
            "token_usage",
            "total tokens of the trace's LLM spans; with max_tokens, pass when at or under it",
            TokenUsage,
            _schema({"max_tokens": {"type": "integer", "minimum": 0, "description": "pass/fail bar"}}),
        ),
        ScorerType("output_not_empty", "true when the trace's output is not empty", _fn(output_not_empty), _schema({})),
        ScorerType(
            "json_output",
            "true when the output parses as JSON (and matches `schema`, a JSON Schema, when given)",
            JsonOutput,
            _schema({"schema": {"type": ["object", "boolean"], "description": "JSON Schema the output must match"}}),
        ),
        ScorerType(
            "regex",
            "true when the input or output matches a regular expression",
            Regex,
            _schema(
                {
                    "pattern": {"type": "string", "description": "Python regular expression, searched anywhere"},
                    "field": _FIELD,
                    "ignore_case": {"type": "boolean", "default": False},
                },
                ["pattern"],
            ),
        ),
        ScorerType(
            "contains",
            "true when the input or output contains a string (or any/all of several)",
            Contains,
            {
                **_schema(
                    {
                        "value": {"type": "string"},
                        "values": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "mode": {"type": "string", "enum": ["any", "all"], "default": "any"},
                        "field": _FIELD,
                        "case_sensitive": {"type": "boolean", "default": False},
                    }
                ),
                "anyOf": [{"required": ["value"]}, {"required": ["values"]}],
            },
        ),
    ]
