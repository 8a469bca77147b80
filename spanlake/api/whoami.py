"""`GET /api/whoami`: the caller's key name and scopes, so a script or the UI can see what it may do."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from spanlake.api.openapi import error_responses, json_response
from spanlake.auth import ANONYMOUS, SCOPES


async def whoami(request: Request) -> JSONResponse:
    principal = getattr(request.state, "principal", None) or ANONYMOUS
    return JSONResponse({
        "name": principal.name,
        "scopes": [s for s in SCOPES if s in principal.scopes],
        # False on a server without keys: everyone is "anonymous" with every scope.
        "authenticated": principal is not ANONYMOUS,
    })


def routes() -> list[Route]:
    return [Route("/api/whoami", whoami, methods=["GET"])]


OPENAPI_PATHS: dict = {
    "/api/whoami": {
        "get": {
            "summary": "The calling API key's name and scopes (any valid key may ask)",
            "responses": {
                "200": json_response(
                    "The caller",
                    {
                        "type": "object",
                        "required": ["name", "scopes", "authenticated"],
                        "properties": {
                            "name": {"type": "string"},
                            "scopes": {"type": "array", "items": {"enum": list(SCOPES)}},
                            "authenticated": {"type": "boolean"},
                        },
                    },
                ),
                **error_responses(401),
            },
        }
    },
}
