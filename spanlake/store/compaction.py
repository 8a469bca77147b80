"""DuckLake compaction with DuckLake's own functions, one step per transaction.

Frequent group commits write many small Parquet files (or, under 10 rows, rows inlined in the
catalog). The steps, in order:
1. `ducklake_flush_inlined_data`: inlined rows into Parquet, so the catalog stays small;
2. `ducklake_merge_adjacent_files` per table: small files into larger ones;
3. `ducklake_rewrite_data_files` for the tables retention deletes from: files that are mostly
   deleted rows are rewritten without them;
4. `ducklake_expire_snapshots` older than `keep_snapshots`: the merged-away and deleted files are
   then no longer referenced...
5. `ducklake_cleanup_old_files` older than `delete_files_after`: ...and are removed from storage
   once no replica can still be reading them.

Merging a table conflicts with a concurrent DELETE/UPDATE of it (checked: either order fails
with "Transaction conflict ... compacted"), so a step that lost is retried by the store or
skipped until the next run; merging never races an INSERT. Timestamps are bound as seconds
before now(): the functions take TIMESTAMP WITH TIME ZONE.
"""

from __future__ import annotations

from dataclasses import dataclass

import duckdb

from spanlake.store.connection import LAKE_CATALOG

# Tables whose rows retention deletes in bulk: worth rewriting once deletes dominate a file.
REWRITE_TABLES = ("spans", "trace_index")
REWRITE_DELETE_THRESHOLD = 0.5


@dataclass(frozen=True)
class FileStats:
    files: int
    rows: int
    bytes: int


def lake_tables(cur: duckdb.DuckDBPyConnection) -> list[str]:
    rows = cur.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = ? AND schema_name = 'main' ORDER BY 1",
        [LAKE_CATALOG],
    ).fetchall()
    return [r[0] for r in rows]


def file_stats(cur: duckdb.DuckDBPyConnection, table: str) -> FileStats:
    """Data files of one table in the current snapshot (inlined rows are not files)."""
    files, size = cur.execute(
        "SELECT count(*), coalesce(sum(data_file_size_bytes), 0) FROM ducklake_list_files(?, ?)",
        [LAKE_CATALOG, table],
    ).fetchone()
    rows = cur.execute(f"SELECT count(*) FROM {_ident(table)}").fetchone()[0]
    return FileStats(int(files), int(rows), int(size))


def flush_inlined(cur: duckdb.DuckDBPyConnection) -> int:
    return _count(cur, "SELECT count(*) FROM ducklake_flush_inlined_data(?)", [LAKE_CATALOG])


def merge_files(cur: duckdb.DuckDBPyConnection, table: str) -> int:
    return _count(cur, "SELECT count(*) FROM ducklake_merge_adjacent_files(?, ?)", [LAKE_CATALOG, table])


def rewrite_files(cur: duckdb.DuckDBPyConnection, table: str) -> int:
    return _count(
        cur,
        "SELECT count(*) FROM ducklake_rewrite_data_files(?, ?, delete_threshold => ?)",
        [LAKE_CATALOG, table, REWRITE_DELETE_THRESHOLD],
    )


def expire_snapshots(cur: duckdb.DuckDBPyConnection, older_than_seconds: float) -> int:
    return _count(
        cur,
        "SELECT count(*) FROM ducklake_expire_snapshots(?, older_than => now() - to_seconds(?::DOUBLE))",
        [LAKE_CATALOG, older_than_seconds],
    )


def cleanup_files(cur: duckdb.DuckDBPyConnection, older_than_seconds: float) -> int:
    return _count(
        cur,
        "SELECT count(*) FROM ducklake_cleanup_old_files(?, older_than => now() - to_seconds(?::DOUBLE))",
        [LAKE_CATALOG, older_than_seconds],
    )


def _count(cur: duckdb.DuckDBPyConnection, sql: str, params: list) -> int:
    row = cur.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _ident(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError(f"not a plain table name: {name!r}")
    return name
