"""The dataset runs background component: claims run jobs, executes and scores them, resumes them.

The claim loop, leases (job kind "run"), crash back-off and stop/drain are the shared
LeasedJobWorker's (spanlake/leased_jobs.py); this module says how one run executes. Scorers come
from the server's scorer registry, the one scoring uses (server.py passes it). Stop: nothing new is
dispatched, calls in flight get `drain_seconds`, then unfinished runs are handed back.
"""

from __future__ import annotations

import asyncio
import logging

import duckdb

from spanlake.outbound import OutboundPolicy
from spanlake.runs.pricing import Pricing
from spanlake.runs.config import RunsConfig
from spanlake.runs.runner import RunRunner
from spanlake.runs.service import KIND
from spanlake.leased_jobs import LeasedJobWorker
from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import Store, jobs, runs

log = logging.getLogger(__name__)


class RunsComponent(LeasedJobWorker):
    kind = KIND
    label = "dataset run"

    def __init__(self, store: Store, config: RunsConfig, pricing: Pricing, registry: ScorerRegistry, *,
                 outbound: OutboundPolicy, shutdown: asyncio.Event | None = None):
        super().__init__(store, max_jobs=config.max_runs, lease_seconds=config.lease_seconds,
                         poll_seconds=config.poll_seconds, drain_seconds=config.drain_seconds, shutdown=shutdown)
        self.config = config
        self.pricing = pricing  # the API prices runs and results with it
        self.registry = registry  # the scoring component's scorers
        self.outbound = outbound  # where run targets may point
        self._runners: dict[str, RunRunner] = {}  # run id -> runner

    def cancelled(self, run_id: str) -> None:
        """The API cancelled a run: its runner (if here) stops dispatching at once."""
        runner = self._runners.get(run_id)
        if runner is not None:
            runner.cancel()
        self.wake()

    def halt(self) -> None:
        for runner in list(self._runners.values()):
            runner.halt()

    async def execute(self, job: jobs.Job) -> bool | None:
        run_id = job.params.get("run_id")
        run = await self.store.read(runs.get_run, run_id) if isinstance(run_id, str) else None
        if run is None:
            await self.quietly(jobs.fail_job, job.id, self.owner, f"run {run_id!r} no longer exists")
            return True
        scorers, missing = [], []
        for name in run.scorers:
            scorer = self.registry.get(name)
            (scorers if scorer is not None else missing).append(scorer or name)
        if missing and run.status != runs.CANCELLED:
            await self.quietly(self._fail, job.id, run.id, f"scorer(s) {', '.join(missing)} not available on this server")
            return True
        runner = RunRunner(self.store, job, run, scorers, owner=self.owner, config=self.config, stop_event=self._stop,
                           outbound=self.outbound)
        self._runners[run.id] = runner
        try:
            status = await runner.run()
        finally:
            self._runners.pop(run.id, None)
        if status is not None:
            log.info("run %s (%s): %s", run.id, run.name, status)
            return True
        return False if runner.lease_lost else None

    async def give_up(self, job: jobs.Job, reason: str) -> None:
        await self.quietly(self._fail, job.id, job.params.get("run_id"), reason)

    def _fail(self, cur: duckdb.DuckDBPyConnection, job_id: str, run_id: str, reason: str) -> None:
        jobs.fail_job(cur, job_id, self.owner, reason)
        runs.set_status(cur, run_id, runs.FAILED, error=reason)

