"""Dataset run pages: a dataset's runs, one run's results, and two runs compared.

Each calls the function behind its `/api/datasets/{dataset}/runs...` twin (`run_queries`) with
the same query parsing (`api.runs` helpers), so pages and API page and fail alike. A run still
pending or running refreshes its own section (htmx) until it finishes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import Response

from spanlake.api.dataset_common import ref
from spanlake.api.errors import ApiError
from spanlake.api.contract import parse_query
from spanlake.api.pagination import created_before
from spanlake.api.shapes.common import Paging
from spanlake.api.shapes.runs import ResultsQuery
from spanlake.api.runs import (
    compare_cursor,
    compare_offset,
    results_after,
    results_cursor,
    run_ref,
    runs_cursor,
)
from spanlake.api.state import services_of
from spanlake.datasets import validate
from spanlake.runs import queries as run_queries
from spanlake.datasets.errors import DatasetError, Invalid
from spanlake.ui.templating import render

LIVE = ("pending", "running")
COMPARE_CHOICES = 200  # runs offered in the compare pickers


def _href(path: str, **params: Any) -> str:
    query = urlencode({k: v for k, v in params.items() if v not in (None, "")})
    return path + ("?" + query if query else "")


def _base(name: str) -> str:
    return f"/datasets/{quote(name, safe='')}/runs"


async def _read(request: Request, fn: Any, *args: Any) -> Any:
    return await services_of(request).store.read(fn, *args)


def _failed(request: Request, exc: DatasetError | ApiError, back_href: str, back_label: str) -> Response:
    context = {"title": "Runs", "message": exc.message, "back_href": back_href, "back_label": back_label}
    return render(request, "error.html", context, status_code=exc.status)


async def runs_page(request: Request) -> Response:
    dataset = request.path_params["dataset"]
    base = _base(dataset)
    try:
        name = ref(request)
        page = parse_query(Paging, request.query_params)
        runs, key = await _read(request, run_queries.list_runs, name, created_before(page.cursor), page.limit, True)
        choices = runs
        if key is not None or request.query_params.get("cursor"):
            choices, _ = await _read(request, run_queries.list_runs, name, None, COMPARE_CHOICES, False)
    except (DatasetError, ApiError) as exc:
        return _failed(request, exc, "/datasets", "Back to datasets")
    next_cursor = runs_cursor(key)
    context = {
        "dataset": dataset, "base": base, "runs": runs, "choices": choices,
        "next_href": _href(base, cursor=next_cursor) if next_cursor else None,
        "first_page": not request.query_params.get("cursor"), "live": LIVE,
    }
    return render(request, "runs.html", context)


async def run_page(request: Request) -> Response:
    dataset = request.path_params["dataset"]
    base = _base(dataset)
    try:
        query = parse_query(ResultsQuery, request.query_params)
        name, run_name, status = ref(request), run_ref(request), query.status
        run = await _read(request, run_queries.get_run, name, run_name)
        rows, next_seq = await _read(request, run_queries.results_page, name, run_name, status,
                                     results_after(query.cursor), query.limit)
    except (DatasetError, ApiError) as exc:
        return _failed(request, exc, base, "Back to the runs")
    here = f"{base}/{quote(run['id'], safe='')}"
    next_cursor = results_cursor(next_seq)
    context = {
        "dataset": dataset, "base": base, "run": run, "results": rows, "status": status or "", "here": here,
        "next_href": _href(here, status=status, cursor=next_cursor) if next_cursor else None,
        "first_page": not request.query_params.get("cursor"), "live": LIVE,
        "scorer_names": list(run["summary"]["scorers"]),
    }
    return render(request, "run.html", context)


async def compare_page(request: Request) -> Response:
    dataset = request.path_params["dataset"]
    base = _base(dataset)
    q = request.query_params
    try:
        name = ref(request)
        page = parse_query(Paging, q)
        choices, _ = await _read(request, run_queries.list_runs, name, None, COMPARE_CHOICES, False)
        picked = {side: validate.text(q[side], side, max_len=validate.MAX_NAME) if q.get(side) else None
                  for side in ("base", "head")}
        comparison = None
        if picked["base"] and picked["head"]:
            comparison = await _read(request, run_queries.compare, name, picked["base"], picked["head"],
                                     compare_offset(page.cursor), page.limit)
        elif picked["base"] or picked["head"]:
            raise Invalid("pick two runs: a base and a head")
    except (DatasetError, ApiError) as exc:
        return _failed(request, exc, base, "Back to the runs")
    next_href = None
    if comparison is not None:
        next_cursor = compare_cursor(comparison.pop("next_offset"))
        if next_cursor:
            next_href = _href(f"{base}/compare", base=picked["base"], head=picked["head"], cursor=next_cursor)
    context = {
        "dataset": dataset, "base": base, "choices": choices, "picked": picked, "cmp": comparison,
        "next_href": next_href, "first_page": not q.get("cursor"),
    }
    return render(request, "runs_compare.html", context)
