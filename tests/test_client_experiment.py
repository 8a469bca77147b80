"""run_experiment against a real server: a task instrumented with OpenTelemetry (its spans exported
to the same server link to the results), local and server scorers, fail_under, a server restart
in the middle, and `spanlake run --task`."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from datasets_client import unique
from server_process import ServerProcess
from spanlake.client import AsyncClient, Client, ThresholdError

ROOT = Path(__file__).resolve().parent.parent
CAPITALS = {"France": "Paris", "Spain": "Madrid", "Italy": "Rome", "Peru": "Lima"}
ITEMS = [{"input": country, "expected_output": city} for country, city in CAPITALS.items()]
ITEMS[3]["expected_output"] = "Cusco"  # the task answers Lima: exact_match 0.75


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("client-experiment")
    config = tmp / "spanlake.yaml"
    config.write_text(json.dumps({"runs": {"trace_wait_seconds": 0.1, "poll_seconds": 0.2}}))
    with ServerProcess(tmp / "data", "--config", str(config)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with Client(server.http_url) as c:
        yield c


@pytest.fixture(scope="module")
def otel(server):
    """The process's OpenTelemetry, exporting over OTLP/HTTP to the test server (as an app's would)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "capitals-agent"}))
        trace.set_tracer_provider(provider)
    processor = BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{server.http_url}/v1/traces"))
    provider.add_span_processor(processor)
    yield provider
    processor.shutdown()


def dataset(client: Client, items: list[dict] = ITEMS) -> str:
    name = unique("capitals")
    client.datasets.create(name)
    client.datasets.add_items(name, items)
    return name


tracer = trace.get_tracer("capitals-agent")


async def answer(country: str) -> str:
    """The app under test: async, and its LLM call is a span of its own (7 + 3 tokens)."""
    with tracer.start_as_current_span("chat gpt-4o", attributes={
        "gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 7, "gen_ai.usage.output_tokens": 3,
        "gen_ai.operation.name": "chat",
    }):
        await asyncio.sleep(0.01)
        return CAPITALS[country]


def starts_like(output: str, expected: str) -> bool:
    """A local scorer: same first letter."""
    return output[:1] == expected[:1]


def test_async_task_spans_link_to_results_and_both_scorer_kinds_land(client, otel):
    name = dataset(client)

    async def main():
        async with AsyncClient(client.url) as ac:
            return await ac.run_experiment(name, answer, scorers=["exact_match", "token_usage", starts_like],
                                           name="otel", metadata={"git": "abc"}, progress=False)

    run = asyncio.run(main())
    assert (run.status, run.completed, run.failed) == ("completed", 4, 0)
    assert run.means == {"exact_match": 0.75, "starts_like": 0.75, "token_usage": 10.0}
    assert run.metadata["git"] == "abc" and run.metadata["task"].endswith(":answer")
    results = client.runs.results(name, "otel").all()
    for result in results:
        assert result.trace_id and result.span_id, result
        spans = client.traces.get(result.trace_id).spans
        item_span = next(s for s in spans if s.span_id == result.span_id)
        assert item_span.name == "spanlake.experiment.item" and item_span.parent_span_id is None
        llm = [s for s in spans if s.parent_span_id == result.span_id]
        assert [(s.name, s.model) for s in llm] == [("chat gpt-4o", "gpt-4o")]  # the task's own span, under the result
        assert set(result.score_values) == {"exact_match", "starts_like", "token_usage"}
        on_trace = client.traces.scores(result.trace_id).all()
        assert {(s.name, s.span_id) for s in on_trace} == {(n, result.span_id) for n in result.score_values}
    peru = next(r for r in results if r.input == "Peru")
    assert peru.score_values == {"exact_match": 0.0, "starts_like": 0.0, "token_usage": 10.0}


def test_sync_task_with_the_item_errors_and_tokens(client):
    name = dataset(client)
    seen = []

    def task(country, item):
        seen.append(item.id)
        if country == "Italy":
            raise RuntimeError("no answer for Italy")
        return {"output": CAPITALS[country], "usage": {"prompt_tokens": 5, "completion_tokens": 1}}

    def broken(output):
        raise ValueError("scorer bug")

    run = client.run_experiment(name, task, scorers=["exact_match", broken], concurrency=2, progress=False)
    assert (run.status, run.completed, run.failed) == ("completed", 3, 1)
    assert len(seen) == 4 and run.summary["tokens"] == {"input": 15, "output": 3, "total": 18}
    assert len(run.local_errors) == 3 and all("ValueError: scorer bug" in e for e in run.local_errors)
    italy = next(r for r in client.runs.results(name, run.id) if r.input == "Italy")
    assert (italy.status, italy.error, italy.scores) == ("error", "RuntimeError: no answer for Italy", [])


def test_fail_under_raises_with_the_summary_table(client):
    name = dataset(client)
    with pytest.raises(ThresholdError) as caught:
        client.run_experiment(name, CAPITALS.get, scorers=["exact_match", starts_like],
                              fail_under={"exact_match": 0.9}, name="gated", progress=False)
    error = caught.value
    assert error.missed == ["exact_match mean 0.75 < 0.9"]
    assert "exact_match" in error.table and "0.9 MISSED" in error.table and "starts_like" in error.table
    assert client.runs.get(name, "gated").status == "completed"  # the run itself is kept
    assert client.run_experiment(name, CAPITALS.get, scorers=["exact_match"], fail_under=0.75,
                                 progress=False).means == {"exact_match": 0.75}
    with pytest.raises(ValueError, match="not one of the experiment's scorers"):
        client.run_experiment(name, CAPITALS.get, scorers=["exact_match"], fail_under={"latency": 1})


def test_a_server_restart_mid_experiment_is_survived(server, client):
    items = [{"input": f"q{n}", "expected_output": f"q{n}"} for n in range(12)]
    name = dataset(client, items)
    calls = 0
    halfway = threading.Event()

    def slow_echo(text):
        nonlocal calls
        calls += 1
        if calls == 4:
            halfway.set()
        time.sleep(0.25)
        return text

    def restart():
        halfway.wait(30)
        server.stop()
        time.sleep(1.0)  # the client keeps working, and its posts keep failing, meanwhile
        server.start()

    restarter = threading.Thread(target=restart)
    restarter.start()
    pid = server.proc.pid
    try:
        with Client(server.http_url, retry_timeout=60) as patient:
            run = patient.run_experiment(name, slow_echo, scorers=["exact_match"], concurrency=2, progress=False)
    finally:
        restarter.join(60)
    assert server.proc.pid != pid  # it really was restarted
    assert (run.status, run.completed, run.failed, run.means) == ("completed", 12, 0, {"exact_match": 1.0})


def test_cli_runs_a_python_task(server, client, tmp_path):
    name = dataset(client)
    (tmp_path / "capitals_task.py").write_text(
        "CAPITALS = " + repr(CAPITALS) + "\n\nasync def answer(country):\n    return CAPITALS[country]\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SPANLAKE_URL": server.http_url}
    base = [sys.executable, "-m", "spanlake", "run", name, "--task", "capitals_task:answer", "--scorer", "exact_match"]
    gated = subprocess.run([*base, "--fail-under", "exact_match=0.9", "--name", "cli-gate"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=60)
    assert gated.returncode == 3, gated.stderr
    assert "fail-under missed: exact_match mean 0.75 < 0.9" in gated.stderr and "4 ok, 0 error(s) of 4" in gated.stderr
    ok = subprocess.run([*base, "--fail-under", "exact_match=0.75"], cwd=tmp_path, env=env, capture_output=True,
                        text=True, timeout=60)
    assert ok.returncode == 0, ok.stderr
    assert client.runs.get(name, ok.stdout.strip()).means == {"exact_match": 0.75}
    missing = subprocess.run([*base[:-4], "--task", "capitals_task:nope"], cwd=tmp_path, env=env, capture_output=True,
                             text=True, timeout=60)
    assert missing.returncode == 1 and "has no attribute nope" in missing.stderr and "Traceback" not in missing.stderr
