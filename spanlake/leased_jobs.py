"""A background worker for one kind of leased job (scoring batches, dataset runs).

Claiming goes through the job lease (store/jobs.py), so replicas sharing a lake split the jobs
and take over a dead replica's once its lease passes. On the embedded store no other process
can hold the file, so leases a killed process left behind are dropped at start.

A subclass implements `execute(job)`; this class owns everything around it: the claim loop,
bounded parallelism, crash back-off (a job that keeps crashing is failed after MAX_CRASHES),
and stop (no new claims, a claim in progress hands its job back, jobs in flight get
`drain_seconds`, unfinished jobs are released for the next start or another replica).
"""

from __future__ import annotations

import asyncio
import logging
import time
from functools import partial
from typing import Any

import duckdb

from spanlake.store import Store, jobs, locks

log = logging.getLogger(__name__)

MAX_CRASHES = 3


class LeasedJobWorker:
    """Claims jobs of `kind` and runs up to `max_jobs` of them at once."""

    kind: str = ""
    label: str = "job"  # for logs: "scoring batch", "dataset run"

    def __init__(self, store: Store, *, max_jobs: int, lease_seconds: float, poll_seconds: float,
                 drain_seconds: float, shutdown: asyncio.Event | None = None):
        self.store = store
        # Set when the server begins to shut down: claim nothing new while requests drain.
        self.shutdown = shutdown if shutdown is not None else asyncio.Event()
        self.max_jobs = max_jobs
        self.lease_seconds = lease_seconds
        self.poll_seconds = poll_seconds
        self.drain_seconds = drain_seconds
        self.owner = locks.new_owner()
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}  # job id -> task
        self._crashes: dict[str, tuple[int, float]] = {}  # job id -> (crash count, not before)
        self._loop: asyncio.Task[None] | None = None

    # What a job kind provides -------------------------------------------------------------------

    async def execute(self, job: jobs.Job) -> bool | None:
        """Run `job`: True when it reached a final state, False when its lease was lost to
        another owner (leave it alone), None when unfinished (it is released)."""
        raise NotImplementedError

    async def give_up(self, job: jobs.Job, reason: str) -> None:
        """Mark a job failed for good (after repeated crashes)."""
        await self.quietly(jobs.fail_job, job.id, self.owner, reason)

    def halt(self) -> None:
        """Stop dispatching new work inside running jobs (called first on stop)."""

    async def close(self) -> None:
        """Release resources after every job has stopped."""

    # The machinery ------------------------------------------------------------------------------

    async def start(self) -> None:
        if not self.store.is_lake:
            released = await self.store.write(jobs.release_all, self.kind)
            if released:
                log.info("resuming %d unfinished %s(s)", released, self.label)
        self._loop = asyncio.create_task(self._claim_loop(), name=f"spanlake-{self.kind}")

    def wake(self) -> None:
        """New work was stored: look for it now rather than at the next poll."""
        self._wake.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    async def _claim_loop(self) -> None:
        while not self._stop.is_set() and not self.shutdown.is_set():
            if len(self._running) < self.max_jobs:
                now = time.monotonic()
                cooling = [j for j, (_, until) in self._crashes.items() if until > now]
                try:
                    claim = partial(jobs.claim_job, exclude=[*self._running, *cooling])
                    job = await self.store.write(claim, self.kind, self.owner, self.lease_seconds)
                except duckdb.Error:  # e.g. a DuckLake commit conflict with another replica's claim
                    log.warning("claiming a %s failed; retrying", self.label, exc_info=True)
                    job = None
                if job is not None and self._stop.is_set():  # stopped while claiming: hand it back
                    await self.quietly(jobs.release_job, job.id, self.owner)
                    return
                if job is not None:
                    task = asyncio.create_task(self._run(job), name=f"{self.kind}-{job.id[:8]}")
                    self._running[job.id] = task
                    task.add_done_callback(lambda _t, job_id=job.id: self._finished(job_id))
                    continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            except TimeoutError:
                pass

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._wake.set()

    async def _run(self, job: jobs.Job) -> None:
        outcome: bool | None = None
        try:
            outcome = await self.execute(job)
            if outcome:
                self._crashes.pop(job.id, None)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            count = self._crashes.get(job.id, (0, 0.0))[0] + 1
            self._crashes[job.id] = (count, time.monotonic() + 5.0 * 2**count)
            log.exception("%s %s crashed (%d time(s))", self.label, job.id, count)
            if count >= MAX_CRASHES:
                await self.give_up(job, f"gave up after {count} crashes: {exc}")
                outcome = True
        finally:
            if outcome is None:
                await self.quietly(jobs.release_job, job.id, self.owner)

    async def quietly(self, fn: Any, *args: Any) -> None:
        """A state update that may fail (lease lost, store trouble) without failing the caller."""
        try:
            await self.store.write(fn, *args)
        except (duckdb.Error, jobs.LeaseLost):
            log.warning("%s %s: could not update its state", self.label, args[0], exc_info=True)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self.halt()
        if self._loop is not None:
            # Let a claim in progress finish (and hand its job back) rather than orphan its lease.
            try:
                await asyncio.wait_for(asyncio.shield(self._loop), timeout=5.0)
            except (TimeoutError, Exception):
                self._loop.cancel()
                await asyncio.gather(self._loop, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=self.drain_seconds + 5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        await self.close()
