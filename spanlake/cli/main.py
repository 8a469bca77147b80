"""The `spanlake` command: `serve` here; each other command module registers its subcommands."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

from spanlake.malloc_arenas import cap_malloc_arenas
from spanlake.settings import SETTINGS, SettingsError, load_settings, settings_help
from spanlake.capture.rules import RulesError
from spanlake.store.connection import StoreConfigError
from spanlake.cli import datasets, demo, export, rules, runs, scores
from spanlake.cli.errors import CommandError


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", dest="config_file", metavar="FILE", help="YAML config file (env SPANLAKE_CONFIG)")
    for setting in SETTINGS:
        kwargs: dict = {"dest": setting.name, "default": None, "help": f"{setting.help} (env {setting.env})"}
        if setting.name == "api_keys":
            kwargs.update(action="append", metavar="KEY")
        parser.add_argument(setting.cli_flag, **kwargs)


def _cli_values(args: argparse.Namespace) -> dict:
    values = {s.name: getattr(args, s.name, None) for s in SETTINGS}
    if values.get("api_keys"):
        values["api_keys"] = tuple(values["api_keys"])
    values["config_file"] = getattr(args, "config_file", None)
    return values


SWITCH_INTERVAL_S = 0.0005


def cmd_serve(args: argparse.Namespace) -> int:
    from spanlake.server import serve

    settings = load_settings(_cli_values(args))
    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    # The decoder thread runs Python nearly all the time, and every DuckDB call the writer and
    # the rule evaluator make takes the GIL back several times, each take waiting up to one
    # switch interval: `select 1` costs 37 ms beside a busy thread at the default 5 ms, 5 ms at
    # 0.5 ms (bench/gil_contention.py). Ingest gained 5-6% (bench/RESULTS.md).
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    cap_malloc_arenas()  # before the server's threads start
    asyncio.run(serve(settings))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="spanlake", description="OpenTelemetry trace backend for LLM applications")
    parser.add_argument("--help-settings", action="store_true", help="list every setting with its default and env name")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = sub.add_parser("serve", help="run the OTLP receivers and the HTTP API")
    _add_setting_flags(serve)
    serve.set_defaults(func=cmd_serve)
    for module in COMMAND_MODULES:
        module.register(sub)
    return parser


# The other commands, each registering its subcommands: rules, datasets, score, run, export-spans, demo.
COMMAND_MODULES = (rules, datasets, scores, runs, export, demo)


def main(argv: list[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.help_settings:
        print(settings_help())
        sys.exit(0)
    if not getattr(args, "func", None):
        parser.print_help()
        sys.exit(2)
    try:
        code = args.func(args)
    except (SettingsError, StoreConfigError, RulesError, CommandError, OSError) as exc:
        print(f"spanlake: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
    sys.exit(code or 0)
