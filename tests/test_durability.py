"""Ack means durable: restarts, SIGTERM drain and SIGKILL while clients are sending."""

from __future__ import annotations

import httpx

from otlp_builders import llm_trace, request
from senders import AckingClients
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
    with AckingClients(server.grpc_target) as clients:
        clients.wait_for(200)  # let a few hundred traces through before pulling the plug
        server.kill()
    server.restart()
    acked = clients.acked
    missing = [t for t in acked if stored_span_count(server, t) != 10]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged traces are not whole"
