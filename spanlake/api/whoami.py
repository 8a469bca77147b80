"""`GET /api/whoami`: the caller's key name and scopes, so a script or the UI can see what it may do."""

from __future__ import annotations

from typing import Literal

from starlette.requests import Request
from starlette.responses import JSONResponse

from spanlake.api.contract import Operation, json_reply
from spanlake.api.shapes.common import Returned
from spanlake.auth import ANONYMOUS, SCOPES


class Caller(Returned):
    name: str
    scopes: list[Literal[SCOPES]]  # type: ignore[valid-type]
    authenticated: bool


async def whoami(request: Request) -> JSONResponse:
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    return JSONResponse({
        "name": principal.name,
        "scopes": [s for s in SCOPES if s in principal.scopes],
        # False on a server without keys: everyone is "anonymous" with every scope.
        "authenticated": principal is not ANONYMOUS,
    })


OPERATIONS = [
    Operation("GET", "/api/whoami", whoami, "The calling API key's name and scopes (any valid key may ask)", ("auth",),
              (json_reply(200, "The caller", Caller),)),
]
