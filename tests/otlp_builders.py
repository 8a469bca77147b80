"""Building OTLP export requests for tests: realistic LLM traces, ids we choose."""

from __future__ import annotations

import os
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status


def new_trace_id() -> str:
    return os.urandom(16).hex()


def new_span_id() -> str:
    return os.urandom(8).hex()


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, (list, tuple)):
        return AnyValue(array_value={"values": [any_value(v) for v in value]})
    return AnyValue(string_value=str(value))


def attrs(mapping: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in mapping.items()]


def span(
    trace_id: str,
    span_id: str,
    name: str,
    *,
    parent: str | None = None,
    start_ns: int | None = None,
    duration_ms: float = 10.0,
    error: bool = False,
    attributes: dict[str, Any] | None = None,
    kind: int = Span.SPAN_KIND_INTERNAL,
    events: list[tuple[str, dict[str, Any]]] = (),
) -> Span:
    start = start_ns if start_ns is not None else time.time_ns()
    return Span(
        trace_id=bytes.fromhex(trace_id),
        span_id=bytes.fromhex(span_id),
        parent_span_id=bytes.fromhex(parent) if parent else b"",
        name=name,
        kind=kind,
        start_time_unix_nano=start,
        end_time_unix_nano=start + int(duration_ms * 1e6),
        attributes=attrs(attributes or {}),
        events=[Span.Event(name=n, time_unix_nano=start + i, attributes=attrs(a)) for i, (n, a) in enumerate(events)],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET),
    )


def request(spans: list[Span], service: str = "test-svc") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": attrs({"service.name": service})},
                scope_spans=[ScopeSpans(scope={"name": "tests", "version": "1"}, spans=spans)],
            )
        ]
    )


def llm_trace(n_spans: int = 3, *, model: str = "gpt-4o", start_ns: int | None = None, error: bool = False) -> tuple[str, list[Span]]:
    """A root agent span with LLM children; returns (trace_id, spans)."""
    trace_id = new_trace_id()
    root_id = new_span_id()
    start = start_ns if start_ns is not None else time.time_ns()
    spans = [span(trace_id, root_id, "agent.run", start_ns=start, duration_ms=100, attributes={"input.value": "hello"})]
    for i in range(n_spans - 1):
        spans.append(
            span(
                trace_id,
                new_span_id(),
                "chat gpt-4o",
                parent=root_id,
                start_ns=start + (i + 1) * 1_000_000,
                duration_ms=20 + i,
                error=error and i == 0,
                attributes={
                    "gen_ai.request.model": model,
                    "gen_ai.usage.input_tokens": 10 + i,
                    "gen_ai.usage.output_tokens": 5,
                    "gen_ai.prompt.0.role": "user",
                    "gen_ai.prompt.0.content": f"question {i}",
                    "gen_ai.completion.0.role": "assistant",
                    "gen_ai.completion.0.content": f"answer {i}",
                },
            )
        )
    return trace_id, spans


def to_otlp_json(req: ExportTraceServiceRequest) -> dict[str, Any]:
    """OTLP/JSON as the spec writes it: hex ids, integer enums, 64-bit ints as strings, camelCase."""

    def value(v: AnyValue) -> dict[str, Any]:
        kind = v.WhichOneof("value")
        if kind == "string_value":
            return {"stringValue": v.string_value}
        if kind == "bool_value":
            return {"boolValue": v.bool_value}
        if kind == "int_value":
            return {"intValue": str(v.int_value)}
        if kind == "double_value":
            return {"doubleValue": v.double_value}
        raise NotImplementedError(kind)

    def kvs(items: Any) -> list[dict[str, Any]]:
        return [{"key": kv.key, "value": value(kv.value)} for kv in items]

    out = []
    for rs in req.resource_spans:
        scopes = []
        for ss in rs.scope_spans:
            spans = []
            for s in ss.spans:
                spans.append(
                    {
                        "traceId": s.trace_id.hex(),
                        "spanId": s.span_id.hex(),
                        "parentSpanId": s.parent_span_id.hex(),
                        "name": s.name,
                        "kind": s.kind,
                        "startTimeUnixNano": str(s.start_time_unix_nano),
                        "endTimeUnixNano": str(s.end_time_unix_nano),
                        "attributes": kvs(s.attributes),
                        "status": {"code": s.status.code},
                    }
                )
            scopes.append({"scope": {"name": ss.scope.name, "version": ss.scope.version}, "spans": spans})
        out.append({"resource": {"attributes": kvs(rs.resource.attributes)}, "scopeSpans": scopes})
    return {"resourceSpans": out}
