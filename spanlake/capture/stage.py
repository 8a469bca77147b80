"""The capture commit stage: span-scope rules evaluated on each commit's spans, in its transaction.

All active rules run as ONE statement over the commit's new spans (a UNION ALL of the compiled
predicates), so 50 rules cost one vectorized scan of a few thousand in-memory rows, not 50
queries and never a Python loop over spans. Matching spans become dataset items through the
datasets store's bulk capture, inside the same transaction as the spans: an item never exists
without its span, and a rolled-back commit leaves neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import duckdb

from spanlake.capture.counters import RuleCounters
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import RuleSet, sample_sql
from spanlake.capture.sql import record_pending_traces, rule_targets, select_picks
from spanlake.store.dataset_capture import capture_many

log = logging.getLogger(__name__)

HITS = "_rule_hits"
PICKS = "_rule_picks"


class CaptureStage:
    """`stage(cur, relation)`: called by the span writer after it appended `relation`'s rows."""

    def __init__(
        self,
        current_rules: Callable[[], RuleSet],
        counters: RuleCounters,
        limiter: HourlyLimiter,
    ):
        self._current_rules = current_rules
        self._counters = counters
        self._limiter = limiter

    def __call__(self, cur: duckdb.DuckDBPyConnection, relation: str) -> None:
        ruleset = self._current_rules()
        if ruleset.active("trace"):
            record_pending_traces(cur, relation)
        rules = ruleset.active("span")
        if not rules:
            return
        total = cur.execute(f"SELECT count(*) FROM {relation}").fetchone()[0]
        selects, params = [], []
        for index, rule in enumerate(rules):
            sample, sample_params = sample_sql(rule, "s", "span_id")
            selects.append(
                f"SELECT {index} AS rule_idx, s.trace_id, s.span_id, ({sample}) AS sampled "
                f"FROM {relation} s WHERE coalesce(({rule.when.sql}), FALSE)"
            )
            params.extend(sample_params + list(rule.when.params))
        cur.execute(f"CREATE OR REPLACE TEMP TABLE {HITS} AS " + " UNION ALL ".join(selects), params)
        try:
            counts = {
                idx: (matched, sampled)
                for idx, matched, sampled in cur.execute(
                    f"SELECT rule_idx, count(*), count(*) FILTER (WHERE sampled) FROM {HITS} GROUP BY rule_idx"
                ).fetchall()
            }
            allowed: dict[int, int] = {}
            for index, rule in enumerate(rules):
                matched, sampled = counts.get(index, (0, 0))
                counter = self._counters.for_rule(rule.name)
                counter.evaluated += total
                counter.matched += matched
                counter.sampled_out += matched - sampled
                if not sampled:
                    continue
                allowed[index] = self._limiter.take(rule.name, rule.max_per_hour, sampled)
                counter.rate_limited += sampled - allowed[index]
            allowed = {index: n for index, n in allowed.items() if n}
            if allowed:
                # One capture for every rule: one dedup scan of dataset_items and one INSERT per
                # commit, instead of a handful of statements per matching rule.
                targets = rule_targets(cur, {index: rules[index] for index in allowed})
                select_picks(cur, HITS, PICKS, allowed)
                results = capture_many(cur, relation, PICKS, targets)
                for index, result in results.items():
                    counter = self._counters.for_rule(rules[index].name)
                    counter.captured += result.captured
                    counter.duplicates += result.duplicates
        finally:
            cur.execute(f"DROP TABLE IF EXISTS {HITS}")
            cur.execute(f"DROP TABLE IF EXISTS {PICKS}")

