"""`spanlake run DATASET --target URL --scorer S ... [--wait] [--fail-under S=V ...]`: a dataset run.

A client of a running server: it POSTs `/api/datasets/{d}/runs`, and with `--wait` follows the run
with a progress bar, then prints a summary table. `--fail-under scorer=value` makes it a CI gate:
exit code 3 when a scorer's mean ends below its value (a failed or cancelled run exits 1).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
from rich.table import Table

from spanlake.cli import CommandError
from spanlake.cli_client import Client, add_server_args, describe_error, progress

POLL_SECONDS = 0.5
EXIT_BELOW_THRESHOLD = 3
FINISHED = ("completed", "failed", "cancelled")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run an HTTP target over a dataset and score every result (a CI gate with --fail-under)",
        description="Start a dataset run on a running server. The target receives POST "
                    '{"input", "item_id", "metadata", "run_id"} per item (see README, "Dataset runs").',
    )
    parser.add_argument("dataset", help="dataset name or id")
    parser.add_argument("--target", required=True, metavar="URL", help="the HTTP endpoint each item is POSTed to")
    parser.add_argument("--header", action="append", default=[], metavar="NAME:VALUE", help="header sent to the target")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds per call to the target (default 60)")
    parser.add_argument("--scorer", action="append", default=[], metavar="S", help="scorer to run on each result (repeat)")
    parser.add_argument("--name", help="run name, unique in the dataset (default: generated)")
    parser.add_argument("--concurrency", type=int, default=4, help="calls to the target in flight (default 4)")
    parser.add_argument("--metadata", help="JSON object stored with the run, e.g. '{\"git\": \"abc123\"}'")
    parser.add_argument("--wait", action="store_true", help="follow the run until it finishes, then print a summary")
    parser.add_argument("--fail-under", action="append", default=[], metavar="SCORER=VALUE",
                        help=f"exit {EXIT_BELOW_THRESHOLD} if the scorer's mean ends below VALUE (implies --wait)")
    add_server_args(parser)
    parser.set_defaults(func=cmd_run)


def _gates(args: argparse.Namespace) -> dict[str, float]:
    gates: dict[str, float] = {}
    for raw in args.fail_under:
        name, sep, value = raw.partition("=")
        name = name.strip()
        try:
            bar = float(value) if sep and name else math.nan
        except ValueError:
            bar = math.nan
        if not math.isfinite(bar):
            raise CommandError(f"--fail-under {raw!r}: expected SCORER=VALUE, e.g. exact_match=0.9")
        if name not in args.scorer:
            raise CommandError(f"--fail-under {name}: not a scorer of this run; add --scorer {name}")
        gates[name] = bar
    return gates


def _body(args: argparse.Namespace) -> dict[str, Any]:
    headers = {}
    for raw in args.header:
        key, sep, value = raw.partition(":")
        if not sep or not key.strip():
            raise CommandError(f"--header {raw!r}: expected NAME:VALUE")
        headers[key.strip()] = value.strip()
    body: dict[str, Any] = {
        "target": {"url": args.target, "headers": headers, "timeout_s": args.timeout},
        "scorers": args.scorer,
        "concurrency": args.concurrency,
    }
    if args.name:
        body["name"] = args.name
    if args.metadata:
        try:
            body["metadata"] = json.loads(args.metadata)
        except ValueError as exc:
            raise CommandError(f"--metadata is not valid JSON: {exc}") from None
    return body


def cmd_run(args: argparse.Namespace) -> int:
    gates = _gates(args)
    body = _body(args)
    console = Console(stderr=True)
    runs_path = f"/api/datasets/{quote(args.dataset, safe='')}/runs"
    with Client(args, timeout=120) as client:
        run = client.request("POST", runs_path, ok=(202,), json=body).json()
        scorers = ", ".join(run["scorers"]) or "no scorers"
        console.print(f"run {run['name']} ({run['id']}): {run['total']} item(s) against {args.target}, {scorers}")
        if not (args.wait or gates):
            print(run["id"])
            return 0
        run = _follow(client.http, f"{runs_path}/{run['id']}", run, quiet=args.quiet, console=console)
    print_summary(run, gates, console)
    print(run["id"])
    if run["status"] != "completed":
        reasons = "; ".join(str(e.get("error")) for e in run.get("errors", [])[:3])
        raise CommandError(f"run {run['name']} {run['status']}" + (f": {reasons}" if reasons else ""))
    missed = below(run, gates)
    if missed:
        console.print("[bold red]fail-under missed:[/] " + "; ".join(missed))
        return EXIT_BELOW_THRESHOLD
    return 0


def below(run: dict[str, Any], gates: dict[str, float]) -> list[str]:
    """The gates a finished run misses: a mean below its value, or no score at all."""
    missed = []
    for name, bar in gates.items():
        mean = run["summary"]["scorers"].get(name, {}).get("mean")
        if mean is None or mean < bar:
            missed.append(f"{name} mean {'none' if mean is None else format(mean, '.4g')} < {bar:g}")
    return missed


def _follow(http: httpx.Client, path: str, run: dict[str, Any], *, quiet: bool, console: Console) -> dict[str, Any]:
    columns = (BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[note]}"), TimeElapsedColumn())
    total = run["total"] or 1
    with progress(quiet, *columns, console=console) as bar:
        executing = bar.add_task("executing", total=total, note="")
        scoring = bar.add_task("scoring", total=total, note="", visible=bool(run["scorers"]))
        while True:
            try:
                resp = http.get(path)
            except httpx.HTTPError:
                time.sleep(POLL_SECONDS * 4)  # a restarting server resumes the run; keep following
                continue
            if resp.status_code != 200:
                raise CommandError(describe_error(resp))
            run = resp.json()
            bar.update(executing, completed=run["completed"] + run["failed"], note=f"{run['failed']} failed")
            bar.update(scoring, completed=run["scored"], note=f"{run['scoring_failed']} failed")
            if run["status"] in FINISHED:
                return run
            time.sleep(POLL_SECONDS)


def _number(value: Any, fmt: str = ".3f") -> str:
    return "-" if value is None else format(value, fmt)


def print_summary(run: dict[str, Any], gates: dict[str, float], console: Console) -> None:
    summary = run.get("summary") or {}
    latency = summary.get("latency_ms") or {}
    tokens = summary.get("tokens")
    console.print(
        f"run {run['name']} {run['status']}: {run['completed']} ok, {run['failed']} error(s) of {run['total']}; "
        f"latency p50 {_number(latency.get('p50'), '.0f')} ms, p95 {_number(latency.get('p95'), '.0f')} ms"
        + (f"; {tokens['total']} tokens" if tokens else "")
    )
    stats = summary.get("scorers") or {}
    if not stats:
        return
    table = Table("scorer", "mean", "pass rate", "scored", "fail-under", box=None)
    for name, s in stats.items():
        gate = gates.get(name)
        ok = "" if gate is None else ("ok" if s["mean"] is not None and s["mean"] >= gate else "MISSED")
        table.add_row(name, _number(s["mean"]), _number(s["pass_rate"]), str(s["count"]),
                      "" if gate is None else f"{gate:g} {ok}")
    console.print(table)
