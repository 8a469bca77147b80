"""Applying one rule to a relation of stored spans: the trace-scope judge and backfill share this.

Span scope: every span of the relation matching `when` (and sampled in by span id) is captured.
Trace scope: a trace matches when any of its spans (or its root, with `root_only`) matches
`when`; sampled by trace id; its root span, or every span matching `capture_spans`, is captured.
A scoring rule's matches are queued for each of its scorers, except those already scored or
pending (a trace judged again after late spans, a backfill run twice). The SQL of each step is
store/rule_matches.py; this module counts and applies the hourly budget.
"""

from __future__ import annotations

import duckdb

from spanlake.capture.counters import RuleCounter
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import Rule
from spanlake.capture.targets import rule_options
from spanlake.store import rule_matches
from spanlake.store.datasets import get_or_create_dataset


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
    total, matched, sampled = rule_matches.count_span_matches(cur, rule, relation)
    counter.count(evaluated=total, matched=matched, sampled_out=matched - sampled)
    if not sampled:
        return 0
    if rule.score:
        _count_queued(counter, rule_matches.queue_span_matches(cur, rule, relation))
    if rule.dataset is None:
        return 0
    dataset_id = get_or_create_dataset(cur, rule.dataset)  # "created if missing"
    result = rule_matches.capture_span_matches(cur, rule, relation, dataset_id, rule_options(rule))
    counter.count(captured=result.captured, duplicates=result.duplicates)
    return result.captured


def _apply_trace_rule(
    cur: duckdb.DuckDBPyConnection, rule: Rule, relation: str, counter: RuleCounter, limiter: HourlyLimiter | None
) -> int:
    with rule_matches.trace_matches(cur, rule, relation) as (total, matched, sampled):
        counter.count(evaluated=total, matched=matched, sampled_out=matched - sampled)
        allowed = limiter.take(rule.name, rule.max_per_hour, sampled) if limiter else sampled
        counter.count(rate_limited=sampled - allowed)
        if not allowed:
            return 0
        if rule.score:
            _count_queued(counter, rule_matches.queue_trace_matches(cur, rule, relation, allowed))
        if rule.dataset is None:
            return 0
        dataset_id = get_or_create_dataset(cur, rule.dataset)
        result = rule_matches.capture_trace_matches(cur, rule, relation, allowed, dataset_id, rule_options(rule))
    counter.count(captured=result.captured, duplicates=result.duplicates)
    return result.captured


def _count_queued(counter: RuleCounter, queued_skipped: tuple[int, int]) -> None:
    queued, skipped = queued_skipped
    counter.count(queued=queued, already_scored=skipped)
