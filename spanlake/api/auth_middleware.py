"""Keys and scopes on the HTTP side: OTLP, /api/*, the UI pages and (when asked) /metrics.

A request is authenticated by `authorization: Bearer <key>` or, from a browser, by the UI's
session cookie (set by /login), which names the key it signed in with. Which scope a request
needs and whose key it carries are decided in spanlake/auth.py; this wrapper applies them, makes
the caller known to the handler (`request.state.principal`: None on open routes,
`auth.ANONYMOUS` on a server without keys) and to the store (`created_by`, store/actor.py), and
writes one access-log line per request. Unauthenticated page loads are sent to /login, which
comes back to the page after; API calls get the JSON 401, and a key without the scope the 403.
"""

from __future__ import annotations

import logging
import time
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spanlake.api.errors import error_response
from spanlake.auth import ANONYMOUS, OTLP_PATHS, AuthError, KeyRing, PermissionDenied, Principal, permit
from spanlake.ingest.ack import IngestError, Outcome
from spanlake.ingest.otlp_http import refusal as otlp_refusal
from spanlake.store.actor import reset_actor, set_actor
from spanlake.ui.guard import request_cookies
from spanlake.ui.sessions import SESSION_COOKIE, Sessions
from spanlake.ui.templating import render

access_log = logging.getLogger("spanlake.access")

MACHINE_PREFIXES = ("/api/", "/v1/")
# Lines for these paths go to DEBUG: exporters and probes call them many times a second.
_QUIET_PATHS = frozenset({"/v1/traces", "/v1/logs", "/healthz", "/readyz", "/metrics"})


def is_page(path: str) -> bool:
    """Paths a person opens in a browser (as opposed to API, OTLP and metrics routes)."""
    return not path.startswith(MACHINE_PREFIXES) and path not in ("/metrics", "/api")


class RequireApiKey:
    def __init__(self, app: ASGIApp, *, keys: KeyRing, sessions: Sessions, protect_metrics: bool = False):
        self.app = app
        self.keys = keys
        self.sessions = sessions
        self.protect_metrics = protect_metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method, path = scope["method"], scope["path"]
        started = time.perf_counter()
        status = 500
        who = "-"

        async def send_noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            try:
                principal = self._principal(scope)
            except AuthError as exc:
                if isinstance(exc, PermissionDenied):
                    who = exc.principal.name
                await self._refusal(scope, exc)(scope, receive, send_noting_status)
                return
            scope.setdefault("state", {})["principal"] = principal
            if principal is not None:
                who = principal.name
            # Only a key's name is recorded: a server without keys attributes writes to nobody.
            token = set_actor(principal.name if principal is not None and principal is not ANONYMOUS else None)
            try:
                await self.app(scope, receive, send_noting_status)
            finally:
                reset_actor(token)
        finally:
            level = logging.DEBUG if path in _QUIET_PATHS else logging.INFO
            if access_log.isEnabledFor(level):
                # The path only: a query string is the client's text and could hold anything.
                access_log.log(level, "%s %s %d key=%s %.1fms", method, path, status, who,
                               (time.perf_counter() - started) * 1000)

    def _principal(self, scope: Scope) -> Principal | None:
        """The caller (ANONYMOUS without keys), None on an open route, or AuthError."""
        if not self.keys.enabled:
            return ANONYMOUS
        authorization = None
        for name, value in scope["headers"]:
            if name == b"authorization":
                authorization = value.decode("latin-1")
                break
        if authorization is None:
            # A browser: the key its session signed in with, with that key's scopes.
            session = self.sessions.verify(request_cookies(scope).get(SESSION_COOKIE))
            principal = None if session is None else self.keys.by_fingerprint(session.fingerprint)
        else:
            principal = self.keys.from_authorization(authorization)
        return permit(principal, scope["method"], scope["path"], protect_metrics=self.protect_metrics)

    @staticmethod
    def _refusal(scope: Scope, exc: AuthError) -> Response:
        path = scope["path"]
        if path in OTLP_PATHS:
            # Through the ingest outcome table: a protobuf exporter gets a google.rpc.Status it
            # can parse, a JSON one the JSON form, as for every other OTLP refusal.
            outcome = Outcome.UNAUTHENTICATED if exc.status == 401 else Outcome.PERMISSION_DENIED
            content_type = dict(scope["headers"]).get(b"content-type", b"").decode("latin-1")
            return otlp_refusal(IngestError(outcome, exc.message), content_type)
        if exc.status == 401 and is_page(path) and scope["method"] == "GET":
            target = path + ("?" + scope["query_string"].decode("latin-1") if scope.get("query_string") else "")
            return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)
        if isinstance(exc, PermissionDenied):
            if is_page(path) and scope["method"] == "GET":
                # A person signed in with a key that may not read: a page saying so, not JSON.
                return render(Request(scope), "error.html", {
                    "title": "Not allowed", "message": exc.message + ". Log out and sign in with a key that has it.",
                    "back_href": "/login", "back_label": "Sign in with another key",
                }, status_code=403)
            return error_response(exc.status, exc.code, exc.message, missing_scope=exc.missing_scope)
        return error_response(exc.status, exc.code, exc.message, headers={"WWW-Authenticate": "Bearer"})
