"""Dataset runs: parameters and replies (the bodies are spanlake/runs/validate.py's models)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from spanlake.api.shapes.common import Instant, Paging, Returned


class RunListQuery(Paging):
    summary: bool = Field(False, description="true: each run with its summary (per-scorer mean and pass rate, latency, tokens)")


class ResultsQuery(Paging):
    status: Literal["pending", "ok", "error"] | None = Field(None, description="pending, ok or error")


class CompareQuery(Paging):
    runs: str = Field(description="Two run ids or names, comma-separated: a,b")


class Tokens(Returned):
    input: int | None = None
    output: int | None = None
    total: int | None = None


class ScorerStats(Returned):
    count: int | None = None
    mean: float | None = None
    min: float | None = None
    max: float | None = None
    pass_rate: float | None = Field(None, description="share of scores at or above the threshold (boolean: true)")
    threshold: float | None = None


class Latency(Returned):
    p50: float | None = None
    p95: float | None = None
    mean: float | None = None


class RunSummary(Returned):
    total: int
    completed: int
    errors: int
    pending: int | None = None
    latency_ms: Latency
    tokens: Tokens | None
    scorers: dict[str, ScorerStats]


class Run(Returned):
    id: str
    dataset_id: str
    name: str
    mode: Literal["server", "client"]
    status: Literal["pending", "running", "completed", "failed", "cancelled"]
    as_of: Instant = Field(description="the dataset version the run reads")
    target: dict[str, Any] | None = Field(description="headers are shown as ***")
    scorers: list[str]
    thresholds: dict[str, Any] | None = None
    concurrency: int | None = None
    metadata: dict[str, Any] | None = None
    total: int
    completed: int = Field(description="successful results")
    failed: int = Field(description="error results")
    pending: int
    scored: int | None = None
    scoring_failed: int | None = None
    errors: list[dict[str, Any]] | None = None
    created_at: Instant
    updated_at: Instant | None = None
    finished_at: Instant | None
    created_by: str | None = Field(None, description="name of the API key that wrote it (never the key)")
    summary: RunSummary | None = None


class RunScore(Returned):
    id: str
    name: str
    value: float | None
    label: str | None
    data_type: str
    scorer: str | None
    explanation: str | None = None
    metadata: dict[str, Any] | None = None
    trace_id: str | None = Field(description="null when the result's trace is not in the store")
    span_id: str | None
    created_at: Instant | None = None


class RunResult(Returned):
    id: str
    run_id: str | None = None
    item_id: str
    seq: int
    status: Literal["pending", "ok", "error"]
    input: Any
    expected_output: Any
    output: Any
    error: str | None
    trace_id: str | None
    span_id: str | None
    latency_ms: float | None
    tokens: Tokens | None
    scores: list[RunScore]


class ResultsStored(Returned):
    accepted: int
    run: Run


class ComparedSide(Returned):
    id: str | None = None
    status: str | None = None
    output: Any = None
    error: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    latency_ms: float | None = None
    tokens: Tokens | None = None
    scores: dict[str, float | str | None] | None = None


class ComparedItem(Returned):
    item_id: str
    input: Any = None
    expected_output: Any = None
    regression: bool
    improvement: bool | None = None
    score_deltas: dict[str, float]
    a: ComparedSide | None
    b: ComparedSide | None


class RunComparison(Returned):
    a: Run
    b: Run
    summary: dict[str, Any] = Field(description="each run's summary, delta (b minus a), and item counts")
    items: list[ComparedItem]
    next_cursor: str | None
