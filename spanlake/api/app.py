"""The Starlette application: every HTTP route in one list, the middleware stack built once."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.routing import BaseRoute, Route

from spanlake.api import datasets, health, rules, runs, scores, traces, whoami
from spanlake.api.auth_middleware import RequireApiKey
from spanlake.api.errors import ApiError, handle_api_error, handle_domain_error, handle_http_exception, handle_unexpected
from spanlake.datasets.errors import DatasetError
from spanlake.api.openapi import build_document, openapi_endpoint
from spanlake.api.query_guard import RefuseUnknownQueryParameters
from spanlake.api.read_barrier import ReadYourWrites
from spanlake.ingest.otlp_http import OtlpHttpEndpoint
from spanlake.ingest.signals import LOGS, TRACES
from spanlake.services import Services
from spanlake.ui import routes as ui_routes
from spanlake.ui.guard import BrowserGuard


DOMAIN_MODULES = (traces, datasets, runs, rules, scores, whoami)


def openapi_document() -> dict:
    return build_document(
        [getattr(m, "OPENAPI_PATHS", {}) for m in DOMAIN_MODULES],
        [getattr(m, "OPENAPI_SCHEMAS", {}) for m in DOMAIN_MODULES],
    )


def routes(services: Services) -> list[BaseRoute]:
    return [
        *(
            Route(s.http_path, OtlpHttpEndpoint(services.receiver, services.metrics, s).handle, methods=["POST"])
            for s in (TRACES, LOGS)
        ),
        Route("/healthz", health.healthz, methods=["GET"]),
        Route("/readyz", health.readyz, methods=["GET"]),
        Route("/metrics", health.metrics, methods=["GET"]),
        Route("/openapi.json", openapi_endpoint(openapi_document()), methods=["GET"]),
        *(route for module in DOMAIN_MODULES for route in module.routes()),
        *ui_routes.routes(),
    ]


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
            ApiError: handle_api_error,
            DatasetError: handle_domain_error,
            HTTPException: handle_http_exception,
            Exception: handle_unexpected,
        },
    )
    app.state.services = services
    return app
