"""Import files: a JSON array, JSON Lines or CSV, validated whole before anything is written.

Rows are numbered from 1: the element of a JSON array, the line of a JSONL file, the record after
the header of a CSV file. CSV cells are text; a cell holding a JSON object or array (chat messages,
structured outputs) is read as that JSON, so what a CSV export wrote imports back; a cell the
export prefixed with a quote against formula injection gets its text back (csv_safety.py). Columns:
`input`, `expected_output`, `topic`, `tags` (a JSON array or comma-separated), `metadata` (a JSON
object) and/or `metadata.<key>`, `source_trace_id`, `source_span_id`; export-only columns
(`id`, `created_at`, ...) are ignored.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from spanlake.datasets import csv_safety, validate
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
}

_CSV_COLUMNS = frozenset(validate.ITEM_FIELDS)


def format_of(content_type: str | None) -> str:
    media = (content_type or "").split(";")[0].strip().lower()
    if media not in FORMATS:
        raise Unsupported(
            f"Content-Type {media or '(none)'!r} is not importable; send application/json (an array), "
            "application/x-ndjson (JSON Lines) or text/csv"
        )
    return FORMATS[media]


def parse(fmt: str, body: bytes) -> tuple[list[NewItem], list[int]]:
    """Validated items and their row numbers; RowsInvalid lists every bad row (nothing is kept)."""
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
    for n, line in enumerate(content.splitlines(), 1):
        if not line.strip():
            continue
        try:
            rows.append((n, validate.parse_json(line, "the line"), None))
        except Invalid as exc:
            rows.append((n, None, exc.message))
    return rows


def cell_value(text: str) -> Any:
    """A CSV cell: JSON when it is a JSON object or array, else the text itself."""
    stripped = text.strip()
    if stripped[:1] in ("{", "["):
        try:
            value = validate.parse_json(stripped)
        except Invalid:
            return text
        if isinstance(value, (dict, list)):
            return value
    return text


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
    header = [h.strip() for h in header]
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
            meta[name[len("metadata."):]] = cell_value(cell)
        elif name == "tags":
            obj["tags"] = _tags_cell(cell)
        elif name in ("input", "expected_output", "metadata"):
            obj[name] = cell_value(cell)
        else:
            obj[name] = cell.strip()
    if meta:
        base = obj.get("metadata", {})
        if not isinstance(base, dict):
            return n, None, "metadata must be a JSON object"
        obj["metadata"] = {**base, **meta}
    return n, obj, None
