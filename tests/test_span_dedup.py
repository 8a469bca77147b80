"""Span dedup in the writer: the single writer's key memory must never let a stored span in twice.

These run the real writer on real DuckDB files; the keys memory (store/recent_keys.py) decides
which spans are looked up in `spans`, so every case here is one where a wrong "certainly new"
would store a duplicate: retries, evicted buckets, a restart, a rolled-back commit.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import pyarrow as pa
import pytest

from otlp_builders import new_span_id, new_trace_id, request, span
from spanlake.ingest.decode import decode_protobuf
from spanlake.store import Store
from spanlake.store.connection import StoreConfig
from spanlake.store.dataset_items import NewItem, insert_items
from spanlake.store.ids import uuid7
from spanlake.store.recent_keys import BUCKET_SHIFT, RecentSpanKeys
from spanlake.store.span_keys import key_hashes
from spanlake.store.writer import append_spans

MINUTE_NS = 60 * 10**9


def batch(starts_ns: list[int]):
    """One request of spans, one per start time, each in a trace of its own."""
    spans = [span(new_trace_id(), new_span_id(), f"op-{i}", start_ns=t) for i, t in enumerate(starts_ns)]
    return decode_protobuf(request(spans).SerializeToString()).spans


def stored_count(store: Store) -> int:
    return store.read_sync(lambda cur: cur.execute("SELECT count(*) FROM spans").fetchone()[0])


def append(store: Store, table, keys: RecentSpanKeys | None):
    return store.write_sync(append_spans, [table], (), keys)


@pytest.fixture
def store(tmp_path: Path):
    s = Store.open(StoreConfig(data_dir=tmp_path))
    yield s
    s.close()


def test_retry_of_a_committed_batch_is_stored_once(store):
    first = batch([time.time_ns() + i for i in range(50)])
    assert append(store, first, store.recent_span_keys).stored == 50
    again = append(store, first, store.recent_span_keys)
    assert (again.received, again.stored) == (50, 0)
    assert stored_count(store) == 50


def test_copies_inside_one_group_are_stored_once(store):
    table = batch([time.time_ns()])
    result = store.write_sync(append_spans, [table, table, table], (), store.recent_span_keys)
    assert (result.received, result.stored) == (3, 1)


def test_spans_below_an_evicted_floor_are_looked_up(store):
    """A tiny memory evicts old buckets; retries of their spans must still be found in the table."""
    keys = RecentSpanKeys(None, capacity=20)
    now = time.time_ns()
    old = batch([now - 30 * MINUTE_NS + i for i in range(20)])
    append(store, old, keys)
    for minute in range(1, 6):  # newer buckets push the old ones out
        append(store, batch([now - (30 - 5 * minute) * MINUTE_NS + i for i in range(20)]), keys)
    assert keys.floor_ns > now - 30 * MINUTE_NS  # the first bucket was evicted
    assert len(keys) <= 20
    assert append(store, old, keys).stored == 0
    assert stored_count(store) == 120


def test_far_future_spans_do_not_lift_the_floor(store):
    keys = RecentSpanKeys(None, capacity=20)
    now = time.time_ns()
    append(store, batch([now + 10 * 365 * 24 * 60 * MINUTE_NS]), keys)  # a client clock years ahead
    for minute in range(4):
        append(store, batch([now + minute * MINUTE_NS * 2 + i for i in range(10)]), keys)
    assert keys.floor_ns < now + 10 * MINUTE_NS


def test_after_a_restart_every_stored_span_is_below_the_floor(tmp_path: Path):
    now = time.time_ns()
    table = batch([now - MINUTE_NS, now])
    first = Store.open(StoreConfig(data_dir=tmp_path))
    append(first, table, first.recent_span_keys)
    first.close()

    second = Store.open(StoreConfig(data_dir=tmp_path))
    try:
        assert second.recent_span_keys.floor_ns > now
        assert append(second, table, second.recent_span_keys).stored == 0
        assert append(second, batch([now + 1]), second.recent_span_keys).stored == 1
        assert stored_count(second) == 3
    finally:
        second.close()


def test_keys_of_a_rolled_back_commit_do_not_hide_the_retry(store):
    """Keys are remembered before the commit; when it fails, the retry must still be stored."""
    table = batch([time.time_ns() + i for i in range(5)])

    def fail_after_append(cur):
        append_spans(cur, [table], (), store.recent_span_keys)
        raise RuntimeError("commit never happens")

    with pytest.raises(RuntimeError):
        store.write_sync(fail_after_append)
    assert stored_count(store) == 0
    assert append(store, table, store.recent_span_keys).stored == 5


def test_memory_suspects_only_hits_and_spans_below_the_floor():
    keys = RecentSpanKeys((5 << BUCKET_SHIFT) + 7)  # the newest stored span is in bucket 5
    assert keys.floor_ns == 6 << BUCKET_SHIFT
    inside = 6 << BUCKET_SHIFT
    keys.remember([111, 222], [inside, inside + 1])
    # a hit, a miss in a known bucket, a span in an unseen newer bucket, one below the floor
    assert keys.suspects([222, 333, 444, 555], [inside + 1, inside, 9 << BUCKET_SHIFT, 5 << BUCKET_SHIFT]) == [0, 3]


def test_a_steady_stream_never_falls_below_the_floor():
    """Eviction drops whole buckets; they must be small next to the memory, or a busy writer
    empties its memory at once and looks every span up until the next bucket starts."""
    keys = RecentSpanKeys(None, capacity=5_000)  # scaled down: 600k keys against 20k spans/s
    start = 1_700_000_000 * 10**9
    step = 50 * 10**6  # batches of 100 spans 50 ms apart: 2,000 spans/s for 20 s
    looked_up = 0
    for batch_no in range(400):
        hashes = [hash((batch_no, i)) for i in range(100)]
        starts = [start + batch_no * step + i for i in range(100)]
        looked_up += len(keys.suspects(hashes, starts))
        keys.remember(hashes, starts)
    assert looked_up == 0
    assert 2_500 < len(keys) <= 5_000  # a bucket at a time is evicted, not the whole memory


class _RecordingStage:
    """A commit stage that notes, for each commit, whether the writer vouched its spans unseen."""

    def __init__(self) -> None:
        self.unseen: list[bool] = []

    def start(self, batch):
        def finish(cur, new) -> None:
            self.unseen.append(new.unseen)

        return finish


def test_spans_are_unseen_only_when_nothing_can_refer_to_them(tmp_path: Path):
    """Capture rules skip their "captured already?" query for unseen spans, so the writer must
    withhold the word for a retry, and for any span an item may name as its source."""
    first = Store.open(StoreConfig(data_dir=tmp_path))
    stage = _RecordingStage()
    now = time.time_ns()

    def commit(store: Store, *tables) -> None:
        store.write_sync(append_spans, list(tables), [stage], store.recent_span_keys)

    fresh = batch([now, now + 1])
    commit(first, fresh)
    commit(first, fresh.slice(0, 1), batch([now + 2]))  # a retry travels with a new span
    item = NewItem(id=uuid7(), input='"by hand"', source_trace_id=new_trace_id(), source_span_id=new_span_id())
    first.write_sync(insert_items, "some-dataset", [item], dt.datetime.now(dt.UTC).replace(tzinfo=None))
    commit(first, batch([now + 59 * MINUTE_NS]))  # its span may arrive late, or from a clock ahead
    first.close()
    assert stage.unseen == [True, False, False]

    second = Store.open(StoreConfig(data_dir=tmp_path))
    try:
        # Above every stored span's start, so only the item (in the store now, not in memory) can
        # make it suspect.
        commit(second, batch([now + 59 * MINUTE_NS + 30 * 10**9]))
        commit(second, batch([now + 62 * MINUTE_NS]))  # beyond the hour of clock tolerance
    finally:
        second.close()
    assert stage.unseen == [True, False, False, False, True]


def with_ids(table, trace_ids: list[str], span_ids: list[str]):
    table = table.set_column(table.schema.get_field_index("trace_id"), "trace_id", pa.array(trace_ids, pa.string()))
    return table.set_column(table.schema.get_field_index("span_id"), "span_id", pa.array(span_ids, pa.string()))


def test_key_hashes_read_hex_ids_and_refuse_anything_else():
    trace, span_id = "0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331"
    keys = key_hashes(
        pa.array([trace, trace, trace, trace.upper(), "not-hex" * 4 + "abcd"]),
        pa.array([span_id, span_id, "b7ad6b7169203332", span_id, span_id]),
    )
    assert keys.hashes[0] == keys.hashes[1] != keys.hashes[2]
    assert keys.valid.tolist() == [True, True, True, True, False]
    # A column with an id of another width, or a null, gives no row a hash.
    assert not key_hashes(pa.array([trace, trace]), pa.array([span_id, span_id[:14]])).valid.any()
    assert not key_hashes(pa.array([trace]), pa.array([None], pa.string())).valid.any()


def test_spans_whose_hashes_collide_are_both_stored(store):
    """Equal hashes only send spans to the exact lookup; two different keys are two spans."""
    span_a, span_b = "0000000000000001", "0000000000000002"
    high, low = 0x0AF7651916CD43DD, 0x8448EB211C80319C
    # The hash is (high * M1) ^ low ^ (span * M2): a second low word that cancels the span's
    # change gives a different key with the same hash.
    mix = 0xC2B2AE3D27D4EB4F
    other_low = low ^ ((1 * mix) % 2**64) ^ ((2 * mix) % 2**64)
    trace_a, trace_b = f"{high:016x}{low:016x}", f"{high:016x}{other_low:016x}"
    keys = key_hashes(pa.array([trace_a, trace_b]), pa.array([span_a, span_b]))
    assert keys.hashes[0] == keys.hashes[1]
    now = time.time_ns()
    table = with_ids(batch([now, now + 1]), [trace_a, trace_b], [span_a, span_b])
    assert append(store, table, store.recent_span_keys).stored == 2
    assert append(store, table, store.recent_span_keys).stored == 0
    assert stored_count(store) == 2


def test_spans_with_unusual_ids_are_looked_up_not_vouched_for(store):
    """Ids the hash cannot read (not hex of the usual width) are deduplicated by the table."""
    now = time.time_ns()
    table = with_ids(batch([now, now + 1]), [new_trace_id(), new_trace_id()], ["span-one", "span-two"])
    assert append(store, table, store.recent_span_keys).stored == 2
    assert append(store, table, store.recent_span_keys).stored == 0
    assert stored_count(store) == 2
