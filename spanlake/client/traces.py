"""Traces and spans: one trace whole, one span, and searches with the filter language."""

from __future__ import annotations

import datetime as dt
from typing import Any

from spanlake.client.driver import Driver, Op, operation
from spanlake.client.models import Score, Span, Trace, TraceSummary
from spanlake.client.pages import Pages, query
from spanlake.client.transport import Call

Time = str | float | int | dt.datetime | None


def _search(filter: dict[str, Any] | None, service: str | None, name: str | None, since: Time, until: Time) -> Any:
    return query(filter=filter, service=service, name=name, since=since, until=until)


class Traces:
    def __init__(self, driver: Driver):
        self._driver = driver

    @operation
    def get(self, trace_id: str) -> Op[Trace]:
        """Every span of the trace, parents before children."""
        reply = yield Call("GET", f"/api/traces/{trace_id}")
        return Trace.from_json(reply.data)

    def search(self, filter: dict[str, Any] | None = None, *, service: str | None = None, name: str | None = None,
               since: Time = None, until: Time = None, page_size: int = 100) -> Pages[TraceSummary]:
        """Traces with a span matching `filter` (the filter language), newest first, fetched page by page."""
        params = _search(filter, service, name, since, until)
        return Pages(self._driver, "/api/traces", params, TraceSummary.from_json, page_size)

    def scores(self, trace_id: str, *, page_size: int = 100) -> Pages[Score]:
        return Pages(self._driver, f"/api/traces/{trace_id}/scores", [], Score.from_json, page_size)


class Spans:
    def __init__(self, driver: Driver):
        self._driver = driver

    @operation
    def get(self, trace_id: str, span_id: str) -> Op[Span]:
        reply = yield Call("GET", f"/api/traces/{trace_id}/spans/{span_id}")
        return Span.from_json(reply.data)

    def search(self, filter: dict[str, Any] | None = None, *, service: str | None = None, name: str | None = None,
               since: Time = None, until: Time = None, page_size: int = 100) -> Pages[Span]:
        """Spans matching `filter`, newest first, fetched page by page."""
        params = _search(filter, service, name, since, until)
        return Pages(self._driver, "/api/spans", params, Span.from_json, page_size)

    def scores(self, trace_id: str, span_id: str, *, page_size: int = 100) -> Pages[Score]:
        return Pages(self._driver, f"/api/traces/{trace_id}/spans/{span_id}/scores", [], Score.from_json, page_size)
