"""Retention SQL: delete expired traces in bounded chunks, with the job state only they used.

A trace expires once it ended more than N days ago, N from its root service (the service the
trace listing shows) or the default. Deleted with it: its spans, its trace_index rows, its
pending trace-scope capture, and its items in finished jobs. Never dataset items or scores: they
outlive their spans on purpose (a dataset is a frozen copy, a score a verdict on record).

Each chunk is one write transaction over at most `limit` traces, oldest first, so a chunk is
short and a failure or conflict (another replica ingesting into the same lake) redoes one chunk.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import duckdb

from spanlake.store import vacuum

CHUNK = "_retention_chunk"


@dataclass(frozen=True)
class RetentionPolicy:
    """Days to keep traces: `default_days` (None keeps them) and per-service overrides."""

    default_days: int | None = None
    services: Mapping[str, int] = field(default_factory=dict)

    @property
    def enabled(self) -> bool:
        return self.default_days is not None or bool(self.services)

    def validate(self) -> None:
        if self.default_days is not None and (isinstance(self.default_days, bool) or self.default_days < 1):
            raise ValueError(f"retention.default_days: must be a whole number of days >= 1, got {self.default_days!r}")
        for service, days in self.services.items():
            if isinstance(days, bool) or not isinstance(days, int) or days < 1:
                raise ValueError(f"retention.services.{service}: must be a whole number of days >= 1, got {days!r}")

    def latest_cutoff(self, now: dt.datetime) -> dt.datetime:
        """Nothing that started after this instant can have expired under any rule."""
        days = [*self.services.values(), *([self.default_days] if self.default_days is not None else [])]
        return now - dt.timedelta(days=min(days))

    def cutoff_sql(self, service_expr: str, now: dt.datetime) -> tuple[str, list[Any]]:
        """SQL for the cutoff instant that applies to a service (NULL: kept forever)."""
        sql, params = "CASE", []
        for service, days in sorted(self.services.items()):
            sql += f" WHEN {service_expr} = ? THEN ?::TIMESTAMP"
            params += [service, now - dt.timedelta(days=days)]
        default = None if self.default_days is None else now - dt.timedelta(days=self.default_days)
        if not params:
            return "?::TIMESTAMP", [default]
        return sql + " ELSE ?::TIMESTAMP END", [*params, default]


@dataclass(frozen=True)
class ChunkResult:
    traces: int
    spans: int
    job_items: int = 0
    pending: int = 0


def delete_expired_chunk(
    cur: duckdb.DuckDBPyConnection, policy: RetentionPolicy, now: dt.datetime, limit: int
) -> ChunkResult:
    """Delete up to `limit` expired traces (oldest first) in the caller's transaction."""
    if not policy.enabled:
        return ChunkResult(0, 0)
    latest = policy.latest_cutoff(now)
    service = "coalesce(any_value(service_name) FILTER (WHERE root_span_id IS NOT NULL), any_value(service_name))"
    cutoff_sql, cutoff_params = policy.cutoff_sql(service, now)
    # Rows that started after `latest` cannot be expired; the bound lets zone maps skip them.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {CHUNK} AS
        SELECT trace_id, min(start_time) AS lo, max(end_time) AS hi
        FROM trace_index
        WHERE start_time < ?
        GROUP BY trace_id
        HAVING max(end_time) < {cutoff_sql}
        ORDER BY min(start_time), trace_id
        LIMIT ?
        """,
        [latest, *cutoff_params, limit],
    )
    try:
        traces, lo, hi = cur.execute(f"SELECT count(*), epoch_ns(min(lo)), epoch_ns(max(hi)) FROM {CHUNK}").fetchone()
        if not traces:
            return ChunkResult(0, 0)
        in_chunk = f"trace_id IN (SELECT trace_id FROM {CHUNK})"
        spans = cur.execute(
            f"DELETE FROM spans WHERE start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) AND {in_chunk}",
            [lo, hi],
        ).fetchone()[0]
        cur.execute(f"DELETE FROM trace_index WHERE start_time < ? AND {in_chunk}", [latest])
        vacuum.after_delete(cur, traces)
        # Count before deleting: on DuckLake even a DELETE of nothing may register as a change to
        # the table and conflict with other replicas' writes to it.
        pending = _delete_if_any(cur, "capture_pending", in_chunk)
        _delete_if_any(cur, "genai_events", in_chunk)  # their copies in the spans' events went above
        job_items = _delete_if_any(
            cur, "job_items", f"{in_chunk} AND job_id IN (SELECT id FROM jobs WHERE status IN ('completed', 'failed'))"
        )
        return ChunkResult(int(traces), int(spans), job_items, pending)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {CHUNK}")


def _delete_if_any(cur: duckdb.DuckDBPyConnection, table: str, where: str) -> int:
    count = cur.execute(f"SELECT count(*) FROM {table} WHERE {where}").fetchone()[0]
    if count:
        cur.execute(f"DELETE FROM {table} WHERE {where}")
    return int(count)
