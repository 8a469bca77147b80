"""Key check for the HTTP side: OTLP, /api/*, the UI pages and (when asked) /metrics.

A request is authenticated by `authorization: Bearer <key>` or, from a browser, by the UI's
session cookie (set by /login). Unauthenticated API calls get the JSON 401; unauthenticated
page loads are sent to /login, which comes back to the page after.
"""

from __future__ import annotations

from urllib.parse import quote

from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from spanlake.api.errors import error_response
from spanlake.auth import KeyChecker
from spanlake.ui.guard import request_cookies
from spanlake.ui.sessions import SESSION_COOKIE, Sessions

OPEN_PATHS = frozenset({"/healthz", "/readyz", "/openapi.json", "/login", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
MACHINE_PREFIXES = ("/api/", "/v1/")


def is_page(path: str) -> bool:
    """Paths a person opens in a browser (as opposed to API, OTLP and metrics routes)."""
    return not path.startswith(MACHINE_PREFIXES) and path not in ("/metrics", "/api")


class RequireApiKey:
    def __init__(self, app: ASGIApp, *, keys: KeyChecker, sessions: Sessions, protect_metrics: bool = False):
        self.app = app
        self.keys = keys
        self.sessions = sessions
        self.protect_metrics = protect_metrics

    def _needs_key(self, path: str) -> bool:
        if path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
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
        if authorization is not None:
            authenticated = self.keys.allows(authorization)
        else:
            authenticated = self.sessions.verify(request_cookies(scope).get(SESSION_COOKIE)) is not None
        if authenticated:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if is_page(path) and scope["method"] == "GET":
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            response = RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        else:
            response = error_response(
                401,
                "unauthenticated",
                "missing or invalid 'authorization: Bearer <key>' header",
                headers={"WWW-Authenticate": "Bearer"},
            )
        await response(scope, receive, send)
