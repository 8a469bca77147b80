"""Dataset routes (`{dataset}` is an id or a name), plus every dataset route module's list.

Items live in api/dataset_items.py; capture, import and export in api/dataset_transfer.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spanlake.api import dataset_items, dataset_transfer, ids
from spanlake.api.dataset_common import cursor, integer, query_text, read_object, ref, store
from spanlake.api.datasets_openapi import OPENAPI_PATHS, OPENAPI_SCHEMAS
from spanlake.api.pagination import encode_cursor, parse_limit
from spanlake.datasets import queries, service, validate
from spanlake.datasets.errors import Invalid
from spanlake.datasets.views import dataset_json, membership_json, version_json

__all__ = ["OPENAPI_PATHS", "OPENAPI_SCHEMAS", "routes"]

_DATASET_FIELDS = ("name", "description", "metadata")


def _check_fields(body: dict, allowed: tuple[str, ...]) -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise Invalid(f"{unknown[0]} is not a dataset field; expected {', '.join(allowed)}")


async def list_datasets(request: Request) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    state = cursor(request, "after")
    after = state["after"] if state else None
    if after is not None and not isinstance(after, str):
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    search = query_text(request, "search", validate.MAX_NAME) or None
    rows, next_after = await store(request).read(queries.list_datasets, search, after, limit)
    return JSONResponse(
        {
            "items": [dataset_json(r) for r in rows],
            "next_cursor": encode_cursor({"after": next_after}) if next_after is not None else None,
        }
    )


async def create_dataset(request: Request) -> Response:
    body = await read_object(request)
    _check_fields(body, _DATASET_FIELDS)
    if "name" not in body:
        raise Invalid("name is required")
    name = validate.dataset_name(body["name"])
    description = validate.description(body.get("description"))
    metadata = validate.metadata(body.get("metadata"))
    row = await store(request).write(service.create_dataset, name, description, metadata)
    return JSONResponse(dataset_json(row), status_code=201)


async def get_dataset(request: Request) -> Response:
    row = await store(request).read(service.describe, ref(request))
    return JSONResponse(dataset_json(row))


async def patch_dataset(request: Request) -> Response:
    body = await read_object(request)
    _check_fields(body, _DATASET_FIELDS)
    changes: dict = {}
    if "name" in body:
        changes["name"] = validate.dataset_name(body["name"])
    if "description" in body:
        changes["description"] = validate.description(body["description"])
    if "metadata" in body:
        changes["metadata"] = validate.metadata(body["metadata"])
    row = await store(request).write(service.update_dataset, ref(request), changes)
    return JSONResponse(dataset_json(row))


async def delete_dataset(request: Request) -> Response:
    await store(request).write(service.delete_dataset, ref(request))
    return Response(status_code=204)


async def list_versions(request: Request) -> Response:
    limit = parse_limit(request.query_params.get("limit"))
    state = cursor(request, "before")
    before = integer(state["before"]) if state else None
    rows, next_before = await store(request).read(queries.versions_page, ref(request), before, limit)
    return JSONResponse(
        {
            "items": [version_json(r) for r in rows],
            "next_cursor": encode_cursor({"before": next_before}) if next_before is not None else None,
        }
    )


async def span_datasets(request: Request) -> Response:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    span_id = ids.span_id(request.path_params["span_id"])
    limit = parse_limit(request.query_params.get("limit"))
    state = cursor(request, "n", "i")
    after = (str(state["n"]), str(state["i"])) if state else None
    rows, key = await store(request).read(queries.span_datasets, trace_id, span_id, after, limit)
    next_cursor = encode_cursor({"n": key[0], "i": key[1]}) if key else None
    return JSONResponse({"items": [membership_json(r) for r in rows], "next_cursor": next_cursor})


def routes() -> list[Route]:
    return [
        Route("/api/datasets", list_datasets, methods=["GET"]),
        Route("/api/datasets", create_dataset, methods=["POST"]),
        Route("/api/datasets/{dataset}", get_dataset, methods=["GET"]),
        Route("/api/datasets/{dataset}", patch_dataset, methods=["PATCH"]),
        Route("/api/datasets/{dataset}", delete_dataset, methods=["DELETE"]),
        Route("/api/datasets/{dataset}/versions", list_versions, methods=["GET"]),
        *dataset_items.routes(),
        *dataset_transfer.routes(),
        Route("/api/traces/{trace_id}/spans/{span_id}/datasets", span_datasets, methods=["GET"]),
    ]
