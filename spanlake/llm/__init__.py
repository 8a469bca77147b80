"""One chat model for LLM spans, read from whichever convention the span was recorded in.

`chat_from_span(attributes, events)` (from_span.py) gives a `Chat`: the request's messages, tool
definitions and tool choice, and the response message(s) with tool calls and finish reasons, in
OpenAI's chat shape (the shape fine-tuning files use). It runs when a span becomes a dataset
item, not at ingest: the stored attributes and events keep everything the client sent, so the
ingest hot path (and its compiled twin) stays as it is.
"""

from spanlake.llm.chat import Chat
from spanlake.llm.from_span import chat_from_span

__all__ = ["Chat", "chat_from_span"]
