"""Import files cut into request bodies, with the row numbers the server's errors refer to.

Shared by `client.datasets.import_file` and `spanlake datasets import`.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from pathlib import Path

IMPORT_TYPES = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "parquet": "application/vnd.apache.parquet",
}
EXTENSIONS = {".json": "json", ".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
CHUNK_ROWS = 5000


def import_format(path: Path, fmt: str | None = None) -> str:
    """json, jsonl, csv or parquet: given, or from the file's extension."""
    fmt = fmt or EXTENSIONS.get(path.suffix.lower())
    if fmt not in IMPORT_TYPES:
        raise ValueError(
            f"cannot tell the format of {path.name}; name it .json, .jsonl, .csv or .parquet, or pass the format"
        )
    return fmt


Chunk = tuple[bytes, list[int]]  # (request body, original row number of each row in it)


def split_rows(fmt: str, content: bytes, chunk_rows: int) -> Iterator[Chunk]:
    """Cut a file into request bodies of at most `chunk_rows` rows, remembering row numbers.

    Row numbers follow the server's: array element, JSONL line, CSV record after the header,
    Parquet row.
    A file that fits in one chunk is sent byte for byte.
    """
    if fmt == "json":
        try:
            doc = json.loads(content)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ValueError(f"the file is not valid JSON: {exc}") from None
        if not isinstance(doc, list):
            raise ValueError("a .json import must hold an array of items; use .jsonl for one item per line")
        if len(doc) <= chunk_rows:
            yield content, list(range(1, len(doc) + 1))
            return
        for start in range(0, len(doc), chunk_rows):
            part = doc[start : start + chunk_rows]
            yield json.dumps(part).encode(), list(range(start + 1, start + len(part) + 1))
    elif fmt == "jsonl":
        lines = [(n, line) for n, line in enumerate(content.split(b"\n"), 1) if line.strip()]
        for start in range(0, max(len(lines), 1), chunk_rows):
            part = lines[start : start + chunk_rows]
            yield b"\n".join(line for _, line in part), [n for n, _ in part]
    elif fmt == "parquet":
        yield from _split_parquet(content, chunk_rows)
    else:
        yield from _split_csv(content, chunk_rows)


def _split_parquet(content: bytes, chunk_rows: int) -> Iterator[Chunk]:
    import pyarrow as pa  # here, not at the top: the client needs pyarrow only for Parquet files
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(content))
    except (pa.ArrowException, OSError) as exc:
        raise ValueError(f"the file is not a readable Parquet file: {exc}") from None
    if table.num_rows <= chunk_rows:
        yield content, list(range(1, table.num_rows + 1))
        return
    for start in range(0, table.num_rows, chunk_rows):
        part = table.slice(start, chunk_rows)
        sink = pa.BufferOutputStream()
        pq.write_table(part, sink)
        yield sink.getvalue().to_pybytes(), list(range(start + 1, start + part.num_rows + 1))


def _split_csv(content: bytes, chunk_rows: int) -> Iterator[Chunk]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValueError(f"the file is not UTF-8 text: {exc}") from None
    try:
        records = list(csv.reader(io.StringIO(text, newline="")))
    except csv.Error as exc:
        raise ValueError(f"the CSV file cannot be read: {exc}") from None
    if not records:
        raise ValueError("the CSV file is empty")
    header, body = records[0], [r for r in records[1:] if any(c.strip() for c in r)]
    if len(body) <= chunk_rows:
        yield content, list(range(1, len(body) + 1))
        return
    for start in range(0, len(body), chunk_rows):
        buf = io.StringIO()
        writer = csv.writer(buf, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(body[start : start + chunk_rows])
        yield buf.getvalue().encode(), list(range(start + 1, start + len(body[start : start + chunk_rows]) + 1))
