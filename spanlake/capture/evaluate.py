"""Evaluating rules next to the writer: a private in-memory DuckDB on a thread of its own.

The writer thread is the one serial stage of ingest. Rule predicates need nothing from the store
(they read only the batch's columns), so they run here, on the group's Arrow batch, while the
writer deduplicates and inserts the same spans; DuckDB releases the GIL, so the two use two
cores. One worker and one connection: evaluations of successive groups queue in order. The
idle worker thread ends with the evaluator (ThreadPoolExecutor's own cleanup).
"""

from __future__ import annotations

from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import duckdb
import pyarrow as pa


class RuleEvaluator:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlake-rules")
        self._conn: duckdb.DuckDBPyConnection | None = None

    def submit(self, sql: str, params: list[Any], batch: pa.Table, name: str) -> Future[pa.Table]:
        """Run `sql` (which reads the batch as `name`) on the worker; resolves to its rows."""
        return self._pool.submit(self._run, sql, params, batch, name)

    def _run(self, sql: str, params: list[Any], batch: pa.Table, name: str) -> pa.Table:
        if self._conn is None:
            # Only this worker thread touches the connection. One DuckDB thread: the work is a
            # few thousand rows, and the writer needs the other core.
            self._conn = duckdb.connect(":memory:", config={"threads": "1"})
        self._conn.register(name, batch)
        try:
            return self._conn.execute(sql, params).fetch_arrow_table()
        finally:
            self._conn.unregister(name)
