"""What every client subcommand shares: the server flags, an HTTP client whose failures become
one-line CommandErrors, the rendering of the API's error bodies, and a progress bar on stderr."""

from __future__ import annotations

import argparse
import os
from typing import Any

import httpx
from rich.console import Console
from rich.progress import Progress, ProgressColumn, TextColumn

from spanlake.cli import CommandError

DEFAULT_URL = "http://127.0.0.1:4318"


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
    """Thin HTTP client turning every failure into a one-line CommandError."""

    def __init__(self, args: argparse.Namespace, *, timeout: float = 600.0):
        headers = {"authorization": f"Bearer {args.api_key}"} if args.api_key else {}
        self.url = args.url.rstrip("/")
        self.http = httpx.Client(base_url=self.url, headers=headers, timeout=httpx.Timeout(timeout, connect=10))

    def request(self, method: str, path: str, ok: tuple[int, ...] = (200,), *, with_status: bool = False,
                **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise CommandError(f"cannot reach spanlake at {self.url} ({exc}); is `spanlake serve` running?") from None
        if resp.status_code not in ok:
            raise CommandError(describe_error(resp, with_status=with_status))
        return resp

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def describe_error(resp: httpx.Response, *, with_status: bool = False) -> str:
    """The API's error message (plus the first invalid rows, if it lists them) as one line."""
    try:
        error = resp.json()["error"]
        message = error["message"]
    except (ValueError, KeyError, TypeError):
        prefix = "HTTP" if with_status else "server answered"
        return f"{prefix} {resp.status_code}: {resp.text[:200]}"
    if with_status:
        message = f"{message} ({resp.status_code} {error.get('code')})"
    rows = error.get("rows") or []
    details = "; ".join(f"row {r['row']}: {r['reason']}" for r in rows[:10])
    return f"{message}" + (f" [{details}]" if len(rows) > 1 else "")


def progress(quiet: bool, *columns: ProgressColumn | str, console: Console | None = None, transient: bool = True,
             terminal_only: bool = True, label: bool = True) -> Progress:
    """A progress bar on stderr; off with --quiet and (unless terminal_only=False) when not a terminal."""
    console = console or Console(stderr=True)
    lead = (TextColumn("{task.description}"),) if label else ()
    return Progress(*lead, *columns, console=console, transient=transient,
                    disable=quiet or (terminal_only and not console.is_terminal))
