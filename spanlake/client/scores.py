"""Scores: write one, list them, and score many traces in the background (a batch you can wait for)."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from spanlake.client.driver import Driver, Op, operation
from spanlake.client.models import BatchStatus, Score
from spanlake.client.pages import Pages, query
from spanlake.client.progress import bar
from spanlake.client.transport import Call, Sleep

POLL_SECONDS = 0.5


@dataclass
class Batch:
    """A scoring batch the server accepted (202): poll it with `status()`, or `wait()` for the end."""

    batch_id: str
    trace_count: int
    unknown_trace_ids: list[str] = field(default_factory=list)  # the first 1000
    unknown_count: int = 0
    _driver: Driver = field(default=None, repr=False)  # type: ignore[assignment]

    def _status(self) -> Op[BatchStatus]:
        reply = yield Call("GET", f"/api/scores/batches/{self.batch_id}")
        return BatchStatus.from_json(reply.data)

    status = operation(_status)

    @operation
    def wait(self, *, progress: bool | None = None, timeout: float | None = None,
             poll: float = POLL_SECONDS) -> Op[BatchStatus]:
        """Poll until the batch is completed or failed; a progress bar with progress=True (None: on a terminal)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with bar(progress) as shown:
            task = shown.add_task(f"scoring {self.batch_id[:8]}", total=self.trace_count or 1, note="")
            while True:
                status = yield from self._status()
                shown.update(task, completed=status.completed + status.failed, note=f"{status.failed} failed")
                if status.finished:
                    return status
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"batch {self.batch_id} not finished after {timeout}s: {status.status}, "
                                       f"{status.completed + status.failed}/{status.total}")
                yield Sleep(poll)


class Scores:
    def __init__(self, driver: Driver):
        self._driver = driver

    @operation
    def create(self, trace_id: str, name: str, value: float | bool | None = None, *, label: str | None = None,
               span_id: str | None = None, source: str = "api", scorer: str | None = None,
               explanation: str | None = None, metadata: dict[str, Any] | None = None,
               data_type: str | None = None) -> Op[Score]:
        """A manual or external score of a stored trace (its root span unless `span_id`); writing the same
        (name, trace, span, source, scorer) again replaces it, so the call is retried safely."""
        body = {k: v for k, v in (("trace_id", trace_id), ("span_id", span_id), ("name", name), ("value", value),
                                  ("label", label), ("source", source), ("scorer", scorer),
                                  ("explanation", explanation), ("metadata", metadata), ("data_type", data_type))
                if v is not None}
        reply = yield Call("POST", "/api/scores", json=body, ok=(201,), idempotent=True)
        return Score.from_json(reply.data)

    def list(self, *, trace_id: str | None = None, span_id: str | None = None, name: str | None = None,
             scorer: str | None = None, source: str | None = None, batch_id: str | None = None,
             min_value: float | None = None, max_value: float | None = None, page_size: int = 100) -> Pages[Score]:
        params = query(trace_id=trace_id, span_id=span_id, name=name, scorer=scorer, source=source,
                       batch_id=batch_id, min_value=min_value, max_value=max_value)
        return Pages(self._driver, "/api/scores", params, Score.from_json, page_size)

    @operation
    def batch(self, scorer: str, *, trace_ids: Iterable[str] | None = None,
              targets: Iterable[dict[str, str]] | None = None, filter: dict[str, Any] | None = None,
              limit: int | None = None, sample: float | None = None) -> Op[Batch]:
        """Score traces in the background with a server scorer: by trace ids, (trace, span) targets or a filter."""
        chosen = [(k, v) for k, v in (("trace_ids", trace_ids), ("targets", targets), ("filter", filter)) if v is not None]
        if len(chosen) != 1:
            raise TypeError("batch takes exactly one of trace_ids=, targets= or filter=")
        key, value = chosen[0]
        body: dict[str, Any] = {"scorer": scorer, key: value if key == "filter" else list(value)}
        if limit is not None:
            body["limit"] = limit
        if sample is not None:
            body["sample"] = sample
        reply = yield Call("POST", "/api/scores/batch", json=body, ok=(202,))
        data = reply.data
        unknown = data.get("unknown_trace_ids") or []
        return Batch(data["batch_id"], data["trace_count"], unknown, data.get("unknown_count", len(unknown)), self._driver)

    @operation
    def get_batch(self, batch_id: str) -> Op[BatchStatus]:
        reply = yield Call("GET", f"/api/scores/batches/{batch_id}")
        return BatchStatus.from_json(reply.data)

    @operation
    def scorers(self) -> Op[list[dict[str, Any]]]:
        """The server's scorers: name, type, description, parameters, ready."""
        reply = yield Call("GET", "/api/scorers")
        return reply.data["items"]
