"""Scale-out benchmark (issue 8): OTLP/gRPC ingest into one DuckLake from one replica, then two.

Each phase gets a fresh lake: a new PostgreSQL database on 127.0.0.1:5432 as the catalog and a
new Parquet directory (or `--data-path s3://bucket/prefix/` with the AWS_* variables set). The
load generator (bench/load_client.py, pre-serialized 100-span LLM requests) runs one process
per replica, all at once; a span counts as acked when its export call was acked (= in the
replica's ingest log), and as loaded once the replica's loader has committed it to the lake.

    python bench/lake.py                       # 1 vs 2 replicas, 20 s windows
    python bench/lake.py --seconds 40 --concurrency 16
    python bench/lake.py --retention           # expired traces deleted while two replicas ingest

Query latencies on the lake: `python bench/query.py --store ducklake:postgres:... --data-path DIR`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))
sys.path.insert(0, str(HERE))

from ingest import _pool_file, run_client  # noqa: E402
from lake_env import create_database, drop_database, postgres_lake_args  # noqa: E402
from otlp_builders import llm_trace, request  # noqa: E402
from server_process import ServerProcess  # noqa: E402

DAY_NS = 86_400 * 10**9


def _metric(server: ServerProcess, name: str) -> float:
    text = httpx.get(f"{server.http_url}/metrics", timeout=30).text
    match = re.search(rf"^{name}(?:_total)? ([0-9.e+]+)$", text, re.M)
    return float(match.group(1)) if match else 0.0


def phase(replicas: int, args: argparse.Namespace, pool_file: Path, workdir: Path) -> dict:
    dbname = create_database("spanlake_bench")
    data_path = args.data_path.rstrip("/") + f"/{dbname}/" if args.data_path else f"{workdir}/{dbname}/"
    servers: list[ServerProcess] = []
    try:
        flags = [*postgres_lake_args(dbname, data_path), "--log-level", "warning"]
        for i in range(replicas):
            servers.append(ServerProcess(workdir / f"{dbname}-{i}", *flags).start(timeout=120))
        results: list[dict] = [{} for _ in servers]
        window_start: list[tuple[float, float]] = [(0.0, 0.0) for _ in servers]

        def load(i: int) -> None:
            def mark() -> None:
                window_start[i] = (time.monotonic(), _metric(servers[i], "spanlake_spans_stored"))

            results[i] = run_client(
                servers[i].grpc_target, pool_file, concurrency=args.concurrency, warmup=args.warmup,
                seconds=args.seconds, channels=2, retry_pause_ms=10, watch_pid=servers[i].proc.pid,
                on_window=mark,
            )
            # Spans the replica's loader put in the lake from the window's start until now (the
            # window plus the client's drain): the lake's pace, where acked is the ingest log's.
            started, stored = window_start[i]
            results[i]["loaded_spans_per_s"] = (_metric(servers[i], "spanlake_spans_stored") - stored) / (
                time.monotonic() - started)

        threads = [threading.Thread(target=load, args=(i,)) for i in range(replicas)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        retries = [_metric(s, "spanlake_store_conflict_retries") for s in servers]
        stored = [_metric(s, "spanlake_spans_stored") for s in servers]
        total = sum(r["spans_per_s"] for r in results)
        return {
            "replicas": replicas,
            "spans_per_s": round(total),
            "loaded_spans_per_s": round(sum(r["loaded_spans_per_s"] for r in results)),
            "per_replica_spans_per_s": [round(r["spans_per_s"]) for r in results],
            "p50_ms": [r["latency_ms"]["p50"] for r in results],
            "p99_ms": [r["latency_ms"]["p99"] for r in results],
            "cores_used": [r.get("server_cores_used") for r in results],
            "conflict_retries": retries,
            "spans_stored": stored,
            "errors": sum(sum(r["errors"].values()) for r in results),
            "error_samples": [r["error_samples"] for r in results if r["error_samples"]],
            "refusals": sum(r["refusals"] for r in results),
        }
    finally:
        for server in servers:
            server.stop(timeout=300)
        drop_database(dbname)


def retention_under_load(args: argparse.Namespace, pool_file: Path, workdir: Path) -> dict:
    """4,000 traces 10 days old; two replicas ingest nonstop; how many expired traces go, how fast."""
    dbname = create_database("spanlake_bench")
    lake = postgres_lake_args(dbname, f"{workdir}/{dbname}/")
    config = workdir / f"{dbname}.yaml"
    config.write_text("retention: {default_days: 7, interval_seconds: 1, chunk_traces: 500}\n")
    servers: list[ServerProcess] = []
    try:
        seeder = ServerProcess(workdir / f"{dbname}-seed", *lake).start(timeout=120)
        now = time.time_ns()
        for i in range(40):
            spans = [s for _ in range(100) for s in llm_trace(3, start_ns=now - 10 * DAY_NS + i * 10**9)[1]]
            httpx.post(f"{seeder.http_url}/v1/traces", content=request(spans, service="old").SerializeToString(),
                       headers={"content-type": "application/x-protobuf"}, timeout=60).raise_for_status()
        seeder.stop()
        for i in range(2):
            servers.append(ServerProcess(workdir / f"{dbname}-{i}", *lake, "--config", str(config),
                                         "--log-level", "warning").start(timeout=120))
        started = time.monotonic()
        loads = [threading.Thread(target=run_client, args=(s.grpc_target, pool_file), kwargs=dict(
            concurrency=args.concurrency, warmup=1, seconds=args.seconds, channels=2, retry_pause_ms=10)) for s in servers]
        for t in loads:
            t.start()
        done_at = None
        while any(t.is_alive() for t in loads):
            deleted = sum(_metric(s, "spanlake_maintenance_traces_deleted") for s in servers)
            if deleted >= 4000 and done_at is None:
                done_at = time.monotonic() - started
            time.sleep(1)
        for t in loads:
            t.join()
        return {
            "expired_traces_deleted": sum(_metric(s, "spanlake_maintenance_traces_deleted") for s in servers),
            "all_deleted_after_s": None if done_at is None else round(done_at, 1),
            "conflict_retries": [_metric(s, "spanlake_store_conflict_retries") for s in servers],
            "fenced_writes": [_metric(s, "spanlake_write_fences") for s in servers],
            "ingest_window_s": args.seconds,
        }
    finally:
        for server in servers:
            server.stop(timeout=300)
        drop_database(dbname)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=8, help="in-flight export calls per replica")
    parser.add_argument("--data-path", help="Parquet location (default: a temp directory; s3://... uses AWS_*)")
    parser.add_argument("--pool", type=int, default=256, help="request templates")
    parser.add_argument("--retention", action="store_true", help="measure retention under two replicas' ingest")
    args = parser.parse_args()
    pool_file = _pool_file(args.pool, 2)
    workdir = Path(tempfile.mkdtemp(prefix="spanlake-lake-bench-"))
    if args.retention:
        print(json.dumps(retention_under_load(args, pool_file, workdir)))
        return
    rows = [phase(n, args, pool_file, workdir) for n in (1, 2)]
    for row in rows:
        print(json.dumps(row))
    one, two = rows
    print("\n| replicas | spans/s acked (sum) | spans/s loaded into the lake (sum) | per replica (acked) | "
          "p50 / p99 ms per replica | conflict retries |")
    print("| ---: | ---: | ---: | --- | --- | --- |")
    for row in rows:
        lat = ", ".join(f"{a:g} / {b:g}" for a, b in zip(row["p50_ms"], row["p99_ms"]))
        print(f"| {row['replicas']} | {row['spans_per_s']:,} | {row['loaded_spans_per_s']:,} | "
              f"{row['per_replica_spans_per_s']} | {lat} | {[int(r) for r in row['conflict_retries']]} |")
    print(f"\ntwo replicas / one replica: {two['spans_per_s'] / max(1, one['spans_per_s']):.2f}x")


if __name__ == "__main__":
    main()
