"""A span's chat: each convention's reader in turn, the first one holding a part wins it.

Order: GenAI's current attributes, OpenInference's lists, OpenLLMetry's indexed attributes,
GenAI's (older) span events, then the whole-value keys an SDK may fill with OpenAI's own JSON
(`gen_ai.prompt`/`gen_ai.completion`, `input.value`/`output.value`,
`traceloop.entity.input`/`output`). Messages, response, tools and tool choice are taken
separately, so a span recording its tools one way and its messages another keeps both; the two
fallbacks are read only while messages or the response are still missing (they parse the most).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from spanlake.llm import genai, openinference, openllmetry
from spanlake.llm.chat import Chat, flattened_lists, openai_message, parse_json, tools

FINISH_REASONS = "gen_ai.response.finish_reasons"
PROMPT_VALUE_KEYS = ("gen_ai.prompt", "input.value", "traceloop.entity.input")
COMPLETION_VALUE_KEYS = ("gen_ai.completion", "output.value", "traceloop.entity.output")


def chat_from_span(attributes: dict[str, Any], events: list[Any] | None = None) -> Chat | None:
    """The span's chat, or None when no convention recorded a message."""
    lists = flattened_lists(attributes)
    attribute_readers: list[Callable[[], Chat]] = [
        lambda: genai.from_attributes(attributes),
        lambda: openinference.from_attributes(attributes, lists),
        lambda: openllmetry.from_attributes(lists),
    ]
    fallback_readers: list[Callable[[], Chat]] = [
        lambda: genai.from_events(events or []),
        lambda: _from_values(attributes),
    ]
    chat = Chat()
    for n, read in enumerate([*attribute_readers, *fallback_readers]):
        if chat.messages and chat.choices and (chat.tools or n >= len(attribute_readers)):
            break  # the fallbacks (events, whole JSON values) cost most: read only for what is missing
        part = read()
        chat.messages = chat.messages or part.messages
        chat.choices = chat.choices or part.choices
        chat.tools = chat.tools or part.tools
        chat.tool_choice = chat.tool_choice if chat.tool_choice is not None else part.tool_choice
    if not chat.messages and not chat.choices:
        return None
    reasons = parse_json(attributes.get(FINISH_REASONS))
    if isinstance(reasons, list):
        for m, reason in zip(chat.choices, reasons):
            if isinstance(reason, str):
                m.setdefault("finish_reason", reason)
    return chat


def _from_values(attrs: dict[str, Any]) -> Chat:
    """OpenAI's request and response JSON, or lists of its messages, in whole-value keys."""
    chat = Chat()
    for key in PROMPT_VALUE_KEYS:
        value = parse_json(attrs.get(key))
        if isinstance(value, dict) and isinstance(value.get("messages"), list):
            chat.tools = tools(value.get("tools"))
            chat.tool_choice = value.get("tool_choice")
            value = value["messages"]
        if isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
            chat.messages = [m for m in map(openai_message, value) if m is not None]
            break
    for key in COMPLETION_VALUE_KEYS:
        value = parse_json(attrs.get(key))
        if isinstance(value, dict) and isinstance(value.get("choices"), list):
            for choice in value["choices"]:
                if isinstance(choice, dict) and isinstance(choice.get("message"), dict):
                    m = openai_message({**choice["message"], "finish_reason": choice.get("finish_reason")}, "assistant")
                    if m is not None:
                        chat.choices.append(m)
        elif isinstance(value, list) and value and all(isinstance(m, dict) and "role" in m for m in value):
            chat.choices = [m for m in (openai_message(v, "assistant") for v in value) if m is not None]
        if chat.choices:
            break
    return chat


def chat_json(attributes_json: str | None, events_json: str | None, part: str) -> str | None:
    """`input` or `output` of a stored span's chat as JSON text (the store's SQL function)."""
    if not attributes_json:
        return None
    texts = _chat_texts(attributes_json, events_json or "[]")
    return None if texts is None else texts[0 if part == "input" else 1]


@lru_cache(maxsize=256)
def _chat_texts(attributes_json: str, events_json: str) -> tuple[str | None, str | None] | None:
    """(input, output) JSON texts of one span's chat. Cached: capture asks for the input and the
    output of the same span in turn, and reading the chat twice would double the cost."""
    try:
        attributes = orjson.loads(attributes_json)
        events = orjson.loads(events_json)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(attributes, dict):
        return None
    chat = chat_from_span(attributes, events if isinstance(events, list) else [])
    if chat is None:
        return None
    values = (chat.input_value(), chat.output_value())
    return tuple(None if v is None else orjson.dumps(v).decode() for v in values)  # type: ignore[return-value]
