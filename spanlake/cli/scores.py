"""`spanlake score SCORER --filter JSON | --trace-ids FILE [--wait]`: start a scoring batch.

A client of a running server (through `spanlake.client`): it POSTs `/api/scores/batch`, and with
`--wait` follows the batch with a progress bar (`Batch.wait`) until it is finished.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from spanlake.cli.errors import CommandError
from spanlake.cli.client import add_server_args, describe
from spanlake.client import Client as ApiClient
from spanlake.client import SpanlakeError


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
    selection: dict[str, Any] = {}
    if args.filter is not None:
        selection["filter"] = _filter(args.filter)
        selection["limit"] = args.limit
    else:
        if args.limit is not None:
            raise CommandError("--limit applies to --filter only")
        selection["trace_ids"] = _trace_ids(args.trace_ids)
    console = Console(stderr=True)
    try:
        with ApiClient(args.url, args.api_key, timeout=120) as client:
            batch = client.scores.batch(args.scorer, sample=args.sample, **selection)
            note = f", {batch.unknown_count} trace id(s) not in the store" if batch.unknown_count else ""
            console.print(f"batch {batch.batch_id}: {batch.trace_count} trace(s) to score with {args.scorer}{note}")
            if not args.wait:
                print(batch.batch_id)
                return 0
            # The client keeps polling through a server restart (the batch resumes there).
            status = batch.wait(progress=not args.quiet)
    except SpanlakeError as exc:
        raise CommandError(describe(exc, with_status=True)) from None
    console.print(f"batch {batch.batch_id} {status.status}: {status.completed} scored, {status.failed} failed")
    for err in (status.errors or [])[:5]:
        where = err.get("trace_id") or "batch"
        console.print(f"  {where}: {err.get('error')}")
    print(batch.batch_id)
    return 1 if status.status == "failed" else 0
