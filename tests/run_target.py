"""An HTTP target for dataset-run tests: a stand-in for the app under test, on a free 127.0.0.1 port.

What it answers depends on the item's input text:

- `FAIL`: 500 (an error result); `SLOW`: sleeps `slow_seconds` first;
- `TRACE`: continues the W3C traceparent it received and exports its own span to spanlake's
  /v1/traces (synchronously, before answering), like an instrumented app would;
- otherwise the answer from `answers` (input -> JSON body), else `{"output": <input>}`.

Every call is counted per item id, and every traceparent kept, so tests can check that no item
was executed twice and that each call carried a fresh trace id.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from datasets_client import list_all
from otlp_builders import new_span_id, request, span
from server_process import free_port
from thread_server import ThreadServer

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}\Z")


class RunTarget:
    def __init__(self, *, slow_seconds: float = 0.3, answers: dict[str, Any] | None = None):
        self.slow_seconds = slow_seconds
        self.answers = dict(answers or {})
        self.spanlake_url: str | None = None  # where TRACE items export their spans
        self.port = free_port()
        self.calls: Counter[str] = Counter()
        self.traceparents: dict[str, list[str]] = {}
        self.headers: list[dict[str, str]] = []
        self.exported: dict[str, tuple[str, str]] = {}  # item id -> (trace id, span id) of its span
        self.lock = threading.Lock()
        self._server: ThreadServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/agent"

    def total_calls(self) -> int:
        with self.lock:
            return sum(self.calls.values())

    async def agent(self, req: Request) -> Response:
        body = await req.json()
        item_id, text = body["item_id"], str(body["input"])
        with self.lock:
            self.calls[item_id] += 1
            self.traceparents.setdefault(item_id, []).append(req.headers.get("traceparent", ""))
            self.headers.append(dict(req.headers))
        if "SLOW" in text:
            await asyncio.sleep(self.slow_seconds)
        if "FAIL" in text:
            return PlainTextResponse("the agent crashed", status_code=500)
        if "TRACE" in text:
            await self._export(item_id, text, req.headers.get("traceparent", ""))
        if text in self.answers:
            answer = self.answers[text]
            return PlainTextResponse(answer) if isinstance(answer, str) else JSONResponse(answer)
        return JSONResponse({"output": text})

    async def _export(self, item_id: str, text: str, traceparent: str) -> None:
        match = _TRACEPARENT.match(traceparent)
        assert match and self.spanlake_url, traceparent
        trace_id, parent = match.groups()
        span_id = new_span_id()
        spans = [span(trace_id, span_id, "agent.handle", parent=parent, duration_ms=5,
                      attributes={"input.value": text, "output.value": text, "gen_ai.usage.input_tokens": 3})]
        async with httpx.AsyncClient() as http:
            resp = await http.post(f"{self.spanlake_url}/v1/traces", content=request(spans, service="run-target").SerializeToString(),
                                   headers={"content-type": "application/x-protobuf"})
        assert resp.status_code == 200, resp.text
        with self.lock:
            self.exported[item_id] = (trace_id, span_id)

    def start(self) -> "RunTarget":
        app = Starlette(routes=[Route("/agent", self.agent, methods=["POST"])])
        self._server = ThreadServer(app, self.port, "run target")
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> "RunTarget":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def wait_run(http: httpx.Client, dataset: str, run_id: str, *, timeout: float = 30.0, until: Any = None) -> dict[str, Any]:
    """Poll the run until it is finished (or `until(run)` holds); fail with its state on timeout."""
    deadline = time.monotonic() + timeout
    while True:
        run = http.get(f"/api/datasets/{dataset}/runs/{run_id}").json()
        if until(run) if until else run["status"] in ("completed", "failed", "cancelled"):
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run not done after {timeout}s: {run}")
        time.sleep(0.05)


def results(http: httpx.Client, dataset: str, run_id: str, **params: Any) -> list[dict[str, Any]]:
    # Small pages: the cursor is exercised too.
    return list_all(http, f"/api/datasets/{dataset}/runs/{run_id}/results", **{"limit": 2, **params})
