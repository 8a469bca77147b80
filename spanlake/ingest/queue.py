"""Bounded write queue with group commit.

Requests that arrive while a commit is running wait together and go into the next transaction,
so the commit rate, not the request rate, bounds fsyncs. Each caller awaits a future that is
resolved only after its spans are committed: an ack always means durable. When the queue holds
`max_pending_spans` the caller gets a retryable QUEUE_FULL at once instead of memory growth.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spanlake.ingest.ack import IngestError, Outcome
from spanlake.store import Store
from spanlake.store.writer import AppendResult, CommitStage, append_spans

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class QueueConfig:
    """Write queue bounds.

    50,000 spans is a few seconds of backlog at this machine's commit rate: long enough to ride
    out a burst, short enough that an exporter (10 s default timeout) hears "retry" before it
    gives up, and that a SIGTERM drain ends quickly. 200,000 meant 20-30 s and 2.6 GB RSS under
    overload (bench/ingest.py).
    """

    max_pending_spans: int = 50_000
    # One transaction's worth. A group is copied a few times inside DuckDB (the Arrow batch,
    # the deduplicated temp table, the inserted rows), so 50,000 spans (~85 MB of Arrow) ran a
    # --memory-limit 256MB store out of memory and failed whole groups (bench/ingest.py
    # overload). Per-span commit cost is flat from ~3,000 spans up, so 10,000 costs nothing.
    max_group_spans: int = 10_000
    retry_after_seconds: float = 1.0

    def validate(self) -> None:
        if self.max_pending_spans < 1:
            raise ValueError(f"queue.max_pending_spans must be >= 1, got {self.max_pending_spans}")
        if self.max_group_spans < 1:
            raise ValueError(f"queue.max_group_spans must be >= 1, got {self.max_group_spans}")


@dataclass
class _Pending:
    table: pa.Table
    future: asyncio.Future[None]


CommitListener = Callable[[float, AppendResult], None]


class WriteQueue:
    """Feeds the store's writer thread with groups of span batches."""

    def __init__(
        self,
        store: Store,
        config: QueueConfig = QueueConfig(),
        *,
        stages: Sequence[CommitStage] = (),
        on_commit: CommitListener | None = None,
    ):
        config.validate()
        self._store = store
        self._config = config
        self.stages: list[CommitStage] = list(stages)
        self._items: deque[_Pending] = deque()
        self._pending_spans = 0
        self._wakeup = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        self._on_commit = on_commit

    @property
    def depth_spans(self) -> int:
        return self._pending_spans

    def _refusal(self) -> IngestError:
        if self._closing:
            return IngestError(Outcome.SHUTTING_DOWN, "server is shutting down; retry against another replica or later")
        return IngestError(
            Outcome.QUEUE_FULL,
            f"write queue is full ({self._pending_spans} spans pending); retry later",
            self._config.retry_after_seconds,
        )

    def check_room(self) -> None:
        """Refuse at once when full, so a request is not decoded only to be refused after."""
        if self._closing or self._pending_spans >= self._config.max_pending_spans:
            raise self._refusal()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="spanlake-write-queue")

    async def submit(self, table: pa.Table) -> None:
        """Resolve once `table` is committed; raise IngestError if it cannot be accepted."""
        if self._closing:
            raise self._refusal()
        rows = table.num_rows
        if rows == 0:
            return
        # A request bigger than the whole bound still goes through when the queue is empty.
        if self._pending_spans + rows > self._config.max_pending_spans and self._pending_spans > 0:
            raise self._refusal()
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._items.append(_Pending(table, future))
        self._pending_spans += rows
        self._wakeup.set()
        await future

    def _take_group(self) -> list[_Pending]:
        group: list[_Pending] = []
        rows = 0
        while self._items and (not group or rows + self._items[0].table.num_rows <= self._config.max_group_spans):
            item = self._items.popleft()
            group.append(item)
            rows += item.table.num_rows
        return group

    async def _run(self) -> None:
        while True:
            if not self._items:
                if self._closing:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            group = self._take_group()
            await self._commit(group)

    async def _commit(self, group: list[_Pending]) -> None:
        rows = sum(p.table.num_rows for p in group)
        started = time.perf_counter()
        try:
            result = await self._store.write(
                append_spans, [p.table for p in group], self.stages, self._store.recent_span_keys
            )
        except (duckdb.Error, OSError) as exc:
            log.error("commit of %d spans failed: %s", rows, exc)
            error = IngestError(Outcome.STORE_FAILED, f"store could not commit: {exc}", self._config.retry_after_seconds)
            for p in group:
                if not p.future.done():
                    p.future.set_exception(error)
        except BaseException as exc:  # never leave a caller waiting forever
            log.exception("commit of %d spans failed unexpectedly", rows)
            error = IngestError(Outcome.STORE_FAILED, f"store could not commit: {exc}", self._config.retry_after_seconds)
            for p in group:
                if not p.future.done():
                    p.future.set_exception(error)
            if not isinstance(exc, Exception):
                raise
        else:
            if self._on_commit is not None:
                self._on_commit(time.perf_counter() - started, result)
            for p in group:
                if not p.future.done():
                    p.future.set_result(None)
        finally:
            self._pending_spans -= rows

    async def drain_and_stop(self) -> None:
        """Refuse new work, commit everything already accepted, then stop."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
