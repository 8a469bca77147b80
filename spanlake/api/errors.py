"""Every JSON error the API returns has one shape: {"error": {"code", "message"}}."""

from __future__ import annotations

import json
import logging
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse

from spanlake.errors import ClientError

log = logging.getLogger(__name__)


class ApiError(ClientError):
    """A ClientError raised by the HTTP layer itself, status and code given where it is raised."""

    def __init__(self, status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any):
        super().__init__(message, headers=headers, **extra)
        self.status = status
        self.code = code


def error_body(code: str, message: str, **extra: Any) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, **extra}}


class ErrorResponse(JSONResponse):
    """Error messages quote what the client sent, and JSON lets a client send lone UTF-16
    surrogates ("\\ud800"), which Starlette's UTF-8 rendering cannot encode: the 400 became a 500.
    ASCII-only JSON writes them back as escapes."""

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def error_response(status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any) -> JSONResponse:
    return ErrorResponse(error_body(code, message, **extra), status_code=status, headers=headers)


_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "permission_denied",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "too_many_requests",
    503: "unavailable",
}


async def handle_client_error(request: Request, exc: Exception) -> JSONResponse:
    """Every ClientError (API, datasets, runs, scoring requests) carries its own status and code."""
    assert isinstance(exc, ClientError)
    return error_response(exc.status, exc.code, exc.message, headers=exc.headers, **exc.extra)


async def handle_http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return error_response(exc.status_code, _HTTP_CODES.get(exc.status_code, "error"), str(exc.detail), headers=exc.headers)


async def handle_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # The body points at the server log, so the log must have it.
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return error_response(500, "internal", "internal error; see the server log")


def bad_request(message: str, **extra: Any) -> ApiError:
    return ApiError(400, "bad_request", message, **extra)


def not_found(message: str) -> ApiError:
    return ApiError(404, "not_found", message)
