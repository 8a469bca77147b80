"""Items as OpenAI chat fine-tuning examples: one `{"messages": [...]}` per item.

System and user turns come from the input, the assistant turn from expected_output:
- a string input is one user message;
- a list of chat messages is kept as is (a captured LLM span's prompt);
- an object with `messages` (a raw chat request) gives those, plus its `system` text if it has
  one and the messages lack a system turn;
- anything else is one user message holding its JSON text.
The expected output is an assistant message: a string is its content, a message or a list of
messages is kept, anything else becomes JSON text content. Items without one cannot teach a
completion and are skipped, as are items without an input.
"""

from __future__ import annotations

import json
from typing import Any


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


def prompt_messages(value: Any) -> list[dict[str, Any]]:
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    listed = _messages(value)
    if listed is not None:
        return listed
    if isinstance(value, dict):
        inner = _messages(value.get("messages"))
        if inner is not None:
            system = value.get("system")
            if isinstance(system, str) and system and not any(m["role"] == "system" for m in inner):
                inner = [{"role": "system", "content": system}, *inner]
            return inner
        if _is_message(value):
            return [value]
    return [{"role": "user", "content": _as_text(value)}]


def completion_messages(value: Any) -> list[dict[str, Any]]:
    listed = _messages(value)
    if listed is not None:
        return listed
    if _is_message(value):
        return [value]
    if isinstance(value, dict):
        inner = _messages(value.get("messages"))
        if inner is not None:
            return inner
    return [{"role": "assistant", "content": _as_text(value)}]


def example(input_value: Any, expected_output: Any) -> dict[str, Any] | None:
    """The fine-tuning example for one item, or None when it has no expected output."""
    if expected_output is None or input_value is None:
        return None
    return {"messages": [*prompt_messages(input_value), *completion_messages(expected_output)]}
