"""/login and /logout: trade an API key for a session cookie, and end it."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from spanlake.api.state import services_of
from spanlake.ui.guard import cookie_header, csrf_matches
from spanlake.ui.sessions import CSRF_COOKIE, SESSION_COOKIE
from spanlake.ui.templating import render


MAX_FORM_BYTES = 16 * 1024


async def form_fields(request: Request) -> dict[str, str]:
    """The urlencoded fields of a small page form (login, logout); the first value of each."""
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return {}
    fields = parse_qs(body.decode("utf-8", errors="replace"), keep_blank_values=True)
    return {name: values[0] for name, values in fields.items()}


def safe_next(raw: str | None) -> str:
    """Only a path on this server: an open redirect would hand the login to another site."""
    if not raw or not raw.startswith("/") or raw.startswith("//") or "\\" in raw:
        return "/"
    return raw


async def login_page(request: Request) -> Response:
    if not services_of(request).keys.enabled:
        return RedirectResponse("/", status_code=303)
    return render(request, "login.html", {"next": safe_next(request.query_params.get("next")), "error": None})


async def login_submit(request: Request) -> Response:
    services = services_of(request)
    if not services.keys.enabled:
        return RedirectResponse("/", status_code=303)
    form = await form_fields(request)
    next_path = safe_next(form.get("next", ""))
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), form.get("csrf_token", "")):
        return render(request, "login.html", {"next": next_path, "error": "The form expired; please try again."}, status_code=403)
    fingerprint = services.keys.match(form.get("key", ""))
    if fingerprint is None:
        return render(request, "login.html", {"next": next_path, "error": "That key is not valid."}, status_code=401)
    principal = services.keys.by_fingerprint(fingerprint)
    if principal is None or not principal.can("read"):
        # A session that could open no page is no use; say why instead of a 403 on every page.
        message = f"The key '{principal.name if principal else '?'}' lacks the 'read' scope that the pages need."
        return render(request, "login.html", {"next": next_path, "error": message}, status_code=403)
    response = RedirectResponse(next_path, status_code=303)
    secure = request.url.scheme == "https"
    cookie = services.ui_sessions.issue(fingerprint)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, cookie, secure=secure, max_age=int(services.ui_sessions.lifetime)))
    return response


async def logout(request: Request) -> Response:
    services = services_of(request)
    form = await form_fields(request)
    if not csrf_matches(request.cookies.get(CSRF_COOKIE), form.get("csrf_token", "")):
        return render(
            request, "error.html",
            {"title": "Not logged out", "message": "The form expired; reload the page and try again.", "back_href": "/", "back_label": "Back"},
            status_code=403,
        )
    services.ui_sessions.revoke(request.cookies.get(SESSION_COOKIE))
    response = RedirectResponse("/login", status_code=303)
    response.headers.append("set-cookie", cookie_header(SESSION_COOKIE, "", secure=request.url.scheme == "https", max_age=0))
    return response
