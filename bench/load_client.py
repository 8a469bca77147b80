"""The load generator process: N concurrent in-flight OTLP/gRPC Export calls from a template pool.

Runs in its own process so the orchestrator's bookkeeping never shares its event loop. Uses a
raw channel (`request_serializer=None`): each call sends bytes rendered from a pre-serialized
template (see otlp_load.py), so the client's per-request CPU is gRPC itself plus ~40 us.

    python bench/load_client.py --target 127.0.0.1:4317 --pool-file POOL --concurrency 16 \\
        --warmup 3 --seconds 20

Prints one JSON object: spans whose ack arrived inside the measured window, refusals, errors by code,
latency percentiles, and totals over the whole run (warm-up included).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import pickle
import sys
import time

import grpc

EXPORT_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class _Stats:
    def __init__(self) -> None:
        self.window_spans = 0
        self.window_requests = 0
        self.window_refusals = 0
        self.total_spans = 0
        self.total_requests = 0
        self.refusals = 0
        self.errors: dict[str, int] = {}
        self.error_samples: dict[str, str] = {}
        self.latencies: list[float] = []


class _Pacer:
    """Spaces calls `1/rate` seconds apart across all workers (None: as fast as they can)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self.next = time.monotonic()

    async def turn(self) -> None:
        if not self.interval:
            return
        slot = max(self.next, time.monotonic())
        self.next = slot + self.interval
        delay = slot - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)


async def _worker(call, pool, counter, stats: _Stats, window: tuple[float, float], stop_at: float,
                  retry_pause: float, metadata, pacer: _Pacer) -> None:
    start, end = window
    while time.monotonic() < stop_at:
        await pacer.turn()
        now = time.monotonic()
        template = pool[next(counter) % len(pool)]
        body = template.render_now()
        try:
            await call(body, timeout=60, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            code = exc.code()
            name = code.name if time.monotonic() < stop_at else f"{code.name}_after_window"
            stats.errors[name] = stats.errors.get(name, 0) + 1
            stats.error_samples.setdefault(name, f"{exc.details()} | {exc.debug_error_string()}"[:300])
            if code == grpc.StatusCode.RESOURCE_EXHAUSTED:
                stats.refusals += 1
                if start <= time.monotonic() <= end:
                    stats.window_refusals += 1
            elif code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED) and time.monotonic() >= stop_at:
                return
            await asyncio.sleep(retry_pause)
            continue
        done = time.monotonic()
        stats.total_spans += template.spans
        stats.total_requests += 1
        if start <= done <= end:  # acked inside the window: unbiased in steady state
            stats.window_spans += template.spans
            stats.window_requests += 1
            stats.latencies.append(done - now)


async def run(target: str, pool: list, *, concurrency: int, warmup: float, seconds: float, channels: int,
              retry_pause: float, drain: float = 30.0, api_key: str | None = None, rate: float | None = None) -> dict:
    options = [("grpc.max_send_message_length", 64 * 1024 * 1024), ("grpc.use_local_subchannel_pool", 1)]
    chans = [grpc.aio.insecure_channel(target, options=options) for _ in range(channels)]
    for channel in chans:
        await asyncio.wait_for(channel.channel_ready(), 30)
    calls = [c.unary_unary(EXPORT_METHOD, request_serializer=None, response_deserializer=None) for c in chans]
    metadata = (("authorization", f"Bearer {api_key}"),) if api_key else None
    stats = _Stats()
    counter = itertools.count(int.from_bytes(os.urandom(2), "big"))
    print("started", flush=True)  # the orchestrator aligns its CPU/RSS sampling on this line
    begin = time.monotonic()
    window = (begin + warmup, begin + warmup + seconds)
    pacer = _Pacer(rate)
    workers = [
        asyncio.create_task(_worker(calls[i % channels], pool, counter, stats, window, window[1], retry_pause, metadata, pacer))
        for i in range(concurrency)
    ]
    # Calls still in flight `drain` seconds after the window are cancelled (counted, not errors).
    _, pending = await asyncio.wait(workers, timeout=max(0.0, window[1] - time.monotonic()) + drain)
    cancelled = len(pending)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    elapsed = time.monotonic() - begin
    for channel in chans:
        await channel.close()
    lat = sorted(stats.latencies)

    def pct(p: float) -> float | None:
        return round(lat[min(len(lat) - 1, int(p * len(lat)))] * 1000, 1) if lat else None

    return {
        "spans_per_s": stats.window_spans / seconds,
        "window_seconds": seconds,
        "window_spans": stats.window_spans,
        "window_requests": stats.window_requests,
        "window_refusals": stats.window_refusals,
        "total_spans_acked": stats.total_spans,
        "total_requests_acked": stats.total_requests,
        "refusals": stats.refusals,
        "errors": stats.errors,
        "error_samples": stats.error_samples,
        "cancelled_at_end": cancelled,
        "latency_ms": {"p50": pct(0.5), "p90": pct(0.9), "p99": pct(0.99), "max": pct(1.0)},
        "elapsed_s": round(elapsed, 2),
        "client_cpu_s": round(time.process_time(), 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--target", required=True)
    parser.add_argument("--pool-file", required=True, help="pickled list of otlp_load.Template")
    parser.add_argument("--concurrency", type=int, default=16, help="in-flight Export calls")
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels (HTTP/2 connections)")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--retry-pause-ms", type=float, default=10.0, help="pause after a refused call")
    parser.add_argument("--drain-seconds", type=float, default=30.0, help="wait for in-flight calls after the window")
    parser.add_argument("--api-key")
    parser.add_argument("--rate", type=float, help="requests per second in all (default: as fast as acks allow)")
    args = parser.parse_args()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # for unpickling otlp_load.Template
    with open(args.pool_file, "rb") as f:
        pool = pickle.load(f)
    result = asyncio.run(
        run(args.target, pool, concurrency=args.concurrency, warmup=args.warmup, seconds=args.seconds,
            channels=args.channels, retry_pause=args.retry_pause_ms / 1000, drain=args.drain_seconds,
            api_key=args.api_key, rate=args.rate)
    )
    print(json.dumps(result))


if __name__ == "__main__":
    main()
