"""Dataset item routes: list (at any instant), add, get, patch, delete, and bulk topic/tags/delete."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from spanlake.api import ids
from spanlake.api.contract import Operation, Reply, json_reply
from spanlake.api.dataset_common import ref, store
from spanlake.api.pagination import cursor_instant_us, cursor_key, decode_cursor, encode_cursor
from spanlake.api.shapes.common import Listing
from spanlake.api.shapes.datasets import (
    AsOfQuery, BulkItems, BulkResult, CreatedItems, DatasetItem, ItemListQuery, ItemPatch, NewItems,
)
from spanlake.datasets import queries, service, validate
from spanlake.datasets.errors import Invalid
from spanlake.datasets.views import item_json
from spanlake.store.dataset_items import ItemChanges, ItemQuery

_KEY_TYPES = {
    "created_at": (int, str),
    "topic": (bool, str, int, str),
    "score": (bool, float, int, str),
    "evaluation": (bool, float, int, str),
}


def _item_id(request: Request) -> str:
    return validate.text(request.path_params["item_id"], "item_id", max_len=100)


def _as_of(raw: str | None):
    return None if not raw else validate.instant(raw)


def _sort(raw: str) -> tuple[str, str | None]:
    if raw == "timestamp":  # the UI's name for created_at
        raw = "created_at"
    if raw in ("created_at", "topic", "evaluation"):
        return raw, None
    if raw.startswith("score:") and len(raw) > len("score:"):
        return "score", validate.text(raw[len("score:"):], "sort", max_len=200)
    raise Invalid(f"sort must be timestamp (or created_at), topic, evaluation or score:<name>, got {raw!r}")


def _metadata_filters(family: dict[str, list[str]]) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`metadata.<key>=value` parameters (api/query_guard.py refuses unknown ones on /api)."""
    out = []
    for key, values in family.items():
        name = f"metadata.{key}"
        validate.text(key, name, max_len=1000)
        if not key:
            raise Invalid("metadata. needs a key: metadata.<key>=<value>")
        out.append((key, tuple(validate.text(v, name, max_len=10_000) for v in values)))
    return tuple(out)


def item_query(q: ItemListQuery) -> tuple[ItemQuery, int | None, str]:
    """The listing's parameters as a store query; the dataset page reads its URL with this too."""
    sort, score_name = _sort(q.sort or "created_at")
    descending = q.order == "desc"
    signature = f"{q.sort or 'created_at'}:{q.order}"
    state = decode_cursor(q.cursor, "at", "k", "s")
    if state is not None and state["s"] != signature:
        raise Invalid("cursor belongs to another sort order; start again without a cursor")
    query = ItemQuery(
        as_of=_as_of(q.as_of),
        topic=q.topic,
        tags=tuple(q.tag),
        source_trace_id=ids.trace_id(q.source_trace_id, "source_trace_id") if q.source_trace_id else None,
        source_span_id=ids.span_id(q.source_span_id, "source_span_id") if q.source_span_id else None,
        search=q.search or None,
        metadata=_metadata_filters(q.metadata),
        sort=sort,
        score_name=score_name,
        descending=descending,
        after=cursor_key(state["k"], _KEY_TYPES[sort]) if state else None,
        limit=q.limit,
    )
    return query, (cursor_instant_us(state["at"]) if state else None), signature


async def list_items(request: Request, *, query: ItemListQuery) -> Response:
    item_q, at_us, signature = item_query(query)
    _, rows, at_us, more = await store(request).read(queries.items_page, ref(request), item_q, at_us)
    next_cursor = encode_cursor({"at": at_us, "k": rows[-1]["_key"], "s": signature}) if more and rows else None
    return JSONResponse({"items": [item_json(r) for r in rows], "next_cursor": next_cursor})


async def add_items(request: Request, *, body: NewItems) -> Response:
    new = [item.new_item() for item in body.items]
    rows = await store(request).write(service.add_items, ref(request), new)
    return JSONResponse({"items": [item_json(r) for r in rows]}, status_code=201)


async def get_item(request: Request, *, query: AsOfQuery) -> Response:
    row = await store(request).read(service.get_item, ref(request), _item_id(request), _as_of(query.as_of))
    return JSONResponse(item_json(row))


def _changes(body: ItemPatch) -> ItemChanges:
    sent = body.model_fields_set
    values = {}
    if "input" in sent:
        values["input"] = validate.json_text(body.input, "input")
    if "expected_output" in sent:
        values["expected_output"] = None if body.expected_output is None else validate.json_text(body.expected_output, "expected_output")
    if "metadata" in sent:
        values["metadata"] = validate.json_text(body.metadata or {}, "metadata")
    if "topic" in sent:
        values["topic"] = body.topic
    if "tags" in sent:
        values["tags"] = tuple(body.tags or ())
    return ItemChanges(values)


async def patch_item(request: Request, *, body: ItemPatch) -> Response:
    row = await store(request).write(service.patch_item, ref(request), _item_id(request), _changes(body))
    return JSONResponse(item_json(row))


async def delete_item(request: Request) -> Response:
    await store(request).write(service.delete_item, ref(request), _item_id(request))
    return Response(status_code=204)


def _bulk_changes(body: BulkItems) -> ItemChanges | None:
    """None means delete. Updates may set topic/tags and add or remove tags."""
    if body.delete:
        return None
    values = {}
    if body.set is not None:
        if "topic" in body.set.model_fields_set:
            values["topic"] = body.set.topic
        if "tags" in body.set.model_fields_set:
            values["tags"] = tuple(body.set.tags or ())
    return ItemChanges(values, add_tags=tuple(body.add_tags or ()), remove_tags=tuple(body.remove_tags or ()))


async def bulk_items(request: Request, *, body: BulkItems) -> Response:
    checked = list(dict.fromkeys(validate.text(i, f"ids[{n}]", max_len=100) for n, i in enumerate(body.ids)))
    result = await store(request).write(service.bulk, ref(request), checked, _bulk_changes(body))
    return JSONResponse(result)


_TAGS = ("datasets",)
_ITEMS = "/api/datasets/{dataset}/items"
OPERATIONS = [
    Operation("GET", _ITEMS, list_items, "List items (current, or as_of an instant); pages read one instant", _TAGS,
              (json_reply(200, "A page of items", Listing[DatasetItem]),), errors=(404,), query=ItemListQuery),
    Operation("POST", _ITEMS, add_items, "Add items (one version)", _TAGS,
              (json_reply(201, "Created", CreatedItems),), errors=(404, 409), body=NewItems),
    Operation("POST", _ITEMS + "/bulk", bulk_items, "Set topic/tags, add or remove tags, or delete many items (one version)",
              _TAGS, (json_reply(200, "Done", BulkResult),), errors=(404,), body=BulkItems),
    Operation("GET", _ITEMS + "/{item_id}", get_item, "One item (current, or as_of an instant)", _TAGS,
              (json_reply(200, "The item", DatasetItem),), errors=(404,), query=AsOfQuery),
    Operation("PATCH", _ITEMS + "/{item_id}", patch_item, "Update an item: opens its next version, same id", _TAGS,
              (json_reply(200, "The new version", DatasetItem),), errors=(404,), body=ItemPatch),
    Operation("DELETE", _ITEMS + "/{item_id}", delete_item, "Delete an item (its history stays readable with as_of)",
              _TAGS, (Reply(204, "Deleted"),), errors=(404,)),
]
