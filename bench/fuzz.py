"""Long fuzz runs of the decoders and parsers (the short runs live in tests/test_fuzz.py).

    python bench/fuzz.py --examples 20000          # every target
    python bench/fuzz.py --target filter --examples 100000

Each target must succeed or raise its documented error; anything else is printed with the
input that caused it (hypothesis shrinks it first) and the run exits 1. Add each finding to
tests/test_fuzz.py::test_findings_stay_fixed once it is fixed.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import fuzz_targets as ft  # noqa: E402

TARGETS = {
    "protobuf": (st.binary(max_size=4096) | ft.mutated_bytes(), ft.target_decode_protobuf),
    "json": (st.binary(max_size=1024) | ft.mutated_json(), ft.target_decode_json),
    "filter": (ft.filter_trees, ft.target_filter),
    "rules": (ft.rules_documents(), ft.target_rules),
}


def run(name: str, examples: int) -> bool:
    strategy, target = TARGETS[name]
    count = 0

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(value) -> None:
        nonlocal count
        count += 1
        target(value)

    started = time.perf_counter()
    try:
        fuzz()
    except Exception as exc:  # a finding: report it, keep going with the other targets
        print(f"{name}: FINDING after {count} inputs: {type(exc).__name__}: {exc}")
        return False
    print(f"{name}: {count} inputs, no finding ({time.perf_counter() - started:.1f} s)")
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--examples", type=int, default=20_000)
    parser.add_argument("--target", choices=sorted(TARGETS), action="append")
    args = parser.parse_args()
    ok = all([run(name, args.examples) for name in (args.target or sorted(TARGETS))])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
