"""Backfill: run one rule over stored spans, window by window, with the same dedup as live capture.

Each window is one write transaction, so a backfill interrupted at any moment leaves whole
windows applied and nothing half-done; running it again captures only what is missing.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import duckdb

from spanlake.capture.apply import apply_rule
from spanlake.capture.counters import RuleCounter
from spanlake.capture.rules import Rule

if TYPE_CHECKING:
    from spanlake.store import Store

SPANS_PER_WINDOW = 100_000
WINDOW_SPANS = "_backfill_spans"
WINDOW_TRACES = "_backfill_traces"


def data_range(cur: duckdb.DuckDBPyConnection, since: dt.datetime, until: dt.datetime) -> tuple[Any, Any, int]:
    """(first start, last end) in epoch ns of traces starting in [since, until], and their span count."""
    lo, hi, spans = cur.execute(
        "SELECT epoch_ns(min(start_time)), epoch_ns(max(end_time)), coalesce(sum(span_count), 0) FROM trace_index "
        "WHERE start_time >= ? AND start_time <= ?",
        [since, until],
    ).fetchone()
    return lo, hi, int(spans)


def backfill_window(
    cur: duckdb.DuckDBPyConnection, rule: Rule, lo: int, hi: int, last: bool, counter: RuleCounter
) -> int:
    """Apply `rule` to the spans (span scope) or traces (trace scope) starting in [lo, hi)."""
    upper = "<=" if last else "<"
    try:
        if rule.scope == "span":
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {WINDOW_SPANS} AS "
                f"SELECT * FROM spans WHERE start_time >= make_timestamp_ns(?) AND start_time {upper} make_timestamp_ns(?)",
                [lo, hi],
            )
        else:
            cur.execute(
                f"""
                CREATE OR REPLACE TEMP TABLE {WINDOW_TRACES} AS
                SELECT trace_id, min(start_time) AS lo, max(end_time) AS hi FROM trace_index
                WHERE trace_id IN (
                    SELECT trace_id FROM trace_index
                    WHERE start_time >= make_timestamp_ns(?) AND start_time {upper} make_timestamp_ns(?)
                )
                GROUP BY trace_id HAVING min(start_time) >= make_timestamp_ns(?)
                """,
                [lo, hi, lo],
            )
            bounds = cur.execute(f"SELECT epoch_ns(min(lo)), epoch_ns(max(hi)) FROM {WINDOW_TRACES}").fetchone()
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {WINDOW_SPANS} AS SELECT s.* FROM spans s "
                "WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
                f"AND s.trace_id IN (SELECT trace_id FROM {WINDOW_TRACES})",
                [bounds[0], bounds[1]],
            )
        return apply_rule(cur, rule, WINDOW_SPANS, counter, None)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {WINDOW_SPANS}")
        cur.execute(f"DROP TABLE IF EXISTS {WINDOW_TRACES}")


async def run_backfill(
    store: "Store", rule: Rule, since: dt.datetime, until: dt.datetime, window_spans: int = SPANS_PER_WINDOW
) -> AsyncIterator[dict[str, Any]]:
    """Yield a progress record after each committed window, then a final one."""
    lo, hi, total_spans = await store.read(data_range, since, until)
    counter = RuleCounter()
    if lo is None:
        yield {"rule": rule.name, "done": True, "progress": 1.0, "windows": 0, **counter.as_dict()}
        return
    windows = max(1, math.ceil(total_spans / window_spans))
    step = (hi - lo) // windows
    for index in range(windows):
        w_lo = lo + step * index
        w_hi = hi if index == windows - 1 else lo + step * (index + 1)
        await store.write(backfill_window, rule, w_lo, w_hi, index == windows - 1, counter)
        yield {
            "rule": rule.name,
            "done": index == windows - 1,
            "progress": (index + 1) / windows,
            "window": index + 1,
            "windows": windows,
            **counter.as_dict(),
        }
