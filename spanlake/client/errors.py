"""The one exception the client raises for a failed API call, and the error a CI gate raises."""

from __future__ import annotations

from typing import Any


class SpanlakeError(Exception):
    """An API call failed: the server's status, error code and message (`status` 0: never reached it).

    `details` keeps the rest of the error body (e.g. `rows` of an invalid import,
    `unknown_item_ids` of a results post) so callers can act on it.
    """

    def __init__(self, status: int, code: str, message: str, details: dict[str, Any] | None = None):
        super().__init__(f"{message} ({status} {code})" if status else message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details or {}


class ThresholdError(Exception):
    """`fail_under` missed: a scorer's mean ended below its bar. Carries the run and the summary table."""

    def __init__(self, run: Any, missed: list[str], table: str):
        super().__init__(f"run {run.name}: fail_under missed: {'; '.join(missed)}\n{table}")
        self.run = run
        self.missed = missed
        self.table = table


def from_body(status: int, body: Any, text: str) -> SpanlakeError:
    """The error of a non-2xx answer; a body not in the API's error shape is quoted."""
    error = body.get("error") if isinstance(body, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        details = {k: v for k, v in error.items() if k not in ("code", "message")}
        return SpanlakeError(status, str(error.get("code") or "error"), error["message"], details)
    return SpanlakeError(status, "http_error", f"HTTP {status}: {text[:200]}")
