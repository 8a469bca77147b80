"""Helpers shared by the dataset route modules: bodies, query parameters, cursors."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.requests import Request

from spanlake.api.body import DEFAULT_JSON_LIMIT, read_body, require_json_media
from spanlake.api.errors import bad_request
from spanlake.api.pagination import decode_cursor
from spanlake.api.state import services_of
from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid
from spanlake.datasets.queries import from_us

async def read_object(request: Request) -> dict[str, Any]:
    """A JSON object body, parsed strictly (no NaN, valid unicode) so every value is storable."""
    require_json_media(request)
    body = await read_body(request, DEFAULT_JSON_LIMIT)
    if not body.strip():
        raise Invalid("request body is empty; expected a JSON object")
    value = validate.parse_json(body)
    if not isinstance(value, dict):
        raise Invalid(f"request body must be a JSON object, got {type(value).__name__}")
    return value


def store(request: Request) -> Any:
    return services_of(request).store


def ref(request: Request) -> str:
    """The `{dataset}` path parameter: an id or a name."""
    value = request.path_params["dataset"]
    return validate.text(value, "dataset", max_len=validate.MAX_NAME)


def query_text(request: Request, name: str, max_len: int = 1000) -> str | None:
    raw = request.query_params.get(name)
    if raw is None:
        return None
    return validate.text(raw, name, max_len=max_len)


def as_of(request: Request) -> dt.datetime | None:
    raw = request.query_params.get("as_of")
    if raw is None or raw == "":
        return None
    return validate.instant(raw)


def cursor(request: Request, *keys: str) -> dict[str, Any] | None:
    """The decoded cursor, checked to hold `keys` (a cursor from another listing is refused)."""
    state = decode_cursor(request.query_params.get("cursor"))
    if state is not None and any(k not in state for k in keys):
        raise bad_request("cursor does not belong to this listing; pass back its next_cursor unchanged")
    return state


def typed_key(value: Any, types: tuple[type, ...]) -> list[Any]:
    """A cursor's sort key, checked position by position (anything else was not written by us)."""
    def fits(v: Any, t: type) -> bool:
        if t is bool:
            return isinstance(v, bool)
        if t is float:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t is int:
            return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**62
        return isinstance(v, t)

    if not isinstance(value, list) or len(value) != len(types) or not all(map(fits, value, types)):
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    return value


def integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**62:
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    return value


def instant_us(value: Any) -> int:
    """A cursor's read instant (epoch µs), one a datetime can hold: any other was not written by us."""
    us = integer(value)
    try:
        from_us(us)
    except OverflowError:
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None
    return us
