"""Opaque cursors and limits shared by every list route.

A cursor is base64url JSON of the last row's sort key (plus anything the route needs to keep the
listing stable, such as a snapshot instant). Clients must treat it as opaque.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from spanlake.api.errors import bad_request

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000


def encode_cursor(state: dict[str, Any]) -> str:
    raw = json.dumps(state, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> dict[str, Any] | None:
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        state = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, UnicodeDecodeError, RecursionError):  # RecursionError: JSON nested too deep
        raise bad_request("cursor is not valid; pass back the next_cursor of a previous page unchanged") from None
    if not isinstance(state, dict):
        raise bad_request("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    return state


def parse_limit(raw: str | None, *, default: int = DEFAULT_LIMIT, maximum: int = MAX_LIMIT) -> int:
    if raw is None or raw == "":
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise bad_request(f"limit must be an integer between 1 and {maximum}, got {raw!r}") from None
    if not 1 <= limit <= maximum:
        raise bad_request(f"limit must be between 1 and {maximum}, got {limit}")
    return limit
