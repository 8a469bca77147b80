"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

import duckdb
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanlake.api.state import services_of
from spanlake.store.memory import buffer_memory_bytes
from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.shapes.common import Returned


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    services = services_of(request)
    if not services.ready:
        return JSONResponse({"status": "starting" if not services.stopping else "stopping"}, status_code=503)
    # Ready means exports are accepted; a loader catching up on the log (after a restart or a
    # burst) does not change that, but reads that wait for it may be slow, so say so.
    loader = services.loader
    behind = loader.unloaded_spans
    return JSONResponse(
        {
            "status": "ready",
            "loader": {
                "catching_up": behind > 0,
                "behind_spans": behind,
                "behind_seconds": round(loader.lag_seconds(), 3),
                "last_error": loader.last_error,
            },
        }
    )


async def metrics(request: Request) -> Response:
    services = services_of(request)
    try:
        services.metrics.store_memory_bytes.set(await services.store.read(buffer_memory_bytes))
    except duckdb.Error:  # a store outage must not take the metrics down with it
        pass
    return Response(services.metrics.render(), media_type=CONTENT_TYPE_LATEST)


class Health(Returned):
    status: str


class Readiness(Returned):
    status: str
    loader: dict[str, Any] | None = Field(None, description="how far the loader is behind the ingest log")


_TAGS = ("operations",)
OPERATIONS = [
    Operation("GET", "/healthz", healthz, "Liveness", _TAGS, (json_reply(200, "Alive", Health),)),
    Operation("GET", "/readyz", readyz, "Readiness", _TAGS,
              (json_reply(200, "Ready", Readiness), json_reply(503, "Starting or stopping", Readiness))),
    Operation("GET", "/metrics", metrics, "Prometheus metrics", _TAGS,
              (Reply(200, "Prometheus text format", {"text/plain": str}),)),
]
