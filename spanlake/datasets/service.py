"""Changes to datasets and items, each one write transaction: `await store.write(fn, ...)`.

Every function here takes the writer's cursor first, so its checks (the name is free, the span
is not in the dataset yet) and its writes commit together. No SQL here: the store modules hold it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import duckdb

from spanlake.datasets.errors import Conflict, NotFound, RowsInvalid
from spanlake.store import dataset_capture, dataset_items, datasets
from spanlake.store.dataset_items import ItemChanges, NewItem
from spanlake.store.ids import uuid7


def resolve(cur: duckdb.DuckDBPyConnection, ref: str, *, count_items: bool = False) -> dict[str, Any]:
    """A live dataset by id or name, or NotFound; `item_count` only when asked (it scans items)."""
    row = datasets.find_dataset(cur, ref, count_items=count_items)
    if row is None:
        raise NotFound(f"dataset {ref!r} not found")
    return row


def describe(cur: duckdb.DuckDBPyConnection, ref: str) -> dict[str, Any]:
    """The dataset as the API shows it, with its current item count."""
    return resolve(cur, ref, count_items=True)


def create_dataset(cur: duckdb.DuckDBPyConnection, name: str, description: str | None, metadata: dict) -> dict[str, Any]:
    if datasets.name_taken(cur, name):
        raise Conflict(f"a dataset named {name!r} already exists")
    dataset_id = uuid7()
    datasets.insert_dataset(cur, dataset_id, name, description, metadata)
    return describe(cur, dataset_id)


def update_dataset(cur: duckdb.DuckDBPyConnection, ref: str, changes: dict[str, Any]) -> dict[str, Any]:
    row = resolve(cur, ref)
    if "name" in changes and changes["name"] != row["name"] and datasets.name_taken(cur, changes["name"], except_id=row["id"]):
        raise Conflict(f"a dataset named {changes['name']!r} already exists")
    datasets.update_dataset(cur, row["id"], changes)
    return describe(cur, row["id"])


def delete_dataset(cur: duckdb.DuckDBPyConnection, ref: str) -> None:
    """Soft delete: the dataset disappears (its name is free again); its item history is closed."""
    row = resolve(cur, ref)
    now = datasets.mark_deleted(cur, row["id"])
    dataset_items.close_all_items(cur, row["id"], now)


def add_items(cur: duckdb.DuckDBPyConnection, ref: str, items: Sequence[NewItem]) -> list[dict[str, Any]]:
    """Insert items as one version; an item whose source span is already in the dataset is refused."""
    row = resolve(cur, ref)
    conflicts = _span_conflicts(cur, row["id"], items)
    if conflicts:
        n, reason = conflicts[0]
        raise Conflict(f"items[{n}]: {reason}", items=[n for n, _ in conflicts])
    now = datasets.advance_clock(cur, row["id"])
    dataset_items.insert_items(cur, row["id"], items, now)
    return dataset_items.get_items(cur, row["id"], [i.id for i in items])


def _span_conflicts(cur: duckdb.DuckDBPyConnection, dataset_id: str, items: Sequence[NewItem]) -> list[tuple[int, str]]:
    """Items that would give a source span a second current item (the invariant capture dedup relies on)."""
    first: dict[str, int] = {}
    conflicts: list[tuple[int, str]] = []
    for n, item in enumerate(items):
        span = item.source_span_id
        if span is None:
            continue
        if span in first:
            conflicts.append((n, f"source_span_id {span} repeats the item at index {first[span]}"))
        else:
            first[span] = n
    taken = dataset_items.current_source_spans(cur, dataset_id, list(first))
    conflicts += [(first[s], f"span {s} already has an item in this dataset; update that item instead") for s in taken]
    return sorted(conflicts)


def get_item(cur: duckdb.DuckDBPyConnection, ref: str, item_id: str, as_of: Any = None) -> dict[str, Any]:
    row = resolve(cur, ref)
    item = dataset_items.get_item(cur, row["id"], item_id, as_of)
    if item is None:
        when = "" if as_of is None else " at that time"
        raise NotFound(f"item {item_id!r} not found in dataset {row['name']!r}{when}")
    return item


def patch_item(cur: duckdb.DuckDBPyConnection, ref: str, item_id: str, changes: ItemChanges) -> dict[str, Any]:
    """Open the item's next version (same id); a patch that changes nothing opens none."""
    current = get_item(cur, ref, item_id)
    if _unchanged(current, changes):
        return current
    dataset_id = current["dataset_id"]
    now = datasets.advance_clock(cur, dataset_id)
    closed = dataset_items.close_items(cur, dataset_id, [item_id], now)
    dataset_items.open_next_versions(cur, dataset_id, closed, now, changes)
    return get_item(cur, dataset_id, item_id)


def _unchanged(current: dict[str, Any], changes: ItemChanges) -> bool:
    for key, value in changes.values.items():
        if key in ("input", "expected_output", "metadata"):
            value = None if value is None else json.loads(value)
        elif key == "tags":
            value = list(value)
        if current[key] != value:
            return False
    tags = current["tags"]
    return all(t in tags for t in changes.add_tags) and not any(t in tags for t in changes.remove_tags)


def delete_item(cur: duckdb.DuckDBPyConnection, ref: str, item_id: str) -> None:
    current = get_item(cur, ref, item_id)
    now = datasets.advance_clock(cur, current["dataset_id"])
    dataset_items.close_items(cur, current["dataset_id"], [item_id], now)


def bulk(
    cur: duckdb.DuckDBPyConnection, ref: str, ids: Sequence[str], changes: ItemChanges | None
) -> dict[str, Any]:
    """Update (changes) or delete (None) many items as one version; unknown ids are reported."""
    row = resolve(cur, ref)
    now = datasets.advance_clock(cur, row["id"])
    closed = dataset_items.close_items(cur, row["id"], ids, now)
    if changes is not None:
        dataset_items.open_next_versions(cur, row["id"], closed, now, changes)
    found = set(closed)
    unknown = [i for i in ids if i not in found]
    key = "updated" if changes is not None else "deleted"
    return {key: len(closed), "unknown_ids": unknown}


def capture_keys(
    cur: duckdb.DuckDBPyConnection, ref: str, keys: Sequence[dataset_capture.SpanKey], options: dataset_capture.CaptureOptions
) -> dataset_capture.CaptureResult:
    row = resolve(cur, ref)
    return dataset_capture.capture_span_keys(cur, row["id"], keys, options)


def import_items(
    cur: duckdb.DuckDBPyConnection, ref: str, items: Sequence[NewItem], row_numbers: Sequence[int]
) -> int:
    """Import validated rows as one version: all of them or, on any conflict, none."""
    row = resolve(cur, ref)
    conflicts = _span_conflicts(cur, row["id"], items)
    if conflicts:
        raise RowsInvalid([{"row": row_numbers[n], "reason": reason} for n, reason in conflicts], len(items))
    now = datasets.advance_clock(cur, row["id"])
    dataset_items.insert_items(cur, row["id"], items, now)
    return len(items)
