"""Reads of datasets and items for the API, run on the read pool: `await store.read(fn, ...)`.

Item pages read one instant: the first page fixes it (the `as_of` asked for, else the latest
change) and the cursor carries it, so paging through a dataset that is being edited neither
repeats nor skips items.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Any

import duckdb

from spanlake.datasets.service import resolve
from spanlake.datasets.errors import NotFound
from spanlake.store import dataset_items, datasets, scores
from spanlake.store.dataset_items import ItemQuery
from spanlake.clock import utc_now

_EPOCH = dt.datetime(1970, 1, 1)


def from_us(us: int) -> dt.datetime:
    return _EPOCH + dt.timedelta(microseconds=us)


def to_us(value: dt.datetime) -> int:
    return (value - _EPOCH) // dt.timedelta(microseconds=1)


def list_datasets(cur: duckdb.DuckDBPyConnection, search: str | None, after: str | None, limit: int) -> tuple[list[dict[str, Any]], str | None]:
    rows = datasets.list_datasets(cur, search=search, after_name=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["name"] if more else None)


def items_page(
    cur: duckdb.DuckDBPyConnection, ref: str, query: ItemQuery, at_us: int | None
) -> tuple[dict[str, Any], list[dict[str, Any]], int, bool]:
    """(dataset, items, instant read in epoch µs, more pages?) for one page."""
    dataset = resolve(cur, ref)
    if at_us is None:
        at = query.as_of
        if at is None:
            latest = dataset["updated_at"]
            at = max(utc_now(), latest) if latest is not None else utc_now()
        at_us = to_us(at)
    rows = dataset_items.list_items(
        cur, dataset["id"], replace(query, as_of=from_us(at_us), limit=query.limit + 1)
    )
    more = len(rows) > query.limit
    rows = rows[: query.limit]
    scored = dataset_items.evaluations(cur, rows)
    for row in rows:
        row["evaluation"] = scored.get(row["id"])
    return dataset, rows, at_us, more


def versions_page(cur: duckdb.DuckDBPyConnection, ref: str, before_us: int | None, limit: int) -> tuple[list[dict[str, Any]], int | None]:
    dataset = resolve(cur, ref)
    rows = dataset_items.list_versions(cur, dataset["id"], before_us=before_us, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, (rows[-1]["at_us"] if more else None)


def span_datasets(
    cur: duckdb.DuckDBPyConnection, trace_id: str, span_id: str, after: tuple[str, str] | None, limit: int
) -> tuple[list[dict[str, Any]], tuple[str, str] | None]:
    """A page of the span's memberships and the key to continue after; NotFound for a span the
    store does not hold (an empty list would say "in no dataset", which is not what is known)."""
    try:
        known = scores.span_exists(cur, trace_id, span_id)
    except scores.UnknownTrace:
        known = False
    if not known:
        raise NotFound(f"span {span_id} of trace {trace_id} not found")
    rows = datasets.span_memberships(cur, trace_id, span_id, after=after, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return rows, ((rows[-1]["name"], rows[-1]["item_id"]) if more and rows else None)

