"""Soak: send at twice the sustainable rate for minutes; memory must stay flat, refusals must
carry retry hints, and what is accepted must keep flowing.

    python bench/soak.py                   # 10 s to find the sustainable rate, then 5 min at 2x
    python bench/soak.py --minutes 1 --json out.json

Phase 1 measures the rate spanlake sustains with 16 closed-loop senders. Phase 2 sends
open-loop (requests leave on a clock, whatever the answers) at `--factor` times that rate, with
at most `--max-in-flight` calls outstanding so the client itself stays bounded. Every
`--interval` seconds it records acked spans/s, refusals by code, and the server's RSS. Exit
code 1 when a check fails: peak RSS above `--rss-limit-mb`, a refusal without RetryInfo, or
an interval in the second half acking less than `--floor` of phase 1's rate.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grpc
from google.rpc import error_details_pb2, status_pb2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from otlp_load import SPANS_PER_REQUEST, TRACES_PER_REQUEST, build_pool  # noqa: E402
from server_process import ServerProcess  # noqa: E402

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def has_retry_info(exc: grpc.aio.AioRpcError) -> bool:
    for key, value in exc.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            info = error_details_pb2.RetryInfo()
            return any(detail.Unpack(info) for detail in status.details)
    return False


class Sender:
    def __init__(self, channel: grpc.aio.Channel, pool: list):
        self.call = channel.unary_unary(EXPORT, request_serializer=None, response_deserializer=None)
        self.pool = pool
        self.index = 0
        self.in_flight = 0
        self.acked = 0
        self.refused: dict[str, int] = {}
        self.refused_without_retry_info = 0

    async def send_one(self) -> None:
        self.index += 1
        body = self.pool[self.index % len(self.pool)].render(os.urandom(16 * TRACES_PER_REQUEST), time.time_ns() >> 32)
        self.in_flight += 1
        try:
            await self.call(body, timeout=30)
            self.acked += SPANS_PER_REQUEST
        except grpc.aio.AioRpcError as exc:
            code = exc.code().name
            self.refused[code] = self.refused.get(code, 0) + 1
            if exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and not has_retry_info(exc):
                self.refused_without_retry_info += 1
        finally:
            self.in_flight -= 1


async def sustainable_rate(target: str, pool: list, seconds: float) -> float:
    async with grpc.aio.insecure_channel(target) as channel:
        sender = Sender(channel, pool)
        deadline = time.monotonic() + seconds

        async def loop() -> None:
            while time.monotonic() < deadline:
                await sender.send_one()

        await asyncio.gather(*(loop() for _ in range(16)))
        return sender.acked / seconds


async def soak(target: str, pid: int, pool: list, rate_spans: float, seconds: float, interval: float, max_in_flight: int) -> list[dict]:
    rows: list[dict] = []
    async with grpc.aio.insecure_channel(target) as channel:
        sender = Sender(channel, pool)
        requests_per_s = rate_spans / SPANS_PER_REQUEST
        started = time.monotonic()
        next_report = started + interval
        last_acked, last_refused, sent, skipped = 0, 0, 0, 0
        tasks: set[asyncio.Task] = set()
        peak = 0.0
        while (now := time.monotonic()) < started + seconds:
            due = int((now - started) * requests_per_s) - sent
            for _ in range(max(0, due)):
                sent += 1
                if sender.in_flight >= max_in_flight:
                    skipped += 1  # the client's own bound: counted, not sent
                    continue
                task = asyncio.create_task(sender.send_one())
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            peak = max(peak, rss_mb(pid))
            if now >= next_report:
                refused = sum(sender.refused.values())
                rows.append({
                    "t": round(now - started),
                    "acked_spans_per_s": round((sender.acked - last_acked) / interval),
                    "refused_per_s": round((refused - last_refused) / interval, 1),
                    "rss_mb": round(rss_mb(pid)),
                    "peak_rss_mb": round(peak),
                    "in_flight": sender.in_flight,
                })
                print(f"  {rows[-1]}", file=sys.stderr, flush=True)
                last_acked, last_refused = sender.acked, refused
                next_report += interval
            await asyncio.sleep(0.005)
        await asyncio.gather(*tasks, return_exceptions=True)
    rows.append({"refused_by_code": sender.refused, "refused_without_retry_info": sender.refused_without_retry_info,
                 "client_skipped": skipped, "sent": sent})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=5.0)
    parser.add_argument("--factor", type=float, default=2.0, help="times the sustainable rate")
    parser.add_argument("--calibrate-seconds", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--max-in-flight", type=int, default=1500)
    parser.add_argument("--rss-limit-mb", type=float, default=4096)
    parser.add_argument("--floor", type=float, default=0.5, help="2nd-half intervals must ack >= floor x sustainable")
    parser.add_argument("--server-arg", action="append", default=[])
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    pool = build_pool(256)
    server = ServerProcess(Path(tempfile.mkdtemp(prefix="spanlake-soak-")), *args.server_arg).start(timeout=60)
    try:
        rate = asyncio.run(sustainable_rate(server.grpc_target, pool, args.calibrate_seconds))
        print(f"sustainable: {rate:,.0f} spans/s; soaking at {args.factor:g}x for {args.minutes:g} min", file=sys.stderr)
        rows = asyncio.run(soak(server.grpc_target, server.proc.pid, pool, rate * args.factor,
                                args.minutes * 60, args.interval, args.max_in_flight))
    finally:
        server.stop(timeout=120)
    intervals, totals = rows[:-1], rows[-1]
    second_half = intervals[len(intervals) // 2:] or intervals
    acked = [r["acked_spans_per_s"] for r in intervals]
    peak = max((r["peak_rss_mb"] for r in intervals), default=0)
    result = {
        "sustainable_spans_per_s": round(rate),
        "offered_spans_per_s": round(rate * args.factor),
        "acked_spans_per_s": {"min": min(acked, default=0), "median": statistics.median(acked) if acked else 0, "max": max(acked, default=0)},
        "second_half_min_acked": min((r["acked_spans_per_s"] for r in second_half), default=0),
        "peak_rss_mb": peak,
        "rss_first_interval_mb": intervals[0]["rss_mb"] if intervals else None,
        "rss_last_interval_mb": intervals[-1]["rss_mb"] if intervals else None,
        **totals,
        "intervals": intervals,
    }
    failures = []
    if peak > args.rss_limit_mb:
        failures.append(f"peak RSS {peak} MB > {args.rss_limit_mb} MB")
    if totals["refused_without_retry_info"]:
        failures.append(f"{totals['refused_without_retry_info']} refusals without RetryInfo")
    if result["second_half_min_acked"] < args.floor * rate:
        failures.append(f"accepted throughput fell to {result['second_half_min_acked']} spans/s (< {args.floor} x {rate:.0f})")
    result["failures"] = failures
    print(json.dumps({k: v for k, v in result.items() if k != "intervals"}, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
