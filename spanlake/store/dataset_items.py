"""SQL for dataset items, versioned by time.

Each row is one version of an item: it is visible from `valid_from` until `valid_to` (NULL while
current). A change never rewrites a version: it closes the current row at the change instant and,
for an update, inserts the next version of the same item id opening at that same instant. So
`as_of=T` is simply `valid_from <= T < valid_to`, and a deletion is a closed row with no successor.
`change` records why a version opened: 'added' or 'updated'.

JSON values (input, expected_output, metadata) travel as JSON text in and out of these functions.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pyarrow as pa

from spanlake.store.actor import current_actor
from spanlake.store.recent_keys import note_item_sources

ITEM_SELECT = """
    i.id, i.dataset_id, i.input::VARCHAR, i.expected_output::VARCHAR, i.metadata::VARCHAR, i.topic,
    i.tags, i.source_trace_id, i.source_span_id, i.created_at, i.valid_from, i.valid_to, i.created_by
"""
_ITEM_KEYS = (
    "id", "dataset_id", "input", "expected_output", "metadata", "topic", "tags",
    "source_trace_id", "source_span_id", "created_at", "valid_from", "valid_to", "created_by",
)
_JSON_KEYS = ("input", "expected_output", "metadata")


@dataclass(frozen=True)
class NewItem:
    """One item to insert; input / expected_output / metadata are JSON text."""

    id: str
    input: str | None
    expected_output: str | None = None
    metadata: str = "{}"
    topic: str | None = None
    tags: tuple[str, ...] = ()
    source_trace_id: str | None = None
    source_span_id: str | None = None


@dataclass(frozen=True)
class ItemQuery:
    """A page of items: which version (`as_of`), which items, in which order, after which key."""

    as_of: dt.datetime | None = None
    topic: str | None = None  # "" selects items without a topic
    tags: tuple[str, ...] = ()  # every tag must be present
    source_trace_id: str | None = None
    source_span_id: str | None = None
    search: str | None = None  # case-insensitive, in the JSON text of input, expected_output or metadata
    metadata: tuple[tuple[str, tuple[str, ...]], ...] = ()  # (key, values): the key's value is one of them
    sort: str = "created_at"  # created_at (alias timestamp) | topic | score (one name) | evaluation (all names)
    score_name: str | None = None
    descending: bool = False
    after: Sequence[Any] | None = None
    limit: int = 50


def item_from_row(row: Sequence[Any]) -> dict[str, Any]:
    item = dict(zip(_ITEM_KEYS, row))
    for key in _JSON_KEYS:
        if item[key] is not None:
            item[key] = json.loads(item[key])
    item["tags"] = list(item["tags"] or [])
    if item["metadata"] is None:
        item["metadata"] = {}
    return item


def visible(as_of: dt.datetime | None, alias: str = "i") -> tuple[str, list[Any]]:
    """The versions in force at `as_of` (the current ones when None)."""
    if as_of is None:
        return f"{alias}.valid_to IS NULL", []
    return f"{alias}.valid_from <= ? AND ({alias}.valid_to IS NULL OR {alias}.valid_to > ?)", [as_of, as_of]


def insert_items(cur: duckdb.DuckDBPyConnection, dataset_id: str, items: Sequence[NewItem], now: dt.datetime) -> None:
    """Insert new items in one statement from an Arrow table (never one INSERT per item)."""
    if not items:
        return
    if any(i.source_span_id for i in items):
        note_item_sources()  # ingest's capture rules must now check these spans' items
    table = pa.table(
        {
            "id": [i.id for i in items],
            "input": [i.input for i in items],
            "expected_output": [i.expected_output for i in items],
            "metadata": [i.metadata for i in items],
            "topic": [i.topic for i in items],
            "tags": pa.array([list(i.tags) for i in items], type=pa.list_(pa.string())),
            "source_trace_id": [i.source_trace_id for i in items],
            "source_span_id": [i.source_span_id for i in items],
        },
        schema=pa.schema(
            [
                ("id", pa.string()), ("input", pa.string()), ("expected_output", pa.string()),
                ("metadata", pa.string()), ("topic", pa.string()), ("tags", pa.list_(pa.string())),
                ("source_trace_id", pa.string()), ("source_span_id", pa.string()),
            ]
        ),
    )
    cur.register("_new_items", table)
    try:
        cur.execute(
            """
            INSERT INTO dataset_items
            SELECT n.id, ?, n.input::JSON, n.expected_output::JSON, n.metadata::JSON, n.topic, n.tags,
                   n.source_trace_id, n.source_span_id, ?, ?, NULL, 'added', ?
            FROM _new_items n
            """,
            [dataset_id, now, now, current_actor()],
        )
    finally:
        cur.unregister("_new_items")


def current_source_spans(cur: duckdb.DuckDBPyConnection, dataset_id: str, span_ids: Sequence[str]) -> set[str]:
    """Which of these source span ids already have a current item in the dataset."""
    if not span_ids:
        return set()
    rows = cur.execute(
        "SELECT DISTINCT source_span_id FROM dataset_items WHERE dataset_id = ? AND valid_to IS NULL "
        "AND source_span_id IN (SELECT unnest(?::VARCHAR[]))",
        [dataset_id, list(span_ids)],
    ).fetchall()
    return {r[0] for r in rows}


def get_item(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, item_id: str, as_of: dt.datetime | None = None
) -> dict[str, Any] | None:
    cond, params = visible(as_of)
    row = cur.execute(
        f"SELECT {ITEM_SELECT} FROM dataset_items i WHERE i.dataset_id = ? AND i.id = ? AND {cond}",
        [dataset_id, item_id, *params],
    ).fetchone()
    return item_from_row(row) if row else None


# Item id -> mean of its numeric scores, for one dataset (the ? is its id): its own (`item_id`)
# and those on its source that name no item (captured items scored on their trace). Item rows
# are versions: DISTINCT keeps one source per item, so no score counts twice.
EVALUATION_SQL = """
    SELECT item_id, avg(value) AS mean FROM (
        SELECT item_id, value FROM scores WHERE item_id IS NOT NULL AND value IS NOT NULL
        UNION ALL
        SELECT d.id AS item_id, s.value FROM scores s
        JOIN (SELECT DISTINCT id, source_trace_id, source_span_id FROM dataset_items
              WHERE dataset_id = ? AND source_trace_id IS NOT NULL) d
          ON s.trace_id = d.source_trace_id AND s.span_id IS NOT DISTINCT FROM d.source_span_id
        WHERE s.item_id IS NULL AND s.value IS NOT NULL
    ) GROUP BY item_id
"""


def _sort_keys(q: ItemQuery) -> list[tuple[str, bool]]:
    """(expression, descending) pairs; every expression is non-NULL so keyset paging is exact."""
    created = [("epoch_us(i.created_at)", q.descending), ("i.id", q.descending)]
    if q.sort == "topic":  # items without a topic come last in either direction
        return [("(coalesce(i.topic, '') = '')", False), ("coalesce(i.topic, '')", q.descending), *created]
    if q.sort in ("score", "evaluation"):  # unscored items come last in either direction
        return [("(sc.mean IS NULL)", False), ("coalesce(sc.mean, 0)", q.descending),
                ("epoch_us(i.created_at)", False), ("i.id", False)]
    return created


def keyset_after(keys: Sequence[tuple[str, bool]], values: Sequence[Any]) -> tuple[str, list[Any]]:
    """Rows strictly after `values` in the order of `keys`: (k1 > v1) OR (k1 = v1 AND k2 > v2) ..."""
    ors: list[str] = []
    params: list[Any] = []
    for n, (expr, desc) in enumerate(keys):
        parts = [f"{e} = ?" for e, _ in keys[:n]] + [f"{expr} {'<' if desc else '>'} ?"]
        ors.append("(" + " AND ".join(parts) + ")")
        params.extend(values[: n + 1])
    return "(" + " OR ".join(ors) + ")", params


def list_items(cur: duckdb.DuckDBPyConnection, dataset_id: str, q: ItemQuery) -> list[dict[str, Any]]:
    """One page of items; each carries `_key` (its sort key, for the next cursor) and `score` when sorted by one.

    An item's evaluation is the mean of its numeric scores: those given to the item itself
    (`item_id`) and those on its source span (its source trace when it has no span) that name no
    item; `sort="evaluation"` orders by it over every score name.
    """
    keys = _sort_keys(q)
    cond, params = visible(q.as_of)
    where = ["i.dataset_id = ?", cond]
    params = [dataset_id, *params]
    join, join_params = "", []
    if q.sort == "score":
        join = (
            "LEFT JOIN (SELECT trace_id, span_id, avg(value) AS mean FROM scores "
            "WHERE name = ? AND value IS NOT NULL GROUP BY trace_id, span_id) sc "
            "ON sc.trace_id = i.source_trace_id AND sc.span_id IS NOT DISTINCT FROM i.source_span_id"
        )
        join_params = [q.score_name]
    elif q.sort == "evaluation":
        join = f"LEFT JOIN ({EVALUATION_SQL}) sc ON sc.item_id = i.id"
        join_params = [dataset_id]
    if q.topic is not None:
        where.append("coalesce(i.topic, '') = ?")
        params.append(q.topic)
    for tag in q.tags:
        where.append("list_contains(i.tags, ?)")
        params.append(tag)
    if q.source_trace_id is not None:
        where.append("i.source_trace_id = ?")
        params.append(q.source_trace_id)
    if q.source_span_id is not None:
        where.append("i.source_span_id = ?")
        params.append(q.source_span_id)
    if q.search:
        where.append(
            "(contains(lower(i.input::VARCHAR), ?) OR contains(lower(coalesce(i.expected_output::VARCHAR, '')), ?) "
            "OR contains(lower(coalesce(i.metadata::VARCHAR, '')), ?))"
        )
        params.extend([q.search.lower()] * 3)
    for key, values in q.metadata:
        # The value as text: a string as itself, other JSON as its text (`1`, `true`).
        ptr = "/" + key.replace("~", "~0").replace("/", "~1")  # JSON Pointer, RFC 6901
        where.append("json_extract_string(i.metadata, ?) IN (SELECT unnest(?::VARCHAR[]))")
        params.extend([ptr, list(values)])
    if q.after is not None:
        sql, after_params = keyset_after(keys, q.after)
        where.append(sql)
        params.extend(after_params)
    key_select = ", ".join(expr for expr, _ in keys)
    order = ", ".join(f"{expr} {'DESC' if desc else 'ASC'}" for expr, desc in keys)
    score_select = ", sc.mean" if join else ", NULL"
    rows = cur.execute(
        f"SELECT {ITEM_SELECT}{score_select}, {key_select} FROM dataset_items i {join} "
        f"WHERE {' AND '.join(where)} ORDER BY {order} LIMIT ?",
        [*join_params, *params, q.limit],
    ).fetchall()
    width = len(_ITEM_KEYS)
    out = []
    for row in rows:
        item = item_from_row(row[:width])
        if join:
            item["score"] = row[width]
        item["_key"] = list(row[width + 1 :])
        out.append(item)
    return out


def evaluations(cur: duckdb.DuckDBPyConnection, items: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Item id -> evaluation (the mean of `list_items`) for one page of items."""
    if not items:
        return {}
    ids = [i["id"] for i in items]
    sources = {(i["source_trace_id"], i["source_span_id"]) for i in items if i["source_trace_id"]}
    totals: dict[str, list[float]] = {}
    for item_id, total, n in cur.execute(
        "SELECT item_id, sum(value), count(*) FROM scores WHERE value IS NOT NULL "
        "AND item_id IN (SELECT unnest(?::VARCHAR[])) GROUP BY item_id",
        [ids],
    ).fetchall():
        totals[item_id] = [float(total), int(n)]
    if sources:
        rows = cur.execute(
            "SELECT trace_id, span_id, sum(value), count(*) FROM scores WHERE value IS NOT NULL AND item_id IS NULL "
            "AND list_contains(?::VARCHAR[], trace_id) GROUP BY trace_id, span_id",
            [sorted({t for t, _ in sources})],
        ).fetchall()
        by_source = {(r[0], r[1]): (float(r[2]), int(r[3])) for r in rows}
        for i in items:
            found = by_source.get((i["source_trace_id"], i["source_span_id"]))
            if found is not None:
                acc = totals.setdefault(i["id"], [0.0, 0])
                acc[0] += found[0]
                acc[1] += found[1]
    return {item_id: total / n for item_id, (total, n) in totals.items() if n}


def close_items(cur: duckdb.DuckDBPyConnection, dataset_id: str, ids: Sequence[str], now: dt.datetime) -> list[str]:
    """Close the current version of these items at `now`; returns the ids that had one.

    Select, then update (in the caller's transaction): DuckLake has no UPDATE ... RETURNING.
    """
    if not ids:
        return []
    found = [
        r[0]
        for r in cur.execute(
            "SELECT id FROM dataset_items WHERE dataset_id = ? AND valid_to IS NULL "
            "AND id IN (SELECT unnest(?::VARCHAR[]))",
            [dataset_id, list(ids)],
        ).fetchall()
    ]
    if found:
        cur.execute(
            "UPDATE dataset_items SET valid_to = ? WHERE dataset_id = ? AND valid_to IS NULL "
            "AND id IN (SELECT unnest(?::VARCHAR[]))",
            [now, dataset_id, found],
        )
    return found


def close_all_items(cur: duckdb.DuckDBPyConnection, dataset_id: str, now: dt.datetime) -> int:
    row = cur.execute(
        "UPDATE dataset_items SET valid_to = ? WHERE dataset_id = ? AND valid_to IS NULL", [now, dataset_id]
    ).fetchone()
    return int(row[0]) if row else 0


@dataclass(frozen=True)
class ItemChanges:
    """What an update sets. JSON values as text; a field left out keeps its value."""

    values: dict[str, Any] = field(default_factory=dict)  # input, expected_output, metadata, topic, tags
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()


def open_next_versions(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, ids: Sequence[str], now: dt.datetime, changes: ItemChanges
) -> None:
    """Insert the next version of items whose current version `close_items` just closed at `now`."""
    if not ids:
        return
    select: list[str] = []
    params: list[Any] = []
    for column in ("input", "expected_output", "metadata"):
        if column in changes.values:
            select.append(f"?::JSON AS {column}")
            params.append(changes.values[column])
        else:
            select.append(column)
    if "topic" in changes.values:
        select.append("?::VARCHAR AS topic")
        params.append(changes.values["topic"])
    else:
        select.append("topic")
    tags, tag_params = "coalesce(tags, [])::VARCHAR[]", []
    if "tags" in changes.values:
        tags, tag_params = "?::VARCHAR[]", [list(changes.values["tags"])]
    if changes.add_tags:  # the base expression appears twice, so do its parameters
        tags = f"list_concat({tags}, list_filter(?::VARCHAR[], lambda x: NOT list_contains({tags}, x)))"
        tag_params = [*tag_params, list(changes.add_tags), *tag_params]
    if changes.remove_tags:
        tags = f"list_filter({tags}, lambda x: NOT list_contains(?::VARCHAR[], x))"
        tag_params = [*tag_params, list(changes.remove_tags)]
    params.extend(tag_params)
    cur.execute(
        f"""
        INSERT INTO dataset_items
        SELECT id, dataset_id, {select[0]}, {select[1]}, {select[2]}, {select[3]}, {tags} AS tags,
               source_trace_id, source_span_id, created_at, ?, NULL, 'updated', ?
        FROM dataset_items
        WHERE dataset_id = ? AND valid_to = ? AND id IN (SELECT unnest(?::VARCHAR[]))
        """,
        [*params, now, current_actor(), dataset_id, now, list(ids)],
    )


def list_versions(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, *, before_us: int | None, limit: int
) -> list[dict[str, Any]]:
    """The instants the dataset's items changed, newest first, with what changed and the count after.

    A version opening with change 'added'/'updated' counts as such; a version closed with no
    successor opening at the same instant was deleted.
    """
    cursor_sql, cursor_params = ("", []) if before_us is None else ("WHERE epoch_us(changed_at) < ?", [before_us])
    rows = cur.execute(
        f"""
        WITH events AS (
            SELECT valid_from AS changed_at, change AS kind FROM dataset_items WHERE dataset_id = ?
            UNION ALL
            SELECT o.valid_to AS changed_at, 'deleted' AS kind FROM dataset_items o
            WHERE o.dataset_id = ? AND o.valid_to IS NOT NULL AND NOT EXISTS (
                SELECT 1 FROM dataset_items n
                WHERE n.dataset_id = o.dataset_id AND n.id = o.id AND n.valid_from = o.valid_to
            )
        ), per_instant AS (
            SELECT changed_at,
                   count(*) FILTER (WHERE kind = 'added') AS added,
                   count(*) FILTER (WHERE kind = 'updated') AS updated,
                   count(*) FILTER (WHERE kind = 'deleted') AS deleted
            FROM events GROUP BY changed_at
        ), running AS (
            SELECT *, sum(added - deleted) OVER (ORDER BY changed_at) AS item_count FROM per_instant
        )
        SELECT changed_at, epoch_us(changed_at), added, updated, deleted, item_count FROM running
        {cursor_sql}
        ORDER BY changed_at DESC LIMIT ?
        """,
        [dataset_id, dataset_id, *cursor_params, limit],
    ).fetchall()
    return [
        {"at": r[0], "at_us": r[1], "added": r[2], "updated": r[3], "deleted": r[4], "item_count": int(r[5])}
        for r in rows
    ]


def get_items(cur: duckdb.DuckDBPyConnection, dataset_id: str, ids: Sequence[str]) -> list[dict[str, Any]]:
    """Current versions of these items, in id order (creation order for one batch)."""
    rows = cur.execute(
        f"SELECT {ITEM_SELECT} FROM dataset_items i WHERE i.dataset_id = ? AND i.valid_to IS NULL "
        "AND i.id IN (SELECT unnest(?::VARCHAR[])) ORDER BY i.id",
        [dataset_id, list(ids)],
    ).fetchall()
    return [item_from_row(r) for r in rows]
