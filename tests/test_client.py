"""spanlake.client against a real server with an API key: every resource, sync and async, errors,
lazy pages and retries (429/503 from a stand-in, a refused connection)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from datasets_client import send_spans, unique
from otlp_builders import llm_trace
from server_process import ServerProcess, free_port
from spanlake.client import AsyncClient, Client, Dataset, Item, SpanlakeError, Trace
from thread_server import ThreadServer

KEY = "client-key"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ServerProcess(tmp_path_factory.mktemp("client") / "data", "--api-key", KEY) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    with Client(server.http_url, KEY) as c:
        yield c


@pytest.fixture(scope="module")
def traces(server):
    """Five stored traces of a service of their own: (service, [trace ids, oldest first])."""
    service = unique("svc")
    ids = []
    with httpx.Client(base_url=server.http_url, headers={"authorization": f"Bearer {KEY}"}) as http:
        for n in range(5):
            trace_id, spans = llm_trace(3, start_ns=time.time_ns() - (5 - n) * 1_000_000_000)
            send_spans(http, spans, service=service)
            ids.append(trace_id)
    return service, ids


def test_import_pulls_in_no_server_dependency():
    code = ("import sys, spanlake.client; "
            "print(','.join(m for m in ('duckdb', 'grpc', 'starlette', 'uvicorn', 'pyarrow') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert done.stdout.strip() == ""


def test_url_and_key_come_from_the_environment(server, monkeypatch):
    monkeypatch.setenv("SPANLAKE_URL", server.http_url)
    monkeypatch.setenv("SPANLAKE_API_KEY", f"{KEY},another")
    with Client() as c:
        assert c.url == server.http_url
        assert isinstance(c.datasets.list().all(), list)
    with Client(api_key="wrong") as c, pytest.raises(SpanlakeError) as caught:
        c.datasets.list().all()
    assert caught.value.status == 401 and caught.value.code and caught.value.message


def test_errors_carry_status_code_and_message(client):
    with pytest.raises(SpanlakeError) as missing:
        client.traces.get("ab" * 16)
    assert (missing.value.status, missing.value.code) == (404, "not_found") and "not found" in missing.value.message
    with pytest.raises(SpanlakeError) as bad:
        client.spans.search({"and": [{"field": "name", "op": "explode", "value": 1}]}).all()
    assert bad.value.status == 400 and "and[0].op" in bad.value.message
    name = unique()
    client.datasets.create(name)
    with pytest.raises(SpanlakeError) as taken:
        client.datasets.create(name)
    assert taken.value.status == 409


def test_traces_and_spans(client, traces):
    service, ids = traces
    trace = client.traces.get(ids[0])
    assert isinstance(trace, Trace) and trace.trace_id == ids[0] and len(trace.spans) == 3
    assert trace.root.name == "agent.run" and trace.root.service == service
    child = next(s for s in trace.spans if s.parent_span_id)
    assert client.spans.get(ids[0], child.span_id).attributes["gen_ai.request.model"] == "gpt-4o"
    found = client.spans.search({"field": "name", "op": "eq", "value": "chat gpt-4o"}, service=service).all()
    assert len(found) == 10 and {s.trace_id for s in found} == set(ids)


def test_search_reads_pages_lazily(server, traces):
    service, ids = traces
    requests: list[httpx.Request] = []
    http = httpx.Client(base_url=server.http_url, headers={"authorization": f"Bearer {KEY}"},
                        event_hooks={"request": [requests.append]})
    with Client(server.http_url, KEY, http=http) as c:
        pages = c.traces.search({"field": "service", "op": "eq", "value": service}, page_size=2)
        it = iter(pages)
        first = [next(it), next(it)]
        assert len(requests) == 1  # one page so far
        rest = list(it)
    assert len(requests) == 3  # 2 + 2 + 1
    assert [t.trace_id for t in first + rest] == ids[::-1]  # newest first, each once
    assert all(t.span_count == 3 and t.total_tokens for t in first + rest)


def test_datasets_items_and_versions(client):
    name = unique()
    ds = client.datasets.create(name, description="golden", metadata={"owner": "ml"})
    assert isinstance(ds, Dataset) and (ds.name, ds.metadata) == (name, {"owner": "ml"})
    items = client.datasets.add_items(name, [{"input": "2+2?", "expected_output": "4", "topic": "math"},
                                             {"input": {"q": "capital"}, "expected_output": "Paris", "tags": ["geo"]},
                                             Item(input="third")])
    assert [i.input for i in items] == ["2+2?", {"q": "capital"}, "third"]
    before = client.datasets.get(name).updated_at
    time.sleep(0.01)
    changed = client.datasets.update_item(name, items[0].id, expected_output="four")
    assert (changed.id, changed.expected_output) == (items[0].id, "four")
    gone = client.datasets.delete_items(name, [items[2].id, "no-such-id"])
    assert gone["deleted"] == 1 and gone["unknown_ids"] == ["no-such-id"]
    now = client.datasets.items(name, page_size=1).all()
    assert [(i.input, i.expected_output) for i in now] == [("2+2?", "four"), ({"q": "capital"}, "Paris")]
    then = client.datasets.items(name, as_of=before).all()
    assert [(i.input, i.expected_output) for i in then] == [("2+2?", "4"), ({"q": "capital"}, "Paris"), ("third", None)]
    assert [i.input for i in client.datasets.items(name, tags=["geo"])] == [{"q": "capital"}]
    renamed = client.datasets.update(name, name=name + "-2", description=None)
    assert (renamed.name, renamed.description, renamed.metadata) == (name + "-2", None, {"owner": "ml"})
    assert name + "-2" in [d.name for d in client.datasets.list(search=name)]
    client.datasets.delete(name + "-2")
    with pytest.raises(SpanlakeError) as caught:
        client.datasets.get(name + "-2")
    assert caught.value.status == 404


def test_capture_by_spans_traces_and_filter(client, traces):
    service, ids = traces
    name = unique()
    client.datasets.create(name)
    root = client.traces.get(ids[0]).root
    by_span = client.datasets.capture(name, span_ids=[root.span_id], topic="picked")
    assert (by_span.captured, by_span.duplicates) == (1, 0)
    by_trace = client.datasets.capture(name, trace_ids=ids[:2])
    assert (by_trace.captured, by_trace.duplicates) == (1, 1)  # ids[0]'s root is in already
    by_filter = client.datasets.capture(name, filter={"and": [{"field": "service", "op": "eq", "value": service},
                                                              {"field": "is_root", "op": "eq", "value": True}]},
                                        limit=10)
    assert (by_filter.captured, by_filter.duplicates) == (3, 2)
    with pytest.raises(TypeError):
        client.datasets.capture(name, span_ids=[root.span_id], trace_ids=ids)
    assert len(client.datasets.items(name).all()) == 5


def test_import_export_and_pandas(client, tmp_path):
    name = unique()
    rows = tmp_path / "rows.jsonl"
    rows.write_text("\n".join(json.dumps({"input": f"q{n}", "expected_output": f"a{n}", "topic": "t"}) for n in range(5)))
    assert client.datasets.import_file(name, rows, chunk_rows=2) == 5  # creates the dataset, three chunks
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"input": "ok"}\n{"input": "ok"}\n{"expected_output": "no input"}\n')
    with pytest.raises(SpanlakeError) as caught:
        client.datasets.import_file(name, bad, chunk_rows=2)
    assert caught.value.status == 422 and [r["row"] for r in caught.value.details["rows"]] == [3]
    assert len(client.datasets.items(name).all()) == 5  # nothing of the bad file was written
    out = client.datasets.export(name, "jsonl", tmp_path / "out.jsonl")
    assert [json.loads(line)["input"] for line in out.read_text().splitlines()] == [f"q{n}" for n in range(5)]
    parquet = client.datasets.export(name, "parquet", tmp_path / "out.parquet")
    assert not (tmp_path / "out.parquet.partial").exists()
    import pandas

    assert list(pandas.read_parquet(parquet)["expected_output"]) == [f"a{n}" for n in range(5)]
    frame = client.datasets.to_pandas(name)
    assert list(frame["input"]) == [f"q{n}" for n in range(5)] and set(frame["topic"]) == {"t"}


def test_scores_and_batches(client, traces):
    _, ids = traces
    score = client.scores.create(ids[1], "helpful", 0.25, explanation="meh")
    again = client.scores.create(ids[1], "helpful", 0.75)  # same identity: replaced
    listed = client.scores.list(trace_id=ids[1], name="helpful").all()
    assert [s.value for s in listed] == [0.75] and score.name == again.name == "helpful"
    batch = client.scores.batch("no_errors", trace_ids=ids + ["cd" * 16])
    assert batch.trace_count == 5 and batch.unknown_trace_ids == ["cd" * 16]
    done = batch.wait(progress=True, timeout=30)
    assert (done.status, done.completed, done.failed) == ("completed", 5, 0)
    assert {s.trace_id for s in client.scores.list(batch_id=batch.batch_id)} == set(ids)
    assert "no_errors" in [s["name"] for s in client.scores.scorers()]


def test_async_client_has_the_same_surface(server, traces):
    service, ids = traces

    async def main() -> None:
        async with AsyncClient(server.http_url, KEY) as c:
            assert (await c.traces.get(ids[2])).trace_id == ids[2]
            seen = [t.trace_id async for t in c.traces.search(service=service, page_size=2)]
            assert seen == ids[::-1]
            name = unique()
            await c.datasets.create(name)
            added = await c.datasets.add_items(name, [{"input": "x", "expected_output": "x"}])
            assert [i.input async for i in c.datasets.items(name)] == ["x"]
            await c.datasets.update_item(name, added[0].id, topic="t")
            assert (await c.datasets.get(name)).item_count == 1
            batch = await c.scores.batch("no_errors", trace_ids=ids[:2])
            assert (await batch.wait(timeout=30)).completed == 2
            with pytest.raises(TypeError):
                iter(c.datasets.items(name))
            with pytest.raises(SpanlakeError) as caught:
                await c.datasets.get(unique())
            assert caught.value.status == 404

    asyncio.run(main())


def test_runs_get_results_and_compare(client):
    name = unique()
    client.datasets.create(name)
    client.datasets.add_items(name, [{"input": "a", "expected_output": "a"}, {"input": "b", "expected_output": "b"}])
    v1 = client.run_experiment(name, lambda x: x, scorers=["exact_match"], name="v1", progress=False)
    v2 = client.run_experiment(name, lambda x: "b", scorers=["exact_match"], name="v2", progress=False)
    assert (v1.means, v2.means) == ({"exact_match": 1.0}, {"exact_match": 0.5})
    assert client.runs.get(name, "v1").summary["scorers"]["exact_match"]["count"] == 2
    results = client.runs.results(name, "v2", page_size=1).all()
    assert [(r.input, r.output, r.score_values) for r in results] == [("a", "b", {"exact_match": 0.0}),
                                                                       ("b", "b", {"exact_match": 1.0})]
    comparison = client.runs.compare(name, "v1", "v2")
    assert [r["input"] for r in comparison.regressions] == ["a"]
    assert comparison.summary["delta"]["scorers"]["exact_match"]["mean"] == -0.5
    assert [r.name for r in client.runs.list(name)] == ["v2", "v1"]


# Retries ------------------------------------------------------------------------------------------


class Flaky:
    """A stand-in server answering 429/503 (with Retry-After) a set number of times, then 200."""

    def __init__(self, failures: list[tuple[int, str | None]]):
        self.failures = list(failures)
        self.calls: list[float] = []
        self.port = free_port()

    async def handle(self, request: Request) -> JSONResponse:
        self.calls.append(time.monotonic())
        if self.failures:
            status, retry_after = self.failures.pop(0)
            headers = {"Retry-After": retry_after} if retry_after else {}
            return JSONResponse({"error": {"code": "busy", "message": "try later"}}, status_code=status, headers=headers)
        return JSONResponse({"id": "d1", "name": request.path_params["name"]})


def test_429_and_503_are_retried_after_retry_after():
    flaky = Flaky([(429, "0.5"), (503, "0.3"), (503, None)])
    server = ThreadServer(Starlette(routes=[Route("/api/datasets/{name}", flaky.handle)]), flaky.port, "flaky")
    server.start()
    try:
        with Client(f"http://127.0.0.1:{flaky.port}") as c:
            assert c.datasets.get("golden").name == "golden"
        gaps = [b - a for a, b in zip(flaky.calls, flaky.calls[1:])]
        assert len(flaky.calls) == 4 and gaps[0] >= 0.5 and gaps[1] >= 0.3
        flaky.failures = [(503, "5")] * 10
        with Client(f"http://127.0.0.1:{flaky.port}", retry_timeout=1) as c, pytest.raises(SpanlakeError) as caught:
            c.datasets.get("golden")
        assert (caught.value.status, caught.value.code) == (503, "busy")
    finally:
        server.stop()


def test_a_server_never_reached_is_reported_within_seconds():
    started = time.monotonic()
    with Client(f"http://127.0.0.1:{free_port()}") as c, pytest.raises(SpanlakeError) as caught:
        c.datasets.get("golden")  # a wrong URL: not the 120 s a restart under a running client gets
    assert caught.value.status == 0 and "cannot reach spanlake" in caught.value.message
    assert 4 < time.monotonic() - started < 10
