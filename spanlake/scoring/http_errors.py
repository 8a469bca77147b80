"""Calling a scoring service over HTTP: one client per scorer, failures sorted into retry or not.

Retryable: timeouts, connection errors, 408, 429 and 5xx (with the server's Retry-After, seconds
or an HTTP date, RFC 9110 section 10.2.3). Every other 4xx and any non-JSON answer is permanent:
asking again would get the same answer.
"""

from __future__ import annotations

import email.utils
import time
from typing import Any

import httpx

from spanlake.scoring.base import ScoringError, TransientError

_RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def make_client(concurrency: int, timeout_s: float) -> httpx.AsyncClient:
    """A connection pool as large as the scorer's concurrency: no call waits for a socket."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    return httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(timeout_s, pool=None))


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _snippet(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


async def post_json(
    client: httpx.AsyncClient, url: str, payload: Any, *, headers: dict[str, str] | None = None, what: str
) -> Any:
    """POST JSON and return the decoded JSON answer, or raise TransientError / ScoringError."""
    try:
        resp = await client.post(url, json=payload, headers=headers)
    except httpx.TimeoutException:
        raise TransientError(f"{what} timed out") from None
    except httpx.TransportError as exc:
        raise TransientError(f"{what} unreachable: {type(exc).__name__}: {exc}") from None
    if resp.status_code in _RETRYABLE_STATUS:
        raise TransientError(
            f"{what} answered {resp.status_code}: {_snippet(resp.text)}",
            retry_after=retry_after_seconds(resp.headers.get("retry-after")),
        )
    if resp.status_code >= 400:
        raise ScoringError(f"{what} answered {resp.status_code}: {_snippet(resp.text)}")
    try:
        return resp.json()
    except ValueError:
        raise ScoringError(f"{what} answered non-JSON: {_snippet(resp.text)}") from None
