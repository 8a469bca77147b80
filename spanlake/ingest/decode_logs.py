"""OTLP ExportLogsServiceRequest (protobuf or OTLP/JSON) -> one GENAI_EVENT_SCHEMA Arrow table.

OpenTelemetry's GenAI instrumentations (e.g. opentelemetry-instrumentation-openai-v2) send the
messages of an LLM call as events: log records linked to the call's span by trace and span id,
named `gen_ai.*` (https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-events/). Those are
the only log records spanlake keeps. Any other record, or one without usable ids, is refused
through OTLP partial success with the reason, never dropped silently; a malformed request
raises DecodeError like a malformed trace export.

Pure functions, no I/O. Attribute and body values become JSON the way span attributes do
(decode.py / otlp_json.py walkers), so a merged event reads like a span event.
Spec: opentelemetry-proto logs/v1/logs.proto (`event_name` is field 12; older SDKs put the
name in the `event.name` attribute).
"""

from __future__ import annotations

import time
from typing import Any

import orjson
import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest

from spanlake.ingest import decode as pb
from spanlake.ingest import otlp_json as js
from spanlake.ingest.batch_bytes import GENAI_EVENTS, with_kind
from spanlake.ingest.otlp_json_fields import Bad, array, camelize, either, obj, show, text, uint
from spanlake.ingest.spanrows import INT64_MAX, MAX_REASONS, Decoded, as_text
from spanlake.store.schema import GENAI_EVENT_SCHEMA

__all__ = ["decode_logs_protobuf", "decode_logs_json", "is_genai_event"]

EVENT_NAME_ATTRIBUTE = "event.name"
GENAI_PREFIX = "gen_ai."


def is_genai_event(name: str | None) -> bool:
    return bool(name) and name.startswith(GENAI_PREFIX)  # type: ignore[union-attr]


class EventRows:
    """Accepted events as tuples, and the refused records counted by reason."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []
        self.rejected = 0
        self.reasons: dict[str, int] = {}  # reason -> count; at most MAX_REASONS distinct
        self.service: str | None = None

    def start_resource(self, resource_attrs: dict[str, Any]) -> None:
        self.service = as_text(resource_attrs.get("service.name"))

    def reject(self, reason: str) -> None:
        self.rejected += 1
        if reason in self.reasons or len(self.reasons) < MAX_REASONS:
            self.reasons[reason] = self.reasons.get(reason, 0) + 1

    def add(self, trace_id: str, span_id: str, at: int, name: str, attrs: dict[str, Any], body: Any) -> None:
        self.rows.append(
            (trace_id, span_id, at, name, self.service, orjson.dumps(attrs).decode(), None if body is None else orjson.dumps(body).decode())
        )

    def result(self) -> Decoded:
        columns = list(zip(*self.rows)) if self.rows else [()] * len(GENAI_EVENT_SCHEMA)
        table = pa.Table.from_arrays(
            [pa.array(col, type=field.type) for col, field in zip(columns, GENAI_EVENT_SCHEMA)], schema=GENAI_EVENT_SCHEMA
        )
        message = ""
        if self.rejected:
            noun = "log record" if self.rejected == 1 else "log records"
            listed = sum(self.reasons.values())
            more = "; ..." if self.rejected > listed else ""
            message = f"{self.rejected} {noun} refused: " + "; ".join(f"{n} {why}" for why, n in self.reasons.items()) + more
        return Decoded(spans=with_kind(table, GENAI_EVENTS), rejected=self.rejected, error_message=message)


def _event_time(at: int, observed: int) -> int:
    """The event's time; a record with neither timestamp gets the time it was received."""
    return at or observed or time.time_ns()


def decode_logs_protobuf(body: bytes) -> Decoded:
    """Decode a binary ExportLogsServiceRequest (gRPC, or HTTP application/x-protobuf)."""
    return pb.guarded(_walk_message, pb.parse_request(ExportLogsServiceRequest(), body))


def _walk_message(request: ExportLogsServiceRequest) -> Decoded:
    out = EventRows()
    for rl in request.resource_logs:
        out.start_resource(pb.key_values(rl.resource.attributes))
        for sl in rl.scope_logs:
            for record in sl.log_records:
                attrs = pb.key_values(record.attributes)
                name = record.event_name or as_text(attrs.get(EVENT_NAME_ATTRIBUTE)) or ""
                problem = _problem(name, _pb_id(record.trace_id, 16, "trace"), _pb_id(record.span_id, 8, "span"))
                at = _event_time(record.time_unix_nano, record.observed_time_unix_nano)
                if problem is None and at > INT64_MAX:
                    problem = "with a time beyond year 2262"
                if problem is not None:
                    out.reject(problem)
                    continue
                body = pb.any_value(record.body) if record.HasField("body") else None
                out.add(record.trace_id.hex(), record.span_id.hex(), at, name, attrs, body)
    return out.result()


def _pb_id(raw: bytes, size: int, what: str) -> str | None:
    """Why a binary id is unusable, or None."""
    if not raw:
        return f"without a {what} id"
    if len(raw) != size:
        return f"with a {what} id of {len(raw)} bytes (must be {size})"
    if raw == bytes(size):
        return f"with an all-zero {what} id"
    return None


def _problem(name: str, trace_problem: str | None, span_problem: str | None) -> str | None:
    if not is_genai_event(name):
        return f"not a GenAI event (event name {name!r})"
    return trace_problem or span_problem


def decode_logs_json(body: bytes) -> Decoded:
    """Decode an OTLP/JSON ExportLogsServiceRequest: hex ids, integers as numbers or strings."""
    return pb.guarded(_walk_json, body)


def _walk_json(body: bytes) -> Decoded:
    return js.walk_document(body, "resourceLogs", "resource_logs", EventRows(), _resource_logs)


def _resource_logs(out: EventRows, rl: dict) -> None:
    resource = obj(rl.get("resource"), ".resource")
    out.start_resource(js.key_values(resource.get("attributes"), 0, ".resource"))
    for si, sl in enumerate(array(either(rl, "scopeLogs", "scope_logs"), ".scopeLogs")):
        try:
            records = array(either(obj(sl, ""), "logRecords", "log_records"), ".logRecords")
            for li, record in enumerate(records):
                try:
                    _record(out, obj(record, ""))
                except Bad as exc:
                    raise Bad(f".logRecords[{li}]{exc.path}", exc.problem) from None
        except Bad as exc:
            raise Bad(f".scopeLogs[{si}]{exc.path}", exc.problem) from None


def _record(out: EventRows, record: dict) -> None:
    record = camelize(record)
    attrs = js.key_values(record.get("attributes"), 0)
    name = text(either(record, "eventName", "event_name"), ".eventName") or as_text(attrs.get(EVENT_NAME_ATTRIBUTE)) or ""
    trace_id = record.get("traceId") or None
    span_id = record.get("spanId") or None
    at = _event_time(
        uint(record.get("timeUnixNano"), ".timeUnixNano"),
        uint(either(record, "observedTimeUnixNano", "observed_time_unix_nano"), ".observedTimeUnixNano"),
    )
    problem = _problem(name, _json_id(trace_id, 16, "trace", ".traceId"), _json_id(span_id, 8, "span", ".spanId"))
    if problem is None and at > INT64_MAX:
        problem = "with a time beyond year 2262"
    if problem is not None:
        out.reject(problem)
        return
    try:
        body = js.any_value(record.get("body"), 0)
    except Bad as exc:
        raise Bad(".body" + exc.path, exc.problem) from None
    out.add(trace_id.lower(), span_id.lower(), at, name, attrs, body)  # type: ignore[union-attr]


def _json_id(value: Any, size: int, what: str, path: str) -> str | None:
    if value is None:
        return f"without a {what} id"
    if type(value) is not str:
        raise Bad(path, f"expected a hex string, got {show(value)}")
    if not js.is_hex_id(value, size):
        return f"with an invalid {what} id {value[:40]!r} (must be {2 * size} hex characters, not all zeros)"
    return None
