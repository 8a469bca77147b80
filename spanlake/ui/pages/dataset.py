"""One dataset's page (`/datasets/{name}`): a page of its records in the chosen order, at an
instant ("As of"), read with the same query parsing and function as
`GET /api/datasets/{d}/items`, so the page never loads more than one page of records.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.responses import Response

from spanlake.api.contract import parse_query
from spanlake.api.dataset_items import item_query
from spanlake.api.shapes.datasets import ItemListQuery
from spanlake.api.errors import ApiError
from spanlake.api.pagination import encode_cursor
from spanlake.api.state import services_of
from spanlake.datasets import queries, service
from spanlake.datasets.errors import DatasetError
from spanlake.datasets.queries import from_us
from spanlake.ui.templating import path_part, render

SORTS = (("timestamp", "Timestamp"), ("topic", "Topic"), ("evaluation", "Evaluation"))
PAGE_SIZE = "50"


def _link(name_path: str, params: dict[str, str], **changes: str) -> str:
    merged = {k: v for k, v in {**params, **changes}.items() if v}
    return f"/datasets/{name_path}" + ("?" + urlencode(merged) if merged else "")


async def dataset_page(request: Request) -> Response:
    ref = request.path_params["name"]
    q = request.query_params
    sort = q.get("sort") or "timestamp"
    order = q.get("order") or "asc"
    as_of_text = (q.get("as_of") or "").strip()
    kept = {"sort": sort if sort != "timestamp" else "", "order": order if order != "asc" else "", "as_of": as_of_text,
            "limit": q.get("limit") or ""}
    context: dict[str, Any] = {
        "ref": ref, "dataset": None, "records": [], "error": None, "sorts": SORTS, "sort": sort, "order": order,
        "as_of": as_of_text, "read_at": None, "next_href": None, "first_href": None, "kept": kept,
    }
    context["link"] = lambda **changes: _link(path_part(ref), kept, **changes)
    store = services_of(request).store
    try:
        if sort not in dict(SORTS):
            raise ApiError(400, "bad_request", f"Sort by must be timestamp, topic or evaluation, got {sort!r}")
        # The page's URL speaks the items API's parameters; parse them with its own parser.
        params = {k: v for k, v in q.items() if k in ("order", "as_of", "cursor", "limit")}
        params.setdefault("limit", PAGE_SIZE)
        if sort != "timestamp":  # the API's default order is the page's timestamp order
            params["sort"] = sort
        query, at_us, signature = item_query(parse_query(ItemListQuery, QueryParams(urlencode(params))))
        dataset = await store.read(service.describe, ref)
        context["dataset"] = dataset
        _, rows, at_us, more = await store.read(queries.items_page, ref, query, at_us)
    except (DatasetError, ApiError) as exc:
        context["error"] = exc.message
        return render(request, "dataset.html", context, status_code=exc.status)
    except ValueError as exc:  # a cursor that does not parse
        context["error"] = str(exc)
        return render(request, "dataset.html", context, status_code=400)
    name_path = path_part(dataset["name"])
    context["records"] = rows
    context["read_at"] = from_us(at_us).replace(tzinfo=dt.timezone.utc).isoformat()
    context["link"] = lambda **changes: _link(name_path, kept, **changes)
    if more and rows:
        context["next_href"] = _link(name_path, kept, cursor=encode_cursor({"at": at_us, "k": rows[-1]["_key"], "s": signature}))
    if "cursor" in q:
        context["first_href"] = _link(name_path, kept)
    return render(request, "dataset.html", context)
