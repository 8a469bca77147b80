"""The OTLP signals spanlake receives, each as data: its decoders and its response messages.

The receiver, the gRPC handler and the HTTP endpoint are written once and take a Signal, so
traces and logs cannot drift apart the way per-signal copies do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsPartialSuccess,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)

from spanlake.ingest.decode import decode_json, decode_protobuf
from spanlake.ingest.decode_logs import decode_logs_json, decode_logs_protobuf
from spanlake.ingest.spanrows import Decoded


@dataclass(frozen=True)
class Signal:
    name: str  # "traces" | "logs": the HTTP path's last part, and a metrics label
    service: str  # the gRPC service's full name
    decoders: dict[str, Callable[[bytes], Decoded]]  # by encoding: "protobuf" | "json"
    response: type  # Export*ServiceResponse
    partial_success: type  # Export*PartialSuccess
    rejected_field: str  # the partial success's count field (protobuf name)
    rejected_json: str  # the same in OTLP/JSON

    @property
    def http_path(self) -> str:
        return f"/v1/{self.name}"

    @property
    def grpc_method(self) -> str:
        return f"/{self.service}/Export"

    def response_bytes(self, rejected: int, error_message: str) -> bytes:
        message: Any = self.response()
        if rejected:
            message.partial_success.CopyFrom(
                self.partial_success(**{self.rejected_field: rejected, "error_message": error_message})
            )
        return message.SerializeToString()


TRACES = Signal(
    name="traces",
    service="opentelemetry.proto.collector.trace.v1.TraceService",
    decoders={"protobuf": decode_protobuf, "json": decode_json},
    response=ExportTraceServiceResponse,
    partial_success=ExportTracePartialSuccess,
    rejected_field="rejected_spans",
    rejected_json="rejectedSpans",
)

# Only GenAI events are kept (decode_logs.py); other log records are refused, with the reason.
LOGS = Signal(
    name="logs",
    service="opentelemetry.proto.collector.logs.v1.LogsService",
    decoders={"protobuf": decode_logs_protobuf, "json": decode_logs_json},
    response=ExportLogsServiceResponse,
    partial_success=ExportLogsPartialSuccess,
    rejected_field="rejected_log_records",
    rejected_json="rejectedLogRecords",
)

SIGNALS = {s.name: s for s in (TRACES, LOGS)}
