"""A decoded batch as the bytes of one log record: an Arrow IPC stream.

IPC keeps the columns as they are (no row conversion), and reading it back maps the buffers
without copying them. Encoding runs where decoding ran (a decode thread or process), so the
log's writer thread only writes bytes.

One log holds every signal's records; the schema's metadata names what a record holds
(`kind_of`), so the loader can split a slice without a second framing format. Span batches
carry no mark: every record written before logs were received is a span batch.
"""

from __future__ import annotations

import pyarrow as pa

KIND_KEY = b"spanlake.kind"
SPANS = "spans"
GENAI_EVENTS = "genai_events"


def with_kind(table: pa.Table, kind: str) -> pa.Table:
    """The same table (no copy), marked as holding `kind` records."""
    return table.replace_schema_metadata({**(table.schema.metadata or {}), KIND_KEY: kind.encode()})


def kind_of(table: pa.Table) -> str:
    return (table.schema.metadata or {}).get(KIND_KEY, SPANS.encode()).decode()


def encode_batch(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_batch(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
