"""Items as OpenAI chat fine-tuning examples, function calling included.

One line per item: `{"messages": [...], "tools"?: [...]}`
(https://platform.openai.com/docs/guides/fine-tuning, chat and function-calling formats).
The prompt comes from the input, the assistant turn the model learns from the expected output:
- input: a string is one user message; a captured chat `{"messages", "tools"?, "tool_choice"?}`
  (or any object with `messages` and an optional `system` text) gives its messages and tools;
  a list of messages is kept; anything else is one user message holding its JSON text;
- expected output: a string is the assistant's text; a message (with `tool_calls`) is kept; a
  list of response messages that all carry `finish_reason` holds alternative choices and the
  first is taught; any other list of messages is kept in order; anything else becomes JSON text.
Keys the format does not take are left out (`finish_reason`; `tool_choice`, which fine-tuning
has no place for). An item that still cannot make a valid example is skipped with a reason
(`Unusable`): the format's checks are below, one message per rule.
"""

from __future__ import annotations

import json
import re
from typing import Any

ROLES = ("system", "user", "assistant", "tool")
MESSAGE_KEYS = ("role", "content", "name", "tool_calls", "tool_call_id", "weight")
NAME = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")


class Unusable(ValueError):
    """Why an item makes no valid fine-tuning example."""


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and isinstance(value.get("role"), str) and (
        "content" in value or "tool_calls" in value
    )


def _messages(value: Any) -> list[dict[str, Any]] | None:
    if isinstance(value, list) and value and all(_is_message(m) for m in value):
        return list(value)
    return None


def _as_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def prompt(value: Any) -> tuple[list[dict[str, Any]], Any]:
    """(messages, tools or None) of an item's input."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}], None
    listed = _messages(value)
    if listed is not None:
        return listed, None
    if isinstance(value, dict):
        inner = _messages(value.get("messages"))
        if inner is not None:
            system = value.get("system")
            if isinstance(system, str) and system and not any(m["role"] == "system" for m in inner):
                inner = [{"role": "system", "content": system}, *inner]
            return inner, value.get("tools")
        if _is_message(value):
            return [value], None
    return [{"role": "user", "content": _as_text(value)}], None


def completion(value: Any) -> list[dict[str, Any]]:
    listed = _messages(value)
    if listed is not None:
        if len(listed) > 1 and all("finish_reason" in m for m in listed):
            return listed[:1]  # alternative choices of one response: teach the first
        return listed
    if _is_message(value):
        return [value]
    if isinstance(value, dict):
        inner = _messages(value.get("messages"))
        if inner is not None:
            return inner
    return [{"role": "assistant", "content": _as_text(value)}]


def _clean(message: dict[str, Any]) -> dict[str, Any]:
    out = {k: message[k] for k in MESSAGE_KEYS if k in message}
    if out.get("tool_calls") == []:
        del out["tool_calls"]  # an empty list says nothing, and the format wants none or some
    if out.get("content") is None and out.get("tool_calls"):
        out.pop("content", None)  # a call-only assistant turn: the format leaves content out
    return out


def example(input_value: Any, expected_output: Any) -> dict[str, Any]:
    """The fine-tuning example for one item; raises Unusable with the reason it has none."""
    if input_value is None:
        raise Unusable("the item has no input")
    if expected_output is None:
        raise Unusable("the item has no expected output to learn from")
    messages, tools = prompt(input_value)
    row: dict[str, Any] = {"messages": [_clean(m) for m in [*messages, *completion(expected_output)]]}
    if tools:
        row["tools"] = tools
    check(row)
    return row


def check(row: dict[str, Any]) -> None:
    """Raise Unusable naming the first rule of the format the row breaks."""
    called: set[str] = set()
    messages = row["messages"]
    for n, m in enumerate(messages):
        where = f"message {n} ({m.get('role')!r})"
        role = m.get("role")
        if role not in ROLES:
            raise Unusable(f"message {n} has role {role!r}; fine-tuning takes {', '.join(ROLES)}")
        if "name" in m and not (isinstance(m["name"], str) and NAME.match(m["name"])):
            raise Unusable(f"{where}: name must be 1-64 letters, digits, '_' or '-'")
        if "weight" in m and (role != "assistant" or m["weight"] not in (0, 1) or isinstance(m["weight"], bool)):
            raise Unusable(f"{where}: weight is 0 or 1, on assistant messages only")
        content = m.get("content")
        if role == "assistant":
            if "tool_calls" in m:
                called |= _check_calls(m["tool_calls"], where)
            if "content" in m and not isinstance(content, str):
                raise Unusable(f"{where}: an assistant's content must be text")
            if "content" not in m and "tool_calls" not in m:
                raise Unusable(f"{where} has neither content nor tool_calls")
        elif role == "user":
            if not (isinstance(content, str) or _user_parts(content)):
                raise Unusable(f"{where}: content must be text, or a list of text and image_url parts")
        elif not isinstance(content, str):
            raise Unusable(f"{where}: content must be text")
        if role == "tool" and m.get("tool_call_id") not in called:
            raise Unusable(f"{where}: tool_call_id {m.get('tool_call_id')!r} answers no earlier assistant tool call")
        if role != "tool" and "tool_call_id" in m:
            raise Unusable(f"{where}: only tool messages carry tool_call_id")
        if role != "assistant" and "tool_calls" in m:
            raise Unusable(f"{where}: only assistant messages carry tool_calls")
    if not messages or messages[-1]["role"] != "assistant":
        raise Unusable("the example must end with the assistant's message")
    if "tools" in row:
        _check_tools(row["tools"])


def _user_parts(content: Any) -> bool:
    if not isinstance(content, list) or not content:
        return False
    for part in content:
        if not isinstance(part, dict):
            return False
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            continue
        image = part.get("image_url")
        if part.get("type") == "image_url" and isinstance(image, dict) and isinstance(image.get("url"), str):
            continue
        return False
    return True


def _check_calls(calls: Any, where: str) -> set[str]:
    if not isinstance(calls, list) or not calls:
        raise Unusable(f"{where}: tool_calls must be a non-empty list")
    ids = set()
    for k, call in enumerate(calls):
        fn = call.get("function") if isinstance(call, dict) else None
        if not isinstance(call, dict) or not isinstance(call.get("id"), str) or not call["id"]:
            raise Unusable(f"{where}: tool call {k} has no id")
        if call.get("type") != "function" or not isinstance(fn, dict):
            raise Unusable(f"{where}: tool call {k} must be of type function")
        if not (isinstance(fn.get("name"), str) and NAME.match(fn["name"])):
            raise Unusable(f"{where}: tool call {k} names no valid function")
        if not isinstance(fn.get("arguments"), str) or not _json_object_text(fn["arguments"]):
            raise Unusable(f"{where}: tool call {k}'s arguments must be JSON text of an object")
        ids.add(call["id"])
    return ids


def _json_object_text(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except ValueError:
        return False


def _check_tools(tools: Any) -> None:
    if not isinstance(tools, list):
        raise Unusable("tools must be a list")
    for k, tool in enumerate(tools):
        fn = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or tool.get("type") != "function":
            raise Unusable(f"tool {k} must be {{'type': 'function', 'function': {{...}}}}")
        if not (isinstance(fn.get("name"), str) and NAME.match(fn["name"])):
            raise Unusable(f"tool {k} has no valid function name")
        if "description" in fn and not isinstance(fn["description"], str):
            raise Unusable(f"tool {k}: description must be text")
        if "parameters" in fn and not isinstance(fn["parameters"], dict):
            raise Unusable(f"tool {k}: parameters must be a JSON schema object")
