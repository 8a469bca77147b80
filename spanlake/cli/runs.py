"""`spanlake run DATASET (--target URL | --task MODULE:FUNCTION) --scorer S ... [--fail-under S=V ...]`.

A client of a running server, through `spanlake.client`. With `--target` it starts a server-side
run (the server calls the URL), and with `--wait` follows it with progress bars, then prints a
summary table. With
`--task` it runs a Python function here over every item (`Client.run_experiment`: a client-side
run) and always waits. `--fail-under scorer=value` makes it a CI gate: exit code 3 when a
scorer's mean ends below its value (a failed or cancelled run exits 1).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from typing import Any

from rich.console import Console

from spanlake.cli.errors import CommandError
from spanlake.cli.client import add_server_args, describe
from spanlake.client import Client as ApiClient
from spanlake.client import SpanlakeError, ThresholdError
from spanlake.client.summary import below, render

EXIT_BELOW_THRESHOLD = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="run an HTTP target or a Python function over a dataset and score every result (a CI gate with --fail-under)",
        description="Start a dataset run on a running server. The target receives POST "
                    '{"input", "item_id", "metadata", "run_id"} per item (see README, "Dataset runs"); '
                    "a --task function is called with each item's input (see docs/client.md).",
    )
    parser.add_argument("dataset", help="dataset name or id")
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--target", metavar="URL", help="the HTTP endpoint each item is POSTed to (by the server)")
    what.add_argument("--task", metavar="MODULE:FUNCTION",
                      help="a Python function (sync or async) called here with each item's input; implies --wait")
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
        body["metadata"] = _metadata(args)
    return body


def _metadata(args: argparse.Namespace) -> dict[str, Any] | None:
    if not args.metadata:
        return None
    try:
        return json.loads(args.metadata)
    except ValueError as exc:
        raise CommandError(f"--metadata is not valid JSON: {exc}") from None


def cmd_run(args: argparse.Namespace) -> int:
    gates = _gates(args)
    if args.task:
        return run_task(args, gates)
    body = _body(args)
    console = Console(stderr=True)
    try:
        with ApiClient(args.url, args.api_key, timeout=120) as client:
            run = client.runs.create(args.dataset, target=body["target"], scorers=body["scorers"],
                                     name=body.get("name"), concurrency=body["concurrency"],
                                     metadata=body.get("metadata"))
            scorers = ", ".join(run.scorers) or "no scorers"
            console.print(f"run {run.name} ({run.id}): {run.total} item(s) against {args.target}, {scorers}")
            if not (args.wait or gates):
                print(run.id)
                return 0
            # The client keeps polling through a server restart (the run resumes there).
            run = client.runs.wait(run.dataset_id, run.id, progress=False if args.quiet else None)
    except SpanlakeError as exc:
        raise CommandError(describe(exc)) from None
    report_finished(run, gates, console)
    return _missed(below(run.raw, gates), console)


def print_summary(run: dict[str, Any], gates: dict[str, float], console: Console) -> None:
    render(run, gates, console)


def report_finished(run: Any, gates: dict[str, float], console: Console) -> None:
    """The summary table and the run id; a run that did not complete is an error, with its first reasons."""
    print_summary(run.raw, gates, console)
    print(run.id)
    if run.status != "completed":
        reasons = "; ".join(str(e.get("error")) for e in (run.errors or [])[:3])
        raise CommandError(f"run {run.name} {run.status}" + (f": {reasons}" if reasons else ""))


def _missed(missed: list[str], console: Console) -> int:
    if not missed:
        return 0
    console.print("[bold red]fail-under missed:[/] " + "; ".join(missed))
    return EXIT_BELOW_THRESHOLD


def _load_task(spec: str) -> Any:
    from spanlake.scoring.python_scorer import import_callable

    if ":" not in spec:
        raise CommandError(f"--task {spec!r}: expected MODULE:FUNCTION, e.g. my_agent:answer")
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())  # the task's module is usually next to the caller, as with `python -m`
    try:
        task = import_callable(spec)
    except (ImportError, AttributeError) as exc:
        raise CommandError(f"--task: {exc}") from None
    if not callable(task):
        raise CommandError(f"--task {spec!r} is a {type(task).__name__}, not a function")
    return task


def run_task(args: argparse.Namespace, gates: dict[str, float]) -> int:
    """--task: the experiment runs here (a client-side run); the server scores and summarizes it."""
    task = _load_task(args.task)
    console = Console(stderr=True)
    try:
        with ApiClient(args.url, args.api_key) as client:
            run = client.run_experiment(args.dataset, task, scorers=args.scorer, name=args.name,
                                        concurrency=args.concurrency, metadata=_metadata(args),
                                        fail_under=gates or None, progress=False if args.quiet else None)
    except ThresholdError as exc:
        print_summary(exc.run.raw, gates, console)
        print(exc.run.id)
        return _missed(exc.missed, console)
    except SpanlakeError as exc:
        raise CommandError(describe(exc)) from None
    report_finished(run, gates, console)
    return 0
