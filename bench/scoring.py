"""Scoring benchmark (issue 6): batch throughput end to end, against a real `spanlake serve`.

Phases, each against a fresh server on free 127.0.0.1 ports:
  1. no_errors   N traces (3 spans each) ingested over OTLP/HTTP, then one POST /api/scores/batch
                 with their ids; traces/s from the POST until the batch reads `completed`.
                 Target >= 2,000 traces/s.
  2. llm_judge   M traces scored by an llm_judge at concurrency C against a local OpenAI-compatible
                 endpoint answering after L seconds (tests/scoring_endpoints.py, in its own process).
                 The bound is C / L traces/s (160/s for 32 and 0.2 s); target >= 0.9 of it.

    python bench/scoring.py                       # 10k no_errors + 2,400 judge traces (~40 s)
    python bench/scoring.py --traces 2000 --judge-traces 600    # quick
    python bench/scoring.py --engine-only         # + the judge batch through a sleep-only scorer
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))

from otlp_builders import llm_trace, request  # noqa: E402
from server_process import ServerProcess  # noqa: E402


def ingest(server: ServerProcess, n: int, per_request: int = 500) -> list[str]:
    ids: list[str] = []
    start_ns = time.time_ns() - n * 1_000_000
    with httpx.Client(timeout=60) as client:
        for lo in range(0, n, per_request):
            spans = []
            for i in range(lo, min(n, lo + per_request)):
                trace_id, trace_spans = llm_trace(3, start_ns=start_ns + i * 1_000_000, error=(i % 10 == 0))
                ids.append(trace_id)
                spans += trace_spans
            resp = client.post(
                f"{server.http_url}/v1/traces",
                content=request(spans).SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
            )
            resp.raise_for_status()
    return ids


def cpu_seconds(pid: int) -> float:
    """user + system CPU of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_batch(server: ServerProcess, scorer: str, ids: list[str]) -> dict:
    assert server.proc is not None
    cpu0 = cpu_seconds(server.proc.pid)
    with httpx.Client(timeout=120) as client:
        t0 = time.perf_counter()
        resp = client.post(f"{server.http_url}/api/scores/batch", json={"scorer": scorer, "trace_ids": ids})
        accepted_s = time.perf_counter() - t0
        resp.raise_for_status()
        batch_id = resp.json()["batch_id"]
        while True:
            batch = client.get(f"{server.http_url}/api/scores/batches/{batch_id}").json()
            if batch["status"] in ("completed", "failed"):
                break
            time.sleep(0.05)
        wall_s = time.perf_counter() - t0
    cpu_s = cpu_seconds(server.proc.pid) - cpu0
    created = dt.datetime.fromisoformat(batch["created_at"].replace("Z", "+00:00"))
    finished = dt.datetime.fromisoformat(batch["finished_at"].replace("Z", "+00:00"))
    server_s = (finished - created).total_seconds()
    return {
        "traces": len(ids),
        "status": batch["status"],
        "completed": batch["completed"],
        "failed": batch["failed"],
        "accept_s": round(accepted_s, 3),
        "wall_s": round(wall_s, 3),
        "server_s": round(server_s, 3),
        "traces_per_s": round(len(ids) / wall_s, 1),
        "server_cpu_ms_per_trace": round(cpu_s * 1000 / len(ids), 3),
        "loadavg_1m": os.getloadavg()[0],
    }


def bench_no_errors(n: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp, ServerProcess(Path(tmp) / "data") as server:
        ids = ingest(server, n)
        result = run_batch(server, "no_errors", ids)
    result["target_per_s"] = 2000
    return result


def bench_engine_only(n: int, concurrency: int, latency: float) -> dict:
    """The same batch through an async Python scorer that only sleeps: the engine without HTTP."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "spanlake.yaml"
        config.write_text(
            json.dumps(
                {"scorers": [{"name": "sleeper", "type": "scoring_endpoints:sleeps", "concurrency": concurrency,
                              "params": {"seconds": latency}}]}
            )
        )
        env = {"PYTHONPATH": str(HERE.parent / "tests")}
        with ServerProcess(Path(tmp) / "data", "--config", str(config), env=env) as server:
            ids = ingest(server, n)
            result = run_batch(server, "sleeper", ids)
    bound = concurrency / latency
    result.update(bound_per_s=bound, ratio=round(result["traces_per_s"] / bound, 3))
    return result


def spawn_endpoint(latency: float) -> tuple[subprocess.Popen, str]:
    """The judge endpoint in a process of its own, as a remote LLM service would be; stops when stdin closes."""
    code = (
        f"import sys; sys.path.insert(0, {str(HERE.parent / 'tests')!r})\n"
        "from scoring_endpoints import ScoringEndpoints\n"
        f"ep = ScoringEndpoints(latency_s={latency!r}).start()\n"
        "print(ep.url, flush=True)\n"
        "sys.stdin.read()\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    return proc, proc.stdout.readline().strip()


def bench_judge(n: int, concurrency: int, latency: float) -> dict:
    endpoint, url = spawn_endpoint(latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            config = Path(tmp) / "spanlake.yaml"
            config.write_text(
                json.dumps(
                    {
                        "scorers": [
                            {
                                "name": "judge",
                                "type": "llm_judge",
                                "concurrency": concurrency,
                                "timeout_s": 30,
                                "params": {
                                    "model": "bench-judge",
                                    "base_url": f"{url}/v1",
                                    "prompt": "trace={{trace_id}}\nQ: {{input}}\nA: {{output}}\nScore 0..1 as JSON.",
                                },
                            }
                        ]
                    }
                )
            )
            with ServerProcess(Path(tmp) / "data", "--config", str(config)) as server:
                ids = ingest(server, n)
                result = run_batch(server, "judge", ids)
    finally:
        assert endpoint.stdin is not None
        endpoint.stdin.close()
        endpoint.wait(10)
    bound = concurrency / latency
    result.update(concurrency=concurrency, latency_s=latency, bound_per_s=bound, ratio=round(result["traces_per_s"] / bound, 3))
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=int, default=10_000, help="traces for the no_errors phase")
    parser.add_argument("--judge-traces", type=int, default=2_400, help="traces for the llm_judge phase")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--latency", type=float, default=0.2, help="judge endpoint latency, seconds")
    parser.add_argument("--skip-judge", action="store_true")
    parser.add_argument("--engine-only", action="store_true",
                        help="also run the judge phase's batch through a scorer that only sleeps (no HTTP)")
    args = parser.parse_args()
    print(f"# {platform.platform()}, {os.cpu_count()} CPUs, Python {platform.python_version()}")
    result = bench_no_errors(args.traces)
    print("no_errors:", json.dumps(result))
    if not args.skip_judge:
        result = bench_judge(args.judge_traces, args.concurrency, args.latency)
        print("llm_judge:", json.dumps(result))
    if args.engine_only:
        result = bench_engine_only(args.judge_traces, args.concurrency, args.latency)
        print("engine_only:", json.dumps(result))


if __name__ == "__main__":
    main()
