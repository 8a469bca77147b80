"""Web UI page latency at scale: 1M spans stored, then time the pages people open most.

    python bench/ui.py                        # 1M spans, a 200-span trace, a 10k-record dataset
    python bench/ui.py --data DIR --reuse     # time an already seeded data dir again

Seeding uses bench/query.py's realistic OTLP/gRPC load (timestamps spread over the last 24 h).
Then one 200-span trace (an agent with nested LLM and tool spans) and a dataset of 10,000 records
like captured LLM calls (bench/datasets.py's items, imported as JSONL) are added. Each page is fetched `--repeat` times over loopback and the p50/p95 of the whole
request is reported: an upper bound of the server's time (the HTML crosses loopback too).
The issue's targets: traces page and a 200-span trace page under 300 ms p50 with 1M spans, the
dataset page with 10k records under 300 ms p50.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))

from datasets import load  # noqa: E402
from otlp_builders import new_span_id, new_trace_id, request, span  # noqa: E402
from query import seed, timed  # noqa: E402
from server_process import ServerProcess  # noqa: E402

DATASET = "ui-bench-10k"


def big_trace(spans: int = 200) -> tuple[str, str, list]:
    """A root agent with `spans - 1` children three levels deep; returns (trace id, a mid span id, spans)."""
    trace_id, root = new_trace_id(), new_span_id()
    start = time.time_ns() - 60_000_000_000
    made = [span(trace_id, root, "agent.run", start_ns=start, duration_ms=spans * 12.0, attributes={"input.value": "plan a trip"})]
    parents = [root]
    for i in range(1, spans):
        span_id = new_span_id()
        parent = parents[min(len(parents) - 1, i % 3)]
        made.append(span(
            trace_id, span_id, f"chat step {i}", parent=parent, start_ns=start + i * 10_000_000, duration_ms=9.0,
            attributes={
                "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 100 + i, "gen_ai.usage.output_tokens": 20,
                "gen_ai.prompt.0.role": "user", "gen_ai.prompt.0.content": f"step {i}: " + "context " * 40,
                "gen_ai.completion.0.role": "assistant", "gen_ai.completion.0.content": f"answer {i}",
            },
        ))
        if i % 20 == 0:
            parents.append(span_id)
    return trace_id, made[len(made) // 2].span_id.hex(), made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=1_000_000)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--data", help="data dir (default: a new temp dir)")
    parser.add_argument("--reuse", action="store_true", help="skip seeding: --data already holds everything")
    args = parser.parse_args()

    data = Path(args.data or tempfile.mkdtemp(prefix="spanlake-ui-bench-"))
    data.mkdir(parents=True, exist_ok=True)
    state_file = data / "ui-bench.json"
    server = ServerProcess(data).start(timeout=120)
    try:
        client = httpx.Client(base_url=server.http_url, timeout=120)
        if not args.reuse:
            rate = asyncio.run(seed(server.grpc_target, args.spans, 24.0, args.concurrency, []))
            print(f"seeded {args.spans:,} spans at {rate:,.0f} spans/s")
            trace_id, mid_span, spans = big_trace()
            body = request(spans, service="trip-agent").SerializeToString()
            client.post("/v1/traces", content=body, headers={"content-type": "application/x-protobuf"}).raise_for_status()
            client.post("/api/datasets", json={"name": DATASET}).raise_for_status()
            load(client, DATASET, args.records, 5_000)
            state_file.write_text(json.dumps({"trace_id": trace_id, "span_id": mid_span}))
        state = json.loads(state_file.read_text())
        # Let the loader and any background work settle before timing.
        client.get(f"/api/traces/{state['trace_id']}").raise_for_status()
        pages = [
            ("traces page (/)", "/", None),
            ("traces page, errors only", "/traces", {"errors": "1"}),
            ("200-span trace page", f"/traces/{state['trace_id']}", None),
            ("200-span trace page, a span selected", f"/traces/{state['trace_id']}", {"span": state["span_id"]}),
            ("`GET /api/traces/{id}`, the same trace", f"/api/traces/{state['trace_id']}", None),
            (f"dataset page, {args.records:,} records", f"/datasets/{DATASET}", None),
            ("dataset page, sorted by topic", f"/datasets/{DATASET}", {"sort": "topic"}),
            ("datasets page", "/datasets", None),
        ]
        rows = []
        for name, path, params in pages:
            client.get(path, params=params).raise_for_status()  # warm
            rows.append((name, *timed(client, path, params, args.repeat)))
        print(f"\n{args.spans:,} spans stored, {args.repeat} requests each (whole request over loopback)")
        print("| page | p50 ms | p95 ms |\n| --- | ---: | ---: |")
        for name, p50, p95 in rows:
            print(f"| {name} | {p50:.1f} | {p95:.1f} |")
    finally:
        server.stop(timeout=300)


if __name__ == "__main__":
    main()
