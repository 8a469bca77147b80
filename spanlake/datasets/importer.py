"""Import files: a JSON array, JSON Lines, CSV or Parquet, validated whole before anything is written.

Rows are numbered from 1: the element of a JSON array, the line of a JSONL file, the record after
the header of a CSV file, the row of a Parquet file. CSV cells and Parquet text columns hold
values as datasets/text_cells.py writes them (a cell that parses as JSON is that value, any other
is text), so what an export wrote imports back with its types; a CSV cell the export prefixed
with a quote against formula injection gets its text back first (csv_safety.py). Columns: `input`,
`expected_output`, `topic`, `tags` (a JSON array or comma-separated; a list in Parquet),
`metadata` (a JSON object) and/or `metadata.<key>`, `source_trace_id`, `source_span_id`;
export-only columns (`id`, `created_at`, ...) are ignored.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from spanlake.datasets import csv_safety, text_cells, validate
from spanlake.datasets.errors import Invalid, RowsInvalid, Unsupported
from spanlake.store.dataset_items import NewItem

MAX_ROWS = 1_000_000

FORMATS = {
    "application/json": "json",
    "application/x-ndjson": "jsonl",
    "application/ndjson": "jsonl",
    "application/jsonl": "jsonl",
    "application/x-jsonlines": "jsonl",
    "application/jsonlines": "jsonl",
    "text/csv": "csv",
    "application/csv": "csv",
    "application/vnd.apache.parquet": "parquet",
    "application/x-parquet": "parquet",
}

_CSV_COLUMNS = frozenset(validate.ITEM_FIELDS)


def format_of(content_type: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in FORMATS:
        raise Unsupported(
            f"Content-Type {media or '(none)'!r} is not importable; send application/json (an array), "
            "application/x-ndjson (JSON Lines), text/csv or application/vnd.apache.parquet"
        )
    return FORMATS[media]


def parse(fmt: str, body: bytes) -> tuple[list[NewItem], list[int]]:
    """Validated items and their row numbers; RowsInvalid lists every bad row (nothing is kept)."""
    if fmt == "parquet":
        rows = _parquet_rows(body)
    else:
        try:
            content = body.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise Invalid(f"the body is not UTF-8 text: {exc}") from None
        rows = {"json": _json_rows, "jsonl": _jsonl_rows, "csv": _csv_rows}[fmt](content)
    items: list[NewItem] = []
    numbers: list[int] = []
    errors: list[dict[str, Any]] = []
    for number, obj, problem in rows:
        if len(numbers) + len(errors) >= MAX_ROWS:
            raise Invalid(f"an import holds at most {MAX_ROWS} rows; split the file")
        if problem is None:
            try:
                items.append(validate.item(obj))
                numbers.append(number)
                continue
            except Invalid as exc:
                problem = exc.message
        errors.append({"row": number, "reason": problem})
    if errors:
        raise RowsInvalid(errors, len(items) + len(errors))
    if not items:
        raise Invalid("the import holds no rows")
    return items, numbers


Row = tuple[int, Any, str | None]  # (row number, object, reason it is unusable)


def _json_rows(content: str) -> list[Row]:
    doc = validate.parse_json(content, "the body")
    if not isinstance(doc, list):
        raise Invalid("a JSON import must be an array of item objects; send JSON Lines as application/x-ndjson")
    return [(n, obj, None) for n, obj in enumerate(doc, 1)]


def _jsonl_rows(content: str) -> list[Row]:
    rows: list[Row] = []
    # Lines end at \n (or \r\n) only: str.splitlines() would also cut at U+2028, U+0085 and
    # other characters a JSON string may hold unescaped, breaking a valid line in two.
    for n, line in enumerate(content.split("\n"), 1):
        line = line.removesuffix("\r")
        if not line.strip():
            continue
        try:
            rows.append((n, validate.parse_json(line, "the line"), None))
        except Invalid as exc:
            rows.append((n, None, exc.message))
    return rows


def _tags_cell(text: str) -> Any:
    stripped = text.strip()
    if stripped.startswith("["):
        try:
            return validate.parse_json(stripped)
        except Invalid:
            pass
    return [t.strip() for t in stripped.split(",") if t.strip()]


def _csv_rows(content: str) -> list[Row]:
    reader = csv.reader(io.StringIO(content, newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise Invalid("the CSV body is empty; the first row must name the columns") from None
    except csv.Error as exc:
        raise Invalid(f"the CSV header cannot be read: {exc}") from None
    # Names are trimmed, but a metadata key keeps its own spaces ("metadata.note " is key "note ").
    header = [h.lstrip() if h.lstrip().startswith("metadata.") else h.strip() for h in header]
    for name in header:
        if name not in _CSV_COLUMNS and name not in validate.EXPORT_ONLY_FIELDS and not name.startswith("metadata."):
            raise Invalid(
                f"CSV column {name!r} is unknown; use input, expected_output, topic, tags, metadata, "
                "metadata.<key>, source_trace_id, source_span_id"
            )
    if "input" not in header:
        raise Invalid("the CSV header has no 'input' column")
    if len(set(header)) != len(header):
        raise Invalid("the CSV header names a column twice")
    rows: list[Row] = []
    n = 0
    while True:
        n += 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            rows.append((n, None, f"CSV cannot be read here: {exc}"))
            break
        if not any(cell.strip() for cell in record):
            n -= 1  # blank lines are not records
            continue
        if len(record) != len(header):
            rows.append((n, None, f"has {len(record)} cells; the header has {len(header)}"))
            continue
        rows.append(_csv_object(n, header, record))
    return rows


def _csv_object(n: int, header: list[str], record: list[str]) -> Row:
    obj: dict[str, Any] = {}
    meta: dict[str, Any] = {}
    for name, cell in zip(header, record):
        if cell == "" or name in validate.EXPORT_ONLY_FIELDS:
            continue
        cell = csv_safety.restore_cell(cell)  # undo the export's formula neutralising
        if name.startswith("metadata."):
            meta[name[len("metadata."):]] = text_cells.decode(cell)
        elif name == "tags":
            obj["tags"] = _tags_cell(cell)
        elif name in ("input", "expected_output", "metadata"):
            obj[name] = text_cells.decode(cell)
        elif name == "topic":
            obj[name] = cell  # text as it is: a topic "42" stays the string "42"
        else:
            obj[name] = cell.strip()
    if meta:
        base = obj.get("metadata", {})
        if not isinstance(base, dict):
            return n, None, "metadata must be a JSON object"
        obj["metadata"] = {**base, **meta}
    return n, obj, None


_PARQUET_VALUE_COLUMNS = ("input", "expected_output")


def _parquet_rows(body: bytes) -> list[Row]:
    """The rows of a Parquet file with the export's columns (others refused as for CSV)."""
    try:
        table = pq.read_table(pa.BufferReader(body))
    except (pa.ArrowException, OSError) as exc:
        raise Invalid(f"the body is not a readable Parquet file: {exc}") from None
    for name in table.column_names:
        if name not in _CSV_COLUMNS and name not in validate.EXPORT_ONLY_FIELDS:
            raise Invalid(f"Parquet column {name!r} is unknown; use {', '.join(validate.ITEM_FIELDS)}")
    if "input" not in table.column_names:
        raise Invalid("the Parquet file has no 'input' column")
    try:
        records = table.to_pylist()
    except (pa.ArrowException, ValueError) as exc:  # types Python cannot hold
        raise Invalid(f"the Parquet file's values cannot be read: {exc}") from None
    rows: list[Row] = []
    for n, record in enumerate(records, 1):
        obj: dict[str, Any] = {}
        for name, value in record.items():
            if value is None or name in validate.EXPORT_ONLY_FIELDS:
                continue
            if name in _PARQUET_VALUE_COLUMNS:
                if not isinstance(value, str):
                    rows.append((n, None, f"{name} must be a text column"))
                    break
                value = text_cells.decode(value) if value != "" else ""
            elif name == "metadata" and isinstance(value, str):
                value = text_cells.decode(value)
            obj[name] = value
        else:
            rows.append((n, obj, None))
    return rows
