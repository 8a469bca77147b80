"""Capturing spans into a dataset in bulk: one INSERT ... SELECT from a relation of spans.

`capture_spans` is the core, shared by the capture API and the capture rules: the rules call it
inside the ingest transaction on the just-committed `_new_spans` relation (see store/writer.py),
the API on the stored spans it selected. Dedup is by (dataset, source trace id, source span id)
among current items, checked inside the caller's write transaction, so capturing a span twice
yields one item.

Why capture API selection is split from the insert: finding spans by filter can scan the whole
spans table; doing it on a read cursor (`find_*`) keeps that scan off the single writer thread,
whose transaction then only touches the few spans picked (`capture_span_keys`).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from spanlake.store.actor import current_actor
from spanlake.store.chat_functions import CHAT_FUNCTIONS
from spanlake.store.datasets import advance_clock, advance_clocks
from spanlake.store.filter_sql import CompiledFilter
from spanlake.store.ids import uuid7_batch
from spanlake.store.recent_keys import CLOCK_SKEW_TOLERANCE_US
from spanlake.store.schema import trace_key

# Span columns a captured value may come from, by how their value becomes JSON.
TEXT_COLUMNS = frozenset(
    {"input", "output", "name", "model", "status", "status_message", "kind", "service_name", "scope_name",
     "session_id", "user_id", "span_type", "trace_id", "span_id", "parent_span_id"}
)
NUMBER_COLUMNS = frozenset({"duration_ms", "input_tokens", "output_tokens", "total_tokens"})
JSON_COLUMNS = frozenset({"attributes", "resource_attributes", "scope_attributes", "events", "links"})

_ONE_US = dt.timedelta(microseconds=1)
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_MATCHES = "_capture_matches"
_SOURCE = "_capture_source"

Frag = tuple[str, list[Any]]


@dataclass(frozen=True)
class SpanField:
    """Where a captured value comes from: a span column, or one key inside a JSON column."""

    column: str
    key: str | None = None  # only for JSON_COLUMNS, e.g. ("attributes", "llm.prompt")

    def sql(self, alias: str = "s") -> Frag:
        """JSON-typed SQL for the value. Text that is JSON of an object or array (chat messages,
        tool arguments) is kept structured; any other text becomes a JSON string."""
        col = f"{alias}.{self.column}"
        if self.column in CHAT_FUNCTIONS:
            return _chat_or_text(alias, self.column)
        if self.column in TEXT_COLUMNS:
            return _text_to_json(col, [])
        if self.column in NUMBER_COLUMNS:
            return f"to_json({col})", []
        if self.column in JSON_COLUMNS:
            if self.key is None:
                return f"({col})::JSON", []
            ptr = "/" + self.key.replace("~", "~0").replace("/", "~1")  # JSON Pointer, RFC 6901
            text_sql, text_params = _text_to_json(f"json_extract_string({col}, ?)", [ptr])
            return (
                f"(CASE WHEN json_type({col}, ?) = 'VARCHAR' THEN {text_sql} ELSE json_extract({col}, ?) END)",
                [ptr, *text_params, ptr],
            )
        raise ValueError(f"span field {self.column!r} cannot be captured")


def _chat_or_text(alias: str, column: str) -> Frag:
    """`input` / `output` of an LLM span: its chat (messages, tools, tool choice / response
    message with tool calls and finish reason, spanlake/llm) when the span records one, else the
    column's text as below. Only LLM spans (a model, or span type llm) pay the Python call."""
    text_sql, text_params = _text_to_json(f"{alias}.{column}", [])
    chat = (
        f"(CASE WHEN {alias}.model IS NOT NULL OR {alias}.span_type = 'llm' "
        f"THEN {CHAT_FUNCTIONS[column]}({alias}.attributes, {alias}.events) END)"
    )
    return f"coalesce(TRY_CAST({chat} AS JSON), {text_sql})", text_params


def _text_to_json(expr: str, params: list[Any]) -> Frag:
    # Text starting with '{' or '[' (after JSON whitespace) that parses is kept as structure;
    # any other text, and such text that does not parse, becomes a JSON string. Same result as
    # json_valid + json_type, with one parse instead of three.
    sql = (
        f"(CASE WHEN {expr} IS NULL THEN NULL "
        f"WHEN left(ltrim({expr}, ' ' || chr(9) || chr(10) || chr(13)), 1) IN ('{{', '[') "
        f"THEN coalesce(TRY_CAST({expr} AS JSON), to_json({expr})) "
        f"ELSE to_json({expr}) END)"
    )
    return sql, params * 5


@dataclass(frozen=True)
class CaptureOptions:
    """What a captured item holds besides the source ids. `metadata` is JSON text of an object."""

    input_field: SpanField = SpanField("input")
    expected_output_field: SpanField | None = SpanField("output")
    topic: str | None = None
    tags: tuple[str, ...] = ()
    metadata: str = "{}"


@dataclass(frozen=True)
class CaptureResult:
    matched: int  # spans the selection found
    captured: int  # items created

    @property
    def duplicates(self) -> int:
        """Matched spans that already had a current item in the dataset."""
        return self.matched - self.captured


def capture_spans(
    cur: duckdb.DuckDBPyConnection,
    dataset_id: str,
    relation: str,
    *,
    where: str = "true",
    params: Sequence[Any] = (),
    options: CaptureOptions = CaptureOptions(),
) -> CaptureResult:
    """Create one item per span of `relation` (alias `s`) matching `where`, skipping spans already captured.

    `relation` is a table or view name with the spans columns and one row per span (the `spans`
    table and the writer's `_new_spans` both qualify). `where` is a boolean SQL expression over
    `s` with `?` placeholders bound to `params`, e.g. a `compile_filter(...)` result. Runs in the
    caller's transaction; items of one call share their change instant (one dataset version).
    """
    if not _IDENT.match(relation):
        raise ValueError(f"relation must be a plain table or view name, got {relation!r}")
    input_sql, input_params = options.input_field.sql()
    if options.expected_output_field is not None:
        expected_sql, expected_params = options.expected_output_field.sql()
    else:
        expected_sql, expected_params = "NULL::JSON", []
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE {_MATCHES} AS
        SELECT s.trace_id, s.span_id, s.start_time,
               {input_sql} AS input, {expected_sql} AS expected_output,
               EXISTS (
                   SELECT 1 FROM dataset_items d
                   WHERE d.dataset_id = ? AND d.valid_to IS NULL
                     AND d.source_span_id = s.span_id AND d.source_trace_id = s.trace_id
               ) AS dup
        FROM {relation} s
        WHERE {where}
        """,
        [*input_params, *expected_params, dataset_id, *params],
    )
    try:
        matched, new = cur.execute(f"SELECT count(*), count(*) FILTER (WHERE NOT dup) FROM {_MATCHES}").fetchone()
        if new:
            _insert_matches(cur, dataset_id, int(new), options)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_MATCHES}")
    return CaptureResult(int(matched), int(new))


def _insert_matches(cur: duckdb.DuckDBPyConnection, dataset_id: str, count: int, options: CaptureOptions) -> None:
    now = advance_clock(cur, dataset_id)
    # Python-made, time-ordered ids numbered in span start order, so items list in the order
    # their spans ran.
    ids = pa.table({"rn": pa.array(range(1, count + 1), pa.int64()), "id": uuid7_batch(count)})
    cur.register("_capture_ids", ids)
    try:
        cur.execute(
            f"""
            INSERT INTO dataset_items
            SELECT k.id, ?, m.input, m.expected_output, ?::JSON, ?, ?::VARCHAR[], m.trace_id, m.span_id,
                   ?, ?, NULL, 'added', ?
            FROM (
                SELECT *, row_number() OVER (ORDER BY start_time, trace_id, span_id) AS rn
                FROM {_MATCHES} WHERE NOT dup
            ) m
            JOIN _capture_ids k ON k.rn = m.rn
            """,
            [dataset_id, options.metadata, options.topic, list(options.tags), now, now, current_actor()],
        )
    finally:
        cur.unregister("_capture_ids")


# Selection for the capture API, on a read cursor. A key is (trace_id, span_id, start_time).

SpanKey = tuple[str, str, Any]


def find_spans_by_ids(cur: duckdb.DuckDBPyConnection, span_ids: Sequence[str]) -> list[SpanKey]:
    return cur.execute(
        "SELECT trace_id, span_id, start_time FROM spans WHERE span_id IN (SELECT unnest(?::VARCHAR[]))",
        [list(span_ids)],
    ).fetchall()


def find_trace_spans(
    cur: duckdb.DuckDBPyConnection, trace_ids: Sequence[str], match: CompiledFilter | None
) -> tuple[list[SpanKey], set[str]]:
    """Spans of these traces matching the filter (compiled over alias `s`), or their top-level
    spans when None.

    Top-level: no parent, or a parent the store does not hold. Returns (keys, known trace ids).
    """
    bounds = cur.execute(
        "SELECT trace_id, min(start_time), max(end_time) FROM trace_index "
        "WHERE trace_key IN (SELECT unnest(?::BIGINT[])) AND trace_id IN (SELECT unnest(?::VARCHAR[])) "
        "GROUP BY trace_id",
        [[trace_key(t) for t in trace_ids], list(trace_ids)],
    ).fetchall()
    known = {b[0] for b in bounds}
    if not known:
        return [], known
    # Python datetimes hold microseconds and the columns nanoseconds: widen by one microsecond.
    lo, hi = min(b[1] for b in bounds) - _ONE_US, max(b[2] for b in bounds) + _ONE_US
    if match is not None:
        where, params = match.sql, match.params
    else:
        where = (
            "(coalesce(s.parent_span_id, '') = '' OR NOT EXISTS (SELECT 1 FROM spans p "
            "WHERE p.start_time BETWEEN ? AND ? AND p.trace_id = s.trace_id AND p.span_id = s.parent_span_id))"
        )
        params = [lo, hi]
    keys = cur.execute(
        f"SELECT s.trace_id, s.span_id, s.start_time FROM spans s "
        f"WHERE s.start_time BETWEEN ? AND ? AND s.trace_id IN (SELECT unnest(?::VARCHAR[])) AND {where}",
        [lo, hi, sorted(known), *params],
    ).fetchall()
    return keys, known


def find_spans_by_filter(cur: duckdb.DuckDBPyConnection, match: CompiledFilter, limit: int) -> list[SpanKey]:
    """The `limit` most recent stored spans matching the filter (compiled over alias `s`)."""
    return cur.execute(
        f"SELECT s.trace_id, s.span_id, s.start_time FROM spans s WHERE {match.sql} "
        "ORDER BY s.start_time DESC, s.span_id LIMIT ?",
        [*match.params, limit],
    ).fetchall()


def capture_span_keys(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, keys: Sequence[SpanKey], options: CaptureOptions
) -> CaptureResult:
    """Capture the stored spans with these keys (from a `find_*`); the write half of the API path."""
    if not keys:
        return CaptureResult(0, 0)
    table = pa.table({"trace_id": [k[0] for k in keys], "span_id": [k[1] for k in keys]})
    lo, hi = min(k[2] for k in keys) - _ONE_US, max(k[2] for k in keys) + _ONE_US  # ns columns, µs datetimes
    cur.register("_capture_keys", table)
    try:
        # start_time bounds let zone maps skip row groups; the semi join picks the exact spans.
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE {_SOURCE} AS
            SELECT s.* FROM spans s
            SEMI JOIN (SELECT DISTINCT trace_id, span_id FROM _capture_keys) k
                ON k.trace_id = s.trace_id AND k.span_id = s.span_id
            WHERE s.start_time BETWEEN ? AND ?
            """,
            [lo, hi],
        )
    finally:
        cur.unregister("_capture_keys")
    try:
        return capture_spans(cur, dataset_id, _SOURCE, options=options)
    finally:
        cur.execute(f"DROP TABLE IF EXISTS {_SOURCE}")


@dataclass(frozen=True)
class CaptureTarget:
    """Where the picks of one caller-chosen `key` (e.g. a rule's index) go."""

    key: int
    dataset_id: str
    options: CaptureOptions = CaptureOptions()


def values_by_key(fields: Mapping[int, SpanField | None], key_sql: str, alias: str) -> Frag:
    """One JSON value per key, from each key's span field (None: no value), over span rows
    `alias` whose key is `key_sql`. A CASE over the distinct fields only: 50 rules that all
    capture `input` evaluate one expression, not a 50-way CASE."""
    keys_by_field: dict[tuple[str, tuple[Any, ...]], list[int]] = {}
    for key, field in fields.items():
        sql, params = field.sql(alias) if field is not None else ("NULL::JSON", [])
        keys_by_field.setdefault((sql, tuple(params)), []).append(key)
    if len(keys_by_field) == 1:
        (sql, params), = keys_by_field
        return sql, list(params)
    branches, all_params = [], []
    for (sql, params), keys in keys_by_field.items():
        branches.append(f"WHEN list_contains(?::BIGINT[], {key_sql}) THEN {sql}")
        all_params.extend([keys, *params])
    return f"(CASE {' '.join(branches)} END)", all_params


class Pick(NamedTuple):
    """A span a target picked, with the item values already computed from it (JSON text)."""

    key: int
    trace_id: str
    span_id: str
    start_ns: int
    input: str | None
    expected_output: str | None


def capture_picks(
    cur: duckdb.DuckDBPyConnection,
    picks: Sequence[Pick],
    targets: Mapping[int, CaptureTarget],
    *,
    check_existing: bool = True,
) -> dict[int, CaptureResult]:
    """The bulk form of `capture_spans` for many targets at once (capture rules on each commit).

    When two targets share a dataset, the lower key wins the span; a span already captured into
    that dataset is skipped; each dataset gets one change instant; item ids follow the dataset,
    then span start. Returns matched/captured per key.

    The picks arrive evaluated (capture/evaluate.py computes them beside the writer), so the
    transaction runs only what needs the store: one dedup query, the clocks, one INSERT. Each
    statement costs the serial writer ~0.5-3 ms whatever its size; winners and order are a few
    hundred tuples in Python. `check_existing=False` skips the dedup query, for spans nothing can
    refer to yet (NewSpans.unseen): it reads every item of the last hour, 4.3 ms a commit at 30k
    of them and 26.9 ms at 300k (bench/capture_dedup.py --items 30000,300000 --days 0.04).
    """
    matched = Counter(pick.key for pick in picks)
    winners: dict[tuple[str, str, str], Pick] = {}
    for pick in picks:
        slot = (targets[pick.key].dataset_id, pick.trace_id, pick.span_id)
        best = winners.get(slot)
        if best is None or pick.key < best.key:
            winners[slot] = pick
    stored = _captured_already(cur, winners) if check_existing else set()
    new = sorted(
        (slot for slot in winners if slot not in stored),
        key=lambda slot: (slot[0], winners[slot].start_ns, slot[1], slot[2]),
    )
    if new:
        _insert_picks(cur, [winners[slot] for slot in new], [slot[0] for slot in new], targets)
    captured = Counter(winners[slot].key for slot in new)
    return {key: CaptureResult(n, captured.get(key, 0)) for key, n in matched.items()}


def recent_item_sources_sql(earliest_start_us: int) -> Frag:
    """(dataset_id, source_trace_id, source_span_id) of the current items that can come from
    spans started at or after `earliest_start_us`, as a subquery.

    An item is made after its span started: captured from the store, or imported after the span
    ran elsewhere. So its created_at is at least the span's start_time, give or take how far the
    client's clock runs ahead (CLOCK_SKEW_TOLERANCE_US). Items are appended in created_at order,
    so zone maps skip every older row group: the check reads the last hour's items, not all of
    them (137 ms a commit at 3M items before, bench/capture_dedup.py).
    """
    sql = (
        "(SELECT dataset_id, source_trace_id, source_span_id FROM dataset_items "
        "WHERE valid_to IS NULL AND source_span_id IS NOT NULL AND created_at >= make_timestamp(?))"
    )
    return sql, [earliest_start_us - CLOCK_SKEW_TOLERANCE_US]


def _captured_already(cur: duckdb.DuckDBPyConnection, slots: Mapping[tuple[str, str, str], Pick]) -> set:
    """The (dataset_id, trace_id, span_id) slots that already hold a current item."""
    if not slots:
        return set()
    sources, params = recent_item_sources_sql(min(pick.start_ns for pick in slots.values()) // 1000)
    rows = cur.execute(
        f"SELECT d.dataset_id, d.source_trace_id, d.source_span_id FROM {sources} d "
        "WHERE d.source_span_id IN (SELECT unnest(?::VARCHAR[])) AND d.dataset_id IN (SELECT unnest(?::VARCHAR[]))",
        [*params, list({slot[2] for slot in slots}), list({slot[0] for slot in slots})],
    ).fetchall()
    return set(rows) & slots.keys()


_PICKED = "_capture_picked"


def _insert_picks(
    cur: duckdb.DuckDBPyConnection, picks: list[Pick], dataset_ids: list[str], targets: Mapping[int, CaptureTarget]
) -> None:
    """Insert one item per pick, in the given order (ids are handed out in it)."""
    instants = advance_clocks(cur, dataset_ids)  # one instant per dataset, however many items
    options = [targets[pick.key].options for pick in picks]
    table = pa.table({
        "id": pa.array(uuid7_batch(len(picks)), pa.string()),
        "dataset_id": pa.array(dataset_ids, pa.string()),
        "input": pa.array([pick.input for pick in picks], pa.string()),
        "expected_output": pa.array([pick.expected_output for pick in picks], pa.string()),
        "metadata": pa.array([o.metadata for o in options], pa.string()),
        "topic": pa.array([o.topic for o in options], pa.string()),
        "tags": pa.array([list(o.tags) for o in options], pa.list_(pa.string())),
        "trace_id": pa.array([pick.trace_id for pick in picks], pa.string()),
        "span_id": pa.array([pick.span_id for pick in picks], pa.string()),
        "changed_at": pa.array([instants[d] for d in dataset_ids], pa.timestamp("us")),
    })
    # DuckDB finds this local by its name (a replacement scan): no register/unregister calls on
    # the writer thread, each of which waits for the GIL again.
    _capture_picked = table  # noqa: F841 - read by the SQL below
    cur.execute(
        f"""
        INSERT INTO dataset_items
        SELECT id, dataset_id, input::JSON, expected_output::JSON, metadata::JSON, topic, tags,
               trace_id, span_id, changed_at, changed_at, NULL, 'added', NULL  -- rules: no key wrote these
        FROM {_PICKED}
        """
    )
