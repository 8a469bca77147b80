"""A restart in the middle of a batch resumes it, and no trace is scored twice.

SIGTERM: scorers in flight finish and their scores are written before exit, so the endpoint sees
exactly one call per trace. SIGKILL: calls in flight (or answered but not yet committed) at the kill
are made again after the restart, never one whose score was committed; every trace ends with
exactly one score.
"""

from __future__ import annotations

import json
from collections import Counter

import httpx
import pytest

from scoring_endpoints import ScoringEndpoints, make_trace, send, wait_batch

CONCURRENCY = 2
TRACES = 16


@pytest.fixture
def endpoints():
    with ScoringEndpoints(slow_seconds=0.25) as ep:
        yield ep


def start_batch(make_server, endpoints, tmp_path, *, scored_before: int):
    config = tmp_path / "spanlake.yaml"
    config.write_text(
        json.dumps(
            {"scorers": [{"name": "slow", "type": "http", "concurrency": CONCURRENCY,
                          "params": {"url": f"{endpoints.url}/score/slow"}}],
             # Short leases: on a lake store (SPANLAKE_TEST_STORE) a killed server's batch is taken
             # over once its lease has passed; the embedded store hands it back at start.
             "scoring": {"linger_seconds": 0.05, "lease_seconds": 3, "poll_seconds": 0.5}}
        )
    )
    server = make_server("--config", str(config))
    traces = [make_trace(f"restart {i}") for i in range(TRACES)]
    send(server, [s for _, spans in traces for s in spans])
    ids = [t for t, _ in traces]
    resp = httpx.post(f"{server.http_url}/api/scores/batch", json={"scorer": "slow", "trace_ids": ids}, timeout=30)
    assert resp.status_code == 202, resp.text
    batch_id = resp.json()["batch_id"]
    wait_batch(server, batch_id, until=lambda b: b["completed"] >= scored_before)
    return server, batch_id, ids


def scores_per_trace(server, batch_id: str) -> Counter[str]:
    page = httpx.get(f"{server.http_url}/api/scores", params={"batch_id": batch_id, "limit": 1000}).json()
    return Counter(s["trace_id"] for s in page["items"])


def test_sigterm_mid_batch_resumes_with_one_call_per_trace(make_server, endpoints, tmp_path):
    server, batch_id, ids = start_batch(make_server, endpoints, tmp_path, scored_before=2)
    assert server.stop() == 0
    assert sum(endpoints.started[t] for t in ids) < TRACES  # it really was interrupted
    done = wait_batch(server.start(), batch_id)
    assert (done["status"], done["completed"], done["failed"]) == ("completed", TRACES, 0)
    assert scores_per_trace(server, batch_id) == Counter({t: 1 for t in ids})
    assert {t: endpoints.started[t] for t in ids} == {t: 1 for t in ids}


def test_sigkill_mid_batch_resumes_with_one_score_per_trace(make_server, endpoints, tmp_path):
    server, batch_id, ids = start_batch(make_server, endpoints, tmp_path, scored_before=6)
    committed = set(scores_per_trace(server, batch_id))
    server.kill()
    assert len(committed) >= 6
    done = wait_batch(server.start(), batch_id)
    assert (done["status"], done["completed"], done["failed"]) == ("completed", TRACES, 0)
    assert scores_per_trace(server, batch_id) == Counter({t: 1 for t in ids})
    # Calls whose results were committed before the kill are never made again; only the ones
    # in flight or waiting for their commit are.
    assert {t: endpoints.started[t] for t in committed} == {t: 1 for t in committed}
    assert sum(endpoints.started[t] for t in ids) >= TRACES
