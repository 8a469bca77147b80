"""OTLP/gRPC: TraceService/Export and LogsService/Export on grpc.aio, handing raw bytes to the
shared receiver. One handler class serves every signal (ingest/signals.py).

The handler takes the request undeserialized so the protobuf parse happens in the decoder,
off the event loop, like the HTTP path.
"""

from __future__ import annotations

import logging

import grpc
from google.protobuf.duration_pb2 import Duration
from google.rpc import error_details_pb2, status_pb2

from spanlake.auth import GRPC_EXPORT_SCOPE, AuthError, KeyRing, PermissionDenied, check
from spanlake.ingest.ack import IngestError, Outcome
from spanlake.ingest.receiver import Receiver
from spanlake.ingest.signals import TRACES, Signal
from spanlake.metrics import Metrics

log = logging.getLogger(__name__)
access_log = logging.getLogger("spanlake.access")

EXPORT_METHOD = TRACES.grpc_method


def _retry_details(outcome: Outcome, message: str, seconds: float) -> tuple[tuple[str, bytes], ...]:
    """google.rpc.Status with RetryInfo, the form OTLP exporters read their back-off from."""
    delay = Duration()
    delay.FromNanoseconds(int(seconds * 1e9))
    info = error_details_pb2.RetryInfo(retry_delay=delay)
    status = status_pb2.Status(code=outcome.grpc_code.value[0], message=message)
    status.details.add().Pack(info)
    return (("grpc-status-details-bin", status.SerializeToString()),)


class ExportHandler:
    """`Export` of one signal's service: auth, the receiver, the outcome as a gRPC status."""

    def __init__(self, receiver: Receiver, keys: KeyRing, metrics: Metrics, signal: Signal = TRACES):
        self._receiver = receiver
        self._keys = keys
        self._metrics = metrics
        self.signal = signal
        self._method = signal.service.rsplit(".", 1)[-1] + "/Export"
        self._empty_response = signal.response_bytes(0, "")

    async def export(self, request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        who = "anonymous"
        try:
            if self._keys.enabled:
                metadata = dict(context.invocation_metadata() or ())
                try:
                    who = check(self._keys, metadata.get("authorization"), GRPC_EXPORT_SCOPE, self._method).name
                except AuthError as exc:
                    who = exc.principal.name if isinstance(exc, PermissionDenied) else "-"
                    outcome = Outcome.UNAUTHENTICATED if exc.status == 401 else Outcome.PERMISSION_DENIED
                    raise IngestError(outcome, exc.message) from None
            decoded = await self._receiver.accept(request, "protobuf", self.signal)
        except IngestError as exc:
            # Like the HTTP access log's OTLP lines: debug level, exporters call many times a second.
            access_log.debug("grpc Export %s key=%s signal=%s", exc.outcome.error_code, who, self.signal.name)
            self._metrics.requests.labels("grpc", exc.outcome.error_code).inc()
            trailing = _retry_details(exc.outcome, exc.message, exc.retry_after_seconds) if exc.outcome.retryable else ()
            await context.abort(exc.outcome.grpc_code, exc.message, trailing_metadata=trailing)
            raise AssertionError("unreachable: abort raises")  # pragma: no cover
        access_log.debug("grpc Export ok key=%s signal=%s", who, self.signal.name)
        self._metrics.requests.labels("grpc", "ok").inc()
        if not decoded.rejected:
            return self._empty_response
        return self.signal.response_bytes(decoded.rejected, decoded.error_message)


def build_grpc_server(
    handlers: list[ExportHandler], *, host: str, port: int, max_message_bytes: int
) -> tuple[grpc.aio.Server, int]:
    """A grpc.aio server with each handler's service, bound to host:port; returns it with the
    port actually bound."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    services = tuple(
        grpc.method_handlers_generic_handler(h.signal.service, {"Export": grpc.unary_unary_rpc_method_handler(h.export)})
        for h in handlers
    )
    server.add_generic_rpc_handlers(services)
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot bind gRPC to {host}:{port}")
    return server, bound

