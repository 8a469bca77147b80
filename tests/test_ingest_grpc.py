"""OTLP/gRPC ingest against a real server: the SDK exporter, raw channels, bad input, limits."""

from __future__ import annotations

import gzip

import grpc
import httpx
import pytest
from google.rpc import error_details_pb2, status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from otlp_builders import llm_trace, new_span_id, new_trace_id, request, span

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def export_raw(target: str, body: bytes, metadata=(), compression=None) -> ExportTraceServiceResponse:
    with grpc.insecure_channel(target, options=[("grpc.max_send_message_length", 200 * 1024 * 1024)]) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=ExportTraceServiceResponse.FromString)
        return call(body, metadata=metadata, timeout=30, compression=compression)


def export(target: str, req: ExportTraceServiceRequest, **kw) -> ExportTraceServiceResponse:
    return export_raw(target, req.SerializeToString(), **kw)


def get_trace(server, trace_id: str) -> httpx.Response:
    return httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=10)


def test_sdk_grpc_exporter_spans_are_queryable(shared_server):
    from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-grpc"}))
    provider.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter(endpoint=shared_server.grpc_target, insecure=True)))
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("agent") as root:
        with tracer.start_as_current_span("chat gpt-4o") as child:
            child.set_attribute("gen_ai.request.model", "gpt-4o")
            child.set_attribute("gen_ai.usage.input_tokens", 12)
            child.set_attribute("gen_ai.usage.output_tokens", 7)
    trace_id = format(root.get_span_context().trace_id, "032x")
    provider.shutdown()

    resp = get_trace(shared_server, trace_id)
    assert resp.status_code == 200, resp.text
    spans = resp.json()["spans"]
    assert [s["name"] for s in spans] == ["agent", "chat gpt-4o"]  # parents before children
    root_span, llm = spans
    assert root_span["parent_span_id"] is None
    assert llm["parent_span_id"] == root_span["span_id"]
    assert llm["service"] == "sdk-grpc"
    assert llm["model"] == "gpt-4o"
    assert (llm["input_tokens"], llm["output_tokens"], llm["total_tokens"]) == (12, 7, 19)
    assert llm["attributes"]["gen_ai.request.model"] == "gpt-4o"
    assert llm["duration_ms"] >= 0


def test_acked_request_is_readable_immediately(shared_server):
    trace_id, spans = llm_trace(5)
    resp = export(shared_server.grpc_target, request(spans))
    assert not resp.HasField("partial_success")
    body = get_trace(shared_server, trace_id).json()
    assert len(body["spans"]) == 5
    assert body["spans"][0]["name"] == "agent.run"


def test_gzip_compressed_request(shared_server):
    trace_id, spans = llm_trace(3)
    export(shared_server.grpc_target, request(spans), compression=grpc.Compression.Gzip)
    assert len(get_trace(shared_server, trace_id).json()["spans"]) == 3


def test_invalid_ids_are_partially_rejected_valid_spans_stored(shared_server):
    trace_id = new_trace_id()
    good = span(trace_id, new_span_id(), "good")
    bad_span_id = span(trace_id, new_span_id(), "bad-span-id")
    bad_span_id.span_id = b"\x01\x02\x03"
    bad_trace_id = span(trace_id, new_span_id(), "bad-trace-id")
    bad_trace_id.trace_id = b"\x00" * 16
    resp = export(shared_server.grpc_target, request([good, bad_span_id, bad_trace_id]))
    assert resp.partial_success.rejected_spans == 2
    assert resp.partial_success.error_message
    names = [s["name"] for s in get_trace(shared_server, trace_id).json()["spans"]]
    assert names == ["good"]


def test_same_span_twice_is_stored_once(shared_server):
    trace_id, spans = llm_trace(3)
    export(shared_server.grpc_target, request(spans))
    export(shared_server.grpc_target, request(spans))  # a client retry
    export(shared_server.grpc_target, request(spans + spans))  # and a duplicate inside one request
    assert len(get_trace(shared_server, trace_id).json()["spans"]) == 3


def test_malformed_protobuf_is_invalid_argument(shared_server):
    with pytest.raises(grpc.RpcError) as info:
        export_raw(shared_server.grpc_target, b"\xff\xff\xff\xff not protobuf")
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details()


def test_oversized_request_is_resource_exhausted(make_server):
    server = make_server("--max-message-bytes", "65536")
    trace_id, spans = llm_trace(2)
    spans[0].attributes.add(key="big", value={"string_value": "x" * 100_000})
    with pytest.raises(grpc.RpcError) as info:
        export(server.grpc_target, request(spans))
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert get_trace(server, trace_id).status_code == 404


def test_gzip_bomb_is_refused_after_decompression(make_server):
    server = make_server("--max-message-bytes", "65536")
    trace_id, spans = llm_trace(2)
    spans[0].attributes.add(key="big", value={"string_value": "x" * 1_000_000})  # compresses to ~1 KB
    body = request(spans).SerializeToString()
    assert len(gzip.compress(body)) < 65536
    with pytest.raises(grpc.RpcError) as info:
        export_raw(server.grpc_target, body, compression=grpc.Compression.Gzip)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_full_log_answers_resource_exhausted_with_retry_info(make_server):
    """With log room for about one request, a burst gets some retryable refusals; nothing refused is stored."""
    server = make_server("--log-max-bytes", "60000")
    from concurrent.futures import ThreadPoolExecutor

    traces = [llm_trace(50) for _ in range(40)]

    def send(item):
        trace_id, spans = item
        try:
            export(server.grpc_target, request(spans))
            return trace_id, None
        except grpc.RpcError as exc:
            return trace_id, exc

    with ThreadPoolExecutor(16) as pool:
        results = list(pool.map(send, traces))
    refused = [(t, e) for t, e in results if e is not None]
    accepted = [t for t, e in results if e is None]
    assert refused, "a burst 40x the log bound should see refusals"
    assert accepted
    for trace_id, exc in refused:
        assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        details = dict(exc.trailing_metadata())["grpc-status-details-bin"]
        status = status_pb2.Status.FromString(details)
        info = error_details_pb2.RetryInfo()
        assert status.details[0].Unpack(info)
        assert info.retry_delay.ToNanoseconds() > 0
        assert get_trace(server, trace_id).status_code == 404
    for trace_id in accepted:
        assert len(get_trace(server, trace_id).json()["spans"]) == 50


def test_nanosecond_times_dedup_and_lookup_exactly(shared_server):
    """Times with sub-microsecond digits: a retry is still deduplicated and a zero-length last span is found."""
    trace_id, root = new_trace_id(), new_span_id()
    start = 1_763_700_000_123_456_789
    spans = [
        span(trace_id, root, "root", start_ns=start, duration_ms=1),
        span(trace_id, new_span_id(), "last", parent=root, start_ns=start + 1_000_001, duration_ms=0),
    ]
    export(shared_server.grpc_target, request(spans))
    export(shared_server.grpc_target, request(spans))
    got = get_trace(shared_server, trace_id).json()["spans"]
    assert [s["name"] for s in got] == ["root", "last"]
    assert got[1]["start_time_unix_nano"] == str(start + 1_000_001)
