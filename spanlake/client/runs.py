"""Dataset runs: start one (client-side), post results, complete, follow, read results, compare two."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from spanlake.client.datasets import dataset_path
from spanlake.client.driver import Driver, Op, operation
from spanlake.client.errors import SpanlakeError
from spanlake.client.models import Comparison, Run, RunResult
from spanlake.client.pages import Pages, param_text, query
from spanlake.client.progress import bar
from spanlake.client.traces import Time
from spanlake.client.transport import Call, Sleep

POST_CHUNK = 1000  # results per POST (the server takes up to 10,000)
POLL_SECONDS = 0.5


def run_path(dataset: str, run: str | None = None) -> str:
    base = dataset_path(dataset) + "/runs"
    return base if run is None else f"{base}/{quote(run, safe='')}"


class Runs:
    def __init__(self, driver: Driver):
        self._driver = driver

    @operation
    def create(self, dataset: str, *, name: str | None = None, scorers: Iterable[str] = (),
               thresholds: dict[str, float] | None = None, metadata: dict[str, Any] | None = None,
               as_of: Time = None, concurrency: int | None = None, target: dict[str, Any] | None = None) -> Op[Run]:
        """Start a run: client-side (you post results) without `target`, server-side with one."""
        body: dict[str, Any] = {"scorers": list(scorers)}
        if target is None:
            body["mode"] = "client"
        else:
            body["target"] = target
        for key, value in (("name", name), ("thresholds", thresholds), ("metadata", metadata),
                           ("concurrency", concurrency), ("as_of", None if as_of is None else param_text(as_of))):
            if value is not None:
                body[key] = value
        reply = yield Call("POST", run_path(dataset), json=body, ok=(202,))
        return Run.from_json(reply.data)

    def _get(self, dataset: str, run: str) -> Op[Run]:
        reply = yield Call("GET", run_path(dataset, run))
        return Run.from_json(reply.data)

    get = operation(_get)

    def list(self, dataset: str, *, page_size: int = 100) -> Pages[Run]:
        return Pages(self._driver, run_path(dataset), [], Run.from_json, page_size)

    def results(self, dataset: str, run: str, *, status: str | None = None, page_size: int = 500) -> Pages[RunResult]:
        """Results in item order, each with input, expected output, output, trace ids, latency, tokens, scores."""
        return Pages(self._driver, run_path(dataset, run) + "/results", query(status=status), RunResult.from_json,
                     page_size)

    def _post(self, dataset: str, run: str, results: list[dict[str, Any]]) -> Op[int]:
        accepted = 0
        for start in range(0, len(results), POST_CHUNK):
            # Posting an item again replaces its result: safe to repeat after a lost answer.
            reply = yield Call("POST", run_path(dataset, run) + "/results",
                               json={"results": results[start:start + POST_CHUNK]}, idempotent=True)
            accepted += reply.data["accepted"]
        return accepted

    post_results = operation(_post)

    def _complete(self, dataset: str, run: str) -> Op[Run]:
        """No more results: unposted items become errors and the server scores the rest."""
        try:
            reply = yield Call("POST", run_path(dataset, run) + "/complete", ok=(202,), idempotent=True)
        except SpanlakeError as exc:
            if exc.status != 409:
                raise
            # Completed already: our first attempt got through before its answer was lost.
            current = yield from self._get(dataset, run)
            if current.mode != "client" or current.status == "cancelled":
                raise
            return current
        return Run.from_json(reply.data)

    complete = operation(_complete)

    @operation
    def cancel(self, dataset: str, run: str) -> Op[Run]:
        reply = yield Call("POST", run_path(dataset, run) + "/cancel")
        return Run.from_json(reply.data)

    def _wait(self, dataset: str, run: str, *, progress: bool | None = None, timeout: float | None = None,
              poll: float = POLL_SECONDS) -> Op[Run]:
        """Poll until the run is completed, failed or cancelled (through server restarts, within the
        retry time); progress bars for executing and scoring."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with bar(progress, transient=True) as shown:
            tasks: tuple[Any, Any] | None = None
            while True:
                current = yield from self._get(dataset, run)
                if tasks is None:  # a server-side run executes first; a client-side one was executed by us
                    total = current.total or 1
                    tasks = (shown.add_task("executing", total=total, note="", visible=current.mode == "server"),
                             shown.add_task("scoring", total=total, note="", visible=bool(current.scorers)))
                shown.update(tasks[0], completed=current.completed + current.failed, note=f"{current.failed} failed")
                shown.update(tasks[1], completed=current.scored, note=f"{current.raw.get('scoring_failed', 0)} failed")
                if current.finished:
                    return current
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {current.name} not finished after {timeout}s: {current.status}")
                yield Sleep(poll)

    wait = operation(_wait)

    @operation
    def compare(self, dataset: str, a: str, b: str) -> Op[Comparison]:
        """Runs a and b item by item (regressions first) with summary deltas (b minus a); every page read."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = [("runs", f"{a},{b}"), ("limit", "1000")] + ([("cursor", cursor)] if cursor else [])
            reply = yield Call("GET", run_path(dataset) + "/compare", params=params)
            data = reply.data
            items += data["items"]
            cursor = data.get("next_cursor")
            if not cursor:
                return Comparison(raw=data, a=Run.from_json(data["a"]), b=Run.from_json(data["b"]),
                                  summary=data["summary"], items=items)
