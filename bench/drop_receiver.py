"""The fair baseline: a grpc.aio OTLP trace receiver that parses each request and drops it.

Same gRPC stack and options as `spanlake serve`, one Python process; each Export call is
deserialized into ExportTraceServiceRequest (upb, as grpcio would with a generated stub) and
answered with an empty ExportTraceServiceResponse. Nothing is decoded further or stored, so
its spans/s is the ceiling for any Python OTLP/gRPC receiver on this machine.

    python bench/drop_receiver.py --port 0   # prints "ready <port>", stops on SIGTERM
"""

from __future__ import annotations

import argparse
import asyncio
import signal

import grpc
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

_EMPTY = ExportTraceServiceResponse().SerializeToString()


async def _export(request: ExportTraceServiceRequest, context: grpc.aio.ServicerContext) -> bytes:
    return _EMPTY


async def serve(host: str, port: int, max_message_bytes: int) -> None:
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", 16 * 1024 * 1024),
            ("grpc.so_reuseport", 0),
        ],
    )
    handler = grpc.unary_unary_rpc_method_handler(
        _export, request_deserializer=ExportTraceServiceRequest.FromString, response_serializer=None
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("opentelemetry.proto.collector.trace.v1.TraceService", {"Export": handler}),)
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    print(f"ready {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await server.stop(grace=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-message-bytes", type=int, default=64 * 1024 * 1024)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port, args.max_message_bytes))


if __name__ == "__main__":
    main()
