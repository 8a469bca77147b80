"""OpenInference (Arize Phoenix): flattened message lists, tool schemas, invocation parameters.

https://github.com/Arize-ai/openinference/blob/main/spec/semantic_conventions.md:
`llm.input_messages.N.message.{role,content,name,tool_call_id}`, content parts under
`message.contents.M.message_content.{type,text,image.image.url}`, tool calls under
`message.tool_calls.M.tool_call.{id,function.name,function.arguments}`; the same for
`llm.output_messages`; `llm.tools.N.tool.json_schema`; `llm.invocation_parameters` (JSON of the
request's parameters: tool_choice, sometimes tools). OpenInference has no finish reason
attribute: it is read from `output.value` when that holds the provider's JSON response.
"""

from __future__ import annotations

from typing import Any

from spanlake.llm.chat import Chat, Lists, Message, content, indexed, message, normalize_tool, parse_json, tool_call, tools

INPUT_PREFIX = "llm.input_messages."
OUTPUT_PREFIX = "llm.output_messages."
TOOLS_PREFIX = "llm.tools."
INVOCATION_PARAMETERS = "llm.invocation_parameters"
OUTPUT_VALUE = "output.value"


def from_attributes(attrs: dict[str, Any], lists: Lists) -> Chat:
    chat = Chat(
        messages=[_message(m) for m in lists.get(INPUT_PREFIX, [])],
        choices=[_message(m, "assistant") for m in lists.get(OUTPUT_PREFIX, [])],
    )
    chat.tools = [t for t in (normalize_tool(g.get("tool.json_schema")) for g in lists.get(TOOLS_PREFIX, [])) if t]
    params = parse_json(attrs.get(INVOCATION_PARAMETERS))
    if isinstance(params, dict):
        chat.tool_choice = params.get("tool_choice")
        chat.tools = chat.tools or tools(params.get("tools"))
    if chat.choices:
        response = parse_json(attrs.get(OUTPUT_VALUE))
        if isinstance(response, dict) and isinstance(response.get("choices"), list):
            for m, choice in zip(chat.choices, response["choices"]):
                if isinstance(choice, dict) and isinstance(choice.get("finish_reason"), str):
                    m.setdefault("finish_reason", choice["finish_reason"])
    return chat


def _message(flat: dict[str, Any], default_role: str = "user") -> Message:
    calls = [
        tool_call(c.get("tool_call.id"), c.get("tool_call.function.name"), c.get("tool_call.function.arguments"))
        for c in indexed(flat, "message.tool_calls.")
    ]
    if not calls and flat.get("message.function_call_name") is not None:
        calls = [tool_call(None, flat["message.function_call_name"], flat.get("message.function_call_arguments_json"))]
    body = content(flat.get("message.content"))
    if body is None:
        parts = [_part(p) for p in indexed(flat, "message.contents.")]
        body = content(parts) if parts else None
    return message(
        flat.get("message.role") or default_role,
        body,
        name=flat.get("message.name"),
        tool_calls=calls,
        tool_call_id=flat.get("message.tool_call_id"),
    )


def _part(flat: dict[str, Any]) -> dict[str, Any]:
    kind = flat.get("message_content.type")
    if kind == "image":
        return {"type": "image_url", "image_url": {"url": flat.get("message_content.image.image.url")}}
    return {"type": "text", "text": flat.get("message_content.text")}
