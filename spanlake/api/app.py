"""The Starlette application: every HTTP route declared in one list, the middleware stack built once."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute

from spanlake.api import contract, datasets, health, rules, runs, scores, traces, whoami
from spanlake.api.auth_middleware import RequireApiKey
from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.errors import handle_client_error, handle_http_exception, handle_unexpected
from spanlake.api.openapi import build_document, openapi_endpoint
from spanlake.api.query_guard import RefuseUnknownQueryParameters
from spanlake.api.read_barrier import ReadYourWrites
from spanlake.api.shapes.common import ErrorBody
from spanlake.errors import ClientError
from spanlake.ingest.otlp_http import OtlpHttpEndpoint
from spanlake.ingest.signals import LOGS, TRACES, Signal
from spanlake.services import Services
from spanlake.ui import routes as ui_routes
from spanlake.ui.guard import BrowserGuard


_OTLP_REFUSALS = {400: "Invalid export", 401: "Missing or invalid API key", 403: "The key lacks the ingest scope",
                  413: "Body too large", 415: "Unsupported media type", 503: "Busy; retry after Retry-After"}


def _otlp(signal: Signal, summary: str, rejected: str) -> Operation:
    """One OTLP/HTTP export route; traces and logs differ only in what they carry. Refusals come
    in the request's encoding: a google.rpc.Status for protobuf, our error shape for JSON."""
    return Operation(
        "POST", signal.http_path, None, summary, ("otlp",),
        (Reply(200, f"Stored (partialSuccess lists {rejected})",
               {"application/json": dict[str, Any], "application/x-protobuf": bytes}),
         *(Reply(status, text, {"application/json": ErrorBody, "application/x-protobuf": bytes})
           for status, text in _OTLP_REFUSALS.items())),
        raw_body={"application/x-protobuf": bytes, "application/json": dict[str, Any]},
        bind=lambda services: OtlpHttpEndpoint(services.receiver, services.metrics, signal).handle,
    )


def _openapi_route() -> Operation:
    return Operation("GET", "/openapi.json", None, "This document", ("operations",),
                     (json_reply(200, "OpenAPI 3.1", dict[str, Any]),),
                     bind=lambda services: openapi_endpoint(openapi_document()))


OPERATIONS: list[Operation] = [
    _otlp(TRACES, "OTLP/HTTP trace export (protobuf or JSON, gzip allowed)", "rejected spans"),
    _otlp(LOGS, "OTLP/HTTP log export: GenAI events (gen_ai.* event names), attached to their spans",
          "log records refused: not GenAI events, or without trace/span ids"),
    *health.OPERATIONS,
    _openapi_route(),
    *traces.OPERATIONS,
    *datasets.OPERATIONS,
    *runs.OPERATIONS,
    *rules.OPERATIONS,
    *scores.OPERATIONS,
    *whoami.OPERATIONS,
]

_DOCUMENT: dict[str, Any] = {}


def openapi_document() -> dict[str, Any]:
    """Built once per process from OPERATIONS (the same every time)."""
    if not _DOCUMENT:
        _DOCUMENT.update(build_document(OPERATIONS))
    return _DOCUMENT


def routes(services: Services) -> list[BaseRoute]:
    return [*contract.routes(OPERATIONS, services), *ui_routes.routes()]


def build_app(services: Services) -> Starlette:
    app = Starlette(
        routes=routes(services),
        middleware=[
            Middleware(BrowserGuard),
            Middleware(
                RequireApiKey,
                keys=services.keys,
                sessions=services.ui_sessions,
                protect_metrics=services.settings.metrics_require_key,
            ),
            Middleware(RefuseUnknownQueryParameters, document=openapi_document()),
            Middleware(ReadYourWrites),
        ],
        exception_handlers={
            ClientError: handle_client_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.state.services = services
    return app
