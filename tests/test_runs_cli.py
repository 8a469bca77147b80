"""`spanlake run` as a CI job runs it: a subprocess against a real server and target, judged by exit code."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from datasets_client import add_items, client, new_dataset, unique
from run_target import RunTarget, results
from server_process import ServerProcess

KEY = "runs-cli-key"
# exact_match: 3 of 4 answers equal their expectation -> mean 0.75.
ITEMS = [
    {"input": "a", "expected_output": "a"},
    {"input": "b", "expected_output": "b"},
    {"input": "c", "expected_output": "c"},
    {"input": "d", "expected_output": "not d"},
]


@pytest.fixture(scope="module")
def target():
    with RunTarget() as t:
        yield t


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runs-cli")
    config = tmp / "spanlake.yaml"
    config.write_text(json.dumps({"runs": {"trace_wait_seconds": 0.1, "poll_seconds": 0.2}}))
    with ServerProcess(tmp / "data", "--api-key", KEY, "--config", str(config)) as srv:
        yield srv


@pytest.fixture(scope="module")
def dataset(server):
    with client(server, headers={"authorization": f"Bearer {KEY}"}) as http:
        name = unique("cli-runs")
        new_dataset(http, name)
        add_items(http, name, ITEMS)
    return name


def spanlake_run(server, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "SPANLAKE_API_KEY": KEY}
    return subprocess.run([sys.executable, "-m", "spanlake", "run", *args, "--url", server.http_url],
                          capture_output=True, text=True, timeout=60, env=env)


def test_gate_fails_below_threshold(server, target, dataset):
    done = spanlake_run(server, dataset, "--target", target.url, "--scorer", "exact_match", "--scorer",
                        "contains_expected", "--name", "gate-high", "--fail-under", "exact_match=0.9")
    assert done.returncode == 3, done.stderr
    assert "fail-under missed: exact_match mean 0.75 < 0.9" in done.stderr
    assert "4 ok, 0 error(s) of 4" in done.stderr and "exact_match" in done.stderr


def test_gate_passes_and_prints_the_run_id(server, target, dataset):
    done = spanlake_run(server, dataset, "--target", target.url, "--scorer", "exact_match", "--name", "gate-low",
                        "--fail-under", "exact_match=0.75", "--header", "X-Build: 42", "--concurrency", "2")
    assert done.returncode == 0, done.stderr
    run_id = done.stdout.strip()
    with client(server, headers={"authorization": f"Bearer {KEY}"}) as http:
        run = http.get(f"/api/datasets/{dataset}/runs/{run_id}").json()
        assert (run["name"], run["status"], run["concurrency"]) == ("gate-low", "completed", 2)
        assert run["target"]["headers"] == {"X-Build": "***"}
        assert len(results(http, dataset, run_id)) == 4
    assert any(h.get("x-build") == "42" for h in target.headers)


def test_without_wait_returns_at_once_and_bad_input_exits_1(server, target, dataset):
    started = spanlake_run(server, dataset, "--target", target.url, "--name", "quick")
    assert started.returncode == 0 and len(started.stdout.strip()) == 36, started.stderr
    wrong = spanlake_run(server, dataset, "--target", target.url, "--scorer", "exact_match", "--fail-under", "latency=1")
    assert wrong.returncode == 1 and "--scorer latency" in wrong.stderr
    missing = spanlake_run(server, "no-such-dataset", "--target", target.url)
    assert missing.returncode == 1 and "not found" in missing.stderr and "Traceback" not in missing.stderr
    clash = spanlake_run(server, dataset, "--target", target.url, "--name", "quick")
    assert clash.returncode == 1 and "already has a run named" in clash.stderr
