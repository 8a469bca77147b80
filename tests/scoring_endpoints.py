"""Outside services the scoring tests and benchmarks score against, on 127.0.0.1 free ports.

One uvicorn server in a background thread, two kinds of routes:

- `POST /score/{mode}`: an `http` scorer endpoint. Modes: `fast`, `slow` (sleeps `slow_seconds`).
  A trace whose input contains `REJECT` gets a 400 (a permanent failure); `FLAKY` a 503 on
  its first call.
- `POST /v1/chat/completions`: an OpenAI-compatible judge. What it answers depends on markers
  in the prompt: `RATE` (429 + Retry-After on the first call), `OOPS` (503 twice), `GARBAGE`
  (prose with no score), `STUCK` (sleeps past any sane timeout), `SLOW` (sleeps 0.5 s),
  `LABEL-PASS` / `LABEL-FAIL` (label answers); otherwise `{"score": 0.75, ...}`.
  `latency_s` delays every answer (the benchmark uses 0.2).

Every call is counted per trace id (started and answered), so tests can prove nothing was
scored twice.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
from collections import Counter
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server_process import free_port
from thread_server import ThreadServer

_TRACE = re.compile(r"trace=([0-9a-f]{32})")


class ScoringEndpoints:
    def __init__(self, *, slow_seconds: float = 0.3, latency_s: float = 0.0):
        self.slow_seconds = slow_seconds
        self.latency_s = latency_s
        self.port = free_port()
        self.started: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.lock = threading.Lock()
        self._server: ThreadServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def reset(self) -> None:
        with self.lock:
            self.started.clear()
            self.answered.clear()

    def _count(self, counter: Counter[str], key: str) -> int:
        with self.lock:
            counter[key] += 1
            return counter[key]

    async def score(self, request: Request) -> JSONResponse:
        payload = await request.json()
        trace_id = payload["trace_id"]
        calls = self._count(self.started, trace_id)
        if request.path_params["mode"] == "slow":
            await asyncio.sleep(self.slow_seconds)
        text = str(payload.get("input"))
        self._count(self.answered, trace_id)
        if "REJECT" in text:
            return JSONResponse({"error": "cannot score this"}, status_code=400)
        if "FLAKY" in text and calls == 1:
            return JSONResponse({"error": "busy"}, status_code=503, headers={"Retry-After": "0"})
        spans = payload.get("spans") or []
        return JSONResponse(
            {"value": len(spans), "label": "spans", "explanation": f"{len(spans)} spans", "metadata": {"calls": calls}}
        )

    async def chat(self, request: Request) -> JSONResponse:
        body = await request.json()
        prompt = "\n".join(m["content"] for m in body["messages"])
        match = _TRACE.search(prompt)
        key = match.group(1) if match else prompt[:64]
        calls = self._count(self.started, key)
        if self.latency_s:
            await asyncio.sleep(self.latency_s)
        if "STUCK" in prompt:
            await asyncio.sleep(5)
        if "SLOW" in prompt:
            await asyncio.sleep(0.5)
        self._count(self.answered, key)
        if "RATE" in prompt and calls == 1:
            return JSONResponse({"error": {"message": "slow down"}}, status_code=429, headers={"Retry-After": "1"})
        if "OOPS" in prompt and calls <= 2:
            return JSONResponse({"error": {"message": "overloaded"}}, status_code=503)
        if "GARBAGE" in prompt:
            content = "Well, it depends on how you look at it. Hard to say!"
        elif "LABEL-PASS" in prompt:
            content = "Reasoning: the answer is right.\nlabel: pass"
        elif "LABEL-FAIL" in prompt:
            content = '```json\n{"label": "fail", "explanation": "wrong city"}\n```'
        else:
            content = '{"score": 0.75, "explanation": "mostly right"}'
        return JSONResponse(
            {
                "id": "chatcmpl-test",
                "object": "chat.completion",
                "model": body.get("model"),
                "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            }
        )

    def start(self) -> "ScoringEndpoints":
        app = Starlette(
            routes=[
                Route("/score/{mode}", self.score, methods=["POST"]),
                Route("/v1/chat/completions", self.chat, methods=["POST"]),
            ]
        )
        self._server = ThreadServer(app, self.port, "scoring test endpoints", backlog=512, timeout_keep_alive=30)
        self._server.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()

    def __enter__(self) -> "ScoringEndpoints":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def spans_counter(ctx: Any) -> dict[str, Any]:
    """A `module:callable` Python scorer for the tests: how many spans the trace has."""
    return {"value": len(ctx.spans), "explanation": f"min={ctx.params.get('min', 0)}"}


# Traces and batches ---------------------------------------------------------------------------


def make_trace(
    input: str = "What is the capital of France?",
    output: str = "Paris",
    *,
    error: bool = False,
    duration_ms: float = 100.0,
    children: int = 2,
) -> tuple[str, list[Any]]:
    """A root span carrying the trace's input/output (OpenInference keys) and LLM children."""
    from otlp_builders import new_span_id, new_trace_id, span

    trace_id, root = new_trace_id(), new_span_id()
    start = time.time_ns()
    spans = [
        span(trace_id, root, "agent.run", start_ns=start, duration_ms=duration_ms,
             attributes={"input.value": input, "output.value": output})
    ]
    for i in range(children):
        spans.append(
            span(trace_id, new_span_id(), "chat", parent=root, start_ns=start + (i + 1) * 1000, duration_ms=10 + i,
                 error=error and i == 0,
                 attributes={"gen_ai.request.model": "gpt-4o", "gen_ai.usage.input_tokens": 10,
                             "gen_ai.usage.output_tokens": 5})
        )
    return trace_id, spans


def send(server: Any, spans: list[Any], service: str = "scoring-tests") -> None:
    import httpx
    from otlp_builders import request

    resp = httpx.post(
        f"{server.http_url}/v1/traces", content=request(spans, service=service).SerializeToString(),
        headers={"content-type": "application/x-protobuf"}, timeout=30,
    )
    assert resp.status_code == 200, resp.text


def wait_batch(server: Any, batch_id: str, *, timeout: float = 30.0, until: Any = None) -> dict[str, Any]:
    """Poll the batch until it is finished (or `until(batch)` holds); fail with its state on timeout."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        batch = httpx.get(f"{server.http_url}/api/scores/batches/{batch_id}", timeout=10).json()
        if (until(batch) if until else batch["status"] in ("completed", "failed")):
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch not done after {timeout}s: {batch}")
        time.sleep(0.05)


async def sleeps(ctx: Any) -> float:
    """A `module:callable` async scorer that only waits: the engine's overhead without any HTTP."""
    await asyncio.sleep(float(ctx.params.get("seconds", 0.2)))
    return 1.0
