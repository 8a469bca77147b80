"""Cost of "is this span captured into the dataset already?" as datasets grow (capture rules).

Every commit with rule matches asks it for its picks. A real store file (migrated schema) gets
N current items created evenly over the past --days days, in creation order as capture appends
them; then the check runs for 300 picks of spans that started in the last 5 s, two ways:

  full scan   EXISTS over every current item (the check before)
  committed   an ANTI JOIN over the items created since the picks' spans started (less the
              clock-skew tolerance), the window capture_picks checks, which zone maps narrow

    python bench/capture_dedup.py                      # 0, 100k, 1M, 3M items over 30 days
    python bench/capture_dedup.py --items 0,1000000 --days 1
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import duckdb

from spanlake.store.dataset_capture import recent_item_sources_sql
from spanlake.store.recent_keys import CLOCK_SKEW_TOLERANCE_US
from spanlake.store.migrate import migrate

NOW_US = 1_700_000_000_000_000
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
    parser.add_argument("--days", type=float, default=30.0, help="the items were created over this many days")
    args = parser.parse_args()
    counts = sorted(int(n) for n in args.items.split(","))
    span_us = int(args.days * 86400 * 10**6)

    path = Path(tempfile.mkdtemp(prefix="spanlake-capture-dedup-")) / "bench.duckdb"
    con = duckdb.connect(str(path), config={"threads": "1"})
    migrate(con)
    print(f"{PICKS} picks per check, one DuckDB thread, items created over {args.days:g} days "
          f"(the check reads the last {CLOCK_SKEW_TOLERANCE_US / 3.6e9:g} h of them), {path}")
    print(f"{'items':>10} {'full scan':>12} {'committed':>12}")
    for n in counts:
        con.execute("DELETE FROM dataset_items")
        if n:
            step_us = span_us // n
            con.execute(
                f"""
                INSERT INTO dataset_items
                SELECT uuid()::VARCHAR, 'ds-' || (i % 50), '"x"', NULL, NULL, NULL, NULL,
                       md5(i::VARCHAR), left(md5((i + 7)::VARCHAR), 16),
                       make_timestamp({NOW_US - span_us} + i * {step_us}),
                       make_timestamp({NOW_US - span_us} + i * {step_us}), NULL, 'added'
                FROM range({n}) r(i)
                """
            )
        con.execute("CHECKPOINT")
        newest_us = NOW_US
        con.execute(
            "CREATE OR REPLACE TEMP TABLE w AS SELECT 'ds-' || (i % 50) AS dataset_id, "
            "md5((i + 100000000)::VARCHAR) AS trace_id, left(md5(i::VARCHAR), 16) AS span_id, "
            f"make_timestamp({newest_us} - 5000000 + i) AS start_time FROM range({PICKS}) r(i)"
        )
        match = "d.dataset_id = w.dataset_id AND d.source_span_id = w.span_id AND d.source_trace_id = w.trace_id"
        full = _best_ms(
            con,
            f"SELECT w.*, EXISTS (SELECT 1 FROM dataset_items d WHERE d.valid_to IS NULL AND {match}) FROM w",
            [],
        )
        sources, params = recent_item_sources_sql(newest_us - 5000000)  # the earliest pick start
        committed = _best_ms(con, f"SELECT w.* FROM w ANTI JOIN {sources} d ON {match}", params)
        print(f"{n:>10,} {full:>9.1f} ms {committed:>9.1f} ms")
    con.close()


if __name__ == "__main__":
    main()
