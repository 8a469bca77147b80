"""The loader's own cost: log records into the store, in-process, no server (issue 18).

    python bench/loader_slice.py                     # ~40 s: 8 slices of 25,000 spans
    python bench/loader_slice.py --slices 4 --profile

The sustained ingest rate is what the loader stores per second while receiving runs beside
it, so its CPU per span is the figure to move. This builds bench/otlp_load.py requests, decodes
and encodes them as the receiver does (Arrow IPC log records), then times
`ingest.loader._load_slice` through `Store.write_sync` on a fresh embedded store, one 25k-span
transaction per slice, exactly as the loader's transaction runs it (dedup through the writer's
key memory, spans, trace_index, the log position). It prints process CPU and wall time per
span for each slice and their medians; `--profile` adds the top functions by own time, to
tell Python's share from DuckDB's.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import otlp_load  # noqa: E402

from spanlake.ingest.batch_bytes import encode_batch  # noqa: E402
from spanlake.ingest.decode import decode_protobuf  # noqa: E402
from spanlake.ingest.loader import _load_slice  # noqa: E402
from spanlake.ingest.log import Record  # noqa: E402
from spanlake.store import Store, StoreConfig  # noqa: E402


def make_records(slices: int, slice_spans: int) -> list[list[Record]]:
    """Log records as the receiver appends them: one per export request (100 spans)."""
    pool = otlp_load.build_pool(64, seed=3)
    out, position, index = [], 0, 0
    for _ in range(slices):
        records, spans = [], 0
        while spans < slice_spans:
            table = decode_protobuf(pool[index % len(pool)].render_now()).spans
            payload = encode_batch(table)
            records.append(Record(position, position + len(payload), table.num_rows, time.time(), payload))
            position += len(payload)
            spans += table.num_rows
            index += 1
        out.append(records)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--slices", type=int, default=8)
    parser.add_argument("--slice-spans", type=int, default=25_000)
    parser.add_argument("--profile", action="store_true", help="print the top functions by own time")
    args = parser.parse_args()

    slices = make_records(args.slices, args.slice_spans)
    with tempfile.TemporaryDirectory(prefix="spanlake-loader-bench-") as tmp:
        store = Store.open(StoreConfig(url="duckdb", data_dir=Path(tmp), threads=1))
        profiler = cProfile.Profile() if args.profile else None
        cpu_us, wall_us = [], []
        try:
            for records in slices:
                spans = sum(r.spans for r in records)
                cpu0, wall0 = time.process_time(), time.perf_counter()
                if profiler:
                    profiler.enable()
                store.write_sync(_load_slice, "bench", records, [], store.recent_span_keys)
                if profiler:
                    profiler.disable()
                cpu_us.append((time.process_time() - cpu0) * 1e6 / spans)
                wall_us.append((time.perf_counter() - wall0) * 1e6 / spans)
                print(f"slice of {spans:,} spans: {cpu_us[-1]:.2f} us CPU/span, {wall_us[-1]:.2f} us wall/span", flush=True)
        finally:
            store.close()
    print(f"median: {statistics.median(cpu_us):.2f} us CPU/span, {statistics.median(wall_us):.2f} us wall/span "
          f"({args.slices} slices of {args.slice_spans:,})")
    if profiler:
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


if __name__ == "__main__":
    main()
