"""Jinja2 for the pages: autoescaped always, with the few formatting filters the pages share."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from spanlake.api.state import services_of

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
# Values longer than this render cut, with a "Show all" control (prompts can be megabytes).
LONG_VALUE_CHARS = 20_000


def duration(ms: float | None) -> str:
    if ms is None:
        return "–"
    if ms < 1:
        return f"{ms * 1000:.0f} µs"
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    if ms < 60_000:
        return f"{ms / 1000:.2f} s"
    return f"{ms / 60_000:.1f} min"


def when(iso: str | None) -> str:
    """ISO time as `YYYY-MM-DD HH:MM:SS` UTC; the full value stays in the element's title."""
    if not iso:
        return "–"
    try:
        moment = dt.datetime.fromisoformat(iso.replace("Z", "+00:00"))
    except ValueError:
        return iso
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def number(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def pretty_json(value: Any) -> str:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return value
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=False, default=str)


def short_id(value: str | None, size: int = 8) -> str:
    return (value or "")[:size]


def preview(value: Any, size: int = 140) -> str:
    """A one-line glimpse of a JSON value (a record's input or output) for tables and lists."""
    if value is None:
        return ""
    messages = value.get("messages") if isinstance(value, dict) else value
    if isinstance(messages, list) and messages and all(isinstance(m, dict) and "role" in m for m in messages):
        # Chat messages read better as "role: text" than as their JSON.
        value = " · ".join(f"{m['role']}: {_message_text(m.get('content'))}" for m in messages)
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: keep their text
        return " ".join(str(p.get("text", "")) if isinstance(p, dict) else str(p) for p in content)
    return "" if content is None else json.dumps(content, ensure_ascii=False, default=str)


def path_part(value: str) -> str:
    """A value placed in one URL path segment (dataset names may hold spaces, '?', '#', '%')."""
    return quote(value, safe="")


def make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, when=when, number=number, pretty_json=pretty_json, short_id=short_id)
    env.filters.update(preview=preview, path_part=path_part)
    env.globals["LONG_VALUE_CHARS"] = LONG_VALUE_CHARS
    return env


ENVIRONMENT = make_environment()


def render(request: Request, template: str, context: dict[str, Any], *, status_code: int = 200) -> HTMLResponse:
    """Render a page with what every page needs: CSRF token, session state, current path."""
    services = services_of(request)
    page = {
        "csrf_token": request.scope.get("state", {}).get("csrf_token", ""),
        "keys_enabled": services.keys.enabled,
        # Who is signed in and what they may do (spanlake/auth.py): offer only what the scopes allow.
        "principal": request.scope.get("state", {}).get("principal"),
        "path": request.url.path,
        "request": request,
    }
    html = ENVIRONMENT.get_template(template).render({**page, **context})
    return HTMLResponse(html, status_code=status_code)
