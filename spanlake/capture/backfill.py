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
from spanlake.store import rule_relations

if TYPE_CHECKING:
    from spanlake.store import Store

SPANS_PER_WINDOW = 100_000


def backfill_window(
    cur: duckdb.DuckDBPyConnection, rule: Rule, lo: int, hi: int, last: bool, counter: RuleCounter
) -> int:
    """Apply `rule` to the spans (span scope) or traces (trace scope) starting in [lo, hi)."""
    with rule_relations.window_spans(cur, rule.scope, lo, hi, last) as relation:
        return apply_rule(cur, rule, relation, counter, None)


async def run_backfill(
    store: "Store", rule: Rule, since: dt.datetime, until: dt.datetime, window_spans: int = SPANS_PER_WINDOW
) -> AsyncIterator[dict[str, Any]]:
    """Yield a progress record after each committed window, then a final one."""
    lo, hi, total_spans = await store.read(rule_relations.stored_range, since, until)
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
