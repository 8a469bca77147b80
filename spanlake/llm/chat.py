"""The chat model and the normalisers every convention reader shares.

Messages, tool calls and tools take OpenAI's chat-completions shape: it is what fine-tuning
files, most SDKs and most judges already speak, so an item needs no second conversion to be
used. Content is a string when the message holds one text part, else a list of parts: text and
image parts in OpenAI's form, any other part (reasoning, audio, files) kept as it was sent.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

Message = dict[str, Any]


@dataclass
class Chat:
    messages: list[Message] = field(default_factory=list)
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: Any = None
    choices: list[Message] = field(default_factory=list)  # response messages, with finish_reason

    def input_value(self) -> dict[str, Any] | None:
        """What an item's input holds: `{"messages", "tools"?, "tool_choice"?}`, or None."""
        if not self.messages:
            return None
        out: dict[str, Any] = {"messages": self.messages}
        if self.tools:
            out["tools"] = self.tools
        if self.tool_choice is not None:
            out["tool_choice"] = self.tool_choice
        return out

    def output_value(self) -> Message | list[Message] | None:
        """What an item's expected output holds: the response message, a list when there are several."""
        if not self.choices:
            return None
        return self.choices[0] if len(self.choices) == 1 else self.choices


def parse_json(value: Any) -> Any:
    """JSON text of an object or array parsed; anything else as it is (SDKs send both)."""
    if isinstance(value, str) and value.lstrip()[:1] in ("{", "["):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            return value
    return value


def as_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def message(
    role: Any,
    content: Any = None,
    *,
    name: Any = None,
    tool_calls: list[dict[str, Any]] | None = None,
    tool_call_id: Any = None,
    finish_reason: Any = None,
) -> Message:
    out: Message = {"role": role if isinstance(role, str) and role else "user", "content": content}
    if isinstance(name, str) and name:
        out["name"] = name
    if tool_calls:
        out["tool_calls"] = tool_calls
    if tool_call_id is not None:
        out["tool_call_id"] = str(tool_call_id)
    if isinstance(finish_reason, str) and finish_reason:
        out["finish_reason"] = finish_reason
    return out


def tool_call(call_id: Any, name: Any, arguments: Any) -> dict[str, Any]:
    """A function call; arguments become JSON text, as OpenAI sends and expects them."""
    if arguments is None:
        arguments = "{}"
    return {
        "id": None if call_id is None else str(call_id),
        "type": "function",
        "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else as_text(arguments)},
    }


def normalize_tool_call(value: Any) -> dict[str, Any] | None:
    """OpenAI's `{"id", "function": {"name", "arguments"}}` or a flat `{"id", "name", "arguments"}`."""
    value = parse_json(value)
    if not isinstance(value, dict):
        return None
    fn = parse_json(value.get("function"))
    if isinstance(fn, dict):
        return tool_call(value.get("id"), fn.get("name"), fn.get("arguments"))
    if value.get("name") is not None:
        return tool_call(value.get("id"), value.get("name"), value.get("arguments"))
    return None


def tool_calls(value: Any) -> list[dict[str, Any]]:
    value = parse_json(value)
    if not isinstance(value, list):
        return []
    return [call for call in map(normalize_tool_call, value) if call is not None]


def function_tool(name: Any, description: Any = None, parameters: Any = None) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    if description is not None:
        fn["description"] = description
    parameters = parse_json(parameters)
    if parameters is not None:
        fn["parameters"] = parameters
    return {"type": "function", "function": fn}


def normalize_tool(value: Any) -> dict[str, Any] | None:
    """OpenAI's `{"type": "function", "function": {...}}` or GenAI's flat `{"type", "name", ...}`."""
    value = parse_json(value)
    if not isinstance(value, dict):
        return None
    fn = value.get("function")
    if isinstance(fn, dict) and fn.get("name") is not None:
        return function_tool(fn["name"], fn.get("description"), fn.get("parameters"))
    if value.get("name") is not None:
        return function_tool(value["name"], value.get("description"), value.get("parameters"))
    return None


def tools(value: Any) -> list[dict[str, Any]]:
    value = parse_json(value)
    if not isinstance(value, list):
        return []
    return [tool for tool in map(normalize_tool, value) if tool is not None]


def content(value: Any) -> Any:
    """Message content: text stays text; a list of parts keeps its parts, one text part becomes text."""
    value = parse_json(value)
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [_openai_part(p) for p in value]
        if len(parts) == 1 and parts[0].get("type") == "text":
            return parts[0]["text"]
        return parts
    return as_text(value)


def _openai_part(part: Any) -> dict[str, Any]:
    if isinstance(part, str):
        return {"type": "text", "text": part}
    if not isinstance(part, dict):
        return {"type": "text", "text": as_text(part)}
    if part.get("type") == "text" and "text" not in part and "content" in part:
        return {"type": "text", "text": as_text(part["content"])}  # a GenAI text part
    return part


def openai_message(value: Any, default_role: str = "user") -> Message | None:
    """A message some SDK recorded in OpenAI's own shape (JSON attributes, event bodies, raw requests)."""
    value = parse_json(value)
    if isinstance(value, str):
        return message(default_role, value)
    if not isinstance(value, dict):
        return None
    calls = tool_calls(value.get("tool_calls"))
    fn = parse_json(value.get("function_call"))
    if not calls and isinstance(fn, dict) and fn.get("name") is not None:
        calls = [tool_call(None, fn["name"], fn.get("arguments"))]
    return message(
        value.get("role") or default_role,
        content(value.get("content")),
        name=value.get("name"),
        tool_calls=calls,
        tool_call_id=value.get("tool_call_id", value.get("id") if value.get("role", default_role) == "tool" else None),
        finish_reason=value.get("finish_reason"),
    )


_FIRST_INDEX = re.compile(r"((?:[^.]*\.)*?)(\d+)\.(.+)\Z", re.DOTALL)

Lists = dict[str, list[dict[str, Any]]]


def flattened_lists(attrs: dict[str, Any]) -> Lists:
    """Every flattened list of a span (`<prefix>N.<rest>`, cut at the first numeric segment) as
    `prefix -> [{rest: value} per N, in index order]`, in one pass over the keys.

    A scan, not a walk of N = 0, 1, ...: a gap in the numbering (a message an SDK skipped) must
    not hide the messages after it. Built once per span and shared by every reader.
    """
    groups: dict[str, dict[int, dict[str, Any]]] = {}
    for key, value in attrs.items():
        if "." not in key:
            continue
        match = _FIRST_INDEX.match(key)
        if match is None:
            continue
        prefix, index, rest = match.groups()
        groups.setdefault(prefix, {}).setdefault(int(index), {})[rest] = value
    return {prefix: [by_index[n] for n in sorted(by_index)] for prefix, by_index in groups.items()}


def indexed(flat: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    """The list under `prefix` of one flattened object (a message's tool calls, its parts)."""
    return flattened_lists(flat).get(prefix, [])
