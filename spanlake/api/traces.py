"""Trace and span read routes."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from spanlake.api import ids
from spanlake.api.errors import not_found
from spanlake.query.traces import get_trace_spans


async def get_trace(request: Request) -> JSONResponse:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    spans = await request.app.state.services.store.read(get_trace_spans, trace_id)
    if spans is None:
        raise not_found(f"trace {trace_id} not found")
    return JSONResponse({"trace_id": trace_id, "spans": spans})


def routes() -> list[Route]:
    return [
        Route("/api/traces/{trace_id}", get_trace, methods=["GET"]),
    ]
