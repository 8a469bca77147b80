"""Running one claimed run job: execute every pending item against the target, then score.

Two phases, so that a target's OTLP spans (exported asynchronously by its SDK) have arrived by
the time trace-aware scorers look at them:

1. execute (server-side runs): pending results are read in seq order, `concurrency` calls are in
   flight at most, and answers are group-committed. A result is written only while still pending
   and only by the lease holder, so a restart re-executes just the calls that were in flight.
2. score: every pending job item's result is scored by each scorer, and its scores, span link and
   "item done" commit in one transaction.

Cancellation (the run's status set to cancelled by the API, seen through an event from the
component or a status poll) stops dispatching at once; calls in flight finish and are recorded.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import duckdb

from spanlake.runs.config import RunsConfig
from spanlake.runs.scoring import Scored, score_result
from spanlake.runs.target import Target
from spanlake.query.traces import load_traces
from spanlake.scoring.registry import RegisteredScorer
from spanlake.store import Store, jobs, runs
from spanlake.outbound import OutboundPolicy

log = logging.getLogger(__name__)

_END = object()
CANCELLED = "cancelled"


class RunRunner:
    def __init__(
        self,
        store: Store,
        job: jobs.Job,
        run: runs.Run,
        scorers: list[RegisteredScorer],
        *,
        owner: str,
        config: RunsConfig,
        stop_event: asyncio.Event,
        outbound: OutboundPolicy,
    ):
        self.store = store
        self.job = job
        self.run_row = run
        self.scorers = scorers
        self.owner = owner
        self.config = config
        self.outbound = outbound
        self._stop = stop_event
        self._cancel = asyncio.Event()
        self._halt = asyncio.Event()  # any reason to stop dispatching
        self.lease_lost = False
        self._last_execution = 0.0

    def cancel(self) -> None:
        """The run was cancelled: dispatch nothing more (calls in flight finish)."""
        self._cancel.set()
        self._halt.set()

    def halt(self) -> None:
        """Shutting down: stop dispatching; the job is handed back for the next start."""
        self._halt.set()

    def halted(self) -> bool:
        return self._halt.is_set() or self._stop.is_set() or self._cancel.is_set() or self.lease_lost

    async def run(self) -> str | None:
        """The run's final status, or None when stopped (shutdown, lost lease) before the end."""
        if self.run_row.status == runs.CANCELLED:
            await self.store.write(jobs.fail_job, self.job.id, self.owner, CANCELLED)
            return runs.CANCELLED
        await self.store.write(runs.set_status, self.run_row.id, runs.RUNNING)
        watch = asyncio.create_task(self._watch(), name=f"run-watch-{self.run_row.id[-8:]}")
        try:
            if self.run_row.mode == "server" and self.run_row.target is not None:
                await self._execute()
            if not self.halted():
                await self._wait_for_traces()
            if not self.halted():
                await self._score()
        finally:
            watch.cancel()
            await asyncio.gather(watch, return_exceptions=True)
        if self._cancel.is_set():
            await self.store.write(jobs.fail_job, self.job.id, self.owner, CANCELLED)
            return runs.CANCELLED
        if self.halted():
            return None
        return await self.store.write(self._finish)

    # Phase 1: execute ------------------------------------------------------------------------

    async def _execute(self) -> None:
        assert self.run_row.target is not None
        target = Target(self.run_row.target, concurrency=self.run_row.concurrency, run_id=self.run_row.id,
                        outbound=self.outbound)
        slots = asyncio.Semaphore(self.run_row.concurrency)
        done: asyncio.Queue[Any] = asyncio.Queue(maxsize=max(16, 2 * self.run_row.concurrency))
        writer = asyncio.create_task(self._write_loop(done, self._record_executions))
        tasks: set[asyncio.Task[None]] = set()

        async def call(work: dict[str, Any]) -> None:
            try:
                result = await target.call(work)
            finally:
                slots.release()
            self._last_execution = time.monotonic()
            await done.put(result.row())

        try:
            after = -1
            while not self.halted():
                chunk = await self.store.read(runs.pending_work, self.run_row, after, self.config.chunk_items)
                if not chunk:
                    break
                after = chunk[-1]["seq"]
                for work in chunk:
                    if not await self._acquire(slots):
                        break
                    task = asyncio.create_task(call(work))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)
            await self._drain(tasks)
        finally:
            for task in list(tasks):
                task.cancel()
            await asyncio.gather(*list(tasks), return_exceptions=True)
            await done.put(_END)
            await writer
            await target.aclose()

    async def _acquire(self, slots: asyncio.Semaphore) -> bool:
        """A free call slot, or False (holding none) once the run must stop dispatching."""
        if self.halted():
            return False
        acquire = asyncio.ensure_future(slots.acquire())
        halt = asyncio.ensure_future(self._halt.wait())
        try:
            await asyncio.wait({acquire, halt}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            halt.cancel()
            if not acquire.done():
                acquire.cancel()
            await asyncio.gather(acquire, halt, return_exceptions=True)
        got = acquire.done() and not acquire.cancelled() and acquire.exception() is None
        if got and self.halted():
            slots.release()
            return False
        return got

    async def _drain(self, tasks: set[asyncio.Task[None]]) -> None:
        """Let calls in flight finish (their answers get recorded); on shutdown, up to a bound."""
        if not tasks:
            return
        timeout = self.config.drain_seconds if self._stop.is_set() else None
        _, pending = await asyncio.wait(list(tasks), timeout=timeout)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _write_loop(self, done: asyncio.Queue[Any], record: Any) -> None:
        """Group commit: store whatever finished while the previous transaction ran."""
        while True:
            item = await done.get()
            end = item is _END
            batch: list[Any] = [] if end else [item]
            while not end and len(batch) < self.config.flush_results:
                try:
                    item = done.get_nowait()
                except asyncio.QueueEmpty:
                    break
                if item is _END:
                    end = True
                else:
                    batch.append(item)
            if batch:
                await self._commit(record, batch)
            if end:
                return

    def _record_executions(self, cur: duckdb.DuckDBPyConnection, rows: list[dict[str, Any]]) -> None:
        jobs.renew_lease(cur, self.job.id, self.owner, self.config.lease_seconds)  # still ours?
        runs.record_executions(cur, self.run_row.id, rows)

    # Phase 2: score --------------------------------------------------------------------------

    async def _wait_for_traces(self) -> None:
        """Give the target's exported spans a moment to arrive before trace-aware scoring."""
        if not self.scorers or not self._last_execution:
            return
        remaining = self.config.trace_wait_seconds - (time.monotonic() - self._last_execution)
        if remaining > 0:
            try:
                await asyncio.wait_for(self._halt.wait(), remaining)
            except TimeoutError:
                pass

    async def _score(self) -> None:
        """Score chunk by chunk; each result is committed (scores + item done) soon after it is scored."""
        done: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * self.config.chunk_items)
        writer = asyncio.create_task(self._write_loop(done, self._record_scores))

        # Results scored at once: enough to keep the widest scorer busy; a halt is seen between them.
        slots = asyncio.Semaphore(max([s.concurrency for s in self.scorers] or [1]))

        async def one(work: dict[str, Any], attempts: int, spans: list[dict[str, Any]] | None) -> None:
            async with slots:
                if not self.halted():
                    await done.put((work, attempts, await self._score_one(work, spans)))

        try:
            after = -1
            while not self.halted():
                items = await self.store.read(jobs.pending_items, self.job.id, after, self.config.chunk_items)
                if not items:
                    return
                after = items[-1].seq
                works = await self.store.read(runs.work_by_seq, self.run_row, [i.seq for i in items])
                attempts = {i.seq: i.attempts + 1 for i in items}
                traced = [w["trace_id"] for w in works if w["trace_id"] and w["status"] == runs.RESULT_OK]
                wanted = self.scorers or self.run_row.mode == "client"  # client scores get linked too
                spans = await self.store.read(load_traces, list(dict.fromkeys(traced))) if wanted and traced else {}
                found = {w["seq"] for w in works}
                missing = Scored(failures=["its result row is missing"])
                for item in items:
                    if item.seq not in found:
                        await done.put(({"seq": item.seq}, attempts[item.seq], missing))
                await asyncio.gather(*(one(w, attempts[w["seq"]], spans.get(w["trace_id"] or "")) for w in works))
        finally:
            await done.put(_END)
            await writer

    async def _score_one(self, work: dict[str, Any], spans: list[dict[str, Any]] | None) -> Scored:
        if work["status"] != runs.RESULT_OK or not (self.scorers or self.run_row.mode == "client"):
            return Scored()  # errors and unposted items are counted, not scored
        return await score_result(work, spans, self.scorers, self.run_row.id)

    def _record_scores(self, cur: duckdb.DuckDBPyConnection, batch: list[tuple[dict[str, Any], int, Scored]]) -> None:
        outcomes = [
            jobs.ItemOutcome(w["seq"], jobs.ITEM_FAILED if s.failures else jobs.ITEM_DONE, n,
                             "; ".join(s.failures)[:1000] or None)
            for w, n, s in batch
        ]
        fresh = set(jobs.record_outcomes(cur, self.job.id, self.owner, outcomes, self.config.lease_seconds))
        kept = [(w, s) for w, _, s in batch if w["seq"] in fresh]
        runs.upsert_run_scores(cur, [row for _, s in kept for row in s.rows])
        runs.link_spans(cur, [s.span_link for _, s in kept if s.span_link is not None])
        runs.link_result_scores(cur, self.run_row.id, [s.trace_link for _, s in kept if s.trace_link is not None])

    def _finish(self, cur: duckdb.DuckDBPyConnection) -> str | None:
        """Close the job and the run together; None if items are still pending."""
        job = jobs.finish_job(cur, self.job.id, self.owner)
        if job is None:
            return None
        counts = runs.result_counts(cur, [self.run_row.id])[self.run_row.id]
        failed = counts["total"] > 0 and counts["failed"] >= counts["total"]
        status = runs.FAILED if failed else runs.COMPLETED
        error = "every item failed" if failed else None
        if not runs.set_status(cur, self.run_row.id, status, error=error):
            return runs.run_status(cur, self.run_row.id)
        return status

    # Lease, cancellation, writes -----------------------------------------------------------------

    async def _commit(self, fn: Any, arg: Any) -> None:
        if self.lease_lost:
            return
        for attempt in range(1, 6):
            try:
                await self.store.write(fn, arg)
                return
            except jobs.LeaseLost:
                log.warning("run %s: lease lost to another replica; stopping here", self.run_row.id)
                self._lose_lease()
                return
            except duckdb.Error:
                if attempt == 5:
                    log.exception("run %s: could not record %d results; they will be redone", self.run_row.id, len(arg))
                    self._lose_lease()
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    def _lose_lease(self) -> None:
        self.lease_lost = True
        self._halt.set()

    async def _watch(self) -> None:
        """Renew the lease and notice a cancellation made on another replica (or before a restart)."""
        last_renewal = time.monotonic()
        while True:
            await asyncio.sleep(self.config.poll_seconds / 2)
            if self._cancel.is_set() or self._stop.is_set():
                self._halt.set()
            try:
                status = await self.store.read(runs.run_status, self.run_row.id)
                if status == runs.CANCELLED:
                    self._cancel.set()
                    self._halt.set()
                if time.monotonic() - last_renewal >= self.config.lease_seconds / 3:
                    await self.store.write(jobs.renew_lease, self.job.id, self.owner, self.config.lease_seconds)
                    last_renewal = time.monotonic()
            except jobs.LeaseLost:
                log.warning("run %s: lease lost to another replica; stopping here", self.run_row.id)
                self._lose_lease()
                return
            except duckdb.Error:
                log.warning("run %s: lease renewal failed; retrying", self.run_row.id, exc_info=True)
