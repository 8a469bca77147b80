"""Validation of trace and span ids in paths and bodies: lowercase hex of a fixed length."""

from __future__ import annotations

import re

from spanlake.api.errors import bad_request

_HEX = re.compile(r"[0-9a-fA-F]+")


def _hex_id(value: object, length: int, what: str) -> str:
    if not isinstance(value, str) or len(value) != length or not _HEX.fullmatch(value) or set(value) == {"0"}:
        raise bad_request(f"{what} must be {length} hex characters (not all zero), got {value!r}")
    return value.lower()


def trace_id(value: object, what: str = "trace_id") -> str:
    return _hex_id(value, 32, what)


def span_id(value: object, what: str = "span_id") -> str:
    return _hex_id(value, 16, what)
