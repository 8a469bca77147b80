"""An independent check of OpenAI's chat fine-tuning format, for every row an export writes.

Written from OpenAI's fine-tuning guide (chat and function-calling examples) and its data
preparation checks, not from spanlake's exporter, so the two cannot share a mistake.
"""

from __future__ import annotations

import json
from typing import Any

ROW_KEYS = {"messages", "tools", "parallel_tool_calls", "functions"}
MESSAGE_KEYS = {"role", "content", "name", "weight", "function_call", "tool_calls", "tool_call_id"}
ROLES = {"system", "user", "assistant", "tool", "function"}


def problems(row: Any) -> list[str]:
    """Every rule the row breaks (empty: OpenAI accepts it)."""
    out: list[str] = []
    if not isinstance(row, dict):
        return ["a row must be a JSON object"]
    out += [f"unknown top-level key {k!r}" for k in row if k not in ROW_KEYS]
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        return out + ["messages must be a non-empty list"]
    call_ids: set[str] = set()
    for n, m in enumerate(messages):
        if not isinstance(m, dict):
            out.append(f"message {n} is not an object")
            continue
        out += [f"message {n}: unknown key {k!r}" for k in m if k not in MESSAGE_KEYS]
        role, content = m.get("role"), m.get("content")
        if role not in ROLES:
            out.append(f"message {n}: role {role!r}")
        if role == "assistant":
            calls = m.get("tool_calls")
            if calls is not None:
                for k, call in enumerate(calls if isinstance(calls, list) else [None]):
                    fn = call.get("function") if isinstance(call, dict) else None
                    if not (isinstance(call, dict) and isinstance(call.get("id"), str) and call.get("type") == "function"):
                        out.append(f"message {n}: tool call {k} needs an id and type function")
                        continue
                    if not (isinstance(fn, dict) and isinstance(fn.get("name"), str) and isinstance(fn.get("arguments"), str)):
                        out.append(f"message {n}: tool call {k} needs function name and arguments text")
                        continue
                    try:
                        json.loads(fn["arguments"])
                    except ValueError:
                        out.append(f"message {n}: tool call {k} arguments are not JSON")
                    call_ids.add(call["id"])
            if content is None and not calls and not m.get("function_call"):
                out.append(f"message {n}: assistant without content or calls")
            if content is not None and not isinstance(content, str):
                out.append(f"message {n}: assistant content must be a string")
            if "weight" in m and m["weight"] not in (0, 1):
                out.append(f"message {n}: weight must be 0 or 1")
        elif role == "user":
            ok = isinstance(content, str) or (
                isinstance(content, list) and content and all(
                    isinstance(p, dict) and (
                        (p.get("type") == "text" and isinstance(p.get("text"), str))
                        or (p.get("type") == "image_url" and isinstance(p.get("image_url"), dict))
                    ) for p in content
                )
            )
            if not ok:
                out.append(f"message {n}: user content must be text or text/image parts")
        elif not isinstance(content, str):
            out.append(f"message {n}: {role} content must be a string")
        if role == "tool" and m.get("tool_call_id") not in call_ids:
            out.append(f"message {n}: tool_call_id answers no earlier call")
        if role != "assistant" and "weight" in m:
            out.append(f"message {n}: weight on a non-assistant message")
    if not any(isinstance(m, dict) and m.get("role") == "assistant" for m in messages):
        out.append("no assistant message")
    tools = row.get("tools")
    if tools is not None:
        for k, tool in enumerate(tools if isinstance(tools, list) else [None]):
            fn = tool.get("function") if isinstance(tool, dict) else None
            if not (isinstance(tool, dict) and tool.get("type") == "function" and isinstance(fn, dict)
                    and isinstance(fn.get("name"), str)):
                out.append(f"tool {k}: needs type function and a function name")
            elif "parameters" in fn and not isinstance(fn["parameters"], dict):
                out.append(f"tool {k}: parameters must be an object")
    return out


def assert_valid_file(body: str) -> list[dict[str, Any]]:
    """Every line of an openai export is a valid example; returns the rows."""
    rows = [json.loads(line) for line in body.splitlines() if line.strip()]
    for n, row in enumerate(rows):
        assert problems(row) == [], f"line {n + 1}: {problems(row)}: {row}"
    return rows
