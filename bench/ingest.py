"""Ingest benchmark (issue 2): durable OTLP/gRPC ingest vs a parse-and-drop receiver, same run.

Phases, each against a fresh server process on free 127.0.0.1 ports:
  1. drop       bench/drop_receiver.py: parse ExportTraceServiceRequest, answer, keep nothing
  2. spanlake   `spanlake serve` (fresh temp data dir): spans/s acked (= in the fsynced ingest
                log), then SIGTERM and, after a restart has loaded the log, bytes of
                spanlake.duckdb per stored span
  3. sustained  a fresh server under the same load for --sustained-seconds: spans/s loaded into
                the store (queryable), from spanlake_spans_stored_total at both ends of the window
  4. latency    a fresh server at half the acked rate of phase 2: p99 ack latency, and
                ack-to-queryable (a probe exports one trace and times GET /api/traces/{id})
  5. overload   a fresh `spanlake serve` with the default --log-max-bytes, offered twice the
                acked rate of phase 2 (--overload-factor; up to --overload-concurrency calls in
                flight) for --overload-seconds: peak RSS (VmHWM, server plus any
                decode worker processes), RESOURCE_EXHAUSTED refusals, spans stored
The load generator (bench/load_client.py) runs in its own process and sends requests rendered
from pre-serialized templates (bench/otlp_load.py): 10 traces x 10 spans of LLM-agent spans.

    python bench/ingest.py                    # full run (~6 min)
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
import threading
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
               on_window: Callable[[], None] | None = None, rate: float | None = None) -> dict:
    """Run load_client.py to completion; meanwhile sample the server's RSS and CPU.

    `on_window` is called once when the measured window opens (e.g. to start a profiler).
    """
    cmd = [
        sys.executable, str(HERE / "load_client.py"), "--target", target, "--pool-file", str(pool_file),
        "--concurrency", str(concurrency), "--warmup", str(warmup), "--seconds", str(seconds),
        "--channels", str(channels), "--retry-pause-ms", str(retry_pause_ms), "--drain-seconds", str(drain),
        *(["--rate", str(rate)] if rate else []),
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


def _metrics(server: ServerProcess, prefixes: tuple[str, ...] = ("spanlake_",)) -> dict[str, float]:
    """/metrics by name (labelled series summed), for the names with one of `prefixes`."""
    values: dict[str, float] = collections.defaultdict(float)
    for line in httpx.get(f"{server.http_url}/metrics", timeout=10).text.splitlines():
        if line.startswith(prefixes) and " " in line:
            name, _, value = line.rpartition(" ")
            values[name.split("{")[0]] += float(value)
    return values


class _MemorySampler:
    """Polls /metrics once a second: at the highest resident memory seen, how much of it was
    DuckDB's buffer manager and how much Arrow's allocator (the rest is Python, gRPC, malloc)."""

    def __init__(self, server: ServerProcess, interval: float = 1.0):
        self._server = server
        self._interval = interval
        self._stop = threading.Event()
        self.peak: dict[str, float] = {}
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                values = _metrics(self._server, ("spanlake_", "process_"))
            except httpx.HTTPError:
                continue
            rss = values.get("process_resident_memory_bytes", 0.0)
            if rss > self.peak.get("rss", 0.0):
                self.peak = {"rss": rss, "duckdb": values.get("spanlake_store_memory_bytes", 0.0),
                             "arrow": values.get("spanlake_arrow_memory_bytes", 0.0),
                             "log_unloaded": values.get("spanlake_log_unloaded_bytes", 0.0)}

    def stop(self) -> dict[str, float]:
        self._stop.set()
        self._thread.join()
        return {k: round(v / 1e6, 1) for k, v in self.peak.items()}


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


def phase_spanlake(args: argparse.Namespace, pool_file: Path, workdir: Path, seconds: float | None = None,
                   name: str = "spanlake-throughput") -> dict:
    """Acked spans/s over the window, and spans/s loaded into the store (queryable) in it."""
    seconds = seconds or args.seconds
    data = workdir / name
    server = ServerProcess(data, *_server_flags(args)).start()
    profiler = _Profiler(args, "throughput", seconds, server.proc.pid) if args.profile else None
    marks: dict[str, float] = {}

    def mark(key: str) -> None:
        marks[key] = _metrics(server).get("spanlake_spans_stored_total", 0.0)
        marks[key + "_t"] = time.monotonic()

    timer = threading.Timer(seconds, mark, ["end"])

    def on_window() -> None:
        mark("start")
        timer.start()
        if profiler:
            profiler.start()

    try:
        result = run_client(server.grpc_target, pool_file, concurrency=args.concurrency, warmup=args.warmup,
                            seconds=seconds, channels=args.channels, retry_pause_ms=10,
                            watch_pid=server.proc.pid, on_window=on_window)
        timer.join()
        metrics = _metrics(server)
    finally:
        code = server.stop(timeout=120)
    if profiler is not None:
        profiler.wait()
    result["loaded_spans_per_s"] = (marks["end"] - marks["start"]) / (marks["end_t"] - marks["start_t"])
    result["log_unloaded_bytes_at_end"] = metrics.get("spanlake_log_unloaded_bytes", 0)
    _load_rest(server)
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


def _load_rest(server: ServerProcess) -> None:
    """Start the stopped server once more until its loader has emptied the log, then stop it."""
    server.start()
    deadline = time.monotonic() + 600
    while httpx.get(f"{server.http_url}/readyz", timeout=10).json()["loader"]["catching_up"]:
        if time.monotonic() > deadline:
            raise RuntimeError("the loader did not catch up within 10 minutes")
        time.sleep(0.5)
    server.stop(timeout=120)


def phase_sustained(args: argparse.Namespace, pool_file: Path, workdir: Path) -> dict:
    """Spans loaded (queryable) per second while the load runs: the store's pace, not the log's."""
    return phase_spanlake(args, pool_file, workdir, args.sustained_seconds, "spanlake-sustained")


def _probe_queryable(server: ServerProcess, stop: threading.Event, out: list[float]) -> None:
    """Export one small trace at a time; time from its ack until GET /api/traces/{id} has it all."""
    import grpc
    from otlp_builders import llm_trace, request

    channel = grpc.insecure_channel(server.grpc_target)
    export = channel.unary_unary("/opentelemetry.proto.collector.trace.v1.TraceService/Export",
                                 request_serializer=None, response_deserializer=None)
    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        while not stop.is_set():
            trace_id, spans = llm_trace(3)
            export(request(spans).SerializeToString(), timeout=30)
            acked = time.monotonic()
            while len(http.get(f"/api/traces/{trace_id}").json().get("spans", [])) < 3:
                time.sleep(0.01)
            out.append(time.monotonic() - acked)
            stop.wait(0.2)
    channel.close()


def phase_latency(args: argparse.Namespace, pool_file: Path, workdir: Path, acked_spans_per_s: float) -> dict:
    """Half the maximum acked rate: ack latency and ack-to-queryable, both p99."""
    spans_per_request = 100  # otlp_load templates: 10 traces x 10 spans
    rate = acked_spans_per_s / 2 / spans_per_request
    server = ServerProcess(workdir / "spanlake-latency", *_server_flags(args)).start()
    stop, probes = threading.Event(), []
    prober = threading.Thread(target=_probe_queryable, args=(server, stop, probes), daemon=True)
    try:
        prober.start()
        result = run_client(server.grpc_target, pool_file, concurrency=args.concurrency, warmup=args.warmup,
                            seconds=args.latency_seconds, channels=args.channels, retry_pause_ms=10,
                            watch_pid=server.proc.pid, rate=rate)
    finally:
        stop.set()
        prober.join(30)
        server.stop(timeout=120)
    probes.sort()
    result["target_spans_per_s"] = round(rate * spans_per_request)
    result["queryable_ms"] = {
        "p50": round(probes[len(probes) // 2] * 1000, 1) if probes else None,
        "p99": round(probes[min(len(probes) - 1, int(0.99 * len(probes)))] * 1000, 1) if probes else None,
        "max": round(probes[-1] * 1000, 1) if probes else None,
        "probes": len(probes),
    }
    return result


def phase_overload(args: argparse.Namespace, pool_file: Path, workdir: Path, acked_spans_per_s: float | None) -> dict:
    """`--overload-factor` times the acked rate of phase 2 (paced), or, without phase 2 or with
    factor 0, as many calls as `--overload-concurrency` keeps in flight."""
    data = workdir / "spanlake-overload"
    rate = acked_spans_per_s * args.overload_factor / 100 if acked_spans_per_s and args.overload_factor else None
    server = ServerProcess(data, *_server_flags(args)).start()
    # Profile the second half of the overload, when the queue has had time to fill.
    profiler = _Profiler(args, "overload", args.overload_seconds / 2, server.proc.pid) if args.profile else None
    sampler = _MemorySampler(server)
    try:
        result = run_client(server.grpc_target, pool_file, concurrency=args.overload_concurrency,
                            warmup=args.overload_seconds / 2, seconds=args.overload_seconds / 2,
                            channels=args.overload_channels, retry_pause_ms=args.retry_pause_ms,
                            watch_pid=server.proc.pid, drain=args.drain_seconds,
                            on_window=profiler.start if profiler else None, rate=rate)
        metrics = _metrics(server)
    finally:
        result_memory = sampler.stop()
        started = time.monotonic()
        code = server.stop(timeout=300)
        result["shutdown_s"] = round(time.monotonic() - started, 1)
    if profiler is not None:
        profiler.wait()
    result["exit_code"] = code
    result["memory_at_peak_mb"] = result_memory
    result["overload_seconds"] = args.overload_seconds
    result["offered_spans_per_s"] = round(rate * 100) if rate else None
    result["server_spans_received"] = int(metrics.get("spanlake_spans_received_total", 0))
    _load_rest(server)
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
    sus, lat = results.get("sustained"), results.get("latency")
    if sus:
        print(f"   sustained {sus['window_seconds']:.0f}s: {sus['loaded_spans_per_s']:>10,.0f} spans/s loaded "
              f"({sus['spans_per_s']:,.0f} acked), {sus.get('spans_per_commit', 0):,} spans/load, "
              f"log unloaded at end {sus['log_unloaded_bytes_at_end'] / 1e6:,.0f} MB")
        if drop:
            print(f"   sustained ratio: {sus['loaded_spans_per_s'] / drop['spans_per_s']:.3f} (target >= 0.15)")
    if lat:
        print(f"   at half rate   : {lat['spans_per_s']:,.0f} spans/s acked (target {lat['target_spans_per_s']:,}), "
              f"ack p50 {lat['latency_ms']['p50']} ms p99 {lat['latency_ms']['p99']} ms (target <= 50), "
              f"ack-to-queryable p50 {lat['queryable_ms']['p50']} ms p99 {lat['queryable_ms']['p99']} ms "
              f"max {lat['queryable_ms']['max']} ms over {lat['queryable_ms']['probes']} probes (target p99 <= 2000)")
    if over:
        offered = f"{over['offered_spans_per_s']:,} spans/s offered" if over.get("offered_spans_per_s") else "closed loop"
        print(f"   overload {over['overload_seconds']:.0f}s  : {offered}, peak RSS {over['server_vmhwm_mb']} MB VmHWM "
              f"(sampled {over['server_peak_rss_sampled_mb']} MB over {over['server_processes']} processes), "
              f"{over['refusals']:,} RESOURCE_EXHAUSTED, {over['spans_per_s']:,.0f} spans/s acked in the 2nd half, "
              f"errors {over['errors']}, shutdown {over['shutdown_s']} s, stored {over['stored_spans']:,}")
        mem = over.get("memory_at_peak_mb") or {}
        if mem:
            print(f"   memory at peak : RSS {mem.get('rss')} MB (1 s samples of /metrics), of which DuckDB "
                  f"{mem.get('duckdb')} MB, Arrow {mem.get('arrow')} MB; log unloaded {mem.get('log_unloaded')} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="measured window of each throughput phase")
    parser.add_argument("--warmup", type=float, default=3.0, help="load before the window opens")
    parser.add_argument("--concurrency", type=int, default=16, help="in-flight Export calls (throughput phases)")
    parser.add_argument("--channels", type=int, default=1, help="gRPC channels the client spreads calls over")
    parser.add_argument("--overload-seconds", type=float, default=60.0)
    parser.add_argument("--overload-factor", type=float, default=2.0,
                        help="offer this many times phase 2's acked rate (0: closed loop at --overload-concurrency)")
    parser.add_argument("--latency-max-rate", type=float, help="acked spans/s to halve when phase 2 is not run")
    parser.add_argument("--sustained-seconds", type=float, default=120.0, help="window of the sustained phase")
    parser.add_argument("--latency-seconds", type=float, default=30.0, help="window of the half-rate latency phase")
    parser.add_argument("--overload-concurrency", type=int, default=2500,
                        help="in-flight calls during overload: 2x or more what the server can take "
                             "(above ~2000 in-flight calls grpc-core itself starts to CANCEL some)")
    parser.add_argument("--overload-channels", type=int, default=8)
    parser.add_argument("--drain-seconds", type=float, default=30.0,
                        help="after the overload window, wait this long for in-flight calls, then cancel them")
    parser.add_argument("--retry-pause-ms", type=float, default=10.0, help="client pause after a refusal (overload)")
    parser.add_argument("--pool", type=int, default=1024, help="distinct request templates (100 spans each)")
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--decode-workers", type=int, default=0, help="passed to spanlake serve")
    parser.add_argument("--rules", type=Path, help="capture rules file, passed to spanlake serve")
    parser.add_argument("--server-arg", action="append", default=[], help="extra spanlake serve flags, e.g. '--memory-limit 1GB'")
    parser.add_argument("--phases", default="drop,spanlake,sustained,latency,overload", help="comma-separated subset to run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 5 s windows, 10 s overload, small pool")
    parser.add_argument("--profile", help="directory for a py-spy profile (raw stacks) of the spanlake phase")
    parser.add_argument("--profile-label", default="spanlake", help="file name of the profile")
    parser.add_argument("--py-spy", help="path to py-spy (default: from PATH)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup, args.pool = min(args.seconds, 5.0), min(args.warmup, 1.0), min(args.pool, 256)
        args.sustained_seconds, args.latency_seconds = min(args.sustained_seconds, 10.0), min(args.latency_seconds, 5.0)
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
            elif phase == "sustained":
                results["sustained"] = phase_sustained(args, pool_file, workdir)
            elif phase == "latency":
                acked = results.get("spanlake", {}).get("spans_per_s") or args.latency_max_rate
                if not acked:
                    raise SystemExit("the latency phase needs the spanlake phase first, or --latency-max-rate")
                results["latency"] = phase_latency(args, pool_file, workdir, acked)
            elif phase == "overload":
                acked = results.get("spanlake", {}).get("spans_per_s") or args.latency_max_rate
                results["overload"] = phase_overload(args, pool_file, workdir, acked)
            else:
                raise SystemExit(f"unknown phase {phase!r}; use drop, spanlake, sustained, latency, overload")
    if "drop" in results and "spanlake" in results:
        results["ratio"] = round(results["spanlake"]["spans_per_s"] / results["drop"]["spans_per_s"], 3)
    _report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
