"""The compiled fast path of the protobuf decoder (_otlp_native.c), as SPAN_SCHEMA tables.

The C module reads ExportTraceServiceRequest bytes without the GIL into Arrow column buffers;
this wraps them as a table. It answers only requests it reproduces exactly; for the rest
(malformed bytes, spans to reject, rare shapes) it returns None and decode.py's Python walker,
the reference, decodes them. Without a C compiler at install time the module is absent and
every request takes the Python path.

SPANLAKE_PYTHON_DECODER=1 turns the fast path off (to compare the two, or to rule it out).
"""

from __future__ import annotations

import os

import pyarrow as pa

from spanlake.store.schema import SPAN_SCHEMA

try:
    from spanlake.ingest import _otlp_native
except ImportError:  # built without a C compiler
    _otlp_native = None

if _otlp_native is not None and tuple(_otlp_native.COLUMNS) != tuple(SPAN_SCHEMA.names):
    # The C column order is written out by hand; a schema change it missed must not store
    # values under the wrong names.
    raise ImportError(f"_otlp_native columns {_otlp_native.COLUMNS} do not match SPAN_SCHEMA")


def available() -> bool:
    return _otlp_native is not None and os.environ.get("SPANLAKE_PYTHON_DECODER", "") in ("", "0")


def decode_table(body: bytes) -> pa.Table | None:
    """The request's spans, or None when the Python decoder must handle this request."""
    decoded = _otlp_native.decode(body)  # type: ignore[union-attr]
    if decoded is None:
        return None
    rows, columns = decoded
    arrays = []
    for field, (validity, offsets, data, nulls) in zip(SPAN_SCHEMA, columns):
        buffers = [pa.py_buffer(validity) if validity is not None else None]
        if offsets is not None:
            buffers.append(pa.py_buffer(offsets))
        buffers.append(pa.py_buffer(data))
        arrays.append(pa.Array.from_buffers(field.type, rows, buffers, null_count=nulls))
    return pa.Table.from_arrays(arrays, schema=SPAN_SCHEMA)
