"""SQL for GenAI events received as OTLP log records (the `genai_events` table).

Every event is kept here. `attached` says whether it has been merged into its span's `events`
yet; it turns true in the same transaction as the merge, so a replayed or retried load never
merges an event twice. All functions run inside the loader's transaction.
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb
import pyarrow as pa

from spanlake.clock import utc_now

_INCOMING = "_incoming_genai_events"
_KEYS = "_genai_span_keys"
_EVENT_COLUMNS = (
    "trace_id, span_id, epoch_ns(time) AS time_ns, name, attributes::VARCHAR AS attributes, body::VARCHAR AS body"
)
# Late events look for their span among spans that started at most this long before the
# earliest of them (an LLM call outliving a day is not one we wait for), so the lookup reads
# the row groups of that window only.
LATE_WINDOW_NS = 24 * 3600 * 10**9


def insert_new(cur: duckdb.DuckDBPyConnection, events: pa.Table) -> pa.Table:
    """Store the events not stored yet, as pending; returns those (trace_id, span_id pairs).

    An event is the same event when trace, span, time, name and body are: an exporter's retry
    of an acknowledged request adds nothing.
    """
    cur.register(_INCOMING, events)
    try:
        fresh = cur.execute(
            f"""
            SELECT DISTINCT ON (n.trace_id, n.span_id, n.time, n.name, n.body) n.*
            FROM {_INCOMING} AS n
            WHERE NOT EXISTS (
                SELECT 1 FROM genai_events AS e
                WHERE e.trace_id = n.trace_id AND e.span_id = n.span_id AND e.time = n.time
                  AND e.name = n.name AND e.body::VARCHAR IS NOT DISTINCT FROM n.body
            )
            """
        ).to_arrow_table()
    finally:
        cur.unregister(_INCOMING)
    if not fresh.num_rows:
        return fresh.select(["trace_id", "span_id"])
    cur.register(_INCOMING, fresh)
    try:
        cur.execute(
            f"""
            INSERT INTO genai_events
            SELECT trace_id, span_id, time, name, service_name, attributes::JSON, body::JSON, false, ?
            FROM {_INCOMING}
            """,
            [utc_now()],
        )
    finally:
        cur.unregister(_INCOMING)
    return fresh.select(["trace_id", "span_id"])


def any_pending(cur: duckdb.DuckDBPyConnection) -> bool:
    """Whether any event waits for its span: lets a load of spans skip the lookup below."""
    return cur.execute("SELECT 1 FROM genai_events WHERE NOT attached LIMIT 1").fetchone() is not None


def pending_for(cur: duckdb.DuckDBPyConnection, keys: pa.Table) -> pa.Table:
    """The pending events of the spans in `keys` (trace_id, span_id), oldest first."""
    cur.register(_KEYS, keys)
    try:
        return cur.execute(
            f"""
            SELECT {_EVENT_COLUMNS} FROM genai_events
            SEMI JOIN {_KEYS} AS k ON genai_events.trace_id = k.trace_id AND genai_events.span_id = k.span_id
            WHERE NOT attached
            ORDER BY time, name
            """
        ).to_arrow_table()
    finally:
        cur.unregister(_KEYS)


def mark_attached(cur: duckdb.DuckDBPyConnection, keys: pa.Table) -> None:
    """Mark the pending events of the spans in `keys` as merged into their span."""
    cur.register(_KEYS, keys)
    try:
        cur.execute(
            f"""
            UPDATE genai_events SET attached = true
            WHERE NOT attached AND EXISTS (
                SELECT 1 FROM {_KEYS} AS k WHERE k.trace_id = genai_events.trace_id AND k.span_id = genai_events.span_id
            )
            """
        )
    finally:
        cur.unregister(_KEYS)


def stored_spans(cur: duckdb.DuckDBPyConnection, keys: pa.Table, lo_ns: int, hi_ns: int) -> list[tuple]:
    """(trace_id, span_id, start_ns, attributes, events, input, output) of the stored spans in
    `keys` that started between lo_ns - LATE_WINDOW_NS and hi_ns."""
    cur.register(_KEYS, keys)
    try:
        return cur.execute(
            f"""
            SELECT s.trace_id, s.span_id, epoch_ns(s.start_time), s.attributes::VARCHAR, s.events::VARCHAR,
                   s.input, s.output
            FROM spans AS s
            SEMI JOIN {_KEYS} AS k ON s.trace_id = k.trace_id AND s.span_id = k.span_id
            WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
            """,
            [lo_ns - LATE_WINDOW_NS, hi_ns],
        ).fetchall()
    finally:
        cur.unregister(_KEYS)


def update_span_events(cur: duckdb.DuckDBPyConnection, rows: Sequence[tuple]) -> None:
    """Rewrite stored spans' events and derived input/output: rows of
    (events JSON, input, output, trace_id, span_id, start_ns). The rare path (events after their
    span), so one statement per span is fine."""
    cur.executemany(
        "UPDATE spans SET events = ?::JSON, input = ?, output = ? "
        "WHERE trace_id = ? AND span_id = ? AND start_time = make_timestamp_ns(?)",
        [list(row) for row in rows],
    )
