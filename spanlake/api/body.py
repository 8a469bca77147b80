"""Reading request bodies with a size limit, so no client can make us buffer without bound."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from spanlake.api.errors import ApiError, bad_request
from spanlake.datasets.validate import parse_json
from spanlake.datasets.errors import Invalid

DEFAULT_JSON_LIMIT = 16 * 1024 * 1024


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise ApiError(413, "too_large", f"request body of {declared} bytes exceeds the {limit}-byte limit")
        except ValueError:
            raise bad_request("Content-Length is not a number") from None
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise ApiError(413, "too_large", f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_json(body: bytes) -> Any:
    if not body.strip():
        raise bad_request("request body is empty; expected JSON")
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None


def decode_object(body: bytes, *, strict: bool) -> dict[str, Any]:
    """A JSON object. Strict parsing (no NaN, valid unicode) for values the store keeps as JSON."""
    if strict:
        if not body.strip():
            raise Invalid("request body is empty; expected a JSON object")
        value = parse_json(body)
    else:
        value = decode_json(body)
    if not isinstance(value, dict):
        raise bad_request(f"request body must be a JSON object, got {type(value).__name__}")
    return value
