"""Checkpoints on the embedded store keep happening once rows were updated."""

from __future__ import annotations

import datetime as dt

from spanlake.store import Store
from spanlake.store.connection import StoreConfig
from spanlake.store.scores import upsert_scores


def test_automatic_checkpoints_go_on_after_an_update_and_an_unfinished_read(tmp_path):
    store = Store.open(StoreConfig(data_dir=tmp_path))
    try:
        store.write_sync(lambda cur: cur.execute("SET checkpoint_threshold = '1MB'"))
        # A read that takes the first row only, as by-id lookups do, then the reader goes idle.
        assert store.read_sync(lambda cur: cur.execute("SELECT count(*) FROM spans").fetchone()[0]) == 0
        score = {"id": "s1", "trace_id": "ab" * 16, "name": "quality", "value": 1.0, "data_type": "numeric",
                 "source": "api", "created_at": dt.datetime(2026, 12, 6)}
        store.write_sync(upsert_scores, [score])  # UPDATEs the uniqueness lock row
        for _ in range(10):  # ~5 MB of WAL each
            store.write_sync(lambda cur: cur.execute(
                "INSERT INTO scores (id, explanation) SELECT i::VARCHAR, repeat('x', 500) FROM range(10000) r(i)"
            ))
        wal = tmp_path / "spanlake.duckdb.wal"
        # An open transaction older than the UPDATE made DuckDB skip every automatic checkpoint.
        assert not wal.exists() or wal.stat().st_size < 8 * 2**20, wal.stat().st_size
    finally:
        store.close()
