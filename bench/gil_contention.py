"""What a busy Python thread does to DuckDB calls made from another thread of the same process.

In `spanlake serve` the decoder thread runs Python most of the time, while the writer and the
rule evaluator call DuckDB. DuckDB releases the GIL while it works but takes it back several
times per call, and each take waits for the holder's switch interval (5 ms by default). This
times three calls, each with the process quiet and then with one pure-Python thread spinning:

  select 1         a trivial statement
  scan of a batch  register an 800-span Arrow batch, count its rows, unregister
  50 rules         the capture stage's evaluation of bench/rules50.yaml on that batch

    python bench/gil_contention.py                     # switch interval 5 ms, then 0.5 ms
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pyarrow as pa

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import otlp_load  # noqa: E402

from spanlake.capture.rules import load_rules  # noqa: E402
from spanlake.capture.targets import rule_options  # noqa: E402
from spanlake.ingest.decode import decode_protobuf  # noqa: E402
from spanlake.store.rule_hits import HitsProgram  # noqa: E402


def _median_ms(fn: Callable[[], object], repeat: int = 10) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


def _spin(stop: threading.Event) -> None:
    while not stop.is_set():
        sum(range(1000))


def main() -> None:
    batch = pa.concat_tables([decode_protobuf(t.render_now()).spans for t in otlp_load.build_pool(8, seed=2)])
    rules = load_rules(HERE / "rules50.yaml").active("span")
    program = HitsProgram.compile(rules, tuple(rule_options(rule) for rule in rules))
    conn = duckdb.connect(":memory:", config={"threads": "1"})

    def scan() -> None:
        conn.register("batch", batch)
        conn.execute("SELECT count(*) FROM batch").fetchall()
        conn.unregister("batch")

    calls = {
        "select 1": lambda: conn.execute("SELECT 1").fetchall(),
        "scan of a batch": scan,
        "50 rules": lambda: program.evaluate_batch(batch, conn),
    }
    print(f"{batch.num_rows} spans, one DuckDB thread; median ms of 10 calls")
    print(f"{'call':<18}{'quiet':>10}{'busy, 5 ms':>14}{'busy, 0.5 ms':>15}")
    quiet = {name: _median_ms(fn) for name, fn in calls.items()}
    busy: dict[str, list[float]] = {name: [] for name in calls}
    stop = threading.Event()
    spinner = threading.Thread(target=_spin, args=(stop,), daemon=True)
    spinner.start()
    try:
        for interval in (0.005, 0.0005):
            sys.setswitchinterval(interval)
            for name, fn in calls.items():
                busy[name].append(_median_ms(fn))
    finally:
        stop.set()
        spinner.join()
        sys.setswitchinterval(0.005)
    for name in calls:
        five, half = busy[name]
        print(f"{name:<18}{quiet[name]:>10.2f}{five:>14.2f}{half:>15.2f}")


if __name__ == "__main__":
    main()
