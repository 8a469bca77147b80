"""How a route or page reaches the server's parts: one typed object on the app's state."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from spanlake.services import Services


def services_of(request: HTTPConnection) -> Services:
    """The running server's parts (set by api/app.py's build_app)."""
    services: Services = request.app.state.services
    return services
