"""Scores SQL: replace-on-rewrite upserts in bulk, checked single writes, filtered reads and stats.

A score's identity is (name, trace_id, span_id, source, scorer), plus run_result_id for the scores
of a dataset run's results and item_id for scores of a dataset item (whose trace may be NULL):
writing it again replaces the stored row. Without unique indexes (DuckLake has none) the replace is a delete + insert inside the
caller's transaction, which the single writer thread serialises; across replicas on one lake the
transaction holds the uniqueness lock (store/locks.py), so concurrent writers conflict and retry.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.clock import iso_from_datetime
from spanlake.store import vacuum
from spanlake.store.actor import current_actor
from spanlake.store.locks import hold as hold_lock
from spanlake.store.relations import rows_relation
from spanlake.store.schema import trace_key

SCORE_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("name", pa.string()),
        ("value", pa.float64()),
        ("label", pa.string()),
        ("data_type", pa.string()),
        ("source", pa.string()),
        ("scorer", pa.string()),
        ("explanation", pa.string()),
        ("metadata", pa.string()),  # JSON text
        ("batch_id", pa.string()),
        ("run_id", pa.string()),
        ("run_result_id", pa.string()),
        ("created_at", pa.timestamp("us")),
        ("created_by", pa.string()),  # the API key's name (store/actor.py)
        ("item_id", pa.string()),
    ]
)
# Named in every INSERT: columns added by later migrations come last in the table.
SCORE_COLUMNS = ", ".join(SCORE_SCHEMA.names)
_SELECT = (
    "id, trace_id, span_id, name, value, label, data_type, source, scorer, explanation, metadata::VARCHAR, "
    "batch_id, run_id, created_at, created_by, item_id"
)


class UnknownTrace(LookupError):
    """The store never saw this trace, so it cannot be scored."""


class UnknownSpan(LookupError):
    """The trace is known but has no span with this id."""


class UnknownItem(LookupError):
    """No dataset holds a current item with this id."""


@dataclass(frozen=True)
class ScoreQuery:
    """Filters of a score listing; every field is optional and they combine with AND."""

    trace_id: str | None = None
    span_id: str | None = None
    name: str | None = None
    scorer: str | None = None
    source: str | None = None
    batch_id: str | None = None
    data_type: str | None = None
    min_value: float | None = None
    max_value: float | None = None
    item_id: str | None = None

    def where(self) -> tuple[str, list[Any]]:
        clauses, params = ["true"], []
        for column in ("trace_id", "span_id", "name", "scorer", "source", "batch_id", "data_type", "item_id"):
            value = getattr(self, column)
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        if self.min_value is not None:
            clauses.append("value >= ?")
            params.append(self.min_value)
        if self.max_value is not None:
            clauses.append("value <= ?")
            params.append(self.max_value)
        return " AND ".join(clauses), params


def score_from_row(row: tuple[Any, ...]) -> dict[str, Any]:
    (id_, trace_id, span_id, name, value, label, data_type, source, scorer, explanation, metadata,
     batch_id, run_id, created_at, created_by, item_id) = row
    return {
        "id": id_, "trace_id": trace_id, "span_id": span_id, "name": name, "value": value, "label": label,
        "data_type": data_type, "source": source, "scorer": scorer, "explanation": explanation,
        "metadata": json.loads(metadata) if metadata else None, "batch_id": batch_id, "run_id": run_id,
        "item_id": item_id, "created_at": iso_from_datetime(created_at), "created_by": created_by,
    }


def upsert_scores(cur: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Write many scores in the caller's transaction, replacing any with the same identity."""
    if not rows:
        return 0
    # Identity is checked by delete + insert; across replicas only a conflict makes that exclusive.
    hold_lock(cur)
    # Within one write the last row of an identity wins, as if written one by one.
    latest: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        key = (row["name"], row["trace_id"], row.get("span_id"), row["source"], row.get("scorer"),
               row.get("run_result_id"), row.get("item_id"))
        latest[key] = row
    actor = current_actor()
    table = pa.Table.from_pylist(
        [{**{k: r.get(k) for k in SCORE_SCHEMA.names}, "created_by": r.get("created_by") or actor}
         for r in latest.values()],
        schema=SCORE_SCHEMA,
    )
    with rows_relation(cur, "_scores_in", table) as (rel, params):
        replaced = cur.execute(
            f"DELETE FROM scores USING {rel} n WHERE scores.trace_id IS NOT DISTINCT FROM n.trace_id "
            "AND scores.name = n.name "
            "AND scores.span_id IS NOT DISTINCT FROM n.span_id AND scores.source = n.source "
            "AND scores.scorer IS NOT DISTINCT FROM n.scorer "
            "AND scores.run_result_id IS NOT DISTINCT FROM n.run_result_id "  # run scores keep their own identity
            "AND scores.item_id IS NOT DISTINCT FROM n.item_id",  # and so do an item's
            params,
        ).fetchone()[0]
        vacuum.after_delete(cur, replaced)
        cur.execute(
            f"INSERT INTO scores ({SCORE_COLUMNS}) SELECT id, trace_id, span_id, name, value, label, data_type, "
            f"source, scorer, explanation, metadata::JSON, batch_id, run_id, run_result_id, created_at, created_by, "
            f"item_id FROM {rel}",
            params,
        )
    return table.num_rows


def root_span_id(cur: duckdb.DuckDBPyConnection, trace_id: str) -> str:
    """The trace's root span (its earliest span when no root arrived); UnknownTrace if unseen."""
    row = cur.execute(
        "SELECT min(start_time), max(end_time), any_value(root_span_id) FILTER (WHERE root_span_id IS NOT NULL) "
        "FROM trace_index WHERE trace_key = ? AND trace_id = ?",
        [trace_key(trace_id), trace_id],
    ).fetchone()
    if row is None or row[0] is None:
        raise UnknownTrace(trace_id)
    if row[2]:
        return row[2]
    first = cur.execute(
        "SELECT span_id FROM spans WHERE start_time BETWEEN ? AND ? AND trace_id = ? ORDER BY start_time, span_id LIMIT 1",
        [row[0], row[1], trace_id],
    ).fetchone()
    if first is None:
        raise UnknownTrace(trace_id)
    return first[0]


def span_exists(cur: duckdb.DuckDBPyConnection, trace_id: str, span_id: str) -> bool:
    row = cur.execute(
        "SELECT min(start_time), max(end_time) FROM trace_index WHERE trace_key = ? AND trace_id = ?",
        [trace_key(trace_id), trace_id],
    ).fetchone()
    if row is None or row[0] is None:
        raise UnknownTrace(trace_id)
    found = cur.execute(
        "SELECT count(*) FROM spans WHERE start_time BETWEEN ? AND ? AND trace_id = ? AND span_id = ?",
        [row[0], row[1], trace_id, span_id],
    ).fetchone()[0]
    return bool(found)


def write_checked_score(cur: duckdb.DuckDBPyConnection, row: dict[str, Any]) -> dict[str, Any]:
    """One externally supplied score: refused for an unknown trace, span or item; span defaults to
    the root. A score of an item needs no trace (items added by hand have none)."""
    row = dict(row)
    if row.get("item_id") is not None:
        found = cur.execute(
            "SELECT count(*) FROM dataset_items WHERE id = ? AND valid_to IS NULL", [row["item_id"]]
        ).fetchone()[0]
        if not found:
            raise UnknownItem(row["item_id"])
    if row.get("trace_id") is None:
        if row.get("item_id") is None or row.get("span_id") is not None:
            raise ValueError("a score needs a trace_id, or an item_id (a span_id needs its trace_id)")
    elif row.get("span_id") is None:
        row["span_id"] = root_span_id(cur, row["trace_id"])
    elif not span_exists(cur, row["trace_id"], row["span_id"]):
        raise UnknownSpan(row["span_id"])
    upsert_scores(cur, [row])
    got = cur.execute(f"SELECT {_SELECT} FROM scores WHERE id = ?", [row["id"]]).fetchone()
    return score_from_row(got)


def list_scores(
    cur: duckdb.DuckDBPyConnection,
    query: ScoreQuery,
    *,
    limit: int,
    before: tuple[dt.datetime, str] | None = None,
) -> list[dict[str, Any]]:
    """Newest first; `before` is the (created_at, id) of the previous page's last score."""
    where, params = query.where()
    if before is not None:
        where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
        params += [before[0], before[0], before[1]]
    rows = cur.execute(
        f"SELECT {_SELECT} FROM scores WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [score_from_row(r) for r in rows]


def score_stats(
    cur: duckdb.DuckDBPyConnection, query: ScoreQuery, *, pass_threshold: float | None, bins: int = 10
) -> dict[str, Any]:
    """count, mean, min, max, pass rate, a histogram of values and label counts for a selection."""
    where, params = query.where()
    count, mean, lo, hi, booleans, passed = cur.execute(
        "SELECT count(*), avg(value), min(value), max(value), count(*) FILTER (WHERE data_type = 'boolean'), "
        "count(*) FILTER (WHERE value >= coalesce(?::DOUBLE, CASE WHEN data_type = 'boolean' THEN 1 END)) "
        f"FROM scores WHERE {where}",
        [pass_threshold, *params],
    ).fetchone()
    # A pass rate needs a bar: the given threshold, else "true" for boolean scores.
    gradable = count if pass_threshold is not None else booleans
    histogram: list[dict[str, Any]] = []
    if lo is not None:
        width = (hi - lo) / bins if hi > lo else 0.0
        counts = dict(
            cur.execute(
                "SELECT least(CAST(floor((value - ?::DOUBLE) / ?::DOUBLE) AS BIGINT), ?::BIGINT) AS b, count(*) FROM scores "
                f"WHERE {where} AND value IS NOT NULL GROUP BY b",
                [lo, width or 1.0, bins - 1, *params],
            ).fetchall()
        )
        histogram = histogram_bins(lo, hi, bins, counts)
    labels = cur.execute(
        f"SELECT label, count(*) FROM scores WHERE {where} AND label IS NOT NULL GROUP BY label ORDER BY 2 DESC, 1 LIMIT 50",
        params,
    ).fetchall()
    return {
        "count": int(count),
        "mean": mean,
        "min": lo,
        "max": hi,
        "pass_rate": (passed / gradable) if gradable else None,
        "histogram": histogram,
        "labels": {label: int(n) for label, n in labels},
    }


def histogram_bins(lo: float, hi: float, bins: int, counts: dict[int, int]) -> list[dict[str, Any]]:
    """Equal-width bins from lo to hi (one bin when all values are equal), counts keyed by bin index.

    The queries put a value in bin `least(floor((value - lo) / width), bins - 1)`."""
    width = (hi - lo) / bins if hi > lo else 0.0
    edges = [round(lo + i * width, 12) for i in range(bins + 1)] if width else [lo, hi]
    return [{"lower": edges[i], "upper": edges[i + 1], "count": int(counts.get(i, 0))} for i in range(len(edges) - 1)]


def scores_for_traces(cur: duckdb.DuckDBPyConnection, trace_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    """Scores of many traces at once, for trace listings that show them."""
    if not trace_ids:
        return {}
    rows = cur.execute(
        f"SELECT {_SELECT} FROM scores WHERE list_contains(?::VARCHAR[], trace_id) ORDER BY created_at",
        [list(trace_ids)],
    ).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row[1], []).append(score_from_row(row))
    return out
