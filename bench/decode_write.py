"""In-process costs of the two ingest stages, each A/B in the same run (issue 2).

    python bench/decode_write.py                 # ~30 s
    python bench/decode_write.py --groups 80

1. decode: the Python reference decoder against the compiled fast path, on bench/otlp_load.py
   requests (10 traces x 10 LLM-agent spans each), microseconds per span.
2. insert: one 800-span group (8 requests) into `spans` on a fresh DuckDB file, with the JSON
   columns handed over as plain strings (DuckDB parses each value to check it) against
   `arrow.json` (taken as they are, what store/writer.py does), then COMMIT; alternating, median.
3. append: the whole of store.writer.append_spans + COMMIT per group, as the writer thread runs
   it (dedup through the key memory, spans, trace_index).

No server, no network: these isolate CPU per stage. bench/ingest.py measures the whole path.
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

from spanlake.ingest import native  # noqa: E402
from spanlake.ingest.decode import decode_protobuf, decode_protobuf_python  # noqa: E402
from spanlake.store.recent_keys import RecentSpanKeys  # noqa: E402
from spanlake.store.schema import MIGRATIONS  # noqa: E402
from spanlake.clock import utc_now  # noqa: E402
from spanlake.store.writer import _json_typed, append_spans  # noqa: E402

GROUP = 8  # requests per group commit: ~800 spans, what bench/ingest.py's writer sees


def fresh_store() -> duckdb.DuckDBPyConnection:
    path = Path(tempfile.mkdtemp(prefix="spanlake-decode-write-")) / "bench.duckdb"
    conn = duckdb.connect(str(path), config={"threads": "1", "checkpoint_threshold": "4GB"})
    for migration in MIGRATIONS:
        for statement in migration:
            conn.execute(statement)
    return conn


def per_span_us(fn, bodies: list[bytes], spans: int, rounds: int = 3) -> float:
    fn(bodies[0])
    best = float("inf")
    for _ in range(rounds):
        started = time.perf_counter()
        for body in bodies:
            fn(body)
        best = min(best, time.perf_counter() - started)
    return best / spans * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--groups", type=int, default=40, help="group commits per insert variant")
    args = parser.parse_args()
    pool = otlp_load.build_pool(64, seed=3)

    bodies = [template.render_now() for template in pool]
    spans = sum(decode_protobuf_python(body).spans.num_rows for body in bodies)
    python_us = per_span_us(decode_protobuf_python, bodies, spans)
    print(f"decode, {spans} spans in {len(bodies)} requests (best of 3 passes):")
    print(f"  python reference : {python_us:6.2f} us/span")
    if native.available():
        native_us = per_span_us(decode_protobuf, bodies, spans)
        print(f"  compiled path    : {native_us:6.2f} us/span   ({python_us / native_us:.1f}x less)")
    else:
        print("  compiled path    : not built (no C compiler at install?)")

    def group(index: int) -> pa.Table:
        tables = [decode_protobuf(pool[(index * GROUP + j) % len(pool)].render_now()).spans for j in range(GROUP)]
        batch = pa.concat_tables(tables)
        return batch.append_column("ingested_at", pa.array([utc_now()] * batch.num_rows, pa.timestamp("us")))

    stores = {"plain strings": fresh_store(), "arrow.json": fresh_store()}
    timings: dict[str, list[float]] = {name: [] for name in stores}
    for index in range(args.groups):
        batch = group(index)
        for name, conn in stores.items():
            rows = batch if name == "plain strings" else _json_typed(batch)
            started = time.perf_counter()
            conn.begin()
            conn.register("incoming", rows)
            conn.execute("INSERT INTO spans SELECT * FROM incoming")
            conn.unregister("incoming")
            conn.commit()
            timings[name].append(time.perf_counter() - started)
    rows = batch.num_rows
    print(f"insert + commit of one {rows}-span group, median of {args.groups} (alternating):")
    for name, values in timings.items():
        median = statistics.median(values[3:])
        print(f"  JSON as {name:13s}: {median * 1e3:6.1f} ms = {median / rows * 1e6:5.1f} us/span")

    conn = fresh_store()
    recent = RecentSpanKeys(0)
    appends = []
    for index in range(args.groups):
        tables = [decode_protobuf(pool[(index * GROUP + j) % len(pool)].render_now()).spans for j in range(GROUP)]
        started = time.perf_counter()
        conn.begin()
        append_spans(conn, tables, (), recent)
        conn.commit()
        appends.append(time.perf_counter() - started)
    median = statistics.median(appends[3:])
    print(f"append_spans + commit per group: {median * 1e3:.1f} ms = {median / rows * 1e6:.1f} us/span")
    print(f"(machine: {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f}, DuckDB {duckdb.__version__})")


if __name__ == "__main__":
    main()
