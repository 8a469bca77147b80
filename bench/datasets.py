"""Datasets benchmark (issue 4): import then export a dataset of N items through a real server.

A fresh `spanlake serve` on free ports; the dataset is loaded through POST .../import (JSONL,
in chunks), then each export format is downloaded with a streaming client and read back with its
own reader (line count, csv, pyarrow) to check nothing is missing. Items look like captured LLM
calls: a chat-message list input, a text answer, metadata, topic and tags.

    python bench/datasets.py                 # 100k items, every format
    python bench/datasets.py --items 20000   # smaller
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import httpx
import pyarrow.parquet as pq

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # ServerProcess: a real `spanlake serve` on free ports

from server_process import ServerProcess  # noqa: E402

FORMATS = ("jsonl", "parquet", "csv", "openai")


def item(n: int) -> dict:
    return {
        "input": [
            {"role": "system", "content": "You are a support agent for an online shop. Answer briefly."},
            {"role": "user", "content": f"Order #{n:07d} has not arrived yet; it was due three days ago. What can I do?"},
        ],
        "expected_output": f"Sorry about order #{n:07d}. I have opened a trace request and you will get an update by email.",
        "metadata": {"customer_tier": ("gold", "silver", "basic")[n % 3], "latency_ms": 100 + n % 900, "n": n},
        "topic": ("shipping", "refunds", "accounts", "")[n % 4] or None,
        "tags": ["prod", f"week-{n % 52}"],
    }


def load(http: httpx.Client, dataset: str, total: int, chunk: int) -> float:
    started = time.perf_counter()
    for start in range(0, total, chunk):
        body = "".join(json.dumps(item(n)) + "\n" for n in range(start, min(total, start + chunk)))
        resp = http.post(f"/api/datasets/{dataset}/import", content=body, headers={"content-type": "application/x-ndjson"})
        resp.raise_for_status()
    return time.perf_counter() - started


def rows_in(fmt: str, data: bytes) -> int:
    if fmt in ("jsonl", "openai"):
        return sum(1 for line in data.splitlines() if json.loads(line))
    if fmt == "csv":
        return sum(1 for _ in csv.DictReader(io.StringIO(data.decode())))
    return pq.read_table(io.BytesIO(data)).num_rows


def export(http: httpx.Client, dataset: str, fmt: str) -> tuple[float, float, int]:
    """(seconds to the last byte, seconds to the first byte, bytes)."""
    started = time.perf_counter()
    first = None
    buf = bytearray()
    with http.stream("GET", f"/api/datasets/{dataset}/export", params={"format": fmt}) as resp:
        resp.raise_for_status()
        for chunk in resp.iter_bytes():
            if first is None:
                first = time.perf_counter() - started
            buf += chunk
    elapsed = time.perf_counter() - started
    count = rows_in(fmt, bytes(buf))
    return elapsed, first or elapsed, count, len(buf)  # type: ignore[return-value]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--chunk", type=int, default=25_000, help="rows per import request")
    parser.add_argument("--formats", default=",".join(FORMATS))
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp)) as server:
        http = httpx.Client(base_url=server.http_url, timeout=600)
        http.post("/api/datasets", json={"name": "bench"}).raise_for_status()
        seconds = load(http, "bench", args.items, args.chunk)
        print(f"import: {args.items} items in {seconds:.2f} s ({args.items / seconds:,.0f} items/s, chunks of {args.chunk})")
        for fmt in args.formats.split(","):
            elapsed, first, count, size = export(http, "bench", fmt)
            expected = args.items if fmt != "openai" else args.items  # every bench item has an expected output
            status = "ok" if count == expected else f"MISMATCH: {count} rows read back"
            print(
                f"export {fmt:8s}: {args.items} items in {elapsed:.2f} s ({args.items / elapsed:,.0f} items/s), "
                f"first byte {first * 1000:.0f} ms, {size / 1e6:.1f} MB, {status}"
            )


if __name__ == "__main__":
    main()
