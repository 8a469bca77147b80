"""OTLP/HTTP ingest: protobuf and spec JSON, gzip, answers in the request's encoding, bad input."""

from __future__ import annotations

import gzip
import json

import httpx
import pytest
from google.rpc import status_pb2
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from otlp_builders import llm_trace, new_span_id, new_trace_id, request, span, to_otlp_json

PROTO = {"content-type": "application/x-protobuf"}
JSON = {"content-type": "application/json"}


def post(server, body: bytes, headers: dict) -> httpx.Response:
    return httpx.post(f"{server.http_url}/v1/traces", content=body, headers=headers, timeout=30)


def trace_spans(server, trace_id: str) -> list[dict]:
    resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()["spans"]


def test_sdk_http_exporter(shared_server):
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "sdk-http"}))
    exporter = OTLPSpanExporter(endpoint=f"{shared_server.http_url}/v1/traces")
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with provider.get_tracer("t").start_as_current_span("retrieve", attributes={"openinference.span.kind": "RETRIEVER"}) as s:
        pass
    provider.shutdown()
    spans = trace_spans(shared_server, format(s.get_span_context().trace_id, "032x"))
    assert spans[0]["name"] == "retrieve"
    assert spans[0]["service"] == "sdk-http"
    assert spans[0]["span_type"] == "retriever"


@pytest.mark.parametrize("gzipped", [False, True])
def test_protobuf_answers_protobuf(shared_server, gzipped):
    trace_id, spans = llm_trace(4)
    body = request(spans).SerializeToString()
    headers = dict(PROTO)
    if gzipped:
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    resp = post(shared_server, body, headers)
    assert resp.status_code == 200
    assert resp.headers["content-type"] == "application/x-protobuf"
    assert not ExportTraceServiceResponse.FromString(resp.content).HasField("partial_success")
    assert len(trace_spans(shared_server, trace_id)) == 4


@pytest.mark.parametrize("gzipped", [False, True])
def test_spec_json_answers_json(shared_server, gzipped):
    trace_id, spans = llm_trace(3)
    doc = to_otlp_json(request(spans, service="json-svc"))
    assert doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] == trace_id  # hex, not base64
    body = json.dumps(doc).encode()
    headers = dict(JSON)
    if gzipped:
        body = gzip.compress(body)
        headers["content-encoding"] = "gzip"
    resp = post(shared_server, body, headers)
    assert resp.status_code == 200, resp.text
    assert resp.headers["content-type"] == "application/json"
    assert resp.json() == {}
    stored = trace_spans(shared_server, trace_id)
    assert {s["service"] for s in stored} == {"json-svc"}
    llm = stored[1]
    assert llm["input_tokens"] == 10 and llm["model"] == "gpt-4o"
    assert llm["start_time_unix_nano"] == str(spans[1].start_time_unix_nano)


def test_json_partial_success(shared_server):
    trace_id = new_trace_id()
    good = span(trace_id, new_span_id(), "good")
    doc = to_otlp_json(request([good, span(trace_id, new_span_id(), "bad")]))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][1]["spanId"] = "abcd"
    resp = post(shared_server, json.dumps(doc).encode(), JSON)
    assert resp.status_code == 200
    partial = resp.json()["partialSuccess"]
    assert partial["rejectedSpans"] in ("1", 1)
    assert partial["errorMessage"]
    assert [s["name"] for s in trace_spans(shared_server, trace_id)] == ["good"]


@pytest.mark.parametrize(
    "body,headers,status",
    [
        (b"{not json", JSON, 400),
        (b'{"resourceSpans": "nope"}', JSON, 400),
        (b"\xff\xfe garbage", PROTO, 400),
        (b"\x1f\x8b\x08 truncated gzip", {**PROTO, "content-encoding": "gzip"}, 400),
        (b"{}", {"content-type": "text/plain"}, 415),
        (b"{}", {**JSON, "content-encoding": "br"}, 415),
    ],
)
def test_bad_requests_get_clear_errors(shared_server, body, headers, status):
    resp = post(shared_server, body, headers)
    assert resp.status_code == status
    if resp.headers["content-type"].startswith("application/json"):
        error = resp.json()["error"]
        assert error["code"] and error["message"]
    else:
        assert status_pb2.Status.FromString(resp.content).message


def test_oversized_body_is_413_even_when_gzipped(make_server):
    server = make_server("--max-message-bytes", "65536")
    _, spans = llm_trace(2)
    spans[0].attributes.add(key="big", value={"string_value": "y" * 500_000})
    raw = request(spans).SerializeToString()
    assert post(server, raw, PROTO).status_code == 413
    zipped = gzip.compress(raw)
    assert len(zipped) < 65536
    assert post(server, zipped, {**PROTO, "content-encoding": "gzip"}).status_code == 413


def test_health_and_metrics(shared_server):
    assert httpx.get(f"{shared_server.http_url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{shared_server.http_url}/readyz").status_code == 200
    _, spans = llm_trace(3)
    post(shared_server, request(spans).SerializeToString(), PROTO)
    httpx.get(f"{shared_server.http_url}/api/traces/{new_trace_id()}")  # waits for the loader
    text = httpx.get(f"{shared_server.http_url}/metrics").text
    for name in (
        "spanlake_spans_received_total",
        "spanlake_spans_stored_total",
        "spanlake_spans_rejected_total",
        "spanlake_log_unloaded_bytes",
        "spanlake_loader_lag_spans",
        "spanlake_load_transaction_spans_bucket",
        "spanlake_commit_seconds_bucket",
    ):
        assert name in text
    stored = [l for l in text.splitlines() if l.startswith("spanlake_spans_stored_total")]
    assert float(stored[0].split()[-1]) >= 3


def test_unknown_trace_is_404_and_bad_id_is_400(shared_server):
    resp = httpx.get(f"{shared_server.http_url}/api/traces/{new_trace_id()}")
    assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"
    resp = httpx.get(f"{shared_server.http_url}/api/traces/xyz")
    assert resp.status_code == 400 and "32 hex" in resp.json()["error"]["message"]
