"""LLM spans shaped as each instrumentation really records one chat call with a tool round trip.

The call: a system prompt, a user question, the assistant's `get_weather` call, the tool's
answer, and the model's final turn. Each case gives the span's attributes and span events as
the named SDK sets them, and the item spanlake must capture from it: the same chat whatever
the convention. Shapes follow each project's own tests and semantic-convention docs
(opentelemetry-instrumentation-openai-v2 and the GenAI semconv, openinference-instrumentation-
openai, traceloop's opentelemetry-instrumentation-openai).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

SYSTEM = "You answer weather questions."
QUESTION = "What is the weather in Paris?"
ARGS = '{"city": "Paris"}'
TOOL_ANSWER = "rainy, 12C"
ANSWER = "It is rainy in Paris, 12C."
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TOOL = {"type": "function", "function": {"name": "get_weather", "description": "Current weather", "parameters": PARAMETERS}}

CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ARGS}}
MESSAGES = [
    {"role": "system", "content": SYSTEM},
    {"role": "user", "content": QUESTION},
    {"role": "assistant", "content": None, "tool_calls": [CALL]},
    {"role": "tool", "content": TOOL_ANSWER, "tool_call_id": "call_1"},
]
FINAL = {"role": "assistant", "content": ANSWER, "finish_reason": "stop"}


@dataclass
class Case:
    name: str
    attributes: dict[str, Any]
    events: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    input: Any = None
    output: Any = None


GENAI_CURRENT = Case(
    "genai-current",
    {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.finish_reasons": ["stop"],
        "gen_ai.usage.input_tokens": 80,
        "gen_ai.usage.output_tokens": 12,
        "gen_ai.system_instructions": json.dumps([{"type": "text", "content": SYSTEM}]),
        "gen_ai.input.messages": json.dumps([
            {"role": "user", "parts": [{"type": "text", "content": QUESTION}]},
            {"role": "assistant", "parts": [
                {"type": "tool_call", "id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}
            ]},
            {"role": "tool", "parts": [{"type": "tool_call_response", "id": "call_1", "response": TOOL_ANSWER}]},
        ]),
        "gen_ai.output.messages": json.dumps([
            {"role": "assistant", "parts": [{"type": "text", "content": ANSWER}], "finish_reason": "stop"}
        ]),
        "gen_ai.tool.definitions": json.dumps([
            {"type": "function", "name": "get_weather", "description": "Current weather", "parameters": PARAMETERS}
        ]),
    },
    input={"messages": [*MESSAGES[:2], {**MESSAGES[2], "tool_calls": [{**CALL, "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}]}, MESSAGES[3]], "tools": [TOOL]},
    output=FINAL,
)

# The 1.28-1.36 message events, recorded on the span: the body in `gen_ai.event.content`.
GENAI_EVENTS = Case(
    "genai-events",
    {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"},
    events=[
        ("gen_ai.system.message", {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps({"content": SYSTEM})}),
        ("gen_ai.user.message", {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps({"content": QUESTION})}),
        ("gen_ai.assistant.message", {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps({"tool_calls": [CALL]})}),
        ("gen_ai.tool.message", {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps({"content": TOOL_ANSWER, "id": "call_1"})}),
        ("gen_ai.choice", {"gen_ai.system": "openai", "gen_ai.event.content": json.dumps(
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}
        )}),
    ],
    input={"messages": MESSAGES},
    output=FINAL,
)

# The same events with the body's fields as the event's own attributes.
GENAI_EVENTS_FLAT = Case(
    "genai-events-flat",
    {"gen_ai.operation.name": "chat", "gen_ai.system": "openai", "gen_ai.request.model": "gpt-4o-mini"},
    events=[
        ("gen_ai.system.message", {"content": SYSTEM}),
        ("gen_ai.user.message", {"content": QUESTION}),
        ("gen_ai.assistant.message", {"tool_calls": json.dumps([CALL])}),
        ("gen_ai.tool.message", {"content": TOOL_ANSWER, "id": "call_1"}),
        ("gen_ai.choice", {"index": 0, "finish_reason": "stop", "message": json.dumps({"content": ANSWER})}),
    ],
    input={"messages": MESSAGES},
    output=FINAL,
)

_REQUEST = {"messages": MESSAGES, "model": "gpt-4o-mini", "tools": [TOOL], "tool_choice": "auto"}
_RESPONSE = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": ANSWER}}],
}
OPENINFERENCE = Case(
    "openinference",
    {
        "openinference.span.kind": "LLM",
        "llm.provider": "openai",
        "llm.system": "openai",
        "llm.model_name": "gpt-4o-mini-2024-07-18",
        "input.value": json.dumps(_REQUEST),
        "input.mime_type": "application/json",
        "output.value": json.dumps(_RESPONSE),
        "output.mime_type": "application/json",
        "llm.invocation_parameters": json.dumps({"model": "gpt-4o-mini", "tool_choice": "auto"}),
        "llm.input_messages.0.message.role": "system",
        "llm.input_messages.0.message.content": SYSTEM,
        "llm.input_messages.1.message.role": "user",
        "llm.input_messages.1.message.content": QUESTION,
        "llm.input_messages.2.message.role": "assistant",
        "llm.input_messages.2.message.tool_calls.0.tool_call.id": "call_1",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.name": "get_weather",
        "llm.input_messages.2.message.tool_calls.0.tool_call.function.arguments": ARGS,
        "llm.input_messages.3.message.role": "tool",
        "llm.input_messages.3.message.content": TOOL_ANSWER,
        "llm.input_messages.3.message.tool_call_id": "call_1",
        "llm.output_messages.0.message.role": "assistant",
        "llm.output_messages.0.message.content": ANSWER,
        "llm.tools.0.tool.json_schema": json.dumps(TOOL),
        "llm.token_count.prompt": 80,
        "llm.token_count.completion": 12,
        "llm.token_count.total": 92,
    },
    input={"messages": MESSAGES, "tools": [TOOL], "tool_choice": "auto"},
    output=FINAL,
)

OPENLLMETRY = Case(
    "openllmetry",
    {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.response.model": "gpt-4o-mini-2024-07-18",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": SYSTEM,
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": QUESTION,
        "gen_ai.prompt.2.role": "assistant",
        "gen_ai.prompt.2.tool_calls.0.id": "call_1",
        "gen_ai.prompt.2.tool_calls.0.name": "get_weather",
        "gen_ai.prompt.2.tool_calls.0.arguments": ARGS,
        "gen_ai.prompt.3.role": "tool",
        "gen_ai.prompt.3.content": TOOL_ANSWER,
        "gen_ai.prompt.3.tool_call_id": "call_1",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": ANSWER,
        "llm.request.functions.0.name": "get_weather",
        "llm.request.functions.0.description": "Current weather",
        "llm.request.functions.0.parameters": json.dumps(PARAMETERS),
        "gen_ai.usage.prompt_tokens": 80,
        "gen_ai.usage.completion_tokens": 12,
        "llm.usage.total_tokens": 92,
    },
    input={"messages": MESSAGES, "tools": [TOOL]},
    output=FINAL,
)

# The issue's own span: OpenLLMetry's record of a reply that is only a tool call.
OPENLLMETRY_TOOL_CALL = Case(
    "openllmetry-tool-call",
    {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o-mini",
        "gen_ai.prompt.0.role": "user",
        "gen_ai.prompt.0.content": QUESTION,
        "gen_ai.completion.0.finish_reason": "tool_calls",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.tool_calls.0.id": "call_1",
        "gen_ai.completion.0.tool_calls.0.name": "get_weather",
        "gen_ai.completion.0.tool_calls.0.arguments": ARGS,
        "llm.request.functions.0.name": "get_weather",
        "llm.request.functions.0.description": "Current weather",
        "llm.request.functions.0.parameters": json.dumps(PARAMETERS),
    },
    input={"messages": [MESSAGES[1]], "tools": [TOOL]},
    output={"role": "assistant", "content": None, "tool_calls": [CALL], "finish_reason": "tool_calls"},
)

CASES = [GENAI_CURRENT, GENAI_EVENTS, GENAI_EVENTS_FLAT, OPENINFERENCE, OPENLLMETRY, OPENLLMETRY_TOOL_CALL]
