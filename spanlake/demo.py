"""Demo traces: a small support agent's runs, as an instrumented app would export them.

Each trace is an agent root span with a retrieval, two chat calls (GenAI attributes, chat
messages, token counts) and a tool call; some calls are slow and some fail, so the trace list,
filters, capture rules and scorers all have something to show.
"""

from __future__ import annotations

import os
import random
import time

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

QUESTIONS = (
    "Where is my order 4412?",
    "Can I return a book I bought last month?",
    "The ebook will not open on my tablet.",
    "Do you ship to Norway?",
    "I was charged twice for one order.",
)
MODELS = ("gpt-4o", "gpt-4o-mini", "claude-3-5-sonnet")


def _kv(key: str, value: object) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=str(value)))


def _span(trace_id: bytes, name: str, start: int, ms: int, attributes: dict, parent: bytes = b"", error: bool = False) -> Span:
    return Span(
        trace_id=trace_id,
        span_id=os.urandom(8),
        parent_span_id=parent,
        name=name,
        kind=Span.SPAN_KIND_INTERNAL if parent else Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start,
        end_time_unix_nano=start + ms * 1_000_000,
        attributes=[_kv(k, v) for k, v in attributes.items()],
        status=Status(code=Status.STATUS_CODE_ERROR if error else Status.STATUS_CODE_UNSET,
                      message="rate limited by the provider" if error else ""),
    )


def _chat(model: str, question: str, answer: str, rng: random.Random) -> dict:
    return {
        "gen_ai.operation.name": "chat",
        "gen_ai.system": "openai" if model.startswith("gpt") else "anthropic",
        "gen_ai.request.model": model,
        "gen_ai.usage.input_tokens": rng.randint(150, 900),
        "gen_ai.usage.output_tokens": rng.randint(20, 250),
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "You are the support assistant of an online bookshop.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": question,
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": answer,
    }


def demo_trace(rng: random.Random, now_ns: int) -> list[Span]:
    trace_id = os.urandom(16)
    question = rng.choice(QUESTIONS)
    model = rng.choice(MODELS)
    start = now_ns - rng.randint(1, 3600) * 1_000_000_000
    slow = rng.random() < 0.2
    failed = rng.random() < 0.15
    root = _span(trace_id, "agent.run support-agent", start, 0, {
        "openinference.span.kind": "AGENT", "input.value": question, "session.id": f"session-{rng.randint(1, 40)}",
        "user.id": f"user-{rng.randint(1, 200)}", "user.feedback": "thumbs_down" if rng.random() < 0.1 else "none",
    })
    at = start + 5_000_000
    children = [_span(trace_id, "retrieve knowledge-base", at, rng.randint(40, 200), {
        "openinference.span.kind": "RETRIEVER", "input.value": question, "retrieval.top_k": 5}, root.span_id)]
    at = children[-1].end_time_unix_nano
    plan_ms = rng.randint(2500, 6000) if slow else rng.randint(300, 1500)
    children.append(_span(trace_id, f"chat {model}", at, plan_ms,
                          _chat(model, question, "I will look the order up.", rng), root.span_id))
    at = children[-1].end_time_unix_nano
    children.append(_span(trace_id, "execute_tool lookup_order", at, rng.randint(20, 150), {
        "gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_order",
        "input.value": '{"order_id": "4412"}', "output.value": '{"status": "shipped"}'}, root.span_id))
    at = children[-1].end_time_unix_nano
    answer = "" if failed else "Your order shipped yesterday and arrives within three days."
    children.append(_span(trace_id, f"chat {model}", at, rng.randint(300, 1200),
                          _chat(model, question, answer, rng), root.span_id, error=failed))
    root.end_time_unix_nano = children[-1].end_time_unix_nano + 2_000_000
    root.attributes.append(_kv("output.value", answer or "Sorry, something went wrong."))
    if failed:
        root.status.code = Status.STATUS_CODE_ERROR
    return [root, *children]


def demo_request(traces: int, seed: int | None = None) -> ExportTraceServiceRequest:
    rng = random.Random(seed)
    now = time.time_ns()
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([_kv("service.name", "support-agent"), _kv("deployment.environment", "demo")])
    scope = resource_spans.scope_spans.add()
    scope.scope.name = "spanlake.demo"
    for _ in range(traces):
        scope.spans.extend(demo_trace(rng, now))
    return request
