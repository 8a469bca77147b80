"""Server-side runs across a SIGKILL: a run in progress resumes without executing again any item
whose result was recorded, and a cancelled run stops dispatching at once and stays cancelled.

One server, two runs side by side (one is cancelled, then the server is killed mid-way through the
other), so a single restart shows both.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import pytest

from datasets_client import add_items, client, new_dataset, unique
from run_target import RunTarget, results, wait_run

CONCURRENCY = 2
KILLED_ITEMS = 12
CANCELLED_ITEMS = 20


@dataclass
class Scenario:
    http: object
    killed: str  # dataset of the run the server was killed in
    cancelled: str  # dataset of the cancelled run
    killed_items: list[dict]
    cancelled_items: list[dict]
    recorded: set[str]  # items of the killed run whose result was recorded before the kill
    calls_at_cancel: int
    calls_at_kill: int
    cancel_answer: dict
    done: dict


def calls(target: RunTarget, items: list[dict]) -> int:
    return sum(target.calls[i["id"]] for i in items)


@pytest.fixture(scope="module")
def target():
    with RunTarget(slow_seconds=0.25) as t:
        yield t


@pytest.fixture(scope="module")
def scenario(tmp_path_factory, target):
    from server_process import ServerProcess

    tmp = tmp_path_factory.mktemp("runs-restart")
    config = tmp / "spanlake.yaml"
    # Short leases: on a lake store (SPANLAKE_TEST_STORE) a killed server's run is taken over once its lease passes.
    config.write_text(json.dumps({"runs": {"trace_wait_seconds": 0, "poll_seconds": 0.2, "lease_seconds": 2}}))
    server = ServerProcess(tmp / "data", "--config", str(config)).start()
    http = client(server)
    datasets = {}
    for kind, n, scorers in (("cancelled", CANCELLED_ITEMS, []), ("killed", KILLED_ITEMS, ["exact_match"])):
        name = unique(kind)
        new_dataset(http, name)
        items = add_items(http, name, [{"input": f"SLOW {i}", "expected_output": f"SLOW {i}"} for i in range(n)])
        resp = http.post(f"/api/datasets/{name}/runs", json={
            "name": "r1", "target": {"url": target.url}, "scorers": scorers, "concurrency": CONCURRENCY})
        assert resp.status_code == 202, resp.text
        datasets[kind] = (name, items)
    (cancelled, cancelled_items), (killed, killed_items) = datasets["cancelled"], datasets["killed"]

    wait_run(http, cancelled, "r1", until=lambda r: r["completed"] >= 2)
    cancel_answer = http.post(f"/api/datasets/{cancelled}/runs/r1/cancel").json()
    calls_at_cancel = calls(target, cancelled_items)
    time.sleep(0.5)  # a dispatcher still running would start about four more calls meanwhile

    wait_run(http, killed, "r1", until=lambda r: r["completed"] >= 4)
    recorded = {r["item_id"] for r in results(http, killed, "r1") if r["status"] != "pending"}
    server.kill()
    calls_at_kill = calls(target, cancelled_items)
    server.start()
    done = wait_run(http, killed, "r1")
    yield Scenario(http, killed, cancelled, killed_items, cancelled_items, recorded, calls_at_cancel, calls_at_kill,
                   cancel_answer, done)
    http.close()
    server.stop()


def test_sigkill_mid_run_resumes_without_repeating_recorded_items(scenario, target):
    s = scenario
    assert 4 <= len(s.recorded) < KILLED_ITEMS
    assert (s.done["status"], s.done["completed"], s.done["failed"], s.done["scored"]) == (
        "completed", KILLED_ITEMS, 0, KILLED_ITEMS)
    assert {i: target.calls[i] for i in s.recorded} == {i: 1 for i in s.recorded}
    # Only calls in flight at the kill (or answered but not yet committed) are made again, once.
    assert all(1 <= target.calls[i["id"]] <= 2 for i in s.killed_items)
    final = results(s.http, s.killed, "r1")
    assert sorted(r["item_id"] for r in final) == sorted(i["id"] for i in s.killed_items)
    assert all(r["status"] == "ok" and [x["name"] for x in r["scores"]] == ["exact_match"] for r in final)
    assert s.done["summary"]["scorers"]["exact_match"]["mean"] == 1.0


def test_cancel_stops_dispatching_and_stays_cancelled_after_restart(scenario, target):
    s = scenario
    assert s.cancel_answer["status"] == "cancelled" and s.cancel_answer["finished_at"]
    # Calls already in flight at the cancel may still arrive; nothing is dispatched after them.
    assert s.calls_at_kill <= s.calls_at_cancel + CONCURRENCY
    assert calls(target, s.cancelled_items) == s.calls_at_kill  # the restart did not resume it
    run = s.http.get(f"/api/datasets/{s.cancelled}/runs/r1").json()
    assert run["status"] == "cancelled" and run["pending"] >= CANCELLED_ITEMS - s.calls_at_kill
