"""Applying one rule to a relation of stored spans: the trace-scope judge and backfill share this.

Span scope: every span of the relation matching `when` (and sampled in by span id) is captured.
Trace scope: a trace matches when any of its spans (or its root, with `root_only`) matches
`when`; sampled by trace id; its root span, or every span matching `capture_spans`, is captured.
A scoring rule's matches are queued for each of its scorers, except those already scored or
pending (a trace judged again after late spans, a backfill run twice).
"""

from __future__ import annotations

import duckdb

from spanlake.capture.counters import RuleCounter
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import Rule, sample_sql
from spanlake.capture.sql import dataset_for_rule, rule_options
from spanlake.store.dataset_capture import capture_spans
from spanlake.store.rule_scores import enqueue_unscored

TRACE_HITS = "_trace_hits"


def apply_rule(
    cur: duckdb.DuckDBPyConnection,
    rule: Rule,
    relation: str,
    counter: RuleCounter,
    limiter: HourlyLimiter | None,
) -> int:
    """Capture what `rule` picks from `relation` (alias `s`); returns items created."""
    if rule.scope == "span":
        return _apply_span_rule(cur, rule, relation, counter)
    return _apply_trace_rule(cur, rule, relation, counter, limiter)


def _apply_span_rule(cur: duckdb.DuckDBPyConnection, rule: Rule, relation: str, counter: RuleCounter) -> int:
    sample_cond, sample_params = sample_sql(rule, "s", "span_id")
    total, matched, sampled = cur.execute(
        f"SELECT count(*), count(*) FILTER (WHERE coalesce(({rule.when.sql}), FALSE)), "
        f"count(*) FILTER (WHERE coalesce(({rule.when.sql}), FALSE) AND {sample_cond}) FROM {relation} s",
        [*rule.when.params, *rule.when.params, *sample_params],
    ).fetchone()
    counter.count(evaluated=total, matched=matched, sampled_out=matched - sampled)
    if not sampled:
        return 0
    where = f"coalesce(({rule.when.sql}), FALSE) AND {sample_cond}"
    if rule.score:
        _queue(cur, rule, counter, f"SELECT s.trace_id, s.span_id, s.span_id AS score_span_id FROM {relation} s "
               f"WHERE {where}", [*rule.when.params, *sample_params])
    if rule.dataset is None:
        return 0
    result = capture_spans(
        cur,
        dataset_for_rule(cur, rule.dataset),
        relation,
        where=f"coalesce(({rule.when.sql}), FALSE) AND {sample_cond}",
        params=[*rule.when.params, *sample_params],
        options=rule_options(rule),
    )
    counter.count(captured=result.captured, duplicates=result.duplicates)
    return result.captured


def _apply_trace_rule(
    cur: duckdb.DuckDBPyConnection, rule: Rule, relation: str, counter: RuleCounter, limiter: HourlyLimiter | None
) -> int:
    root_only = "s.parent_span_id IS NULL AND " if rule.root_only else ""
    sample_cond, sample_params = sample_sql(rule, "t", "trace_id")
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
        counter.count(evaluated=total, matched=matched, sampled_out=matched - sampled)
        allowed = limiter.take(rule.name, rule.max_per_hour, sampled) if limiter else sampled
        counter.count(rate_limited=sampled - allowed)
        if not allowed:
            return 0
        if rule.score:
            # The whole trace is scored; its score sits on the root span (the engine's ctx.span).
            _queue(cur, rule, counter, f"""
                SELECT h.trace_id, NULL::VARCHAR AS span_id, r.root AS score_span_id
                FROM (SELECT trace_id FROM {TRACE_HITS} ORDER BY trace_id LIMIT ?) h
                JOIN (
                    SELECT s.trace_id, coalesce(arg_min(s.span_id, s.start_time) FILTER (WHERE s.parent_span_id IS NULL),
                                                arg_min(s.span_id, s.start_time)) AS root
                    FROM {relation} s GROUP BY s.trace_id
                ) r ON r.trace_id = h.trace_id
            """, [allowed])
        if rule.dataset is None:
            return 0
        pick_sql, pick_params = "s.parent_span_id IS NULL", []
        if rule.capture_spans is not None:
            pick_sql, pick_params = f"coalesce(({rule.capture_spans.sql}), FALSE)", list(rule.capture_spans.params)
        result = capture_spans(
            cur,
            dataset_for_rule(cur, rule.dataset),
            relation,
            where=f"s.trace_id IN (SELECT trace_id FROM {TRACE_HITS} ORDER BY trace_id LIMIT ?) AND {pick_sql}",
            params=[allowed, *pick_params],
            options=rule_options(rule),
        )
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {TRACE_HITS}")
    counter.count(captured=result.captured, duplicates=result.duplicates)
    return result.captured


def _queue(cur: duckdb.DuckDBPyConnection, rule: Rule, counter: RuleCounter, select_sql: str, params: list) -> None:
    queued, skipped = enqueue_unscored(cur, rule.name, rule.score, rule.scope, select_sql, params)
    counter.count(queued=queued, already_scored=skipped)
