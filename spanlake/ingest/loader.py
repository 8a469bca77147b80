"""The loader: moves the ingest log into the store in large transactions, behind the acks.

Each transaction appends a slice of the log (up to `max_spans` rows: spans, and GenAI events
received as log records, which attach_events.py merges into their spans), runs the commit stages
(span-scope capture rules, scoring rules' queue rows) and records the log position it reached,
all at once. A crash anywhere replays from the recorded position, so every acknowledged span
is stored once and every captured item exists once. After the commit the log may delete the
segments the store now holds.

Large transactions are what the log buys: DuckDB's cost per span falls as transactions grow,
and a checkpoint stalls the loader instead of an exporter's ack.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spanlake.ingest import attach_events
from spanlake.ingest.batch_bytes import GENAI_EVENTS, decode_batch, kind_of
from spanlake.ingest.log import IngestLog, Record
from spanlake.metrics import Metrics
from spanlake.store import Store
from spanlake.store.log_positions import prune_log_positions, read_log_position, record_log_position
from spanlake.store.recent_keys import RecentSpanKeys
from spanlake.store.writer import AppendResult, CommitStage, append_spans

log = logging.getLogger(__name__)

STAGE_FAILURES_BEFORE_SKIPPING = 3


@dataclass(frozen=True)
class LoaderConfig:
    """How the loader forms transactions.

    25,000 spans: DuckDB's cost per span falls as transactions grow (issue 18 measured 13.9
    us/span in 40k-span transactions against 20.6 in 1.6k-span ones), while the transaction's
    Arrow batch stays ~43 MB on the bench load (1.7 KB a span), copied a few times inside.
    `linger_seconds` lets a slow trickle gather into one transaction instead of one per
    request; a read waiting on the loader skips it.
    """

    max_spans: int = 25_000
    linger_seconds: float = 0.05
    retry_seconds: float = 1.0
    prune_every_loads: int = 500  # then the old rows of the position table go

    def validate(self) -> None:
        if self.max_spans < 1:
            raise ValueError(f"the loader's max_spans must be >= 1, got {self.max_spans}")


def _load_slice(
    cur: duckdb.DuckDBPyConnection,
    log_id: str,
    records: Sequence[Record],
    stages: Sequence[CommitStage],
    recent: RecentSpanKeys | None,
) -> AppendResult:
    """One transaction: the slice's spans and GenAI events (told apart by their record's kind),
    then the log position they reach."""
    spans: list[pa.Table] = []
    events: list[pa.Table] = []
    for record in records:
        table = decode_batch(record.payload)
        (events if kind_of(table) == GENAI_EVENTS else spans).append(table)
    # Events first, so spans of this slice find theirs pending; then events whose spans were
    # stored before (attach_events.py says why either may come first).
    fresh = attach_events.load_events(cur, events) if events else None
    result = AppendResult(0, 0)
    if spans:
        batch = pa.concat_tables(spans) if len(spans) != 1 else spans[0]
        result = append_spans(cur, [attach_events.with_pending_events(cur, batch)], stages, recent)
    if fresh is not None:
        attach_events.attach_late(cur, fresh)
    record_log_position(cur, log_id, records[-1].end)
    return result


class Loader:
    """One asyncio task; every transaction runs on the store's writer thread."""

    def __init__(self, ingest_log: IngestLog, store: Store, metrics: Metrics, config: LoaderConfig = LoaderConfig()):
        config.validate()
        self._log = ingest_log
        self._store = store
        self._metrics = metrics
        self.config = config
        self._stages: list[CommitStage] = []
        self._wakeup = asyncio.Event()
        self._progress = asyncio.Condition()
        self._urgent = 0  # reads waiting for a position: load without lingering
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self.unloaded_spans = 0
        self._oldest_at: float | None = None  # when the oldest unloaded record was appended
        self.last_error: str | None = None
        self._loads = 0
        self._failures = 0  # loads in a row that failed outside the store (in a commit stage)

    def add_stage(self, stage: CommitStage) -> None:
        """Run `stage` in every load transaction (capture rules); before start, so records
        replayed from the log at start go through it too."""
        if self._task is not None:
            raise RuntimeError("commit stages are added before the loader starts")
        self._stages.append(stage)

    @property
    def loaded(self) -> int:
        return self._log.loaded

    async def start(self) -> None:
        """Read the position the store reached, release what it holds, and start loading."""
        position = await self._store.read(read_log_position, self._log.log_id)
        if position is not None:
            await asyncio.to_thread(self._log.mark_loaded, position)  # deletes loaded segments
        self.unloaded_spans = await asyncio.to_thread(self._log.count_spans, self._log.loaded)
        self._oldest_at = await asyncio.to_thread(self._log.first_unloaded_at)
        if self.unloaded_spans:
            log.info("ingest log holds %d spans not loaded yet; loading them in the background", self.unloaded_spans)
        self._metrics.watch_loader(self)
        self._task = asyncio.get_running_loop().create_task(self._run(), name="spanlake-loader")

    def appended(self, spans: int) -> None:
        """The log took `spans` more (called after each fsynced append)."""
        self.unloaded_spans += spans
        if self._oldest_at is None:
            self._oldest_at = time.time()
        self._wakeup.set()

    def lag_seconds(self) -> float:
        first = self._oldest_at
        return 0.0 if first is None else max(0.0, time.time() - first)

    async def _run(self) -> None:
        while True:
            if self._log.loaded >= self._log.durable_end:
                if self._stopping:
                    return
                self._wakeup.clear()
                if self._log.loaded >= self._log.durable_end:
                    await self._wakeup.wait()
                continue
            if self._stopping:
                return
            await self._linger()
            try:
                await self._load_once(with_stages=self._failures < STAGE_FAILURES_BEFORE_SKIPPING)
                self._failures = 0
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the log keeps the spans: report, wait, try again
                self.last_error = f"{type(exc).__name__}: {exc}"
                # A store error (full disk, a lake outage) is retried for as long as it lasts; any
                # other error comes from a commit stage's code, and retrying the same slice would
                # block ingest for good, so after a few tries the slice loads without the stages.
                if not isinstance(exc, (duckdb.Error, OSError)):
                    self._failures += 1
                log.exception("loading the ingest log into the store failed (will retry): %s", exc)
                await asyncio.sleep(self.config.retry_seconds)

    async def _linger(self) -> None:
        if self._urgent or self.unloaded_spans >= self.config.max_spans:
            return
        first = self._oldest_at
        wait = self.config.linger_seconds - (time.time() - first) if first is not None else 0.0
        if wait > 0:
            self._wakeup.clear()
            try:
                await asyncio.wait_for(self._wakeup.wait(), wait)
            except TimeoutError:
                pass

    async def _load_once(self, *, with_stages: bool = True) -> None:
        records = await asyncio.to_thread(self._log.read, self._log.loaded, self.config.max_spans)
        if not records:
            return
        started = time.perf_counter()
        stages = list(self._stages) if with_stages else []
        if not with_stages:
            log.error(
                "loading %d spans WITHOUT capture rules: the rules failed on them %d times in a row (see above)",
                sum(r.spans for r in records), self._failures,
            )
        result = await self._store.write(_load_slice, self._log.log_id, records, stages, self._store.recent_span_keys)
        spans = sum(r.spans for r in records)
        self.unloaded_spans = max(0, self.unloaded_spans - spans)
        self.last_error = None
        self._metrics.on_load(time.perf_counter() - started, result, spans)
        self._oldest_at = await asyncio.to_thread(self._release, records[-1].end)
        async with self._progress:
            self._progress.notify_all()
        self._loads += 1
        if self._loads % self.config.prune_every_loads == 0:
            try:
                await self._store.write(prune_log_positions, self._log.log_id)
            except duckdb.Error as exc:  # only housekeeping: the next prune covers it
                log.warning("pruning old ingest log positions failed: %s", exc)

    def _release(self, position: int) -> float | None:
        """Let the log delete what the store now holds; returns when the oldest record left was
        appended (one thread hop for both file operations)."""
        self._log.mark_loaded(position)
        return self._log.first_unloaded_at()

    async def wait_loaded(self, position: int, timeout: float) -> bool:
        """True once the store holds everything before `position`; False after `timeout`."""
        if self._log.loaded >= position:
            return True
        self._urgent += 1
        self._wakeup.set()
        try:
            async with self._progress:
                await asyncio.wait_for(self._progress.wait_for(lambda: self._log.loaded >= position), timeout)
            return True
        except TimeoutError:
            return False
        finally:
            self._urgent -= 1

    async def stop(self) -> None:
        """Stop after the transaction in progress; what is left stays in the log for the next start."""
        self._stopping = True
        self._wakeup.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
