"""A small, realistic set of traces for UI tests: an agent with chat, tool and retrieval spans,
a failed call, and span values carrying HTML and script that the pages must show inert."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

import httpx

from otlp_builders import new_span_id, new_trace_id, request, span

HOSTILE_TEXT = '<script>window.__xss = 1</script><img src=x onerror="window.__xss = 2">'


@dataclass
class SeededTrace:
    trace_id: str
    root_span_id: str
    span_ids: list[str] = field(default_factory=list)
    service: str = "support-agent"


def agent_trace(*, service: str = "support-agent", error: bool = False, slow: bool = False, start_ns: int | None = None, question: str = "How do I reset my password?") -> tuple[SeededTrace, list]:
    trace_id, root = new_trace_id(), new_span_id()
    start = start_ns if start_ns is not None else time.time_ns()
    chat, tool, retrieve = new_span_id(), new_span_id(), new_span_id()
    messages = [
        {"role": "system", "content": "You are a support agent."},
        {"role": "user", "content": question},
    ]
    spans = [
        span(trace_id, root, "agent.run", start_ns=start, duration_ms=2600 if slow else 420, error=error,
             attributes={"input.value": question, "output.value": "Use the reset link.", "openinference.span.kind": "AGENT"}),
        span(trace_id, retrieve, "retrieve docs", parent=root, start_ns=start + 5_000_000, duration_ms=60,
             attributes={"openinference.span.kind": "RETRIEVER", "input.value": question}),
        span(trace_id, chat, "chat gpt-4o", parent=root, start_ns=start + 70_000_000, duration_ms=2400 if slow else 300, error=error,
             attributes={
                 "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o", "gen_ai.operation.name": "chat",
                 "gen_ai.usage.input_tokens": 120, "gen_ai.usage.output_tokens": 42,
                 "gen_ai.prompt.0.role": "system", "gen_ai.prompt.0.content": messages[0]["content"],
                 "gen_ai.prompt.1.role": "user", "gen_ai.prompt.1.content": question,
                 "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": "Use the reset link on the login page.",
                 "gen_ai.completion.0.finish_reason": "stop",
             }),
        span(trace_id, tool, "execute_tool lookup_account", parent=chat, start_ns=start + 120_000_000, duration_ms=25,
             attributes={"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": "lookup_account",
                         "input.value": json.dumps({"email": "a@example.com"}), "output.value": json.dumps({"found": True})}),
    ]
    return SeededTrace(trace_id, root, [root, retrieve, chat, tool], service), spans


def hostile_trace() -> tuple[SeededTrace, list]:
    trace_id, root = new_trace_id(), new_span_id()
    spans = [span(trace_id, root, f"agent {HOSTILE_TEXT}", duration_ms=50,
                  attributes={"input.value": HOSTILE_TEXT, "output.value": HOSTILE_TEXT, "gen_ai.request.model": "gpt-4o-mini"})]
    return SeededTrace(trace_id, root, [root], "hostile-svc"), spans


def send(http_url: str, spans: list, service: str) -> None:
    body = request(spans, service=service).SerializeToString()
    response = httpx.post(f"{http_url}/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}, timeout=10)
    response.raise_for_status()


def seed(http_url: str) -> dict[str, SeededTrace]:
    """Send the set and return it by role: ok, error, slow, other_service, hostile."""
    now = time.time_ns()
    made = {
        "ok": agent_trace(start_ns=now - 50_000_000_000),
        "error": agent_trace(error=True, start_ns=now - 40_000_000_000, question="Why was I charged twice?"),
        "slow": agent_trace(slow=True, start_ns=now - 30_000_000_000, question="Cancel my order"),
        "other_service": agent_trace(service="billing-agent", start_ns=now - 20_000_000_000),
        "hostile": hostile_trace(),
    }
    for trace, spans in made.values():
        send(http_url, spans, trace.service)
    return {role: trace for role, (trace, _) in made.items()}
