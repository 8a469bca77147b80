"""Where each ingest log was loaded up to: written with the spans, read once at start."""

from __future__ import annotations

import duckdb

from spanlake.clock import utc_now

def read_log_position(cur: duckdb.DuckDBPyConnection, log_id: str) -> int | None:
    row = cur.execute("SELECT max(position) FROM ingest_log_positions WHERE log_id = ?", [log_id]).fetchall()
    return None if row[0][0] is None else int(row[0][0])


def record_log_position(cur: duckdb.DuckDBPyConnection, log_id: str, position: int) -> None:
    """Append the new position (inside the load transaction: appends never clash on a lake)."""
    cur.execute("INSERT INTO ingest_log_positions VALUES (?, ?, ?)", [log_id, position, utc_now()])


def prune_log_positions(cur: duckdb.DuckDBPyConnection, log_id: str) -> None:
    """Drop this log's rows older than its newest. In a transaction of its own: on a lake a delete
    clashes with the other replicas' appends, and a retry of this one costs nothing."""
    cur.execute(
        "DELETE FROM ingest_log_positions WHERE log_id = ? AND position < "
        "(SELECT max(position) FROM ingest_log_positions WHERE log_id = ?)",
        [log_id, log_id],
    )
