"""`spanlake export-spans`: Hive-partitioned Parquet that DuckDB, pandas and Spark can read."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import httpx
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from lake_env import create_database, drop_database, postgres_lake_args, postgres_reachable
from otlp_builders import llm_trace, request
from server_process import ServerProcess

DAY_NS = 86_400 * 10**9


def export(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "spanlake", "export-spans", *args], capture_output=True, text=True, timeout=120
    )


def post(server: ServerProcess, spans: list) -> None:
    httpx.post(
        f"{server.http_url}/v1/traces", content=request(spans).SerializeToString(),
        headers={"content-type": "application/x-protobuf"}, timeout=30,
    ).raise_for_status()


def seed_three_days(server: ServerProcess) -> dict[str, int]:
    """5 traces of 3 spans on each of the last three days; returns the exact start ns by span id."""
    now = time.time_ns()
    starts: dict[str, int] = {}
    for day in range(3):
        spans = [s for _ in range(5) for s in llm_trace(3, start_ns=now - day * DAY_NS)[1]]
        post(server, spans)
        starts.update({s.span_id.hex(): s.start_time_unix_nano for s in spans})
    return starts


def test_export_of_a_stopped_embedded_store_is_readable_everywhere(make_server, tmp_path: Path):
    data = tmp_path / "data"
    server = make_server("--store", "duckdb", data_dir=data)  # embedded, whatever SPANLAKE_TEST_STORE says
    starts = seed_three_days(server)
    locked = export("--data", str(data), "--since", "0", "-o", str(tmp_path / "out"))
    assert locked.returncode == 1
    assert f"in use by a running server (PID {server.proc.pid})" in locked.stderr
    assert "Traceback" not in locked.stderr
    server.stop()

    out = tmp_path / "out"
    done = export("--data", str(data), "--since", "0", "-o", str(out))
    assert done.returncode == 0, done.stderr
    days = sorted(p.name for p in out.iterdir())
    assert len(days) == 3 and all(d.startswith("date=") for d in days)

    # DuckDB with hive partitioning; exact nanosecond instants survive beside microsecond times.
    rows = duckdb.sql(
        f"SELECT span_id, start_time_unix_nano, date FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true)"
    ).fetchall()
    assert {r[0]: r[1] for r in rows} == starts
    # pyarrow / pandas discover the partitions from the directory names.
    table = pads.dataset(str(out), partitioning="hive").to_table()
    assert table.num_rows == 45 and "date" in table.column_names
    frame = table.to_pandas()
    assert frame.groupby("date", observed=True).size().tolist() == [15, 15, 15]
    # Spark: no nanosecond timestamps and no JSON logical type in the files.
    schema = str(pq.ParquetFile(next(out.rglob("*.parquet"))).schema)
    assert "NANOS" not in schema and "JSON" not in schema
    assert "date" not in pq.read_schema(next(out.rglob("*.parquet"))).names  # only in the path

    again = export("--data", str(data), "--since", "0", "-o", str(out))  # re-export replaces the days
    assert again.returncode == 0
    assert duckdb.sql(f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet')").fetchone()[0] == 45


def test_export_names_bad_input_in_one_line(tmp_path: Path):
    missing = export("--data", str(tmp_path / "nothing"), "--since", "0", "-o", str(tmp_path / "o"))
    assert missing.returncode == 1 and "no store at" in missing.stderr and "Traceback" not in missing.stderr
    backwards = export("--since", "2030-01-01", "--until", "2020-01-01", "-o", str(tmp_path / "o"))
    assert backwards.returncode == 1 and "must be after --since" in backwards.stderr
    garbage = export("--since", "yesterday-ish", "-o", str(tmp_path / "o"))
    assert garbage.returncode == 1 and "--since 'yesterday-ish'" in garbage.stderr


@pytest.mark.skipif(not postgres_reachable(), reason="PostgreSQL is not reachable on 127.0.0.1:5432")
def test_a_lake_exports_while_its_server_runs(make_server, tmp_path: Path):
    dbname = create_database()
    try:
        args = postgres_lake_args(dbname, f"{tmp_path}/lake/")
        server = make_server(*args)
        starts = seed_three_days(server)
        out = tmp_path / "out"
        done = export(*args, "--since", "0", "-o", str(out))
        assert done.returncode == 0, done.stderr
        got = duckdb.sql(f"SELECT span_id, start_time_unix_nano FROM read_parquet('{out}/*/*.parquet')").fetchall()
        assert dict(got) == starts
        server.stop()
    finally:
        drop_database(dbname)
