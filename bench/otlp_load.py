"""Pre-serialized OTLP export requests shaped like an instrumented LLM agent's batches.

A request holds 10 traces of 10 spans (agent root, retriever, embedding, chat calls, tool
calls, a guardrail), ~10 attributes a span, prompt/completion text of a few hundred bytes and
a rate-limit error with an exception event in every fourth trace.

The load generator must not compete with the server for the CPU, so every request is built
with protobuf once, before the clock starts, as a *template*: serialized bytes in which the
trace ids and the high 32 bits of every fixed64 timestamp are `%(key)b` placeholders.
Rendering one (`Template.render`) is a single C-level `bytes % dict` call (~20 us), which
gives every sent request fresh random trace ids and current timestamps: the server's dedup
keeps them all and its time-range dedup scan sees realistic, advancing times. Span ids, text
and the low 32 bits of the timestamps differ between templates, so a pool larger than a
DuckDB row group (122,880 rows, ~1,230 requests) keeps bytes-on-disk honest.
"""

from __future__ import annotations

import os
import random
import re
import struct
import time
from dataclasses import dataclass

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, ArrayValue, KeyValue

TRACES_PER_REQUEST = 10
SPANS_PER_TRACE = 10
SPANS_PER_REQUEST = TRACES_PER_REQUEST * SPANS_PER_TRACE

# Marker high word of every template timestamp; rendering swaps it for the current one.
# Timestamps are (high << 32 | low) with low < 2**32, so a span's times may carry into high+1.
_MARK_HIGH = 0x0BADF00D
_SYLLABLES = (
    "ka ri to ne su ma lo pe vi da gu shi ren tor bel fa mon cal der ix or an et ul "
    "pre con tra sta ble ment ing er ly qu ack ord ship fund rep ly deli ver tra ck"
).split()
_MODELS = (
    ("openai", "gpt-4o", "gpt-4o-2024-08-06"),
    ("openai", "gpt-4o-mini", "gpt-4o-mini-2024-07-18"),
    ("anthropic", "claude-3-5-sonnet", "claude-3-5-sonnet-20241022"),
)
_SYSTEM_PROMPT = (
    "You are a support assistant for an online bookshop. Answer briefly, cite the order number "
    "when relevant, and never promise refunds above the order value. "
)


class _Text:
    """Pseudo-English text from a seeded vocabulary: varied like real prompts, never repeated."""

    def __init__(self, rng: random.Random):
        self._rng = rng
        self._words = [
            "".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(1, 3))) for _ in range(3000)
        ]

    def __call__(self, approx_bytes: int) -> str:
        # Words average ~6 bytes with their space.
        return " ".join(self._rng.choices(self._words, k=max(1, approx_bytes // 6))).capitalize() + "."


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    if isinstance(value, float):
        return KeyValue(key=key, value=AnyValue(double_value=value))
    if isinstance(value, list):
        return KeyValue(key=key, value=AnyValue(array_value=ArrayValue(values=[AnyValue(string_value=v) for v in value])))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


@dataclass(frozen=True)
class Template:
    """One serialized request with placeholders for trace ids (t0..t9) and timestamp highs (h0, h1)."""

    fmt: bytes
    spans: int

    def render(self, trace_ids: bytes, high: int) -> bytes:
        """`trace_ids`: 16 bytes per trace; `high`: the current time_ns() >> 32."""
        values = {b"t%d" % i: trace_ids[16 * i : 16 * i + 16] for i in range(TRACES_PER_REQUEST)}
        values[b"h0"] = struct.pack("<I", high)
        values[b"h1"] = struct.pack("<I", high + 1)
        return self.fmt % values

    def render_now(self) -> bytes:
        return self.render(os.urandom(16 * TRACES_PER_REQUEST), time.time_ns() >> 32)


def _span_specs(rng: random.Random, text: _Text, trace: int) -> list[tuple[str, int, int, dict, bool]]:
    """(name, kind, duration_ns, attributes, error) for the 10 spans of one trace, root first."""
    system, model, response_model = rng.choice(_MODELS)
    session = f"session-{rng.getrandbits(40):010x}"
    user = f"user-{rng.randint(1, 50_000)}"
    ms = 1_000_000

    def chat(prompt: str) -> dict:
        return {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": system,
            "gen_ai.request.model": model,
            "gen_ai.response.model": response_model,
            "gen_ai.request.temperature": 0.2,
            "gen_ai.request.max_tokens": 1024,
            "gen_ai.usage.input_tokens": rng.randint(200, 2000),
            "gen_ai.usage.output_tokens": rng.randint(20, 400),
            "gen_ai.prompt": prompt,
            "gen_ai.completion": text(rng.randint(200, 400)),
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.response.id": f"chatcmpl-{rng.getrandbits(96):024x}",
        }

    def tool(name: str) -> dict:
        return {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": name,
            "gen_ai.tool.call.id": f"call_{rng.getrandbits(64):016x}",
            "input.value": f'{{"order_id": "{rng.randint(10000, 99999)}"}}',
            "output.value": '{"status": "label_created", "note": "' + text(rng.randint(60, 160)) + '"}',
            "http.request.method": "GET",
            "url.full": f"https://orders.internal/api/v2/orders/{rng.randint(10000, 99999)}",
            "http.response.status_code": 200,
            "retry": False,
        }

    question = text(rng.randint(120, 260))
    error = trace % 4 == 0
    return [
        ("agent.run support-agent", 2, 0, {
            "openinference.span.kind": "AGENT",
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support-agent",
            "input.value": question,
            "output.value": text(rng.randint(200, 360)),
            "session.id": session,
            "user.id": user,
            "http.route": "/v1/chat",
            "http.request.method": "POST",
            "http.response.status_code": 200,
        }, False),
        ("retrieve knowledge-base", 1, rng.randint(60, 200) * ms, {
            "openinference.span.kind": "RETRIEVER",
            "input.value": question[:80],
            "retrieval.top_k": 5,
            "db.system": "pgvector",
            "db.collection.name": "kb_articles",
            "retrieval.documents.0.document.content": text(rng.randint(200, 400)),
            "retrieval.documents.0.document.score": round(rng.random(), 4),
            "embedding.model_name": "text-embedding-3-small",
            "session.id": session,
            "user.id": user,
        }, False),
        ("embeddings text-embedding-3-small", 3, rng.randint(30, 150) * ms, {
            "gen_ai.operation.name": "embeddings",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "text-embedding-3-small",
            "gen_ai.usage.input_tokens": rng.randint(10, 120),
            "gen_ai.embeddings.dimension.count": 1536,
            "server.address": "api.openai.com",
            "server.port": 443,
            "http.response.status_code": 200,
            "session.id": session,
            "user.id": user,
        }, False),
        (f"chat {model}", 3, rng.randint(200, 900) * ms, chat(_SYSTEM_PROMPT + question), False),
        ("execute_tool lookup_order", 1, rng.randint(20, 200) * ms, tool("lookup_order"), False),
        (f"chat {model}", 3, rng.randint(200, 900) * ms, chat(_SYSTEM_PROMPT + text(rng.randint(150, 300))), False),
        ("execute_tool create_replacement", 1, rng.randint(20, 200) * ms, tool("create_replacement"), False),
        (f"chat {model}", 3, rng.randint(100, 900) * ms, chat(_SYSTEM_PROMPT + text(rng.randint(150, 300))), error),
        ("guardrail moderation", 1, rng.randint(20, 120) * ms, {
            "openinference.span.kind": "GUARDRAIL",
            "guardrail.name": "moderation",
            "guardrail.passed": True,
            "input.value": text(rng.randint(80, 200)),
            "gen_ai.system": "openai",
            "gen_ai.request.model": "omni-moderation-latest",
            "session.id": session,
            "user.id": user,
        }, False),
        (f"chat {model}", 3, rng.randint(200, 900) * ms, chat(_SYSTEM_PROMPT + text(rng.randint(150, 300))), False),
    ]


def _build_request(rng: random.Random, text: _Text) -> tuple[ExportTraceServiceRequest, list[bytes], list[int]]:
    """One request with marker trace ids and marker-high timestamps; returns (request, ids, times)."""
    marker = os.urandom(12)
    trace_ids = [marker + struct.pack(">I", t) for t in range(TRACES_PER_REQUEST)]
    times: list[int] = []
    request = ExportTraceServiceRequest()
    rs = request.resource_spans.add()
    for key, value in (
        ("service.name", "support-agent"),
        ("service.version", "1.4.2"),
        ("deployment.environment", "production"),
        ("host.name", f"agent-{rng.randint(1, 12)}"),
        ("telemetry.sdk.language", "python"),
        ("telemetry.sdk.name", "opentelemetry"),
        ("telemetry.sdk.version", "1.27.0"),
    ):
        rs.resource.attributes.append(_kv(key, value))
    agent_scope = rs.scope_spans.add()
    agent_scope.scope.name = "openinference.instrumentation.langchain"
    agent_scope.scope.version = "0.1.29"
    llm_scope = rs.scope_spans.add()
    llm_scope.scope.name = "opentelemetry.instrumentation.openai"
    llm_scope.scope.version = "0.33.0"
    for t, trace_id in enumerate(trace_ids):
        specs = _span_specs(rng, text, t)
        root_id = os.urandom(8)
        start = (_MARK_HIGH << 32) + rng.randrange(0, 2**31)
        cursor = start + rng.randint(1, 5) * 1_000_000
        spans = []
        for index, (name, kind, duration, attributes, error) in enumerate(specs):
            span = (agent_scope if kind != 3 else llm_scope).spans.add()
            span.trace_id = trace_id
            span.span_id = root_id if index == 0 else os.urandom(8)
            span.name = name
            span.kind = kind
            if index:
                span.parent_span_id = root_id
                span.start_time_unix_nano = cursor
                span.end_time_unix_nano = cursor + duration
                cursor += duration + rng.randint(1, 20) * 1_000_000
            span.attributes.extend(_kv(k, v) for k, v in attributes.items())
            if error:
                span.status.code = 2
                span.status.message = "RateLimitError: 429 Too Many Requests"
                event = span.events.add(name="exception", time_unix_nano=span.end_time_unix_nano)
                event.attributes.extend([
                    _kv("exception.type", "openai.RateLimitError"),
                    _kv("exception.message", "Error code: 429 - Rate limit reached for requests"),
                    _kv("exception.stacktrace", "Traceback (most recent call last):\n" + "  File x.py\n" * 12),
                ])
                times.append(span.end_time_unix_nano)
            else:
                span.status.code = 1 if index == 0 else 0
            spans.append(span)
        spans[0].start_time_unix_nano = start
        spans[0].end_time_unix_nano = cursor
        times.extend(t for s in spans for t in (s.start_time_unix_nano, s.end_time_unix_nano))
    return request, trace_ids, times


def build_template(rng: random.Random, text: _Text) -> Template:
    request, trace_ids, times = _build_request(rng, text)
    body = request.SerializeToString()
    holes: dict[int, tuple[int, bytes]] = {}  # offset -> (length, placeholder key)
    index_of = {trace_id: index for index, trace_id in enumerate(trace_ids)}
    for match in re.finditer(re.escape(trace_ids[0][:12]) + b"....", body, re.DOTALL):
        holes[match.start()] = (16, b"t%d" % index_of[match.group()])
    wanted = set(times)
    high_words = b"[" + re.escape(struct.pack("<I", _MARK_HIGH)[:1] + struct.pack("<I", _MARK_HIGH + 1)[:1]) + b"]"
    pattern = b"(?=(....)" + high_words + re.escape(struct.pack("<I", _MARK_HIGH)[1:]) + b")"
    for match in re.finditer(pattern, body, re.DOTALL):
        value = struct.unpack_from("<Q", body, match.start())[0]
        if value in wanted:  # a real timestamp, not the same bytes inside a random span id
            holes[match.start() + 4] = (4, b"h%d" % ((value >> 32) - _MARK_HIGH))
    parts = []
    position = 0
    for offset in sorted(holes):
        length, key = holes[offset]
        parts.append(body[position:offset].replace(b"%", b"%%"))
        parts.append(b"%(" + key + b")b")
        position = offset + length
    parts.append(body[position:].replace(b"%", b"%%"))
    spans = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
    template = Template(b"".join(parts), spans)
    _check(template, len(trace_ids) * SPANS_PER_TRACE)
    return template


def _check(template: Template, spans: int) -> None:
    """Render once and parse: every id and time must have been found and replaced."""
    high = time.time_ns() >> 32
    ids = os.urandom(16 * TRACES_PER_REQUEST)
    request = ExportTraceServiceRequest.FromString(template.render(ids, high))
    seen = [s for rs in request.resource_spans for ss in rs.scope_spans for s in ss.spans]
    if len(seen) != spans or template.spans != spans:
        raise AssertionError(f"template has {len(seen)} spans, expected {spans}")
    wanted = {ids[i : i + 16] for i in range(0, len(ids), 16)}
    for span in seen:
        if span.trace_id not in wanted:
            raise AssertionError("a trace id was not replaced in the template")
        for t in (span.start_time_unix_nano, span.end_time_unix_nano, *(e.time_unix_nano for e in span.events)):
            if t >> 32 not in (high, high + 1):
                raise AssertionError(f"a timestamp was not replaced in the template: {t:#x}")


def build_pool(size: int, seed: int = 2) -> list[Template]:
    """`size` distinct templates; deterministic text for a given seed (ids are random)."""
    rng = random.Random(seed)
    text = _Text(rng)
    return [build_template(rng, text) for _ in range(size)]


if __name__ == "__main__":
    started = time.perf_counter()
    pool = build_pool(32)
    built = time.perf_counter() - started
    sizes = [len(t.render_now()) for t in pool]
    started = time.perf_counter()
    for _ in range(50):
        for t in pool:
            t.render_now()
    per = (time.perf_counter() - started) / (50 * len(pool))
    print(f"{len(pool)} templates in {built:.2f}s; {SPANS_PER_REQUEST} spans, "
          f"{min(sizes)}-{max(sizes)} bytes a request; render {per * 1e6:.1f} us")
