"""The relations of stored spans that rules are applied to after ingest (capture/apply.py).

Trace scope: every ingest commit notes its traces in `capture_pending` (when trace-scope rules
are active); the judge (capture/component.py) later takes the traces quiet for a while, loads
their spans and forgets them, all in one write transaction. Backfill (capture/backfill.py) reads
stored spans window by window. Each relation is a temp table that lives while the caller's
block runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import duckdb

QUIET_TRACES = "_quiet_traces"
JUDGED_SPANS = "_judged_spans"
WINDOW_SPANS = "_backfill_spans"
WINDOW_TRACES = "_backfill_traces"


def record_pending_traces(cur: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Note every trace of this commit for trace-scope rules, in the commit's transaction."""
    cur.execute(
        f"INSERT INTO capture_pending SELECT trace_id, max(ingested_at) FROM {relation} GROUP BY trace_id"
    )


@contextmanager
def quiet_traces(cur: duckdb.DuckDBPyConnection, quiet_before: dt.datetime, limit: int) -> Iterator[int]:
    """Hold up to `limit` traces quiet since `quiet_before` (with their time range) while the
    block judges them; yields how many."""
    try:
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {QUIET_TRACES} AS
            WITH quiet AS (
                SELECT trace_id FROM capture_pending GROUP BY trace_id
                HAVING max(last_seen) < ? ORDER BY max(last_seen) LIMIT ?
            )
            SELECT q.trace_id, min(ti.start_time) AS lo, max(ti.end_time) AS hi
            FROM quiet q JOIN trace_index ti ON ti.trace_id = q.trace_id
            GROUP BY q.trace_id
            """,
            [quiet_before, limit],
        )
        yield cur.execute(f"SELECT count(*) FROM {QUIET_TRACES}").fetchone()[0]
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {JUDGED_SPANS}")
        cur.execute(f"DROP TABLE IF EXISTS {QUIET_TRACES}")


def quiet_trace_spans(cur: duckdb.DuckDBPyConnection) -> str:
    """All stored spans of the held quiet traces (zone maps via their time range); returns the relation."""
    lo, hi = cur.execute(f"SELECT epoch_ns(min(lo)), epoch_ns(max(hi)) FROM {QUIET_TRACES}").fetchone()
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {JUDGED_SPANS} AS
        SELECT s.* FROM spans s
        WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
          AND s.trace_id IN (SELECT trace_id FROM {QUIET_TRACES})
        """,
        [lo, hi],
    )
    return JUDGED_SPANS


def forget_quiet_traces(cur: duckdb.DuckDBPyConnection) -> None:
    """The held quiet traces are judged: no longer pending."""
    cur.execute(f"DELETE FROM capture_pending WHERE trace_id IN (SELECT trace_id FROM {QUIET_TRACES})")


def stored_range(cur: duckdb.DuckDBPyConnection, since: dt.datetime, until: dt.datetime) -> tuple[Any, Any, int]:
    """(first start, last end) in epoch ns of traces starting in [since, until], and their span count."""
    lo, hi, spans = cur.execute(
        "SELECT epoch_ns(min(start_time)), epoch_ns(max(end_time)), coalesce(sum(span_count), 0) FROM trace_index "
        "WHERE start_time >= ? AND start_time <= ?",
        [since, until],
    ).fetchone()
    return lo, hi, int(spans)


@contextmanager
def window_spans(cur: duckdb.DuckDBPyConnection, scope: str, lo: int, hi: int, last: bool) -> Iterator[str]:
    """Hold the spans (span scope) or whole traces (trace scope) starting in [lo, hi), or
    [lo, hi] for the `last` window, while the block applies a rule; yields the relation."""
    upper = "<=" if last else "<"
    try:
        if scope == "span":
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {WINDOW_SPANS} AS "
                f"SELECT * FROM spans WHERE start_time >= make_timestamp_ns(?) AND start_time {upper} make_timestamp_ns(?)",
                [lo, hi],
            )
        else:
            cur.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {WINDOW_TRACES} AS
                SELECT trace_id, min(start_time) AS lo, max(end_time) AS hi FROM trace_index
                WHERE trace_id IN (
                    SELECT trace_id FROM trace_index
                    WHERE start_time >= make_timestamp_ns(?) AND start_time {upper} make_timestamp_ns(?)
                )
                GROUP BY trace_id HAVING min(start_time) >= make_timestamp_ns(?)
                """,
                [lo, hi, lo],
            )
            bounds = cur.execute(f"SELECT epoch_ns(min(lo)), epoch_ns(max(hi)) FROM {WINDOW_TRACES}").fetchone()
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {WINDOW_SPANS} AS SELECT s.* FROM spans s "
                "WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
                f"AND s.trace_id IN (SELECT trace_id FROM {WINDOW_TRACES})",
                [bounds[0], bounds[1]],
            )
        yield WINDOW_SPANS
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {WINDOW_SPANS}")
        cur.execute(f"DROP TABLE IF EXISTS {WINDOW_TRACES}")
