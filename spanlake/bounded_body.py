"""Reading an HTTP request body with a size limit, for the API and OTLP/HTTP alike.

Neither layer may buffer without bound, and each answers a refusal in its own terms (the API's
error shape, OTLP's outcome table), so this raises a neutral BodyRefused they translate.
"""

from __future__ import annotations

from starlette.requests import Request


class BodyRefused(Exception):
    def __init__(self, too_large: bool, message: str):
        super().__init__(message)
        self.too_large = too_large  # else: the request's framing is wrong (a bad Content-Length)
        self.message = message


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body, refused as soon as it (or its declared length) passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            length = int(declared)
        except ValueError:
            raise BodyRefused(False, "Content-Length is not a number") from None
        if length > limit:
            raise BodyRefused(True, f"request body of {declared} bytes exceeds the {limit}-byte limit")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyRefused(True, f"request body exceeds the {limit}-byte limit")
        chunks.append(chunk)
    return b"".join(chunks)
