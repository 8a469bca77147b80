"""OTLP ExportTraceServiceRequest (protobuf or OTLP/JSON) -> one SPAN_SCHEMA Arrow table.

Pure functions, no I/O. A malformed request raises DecodeError (refused whole: gRPC
INVALID_ARGUMENT / HTTP 400); a well-formed request whose spans carry invalid ids is accepted
with those spans counted in `Decoded.rejected` (OTLP partial success). Nothing else may escape:
receivers hand these functions untrusted bytes.

Spec: https://opentelemetry.io/docs/specs/otlp/ and opentelemetry-proto trace/v1/trace.proto.
"""

from __future__ import annotations

import base64
from typing import Any, TypeVar

from google.protobuf.message import DecodeError as ProtobufDecodeError
from google.protobuf.message import Message
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from spanlake.ingest import native
from spanlake.ingest.otlp_json import decode_json_document
from spanlake.ingest.spanrows import (
    INT64_MAX,
    KIND_NAMES,
    STATUS_NAMES,
    Decoded,
    DecodeError,
    SpanRows,
    dumps,
)

__all__ = [
    "DecodeError", "Decoded", "decode_protobuf", "decode_json", "decode_message", "parse_request", "key_values", "any_value", "guarded",
]

_ZERO_TRACE_ID = bytes(16)
_ZERO_SPAN_ID = bytes(8)
_SCALAR_FIELDS = frozenset({"string_value", "bool_value", "int_value", "double_value"})


_USE_NATIVE = native.available()


def decode_protobuf(body: bytes) -> Decoded:
    """Decode a binary protobuf ExportTraceServiceRequest (gRPC, or HTTP application/x-protobuf).

    The compiled fast path (native.py) takes the requests it can; the rest come here whole.
    """
    if _USE_NATIVE:
        table = native.decode_table(body)
        if table is not None:
            return Decoded(spans=table, rejected=0, error_message="")
    return decode_protobuf_python(body)


def decode_protobuf_python(body: bytes) -> Decoded:
    """The reference decoder: upb parses, Python walks the message."""
    return decode_message(parse_request(ExportTraceServiceRequest(), body))


MessageT = TypeVar("MessageT", bound=Message)


def parse_request(request: MessageT, body: bytes) -> MessageT:
    """Parse an OTLP request's wire bytes into `request`; bad bytes raise DecodeError only."""
    try:
        request.ParseFromString(body)
    except (ProtobufDecodeError, TypeError, ValueError, RuntimeError) as exc:
        # upb raises DecodeError for bad wire data, invalid UTF-8 and too-deep nesting.
        raise DecodeError(f"malformed OTLP protobuf request: {exc}") from None
    return request


def decode_json(body: bytes) -> Decoded:
    """Decode an OTLP/JSON ExportTraceServiceRequest (HTTP application/json).

    Ids are hex and enums may be numbers or names, per the OTLP/JSON rules; this is why the body
    is not routed through google.protobuf.json_format, which would read ids as base64.
    """
    return _guarded(decode_json_document, body)


def decode_message(request: ExportTraceServiceRequest) -> Decoded:
    """Decode an already-parsed request (a gRPC servicer that lets grpcio deserialize)."""
    return _guarded(_decode_message, request)


def _guarded(fn: Any, arg: Any) -> Decoded:
    """Run a walker so that only DecodeError can escape.

    The walkers check every shape they rely on; this net is for what a fuzzer finds that they
    missed, so a hostile body becomes a 400 rather than a 500 or a dead receiver task.
    """
    try:
        return fn(arg)
    except DecodeError:
        raise
    except RecursionError:
        raise DecodeError("request is nested too deeply") from None
    except Exception as exc:  # noqa: BLE001 - see docstring
        raise DecodeError(f"malformed OTLP request: {type(exc).__name__}: {exc}") from None


def _decode_message(request: ExportTraceServiceRequest) -> Decoded:
    out = SpanRows()
    for rs in request.resource_spans:
        resource = rs.resource
        resource_attrs = _attrs(resource.attributes)
        resource_json = dumps(resource_attrs)
        for ss in rs.scope_spans:
            scope = ss.scope
            out.start_scope(
                resource_attrs,
                resource_json,
                resource.dropped_attributes_count,
                scope.name,
                scope.version,
                _attrs(scope.attributes),
                scope.dropped_attributes_count,
            )
            for index, span in enumerate(ss.spans):
                trace_id = span.trace_id
                span_id = span.span_id
                parent = span.parent_span_id
                start = span.start_time_unix_nano
                end = span.end_time_unix_nano
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE_ID
                    or span_id == _ZERO_SPAN_ID
                    or (parent and len(parent) != 8)
                    or start > INT64_MAX
                    or end > INT64_MAX
                ):
                    out.reject(index, _why_rejected(trace_id, span_id, parent, start, end))
                    continue
                kind = span.kind
                status = span.status
                events = span.events  # each access builds a wrapper: read once
                links = span.links
                code = status.code
                out.add(
                    trace_id.hex(),
                    span_id.hex(),
                    # All-zero parent: some converters (e.g. from Jaeger/Zipkin) mark roots so.
                    parent.hex() if parent and parent != _ZERO_SPAN_ID else None,
                    span.trace_state,
                    span.name,
                    KIND_NAMES[kind] if 0 <= kind < 6 else "UNSPECIFIED",
                    STATUS_NAMES[code] if 0 <= code < 3 else "UNSET",
                    status.message,
                    start,
                    end,
                    span.flags,
                    _attrs(span.attributes),
                    _events(events) if events else None,
                    _links(links) if links else None,
                    span.dropped_attributes_count,
                    span.dropped_events_count,
                    span.dropped_links_count,
                )
    return out.result()


def _why_rejected(trace_id: bytes, span_id: bytes, parent: bytes, start: int, end: int) -> str:
    if len(trace_id) != 16:
        return f"trace_id must be 16 bytes, got {len(trace_id)}"
    if trace_id == _ZERO_TRACE_ID:
        return "trace_id must not be all zeros"
    if len(span_id) != 8:
        return f"span_id must be 8 bytes, got {len(span_id)}"
    if span_id == _ZERO_SPAN_ID:
        return "span_id must not be all zeros"
    if parent and len(parent) != 8:
        return f"parent_span_id must be empty or 8 bytes, got {len(parent)}"
    which = "start_time_unix_nano" if start > INT64_MAX else "end_time_unix_nano"
    return f"{which} is beyond year 2262 and cannot be stored"


def _attrs(kvs: Any) -> dict[str, Any]:
    """Repeated KeyValue -> dict (last duplicate key wins).

    The hot loop of the whole ingest path: most values are strings, and a non-empty
    `string_value` proves the oneof holds a string, so the common case costs one field read.
    """
    out: dict[str, Any] = {}
    for kv in kvs:
        value = kv.value
        text = value.string_value
        if text:
            out[kv.key] = text
            continue
        which = value.WhichOneof("value")
        if which in _SCALAR_FIELDS:
            out[kv.key] = getattr(value, which)
        else:
            out[kv.key] = _any(value)
    return out


def _any(value: Any) -> Any:
    """AnyValue -> JSON-ready Python value; bytes become base64 text, unset becomes None."""
    which = value.WhichOneof("value")
    if which is None:
        return None
    if which == "array_value":
        return [_any(v) for v in value.array_value.values]
    if which == "kvlist_value":
        return _attrs(value.kvlist_value.values)
    if which == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    return getattr(value, which)  # string, bool, int, double


def _events(events: Any) -> list[dict[str, Any]]:
    out = []
    for e in events:
        event = {"name": e.name, "time_unix_nano": e.time_unix_nano, "attributes": _attrs(e.attributes)}
        if e.dropped_attributes_count:
            event["dropped_attributes_count"] = e.dropped_attributes_count
        out.append(event)
    return out


def _links(links: Any) -> list[dict[str, Any]]:
    out = []
    for link in links:
        item = {
            "trace_id": link.trace_id.hex(),
            "span_id": link.span_id.hex(),
            "trace_state": link.trace_state,
            "attributes": _attrs(link.attributes),
        }
        if link.flags:
            item["flags"] = link.flags
        if link.dropped_attributes_count:
            item["dropped_attributes_count"] = link.dropped_attributes_count
        out.append(item)
    return out


# The AnyValue -> JSON conversion, for the other signals' decoders (decode_logs.py): one
# conversion, so a log record's attributes read exactly like a span's.
key_values = _attrs
any_value = _any
guarded = _guarded
