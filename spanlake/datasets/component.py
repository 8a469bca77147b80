"""The dataset runs background component: claims run jobs, executes and scores them, resumes them.

Claiming goes through the job lease (store/jobs.py, kind "run"), so replicas sharing a lake split
the runs and take over a dead replica's once its lease passes. On the embedded store no other
process can hold the file, so leases a killed process left behind are dropped at start.

Scorers come from the scoring component's registry (started before this one). Stop: nothing new
is dispatched, calls in flight get `drain_seconds`, then unfinished runs are handed back.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
import uuid
from functools import partial
from typing import TYPE_CHECKING, Any

import duckdb

from spanlake.datasets.run_config import RunsConfig
from spanlake.datasets.run_runner import RunRunner
from spanlake.datasets.runs import KIND
from spanlake.store import jobs, runs

if TYPE_CHECKING:
    from spanlake.server import Services

log = logging.getLogger(__name__)

SCORING_COMPONENT = "spanlake.scoring.component"
MAX_CRASHES = 3


class RunsComponent:
    def __init__(self, services: "Services", config: RunsConfig):
        self.services = services
        self.store = services.store
        self.config = config
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._running: dict[str, asyncio.Task[None]] = {}  # job id -> task
        self._runners: dict[str, RunRunner] = {}  # run id -> runner
        self._crashes: dict[str, tuple[int, float]] = {}
        self._loop: asyncio.Task[None] | None = None

    @property
    def registry(self) -> Any:
        scoring = self.services.components.get(SCORING_COMPONENT)
        return None if scoring is None else scoring.registry

    async def start(self) -> None:
        if not self.store.is_lake:
            released = await self.store.write(jobs.release_all, KIND)
            if released:
                log.info("resuming %d unfinished dataset run(s)", released)
        self._loop = asyncio.create_task(self._claim_loop(), name="spanlake-runs")

    def wake(self) -> None:
        """A run was created or completed: look for work now rather than at the next poll."""
        self._wake.set()

    def cancelled(self, run_id: str) -> None:
        """The API cancelled a run: its runner (if here) stops dispatching at once."""
        runner = self._runners.get(run_id)
        if runner is not None:
            runner.cancel()
        self._wake.set()

    async def _claim_loop(self) -> None:
        while not self._stop.is_set() and not self.services.stopping:
            if len(self._running) < self.config.max_runs:
                now = time.monotonic()
                cooling = [j for j, (_, until) in self._crashes.items() if until > now]
                try:
                    claim = partial(jobs.claim_job, exclude=[*self._running, *cooling])
                    job = await self.store.write(claim, KIND, self.owner, self.config.lease_seconds)
                except duckdb.Error:  # e.g. a DuckLake commit conflict with another replica's claim
                    log.warning("claiming a dataset run failed; retrying", exc_info=True)
                    job = None
                if job is not None:
                    task = asyncio.create_task(self._run(job), name=f"run-{job.id[:8]}")
                    self._running[job.id] = task
                    task.add_done_callback(lambda _t, job_id=job.id: self._finished(job_id))
                    continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), self.config.poll_seconds)
            except TimeoutError:
                pass

    def _finished(self, job_id: str) -> None:
        self._running.pop(job_id, None)
        self._wake.set()

    async def _run(self, job: jobs.Job) -> None:
        run_id = job.params.get("run_id")
        run = await self.store.read(runs.get_run, run_id) if isinstance(run_id, str) else None
        if run is None:
            await self._quietly(jobs.fail_job, job.id, self.owner, f"run {run_id!r} no longer exists")
            return
        scorers, missing = [], []
        for name in run.scorers:
            scorer = self.registry.get(name) if self.registry is not None else None
            (scorers if scorer is not None else missing).append(scorer or name)
        if missing and run.status != runs.CANCELLED:
            reason = f"scorer(s) {', '.join(missing)} not available on this server"
            await self._quietly(self._fail, job.id, run.id, reason)
            return
        runner = RunRunner(self.store, job, run, scorers, owner=self.owner, config=self.config, stop_event=self._stop)
        self._runners[run.id] = runner
        status: str | None = None
        try:
            status = await runner.run()
            if status is not None:
                self._crashes.pop(job.id, None)
                log.info("run %s (%s): %s", run.id, run.name, status)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            count = self._crashes.get(job.id, (0, 0.0))[0] + 1
            self._crashes[job.id] = (count, time.monotonic() + 5.0 * 2**count)
            log.exception("run %s crashed (%d time(s))", run.id, count)
            if count >= MAX_CRASHES:
                await self._quietly(self._fail, job.id, run.id, f"gave up after {count} crashes: {exc}")
                status = runs.FAILED
        finally:
            self._runners.pop(run.id, None)
            if status is None and not runner.lease_lost:
                await self._quietly(jobs.release_job, job.id, self.owner)

    def _fail(self, cur: duckdb.DuckDBPyConnection, job_id: str, run_id: str, reason: str) -> None:
        jobs.fail_job(cur, job_id, self.owner, reason)
        runs.set_status(cur, run_id, runs.FAILED, error=reason)

    async def _quietly(self, fn: Any, *args: Any) -> None:
        try:
            await self.store.write(fn, *args)
        except (duckdb.Error, jobs.LeaseLost):
            log.warning("run job %s: could not update its state", args[0], exc_info=True)

    async def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        for runner in list(self._runners.values()):
            runner.halt()
        if self._loop is not None:
            self._loop.cancel()
            await asyncio.gather(self._loop, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, pending = await asyncio.wait(running, timeout=self.config.drain_seconds + 5.0)
            for task in pending:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)


async def start(services: "Services") -> RunsComponent:
    component = RunsComponent(services, RunsConfig.from_sections(services.settings.sections))
    await component.start()
    return component
