"""Every score name at a glance: count, mean, pass rate, histogram, labels and the worst traces.

The scores page and `GET /api/scores/summary` read this. It covers trace scores (dataset run
scores have their own summaries, per run). Each figure follows `scores.score_stats` exactly
(same pass rule, same bins), in four grouped queries instead of four per name. "Worst" means
lowest value: scores are read as higher is better, as every built-in scorer returns them.
"""

from __future__ import annotations

from typing import Any

import duckdb

from spanlake.clock import iso_from_datetime
from spanlake.store.scores import ScoreQuery, histogram_bins

MAX_LABELS = 10


def score_summary(
    cur: duckdb.DuckDBPyConnection,
    query: ScoreQuery,
    *,
    pass_threshold: float | None,
    bins: int = 10,
    worst: int = 5,
) -> list[dict[str, Any]]:
    """One entry per score name, by name; `query` narrows the scores (name, source, scorer...)."""
    where, params = query.where()
    where += " AND run_id IS NULL"
    rows = cur.execute(
        "SELECT name, count(*), avg(value), min(value), max(value), count(*) FILTER (WHERE data_type = 'boolean'), "
        "count(*) FILTER (WHERE value >= coalesce(?::DOUBLE, CASE WHEN data_type = 'boolean' THEN 1 END)), "
        "list(DISTINCT data_type ORDER BY data_type), list(DISTINCT scorer ORDER BY scorer) FILTER (WHERE scorer IS NOT NULL), "
        f"list(DISTINCT source ORDER BY source), max(created_at) FROM scores WHERE {where} GROUP BY name ORDER BY name",
        [pass_threshold, *params],
    ).fetchall()
    out: dict[str, dict[str, Any]] = {}
    for name, count, mean, lo, hi, booleans, passed, data_types, scorers, sources, latest in rows:
        # A pass rate needs a bar: the given threshold, else "true" for boolean scores.
        gradable = count if pass_threshold is not None else booleans
        out[name] = {
            "name": name, "count": int(count), "mean": mean, "min": lo, "max": hi,
            "pass_rate": (passed / gradable) if gradable else None,
            "data_types": data_types, "scorers": scorers or [], "sources": sources,
            "last_scored_at": iso_from_datetime(latest),
            "histogram": [], "labels": {}, "worst": [],
        }
    if not out:
        return []
    _histograms(cur, out, where, params, bins)
    _labels(cur, out, where, params)
    if worst:
        _worst(cur, out, where, params, worst)
    return list(out.values())


def _histograms(cur: duckdb.DuckDBPyConnection, out: dict[str, dict[str, Any]], where: str, params: list[Any], bins: int) -> None:
    counts: dict[str, dict[int, int]] = {}
    for name, b, n in cur.execute(
        "SELECT name, CASE WHEN hi > lo THEN least(CAST(floor((value - lo) / ((hi - lo) / ?::DOUBLE)) AS BIGINT), "
        "?::BIGINT) ELSE 0 END AS b, count(*) FROM (SELECT name, value, min(value) OVER (PARTITION BY name) AS lo, "
        f"max(value) OVER (PARTITION BY name) AS hi FROM scores WHERE {where} AND value IS NOT NULL) GROUP BY 1, 2",
        [bins, bins - 1, *params],
    ).fetchall():
        counts.setdefault(name, {})[int(b)] = int(n)
    for name, entry in out.items():
        if entry["min"] is not None:
            entry["histogram"] = histogram_bins(entry["min"], entry["max"], bins, counts.get(name, {}))


def _labels(cur: duckdb.DuckDBPyConnection, out: dict[str, dict[str, Any]], where: str, params: list[Any]) -> None:
    for name, label, n in cur.execute(
        f"SELECT name, label, count(*) AS n FROM scores WHERE {where} AND label IS NOT NULL GROUP BY name, label "
        "QUALIFY row_number() OVER (PARTITION BY name ORDER BY n DESC, label) <= ? ORDER BY name, n DESC, label",
        [*params, MAX_LABELS],
    ).fetchall():
        out[name]["labels"][label] = int(n)


def _worst(cur: duckdb.DuckDBPyConnection, out: dict[str, dict[str, Any]], where: str, params: list[Any], worst: int) -> None:
    for name, trace_id, span_id, value, label, explanation, created in cur.execute(
        f"SELECT name, trace_id, span_id, value, label, explanation, created_at FROM scores WHERE {where} "
        "AND value IS NOT NULL AND trace_id IS NOT NULL "
        "QUALIFY row_number() OVER (PARTITION BY name ORDER BY value, created_at DESC, id) <= ? "
        "ORDER BY name, value, created_at DESC, id",
        [*params, worst],
    ).fetchall():
        out[name]["worst"].append(
            {"trace_id": trace_id, "span_id": span_id, "value": value, "label": label, "explanation": explanation,
             "created_at": iso_from_datetime(created)}
        )

