"""Cross-replica exclusion without table constraints: a lock row, and leases on lock rows.

Why a table and not a check-then-insert alone: DuckLake detects conflicts per table, from the
kinds of change each commit made (checked against DuckLake 1.5.5 with a PostgreSQL catalog):
two transactions that only INSERT into a table never conflict, so "is the name free? then insert"
run on two replicas at once can create the name twice. Two transactions that both UPDATE (delete
from) the same table do conflict, and the one that commits second fails with "Transaction
conflict" and is retried by `Store.write` against the new snapshot, where its check sees the
winner's row. An UPDATE that matches no row records nothing, so the lock rows always exist.

`hold(cur)` is that UPDATE. Call it inside any write transaction whose correctness depends on a
check seeing every other replica's committed rows (unique dataset names, one score per identity).
On the embedded store the single writer thread already serialises transactions; the UPDATE then
costs microseconds and keeps one code path.

Leases (`try_lease`) use the same rows: one replica at a time runs a singleton background task
(maintenance, the trace-scope capture judge) and another takes over once the lease has passed.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid

import duckdb

from spanlake.clock import utc_now

def new_owner() -> str:
    """A lease holder's name: which host and process, and which holder in it (logs show it)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


UNIQUENESS = "uniqueness"
MAINTENANCE = "maintenance"
CAPTURE_JUDGE = "capture-judge"
WRITE_FENCE = "write-fence"
# The rows the migrations (store/schema.py) create; a new name needs a new migration.
LOCK_NAMES = (UNIQUENESS, MAINTENANCE, CAPTURE_JUDGE, WRITE_FENCE)


def hold(cur: duckdb.DuckDBPyConnection, name: str = UNIQUENESS) -> None:
    """Make this transaction conflict with every other one that holds a lock until it commits."""
    cur.execute("UPDATE locks SET version = version + 1, updated_at = ? WHERE name = ?", [utc_now(), name])


def try_lease(cur: duckdb.DuckDBPyConnection, name: str, owner: str, seconds: float) -> bool:
    """Take or renew the lease `name` for `owner`; False while another owner's lease runs.

    Two replicas taking a free lease at once both UPDATE the row, so one of them conflicts and,
    retried, finds the lease taken.
    """
    now = utc_now()
    cur.execute(
        "UPDATE locks SET holder = ?, lease_until = ?, version = version + 1, updated_at = ? "
        "WHERE name = ? AND (holder IS NULL OR holder = ? OR lease_until < ?)",
        [owner, now + dt.timedelta(seconds=seconds), now, name, owner, now],
    )
    row = cur.execute("SELECT holder FROM locks WHERE name = ?", [name]).fetchone()
    return row is not None and row[0] == owner


def release_lease(cur: duckdb.DuckDBPyConnection, name: str, owner: str) -> None:
    """Hand the lease back on shutdown so another replica need not wait for it to expire."""
    cur.execute(
        "UPDATE locks SET holder = NULL, lease_until = NULL, updated_at = ? WHERE name = ? AND holder = ?",
        [utc_now(), name, owner],
    )


def lease_holder(cur: duckdb.DuckDBPyConnection, name: str) -> tuple[str | None, dt.datetime | None]:
    row = cur.execute("SELECT holder, lease_until FROM locks WHERE name = ?", [name]).fetchone()
    return (row[0], row[1]) if row else (None, None)
