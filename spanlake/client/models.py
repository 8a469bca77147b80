"""Typed results: small dataclasses with the fields the API returns.

Every model keeps the whole JSON object it came from in `raw`, so fields the server adds later
are reachable before the client names them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar

M = TypeVar("M", bound="Model")


@dataclass
class Model:
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls: type[M], data: dict[str, Any]) -> M:
        names = {f.name for f in dataclasses.fields(cls)} - {"raw"}
        return cls(raw=data, **{n: data.get(n) for n in names if n in data})


@dataclass
class Span(Model):
    trace_id: str = ""
    span_id: str = ""
    parent_span_id: str | None = None
    name: str = ""
    kind: str | None = None
    status: str | None = None
    service: str | None = None
    start_time: str | None = None
    end_time: str | None = None
    duration_ms: float | None = None
    span_type: str | None = None
    model: str | None = None
    input: Any = None
    output: Any = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    attributes: dict[str, Any] | None = None


@dataclass
class Trace(Model):
    trace_id: str = ""
    spans: list[Span] = field(default_factory=list)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "Trace":
        return cls(raw=data, trace_id=data["trace_id"], spans=[Span.from_json(s) for s in data.get("spans", [])])

    @property
    def root(self) -> Span | None:
        return next((s for s in self.spans if not s.parent_span_id), self.spans[0] if self.spans else None)


@dataclass
class TraceSummary(Model):
    """A row of the trace list: the trace's root span and totals."""

    trace_id: str = ""
    name: str | None = None
    service: str | None = None
    start_time: str | None = None
    duration_ms: float | None = None
    span_count: int | None = None
    error_count: int | None = None
    total_tokens: int | None = None
    scores: dict[str, Any] | None = None


@dataclass
class Dataset(Model):
    id: str = ""
    name: str = ""
    description: str | None = None
    metadata: dict[str, Any] | None = None
    item_count: int | None = None
    created_at: str | None = None
    updated_at: str | None = None


@dataclass
class Item(Model):
    id: str = ""
    dataset_id: str = ""
    input: Any = None
    expected_output: Any = None
    metadata: dict[str, Any] | None = None
    topic: str | None = None
    tags: list[str] | None = None
    source_trace_id: str | None = None
    source_span_id: str | None = None
    created_at: str | None = None
    updated_at: str | None = None
    valid_to: str | None = None


@dataclass
class Capture(Model):
    captured: int = 0
    duplicates: int = 0
    matched: int | None = None
    unknown_span_ids: list[str] | None = None
    unknown_trace_ids: list[str] | None = None


@dataclass
class Score(Model):
    id: str = ""
    trace_id: str | None = None
    span_id: str | None = None
    name: str = ""
    value: float | None = None
    label: str | None = None
    data_type: str | None = None
    source: str | None = None
    scorer: str | None = None
    explanation: str | None = None
    metadata: dict[str, Any] | None = None
    batch_id: str | None = None
    run_id: str | None = None
    created_at: str | None = None


@dataclass
class BatchStatus(Model):
    batch_id: str = ""
    status: str = ""
    scorer: str | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    pending: int = 0
    errors: list[dict[str, Any]] | None = None

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed")


@dataclass
class Run(Model):
    """A dataset run; `summary` (from `runs.get`) has per-scorer mean / pass_rate, latency and tokens."""

    id: str = ""
    dataset_id: str = ""
    name: str = ""
    mode: str = ""
    status: str = ""
    as_of: str | None = None
    scorers: list[str] = field(default_factory=list)
    thresholds: dict[str, float] | None = None
    metadata: dict[str, Any] | None = None
    total: int = 0
    completed: int = 0
    failed: int = 0
    pending: int = 0
    scored: int = 0
    errors: list[dict[str, Any]] | None = None
    created_at: str | None = None
    finished_at: str | None = None
    summary: dict[str, Any] | None = None
    # run_experiment: failures of the client's own scorers ("scorer: item: reason"), not sent to the server
    local_errors: list[str] = field(default_factory=list)

    @property
    def finished(self) -> bool:
        return self.status in ("completed", "failed", "cancelled")

    @property
    def means(self) -> dict[str, float | None]:
        """Mean score per scorer (server and client scorers alike)."""
        return {name: s.get("mean") for name, s in ((self.summary or {}).get("scorers") or {}).items()}


@dataclass
class RunResult(Model):
    id: str = ""
    item_id: str = ""
    seq: int = 0
    status: str = ""
    input: Any = None
    expected_output: Any = None
    output: Any = None
    error: str | None = None
    trace_id: str | None = None
    span_id: str | None = None
    latency_ms: float | None = None
    tokens: dict[str, int | None] | None = None
    scores: list[dict[str, Any]] = field(default_factory=list)

    @property
    def score_values(self) -> dict[str, Any]:
        return {s["name"]: s["value"] if s["value"] is not None else s["label"] for s in self.scores}


@dataclass
class Comparison(Model):
    """Two runs side by side: `items` (regressions first), `summary` with `delta` (b minus a)."""

    a: Run | None = None
    b: Run | None = None
    summary: dict[str, Any] = field(default_factory=dict)
    items: list[dict[str, Any]] = field(default_factory=list)

    @property
    def regressions(self) -> list[dict[str, Any]]:
        return [i for i in self.items if i.get("regression")]
