"""DuckDB's own cost of storing the bench's spans, with no server and no Python per span (issue 2).

    python bench/store_floor.py                    # ~1 min: 320k spans per variant, alternating
    python bench/store_floor.py --spans 160000 --rounds 1

The ingest target is a ratio to a parse-and-drop receiver, so it helps to know what the store
alone costs. Each variant appends the same decoded spans (bench/otlp_load.py requests, the
Arrow batch store/writer.py hands DuckDB) to a fresh file, one transaction per `--group`
spans, with the server's checkpoint threshold, then checkpoints what is left. It reports
CPU per span (process time: DuckDB runs on this thread, `threads=1` as the server on 2 cores)
and the longest commit, which is where an automatic checkpoint lands. A commit cannot overlap
a checkpoint, and a closed-loop client has at most `--group`-ish spans in flight, so
1 / (CPU per span) is the most a single DuckDB writer can acknowledge per second on one core.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import duckdb
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import otlp_load  # noqa: E402

from spanlake.ingest.decode import decode_protobuf  # noqa: E402
from spanlake.store.connection import EMBEDDED_CHECKPOINT_THRESHOLD  # noqa: E402
from spanlake.store.schema import MIGRATIONS  # noqa: E402
from spanlake.clock import utc_now  # noqa: E402
from spanlake.store.writer import _json_typed  # noqa: E402

VARIANTS = {
    "vacuum on (DuckDB default)": {"max_vacuum_tasks": "100"},
    "vacuum off (spanlake)": {"max_vacuum_tasks": "0"},
}


def spans_batch(count: int) -> pa.Table:
    pool = otlp_load.build_pool(64, seed=3)
    tables, rows, index = [], 0, 0
    while rows < count:
        table = decode_protobuf(pool[index % len(pool)].render_now()).spans
        tables.append(table)
        rows += table.num_rows
        index += 1
    batch = pa.concat_tables(tables).slice(0, count)
    batch = batch.append_column("ingested_at", pa.array([utc_now()] * batch.num_rows, pa.timestamp("us")))
    return _json_typed(batch).combine_chunks()


def run(batch: pa.Table, group: int, settings: dict[str, str]) -> dict[str, float]:
    path = Path(tempfile.mkdtemp(prefix="spanlake-store-floor-")) / "floor.duckdb"
    conn = duckdb.connect(
        str(path), config={"threads": "1", "checkpoint_threshold": EMBEDDED_CHECKPOINT_THRESHOLD, **settings}
    )
    for migration in MIGRATIONS:
        for statement in migration:
            conn.execute(statement)
    commits = []
    cpu = time.process_time()
    for offset in range(0, batch.num_rows, group):
        part = batch.slice(offset, group)  # noqa: F841 - read by the SQL below
        started = time.perf_counter()
        conn.begin()
        conn.execute("INSERT INTO spans SELECT * FROM part")
        conn.commit()
        commits.append(time.perf_counter() - started)
    conn.execute("CHECKPOINT")
    cpu = time.process_time() - cpu
    used = conn.execute(
        "SELECT used_blocks * block_size FROM pragma_database_size() WHERE database_name = current_database()"
    ).fetchall()[0][0]
    conn.close()
    for leftover in path.parent.iterdir():
        leftover.unlink()
    path.parent.rmdir()
    return {"us_per_span": cpu / batch.num_rows * 1e6, "worst_commit_ms": max(commits) * 1e3,
            "median_commit_ms": statistics.median(commits) * 1e3, "bytes_per_span": used / batch.num_rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=320_000, help="spans appended per variant")
    parser.add_argument("--group", type=int, default=1_600, help="spans per transaction (bench/ingest.py keeps 1,600 in flight)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of every variant")
    args = parser.parse_args()
    batch = spans_batch(args.spans)
    print(f"{batch.num_rows} spans, {batch.nbytes / batch.num_rows:.0f} Arrow bytes a span, "
          f"{args.group} a commit, checkpoint every {EMBEDDED_CHECKPOINT_THRESHOLD} of WAL")
    results: dict[str, list[dict[str, float]]] = {name: [] for name in VARIANTS}
    for _ in range(args.rounds):
        for name, settings in VARIANTS.items():
            results[name].append(run(batch, args.group, settings))
    for name, rounds in results.items():
        cpu = statistics.median(r["us_per_span"] for r in rounds)
        print(f"  {name:27s}: {cpu:5.1f} us/span of CPU (rounds: "
              f"{', '.join(format(r['us_per_span'], '.1f') for r in rounds)}) -> at most {1e6 / cpu:,.0f} spans/s "
              f"on one core; commit median {statistics.median(r['median_commit_ms'] for r in rounds):.1f} ms, "
              f"worst {max(r['worst_commit_ms'] for r in rounds):,.0f} ms; "
              f"{statistics.median(r['bytes_per_span'] for r in rounds):.0f} B/span used")
    print(f"(machine: {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}, DuckDB {duckdb.__version__})")


if __name__ == "__main__":
    main()
