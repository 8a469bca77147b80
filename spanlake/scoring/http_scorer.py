"""The `http` scorer: POST the trace as JSON to your service, read `{value, label, explanation}` back.

Request body: `{"trace_id", "span_id", "input", "output", "expected_output", "spans": [...]}`
(`span_id` is the scored span; `spans` as `GET /api/traces/{id}` returns them).
Answer: `{"value": number|bool, "label"?: str, "explanation"?: str, "metadata"?: {...}}`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from spanlake.scoring.base import ScoreContext, ScoreResult, ScorerConfigError, ScorerType, ScoringError, coerce_result
from spanlake.scoring.http_errors import ClientPool, post_json

PARAMETERS = {
    "type": "object",
    "properties": {
        "url": {"type": "string", "pattern": "^https?://", "description": "where to POST each trace"},
        "headers": {"type": "object", "additionalProperties": {"type": "string"}, "description": "fixed headers"},
        "headers_env": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "header name -> environment variable holding its value (for secrets)",
        },
        "timeout_s": {"type": "number", "exclusiveMinimum": 0, "default": 30},
        "include_spans": {"type": "boolean", "default": True, "description": "send every span, not just input/output"},
    },
    "required": ["url"],
    "additionalProperties": False,
}


class HttpScorer:
    def __init__(self, params: Mapping[str, Any]):
        self.url = params["url"]
        self.timeout_s = float(params.get("timeout_s", 30))
        self.include_spans = bool(params.get("include_spans", True))
        self.headers = dict(params.get("headers") or {})
        for header, env in (params.get("headers_env") or {}).items():
            if env not in os.environ:
                raise ScorerConfigError(f"params.headers_env.{header}: environment variable {env} is not set")
            self.headers[header] = os.environ[env]
        self.pool_size = 8
        self._client: ClientPool | None = None

    def bind_concurrency(self, concurrency: int) -> None:
        """Size the connection pool to the concurrency the engine will allow."""
        self.pool_size = concurrency

    async def score(self, ctx: ScoreContext) -> ScoreResult:
        if self._client is None:
            self._client = ClientPool(self.pool_size, self.timeout_s)
        payload: dict[str, Any] = {
            "trace_id": ctx.trace_id,
            "span_id": ctx.span["span_id"],
            "input": ctx.input,
            "output": ctx.output,
            "expected_output": ctx.expected_output,
        }
        if self.include_spans:
            payload["spans"] = ctx.spans
        answer = await post_json(self._client, self.url, payload, headers=self.headers, what=f"scorer at {self.url}")
        if not isinstance(answer, dict):
            raise ScoringError(f"scorer at {self.url} answered {type(answer).__name__}; expected an object with value")
        return coerce_result(answer)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None


def spanlake_scorers() -> list[ScorerType]:
    return [
        ScorerType(
            "http",
            "POSTs the trace as JSON to `url` and stores the {value, label, explanation} it answers",
            HttpScorer,
            PARAMETERS,
            default_concurrency=8,
            secret_params=("headers",),
        )
    ]
