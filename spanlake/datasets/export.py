"""Exports streamed in chunks: jsonl, csv, openai (chat fine-tuning) and parquet.

An `Export` keeps the state between chunks (the instant it reads, the last key, the Parquet
writer). Its `start` and `next_chunk` take a read cursor and are meant to run on the store's read
pool (`await store.read(export.next_chunk)`), so both the query and the encoding of a chunk stay
off the event loop, and memory holds one chunk at a time whatever the dataset's size.
"""

from __future__ import annotations

import datetime as dt
import io
import re
from dataclasses import dataclass
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from spanlake.datasets import csv_safety, openai_format, text_cells
from spanlake.datasets.errors import Invalid
from spanlake.store import dataset_export


@dataclass(frozen=True)
class Format:
    media_type: str
    extension: str


FORMATS = {
    "jsonl": Format("application/x-ndjson", "jsonl"),
    "csv": Format("text/csv; charset=utf-8", "csv"),
    "openai": Format("application/x-ndjson", "openai.jsonl"),
    "parquet": Format("application/vnd.apache.parquet", "parquet"),
}
CHUNK_ROWS = 10_000

PARQUET_SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("input", pa.string()),  # a text cell (datasets/text_cells.py): the string, or JSON text
        ("expected_output", pa.string()),
        ("metadata", pa.string()),  # JSON text of an object
        ("topic", pa.string()),
        ("tags", pa.list_(pa.string())),
        ("source_trace_id", pa.string()),
        ("source_span_id", pa.string()),
        ("created_at", pa.timestamp("us", tz="UTC")),
        ("updated_at", pa.timestamp("us", tz="UTC")),
    ]
)


def parse_format(value: str | None) -> str:
    fmt = (value or "jsonl").lower()
    if fmt not in FORMATS:
        raise Invalid(f"format must be one of {', '.join(FORMATS)}, got {value!r}")
    return fmt


def filename(dataset_name: str, fmt: str) -> str:
    """A file name safe in any Content-Disposition and file system: no path characters survive."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset_name).strip("._-")[:100] or "dataset"
    return f"{stem}.{FORMATS[fmt].extension}"


class _Sink:
    """A write-only file for pyarrow that hands back what was written since the last `take`."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._pos = 0
        self.closed = False

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._pos += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._pos  # pyarrow records row-group offsets from this, not from a seek

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def writable(self) -> bool:
        return True

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


class Export:
    def __init__(self, dataset_id: str, fmt: str, as_of: dt.datetime | None, chunk_rows: int = CHUNK_ROWS):
        self.dataset_id = dataset_id
        self.fmt = fmt
        self.as_of = as_of
        self.chunk_rows = chunk_rows
        self.info: dict[str, Any] = {}
        self._after: list[Any] | None = None
        self._done = False
        self._metadata_keys: list[str] = []
        self._sink: _Sink | None = None
        self._writer: pq.ParquetWriter | None = None

    def start(self, cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
        """Fix the instant read and count the items; returns {"as_of", "total", "incomplete"} (and
        for openai "skipped": items that make no valid example)."""
        self.info = dataset_export.snapshot(cur, self.dataset_id, self.as_of)
        self.as_of = self.info["as_of"]
        if self.fmt == "openai":
            # The skipped count goes in a header, before the body: one conversion pass first.
            report = openai_report(cur, self.dataset_id, self.as_of, chunk_rows=self.chunk_rows, reasons=0)
            self.info["skipped"] = report["skipped"]
        if self.fmt == "csv":
            self._metadata_keys = dataset_export.metadata_keys(cur, self.dataset_id, self.as_of)
        return self.info

    def next_chunk(self, cur: duckdb.DuckDBPyConnection) -> bytes | None:
        """The next bytes of the file, or None at the end."""
        if self._done:
            return None
        return getattr(self, f"_{self.fmt}")(cur)

    def _fetch_arrow(self, cur: duckdb.DuckDBPyConnection, **kwargs: Any) -> pa.Table:
        table, last = dataset_export.arrow_chunk(
            cur, self.dataset_id, self.as_of, self._after, self.chunk_rows, **kwargs
        )
        self._after = last
        if table.num_rows < self.chunk_rows:
            self._done = True
        return table

    def _jsonl(self, cur: duckdb.DuckDBPyConnection) -> bytes:
        lines, last = dataset_export.json_lines(cur, self.dataset_id, self.as_of, self._after, self.chunk_rows)
        self._after = last
        if len(lines) < self.chunk_rows:
            self._done = True
        return ("\n".join(lines) + "\n").encode() if lines else b""

    def _openai(self, cur: duckdb.DuckDBPyConnection) -> bytes:
        out = [row for _, row, _ in _openai_rows(self._fetch_arrow(cur)) if row is not None]
        return b"\n".join(out) + b"\n" if out else b""

    def _csv(self, cur: duckdb.DuckDBPyConnection) -> bytes:
        first = self._after is None
        table = self._fetch_arrow(cur, metadata_columns=self._metadata_keys)
        table = _value_cells(table, ["input", "expected_output", *(f"metadata.{k}" for k in self._metadata_keys)])
        if table.num_rows == 0 and not first:
            return b""
        table = csv_safety.neutralise_table(table)  # no cell a spreadsheet would run as a formula
        buf = io.BytesIO()
        pa_csv.write_csv(table, buf, pa_csv.WriteOptions(include_header=first, quoting_style="needed"))
        return buf.getvalue()

    def _parquet(self, cur: duckdb.DuckDBPyConnection) -> bytes:
        if self._writer is None:
            self._sink = _Sink()
            self._writer = pq.ParquetWriter(pa.PythonFile(self._sink, mode="w"), PARQUET_SCHEMA)
        table = _value_cells(self._fetch_arrow(cur), ["input", "expected_output"])
        if table.num_rows:
            self._writer.write_table(table.cast(PARQUET_SCHEMA))
        if self._done:
            self._writer.close()
        return self._sink.take() if self._sink is not None else b""

    def close(self) -> None:
        """Release the Parquet writer of an export abandoned midway (the client went away)."""
        if self._writer is not None and not self._done:
            self._done = True
            try:
                self._writer.close()
            except Exception:  # nothing to save: the client is gone
                pass


def _value_cells(table: pa.Table, names: list[str]) -> pa.Table:
    """Columns of JSON text as text cells that keep their types (datasets/text_cells.py)."""
    for name in names:
        index = table.schema.get_field_index(name)
        cells = [text_cells.encode(v) for v in table.column(index).to_pylist()]
        table = table.set_column(index, name, pa.array(cells, pa.string()))
    return table


def _openai_rows(table: pa.Table) -> list[tuple[str, bytes | None, str | None]]:
    """(item id, example line or None, reason it was skipped or None) per item of a chunk."""
    out: list[tuple[str, bytes | None, str | None]] = []
    columns = (table.column(c).to_pylist() for c in ("id", "input", "expected_output"))
    for item_id, raw_in, raw_out in zip(*columns):
        try:
            ex = openai_format.example(
                None if raw_in is None else orjson.loads(raw_in), None if raw_out is None else orjson.loads(raw_out)
            )
        except openai_format.Unusable as exc:
            out.append((item_id, None, str(exc)))
        else:
            out.append((item_id, orjson.dumps(ex), None))
    return out


MAX_REASONS = 10_000


def openai_report(
    cur: duckdb.DuckDBPyConnection,
    dataset_id: str,
    as_of: dt.datetime | None,
    *,
    chunk_rows: int = CHUNK_ROWS,
    reasons: int = MAX_REASONS,
) -> dict[str, Any]:
    """What an openai export of the dataset writes and skips, with the reason per skipped item
    (the first `reasons` of them; `skipped` counts all)."""
    job = Export(dataset_id, "jsonl", as_of, chunk_rows)  # jsonl: start() without the openai pass
    info = job.start(cur)
    exported, skipped, listed = 0, 0, []
    while not job._done:
        for item_id, row, reason in _openai_rows(job._fetch_arrow(cur)):
            if row is not None:
                exported += 1
                continue
            skipped += 1
            if len(listed) < reasons:
                listed.append({"item_id": item_id, "reason": reason})
    return {
        "format": "openai",
        "as_of": info["as_of"],
        "total": info["total"],
        "exported": exported,
        "skipped": skipped,
        "skipped_items": listed,
    }
