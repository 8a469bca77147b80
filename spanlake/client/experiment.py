"""`run_experiment`: run a Python task over a dataset as a client-side run, score it, gate on it.

1. Start a client-mode run; it fixes the dataset version (`as_of`) the items are read at.
2. `concurrency` workers call the task per item (inside an OpenTelemetry span of a fresh trace
   when the process has a tracer provider), time it, run the local scorers on its output, and
   post results with their local scores in batches (posting an item again replaces it, so a
   retried post is harmless; connection errors are retried, so a server restart is survived).
3. Flush the process's spans, complete the run (the server scores with its scorers and links the
   results and all their scores to the stored traces), wait for it, check `fail_under`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from spanlake.client import otel
from spanlake.client.calls import LocalScorer, Task, text, unpack
from spanlake.client.errors import ThresholdError
from spanlake.client.models import Item, Run
from spanlake.client.progress import bar
from spanlake.client.summary import below, render

if TYPE_CHECKING:
    from spanlake.client.client import AsyncClient

POST_EVERY = 100  # results per post
POST_SECONDS = 1.0  # or at least this often
MAX_ERROR = 2000
MAX_SERVER_CONCURRENCY = 64  # what a run records; the client itself may go higher

Scorer = str | Callable[..., Any]


def _gates(fail_under: float | Mapping[str, float] | None, names: list[str]) -> dict[str, float]:
    if fail_under is None:
        return {}
    if isinstance(fail_under, Mapping):
        unknown = [n for n in fail_under if n not in names]
        if unknown:
            raise ValueError(f"fail_under: {unknown[0]!r} is not one of the experiment's scorers ({', '.join(names)})")
        return {n: float(v) for n, v in fail_under.items()}
    if not names:
        raise ValueError("fail_under needs scorers: a mean to compare with")
    return {n: float(fail_under) for n in names}


class _Poster:
    """Buffers results and posts them in batches, one post at a time."""

    def __init__(self, client: AsyncClient, dataset_id: str, run_id: str):
        self.client, self.dataset_id, self.run_id = client, dataset_id, run_id
        self.rows: list[dict[str, Any]] = []
        self.lock = asyncio.Lock()
        self.last = time.monotonic()

    async def add(self, row: dict[str, Any]) -> None:
        self.rows.append(row)
        if len(self.rows) >= POST_EVERY or time.monotonic() - self.last >= POST_SECONDS:
            await self.flush()

    async def flush(self) -> None:
        async with self.lock:
            rows, self.rows = self.rows, []
            self.last = time.monotonic()
            if rows:
                await self.client.runs.post_results(self.dataset_id, self.run_id, rows)


class _Experiment:
    def __init__(self, client: AsyncClient, task: Task, scorers: list[LocalScorer], run: Run):
        self.client, self.task, self.scorers, self.run = client, task, scorers, run
        self.tracer = otel.tracer()
        self.local_errors: list[str] = []

    async def execute(self, item: Item) -> dict[str, Any]:
        """One item: the task call (in its span), its result row and the local scores of its output."""
        row: dict[str, Any] = {"item_id": item.id}
        attributes = {"spanlake.run_id": self.run.id, "spanlake.item_id": item.id, "input.value": text(item.input),
                      "openinference.span.kind": "CHAIN"}
        error = value = None
        with otel.item_span(self.tracer, attributes) as span:
            started = time.perf_counter()
            try:
                value = await self.task(item)
            except Exception as exc:  # the task's failure is this item's error result, never the run's
                error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR]
            row["latency_ms"] = (time.perf_counter() - started) * 1000
            trace = otel.ids(span)
            if error is None:
                output, usage = unpack(value)
                otel.finish(span, output=text(output))
            else:
                otel.finish(span, error=error)
        if trace is not None:
            row["trace_id"], row["span_id"] = trace
        if error is not None:
            row["error"] = error
            return row
        row["output"] = output
        if usage:
            row["tokens"] = usage
        scores = [s for s in await asyncio.gather(*(self._score(s, item, output, trace) for s in self.scorers)) if s]
        if scores:
            row["scores"] = scores
        return row

    async def _score(self, scorer: LocalScorer, item: Item, output: Any, trace: Any) -> dict[str, Any] | None:
        try:
            return await scorer.score(item, output, trace)
        except Exception as exc:  # a scorer's bug leaves this item unscored, and is reported
            self.local_errors.append(f"{scorer.name}: item {item.id}: {type(exc).__name__}: {exc}")
            return None


def _first(error: BaseException) -> BaseException:
    while isinstance(error, BaseExceptionGroup):
        error = error.exceptions[0]
    return error


async def run_experiment(
    client: AsyncClient,
    dataset: str,
    task: Callable[..., Any],
    *,
    scorers: Iterable[Scorer] = (),
    name: str | None = None,
    concurrency: int = 8,
    as_of: str | dt.datetime | None = None,
    metadata: dict[str, Any] | None = None,
    fail_under: float | Mapping[str, float] | None = None,
    progress: bool | None = None,
) -> Run:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an integer >= 1, got {concurrency!r}")
    scorers = list(scorers)
    server = [s for s in scorers if isinstance(s, str)]
    local = [LocalScorer(s) for s in scorers if not isinstance(s, str)]
    names = server + [s.name for s in local]
    if len(set(names)) != len(names):
        raise ValueError(f"scorer names must be unique, got {', '.join(names)}")
    gates = _gates(fail_under, names)
    fn = Task(task)
    name = name or f"experiment-{dt.datetime.now(dt.UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"
    run = await client.runs.create(dataset, name=name, scorers=server, as_of=as_of,
                                   concurrency=min(concurrency, MAX_SERVER_CONCURRENCY),
                                   metadata={"task": fn.name, **(metadata or {})})
    experiment = _Experiment(client, fn, local, run)
    poster = _Poster(client, run.dataset_id, run.id)
    queue: asyncio.Queue[Item | None] = asyncio.Queue(maxsize=2 * concurrency)
    with bar(progress, transient=True) as shown:
        done = shown.add_task(f"running {run.name}", total=run.total or 1, note="")
        errors = 0

        async def worker() -> None:
            nonlocal errors
            while (item := await queue.get()) is not None:
                row = await experiment.execute(item)
                errors += "error" in row
                await poster.add(row)
                shown.update(done, advance=1, note=f"{errors} error(s)")

        async def produce() -> None:
            async for item in client.datasets.items(run.dataset_id, as_of=run.as_of):
                await queue.put(item)
            for _ in range(concurrency):
                await queue.put(None)

        try:
            async with asyncio.TaskGroup() as group:  # one failure (server gone for good) stops them all
                group.create_task(produce())
                for _ in range(concurrency):
                    group.create_task(worker())
        except BaseExceptionGroup as group_error:
            raise _first(group_error) from None
        await poster.flush()
    if experiment.tracer is not None:
        await asyncio.to_thread(otel.flush)  # the spans must be stored before the server scores
    await client.runs.complete(run.dataset_id, run.id)
    run = await client.runs.wait(run.dataset_id, run.id, progress=progress)
    run.local_errors = experiment.local_errors
    missed = below(run.raw, gates)
    if missed:
        raise ThresholdError(run, missed, render(run.raw, gates))
    return run
