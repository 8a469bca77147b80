"""Query latency at scale: seed spans through the real OTLP/gRPC ingest path, then time the API.

    python bench/query.py                      # 1M spans over the last 24 h
    python bench/query.py --spans 10000000     # the 10M figure of issue 3
    python bench/query.py --data DIR --reuse   # query an already seeded data dir again

Seeding sends the load generator's realistic LLM requests (bench/otlp_load.py: 10 traces x 10
spans, ~10 attributes a span) with timestamps advancing from `--hours` ago to now, the way a
live store fills up, so the time-ordered layout and zone maps are what production would get.
Then it scores the last hour's traces with `no_errors` through the batch API and measures
p50/p95 over `--repeat` calls of: trace by id, trace list for the last hour, span search
(`attributes.gen_ai.request.model eq` + `duration_ms gt`, last hour), and a `score.<name>` filter.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from otlp_load import TRACES_PER_REQUEST, SPANS_PER_REQUEST, build_pool  # noqa: E402
from server_process import ServerProcess  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


async def seed(target: str, spans: int, hours: float, concurrency: int, sample_ids: list[str]) -> float:
    """Send `spans` spans with times spread over the last `hours`; returns spans/s."""
    pool = build_pool(64)
    requests = spans // SPANS_PER_REQUEST
    now = time.time_ns()
    span_ns = int(hours * 3600e9)
    next_index = 0
    sent = 0
    started = time.perf_counter()
    rng = random.Random(7)

    async with grpc.aio.insecure_channel(target) as channel:
        call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)

        async def worker() -> None:
            nonlocal next_index, sent
            while next_index < requests:
                index = next_index
                next_index += 1
                ids = os.urandom(16 * TRACES_PER_REQUEST)
                if rng.random() < 0.02 and len(sample_ids) < 500:
                    sample_ids.append(ids[:16].hex())
                at = now - span_ns + span_ns * index // requests
                body = pool[index % len(pool)].render(ids, at >> 32)
                while True:
                    try:
                        await call(body, timeout=60)
                        break
                    except grpc.aio.AioRpcError as exc:
                        if exc.code() not in (grpc.StatusCode.RESOURCE_EXHAUSTED, grpc.StatusCode.UNAVAILABLE):
                            raise
                        await asyncio.sleep(0.2)
                sent += SPANS_PER_REQUEST
                if index % 2000 == 0:
                    rate = sent / (time.perf_counter() - started)
                    print(f"  seeded {sent:,} spans ({rate:,.0f} spans/s)", file=sys.stderr, flush=True)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return sent / (time.perf_counter() - started)


def score_last_hour(client: httpx.Client, since: float) -> int:
    """Score the last hour's traces with no_errors through the batch API; wait for completion."""
    flt = {"field": "start_time", "op": "gte", "value": since}
    resp = client.post("/api/scores/batch", json={"scorer": "no_errors", "filter": flt, "limit": 100_000})
    resp.raise_for_status()
    batch = resp.json()["batch_id"]
    while True:
        status = client.get(f"/api/scores/batches/{batch}").json()
        if status["status"] in ("completed", "failed"):
            return status["completed"]
        time.sleep(0.5)


def timed(client: httpx.Client, path: str, params: dict | None, repeat: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        resp = client.get(path, params=params)
        samples.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--hours", type=float, default=24.0, help="seeded spans span this many past hours")
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--data", help="data dir (default: a new temp dir)")
    parser.add_argument("--reuse", action="store_true", help="skip seeding: --data already holds spans")
    parser.add_argument("--store", help="--store URL passed to spanlake serve (e.g. a DuckLake)")
    parser.add_argument("--data-path", help="--data-path passed to spanlake serve")
    args = parser.parse_args()

    data = Path(args.data or tempfile.mkdtemp(prefix="spanlake-query-bench-"))
    data.mkdir(parents=True, exist_ok=True)  # a lake store does not create it, and the ids file lives here
    extra = []
    if args.store:
        extra += ["--store", args.store]
    if args.data_path:
        extra += ["--data-path", args.data_path]
    server = ServerProcess(data, *extra).start(timeout=120)
    ids_file = data / "bench-trace-ids.json"
    try:
        client = httpx.Client(base_url=server.http_url, timeout=120)
        sample_ids: list[str] = []
        if not args.reuse:
            rate = asyncio.run(seed(server.grpc_target, args.spans, args.hours, args.concurrency, sample_ids))
            ids_file.write_text(json.dumps(sample_ids))
            print(f"seeded {args.spans:,} spans at {rate:,.0f} spans/s")
        else:
            sample_ids = json.loads(ids_file.read_text())
        hour_ago = time.time() - 3600
        scored = score_last_hour(client, hour_ago)
        print(f"scored {scored:,} traces of the last hour with no_errors")

        since = str(hour_ago)
        rows = []
        ids = iter(sample_ids * (args.repeat // max(1, len(sample_ids)) + 1))
        samples = []
        for _ in range(args.repeat):
            trace_id = next(ids)
            started = time.perf_counter()
            client.get(f"/api/traces/{trace_id}").raise_for_status()
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        rows.append(("trace by id", statistics.median(samples), samples[int(len(samples) * 0.95) - 1]))
        rows.append(("trace list, last hour", *timed(client, "/api/traces", {"since": since}, args.repeat)))
        search = {"and": [
            {"field": "attributes.gen_ai.request.model", "op": "eq", "value": "gpt-4o"},
            {"field": "duration_ms", "op": "gt", "value": 800},
        ]}
        rows.append((
            "span search model+duration, last hour",
            *timed(client, "/api/spans", {"since": since, "filter": json.dumps(search)}, args.repeat),
        ))
        by_score = {"field": "score.no_errors", "op": "eq", "value": 0}
        rows.append(("trace list score.no_errors = 0", *timed(client, "/api/traces", {"filter": json.dumps(by_score)}, args.repeat)))
        rows.append((
            "trace list score.no_errors = 0, last hour",
            *timed(client, "/api/traces", {"since": since, "filter": json.dumps(by_score)}, args.repeat),
        ))
        print(f"\n{args.spans:,} spans over {args.hours:g} h, {args.repeat} calls each, store {args.store or 'duckdb'}")
        print("| query | p50 ms | p95 ms |\n| --- | ---: | ---: |")
        for name, p50, p95 in rows:
            print(f"| {name} | {p50:.1f} | {p95:.1f} |")
        size = sum(f.stat().st_size for f in data.rglob("*") if f.is_file())
        print(f"\ndata dir: {size / 1e6:,.0f} MB ({size / max(1, args.spans):.0f} bytes/span before checkpoint)")
    finally:
        server.stop(timeout=300)


if __name__ == "__main__":
    main()
