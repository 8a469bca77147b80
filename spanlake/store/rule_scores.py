"""Scoring rules' SQL: the queue of matches to score, its hand-over to jobs, and what is scored.

The flow: a rule's match is appended to `rule_score_queue`, one row per scorer, in the
transaction that made the match (the ingest commit for span scope, the quiet-trace judgement
for trace scope, a backfill window). The dispatcher (`take_queued`) moves rows into scoring jobs
(`jobs`/`job_items`, kind RULE_JOB_KIND) and deletes them in one transaction, and the scoring
engine runs those jobs like batches. Nothing here reads the queue inside the ingest commit:
that stays one INSERT.

"Already scored" means a score with the scorer's name and scorer at the target (the span, or
the root span for a whole trace), whatever its source; "pending" means in the queue or in an
unfinished job item of the same rule and scorer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.clock import utc_now

RULE_JOB_KIND = "score_rule"
TARGETS = "_rule_score_targets"
_QUEUE_SCHEMA = pa.schema(
    [
        ("rule", pa.string()),
        ("scorer", pa.string()),
        ("scope", pa.string()),
        ("trace_id", pa.string()),
        ("span_id", pa.string()),
        ("queued_at", pa.timestamp("us")),
    ]
)
# (rule, scorer, scope, trace_id, span_id or None for the whole trace)
QueueRow = tuple[str, str, str, str, str | None]


def enqueue(cur: duckdb.DuckDBPyConnection, rows: Sequence[QueueRow]) -> int:
    """Append matches to score, in the caller's transaction: one INSERT, no reads."""
    if not rows:
        return 0
    columns = [pa.array(column, pa.string()) for column in zip(*rows)]
    columns.append(pa.array([utc_now()] * len(rows), pa.timestamp("us")))
    # DuckDB finds this local by its name (a replacement scan, as store/writer.py does): no
    # register/unregister, which cost a third of this INSERT beside a busy receiver.
    _rule_score_rows = pa.Table.from_arrays(columns, schema=_QUEUE_SCHEMA)  # noqa: F841 - read by the SQL
    cur.execute("INSERT INTO rule_score_queue SELECT * FROM _rule_score_rows")
    return len(rows)


def enqueue_unscored(
    cur: duckdb.DuckDBPyConnection, rule: str, scorers: Sequence[str], scope: str, select_sql: str, params: list[Any]
) -> tuple[int, int]:
    """Queue the targets `select_sql` yields (columns trace_id, span_id, score_span_id: the span
    a score of the target sits on) for each scorer, except those already scored or pending.
    Returns scorer calls (queued, skipped)."""
    cur.execute(f"CREATE OR REPLACE TEMP TABLE {TARGETS} AS SELECT DISTINCT * FROM ({select_sql})", params)
    try:
        total = cur.execute(f"SELECT count(*) FROM {TARGETS}").fetchone()[0]
        queued, now = 0, utc_now()
        for scorer in scorers if total else ():
            queued += cur.execute(
                f"""
                INSERT INTO rule_score_queue
                SELECT ?, ?, ?, t.trace_id, t.span_id, ? FROM {TARGETS} t
                WHERE NOT EXISTS (
                    SELECT 1 FROM scores s WHERE s.name = ? AND s.scorer = ? AND s.trace_id = t.trace_id
                    AND s.span_id = t.score_span_id
                ) AND NOT EXISTS (
                    SELECT 1 FROM rule_score_queue q WHERE q.rule = ? AND q.scorer = ?
                    AND q.trace_id = t.trace_id AND q.span_id IS NOT DISTINCT FROM t.span_id
                ) AND NOT EXISTS (
                    SELECT 1 FROM job_items ji WHERE ji.status = 'pending' AND ji.trace_id = t.trace_id
                    AND ji.span_id IS NOT DISTINCT FROM t.span_id AND ji.job_id IN ({_unfinished_jobs()})
                )
                """,
                [rule, scorer, scope, now, scorer, scorer, rule, scorer, RULE_JOB_KIND, rule, scorer],
            ).fetchone()[0]
        return int(queued), int(total * len(scorers) - queued)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {TARGETS}")


def _unfinished_jobs() -> str:
    """Ids of unfinished rule jobs of a rule and scorer (parameters: kind, rule, scorer)."""
    return (
        "SELECT id FROM jobs WHERE kind = ? AND status IN ('pending', 'running') "
        "AND json_extract_string(params, '$.rule') = ? AND json_extract_string(params, '$.scorer') = ?"
    )


def take_queued(
    cur: duckdb.DuckDBPyConnection, limit: int
) -> dict[tuple[str, str, str], list[tuple[str, str | None]]]:
    """Remove up to about `limit` of the oldest queued matches (whole commits at a time) and
    return them by (rule, scorer, scope); the caller turns them into jobs in this transaction."""
    cutoff = cur.execute(
        "SELECT max(queued_at) FROM (SELECT queued_at FROM rule_score_queue ORDER BY queued_at LIMIT ?)", [limit]
    ).fetchone()[0]
    if cutoff is None:
        return {}
    rows = cur.execute(
        "SELECT rule, scorer, scope, trace_id, span_id FROM rule_score_queue WHERE queued_at <= ? "
        "ORDER BY queued_at, trace_id, span_id",
        [cutoff],
    ).fetchall()
    # No vacuum.after_delete: every row of the queue is deleted soon after it was added, so whole
    # row groups empty out and go without a vacuum, and turning vacuum on every dispatch would
    # make each checkpoint rewrite the spans' partly filled row groups too (store/vacuum.py).
    cur.execute("DELETE FROM rule_score_queue WHERE queued_at <= ?", [cutoff])
    grouped: dict[tuple[str, str, str], dict[tuple[str, str | None], None]] = {}
    for rule, scorer, scope, trace_id, span_id in rows:
        grouped.setdefault((rule, scorer, scope), {})[(trace_id, span_id)] = None  # a repeat is scored once
    return {key: list(targets) for key, targets in grouped.items()}


def backlog_by_rule(cur: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Scorer calls each rule still owes: queued matches plus pending items of its jobs."""
    rows = cur.execute(
        """
        SELECT rule, sum(n) FROM (
            SELECT rule, count(*) AS n FROM rule_score_queue GROUP BY rule
            UNION ALL
            SELECT json_extract_string(j.params, '$.rule') AS rule, count(*) AS n
            FROM job_items ji JOIN jobs j ON ji.job_id = j.id
            WHERE j.kind = ? AND j.status IN ('pending', 'running') AND ji.status = 'pending'
            GROUP BY 1
        ) GROUP BY rule
        """,
        [RULE_JOB_KIND],
    ).fetchall()
    return {rule: int(n) for rule, n in rows}
