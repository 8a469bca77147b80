"""Running one scoring batch: load traces in chunks, score with bounded concurrency, write in bulk.

Three loops per batch, joined by bounded hand-offs so memory stays flat on any batch size:

- the producer reads pending items `chunk_traces` at a time and their spans in one query, one
  chunk ahead of the scorers;
- scoring: async scorers run one task per trace under the scorer's semaphore (shared by every
  batch using that scorer); sync scorers (pure code) run a whole chunk per worker-thread hop;
- the writer group-commits outcomes (up to `flush_scores` per transaction, waiting at most
  `linger_seconds` for more): scores and "item done"
  in one transaction, so a crash leaves each item either scored and done, or pending and scored
  again after the restart.

Transient errors are retried here, for every scorer alike, with exponential backoff and jitter,
never sooner than the server's Retry-After.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import duckdb

from spanlake.query.traces import load_traces
from spanlake.scoring.base import ScoreContext, ScoreResult, ScoringError, TransientError
from spanlake.scoring.config import EngineConfig
from spanlake.scoring.registry import RegisteredScorer
from spanlake.store import Store, jobs
from spanlake.store.scores import upsert_scores
from spanlake.clock import utc_now

log = logging.getLogger(__name__)

BACKOFF_BASE_S = 0.5
BACKOFF_MAX_S = 30.0
MAX_EXPLANATION = 4000
_END = object()
# Called in the transaction that records a runner's outcomes, with those still pending (fresh).
OutcomeHook = Callable[[duckdb.DuckDBPyConnection, list[jobs.ItemOutcome]], None]


def backoff_delay(attempt: int, retry_after: float | None) -> float:
    """Full-jitter exponential backoff, but never sooner than the server asked."""
    delay = random.uniform(0, min(BACKOFF_MAX_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, BACKOFF_MAX_S * 4))
    return delay


class Work:
    """One item ready to score: its job item and its trace's spans (None when the trace is gone)."""

    __slots__ = ("item", "spans")

    def __init__(self, item: jobs.JobItem, spans: list[dict[str, Any]] | None):
        self.item = item
        self.spans = spans


class BatchRunner:
    def __init__(
        self,
        store: Store,
        job: jobs.Job,
        scorer: RegisteredScorer,
        *,
        owner: str,
        config: EngineConfig,
        stop_event: asyncio.Event,
        source: str = "eval",
        metadata: Mapping[str, Any] | None = None,
        on_outcomes: OutcomeHook | None = None,
    ):
        """`source` and `metadata` go on every score (a scoring rule: "rule" and the rule's name);
        `on_outcomes` sees the outcomes recorded, in their transaction (a rule's counters)."""
        self.store = store
        self.source = source
        self.metadata = dict(metadata or {})
        self.on_outcomes = on_outcomes
        self.job = job
        self.scorer = scorer
        self.owner = owner
        self.config = config
        self._stop_event = stop_event
        self._results: asyncio.Queue[Any] = asyncio.Queue(maxsize=2 * config.flush_scores)
        self._tasks: set[asyncio.Task[None]] = set()
        self.lease_lost = False

    def stopping(self) -> bool:
        return self.lease_lost or self._stop_event.is_set()

    async def run(self) -> jobs.Job | None:
        """Score every pending item; returns the finished job, or None if stopped before the end."""
        writer = asyncio.create_task(self._write_loop(), name=f"score-writer-{self.job.id[:8]}")
        heartbeat = asyncio.create_task(self._heartbeat(), name=f"score-lease-{self.job.id[:8]}")
        try:
            await self._produce()
            await self._drain_tasks()
        except asyncio.CancelledError:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            raise
        finally:
            await self._results.put(_END)
            await writer
            heartbeat.cancel()
            await asyncio.gather(heartbeat, return_exceptions=True)
        if self.stopping():
            return None
        return await self.store.write(jobs.finish_job, self.job.id, self.owner)

    # Producer -------------------------------------------------------------------------------

    async def _produce(self) -> None:
        last_seq = -1
        nxt: asyncio.Task[list[Work]] | None = asyncio.create_task(self._load(last_seq))
        while nxt is not None:
            chunk = await nxt
            nxt = None
            if not chunk or self.stopping():
                return
            last_seq = chunk[-1].item.seq
            nxt = asyncio.create_task(self._load(last_seq))  # read ahead while this chunk scores
            try:
                if self.scorer.is_async:
                    for work in chunk:
                        if not await self._acquire_slot():
                            return
                        self._spawn(self._score_async(work))
                else:
                    await self._score_sync_chunk(chunk)
            finally:
                if self.stopping() and nxt is not None:
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
                    nxt = None

    async def _acquire_slot(self) -> bool:
        """Wait for a free call slot of the scorer; False (and no slot held) once stopping.

        Calls in flight free their slots within `drain_seconds` of a stop, and the component
        cancels a runner that takes longer, so a plain acquire cannot hang a shutdown.
        """
        if self.stopping():
            return False
        await self.scorer.slots.acquire()
        if self.stopping():
            self.scorer.slots.release()
            return False
        return True

    async def _load(self, after_seq: int) -> list[Work]:
        items = await self.store.read(jobs.pending_items, self.job.id, after_seq, self.config.chunk_traces)
        if not items:
            return []
        spans = await self.store.read(load_traces, list({i.trace_id for i in items}))
        return [Work(item, spans.get(item.trace_id)) for item in items]

    def _spawn(self, coro: Any) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _drain_tasks(self) -> None:
        if not self._tasks:
            return
        if not self.stopping():
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
            return
        # Shutting down: let calls in flight finish (their results get written), up to a bound.
        done, pending = await asyncio.wait(list(self._tasks), timeout=self.config.drain_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    # Scoring --------------------------------------------------------------------------------

    def _context(self, work: Work) -> ScoreContext:
        if work.spans is None:
            raise ScoringError(f"trace {work.item.trace_id} is no longer in the store")
        target = None
        if work.item.span_id is not None:
            target = next((s for s in work.spans if s["span_id"] == work.item.span_id), None)
            if target is None:
                raise ScoringError(f"span {work.item.span_id} is not in trace {work.item.trace_id}")
        return ScoreContext(
            trace_id=work.item.trace_id,
            spans=work.spans,
            target=target,
            params=self.scorer.params,
        )

    async def _score_async(self, work: Work) -> None:
        try:
            outcome = await self._attempts(work, work.item.attempts, first_error=None)
        finally:
            self.scorer.slots.release()
        await self._results.put(outcome)

    async def _attempts(self, work: Work, attempts: int, first_error: TransientError | None) -> jobs.ItemOutcome:
        """Try until success, a permanent error, or max_attempts; sleeps between transient errors."""
        error = first_error
        while True:
            if error is not None:
                if attempts >= self.scorer.max_attempts:
                    return self._failed(work, attempts, f"gave up after {attempts} attempts: {error}")
                await asyncio.sleep(backoff_delay(attempts, error.retry_after))
            attempts += 1
            try:
                ctx = self._context(work)
                if self.scorer.is_async:
                    async with asyncio.timeout(self.scorer.timeout_s):
                        result = await self.scorer.scorer.score(ctx)  # type: ignore[misc]
                else:
                    result = await asyncio.to_thread(self.scorer.scorer.score, ctx)
                return self._done(work, ctx, result, attempts)  # type: ignore[arg-type]
            except TimeoutError:
                error = TransientError(f"no answer within {self.scorer.timeout_s:g}s")
            except TransientError as exc:
                error = exc
            except ScoringError as exc:
                return self._failed(work, attempts, str(exc))
            except Exception as exc:  # a scorer's bug fails its item, never the batch
                log.debug("scorer %s failed on %s", self.scorer.name, work.item.trace_id, exc_info=True)
                return self._failed(work, attempts, f"{type(exc).__name__}: {exc}")

    async def _score_sync_chunk(self, chunk: list[Work]) -> None:
        # Pure-code scorers need one thread; a blocking user function may ask for more.
        n = max(1, min(self.scorer.concurrency, len(chunk)))
        parts = [chunk[i::n] for i in range(n)]
        results = await asyncio.gather(*(asyncio.to_thread(self._score_many, part) for part in parts))
        for work, outcome in ((w, o) for part, res in zip(parts, results) for w, o in zip(part, res)):
            if isinstance(outcome, TransientError):
                self._spawn(self._retry_sync(work, outcome))
            else:
                await self._results.put(outcome)

    async def _retry_sync(self, work: Work, error: TransientError) -> None:
        await self._results.put(await self._attempts(work, work.item.attempts + 1, first_error=error))

    def _score_many(self, chunk: list[Work]) -> list[jobs.ItemOutcome | TransientError]:
        """On a worker thread: one hop for a whole chunk of a pure-code scorer."""
        out: list[jobs.ItemOutcome | TransientError] = []
        attempts_of = lambda w: w.item.attempts + 1  # noqa: E731
        for work in chunk:
            try:
                ctx = self._context(work)
                out.append(self._done(work, ctx, self.scorer.scorer.score(ctx), attempts_of(work)))  # type: ignore[arg-type]
            except TransientError as exc:
                out.append(exc)
            except ScoringError as exc:
                out.append(self._failed(work, attempts_of(work), str(exc)))
            except Exception as exc:
                out.append(self._failed(work, attempts_of(work), f"{type(exc).__name__}: {exc}"))
        return out

    def _done(self, work: Work, ctx: ScoreContext, result: ScoreResult, attempts: int) -> jobs.ItemOutcome:
        if not isinstance(result, ScoreResult):
            raise ScoringError(f"scorer returned {type(result).__name__}, not a ScoreResult")
        value, data_type = result.normalized()
        explanation = result.explanation
        if explanation is not None and len(explanation) > MAX_EXPLANATION:
            explanation = explanation[:MAX_EXPLANATION] + "..."
        row = {
            "id": uuid.uuid4().hex,
            "trace_id": ctx.trace_id,
            "span_id": ctx.span["span_id"],
            "name": self.scorer.name,
            "value": value,
            "label": result.label,
            "data_type": data_type,
            "source": self.source,
            "scorer": self.scorer.name,
            "explanation": explanation,
            "metadata": _json({**(result.metadata or {}), **self.metadata} if self.metadata else result.metadata),
            "batch_id": self.job.id,
            "created_at": utc_now(),
            "created_by": self.job.params.get("created_by"),  # the key that asked for the batch
        }
        return jobs.ItemOutcome(work.item.seq, jobs.ITEM_DONE, attempts, None, {"score": row})

    def _failed(self, work: Work, attempts: int, error: str) -> jobs.ItemOutcome:
        target = {"trace_id": work.item.trace_id, "span_id": work.item.span_id}
        return jobs.ItemOutcome(work.item.seq, jobs.ITEM_FAILED, attempts, error[:1000], {"target": target})

    # Writer and lease -------------------------------------------------------------------------

    async def _write_loop(self) -> None:
        """Group commit: write what finished while the previous transaction ran, or within a linger.

        Fast scorers fill the queue during a commit, so transactions grow to `flush_scores`. Slow
        ones (LLM calls) get their answers stored within `linger_seconds`: few paid calls are lost
        to a crash, and a commit per answer (several statements each) is not paid at 100s/s.
        """
        loop = asyncio.get_running_loop()
        end = False
        while not end:
            item = await self._results.get()
            if item is _END:
                return
            buffer = [item]
            deadline = loop.time() + self.config.linger_seconds
            while len(buffer) < self.config.flush_scores:
                try:
                    item = self._results.get_nowait()
                except asyncio.QueueEmpty:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        break
                    try:
                        item = await asyncio.wait_for(self._results.get(), remaining)
                    except TimeoutError:
                        break
                if item is _END:
                    end = True
                    break
                buffer.append(item)
            await self._flush(buffer)

    async def _flush(self, outcomes: list[jobs.ItemOutcome]) -> None:
        if self.lease_lost:
            return
        for attempt in range(1, 6):
            try:
                await self.store.write(self._commit, outcomes)
                return
            except jobs.LeaseLost:
                log.warning("batch %s: lease lost to another replica; stopping here", self.job.id)
                self.lease_lost = True
                return
            except Exception as exc:
                # The writer must outlive any failure: producers block on the bounded queue it drains.
                if attempt == 5 or not isinstance(exc, duckdb.Error):
                    log.exception("batch %s: could not write %d results; they will be scored again", self.job.id, len(outcomes))
                    self.lease_lost = True  # stop; the items stay pending and the batch resumes later
                    return
                await asyncio.sleep(0.2 * 2**attempt)

    def _commit(self, cur: duckdb.DuckDBPyConnection, outcomes: list[jobs.ItemOutcome]) -> None:
        """On the writer thread, one transaction: items done, then the scores of those still pending."""
        fresh = set(jobs.record_outcomes(cur, self.job.id, self.owner, outcomes, self.config.lease_seconds))
        upsert_scores(cur, [o.extra["score"] for o in outcomes if o.seq in fresh and "score" in o.extra])
        if self.on_outcomes is not None:
            self.on_outcomes(cur, [o for o in outcomes if o.seq in fresh])

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.config.lease_seconds / 3)
            try:
                await self.store.write(jobs.renew_lease, self.job.id, self.owner, self.config.lease_seconds)
            except jobs.LeaseLost:
                log.warning("batch %s: lease lost to another replica; stopping here", self.job.id)
                self.lease_lost = True
                return
            except duckdb.Error:
                log.warning("batch %s: renewing the lease failed; retrying", self.job.id, exc_info=True)


def _json(metadata: Any) -> str | None:
    if metadata is None:
        return None
    return json.dumps(dict(metadata), default=str, ensure_ascii=False)
