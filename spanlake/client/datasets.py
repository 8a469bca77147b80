"""Datasets and their versioned items: create, read, edit, capture spans, import and export files."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from spanlake.client.driver import Driver, Op, operation
from spanlake.client.errors import SpanlakeError
from spanlake.client.files import CHUNK_ROWS, IMPORT_TYPES, import_format, split_rows
from spanlake.client.models import Capture, Dataset, Item
from spanlake.client.pages import Pages, query
from spanlake.client.traces import Time
from spanlake.client.transport import Call

ADD_CHUNK = 1000  # items per POST (the server takes up to 10,000)
ITEM_FIELDS = ("input", "expected_output", "metadata", "topic", "tags", "source_trace_id", "source_span_id")
EXPORT_FORMATS = ("jsonl", "csv", "openai", "parquet")
_KEEP: Any = object()


def dataset_path(ref: str) -> str:
    """`/api/datasets/{ref}`: a dataset id or name (names may hold any character but '/')."""
    return "/api/datasets/" + quote(ref, safe="")


def _item_body(item: Mapping[str, Any] | Item) -> dict[str, Any]:
    if isinstance(item, Item):
        item = {f: getattr(item, f) for f in ITEM_FIELDS}
    return {k: v for k, v in item.items() if v is not None or k == "input"}


class Datasets:
    def __init__(self, driver: Driver):
        self._driver = driver

    @operation
    def create(self, name: str, *, description: str | None = None, metadata: dict[str, Any] | None = None) -> Op[Dataset]:
        body: dict[str, Any] = {"name": name}
        if description is not None:
            body["description"] = description
        if metadata is not None:
            body["metadata"] = metadata
        reply = yield Call("POST", "/api/datasets", json=body, ok=(201,))
        return Dataset.from_json(reply.data)

    @operation
    def get(self, dataset: str) -> Op[Dataset]:
        reply = yield Call("GET", dataset_path(dataset))
        return Dataset.from_json(reply.data)

    def list(self, *, search: str | None = None, page_size: int = 100) -> Pages[Dataset]:
        return Pages(self._driver, "/api/datasets", query(search=search), Dataset.from_json, page_size)

    @operation
    def update(self, dataset: str, *, name: str = _KEEP, description: str | None = _KEEP,
               metadata: dict[str, Any] = _KEEP) -> Op[Dataset]:
        """Change the fields given (others stay)."""
        body = {k: v for k, v in (("name", name), ("description", description), ("metadata", metadata)) if v is not _KEEP}
        reply = yield Call("PATCH", dataset_path(dataset), json=body)
        return Dataset.from_json(reply.data)

    @operation
    def delete(self, dataset: str) -> Op[None]:
        yield Call("DELETE", dataset_path(dataset), ok=(204,))

    # Items -----------------------------------------------------------------------------------

    @operation
    def add_items(self, dataset: str, items: Iterable[Mapping[str, Any] | Item]) -> Op[list[Item]]:
        """Add items (dicts with input, expected_output?, metadata?, topic?, tags?); sent in chunks."""
        bodies = [_item_body(i) for i in items]
        out: list[Item] = []
        for start in range(0, len(bodies), ADD_CHUNK):
            reply = yield Call("POST", dataset_path(dataset) + "/items", json={"items": bodies[start:start + ADD_CHUNK]},
                               ok=(201,))
            out += [Item.from_json(row) for row in reply.data["items"]]
        return out

    def items(self, dataset: str, *, as_of: Time = None, topic: str | None = None, tags: Iterable[str] = (),
              sort: str | None = None, order: str | None = None, page_size: int = 500) -> Pages[Item]:
        """The items now, or as they were at `as_of`; `tags` must all be present; fetched page by page."""
        params = query(as_of=as_of, topic=topic, tag=list(tags), sort=sort, order=order)
        return Pages(self._driver, dataset_path(dataset) + "/items", params, Item.from_json, page_size)

    @operation
    def get_item(self, dataset: str, item_id: str, *, as_of: Time = None) -> Op[Item]:
        reply = yield Call("GET", f"{dataset_path(dataset)}/items/{quote(item_id, safe='')}", params=query(as_of=as_of))
        return Item.from_json(reply.data)

    @operation
    def update_item(self, dataset: str, item_id: str, **changes: Any) -> Op[Item]:
        """Change input, expected_output, metadata, topic and/or tags: the item's new version (same id)."""
        unknown = sorted(set(changes) - {"input", "expected_output", "metadata", "topic", "tags"})
        if unknown:
            raise TypeError(f"update_item: {unknown[0]} is not an item field (input, expected_output, metadata, topic, tags)")
        reply = yield Call("PATCH", f"{dataset_path(dataset)}/items/{quote(item_id, safe='')}", json=changes)
        return Item.from_json(reply.data)

    @operation
    def delete_items(self, dataset: str, item_ids: Iterable[str]) -> Op[dict[str, Any]]:
        """Delete items (they stay readable `as_of` earlier): `{"deleted": n, "unknown_ids": [...]}`."""
        ids = list(item_ids)
        reply = yield Call("POST", dataset_path(dataset) + "/items/bulk", json={"ids": ids, "delete": True},
                           idempotent=True)
        return reply.data

    @operation
    def capture(self, dataset: str, *, span_ids: Iterable[str] | None = None, trace_ids: Iterable[str] | None = None,
                filter: dict[str, Any] | None = None, limit: int | None = None, **options: Any) -> Op[Capture]:
        """Stored spans -> items: by span ids, by trace ids (root spans, or `span_filter=`), or by a filter.

        `options`: input, expected_output, topic, tags, metadata, span_filter (see the README).
        Capturing a span twice makes one item, so the call is retried safely.
        """
        chosen = [(k, v) for k, v in (("span_ids", span_ids), ("trace_ids", trace_ids), ("filter", filter)) if v is not None]
        if len(chosen) != 1:
            raise TypeError("capture takes exactly one of span_ids=, trace_ids= or filter=")
        key, value = chosen[0]
        body: dict[str, Any] = {key: value if key == "filter" else list(value), **options}
        if limit is not None:
            body["limit"] = limit
        reply = yield Call("POST", dataset_path(dataset) + "/capture", json=body, idempotent=True)
        return Capture.from_json(reply.data)

    # Files -----------------------------------------------------------------------------------

    @operation
    def import_file(self, dataset: str, path: str | Path, *, format: str | None = None, create: bool = True,
                    chunk_rows: int = CHUNK_ROWS) -> Op[int]:
        """Add the rows of a JSON array, JSONL or CSV file; all rows are checked before any is written.

        Creates the dataset when missing (unless create=False). Returns the number of items added.
        """
        source = Path(path)
        fmt = import_format(source, format)
        chunks = list(split_rows(fmt, source.read_bytes(), chunk_rows))
        try:
            found = yield Call("GET", dataset_path(dataset))
            dataset_id = found.data["id"]
        except SpanlakeError as exc:
            if exc.status != 404 or not create:
                raise
            created = yield Call("POST", "/api/datasets", json={"name": dataset}, ok=(201,))
            dataset_id = created.data["id"]
        target = dataset_path(dataset_id) + "/import"
        headers = {"content-type": IMPORT_TYPES[fmt]}
        if len(chunks) > 1:  # all or nothing across chunks: check every one before writing any
            bad: list[dict[str, Any]] = []
            for body, rows in chunks:
                try:
                    yield Call("POST", target, params={"dry_run": "true"}, content=body, headers=headers, idempotent=True)
                except SpanlakeError as exc:
                    if exc.status != 422:
                        raise
                    bad += [{**r, "row": rows[r["row"] - 1]} for r in exc.details.get("rows", [])]
            if bad:
                raise SpanlakeError(422, "invalid_rows", f"{len(bad)} invalid rows, nothing imported", {"rows": bad})
        imported = 0
        for body, _ in chunks:
            reply = yield Call("POST", target, content=body, headers=headers, ok=(201,))
            imported += reply.data["imported"]
        return imported

    @operation
    def export(self, dataset: str, format: str = "jsonl", path: str | Path | None = None, *,
               as_of: Time = None) -> Op[Path]:
        """Download the items as jsonl, csv, openai or parquet to `path` (default: `<dataset>.<format>`).

        The file appears complete or not at all (written to `<path>.partial`, then renamed).
        """
        if format not in EXPORT_FORMATS:
            raise ValueError(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {format!r}")
        target = Path(path) if path is not None else Path(f"{dataset}.{'jsonl' if format == 'openai' else format}")
        yield Call("GET", dataset_path(dataset) + "/export", params=query(format=format, as_of=as_of), download=target)
        return target

    @operation
    def to_pandas(self, dataset: str, *, as_of: Time = None) -> Op[Any]:
        """The items as a pandas DataFrame, one row per item (needs pandas installed)."""
        try:
            import pandas
        except ImportError:
            raise ImportError("to_pandas needs pandas: pip install pandas") from None
        pages = self.items(dataset, as_of=as_of)
        rows = yield from pages.collect()
        columns = [f.name for f in dataclasses.fields(Item) if f.name != "raw"]
        return pandas.DataFrame([{c: getattr(i, c) for c in columns} for i in rows], columns=columns)
