"""SQL functions that read a stored span's chat (spanlake/llm) for captured items.

Registered on every connection that captures (the store's, the rule evaluator's), so capture
keeps running as one INSERT ... SELECT: `spanlake_chat_input(attributes, events)` and
`spanlake_chat_output(attributes, events)` give the item's input and expected output as JSON
text, or NULL when the span records no chat. Python, so only called for the spans captured.
"""

from __future__ import annotations

import duckdb
from duckdb import sqltypes

from spanlake.llm.from_span import chat_json

CHAT_FUNCTIONS = {"input": "spanlake_chat_input", "output": "spanlake_chat_output"}


def register(conn: duckdb.DuckDBPyConnection) -> None:
    for part, name in CHAT_FUNCTIONS.items():
        conn.create_function(
            name,
            _reader(part),
            [sqltypes.VARCHAR, sqltypes.VARCHAR],
            sqltypes.VARCHAR,
            null_handling="special",
            # A span no reader understands must never fail the capture (or the ingest commit
            # a capture rule runs in): it keeps its plain text instead.
            exception_handling="return_null",
            side_effects=False,
        )


def _reader(part: str):
    def read(attributes: str | None, events: str | None) -> str | None:
        return chat_json(attributes, events, part)

    return read
