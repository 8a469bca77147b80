"""`llm_judge`: ask an OpenAI-compatible chat-completions endpoint to grade a trace.

The prompt is a template over `{{input}}`, `{{output}}`, `{{expected_output}}`, `{{trace_id}}` and
`{{span_name}}`. The answer may be JSON (`{"score": 0.8, "explanation": "..."}` or `{"label": ...}`),
`score: 7`, a bare number, or (label mode) one of the configured labels. Anything else fails the
item with the answer quoted, so a judge that rambles shows up in the batch's errors.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping
from typing import Any

from spanlake.scoring.base import ScoreContext, ScoreResult, ScorerConfigError, ScorerType, ScoringError, as_text
from spanlake.scoring.http_errors import ClientPool, post_json

DEFAULT_PROMPT = """You are grading the answer of an AI application.

Input:
{{input}}

Answer:
{{output}}

Expected answer (may be empty):
{{expected_output}}

Rate how well the answer serves the input, from 0 (useless or wrong) to 1 (fully correct and helpful).
Reply with JSON only: {"score": <number between 0 and 1>, "explanation": "<one sentence>"}"""

VARIABLES = ("input", "output", "expected_output", "trace_id", "span_name")
_VAR = re.compile(r"\{\{\s*([A-Za-z_]+)\s*\}\}")
_FENCE = re.compile(r"^```(?:json)?\s*|\s*```$")
_SCORE_TEXT = re.compile(r"(?i)\bscore\b\s*[:=]?\s*(-?\d+(?:\.\d+)?)")
_BARE_NUMBER = re.compile(r"\s*(-?\d+(?:\.\d+)?)\s*(?:/\s*\d+(?:\.\d+)?)?\s*\.?\s*")
_LABEL_TEXT = re.compile(r"(?i)\blabel\b\s*[:=]\s*\"?([\w\- ]+?)\"?\s*(?:$|[,.\n])")

PARAMETERS = {
    "type": "object",
    "properties": {
        "model": {"type": "string", "description": "model name sent to the endpoint"},
        "base_url": {"type": "string", "pattern": "^https?://", "default": "https://api.openai.com/v1",
                     "description": "OpenAI-compatible API root; /chat/completions is appended"},
        "api_key_env": {"type": "string", "default": "OPENAI_API_KEY", "description": "env var holding the API key"},
        "prompt": {"type": "string", "description": "template; variables: " + ", ".join("{{%s}}" % v for v in VARIABLES)},
        "system": {"type": "string", "description": "optional system message"},
        "mode": {"type": "string", "enum": ["score", "label"], "default": "score"},
        "labels": {
            "description": "label mode: the allowed labels, or a mapping label -> numeric value",
            "oneOf": [
                {"type": "array", "items": {"type": "string"}, "minItems": 1},
                {"type": "object", "additionalProperties": {"type": "number"}, "minProperties": 1},
            ],
        },
        "min_score": {"type": "number", "default": 0},
        "max_score": {"type": "number", "default": 1},
        "temperature": {"type": "number", "default": 0},
        "max_tokens": {"type": "integer", "minimum": 1, "default": 256},
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "max_chars": {"type": "integer", "minimum": 100, "default": 20000, "description": "truncate each variable"},
        "extra_body": {"type": "object", "description": "merged into the request body (vendor options)"},
    },
    "required": ["model"],
    "additionalProperties": False,
}


def render(template: str, values: Mapping[str, str]) -> str:
    return _VAR.sub(lambda m: values.get(m.group(1), ""), template)


class LlmJudge:
    def __init__(self, params: Mapping[str, Any]):
        self.model = params["model"]
        self.url = params.get("base_url", "https://api.openai.com/v1").rstrip("/") + "/chat/completions"
        self.prompt = params.get("prompt", DEFAULT_PROMPT)
        unknown = sorted({m.group(1) for m in _VAR.finditer(self.prompt)} - set(VARIABLES))
        if unknown:
            raise ScorerConfigError(f"params.prompt: unknown variable {{{{{unknown[0]}}}}}; use {', '.join(VARIABLES)}")
        self.system = params.get("system")
        self.mode = params.get("mode", "score")
        labels = params.get("labels")
        if self.mode == "label" and not labels:
            raise ScorerConfigError("params.labels: required when mode is label")
        self.labels: dict[str, float | None] = (
            dict(labels) if isinstance(labels, Mapping) else {label: None for label in (labels or [])}
        )
        self.min_score = float(params.get("min_score", 0))
        self.max_score = float(params.get("max_score", 1))
        self.max_chars = int(params.get("max_chars", 20000))
        self.timeout_s = float(params.get("timeout_s", 30))
        self.body_extra = {"temperature": params.get("temperature", 0), "max_tokens": params.get("max_tokens", 256),
                           **(params.get("extra_body") or {})}
        key_env = params.get("api_key_env", "OPENAI_API_KEY")
        key = os.environ.get(key_env)
        if key is None and "api_key_env" in params:
            raise ScorerConfigError(f"params.api_key_env: environment variable {key_env} is not set")
        self.headers = {"authorization": f"Bearer {key}"} if key else {}
        self.pool_size = 8
        self._client: ClientPool | None = None

    def bind_concurrency(self, concurrency: int) -> None:
        self.pool_size = concurrency

    def messages(self, ctx: ScoreContext) -> list[dict[str, str]]:
        def clip(value: Any) -> str:
            text = as_text(value)
            return text if len(text) <= self.max_chars else text[: self.max_chars] + " [truncated]"

        values = {
            "input": clip(ctx.input),
            "output": clip(ctx.output),
            "expected_output": clip(ctx.expected_output),
            "trace_id": ctx.trace_id,
            "span_name": str(ctx.span.get("name") or ""),
        }
        msgs = [{"role": "system", "content": self.system}] if self.system else []
        return msgs + [{"role": "user", "content": render(self.prompt, values)}]

    async def score(self, ctx: ScoreContext) -> ScoreResult:
        if self._client is None:
            self._client = ClientPool(self.pool_size, self.timeout_s)
        body = {"model": self.model, "messages": self.messages(ctx), **self.body_extra}
        answer = await post_json(self._client, self.url, body, headers=self.headers, what=f"judge {self.model}")
        try:
            content = answer["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError):
            raise ScoringError(f"judge {self.model} response has no choices[0].message.content") from None
        if not isinstance(content, str) or not content.strip():
            raise ScoringError(f"judge {self.model} gave an empty answer")
        result = self.parse(content)
        meta = {"model": self.model, "answer": content[:500]}
        if isinstance(answer.get("usage"), dict):
            meta["usage"] = answer["usage"]
        return ScoreResult(result.value, result.label, result.explanation, meta, result.data_type)

    def parse(self, content: str) -> ScoreResult:
        """The judge's verdict from its answer text; ScoringError quoting the answer when there is none."""
        text = _FENCE.sub("", content.strip())
        doc = _json_object(text)
        explanation = None
        if doc is not None:
            explanation = doc.get("explanation") or doc.get("reasoning") or doc.get("reason")
            explanation = None if explanation is None else str(explanation)
        if self.mode == "label":
            label = doc.get("label") if doc is not None else None
            label = self._match_label(str(label) if label is not None else text, content)
            value = self.labels[label]
            return ScoreResult(value, label, explanation, data_type="categorical" if value is None else "numeric")
        raw = doc.get("score", doc.get("value")) if doc is not None else None
        if raw is None and doc is None:
            match = _BARE_NUMBER.fullmatch(text) or _SCORE_TEXT.search(text)
            raw = match.group(1) if match else None
        try:
            score = float(raw) if raw is not None and not isinstance(raw, bool) else None
        except (TypeError, ValueError):
            score = None
        if score is None:
            raise ScoringError(f"judge answer has no score: {_quote(content)}")
        if not self.min_score <= score <= self.max_score:
            raise ScoringError(f"judge score {score} is outside {self.min_score}..{self.max_score}: {_quote(content)}")
        return ScoreResult(score, None, explanation)

    def _match_label(self, candidate: str, content: str) -> str:
        by_lower = {label.lower(): label for label in self.labels}
        if candidate.strip().lower() in by_lower:
            return by_lower[candidate.strip().lower()]
        tagged = _LABEL_TEXT.search(candidate)
        if tagged and tagged.group(1).strip().lower() in by_lower:
            return by_lower[tagged.group(1).strip().lower()]
        found = {by_lower[w] for w in by_lower if re.search(rf"(?i)(?<![\w-]){re.escape(w)}(?![\w-])", candidate)}
        if len(found) == 1:
            return found.pop()
        why = "several labels" if found else "no label"
        raise ScoringError(f"judge answer names {why} of {sorted(self.labels)}: {_quote(content)}")

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def _json_object(text: str) -> dict[str, Any] | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        doc = json.loads(text[start : end + 1])
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def _quote(content: str, limit: int = 200) -> str:
    flat = " ".join(content.split())
    return repr(flat if len(flat) <= limit else flat[:limit] + "...")


def spanlake_scorers() -> list[ScorerType]:
    return [
        ScorerType(
            "llm_judge",
            "asks an OpenAI-compatible chat model to grade the trace's output; parses a score or a label",
            LlmJudge,
            PARAMETERS,
            default_concurrency=8,
        )
    ]
