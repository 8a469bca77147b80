"""Helpers shared by the dataset route modules: the store, the `{dataset}` path value, cursors."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from spanlake.api.errors import bad_request
from spanlake.api.pagination import decode_cursor
from spanlake.datasets import validate
from spanlake.datasets.errors import Invalid


def store(request: Request) -> Any:
    return request.app.state.services.store


def ref(request: Request) -> str:
    """The `{dataset}` path parameter: an id or a name."""
    value = request.path_params["dataset"]
    return validate.text(value, "dataset", max_len=validate.MAX_NAME)


def cursor(raw: str | None, *keys: str) -> dict[str, Any] | None:
    """The decoded cursor, checked to hold `keys` (a cursor from another listing is refused)."""
    state = decode_cursor(raw)
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
