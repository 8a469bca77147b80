"""`spanlake rules check FILE [--config F]` and `spanlake rules backfill FILE --since T [--rule NAME]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from urllib.parse import quote

from rich.console import Console
from rich.progress import BarColumn, TaskProgressColumn, TextColumn

from spanlake.capture.rules import RulesError, load_rules
from spanlake.cli.errors import CommandError
from spanlake.cli.client import Client, add_server_args, describe_error, progress


def _scorer_catalog(config_file: str | None) -> dict[str, tuple[str, ...]]:
    """The scorers a server with this config would have (built-ins, plugins, the config's), by
    the scopes each fits. Building them checks the config's `scorers:` too."""
    from spanlake.scoring.registry import ScorerRegistry
    from spanlake.settings import load_settings

    settings = load_settings({"config_file": config_file})
    registry = ScorerRegistry.load(settings.sections.scoring)
    try:
        return registry.catalog()
    finally:
        asyncio.run(registry.aclose())


def cmd_check(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.file, _scorer_catalog(args.config))
    except RulesError as exc:
        for problem in exc.problems:
            print(f"{exc.source}: {problem}", file=sys.stderr)
        print(f"{exc.source}: {len(exc.problems)} error(s)", file=sys.stderr)
        return 1
    for rule in ruleset.rules:
        state = "" if rule.enabled else " (disabled)"
        does = f" dataset={rule.dataset}" if rule.dataset else ""
        does += f" score={','.join(rule.score)}" if rule.score else ""
        print(f"ok  {rule.name}: scope={rule.scope}{does} sample={rule.sample:g}{state}")
    print(f"{args.file}: {len(ruleset.rules)} rule(s), no errors")
    return 0


def cmd_backfill(args: argparse.Namespace) -> int:
    try:
        ruleset = load_rules(args.file)
    except RulesError as exc:
        raise CommandError(str(exc)) from None
    rules = [r for r in ruleset.rules if args.rule in (None, r.name)]
    if not rules:
        raise CommandError(f"{args.file} has no rule named {args.rule!r}")
    client = Client(args)
    console = Console(stderr=True)
    body_base = {"since": args.since, **({"until": args.until} if args.until else {})}
    with progress(
        args.quiet, BarColumn(), TaskProgressColumn(), TextColumn("{task.fields[captured]} captured, {task.fields[queued]} queued"),
        console=console, transient=False,
    ) as bar:
        for rule in rules:
            task = bar.add_task(rule.name, total=1.0, captured=0, queued=0)
            body = {**body_base, "rule": rule.definition}
            last: dict = {}
            try:
                with client.http.stream("POST", f"/api/rules/{quote(rule.name, safe='')}/backfill", json=body) as resp:
                    if resp.status_code != 200:
                        resp.read()
                        raise CommandError(f"{rule.name}: {describe_error(resp)}")
                    for line in resp.iter_lines():
                        if line.strip():
                            last = json.loads(line)
                            bar.update(task, completed=last["progress"], captured=last["captured"], queued=last.get("queued", 0))
            except Exception as exc:  # httpx errors mid-stream: say which rule and how far it got
                if isinstance(exc, CommandError):
                    raise
                raise CommandError(f"{rule.name}: backfill interrupted ({exc}); run it again to finish") from None
            line = f"{rule.name}: evaluated {last.get('evaluated', 0)}, matched {last.get('matched', 0)}"
            if rule.dataset:
                line += f", captured {last.get('captured', 0)}, duplicates {last.get('duplicates', 0)}"
            if rule.score:
                line += (f", queued {last.get('queued', 0)} scorer calls, {last.get('already_scored', 0)} already "
                         "scored or pending (scores arrive in the background: GET /api/rules)")
            print(line)
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    rules = sub.add_parser("rules", help="validate capture rules, or run them over stored spans")
    rules_sub = rules.add_subparsers(dest="rules_command", metavar="COMMAND", required=True)
    check = rules_sub.add_parser("check", help="validate a rules file without a server (exit 1 on error)")
    check.add_argument("file")
    check.add_argument("--config", help="the server's config file, whose scorers: rules may name (env SPANLAKE_CONFIG)")
    check.set_defaults(func=cmd_check)
    backfill = rules_sub.add_parser("backfill", help="run rules of FILE over stored spans of a running server")
    backfill.add_argument("file")
    backfill.add_argument("--since", required=True, help="ISO-8601 time or epoch seconds")
    backfill.add_argument("--until", help="ISO-8601 time or epoch seconds (default: now)")
    backfill.add_argument("--rule", help="only this rule")
    add_server_args(backfill)
    backfill.set_defaults(func=cmd_backfill)
