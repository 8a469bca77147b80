"""The capture commit stage: span-scope rules evaluated on each commit's spans, in its transaction.

All active span rules run as ONE statement and ONE scan of the commit's spans: each row gets
the list of rules it matches, which is unnested and sampled, and each sampled hit gets its item
values (input / expected output as JSON text). 50 rules cost one vectorized pass over a few
thousand in-memory rows (a UNION ALL of 50 filtered scans took 3x as long), never a Python loop
over spans. The hits become dataset items through the datasets store's bulk capture, inside
the same transaction as the spans: an item never exists without its span, and a rolled-back
commit leaves neither. Scoring rules' hits are only appended to the scoring queue here (one
INSERT); scorers run in the background.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.capture.counters import RuleCounters
from spanlake.capture.evaluate import RuleEvaluator
from spanlake.capture.rates import HourlyLimiter
from spanlake.capture.rules import Rule, RuleSet, sample_expr, sample_threshold
from spanlake.capture.sql import record_pending_traces, rule_options, rule_targets
from spanlake.filters import ATTRIBUTE_FORMS, compile_filter
from spanlake.store.dataset_capture import CaptureOptions, Pick, capture_picks, values_by_key
from spanlake.store.rule_scores import enqueue
from spanlake.store.schema import SPAN_SCHEMA
from spanlake.store.writer import NEW_ROW, NewSpans, StageFinisher

log = logging.getLogger(__name__)

BATCH = "_rule_batch"
ROW = "_row"  # the row number the hits statement joins its matches back to
BATCH_ROW = "_batch_row"  # numbers the rows of an Arrow batch, which has no rowid
# The hits statement's columns that make a Pick, in Pick's field order (rule_idx is its key).
HIT_COLUMNS = ("rule_idx", "trace_id", "span_id", "start_ns", "input", "expected_output")


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
        self, cur: duckdb.DuckDBPyConnection, hits: pa.Table, new: NewSpans, rules: list[Rule], program: "_Program"
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
    new = set(cur.execute(f"SELECT trace_id, span_id FROM {relation}").fetchall())
    seen: set[tuple[int, str, str]] = set()
    keep = []
    for hit in zip(*(hits.column(name).to_pylist() for name in ("rule_idx", "trace_id", "span_id"))):
        keep.append(hit[1:] in new and hit not in seen)
        seen.add(hit)
    return hits.filter(pa.array(keep, pa.bool_()))


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
    """The active span rules as one hits statement: one row per (rule, span) match, with
    HIT_COLUMNS plus `sampled`; the item values are computed for sampled hits only."""

    matches: str
    extractions: str
    values: str
    params: list
    columns: tuple[str, ...]  # the span columns the statement reads
    options: tuple[CaptureOptions, ...]  # each rule's item fields, topic, tags, metadata
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
        options = tuple(rule_options(rule) for rule in rules)
        input_sql, input_params = values_by_key(dict(enumerate(o.input_field for o in options)), "h.rule_idx", "h")
        expected_sql, expected_params = values_by_key(
            dict(enumerate(o.expected_output_field for o in options)), "h.rule_idx", "h"
        )
        values = (
            f"CASE WHEN h.sampled THEN ({input_sql})::VARCHAR END AS input, "
            f"CASE WHEN h.sampled THEN ({expected_sql})::VARCHAR END AS expected_output"
        )
        params = extraction_params + [param for p in predicates for param in p.params]
        # A threshold of 2**32 keeps every span: the md5 prefix is below it whatever the key.
        params += [
            list(range(len(rules))),
            [r.name for r in rules],
            [sample_threshold(min(r.sample, 1.0)) for r in rules],
        ]
        params += input_params + expected_params
        # Compiled SQL names every column as <alias>.<column>. Registering only these columns of
        # the batch saves ~0.15 ms of Arrow scan set-up per column left out; with the join-back
        # in hits_sql, an 800-span batch took 22 ms instead of 42 (in-process timing).
        named = set(re.findall(r"\b[a-z]\.(\w+)", matches + extractions + values))
        columns = tuple(c for c in SPAN_SCHEMA.names if c in named or c in ("trace_id", "span_id", "start_time"))
        return cls(matches, extractions, values, params, columns, options, any(p.uses_scores for p in predicates))

    def evaluate_batch(self, batch: pa.Table, conn: duckdb.DuckDBPyConnection) -> pa.Table:
        """The hits of an Arrow batch, on a connection of its own (the evaluator's)."""
        table = batch.select(self.columns).combine_chunks()
        table = table.append_column(BATCH_ROW, pa.array(range(table.num_rows), pa.int64()))
        conn.register(BATCH, table)
        try:
            return conn.execute(self.hits_sql(BATCH, BATCH_ROW), self.params).to_arrow_table()
        finally:
            conn.unregister(BATCH)

    def evaluate_table(self, cur: duckdb.DuckDBPyConnection, relation: str, row: str) -> pa.Table:
        """The hits of a relation of spans, in the caller's transaction (rules that read scores);
        `row` numbers its rows."""
        return cur.execute(self.hits_sql(relation, row), self.params).to_arrow_table()

    def hits_sql(self, relation: str, row: str) -> str:
        """Matches are found on narrow rows (rule, row number), sampled, then joined back to
        their spans for the values; unnesting the wide rows cost twice as much. `x` is
        MATERIALIZED so the JSON extractions run once, not once per reference."""
        sampled = sample_expr("r.name", "r.threshold", "x.span_id")
        return f"""
            WITH x AS MATERIALIZED (SELECT s.*, s.{row} AS {ROW}{self.extractions} FROM {relation} s),
            m AS (
                SELECT s.{ROW}, unnest(list_filter([{self.matches}], i -> i IS NOT NULL)) AS rule_idx
                FROM x s
            ),
            r AS (SELECT unnest(?::BIGINT[]) AS rule_idx, unnest(?::VARCHAR[]) AS name, unnest(?::BIGINT[]) AS threshold),
            h AS (
                SELECT m.rule_idx, x.*, {sampled} AS sampled
                FROM m JOIN r ON r.rule_idx = m.rule_idx JOIN x ON x.{ROW} = m.{ROW}
            )
            SELECT h.rule_idx, h.trace_id, h.span_id, epoch_ns(h.start_time) AS start_ns, {self.values}, h.sampled
            FROM h
        """
