"""Which failures are lost races between replicas on one lake, and how long to wait before a retry.

DuckLake commits optimistically: a transaction works on the snapshot it started from, and at
commit it checks what other snapshots changed meanwhile (`ducklake_snapshot_changes`). When the
changes only add rows elsewhere it re-bases the commit itself (up to `ducklake_max_retry_count`
times); when they touch what it changed (see store/locks.py) it fails with "Transaction
conflict". Redoing the whole transaction against the new snapshot is then correct, so the store
retries these, and only these, a bounded number of times.
"""

from __future__ import annotations

import random

import duckdb

# Substrings of the errors that mean "another writer won; run the transaction again".
_MARKERS = (
    "Transaction conflict",  # a logical conflict found at commit
    "Exceeded the maximum retry count",  # DuckLake's own re-bases kept losing the snapshot race
    "duplicate key value violates unique constraint",  # two first-time ATTACHes creating the catalog
    # PostgreSQL aborted one of two catalog transactions that locked each other's rows (seen when
    # two replicas commit inlined inserts and deletes at once); its advice is to retry it.
    "deadlock detected",
    "could not serialize access due to concurrent update",
)

MAX_ATTEMPTS = 12


def is_conflict(exc: BaseException) -> bool:
    return isinstance(exc, duckdb.Error) and any(marker in str(exc) for marker in _MARKERS)


def backoff_seconds(attempt: int) -> float:
    """Exponential with full jitter, so two replicas that collided do not collide again in step."""
    return random.uniform(0.0, min(2.0, 0.02 * 2**attempt))
