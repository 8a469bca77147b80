"""GenAI log events into their spans, whichever arrives first; runs in the loader's transaction.

An instrumentation exports spans and log events on separate schedules, so either may reach us
first. Events are stored pending (store/log_events.py). A span loaded later gets its pending
events merged into its `events` before it is inserted, so the commit stages (span-scope capture
rules) see the whole call. Events arriving after their span update the stored span instead.

A merged event has the shape of a span event: `{"name", "time_unix_nano", "attributes"}`, the
log record's attributes plus the fields of its body (`content`, `role`, `tool_calls`, `message`,
...), which is where spanlake/llm/genai.py reads GenAI message events from. The span's `input`
and `output` columns, when no attribute filled them, are then taken from its chat.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.llm.from_span import chat_json
from spanlake.store import log_events

Key = tuple[str, str]


def load_events(cur: duckdb.DuckDBPyConnection, tables: list[pa.Table]) -> pa.Table:
    """Store a slice's events (pending, without duplicates); returns the new ones' span keys."""
    events = pa.concat_tables(tables) if len(tables) != 1 else tables[0]
    return log_events.insert_new(cur, events.replace_schema_metadata(None))


def with_pending_events(cur: duckdb.DuckDBPyConnection, spans: pa.Table) -> pa.Table:
    """The spans, with the events waiting for them merged in (and those marked attached)."""
    if not spans.num_rows or not log_events.any_pending(cur):
        return spans
    keys = spans.select(["trace_id", "span_id"])
    pending = log_events.pending_for(cur, keys)
    if not pending.num_rows:
        return spans
    by_span = _group(pending)
    ids = zip(spans.column("trace_id").to_pylist(), spans.column("span_id").to_pylist())
    mask = [key in by_span for key in ids]
    rows = pa.array([i for i, hit in enumerate(mask) if hit], pa.int64())
    picked = spans.select(["trace_id", "span_id", "attributes", "events", "input", "output"]).take(rows).to_pylist()
    new = [
        merged(r["attributes"], r["events"], r["input"], r["output"], by_span[(r["trace_id"], r["span_id"])])
        for r in picked
    ]
    log_events.mark_attached(cur, keys)
    # Only the spans that got events are converted to Python; the other rows keep their buffers.
    hits = pa.array(mask, pa.bool_())
    for position, name in enumerate(("events", "input", "output")):
        index = spans.schema.get_field_index(name)
        column = pc.replace_with_mask(spans.column(index).combine_chunks(), hits, pa.array([n[position] for n in new], pa.string()))
        spans = spans.set_column(index, spans.schema.field(index), column)
    return spans


def attach_late(cur: duckdb.DuckDBPyConnection, fresh: pa.Table) -> None:
    """Merge the slice's new events that are still pending into their spans, if stored."""
    if not fresh.num_rows:
        return
    pending = log_events.pending_for(cur, fresh)
    if not pending.num_rows:
        return
    times = pending.column("time_ns").to_pylist()
    stored = log_events.stored_spans(cur, _keys(pending), min(times), max(times))
    if not stored:
        return  # the spans have not arrived: the events wait for them
    by_span = _group(pending)
    updates = []
    for trace_id, span_id, start_ns, attributes, events, input_, output in stored:
        new = merged(attributes, events, input_, output, by_span[(trace_id, span_id)])
        updates.append((*new, trace_id, span_id, start_ns))
    log_events.update_span_events(cur, updates)
    log_events.mark_attached(cur, pa.table({"trace_id": [r[0] for r in stored], "span_id": [r[1] for r in stored]}))


def merged(
    attributes: str | None, events: str | None, input_: str | None, output: str | None, new: list[dict[str, Any]]
) -> tuple[str, str | None, str | None]:
    """A span's (events, input, output) after adding `new` span-shaped events."""
    current = orjson.loads(events) if events else []
    if not isinstance(current, list):
        current = []
    seen = {orjson.dumps(e) for e in current}
    current += [e for e in new if orjson.dumps(e) not in seen]
    current.sort(key=lambda e: e.get("time_unix_nano", 0) if isinstance(e, dict) else 0)  # stable
    events_json = orjson.dumps(current).decode()
    if input_ is None:
        input_ = chat_json(attributes, events_json, "input")
    if output is None:
        output = chat_json(attributes, events_json, "output")
    return events_json, input_, output


def as_span_event(name: str, time_ns: int, attributes: str | None, body: str | None) -> dict[str, Any]:
    """One log event in the shape of a span event (see the module docstring)."""
    attrs = orjson.loads(attributes) if attributes else {}
    value = orjson.loads(body) if body else None
    if isinstance(value, dict):
        attrs = {**attrs, **value}
    elif value is not None:
        attrs = {**attrs, "content": value}
    return {"name": name, "time_unix_nano": time_ns, "attributes": attrs}


def _group(pending: pa.Table) -> dict[Key, list[dict[str, Any]]]:
    by_span: dict[Key, list[dict[str, Any]]] = defaultdict(list)
    for row in pending.to_pylist():
        event = as_span_event(row["name"], row["time_ns"], row["attributes"], row["body"])
        by_span[(row["trace_id"], row["span_id"])].append(event)
    return by_span


def _keys(pending: pa.Table) -> pa.Table:
    return pending.select(["trace_id", "span_id"])
