"""Checkpoints on the embedded store: they keep happening once rows were updated, and vacuum is
off for ingest while deleted rows still give their space back (store/vacuum.py)."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import time

import httpx
import yaml

from otlp_builders import llm_trace, request
from spanlake.store import Store
from spanlake.store.connection import StoreConfig
from spanlake.store.scores import upsert_scores
from spanlake.store.vacuum import checkpoint

SCORES = 200_000  # two of DuckDB's 122,880-row row groups, so there is something to merge


def used_bytes(store: Store) -> int:
    return store.read_sync(lambda cur: cur.execute(
        "SELECT used_blocks * block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchall()[0][0])


def plain_checkpoint(cur) -> None:
    cur.execute("CHECKPOINT")


def vacuum_tasks(store: Store) -> int:
    return store.read_sync(lambda cur: cur.execute("SELECT current_setting('max_vacuum_tasks')").fetchall()[0][0])


def test_replaced_scores_give_space_back_even_after_an_automatic_checkpoint(tmp_path):
    store = Store.open(StoreConfig(data_dir=tmp_path))
    try:
        assert vacuum_tasks(store) == 0  # what every ingest commit's automatic checkpoint runs with
        store.write_sync(lambda cur: cur.execute(
            "INSERT INTO scores (id, trace_id, span_id, name, value, label, data_type, source, scorer, explanation, "
            "metadata, batch_id, run_id, run_result_id, created_at) SELECT uuid()::VARCHAR, printf('%032x', i), NULL, 'quality', 1.0, NULL, 'numeric', "
            "'api', NULL, repeat('first verdict ', 20) || i::VARCHAR, NULL, NULL, NULL, NULL, now()::TIMESTAMP "
            f"FROM range({SCORES}) r(i)"
        ))
        asyncio.run(store.maintain(plain_checkpoint))
        before = used_bytes(store)

        # Re-score every other trace: half the old rows are deleted, scattered over both row groups.
        now = dt.datetime(2026, 12, 6)
        again = [
            {"id": f"new-{i}", "trace_id": f"{i:032x}", "name": "quality", "value": 0.0, "data_type": "numeric",
             "source": "api", "explanation": "second verdict " * 20 + str(i), "created_at": now}
            for i in range(0, SCORES, 2)
        ]
        assert store.write_sync(upsert_scores, again) == len(again)
        # DuckDB refuses to CHECKPOINT after an UPDATE (the score write's lock row) until another
        # statement has run; in a server, readers do that all the time.
        assert vacuum_tasks(store) > 0  # the delete asked for it
        # An automatic checkpoint (any ingest commit past the WAL threshold) may come before ours.
        asyncio.run(store.maintain(plain_checkpoint))
        assert vacuum_tasks(store) > 0  # and it stays on until a checkpoint of ours has run
        asyncio.run(store.maintain(checkpoint))  # what the maintenance component runs
        after = used_bytes(store)

        live = store.read_sync(lambda cur: cur.execute("SELECT count(*) FROM scores").fetchall()[0][0])
        assert live == SCORES
        # Without vacuum the deleted half stays in the file: ~1.5x the space for the same rows.
        assert after < before * 1.2, (before, after)
        assert vacuum_tasks(store) == 0  # ingest goes on without it
    finally:
        store.close()


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


def wal_bytes(server) -> float:
    found = re.search(r"^spanlake_store_wal_bytes ([0-9.e+]+)$", httpx.get(f"{server.http_url}/metrics").text, re.M)
    assert found, "no spanlake_store_wal_bytes on /metrics"
    return float(found.group(1))


def test_the_wal_empties_at_the_next_checkpoint_after_scores_and_reads(make_server, tmp_path):
    config = tmp_path / "spanlake.yaml"
    config.write_text(yaml.safe_dump({"compaction": {"checkpoint_interval_seconds": 2}}))
    server = make_server("--store", "duckdb", "--config", str(config))
    trace_id, spans = llm_trace(3)
    httpx.post(f"{server.http_url}/v1/traces", content=request(spans).SerializeToString(),
               headers={"content-type": "application/x-protobuf"}).raise_for_status()
    score = {"trace_id": trace_id, "name": "quality", "value": 1, "source": "api"}
    httpx.post(f"{server.http_url}/api/scores", json=score).raise_for_status()  # UPDATE + DELETE
    assert httpx.get(f"{server.http_url}/api/traces/{trace_id}").status_code == 200
    assert wal_bytes(server) > 0  # the commits above, not checkpointed yet
    deadline = time.monotonic() + 15
    while wal_bytes(server) > 0:  # before the fix, an open read kept every checkpoint failing
        assert time.monotonic() < deadline, server.output()[-3000:]
        time.sleep(0.2)
    assert "maintenance failed" not in server.output()
