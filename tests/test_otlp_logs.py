"""GenAI events sent as OTLP log records, through the real server, gRPC and HTTP.

opentelemetry-instrumentation-openai-v2 records a chat call as a span plus one log record per
message (`gen_ai.system.message`, `gen_ai.user.message`, ..., `gen_ai.choice`), linked to the
span by its ids. Whichever arrives first, the span must end up with its messages: in the span
API's input/output and events, in items a capture rule makes, and in the OpenAI export.
"""

from __future__ import annotations

import json
import time
from typing import Any

import grpc
import httpx
import pytest
from opentelemetry import trace as otel_trace
from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogExporter
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter as HttpLogExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest, ExportLogsServiceResponse
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.resources import Resource

from chat_spans import ANSWER, CALL, FINAL, MESSAGES, QUESTION, SYSTEM, TOOL_ANSWER
from datasets_client import client, items, send_spans
from otlp_builders import new_span_id, new_trace_id, span
from test_decode import av

LOGS_METHOD = "/opentelemetry.proto.collector.logs.v1.LogsService/Export"
SCOPE = "opentelemetry.instrumentation.openai_v2"

# One chat call with a tool round trip, as openai-v2 logs it: (event name, body).
CHAT_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("gen_ai.system.message", {"content": SYSTEM}),
    ("gen_ai.user.message", {"content": QUESTION}),
    ("gen_ai.assistant.message", {"tool_calls": [CALL]}),
    ("gen_ai.tool.message", {"content": TOOL_ANSWER, "id": "call_1"}),
    ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}),
]
# The turn before it: the model answers with a tool call.
TOOL_CALL_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("gen_ai.system.message", {"content": SYSTEM}),
    ("gen_ai.user.message", {"content": QUESTION}),
    (
        "gen_ai.choice",
        {"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": None, "tool_calls": [CALL]}},
    ),
]
CHAT_INPUT = {"messages": MESSAGES}

RULES = """
rules:
  - name: openai-chats
    dataset: openai-chats
    when: {field: model, op: eq, value: gpt-4o-mini}
"""


def json_value(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, dict):
        return {"kvlistValue": {"values": [{"key": k, "value": json_value(v)} for k, v in value.items()]}}
    if isinstance(value, list):
        return {"arrayValue": {"values": [json_value(v) for v in value]}}
    return {"stringValue": str(value)}


def log_request(trace_id: str, span_id: str, events: list[tuple[str, dict]], start_ns: int, legacy_name: bool = False) -> ExportLogsServiceRequest:
    """openai-v2's records: the name in event_name (or, from older SDKs, the event.name attribute)."""
    records = []
    for i, (name, body) in enumerate(events):
        attributes = {"gen_ai.system": "openai", **({"event.name": name} if legacy_name else {})}
        records.append(
            LogRecord(
                time_unix_nano=start_ns + 1000 * (i + 1),
                observed_time_unix_nano=start_ns + 1000 * (i + 1),
                trace_id=bytes.fromhex(trace_id),
                span_id=bytes.fromhex(span_id),
                flags=1,
                event_name="" if legacy_name else name,
                body=av(body),
                attributes=[KeyValue(key=k, value=av(v)) for k, v in attributes.items()],
            )
        )
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource={"attributes": [KeyValue(key="service.name", value=av("chat-app"))]},
                scope_logs=[ScopeLogs(scope={"name": SCOPE}, log_records=records)],
            )
        ]
    )


def json_log_request(records: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceLogs": [{"resource": {"attributes": []}, "scopeLogs": [{"scope": {"name": SCOPE}, "logRecords": records}]}]}


def chat_span(trace_id: str, span_id: str, start_ns: int, finish: str = "stop") -> Span:
    """The span openai-v2 makes for the call (content goes to the log records, not here)."""
    return span(
        trace_id,
        span_id,
        "chat gpt-4o-mini",
        start_ns=start_ns,
        duration_ms=5,
        kind=Span.SPAN_KIND_CLIENT,
        attributes={
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4o-mini",
            "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
            "gen_ai.response.finish_reasons": [finish],
            "gen_ai.usage.input_tokens": 80,
            "gen_ai.usage.output_tokens": 12,
        },
    )


def post_logs(http: httpx.Client, request: ExportLogsServiceRequest) -> httpx.Response:
    return http.post("/v1/logs", content=request.SerializeToString(), headers={"content-type": "application/x-protobuf"})


def grpc_export_logs(server: Any, request: ExportLogsServiceRequest) -> ExportLogsServiceResponse:
    with grpc.insecure_channel(server.grpc_target) as channel:
        call = channel.unary_unary(
            LOGS_METHOD,
            request_serializer=ExportLogsServiceRequest.SerializeToString,
            response_deserializer=ExportLogsServiceResponse.FromString,
        )
        return call(request, timeout=10)


def sdk_emit(exporter: Any, trace_id: str, span_id: str, events: list[tuple[str, dict]]) -> None:
    """Emit the events through the OpenTelemetry SDK's logs pipeline, inside the span's context."""
    provider = LoggerProvider(resource=Resource.create({"service.name": "chat-app"}))
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger(SCOPE)
    context = otel_trace.set_span_in_context(
        otel_trace.NonRecordingSpan(
            otel_trace.SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False, trace_flags=otel_trace.TraceFlags(1))
        )
    )
    for name, body in events:
        logger.emit(event_name=name, body=body, attributes={"gen_ai.system": "openai"}, context=context)
    assert provider.force_flush(10_000)
    provider.shutdown()


def span_detail(http: httpx.Client, trace_id: str, span_id: str) -> dict[str, Any]:
    resp = http.get(f"/api/traces/{trace_id}/spans/{span_id}")
    assert resp.status_code == 200, resp.text
    return resp.json()


def assert_chat(detail: dict[str, Any], output: Any = FINAL, messages: list = MESSAGES) -> None:
    assert json.loads(detail["input"]) == {"messages": messages}
    assert json.loads(detail["output"]) == output
    names = [e["name"] for e in detail["events"]]
    assert names[0] == "gen_ai.system.message" and names[-1] == "gen_ai.choice"


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Late events load a moment after their ack: poll what a user would poll."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from server_process import ServerProcess

    data = tmp_path_factory.mktemp("logs")
    (data / "rules.yaml").write_text(RULES)
    with ServerProcess(data / "store", "--rules", str(data / "rules.yaml")) as proc:
        yield proc


def test_sdk_grpc_logs_before_the_span_make_its_chat_and_captured_item(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    sdk_emit(GrpcLogExporter(endpoint=server.grpc_target, insecure=True), trace_id, span_id, CHAT_EVENTS)
    with client(server) as http:
        send_spans(http, [chat_span(trace_id, span_id, start)])
        detail = span_detail(http, trace_id, span_id)
        assert_chat(detail)
        assert detail["model"] == "gpt-4o-mini" and detail["input_tokens"] == 80
        # The capture rule ran in the span's transaction, with the messages already merged.
        (item,) = [it for it in items(http, "openai-chats") if it["source_span_id"] == span_id]
        assert item["input"] == CHAT_INPUT
        assert item["expected_output"] == FINAL
        resp = http.get("/api/datasets/openai-chats/export", params={"format": "openai"})
        assert resp.status_code == 200, resp.text
        rows = [json.loads(line) for line in resp.text.splitlines() if line.strip()]
        row = next(r for r in rows if r["messages"][1]["content"] == QUESTION)
        assert [m["role"] for m in row["messages"]] == ["system", "user", "assistant", "tool", "assistant"]
        assert row["messages"][-1]["content"] == ANSWER


def test_sdk_http_logs_after_the_span_update_the_stored_span(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    with client(server) as http:
        send_spans(http, [chat_span(trace_id, span_id, start, finish="tool_calls")])
        before = span_detail(http, trace_id, span_id)
        assert before["input"] is None and before["events"] == []
        sdk_emit(HttpLogExporter(endpoint=f"{server.http_url}/v1/logs"), trace_id, span_id, TOOL_CALL_EVENTS)
        tool_call = {"role": "assistant", "content": None, "tool_calls": [CALL], "finish_reason": "tool_calls"}
        wait_for(lambda: assert_chat(span_detail(http, trace_id, span_id), output=tool_call, messages=MESSAGES[:2]))
        # The UI's span detail shows the same chat.
        page = http.get(f"/traces/{trace_id}", params={"span": span_id})
        assert page.status_code == 200 and QUESTION in page.text and "get_weather" in page.text


def test_protobuf_logs_after_the_span_with_legacy_names_and_a_retry_attach_once(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    request = log_request(trace_id, span_id, CHAT_EVENTS, start, legacy_name=True)
    with client(server) as http:
        send_spans(http, [chat_span(trace_id, span_id, start)])
        span_detail(http, trace_id, span_id)
        for _ in range(2):  # an exporter's retry of an acknowledged request
            resp = post_logs(http, request)
            assert resp.status_code == 200, resp.text
            assert not ExportLogsServiceResponse.FromString(resp.content).HasField("partial_success")
        wait_for(lambda: assert_chat(span_detail(http, trace_id, span_id)))
        time.sleep(0.3)
        assert len(span_detail(http, trace_id, span_id)["events"]) == len(CHAT_EVENTS)


def test_json_logs_before_the_span_sent_twice_attach_once(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    records = [
        {
            "timeUnixNano": str(start + 1000 * (i + 1)),
            "traceId": trace_id,
            "spanId": span_id,
            "eventName": name,
            "body": json_value(body),
            "attributes": [{"key": "gen_ai.system", "value": {"stringValue": "openai"}}],
        }
        for i, (name, body) in enumerate(CHAT_EVENTS)
    ]
    with client(server) as http:
        for _ in range(2):
            resp = http.post("/v1/logs", json=json_log_request(records))
            assert resp.status_code == 200 and resp.json() == {}, resp.text
        send_spans(http, [chat_span(trace_id, span_id, start)])
        detail = span_detail(http, trace_id, span_id)
        assert_chat(detail)
        assert len(detail["events"]) == len(CHAT_EVENTS)


def test_other_log_records_are_refused_with_the_reason_over_grpc(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    request = log_request(trace_id, span_id, CHAT_EVENTS[:2], start)
    records = request.resource_logs[0].scope_logs[0].log_records
    records.add(time_unix_nano=start, body=av("GET /health 200"), trace_id=bytes.fromhex(trace_id), span_id=bytes.fromhex(span_id))
    records.add(time_unix_nano=start, event_name="app.started")
    records.add(time_unix_nano=start, event_name="gen_ai.user.message", trace_id=bytes.fromhex(trace_id), body=av({"content": "x"}))
    response = grpc_export_logs(server, request)
    assert response.partial_success.rejected_log_records == 3
    message = response.partial_success.error_message
    assert "3 log records refused" in message
    assert "1 not a GenAI event (event name '')" in message
    assert "1 not a GenAI event (event name 'app.started')" in message
    assert "1 without a span id" in message
    with client(server) as http:
        send_spans(http, [chat_span(trace_id, span_id, start)])
        detail = span_detail(http, trace_id, span_id)
        assert [e["name"] for e in detail["events"]] == ["gen_ai.system.message", "gen_ai.user.message"]
        assert json.loads(detail["input"]) == {"messages": MESSAGES[:2]}


def test_other_log_records_are_refused_with_the_reason_over_http_json(server):
    trace_id = new_trace_id()
    records = [
        {"timeUnixNano": "1", "eventName": "gen_ai.choice", "spanId": new_span_id(), "body": json_value({"index": 0})},
        {"timeUnixNano": "1", "traceId": trace_id, "spanId": new_span_id(), "attributes": [{"key": "event.name", "value": {"stringValue": "db.query"}}]},
    ]
    with client(server) as http:
        resp = http.post("/v1/logs", json=json_log_request(records))
        assert resp.status_code == 200, resp.text
        partial = resp.json()["partialSuccess"]
        assert partial["rejectedLogRecords"] == "2"
        assert "1 without a trace id" in partial["errorMessage"]
        assert "1 not a GenAI event (event name 'db.query')" in partial["errorMessage"]


def test_malformed_log_requests_are_refused_whole(server):
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    good = log_request(trace_id, span_id, CHAT_EVENTS, start).SerializeToString()
    truncated = good[:-7]
    with client(server) as http:
        resp = post_logs_bytes(http, truncated)
        assert resp.status_code == 400
        bad_json = json_log_request([{"traceId": trace_id, "spanId": span_id, "eventName": "gen_ai.choice", "body": {"intValue": "x"}}])
        resp = http.post("/v1/logs", json=bad_json)
        assert resp.status_code == 400 and "body.intValue" in resp.json()["error"]["message"]
        with pytest.raises(grpc.RpcError) as info:
            with grpc.insecure_channel(server.grpc_target) as channel:
                channel.unary_unary(LOGS_METHOD)(truncated, timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        send_spans(http, [chat_span(trace_id, span_id, start)])
        detail = span_detail(http, trace_id, span_id)
        assert detail["events"] == [] and detail["input"] is None


def post_logs_bytes(http: httpx.Client, body: bytes) -> httpx.Response:
    return http.post("/v1/logs", content=body, headers={"content-type": "application/x-protobuf"})


def test_log_export_needs_the_ingest_scope(make_server):
    server = make_server("--api-key", "secret-key")
    request = log_request(new_trace_id(), new_span_id(), CHAT_EVENTS, time.time_ns())
    with httpx.Client(base_url=server.http_url) as http:
        assert post_logs(http, request).status_code == 401
        http.headers["authorization"] = "Bearer secret-key"
        assert post_logs(http, request).status_code == 200
    with pytest.raises(grpc.RpcError) as info:
        grpc_export_logs(server, request)
    assert info.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_acked_logs_survive_sigkill_and_attach_after_restart(make_server):
    server = make_server()
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    with client(server) as http:
        assert post_logs(http, log_request(trace_id, span_id, CHAT_EVENTS, start)).status_code == 200
    server.kill()
    server.restart()
    with client(server) as http:
        send_spans(http, [chat_span(trace_id, span_id, start)])
        assert_chat(span_detail(http, trace_id, span_id))


def test_inference_details_event_from_newer_semconv(server):
    """`gen_ai.client.inference.operation.details` carries the current GenAI attributes."""
    trace_id, span_id, start = new_trace_id(), new_span_id(), time.time_ns()
    details = {
        "gen_ai.system_instructions": [{"type": "text", "content": SYSTEM}],
        "gen_ai.input.messages": [{"role": "user", "parts": [{"type": "text", "content": QUESTION}]}],
        "gen_ai.output.messages": [
            {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
        ],
    }
    request = log_request(trace_id, span_id, [("gen_ai.client.inference.operation.details", {})], start)
    record = request.resource_logs[0].scope_logs[0].log_records[0]
    record.ClearField("body")
    record.attributes.extend(KeyValue(key=k, value=av(v)) for k, v in details.items())
    with client(server) as http:
        assert post_logs(http, request).status_code == 200
        send_spans(http, [chat_span(trace_id, span_id, start)])
        detail = span_detail(http, trace_id, span_id)
        assert json.loads(detail["input"]) == {"messages": MESSAGES[:2]}
        assert json.loads(detail["output"]) == FINAL
