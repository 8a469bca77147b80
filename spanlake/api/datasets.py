"""Dataset routes (`{dataset}` is an id or a name), plus every dataset route module's operations.

Items live in api/dataset_items.py; capture, import and export in api/dataset_transfer.py.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanlake.api import dataset_items, dataset_transfer, ids
from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.dataset_common import ref, store
from spanlake.api.pagination import cursor_integer, decode_cursor, encode_cursor
from spanlake.api.shapes.common import Listing, Paging
from spanlake.api.shapes.datasets import Dataset, DatasetListQuery, DatasetMembership, DatasetPatch, DatasetVersion, NewDataset
from spanlake.datasets import queries, service
from spanlake.datasets.errors import Invalid
from spanlake.datasets.views import dataset_json, membership_json, version_json


async def list_datasets(request: Request, *, query: DatasetListQuery) -> Response:
    state = decode_cursor(query.cursor, "after")
    after = state["after"] if state else None
    if after is not None and not isinstance(after, str):
        raise Invalid("cursor is not valid; pass back the next_cursor of a previous page unchanged")
    rows, next_after = await store(request).read(queries.list_datasets, query.search or None, after, query.limit)
    return JSONResponse(
        {
            "items": [dataset_json(r) for r in rows],
            "next_cursor": encode_cursor({"after": next_after}) if next_after is not None else None,
        }
    )


async def create_dataset(request: Request, *, body: NewDataset) -> Response:
    row = await store(request).write(service.create_dataset, body.name, body.description, body.metadata or {})
    return JSONResponse(dataset_json(row), status_code=201)


async def get_dataset(request: Request) -> Response:
    row = await store(request).read(service.describe, ref(request))
    return JSONResponse(dataset_json(row))


async def patch_dataset(request: Request, *, body: DatasetPatch) -> Response:
    changes = body.model_dump(include=body.model_fields_set)
    if "metadata" in changes:
        changes["metadata"] = changes["metadata"] or {}
    row = await store(request).write(service.update_dataset, ref(request), changes)
    return JSONResponse(dataset_json(row))


async def delete_dataset(request: Request) -> Response:
    await store(request).write(service.delete_dataset, ref(request))
    return Response(status_code=204)


async def list_versions(request: Request, *, query: Paging) -> Response:
    state = decode_cursor(query.cursor, "before")
    before = cursor_integer(state["before"]) if state else None
    rows, next_before = await store(request).read(queries.versions_page, ref(request), before, query.limit)
    return JSONResponse(
        {
            "items": [version_json(r) for r in rows],
            "next_cursor": encode_cursor({"before": next_before}) if next_before is not None else None,
        }
    )


async def span_datasets(request: Request, *, query: Paging) -> Response:
    trace_id = ids.trace_id(request.path_params["trace_id"])
    span_id = ids.span_id(request.path_params["span_id"])
    state = decode_cursor(query.cursor, "n", "i")
    after = (str(state["n"]), str(state["i"])) if state else None
    rows, key = await store(request).read(queries.span_datasets, trace_id, span_id, after, query.limit)
    next_cursor = encode_cursor({"n": key[0], "i": key[1]}) if key else None
    return JSONResponse({"items": [membership_json(r) for r in rows], "next_cursor": next_cursor})


_TAGS = ("datasets",)
_ONE = "/api/datasets/{dataset}"
OPERATIONS = [
    Operation("GET", "/api/datasets", list_datasets, "List datasets by name, with current item counts", _TAGS,
              (json_reply(200, "A page of datasets", Listing[Dataset]),), query=DatasetListQuery),
    Operation("POST", "/api/datasets", create_dataset, "Create a dataset", _TAGS,
              (json_reply(201, "Created", Dataset),), errors=(409,), body=NewDataset),
    Operation("GET", _ONE, get_dataset, "One dataset", _TAGS, (json_reply(200, "The dataset", Dataset),), errors=(404,)),
    Operation("PATCH", _ONE, patch_dataset, "Rename or change description/metadata", _TAGS,
              (json_reply(200, "Updated", Dataset),), errors=(404, 409), body=DatasetPatch),
    Operation("DELETE", _ONE, delete_dataset, "Delete a dataset (its name becomes free)", _TAGS,
              (Reply(204, "Deleted"),), errors=(404,)),
    Operation("GET", _ONE + "/versions", list_versions,
              "Instants the items changed, newest first, with counts added/updated/deleted", _TAGS,
              (json_reply(200, "A page of versions", Listing[DatasetVersion]),), errors=(404,), query=Paging),
    *dataset_items.OPERATIONS,
    *dataset_transfer.OPERATIONS,
    Operation("GET", "/api/traces/{trace_id}/spans/{span_id}/datasets", span_datasets,
              "Datasets this span was captured into (404 for a span the store does not hold)", _TAGS,
              (json_reply(200, "Memberships", Listing[DatasetMembership]),), errors=(404,), query=Paging),
]
