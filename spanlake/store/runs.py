"""SQL for dataset runs: the run rows, their per-item results, and the scores of those results.

A run reads its dataset at one instant (`as_of`), so the items it ran on stay readable however the
dataset changes later. Its result rows are created `pending` when the run starts, one per item
visible at `as_of`, numbered by `seq` (the item's position); for a server-side run the job item
with the same seq is the unit of work. Executing an item updates its pending row once: a result
that is no longer pending is never overwritten by a runner, so a restart never records an item
twice. Client posts replace a result (last write wins) until the run is completed.

Scores of run results live in the `scores` table with `run_id` / `run_result_id` set; their
identity is (run_result_id, name), so two runs over the same trace keep their own scores.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.store import vacuum
from spanlake.store.actor import current_actor
from spanlake.store.dataset_items import visible
from spanlake.store.scores import SCORE_COLUMNS
from spanlake.store.locks import hold as hold_lock
from spanlake.clock import utc_now

PENDING, RUNNING, COMPLETED, FAILED, CANCELLED = "pending", "running", "completed", "failed", "cancelled"
OPEN_STATUSES = (PENDING, RUNNING)
RESULT_PENDING, RESULT_OK, RESULT_ERROR = "pending", "ok", "error"

_RUN_COLUMNS = (
    "id, dataset_id, name, mode, as_of, target::VARCHAR, scorers::VARCHAR, thresholds::VARCHAR, concurrency, "
    "status, error, metadata::VARCHAR, job_id, created_at, updated_at, finished_at, created_by"
)
# A fresh W3C trace id (32 hex) and span id (16 hex, the random tail of a v4 UUID) per row.
_NEW_TRACE_ID = "replace(gen_random_uuid()::VARCHAR, '-', '')"
_NEW_SPAN_ID = "right(replace(gen_random_uuid()::VARCHAR, '-', ''), 16)"

EXECUTION_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()), ("status", pa.string()), ("output", pa.string()), ("error", pa.string()),
        ("trace_id", pa.string()), ("span_id", pa.string()), ("latency_ms", pa.float64()),
        ("input_tokens", pa.int64()), ("output_tokens", pa.int64()), ("total_tokens", pa.int64()),
    ]
)
POSTED_SCHEMA = pa.schema([("item_id", pa.string()), *[f for f in EXECUTION_SCHEMA if f.name != "seq"]])
RUN_SCORE_SCHEMA = pa.schema(
    [
        ("id", pa.string()), ("trace_id", pa.string()), ("span_id", pa.string()), ("name", pa.string()),
        ("value", pa.float64()), ("label", pa.string()), ("data_type", pa.string()), ("source", pa.string()),
        ("scorer", pa.string()), ("explanation", pa.string()), ("metadata", pa.string()), ("batch_id", pa.string()),
        ("run_id", pa.string()), ("run_result_id", pa.string()), ("created_at", pa.timestamp("us")),
    ]
)


@dataclass(frozen=True)
class Run:
    id: str
    dataset_id: str
    name: str
    mode: str  # server | client
    as_of: dt.datetime
    target: dict[str, Any] | None
    scorers: list[str]
    thresholds: dict[str, float]
    concurrency: int
    status: str
    error: str | None
    metadata: dict[str, Any]
    job_id: str | None
    created_at: dt.datetime
    updated_at: dt.datetime
    finished_at: dt.datetime | None
    created_by: str | None = None  # the API key's name; insert_run fills it from store/actor.py

    @property
    def open(self) -> bool:
        return self.status in OPEN_STATUSES


def _run(row: Sequence[Any]) -> Run:
    (id_, dataset_id, name, mode, as_of, target, scorers, thresholds, concurrency, status, error, metadata,
     job_id, created, updated, finished, created_by) = row
    return Run(
        id_, dataset_id, name, mode, as_of, json.loads(target) if target else None,
        json.loads(scorers) if scorers else [], json.loads(thresholds) if thresholds else {},
        int(concurrency or 1), status, error, json.loads(metadata) if metadata else {}, job_id, created, updated,
        finished, created_by,
    )


# Runs -------------------------------------------------------------------------------------------


def name_taken(cur: duckdb.DuckDBPyConnection, dataset_id: str, name: str) -> bool:
    row = cur.execute("SELECT count(*) FROM runs WHERE dataset_id = ? AND name = ?", [dataset_id, name]).fetchone()
    return bool(row[0])


def insert_run(cur: duckdb.DuckDBPyConnection, run: Run) -> None:
    hold_lock(cur)  # the caller's "name is free" check must see every replica's runs
    cur.execute(
        "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?::JSON, ?::JSON, ?::JSON, ?, ?, ?, ?::JSON, ?, ?, ?, ?, ?)",
        [
            run.id, run.dataset_id, run.name, run.mode, run.as_of,
            None if run.target is None else json.dumps(run.target), json.dumps(run.scorers),
            json.dumps(run.thresholds), run.concurrency, run.status, run.error, json.dumps(run.metadata),
            run.job_id, run.created_at, run.updated_at, run.finished_at, run.created_by or current_actor(),
        ],
    )


def seed_results(cur: duckdb.DuckDBPyConnection, run_id: str, dataset_id: str, as_of: dt.datetime, *, traced: bool) -> int:
    """One pending result per item visible at `as_of`, in item order; `traced` draws a trace context each."""
    cond, params = visible(as_of)
    trace, parent = (_NEW_TRACE_ID, _NEW_SPAN_ID) if traced else ("NULL", "NULL")
    now = utc_now()
    cur.execute(
        f"""
        INSERT INTO run_results
        SELECT {_NEW_TRACE_ID}, ?, row_number() OVER (ORDER BY i.created_at, i.id) - 1, i.id, 'pending',
               NULL, NULL, {trace}, NULL, {parent}, NULL, NULL, NULL, NULL, ?, ?
        FROM dataset_items i WHERE i.dataset_id = ? AND {cond}
        """,
        [run_id, now, now, dataset_id, *params],
    )
    return int(cur.execute("SELECT count(*) FROM run_results WHERE run_id = ?", [run_id]).fetchone()[0])


def job_keys(cur: duckdb.DuckDBPyConnection, run_id: str) -> list[tuple[str | None, str | None]]:
    """(trace_id, parent span id) of every result in seq order: the items of the run's job."""
    rows = cur.execute(
        "SELECT trace_id, parent_span_id FROM run_results WHERE run_id = ? ORDER BY seq", [run_id]
    ).fetchall()
    return [(t, s) for t, s in rows]


def find_run(cur: duckdb.DuckDBPyConnection, dataset_id: str, ref: str) -> Run | None:
    """A run of the dataset by id, else by name."""
    row = cur.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE dataset_id = ? AND (id = ? OR name = ?) ORDER BY (id = ?) DESC LIMIT 1",
        [dataset_id, ref, ref, ref],
    ).fetchone()
    return _run(row) if row else None


def get_run(cur: duckdb.DuckDBPyConnection, run_id: str) -> Run | None:
    row = cur.execute(f"SELECT {_RUN_COLUMNS} FROM runs WHERE id = ?", [run_id]).fetchone()
    return _run(row) if row else None


def list_runs(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, *, limit: int, before: tuple[dt.datetime, str] | None = None
) -> list[Run]:
    """Newest first; `before` is the (created_at, id) of the previous page's last run."""
    where, params = "dataset_id = ?", [dataset_id]
    if before is not None:
        where += " AND (created_at < ? OR (created_at = ? AND id < ?))"
        params += [before[0], before[0], before[1]]
    rows = cur.execute(
        f"SELECT {_RUN_COLUMNS} FROM runs WHERE {where} ORDER BY created_at DESC, id DESC LIMIT ?", [*params, limit]
    ).fetchall()
    return [_run(r) for r in rows]


def set_status(
    cur: duckdb.DuckDBPyConnection,
    run_id: str,
    status: str,
    *,
    when: Sequence[str] = OPEN_STATUSES,
    error: str | None = None,
    job_id: str | None = None,
) -> bool:
    """Move the run to `status` if it is in one of `when`; False when it was not (e.g. cancelled meanwhile)."""
    row = cur.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    if row is None or row[0] not in when:
        return False
    now = utc_now()
    finished = now if status in (COMPLETED, FAILED, CANCELLED) else None
    cur.execute(
        "UPDATE runs SET status = ?, error = coalesce(?, error), job_id = coalesce(?, job_id), updated_at = ?, "
        "finished_at = ? WHERE id = ?",
        [status, error, job_id, now, finished, run_id],
    )
    return True


def run_status(cur: duckdb.DuckDBPyConnection, run_id: str) -> str | None:
    row = cur.execute("SELECT status FROM runs WHERE id = ?", [run_id]).fetchone()
    return row[0] if row else None


def result_counts(cur: duckdb.DuckDBPyConnection, run_ids: Sequence[str]) -> dict[str, dict[str, int]]:
    """total / completed (ok) / failed (error) / pending results of each run."""
    rows = cur.execute(
        "SELECT run_id, count(*), count(*) FILTER (WHERE status = 'ok'), count(*) FILTER (WHERE status = 'error') "
        "FROM run_results WHERE run_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY run_id",
        [list(run_ids)],
    ).fetchall()
    out = {r: {"total": 0, "completed": 0, "failed": 0, "pending": 0} for r in run_ids}
    for run_id, total, ok, failed in rows:
        out[run_id] = {"total": int(total), "completed": int(ok), "failed": int(failed),
                       "pending": int(total - ok - failed)}
    return out


# Results ----------------------------------------------------------------------------------------

_WORK_SELECT = (
    "r.id, r.seq, r.item_id, r.status, r.output::VARCHAR, r.error, r.trace_id, r.span_id, r.parent_span_id, "
    "r.latency_ms, r.input_tokens, r.output_tokens, r.total_tokens, i.input::VARCHAR, i.expected_output::VARCHAR, "
    "i.metadata::VARCHAR"
)
_WORK_KEYS = (
    "id", "seq", "item_id", "status", "output", "error", "trace_id", "span_id", "parent_span_id", "latency_ms",
    "input_tokens", "output_tokens", "total_tokens", "input", "expected_output", "item_metadata",
)


def _work(row: Sequence[Any]) -> dict[str, Any]:
    out = dict(zip(_WORK_KEYS, row))
    for key in ("output", "input", "expected_output", "item_metadata"):
        if out[key] is not None:
            out[key] = json.loads(out[key])
    return out


def pending_work(
    cur: duckdb.DuckDBPyConnection, run: Run, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    """The next pending results (to execute) with their item's input, in seq order."""
    cond, params = visible(run.as_of)
    rows = cur.execute(
        f"SELECT {_WORK_SELECT} FROM run_results r LEFT JOIN dataset_items i ON i.id = r.item_id "
        f"AND i.dataset_id = ? AND {cond} WHERE r.run_id = ? AND r.status = 'pending' AND r.seq > ? "
        "ORDER BY r.seq LIMIT ?",
        [run.dataset_id, *params, run.id, after_seq, limit],
    ).fetchall()
    return [_work(r) for r in rows]


def work_by_seq(cur: duckdb.DuckDBPyConnection, run: Run, seqs: Sequence[int]) -> list[dict[str, Any]]:
    """Results (any status) with their item's input and expectation, for scoring."""
    cond, params = visible(run.as_of)
    rows = cur.execute(
        f"SELECT {_WORK_SELECT} FROM run_results r LEFT JOIN dataset_items i ON i.id = r.item_id "
        f"AND i.dataset_id = ? AND {cond} WHERE r.run_id = ? AND r.seq IN (SELECT unnest(?::BIGINT[])) "
        "ORDER BY r.seq",
        [run.dataset_id, *params, run.id, list(seqs)],
    ).fetchall()
    return [_work(r) for r in rows]


def record_executions(cur: duckdb.DuckDBPyConnection, run_id: str, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Store what the target answered, for results still pending only; returns the seqs stored."""
    if not rows:
        return []
    table = pa.Table.from_pylist([{k: r.get(k) for k in EXECUTION_SCHEMA.names} for r in rows], schema=EXECUTION_SCHEMA)
    cur.register("_executions_in", table)
    try:
        fresh = [
            int(r[0])
            for r in cur.execute(
                "SELECT r.seq FROM run_results r JOIN _executions_in e ON r.seq = e.seq "
                "WHERE r.run_id = ? AND r.status = 'pending'",
                [run_id],
            ).fetchall()
        ]
        if fresh:
            cur.execute(
                "UPDATE run_results SET status = e.status, output = e.output::JSON, error = e.error, "
                "trace_id = coalesce(e.trace_id, run_results.trace_id), span_id = e.span_id, "
                "latency_ms = e.latency_ms, input_tokens = e.input_tokens, output_tokens = e.output_tokens, "
                "total_tokens = e.total_tokens, updated_at = ? FROM _executions_in e "
                "WHERE run_results.run_id = ? AND run_results.seq = e.seq AND run_results.status = 'pending'",
                [utc_now(), run_id],
            )
    finally:
        cur.unregister("_executions_in")
    return fresh


def known_items(cur: duckdb.DuckDBPyConnection, run_id: str, item_ids: Sequence[str]) -> set[str]:
    rows = cur.execute(
        "SELECT item_id FROM run_results WHERE run_id = ? AND item_id IN (SELECT unnest(?::VARCHAR[]))",
        [run_id, list(item_ids)],
    ).fetchall()
    return {r[0] for r in rows}


def post_results(cur: duckdb.DuckDBPyConnection, run_id: str, rows: Sequence[dict[str, Any]]) -> int:
    """Client-side results: replace each item's result, whatever it was (posting again overwrites)."""
    if not rows:
        return 0
    table = pa.Table.from_pylist([{k: r.get(k) for k in POSTED_SCHEMA.names} for r in rows], schema=POSTED_SCHEMA)
    cur.register("_posted_in", table)
    try:
        cur.execute(
            "UPDATE run_results SET status = p.status, output = p.output::JSON, error = p.error, "
            "trace_id = p.trace_id, span_id = p.span_id, latency_ms = p.latency_ms, input_tokens = p.input_tokens, "
            "output_tokens = p.output_tokens, total_tokens = p.total_tokens, updated_at = ? FROM _posted_in p "
            "WHERE run_results.run_id = ? AND run_results.item_id = p.item_id",
            [utc_now(), run_id],
        )
    finally:
        cur.unregister("_posted_in")
    return len(rows)


def replace_posted_scores(
    cur: duckdb.DuckDBPyConnection, run_id: str, rows: Sequence[dict[str, Any]], new_id: Any, now: dt.datetime
) -> int:
    """The client's own scores of these items' results: a repost of an item replaces all of them.

    They carry no trace yet (the client's spans may still be on their way); scoring the run links
    them to the result's stored trace (`link_result_scores`).
    """
    if not rows:
        return 0
    found = cur.execute(
        "SELECT item_id, id FROM run_results WHERE run_id = ? AND item_id IN (SELECT unnest(?::VARCHAR[]))",
        [run_id, [r["item_id"] for r in rows]],
    ).fetchall()
    result_ids = dict(found)
    replaced = cur.execute(
        "DELETE FROM scores WHERE run_id = ? AND run_result_id IN (SELECT unnest(?::VARCHAR[]))",
        [run_id, list(result_ids.values())],
    ).fetchone()[0]
    vacuum.after_delete(cur, replaced)
    scores = [
        {**score, "id": new_id(), "trace_id": None, "span_id": None, "source": "eval", "scorer": score["name"],
         "batch_id": None, "run_id": run_id, "run_result_id": result_ids[row["item_id"]], "created_at": now}
        for row in rows for score in row.get("scores", ())
    ]
    return upsert_run_scores(cur, scores)


def link_result_scores(cur: duckdb.DuckDBPyConnection, run_id: str, links: Sequence[tuple[str, str, str]]) -> None:
    """Give scores posted without a trace the (trace, span) their result turned out to have:
    (result id, trace id, span id) triples."""
    if not links:
        return
    cur.execute(
        "UPDATE scores SET trace_id = l.trace_id, span_id = l.span_id FROM (SELECT unnest(?::VARCHAR[]) AS id, "
        "unnest(?::VARCHAR[]) AS trace_id, unnest(?::VARCHAR[]) AS span_id) l "
        "WHERE scores.run_id = ? AND scores.run_result_id = l.id AND scores.trace_id IS NULL",
        [[a for a, _, _ in links], [b for _, b, _ in links], [c for _, _, c in links], run_id],
    )


def fail_pending(cur: duckdb.DuckDBPyConnection, run_id: str, error: str) -> int:
    """Close every result still pending as an error (a client completed without posting them)."""
    count = cur.execute(
        "SELECT count(*) FROM run_results WHERE run_id = ? AND status = 'pending'", [run_id]
    ).fetchone()[0]
    if count:
        cur.execute(
            "UPDATE run_results SET status = 'error', error = ?, updated_at = ? WHERE run_id = ? AND status = 'pending'",
            [error, utc_now(), run_id],
        )
    return int(count)


def link_spans(cur: duckdb.DuckDBPyConnection, links: Sequence[tuple[str, str]]) -> None:
    """Set the span of results whose trace arrived after they ran: (result id, span id) pairs."""
    if not links:
        return
    cur.execute(
        "UPDATE run_results SET span_id = l.span_id FROM (SELECT unnest(?::VARCHAR[]) AS id, "
        "unnest(?::VARCHAR[]) AS span_id) l WHERE run_results.id = l.id AND run_results.span_id IS NULL",
        [[a for a, _ in links], [b for _, b in links]],
    )


def upsert_run_scores(cur: duckdb.DuckDBPyConnection, rows: Sequence[dict[str, Any]]) -> int:
    """Scores of run results; one per (run_result_id, name): writing it again replaces it."""
    if not rows:
        return 0
    table = pa.Table.from_pylist([{k: r.get(k) for k in RUN_SCORE_SCHEMA.names} for r in rows], schema=RUN_SCORE_SCHEMA)
    run_ids = sorted({r["run_id"] for r in rows})
    cur.register("_run_scores_in", table)
    try:
        # A constant run_id lets zone maps skip the row groups of other runs' and traces' scores.
        for run_id in run_ids:
            replaced = cur.execute(
                "DELETE FROM scores USING _run_scores_in n WHERE scores.run_id = ? "
                "AND scores.run_result_id = n.run_result_id AND scores.name = n.name",
                [run_id],
            ).fetchone()[0]
            vacuum.after_delete(cur, replaced)
        cur.execute(
            # A run's scores are written for whoever started the run.
            f"INSERT INTO scores ({SCORE_COLUMNS}) SELECT id, trace_id, span_id, name, value, label, data_type, "
            "source, scorer, explanation, metadata::JSON, batch_id, run_id, run_result_id, created_at, "
            "(SELECT r.created_by FROM runs r WHERE r.id = _run_scores_in.run_id), NULL FROM _run_scores_in"
        )
    finally:
        cur.unregister("_run_scores_in")
    return len(rows)


def delete_run(cur: duckdb.DuckDBPyConnection, run_id: str, job_id: str | None) -> int:
    """Remove a run with its results, their scores and its job, in the caller's transaction;
    returns the results removed."""
    removed = cur.execute("DELETE FROM run_results WHERE run_id = ?", [run_id]).fetchone()[0]
    scores = cur.execute("DELETE FROM scores WHERE run_id = ?", [run_id]).fetchone()[0]
    if job_id is not None:
        cur.execute("DELETE FROM job_items WHERE job_id = ?", [job_id])
        cur.execute("DELETE FROM jobs WHERE id = ?", [job_id])
    cur.execute("DELETE FROM runs WHERE id = ?", [run_id])
    vacuum.after_delete(cur, int(removed) + int(scores))
    return int(removed)
