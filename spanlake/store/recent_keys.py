"""Which span keys this process wrote lately: lets the writer skip the stored-span lookup.

Deduplicating by an anti-join against `spans` costs a scan of every stored row in the batch's
time range on each commit (most of a commit's CPU, bench/ingest.py). Nearly every incoming span
is new, and a process that is the store's only writer can prove it without reading the table:

    invariant: every stored span whose start_time is at or above `floor_ns` has the hash of its
    (trace_id, span_id) in the bucket of its start_time.

So a span whose start is above the floor and whose hash is absent was never stored. Only the
others (a hash hit, which is a retry or a 64-bit collision, or a start below the floor) are
"suspects" the writer looks up in `spans`, exactly. Keys are remembered before their commit:
a key of a transaction that rolled back is a false hit, which costs a lookup and loses nothing.

Memory is bounded by evicting whole buckets, oldest start time first, and raising the floor
past them: 600k keys hold ~30 s of history at 20k spans/s, ten minutes at 1k/s. Bucketing by
start time (not arrival) means a client with a clock far in the future does not push the floor
up for everyone else; many such clients can fill the memory with future buckets, which costs
lookups (the slow path), never correctness.

The same proof spares capture rules their "captured into this dataset already?" query: an item
made from a stored span needs that span stored first, so a span the memory clears was never the
source of a captured item. Items can also be given source ids by hand or by an import, for spans
this store never held; `note_item_sources` then marks every span starting before now plus
CLOCK_SKEW_TOLERANCE_US as a possible source, to be checked, and so does the newest such item at
open (a restart).

Only sound with a single writer: an embedded DuckDB file (its lock keeps other processes out).
On a lake, other replicas append too, so the writer gets no RecentSpanKeys and checks every span.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import Union

import numpy as np

from spanlake.store import commit_hooks

KeyArray = Union[np.ndarray, Sequence[int]]

# start_time_ns >> 30: buckets of ~1.07 s. Eviction drops a whole bucket, so a bucket must be a
# small share of the capacity: at 20k spans/s a 68.7 s bucket outgrew it and the writer's
# memory emptied at once, sending every span to the table lookup for the rest of the bucket.
BUCKET_SHIFT = 30
DEFAULT_CAPACITY = 600_000  # keys; ~80 MB of Python ints in sets (tracemalloc)

# How far ahead of this server a client's clock may run while its new spans are still checked
# against every item that could name them as its source.
CLOCK_SKEW_TOLERANCE_US = 3600 * 10**6


class RecentSpanKeys:
    def __init__(
        self,
        max_stored_start_ns: int | None,
        capacity: int = DEFAULT_CAPACITY,
        item_sources_until_us: int | None = None,
    ) -> None:
        """Start empty, with the floor above every stored span (zero for an empty store);
        `item_sources_until_us` is the newest creation of an item that names a source span."""
        self._floor_bucket = 0 if max_stored_start_ns is None else _bucket_of(max_stored_start_ns) + 1
        self._item_sources_floor_ns = 0
        if item_sources_until_us is not None:
            self.note_item_sources(item_sources_until_us * 1000)
        self._buckets: dict[int, set[int]] = {}
        self._size = 0
        self._capacity = capacity

    def __len__(self) -> int:
        return self._size

    @property
    def floor_ns(self) -> int:
        return self._floor_bucket << BUCKET_SHIFT

    def suspects(self, hashes: KeyArray, starts_ns: KeyArray, valid: np.ndarray | None = None) -> list[int]:
        """Positions of the spans that may already be stored (the rest certainly are not).

        `valid` False marks a span with no usable hash (span_keys.py): always a suspect."""
        hashes, buckets = _as_hashes(hashes), _as_buckets(starts_ns)
        suspect = buckets < self._floor_bucket
        if valid is not None:
            suspect |= ~valid
        for bucket, rows in _rows_by_bucket(buckets, ~suspect):
            stored = self._buckets.get(bucket)
            if not stored:
                continue
            values = hashes[rows].tolist()
            if stored.isdisjoint(values):  # the usual case, one C-level pass
                continue
            hit = np.fromiter((v in stored for v in values), bool, len(values))
            suspect[rows[hit]] = True
        return np.flatnonzero(suspect).tolist()

    def remember(self, hashes: KeyArray, starts_ns: KeyArray, valid: np.ndarray | None = None) -> None:
        """Record keys about to be committed (call before the commit, never only after)."""
        hashes, buckets = _as_hashes(hashes), _as_buckets(starts_ns)
        keep = buckets >= self._floor_bucket  # below the floor every span is looked up anyway
        if valid is not None:
            keep &= valid
        for bucket, rows in _rows_by_bucket(buckets, keep):
            stored = self._buckets.get(bucket)
            if stored is None:
                stored = self._buckets[bucket] = set()
            before = len(stored)
            stored.update(hashes[rows].tolist())
            self._size += len(stored) - before
        self._evict()

    def note_item_sources(self, created_ns: int) -> None:
        """Items created at `created_ns` name source spans this store may never have held."""
        floor = created_ns + CLOCK_SKEW_TOLERANCE_US * 1000
        self._item_sources_floor_ns = max(self._item_sources_floor_ns, floor)

    def may_be_item_sources(self, starts_ns: KeyArray) -> bool:
        """Whether an item given source ids from outside the store may name one of these spans."""
        return len(starts_ns) > 0 and int(np.min(starts_ns)) < self._item_sources_floor_ns

    def _evict(self) -> None:
        while self._size > self._capacity and self._buckets:
            oldest = min(self._buckets)
            self._size -= len(self._buckets.pop(oldest))
            self._floor_bucket = max(self._floor_bucket, oldest + 1)


def _bucket_of(start_ns: int) -> int:
    return start_ns >> BUCKET_SHIFT


def _as_hashes(hashes: KeyArray) -> np.ndarray:
    if isinstance(hashes, np.ndarray):
        return hashes.astype(np.uint64, copy=False)
    return np.array(hashes, dtype=np.int64).astype(np.uint64)  # Python hash() values may be negative


def _as_buckets(starts_ns: KeyArray) -> np.ndarray:
    return np.asarray(starts_ns, dtype=np.int64) >> BUCKET_SHIFT


def _rows_by_bucket(buckets: np.ndarray, selected: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(bucket, row positions) for the selected rows; a slice covers a few buckets, so one sort."""
    rows = np.flatnonzero(selected)
    if not len(rows):
        return
    order = rows[np.argsort(buckets[rows], kind="stable")]
    ordered = buckets[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts.tolist(), ends.tolist()):
        yield int(ordered[start]), order[start:end]


def note_item_sources() -> None:
    """Call inside a write that gives items source span ids from outside the store (added by
    hand, imported): the writer's memory then stops vouching for spans that may be their sources."""
    memory = commit_hooks.context()
    if isinstance(memory, RecentSpanKeys):
        memory.note_item_sources(time.time_ns())
