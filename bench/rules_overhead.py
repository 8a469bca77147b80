"""Ingest throughput with 50 active capture rules (or other rules files) against none.

Targets (issue 18): acked rate >= 0.95 of the run without rules, loaded (sustained) >= 0.85.

    python bench/rules_overhead.py                         # 4 rounds of A (no rules) / B (bench/rules50.yaml)
    python bench/rules_overhead.py --rules my-rules.yaml --rounds 6
    python bench/rules_overhead.py --rules bench/rules_scoring.yaml --rules bench/rules_capture_tools.yaml
                                                           # a scoring rule, and its capture twin (issue 21)

Runs bench/ingest.py's spanlake phase alternately without and with the rules file (A B A B ...,
a fresh server and data dir each time, same pre-serialized load), so drift in the shared
machine's load hits both sides alike, and reports the ratio of the medians. For rules that
score, it also reports what the rules side queued and scored (read from the stopped server's
store): scoring runs in the background, so those counts show it kept up, or did not.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import duckdb  # noqa: E402
import ingest  # noqa: E402


def _scoring_figures(workdir: Path) -> str:
    """Rule scores stored and matches still queued or pending when the server stopped."""
    con = duckdb.connect(str(workdir / "spanlake-throughput" / "spanlake.duckdb"), read_only=True)
    try:
        scored = con.execute("SELECT count(*) FROM scores WHERE source = 'rule'").fetchone()[0]
        queued = con.execute("SELECT count(*) FROM rule_score_queue").fetchone()[0]
        pending = con.execute(
            "SELECT count(*) FROM job_items WHERE status = 'pending' AND job_id IN "
            "(SELECT id FROM jobs WHERE kind = 'score_rule')"
        ).fetchone()[0]
        jobs = con.execute("SELECT count(*) FROM jobs WHERE kind = 'score_rule'").fetchone()[0]
    finally:
        con.close()
    return f"rule scores {scored:,}, still queued {queued:,}, pending in jobs {pending:,}, jobs {jobs:,}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rules", type=Path, action="append",
                        help="rules file (repeat to alternate several against none; default bench/rules50.yaml)")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--config", type=Path, help="config file for every side (e.g. scoring: engine settings)")
    args = parser.parse_args()
    server_arg = [f"--config={args.config}"] if args.config else []
    base = argparse.Namespace(seconds=args.seconds, warmup=3.0, concurrency=args.concurrency, channels=1, decode_workers=0,
                              rules=None, server_arg=server_arg, profile=None)
    pool_file = ingest._pool_file(512, 2)
    sides: list[tuple[str, Path | None]] = [("none", None)]
    sides += [(path.name, path) for path in (args.rules or [HERE / "rules50.yaml"])]
    rates: dict[str, list[float]] = {name: [] for name, _ in sides}
    loaded: dict[str, list[float]] = {name: [] for name, _ in sides}
    for round_ in range(args.rounds):
        for name, rules in sides:
            phase_args = argparse.Namespace(**{**vars(base), "rules": rules})
            workdir = Path(tempfile.mkdtemp(prefix="spanlake-rules-bench-"))
            result = ingest.phase_spanlake(phase_args, pool_file, workdir)
            rate = result["spans_per_s"]
            rates[name].append(rate)
            loaded[name].append(result["loaded_spans_per_s"])
            scoring = f", {_scoring_figures(workdir)}" if rules is not None and "score:" in rules.read_text() else ""
            shutil.rmtree(workdir, ignore_errors=True)
            print(f"round {round_ + 1} {name}: {rate:,.0f} spans/s acked, {result['loaded_spans_per_s']:,.0f} loaded, steal {result.get('steal_pct', '?')}%"
                  f", stored {result['stored_spans']:,}{scoring}", file=sys.stderr, flush=True)
    none = statistics.median(rates["none"])
    print(f"without rules: median {none:,.0f} spans/s {[round(r) for r in rates['none']]}")
    for name, _ in sides[1:]:
        median = statistics.median(rates[name])
        print(f"with {name}: median {median:,.0f} spans/s {[round(r) for r in rates[name]]}, ratio {median / none:.3f}")
        # Each round's pair ran minutes apart at most, so its ratio shrugs off drift between rounds.
        paired = [r / n for n, r in zip(rates["none"], rates[name])]
        print(f"  per-round ratios: {[round(p, 3) for p in paired]}, median {statistics.median(paired):.3f}")
        loaded_ratio = statistics.median(loaded[name]) / statistics.median(loaded["none"])
        print(f"  loaded into the store: median {statistics.median(loaded[name]):,.0f} spans/s "
              f"(without rules {statistics.median(loaded['none']):,.0f}), ratio {loaded_ratio:.3f}")


if __name__ == "__main__":
    main()
