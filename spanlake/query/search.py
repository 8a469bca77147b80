"""Trace listing and span search: keyset pages over a snapshot, so paging is stable under ingest.

The first page fixes a snapshot instant; later pages only see rows committed up to it, and
continue strictly after the last row's sort key (the SQL is store/span_search.py). Rows can
neither repeat nor be skipped while new spans keep arriving. Times travel in cursors as epoch
nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import duckdb

from spanlake.clock import utc_now
from spanlake.store.span_search import SearchParams, span_page, trace_page, trace_summaries

__all__ = ["Page", "SearchParams", "list_traces", "search_spans"]


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None


def _snapshot(params: SearchParams) -> dt.datetime:
    if params.cursor and "snap" in params.cursor:
        try:
            return dt.datetime.fromisoformat(str(params.cursor["snap"]))
        except ValueError:
            raise ValueError("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None
    return utc_now()


def _after(cursor: dict[str, Any] | None, *names: str) -> tuple[Any, ...] | None:
    """The previous page's last sort key, from the cursor: its time, then the named ids."""
    if not cursor:
        return None
    try:
        t_ns = int(cursor["t"])
        if not -(2**63) <= t_ns < 2**63:  # epoch ns of a stored span fit in 64 bits; DuckDB binds no more
            raise ValueError(t_ns)
        return (t_ns, *(str(cursor[n]) for n in names))
    except (KeyError, TypeError, ValueError):
        raise ValueError("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None


def list_traces(cur: duckdb.DuckDBPyConnection, params: SearchParams) -> Page:
    """One row per trace, newest first; a trace matches the filter when any of its spans does."""
    snap = _snapshot(params)
    page = trace_page(cur, params, snap, _after(params.cursor, "id"))
    more = len(page) > params.limit
    page = page[: params.limit]
    items = trace_summaries(cur, [r[0] for r in page], snap)
    next_cursor = None
    if more and page:
        next_cursor = {"snap": snap.isoformat(), "t": page[-1][1], "id": page[-1][0]}
    return Page(items, next_cursor)


def search_spans(cur: duckdb.DuckDBPyConnection, params: SearchParams) -> Page:
    """One row per span, newest first."""
    snap = _snapshot(params)
    rows = span_page(cur, params, snap, _after(params.cursor, "trace", "span"))
    more = len(rows) > params.limit
    items = rows[: params.limit]
    next_cursor = None
    if more and items:
        last = items[-1]
        next_cursor = {
            "snap": snap.isoformat(),
            "t": int(last["start_time_unix_nano"]),
            "trace": last["trace_id"],
            "span": last["span_id"],
        }
    return Page(items, next_cursor)
