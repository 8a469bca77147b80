"""Trace and span read routes: list, search, one trace whole, one span."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

from spanlake.api import ids
from spanlake.api.contract import Operation, json_reply
from spanlake.api.errors import bad_request, not_found
from spanlake.api.pagination import decode_cursor, encode_cursor
from spanlake.api.shapes.common import Listing
from spanlake.api.shapes.traces import SearchQuery, Span, Trace, TraceSummary
from spanlake.api.state import services_of
from spanlake.filters import FilterError, parse_filter, parse_time
from spanlake.query.score_hints import required_score_names
from spanlake.query.search import Page, SearchParams, list_traces, search_spans
from spanlake.query.traces import get_trace_spans
from spanlake.store.filter_sql import CompiledFilter, compile_filter
from spanlake.store.trace_reads import get_span


def parse_filter_param(raw: str | None, score_scope: str = "span") -> tuple[CompiledFilter | None, frozenset[str]]:
    """The `filter` query parameter (JSON text of a filter tree): compiled, and its required scores.

    Trace listings compile score leaves at trace scope: a trace carries the scores of its spans.
    """
    if raw is None or raw.strip() == "":
        return None, frozenset()
    try:
        parsed = parse_filter(raw)  # JSON text: parse_filter reads it, and refuses nesting too deep
        return compile_filter(parsed, score_scope=score_scope), required_score_names(parsed)
    except FilterError as exc:
        raise bad_request(f"invalid filter: {exc}", path=exc.path) from None


def time_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        value: Any = float(raw) if raw.replace(".", "", 1).isdigit() else raw
        return parse_time(value)
    except (ValueError, TypeError, OverflowError, FilterError) as exc:
        raise bad_request(f"{name} must be an ISO-8601 time or epoch seconds, got {raw!r} ({exc})") from None


def search_params(q: SearchQuery, score_scope: str = "span") -> SearchParams:
    compiled, required_scores = parse_filter_param(q.filter, score_scope)
    return SearchParams(
        filter=compiled,
        required_scores=required_scores,
        service=q.service or None,
        name=q.name or None,
        since=time_param(q.since, "since"),
        until=time_param(q.until, "until"),
        limit=q.limit,
        cursor=decode_cursor(q.cursor),
    )


async def _page(request: Request, query: SearchQuery, fn, score_scope: str) -> JSONResponse:
    params = search_params(query, score_scope)
    try:
        page: Page = await services_of(request).store.read(fn, params)
    except ValueError as exc:  # a cursor whose content does not parse
        raise bad_request(str(exc)) from None
    cursor = encode_cursor(page.next_cursor) if page.next_cursor else None
    return JSONResponse({"items": page.items, "next_cursor": cursor})


async def list_traces_route(request: Request, *, query: SearchQuery) -> JSONResponse:
    return await _page(request, query, list_traces, "trace")


async def search_spans_route(request: Request, *, query: SearchQuery) -> JSONResponse:
    return await _page(request, query, search_spans, "span")


async def get_trace(request: Request) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    spans = await services_of(request).store.read(get_trace_spans, trace_id)
    if spans is None:
        raise not_found(f"trace {trace_id} not found")
    return JSONResponse({"trace_id": trace_id, "spans": spans})


async def get_span_route(request: Request) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    span_id = ids.span_id(request.path_params["span_id"])
    span = await services_of(request).store.read(get_span, trace_id, span_id)
    if span is None:
        raise not_found(f"span {span_id} of trace {trace_id} not found")
    return JSONResponse(span)


_TAGS = ("traces",)
OPERATIONS = [
    Operation("GET", "/api/traces", list_traces_route, "List traces, newest first; a trace matches a filter when any of its spans does",
              _TAGS, (json_reply(200, "A page of traces", Listing[TraceSummary]),), query=SearchQuery),
    Operation("GET", "/api/spans", search_spans_route, "Search spans, newest first", _TAGS,
              (json_reply(200, "A page of spans", Listing[Span]),), query=SearchQuery),
    Operation("GET", "/api/traces/{trace_id}", get_trace, "One trace, all spans, parents before children", _TAGS,
              (json_reply(200, "The trace", Trace),), errors=(404,)),
    Operation("GET", "/api/traces/{trace_id}/spans/{span_id}", get_span_route, "One span", _TAGS,
              (json_reply(200, "The span", Span),), errors=(404,)),
]
