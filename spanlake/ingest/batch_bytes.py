"""A decoded batch as the bytes of one log record: an Arrow IPC stream.

IPC keeps the columns as they are (no row conversion), and reading it back maps the buffers
without copying them. Encoding runs where decoding ran (a decode thread or process), so the
log's writer thread only writes bytes.
"""

from __future__ import annotations

import pyarrow as pa


def encode_batch(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def decode_batch(payload: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()
