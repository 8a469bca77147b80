"""Trace listing and span search: keyset pages over a snapshot, so paging is stable under ingest.

The first page fixes a snapshot instant; later pages only see rows committed (`ingested_at`)
up to it, and continue strictly after the last row's sort key. Rows can neither repeat nor be
skipped while new spans keep arriving. Sort keys: traces by (start_time, trace_id) descending,
spans by (start_time, trace_id, span_id) descending. Times travel in cursors as epoch nanoseconds.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import duckdb

from spanlake.filters import CompiledFilter
from spanlake.clock import iso_from_ns
from spanlake.query.span_rows import SPAN_SELECT, span_from_row
from spanlake.store.schema import TRACE_KEY_SQL, trace_key
from spanlake.clock import utc_now


@dataclass(frozen=True)
class SearchParams:
    filter: CompiledFilter | None = None
    service: str | None = None
    name: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None
    limit: int = 50
    cursor: dict[str, Any] | None = None
    # Scores every match must carry (query.score_hints): bounds the scan to the scored traces.
    required_scores: frozenset[str] = frozenset()


@dataclass
class Page:
    items: list[dict[str, Any]]
    next_cursor: dict[str, Any] | None


@dataclass
class _Where:
    """Conjunction of SQL conditions with their parameters, in order."""

    clauses: list[str] = field(default_factory=list)
    params: list[Any] = field(default_factory=list)

    def add(self, clause: str, *params: Any) -> None:
        self.clauses.append(clause)
        self.params.extend(params)

    def sql(self) -> str:
        return " AND ".join(self.clauses) if self.clauses else "TRUE"


def _snapshot(params: SearchParams) -> dt.datetime:
    if params.cursor and "snap" in params.cursor:
        try:
            return dt.datetime.fromisoformat(str(params.cursor["snap"]))
        except ValueError:
            raise ValueError("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None
    return utc_now()


def _cursor_ints(cursor: dict[str, Any], *names: str) -> list[Any]:
    try:
        t_ns = int(cursor["t"])
        if not -(2**63) <= t_ns < 2**63:  # epoch ns of a stored span fit in 64 bits; DuckDB binds no more
            raise ValueError(t_ns)
        return [t_ns] + [str(cursor[n]) for n in names]
    except (KeyError, TypeError, ValueError):
        raise ValueError("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None


def _time_range(where: _Where, column: str, params: SearchParams) -> None:
    if params.since is not None:
        where.add(f"{column} >= ?", params.since)
    if params.until is not None:
        where.add(f"{column} <= ?", params.until)


def _scored_range(cur: duckdb.DuckDBPyConnection, where: _Where, column: str, params: SearchParams) -> bool:
    """Bound `column` to the time range of traces carrying the required scores; False if none do."""
    if not params.required_scores:
        return True
    names = sorted(params.required_scores)
    marks = ", ".join("?" for _ in names)
    lo, hi = cur.execute(
        f"""
        SELECT epoch_ns(min(ti.start_time)), epoch_ns(max(ti.end_time)) FROM trace_index ti
        WHERE ti.trace_key IN (SELECT DISTINCT {TRACE_KEY_SQL.format(col="sc.trace_id")} FROM scores sc WHERE sc.name IN ({marks}))
        """,
        names,
    ).fetchone()
    if lo is None:
        return False
    where.add(f"{column} BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)", lo, hi)
    return True


def list_traces(cur: duckdb.DuckDBPyConnection, params: SearchParams) -> Page:
    """One row per trace, newest first; a trace matches the filter when any of its spans does."""
    snap = _snapshot(params)
    rows_where = _Where()
    rows_where.add("ti.ingested_at <= ?", snap)
    _time_range(rows_where, "ti.start_time", params)
    if params.service is not None:
        rows_where.add("ti.service_name = ?", params.service)
    if params.name is not None:
        rows_where.add("ti.root_name = ?", params.name)

    page_where = _Where()
    if params.cursor:
        t_ns, trace_id = _cursor_ints(params.cursor, "id")
        page_where.add(
            "(t.start_time < make_timestamp_ns(?) OR (t.start_time = make_timestamp_ns(?) AND t.trace_id < ?))",
            t_ns, t_ns, trace_id,
        )
    if params.filter is not None:
        span_where = _Where()
        span_where.add("s.ingested_at <= ?", snap)
        _time_range(span_where, "s.start_time", params)
        if not _scored_range(cur, span_where, "s.start_time", params):
            return Page([], None)
        span_where.add(f"({params.filter.sql})", *params.filter.params)
        page_where.add(f"t.trace_id IN (SELECT s.trace_id FROM spans s WHERE {span_where.sql()})", *span_where.params)

    page = cur.execute(
        f"""
        WITH t AS (
            SELECT ti.trace_id, min(ti.start_time) AS start_time
            FROM trace_index ti WHERE {rows_where.sql()}
            GROUP BY ti.trace_id
        )
        SELECT t.trace_id, epoch_ns(t.start_time) FROM t
        WHERE {page_where.sql()}
        ORDER BY t.start_time DESC, t.trace_id DESC
        LIMIT ?
        """,
        [*rows_where.params, *page_where.params, params.limit + 1],
    ).fetchall()
    more = len(page) > params.limit
    page = page[: params.limit]
    items = trace_summaries(cur, [r[0] for r in page], snap)
    next_cursor = None
    if more and page:
        next_cursor = {"snap": snap.isoformat(), "t": page[-1][1], "id": page[-1][0]}
    return Page(items, next_cursor)


def trace_summaries(cur: duckdb.DuckDBPyConnection, trace_ids: list[str], snap: dt.datetime) -> list[dict[str, Any]]:
    """Exact per-trace aggregates and scores for a page of trace ids, in the given order."""
    if not trace_ids:
        return []
    marks = ", ".join("?" for _ in trace_ids)
    rows = cur.execute(
        f"""
        SELECT trace_id,
               epoch_ns(min(start_time)), epoch_ns(max(end_time)),
               sum(span_count), sum(error_count), sum(total_tokens),
               any_value(root_name) FILTER (WHERE root_name IS NOT NULL),
               any_value(root_span_id) FILTER (WHERE root_span_id IS NOT NULL),
               coalesce(any_value(service_name) FILTER (WHERE root_name IS NOT NULL), any_value(service_name))
        FROM trace_index WHERE trace_key IN ({marks}) AND trace_id IN ({marks}) AND ingested_at <= ?
        GROUP BY trace_id
        """,
        [*(trace_key(t) for t in trace_ids), *trace_ids, snap],
    ).fetchall()
    scores: dict[str, dict[str, Any]] = {t: {} for t in trace_ids}
    for trace_id, name, value, label in cur.execute(
        f"""
        SELECT trace_id, name, value, label FROM scores
        WHERE trace_id IN ({marks})
        QUALIFY row_number() OVER (PARTITION BY trace_id, name ORDER BY created_at DESC) = 1
        """,
        trace_ids,
    ).fetchall():
        scores[trace_id][name] = value if value is not None else label
    by_id = {}
    for trace_id, start_ns, end_ns, spans, errors, tokens, root_name, root_span_id, service in rows:
        by_id[trace_id] = {
            "trace_id": trace_id,
            "root_span_id": root_span_id,
            "name": root_name,
            "service": service,
            "start_time": iso_from_ns(start_ns),
            "end_time": iso_from_ns(end_ns),
            "duration_ms": (end_ns - start_ns) / 1e6 if start_ns is not None and end_ns is not None else None,
            "span_count": int(spans or 0),
            "error_count": int(errors or 0),
            "total_tokens": int(tokens or 0),
            "scores": scores[trace_id],
        }
    return [by_id[t] for t in trace_ids if t in by_id]


def search_spans(cur: duckdb.DuckDBPyConnection, params: SearchParams) -> Page:
    """One row per span, newest first."""
    snap = _snapshot(params)
    where = _Where()
    where.add("s.ingested_at <= ?", snap)
    _time_range(where, "s.start_time", params)
    if params.service is not None:
        where.add("s.service_name = ?", params.service)
    if params.name is not None:
        where.add("s.name = ?", params.name)
    if params.cursor:
        t_ns, trace_id, span_id = _cursor_ints(params.cursor, "trace", "span")
        # The plain bound lets zone maps skip row groups; the OR makes the key strictly decrease.
        where.add(
            "s.start_time <= make_timestamp_ns(?) AND (s.start_time < make_timestamp_ns(?) "
            "OR (s.trace_id, s.span_id) < (?, ?))",
            t_ns, t_ns, trace_id, span_id,
        )
    if params.filter is not None:
        if not _scored_range(cur, where, "s.start_time", params):
            return Page([], None)
        where.add(f"({params.filter.sql})", *params.filter.params)
    rows = cur.execute(
        f"""
        SELECT {SPAN_SELECT} FROM spans s
        WHERE {where.sql()}
        ORDER BY s.start_time DESC, s.trace_id DESC, s.span_id DESC
        LIMIT ?
        """,
        [*where.params, params.limit + 1],
    ).fetchall()
    more = len(rows) > params.limit
    items = [span_from_row(r) for r in rows[: params.limit]]
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

