"""Schema migrations: apply, in one transaction each, the steps the database has not seen yet."""

from __future__ import annotations

import datetime as dt

import duckdb

from spanlake.store.schema import MIGRATIONS


def current_version(conn: duckdb.DuckDBPyConnection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_version (version BIGINT, applied_at TIMESTAMP)")
    row = conn.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0] or 0)


def migrate(conn: duckdb.DuckDBPyConnection) -> int:
    """Bring the schema up to date; returns the version now in force."""
    version = current_version(conn)
    for index in range(version, len(MIGRATIONS)):
        conn.begin()
        try:
            for statement in MIGRATIONS[index]:
                conn.execute(statement)
            conn.execute(
                "INSERT INTO schema_version VALUES (?, ?)",
                [index + 1, dt.datetime.now(dt.UTC).replace(tzinfo=None)],
            )
            conn.commit()
        except BaseException:
            conn.rollback()
            raise
    return len(MIGRATIONS)
