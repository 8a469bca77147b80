"""The datasets page (`/datasets`): search by name, each dataset with its record count, and the
partial that lazy-loads a dataset's first records when its row is expanded.

Both read through the same functions as `GET /api/datasets` and `GET /api/datasets/{d}/items`.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from spanlake.api.errors import ApiError
from spanlake.api.pagination import decode_cursor, encode_cursor
from spanlake.api.state import services_of
from spanlake.datasets import queries, service, validate
from spanlake.datasets.errors import DatasetError
from spanlake.store.dataset_items import ItemQuery
from spanlake.ui.templating import render

PAGE_SIZE = 100
PREVIEW_RECORDS = 5
EXPORT_FORMATS = (("jsonl", "JSONL"), ("csv", "CSV"), ("openai", "OpenAI fine-tuning"), ("parquet", "Parquet"))


async def datasets_page(request: Request) -> Response:
    search = request.query_params.get("q", "").strip()
    context: dict[str, Any] = {"search": search, "datasets": [], "next_href": None, "error": None,
                               "first_page": True, "export_formats": EXPORT_FORMATS}
    try:
        validate.text(search, "q", max_len=validate.MAX_NAME)
        state = decode_cursor(request.query_params.get("cursor"))
        after = state.get("after") if isinstance(state, dict) else None
        rows, next_after = await services_of(request).store.read(
            queries.list_datasets, search or None, after if isinstance(after, str) else None, PAGE_SIZE
        )
    except (DatasetError, ApiError) as exc:
        context["error"] = exc.message
        return render(request, "datasets.html", context, status_code=exc.status)
    except ValueError as exc:  # a cursor that does not parse
        context["error"] = str(exc)
        return render(request, "datasets.html", context, status_code=400)
    context["datasets"] = rows
    context["first_page"] = "cursor" not in request.query_params
    if next_after is not None:
        params = {"q": search} if search else {}
        context["next_href"] = "/datasets?" + urlencode({**params, "cursor": encode_cursor({"after": next_after})})
    return render(request, "datasets.html", context)


async def dataset_preview(request: Request) -> Response:
    """The first records of one dataset, as an HTML fragment for the expanded row (htmx)."""
    ref = request.path_params["name"]
    store = services_of(request).store
    try:
        dataset = await store.read(service.describe, ref)
        _, rows, _, _ = await store.read(queries.items_page, ref, ItemQuery(limit=PREVIEW_RECORDS), None)
    except DatasetError as exc:
        return render(request, "_dataset_preview.html", {"error": exc.message, "dataset": None, "records": []}, status_code=exc.status)
    return render(request, "_dataset_preview.html", {"error": None, "dataset": dataset, "records": rows})
