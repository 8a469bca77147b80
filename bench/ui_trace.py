"""Trace page benchmark (issue 17): render time of a 200-span trace page with 1M spans stored.

A fresh `spanlake serve` on free ports is seeded through OTLP/gRPC the way bench/query.py does
(realistic LLM requests, times over the last `--hours`), then one 200-span trace (an agent with
nested chat and tool spans carrying prompts) is sent over OTLP/HTTP. Timed, `--repeat` calls each:
the whole page (`/traces/{id}`), the page with a span selected (`?span=`), the detail panel alone
(what htmx asks for when a span is clicked), and `GET /api/traces/{id}` for comparison. The
target: the trace page under 300 ms p50 (server time; measured as the wall time of a localhost
request, which includes it).

    python bench/ui_trace.py                   # 1M spans
    python bench/ui_trace.py --spans 100000
"""

from __future__ import annotations

import argparse
import asyncio
import json
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

from otlp_builders import new_span_id, new_trace_id, span  # noqa: E402
from query import seed  # noqa: E402
from server_process import ServerProcess  # noqa: E402
from ui_seed import send  # noqa: E402


def big_trace(n_spans: int) -> tuple[str, str, list]:
    """An agent: every fifth span opens a level; chat spans carry a system + user prompt."""
    trace_id, root = new_trace_id(), new_span_id()
    start = time.time_ns() - 60_000_000_000
    spans = [span(trace_id, root, "agent.run", start_ns=start, duration_ms=n_spans * 25.0, attributes={"input.value": "plan a trip"})]
    parents = [root]
    for i in range(n_spans - 1):
        sid = new_span_id()
        messages = [{"role": "system", "content": "You are a travel agent. " * 20}, {"role": "user", "content": f"step {i}: " + "details " * 40}]
        attributes = (
            {"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 80,
             "gen_ai.input.messages": json.dumps(messages), "gen_ai.output.messages": json.dumps([{"role": "assistant", "content": "ok " * 30}])}
            if i % 2 == 0 else {"gen_ai.operation.name": "execute_tool", "input.value": json.dumps({"step": i})}
        )
        spans.append(span(trace_id, sid, f"{'chat gpt-4o' if i % 2 == 0 else 'tool call'} {i}", parent=parents[i % len(parents)],
                          start_ns=start + (i + 1) * 20_000_000, duration_ms=18, attributes=attributes))
        if i % 5 == 0:
            parents.append(sid)
    return trace_id, spans[n_spans // 2].span_id.hex(), spans


def timed(http: httpx.Client, url: str, repeat: int, headers: dict | None = None) -> tuple[float, float]:
    http.get(url, headers=headers).raise_for_status()  # warm up
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        resp = http.get(url, headers=headers)
        times.append((time.perf_counter() - started) * 1000)
        resp.raise_for_status()
    times.sort()
    return statistics.median(times), times[max(0, int(len(times) * 0.95) - 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=1_000_000, help="background spans seeded first")
    parser.add_argument("--trace-spans", type=int, default=200)
    parser.add_argument("--hours", type=float, default=24.0)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}, load {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp)) as server:
        if args.spans:
            rate = asyncio.run(seed(server.grpc_target, args.spans, args.hours, 8, []))
            print(f"seeded {args.spans:,} spans at {rate:,.0f} spans/s")
        trace_id, span_id, spans = big_trace(args.trace_spans)
        send(server.http_url, spans, "bench-agent")
        http = httpx.Client(base_url=server.http_url, timeout=120)
        partial = {"HX-Request": "true", "HX-Target": "span-detail"}
        rows = [
            ("trace page", *timed(http, f"/traces/{trace_id}", args.repeat)),
            ("trace page, span selected", *timed(http, f"/traces/{trace_id}?span={span_id}", args.repeat)),
            ("span detail panel (htmx)", *timed(http, f"/traces/{trace_id}?span={span_id}", args.repeat, partial)),
            ("GET /api/traces/{id}", *timed(http, f"/api/traces/{trace_id}", args.repeat)),
        ]
        print(f"\n{args.spans:,} spans stored, a {args.trace_spans}-span trace, {args.repeat} calls each, load {os.getloadavg()[0]:.1f}")
        print("| request | p50 ms | p95 ms |\n| --- | ---: | ---: |")
        for name, p50, p95 in rows:
            print(f"| {name} | {p50:.1f} | {p95:.1f} |")


if __name__ == "__main__":
    main()
