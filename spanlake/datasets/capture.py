"""Capture by API: which spans (span ids, trace ids, or a filter) and what their items hold.

Selection runs on a read cursor (`select_spans`), the insert in one write transaction
(`service.capture_keys`), so a filter that scans many spans never holds up ingest commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb

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
_REQUEST_KEYS = frozenset(
    {"span_ids", "trace_ids", "span_filter", "filter", "limit", "input", "expected_output", "topic", "tags", "metadata"}
)


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


def _ids(body: dict[str, Any], key: str, length: int) -> tuple[str, ...]:
    value = body[key]
    if not isinstance(value, list) or not value:
        raise Invalid(f"{key} must be a non-empty list of ids")
    if len(value) > MAX_IDS:
        raise Invalid(f"{key} has {len(value)} ids; the limit is {MAX_IDS} per request")
    return tuple(dict.fromkeys(validate.hex_id(v, f"{key}[{n}]", length) for n, v in enumerate(value)))


def parse_request(body: dict[str, Any]) -> CaptureRequest:
    unknown = sorted(set(body) - _REQUEST_KEYS)
    if unknown:
        raise Invalid(f"{unknown[0]} is not a capture field; expected span_ids, trace_ids or filter (and options)")
    modes = [k for k in ("span_ids", "trace_ids", "filter") if body.get(k) is not None]
    if len(modes) != 1:
        raise Invalid("give exactly one of span_ids, trace_ids or filter")
    expected = body.get("expected_output", "output")
    options = CaptureOptions(
        input_field=parse_span_field(body.get("input", "input"), "input"),
        expected_output_field=None if expected is None else parse_span_field(expected, "expected_output"),
        topic=validate.topic(body.get("topic")),
        tags=validate.tags(body.get("tags")),
        metadata=validate.json_text(validate.metadata(body.get("metadata")), "metadata"),
    )
    if body.get("span_filter") is not None and modes[0] != "trace_ids":
        raise Invalid("span_filter goes with trace_ids; with filter, put every condition in filter")
    if body.get("limit") is not None and modes[0] != "filter":
        raise Invalid("limit goes with filter")
    mode = modes[0]
    if mode == "span_ids":
        return CaptureRequest(span_ids=_ids(body, "span_ids", 16), options=options)
    if mode == "trace_ids":
        span_filter = body.get("span_filter")
        return CaptureRequest(
            trace_ids=_ids(body, "trace_ids", 32),
            span_filter=None if span_filter is None else _compile(span_filter, "span_filter"),
            options=options,
        )
    limit = body.get("limit", DEFAULT_FILTER_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_FILTER_LIMIT:
        raise Invalid(f"limit must be an integer from 1 to {MAX_FILTER_LIMIT}, got {limit!r}")
    return CaptureRequest(filter=_compile(body["filter"], "filter"), limit=limit, options=options)


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
