"""A span's input and output as chat messages for the span detail, or as plain values.

The one entry point is `span_chat(span)`. Messages come out in OpenAI's chat shape
(`{"role", "content", "tool_calls"?: [{"id", "function": {"name", "arguments"}}],
"tool_call_id"?, "finish_reason"?}`). The span's attributes and events go through
`spanlake.llm.chat_from_span`, the same chat model captured items are made from, so the detail
shows what "Add to dataset" would keep; spans no convention recognises fall back to the stored
`input`/`output` columns (JSON text of a message list, OpenAI request/response JSON, or text).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from spanlake.llm.from_span import chat_from_span

Message = dict[str, Any]


@dataclass
class SpanChat:
    messages: list[Message] = field(default_factory=list)  # the request's conversation
    choices: list[Message] = field(default_factory=list)  # the response message(s)
    tools: list[Any] = field(default_factory=list)


def span_chat(span: dict[str, Any]) -> SpanChat:
    """Messages parsed from the span's input and output; empty lists when they are not chat."""
    attributes, events = span.get("attributes"), span.get("events")
    if isinstance(attributes, dict):
        model = chat_from_span(attributes, events if isinstance(events, list) else [])
        if model is not None:
            return SpanChat(messages=model.messages, choices=model.choices, tools=model.tools)
    chat = SpanChat()
    request = _parse(span.get("input"))
    if isinstance(request, dict) and isinstance(request.get("messages"), list):
        chat.tools = request.get("tools") if isinstance(request.get("tools"), list) else []
        request = request["messages"]
    chat.messages = _messages(request, "user")
    response = _parse(span.get("output"))
    if isinstance(response, dict) and isinstance(response.get("choices"), list):
        response = [
            {**c["message"], "finish_reason": c.get("finish_reason")}
            for c in response["choices"]
            if isinstance(c, dict) and isinstance(c.get("message"), dict)
        ]
    elif isinstance(response, dict) and "role" in response:
        response = [response]
    chat.choices = _messages(response, "assistant")
    return chat


def _parse(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _messages(value: Any, default_role: str) -> list[Message]:
    """A list of role-carrying objects as messages; anything else is not a conversation."""
    if not isinstance(value, list) or not value or not all(isinstance(m, dict) and "role" in m for m in value):
        return []
    return [_message(m, default_role) for m in value]


def _message(raw: dict[str, Any], default_role: str) -> Message:
    role = raw.get("role") if isinstance(raw.get("role"), str) and raw.get("role") else default_role
    out: Message = {"role": role, "content": _parse(raw.get("content"))}
    listed = _parse(raw.get("tool_calls"))
    calls = [c for c in map(_tool_call, listed if isinstance(listed, list) else []) if c is not None]
    if isinstance(raw.get("parts"), list):  # GenAI: text, tool_call and tool_call_response parts
        texts = []
        for part in raw["parts"]:
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "tool_call":
                calls.append(_call(part.get("id"), part.get("name"), part.get("arguments")))
            elif kind == "tool_call_response":
                out["tool_call_id"] = part.get("id")
                texts.append(part.get("response") if isinstance(part.get("response"), str) else _json(part.get("response")))
            elif "content" in part:
                texts.append(part["content"] if isinstance(part["content"], str) else _json(part["content"]))
        out["content"] = "\n".join(t for t in texts if t) if texts else out["content"]
    if calls:
        out["tool_calls"] = calls
    for key in ("tool_call_id", "name", "finish_reason"):
        if raw.get(key) is not None:
            out[key] = raw[key]
    return out


def _tool_call(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    fn = _parse(value.get("function"))
    if isinstance(fn, dict):
        return _call(value.get("id"), fn.get("name"), fn.get("arguments"))
    if value.get("name") is not None:
        return _call(value.get("id"), value.get("name"), value.get("arguments"))
    return None


def _call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    args = arguments if isinstance(arguments, str) or arguments is None else _json(arguments)
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": args}}


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)
