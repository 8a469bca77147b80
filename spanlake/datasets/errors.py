"""Errors of the datasets domain; each carries the HTTP status and stable code it maps to."""

from __future__ import annotations

from typing import Any

from spanlake.errors import ClientError


class DatasetError(ClientError):
    """An error of the datasets (and runs, scoring requests) domain."""


class Invalid(DatasetError):
    """The request names a value we cannot use; the message names the field and what was expected."""


class NotFound(DatasetError):
    status = 404
    code = "not_found"


class Conflict(DatasetError):
    status = 409
    code = "conflict"


class RowsInvalid(DatasetError):
    """Some rows of an import (or an items list) are unusable; nothing was written.

    `rows` lists `{"row": n, "reason": ...}` (1-based), at most MAX_REPORTED of them.
    """

    status = 422
    code = "invalid_rows"
    MAX_REPORTED = 100

    def __init__(self, rows: list[dict[str, Any]], total_rows: int):
        shown = rows[: self.MAX_REPORTED]
        first = shown[0]
        message = (
            f"{len(rows)} of {total_rows} rows are invalid, nothing was imported; "
            f"first: row {first['row']}: {first['reason']}"
        )
        super().__init__(message, rows=shown, invalid_count=len(rows))


class Unsupported(DatasetError):
    status = 415
    code = "unsupported_media_type"
