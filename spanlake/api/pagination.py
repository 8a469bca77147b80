"""Opaque cursors shared by every list route (page sizes are `shapes.common.Paging`'s `limit`).

A cursor is base64url JSON of the last row's sort key (plus anything the route needs to keep the
listing stable, such as a snapshot instant). Clients must treat it as opaque; anything we did not
write is refused with one message.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from typing import Any

from spanlake.api.errors import bad_request
from spanlake.datasets.queries import from_us

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
_NOT_OURS = "cursor is not valid; pass back the next_cursor of a previous page unchanged"


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *keys: str) -> dict[str, Any] | None:
    """The cursor's state (None: the first page), checked to hold `keys`: a cursor of another
    listing is refused."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        raise bad_request(_NOT_OURS) from None
    if not isinstance(state, dict):
        raise bad_request(_NOT_OURS)
    if any(k not in state for k in keys):
        raise bad_request("cursor does not belong to this listing; pass back its next_cursor unchanged")
    return state


def cursor_integer(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or abs(value) > 2**62:
        raise bad_request(_NOT_OURS)
    return value


def cursor_instant_us(value: Any) -> int:
    """A cursor's read instant (epoch µs), one a datetime can hold: any other was not written by us."""
    us = cursor_integer(value)
    try:
        from_us(us)
    except OverflowError:
        raise bad_request(_NOT_OURS) from None
    return us


def cursor_key(value: Any, types: tuple[type, ...]) -> list[Any]:
    """A cursor's sort key, checked position by position."""
    def fits(v: Any, t: type) -> bool:
        if t is bool:
            return isinstance(v, bool)
        if t is float:
            return isinstance(v, (int, float)) and not isinstance(v, bool)
        if t is int:
            return isinstance(v, int) and not isinstance(v, bool) and abs(v) < 2**62
        return isinstance(v, t)

    if not isinstance(value, list) or len(value) != len(types) or not all(map(fits, value, types)):
        raise bad_request(_NOT_OURS)
    return value


def created_cursor(created_at: Any, row_id: str) -> str:
    """The cursor of a newest-first page whose last row is (created_at, row_id); see created_before."""
    return encode_cursor({"t": created_at, "id": row_id})


def created_before(cursor: str | None) -> tuple[dt.datetime, str] | None:
    """The (created_at, id) a newest-first page continues after: cursors `{"t", "id"}`."""
    state = decode_cursor(cursor, "t", "id")
    if state is None:
        return None
    try:
        when = dt.datetime.fromisoformat(str(state["t"]).replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise bad_request(_NOT_OURS) from None
    return when, str(state["id"])
