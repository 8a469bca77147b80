"""The capture commit stage: span-scope rules evaluated on each commit's spans, in its transaction.

All active span rules run as ONE statement and ONE scan of the commit's spans: each row gets
the list of rules it matches, which is unnested and sampled. 50 rules cost one vectorized pass
over a few thousand in-memory rows (a UNION ALL of 50 filtered scans took 3x as long), never a
Python loop over spans. Matching spans become dataset items through the datasets store's bulk
capture, inside the same transaction as the spans: an item never exists without its span, and
a rolled-back commit leaves neither.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import duckdb
import pyarrow as pa

from spanlake.capture.counters import RuleCounters
from spanlake.capture.evaluate import RuleEvaluator
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import Rule, RuleSet, sample_expr, sample_threshold
from spanlake.capture.sql import record_pending_traces, rule_targets, select_picks
from spanlake.filters import ATTRIBUTE_FORMS, compile_filter
from spanlake.store.dataset_capture import capture_many
from spanlake.store.writer import StageFinisher

log = logging.getLogger(__name__)

HITS = "_rule_hits"
PICKS = "_rule_picks"
EARLY_HITS = "_rule_early_hits"
BATCH = "_rule_batch"


class CaptureStage:
    """A commit stage of the span writer (store/writer.py): `start(batch)` when a group arrives,
    then the returned finisher inside the transaction, after the new spans are appended.

    Rules that read no scores are evaluated in `start`, on the group's Arrow batch, by a private
    in-memory DuckDB on a thread of its own (capture/evaluate.py), while the writer thread
    deduplicates and inserts the spans: the two run on different cores. The finisher keeps the
    hits of spans that were really new and captures in the transaction.
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
        self._compiled: tuple[RuleSet, _Program] | None = None
        self._evaluator = RuleEvaluator()

    def _program(self, ruleset: RuleSet, rules: list[Rule]) -> "_Program":
        """The span rules compiled for the stage, once per rules file version."""
        if self._compiled is None or self._compiled[0] is not ruleset:
            self._compiled = (ruleset, _Program.compile(rules))
        return self._compiled[1]

    def start(self, batch: pa.Table) -> StageFinisher:
        ruleset = self._current_rules()  # one version for the whole commit, even across a reload
        rules = ruleset.active("span")
        program = self._program(ruleset, rules) if rules else None
        early = None
        if program is not None and not program.uses_scores:
            early = self._evaluator.submit(program.hits_sql(BATCH), program.hits_params, batch, BATCH)

        def finish(cur: duckdb.DuckDBPyConnection, relation: str, rows: int) -> None:
            if ruleset.active("trace"):
                record_pending_traces(cur, relation)
            if program is None:
                return
            if early is None:
                cur.execute(f"CREATE OR REPLACE TEMP TABLE {HITS} AS " + program.hits_sql(relation), program.hits_params)
            else:
                _keep_new_hits(cur, early.result(), relation, all_new=rows == batch.num_rows)
            try:
                self._capture(cur, relation, rows, rules)
            finally:
                cur.execute(f"DROP TABLE IF EXISTS {HITS}")
                cur.execute(f"DROP TABLE IF EXISTS {PICKS}")

        return finish

    def _capture(self, cur: duckdb.DuckDBPyConnection, relation: str, total: int, rules: list[Rule]) -> None:
        counts = {
            idx: (matched, sampled)
            for idx, matched, sampled in cur.execute(
                f"SELECT rule_idx, count(*), count(*) FILTER (WHERE sampled) FROM {HITS} GROUP BY rule_idx"
            ).fetchall()
        }
        allowed: dict[int, int] = {}
        limited = False
        for index, rule in enumerate(rules):
            matched, sampled = counts.get(index, (0, 0))
            counter = self._counters.for_rule(rule.name)
            counter.count(evaluated=total, matched=matched, sampled_out=matched - sampled)
            if not sampled:
                continue
            allowed[index] = self._limiter.take(rule.name, rule.max_per_hour, sampled)
            counter.count(rate_limited=sampled - allowed[index])
            limited = limited or allowed[index] < sampled
        allowed = {index: n for index, n in allowed.items() if n}
        if not allowed:
            return
        # One capture for every rule: one dedup scan of dataset_items and one INSERT per
        # commit, instead of a handful of statements per matching rule.
        targets = rule_targets(cur, {index: rules[index] for index in allowed})
        select_picks(cur, HITS, PICKS, allowed, limited)
        results = capture_many(cur, relation, PICKS, targets)
        for index, result in results.items():
            counter = self._counters.for_rule(rules[index].name)
            counter.count(captured=result.captured, duplicates=result.duplicates)


def _keep_new_hits(cur: duckdb.DuckDBPyConnection, hits: pa.Table, relation: str, *, all_new: bool) -> None:
    """Into temp HITS: the early hits, only for spans this commit really added (once each)."""
    cur.register(EARLY_HITS, hits)
    try:
        if all_new:
            cur.execute(f"CREATE OR REPLACE TEMP TABLE {HITS} AS SELECT * FROM {EARLY_HITS}")
        else:
            cur.execute(
                f"CREATE OR REPLACE TEMP TABLE {HITS} AS SELECT DISTINCT h.* FROM {EARLY_HITS} h "
                f"SEMI JOIN {relation} s ON s.trace_id = h.trace_id AND s.span_id = h.span_id"
            )
    finally:
        cur.unregister(EARLY_HITS)


class _SharedExtractions:
    """An AttributeSource naming each distinct (column, key, form) once. The hits statement
    computes them in an inner SELECT, so ten rules on one attribute parse its JSON once per row,
    not ten times (JSON extraction is ~95% of a rule's cost; simple comparisons are ~20 ns/row)."""

    def __init__(self) -> None:
        self.names: dict[tuple[str, str, str], str] = {}

    def __call__(self, col: str, ptr: str, form: str) -> tuple[str, list]:
        alias, _, _ = col.partition(".")
        name = self.names.setdefault((col, ptr, form), f"_x{len(self.names)}")
        return f"{alias}.{name}", []

    def select_list(self) -> tuple[str, list]:
        columns = [f", {ATTRIBUTE_FORMS[form].format(col=col)} AS {name}" for (col, _, form), name in self.names.items()]
        return "".join(columns), [ptr for (_, ptr, _) in self.names]


@dataclass(frozen=True)
class _Program:
    """The active span rules as one hits statement: (rule_idx, trace_id, span_id, sampled)."""

    matches: str
    extractions: str
    hits_params: list
    uses_scores: bool

    @classmethod
    def compile(cls, rules: list[Rule]) -> "_Program":
        shared = _SharedExtractions()
        # Recompiled from the definition (validated at load) with the shared extractions.
        predicates = [compile_filter(rule.definition["when"], attribute_source=shared) for rule in rules]
        matches = ", ".join(
            f"CASE WHEN {p.value_sql} THEN {index} END" for index, p in enumerate(predicates)
        )
        extractions, extraction_params = shared.select_list()
        params = extraction_params + [param for p in predicates for param in p.params]
        # A threshold of 2**32 keeps every span: the md5 prefix is below it whatever the key.
        params += [
            list(range(len(rules))),
            [r.name for r in rules],
            [sample_threshold(min(r.sample, 1.0)) for r in rules],
        ]
        return cls(matches, extractions, params, any(p.uses_scores for p in predicates))

    def hits_sql(self, relation: str) -> str:
        sampled = sample_expr("r.name", "r.threshold", "m.span_id")
        return f"""
            WITH x AS (SELECT s.*{self.extractions} FROM {relation} s),
            m AS (
                SELECT s.trace_id, s.span_id, unnest(list_filter([{self.matches}], i -> i IS NOT NULL)) AS rule_idx
                FROM x s
            ),
            r AS (SELECT unnest(?::BIGINT[]) AS rule_idx, unnest(?::VARCHAR[]) AS name, unnest(?::BIGINT[]) AS threshold)
            SELECT m.rule_idx, m.trace_id, m.span_id, {sampled} AS sampled
            FROM m JOIN r ON r.rule_idx = m.rule_idx
        """
