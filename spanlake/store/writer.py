"""Appending span batches: one group commit, one transaction, bulk statements only.

Knows nothing about OTLP. Deduplicates on (trace_id, span_id) without a unique index (DuckLake
has none): a retried span carries the same start_time as the stored copy, so the anti-join only
has to look at stored rows whose start_time falls inside the batch's time range, which DuckDB's
zone maps (min/max per row group) narrow to a few row groups because spans arrive time-ordered.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spanlake.store.schema import SPAN_SCHEMA, TRACE_KEY_SQL

# Relation holding the spans this commit actually adds (after dedup). Stages that run inside the
# same transaction (capture rules) read it, so their output commits or rolls back with the spans.
NEW_SPANS = "_new_spans"

CommitStage = Callable[[duckdb.DuckDBPyConnection, str], None]


@dataclass(frozen=True)
class AppendResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def utc_now() -> dt.datetime:
    """Naive UTC, the form every TIMESTAMP column of the store holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def append_spans(
    cur: duckdb.DuckDBPyConnection,
    tables: Sequence[pa.Table],
    stages: Sequence[CommitStage] = (),
) -> AppendResult:
    """Append the spans of several requests; the caller owns the transaction."""
    incoming = pa.concat_tables(tables) if len(tables) != 1 else tables[0]
    if incoming.num_rows == 0:
        return AppendResult(0, 0)
    incoming = incoming.select(SPAN_SCHEMA.names)
    cur.register("_incoming", incoming)
    try:
        # Epoch nanoseconds, not Python datetimes: those keep microseconds only, and a rounded-down
        # upper bound would let the retry of the batch's latest span escape dedup.
        bounds = cur.execute("SELECT epoch_ns(min(start_time)), epoch_ns(max(start_time)) FROM _incoming").fetchone()
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {NEW_SPANS} AS
            SELECT i.*, ?::TIMESTAMP AS ingested_at
            FROM (
                SELECT * FROM _incoming
                QUALIFY row_number() OVER (PARTITION BY trace_id, span_id ORDER BY start_time) = 1
            ) AS i
            ANTI JOIN (
                SELECT trace_id, span_id FROM spans
                WHERE start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
            ) AS s
            ON s.trace_id = i.trace_id AND s.span_id = i.span_id
            """,
            [utc_now(), bounds[0], bounds[1]],
        )
    finally:
        cur.unregister("_incoming")
    stored = cur.execute(f"SELECT count(*) FROM {NEW_SPANS}").fetchone()[0]
    if stored:
        cur.execute(f"INSERT INTO spans SELECT * FROM {NEW_SPANS}")
        cur.execute(
            f"""
            INSERT INTO trace_index
            SELECT {TRACE_KEY_SQL.format(col="trace_id")},
                   trace_id,
                   min(start_time),
                   max(end_time),
                   count(*),
                   count(*) FILTER (WHERE status = 'ERROR'),
                   coalesce(sum(total_tokens), 0),
                   any_value(name) FILTER (WHERE parent_span_id IS NULL),
                   any_value(span_id) FILTER (WHERE parent_span_id IS NULL),
                   coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
                            any_value(service_name)),
                   any_value(ingested_at)
            FROM {NEW_SPANS}
            GROUP BY trace_id
            """
        )
        for stage in stages:
            stage(cur, NEW_SPANS)
    cur.execute(f"DROP TABLE IF EXISTS {NEW_SPANS}")
    return AppendResult(incoming.num_rows, stored)
