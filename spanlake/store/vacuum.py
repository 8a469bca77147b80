"""When DuckDB may vacuum at a checkpoint: only after rows were deleted, one merge at a time.

A checkpoint's vacuum merges row groups to give back the space of deleted rows. Under
append-only ingest there is nothing to give back, yet it still merges the partly filled row
groups each checkpoint leaves, rewriting the same spans again and again: measured with
`python bench/store_floor.py` (1,600-span commits, automatic checkpoints every 256 MB of WAL),
vacuum cost a tenth to a quarter of DuckDB's CPU per span and made the longest commit stall
1.4-2x as long. (End to end, `bench/ingest.py` showed no change in 40 s windows: the server's
other costs hide it.)

So the store opens with vacuum off, and a write that deletes rows turns it on until one of our
checkpoints has succeeded. "Until", not "for our checkpoint": DuckDB vacuums a row group only
at the first checkpoint after rows were deleted from it, and an automatic one may come first.
Our checkpoint never turns vacuum on by itself: after minutes without it, a vacuum would merge
every partly filled row group since (a 9 s commit stall and +1.5 GB in `bench/soak.py`).

One merge task, not DuckDB's default 100: a table appended without vacuum keeps a partly
filled row group per checkpoint, and when retention deleted the oldest 100k of 700k spans, 100
tasks cascaded the merge through every later row group (6.0 s and +0.9 GB of RSS) where one
task took 0.5 s and gave back nearly the same space. Row groups whose rows are all deleted are
dropped with vacuum off too.
"""

from __future__ import annotations

import duckdb

OFF = 0
ON = 1


def after_delete(cur: duckdb.DuckDBPyConnection, deleted: int) -> None:
    """Call in a write that deleted `deleted` rows, so the next checkpoint reclaims their space."""
    if deleted:
        cur.execute(f"SET max_vacuum_tasks = {ON}")


def checkpoint(cur: duckdb.DuckDBPyConnection) -> None:
    """Write the WAL into the file (vacuuming if a delete asked for it); then vacuum is off."""
    cur.execute("CHECKPOINT")
    # Only after success: a failed checkpoint leaves deletes that the next one must vacuum.
    cur.execute(f"SET max_vacuum_tasks = {OFF}")
