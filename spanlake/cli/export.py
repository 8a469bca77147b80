"""`spanlake export-spans --since T --until T -o DIR`: spans as Hive-partitioned Parquet.

Reads the store directly, read-only, instead of asking a server: an export of months of spans
should not go through the HTTP API one page at a time. A lake (PostgreSQL catalog) can be read
while replicas write to it. The embedded DuckDB file is locked by a running `spanlake serve`,
and DuckDB lets no other process open it then, not even to read; the command then says so and
what to do (stop the server for the export, or run on a lake).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import time
from pathlib import Path

import duckdb

from spanlake.cli.errors import CommandError
from spanlake.filters import parse_time
from spanlake.settings import load_settings
from spanlake.store.connection import StoreConfig, open_connection
from spanlake.store.export import count_days, export_spans

_LOCK_HOLDER = re.compile(r"\(PID (\d+)\)")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export-spans",
        help="write spans to Hive-partitioned Parquet (date=YYYY-MM-DD), readable by DuckDB, pandas and Spark",
    )
    parser.add_argument("--since", required=True, help="ISO-8601 time or epoch seconds: spans that started at or after")
    parser.add_argument("--until", help="ISO-8601 time or epoch seconds: spans that started before (default: now)")
    parser.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write; exported days are replaced")
    parser.add_argument("--config", dest="config_file", metavar="FILE", help="YAML config file (env SPANLAKE_CONFIG)")
    parser.add_argument("--data", help="data directory of the embedded store (env SPANLAKE_DATA)")
    parser.add_argument("--store", help="store URL, as for serve (env SPANLAKE_STORE)")
    parser.add_argument("--data-path", dest="data_path", help="DuckLake Parquet location (env SPANLAKE_DATA_PATH)")
    parser.set_defaults(func=cmd_export_spans)


def _time(value: str, flag: str) -> dt.datetime:
    try:
        return parse_time(float(value) if value.replace(".", "", 1).isdigit() else value)
    except (ValueError, TypeError, OverflowError) as exc:
        raise CommandError(f"{flag} {value!r}: expected an ISO-8601 time or epoch seconds ({exc})") from None


def _open(config: StoreConfig) -> duckdb.DuckDBPyConnection:
    try:
        conn = open_connection(config)
    except duckdb.IOException as exc:
        if "lock" in str(exc).lower():
            holder = _LOCK_HOLDER.search(str(exc))
            who = f" (PID {holder.group(1)})" if holder else ""
            raise CommandError(
                f"{config.duckdb_path if not config.url.startswith('duckdb:') else config.url[7:]} is in use by a "
                f"running server{who}; DuckDB lets no other process read it meanwhile. Stop the server for the "
                "export, or run the servers on a lake (--store ducklake:...), which can be exported while they run"
            ) from None
        raise CommandError(f"cannot open the store: {exc}") from None
    return conn  # a lake's connection already uses its catalog (store/connection.py)


def cmd_export_spans(args: argparse.Namespace) -> int:
    since = _time(args.since, "--since")
    until = _time(args.until, "--until") if args.until else dt.datetime.now(dt.UTC).replace(tzinfo=None)
    if until <= since:
        raise CommandError(f"--until ({until.isoformat()}) must be after --since ({since.isoformat()})")
    settings = load_settings(
        {"store": args.store, "data": args.data, "data_path": args.data_path, "config_file": args.config_file}
    )
    config = StoreConfig(
        url=settings.store, data_dir=settings.data_dir, data_path=settings.data_path,
        memory_limit=settings.memory_limit, read_only=True,
    )
    out = Path(args.output).expanduser()
    if out.exists() and not out.is_dir():
        raise CommandError(f"-o {out}: exists and is not a directory")
    conn = _open(config)
    try:
        started = time.perf_counter()
        days = count_days(conn, since, until)
        if not days:
            print(f"no spans started between {since.isoformat()}Z and {until.isoformat()}Z; nothing written")
            return 0
        out.mkdir(parents=True, exist_ok=True)
        export_spans(conn, since, until, out)
    finally:
        conn.close()
    total = sum(d.spans for d in days)
    for day in days:
        print(f"{out / f'date={day.date}'}: {day.spans} spans")
    print(f"exported {total} spans in {len(days)} day(s) to {out} in {time.perf_counter() - started:.1f}s")
    return 0
