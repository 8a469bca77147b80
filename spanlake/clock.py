"""Time helpers every layer uses; no imports from the rest of spanlake."""

from __future__ import annotations

import datetime as dt


def utc_now() -> dt.datetime:
    """Naive UTC, the form every TIMESTAMP column of the store holds."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
