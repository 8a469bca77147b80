"""The trace page: span tree with a waterfall, and the selected span's detail.

Data comes from the functions behind the JSON API (`get_trace_spans` for
`GET /api/traces/{id}`, `list_scores` for `.../scores`, `span_datasets` for
`.../spans/{id}/datasets`), read on one cursor. This module only lays them out: depth and bar
positions for the waterfall, and the detail panel, which htmx asks for alone when a span is
selected (the `?span=` URL renders the same panel inside the whole page, so a link can be shared).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import duckdb
from starlette.requests import Request
from starlette.responses import Response

from spanlake.api import ids
from spanlake.api.errors import ApiError
from spanlake.api.state import services_of
from spanlake.datasets.queries import span_datasets
from spanlake.datasets.views import membership_json
from spanlake.query.traces import get_trace_spans
from spanlake.store.scores import ScoreQuery, list_scores
from spanlake.ui.chat_view import span_chat
from spanlake.ui.templating import render

WATERFALL_UNITS = 1000  # the SVG viewBox width the bars are drawn in
SCORES_SHOWN = 200  # scores listed per trace and per span (the API pages beyond)
DATASETS_SHOWN = 1000  # memberships behind the three badges and "+N more" (the API pages beyond)
BADGES_SHOWN = 3  # dataset badges before "+N more"
SERVICE_COLOURS = 6  # bar colour classes, cycled by service
DETAIL_TARGET = "span-detail"


@dataclass
class SpanRow:
    span: dict[str, Any]
    depth: int
    offset: float  # bar start, in WATERFALL_UNITS
    width: float
    colour: int


@dataclass
class TraceView:
    spans: list[dict[str, Any]]
    selected: dict[str, Any] | None
    trace_scores: list[dict[str, Any]] = field(default_factory=list)
    span_scores: list[dict[str, Any]] = field(default_factory=list)
    datasets: list[dict[str, Any]] = field(default_factory=list)


def read_trace_view(cur: duckdb.DuckDBPyConnection, trace_id: str, span_id: str | None) -> TraceView | None:
    """Everything the page shows, from the API's own domain functions; None for an unknown trace."""
    spans = get_trace_spans(cur, trace_id)
    if spans is None:
        return None
    chosen = span_id or (spans[0]["span_id"] if spans else None)
    selected = next((s for s in spans if s["span_id"] == chosen), None)
    view = TraceView(spans, selected)
    view.trace_scores = list_scores(cur, ScoreQuery(trace_id=trace_id), limit=SCORES_SHOWN)
    if selected is not None:
        view.span_scores = list_scores(cur, ScoreQuery(trace_id=trace_id, span_id=selected["span_id"]), limit=SCORES_SHOWN)
        rows, _ = span_datasets(cur, trace_id, selected["span_id"], None, DATASETS_SHOWN)
        view.datasets = [membership_json(r) for r in rows]
    return view


def waterfall(spans: list[dict[str, Any]]) -> tuple[list[SpanRow], int]:
    """Rows in tree order with depth and bar geometry; and the trace's length in ns."""
    if not spans:
        return [], 0
    starts = [int(s["start_time_unix_nano"]) for s in spans]
    ends = [int(s["end_time_unix_nano"]) for s in spans]
    t0, t1 = min(starts), max(ends)
    total = max(t1 - t0, 1)
    depth: dict[str, int] = {}
    services: dict[str | None, int] = {}
    rows = []
    for span, start, end in zip(spans, starts, ends):
        # Parents come first (order_parents_first); a missing parent makes a root.
        level = depth.get(span["parent_span_id"], -1) + 1 if span["parent_span_id"] else 0
        depth[span["span_id"]] = level
        colour = services.setdefault(span["service"], len(services) % SERVICE_COLOURS)
        offset = (start - t0) / total * WATERFALL_UNITS
        width = max((end - start) / total * WATERFALL_UNITS, 2.0)
        rows.append(SpanRow(span, level, round(offset, 2), round(min(width, WATERFALL_UNITS - offset + 2), 2), colour))
    return rows, t1 - t0


def detail_context(trace_id: str, view: TraceView) -> dict[str, Any]:
    selected = view.selected
    return {
        "trace_id": trace_id,
        "selected": selected,
        "chat": span_chat(selected) if selected else None,
        "trace_scores": view.trace_scores,
        "span_scores": view.span_scores,
        "datasets": view.datasets[:BADGES_SHOWN],
        "more_datasets": view.datasets[BADGES_SHOWN:],
    }


def _error_page(request: Request, status: int, title: str, message: str) -> Response:
    context = {"title": title, "message": message, "back_href": "/traces", "back_label": "Back to traces"}
    return render(request, "error.html", context, status_code=status)


async def trace_page(request: Request) -> Response:
    try:
        trace_id = ids.trace_id(request.path_params["trace_id"])
    except ApiError as exc:
        return _error_page(request, 400, "Invalid trace id", exc.message)
    raw_span = request.query_params.get("span") or None
    span_error, status = None, 200
    span_id = None
    if raw_span is not None:
        try:
            span_id = ids.span_id(raw_span, "span")
        except ApiError as exc:
            span_error, status = exc.message, 400
    view = await services_of(request).store.read(read_trace_view, trace_id, span_id)
    if view is None:
        return _error_page(request, 404, "Trace not found", f"No trace {trace_id} is stored here. It may not have arrived yet, or retention removed it.")
    if span_id is not None and view.selected is None:
        span_error, status = f"span {span_id} is not in this trace", 404
    context = detail_context(trace_id, view)
    context["span_error"] = span_error
    partial = request.headers.get("hx-request") == "true" and request.headers.get("hx-target") == DETAIL_TARGET
    if partial and not request.headers.get("hx-history-restore-request"):
        response = render(request, "_span_detail.html", context, status_code=status)
    else:
        rows, total_ns = waterfall(view.spans)
        context.update(
            rows=rows,
            total_ms=total_ns / 1e6,
            root=view.spans[0] if view.spans else None,
            error_count=sum(1 for s in view.spans if s["status"] == "ERROR"),
            services=sorted({r.span["service"] or "–" for r in rows}),
            service_colours={r.span["service"] or "–": r.colour for r in rows},
            units=WATERFALL_UNITS,
        )
        response = render(request, "trace.html", context, status_code=status)
    response.headers["vary"] = "HX-Request, HX-Target"
    return response
