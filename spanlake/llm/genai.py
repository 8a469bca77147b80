"""OpenTelemetry GenAI: the current JSON attributes and the older message events.

Current (semconv 1.37+, https://opentelemetry.io/docs/specs/semconv/gen-ai/gen-ai-spans/):
`gen_ai.input.messages`, `gen_ai.output.messages`, `gen_ai.system_instructions` and
`gen_ai.tool.definitions`, messages made of typed `parts` (text, tool_call,
tool_call_response, ...). The same attributes may ride on a
`gen_ai.client.inference.operation.details` span event.

Older (1.27 to 1.36): one event per message, `gen_ai.{system,user,assistant,tool}.message` and
`gen_ai.choice`, whose body OpenAI's shape fills; recorded as span events the body's fields are
the event's attributes, or JSON in `gen_ai.event.content`. Older still (1.26):
`gen_ai.content.prompt` / `gen_ai.content.completion` events carrying `gen_ai.prompt` /
`gen_ai.completion` JSON.
"""

from __future__ import annotations

from typing import Any

from spanlake.llm.chat import (
    Chat,
    Message,
    as_text,
    content,
    message,
    openai_message,
    parse_json,
    tool_call,
    tools,
)

INPUT_MESSAGES = "gen_ai.input.messages"
OUTPUT_MESSAGES = "gen_ai.output.messages"
SYSTEM_INSTRUCTIONS = "gen_ai.system_instructions"
TOOL_DEFINITIONS = "gen_ai.tool.definitions"
DETAILS_EVENT = "gen_ai.client.inference.operation.details"
MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
CHOICE_EVENT = "gen_ai.choice"
EVENT_BODY = "gen_ai.event.content"
PROMPT_EVENT, COMPLETION_EVENT = "gen_ai.content.prompt", "gen_ai.content.completion"


def from_attributes(attrs: dict[str, Any]) -> Chat:
    chat = Chat(tools=tools(attrs.get(TOOL_DEFINITIONS)))
    listed = parse_json(attrs.get(INPUT_MESSAGES))
    if isinstance(listed, list):
        for m in listed:
            chat.messages.extend(_messages(m))
    system = parse_json(attrs.get(SYSTEM_INSTRUCTIONS))
    if system is not None:
        parts = system if isinstance(system, list) else [system]
        text = _parts_message("system", parts)
        if text["content"] is not None:
            chat.messages.insert(0, text)
    out = parse_json(attrs.get(OUTPUT_MESSAGES))
    if isinstance(out, list):
        for m in out:
            chat.choices.extend(_messages(m, "assistant"))
    return chat


def _messages(value: Any, default_role: str = "user") -> list[Message]:
    """One GenAI message; a tool message answering several calls becomes one message per call,
    as OpenAI's shape has one `tool_call_id` per message."""
    if not isinstance(value, dict):
        return []
    if "parts" not in value:  # some SDKs write OpenAI's shape under the GenAI key
        single = openai_message(value, default_role)
        return [single] if single else []
    role = value.get("role") or default_role
    parts = value.get("parts") if isinstance(value.get("parts"), list) else []
    responses = [p for p in parts if isinstance(p, dict) and p.get("type") == "tool_call_response"]
    if responses:
        return [message("tool", as_text(p.get("response")), tool_call_id=p.get("id")) for p in responses]
    out = _parts_message(role, parts, name=value.get("name"), finish_reason=value.get("finish_reason"))
    return [out]


def _parts_message(role: str, parts: list[Any], *, name: Any = None, finish_reason: Any = None) -> Message:
    calls = []
    kept = []
    for p in parts:
        if isinstance(p, dict) and p.get("type") == "tool_call":
            calls.append(tool_call(p.get("id"), p.get("name"), p.get("arguments")))
        else:
            kept.append(_part(p))
    body = content(kept) if kept else None
    return message(role, body, name=name, tool_calls=calls, finish_reason=finish_reason)


def _part(part: Any) -> Any:
    """GenAI parts in OpenAI's form where it has one (text, images); others as sent."""
    if not isinstance(part, dict):
        return part
    kind = part.get("type")
    if kind == "text":
        return {"type": "text", "text": as_text(part.get("content"))}
    if kind == "uri" and part.get("modality") == "image":
        return {"type": "image_url", "image_url": {"url": part.get("uri")}}
    if kind == "blob" and part.get("modality") == "image":
        mime = part.get("mime_type") or "image/png"
        return {"type": "image_url", "image_url": {"url": f"data:{mime};base64,{part.get('content')}"}}
    return part


def from_events(events: list[Any]) -> Chat:
    chat = Chat()
    for event in events:
        if not isinstance(event, dict):
            continue
        name = event.get("name")
        attrs = event.get("attributes") if isinstance(event.get("attributes"), dict) else {}
        if name == DETAILS_EVENT:
            details = from_attributes(attrs)
            chat.messages += details.messages
            chat.choices += details.choices
            chat.tools = chat.tools or details.tools
        elif name in MESSAGE_EVENTS:
            body = _body(attrs)
            m = openai_message({**body, "role": body.get("role") or MESSAGE_EVENTS[name]})
            if m is not None:
                chat.messages.append(m)
        elif name == CHOICE_EVENT:
            body = _body(attrs)
            inner = parse_json(body.get("message"))
            m = openai_message(inner if isinstance(inner, dict) else {"content": body.get("content")}, "assistant")
            if m is not None:
                m["role"] = m.get("role") or "assistant"
                if isinstance(body.get("finish_reason"), str):
                    m["finish_reason"] = body["finish_reason"]
                chat.choices.append(m)
        elif name in (PROMPT_EVENT, COMPLETION_EVENT):
            key, target = ("gen_ai.prompt", chat.messages) if name == PROMPT_EVENT else ("gen_ai.completion", chat.choices)
            value = parse_json(attrs.get(key))
            for item in value if isinstance(value, list) else [value] if value is not None else []:
                m = openai_message(item, "user" if name == PROMPT_EVENT else "assistant")
                if m is not None:
                    target.append(m)
    return chat


def _body(attrs: dict[str, Any]) -> dict[str, Any]:
    """An event's body: its attributes, and the JSON object some SDKs put in `gen_ai.event.content`."""
    body = {k: v for k, v in attrs.items() if k != EVENT_BODY}
    packed = parse_json(attrs.get(EVENT_BODY))
    if isinstance(packed, dict):
        body.update(packed)
    elif packed is not None and "content" not in body:
        body["content"] = packed
    return body
