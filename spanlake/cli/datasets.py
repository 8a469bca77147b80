"""`spanlake datasets list | export | import`: a client of a running server's HTTP API.

Big files move in pieces: exports stream to disk (a temporary file renamed when complete, so a
failed export leaves no partial file), and imports of many rows are split into chunks that the
server first validates all together (`dry_run`) before any is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TimeRemainingColumn, TransferSpeedColumn
from rich.table import Table

from spanlake.cli.errors import CommandError
from spanlake.cli.client import DEFAULT_URL, Client, describe, describe_error, progress, server_parent
from spanlake.client import Client as ApiClient
from spanlake.client import SpanlakeError
from spanlake.client.files import CHUNK_ROWS, EXTENSIONS, IMPORT_TYPES, split_rows

__all__ = ["DEFAULT_URL", "Client", "describe_error", "register", "split_rows"]

EXPORT_FORMATS = ("jsonl", "csv", "openai", "parquet")


def register(subparsers: argparse._SubParsersAction) -> None:
    common = server_parent()
    parser = subparsers.add_parser("datasets", help="list, export and import datasets of a running server")
    sub = parser.add_subparsers(dest="datasets_command", metavar="COMMAND", required=True)

    ls = sub.add_parser("list", parents=[common], help="list datasets with their item counts")
    ls.add_argument("--search", help="only names containing this text")
    ls.add_argument("--json", action="store_true", help="one JSON object per line")
    ls.set_defaults(func=cmd_list)

    ex = sub.add_parser("export", parents=[common], help="download a dataset to a file")
    ex.add_argument("name", help="dataset name or id")
    ex.add_argument("--format", "-f", choices=EXPORT_FORMATS, default="jsonl")
    ex.add_argument("-o", "--output", help="file to write ('-' for stdout; default: the dataset name + format)")
    ex.add_argument("--as-of", help="ISO-8601 instant: export the dataset as it was then")
    ex.set_defaults(func=cmd_export)

    im = sub.add_parser("import", parents=[common], help="add the rows of a JSON, JSONL, CSV or Parquet file as items")
    im.add_argument("name", help="dataset name or id (created when missing, unless --no-create)")
    im.add_argument("file", help="the file; its format comes from the extension or --format")
    im.add_argument("--format", choices=tuple(IMPORT_TYPES), help="json (an array), jsonl, csv or parquet")
    im.add_argument("--no-create", action="store_true", help="fail if the dataset does not exist")
    im.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS, help=f"rows per request (default {CHUNK_ROWS})")
    im.set_defaults(func=cmd_import)


def _dataset_path(name: str) -> str:
    return "/api/datasets/" + quote(name, safe="")


def _progress(args: argparse.Namespace, *columns: Any) -> Progress:
    return progress(args.quiet, *columns)


def cmd_list(args: argparse.Namespace) -> int:
    try:
        with ApiClient(args.url, args.api_key) as client:
            rows = [d.raw for d in client.datasets.list(search=args.search or None, page_size=1000)]
    except SpanlakeError as exc:
        raise CommandError(describe(exc)) from None
    if args.json:
        for row in rows:
            print(json.dumps(row))
        return 0
    if not rows:
        print("no datasets", file=sys.stderr)
        return 0
    if not sys.stdout.isatty():  # scripts get whole values, tab-separated, never truncated
        for row in rows:
            print("\t".join([row["name"], str(row["item_count"]), row["updated_at"], row["id"]]))
        return 0
    table = Table("name", "items", "updated", "id", box=None)
    for row in rows:
        table.add_row(row["name"], str(row["item_count"]), row["updated_at"], row["id"])
    Console().print(table)
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    client = Client(args)
    params = {"format": args.format, **({"as_of": args.as_of} if args.as_of else {})}
    path = _dataset_path(args.name) + "/export"
    try:
        with client.http.stream("GET", path, params=params) as resp:
            if resp.status_code != 200:
                resp.read()
                raise CommandError(describe_error(resp))
            total_items = resp.headers.get("x-spanlake-item-count", "?")
            if args.output == "-":
                for chunk in resp.iter_bytes():
                    sys.stdout.buffer.write(chunk)
                sys.stdout.buffer.flush()
                return 0
            target = Path(args.output or _download_name(resp, args.name, args.format))
            partial = target.with_name(target.name + ".partial")
            written = 0
            with _progress(args, DownloadColumn(), TransferSpeedColumn()) as progress, partial.open("wb") as out:
                task = progress.add_task(f"exporting {args.name}", total=None)
                for chunk in resp.iter_bytes():
                    out.write(chunk)
                    written += len(chunk)
                    progress.update(task, completed=written)
            partial.replace(target)
    except httpx.HTTPError as exc:
        raise CommandError(f"export from {client.url} failed ({exc})") from None
    print(f"exported {total_items} items of {args.name} to {target} ({written} bytes)", file=sys.stderr)
    return 0


def _download_name(resp: httpx.Response, name: str, fmt: str) -> str:
    disposition = resp.headers.get("content-disposition", "")
    if 'filename="' in disposition:
        return disposition.split('filename="', 1)[1].split('"', 1)[0]
    return f"dataset.{fmt}"


def cmd_import(args: argparse.Namespace) -> int:
    if args.chunk_rows < 1:
        raise CommandError("--chunk-rows must be at least 1")
    source = Path(args.file)
    fmt = args.format or EXTENSIONS.get(source.suffix.lower())
    if fmt is None:
        raise CommandError(f"cannot tell the format of {source.name}; name it .json, .jsonl, .csv or .parquet, or pass --format")
    try:
        content = source.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {source}: {exc.strerror}") from None
    try:
        chunks = list(split_rows(fmt, content, args.chunk_rows))
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    client = Client(args)
    dataset = _ensure_dataset(client, args.name, create=not args.no_create)
    path = _dataset_path(dataset["id"]) + "/import"
    headers = {"content-type": IMPORT_TYPES[fmt]}
    if len(chunks) > 1:  # all or nothing across chunks: validate every one before writing any
        problems: list[str] = []
        for body, rows in chunks:
            resp = client.request("POST", path, ok=(200, 422), params={"dry_run": "true"}, content=body, headers=headers)
            if resp.status == 422:
                problems += [f"row {rows[r['row'] - 1]}: {r['reason']}" for r in resp.data["error"]["rows"]]
        if problems:
            raise CommandError(f"{len(problems)} invalid rows, nothing imported: " + "; ".join(problems[:10]))
    imported = 0
    total = sum(len(rows) for _, rows in chunks)
    with _progress(args, BarColumn(), TextColumn("{task.completed}/{task.total} rows"), TimeRemainingColumn()) as progress:
        task = progress.add_task(f"importing into {dataset['name']}", total=total)
        for body, rows in chunks:
            resp = client.request("POST", path, ok=(201, 422), content=body, headers=headers)
            if resp.status == 422:
                bad = [f"row {rows[r['row'] - 1]}: {r['reason']}" for r in resp.data["error"]["rows"]]
                raise CommandError(f"{len(bad)} invalid rows ({imported} rows imported before): " + "; ".join(bad[:10]))
            imported += resp.data["imported"]
            progress.update(task, completed=imported)
    print(f"imported {imported} items into {dataset['name']}", file=sys.stderr)
    return 0


def _ensure_dataset(client: Client, name: str, *, create: bool) -> dict[str, Any]:
    resp = client.request("GET", _dataset_path(name), ok=(200, 404))
    if resp.status == 200:
        return resp.data
    if not create:
        raise CommandError(f"dataset {name!r} not found (leave out --no-create to create it)")
    created = client.request("POST", "/api/datasets", ok=(201,), json={"name": name}).data
    print(f"created dataset {name}", file=sys.stderr)
    return created
