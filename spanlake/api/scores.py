"""Scorer, score and scoring batch routes."""

from __future__ import annotations

from starlette.routing import Route

# OpenAPI 3.1 "paths" fragment for these routes; spanlake/api/openapi.py merges every module's.
OPENAPI_PATHS: dict = {}


def routes() -> list[Route]:
    return []
