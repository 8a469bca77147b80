"""Reading one trace whole, parents before children.

DuckDB has no cheap point lookup on a random id in a wide table, so a trace is found in two
steps: the small trace_index table gives the trace's time range, then the spans scan is limited
to that range, which zone maps (min/max start_time per row group) turn into a few row groups.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import duckdb

from spanlake.query.span_rows import SPAN_SELECT, span_from_row
from spanlake.store.schema import trace_key


def trace_time_range(cur: duckdb.DuckDBPyConnection, trace_id: str) -> tuple[int, int] | None:
    """The trace's (first start, last end) in epoch ns; bind with make_timestamp_ns(?) to keep ns."""
    row = cur.execute(
        "SELECT epoch_ns(min(start_time)), epoch_ns(max(end_time)) FROM trace_index WHERE trace_key = ? AND trace_id = ?",
        [trace_key(trace_id), trace_id],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def get_trace_spans(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[dict[str, Any]] | None:
    """All spans of a trace ordered parents first; None when the store never saw the trace."""
    bounds = trace_time_range(cur, trace_id)
    if bounds is None:
        return None
    rows = cur.execute(
        f"SELECT {SPAN_SELECT} FROM spans s WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
        "AND s.trace_id = ? "
        "ORDER BY s.start_time, s.span_id",
        [bounds[0], bounds[1], trace_id],
    ).fetchall()
    return order_parents_first([span_from_row(r) for r in rows])


def get_span(cur: duckdb.DuckDBPyConnection, trace_id: str, span_id: str) -> dict[str, Any] | None:
    bounds = trace_time_range(cur, trace_id)
    if bounds is None:
        return None
    row = cur.execute(
        f"SELECT {SPAN_SELECT} FROM spans s WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
        "AND s.trace_id = ? AND s.span_id = ?",
        [bounds[0], bounds[1], trace_id, span_id],
    ).fetchone()
    return span_from_row(row) if row else None


def order_parents_first(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Depth-first from the roots, siblings by start time; spans whose parent is missing count as roots."""
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for span in spans:  # already sorted by start time
        parent = span["parent_span_id"]
        children[parent if parent in ids else None].append(span)
    ordered: list[dict[str, Any]] = []
    stack = list(reversed(children[None]))
    seen: set[str] = set()
    while stack:
        span = stack.pop()
        if span["span_id"] in seen:
            continue
        seen.add(span["span_id"])
        ordered.append(span)
        stack.extend(reversed(children.get(span["span_id"], [])))
    # A cycle of parent ids (a broken client) leaves spans unreached: keep them, at the end.
    ordered.extend(s for s in spans if s["span_id"] not in seen)
    return ordered
