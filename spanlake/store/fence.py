"""The write fence: lets one replica's deletes through while the others keep inserting.

Why: DuckLake fails a commit that deleted from a table when another commit inserted into that
table after the transaction began, and the other way round (checked on 1.5.5; duckdb/ducklake
PR #906 made it so, at table granularity). Retention deletes spans in chunks that take a few
hundred milliseconds, while each replica commits ingest every few tens: under steady ingest on
other replicas a retention chunk loses every race and, retried forever, never lands.

How: every replica watches the `write-fence` lock row. A replica whose write keeps losing takes
the fence (a lease on that row), waits until the others have seen it, runs its transaction, and
drops the fence. The others' writers start no transaction meanwhile; their ingest logs keep
acknowledging and their loaders wait, at most `MAX_FENCE_SECONDS`. Correctness never depends on the
fence (conflict detection still decides); it only makes sure the delete gets its turn.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, TypeVar

import duckdb

from spanlake.store import Store, locks
from spanlake.store.conflicts import is_conflict
from spanlake.clock import utc_now

T = TypeVar("T")
log = logging.getLogger(__name__)

WATCH_SECONDS = 0.2
MAX_FENCE_SECONDS = 10.0
UNFENCED_ATTEMPTS = 3


class WriteFence:
    def __init__(self, store: Store, owner: str):
        self.store = store
        self.owner = owner
        self.fenced_writes = 0
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        if self.store.is_lake:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name="spanlake-write-fence")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        self.store.release_writes()

    async def _watch(self) -> None:
        while True:
            try:
                holder, until = await self.store.read(locks.lease_holder, locks.WRITE_FENCE)
                now = utc_now()
                if holder is not None and holder != self.owner and until is not None and until > now:
                    self.store.hold_writes(min((until - now).total_seconds(), MAX_FENCE_SECONDS))
                else:
                    self.store.release_writes()
            except duckdb.Error as exc:  # never leave writes held on a failed read
                self.store.release_writes()
                log.warning("reading the write fence failed: %s", exc)
            await asyncio.sleep(WATCH_SECONDS)

    async def write(self, fn: Callable[..., T], *args: Any) -> T:
        """`store.write(fn, *args)` that takes the fence if other replicas' commits keep winning."""
        if not self.store.is_lake:
            return await self.store.write(fn, *args)
        try:
            return await self.store.write(fn, *args, attempts=UNFENCED_ATTEMPTS)
        except duckdb.Error as exc:
            if not is_conflict(exc):
                raise
        if not await self.store.write(locks.try_lease, locks.WRITE_FENCE, self.owner, MAX_FENCE_SECONDS):
            return await self.store.write(fn, *args)  # another replica is fenced: wait our turn
        self.fenced_writes += 1
        try:
            # Long enough for every watcher to notice and for commits already under way to land.
            await asyncio.sleep(2 * WATCH_SECONDS + 0.2)
            return await self.store.write(fn, *args)
        finally:
            await self.store.write(locks.release_lease, locks.WRITE_FENCE, self.owner)
