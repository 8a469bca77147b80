"""Scoring rules in the background: queued matches become jobs, which the batch engine runs.

Rules (capture/) append their matches to the store's scoring queue in the transaction that made
them. Every `rule_dispatch_seconds`, one transaction moves the oldest queued matches into one
job per (rule, scorer) and deletes them from the queue (store/rule_scores.py): a restart loses
no match and dispatches none twice. The jobs are leased, resumed and run by the same BatchRunner
as `POST /api/scores/batch` (retries, the scorer's shared concurrency slots, group-committed
scores with "item done"), with `source: rule` and `metadata.rule` on every score, and the
rule's counters (scored, failed, recent failures) updated when outcomes commit.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import duckdb

from spanlake.capture.counters import RuleCounter, RuleCounters
from spanlake.leased_jobs import LeasedJobWorker
from spanlake.scoring.config import ScoringConfig
from spanlake.scoring.engine import BatchRunner
from spanlake.scoring.registry import ScorerRegistry
from spanlake.store import Store, jobs
from spanlake.store.fence import WriteFence
from spanlake.store.rule_scores import RULE_JOB_KIND, take_queued
from spanlake.clock import utc_now

log = logging.getLogger(__name__)

SOURCE = "rule"


def dispatch(cur: duckdb.DuckDBPyConnection, limit: int) -> int:
    """One transaction: the oldest queued matches become jobs; returns the matches taken."""
    taken = 0
    for (rule, scorer, scope), targets in take_queued(cur, limit).items():
        params = {"rule": rule, "scorer": scorer, "scope": scope, "source": SOURCE}
        jobs.create_job(cur, RULE_JOB_KIND, params, targets)
        taken += len(targets)
    return taken


class RuleScoringWorker(LeasedJobWorker):
    kind = RULE_JOB_KIND
    label = "scoring rule job"

    def __init__(self, store: Store, registry: ScorerRegistry, config: ScoringConfig, *, fence: WriteFence,
                 counters: RuleCounters, shutdown: asyncio.Event | None = None):
        engine = config.engine
        # New jobs come from our dispatcher, which wakes the claim loop; polling (each poll is a
        # write transaction) is only for jobs a dead replica's lease left, so it can be slow.
        super().__init__(store, max_jobs=engine.max_rule_jobs, lease_seconds=engine.lease_seconds,
                         poll_seconds=max(engine.poll_seconds, engine.lease_seconds / 2),
                         drain_seconds=engine.drain_seconds, shutdown=shutdown)
        self.registry = registry
        self.config = config
        # Dispatching deletes from the queue other replicas of a lake insert into: like the trace
        # judge, it goes through the write fence.
        self.fence = fence
        self.counters = counters  # the rules' counters, shared with capture (GET /api/rules shows them)
        self._dispatcher: asyncio.Task[None] | None = None

    def counter(self, rule: str) -> RuleCounter:
        return self.counters.for_rule(rule)

    async def start(self) -> None:
        await super().start()
        self._dispatcher = asyncio.create_task(self._dispatch_loop(), name="spanlake-rule-dispatch")

    async def _dispatch_loop(self) -> None:
        engine = self.config.engine
        while not self.stopping:
            await asyncio.sleep(engine.rule_dispatch_seconds)
            try:
                # Again at once only while a full take leaves more: under steady traffic that is
                # one job per (rule, scorer) per interval, not one per commit.
                while True:
                    taken = await self.fence.write(dispatch, engine.rule_job_targets)
                    if taken:
                        self.wake()
                    if taken < engine.rule_job_targets or self.stopping:
                        break
            except duckdb.Error as exc:  # e.g. a lake conflict that kept losing: the rows wait
                log.warning("dispatching scoring rules' matches failed (will retry): %s", exc)

    async def execute(self, job: jobs.Job) -> bool | None:
        name, rule = job.params.get("scorer"), job.params.get("rule")
        scorer = self.registry.get(name) if isinstance(name, str) else None
        if scorer is None:
            await self.quietly(jobs.fail_job, job.id, self.owner, f"scorer {name!r} is not available on this server")
            return True
        runner = BatchRunner(
            self.store, job, scorer, owner=self.owner, config=self.config.engine, stop_event=self._stop,
            source=SOURCE, metadata={"rule": rule}, on_outcomes=self._outcomes_hook(str(rule), str(name)),
        )
        finished = await runner.run()
        if finished is not None:
            return True
        return False if runner.lease_lost else None

    def _outcomes_hook(self, rule: str, scorer: str) -> Callable[[duckdb.DuckDBPyConnection, list[jobs.ItemOutcome]], None]:
        counter = self.counter(rule)

        def count(_cur: duckdb.DuckDBPyConnection, outcomes: list[jobs.ItemOutcome]) -> None:
            now = utc_now().isoformat() + "Z"
            failures: list[dict[str, Any]] = [
                {"at": now, "scorer": scorer, **o.extra.get("target", {}), "error": o.error, "attempts": o.attempts}
                for o in outcomes if o.status == jobs.ITEM_FAILED
            ]
            counter.count(scored=len(outcomes) - len(failures))
            if failures:
                counter.failed_calls(failures)

        return count

    def halt(self) -> None:
        if self._dispatcher is not None:
            self._dispatcher.cancel()

    async def close(self) -> None:
        if self._dispatcher is not None:
            await asyncio.gather(self._dispatcher, return_exceptions=True)
