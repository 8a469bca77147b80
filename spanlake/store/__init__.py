"""The store: one DuckDB (or DuckLake) database behind a read pool and a single writer thread.

Why a single writer: DuckDB allows one process many connections, but concurrent writers to the
same rows conflict, and group commit needs one place where transactions are formed. Reads run
on a small thread pool with their own cursors so they never block the event loop or the writer.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import duckdb

from spanlake.store.connection import StoreConfig, open_connection
from spanlake.store.migrate import migrate

T = TypeVar("T")

__all__ = ["Store", "StoreConfig"]


class Store:
    """Owns the database connection; every other package reaches SQL through it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, config: StoreConfig, *, read_threads: int = 4):
        self._conn = conn
        self.config = config
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._cursors_lock = threading.Lock()
        self._reader = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="spanlake-read")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlake-write")
        self._closed = False

    @classmethod
    def open(cls, config: StoreConfig) -> "Store":
        conn = open_connection(config)
        migrate(conn)
        return cls(conn, config)

    @property
    def is_lake(self) -> bool:
        return self.config.is_lake

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._conn.cursor()
            if self.config.is_lake:
                cur.execute(f"USE {self.config.catalog}")
            self._local.cursor = cur
            with self._cursors_lock:
                self._cursors.append(cur)
        return cur

    # Synchronous forms, for the CLI and for code already on a worker thread.
    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        return fn(self._cursor(), *args)

    def write_sync(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(cursor, *args) in one transaction on the calling thread."""
        cur = self._cursor()
        cur.begin()
        try:
            result = fn(cur, *args)
            cur.commit()
        except BaseException:
            try:
                cur.rollback()
            except duckdb.Error:
                pass  # the transaction may already be aborted by the failure
            raise
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self.read_sync, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(cursor, *args) in one transaction on the writer thread; resolves after commit."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, self.write_sync, fn, *args)

    def close(self) -> None:
        """Finish queued writes, then checkpoint and release the file."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        with self._cursors_lock:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
        try:
            if not self.config.is_lake:
                self._conn.execute("CHECKPOINT")
        finally:
            self._conn.close()
