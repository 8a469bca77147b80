"""Appending span batches: one slice of the ingest log, one transaction, bulk statements only.

Knows nothing about OTLP. Deduplicates on (trace_id, span_id) without a unique index (DuckLake
has none). Spans that may be stored already (all of them on a lake; on the embedded store only
those store/recent_keys.py cannot clear) are looked up in `spans`: a retried span carries the same
start_time as the stored copy, so the lookup only reads stored rows whose start_time falls inside
the suspects' time range, which DuckDB's zone maps (min/max per row group) narrow to a few row
groups because spans arrive time-ordered.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spanlake.clock import utc_now
from spanlake.store.recent_keys import RecentSpanKeys
from spanlake.store.span_keys import KeyHashes, key_hashes
from spanlake.store.schema import JSON_COLUMNS, SPAN_SCHEMA, TRACE_KEY_SQL

# Relation holding the spans this commit actually adds (after dedup), with their ingested_at.
# Stages that run inside the same transaction (capture rules) read it, so their output commits
# or rolls back with the spans.
NEW_SPANS = "_new_spans"
NEW_ROW = "_new_row"  # numbers NEW_SPANS' rows (a registered Arrow table has no rowid)
_SUSPECTS = "_suspect_spans"
_ARROW_NEW = "_arrow_new_spans"
_JSON = pa.json_(pa.utf8())


@dataclass(frozen=True)
class NewSpans:
    """What a commit stage's finisher gets: the spans this commit adds, and `relation`, the name
    of a relation holding them (the spans columns plus NEW_ROW)."""

    rows: int  # fewer than the batch when dedup dropped some
    # True when the writer's key memory proves that no span of the batch was stored before, nor
    # named as an item's source (store/recent_keys.py): nothing can refer to these spans yet.
    # False on a lake, whose other replicas append too.
    unseen: bool
    # Registers the relation on first use: most commits' stages never read it (span rules are
    # evaluated before the transaction), and registering holds the GIL for ~1 ms.
    _relation: Callable[[], str]

    @property
    def relation(self) -> str:
        return self._relation()


# Called inside the commit's transaction after the new spans are appended.
StageFinisher = Callable[[duckdb.DuckDBPyConnection, NewSpans], None]


class CommitStage(Protocol):
    """Work that commits with the spans (capture rules). `start` gets the group's batch before
    dedup, so it can begin work that needs no store (on another thread); its finisher runs in
    the transaction."""

    def start(self, batch: pa.Table) -> StageFinisher: ...


@dataclass(frozen=True)
class AppendResult:
    received: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.received - self.stored


def append_spans(
    cur: duckdb.DuckDBPyConnection,
    tables: Sequence[pa.Table],
    stages: Sequence[CommitStage] = (),
    recent: RecentSpanKeys | None = None,
) -> AppendResult:
    """Append the spans of several requests; the caller owns the transaction.

    `recent` is the single writer's memory of the keys it wrote (None: look every span up).
    """
    incoming = pa.concat_tables(tables) if len(tables) != 1 else tables[0]
    if incoming.num_rows == 0:
        return AppendResult(0, 0)
    incoming = incoming.select(SPAN_SCHEMA.names)
    finishers = [stage.start(incoming) for stage in stages]
    keys = key_hashes(incoming.column("trace_id"), incoming.column("span_id"))
    starts = pc.cast(incoming.column("start_time"), pa.int64()).to_numpy()
    if recent is None:
        suspects: Sequence[int] = range(incoming.num_rows)
        unseen = False
    else:
        suspects = recent.suspects(keys.hashes, starts, keys.valid)
        unseen = not suspects and not recent.may_be_item_sources(starts)
        recent.remember(keys.hashes, starts, keys.valid)  # before the commit: a rolled-back key is a harmless false hit
    stored = _stored_keys(cur, incoming, suspects, starts) if suspects else set()
    new = _drop_duplicates(incoming, keys, stored)
    if new.num_rows:
        _insert(cur, new, finishers, unseen)
    return AppendResult(incoming.num_rows, new.num_rows)


def _stored_keys(
    cur: duckdb.DuckDBPyConnection, incoming: pa.Table, suspects: Sequence[int], starts: np.ndarray
) -> set[tuple[str, str]]:
    """The suspects' (trace_id, span_id) keys that `spans` already holds."""
    every = len(suspects) == incoming.num_rows
    probe = incoming if every else incoming.take(pa.array(suspects, pa.int64()))
    # Epoch nanoseconds, not Python datetimes: those keep microseconds only, and a rounded-down
    # upper bound would let the retry of the batch's latest span escape dedup.
    suspect_starts = starts[np.asarray(suspects, dtype=np.int64)]
    lo, hi = int(suspect_starts.min()), int(suspect_starts.max())
    cur.register(_SUSPECTS, probe.select(["trace_id", "span_id"]))
    try:
        rows = cur.execute(
            f"""
            SELECT s.trace_id, s.span_id FROM spans AS s
            SEMI JOIN {_SUSPECTS} AS i ON s.trace_id = i.trace_id AND s.span_id = i.span_id
            WHERE s.start_time BETWEEN make_timestamp_ns(?) AND make_timestamp_ns(?)
            """,
            [lo, hi],
        ).fetchall()
    finally:
        cur.unregister(_SUSPECTS)
    return set(rows)


def _drop_duplicates(incoming: pa.Table, keys: KeyHashes, stored: set[tuple[str, str]]) -> pa.Table:
    """Keep the first copy of each key that is not stored yet.

    Distinct hashes prove distinct keys, so the usual slice (all new, no repeats) never builds
    its keys in Python; a stored key or a repeated hash takes the exact path."""
    if not stored and keys.all_valid and len(np.unique(keys.hashes)) == incoming.num_rows:
        return incoming
    seen = set(stored)
    keep = []
    for key in zip(incoming.column("trace_id").to_pylist(), incoming.column("span_id").to_pylist()):
        keep.append(key not in seen)
        seen.add(key)
    if all(keep):
        return incoming
    return incoming.filter(pa.array(keep, pa.bool_()))


def _insert(cur: duckdb.DuckDBPyConnection, new: pa.Table, finishers: Sequence[StageFinisher], unseen: bool) -> None:
    """Insert the new spans and their trace_index rows, then run the commit stages on them.

    DuckDB reads the Arrow batch directly (a temp-table copy first cost ~20% more per commit),
    and takes the JSON columns as `arrow.json`: both decoders write them with a JSON serializer,
    and a plain string column would be parsed again to check it (bench/decode_write.py).
    """
    ingested_at = pa.repeat(pa.scalar(utc_now(), pa.timestamp("us")), new.num_rows)
    rows = new.append_column("ingested_at", ingested_at)
    # DuckDB finds this local by its name (a replacement scan): no register/unregister calls,
    # each of which would wait for the GIL again beside the busy receiver threads.
    _arrow_new_spans = _json_typed(rows)  # noqa: F841 - read by the SQL below
    cur.execute(f"INSERT INTO spans SELECT * FROM {_ARROW_NEW}")
    cur.execute(
        f"""
        INSERT INTO trace_index
        SELECT {TRACE_KEY_SQL.format(col="trace_id")},
               trace_id,
               min(start_time),
               max(end_time),
               count(*),
               count(*) FILTER (WHERE status = 'ERROR'),
               coalesce(sum(total_tokens), 0),
               any_value(name) FILTER (WHERE parent_span_id IS NULL),
               any_value(span_id) FILTER (WHERE parent_span_id IS NULL),
               coalesce(any_value(service_name) FILTER (WHERE parent_span_id IS NULL),
                        any_value(service_name)),
               any_value(ingested_at)
        FROM {_ARROW_NEW}
        GROUP BY trace_id
        """
    )
    if not finishers:
        return
    registered = False

    def relation() -> str:
        nonlocal registered
        if not registered:
            cur.register(NEW_SPANS, rows.append_column(NEW_ROW, pa.array(range(rows.num_rows), pa.int64())))
            registered = True
        return NEW_SPANS

    try:
        for finish in finishers:
            finish(cur, NewSpans(new.num_rows, unseen, relation))
    finally:
        if registered:
            cur.unregister(NEW_SPANS)


def _json_typed(table: pa.Table) -> pa.Table:
    """The same buffers, with the JSON columns typed `arrow.json` (no copy)."""
    columns = [
        pa.chunked_array([pa.ExtensionArray.from_storage(_JSON, chunk) for chunk in column.chunks], type=_JSON)
        if name in JSON_COLUMNS
        else column
        for name, column in zip(table.column_names, table.columns)
    ]
    fields = [pa.field(f.name, _JSON) if f.name in JSON_COLUMNS else f for f in table.schema]
    return pa.Table.from_arrays(columns, schema=pa.schema(fields))
