"""The scores page: scoring batches with live progress, every score name summarised, "Score traces".

Numbers come from the functions behind `GET /api/scores/summary` and `GET /api/scores/batches`;
starting a batch is `POST /api/scores/batch` from the page's module. While a batch is pending or
running, the batches fragment asks for itself again (htmx); the first answer with none left
tells the page (`HX-Trigger: scores-changed`) to reload the summaries once, then polling stops.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from spanlake.api import ids
from spanlake.api.errors import ApiError
from spanlake.api.contract import parse_query
from spanlake.api.scores import batch_json, summary_params
from spanlake.api.state import services_of
from spanlake.api.shapes.scores import SummaryQuery
from spanlake.datasets.errors import DatasetError
from spanlake.scoring.batches import KIND
from spanlake.store import jobs
from spanlake.store.score_summary import score_summary
from spanlake.ui.templating import render

BATCHES_SHOWN = 20
ACTIVE = (jobs.PENDING, jobs.RUNNING)
MAX_SELECTED = 1000  # trace ids carried in the URL


async def _batches(request: Request) -> list[dict[str, Any]]:
    found = await services_of(request).store.read(partial(jobs.list_jobs, kind=KIND, limit=BATCHES_SHOWN))
    return [batch_json(job) for job in found]


async def _summary(request: Request) -> dict[str, Any]:
    """The summaries with the query string that made them, or the query's error."""
    try:
        params = summary_params(parse_query(SummaryQuery, request.query_params))
    except (ApiError, DatasetError) as exc:
        return {"summaries": [], "summary_error": exc.message, "status": exc.status}
    summaries = await services_of(request).store.read(partial(score_summary, **params))
    return {"summaries": summaries, "summary_error": None, "status": 200, "pass_threshold": params["pass_threshold"]}


def _scorers(request: Request) -> list[dict[str, Any]]:
    return [s for s in services_of(request).scoring.registry.describe() if s.get("ready")]


def _selected(request: Request) -> list[str]:
    raw = request.query_params.get("trace_ids", "")
    chosen = [part.strip() for part in raw.split(",") if part.strip()]
    if len(chosen) > MAX_SELECTED:
        raise ApiError(400, "bad_request", f"at most {MAX_SELECTED} trace ids can be carried in the URL, got {len(chosen)}")
    return list(dict.fromkeys(ids.trace_id(t, "trace_ids") for t in chosen))


async def scores_page(request: Request) -> Response:
    summary = await _summary(request)
    context: dict[str, Any] = {
        "batches": await _batches(request),
        "scorers": _scorers(request),
        "selected": [],
        "selection_error": None,
        "pass_threshold_text": request.query_params.get("pass_threshold", ""),
        "chosen_scorer": request.query_params.get("scorer", ""),
        "filter_text": request.query_params.get("filter", ""),
        "active": ACTIVE,
        **summary,
    }
    try:
        context["selected"] = _selected(request)
    except ApiError as exc:
        context["selection_error"] = exc.message
    status = summary["status"] if summary["summary_error"] else (400 if context["selection_error"] else 200)
    return render(request, "scores.html", context, status_code=status)


async def batches_fragment(request: Request) -> Response:
    batches = await _batches(request)
    response = render(request, "_score_batches.html", {"batches": batches, "active": ACTIVE})
    if request.query_params.get("polling") and not any(b["status"] in ACTIVE for b in batches):
        response.headers["HX-Trigger"] = "scores-changed"
    return response


async def summary_fragment(request: Request) -> Response:
    summary = await _summary(request)
    return render(request, "_score_summary.html", summary, status_code=summary["status"])
