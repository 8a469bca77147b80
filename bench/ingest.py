"""Ingest benchmark (issue 2): durable OTLP/gRPC ingest vs a parse-and-drop receiver, same run.

Phases, each against a fresh server process on free 127.0.0.1 ports:
  1. drop      bench/drop_receiver.py: parse ExportTraceServiceRequest, answer, keep nothing
  2. spanlake  `spanlake serve` (fresh temp data dir): spans/s acked (= committed), then
               SIGTERM (drain + CHECKPOINT) and bytes of spanlake.duckdb per stored span
  3. overload  a fresh `spanlake serve` with the default --queue-max-spans, hammered by many
               more in-flight calls for --overload-seconds: peak RSS (VmHWM, server plus any
               decode worker processes), RESOURCE_EXHAUSTED refusals, spans stored
The load generator (bench/load_client.py) runs in its own process and sends requests rendered
from pre-serialized templates (bench/otlp_load.py): 10 traces x 10 spans of LLM-agent spans.

    python bench/ingest.py                    # full run (~2.5 min)
    python bench/ingest.py --quick            # smoke run (~30 s)
    python bench/ingest.py --decode-workers 2 --profile /tmp/prof   # + py-spy of the server
"""

from __future__ import annotations

import argparse
import collections
import datetime as dt
import hashlib
import json
import os
import pickle
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import httpx

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # ServerProcess: a real `spanlake serve` on free ports
from server_process import ServerProcess  # noqa: E402

import otlp_load  # noqa: E402


# ---------------------------------------------------------------- processes and /proc


def _proc_children(pid: int) -> list[int]:
    kids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                kids.append(int(entry))
    return kids


def _status_kb(pid: int, key: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cpu_ticks() -> tuple[int, int]:
    """(steal, total) jiffies of the whole machine, from /proc/stat."""
    try:
        fields = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0, 0
    return (fields[7] if len(fields) > 7 else 0), sum(fields)


def _cpu_seconds(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime + stime
    return total


def _family(pid: int) -> list[int]:
    """pid and all its descendants (decode workers are grandchildren, under a fork server)."""
    family = [pid]
    for member in family:
        family.extend(_proc_children(member))
    return family


def _pool_file(size: int, seed: int) -> Path:
    """Build the template pool once and cache it; the key covers the generator's source."""
    digest = hashlib.sha256((HERE / "otlp_load.py").read_bytes()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"spanlake-bench-pool-{size}-{seed}-{digest}.pickle"
    if not path.exists():
        started = time.perf_counter()
        pool = otlp_load.build_pool(size, seed)
        tmp = path.with_suffix(".tmp")
        with open(tmp, "wb") as f:
            pickle.dump(pool, f, protocol=pickle.HIGHEST_PROTOCOL)
        tmp.replace(path)
        print(f"built {size} request templates in {time.perf_counter() - started:.1f}s -> {path}", flush=True)
    return path


def run_client(target: str, pool_file: Path, *, concurrency: int, warmup: float, seconds: float,
               channels: int, retry_pause_ms: float, watch_pid: int | None = None, drain: float = 30.0,
               on_window: Callable[[], None] | None = None) -> dict:
    """Run load_client.py to completion; meanwhile sample the server's RSS and CPU.

    `on_window` is called once when the measured window opens (e.g. to start a profiler).
    """
    cmd = [
        sys.executable, str(HERE / "load_client.py"), "--target", target, "--pool-file", str(pool_file),
        "--concurrency", str(concurrency), "--warmup", str(warmup), "--seconds", str(seconds),
        "--channels", str(channels), "--retry-pause-ms", str(retry_pause_ms), "--drain-seconds", str(drain),
    ]
    client = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    if client.stdout.readline().strip() != "started":  # the client's clock starts now
        client.wait()
        raise RuntimeError(f"load client failed to start ({client.returncode})")
    peak_rss_kb = 0
    cpu_start = cpu_end = 0.0
    ticks_start = ticks_end = (0, 0)
    window_start = time.monotonic() + warmup
    family: list[int] = []
    while client.poll() is None:
        if watch_pid is not None:
            family = _family(watch_pid)
            peak_rss_kb = max(peak_rss_kb, sum(_status_kb(p, "VmRSS") for p in family))
            now = time.monotonic()
            if not cpu_start and now >= window_start:
                cpu_start, cpu_t0 = _cpu_seconds(family), now
                ticks_start = _cpu_ticks()
                if on_window is not None:
                    on_window()
            if cpu_start and now <= window_start + seconds:
                cpu_end, cpu_t1 = _cpu_seconds(family), now
                ticks_end = _cpu_ticks()
        time.sleep(0.5)
    out, _ = client.communicate()
    if client.returncode:
        raise RuntimeError(f"load client failed with {client.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    if watch_pid is not None:
        result["server_peak_rss_sampled_mb"] = round(peak_rss_kb / 1024, 1)
        result["server_vmhwm_mb"] = round(sum(_status_kb(p, "VmHWM") for p in _family(watch_pid)) / 1024, 1)
        result["server_processes"] = len(family)
        if cpu_start and ticks_end[1] > ticks_start[1]:
            # Time the hypervisor gave this VM's cores to others: when it is high, every rate in
            # the run is low, and only ratios measured in the same minutes compare.
            result["steal_pct"] = round(100 * (ticks_end[0] - ticks_start[0]) / (ticks_end[1] - ticks_start[1]), 1)
        if cpu_start and cpu_end > cpu_start:
            result["server_cores_used"] = round((cpu_end - cpu_start) / (cpu_t1 - cpu_t0), 2)
            if result["spans_per_s"]:
                # CPU per span is steadier than spans/s on a shared machine: report both.
                result["server_cpu_us_per_span"] = round(result["server_cores_used"] / result["spans_per_s"] * 1e6, 1)
    return result


# ---------------------------------------------------------------- phases


def phase_drop(args: argparse.Namespace, pool_file: Path) -> dict:
    proc = subprocess.Popen([sys.executable, str(HERE / "drop_receiver.py"), "--port", "0"],
                            stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        if not line.startswith("ready "):
            raise RuntimeError(f"drop receiver did not start: {line!r}")
        port = int(line.split()[1])
        return run_client(f"127.0.0.1:{port}", pool_file, concurrency=args.concurrency, warmup=args.warmup,
                          seconds=args.seconds, channels=args.channels, retry_pause_ms=10, watch_pid=proc.pid)
    finally:
        proc.terminate()
        proc.wait(10)


def _server_flags(args: argparse.Namespace) -> list[str]:
    flags = ["--decode-workers", str(args.decode_workers), "--log-level", "warning"]
    if args.rules:
        flags += ["--rules", str(args.rules)]
    for extra in args.server_arg:
        flags += extra.split()
    return flags


def _metrics(server: ServerProcess) -> dict[str, float]:
    values: dict[str, float] = collections.defaultdict(float)
    for line in httpx.get(f"{server.http_url}/metrics", timeout=10).text.splitlines():
        if line.startswith("spanlake_") and " " in line:
            name, _, value = line.rpartition(" ")
            values[name.split("{")[0]] += float(value)
    return values


def _store_figures(data_dir: Path) -> dict:
    files = {p.name: p.stat().st_size for p in data_dir.iterdir() if p.is_file()}
    con = duckdb.connect(str(data_dir / "spanlake.duckdb"), read_only=True)
    try:
        spans = con.execute("SELECT count(*) FROM spans").fetchone()[0]
        # A checkpoint that rewrites the last row group frees its old blocks; the file keeps them
        # for reuse, so the file size overstates what the data takes until they are reused.
        _, _, block_size, _, used_blocks, free_blocks, *_ = con.execute("PRAGMA database_size").fetchone()
    finally:
        con.close()
    size = files.get("spanlake.duckdb", 0) + files.get("spanlake.duckdb.wal", 0)
    return {
        "stored_spans": spans,
        "files": files,
        "bytes_per_span": round(size / spans, 1) if spans else None,
        "used_bytes_per_span": round(used_blocks * block_size / spans, 1) if spans else None,
        "free_blocks": free_blocks,
    }


class _Profiler:
    """py-spy over the server (and its decode workers) for the measured window, raw stacks out."""

    def __init__(self, args: argparse.Namespace, phase: str, seconds: float, pid: int):
        self.py_spy = args.py_spy or shutil.which("py-spy")
        if not self.py_spy:
            raise SystemExit("--profile needs py-spy: pip install py-spy (or pass --py-spy PATH)")
        Path(args.profile).mkdir(parents=True, exist_ok=True)
        self.out = Path(args.profile) / f"{args.profile_label}-{phase}.txt"
        self.seconds = max(1, int(seconds))
        self.pid = pid
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        cmd = [self.py_spy, "record", "--pid", str(self.pid), "--duration", str(self.seconds), "--rate", "100",
               "--format", "raw", "--nonblocking", "--subprocesses", "--threads", "-o", str(self.out)]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def wait(self) -> None:
        if self.proc is not None:
            self.proc.wait(60)
            print(f"   py-spy raw stacks: {self.out}; summary: python bench/profile_top.py {self.out}")


def phase_spanlake(args: argparse.Namespace, pool_file: Path, workdir: Path) -> dict:
    data = workdir / "spanlake-throughput"
    server = ServerProcess(data, *_server_flags(args)).start()
    profiler = _Profiler(args, "throughput", args.seconds, server.proc.pid) if args.profile else None
    try:
        result = run_client(server.grpc_target, pool_file, concurrency=args.concurrency, warmup=args.warmup,
                            seconds=args.seconds, channels=args.channels, retry_pause_ms=10,
                            watch_pid=server.proc.pid, on_window=profiler.start if profiler else None)
        metrics = _metrics(server)
    finally:
        code = server.stop(timeout=120)
    if profiler is not None:
        profiler.wait()
    commits = metrics.get("spanlake_commit_seconds_count", 0)
    result["exit_code"] = code
    result["commits"] = int(commits)
    if commits:
        result["spans_per_commit"] = round(metrics["spanlake_spans_stored_total"] / commits)
        result["commit_ms_avg"] = round(metrics["spanlake_commit_seconds_sum"] / commits * 1000, 1)
    result.update(_store_figures(data))
    if result["stored_spans"] < result["total_spans_acked"]:
        result["LOST_ACKED_SPANS"] = result["total_spans_acked"] - result["stored_spans"]
    return result


def phase_overload(args: argparse.Namespace, pool_file: Path, workdir: Path) -> dict:
    data = workdir / "spanlake-overload"
    server = ServerProcess(data, *_server_flags(args)).start()
    # Profile the second half of the overload, when the queue has had time to fill.
    profiler = _Profiler(args, "overload", args.overload_seconds / 2, server.proc.pid) if args.profile else None
    try:
        result = run_client(server.grpc_target, pool_file, concurrency=args.overload_concurrency,
                            warmup=args.overload_seconds / 2, seconds=args.overload_seconds / 2,
                            channels=args.overload_channels, retry_pause_ms=args.retry_pause_ms,
                            watch_pid=server.proc.pid, drain=args.drain_seconds,
                            on_window=profiler.start if profiler else None)
        metrics = _metrics(server)
    finally:
        started = time.monotonic()
        code = server.stop(timeout=300)
        result["shutdown_s"] = round(time.monotonic() - started, 1)
    if profiler is not None:
        profiler.wait()
    result["exit_code"] = code
    result["overload_seconds"] = args.overload_seconds
    result["server_spans_received"] = int(metrics.get("spanlake_spans_received_total", 0))
    result.update(_store_figures(data))
    return result


# ---------------------------------------------------------------- report


def _report(results: dict) -> None:
    drop, lake, over = results.get("drop"), results.get("spanlake"), results.get("overload")
    print()
    print(f"== ingest benchmark {results['date']} ({results['machine']})")
    print(f"   command: {results['command']}")
    if drop:
        print(f"   parse-and-drop : {drop['spans_per_s']:>10,.0f} spans/s  p50 {drop['latency_ms']['p50']} ms, "
              f"server {drop.get('server_cores_used', '?')} cores = {drop.get('server_cpu_us_per_span', '?')} us/span, "
              f"client cpu {drop['client_cpu_s']} s, steal {drop.get('steal_pct', '?')}%")
    if lake:
        print(f"   spanlake serve : {lake['spans_per_s']:>10,.0f} spans/s  p50 {lake['latency_ms']['p50']} ms "
              f"p99 {lake['latency_ms']['p99']} ms, server {lake.get('server_cores_used', '?')} cores = "
              f"{lake.get('server_cpu_us_per_span', '?')} us/span, "
              f"{lake.get('spans_per_commit', '?')} spans/commit, commit {lake.get('commit_ms_avg', '?')} ms avg, "
              f"steal {lake.get('steal_pct', '?')}%")
        print(f"   on disk        : {lake['bytes_per_span']} bytes/span of file, {lake['used_bytes_per_span']} in used blocks "
              f"({lake['free_blocks']} free blocks) ({lake['stored_spans']:,} spans, "
              f"{lake['files']})")
        if lake.get("LOST_ACKED_SPANS"):
            print(f"   !! {lake['LOST_ACKED_SPANS']} acked spans missing from the store")
    if drop and lake:
        print(f"   ratio          : {lake['spans_per_s'] / drop['spans_per_s']:.3f} (target >= 0.25)")
    if over:
        print(f"   overload {over['overload_seconds']:.0f}s  : peak RSS {over['server_vmhwm_mb']} MB VmHWM "
              f"(sampled {over['server_peak_rss_sampled_mb']} MB over {over['server_processes']} processes), "
              f"{over['refusals']:,} RESOURCE_EXHAUSTED, {over['spans_per_s']:,.0f} spans/s acked in the 2nd half, "
              f"errors {over['errors']}, shutdown {over['shutdown_s']} s, stored {over['stored_spans']:,}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window of each throughput phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before the window opens")
    parser.add_argument("--concurrency", type=int, default=16, help="in-flight Export calls (throughput phases)")
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels the client spreads calls over")
    parser.add_argument("--overload-seconds", type=float, default=60.0)
    parser.add_argument("--overload-concurrency", type=int, default=2500,
                        help="in-flight calls during overload; 2500 x 100 spans exceeds the default 200,000-span "
                             "queue (above ~2000 in-flight calls grpc-core itself starts to CANCEL some)")
    parser.add_argument("--overload-channels", type=int, default=8)
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="after the overload window, wait this long for in-flight calls, then cancel them")
    parser.add_argument("--retry-pause-ms", type=float, default=10.0, help="client pause after a refusal (overload)")
    parser.add_argument("--pool", type=int, default=1024, help="distinct request templates (100 spans each)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--decode-workers", type=int, default=0, help="passed to spanlake serve")
    parser.add_argument("--rules", type=Path, help="capture rules file, passed to spanlake serve")
    parser.add_argument("--server-arg", action="append", default=[], help="extra spanlake serve flags, e.g. '--memory-limit 1GB'")
    parser.add_argument("--phases", default="drop,spanlake,overload", help="comma-separated subset to run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s windows, 10 s overload, small pool")
    parser.add_argument("--profile", help="directory for a py-spy profile (raw stacks) of the spanlake phase")
    parser.add_argument("--profile-label", default="spanlake", help="file name of the profile")
    parser.add_argument("--py-spy", help="path to py-spy (default: from PATH)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.pool = min(args.seconds, 5.0), min(args.warmup, 1.0), min(args.pool, 256)
        if "--overload-seconds" not in sys.argv:
            args.overload_seconds = 10.0
        if "--drain-seconds" not in sys.argv:
            args.drain_seconds = 5.0
    phases = [p.strip() for p in args.phases.split(",") if p.strip()]
    pool_file = _pool_file(args.pool, args.seed)
    results: dict = {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": f"{os.cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}, "
                   f"load avg before {os.getloadavg()[0]:.2f}",
        "command": " ".join(["python", "bench/ingest.py", *sys.argv[1:]]),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
    }
    with tempfile.TemporaryDirectory(prefix="spanlake-bench-") as tmp:
        workdir = Path(tmp)
        for phase in phases:
            print(f"-- {phase} ...", flush=True)
            if phase == "drop":
                results["drop"] = phase_drop(args, pool_file)
            elif phase == "spanlake":
                results["spanlake"] = phase_spanlake(args, pool_file, workdir)
            elif phase == "overload":
                results["overload"] = phase_overload(args, pool_file, workdir)
            else:
                raise SystemExit(f"unknown phase {phase!r}; use drop, spanlake, overload")
    if "drop" in results and "spanlake" in results:
        results["ratio"] = round(results["spanlake"]["spans_per_s"] / results["drop"]["spans_per_s"], 3)
    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
