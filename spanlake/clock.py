"""Time helpers every layer uses; no imports from the rest of spanlake."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """Naive UTC, the form every TIMESTAMP column of the store holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def iso_from_ns(ns: int | None) -> str | None:
    """RFC 3339 in UTC with the full nanosecond precision the client sent."""
    if ns is None:
        return None
    seconds, nanos = divmod(int(ns), 1_000_000_000)
    base = dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def iso_from_datetime(value: dt.datetime | None) -> str | None:
    """RFC 3339 with `Z`; naive values are UTC (the store's TIMESTAMP columns)."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
