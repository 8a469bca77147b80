"""The capture stage's SQL: all active span rules as ONE statement and ONE scan of the spans.

Each row gets the list of rules it matches, which is unnested and sampled, and each sampled hit
gets its item values (input / expected output as JSON text). 50 rules cost one vectorized pass
over a few thousand in-memory rows (a UNION ALL of 50 filtered scans took 3x as long), never a
Python loop over spans. capture/stage.py decides what the hits become.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import duckdb
import pyarrow as pa

from spanlake.store.dataset_capture import CaptureOptions, values_by_key
from spanlake.store.filter_sql import ATTRIBUTE_FORMS, compile_filter
from spanlake.store.rule_sampling import sample_expr, sample_threshold
from spanlake.store.schema import SPAN_SCHEMA

BATCH = "_rule_batch"
ROW = "_row"  # the row number the hits statement joins its matches back to
BATCH_ROW = "_batch_row"  # numbers the rows of an Arrow batch, which has no rowid
# The hits statement's columns that make a Pick, in Pick's field order (rule_idx is its key).
HIT_COLUMNS = ("rule_idx", "trace_id", "span_id", "start_ns", "input", "expected_output")


class HitRule(Protocol):
    """What of a span rule (capture/rules.py) the statement reads."""

    name: str
    sample: float
    definition: dict[str, Any]  # `when` is recompiled with the shared extractions


def new_span_keys(cur: duckdb.DuckDBPyConnection, relation: str) -> set[tuple[str, str]]:
    """The (trace_id, span_id) of every span of the commit's relation."""
    return set(cur.execute(f"SELECT trace_id, span_id FROM {relation}").fetchall())


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
class HitsProgram:
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
    def compile(cls, rules: Sequence[HitRule], options: tuple[CaptureOptions, ...]) -> "HitsProgram":
        """`options[i]` holds the item fields of `rules[i]`."""
        shared = _SharedExtractions()
        # Recompiled from the definition (validated at load) with the shared extractions.
        predicates = [compile_filter(rule.definition["when"], attribute_source=shared) for rule in rules]
        matches = ", ".join(
            f"CASE WHEN {p.value_sql} THEN {index} END" for index, p in enumerate(predicates)
        )
        extractions, extraction_params = shared.select_list()
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
