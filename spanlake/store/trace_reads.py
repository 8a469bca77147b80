"""Reading traces by id: one trace whole, or many at once; and which traces a filter selects.

DuckDB has no cheap point lookup on a random id in a wide table, so a trace is found in two
steps: the small trace_index table gives the trace's time range, then the spans scan is limited
to that range, which zone maps (min/max start_time per row group) turn into a few row groups.
Background work (batch scoring, runs) handles thousands of traces; one query per trace would
spend its time on per-query overhead, so the many-trace functions answer for a whole list in one
or two queries. Spans come back by start time; query/traces.py orders them parents first.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.store.filter_sql import CompiledFilter
from spanlake.store.schema import trace_key
from spanlake.store.span_rows import SPAN_SELECT, span_from_row

# Deterministic sampling by trace id: the first 60 bits of md5(trace_id) as an integer, which
# DuckDB and Python (hashlib) compute identically. Keep a trace when it is below the threshold.
SAMPLE_SQL = "('0x' || substr(md5({col}), 1, 15))::UBIGINT < ?"
SAMPLE_SPACE = 16**15


def trace_time_range(cur: duckdb.DuckDBPyConnection, trace_id: str) -> tuple[int, int] | None:
    """The trace's (first start, last end) in epoch ns; bind with make_timestamp_ns(?) to keep ns."""
    row = cur.execute(
        "SELECT epoch_ns(min(start_time)), epoch_ns(max(end_time)) FROM trace_index WHERE trace_key = ? AND trace_id = ?",
        [trace_key(trace_id), trace_id],
    ).fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1]


def trace_spans(cur: duckdb.DuckDBPyConnection, trace_id: str) -> list[dict[str, Any]] | None:
    """All spans of a trace by start time; None when the store never saw the trace."""
    bounds = trace_time_range(cur, trace_id)
    if bounds is None:
        return None
    rows = cur.execute(
        f"SELECT {SPAN_SELECT} FROM spans s WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?) "
        "AND s.trace_id = ? "
        "ORDER BY s.start_time, s.span_id",
        [bounds[0], bounds[1], trace_id],
    ).fetchall()
    return [span_from_row(r) for r in rows]


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


def _register_ids(cur: duckdb.DuckDBPyConnection, name: str, trace_ids: Sequence[str]) -> None:
    """The ids with their trace_key: joining trace_index on the integer key is the cheap part."""
    ids = list(trace_ids)
    cur.register(
        name,
        pa.table({"trace_key": pa.array([trace_key(t) for t in ids], pa.int64()), "trace_id": pa.array(ids, pa.string())}),
    )


def known_traces(cur: duckdb.DuckDBPyConnection, trace_ids: Sequence[str]) -> dict[str, dt.datetime]:
    """The ids the store has seen, with each trace's start time."""
    if not trace_ids:
        return {}
    _register_ids(cur, "_ids_in", trace_ids)
    try:
        rows = cur.execute(
            "SELECT t.trace_id, min(t.start_time) FROM trace_index t "
            "JOIN _ids_in i ON t.trace_key = i.trace_key AND t.trace_id = i.trace_id GROUP BY t.trace_id"
        ).fetchall()
    finally:
        cur.unregister("_ids_in")
    return {trace_id: start for trace_id, start in rows}


def traces_matching(
    cur: duckdb.DuckDBPyConnection,
    match: CompiledFilter,
    *,
    limit: int,
    sample_threshold: int | None = None,
) -> list[tuple[str, dt.datetime]]:
    """Newest `limit` traces with any span matching the filter (compiled over alias `s`), optionally sampled."""
    where, params = f"({match.sql})", list(match.params)
    if sample_threshold is not None:
        where += " AND " + SAMPLE_SQL.format(col="s.trace_id")
        params.append(sample_threshold)
    rows = cur.execute(
        f"SELECT s.trace_id, min(s.start_time) AS t0 FROM spans s WHERE {where} "
        "GROUP BY s.trace_id ORDER BY t0 DESC, s.trace_id LIMIT ?",
        [*params, limit],
    ).fetchall()
    return [(trace_id, start) for trace_id, start in rows]


def spans_of_traces(cur: duckdb.DuckDBPyConnection, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Spans of many traces, each list by start time; unknown ids are absent."""
    if not trace_ids:
        return {}
    _register_ids(cur, "_load_ids", trace_ids)
    try:
        cur.execute(
            "CREATE OR REPLACE TEMP TABLE _load_ranges AS SELECT t.trace_id, min(t.start_time) AS lo, "
            "max(t.end_time) AS hi FROM trace_index t JOIN _load_ids i ON t.trace_key = i.trace_key "
            "AND t.trace_id = i.trace_id GROUP BY t.trace_id"
        )
    finally:
        cur.unregister("_load_ids")
    try:
        lo, hi = cur.execute("SELECT min(lo), max(hi) FROM _load_ranges").fetchone()
        if lo is None:
            return {}
        # The outer time bound lets zone maps skip row groups; the join keeps each trace's own range.
        rows = cur.execute(
            f"SELECT {SPAN_SELECT} FROM spans s JOIN _load_ranges r ON s.trace_id = r.trace_id "
            "AND s.start_time BETWEEN r.lo AND r.hi WHERE s.start_time BETWEEN ? AND ? "
            "ORDER BY s.trace_id, s.start_time, s.span_id",
            [lo, hi],
        ).fetchall()
    finally:
        cur.execute("DROP TABLE IF EXISTS _load_ranges")
    grouped: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        grouped.setdefault(row[0], []).append(span_from_row(row))
    return grouped
