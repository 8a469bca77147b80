"""Micro-benchmark of the OTLP decoder, the CPU cost on the ingest hot path.

Prints spans per CPU-second for (a) protobuf ParseFromString alone — the floor any receiver pays,
(b) decode_protobuf and (c) decode_json, on one realistic 100-span request:
10 traces x 10 spans, ~10 attributes each, GenAI prompt/completion text of a few hundred
bytes, token counts, some error spans, events.

    python bench/decode_micro.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
from collections.abc import Callable

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from spanlake.ingest.decode import decode_json, decode_protobuf

PROMPT = (
    "You are a support assistant for an online bookshop. Answer briefly and cite the order "
    "number when relevant. Customer: my order #48213 has not arrived after twelve days, the "
    "tracking page says 'label created' and nothing since. Can you check what happened and "
    "whether I can get a refund or a replacement shipped with express delivery?"
)
COMPLETION = (
    "I'm sorry about the delay with order #48213. The carrier never scanned the parcel, so it "
    "is most likely still at our warehouse. I have requested a replacement with express "
    "delivery at no cost; you will get a new tracking number by email within 24 hours. If you "
    "prefer a refund instead, reply 'refund' and it will be issued to your original payment."
)


def build_request(traces: int = 10, spans_per_trace: int = 10) -> ExportTraceServiceRequest:
    """One export request shaped like an instrumented LLM agent's batch."""
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in (
        ("service.name", "support-agent"),
        ("service.version", "1.4.2"),
        ("deployment.environment", "production"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.name", "opentelemetry"),
    ):
        rs.resource.attributes.add(key=key, value=AnyValue(string_value=value))
    ss = rs.scope_spans.add()
    ss.scope.name = "opentelemetry.instrumentation.openai"
    ss.scope.version = "0.40.0"
    t0 = 1_732_000_000_000_000_000
    for t in range(traces):
        trace_id = (t + 1).to_bytes(16, "big")
        for s in range(spans_per_trace):
            span = ss.spans.add()
            span.trace_id = trace_id
            span.span_id = (t * 100 + s + 1).to_bytes(8, "big")
            if s:
                span.parent_span_id = (t * 100 + 1).to_bytes(8, "big")
            span.start_time_unix_nano = t0 + s * 1_000_000
            span.end_time_unix_nano = t0 + s * 1_000_000 + 850_000_000
            span.kind = 3 if s else 2
            attrs = span.attributes
            if s % 2:  # an LLM call
                span.name = "chat gpt-4o"
                _str(attrs, "gen_ai.operation.name", "chat")
                _str(attrs, "gen_ai.system", "openai")
                _str(attrs, "gen_ai.request.model", "gpt-4o")
                _str(attrs, "gen_ai.response.model", "gpt-4o-2024-08-06")
                attrs.add(key="gen_ai.request.temperature", value=AnyValue(double_value=0.2))
                attrs.add(key="gen_ai.usage.input_tokens", value=AnyValue(int_value=412))
                attrs.add(key="gen_ai.usage.output_tokens", value=AnyValue(int_value=96))
                _str(attrs, "gen_ai.prompt", PROMPT)
                _str(attrs, "gen_ai.completion", COMPLETION)
                _str(attrs, "session.id", f"session-{t}")
            else:  # a tool / chain step
                span.name = "tool lookup_order"
                _str(attrs, "openinference.span.kind", "TOOL")
                _str(attrs, "input.value", '{"order_id": "48213"}')
                _str(attrs, "output.value", '{"status": "label_created", "days": 12}')
                _str(attrs, "tool.name", "lookup_order")
                _str(attrs, "http.method", "GET")
                _str(attrs, "http.url", "https://orders.internal/api/v2/orders/48213")
                attrs.add(key="http.status_code", value=AnyValue(int_value=200))
                attrs.add(key="retry", value=AnyValue(bool_value=False))
                _str(attrs, "user.id", "u-1234")
            if s == 7:
                span.status.code = 2
                span.status.message = "RateLimitError: 429 Too Many Requests"
                event = span.events.add(name="exception", time_unix_nano=t0 + s * 1_000_000)
                _str(event.attributes, "exception.type", "RateLimitError")
                _str(event.attributes, "exception.message", "429 Too Many Requests")
            else:
                span.status.code = 1
    return request


def _str(attrs, key: str, value: str) -> None:
    attrs.add(key=key, value=AnyValue(string_value=value))


def to_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON of a request: proto3 JSON with hex ids and integer enums."""
    doc = json_format.MessageToDict(request, use_integers_for_enums=True)
    for rs in doc.get("resourceSpans", []):
        for ss in rs.get("scopeSpans", []):
            for span in ss.get("spans", []):
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(doc).encode()


def rate(fn: Callable[[], object], spans: int, seconds: float) -> float:
    """Spans per CPU-second of fn(): the best of ~10 rounds filling `seconds`.

    CPU time of this process (the decoder is single-threaded), and the best round, not the
    mean: on a shared machine other processes only ever make a round slower.
    """
    fn()  # warm up
    best = 0.0
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        runs = 0
        start = time.process_time()
        while (elapsed := time.process_time() - start) < seconds / 10:
            fn()
            runs += 1
        best = max(best, runs * spans / elapsed)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    args = parser.parse_args()
    request = build_request()
    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    body = request.SerializeToString()
    json_body = to_otlp_json(request)
    assert decode_protobuf(body).spans.num_rows == spans
    assert decode_json(json_body).spans.num_rows == spans

    def parse_only() -> None:
        ExportTraceServiceRequest().ParseFromString(body)

    print(f"request: {spans} spans, protobuf {len(body)} bytes, JSON {len(json_body)} bytes")
    for label, fn in (
        ("(a) ParseFromString only", parse_only),
        ("(b) decode_protobuf", lambda: decode_protobuf(body)),
        ("(c) decode_json", lambda: decode_json(json_body)),
    ):
        print(f"{label:28s} {rate(fn, spans, args.seconds):>12,.0f} spans/s")


if __name__ == "__main__":
    main()
