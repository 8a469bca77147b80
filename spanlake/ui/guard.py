"""Browser protections for every response: security headers, and CSRF checks on mutations.

CSRF: each browser gets a random `spanlake_csrf` cookie (HttpOnly, SameSite=Strict); pages put
the same token in a meta tag, and the UI's scripts send it back as `X-CSRF-Token`. A mutation
that comes from a browser (it carries our cookies, or `Sec-Fetch-Site` says another site sent
it) must present the token; scripts and CI that authenticate with a bearer key, or send no
cookies at all, are not browsers and are not asked for one. Forms (login, logout) carry the
token in a hidden field and their handlers check it with `csrf_matches`.
"""

from __future__ import annotations

import hmac
from http.cookies import SimpleCookie

from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from spanlake.api.errors import error_response
from spanlake.ui.sessions import CSRF_COOKIE, SESSION_COOKIE, new_csrf_token

# No inline script or style anywhere: everything comes from /static, so an injected <script>
# in a span value could not run even if escaping ever failed.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CONTENT_SECURITY_POLICY,
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# Handlers that read the token from their form body themselves.
FORM_CHECKED_PATHS = frozenset({"/login", "/logout"})


def request_cookies(scope: Scope) -> dict[str, str]:
    jar: SimpleCookie = SimpleCookie()
    for name, value in scope["headers"]:
        if name == b"cookie":
            try:
                jar.load(value.decode("latin-1"))
            except Exception:  # a malformed cookie header is the same as none
                continue
    return {key: morsel.value for key, morsel in jar.items()}


def _header(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return value.decode("latin-1")
    return None


def csrf_matches(expected: str | None, presented: str | None) -> bool:
    return bool(expected) and bool(presented) and hmac.compare_digest(str(expected), str(presented))


def cookie_header(name: str, value: str, *, secure: bool, max_age: int | None = None, http_only: bool = True) -> str:
    parts = [f"{name}={value}", "Path=/", "SameSite=Strict"]
    if http_only:
        parts.append("HttpOnly")
    if secure:
        parts.append("Secure")
    if max_age is not None:
        parts.append(f"Max-Age={max_age}")
    return "; ".join(parts)


def _from_browser(scope: Scope, cookies: dict[str, str]) -> bool:
    if CSRF_COOKIE in cookies or SESSION_COOKIE in cookies:
        return True
    return (_header(scope, b"sec-fetch-site") or "none") not in ("same-origin", "none")


class BrowserGuard:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cookies = request_cookies(scope)
        token = cookies.get(CSRF_COOKIE)
        new_token = None
        if not token:
            token = new_token = new_csrf_token()
        scope.setdefault("state", {})["csrf_token"] = token

        if (
            scope["method"] in UNSAFE_METHODS
            and scope["path"] not in FORM_CHECKED_PATHS
            and not scope["path"].startswith("/v1/")
            and _header(scope, b"authorization") is None
            and _from_browser(scope, cookies)
            and not csrf_matches(cookies.get(CSRF_COOKIE), _header(scope, b"x-csrf-token"))
        ):
            response = error_response(
                403, "csrf_failed", "this request came from a browser without the page's CSRF token; reload the page and try again"
            )
            await response(scope, receive, self._with_headers(send, None, scope))
            return
        await self.app(scope, receive, self._with_headers(send, new_token, scope))

    @staticmethod
    def _with_headers(send: Send, new_token: str | None, scope: Scope) -> Send:
        async def wrapped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS.items():
                    if name not in headers:
                        headers[name] = value
                if new_token is not None and headers.get("content-type", "").startswith("text/html"):
                    headers.append("set-cookie", cookie_header(CSRF_COOKIE, new_token, secure=scope.get("scheme") == "https"))
            await send(message)

        return wrapped
