"""Faults a production receiver meets: the disk fills up, processes are killed mid-work.

Kills at random moments under OTLP load and capture rules: tests/test_ingest_log.py.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest

from datasets_client import list_all
from otlp_builders import llm_trace, request
from test_durability import stored_span_count
from test_ingest_grpc import export


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


@pytest.fixture
def small_disk(tmp_path):
    mount = tmp_path / "disk"
    if not _mount_tmpfs(mount, "24m"):
        pytest.skip("needs root to mount a small tmpfs (CI runs as root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_disk_full_is_retryable_loses_nothing_and_recovers(make_server, small_disk):
    server = make_server(data_dir=small_disk / "data")
    acked: list[str] = []
    refusals: list[grpc.StatusCode] = []
    big = "x" * 20_000
    for _ in range(400):
        trace_id, spans = llm_trace(10)
        for s in spans:
            s.attributes.add(key="blob", value={"string_value": big + trace_id})
        try:
            export(server.grpc_target, request(spans))
            acked.append(trace_id)
        except grpc.RpcError as exc:
            refusals.append(exc.code())
            if len(refusals) >= 5:
                break
    assert refusals, "the 24 MB disk never filled up"
    assert set(refusals) <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.RESOURCE_EXHAUSTED}
    assert httpx.get(f"{server.http_url}/healthz").status_code == 200

    # Space returns: the same server accepts again, and everything acknowledged is there.
    subprocess.run(["mount", "-o", "remount,size=400m", str(small_disk)], check=True)
    deadline = time.monotonic() + 30
    while True:
        trace_id, spans = llm_trace(3)
        try:
            export(server.grpc_target, request(spans))
            acked.append(trace_id)
            break
        except grpc.RpcError:
            assert time.monotonic() < deadline, "ingest did not recover after space returned"
            time.sleep(0.5)
    missing = [t for t in acked if stored_span_count(server, t) == 0]
    assert not missing, f"{len(missing)} acknowledged traces lost"
    server.stop()
    server.restart()
    missing = [t for t in acked if stored_span_count(server, t) == 0]
    assert not missing, f"{len(missing)} acknowledged traces lost after restart"


def test_a_trickling_client_does_not_stall_others(shared_server):
    """One client sends its request a byte at a time; others are served meanwhile."""
    import socket

    _, spans = llm_trace(3)
    body = request(spans).SerializeToString()
    head = (
        f"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-protobuf\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    slow = socket.create_connection(("127.0.0.1", shared_server.http_port))
    done = threading.Event()

    def trickle() -> None:
        for byte in head + body[: len(body) // 2]:
            if done.is_set():
                return
            slow.send(bytes([byte]))
            time.sleep(0.01)

    sender = threading.Thread(target=trickle)
    sender.start()
    try:
        latencies = []
        for _ in range(20):
            trace_id, other = llm_trace(3)
            started = time.perf_counter()
            export(shared_server.grpc_target, request(other))
            resp = httpx.post(
                f"{shared_server.http_url}/v1/traces",
                content=request(other).SerializeToString(),
                headers={"content-type": "application/x-protobuf"},
                timeout=10,
            )
            assert resp.status_code == 200
            latencies.append(time.perf_counter() - started)
        assert sender.is_alive(), "the trickle finished too early to prove anything"
        assert max(latencies) < 5.0
    finally:
        done.set()
        sender.join()
        slow.close()


def _items_count(server, dataset: str) -> int:
    """Items of a dataset; 0 while the dataset does not exist yet."""
    with httpx.Client(base_url=server.http_url, timeout=30) as http:
        if http.get(f"/api/datasets/{dataset}").status_code == 404:
            return 0
        return len(list_all(http, f"/api/datasets/{dataset}/items", limit=1000))

def test_sigkill_during_a_backfill_leaves_whole_windows_and_a_rerun_completes(make_server):
    """Each backfill window is one transaction: a kill keeps whole windows; running again finishes the job."""
    import json as jsonlib

    from otlp_builders import new_span_id, new_trace_id, span

    server = make_server()
    start = time.time_ns() - 3600 * 10**9
    sent = 0
    for batch in range(12):
        trace_id = new_trace_id()
        spans = [span(trace_id, new_span_id(), "refund", start_ns=start + (batch * 500 + i) * 10**6) for i in range(500)]
        httpx.post(f"{server.http_url}/v1/traces", content=request(spans).SerializeToString(),
                   headers={"content-type": "application/x-protobuf"}, timeout=60).raise_for_status()
        sent += len(spans)
    body = {"since": (start - 10**9) / 1e9, "window_spans": 500,
            "rule": {"dataset": "refunds", "when": {"field": "name", "op": "eq", "value": "refund"}}}
    reported = 0
    with httpx.stream("POST", f"{server.http_url}/api/rules/refunds/backfill", json=body, timeout=60) as resp:
        for line in resp.iter_lines():
            if line.strip():
                reported = jsonlib.loads(line)["captured"]
                if reported >= 1000:
                    server.kill()
                    break
    server.restart()
    after_kill = _items_count(server, "refunds")
    assert reported <= after_kill < sent  # not the whole job
    resp = httpx.post(f"{server.http_url}/api/rules/refunds/backfill", json=body, timeout=120)
    progress = [jsonlib.loads(line) for line in resp.text.strip().splitlines()]
    # The rerun cuts the same windows; the kill must have left the store at one of their edges.
    edges = [0] + [p["matched"] for p in progress]
    assert after_kill in edges, f"{after_kill} items is not a window edge {edges}: a window was half applied"
    assert progress[-1]["captured"] == sent - after_kill and progress[-1]["duplicates"] == after_kill
    assert _items_count(server, "refunds") == sent


def test_sigkill_during_an_import_applies_all_rows_or_none(make_server):
    server = make_server()
    assert httpx.post(f"{server.http_url}/api/datasets", json={"name": "big"}).status_code == 201
    rows = [{"input": {"q": f"question {i}", "pad": "x" * 200}, "expected_output": f"answer {i}"} for i in range(40_000)]
    payload = __import__("json").dumps(rows).encode()

    def send() -> None:
        try:
            httpx.post(f"{server.http_url}/api/datasets/big/import", content=payload,
                       headers={"content-type": "application/json"}, timeout=120)
        except httpx.HTTPError:
            pass  # the server dies under it

    sender = threading.Thread(target=send)
    sender.start()
    time.sleep(1.0)  # body sent, validation or insert under way
    server.kill()
    sender.join()
    server.restart()
    assert _items_count(server, "big") in (0, len(rows))


def _descendants(pid: int) -> list[int]:
    parents: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parents.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def test_a_killed_decode_worker_is_replaced(make_server):
    """With decoder processes, one dying costs at most a retryable error, not every later request."""
    import os
    import signal

    server = make_server("--decode-workers", "1")
    trace_id, spans = llm_trace(3)
    export(server.grpc_target, request(spans))  # starts the worker
    workers = _descendants(server.proc.pid)  # the fork server and the decoder it started
    assert workers, "no decoder process found"
    for pid in workers:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    time.sleep(0.5)
    codes = []
    for _ in range(5):
        trace_id, spans = llm_trace(3)
        try:
            export(server.grpc_target, request(spans))
            codes.append("ok")
        except grpc.RpcError as exc:
            codes.append(exc.code())
    assert codes[-1] == "ok", codes
    assert set(codes) <= {"ok", grpc.StatusCode.UNAVAILABLE}, codes
    assert stored_span_count(server, trace_id) == 3
