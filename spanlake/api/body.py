"""Reading request bodies with a size limit, so no client can make us buffer without bound."""

from __future__ import annotations

import json
import math
from typing import Any

from starlette.requests import Request

from spanlake.api.errors import ApiError, bad_request
from spanlake.bounded_body import BodyRefused, read_bounded
from spanlake.datasets.validate import parse_json
from spanlake.datasets.errors import Invalid

DEFAULT_JSON_LIMIT = 16 * 1024 * 1024


# Besides JSON, a body may come declared as nothing, as what `curl -d` declares when told
# nothing (the README's examples), or as text/plain, what a browser's fetch() declares for a
# string body: none of them is a claim about the body's format.
_NO_CLAIM = frozenset({"", "application/x-www-form-urlencoded", "text/plain"})


def require_json_media(request: Request) -> None:
    """A JSON route refuses a body declared as another format (a CSV meant for /import, say) with
    415 naming it, rather than reading it as JSON anyway."""
    declared = request.headers.get("content-type") or ""
    media = declared.split(";")[0].strip().lower()
    if media == "application/json" or media.endswith("+json") or media in _NO_CLAIM:
        return
    raise ApiError(415, "unsupported_media_type", f"Content-Type {declared!r} is not JSON; send this body as application/json")


async def read_body(request: Request, limit: int) -> bytes:
    try:
        return await read_bounded(request, limit)
    except BodyRefused as exc:
        raise (ApiError(413, "too_large", exc.message) if exc.too_large else bad_request(exc.message)) from None


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text} is out of range")
    return value


def decode_json(body: bytes) -> Any:
    """The body as JSON, numbers finite: NaN, Infinity or 1e400 would be stored, then fail to render."""
    if not body.strip():
        raise bad_request("request body is empty; expected JSON")
    try:
        return json.loads(body, parse_constant=_no_constant, parse_float=_finite)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise bad_request("request body is not valid JSON: nested too deeply") from None


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
