"""Schema migrations: apply, in one transaction each, the steps the database has not seen yet.

Replicas starting together on a fresh lake run the same migration at once: both create the same
tables, DuckLake fails all but one commit with a conflict, and the others retry, find the new
version recorded and skip the step. A step that only inserts rows would not conflict by itself,
so once the `locks` table exists every step also holds the uniqueness lock.
"""

from __future__ import annotations

import datetime as dt
import time

import duckdb

from spanlake.store.conflicts import MAX_ATTEMPTS, backoff_seconds, is_conflict
from spanlake.store.schema import MIGRATIONS

LOCKS_VERSION = 3  # the migration that created the `locks` table and its rows


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT, applied_at TIMESTAMP)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def _migrate_once(conn: duckdb.DuckDBPyConnection) -> int:
    version = current_version(conn)
    for index in range(version, len(MIGRATIONS)):
        conn.begin()
        try:
            if index >= LOCKS_VERSION:
                conn.execute("UPDATE locks SET version = version + 1 WHERE name = 'uniqueness'")
            for statement in MIGRATIONS[index]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?)",
                [index + 1, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )
            conn.commit()
        except BaseException:
            try:
                conn.rollback()
            except duckdb.Error:
                pass  # a failed DuckLake commit has already ended the transaction
            raise
    return len(MIGRATIONS)


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    for attempt in range(MAX_ATTEMPTS):
        try:
            return _migrate_once(conn)
        except duckdb.Error as exc:
            if not is_conflict(exc) or attempt == MAX_ATTEMPTS - 1:
                raise
            time.sleep(backoff_seconds(attempt))
    raise AssertionError("unreachable")
