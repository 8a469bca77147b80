"""Calling a run's HTTP target for one dataset item: the request, the trace context, the answer.

The contract (also in the README, "Dataset runs"):

- spanlake POSTs JSON `{"input": <item input>, "item_id": "...", "metadata": {...}, "run_id": "..."}`
  with the run's headers and a W3C `traceparent` (https://www.w3.org/TR/trace-context/#traceparent-header):
  a fresh trace id per item and a parent span id spanlake made up. A target that continues that
  trace context gets its own OTLP spans linked to the result.
- A 2xx answer is a success. Its output is the `output` field of a JSON object answer, else the
  whole JSON body, else the body as text. Token usage is read from `usage` (or `tokens`): a count
  or an object with input/output/total (OpenAI's prompt_tokens/completion_tokens too). A target
  that started its own trace instead may report `trace_id` / `span_id` in the JSON answer.
- Anything else (non-2xx, timeout, refused connection, an answer over 4 MB) is an error result.
  408/425/429/5xx, timeouts and connection failures are tried again while `max_attempts` allows.
- Every request, and every redirect hop (at most MAX_REDIRECTS), goes only where the outbound
  policy allows (spanlake/outbound.py), checked on the address connected to; a refusal is an
  error result, not retried.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

from spanlake.runs.validate import tokens
from spanlake.outbound import OutboundPolicy, OutboundRefused, PolicyTransport

MAX_ANSWER_BYTES = 4 * 1024 * 1024
MAX_REDIRECTS = 5
MAX_ERROR_TEXT = 500
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")


class _Retry(Exception):
    pass


@dataclass(frozen=True)
class Call:
    """What one item's execution produced: a row for `store.runs.record_executions`."""

    seq: int
    status: str  # ok | error
    output: str | None  # JSON text
    error: str | None
    latency_ms: float
    trace_id: str | None = None
    span_id: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None

    def row(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def traceparent(trace_id: str, parent_span_id: str) -> str:
    return f"00-{trace_id}-{parent_span_id}-01"  # version 00, sampled


class Target:
    """One run's target: a connection pool sized to the run's concurrency."""

    def __init__(self, config: dict[str, Any], *, concurrency: int, run_id: str, outbound: OutboundPolicy):
        self.url = config["url"]
        self.headers = dict(config.get("headers") or {})
        self.timeout_s = float(config.get("timeout_s", 60.0))
        self.max_attempts = int(config.get("max_attempts", 1))
        self.run_id = run_id
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        self.http = httpx.AsyncClient(
            timeout=httpx.Timeout(self.timeout_s, connect=min(10.0, self.timeout_s)),
            transport=PolicyTransport(outbound, httpx.AsyncHTTPTransport(limits=limits)),
            follow_redirects=True,
            max_redirects=MAX_REDIRECTS,
        )

    async def aclose(self) -> None:
        await self.http.aclose()

    async def call(self, work: dict[str, Any]) -> Call:
        body = {"input": work["input"], "item_id": work["item_id"], "metadata": work.get("item_metadata") or {},
                "run_id": self.run_id}
        headers = {**self.headers, "content-type": "application/json"}
        if work.get("trace_id") and work.get("parent_span_id"):
            headers["traceparent"] = traceparent(work["trace_id"], work["parent_span_id"])
        content = orjson.dumps(body)
        attempt = 0
        while True:
            attempt += 1
            started = time.perf_counter()
            try:
                return await self._once(work["seq"], content, headers, started)
            except _Retry as exc:
                if attempt >= self.max_attempts:
                    return self._error(work["seq"], str(exc), started, attempt)
                await asyncio.sleep(random.uniform(0.05, 0.25) * 2 ** (attempt - 1))

    async def _once(self, seq: int, content: bytes, headers: dict[str, str], started: float) -> Call:
        try:
            async with self.http.stream("POST", self.url, content=content, headers=headers) as resp:
                data = bytearray()
                async for chunk in resp.aiter_bytes():
                    data += chunk
                    if len(data) > MAX_ANSWER_BYTES:
                        return self._error(seq, f"answer larger than {MAX_ANSWER_BYTES} bytes", started, 1)
        except OutboundRefused as exc:
            return self._error(seq, f"refused by the outbound policy: {exc.message}", started, 1)
        except httpx.TooManyRedirects:
            return self._error(seq, f"more than {MAX_REDIRECTS} redirects", started, 1)
        except httpx.TimeoutException:
            raise _Retry(f"no answer within {self.timeout_s:g}s") from None
        except httpx.HTTPError as exc:
            raise _Retry(f"cannot reach the target: {type(exc).__name__}: {exc}") from None
        except (httpx.InvalidURL, ValueError) as exc:  # e.g. a URL httpx cannot send to
            return self._error(seq, f"cannot call the target: {exc}", started, 1)
        latency = (time.perf_counter() - started) * 1000.0
        text = bytes(data).decode("utf-8", errors="replace")
        if not 200 <= resp.status_code < 300:
            message = f"target answered {resp.status_code}: {text[:MAX_ERROR_TEXT]}"
            if resp.status_code in RETRY_STATUSES:
                raise _Retry(message)
            return Call(seq, "error", None, message, latency)
        return parse_answer(seq, bytes(data), text, latency)

    @staticmethod
    def _error(seq: int, message: str, started: float, attempts: int) -> Call:
        if attempts > 1:
            message = f"{message} (after {attempts} attempts)"
        return Call(seq, "error", None, message, (time.perf_counter() - started) * 1000.0)


def parse_answer(seq: int, data: bytes, text: str, latency_ms: float) -> Call:
    """A 2xx answer: the `output` field of a JSON object, else the JSON, else the text."""
    try:
        doc: Any = orjson.loads(data) if data.strip() else None
    except orjson.JSONDecodeError:
        return Call(seq, "ok", orjson.dumps(text).decode(), None, latency_ms)
    usage: dict[str, int | None] = tokens(None, "")
    trace_id = span_id = None
    output = doc
    if isinstance(doc, dict):
        if "output" in doc:
            output = doc["output"]
        usage = tokens(doc.get("usage", doc.get("tokens")), "usage", strict=False)
        if isinstance(doc.get("trace_id"), str) and _HEX32.match(doc["trace_id"]):
            trace_id = doc["trace_id"]
            if isinstance(doc.get("span_id"), str) and _HEX16.match(doc["span_id"]):
                span_id = doc["span_id"]
    try:
        encoded = orjson.dumps(output).decode()
    except (TypeError, orjson.JSONEncodeError):  # e.g. an integer past 64 bits
        encoded = orjson.dumps(text).decode()
    return Call(seq, "ok", None if output is None else encoded, None, latency_ms, trace_id, span_id, **usage)
