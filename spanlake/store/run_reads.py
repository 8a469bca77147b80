"""SQL reads of dataset runs: result pages with their scores, a run's summary, two runs compared.

Latency percentiles are over successful results (an error's latency is often a timeout) and
interpolate linearly (`quantile_cont`). A pass rate needs a bar: the run's threshold for the
scorer when it set one, else "true" for boolean scores; numeric scores without one have none.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.clock import iso_from_datetime
from spanlake.store.dataset_items import visible
from spanlake.store.runs import Run

REGRESSION_EPSILON = 1e-9

_RESULT_SELECT = (
    "r.id, r.run_id, r.seq, r.item_id, r.status, r.output::VARCHAR, r.error, r.trace_id, r.span_id, r.latency_ms, "
    "r.input_tokens, r.output_tokens, r.total_tokens, r.created_at, r.updated_at, i.input::VARCHAR, "
    "i.expected_output::VARCHAR"
)
_SCORE_SELECT = (
    "id, run_result_id, name, value, label, data_type, scorer, explanation, metadata::VARCHAR, trace_id, span_id, "
    "created_at"
)


def _loads(text: str | None) -> Any:
    return json.loads(text) if text is not None else None


def _tokens(inp: Any, out: Any, total: Any) -> dict[str, int | None] | None:
    if inp is None and out is None and total is None:
        return None
    if total is None and (inp is not None or out is not None):
        total = int(inp or 0) + int(out or 0)
    return {"input": inp, "output": out, "total": total}


def result_from_row(row: Sequence[Any]) -> dict[str, Any]:
    (id_, run_id, seq, item_id, status, output, error, trace_id, span_id, latency, inp, out, total, created,
     updated, item_input, expected) = row
    return {
        "id": id_, "run_id": run_id, "seq": int(seq), "item_id": item_id, "status": status,
        "input": _loads(item_input), "expected_output": _loads(expected), "output": _loads(output),
        "error": error, "trace_id": trace_id, "span_id": span_id, "latency_ms": latency,
        "tokens": _tokens(inp, out, total), "created_at": iso_from_datetime(created),
        "updated_at": iso_from_datetime(updated),
    }


def _items_join(run: Run) -> tuple[str, list[Any]]:
    cond, params = visible(run.as_of)
    return f"LEFT JOIN dataset_items i ON i.id = r.item_id AND i.dataset_id = ? AND {cond}", [run.dataset_id, *params]


def results_page(
    cur: duckdb.DuckDBPyConnection, run: Run, *, status: str | None, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """Results in item order after `after_seq`, each with its item's input and expectation and its scores."""
    join, params = _items_join(run)
    where, where_params = "r.run_id = ? AND r.seq > ?", [run.id, after_seq]
    if status is not None:
        where += " AND r.status = ?"
        where_params.append(status)
    rows = cur.execute(
        f"SELECT {_RESULT_SELECT} FROM run_results r {join} WHERE {where} ORDER BY r.seq LIMIT ?",
        [*params, *where_params, limit],
    ).fetchall()
    results = [result_from_row(r) for r in rows]
    scores = scores_of_results(cur, run.id, [r["id"] for r in results])
    for result in results:
        result["scores"] = scores.get(result["id"], [])
    return results


def results_by_ids(cur: duckdb.DuckDBPyConnection, run: Run, result_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    join, params = _items_join(run)
    rows = cur.execute(
        f"SELECT {_RESULT_SELECT} FROM run_results r {join} WHERE r.run_id = ? "
        "AND r.id IN (SELECT unnest(?::VARCHAR[]))",
        [*params, run.id, list(result_ids)],
    ).fetchall()
    results = {row[0]: result_from_row(row) for row in rows}
    scores = scores_of_results(cur, run.id, list(results))
    for result_id, result in results.items():
        result["scores"] = scores.get(result_id, [])
    return results


def scores_of_results(cur: duckdb.DuckDBPyConnection, run_id: str, result_ids: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
    if not result_ids:
        return {}
    rows = cur.execute(
        f"SELECT {_SCORE_SELECT} FROM scores WHERE run_id = ? AND run_result_id IN (SELECT unnest(?::VARCHAR[])) "
        "ORDER BY name",
        [run_id, list(result_ids)],
    ).fetchall()
    out: dict[str, list[dict[str, Any]]] = {}
    for id_, result_id, name, value, label, data_type, scorer, explanation, metadata, trace_id, span_id, created in rows:
        out.setdefault(result_id, []).append(
            {
                "id": id_, "name": name, "value": value, "label": label, "data_type": data_type, "scorer": scorer,
                "explanation": explanation, "metadata": _loads(metadata), "trace_id": trace_id, "span_id": span_id,
                "created_at": iso_from_datetime(created),
            }
        )
    return out


def summary(cur: duckdb.DuckDBPyConnection, run: Run) -> dict[str, Any]:
    """Counts, latency p50/p95 (successful results), tokens, and per-scorer mean and pass rate."""
    (total, ok, errors, p50, p95, mean_latency, inp, out, tokens, reported) = cur.execute(
        """
        SELECT count(*), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'error'),
               quantile_cont(latency_ms, 0.5) FILTER (WHERE status = 'ok'),
               quantile_cont(latency_ms, 0.95) FILTER (WHERE status = 'ok'),
               avg(latency_ms) FILTER (WHERE status = 'ok'),
               sum(input_tokens), sum(output_tokens),
               sum(coalesce(total_tokens, coalesce(input_tokens, 0) + coalesce(output_tokens, 0))),
               count(*) FILTER (WHERE coalesce(input_tokens, output_tokens, total_tokens) IS NOT NULL)
        FROM run_results WHERE run_id = ?
        """,
        [run.id],
    ).fetchone()
    return {
        "total": int(total),
        "completed": int(ok),
        "errors": int(errors),
        "pending": int(total - ok - errors),
        "latency_ms": {"p50": p50, "p95": p95, "mean": mean_latency},
        "tokens": {"input": int(inp or 0), "output": int(out or 0), "total": int(tokens or 0)} if reported else None,
        "scorers": scorer_stats(cur, run, errors=int(errors)),
        "errors_count_as_failures": True,
        "note": ERRORS_NOTE,
    }


ERRORS_NOTE = (
    "an error result counts as a failure of every scorer: pass_rate is passes over scored and error "
    "results, so a run with more errors never looks better; mean, min and max are over scored results"
)


def scorer_stats(cur: duckdb.DuckDBPyConnection, run: Run, *, errors: int = 0) -> dict[str, dict[str, Any]]:
    """Per scorer: count, mean, min, max over its scores, and the pass rate with each of the
    run's `errors` (results that have no output to score) counted as a failure."""
    names = list(dict.fromkeys([*run.scorers]))
    table = pa.table(
        {"name": pa.array(names, pa.string()), "bar": pa.array([run.thresholds.get(n) for n in names], pa.float64())}
    )
    cur.register("_run_bars", table)
    try:
        rows = cur.execute(
            """
            SELECT s.name, count(*), avg(s.value), min(s.value), max(s.value),
                   count(*) FILTER (WHERE b.bar IS NOT NULL OR s.data_type = 'boolean'),
                   count(*) FILTER (WHERE s.value >= coalesce(b.bar, CASE WHEN s.data_type = 'boolean' THEN 1 END))
            FROM scores s LEFT JOIN _run_bars b ON b.name = s.name
            WHERE s.run_id = ? GROUP BY s.name ORDER BY s.name
            """,
            [run.id],
        ).fetchall()
    finally:
        cur.unregister("_run_bars")
    stats = {}
    for n in names:
        bar = run.thresholds.get(n)
        stats[n] = {"count": 0, "mean": None, "min": None, "max": None, "errors": errors,
                    "pass_rate": 0.0 if bar is not None and errors else None, "threshold": bar}
    for name, count, mean, lo, hi, gradable, passed in rows:
        stats[name] = {
            "count": int(count), "mean": mean, "min": lo, "max": hi, "errors": errors,
            "pass_rate": (passed / (gradable + errors)) if gradable else stats.get(name, {}).get("pass_rate"),
            "threshold": run.thresholds.get(name),
        }
    return stats


# Comparing two runs -------------------------------------------------------------------------------

# Items of run a (first ?) and run b (second ?), paired by item id, with their worst score drop and
# best gain from a to b over the scores both results have. A regression: some score dropped, or the
# item succeeded in a and failed in b.
_PAIRS = """
WITH a AS (SELECT id, item_id, seq, status FROM run_results WHERE run_id = ?),
b AS (SELECT id, item_id, seq, status FROM run_results WHERE run_id = ?),
pairs AS (
    SELECT coalesce(a.item_id, b.item_id) AS item_id, a.id AS a_id, b.id AS b_id,
           coalesce(a.seq, b.seq) AS seq, a.status AS a_status, b.status AS b_status
    FROM a FULL OUTER JOIN b ON a.item_id = b.item_id
),
deltas AS (
    SELECT p.item_id, max(sa.value - sb.value) AS worst_drop, max(sb.value - sa.value) AS best_gain
    FROM pairs p
    JOIN scores sa ON sa.run_id = ? AND sa.run_result_id = p.a_id
    JOIN scores sb ON sb.run_id = ? AND sb.run_result_id = p.b_id AND sb.name = sa.name
    WHERE sa.value IS NOT NULL AND sb.value IS NOT NULL
    GROUP BY p.item_id
),
compared AS (
    SELECT p.*, d.worst_drop, d.best_gain,
           (coalesce(d.worst_drop, 0) > ? OR (p.a_status = 'ok' AND p.b_status = 'error')) AS regression,
           (coalesce(d.best_gain, 0) > ? OR (p.a_status = 'error' AND p.b_status = 'ok')) AS improvement
    FROM pairs p LEFT JOIN deltas d ON d.item_id = p.item_id
)
"""


def _pairs_params(a: Run, b: Run) -> list[Any]:
    return [a.id, b.id, a.id, b.id, REGRESSION_EPSILON, REGRESSION_EPSILON]


def compare_counts(cur: duckdb.DuckDBPyConnection, a: Run, b: Run) -> dict[str, int]:
    row = cur.execute(
        _PAIRS + "SELECT count(*), count(*) FILTER (WHERE regression), "
        "count(*) FILTER (WHERE improvement AND NOT regression), "
        "count(*) FILTER (WHERE a_id IS NULL), count(*) FILTER (WHERE b_id IS NULL) FROM compared",
        _pairs_params(a, b),
    ).fetchone()
    items, regressions, improvements, only_b, only_a = (int(v) for v in row)
    return {
        "items": items, "regressions": regressions, "improvements": improvements,
        "unchanged": items - regressions - improvements - only_a - only_b, "only_in_a": only_a, "only_in_b": only_b,
    }


def compare_page(cur: duckdb.DuckDBPyConnection, a: Run, b: Run, *, offset: int, limit: int) -> list[dict[str, Any]]:
    """Items side by side: regressions first (largest drop first), then the rest in item order."""
    rows = cur.execute(
        _PAIRS + "SELECT item_id, a_id, b_id, worst_drop, best_gain, regression, improvement FROM compared "
        "ORDER BY regression DESC, greatest(coalesce(worst_drop, 0), 0) DESC, seq, item_id LIMIT ? OFFSET ?",
        [*_pairs_params(a, b), limit, offset],
    ).fetchall()
    side_a = results_by_ids(cur, a, [r[1] for r in rows if r[1] is not None])
    side_b = results_by_ids(cur, b, [r[2] for r in rows if r[2] is not None])
    out = []
    for item_id, a_id, b_id, drop, gain, regression, improvement in rows:
        ra, rb = side_a.get(a_id), side_b.get(b_id)
        first = ra or rb or {}
        out.append(
            {
                "item_id": item_id,
                "input": first.get("input"),
                "expected_output": first.get("expected_output"),
                "regression": bool(regression),
                "improvement": bool(improvement) and not regression,
                "score_deltas": _deltas(ra, rb),
                "a": _side(ra),
                "b": _side(rb),
            }
        )
    return out


def _side(result: dict[str, Any] | None) -> dict[str, Any] | None:
    if result is None:
        return None
    keep = ("id", "status", "output", "error", "trace_id", "span_id", "latency_ms", "tokens")
    side = {k: result[k] for k in keep}
    side["scores"] = {s["name"]: (s["value"] if s["value"] is not None else s["label"]) for s in result["scores"]}
    return side


def _deltas(a: dict[str, Any] | None, b: dict[str, Any] | None) -> dict[str, float]:
    """b minus a for every score both results have a value of."""
    if a is None or b is None:
        return {}
    va = {s["name"]: s["value"] for s in a["scores"] if s["value"] is not None}
    vb = {s["name"]: s["value"] for s in b["scores"] if s["value"] is not None}
    return {name: vb[name] - va[name] for name in sorted(va.keys() & vb.keys())}
