"""Scorers, scores and scoring batches: parameters, bodies and replies."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictFloat, model_validator

from spanlake.api.shapes.common import Body, Instant, Listing, Paging, Query, Returned, SpanId, TraceId
from spanlake.datasets import validate
from spanlake.scoring.base import ScoreResult, ScoringError
from spanlake.validation import check, refuse

SOURCES = ("eval", "api", "annotation", "rule")
DATA_TYPES = ("numeric", "boolean", "categorical")
_Number = Annotated[float | None, Field(allow_inf_nan=False)]
ItemId = Annotated[str | None, Field(max_length=100), validate.checked_text(100)]


# Queries ---------------------------------------------------------------------------------------


class ScoreFields(Query):
    """Filters every score listing takes (a scorer's results name the scorer in the path)."""

    name: str | None = Field(None, description="Score name")
    source: Literal[SOURCES] | None = Field(None, description="eval, api, annotation or rule")  # type: ignore[valid-type]
    batch_id: str | None = Field(None, description="Batch that produced it")
    min_value: _Number = Field(None, description="Scores with value >= this")
    max_value: _Number = Field(None, description="Scores with value <= this")


class ScoreFilters(ScoreFields):
    scorer: str | None = Field(None, description="Scorer that produced it")


class ScoreListQuery(Paging, ScoreFilters):
    trace_id: TraceId | None = None
    span_id: SpanId | None = None
    item_id: ItemId = Field(None, description="Scores of this dataset item")


class TargetScoresQuery(Paging, ScoreFilters):
    """The scores of one trace or span (named by the path)."""


class _Threshold(Query):
    pass_threshold: _Number = Field(None, description="value counted as a pass (default: true for boolean scores)")


class ScorerResultsQuery(Paging, ScoreFields, _Threshold):
    """A scorer's results (the scorer is named by the path)."""


class SummaryQuery(ScoreFilters, _Threshold):
    bins: int = Field(10, ge=1, le=50, description="histogram bins, 1-50 (default 10)")
    worst: int = Field(5, ge=0, le=50, description="lowest-valued scores listed per name, 0-50 (default 5)")


class BatchListQuery(Paging):
    status: Literal["pending", "running", "completed", "failed"] | None = Field(None, description="pending, running, completed or failed")
    scorer: str | None = Field(None, description="Batches of this scorer")


# Bodies ----------------------------------------------------------------------------------------


class ScoreInput(Body):
    """A manual or external score; trace_id, item_id or both are required."""

    trace_id: TraceId | None = None
    item_id: ItemId = Field(
        None, description="a dataset item (current version) this score evaluates; with no trace_id, the score has none")
    span_id: SpanId | None = Field(None, description="the scored span; default: the trace's root span")
    # The lenient JSON parser lets a string hold a lone surrogate, which the store cannot: the
    # text checks refuse it, and the metadata check refuses what the store could not hold.
    name: Annotated[str, Field(min_length=1, max_length=200), validate.checked_text(200, control_ok=True)]
    value: StrictBool | StrictFloat | None = None
    label: Annotated[str | None, Field(max_length=1000), validate.checked_text(1000, control_ok=True)] = None
    data_type: Literal[DATA_TYPES] | None = None  # type: ignore[valid-type]
    source: Literal["api", "annotation"] = "api"
    scorer: Annotated[str | None, Field(max_length=200), validate.checked_text(200, control_ok=True)] = None
    explanation: Annotated[str | None, Field(max_length=10_000), validate.checked_text(10_000, control_ok=True)] = None
    metadata: Annotated[dict[str, Any] | None, check(lambda v, p: v if v is None else validate.metadata(v, p))] = None

    @model_validator(mode="after")
    def _consistent(self) -> "ScoreInput":
        if self.item_id is not None and self.trace_id is None and self.span_id is not None:
            raise refuse("span_id needs its trace_id")
        if self.item_id is None and self.trace_id is None:
            raise refuse("trace_id is required (or item_id, for a dataset item's score)")
        try:
            self.normalized()
        except (OverflowError, ScoringError) as exc:
            raise refuse(f"value: {exc}") from None
        return self

    def normalized(self) -> tuple[float | None, str]:
        return ScoreResult(self.value, self.label, data_type=self.data_type).normalized()


# Replies ---------------------------------------------------------------------------------------


class Score(Returned):
    id: str
    trace_id: str | None = Field(description="null for a dataset run's score whose result has no stored trace, or an item's score without one")
    item_id: str | None = Field(None, description="the dataset item this score evaluates")
    span_id: str | None
    name: str
    value: float | None
    label: str | None
    data_type: Literal[DATA_TYPES]  # type: ignore[valid-type]
    source: Literal[SOURCES]  # type: ignore[valid-type]
    scorer: str | None
    explanation: str | None
    metadata: dict[str, Any] | None = None
    batch_id: str | None = None
    run_id: str | None = None
    created_at: Instant
    created_by: str | None = Field(None, description="name of the API key that wrote it (never the key)")
    trace_url: str | None = None


class Scorer(Returned):
    name: str
    type: str
    description: str
    origin: Literal["builtin", "config", "plugin"] | None = None
    params: dict[str, Any] | None = Field(None, description="configured values (secrets masked)")
    parameters: dict[str, Any] = Field(description="JSON Schema of the params")
    concurrency: int | None = None
    ready: bool = Field(description="false: a type that needs params in the config file")
    hint: str | None = None


class HistogramBin(Returned):
    lower: float
    upper: float
    count: int


class WorstScore(Returned):
    trace_id: str | None = None
    span_id: str | None = None
    value: float | None = None
    label: str | None = None
    explanation: str | None = None
    created_at: str | None = None


class ScoreSummary(Returned):
    """One score name over trace scores (dataset run scores are summarised per run)."""

    name: str
    count: int
    mean: float | None
    min: float | None
    max: float | None
    pass_rate: float | None = Field(description="share at or above pass_threshold; without one, of boolean scores that are true")
    data_types: list[str] | None = None
    scorers: list[str] | None = None
    sources: list[str] | None = None
    last_scored_at: str | None = None
    histogram: list[HistogramBin]
    labels: dict[str, int] = Field(description="the 10 commonest")
    worst: list[WorstScore] = Field(description="lowest values first (scores read as higher is better)")


class ScoreSummaries(Listing[ScoreSummary]):
    pass_threshold: float | None


class ScorerResults(Listing[Score]):
    scorer: str
    stats: dict[str, Any]


class TraceScores(Listing[Score]):
    trace_id: str


class SpanScores(TraceScores):
    span_id: str


class ScoreBatchAccepted(Returned):
    batch_id: str
    status: Literal["accepted"]
    trace_count: int
    unknown_trace_ids: list[str]
    unknown_count: int | None = None
    url: str | None = None


class ScoreBatch(Returned):
    batch_id: str
    status: Literal["pending", "running", "completed", "failed"]
    scorer: str | None = None
    total: int
    completed: int
    failed: int
    pending: int | None = None
    errors: list[dict[str, Any]] | None = Field(None, description="the first failures")
    selection: str | None = None
    sample: float | None = None
    unknown_trace_ids: list[str] | None = None
    created_at: str | None = None
    updated_at: str | None = None
    finished_at: str | None = None
