"""`Client` and `AsyncClient`: the same resources and methods, sync or awaited.

    client = Client()                     # SPANLAKE_URL / SPANLAKE_API_KEY, or url=..., api_key=...
    client.traces.get(trace_id)           # AsyncClient: await client.traces.get(trace_id)
    for t in client.traces.search({...}): # AsyncClient: async for t in ...
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import datetime as dt
from collections.abc import Callable, Coroutine, Iterable, Mapping
from typing import Any, TypeVar

import httpx

from spanlake.client import experiment
from spanlake.client.datasets import Datasets
from spanlake.client.driver import AsyncDriver, Driver, SyncDriver
from spanlake.client.models import Run
from spanlake.client.runs import Runs
from spanlake.client.scores import Scores
from spanlake.client.traces import Spans, Traces
from spanlake.client.transport import DEFAULT_RETRY_TIMEOUT, DEFAULT_TIMEOUT, AsyncTransport, Config, SyncTransport

T = TypeVar("T")


class _Resources:
    def __init__(self, driver: Driver, config: Config):
        self.config = config
        self.traces = Traces(driver)
        self.spans = Spans(driver)
        self.datasets = Datasets(driver)
        self.scores = Scores(driver)
        self.runs = Runs(driver)

    @property
    def url(self) -> str:
        return self.config.url


class Client(_Resources):
    """A blocking client. `timeout`: seconds per request; `retry_timeout`: how long one call keeps
    retrying 429/503 answers and connection failures (a restarting server) before giving up.
    `http`: your own httpx.Client (proxies, event hooks), used as is: give it the base URL and the
    authorization header yourself."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 retry_timeout: float = DEFAULT_RETRY_TIMEOUT, http: httpx.Client | None = None):
        config = Config.make(url, api_key, timeout, retry_timeout)
        self._transport = SyncTransport(config, http)
        super().__init__(SyncDriver(self._transport), config)

    def close(self) -> None:
        self._transport.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def run_experiment(self, dataset: str, task: Callable[..., Any], *, scorers: Iterable[Any] = (),
                       name: str | None = None, concurrency: int = 8, as_of: str | dt.datetime | None = None,
                       metadata: dict[str, Any] | None = None, fail_under: float | Mapping[str, float] | None = None,
                       progress: bool | None = None) -> Run:
        """Run `task` over every item of `dataset` as a client-side run; see `AsyncClient.run_experiment`.

        Works inside a running event loop too (a notebook): the experiment then runs on a thread.
        """
        async def main() -> Run:
            async with AsyncClient(self.config.url, self.config.api_key, timeout=self.config.timeout,
                                   retry_timeout=self.config.retry_timeout) as twin:
                return await twin.run_experiment(dataset, task, scorers=scorers, name=name, concurrency=concurrency,
                                                 as_of=as_of, metadata=metadata, fail_under=fail_under,
                                                 progress=progress)

        return _run_blocking(main)


class AsyncClient(_Resources):
    """The same surface as `Client`, awaited: `await client.datasets.get("golden")`."""

    def __init__(self, url: str | None = None, api_key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT,
                 retry_timeout: float = DEFAULT_RETRY_TIMEOUT, http: httpx.AsyncClient | None = None):
        config = Config.make(url, api_key, timeout, retry_timeout)
        self._transport = AsyncTransport(config, http)
        super().__init__(AsyncDriver(self._transport), config)

    async def aclose(self) -> None:
        await self._transport.aclose()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def run_experiment(self, dataset: str, task: Callable[..., Any], *, scorers: Iterable[Any] = (),
                             name: str | None = None, concurrency: int = 8, as_of: str | dt.datetime | None = None,
                             metadata: dict[str, Any] | None = None,
                             fail_under: float | Mapping[str, float] | None = None,
                             progress: bool | None = None) -> Run:
        """Call `task` (sync or async) on every item of `dataset` and record it as a client-side run.

        `scorers`: server scorer names and/or Python functions (run here; their scores go to the run's
        results). `fail_under`: a number (every scorer) or {scorer: bar}; a mean below it raises
        ThresholdError with the summary table. `progress`: None shows bars on a terminal only.
        Returns the finished run with its `summary` (`run.means` per scorer).
        """
        return await experiment.run_experiment(
            self, dataset, task, scorers=scorers, name=name, concurrency=concurrency, as_of=as_of,
            metadata=metadata, fail_under=fail_under, progress=progress,
        )


def _run_blocking(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """asyncio.run, or on a worker thread when this thread already runs an event loop (Jupyter)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(main())
    context = contextvars.copy_context()  # the caller's OpenTelemetry context goes along
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spanlake-experiment") as pool:
        return pool.submit(context.run, asyncio.run, main()).result()
