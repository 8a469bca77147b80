"""Shapes every domain uses: the error body, list pages, ids, paging parameters, path parameters."""

from __future__ import annotations

from typing import Annotated, Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

from spanlake.api.pagination import DEFAULT_LIMIT, MAX_LIMIT

T = TypeVar("T")

TraceId = Annotated[str, Field(pattern="^[0-9a-fA-F]{32}$", description="32 hex characters")]
SpanId = Annotated[str, Field(pattern="^[0-9a-fA-F]{16}$", description="16 hex characters")]
Instant = Annotated[str, Field(json_schema_extra={"format": "date-time"})]
JsonObject = dict[str, Any]

# Path parameters by name: what the document says of each (handlers check their values).
PATH_PARAMETERS: dict[str, tuple[str, Any]] = {
    "trace_id": ("32 lowercase hex characters", Annotated[str, Field(pattern="^[0-9a-f]{32}$")]),
    "span_id": ("16 lowercase hex characters", Annotated[str, Field(pattern="^[0-9a-f]{16}$")]),
    "dataset": ("Dataset id or name", str),
    "item_id": ("Item id (stable across versions)", str),
    "run_id": ("Run id or name", str),
    "batch_id": ("Batch id", str),
    "name": ("Name (of the scorer or rule)", str),
}


class Returned(BaseModel):
    """Replies describe what handlers return; more fields may appear than are listed."""

    model_config = ConfigDict(extra="allow")


class Body(BaseModel):
    """Request bodies: unknown fields are refused by name."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query parameters; unknown ones are refused on /api by api/query_guard.py, from the document."""

    model_config = ConfigDict(extra="ignore")


class ErrorDetail(Returned):
    code: str
    message: str


class ErrorBody(Returned):
    error: ErrorDetail


class Listing(Returned, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Paging(Query):
    limit: int = Field(DEFAULT_LIMIT, ge=1, le=MAX_LIMIT, description=f"Page size, 1-{MAX_LIMIT} (default {DEFAULT_LIMIT})")
    cursor: str | None = Field(None, description="Opaque next_cursor of the previous page")
