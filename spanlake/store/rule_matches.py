"""The SQL of applying one rule to a relation of stored spans (the trace-scope judge, backfill).

capture/apply.py decides what happens (counters, hourly budgets); these functions find, sample,
queue and capture the matches, in the caller's transaction. Span scope: spans of the relation
(alias `s`) matching `when`, sampled by span id. Trace scope: traces with any matching span (or
root span, with `root_only`), sampled by trace id, held in a temp table while the rule is applied.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple, Protocol

import duckdb

from spanlake.store.dataset_capture import CaptureOptions, CaptureResult, capture_spans
from spanlake.store.filter_sql import CompiledFilter
from spanlake.store.rule_sampling import sample_sql
from spanlake.store.rule_scores import enqueue_unscored

TRACE_HITS = "_trace_hits"


class MatchingRule(Protocol):
    """What of a capture rule (capture/rules.py) the SQL reads."""

    name: str
    when: CompiledFilter
    scope: str
    sample: float
    root_only: bool
    capture_spans: CompiledFilter | None
    score: tuple[str, ...]


class Matches(NamedTuple):
    evaluated: int
    matched: int
    sampled: int


def _span_picks(rule: MatchingRule) -> tuple[str, list]:
    """The span-scope pick: matching `when`, and sampled in by span id."""
    sample_cond, sample_params = sample_sql(rule.name, rule.sample, "s.span_id")
    return f"coalesce(({rule.when.sql}), FALSE) AND {sample_cond}", [*rule.when.params, *sample_params]


def count_span_matches(cur: duckdb.DuckDBPyConnection, rule: MatchingRule, relation: str) -> Matches:
    sample_cond, sample_params = sample_sql(rule.name, rule.sample, "s.span_id")
    total, matched, sampled = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE coalesce(({rule.when.sql}), FALSE)), "
        f"count(*) FILTER (WHERE coalesce(({rule.when.sql}), FALSE) AND {sample_cond}) FROM {relation} s",
        [*rule.when.params, *rule.when.params, *sample_params],
    ).fetchone()
    return Matches(total, matched, sampled)


def queue_span_matches(cur: duckdb.DuckDBPyConnection, rule: MatchingRule, relation: str) -> tuple[int, int]:
    """Queue the sampled matching spans for each scorer, except those scored or pending: (queued, skipped)."""
    where, params = _span_picks(rule)
    return enqueue_unscored(
        cur, rule.name, rule.score, rule.scope,
        f"SELECT s.trace_id, s.span_id, s.span_id AS score_span_id FROM {relation} s WHERE {where}", params,
    )


def capture_span_matches(
    cur: duckdb.DuckDBPyConnection, rule: MatchingRule, relation: str, dataset_id: str, options: CaptureOptions
) -> CaptureResult:
    where, params = _span_picks(rule)
    return capture_spans(cur, dataset_id, relation, where=where, params=params, options=options)


@contextmanager
def trace_matches(cur: duckdb.DuckDBPyConnection, rule: MatchingRule, relation: str) -> Iterator[Matches]:
    """Hold the sampled matching traces of `relation` (in TRACE_HITS) while the block applies the rule."""
    root_only = "s.parent_span_id IS NULL AND " if rule.root_only else ""
    sample_cond, sample_params = sample_sql(rule.name, rule.sample, "t.trace_id")
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {TRACE_HITS} AS
        SELECT t.trace_id, bool_or(t.hit) AS hit FROM (
            SELECT s.trace_id, {root_only}coalesce(({rule.when.sql}), FALSE) AS hit FROM {relation} s
        ) t GROUP BY t.trace_id
        """,
        list(rule.when.params),
    )
    try:
        total, matched = cur.execute(f"SELECT count(*), count(*) FILTER (WHERE hit) FROM {TRACE_HITS}").fetchone()
        cur.execute(
            f"DELETE FROM {TRACE_HITS} t WHERE NOT (t.hit AND {sample_cond})", sample_params
        )
        sampled = cur.execute(f"SELECT count(*) FROM {TRACE_HITS}").fetchone()[0]
        yield Matches(total, matched, sampled)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {TRACE_HITS}")


def queue_trace_matches(
    cur: duckdb.DuckDBPyConnection, rule: MatchingRule, relation: str, allowed: int
) -> tuple[int, int]:
    """Queue the first `allowed` held traces (by id) for each scorer, except those scored or
    pending: (queued, skipped). The whole trace is scored; its score sits on the root span (the
    engine's ctx.span)."""
    return enqueue_unscored(cur, rule.name, rule.score, rule.scope, f"""
        SELECT h.trace_id, NULL::VARCHAR AS span_id, r.root AS score_span_id
        FROM (SELECT trace_id FROM {TRACE_HITS} ORDER BY trace_id LIMIT ?) h
        JOIN (
            SELECT s.trace_id, coalesce(arg_min(s.span_id, s.start_time) FILTER (WHERE s.parent_span_id IS NULL),
                                        arg_min(s.span_id, s.start_time)) AS root
            FROM {relation} s GROUP BY s.trace_id
        ) r ON r.trace_id = h.trace_id
    """, [allowed])


def capture_trace_matches(
    cur: duckdb.DuckDBPyConnection,
    rule: MatchingRule,
    relation: str,
    allowed: int,
    dataset_id: str,
    options: CaptureOptions,
) -> CaptureResult:
    """Capture the root span (or the spans matching `capture_spans`) of the first `allowed` held traces."""
    pick_sql, pick_params = "s.parent_span_id IS NULL", []
    if rule.capture_spans is not None:
        pick_sql, pick_params = f"coalesce(({rule.capture_spans.sql}), FALSE)", list(rule.capture_spans.params)
    return capture_spans(
        cur,
        dataset_id,
        relation,
        where=f"s.trace_id IN (SELECT trace_id FROM {TRACE_HITS} ORDER BY trace_id LIMIT ?) AND {pick_sql}",
        params=[allowed, *pick_params],
        options=options,
    )

