"""What every client subcommand shares: the server flags, `spanlake.client`'s transport with its
failures as one-line CommandErrors, the rendering of the API's error bodies, and a progress bar."""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, ProgressColumn, TextColumn

from spanlake.cli.errors import CommandError
from spanlake.client.errors import SpanlakeError, from_body
from spanlake.client.transport import DEFAULT_RETRY_TIMEOUT, DEFAULT_URL, Call, Config, Reply, SyncTransport


def add_server_args(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """--url, --api-key and --quiet, with their environment defaults."""
    parser.add_argument("--url", default=os.environ.get("SPANLAKE_URL", DEFAULT_URL),
                        help=f"server base URL (env SPANLAKE_URL, default {DEFAULT_URL})")
    parser.add_argument("--api-key", default=os.environ.get("SPANLAKE_API_KEY"), help="API key (env SPANLAKE_API_KEY)")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser


def server_parent() -> argparse.ArgumentParser:
    """The server flags as a parent parser (`add_parser(..., parents=[server_parent()])`)."""
    return add_server_args(argparse.ArgumentParser(add_help=False))


class Client:
    """The CLI's face of `spanlake.client`'s transport (same headers, env defaults, retries and error
    parsing); every failure becomes a one-line CommandError. `http` is the underlying httpx client,
    for the commands that stream."""

    def __init__(self, args: argparse.Namespace, *, timeout: float = 600.0):
        self.config = Config.make(args.url, args.api_key, timeout, DEFAULT_RETRY_TIMEOUT)
        self.url = self.config.url
        self.transport = SyncTransport(self.config)
        self.http = self.transport.http

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), *, with_status: bool = False,
                **kwargs: Any) -> Reply:
        """Send (params=, json=, content=, headers=); an answer outside `ok` raises CommandError."""
        try:
            return self.transport.send(Call(method, path, ok=ok, **kwargs))
        except SpanlakeError as exc:
            raise CommandError(describe(exc, with_status=with_status)) from None

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe(error: SpanlakeError, *, with_status: bool = False) -> str:
    """The API's error message (plus the first invalid rows, if it lists them) as one line."""
    if error.status == 0:
        return error.message
    message = f"{error.message} ({error.status} {error.code})" if with_status else error.message
    rows = error.details.get("rows") or []
    details = "; ".join(f"row {r['row']}: {r['reason']}" for r in rows[:10])
    return message + (f" [{details}]" if len(rows) > 1 else "")


def describe_error(resp: httpx.Response, *, with_status: bool = False) -> str:
    """`describe` for a response read directly from `Client.http` (streams, polls)."""
    try:
        body = resp.json()
    except ValueError:
        body = None
    return describe(from_body(resp.status_code, body, resp.text), with_status=with_status)


def progress(quiet: bool, *columns: ProgressColumn | str, console: Console | None = None, transient: bool = True,
             terminal_only: bool = True, label: bool = True) -> Progress:
    """A progress bar on stderr; off with --quiet and (unless terminal_only=False) when not a terminal."""
    console = console or Console(stderr=True)
    lead = (TextColumn("{task.description}"),) if label else ()
    return Progress(*lead, *columns, console=console, transient=transient,
                    disable=quiet or (terminal_only and not console.is_terminal))
