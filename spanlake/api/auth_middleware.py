"""Bearer-key check for the HTTP side: OTLP, /api/* and (when asked) /metrics; health stays open."""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from spanlake.api.errors import error_response
from spanlake.auth import KeyChecker

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json"})


class RequireApiKey:
    def __init__(self, app: ASGIApp, *, keys: KeyChecker, protect_metrics: bool = False):
        self.app = app
        self.keys = keys
        self.protect_metrics = protect_metrics

    def _needs_key(self, path: str) -> bool:
        if path in OPEN_PATHS:
            return False
        if path == "/metrics":
            return self.protect_metrics
        return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys.enabled or not self._needs_key(scope["path"]):
            await self.app(scope, receive, send)
            return
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if self.keys.allows(authorization):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401,
            "unauthenticated",
            "missing or invalid 'authorization: Bearer <key>' header",
            headers={"WWW-Authenticate": "Bearer"},
        )
        await response(scope, receive, send)
