"""The decoder's output side, shared by the protobuf and JSON walkers.

Both walkers reduce a span to the same plain values and hand them to SpanRows.add(), which
applies the LLM convention mapping, serialises the JSON columns and keeps one tuple per span.
The Arrow table is built once at the end, column by column, so per-span Python work stays at
a single tuple (no row objects, no per-column appends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa

from spanlake.ingest.semconv import map_llm_fields
from spanlake.store.schema import SPAN_SCHEMA

# Why at most this many reasons: the message goes back to the client in a partial-success
# response and into logs; a request of 10,000 bad spans must not make a 1 MB error string.
MAX_REASONS = 5

INT64_MAX = 2**63 - 1  # pa.timestamp("ns") is int64: later instants cannot be stored

KIND_NAMES = ("UNSPECIFIED", "INTERNAL", "SERVER", "CLIENT", "PRODUCER", "CONSUMER")
STATUS_NAMES = ("UNSET", "OK", "ERROR")

_EMPTY_OBJECT = b"{}"
_EMPTY_ARRAY = b"[]"


class DecodeError(ValueError):
    """Malformed request: the whole request is refused (gRPC INVALID_ARGUMENT / HTTP 400).

    The message is for the client, so it names what is wrong and where.
    """


@dataclass(frozen=True)
class Decoded:
    """One export request as a SPAN_SCHEMA table, plus the spans refused one by one.

    `rejected`/`error_message` feed OTLP partial success
    (https://opentelemetry.io/docs/specs/otlp/#partial-success).
    """

    spans: pa.Table
    rejected: int
    error_message: str


@dataclass(frozen=True)
class ScopeContext:
    """Values shared by every span of one (resource, scope) pair, computed once per scope."""

    service_name: str | None
    scope_name: str | None
    scope_version: str | None
    resource_attributes: bytes  # JSON text (UTF-8)
    scope_attributes: bytes
    dropped: dict[str, int]  # non-zero resource/scope dropped-attribute counts


def as_text(value: Any) -> str | None:
    """An attribute value as text: strings as sent, anything else as its JSON text."""
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def dumps(value: Any) -> bytes:
    """JSON text of decoded attribute values (UTF-8 bytes; Arrow takes them as strings)."""
    return orjson.dumps(value)


# Columns whose value is the same for every span of a (resource, scope) pair: kept once per
# scope and expanded with pa.repeat, instead of being carried in every row tuple.
_SCOPE_COLUMNS = (
    "service_name",
    "scope_name",
    "scope_version",
    "resource_attributes",
    "scope_attributes",
)
_ROW_COLUMNS = tuple(name for name in SPAN_SCHEMA.names if name not in _SCOPE_COLUMNS)


class SpanRows:
    """Accumulates accepted spans as tuples (SPAN_SCHEMA order minus the per-scope columns)."""

    __slots__ = ("rows", "rejected", "reasons", "scopes", "_ctx")

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.rejected = 0
        self.reasons: list[str] = []
        self.scopes: list[tuple[ScopeContext, int]] = []  # (context, index of its first row)
        self._ctx: ScopeContext | None = None

    def start_scope(
        self,
        resource_attrs: dict[str, Any],
        resource_json: bytes,
        resource_dropped: int,
        scope_name: str,
        scope_version: str,
        scope_attrs: dict[str, Any],
        scope_dropped: int,
    ) -> None:
        """Begin the spans of one ScopeSpans; service_name is the `service.name` resource key."""
        dropped = {}
        if resource_dropped:
            dropped["resource_attributes"] = resource_dropped
        if scope_dropped:
            dropped["scope_attributes"] = scope_dropped
        self._ctx = ScopeContext(
            service_name=as_text(resource_attrs.get("service.name")),
            scope_name=scope_name or None,
            scope_version=scope_version or None,
            resource_attributes=resource_json,
            scope_attributes=dumps(scope_attrs) if scope_attrs else _EMPTY_OBJECT,
            dropped=dropped,
        )
        self.scopes.append((self._ctx, len(self.rows)))

    def reject(self, index: int, reason: str) -> None:
        """Refuse one span of the current scope (OTLP partial success); the request goes on."""
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            name = self._ctx.scope_name if self._ctx else None
            self.reasons.append(f"span {index} of scope {name or ''!r}: {reason}")

    def add(
        self,
        trace_id: str,
        span_id: str,
        parent_span_id: str | None,
        trace_state: str,
        name: str,
        kind: str,
        status: str,
        status_message: str,
        start: int,
        end: int,
        flags: int,
        attrs: dict[str, Any],
        events: list | None,
        links: list | None,
        dropped_attributes: int,
        dropped_events: int,
        dropped_links: int,
    ) -> None:
        """Append one accepted span of the current scope; ids are validated lowercase hex."""
        dropped = self._ctx.dropped  # type: ignore[union-attr]  # start_scope() came first
        if dropped_attributes or dropped_events or dropped_links:
            dropped = dict(dropped)
            if dropped_attributes:
                dropped["attributes"] = dropped_attributes
            if dropped_events:
                dropped["events"] = dropped_events
            if dropped_links:
                dropped["links"] = dropped_links
        self.rows.append(
            (
                trace_id,
                span_id,
                parent_span_id,
                trace_state or None,
                name,
                kind,
                status,
                status_message or None,
                start,
                end,
                (end - start) / 1e6,
                *map_llm_fields(attrs),
                orjson.dumps(attrs) if attrs else _EMPTY_OBJECT,
                orjson.dumps(events) if events else _EMPTY_ARRAY,
                orjson.dumps(links) if links else _EMPTY_ARRAY,
                flags,
                orjson.dumps(dropped) if dropped else None,
            )
        )

    def result(self) -> Decoded:
        """Build the Arrow table once, column by column, and the partial-success message."""
        if self.rows:
            columns = dict(zip(_ROW_COLUMNS, zip(*self.rows)))
            arrays = [
                self._scope_column(field)
                if field.name in _SCOPE_COLUMNS
                else pa.array(columns[field.name], type=field.type)
                for field in SPAN_SCHEMA
            ]
            table = pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)
        else:
            table = SPAN_SCHEMA.empty_table()
        message = ""
        if self.rejected:
            noun = "span" if self.rejected == 1 else "spans"
            more = "; ..." if self.rejected > len(self.reasons) else ""
            message = f"{self.rejected} {noun} rejected: " + "; ".join(self.reasons) + more
        return Decoded(spans=table, rejected=self.rejected, error_message=message)

    def _scope_column(self, field: pa.Field) -> pa.Array:
        """One per-scope column, each scope's value repeated over that scope's rows."""
        ends = [first for _, first in self.scopes[1:]] + [len(self.rows)]
        parts = [
            pa.repeat(pa.scalar(getattr(ctx, field.name), type=field.type), end - first)
            for (ctx, first), end in zip(self.scopes, ends)
            if end > first
        ]
        return parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
