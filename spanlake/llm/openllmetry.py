"""OpenLLMetry (Traceloop): indexed `gen_ai.prompt.N.*` / `gen_ai.completion.N.*` and functions.

As `opentelemetry-instrumentation-openai` (traceloop) records a chat call: `<prefix>.N.role`,
`.content` (text, or JSON text of a list of parts), `.tool_call_id`, `.tool_calls.M.{id,name,
arguments}`, completions also `.finish_reason`, `.refusal` and the legacy
`.function_call.{name,arguments}`; tools as `llm.request.functions.N.{name,description,
parameters}`. Versions before 0.16 wrote `llm.prompts.N.*` / `llm.completions.N.*`.
"""

from __future__ import annotations

from typing import Any

from spanlake.llm.chat import Chat, Lists, Message, content, function_tool, indexed, message, tool_call

PROMPT_PREFIXES = ("gen_ai.prompt.", "llm.prompts.")
COMPLETION_PREFIXES = ("gen_ai.completion.", "llm.completions.")
FUNCTIONS_PREFIX = "llm.request.functions."


def from_attributes(lists: Lists) -> Chat:
    chat = Chat()
    for prefix in PROMPT_PREFIXES:
        if chat.messages:
            break
        chat.messages = [_message(m, "user") for m in lists.get(prefix, [])]
    for prefix in COMPLETION_PREFIXES:
        if chat.choices:
            break
        chat.choices = [_message(m, "assistant") for m in lists.get(prefix, [])]
    chat.tools = [
        function_tool(f.get("name"), f.get("description"), f.get("parameters"))
        for f in lists.get(FUNCTIONS_PREFIX, [])
        if f.get("name") is not None
    ]
    return chat


def _message(flat: dict[str, Any], default_role: str) -> Message:
    calls = [tool_call(c.get("id"), c.get("name"), c.get("arguments")) for c in indexed(flat, "tool_calls.")]
    if not calls and flat.get("function_call.name") is not None:
        calls = [tool_call(None, flat["function_call.name"], flat.get("function_call.arguments"))]
    body = content(flat.get("content"))
    if body is None and isinstance(flat.get("refusal"), str):
        body = flat["refusal"]
    return message(
        flat.get("role") or default_role,
        body,
        name=flat.get("name"),
        tool_calls=calls,
        tool_call_id=flat.get("tool_call_id"),
        finish_reason=flat.get("finish_reason"),
    )
