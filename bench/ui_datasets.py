"""Datasets pages benchmark (issue 17): render times of /datasets and /datasets/{name} at 10k records.

A fresh `spanlake serve` on free ports; N items like captured LLM calls (bench/datasets.py's
`item`) are imported, then each page is fetched repeatedly and its p50/p95 reported. The target:
the dataset page with 10k records under 300 ms p50 (server time; measured here as the wall time of
a localhost request, which includes it). Only one page of records (50) is ever read.

    python bench/ui_datasets.py                # 10k records
    python bench/ui_datasets.py --items 50000
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from datasets import load  # noqa: E402
from server_process import ServerProcess  # noqa: E402


def timed(http: httpx.Client, url: str, repeat: int) -> tuple[float, float]:
    http.get(url).raise_for_status()  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        resp = http.get(url)
        times.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp)) as server:
        http = httpx.Client(base_url=server.http_url, timeout=600)
        http.post("/api/datasets", json={"name": "bench"}).raise_for_status()
        load(http, "bench", args.items, 5_000)
        page = http.get("/api/datasets/bench/items", params={"limit": 50}).json()
        as_of = (dt.datetime.now(dt.timezone.utc) - dt.timedelta(seconds=0)).strftime("%Y-%m-%dT%H:%M:%S")
        urls = {
            "/datasets": "/datasets",
            "preview (first 5)": "/datasets/bench/preview",
            "dataset, timestamp": "/datasets/bench",
            "dataset, topic": "/datasets/bench?sort=topic",
            "dataset, evaluation": "/datasets/bench?sort=evaluation",
            "dataset, page 2": f"/datasets/bench?cursor={page['next_cursor']}",
            "dataset, as of": f"/datasets/bench?as_of={as_of}",
        }
        for label, url in urls.items():
            p50, p95 = timed(http, url, args.repeat)
            print(f"{label:22s} {args.items} records: p50 {p50:6.1f} ms, p95 {p95:6.1f} ms")


if __name__ == "__main__":
    main()
