"""Reads of dataset runs for the API (`await store.read(fn, ...)`) and the JSON they become.

A run's JSON merges three sources: the run row (what was asked), its results (counts), and its
job (scoring progress and per-item scoring errors). Target headers are never shown: they are
kept with the run only so that a restart can resume it.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import duckdb

from spanlake.runs.service import find
from spanlake.datasets.service import resolve
from spanlake.clock import iso_from_datetime
from spanlake.store import jobs, run_reads, runs


def run_json(run: runs.Run, counts: dict[str, int], job: jobs.Job | None) -> dict[str, Any]:
    target = None
    if run.target is not None:
        target = {**run.target, "headers": {k: "***" for k in run.target.get("headers", {})}}
    scoring_started = job is not None and job.id == run.job_id
    return {
        "id": run.id,
        "dataset_id": run.dataset_id,
        "name": run.name,
        "mode": run.mode,
        "status": run.status,
        "as_of": iso_from_datetime(run.as_of),
        "target": target,
        "scorers": run.scorers,
        "thresholds": run.thresholds,
        "concurrency": run.concurrency,
        "metadata": run.metadata,
        **counts,
        "scored": (job.completed + job.failed) if scoring_started and job else 0,
        "scoring_failed": job.failed if scoring_started and job else 0,
        "errors": ([e for e in job.errors if e.get("error") != "cancelled"] if job else []) + (
            [{"error": run.error}] if run.error else []
        ),
        "created_at": iso_from_datetime(run.created_at),
        "created_by": run.created_by,
        "updated_at": iso_from_datetime(run.updated_at),
        "finished_at": iso_from_datetime(run.finished_at),
        "url": f"/api/datasets/{run.dataset_id}/runs/{run.id}",
    }


def describe(cur: duckdb.DuckDBPyConnection, run: runs.Run, *, with_summary: bool = False) -> dict[str, Any]:
    counts = runs.result_counts(cur, [run.id])[run.id]
    job = jobs.get_job(cur, run.job_id) if run.job_id else None
    out = run_json(run, counts, job)
    if with_summary:
        out["summary"] = run_reads.summary(cur, run)
    return out


def get_run(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> dict[str, Any]:
    return describe(cur, find(cur, dataset_ref, run_ref), with_summary=True)


def list_runs(
    cur: duckdb.DuckDBPyConnection, dataset_ref: str, before: tuple[dt.datetime, str] | None, limit: int,
    with_summary: bool = False,
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """A page of runs, newest first, and the (created_at, id) key of the next page, if any.

    `with_summary` adds each run's summary (per-scorer mean and pass rate, latency, tokens): the
    runs page shows it for every run."""
    dataset = resolve(cur, dataset_ref)
    found = runs.list_runs(cur, dataset["id"], limit=limit + 1, before=before)
    more = len(found) > limit
    found = found[:limit]
    counts = runs.result_counts(cur, [r.id for r in found])
    items = []
    for run in found:
        job = jobs.get_job(cur, run.job_id) if run.job_id else None
        item = run_json(run, counts[run.id], job)
        if with_summary:
            item["summary"] = run_reads.summary(cur, run)
        items.append(item)
    key = (found[-1].created_at.isoformat(), found[-1].id) if more and found else None
    return items, key


def results_page(
    cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str, status: str | None, after_seq: int, limit: int
) -> tuple[list[dict[str, Any]], int | None]:
    run = find(cur, dataset_ref, run_ref)
    rows = run_reads.results_page(cur, run, status=status, after_seq=after_seq, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["seq"] if more and rows else None)


def run_metadata(cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_ref: str) -> dict[str, Any]:
    """The run's metadata (its `model` prices its results)."""
    return find(cur, dataset_ref, run_ref).metadata


def compare(
    cur: duckdb.DuckDBPyConnection, dataset_ref: str, run_a: str, run_b: str, offset: int, limit: int
) -> dict[str, Any]:
    """Two runs side by side: per-item pairs (regressions first) and summary deltas (b minus a)."""
    a, b = find(cur, dataset_ref, run_a), find(cur, dataset_ref, run_b)
    sa, sb = run_reads.summary(cur, a), run_reads.summary(cur, b)
    items = run_reads.compare_page(cur, a, b, offset=offset, limit=limit + 1)
    more = len(items) > limit
    return {
        "a": describe(cur, a),
        "b": describe(cur, b),
        "summary": {
            "a": sa,
            "b": sb,
            "delta": summary_delta(sa, sb),
            **run_reads.compare_counts(cur, a, b),
        },
        "items": items[:limit],
        "next_offset": offset + limit if more else None,
    }


def _minus(a: Any, b: Any) -> float | None:
    return None if a is None or b is None else b - a


def summary_delta(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    scorers = {}
    for name in dict.fromkeys([*a["scorers"], *b["scorers"]]):
        x, y = a["scorers"].get(name, {}), b["scorers"].get(name, {})
        scorers[name] = {
            "mean": _minus(x.get("mean"), y.get("mean")),
            "pass_rate": _minus(x.get("pass_rate"), y.get("pass_rate")),
        }
    ta, tb = a["tokens"] or {}, b["tokens"] or {}
    return {
        "scorers": scorers,
        "latency_ms": {k: _minus(a["latency_ms"][k], b["latency_ms"][k]) for k in ("p50", "p95", "mean")},
        "errors": b["errors"] - a["errors"],
        "completed": b["completed"] - a["completed"],
        "tokens": _minus(ta.get("total"), tb.get("total")),
    }
