"""Cost of "is this span captured into the dataset already?" as datasets grow (capture rules).

Every commit with rule matches asks it for its picks. A real store file (migrated schema) gets
N current items whose source spans started in time order, as ingest-time capture appends them;
then the check runs for 300 picks of spans that started in the last 5 s, three ways:

  full scan   the check before source_start_time: EXISTS over every current item
  zone maps   store.dataset_capture's bounded sources, as a correlated EXISTS
  anti join   the same bounded sources in an ANTI JOIN (what capture_many runs)

    python bench/capture_dedup.py                      # 0, 100k, 1M, 3M items
    python bench/capture_dedup.py --items 0,1000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from spanlake.store.dataset_capture import _captured_sources
from spanlake.store.migrate import migrate

BASE_NS = 1_700_000_000_000_000_000
STEP_NS = 1_000_000  # one item per millisecond of span start time
PICKS = 300


def _best_ms(con: duckdb.DuckDBPyConnection, sql: str, params: list, repeat: int = 5) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        con.execute(sql, params).fetchall()
        best = min(best, time.perf_counter() - started)
    return best * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", default="0,100000,1000000,3000000", help="comma-separated item counts")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.items.split(","))

    path = Path(tempfile.mkdtemp(prefix="spanlake-capture-dedup-")) / "bench.duckdb"
    con = duckdb.connect(str(path), config={"threads": "1"})
    migrate(con)
    print(f"{PICKS} picks per check, one DuckDB thread, {path}")
    print(f"{'items':>10} {'full scan':>12} {'zone maps':>12} {'anti join':>12}")
    for n in counts:
        have = con.execute("SELECT count(*) FROM dataset_items").fetchone()[0]
        if n > have:
            con.execute(
                f"""
                INSERT INTO dataset_items
                SELECT uuid()::VARCHAR, 'ds-' || (i % 50), '"x"', NULL, NULL, NULL, NULL,
                       md5(i::VARCHAR), left(md5((i + 7)::VARCHAR), 16), now(), now(), NULL, 'added',
                       make_timestamp_ns({BASE_NS} + i * {STEP_NS})
                FROM range({have}, {n}) r(i)
                """
            )
            con.execute("CHECKPOINT")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE w AS SELECT 'ds-' || (i % 50) AS dataset_id, "
            "md5((i + 100000000)::VARCHAR) AS trace_id, left(md5(i::VARCHAR), 16) AS span_id "
            f"FROM range({PICKS}) r(i)"
        )
        hi = BASE_NS + n * STEP_NS + 10**9
        lo = hi - 5 * 10**9
        match = "d.dataset_id = w.dataset_id AND d.source_span_id = w.span_id AND d.source_trace_id = w.trace_id"
        full = _best_ms(
            con,
            f"SELECT w.*, EXISTS (SELECT 1 FROM dataset_items d WHERE d.valid_to IS NULL AND {match}) FROM w",
            [],
        )
        sources, params = _captured_sources(lo, hi)
        zone = _best_ms(con, f"SELECT w.*, EXISTS (SELECT 1 FROM {sources} d WHERE {match}) FROM w", params)
        anti = _best_ms(con, f"SELECT w.* FROM w ANTI JOIN {sources} d ON {match}", params)
        print(f"{n:>10,} {full:>9.1f} ms {zone:>9.1f} ms {anti:>9.1f} ms")
    con.close()


if __name__ == "__main__":
    main()
