"""64-bit hashes of span keys, computed over whole Arrow columns at once.

The loader's dedup asks, for every span of a 25k-span slice, whether its (trace_id, span_id)
was stored lately. Building that key as Python tuples cost more than a third of the slice's
CPU outside DuckDB (bench/loader_slice.py), all of it holding the GIL the receiver needs. The
ids arrive as fixed-width hex text (the decoders check their byte lengths), so their values
can be read straight from the Arrow buffers with numpy: a few nanoseconds per span.

A hash only ever proves that a key is *new* (distinct hashes mean distinct keys); equal hashes
send the span to an exact lookup. So a row whose ids are not plain hex gets no hash at all
(`valid` is False): it is always looked up, and never vouched for. When any id in a column has
another width (or is null) no row of it gets a hash: the decoders never produce one, and the
slow exact path is then the safe one.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa

TRACE_HEX = 32
SPAN_HEX = 16

# Hex digit value per byte; 255 marks a byte that is not a hex digit.
_NIBBLE = np.full(256, 255, dtype=np.uint8)
for _i, _c in enumerate(b"0123456789abcdef"):
    _NIBBLE[_c] = _i
for _i, _c in enumerate(b"ABCDEF"):
    _NIBBLE[_c] = 10 + _i
_SHIFTS = (np.arange(15, -1, -1, dtype=np.uint64) * np.uint64(4))
# Odd 64-bit multipliers: mix the trace's two halves and the span id into one value.
_MIX_HIGH = np.uint64(0x9E3779B97F4A7C15)
_MIX_SPAN = np.uint64(0xC2B2AE3D27D4EB4F)


@dataclass(frozen=True)
class KeyHashes:
    hashes: np.ndarray  # uint64, one per row; meaningless where not valid
    valid: np.ndarray  # bool, one per row

    @property
    def all_valid(self) -> bool:
        return bool(self.valid.all())


def key_hashes(trace_ids: pa.ChunkedArray | pa.Array, span_ids: pa.ChunkedArray | pa.Array) -> KeyHashes:
    trace_words, trace_ok = _hex_words(trace_ids, TRACE_HEX)
    span_words, span_ok = _hex_words(span_ids, SPAN_HEX)
    with np.errstate(over="ignore"):
        hashes = (trace_words[:, 0] * _MIX_HIGH) ^ trace_words[:, 1] ^ (span_words[:, 0] * _MIX_SPAN)
    return KeyHashes(hashes, trace_ok & span_ok)


def _hex_words(column: pa.ChunkedArray | pa.Array, width: int) -> tuple[np.ndarray, np.ndarray]:
    """Each value's hex digits as 64-bit words (width // 16 per row), and which rows were hex."""
    array = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    rows = len(array)
    words = width // 16
    if array.type != pa.string() or rows == 0:
        return np.zeros((rows, words), np.uint64), np.zeros(rows, bool)
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int32, count=rows + 1, offset=array.offset * 4)
    if array.null_count or not (np.diff(offsets) == width).all():
        return np.zeros((rows, words), np.uint64), np.zeros(rows, bool)
    text = memoryview(array.buffers()[2])[int(offsets[0]) : int(offsets[0]) + rows * width]
    try:
        # One C-level pass over the whole column, big-endian words straight from its bytes.
        raw = bytes.fromhex(bytes(text).decode("ascii"))
    except ValueError:  # a non-hex character somewhere: find the rows, per digit
        return _hex_words_checked(np.frombuffer(text, dtype=np.uint8), rows, words)
    return np.frombuffer(raw, dtype=">u8").astype(np.uint64).reshape(rows, words), np.ones(rows, bool)


def _hex_words_checked(text: np.ndarray, rows: int, words: int) -> tuple[np.ndarray, np.ndarray]:
    nibbles = _NIBBLE[text].reshape(rows, words, 16)
    valid = (nibbles != 255).all(axis=(1, 2))
    values = np.bitwise_or.reduce(nibbles.astype(np.uint64) << _SHIFTS, axis=2)
    return values, valid
