"""The store: one DuckDB (or DuckLake) database behind a read pool and a single writer thread.

Why a single writer: DuckDB allows one process many connections, but concurrent writers to the
same rows conflict, and group commit needs one place where transactions are formed. Reads run
on a small thread pool with their own cursors so they never block the event loop or the writer.

Why the store can reopen itself: after an I/O failure (a full disk) DuckDB invalidates the
database instance for good ("must be restarted"). Committed data is safe in the WAL, so the
store closes the instance and opens it again (replaying the WAL) before the next use, and the
server keeps running once space returns. A COMMIT that raised "succeeded and is durable" (the
automatic checkpoint after it failed) counts as committed: its callers are acknowledged.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import partial
from typing import Any, TypeVar

import duckdb

from spanlake.store import commit_hooks
from spanlake.store.conflicts import MAX_ATTEMPTS, backoff_seconds, is_conflict
from spanlake.store.connection import StoreConfig, open_connection
from spanlake.store.migrate import migrate
from spanlake.store.recent_keys import RecentSpanKeys

T = TypeVar("T")
log = logging.getLogger(__name__)

__all__ = ["Store", "StoreConfig"]

_COMMITTED_ANYWAY = "COMMIT succeeded and is durable"
_INVALIDATED = ("database has been invalidated", "must be restarted", "Reopen the database")


def needs_reopen(exc: BaseException) -> bool:
    """True for the errors after which DuckDB refuses every further use of the instance."""
    text = str(exc)
    return isinstance(exc, duckdb.FatalException) or any(marker in text for marker in _INVALIDATED)


def _finish_result(cur: duckdb.DuckDBPyConnection) -> None:
    """End the read transaction of a result the caller did not read to its end (fetchone).

    An autocommit read stays open until its result is exhausted, and a thread's cursor may then
    sit idle for minutes. While any transaction older than an UPDATE or DELETE is open, DuckDB
    skips automatic checkpoints and refuses CHECKPOINT, so the WAL grows without bound
    (tests/test_checkpoints.py). Reads here return at most a few rows beyond what was fetched.
    """
    try:
        cur.fetchall()
    except duckdb.Error:
        pass  # no open result, or a failed statement whose own error is already on its way up


class Store:
    """Owns the database connection; every other package reaches SQL through it."""

    def __init__(self, conn: duckdb.DuckDBPyConnection, config: StoreConfig, *, read_threads: int = 4):
        self._conn = conn
        self.config = config
        self._local = threading.local()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0
        self._broken = False
        # Readers in flight; a reopen waits for them and holds new ones back.
        self._gate = threading.Condition()
        self._readers = 0
        self._reopening = False
        self._reader = ThreadPoolExecutor(max_workers=read_threads, thread_name_prefix="spanlake-read")
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spanlake-write")
        self._closed = False
        self.conflict_retries = 0  # lake transactions re-run after losing to another replica
        self._held_until = 0.0  # monotonic instant before which no write starts (store/fence.py)
        # The single writer's memory of the span keys it wrote (store/recent_keys.py); a lake has
        # other writers, so every incoming span is looked up there.
        self.recent_span_keys: RecentSpanKeys | None = None
        if not config.is_lake and not config.read_only:
            # fetchall, not fetchone: a result left unfinished keeps its read transaction open (see
            # _finish_result), and this connection runs nothing else until close.
            newest = conn.execute("SELECT epoch_ns(max(start_time)) FROM spans").fetchall()[0][0]
            named = conn.execute(
                "SELECT epoch_us(max(created_at)) FROM dataset_items WHERE source_span_id IS NOT NULL"
            ).fetchall()[0][0]
            self.recent_span_keys = RecentSpanKeys(newest, item_sources_until_us=named)

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
        if cur is None or getattr(self._local, "generation", -1) != self._generation:
            cur = self._conn.cursor()
            if self.config.is_lake:
                cur.execute(f"USE {self.config.catalog}")
            self._local.cursor = cur
            self._local.generation = self._generation
            with self._gate:
                self._cursors.append(cur)
        return cur

    @contextmanager
    def _reading(self) -> Iterator[None]:
        with self._gate:
            while self._reopening:
                self._gate.wait()
            self._readers += 1
        try:
            yield
        finally:
            with self._gate:
                self._readers -= 1
                self._gate.notify_all()

    def _reopen_if_broken(self) -> None:
        """Replace an invalidated instance with a fresh one (WAL replay); called by the writer."""
        if not self._broken:
            return
        with self._gate:
            self._reopening = True
            while self._readers:
                self._gate.wait()
        try:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
            self._cursors.clear()
            try:
                self._conn.close()
            except duckdb.Error:
                pass
            self._conn = open_connection(self.config)  # raises while the disk is still full
            self._generation += 1
            self._broken = False
            log.warning("store reopened after a fatal error; committed data was recovered from the WAL")
        finally:
            with self._gate:
                self._reopening = False
                self._gate.notify_all()

    def _note_failure(self, exc: BaseException) -> None:
        if needs_reopen(exc):
            self._broken = True

    # Synchronous forms, for the CLI and for code already on a worker thread.
    def read_sync(self, fn: Callable[..., T], *args: Any) -> T:
        with self._reading():
            if self._broken:
                raise duckdb.IOException("the store is recovering from a storage error; retry shortly")
            cur = self._cursor()
            try:
                return fn(cur, *args)
            except duckdb.Error as exc:
                self._note_failure(exc)
                raise
            finally:
                _finish_result(cur)

    def write_sync(self, fn: Callable[..., T], *args: Any, attempts: int = MAX_ATTEMPTS) -> T:
        """Run fn(cursor, *args) in one transaction on the calling thread.

        On a lake, a transaction that lost a commit race to another replica is run again from
        the start on the new snapshot (store/conflicts.py), up to `attempts` times in all, so fn
        must keep its effects inside the transaction. Other errors are raised at once.
        """
        attempt = 0
        while True:
            self._wait_for_fence()
            try:
                return self._write_once(fn, *args)
            except duckdb.Error as exc:
                attempt += 1
                if not self.config.is_lake or not is_conflict(exc) or attempt >= attempts:
                    raise
                self.conflict_retries += 1
                log.debug("write conflicted with another replica (attempt %d); retrying: %s", attempt, exc)
                time.sleep(backoff_seconds(attempt))

    def hold_writes(self, seconds: float) -> None:
        """Start no write transaction for `seconds` (another replica holds the write fence)."""
        self._held_until = time.monotonic() + seconds

    def release_writes(self) -> None:
        self._held_until = 0.0

    def _wait_for_fence(self) -> None:
        while (left := self._held_until - time.monotonic()) > 0:
            time.sleep(min(left, 0.02))

    def _write_once(self, fn: Callable[..., T], *args: Any) -> T:
        """One attempt; in-memory effects fn deferred (store/commit_hooks.py) follow its outcome."""
        with commit_hooks.attempt(self.recent_span_keys) as hooks:
            try:
                result = self._transaction(fn, *args)
            except BaseException:
                commit_hooks.run(hooks.on_rollback)
                raise
        commit_hooks.run(hooks.on_commit)
        return result

    def _transaction(self, fn: Callable[..., T], *args: Any) -> T:
        self._reopen_if_broken()
        cur = self._cursor()
        cur.begin()
        try:
            result = fn(cur, *args)
        except BaseException as exc:
            self._note_failure(exc)
            try:
                cur.rollback()
            except duckdb.Error:
                pass  # the transaction may already be aborted by the failure
            raise
        try:
            cur.commit()
        except duckdb.Error as exc:
            if is_conflict(exc):
                try:
                    cur.rollback()
                except duckdb.Error:
                    pass  # a failed DuckLake commit has usually ended the transaction already
                raise
            self._note_failure(exc)
            if _COMMITTED_ANYWAY in str(exc):
                self._broken = True  # the data is durable; the instance must still be replaced
                log.error("commit is durable but the checkpoint after it failed: %s", exc)
                return result
            raise
        return result

    async def read(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._reader, self.read_sync, fn, *args)

    async def write(self, fn: Callable[..., T], *args: Any, attempts: int = MAX_ATTEMPTS) -> T:
        """Run fn(cursor, *args) in one transaction on the writer thread; resolves after commit.

        The caller's context goes along, so store functions see who the write is for
        (store/actor.py: `created_by`)."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(
            self._writer, partial(context.run, self.write_sync, fn, *args, attempts=attempts)
        )

    async def maintain(self, fn: Callable[..., T], *args: Any) -> T:
        """Run fn(cursor, *args) on the writer thread outside any transaction: for statements that
        manage their own (CHECKPOINT), queued behind the writes before them."""
        def run() -> T:
            self._reopen_if_broken()
            return fn(self._cursor(), *args)

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._writer, run)

    def close(self) -> None:
        """Finish queued writes, then checkpoint and release the file."""
        if self._closed:
            return
        self._closed = True
        self._writer.shutdown(wait=True)
        self._reader.shutdown(wait=True)
        with self._gate:
            for cur in self._cursors:
                try:
                    cur.close()
                except duckdb.Error:
                    pass
        try:
            if not self.config.is_lake and not self._broken:
                self._conn.execute("CHECKPOINT")
        except duckdb.Error as exc:
            log.error("final checkpoint failed (the WAL keeps the data): %s", exc)
        finally:
            self._conn.close()
