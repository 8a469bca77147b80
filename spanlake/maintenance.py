"""The maintenance component: retention, compaction (lake) and checkpoints (embedded DuckDB).

One replica at a time does it: on a lake the work runs only while this replica holds the
`maintenance` lease (store/locks.py), renewed every tick; when the holder dies its lease passes
and the next replica to tick takes over. On the embedded store the process is alone anyway.
Retention chunks go through the write fence (store/fence.py), which every replica watches, so
they land even while other replicas ingest without pause.

Config (YAML, beside the other settings):

    retention:
      default_days: 30          # --retention-days wins when given
      services: {checkout: 7}   # per root service
      interval_seconds: 300     # how often expired traces are looked for
      chunk_traces: 2000        # traces deleted per transaction
    compaction:                 # DuckLake only
      interval_seconds: 600
      keep_snapshots_seconds: 3600
      delete_files_after_seconds: 600
      checkpoint_interval_seconds: 300   # embedded DuckDB only
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb
from prometheus_client import CollectorRegistry, Gauge

from spanlake.config_section import parse_section
from spanlake.store import Store, compaction, locks
from spanlake.store.fence import WriteFence
from spanlake.store.retention import ChunkResult, RetentionPolicy, delete_expired_chunk
from spanlake.store.vacuum import checkpoint
from spanlake.clock import utc_now

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetentionSection:
    """The `retention:` section as written."""

    default_days: int | None = None
    services: Mapping[str, int] = field(default_factory=dict)
    interval_seconds: float = 300.0
    chunk_traces: int = 2000


@dataclass(frozen=True)
class CompactionSection:
    """The `compaction:` section as written."""

    interval_seconds: float = 600.0
    keep_snapshots_seconds: float = 3600.0
    delete_files_after_seconds: float = 600.0
    checkpoint_interval_seconds: float = 300.0


@dataclass(frozen=True)
class MaintenanceConfig:
    """Both sections together, as the loop uses them (defaults: the sections' own)."""

    retention: RetentionPolicy = field(default_factory=RetentionPolicy)
    retention_interval_seconds: float = RetentionSection.interval_seconds
    chunk_traces: int = RetentionSection.chunk_traces
    compaction_interval_seconds: float = CompactionSection.interval_seconds
    keep_snapshots_seconds: float = CompactionSection.keep_snapshots_seconds
    delete_files_after_seconds: float = CompactionSection.delete_files_after_seconds
    checkpoint_interval_seconds: float = CompactionSection.checkpoint_interval_seconds
    lease_seconds: float = 60.0

    def validate(self) -> None:
        self.retention.validate()
        for name in ("retention_interval_seconds", "compaction_interval_seconds", "checkpoint_interval_seconds"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{_KEYS[name]}: must be > 0 seconds, got {getattr(self, name)!r}")
        if self.chunk_traces < 1:
            raise ValueError(f"retention.chunk_traces: must be >= 1, got {self.chunk_traces!r}")
        if self.keep_snapshots_seconds < 0 or self.delete_files_after_seconds < 0:
            raise ValueError("compaction.keep_snapshots_seconds and delete_files_after_seconds: must be >= 0")

    @property
    def tick_seconds(self) -> float:
        """How often the loop wakes: often enough for the shortest interval and the lease."""
        return max(0.2, min(self.retention_interval_seconds, self.compaction_interval_seconds,
                            self.checkpoint_interval_seconds, self.lease_seconds / 3))

    @classmethod
    def from_settings(cls, retention_days: int | None, sections: Mapping[str, Any]) -> "MaintenanceConfig":
        """The `retention:` and `compaction:` sections; `retention_days` (flag, env) wins over
        `retention.default_days`."""
        retention = parse_section(sections.get("retention"), RetentionSection, "retention")
        compact = parse_section(sections.get("compaction"), CompactionSection, "compaction")
        default = retention_days if retention_days is not None else retention.default_days
        config = cls(
            retention=RetentionPolicy(default, retention.services),
            retention_interval_seconds=retention.interval_seconds,
            chunk_traces=retention.chunk_traces,
            compaction_interval_seconds=compact.interval_seconds,
            keep_snapshots_seconds=compact.keep_snapshots_seconds,
            delete_files_after_seconds=compact.delete_files_after_seconds,
            checkpoint_interval_seconds=compact.checkpoint_interval_seconds,
        )
        config.validate()
        return config


_KEYS = {
    "retention_interval_seconds": "retention.interval_seconds",
    "compaction_interval_seconds": "compaction.interval_seconds",
    "checkpoint_interval_seconds": "compaction.checkpoint_interval_seconds",
}


@dataclass
class MaintenanceStats:
    """What this replica has done; logged, and read by tests through the component."""

    traces_deleted: int = 0
    spans_deleted: int = 0
    compactions: int = 0
    files_merged: int = 0
    files_removed: int = 0
    checkpoints: int = 0
    last_error: str | None = None


class Maintenance:
    def __init__(self, store: Store, config: MaintenanceConfig, fence: WriteFence):
        self.store = store
        self.config = config
        self.owner = locks.new_owner()
        self.stats = MaintenanceStats()
        # Retention chunks go through the write fence (started and stopped by the wiring, as the
        # capture judge and the scoring rules' dispatcher share it).
        self.fence = fence
        self._due: dict[str, float] = {}
        self._task: asyncio.Task[None] | None = None
        self._leased = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._loop(), name="spanlake-maintenance")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._leased:
            try:
                await self.store.write(locks.release_lease, locks.MAINTENANCE, self.owner)
            except duckdb.Error:
                log.warning("could not hand back the maintenance lease; it expires by itself", exc_info=True)

    async def _loop(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_seconds)
            try:
                await self.tick()
            except (duckdb.Error, OSError) as exc:  # the next tick tries again
                self.stats.last_error = str(exc)
                log.error("maintenance failed (will retry): %s", exc)

    def _is_due(self, name: str, interval: float) -> bool:
        now = time.monotonic()
        if now < self._due.get(name, 0.0):
            return False
        self._due[name] = now + interval
        return True

    async def tick(self) -> None:
        if self.store.is_lake:
            self._leased = await self.store.write(
                locks.try_lease, locks.MAINTENANCE, self.owner, self.config.lease_seconds
            )
            if not self._leased:
                return
        if self.config.retention.enabled and self._is_due("retention", self.config.retention_interval_seconds):
            await self.run_retention()
        if self.store.is_lake:
            if self._is_due("compaction", self.config.compaction_interval_seconds):
                await self.compact()
        elif self._is_due("checkpoint", self.config.checkpoint_interval_seconds):
            await self.store.maintain(checkpoint)
            self.stats.checkpoints += 1

    async def run_retention(self) -> None:
        """Delete expired traces chunk by chunk until none is left."""
        total = ChunkResult(0, 0)
        while True:
            chunk = await self.fence.write(
                delete_expired_chunk, self.config.retention, utc_now(), self.config.chunk_traces
            )
            total = ChunkResult(total.traces + chunk.traces, total.spans + chunk.spans,
                                total.job_items + chunk.job_items, total.pending + chunk.pending)
            if chunk.traces < self.config.chunk_traces:
                break
            if self.store.is_lake:  # a long backlog must not outlive our lease
                self._leased = await self.store.write(
                    locks.try_lease, locks.MAINTENANCE, self.owner, self.config.lease_seconds
                )
                if not self._leased:
                    break
            await asyncio.sleep(0)  # let queued ingest commits in between chunks
        self.stats.traces_deleted += total.traces
        self.stats.spans_deleted += total.spans
        if total.traces:
            log.info("retention: deleted %d trace(s), %d span(s), %d finished job item(s), %d pending capture(s)",
                     total.traces, total.spans, total.job_items, total.pending)
            if not self.store.is_lake:
                await self.store.maintain(checkpoint)  # give the space back now, not at the next interval
                self.stats.checkpoints += 1

    async def compact(self) -> None:
        """Flush inlined rows, merge small files, drop expired snapshots and their files."""
        flushed = await self.store.write(compaction.flush_inlined)
        merged = 0
        for table in await self.store.read(compaction.lake_tables):
            try:
                merged += await self.store.write(compaction.merge_files, table)
                if table in compaction.REWRITE_TABLES:
                    merged += await self.store.write(compaction.rewrite_files, table)
            except duckdb.Error as exc:  # e.g. kept losing to another replica's updates of it
                log.warning("compaction of %s skipped this time: %s", table, exc)
        expired = await self.store.write(compaction.expire_snapshots, self.config.keep_snapshots_seconds)
        removed = await self.store.write(compaction.cleanup_files, self.config.delete_files_after_seconds)
        self.stats.compactions += 1
        self.stats.files_merged += merged
        self.stats.files_removed += removed
        log.info("compaction: %d table(s) flushed, %d merge(s), %d snapshot(s) expired, %d file(s) removed",
                 flushed, merged, expired, removed)


def export_metrics(registry: CollectorRegistry, component: Maintenance) -> None:
    """The component's counters as gauges (once per registry: it refuses a name twice)."""
    store, stats = component.store, component.stats
    Gauge(
        "spanlake_store_conflict_retries",
        "Write transactions re-run after losing a commit race to another replica (DuckLake)",
        registry=registry,
    ).set_function(lambda: store.conflict_retries)
    for name, help_text in (
        ("traces_deleted", "Traces deleted by retention on this replica"),
        ("spans_deleted", "Spans deleted by retention on this replica"),
        ("compactions", "Compaction runs completed on this replica (DuckLake)"),
        ("files_removed", "Expired data files removed by compaction on this replica"),
        ("checkpoints", "Checkpoints run by maintenance (embedded DuckDB)"),
    ):
        Gauge(f"spanlake_maintenance_{name}", help_text, registry=registry).set_function(
            lambda name=name: getattr(stats, name)
        )
    Gauge(
        "spanlake_write_fences", "Writes this replica ran behind the write fence (DuckLake)", registry=registry
    ).set_function(lambda: component.fence.fenced_writes)
