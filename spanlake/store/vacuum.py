"""When DuckDB may vacuum at a checkpoint: only after rows were deleted (embedded store).

A checkpoint's vacuum merges row groups to give back the space of deleted rows. Under
append-only ingest there is nothing to give back, yet it still merges the partly filled row
groups each checkpoint leaves, rewriting the same spans again and again. Measured with
`python bench/store_floor.py` (800-span commits, automatic checkpoints every 256 MB of WAL):
vacuum costs about a quarter of DuckDB's CPU per span and doubles the longest commit stall.

So the store opens with vacuum off; a write that deletes rows turns it on; and our own
checkpoint, once it has succeeded with vacuum on, turns it off again. "On until one of our
checkpoints succeeded", not "on for our checkpoint": DuckDB vacuums a row group only at the
first checkpoint after rows were deleted from it, and an automatic checkpoint may come first.
Row groups whose rows are all deleted are dropped with vacuum off too (retention's oldest-first
deletes mostly do that).
"""

from __future__ import annotations

import duckdb

OFF = 0
ON = 100  # DuckDB's own default


def after_delete(cur: duckdb.DuckDBPyConnection, deleted: int) -> None:
    """Call in a write that deleted `deleted` rows, so the next checkpoint reclaims their space."""
    if deleted:
        cur.execute(f"SET max_vacuum_tasks = {ON}")


def checkpoint(cur: duckdb.DuckDBPyConnection) -> None:
    """Write the WAL into the file and reclaim what deleted rows left; then vacuum is off again."""
    cur.execute(f"SET max_vacuum_tasks = {ON}")
    cur.execute("CHECKPOINT")
    # Only after success: a failed checkpoint leaves deletes that the next one must vacuum.
    cur.execute(f"SET max_vacuum_tasks = {OFF}")
