"""How much memory DuckDB's buffer manager holds: the store's share of the process RSS."""

from __future__ import annotations

import duckdb


def buffer_memory_bytes(cur: duckdb.DuckDBPyConnection) -> int:
    """Bytes DuckDB has allocated (table data not yet checkpointed, caches, operator state)."""
    row = cur.execute("SELECT coalesce(sum(memory_usage_bytes), 0) FROM duckdb_memory()").fetchone()
    return int(row[0]) if row else 0
