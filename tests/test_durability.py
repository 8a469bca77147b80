"""Ack means durable: restarts, SIGTERM drain and SIGKILL while clients are sending."""

from __future__ import annotations

import threading

import grpc
import httpx

from otlp_builders import llm_trace, request
from test_ingest_grpc import export


def stored_span_count(server, trace_id: str) -> int:
    resp = httpx.get(f"{server.http_url}/api/traces/{trace_id}", timeout=10)
    return 0 if resp.status_code == 404 else len(resp.json()["spans"])


def test_acked_spans_survive_a_restart(make_server):
    server = make_server()
    traces = [llm_trace(4) for _ in range(10)]
    for _, spans in traces:
        export(server.grpc_target, request(spans))
    assert server.stop() == 0
    server.restart()
    for trace_id, _ in traces:
        assert stored_span_count(server, trace_id) == 4


def test_sigterm_drains_and_exits_zero(make_server):
    server = make_server()
    trace_id, spans = llm_trace(5)
    export(server.grpc_target, request(spans))
    assert server.stop() == 0
    assert "stopped cleanly" in server.output()
    server.restart()
    assert stored_span_count(server, trace_id) == 5


def test_sigkill_while_sending_loses_no_acknowledged_trace(make_server):
    """Several clients send whole traces; the server is killed mid-stream; every acked trace is whole."""
    server = make_server()
    acked: list[str] = []
    lock = threading.Lock()
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
    while True:  # let a few hundred traces through before pulling the plug
        with lock:
            if len(acked) >= 200:
                break
        threading.Event().wait(0.02)
    server.kill()
    stop.set()
    for t in threads:
        t.join()
    server.restart()
    with lock:
        snapshot = list(acked)
    missing = [t for t in snapshot if stored_span_count(server, t) != 10]
    assert not missing, f"{len(missing)} of {len(snapshot)} acknowledged traces are not whole"
