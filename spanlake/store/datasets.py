"""SQL for datasets: their rows, lookup by id or name, the per-dataset change clock, membership.

A deleted dataset keeps its row with `deleted_at` set (its name becomes free again); every read
here skips such rows. Uniqueness of names is checked by the callers inside the one write
transaction, because the dialect we share with DuckLake has no UNIQUE constraint; creates and
renames hold the uniqueness lock (store/locks.py) so that check holds across replicas too.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import duckdb

from spanlake.store.ids import uuid7
from spanlake.store.locks import hold as hold_lock
from spanlake.clock import utc_now


_SELECT = "d.id, d.name, d.description, d.metadata::VARCHAR, d.created_at, d.updated_at"
_COUNT = "(SELECT count(*) FROM dataset_items i WHERE i.dataset_id = d.id AND i.valid_to IS NULL)"


def _row(row: tuple[Any, ...] | None) -> dict[str, Any] | None:
    if row is None:
        return None
    return {
        "id": row[0],
        "name": row[1],
        "description": row[2],
        "metadata": json.loads(row[3]) if row[3] is not None else {},
        "created_at": row[4],
        "updated_at": row[5],
        "item_count": int(row[6]) if row[6] is not None else None,
    }


def find_dataset(cur: duckdb.DuckDBPyConnection, ref: str, *, count_items: bool = True) -> dict[str, Any] | None:
    """A live dataset by id, else by name (ids win: names may not look like ids).

    Counting current items scans the dataset's rows; callers that only need the id skip it.
    """
    count = _COUNT if count_items else "NULL"
    row = cur.execute(
        f"SELECT {_SELECT}, {count} FROM datasets d WHERE d.deleted_at IS NULL AND (d.id = ? OR d.name = ?) "
        "ORDER BY (d.id = ?) DESC LIMIT 1",
        [ref, ref, ref],
    ).fetchone()
    return _row(row)


def name_taken(cur: duckdb.DuckDBPyConnection, name: str, *, except_id: str | None = None) -> bool:
    row = cur.execute(
        "SELECT count(*) FROM datasets WHERE deleted_at IS NULL AND name = ? AND id IS DISTINCT FROM ?",
        [name, except_id],
    ).fetchone()
    return bool(row[0])


def insert_dataset(
    cur: duckdb.DuckDBPyConnection, dataset_id: str, name: str, description: str | None, metadata: Any
) -> None:
    hold_lock(cur)  # the caller's "name is free" check must see every replica's datasets
    now = utc_now()
    cur.execute(
        "INSERT INTO datasets (id, name, description, metadata, created_at, updated_at, deleted_at) "
        "VALUES (?, ?, ?, ?::JSON, ?, ?, NULL)",
        [dataset_id, name, description, json.dumps(metadata if metadata is not None else {}), now, now],
    )


def update_dataset(cur: duckdb.DuckDBPyConnection, dataset_id: str, changes: dict[str, Any]) -> None:
    """Set name / description / metadata (the keys present in `changes`) and bump updated_at."""
    sets: list[str] = []
    params: list[Any] = []
    for column in ("name", "description"):
        if column in changes:
            sets.append(f"{column} = ?")
            params.append(changes[column])
    if "metadata" in changes:
        sets.append("metadata = ?::JSON")
        params.append(json.dumps(changes["metadata"] if changes["metadata"] is not None else {}))
    if not sets:
        return
    if "name" in changes:
        hold_lock(cur)  # a rename races creates on other replicas exactly like a create does
    advance_clock(cur, dataset_id)
    cur.execute(f"UPDATE datasets SET {', '.join(sets)} WHERE id = ?", [*params, dataset_id])


def mark_deleted(cur: duckdb.DuckDBPyConnection, dataset_id: str) -> dt.datetime:
    now = advance_clock(cur, dataset_id)
    cur.execute("UPDATE datasets SET deleted_at = ? WHERE id = ?", [now, dataset_id])
    return now


def list_datasets(
    cur: duckdb.DuckDBPyConnection, *, search: str | None, after_name: str | None, limit: int
) -> list[dict[str, Any]]:
    """Live datasets by name; `search` is a case-insensitive substring of the name."""
    where = ["d.deleted_at IS NULL"]
    params: list[Any] = []
    if search:
        where.append("contains(lower(d.name), lower(?))")
        params.append(search)
    if after_name is not None:
        where.append("d.name > ?")
        params.append(after_name)
    rows = cur.execute(
        f"""
        SELECT d.id, d.name, d.description, d.metadata::VARCHAR, d.created_at, d.updated_at,
               coalesce(c.n, 0)
        FROM datasets d
        LEFT JOIN (
            SELECT dataset_id, count(*) AS n FROM dataset_items WHERE valid_to IS NULL GROUP BY dataset_id
        ) c ON c.dataset_id = d.id
        WHERE {' AND '.join(where)}
        ORDER BY d.name
        LIMIT ?
        """,
        [*params, limit],
    ).fetchall()
    return [_row(r) for r in rows]  # type: ignore[misc]


def advance_clock(cur: duckdb.DuckDBPyConnection, dataset_id: str) -> dt.datetime:
    """The instant of a change to this dataset: strictly after its previous change."""
    return advance_clocks(cur, [dataset_id])[dataset_id]


def advance_clocks(cur: duckdb.DuckDBPyConnection, dataset_ids: Sequence[str]) -> dict[str, dt.datetime]:
    """The instant of a change to each dataset, strictly after its previous change, in two
    statements however many datasets (capture rules touch dozens per commit).

    Item versions are read back by instant (`as_of`), so two changes must never share one, even
    when they land in the same microsecond or the wall clock steps back: the new instant is the
    later of now and the previous change plus 1 µs, computed by the UPDATE and read back (DuckLake
    has no UPDATE ... RETURNING). `list_contains` over a list parameter, not a 2-per-dataset CASE
    or `IN (SELECT unnest(?))`: those cost the writer ~1-3 ms more a statement.
    """
    ids = list(dict.fromkeys(dataset_ids))
    now = utc_now()
    cur.execute(
        "UPDATE datasets SET updated_at = greatest(coalesce(updated_at + INTERVAL 1 MICROSECOND, ?::TIMESTAMP), ?::TIMESTAMP) "
        "WHERE list_contains(?::VARCHAR[], id)",
        [now, now, ids],
    )
    changed = dict(cur.execute("SELECT id, updated_at FROM datasets WHERE list_contains(?::VARCHAR[], id)", [ids]).fetchall())
    return {dataset_id: changed.get(dataset_id, now) for dataset_id in ids}


def last_change(cur: duckdb.DuckDBPyConnection, dataset_id: str) -> dt.datetime | None:
    row = cur.execute("SELECT updated_at FROM datasets WHERE id = ?", [dataset_id]).fetchone()
    return row[0] if row else None


def span_memberships(
    cur: duckdb.DuckDBPyConnection, trace_id: str, span_id: str, *, after: tuple[str, str] | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Live datasets holding a current item captured from this span, by dataset name then item
    id; `after` is the (name, item id) of the previous page's last row."""
    page, params = "", []
    if after is not None:
        page = "AND (d.name > ? OR (d.name = ? AND i.id > ?))"
        params = [after[0], after[0], after[1]]
    rows = cur.execute(
        f"""
        SELECT d.id, d.name, i.id, i.created_at
        FROM dataset_items i JOIN datasets d ON d.id = i.dataset_id
        WHERE i.valid_to IS NULL AND i.source_trace_id = ? AND i.source_span_id = ? AND d.deleted_at IS NULL {page}
        ORDER BY d.name, i.id LIMIT ?
        """,
        [trace_id, span_id, *params, limit],
    ).fetchall()
    return [{"id": r[0], "name": r[1], "item_id": r[2], "captured_at": r[3]} for r in rows]


def get_or_create_dataset(cur: duckdb.DuckDBPyConnection, name: str) -> str:
    """The id of the live dataset called `name`, created (empty) if missing; for capture rules.

    Call inside the write transaction that then captures into it, so two rules naming the same
    new dataset create it once. Validate the name first (`spanlake.datasets.validate.dataset_name`).
    """
    row = cur.execute("SELECT id FROM datasets WHERE deleted_at IS NULL AND name = ? LIMIT 1", [name]).fetchone()
    if row is not None:
        return row[0]
    dataset_id = uuid7()
    insert_dataset(cur, dataset_id, name, None, {})
    return dataset_id


def get_or_create_datasets(cur: duckdb.DuckDBPyConnection, names: Sequence[str]) -> dict[str, str]:
    """`get_or_create_dataset` for many names: the live ones found in one query, missing ones created."""
    found = dict(cur.execute(
        "SELECT name, any_value(id) FROM datasets WHERE deleted_at IS NULL AND list_contains(?::VARCHAR[], name) "
        "GROUP BY name",
        [list(names)],
    ).fetchall())
    for name in names:
        if name not in found:
            found[name] = get_or_create_dataset(cur, name)
    return found
