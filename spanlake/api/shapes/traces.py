"""Traces and spans: the search parameters and what the read routes return."""

from __future__ import annotations

from typing import Any

from pydantic import Field

from spanlake.api.shapes.common import Instant, Paging, Returned


class SearchQuery(Paging):
    filter: str | None = Field(None, description="Filter tree as JSON text (see the filter language)")
    service: str | None = Field(None, description="Service name")
    name: str | None = Field(None, description="Span name (root span name for traces)")
    since: str | None = Field(None, description="ISO-8601 time or epoch seconds")
    until: str | None = Field(None, description="ISO-8601 time or epoch seconds")


class Span(Returned):
    trace_id: str
    span_id: str
    parent_span_id: str | None
    name: str | None
    kind: str | None = None
    status: str | None
    status_message: str | None = None
    start_time: Instant | None
    end_time: Instant | None
    duration_ms: float | None
    service: str | None
    span_type: str | None = None
    model: str | None = None
    input: str | None = None
    output: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    session_id: str | None = None
    user_id: str | None = None
    attributes: dict[str, Any] | None
    resource_attributes: dict[str, Any] | None = None
    events: list[Any] | None = None
    links: list[Any] | None = None


class Trace(Returned):
    trace_id: str
    spans: list[Span] = Field(description="parents before children")


class TraceSummary(Returned):
    trace_id: str
    root_span_id: str | None = None
    name: str | None = None
    service: str | None = None
    start_time: str | None
    end_time: str | None = None
    duration_ms: float | None
    span_count: int
    error_count: int
    total_tokens: int
    scores: dict[str, float | str | None]
