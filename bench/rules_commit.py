"""The writer's commit with rules against without, in process, interleaved (issue 21).

    python bench/rules_commit.py --rules bench/rules_scoring.yaml --rules bench/rules_capture_tools.yaml

What a rules file adds to the one serial stage of ingest: store.writer.append_spans + COMMIT of
~800-span groups of bench/otlp_load.py's agent traces, with the capture stage of each rules
file, every store a fresh DuckDB file. The variants take turns on the same group, so a shared
machine's load drifts over all of them alike. No server, no scoring engine: a scoring rule's
share here is its evaluation and its queue INSERT; bench/rules_overhead.py measures the whole
server, background scoring included.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import decode_write  # noqa: E402
import otlp_load  # noqa: E402

from spanlake.capture.counters import RuleCounters  # noqa: E402
from spanlake.capture.rates import HourlyLimiter  # noqa: E402
from spanlake.capture.rules import RuleSet, load_rules  # noqa: E402
from spanlake.capture.stage import CaptureStage  # noqa: E402
from spanlake.ingest.decode import decode_protobuf  # noqa: E402
from spanlake.store.recent_keys import RecentSpanKeys  # noqa: E402
from spanlake.store.writer import append_spans  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=Path, action="append", required=True, help="rules file (repeatable)")
    parser.add_argument("--groups", type=int, default=60, help="group commits per variant")
    args = parser.parse_args()
    pool = otlp_load.build_pool(64, seed=3)
    variants = {"none": RuleSet(), **{path.name: load_rules(path) for path in args.rules}}
    runs = {}
    for name, ruleset in variants.items():
        stage = CaptureStage(lambda ruleset=ruleset: ruleset, RuleCounters(), HourlyLimiter())
        runs[name] = (decode_write.fresh_store(), stage, RecentSpanKeys(0), [])
    for index in range(args.groups):
        tables = [decode_protobuf(pool[(index * 8 + j) % len(pool)].render_now()).spans
                  for j in range(decode_write.GROUP)]
        for conn, stage, recent, times in runs.values():
            started = time.perf_counter()
            conn.begin()
            append_spans(conn, tables, [stage], recent)
            conn.commit()
            times.append(time.perf_counter() - started)
    spans = sum(t.num_rows for t in tables)
    base = statistics.median(runs["none"][3][3:])
    print(f"append_spans + COMMIT of {spans}-span groups, median of {args.groups - 3} (interleaved):")
    for name, (conn, _, _, times) in runs.items():
        median = statistics.median(times[3:])
        queued = conn.execute("SELECT count(*) FROM rule_score_queue").fetchone()[0]
        items = conn.execute("SELECT count(*) FROM dataset_items").fetchone()[0]
        print(f"  {name:28s} {median * 1e3:7.1f} ms  x{median / base:.2f}  (queued {queued:,}, items {items:,})")
    print(f"(machine: {os.cpu_count()} cores, load avg {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
