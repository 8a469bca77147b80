"""The scoring background component: claims persisted batches and runs them, resumes after restarts.

The claim loop, leases, crash back-off and stop/drain are the shared LeasedJobWorker's
(spanlake/leased_jobs.py); this module says how one batch runs. Stop: scorers in flight get
`drain_seconds` to finish and their scores are written, then unfinished batches are handed back.
"""

from __future__ import annotations

import asyncio
import logging

from spanlake.capture.counters import RuleCounters
from spanlake.leased_jobs import LeasedJobWorker
from spanlake.scoring.batches import KIND, BatchRequest, create_batch
from spanlake.scoring.config import ScoringConfig
from spanlake.scoring.engine import BatchRunner
from spanlake.scoring.registry import ScorerRegistry
from spanlake.scoring.rule_jobs import RuleScoringWorker
from spanlake.store import Store, jobs
from spanlake.store.fence import WriteFence

log = logging.getLogger(__name__)


class ScoringComponent(LeasedJobWorker):
    kind = KIND
    label = "scoring batch"

    def __init__(self, store: Store, registry: ScorerRegistry, config: ScoringConfig, *, fence: WriteFence,
                 rule_counters: RuleCounters, shutdown: asyncio.Event | None = None):
        engine = config.engine
        super().__init__(store, max_jobs=engine.max_batches, lease_seconds=engine.lease_seconds,
                         poll_seconds=engine.poll_seconds, drain_seconds=engine.drain_seconds, shutdown=shutdown)
        self.registry = registry  # the server's scorers; whoever made the registry closes it
        self.config = config
        # Scoring rules' jobs: the same engine and scorers (so the same concurrency slots), their
        # own claim slots so live rules and user batches do not wait for each other.
        self.rules = RuleScoringWorker(store, registry, config, fence=fence, counters=rule_counters, shutdown=shutdown)

    async def start(self) -> None:
        await super().start()
        await self.rules.start()

    async def stop(self) -> None:
        await self.rules.stop()
        await super().stop()

    async def submit(self, request: BatchRequest) -> tuple[jobs.Job, list[str]]:
        """Store a batch and nudge the claim loop; scoring starts after this returns."""
        job, unknown = await create_batch(self.store, request)
        self.wake()
        return job, unknown

    async def execute(self, job: jobs.Job) -> bool | None:
        name = job.params.get("scorer")
        scorer = self.registry.get(name) if isinstance(name, str) else None
        if scorer is None:
            await self.quietly(jobs.fail_job, job.id, self.owner, f"scorer {name!r} is not available on this server")
            return True
        runner = BatchRunner(self.store, job, scorer, owner=self.owner, config=self.config.engine, stop_event=self._stop)
        finished = await runner.run()
        if finished is not None:
            log.info("batch %s (%s): %s, %d scored, %d failed", job.id, name, finished.status, finished.completed, finished.failed)
            return True
        return False if runner.lease_lost else None
