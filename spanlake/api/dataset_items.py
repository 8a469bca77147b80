"""Dataset item routes: list (at any instant), add, get, patch, delete, and bulk topic/tags/delete."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from spanlake.api import ids
from spanlake.api.dataset_common import as_of, cursor, instant_us, query_text, read_object, ref, store, typed_key
from spanlake.api.pagination import encode_cursor, parse_limit
from spanlake.datasets import queries, service, validate
from spanlake.datasets.errors import Invalid
from spanlake.datasets.views import item_json
from spanlake.store.dataset_items import ItemChanges, ItemQuery

MAX_ITEMS_PER_CALL = 10_000
_PATCH_FIELDS = ("input", "expected_output", "metadata", "topic", "tags")
_KEY_TYPES = {
    "created_at": (int, str),
    "topic": (bool, str, int, str),
    "score": (bool, float, int, str),
    "evaluation": (bool, float, int, str),
}


def _item_id(request: Request) -> str:
    return validate.text(request.path_params["item_id"], "item_id", max_len=100)


def _sort(request: Request) -> tuple[str, str | None, bool]:
    raw = request.query_params.get("sort") or "created_at"
    order = request.query_params.get("order") or "asc"
    if order not in ("asc", "desc"):
        raise Invalid(f"order must be asc or desc, got {order!r}")
    if raw == "timestamp":  # the UI's name for created_at
        raw = "created_at"
    if raw in ("created_at", "topic", "evaluation"):
        return raw, None, order == "desc"
    if raw.startswith("score:") and len(raw) > len("score:"):
        return "score", validate.text(raw[len("score:"):], "sort", max_len=200), order == "desc"
    raise Invalid(f"sort must be timestamp (or created_at), topic, evaluation or score:<name>, got {raw!r}")


def _metadata_filters(request: Request) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """`metadata.<key>=value` parameters (api/query_guard.py refuses unknown ones on /api)."""
    out = []
    for name in dict.fromkeys(k for k in request.query_params if k.startswith("metadata.")):
        key = validate.text(name[len("metadata."):], name, max_len=1000)
        if not key:
            raise Invalid("metadata. needs a key: metadata.<key>=<value>")
        values = tuple(validate.text(v, name, max_len=10_000) for v in request.query_params.getlist(name))
        out.append((key, values))
    return tuple(out)


def item_query(request: Request) -> tuple[ItemQuery, int | None, str]:
    """The listing's query parameters (sort, order, filters, as_of, cursor, limit); the dataset page parses its URL with this too."""
    q = request.query_params
    metadata = _metadata_filters(request)
    sort, score_name, descending = _sort(request)
    signature = f"{q.get('sort') or 'created_at'}:{'desc' if descending else 'asc'}"
    state = cursor(request, "at", "k", "s")
    if state is not None and state["s"] != signature:
        raise Invalid("cursor belongs to another sort order; start again without a cursor")
    trace = q.get("source_trace_id")
    span = q.get("source_span_id")
    query = ItemQuery(
        as_of=as_of(request),
        topic=query_text(request, "topic", validate.MAX_TOPIC),
        tags=tuple(validate.text(t, "tag", max_len=validate.MAX_TAG) for t in q.getlist("tag")),
        source_trace_id=ids.trace_id(trace, "source_trace_id") if trace else None,
        source_span_id=ids.span_id(span, "source_span_id") if span else None,
        search=query_text(request, "search", 1000) or None,
        metadata=metadata,
        sort=sort,
        score_name=score_name,
        descending=descending,
        after=typed_key(state["k"], _KEY_TYPES[sort]) if state else None,
        limit=parse_limit(q.get("limit")),
    )
    return query, (instant_us(state["at"]) if state else None), signature


async def list_items(request: Request) -> Response:
    query, at_us, signature = item_query(request)
    _, rows, at_us, more = await store(request).read(queries.items_page, ref(request), query, at_us)
    next_cursor = encode_cursor({"at": at_us, "k": rows[-1]["_key"], "s": signature}) if more and rows else None
    return JSONResponse({"items": [item_json(r) for r in rows], "next_cursor": next_cursor})


async def add_items(request: Request) -> Response:
    body = await read_object(request)
    items = body.get("items")
    if set(body) - {"items"}:
        raise Invalid(f"{sorted(set(body) - {'items'})[0]} is not a field here; send {{\"items\": [...]}}")
    if not isinstance(items, list) or not items:
        raise Invalid('items must be a non-empty list: {"items": [{"input": ...}, ...]}')
    if len(items) > MAX_ITEMS_PER_CALL:
        raise Invalid(f"items holds {len(items)} items; the limit is {MAX_ITEMS_PER_CALL} (use import for more)")
    new = [validate.item(obj, f"items[{n}]") for n, obj in enumerate(items)]
    rows = await store(request).write(service.add_items, ref(request), new)
    return JSONResponse({"items": [item_json(r) for r in rows]}, status_code=201)


async def get_item(request: Request) -> Response:
    row = await store(request).read(service.get_item, ref(request), _item_id(request), as_of(request))
    return JSONResponse(item_json(row))


def _changes(body: dict[str, Any]) -> ItemChanges:
    unknown = sorted(set(body) - set(_PATCH_FIELDS))
    if unknown:
        raise Invalid(f"{unknown[0]} cannot be changed; an item's {', '.join(_PATCH_FIELDS)} can")
    if not body:
        raise Invalid(f"nothing to change; send any of {', '.join(_PATCH_FIELDS)}")
    values: dict[str, Any] = {}
    if "input" in body:
        if body["input"] is None:
            raise Invalid("input cannot be null")
        values["input"] = validate.json_text(body["input"], "input")
    if "expected_output" in body:
        value = body["expected_output"]
        values["expected_output"] = None if value is None else validate.json_text(value, "expected_output")
    if "metadata" in body:
        values["metadata"] = validate.json_text(validate.metadata(body["metadata"]), "metadata")
    if "topic" in body:
        values["topic"] = validate.topic(body["topic"])
    if "tags" in body:
        values["tags"] = validate.tags(body["tags"])
    return ItemChanges(values)


async def patch_item(request: Request) -> Response:
    changes = _changes(await read_object(request))
    row = await store(request).write(service.patch_item, ref(request), _item_id(request), changes)
    return JSONResponse(item_json(row))


async def delete_item(request: Request) -> Response:
    await store(request).write(service.delete_item, ref(request), _item_id(request))
    return Response(status_code=204)


def _bulk_changes(body: dict[str, Any]) -> ItemChanges | None:
    """None means delete. Updates may set topic/tags and add or remove tags."""
    unknown = sorted(set(body) - {"ids", "set", "add_tags", "remove_tags", "delete"})
    if unknown:
        raise Invalid(f"{unknown[0]} is not a bulk field; expected ids with set / add_tags / remove_tags, or delete")
    updates = [k for k in ("set", "add_tags", "remove_tags") if body.get(k) is not None]
    if body.get("delete") is not None and body["delete"] is not True:
        raise Invalid("delete must be true (or left out)")
    if body.get("delete") is True:
        if updates:
            raise Invalid("a bulk request either deletes or updates, not both")
        return None
    if not updates:
        raise Invalid("say what to do: set {topic, tags}, add_tags, remove_tags, or delete: true")
    values: dict[str, Any] = {}
    fields = body.get("set") or {}
    if not isinstance(fields, dict):
        raise Invalid("set must be an object with topic and/or tags")
    extra = sorted(set(fields) - {"topic", "tags"})
    if extra:
        raise Invalid(f"set.{extra[0]} cannot be set in bulk; set topic and/or tags (PATCH one item for more)")
    if "topic" in fields:
        values["topic"] = validate.topic(fields["topic"], "set.topic")
    if "tags" in fields:
        values["tags"] = validate.tags(fields["tags"], "set.tags")
    return ItemChanges(
        values, add_tags=validate.tags(body.get("add_tags"), "add_tags"),
        remove_tags=validate.tags(body.get("remove_tags"), "remove_tags"),
    )


async def bulk_items(request: Request) -> Response:
    body = await read_object(request)
    item_ids = body.get("ids")
    if not isinstance(item_ids, list) or not item_ids:
        raise Invalid("ids must be a non-empty list of item ids")
    if len(item_ids) > MAX_ITEMS_PER_CALL:
        raise Invalid(f"ids holds {len(item_ids)} ids; the limit is {MAX_ITEMS_PER_CALL}")
    checked = list(dict.fromkeys(validate.text(i, f"ids[{n}]", max_len=100) for n, i in enumerate(item_ids)))
    changes = _bulk_changes(body)
    result = await store(request).write(service.bulk, ref(request), checked, changes)
    return JSONResponse(result)


def routes() -> list[Route]:
    items = "/api/datasets/{dataset}/items"
    return [
        Route(items, list_items, methods=["GET"]),
        Route(items, add_items, methods=["POST"]),
        Route(items + "/bulk", bulk_items, methods=["POST"]),
        Route(items + "/{item_id}", get_item, methods=["GET"]),
        Route(items + "/{item_id}", patch_item, methods=["PATCH"]),
        Route(items + "/{item_id}", delete_item, methods=["DELETE"]),
    ]
