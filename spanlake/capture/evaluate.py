"""Evaluating rules next to the writer: a private in-memory DuckDB on a thread of its own.

The writer thread is the one serial stage of ingest. Rule predicates need nothing from the store
(they read only the batch's columns), so they run here, on the group's Arrow batch, while the
writer deduplicates and inserts the same spans; DuckDB releases the GIL, so the two use two
cores. One worker and one connection: evaluations of successive groups queue in order. The
idle worker thread ends with the evaluator (ThreadPoolExecutor's own cleanup).
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import duckdb

from spanlake.store.scratch import rule_connection

T = TypeVar("T")


class RuleEvaluator:
    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlake-rules")
        self._conn: duckdb.DuckDBPyConnection | None = None

    def submit(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> Future[T]:
        """Run `work(connection)` on the worker; the connection holds nothing between calls."""
        return self._pool.submit(self._run, work)

    def _run(self, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        if self._conn is None:  # only this worker thread touches the connection
            self._conn = rule_connection()
        return work(self._conn)
