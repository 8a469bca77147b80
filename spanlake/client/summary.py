"""A finished run's summary as a table, and the `fail_under` gates it misses.

Shared by `run_experiment` (ThresholdError carries the table) and `spanlake run` (prints it).
Works on the run's JSON (`Run.raw`), as the API returns it.
"""

from __future__ import annotations

import io
from typing import Any


def below(run: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """The gates a finished run misses: a mean below its value, or no score at all."""
    missed = []
    for name, bar in gates.items():
        mean = ((run.get("summary") or {}).get("scorers") or {}).get(name, {}).get("mean")
        if mean is None or mean < bar:
            missed.append(f"{name} mean {'none' if mean is None else format(mean, '.4g')} < {bar:g}")
    return missed


def _number(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def headline(run: dict[str, Any]) -> str:
    summary = run.get("summary") or {}
    latency = summary.get("latency_ms") or {}
    tokens = summary.get("tokens")
    return (
        f"run {run['name']} {run['status']}: {run['completed']} ok, {run['failed']} error(s) of {run['total']}; "
        f"latency p50 {_number(latency.get('p50'), '.0f')} ms, p95 {_number(latency.get('p95'), '.0f')} ms"
        + (f"; {tokens['total']} tokens" if tokens else "")
    )


def table(run: dict[str, Any], gates: dict[str, float]) -> Any:
    """A rich Table of the scorers (mean, pass rate, count, gate), or None without scores."""
    from rich.table import Table

    stats = (run.get("summary") or {}).get("scorers") or {}
    if not stats:
        return None
    out = Table("scorer", "mean", "pass rate", "scored", "fail-under", box=None)
    for name, s in stats.items():
        gate = gates.get(name)
        ok = "" if gate is None else ("ok" if s["mean"] is not None and s["mean"] >= gate else "MISSED")
        out.add_row(name, _number(s["mean"]), _number(s["pass_rate"]), str(s["count"]),
                    "" if gate is None else f"{gate:g} {ok}")
    return out


def render(run: dict[str, Any], gates: dict[str, float], console: Any = None) -> str:
    """The headline and the table; printed to `console` when given, returned as plain text."""
    from rich.console import Console

    grid = table(run, gates)
    if console is not None:
        console.print(headline(run))
        if grid is not None:
            console.print(grid)
    buffer = io.StringIO()
    plain = Console(file=buffer, width=120, no_color=True, force_terminal=False)
    plain.print(headline(run))
    if grid is not None:
        plain.print(grid)
    return buffer.getvalue().rstrip()
