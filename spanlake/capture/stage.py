"""The capture commit stage: span-scope rules evaluated on each commit's spans, in its transaction.

All active span rules run as ONE statement and ONE scan of the commit's spans (the statement
is store/rule_hits.py). The hits become dataset items through the datasets store's bulk
capture, inside the same transaction as the spans: an item never exists without its span, and
a rolled-back commit leaves neither. Scoring rules' hits are only appended to the scoring queue here (one
INSERT); scorers run in the background.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.capture.counters import RuleCounters
from spanlake.capture.evaluate import RuleEvaluator
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import Rule, RuleSet
from spanlake.capture.targets import rule_options, rule_targets
from spanlake.store.dataset_capture import Pick, capture_picks
from spanlake.store.rule_hits import HIT_COLUMNS, HitsProgram, new_span_keys
from spanlake.store.rule_relations import record_pending_traces
from spanlake.store.rule_scores import enqueue
from spanlake.store.writer import NEW_ROW, NewSpans, StageFinisher

log = logging.getLogger(__name__)


class CaptureStage:
    """A commit stage of the span writer (store/writer.py): `start(batch)` when a group arrives,
    then the returned finisher inside the transaction, after the new spans are appended.

    Rules that read no scores are evaluated in `start`, on the group's Arrow batch, by a private
    in-memory DuckDB on a thread of its own (capture/evaluate.py), while the writer thread
    deduplicates and inserts the spans: the two run on different cores. The finisher keeps the
    hits of spans that were really new and captures them in the transaction; what is left for
    the serial writer is counting, budgets and the few statements that need the store.
    """

    def __init__(
        self,
        current_rules: Callable[[], RuleSet],
        counters: RuleCounters,
        limiter: HourlyLimiter,
    ):
        self._current_rules = current_rules
        self._counters = counters
        self._limiter = limiter
        self._compiled: tuple[RuleSet, HitsProgram] | None = None
        self._evaluator = RuleEvaluator()

    def _program(self, ruleset: RuleSet, rules: list[Rule]) -> HitsProgram:
        """The span rules compiled for the stage, once per rules file version."""
        if self._compiled is None or self._compiled[0] is not ruleset:
            self._compiled = (ruleset, HitsProgram.compile(rules, tuple(rule_options(rule) for rule in rules)))
        return self._compiled[1]

    def start(self, batch: pa.Table) -> StageFinisher:
        ruleset = self._current_rules()  # one version for the whole commit, even across a reload
        rules = ruleset.active("span")
        program = self._program(ruleset, rules) if rules else None
        early = None
        if program is not None and not program.uses_scores:
            early = self._evaluator.submit(partial(program.evaluate_batch, batch))

        def finish(cur: duckdb.DuckDBPyConnection, new: NewSpans) -> None:
            if ruleset.active("trace"):
                record_pending_traces(cur, new.relation)
            if program is None:
                return
            if early is None:
                hits = program.evaluate_table(cur, new.relation, NEW_ROW)
            else:
                hits = early.result()
                if new.rows != batch.num_rows:  # dedup dropped spans: keep the hits of new ones, once
                    hits = _hits_of_new_spans(cur, hits, new.relation)
            self._capture(cur, hits, new, rules, program)

        return finish

    def _capture(
        self, cur: duckdb.DuckDBPyConnection, hits: pa.Table, new: NewSpans, rules: list[Rule], program: HitsProgram
    ) -> None:
        sampled_hits = hits.filter(hits.column("sampled"))
        matched = _count_by_rule(hits)
        sampled = _count_by_rule(sampled_hits)
        allowed: dict[int, int] = {}
        limited: set[int] = set()
        for index, rule in enumerate(rules):
            n_matched, n_sampled = matched.get(index, 0), sampled.get(index, 0)
            counter = self._counters.for_rule(rule.name)
            counter.count(evaluated=new.rows, matched=n_matched, sampled_out=n_matched - n_sampled)
            if not n_sampled:
                continue
            allowed[index] = self._limiter.take(rule.name, rule.max_per_hour, n_sampled, rule.cost)
            counter.count(rate_limited=n_sampled - allowed[index])
            if allowed[index] < n_sampled:
                limited.add(index)
        allowed = {index: n for index, n in allowed.items() if n}
        limited &= allowed.keys()  # a rule with no budget left has no picks at all
        if not allowed:
            return
        picks = _picks(sampled_hits, allowed, limited)
        capturing = {index: rules[index] for index in allowed if rules[index].dataset is not None}
        if capturing:
            # One capture for every rule: one dedup query and one INSERT per commit, not a handful
            # of statements per matching rule.
            targets = {target.key: target for target in rule_targets(cur, capturing, program.options)}
            captures = [pick for pick in picks if pick.key in capturing]
            for index, result in capture_picks(cur, captures, targets, check_existing=not new.unseen).items():
                counter = self._counters.for_rule(rules[index].name)
                counter.count(captured=result.captured, duplicates=result.duplicates)
        if any(rules[index].score for index in allowed):
            self._queue_scoring(cur, picks, rules)

    def _queue_scoring(self, cur: duckdb.DuckDBPyConnection, picks: list[Pick], rules: list[Rule]) -> None:
        """Scoring rules' matches become queue rows in this transaction: the scoring itself runs
        in the background (scoring/rule_jobs.py), never here. The spans are new (dedup ran),
        so no "scored already?" read is needed."""
        rows = [
            (rules[pick.key].name, scorer, "span", pick.trace_id, pick.span_id)
            for pick in picks
            for scorer in rules[pick.key].score
        ]
        enqueue(cur, rows)
        queued: dict[str, int] = {}
        for row in rows:
            queued[row[0]] = queued.get(row[0], 0) + 1
        for name, n in queued.items():
            self._counters.for_rule(name).count(queued=n)


def _count_by_rule(hits: pa.Table) -> dict[int, int]:
    counts = pc.value_counts(hits.column("rule_idx"))
    return dict(zip(counts.field("values").to_pylist(), counts.field("counts").to_pylist()))


def _picks(sampled_hits: pa.Table, allowed: dict[int, int], limited: set[int]) -> list[Pick]:
    """The sampled hits each rule may capture: all of them, or for a rule over its hourly budget
    the first `allowed` by (trace_id, span_id), so every replica and retry cuts alike."""
    columns = [sampled_hits.column(name).to_pylist() for name in HIT_COLUMNS]
    picks = [Pick(*row) for row in zip(*columns) if row[0] in allowed]
    if not limited:
        return picks
    kept = [pick for pick in picks if pick.key not in limited]
    for index in limited:
        mine = sorted((pick for pick in picks if pick.key == index), key=lambda pick: (pick.trace_id, pick.span_id))
        kept.extend(mine[: allowed[index]])
    return kept


def _hits_of_new_spans(cur: duckdb.DuckDBPyConnection, hits: pa.Table, relation: str) -> pa.Table:
    """The early hits of spans this commit really added, once each (a group can carry copies)."""
    new = new_span_keys(cur, relation)
    seen: set[tuple[int, str, str]] = set()
    keep = []
    for hit in zip(*(hits.column(name).to_pylist() for name in ("rule_idx", "trace_id", "span_id"))):
        keep.append(hit[1:] in new and hit not in seen)
        seen.add(hit)
    return hits.filter(pa.array(keep, pa.bool_()))
