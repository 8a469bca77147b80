"""The scoring background component: claims persisted batches and runs them, resumes after restarts.

Claiming goes through the job lease (store/jobs.py), so replicas sharing one DuckLake split the
batches between them and take over a dead replica's once its lease passes. On the embedded store
no other process can hold the file, so leases left by a killed process are dropped at start.

Stop: no new batches or traces, scorers in flight get `drain_seconds` to finish and their scores
are written, then unfinished batches are handed back (pending) for the next start.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from functools import partial
from typing import TYPE_CHECKING

import duckdb

from spanlake.scoring.batches import KIND, BatchRequest, create_batch
from spanlake.scoring.config import ScoringConfig
from spanlake.scoring.engine import BatchRunner
from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import jobs

if TYPE_CHECKING:
    from spanlake.server import Services

log = logging.getLogger(__name__)

MAX_CRASHES = 3


class ScoringComponent:
    def __init__(self, services: "Services", registry: ScorerRegistry, config: ScoringConfig):
        self.services = services
        self.store = services.store
        self.registry = registry
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}
        self._crashes: dict[str, tuple[int, float]] = {}  # job id -> (crash count, not before)
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not self.store.is_lake:
            released = await self.store.write(jobs.release_all, KIND)
            if released:
                log.info("resuming %d unfinished scoring batch(es)", released)
        self._loop = asyncio.create_task(self._claim_loop(), name="spanlake-scoring")

    async def submit(self, request: BatchRequest) -> tuple[jobs.Job, list[str]]:
        """Store a batch and nudge the claim loop; scoring starts after this returns."""
        job, unknown = await create_batch(self.store, request)
        self._wake.set()
        return job, unknown

    async def _claim_loop(self) -> None:
        engine = self.config.engine
        while not self._stop.is_set() and not self.services.stopping:
            if len(self._running) < engine.max_batches:
                now = time.monotonic()
                cooling = [j for j, (_, until) in self._crashes.items() if until > now]
                try:
                    claim = partial(jobs.claim_job, exclude=[*self._running, *cooling])
                    job = await self.store.write(claim, KIND, self.owner, engine.lease_seconds)
                except duckdb.Error:  # e.g. a DuckLake commit conflict with another replica's claim
                    log.warning("claiming a scoring batch failed; retrying", exc_info=True)
                    job = None
                if job is not None and self._stop.is_set():  # stopped while claiming: hand it back
                    await self._quietly(jobs.release_job, job.id, self.owner)
                    return
                if job is not None:
                    task = asyncio.create_task(self._run(job), name=f"score-batch-{job.id[:8]}")
                    self._running[job.id] = task
                    task.add_done_callback(lambda _t, job_id=job.id: self._finished(job_id))
                    continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), engine.poll_seconds)
            except TimeoutError:
                pass

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._wake.set()

    async def _run(self, job: jobs.Job) -> None:
        name = job.params.get("scorer")
        scorer = self.registry.get(name) if isinstance(name, str) else None
        if scorer is None:
            await self._quietly(jobs.fail_job, job.id, self.owner, f"scorer {name!r} is not available on this server")
            return
        runner = BatchRunner(
            self.store, job, scorer, owner=self.owner, config=self.config.engine, stop_event=self._stop
        )
        finished: jobs.Job | None = None
        try:
            finished = await runner.run()
            if finished is not None:
                self._crashes.pop(job.id, None)
                log.info("batch %s (%s): %s, %d scored, %d failed", job.id, name, finished.status, finished.completed, finished.failed)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            count = self._crashes.get(job.id, (0, 0.0))[0] + 1
            self._crashes[job.id] = (count, time.monotonic() + 5.0 * 2**count)
            log.exception("batch %s crashed (%d time(s))", job.id, count)
            if count >= MAX_CRASHES:
                await self._quietly(jobs.fail_job, job.id, self.owner, f"gave up after {count} crashes: {exc}")
        finally:
            if finished is None and not runner.lease_lost:
                await self._quietly(jobs.release_job, job.id, self.owner)

    async def _quietly(self, fn: object, *args: object) -> None:
        try:
            await self.store.write(fn, *args)  # type: ignore[arg-type]
        except (duckdb.Error, jobs.LeaseLost):
            log.warning("batch %s: could not update its state", args[0], exc_info=True)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._loop is not None:
            # Let a claim in progress finish (and hand its job back) rather than orphan its lease.
            try:
                await asyncio.wait_for(asyncio.shield(self._loop), timeout=5.0)
            except (TimeoutError, Exception):
                self._loop.cancel()
                await asyncio.gather(self._loop, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.engine.drain_seconds + 5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)
        await self.registry.aclose()


async def start(services: "Services") -> ScoringComponent:
    config = ScoringConfig.from_sections(services.settings.sections)
    registry = ScorerRegistry.load(config)
    component = ScoringComponent(services, registry, config)
    await component.start()
    return component
