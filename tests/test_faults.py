"""Faults a production receiver meets: the disk fills up, the process is killed at random moments."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from pathlib import Path

import grpc
import httpx
import pytest

from otlp_builders import llm_trace, request
from test_ingest_grpc import export


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True)
    return result.returncode == 0


def _span_count(server, trace_id: str) -> int:
    resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=30)
    return 0 if resp.status_code == 404 else len(resp.json()["spans"])


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
    missing = [t for t in acked if _span_count(server, t) == 0]
    assert not missing, f"{len(missing)} acknowledged traces lost"
    server.stop()
    server.restart()
    missing = [t for t in acked if _span_count(server, t) == 0]
    assert not missing, f"{len(missing)} acknowledged traces lost after restart"


def test_repeated_sigkill_at_random_moments_keeps_every_ack_exactly_once(make_server):
    """Four clients send whole traces; the server is killed at a random moment, three times over."""
    server = make_server()
    acked: list[str] = []
    lock = threading.Lock()
    rng = random.Random(42)
    for _round in range(3):
        stop = threading.Event()

        def client() -> None:
            while not stop.is_set():
                trace_id, spans = llm_trace(10)
                try:
                    export(server.grpc_target, request(spans))
                except grpc.RpcError:
                    return
                with lock:
                    acked.append(trace_id)

        threads = [threading.Thread(target=client) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(rng.uniform(0.5, 2.5))
        server.kill()
        stop.set()
        for t in threads:
            t.join()
        server.restart()  # the store must open without repair
    with lock:
        snapshot = list(acked)
    assert len(snapshot) > 50
    counts = {t: _span_count(server, t) for t in snapshot}
    bad = {t: n for t, n in counts.items() if n != 10}
    assert not bad, f"{len(bad)} of {len(snapshot)} acknowledged traces are not stored exactly once: {list(bad.items())[:5]}"


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
