"""`spanlake score SCORER --filter JSON | --trace-ids FILE [--wait]`: start a scoring batch.

A client of a running server: it POSTs `/api/scores/batch`, and with `--wait` follows
`/api/scores/batches/{id}` with a progress bar until the batch is finished.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from spanlake.cli import CommandError
from spanlake.cli_client import Client, add_server_args, describe_error, progress

POLL_SECONDS = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score traces with a scorer, in the background on a running server",
        description="Start a scoring batch; GET /api/scorers (or the README) lists the scorers.",
    )
    parser.add_argument("scorer", help="scorer name, e.g. no_errors or one declared under `scorers:`")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--filter", help="filter tree as JSON (or @file.json / @file.yaml): traces with a matching span")
    which.add_argument("--trace-ids", metavar="FILE", help="file of trace ids, one per line ('-' reads stdin)")
    parser.add_argument("--limit", type=int, help="with --filter: at most this many traces, newest first (default 1000)")
    parser.add_argument("--sample", type=float, help="score this fraction (0-1] of the traces; stable per trace id")
    parser.add_argument("--wait", action="store_true", help="follow the batch with a progress bar until it finishes")
    add_server_args(parser)
    parser.set_defaults(func=cmd_score)


def _filter(text: str) -> Any:
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text()
        except OSError as exc:
            raise CommandError(f"--filter {path}: {exc.strerror or exc}") from None
    try:
        return yaml.safe_load(text)  # JSON is YAML too
    except yaml.YAMLError as exc:
        raise CommandError(f"--filter is not valid JSON or YAML: {exc}") from None


def _trace_ids(name: str) -> list[str]:
    try:
        text = sys.stdin.read() if name == "-" else Path(name).read_text()
    except OSError as exc:
        raise CommandError(f"--trace-ids {name}: {exc.strerror or exc}") from None
    ids = [tok for line in text.splitlines() for tok in line.split("#", 1)[0].replace(",", " ").split()]
    if not ids:
        raise CommandError(f"--trace-ids {name}: no trace ids in the file")
    return ids


def cmd_score(args: argparse.Namespace) -> int:
    body: dict[str, Any] = {"scorer": args.scorer}
    if args.filter is not None:
        body["filter"] = _filter(args.filter)
        if args.limit is not None:
            body["limit"] = args.limit
    else:
        if args.limit is not None:
            raise CommandError("--limit applies to --filter only")
        body["trace_ids"] = _trace_ids(args.trace_ids)
    if args.sample is not None:
        body["sample"] = args.sample
    console = Console(stderr=True)
    with Client(args, timeout=120) as client:
        accepted = client.request("POST", "/api/scores/batch", ok=(202,), with_status=True, json=body).data
        batch_id, total = accepted["batch_id"], accepted["trace_count"]
        unknown = accepted.get("unknown_count", len(accepted.get("unknown_trace_ids", [])))
        note = f", {unknown} trace id(s) not in the store" if unknown else ""
        console.print(f"batch {batch_id}: {total} trace(s) to score with {args.scorer}{note}")
        if not args.wait:
            print(batch_id)
            return 0
        batch = _follow(client.http, batch_id, total, quiet=args.quiet, console=console)
    console.print(f"batch {batch_id} {batch['status']}: {batch['completed']} scored, {batch['failed']} failed")
    for err in batch.get("errors", [])[:5]:
        where = err.get("trace_id") or "batch"
        console.print(f"  {where}: {err.get('error')}")
    print(batch_id)
    return 1 if batch["status"] == "failed" else 0


def _follow(http: httpx.Client, batch_id: str, total: int, *, quiet: bool, console: Console) -> dict[str, Any]:
    columns = (TextColumn("scoring"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[failed]} failed"),
               TimeElapsedColumn(), TimeRemainingColumn())
    with progress(quiet, *columns, console=console, transient=False, terminal_only=False, label=False) as bar:
        task = bar.add_task("score", total=total or 1, failed=0)
        while True:
            try:
                resp = http.get(f"/api/scores/batches/{batch_id}")
            except httpx.HTTPError:
                time.sleep(POLL_SECONDS * 4)  # a restarting server resumes the batch; keep following
                continue
            if resp.status_code != 200:
                raise CommandError(describe_error(resp, with_status=True))
            batch = resp.json()
            bar.update(task, completed=batch["completed"] + batch["failed"], failed=batch["failed"])
            if batch["status"] in ("completed", "failed"):
                return batch
            time.sleep(POLL_SECONDS)
