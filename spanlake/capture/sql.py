"""The capture package's store calls: datasets for rules, bulk capture of matches, pending traces.

Item creation itself is the datasets store's bulk capture (`capture_picks`); this module finds
the rules' datasets and options.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence

import duckdb

from spanlake.capture.rules import Rule
from spanlake.datasets.capture import parse_span_field
from spanlake.store.dataset_capture import CaptureOptions, CaptureTarget
from spanlake.store.datasets import get_or_create_dataset


def dataset_for_rule(cur: duckdb.DuckDBPyConnection, name: str) -> str:
    """The id of the rule's dataset, created on first capture ("created if missing")."""
    return get_or_create_dataset(cur, name)


def rule_options(rule: Rule) -> CaptureOptions:
    if rule.dataset is None:  # a scoring-only rule makes no items: no values to compute
        return CaptureOptions(input_field=None, expected_output_field=None)  # type: ignore[arg-type]
    return CaptureOptions(
        input_field=parse_span_field(rule.input, "input"),
        expected_output_field=parse_span_field(rule.expected_output, "expected_output") if rule.expected_output else None,
        topic=rule.topic,
        tags=rule.tags,
        metadata=json.dumps({"rule": rule.name}),
    )


def rule_targets(
    cur: duckdb.DuckDBPyConnection, rules: Mapping[int, Rule], options: Sequence[CaptureOptions]
) -> list[CaptureTarget]:
    """Capture targets for rules by index (with their options, by the same index); their datasets
    found in one query, missing ones created."""
    names = sorted({rule.dataset for rule in rules.values()})
    found = dict(cur.execute(
        "SELECT name, any_value(id) FROM datasets WHERE deleted_at IS NULL AND list_contains(?::VARCHAR[], name) "
        "GROUP BY name",
        [names],
    ).fetchall())
    for name in names:
        if name not in found:
            found[name] = get_or_create_dataset(cur, name)
    return [CaptureTarget(index, found[rule.dataset], options[index]) for index, rule in rules.items()]


def record_pending_traces(cur: duckdb.DuckDBPyConnection, relation: str) -> None:
    """Note every trace of this commit for trace-scope rules, in the commit's transaction."""
    cur.execute(
        f"INSERT INTO capture_pending SELECT trace_id, max(ingested_at) FROM {relation} GROUP BY trace_id"
    )


def take_quiet_traces(cur: duckdb.DuckDBPyConnection, quiet_before, limit: int, table: str) -> int:
    """Materialize up to `limit` traces quiet since `quiet_before` into temp `table`, with their time range."""
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        WITH quiet AS (
            SELECT trace_id FROM capture_pending GROUP BY trace_id
            HAVING max(last_seen) < ? ORDER BY max(last_seen) LIMIT ?
        )
        SELECT q.trace_id, min(ti.start_time) AS lo, max(ti.end_time) AS hi
        FROM quiet q JOIN trace_index ti ON ti.trace_id = q.trace_id
        GROUP BY q.trace_id
        """,
        [quiet_before, limit],
    )
    return cur.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


def load_trace_spans(cur: duckdb.DuckDBPyConnection, traces: str, table: str) -> None:
    """All stored spans of the traces in `traces` into temp `table` (zone maps via the time range)."""
    lo, hi = cur.execute(f"SELECT epoch_ns(min(lo)), epoch_ns(max(hi)) FROM {traces}").fetchone()
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {table} AS
        SELECT s.* FROM spans s
        WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
          AND s.trace_id IN (SELECT trace_id FROM {traces})
        """,
        [lo, hi],
    )


def forget_pending(cur: duckdb.DuckDBPyConnection, traces: str) -> None:
    cur.execute(f"DELETE FROM capture_pending WHERE trace_id IN (SELECT trace_id FROM {traces})")
