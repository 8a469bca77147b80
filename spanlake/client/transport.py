"""HTTP for the client: what a call is, how it is retried, and the sync and async senders.

Retries follow what the server asks for: 429 and 503 are tried again after their `Retry-After`
(the ingest and scoring back-pressure answers). Connection failures are retried with backoff too,
so a server restarting mid-experiment is waited for; a request that may have reached the server
(a read error after sending) is repeated only when repeating it cannot change the outcome
(`Call.idempotent`). Every call has one time budget for its retries (`retry_timeout`); until a
client has had one answer from the server, connection failures get `FIRST_CONTACT_SECONDS` only,
so a wrong URL fails fast while a server restarting under a running client is waited for.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from spanlake import __version__
from spanlake.client.errors import SpanlakeError, from_body

DEFAULT_URL = "http://127.0.0.1:4318"
DEFAULT_TIMEOUT = 60.0
DEFAULT_RETRY_TIMEOUT = 120.0
FIRST_CONTACT_SECONDS = 5.0
RETRY_STATUSES = (429, 503)
_SAFE_METHODS = ("GET", "HEAD", "PUT", "DELETE", "PATCH")  # PATCH: setting the same values opens no version
_UNSET: Any = object()


@dataclass(frozen=True)
class Config:
    """Where the server is and how patient to be; `url`/`api_key` default to SPANLAKE_URL / SPANLAKE_API_KEY."""

    url: str
    api_key: str | None
    timeout: float = DEFAULT_TIMEOUT
    retry_timeout: float = DEFAULT_RETRY_TIMEOUT

    @classmethod
    def make(cls, url: str | None, api_key: str | None, timeout: float, retry_timeout: float) -> "Config":
        url = (url or os.environ.get("SPANLAKE_URL") or DEFAULT_URL).rstrip("/")
        if api_key is None:
            api_key = os.environ.get("SPANLAKE_API_KEY")
        # The server's variable may list several keys (k1,k2); any one of them works.
        api_key = (api_key or "").split(",")[0].strip() or None
        if timeout <= 0 or retry_timeout < 0:
            raise ValueError(f"timeout must be > 0 and retry_timeout >= 0, got {timeout!r} and {retry_timeout!r}")
        return cls(url, api_key, float(timeout), float(retry_timeout))

    def headers(self) -> dict[str, str]:
        headers = {"user-agent": f"spanlake-client/{__version__}"}
        if self.api_key:
            headers["authorization"] = f"Bearer {self.api_key}"
        return headers

    def http_timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.timeout, connect=min(10.0, self.timeout))


@dataclass
class Call:
    """One API request as an operation describes it; the transport sends (and retries) it."""

    method: str
    path: str
    params: Any = None
    json: Any = _UNSET
    content: bytes | None = None
    headers: Mapping[str, str] | None = None
    ok: tuple[int, ...] = (200,)
    idempotent: bool | None = None  # None: by method
    download: Path | None = None  # stream a 200 body to this file (via a .partial file)

    @property
    def repeatable(self) -> bool:
        return self.idempotent if self.idempotent is not None else self.method in _SAFE_METHODS

    def request_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"params": self.params, "headers": self.headers}
        if self.json is not _UNSET:
            kwargs["json"] = self.json
        if self.content is not None:
            kwargs["content"] = self.content
        return kwargs


@dataclass(frozen=True)
class Sleep:
    """An operation waiting between polls (the driver sleeps the sync or the async way)."""

    seconds: float


@dataclass
class Reply:
    status: int
    headers: httpx.Headers
    data: Any = None  # the parsed JSON body, None when empty or not JSON
    text: str = field(default="", repr=False)


def _reply(resp: httpx.Response) -> Reply:
    data = None
    text = resp.text
    if "json" in resp.headers.get("content-type", "") and resp.content:
        try:
            data = resp.json()
        except ValueError:
            data = None
    return Reply(resp.status_code, resp.headers, data, text)


def check(call: Call, reply: Reply) -> Reply:
    if reply.status not in call.ok:
        raise from_body(reply.status, reply.data, reply.text)
    return reply


def backoff(attempt: int) -> float:
    return min(5.0, 0.2 * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)


def retry_after(headers: httpx.Headers) -> float | None:
    try:
        return max(0.0, float(headers.get("retry-after", "")))
    except ValueError:
        return None  # an HTTP date: fall back to our own backoff


def retry_delay(call: Call, attempt: int, started: float, budget: float, *, error: Exception | None = None,
                reply: Reply | None = None) -> float | None:
    """Seconds to wait before trying `call` again, or None to give up (not retryable, or out of time)."""
    if error is not None:
        unsent = isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
        maybe_sent = isinstance(error, (httpx.NetworkError, httpx.TimeoutException, httpx.RemoteProtocolError))
        if not (unsent or (maybe_sent and call.repeatable)):
            return None
        delay = backoff(attempt)
    elif reply is not None and reply.status in RETRY_STATUSES:
        delay = retry_after(reply.headers)
        delay = backoff(attempt) if delay is None else delay
    else:
        return None
    remaining = budget - (time.monotonic() - started)
    return None if remaining <= 0 else min(delay, remaining)


def unreachable(url: str, error: Exception) -> SpanlakeError:
    return SpanlakeError(0, "unreachable", f"cannot reach spanlake at {url} ({type(error).__name__}: {error}); "
                                           "is `spanlake serve` running?")


def _partial(path: Path) -> Path:
    return path.with_name(path.name + ".partial")


class _Budget:
    config: Config
    reached = False  # has the server answered this client yet?

    def _budget(self) -> float:
        return self.config.retry_timeout if self.reached else min(self.config.retry_timeout, FIRST_CONTACT_SECONDS)


class SyncTransport(_Budget):
    def __init__(self, config: Config, http: httpx.Client | None = None):
        self.config = config
        self.http = http or httpx.Client(base_url=config.url, headers=config.headers(), timeout=config.http_timeout())

    def send(self, call: Call) -> Reply:
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            try:
                reply = self._once(call)
            except httpx.HTTPError as exc:
                delay = retry_delay(call, attempt, started, self._budget(), error=exc)
                if delay is None:
                    raise unreachable(self.config.url, exc) from None
            else:
                self.reached = True
                delay = retry_delay(call, attempt, started, self.config.retry_timeout, reply=reply)
                if delay is None:
                    return check(call, reply)
            time.sleep(delay)

    def _once(self, call: Call) -> Reply:
        if call.download is None:
            return _reply(self.http.request(call.method, call.path, **call.request_kwargs()))
        with self.http.stream(call.method, call.path, **call.request_kwargs()) as resp:
            if resp.status_code != 200:
                resp.read()
                return _reply(resp)
            partial = _partial(call.download)
            with partial.open("wb") as out:
                for chunk in resp.iter_bytes():
                    out.write(chunk)
            partial.replace(call.download)
            return Reply(resp.status_code, resp.headers)

    def close(self) -> None:
        self.http.close()


class AsyncTransport(_Budget):
    def __init__(self, config: Config, http: httpx.AsyncClient | None = None):
        self.config = config
        self.http = http or httpx.AsyncClient(base_url=config.url, headers=config.headers(),
                                              timeout=config.http_timeout())

    async def send(self, call: Call) -> Reply:
        started, attempt = time.monotonic(), 0
        while True:
            attempt += 1
            try:
                reply = await self._once(call)
            except httpx.HTTPError as exc:
                delay = retry_delay(call, attempt, started, self._budget(), error=exc)
                if delay is None:
                    raise unreachable(self.config.url, exc) from None
            else:
                self.reached = True
                delay = retry_delay(call, attempt, started, self.config.retry_timeout, reply=reply)
                if delay is None:
                    return check(call, reply)
            await asyncio.sleep(delay)

    async def _once(self, call: Call) -> Reply:
        if call.download is None:
            return _reply(await self.http.request(call.method, call.path, **call.request_kwargs()))
        async with self.http.stream(call.method, call.path, **call.request_kwargs()) as resp:
            if resp.status_code != 200:
                await resp.aread()
                return _reply(resp)
            partial = _partial(call.download)
            with partial.open("wb") as out:  # local disk writes: small next to the network wait
                async for chunk in resp.aiter_bytes():
                    out.write(chunk)
            partial.replace(call.download)
            return Reply(resp.status_code, resp.headers)

    async def aclose(self) -> None:
        await self.http.aclose()
