"""Capture by API: which spans (span ids, trace ids, or a filter) and what their items hold.

Selection runs on a read cursor (`select_spans`), the insert in one write transaction
(`service.capture_keys`), so a filter that scans many spans never holds up ingest commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

import duckdb
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid
from spanlake.filters import FilterError
from spanlake.store import dataset_capture
from spanlake.store.dataset_capture import CaptureOptions, SpanField, SpanKey
from spanlake.store.filter_sql import CompiledFilter, compile_filter

MAX_IDS = 10_000
DEFAULT_FILTER_LIMIT = 1000
MAX_FILTER_LIMIT = 100_000

# Field names as users write them (the filter language's names) -> spans column.
_COLUMN_NAMES = {
    **{c: c for c in dataset_capture.TEXT_COLUMNS | dataset_capture.NUMBER_COLUMNS},
    "service": "service_name",
    "scope": "scope_name",
}
_JSON_PREFIXES = {"attributes": "attributes", "resource": "resource_attributes"}
_HEX16 = Annotated[str, Field(pattern="^[0-9a-fA-F]{16}$")]
_HEX32 = Annotated[str, Field(pattern="^[0-9a-fA-F]{32}$")]


class CaptureBody(BaseModel):
    """`POST .../capture`: exactly one of span_ids, trace_ids (root span of each, or spans matching
    span_filter), filter."""

    model_config = ConfigDict(extra="forbid")

    span_ids: list[_HEX16] | None = Field(None, min_length=1, max_length=MAX_IDS)
    trace_ids: list[_HEX32] | None = Field(None, min_length=1, max_length=MAX_IDS)
    span_filter: dict[str, Any] | None = Field(None, description="filter tree choosing spans of the traces")
    filter: dict[str, Any] | None = Field(None, description="filter tree over stored spans")
    limit: StrictInt | None = Field(None, ge=1, le=MAX_FILTER_LIMIT,
                                    description=f"with filter: newest N spans (default {DEFAULT_FILTER_LIMIT})")
    input: str = Field("input", description="span field for input, e.g. attributes.llm.prompt")
    expected_output: str | None = Field("output", description="span field; null for none")
    topic: validate.Topic = None
    tags: validate.Tags = None
    metadata: validate.Metadata = None


def parse_span_field(value: Any, path: str) -> SpanField:
    """`input`, `output`, another span field (`model`, `name`, ...), `attributes.<key>` or `resource.<key>`."""
    if not isinstance(value, str) or not value:
        raise Invalid(f"{path} must name a span field such as 'input', 'output' or 'attributes.<key>', got {value!r}")
    if value in _COLUMN_NAMES:
        return SpanField(_COLUMN_NAMES[value])
    prefix, dot, key = value.partition(".")
    if prefix in _JSON_PREFIXES:
        if dot and not key:
            raise Invalid(f"{path}: {value!r} needs a key after the dot, e.g. '{prefix}.llm.prompt'")
        validate.text(key or "x", path, max_len=1000)
        return SpanField(_JSON_PREFIXES[prefix], key or None)
    known = ", ".join(sorted(_COLUMN_NAMES))
    raise Invalid(f"{path}: unknown span field {value!r}; use attributes.<key>, resource.<key> or one of {known}")


@dataclass(frozen=True)
class CaptureRequest:
    """Exactly one of span_ids, trace_ids (with an optional span_filter) or filter is set."""

    span_ids: tuple[str, ...] = ()
    trace_ids: tuple[str, ...] = ()
    span_filter: CompiledFilter | None = None
    filter: CompiledFilter | None = None
    limit: int = DEFAULT_FILTER_LIMIT
    options: CaptureOptions = field(default_factory=CaptureOptions)


def _compile(value: Any, path: str) -> CompiledFilter:
    try:
        return compile_filter(value, alias="s")
    except FilterError as exc:
        raise Invalid(f"{path}: {exc}", path=exc.path) from None


def _ids(values: list[str], key: str, length: int) -> tuple[str, ...]:
    return tuple(dict.fromkeys(validate.hex_id(v, f"{key}[{n}]", length) for n, v in enumerate(values)))


def parse_request(body: CaptureBody) -> CaptureRequest:
    modes = [k for k in ("span_ids", "trace_ids", "filter") if getattr(body, k) is not None]
    if len(modes) != 1:
        raise Invalid("give exactly one of span_ids, trace_ids or filter")
    expected = body.expected_output
    options = CaptureOptions(
        input_field=parse_span_field(body.input, "input"),
        expected_output_field=None if expected is None else parse_span_field(expected, "expected_output"),
        topic=body.topic,
        tags=tuple(body.tags or ()),
        metadata=validate.json_text(body.metadata or {}, "metadata"),
    )
    if body.span_filter is not None and modes[0] != "trace_ids":
        raise Invalid("span_filter goes with trace_ids; with filter, put every condition in filter")
    if body.limit is not None and modes[0] != "filter":
        raise Invalid("limit goes with filter")
    if body.span_ids is not None:
        return CaptureRequest(span_ids=_ids(body.span_ids, "span_ids", 16), options=options)
    if body.trace_ids is not None:
        return CaptureRequest(
            trace_ids=_ids(body.trace_ids, "trace_ids", 32),
            span_filter=None if body.span_filter is None else _compile(body.span_filter, "span_filter"),
            options=options,
        )
    assert body.filter is not None
    return CaptureRequest(filter=_compile(body.filter, "filter"), limit=body.limit or DEFAULT_FILTER_LIMIT, options=options)


@dataclass(frozen=True)
class Selection:
    keys: list[SpanKey]
    unknown_span_ids: list[str]
    unknown_trace_ids: list[str]


def select_spans(cur: duckdb.DuckDBPyConnection, req: CaptureRequest) -> Selection:
    """Find the spans to capture (read cursor); ids the store does not hold are reported."""
    if req.span_ids:
        keys = dataset_capture.find_spans_by_ids(cur, req.span_ids)
        found = {k[1] for k in keys}
        return Selection(keys, [s for s in req.span_ids if s not in found], [])
    if req.trace_ids:
        keys, known = dataset_capture.find_trace_spans(cur, req.trace_ids, req.span_filter)
        return Selection(keys, [], [t for t in req.trace_ids if t not in known])
    if req.filter is None:
        raise ValueError("a CaptureRequest needs span_ids, trace_ids or a filter")
    return Selection(dataset_capture.find_spans_by_filter(cur, req.filter, req.limit), [], [])
