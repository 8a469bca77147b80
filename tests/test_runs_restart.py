"""A server-side run survives a SIGKILL (no item whose result was recorded is executed again) and
stops dispatching promptly when cancelled, also across a restart."""

from __future__ import annotations

import json
import time

import pytest

from datasets_client import add_items, client, new_dataset, unique
from run_target import RunTarget, results, wait_run

CONCURRENCY = 2


@pytest.fixture
def target():
    with RunTarget(slow_seconds=0.25) as t:
        yield t


def start_run(make_server, tmp_path, target, n_items: int, *, scorers: list[str]):
    config = tmp_path / "spanlake.yaml"
    # Short leases: on a lake store (SPANLAKE_TEST_STORE) a killed server's run is taken over once its lease passes.
    config.write_text(json.dumps({"runs": {"trace_wait_seconds": 0, "poll_seconds": 0.2, "lease_seconds": 2}}))
    server = make_server("--config", str(config))
    http = client(server)
    name = unique("restart")
    new_dataset(http, name)
    items = add_items(http, name, [{"input": f"SLOW {i}", "expected_output": f"SLOW {i}"} for i in range(n_items)])
    resp = http.post(f"/api/datasets/{name}/runs", json={
        "name": "r1", "target": {"url": target.url}, "scorers": scorers, "concurrency": CONCURRENCY})
    assert resp.status_code == 202, resp.text
    return server, http, name, items


def test_sigkill_mid_run_resumes_without_repeating_recorded_items(make_server, tmp_path, target):
    n = 12
    server, http, name, items = start_run(make_server, tmp_path, target, n, scorers=["exact_match"])
    wait_run(http, name, "r1", until=lambda r: r["completed"] >= 4)
    recorded = {r["item_id"] for r in results(http, name, "r1") if r["status"] != "pending"}
    server.kill()
    assert 4 <= len(recorded) < n
    server.start()
    done = wait_run(http, name, "r1")
    assert (done["status"], done["completed"], done["failed"], done["scored"]) == ("completed", n, 0, n)
    assert {i: target.calls[i] for i in recorded} == {i: 1 for i in recorded}
    # Only calls in flight at the kill (or answered but not yet committed) are made again, once.
    assert all(1 <= target.calls[i["id"]] <= 2 for i in items)
    assert target.total_calls() < 2 * n
    final = results(http, name, "r1")
    assert sorted(r["item_id"] for r in final) == sorted(i["id"] for i in items)
    assert all(r["status"] == "ok" and [s["name"] for s in r["scores"]] == ["exact_match"] for r in final)
    assert done["summary"]["scorers"]["exact_match"]["mean"] == 1.0
    http.close()


def test_cancel_stops_dispatching_and_stays_cancelled_after_restart(make_server, tmp_path, target):
    n = 20
    server, http, name, _ = start_run(make_server, tmp_path, target, n, scorers=[])
    wait_run(http, name, "r1", until=lambda r: r["completed"] >= 2)
    resp = http.post(f"/api/datasets/{name}/runs/r1/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == "cancelled"
    at_cancel = target.total_calls()
    time.sleep(0.6)  # a running dispatcher would have started two or three more calls by now
    assert target.total_calls() <= at_cancel + CONCURRENCY
    after_cancel = target.total_calls()
    run = http.get(f"/api/datasets/{name}/runs/r1").json()
    assert run["status"] == "cancelled" and run["pending"] >= n - after_cancel
    http.close()  # an open keep-alive connection would hold up the graceful stop
    server.stop()
    server.start()
    time.sleep(0.6)
    with client(server) as http:
        run = http.get(f"/api/datasets/{name}/runs/r1").json()
    assert run["status"] == "cancelled" and target.total_calls() == after_cancel
