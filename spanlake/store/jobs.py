"""Persisted background jobs: a job row plus one item row per unit of work (a trace or a span).

Generic on purpose: batch scoring, dataset runs and trace-scope capture all need "a list of work
that survives a restart". The contract for a job kind's runner:

1. `create_job` stores the job and its items in one transaction (status `pending`).
2. A replica takes it with `claim_job`: it becomes `owner` until `lease_until`. A replica that
   dies stops renewing, and once the lease has passed any replica may claim the job.
   On an embedded DuckDB file only one process can hold the database, so `release_all` at start
   hands back leases a killed process left behind without waiting for them to expire.
3. The runner reads `pending_items` in `seq` order, does the work, and reports outcomes with
   `record_outcomes` in the same transaction that writes the work's results. Only items that are
   still pending in a job the caller still owns are counted (the returned seqs): so an item is
   never completed twice, even when a lease was lost to another replica meanwhile.
4. `finish_job` closes the job once no item is pending; `release_job` hands it back on shutdown.

No primary keys (DuckLake has none): one writer per process forms every transaction, and across
replicas a conflicting DuckLake commit fails and the caller retries.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.store.relations import rows_relation
from spanlake.clock import utc_now

PENDING, RUNNING, COMPLETED, FAILED = "pending", "running", "completed", "failed"
ITEM_PENDING, ITEM_DONE, ITEM_FAILED = "pending", "done", "failed"
MAX_STORED_ERRORS = 20

_JOB_COLUMNS = (
    "id, kind, status, params::VARCHAR, total, completed, failed, errors::VARCHAR, owner, lease_until, "
    "created_at, updated_at, finished_at"
)

OUTCOME_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("status", pa.string()),
        ("attempts", pa.int64()),
        ("error", pa.string()),
        ("updated_at", pa.timestamp("us")),
    ]
)


class LeaseLost(Exception):
    """Another replica owns the job now (our lease expired); stop working on it."""


@dataclass(frozen=True)
class Job:
    id: str
    kind: str
    status: str
    params: dict[str, Any]
    total: int
    completed: int
    failed: int
    errors: list[dict[str, Any]]
    owner: str | None
    lease_until: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None

    @property
    def done(self) -> bool:
        return self.status in (COMPLETED, FAILED)


@dataclass(frozen=True)
class JobItem:
    seq: int
    trace_id: str
    span_id: str | None
    attempts: int


@dataclass(frozen=True)
class ItemOutcome:
    """What became of one item; `status` is ITEM_DONE or ITEM_FAILED."""

    seq: int
    status: str
    attempts: int = 1
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # runner data, not stored here


def _job(row: tuple[Any, ...]) -> Job:
    (id_, kind, status, params, total, completed, failed, errors, owner, lease, created, updated, finished) = row
    return Job(
        id_, kind, status, json.loads(params) if params else {}, int(total or 0), int(completed or 0),
        int(failed or 0), json.loads(errors) if errors else [], owner, lease, created, updated, finished,
    )


def create_job(
    cur: duckdb.DuckDBPyConnection,
    kind: str,
    params: dict[str, Any],
    items: Sequence[tuple[str, str | None]],
    *,
    job_id: str | None = None,
) -> Job:
    """Store a job with its items (seq = position); a job with no items is completed at once."""
    now = utc_now()
    job_id = job_id or uuid.uuid4().hex
    status = PENDING if items else COMPLETED
    cur.execute(
        "INSERT INTO jobs VALUES (?, ?, ?, ?::JSON, ?, 0, 0, '[]'::JSON, NULL, NULL, ?, ?, ?)",
        [job_id, kind, status, json.dumps(params), len(items), now, now, None if items else now],
    )
    if items:
        table = pa.table(
            {
                "seq": pa.array(range(len(items)), pa.int64()),
                "trace_id": pa.array([t for t, _ in items], pa.string()),
                "span_id": pa.array([s for _, s in items], pa.string()),
            }
        )
        cur.register("_job_items_in", table)
        try:
            cur.execute(
                "INSERT INTO job_items SELECT ?, seq, trace_id, span_id, 'pending', 0, NULL, ? FROM _job_items_in",
                [job_id, now],
            )
        finally:
            cur.unregister("_job_items_in")
    job = get_job(cur, job_id)
    assert job is not None
    return job


def get_job(cur: duckdb.DuckDBPyConnection, job_id: str, kind: str | None = None) -> Job | None:
    sql = f"SELECT {_JOB_COLUMNS} FROM jobs WHERE id = ?"
    params: list[Any] = [job_id]
    if kind is not None:
        sql += " AND kind = ?"
        params.append(kind)
    row = cur.execute(sql, params).fetchone()
    return _job(row) if row else None


def list_jobs(
    cur: duckdb.DuckDBPyConnection,
    kind: str,
    *,
    limit: int,
    status: str | None = None,
    param_equals: dict[str, str] | None = None,
    before: tuple[dt.datetime, str] | None = None,
) -> list[Job]:
    """Newest first; `before` is the (created_at, id) of the previous page's last job."""
    where, params = ["kind = ?"], [kind]
    if status:
        where.append("status = ?")
        params.append(status)
    for key, value in (param_equals or {}).items():
        where.append("json_extract_string(params, ?) = ?")
        params += ["$." + key, value]
    if before is not None:
        where.append("(created_at < ? OR (created_at = ? AND id < ?))")
        params += [before[0], before[0], before[1]]
    rows = cur.execute(
        f"SELECT {_JOB_COLUMNS} FROM jobs WHERE {' AND '.join(where)} ORDER BY created_at DESC, id DESC LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [_job(r) for r in rows]


def claim_job(
    cur: duckdb.DuckDBPyConnection,
    kind: str,
    owner: str,
    lease_seconds: float,
    *,
    exclude: Sequence[str] = (),
) -> Job | None:
    """Take the oldest unfinished job of `kind` that nobody holds (or whose lease has passed)."""
    now = utc_now()
    excluded = list(exclude)
    row = cur.execute(
        "SELECT id FROM jobs WHERE kind = ? AND status IN ('pending', 'running') "
        "AND (owner IS NULL OR lease_until < ?) AND NOT list_contains(?::VARCHAR[], id) "
        "ORDER BY created_at, id LIMIT 1",
        [kind, now, excluded],
    ).fetchone()
    if row is None:
        return None
    cur.execute(
        "UPDATE jobs SET owner = ?, lease_until = ?, status = 'running', updated_at = ? WHERE id = ?",
        [owner, now + dt.timedelta(seconds=lease_seconds), now, row[0]],
    )
    return get_job(cur, row[0])


def renew_lease(cur: duckdb.DuckDBPyConnection, job_id: str, owner: str, lease_seconds: float) -> None:
    """Extend our lease; raises LeaseLost when the job is no longer ours."""
    _check_owner(cur, job_id, owner)
    now = utc_now()
    cur.execute(
        "UPDATE jobs SET lease_until = ? WHERE id = ?", [now + dt.timedelta(seconds=lease_seconds), job_id]
    )


def release_job(cur: duckdb.DuckDBPyConnection, job_id: str, owner: str) -> None:
    """Hand an unfinished job back (shutdown) so the next claim, here or elsewhere, resumes it."""
    cur.execute(
        "UPDATE jobs SET owner = NULL, lease_until = NULL, status = 'pending', updated_at = ? "
        "WHERE id = ? AND owner = ? AND status = 'running'",
        [utc_now(), job_id, owner],
    )


def release_all(cur: duckdb.DuckDBPyConnection, kind: str) -> int:
    """Drop every lease of `kind`: only for a store no other process can have open."""
    # Count, then update: DuckLake has no UPDATE ... RETURNING (one dialect for both stores).
    where = "WHERE kind = ? AND status IN ('pending', 'running') AND owner IS NOT NULL"
    count = cur.execute(f"SELECT count(*) FROM jobs {where}", [kind]).fetchone()[0]
    if count:
        cur.execute(f"UPDATE jobs SET owner = NULL, lease_until = NULL, status = 'pending' {where}", [kind])
    return int(count)


def pending_items(cur: duckdb.DuckDBPyConnection, job_id: str, after_seq: int, limit: int) -> list[JobItem]:
    rows = cur.execute(
        "SELECT seq, trace_id, span_id, attempts FROM job_items "
        "WHERE job_id = ? AND status = 'pending' AND seq > ? ORDER BY seq LIMIT ?",
        [job_id, after_seq, limit],
    ).fetchall()
    return [JobItem(int(s), t, sp, int(a or 0)) for s, t, sp, a in rows]


def record_outcomes(
    cur: duckdb.DuckDBPyConnection,
    job_id: str,
    owner: str,
    outcomes: Sequence[ItemOutcome],
    lease_seconds: float,
) -> list[int]:
    """Mark items done/failed and renew the lease; returns the seqs that were still pending.

    Call it in the transaction that stores the items' results, and store results only for the
    returned seqs: that is what makes "each item completed once" hold across crashes and replicas.
    """
    _check_owner(cur, job_id, owner)
    now = utc_now()
    table = pa.table(
        {
            "seq": [o.seq for o in outcomes],
            "status": [o.status for o in outcomes],
            "attempts": [o.attempts for o in outcomes],
            "error": [o.error for o in outcomes],
            "updated_at": [now] * len(outcomes),
        },
        schema=OUTCOME_SCHEMA,
    )
    # Select, then update the same rows: DuckLake has no UPDATE ... RETURNING. Both read this
    # transaction's snapshot; a replica changing them meanwhile makes the commit conflict.
    # The constant seq range lets zone maps skip row groups the join alone would scan.
    lo, hi = min(o.seq for o in outcomes), max(o.seq for o in outcomes)
    with rows_relation(cur, "_outcomes_in", table) as (rel, rel_params):
        fresh = cur.execute(
            "SELECT j.seq, o.status, j.trace_id, j.span_id, o.error, o.attempts "
            f"FROM job_items j JOIN {rel} o ON j.seq = o.seq "
            "WHERE j.job_id = ? AND j.seq BETWEEN ? AND ? AND j.status = 'pending'",
            [*rel_params, job_id, lo, hi],
        ).fetchall()
        if fresh:
            cur.execute(
                "UPDATE job_items SET status = o.status, attempts = o.attempts, error = o.error, "
                f"updated_at = o.updated_at FROM {rel} o WHERE job_items.job_id = ? "
                "AND job_items.seq BETWEEN ? AND ? AND job_items.seq = o.seq AND job_items.status = 'pending'",
                [*rel_params, job_id, lo, hi],
            )
    done = sum(1 for r in fresh if r[1] == ITEM_DONE)
    failed = [r for r in fresh if r[1] == ITEM_FAILED]
    errors_sql, errors_params = "errors", []
    if failed:
        stored = cur.execute("SELECT errors::VARCHAR FROM jobs WHERE id = ?", [job_id]).fetchone()[0]
        errors = json.loads(stored) if stored else []
        room = MAX_STORED_ERRORS - len(errors)
        if room > 0:
            errors += [
                {"seq": int(s), "trace_id": t, "span_id": sp, "error": e, "attempts": int(a)}
                for s, _, t, sp, e, a in sorted(failed)[:room]
            ]
            errors_sql, errors_params = "?::JSON", [json.dumps(errors)]
    cur.execute(
        f"UPDATE jobs SET completed = completed + ?, failed = failed + ?, errors = {errors_sql}, "
        "lease_until = ?, updated_at = ? WHERE id = ?",
        [done, len(failed), *errors_params, now + dt.timedelta(seconds=lease_seconds), now, job_id],
    )
    return [int(r[0]) for r in fresh]


def finish_job(cur: duckdb.DuckDBPyConnection, job_id: str, owner: str) -> Job | None:
    """Close the job if no item is pending: `failed` when every item failed, else `completed`."""
    _check_owner(cur, job_id, owner)
    left = cur.execute(
        "SELECT count(*) FROM job_items WHERE job_id = ? AND status = 'pending'", [job_id]
    ).fetchone()[0]
    if left:
        return None
    now = utc_now()
    cur.execute(
        "UPDATE jobs SET status = CASE WHEN total > 0 AND failed >= total THEN 'failed' ELSE 'completed' END, "
        "owner = NULL, lease_until = NULL, updated_at = ?, finished_at = ? WHERE id = ?",
        [now, now, job_id],
    )
    return get_job(cur, job_id)


def fail_job(cur: duckdb.DuckDBPyConnection, job_id: str, owner: str, error: str) -> None:
    """The job cannot run at all (e.g. its scorer is gone): close it with that reason."""
    _check_owner(cur, job_id, owner)
    now = utc_now()
    stored = cur.execute("SELECT errors::VARCHAR FROM jobs WHERE id = ?", [job_id]).fetchone()[0]
    errors = [{"error": error}, *(json.loads(stored) if stored else [])][:MAX_STORED_ERRORS]
    cur.execute(
        "UPDATE jobs SET status = 'failed', errors = ?::JSON, owner = NULL, lease_until = NULL, "
        "updated_at = ?, finished_at = ? WHERE id = ?",
        [json.dumps(errors), now, now, job_id],
    )


def _check_owner(cur: duckdb.DuckDBPyConnection, job_id: str, owner: str) -> None:
    row = cur.execute("SELECT owner FROM jobs WHERE id = ?", [job_id]).fetchone()
    if row is None or row[0] != owner:
        raise LeaseLost(f"job {job_id} is owned by {row[0] if row else 'nobody'!r}, not {owner!r}")
